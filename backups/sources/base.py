"""The interface every kind of backup source implements (backup.sources), and what they share.

backup.db, backup.list, backup.prune and restore.verify treat every source alike: a kind only
says how to dump one of its units as a command on the host (the framework streams that
command's stdout through the codec, sha256 and the store, under the usual key, and writes the
manifest last), what to count at the dump's snapshot, and how to drill a fetched, checked copy
into a throwaway target. Secrets reach commands through their environment, never their argv.

A *unit* is one backup object: the source itself for most kinds, one per database for a MySQL
source (`<name>.<database>`). Units come from the settings alone, so listings and freshness
know them without contacting the source.
"""

from __future__ import annotations

import json
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from backups.archive.manifest import Manifest
from maintenance.errors import MaintError
from maintenance.inventory import Host
from maintenance.runners import Runner
from maintenance.secrets import env_secret, mask_text, register_secret
from maintenance.settings.sources import SourceBase

STDERR_TAIL = 2000  # characters of a tool's stderr kept in reports and drill records


@dataclass
class DumpCommand:
    """How one unit is dumped: COMMAND (argv, run on the host) writes the dump to stdout.

    `counts` is called once the command succeeded: the counts per logical database or table
    at the dump's snapshot, for the manifest. `server_version` and `tool_version` are recorded
    there too.
    """

    command: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    counts: Callable[[], dict[str, int]] = dict
    server_version: str = ""
    tool_version: str = ""


@dataclass
class Drilled:
    """What a drill found: the throwaway target's name, counts compared, and why it failed."""

    scratch: str
    counts: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    restore_s: float | None = None


class Source(ABC):
    """One `backup.sources` entry of one host."""

    kind: ClassVar[str]

    def __init__(self, host: Host, settings: SourceBase) -> None:
        self.host = host
        self.settings = settings

    @property
    def name(self) -> str:
        return self.settings.name

    def units(self) -> list[str]:
        """The backup names this source makes, one object each (the key's second segment)."""
        return [self.name]

    @abstractmethod
    def extension(self) -> str:
        """The object name's extension before the codec's: the dump's format."""

    @abstractmethod
    def dump(self, runner: Runner, unit: str) -> AbstractContextManager[DumpCommand]:
        """Prepare UNIT's dump on RUNNER's host; the framework runs the command inside the
        context, and the context's exit removes whatever the dump left on the host (a copy, a
        snapshot) whether it succeeded or not. Raise DumpError when the source cannot be read."""

    @abstractmethod
    def drill(self, runner: Runner, unit: str, path: str, manifest: Manifest) -> Drilled:
        """Restore the dump at PATH (on RUNNER's host, decompressed and checked against the
        manifest's sha256) into a throwaway target, compare what it holds with the manifest,
        and remove the target. Problems are returned as reasons; raise only when the drill
        could not run at all (MaintError)."""

    @abstractmethod
    def restore(self, runner: Runner, unit: str, path: str, into: str) -> None:
        """Restore the dump at PATH (on RUNNER's host) into INTO (a file, a database: what the
        kind restores into). Raise MaintError when it fails."""

    def occupied(self, runner: Runner, into: str) -> bool:
        """Whether INTO on RUNNER's host holds something a restore would overwrite (restore.db
        then wants --force). Here: a file exists at INTO, for the kinds restoring into one."""
        return runner.run(["test", "-e", into]).ok


def compare_counts(
    expected: Mapping[str, int], found: Mapping[str, int]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each name's count in the manifest against the restored copy's: rows for the drill
    record, and a reason for each that differs (counts of a snapshot are exact)."""
    rows, reasons = [], []
    for name in sorted(set(expected) | set(found)):
        want, got = expected.get(name), found.get(name)
        ok = want == got
        rows.append({"name": name, "expected": want, "restored": got, "ok": ok})
        if not ok:
            if got is None:
                reasons.append(f"{name}: missing from the restored copy ({want} in the backup)")
            elif want is None:
                reasons.append(f"{name}: in the restored copy ({got}) but not in the manifest")
            else:
                reasons.append(f"{name}: {got} restored, {want} in the manifest")
    return rows, reasons


@contextmanager
def private_dir(runner: Runner, prefix: str) -> Iterator[str]:
    """A directory only this user can read, in the host's restore.tmp_dir, for a dump's side
    files (counts, a copy); removed with what it holds when the context ends. Raise
    MaintError when it cannot be made."""
    tmp_dir = runner.host.settings.restore.tmp_dir.rstrip("/")
    made = runner.run(["mktemp", "-d", f"{tmp_dir}/{prefix}-XXXXXX"])
    if not made.ok:
        raise MaintError(f"cannot make a private directory: {stderr_tail(made.stderr)}")
    directory = made.stdout.strip()
    try:
        yield directory
    finally:
        runner.run(["rm", "-rf", directory])


def place_file(runner: Runner, path: str, into: str) -> None:
    """Copy PATH to INTO on RUNNER's host through a temporary name beside INTO, so INTO is
    never half written. Raise MaintError when it fails."""
    partial = f"{into}.maint-restore"
    command = (
        f"cp {shlex.quote(path)} {shlex.quote(partial)} && "
        f"mv -f {shlex.quote(partial)} {shlex.quote(into)}"
    )
    result = runner.run(command)
    if not result.ok:
        runner.run(["rm", "-f", partial])
        raise MaintError(f"restoring {into} failed: {stderr_tail(result.stderr)}")


def password(url: str, password_env: str | None) -> str | None:
    """A server's password: from the environment variable PASSWORD_ENV names when it names
    one, else from URL (registered, so text quoting it is masked); None without either. Raise
    ConfigError when the variable is not set."""
    if password_env is not None:
        return env_secret(password_env, "password_env")
    written = urlsplit(url).password
    if written is None:
        return None
    register_secret(unquote(written))
    return unquote(written)


def stderr_tail(text: str) -> str:
    """The end of a tool's stderr, secrets masked: enough to say why it failed."""
    return mask_text(text.strip())[-STDERR_TAIL:]


def run_python(
    runner: Runner,
    script: str,
    args: Sequence[str],
    what: str,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Any:
    """Run SCRIPT (stdlib only) with the host's python3 and ARGS (ENV in its environment:
    passwords); return the JSON it prints.

    Raise MaintError naming WHAT on a failure, with the script's last words.
    """
    command = f"python3 -I -S -c {shlex.quote(script)} {shlex.join(args)}"
    result = runner.run(command, timeout=timeout, env=env)
    if result.exit_code == 127:
        raise MaintError(f"{what} needs python3 on host {runner.host.name}")
    if not result.ok:
        raise MaintError(f"{what} failed (exit {result.exit_code}): {stderr_tail(result.stderr)}")
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise MaintError(f"{what}: unexpected output {result.stdout[-200:]!r}") from None
