"""Fan-out benchmark: `maint health.check` (disk part) over N SSH hosts vs the raw tools.

Starts N sshd-backed loopback hosts through tests.harness and times, in the same run,
alternating over several rounds (medians), each as a whole process with cold connections:

  product       `maint health.check -i INV --json --forks N` (hosts without postgres.dsn,
                so only `df -P -k /` runs on each host)
  parallel ssh  a shell running N background `ssh -n HOST df -P -k /` jobs, then `wait`
  ansible       `ansible all -m command -a 'df -P -k /' -f N` with Ansible's defaults
                (a fresh ControlPath directory per run, so no connection outlives its run)

and the product's peak memory (max RSS of the `maint` process, from wait4).

    python bench/fanout.py [--hosts 20] [--rounds 5] [--same-kex] [--max-ratio R]

Up to 253 hosts (127.0.0.2 to .254, one sshd per 16 addresses, as tests.harness starts them;
`--hosts 200` is the fleet of issue 18). OpenSSH's client negotiates its own default key
exchange (sntrup761x25519, about twice curve25519's CPU) and cipher; --same-kex makes the
parallel ssh baseline offer only what the product's paramiko agrees on with this sshd, so the
two pay the same handshake. --max-ratio makes the run exit 1 when product / parallel ssh
exceeds R: a regression threshold for CI or a release check.

Ansible is a comparison only, not a dependency: install it with `pip install ansible`
(or run with --no-ansible). Targets: product <= 1.5x parallel ssh and <= 0.25x Ansible.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.harness import SshFleet, start_fleet  # noqa: E402
from tests.inventories import fleet_hosts, fleet_vars, write_inventory  # noqa: E402

DF_COMMAND = "df -P -k /"
WIDTHS = (9, 7, 7, 11, 6, 9)  # table columns after the name
TARGET_VS_SSH = 1.5
TARGET_VS_ANSIBLE = 0.25
# What paramiko (the product) and this sshd agree on: paramiko's first choice, mlkem768x25519,
# is newer than OpenSSH 9.2; the product asks for AES-GCM first (maintenance/runners/ssh.py).
PRODUCT_KEX = ("-o", "KexAlgorithms=curve25519-sha256@libssh.org,curve25519-sha256")
PRODUCT_CIPHER = ("-o", "Ciphers=aes128-gcm@openssh.com")
ANSIBLE_MISSING = (
    "ansible is not installed in this Python environment; it is only needed by this "
    "benchmark, not by the product: run `pip install ansible` (or pass --no-ansible)"
)


@dataclass
class Run:
    """One timed process: wall seconds, CPU seconds and peak RSS of the tree it waited for."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str
    returncode: int


@dataclass
class Contender:
    """A way of running df on every host, with the check that it really did."""

    name: str
    run: Callable[[int], Run]
    verify: Callable[[Run], None]
    ssh_logins: int = 0  # logins sshd must log per run: proof it really went over SSH
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0


def bench_env(workdir: Path) -> dict[str, str]:
    """This environment, except that Python caches bytecode, in WORKDIR's own tree.

    With PYTHONDONTWRITEBYTECODE set, every run of `maint` from a source checkout would
    recompile the product's modules, which an installed product never does; the warm-up
    round fills the cache, and the checkout gets no __pycache__ of ours.
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def timed(argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> Run:
    """Run ARGV to completion; the wall time covers fork/exec to exit, rusage via wait4."""
    env = env or bench_env(workdir)
    out_path, err_path = workdir / "run.stdout", workdir / "run.stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=workdir
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen in step
    return Run(
        seconds,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,  # KiB on Linux
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace"),
        proc.returncode,
    )


def venv_command(name: str) -> str | None:
    """The console script next to this interpreter (not a pyenv shim, which adds a bash hop)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def product(fleet: SshFleet, workdir: Path, forks: int) -> Contender:
    inventory = write_inventory(
        workdir / "inventory.yaml", fleet_hosts(fleet), all_vars=fleet_vars(fleet)
    )
    maint = venv_command("maint")
    if maint is None:
        sys.exit("`maint` not found: install the product first (pip install -e .)")
    argv = [maint, "health.check", "-i", str(inventory), "--json", "--forks", str(forks)]
    names = {host.name for host in fleet.hosts}

    def verify(run: Run) -> None:
        try:
            document = json.loads(run.stdout)
        except ValueError:
            raise RuntimeError(
                f"maint exited {run.returncode} without a JSON document:\n{run.stderr[-3000:]}"
            ) from None
        states = {r["host"]: (r["status"], r["details"].get("state")) for r in document["results"]}
        if run.returncode != 0 or states != {name: ("ok", "OK") for name in names}:
            raise RuntimeError(f"maint did not check every host: {states}\n{run.stderr[-2000:]}")
        if any(len(r["details"]["checks"]) != 1 for r in document["results"]):
            raise RuntimeError("expected the disk check only (no postgres.dsn in the inventory)")

    return Contender("maint health.check", lambda _: timed(argv, workdir), verify, len(fleet.hosts))


def parallel_ssh(fleet: SshFleet, workdir: Path, same_kex: bool) -> Contender:
    outputs = workdir / "ssh-out"
    outputs.mkdir()
    lines = ["pids="]
    for index, host in enumerate(fleet.hosts):
        target = shlex.quote(str(outputs / f"{index}.out"))
        argv = fleet.ssh_argv(host, DF_COMMAND)
        if same_kex:
            argv[1:1] = [*PRODUCT_KEX, *PRODUCT_CIPHER]
        lines.append(f"{shlex.join(argv)} >{target} 2>&1 &")
        lines.append('pids="$pids $!"')
    lines += ["status=0", 'for pid in $pids; do wait "$pid" || status=1; done', 'exit "$status"']
    script = workdir / "parallel-ssh.sh"
    script.write_text("\n".join(lines) + "\n")

    def run(_: int) -> Run:
        for stale in outputs.iterdir():
            stale.unlink()
        return timed(["bash", str(script)], workdir)

    def verify(run: Run) -> None:
        done = [p for p in outputs.iterdir() if p.read_text().startswith("Filesystem")]
        if run.returncode != 0 or len(done) != len(fleet.hosts):
            failures = [p.read_text()[:200] for p in outputs.iterdir() if p not in done]
            raise RuntimeError(f"parallel ssh: {len(done)} hosts answered; {failures}")

    name = "parallel ssh, same kex" if same_kex else "parallel ssh (shell)"
    return Contender(name, run, verify, len(fleet.hosts))


def ansible(fleet: SshFleet, workdir: Path, forks: int) -> Contender | None:
    binary = venv_command("ansible")
    if binary is None:
        return None
    ssh_args = (
        f"-o UserKnownHostsFile={fleet.known_hosts} -o GlobalKnownHostsFile=/dev/null "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    )
    lines = ["[fleet]"]
    for host in fleet.hosts:
        lines.append(
            f"{host.name} ansible_host={host.address} ansible_port={host.port} "
            f"ansible_user={host.user} ansible_ssh_private_key_file={host.key_path}"
        )
    lines += [
        "[all:vars]",
        f"ansible_ssh_common_args='{ssh_args}'",
        "ansible_python_interpreter=/usr/bin/python3",
    ]
    inventory = workdir / "ansible-hosts.ini"
    inventory.write_text("\n".join(lines) + "\n")
    config = workdir / "ansible.cfg"  # empty: Ansible's defaults, whatever cwd or ~ hold
    config.write_text("")
    argv = [binary, "all", "-i", str(inventory), "-m", "command", "-a", DF_COMMAND]
    argv += ["-f", str(forks)]
    names = {host.name for host in fleet.hosts}

    def run(round_number: int) -> Run:
        control_dir = workdir / f"ansible-cp-{round_number}-{time.monotonic_ns()}"
        control_dir.mkdir()
        env = {
            **bench_env(workdir),
            "ANSIBLE_CONFIG": str(config),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir),
            "ANSIBLE_NOCOLOR": "1",
        }
        try:
            return timed(argv, workdir, env)
        finally:
            _close_control_masters(control_dir)

    def verify(run: Run) -> None:
        answered = set(re.findall(r"^(\S+) \| (?:CHANGED|SUCCESS) \| rc=0 >>", run.stdout, re.M))
        if run.returncode != 0 or answered != names or run.stdout.count("Filesystem") != len(names):
            raise RuntimeError(f"ansible: {len(answered)} hosts answered\n{run.stdout[-3000:]}")

    return Contender("ansible ad-hoc", run, verify, len(fleet.hosts))


def _close_control_masters(control_dir: Path) -> None:
    """End the ControlPersist masters this Ansible run left, so the next run starts cold."""
    for socket_path in control_dir.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "placeholder"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    shutil.rmtree(control_dir, ignore_errors=True)


def startup(workdir: Path) -> Contender:
    """`maint --version`: interpreter and imports only, to split the product's time."""
    maint = venv_command("maint")
    assert maint is not None

    def verify(run: Run) -> None:
        if run.returncode != 0:
            raise RuntimeError(f"maint --version failed: {run.stderr}")

    return Contender(
        "maint --version (startup)", lambda _: timed([maint, "--version"], workdir), verify
    )


def measure(
    contenders: list[Contender], rounds: int, warmup: int, logins: Callable[[], int]
) -> None:
    """Alternate the contenders, rotating who goes first; warm-up rounds are checked, not kept."""
    for number in range(warmup + rounds):
        shift = number % len(contenders)
        for contender in contenders[shift:] + contenders[:shift]:
            before = logins()
            run = contender.run(number)
            contender.verify(run)
            if (made := logins() - before) < contender.ssh_logins:
                raise RuntimeError(f"{contender.name}: sshd logged {made} logins, not one per host")
            if number >= warmup:
                contender.times.append(run.seconds)
                contender.cpu_times.append(run.cpu_seconds)
                contender.peak_rss_mb = max(contender.peak_rss_mb, run.peak_rss_mb)
        if number >= warmup:
            figures = ", ".join(f"{c.name} {c.times[-1]:.2f}s" for c in contenders)
            print(f"round {number - warmup + 1}/{rounds}: {figures}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=20, help="SSH hosts (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--no-ansible", action="store_true", help="skip the Ansible comparison")
    parser.add_argument(
        "--same-kex",
        action="store_true",
        help="parallel ssh negotiates the product's key exchange and cipher, not OpenSSH's",
    )
    parser.add_argument(
        "--max-ratio",
        type=float,
        help="exit 1 when product / parallel ssh exceeds this (a regression threshold)",
    )
    args = parser.parse_args()
    forks = args.hosts
    _raise_open_files(args.hosts)

    if not args.no_ansible and venv_command("ansible") is None:
        sys.exit(ANSIBLE_MISSING)

    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="maint-bench-fanout-"))
    fleet = start_fleet(args.hosts, workdir / "ssh", user="fleet")
    try:
        the_product = product(fleet, workdir, forks)
        baseline = parallel_ssh(fleet, workdir, args.same_kex)
        contenders = [the_product, baseline]
        the_ansible = None if args.no_ansible else ansible(fleet, workdir, forks)
        if the_ansible is not None:
            contenders.append(the_ansible)
        contenders.append(startup(workdir))
        measure(contenders, args.rounds, args.warmup, fleet.logins)
    finally:
        fleet.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures = report(args, contenders, the_product, baseline, the_ansible, load_before)
    print(json.dumps(figures))
    if args.max_ratio is not None and figures["ratio"] > args.max_ratio:
        print(
            f"regression: product / parallel ssh = {figures['ratio']} exceeds "
            f"--max-ratio {args.max_ratio}",
            file=sys.stderr,
        )
        return 1
    return 0


def _raise_open_files(hosts: int) -> None:
    """Lift the soft limit of open files to the hard one when HOSTS connections (a socket
    each, and pipes for the ssh baseline's children) could come near a 1024 default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8 * hosts + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def report(
    args: argparse.Namespace,
    contenders: list[Contender],
    the_product: Contender,
    baseline: Contender,
    the_ansible: Contender | None,
    load_before: float,
) -> dict[str, object]:
    """Print the table and the ratios against the targets; return the JSON figures."""
    medians = {c.name: statistics.median(c.times) for c in contenders}
    product_s = medians[the_product.name]
    baseline_s = medians[baseline.name]
    print(
        f"\nfanout: {DF_COMMAND} on {args.hosts} SSH hosts, forks {args.hosts}, "
        f"{args.rounds} rounds (+{args.warmup} warm-up), cold connections, whole process"
    )
    headers = ("median s", "min s", "max s", "vs product", "CPU s", "peak RSS")
    print(f"{'what':<28} " + " ".join(f"{h:>{w}}" for h, w in zip(headers, WIDTHS, strict=True)))
    for contender in contenders:
        median = medians[contender.name]
        print(
            f"{contender.name:<28} {median:>9.2f} {min(contender.times):>7.2f} "
            f"{max(contender.times):>7.2f} {median / product_s:>10.2f}x "
            f"{statistics.median(contender.cpu_times):>6.2f} {contender.peak_rss_mb:>6.0f} MB"
        )
    print(
        "CPU s: median user+sys CPU of the local process tree (sshd's side not counted); "
        "peak RSS: largest single process in that tree (ru_maxrss of wait4);\n"
        f"load average before/after: {load_before:.1f}/{os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (other work on the machine makes timings noisy)"
    )
    ratio = product_s / baseline_s
    print(
        f"\nproduct / parallel ssh = {ratio:.2f} (target <= {TARGET_VS_SSH})"
        f"{'' if ratio <= TARGET_VS_SSH else '  MISSED'}"
    )
    figures: dict[str, object] = {
        "bench": "fanout",
        "hosts": args.hosts,
        "rounds": args.rounds,
        "product_s": round(product_s, 3),
        "baseline": baseline.name,
        "baseline_s": round(baseline_s, 3),
        "ratio": round(ratio, 3),
    }
    if the_ansible is not None:
        ansible_s = medians[the_ansible.name]
        ratio_ansible = product_s / ansible_s
        print(
            f"product / ansible      = {ratio_ansible:.2f} (target <= {TARGET_VS_ANSIBLE})"
            f"{'' if ratio_ansible <= TARGET_VS_ANSIBLE else '  MISSED'}"
        )
        figures |= {"ansible_s": round(ansible_s, 3), "ratio_ansible": round(ratio_ansible, 3)}
    figures |= {
        f"{key}_cpu_s": round(statistics.median(contender.cpu_times), 3)
        for key, contender in (
            ("product", the_product),
            ("baseline", baseline),
            ("ansible", the_ansible),
        )
        if contender is not None
    }
    figures |= {
        "product_startup_s": round(medians["maint --version (startup)"], 3),
        "product_peak_rss_mb": round(the_product.peak_rss_mb, 1),
    }
    return figures


if __name__ == "__main__":
    sys.exit(main())
