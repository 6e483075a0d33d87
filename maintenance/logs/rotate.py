"""logs.rotate: rotate the hosts' live logs as logrotate does, one pass per host.

Per host: one round trip lists every rule's directories together with the host's clock and
the rotation state; the plan is made here; one more round trip saves it as a journal in the
state directory and runs it (rotate_script). A journal left by an interrupted run is finished
first (one more trip, then the listing is taken again). Rules written as `logrotate: FILE` are
read from every host before any host changes (Imports, through the task's validation), so a
refused directive anywhere stops the whole run with exit 2.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CommandError, ConfigError
from ..executor import run_procedure
from ..inventory import Host
from ..results import Result, Status
from ..runners import Runner
from .logrotate_conf import parse_logrotate
from .plan import LogFile, display_path
from .remote import run_bytes
from .rotate_plan import Clock, Listing, RulePlan, Step, plan_rules
from .rotate_script import NO_PYTHON, STALE, journal, read_outcome, resume_command, start_command
from .rotate_state import StateFiles, parse_state, state_dir_shell, state_files
from .rotation import RotateRule, from_setting

_NO_FILE = b"X"


class Imports:
    """The rules of the selected hosts' `logrotate:` files, read from all of them at once
    (in parallel) the first time any is asked for: by the task's validation of the first
    host, before anything runs anywhere. Making it contacts no host (a schedule check
    builds the options and throws them away).
    """

    def __init__(self, hosts: Callable[[], Sequence[Host]], forks: int) -> None:
        self._hosts = hosts  # the selected hosts, asked for when the files are read
        self._forks = forks
        self._lock = threading.Lock()
        self._read: dict[str, Result] | None = None

    def _results(self) -> dict[str, Result]:
        with self._lock:
            if self._read is None:
                hosts = [h for h in self._hosts() if any(r.logrotate for r in h.settings.logs)]
                results = run_procedure(
                    "logs.rotate (logrotate files)", _read_files, hosts, None, forks=self._forks
                )
                self._read = {result.host: result for result in results}
            return self._read

    def unread(self, host: Host) -> Result | None:
        """HOST's result when its files could not be read (unreachable): reported as is."""
        result = self._results().get(host.name)
        return result if result is not None and result.status != Status.OK else None

    def rules(self, host: Host) -> dict[str, list[RotateRule]]:
        """HOST's imported rules by file. Raise ConfigError naming the host, the key, the
        file, the line and the directive when a file is missing or asks for what
        logs.rotate does not do."""
        result = self._results().get(host.name)
        if result is None or result.status != Status.OK:
            return {}
        texts: dict[str, str | None] = result.details["files"]
        rules: dict[str, list[RotateRule]] = {}
        problems = []
        for index, rule in enumerate(host.settings.logs):
            if rule.logrotate is None:
                continue
            where = f"host {host.name!r}: logs[{index}].logrotate"
            text = texts[rule.logrotate]
            if text is None:
                problems.append(f"{where}: {rule.logrotate} is not a readable file on the host")
                continue
            try:
                rules[rule.logrotate] = parse_logrotate(text, rule.logrotate)
            except ConfigError as exc:
                problems.append(f"{where}: {exc}")
        if problems:
            raise ConfigError("\n  ".join(problems))
        return rules


@dataclass(frozen=True)
class RotateOptions:
    imports: Imports
    dry_run: bool = False
    force: bool = False


def check_imports(host: Host, options: RotateOptions) -> None:
    """The task's validation: HOST's logrotate files read and accepted (ConfigError if not)."""
    options.imports.rules(host)


def host_rules(host: Host, imported: dict[str, list[RotateRule]]) -> list[RotateRule]:
    """The host's rotation rules in inventory order, imported files where they are named."""
    rules: list[RotateRule] = []
    for index, rule in enumerate(host.settings.logs):
        if rule.logrotate is not None:
            rules += imported.get(rule.logrotate, [])
        elif rule.rotates:
            rules.append(from_setting(rule, index))
    return rules


def _read_files(host: Host, runner: Runner, _: object) -> Result:
    """The text of each `logrotate:` file of HOST (None: missing), in one round trip."""
    paths = list(dict.fromkeys(r.logrotate for r in host.settings.logs if r.logrotate))
    script = "\n".join(
        f"if [ -f {q} ] && [ -r {q} ]; then printf 'O\\000'; cat -- {q}; printf '\\000'; "
        f"else printf 'X\\000\\000'; fi"
        for q in map(shlex.quote, paths)
    )
    data = run_bytes(runner, script).data.split(b"\0")
    files: dict[str, str | None] = {}
    for index, path in enumerate(paths):
        found, text = data[2 * index], data[2 * index + 1]
        files[path] = None if found == _NO_FILE else text.decode("utf-8", "replace")
    return Result(host.name, Status.OK, details={"files": files})


def rotate_host(host: Host, runner: Runner, options: RotateOptions) -> Result:
    """Rotate the live files of every rotation rule of HOST; SKIPPED when it has none."""
    unread = options.imports.unread(host)
    if unread is not None:
        return unread
    rules = host_rules(host, options.imports.rules(host))
    if not rules:
        return Result(host.name, Status.SKIPPED, summary="no rotation rules")
    state_dir = state_dir_shell(host.settings.state_dir)
    files = state_files(host.name)
    listing = list_host(runner, rules, state_dir, files)
    resumed = False
    if listing.journal and not options.dry_run:
        try:
            _run(runner, resume_command(state_dir, files))
            resumed = True
        except CommandError:
            if list_host(runner, rules, state_dir, files).journal:
                raise
            # else another run of this host finished the journal meanwhile
        listing = list_host(runner, rules, state_dir, files)
    plans, state = plan_rules(rules, listing, options.force)
    if options.dry_run:
        return _dry_run_result(host, plans, listing.journal)
    steps = _ordered_steps(plans)
    outcome_data = carry_out(runner, state_dir, files, listing, plans, state)
    return _result(host, plans, steps, outcome_data, resumed)


def carry_out(
    runner: Runner,
    state_dir: str,
    files: StateFiles,
    listing: Listing,
    plans: Sequence[RulePlan],
    state: dict[bytes, float],
) -> bytes:
    """Save and run the journal of PLANS, made from LISTING, leaving STATE; what it reported.

    Nothing is sent when nothing rotates and the state is as it was. Raise CommandError
    when the journal stops (the next run finishes it) or finds another run's state.
    """
    steps = _ordered_steps(plans)
    if not steps and state == listing.state:
        return b""
    rotated = {
        f.file.path: (f.unit, listing.state.get(f.file.path, 0.0))
        for plan in plans
        for f in plan.rotating
    }
    script = journal(steps, state, rotated, listing.state_text)
    return _run(runner, start_command(state_dir, files), script)


def list_host(
    runner: Runner, rules: Sequence[RotateRule], state_dir: str, files: StateFiles
) -> Listing:
    """Every rule's directories, the clock, the state and whether a journal waits: one trip."""
    depths: dict[str, int | None] = {}
    for rule in rules:
        for glob in rule.globs:
            depth = None if "**" in glob.pattern else len(glob.pattern)
            known = depths.get(glob.base, 0)
            depths[glob.base] = None if depth is None or known is None else max(known, depth)
    bases = list(depths)
    lines = [
        "LC_ALL=C; export LC_ALL",
        f"d={state_dir}",
        'printf \'%s %s\\000\' "$(date +%s)" "$(date +%z)"',
        f"if [ -f \"$d/{files.journal}\" ]; then printf 'J\\000'; else printf 'N\\000'; fi",
        "if command -v zstd >/dev/null 2>&1; then printf 'Z\\000'; else printf 'N\\000'; fi",
        f"cat -- \"$d/{files.state}\" 2>/dev/null; printf '\\000'",
    ]
    for index, base in enumerate(bases):
        quoted, depth = shlex.quote(base), depths[base]
        limit = f" -maxdepth {depth}" if depth is not None else ""
        lines.append(
            f"if [ -h {quoted} ] || [ ! -d {quoted} ]; then printf 'M {index}\\000'; else "
            f"printf 'B {index}\\000'; find -P {quoted} -mindepth 1{limit} "
            "-printf '%y %n %s %T@ %P\\0'; fi"
        )
    output = run_bytes(runner, "\n".join(lines))
    if output.exit_code != 0:
        raise CommandError(f"listing the log directories failed: {output.stderr.strip()[-2000:]}")
    return _parse_listing(output.data, bases)


def _parse_listing(data: bytes, bases: list[str]) -> Listing:
    records = data.split(b"\0")
    now, offset = records[0].split(b" ")
    sign = -1 if offset.startswith(b"-") else 1
    offset_s = sign * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60)
    journal_waits, zstd, state_text = records[1] == b"J", records[2] == b"Z", records[3]
    found: dict[str, list[LogFile] | None] = {}
    current: list[LogFile] | None = None
    prefix = b""
    for record in records[4:]:
        if record.startswith((b"M ", b"B ")) and record[2:].isdigit():
            base = bases[int(record[2:])]
            current = [] if record.startswith(b"B ") else None
            found[base] = current
            prefix = base.encode("utf-8", "surrogateescape") + b"/"
        elif record and current is not None:
            kind, links, size, mtime, relative = record.split(b" ", 4)
            current.append(
                LogFile(prefix + relative, kind.decode(), int(size), float(mtime), int(links))
            )
    clock = Clock(float(now), offset_s)
    return Listing(clock, found, parse_state(state_text), journal_waits, zstd, state_text)


def _ordered_steps(plans: Sequence[RulePlan]) -> list[Step]:
    """Each rule's renames, then its postrotate, then the compression of its fresh files."""
    steps: list[Step] = []
    for plan in plans:
        rotating = plan.rotating
        steps += [step for f in rotating for step in f.steps]
        steps += plan.postrotate
        steps += [step for f in rotating for step in f.late]
    return steps


def _run(runner: Runner, command: str, stdin: bytes | None = None) -> bytes:
    output = run_bytes(runner, command, stdin)
    code, data, stderr = output.exit_code, output.data, output.stderr
    if code == NO_PYTHON:
        raise CommandError("logs.rotate needs python3 on the host (3.8 or later)")
    if code == STALE:
        raise CommandError(
            "another logs.rotate run on this host changed the rotation state since this run "
            "listed the files: this run changed nothing"
        )
    if code != 0:
        raise CommandError(
            f"the rotation journal stopped (exit {code}): {stderr.strip()[-2000:] or 'killed'}; "
            "the next run finishes it"
        )
    return data


def _dry_run_result(host: Host, plans: Sequence[RulePlan], journal_waits: bool) -> Result:
    rows: list[dict[str, Any]] = []
    for plan in plans:
        for file_plan in plan.files:
            label = plan.rule.label
            path = display_path(file_plan.file.path)
            if not file_plan.rotate:
                detail = f"{path}: {file_plan.reason}"
                rows.append({"rule": label, "path": path, "action": "keep", "detail": detail})
                continue
            rows += [
                {"rule": label, "path": path, "action": step.kind, "detail": step.words()}
                for step in [*file_plan.steps, *file_plan.late]
                if step.kind != "prepare"  # said by its create
            ]
        rows += [
            {"rule": plan.rule.label, "path": "", "action": "postrotate", "detail": step.command}
            for step in plan.postrotate
        ]
    rotating = sum(len(plan.rotating) for plan in plans)
    errors = [f"{plan.rule.label}: {plan.error}" for plan in plans if plan.error]
    return Result(
        host.name,
        Status.FAILED if errors else Status.OK,
        details={
            "dry_run": True,
            "rotated": rotating,
            "rules": [_rule_dict(plan, {}) for plan in plans],
            "rows": rows,
        },
        summary=f"would rotate {rotating} file(s)"
        + (
            "; an interrupted run's journal waits: the next run finishes it first"
            if journal_waits
            else ""
        ),
        error="; ".join(errors) or None,
    )


def _result(
    host: Host, plans: Sequence[RulePlan], steps: Sequence[Step], data: bytes, resumed: bool
) -> Result:
    outcome = read_outcome(data)
    posts = {
        number: step for number, step in enumerate(steps, start=1) if step.kind == "postrotate"
    }
    ran = {id(posts[number]): result for number, result in outcome.postrotate.items()}
    rules = []
    errors = []
    rotated = 0
    for plan in plans:
        failed = [f for f in plan.rotating if f.unit in outcome.failures]
        rotated += len(plan.rotating) - len(failed)
        post_runs = [ran[id(step)] for step in plan.postrotate if id(step) in ran]
        said = _rule_dict(plan, outcome.failures)
        said["postrotate"] = [{"exit": status, "output": tail} for status, tail in post_runs]
        rules.append(said)
        if plan.error:
            errors.append(f"{plan.rule.label}: {plan.error}")
        errors += [f"{display_path(f.file.path)}: {outcome.failures[f.unit]}" for f in failed]
        errors += [
            f"{plan.rule.label}: postrotate exited {status}: {tail.strip()[-300:]}"
            for status, tail in post_runs
            if status != 0
        ]
    status = Status.FAILED if errors else Status.CHANGED if rotated else Status.OK
    summary = f"rotated {rotated} file(s)" + (
        " (finished an interrupted run first)" if resumed else ""
    )
    return Result(
        host.name,
        status,
        details={
            "dry_run": False,
            "rotated": rotated,
            "resumed": resumed,
            "rules": rules,
            "rows": [_rule_row(rule) for rule in rules],
        },
        summary=summary,
        error="; ".join(errors) or None,
    )


def _rule_dict(plan: RulePlan, failures: dict[int, str]) -> dict[str, Any]:
    rotating = plan.rotating
    return {
        "rule": plan.rule.label,
        "source": plan.rule.source,
        "files": len(plan.files),
        "rotated": sum(f.unit not in failures for f in rotating),
        "failed": sum(f.unit in failures for f in rotating),
        "kept": [
            {"path": display_path(f.file.path), "reason": f.reason}
            for f in plan.files
            if not f.rotate
        ],
        "problems": plan.problems,
        "error": plan.error,
    }


def _rule_row(rule: dict[str, Any]) -> dict[str, Any]:
    posts = rule.get("postrotate") or []
    return {
        "rule": rule["rule"],
        "files": rule["files"],
        "rotated": rule["rotated"],
        "failed": rule["failed"],
        "postrotate": ", ".join(f"exit {p['exit']}" for p in posts),
        "error": rule["error"] or "",
    }
