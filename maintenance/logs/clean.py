"""logs.clean: compress, delete and cap each rule's log files on the host.

Per rule: one round trip lists the files, one compresses the planned ones, one deletes; the
size cap is applied between the last two, on the sizes the compressed copies really have.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import HostUnreachable, MaintError
from ..inventory import Host
from ..results import Result, Status
from ..runners import Runner
from ..settings.logs import LogRule
from ..units import format_size
from .plan import (
    Action,
    Cutoff,
    Decision,
    LogFile,
    apply_size_cap,
    cutoffs,
    display_path,
    plan_by_age,
    rule_files,
)
from .remote import compress_files, delete_files, list_files
from .rules import codec_suffix

PROBLEMS_SHOWN = 20


@dataclass(frozen=True)
class CleanOptions:
    dry_run: bool = False


@dataclass
class RuleOutcome:
    """What one rule did (or would do) on the host."""

    rule: LogRule
    files: int = 0
    compressed: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    decisions: list[Decision] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str | None = None
    # The rule's ages on the host's clock: {"delete": ..., "compress": ...}
    cutoffs: dict[str, Cutoff] = field(default_factory=dict)

    def said_cutoffs(self) -> str:
        """'delete older than 14 days, before 2026-11-22 06:00 UTC; compress older than ...'."""
        return "; ".join(f"{action} {cut.words()}" for action, cut in self.cutoffs.items())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.rule.path,
            "base": self.rule.base,
            "cutoffs": {action: cut.to_dict() for action, cut in self.cutoffs.items()},
            "files": self.files,
            "compressed": self.compressed,
            "deleted": self.deleted,
            "bytes_freed": self.bytes_freed,
            "problems": self.problems[:PROBLEMS_SHOWN],
            "problem_count": len(self.problems),
            "error": self.error,
        }


def clean_host(host: Host, runner: Runner, options: CleanOptions) -> Result:
    """Apply every rule of the host's `logs` var; SKIPPED when it has none."""
    rules = [rule for rule in host.settings.logs if cleans(rule)]
    if not rules:
        return Result(host.name, Status.SKIPPED, summary="no logs rules")
    outcomes = [_run_rule(runner, rule, options.dry_run) for rule in rules]
    compressed = sum(o.compressed for o in outcomes)
    deleted = sum(o.deleted for o in outcomes)
    freed = sum(o.bytes_freed for o in outcomes)
    errors = [f"{o.rule.path}: {o.error}" for o in outcomes if o.error]
    if options.dry_run:
        summary = f"would compress {compressed}, delete {deleted} ({format_size(freed)})"
        said = [f"{o.rule.path}: {o.said_cutoffs()}" for o in outcomes if o.cutoffs]
        summary += "".join(f"; {line}" for line in said)
        rows = [_file_row(o.rule, d) for o in outcomes for d in o.decisions]
    else:
        summary = f"compressed {compressed}, deleted {deleted}, freed {format_size(freed)}"
        rows = [_rule_row(o) for o in outcomes]
    problems = sum(len(o.problems) for o in outcomes)
    if problems:
        summary += f"; {problems} file(s) left alone, see details"
    if errors:
        status = Status.FAILED
    elif compressed or deleted:
        status = Status.OK if options.dry_run else Status.CHANGED
    else:
        status = Status.OK
    return Result(
        host.name,
        status,
        details={
            "dry_run": options.dry_run,
            "compressed": compressed,
            "deleted": deleted,
            "bytes_freed": freed,
            "rules": [o.to_dict() for o in outcomes],
            "rows": rows,
        },
        summary=summary,
        error="; ".join(errors) or None,
    )


def cleans(rule: LogRule) -> bool:
    """Whether logs.clean has work in RULE: not a logrotate file (logs.rotate reads those),
    and for a rule that rotates, an age or a size cap for its rotated copies."""
    if rule.logrotate is not None:
        return False
    return not rule.rotates or rule.delete_after is not None or rule.max_total_size is not None


def _run_rule(runner: Runner, rule: LogRule, dry_run: bool) -> RuleOutcome:
    outcome = RuleOutcome(rule)
    try:
        now, entries = list_files(runner, rule)
        outcome.cutoffs = cutoffs(rule, now)
        files = rule_files(rule, entries)
        outcome.files = len(files)
        decisions = plan_by_age(rule, files, now)
        cutoff = now - rule.min_age.total_seconds()
        if dry_run:
            outcome.decisions = apply_size_cap(rule, decisions)
            _count(outcome, outcome.decisions)
        else:
            _carry_out(runner, rule, decisions, cutoff, outcome)
    except HostUnreachable:
        raise  # the whole host, not this rule: the executor reports it unreachable
    except MaintError as exc:
        outcome.error = str(exc)
    return outcome


def _carry_out(
    runner: Runner, rule: LogRule, decisions: list[Decision], cutoff: float, outcome: RuleOutcome
) -> None:
    """Compress, then cap on the real compressed sizes, then delete; record what happened."""
    planned = [d.file.path for d in decisions if d.action == Action.COMPRESS]
    sizes: dict[bytes, int] = {}
    if planned:
        sizes, stderr = compress_files(runner, planned, rule.codec, codec_suffix(rule), cutoff)
        _note_left_alone(outcome, [p for p in planned if p not in sizes], "not compressed", stderr)
    saved = sum(d.file.size - sizes[d.file.path] for d in decisions if d.file.path in sizes)
    decisions = apply_size_cap(rule, [_after_compression(rule, d, sizes) for d in decisions])
    doomed = [d.file.path for d in decisions if d.action == Action.DELETE]
    deleted: dict[bytes, int] = {}
    if doomed:
        deleted, stderr = delete_files(runner, doomed, cutoff)
        _note_left_alone(outcome, [p for p in doomed if p not in deleted], "not deleted", stderr)
    outcome.compressed = len(sizes)
    outcome.deleted = len(deleted)
    outcome.bytes_freed = saved + sum(deleted.values())


def _after_compression(rule: LogRule, decision: Decision, sizes: dict[bytes, int]) -> Decision:
    """A compressed file's decision now points at its compressed copy (for the size cap)."""
    if decision.action != Action.COMPRESS:
        return decision
    original = decision.file
    if original.path not in sizes:
        return replace(decision, action=Action.KEEP, reason="compression failed")
    copy = LogFile(original.path + codec_suffix(rule), "f", sizes[original.path], original.mtime)
    return replace(decision, file=copy)


def _count(outcome: RuleOutcome, decisions: list[Decision]) -> None:
    """Dry run: count planned actions; bytes freed counts deletions only (ratios are unknown)."""
    outcome.compressed = sum(d.action == Action.COMPRESS for d in decisions)
    outcome.deleted = sum(d.action == Action.DELETE for d in decisions)
    outcome.bytes_freed = sum(d.file.size for d in decisions if d.action == Action.DELETE)


def _note_left_alone(outcome: RuleOutcome, paths: list[bytes], what: str, stderr: str) -> None:
    """Record planned files left alone. A file that changed since the listing is only noted;
    one the host's tool complained about (stderr) fails the rule."""
    outcome.problems += [f"{what}: {display_path(path)}" for path in paths]
    if paths and stderr.strip():
        outcome.error = f"{len(paths)} file(s) {what}: {stderr.strip()[-2000:]}"


def _file_row(rule: LogRule, decision: Decision) -> dict[str, Any]:
    return {
        "rule": rule.path,
        "action": str(decision.action),
        "reason": decision.reason,
        "size": decision.file.size,
        "path": display_path(decision.file.path),
    }


def _rule_row(outcome: RuleOutcome) -> dict[str, Any]:
    return {
        "rule": outcome.rule.path,
        "files": outcome.files,
        "compressed": outcome.compressed,
        "deleted": outcome.deleted,
        "freed": format_size(outcome.bytes_freed),
        "error": outcome.error or "",
    }
