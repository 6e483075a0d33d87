"""Prometheus metrics: per task and host for every run, per job for the daemon.

The same per-host gauges feed two outputs: the daemon's HTTP endpoint on a loopback port, and
a node_exporter textfile that any task writes when the `metrics.textfile_dir` var asks for it
(so runs from cron or by hand are seen too). Figures a task reports in its details under the
keys `size` (bytes) and `days_left` (e.g. a backup's size, a certificate's days left) are
exported wherever they appear, without knowing the task. So are the monitoring checks a task
reports in `details.checks` (health.check: name, state, value) and `details.targets`
(certs.check: target, state, its certificates' days left): each check's state (0 OK ..
3 UNKNOWN) and its measured value, per host and check name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile
from prometheus_client.parser import text_string_to_metric_families

from ..monitoring import State
from ..results import Status
from .state import Outcome

HOST_STATES = [str(status) for status in Status]
JOB_STATES = ["ok", "failed"]
# Keys that name the thing a figure belongs to (a database, a certificate's endpoint...).
_ITEM_KEYS = ("name", "database", "endpoint", "target", "path", "file", "subject", "key")
_FIGURES = {"size": "size", "size_bytes": "size", "days_left": "days_left"}


class StateGauge:
    """A status as a gauge with a `state` label: 1 for the current state, 0 for the others.

    prometheus_client's Enum would name that label after the metric; the documented (and
    alerted-on) label is `state`.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: Sequence[str],
        states: Sequence[str],
        registry: CollectorRegistry,
    ) -> None:
        self.states = list(states)
        self.gauge = Gauge(name, documentation, (*labels, "state"), registry=registry)

    def set(self, state: str, *labels: str) -> None:
        for each in self.states:
            self.gauge.labels(*labels, each).set(1 if each == state else 0)


class TaskMetrics:
    """Per task and host: last run, last success, last duration and status, reported figures."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("task", "host")
        self.last_run = Gauge(
            "maint_task_last_run_timestamp_seconds",
            "When the task last finished on the host (Unix time).",
            labels,
            registry=registry,
        )
        self.last_success = Gauge(
            "maint_task_last_success_timestamp_seconds",
            "When the task last finished ok or changed on the host (Unix time).",
            labels,
            registry=registry,
        )
        self.duration = Gauge(
            "maint_task_last_duration_seconds",
            "How long the task's last run took on the host.",
            labels,
            registry=registry,
        )
        self.status = StateGauge(
            "maint_task_last_status",
            "The host's status in the task's last run (1 for it, 0 for the others).",
            labels,
            HOST_STATES,
            registry,
        )
        self.size = Gauge(
            "maint_task_size_bytes",
            "A size the task reported, e.g. a backup's stored bytes.",
            (*labels, "item"),
            registry=registry,
        )
        self.days_left = Gauge(
            "maint_task_days_left",
            "Days left the task reported, e.g. until a certificate expires.",
            (*labels, "item"),
            registry=registry,
        )
        self.check_state = Gauge(
            "maint_check_state",
            "A check's monitoring state in the task's last run on the host:"
            " 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            (*labels, "check"),
            registry=registry,
        )
        self.check_value = Gauge(
            "maint_check_value",
            "A check's measured value in the task's last run on the host (e.g. a disk's free"
            " percentage, a certificate's days left); absent when the check measured no number.",
            (*labels, "check"),
            registry=registry,
        )
        # The checks each (task, host) exported last, so a check gone from a run (or one that
        # no longer measured a number) loses its series instead of keeping a stale value.
        self._checks: dict[tuple[str, str], tuple[set[str], set[str]]] = {}

    def observe(self, task: str, hosts: Sequence[Mapping[str, Any]], finished: float) -> None:
        """Record each host's result (dicts as in the task's JSON document) at time FINISHED."""
        for host in hosts:
            name, status = str(host["host"]), str(host["status"])
            self.last_run.labels(task, name).set(finished)
            self.duration.labels(task, name).set(float(host.get("duration_s") or 0))
            if status in HOST_STATES:
                self.status.set(status, task, name)
            if status in (Status.OK, Status.CHANGED):
                self.last_success.labels(task, name).set(finished)
            for figure, item, value in detail_figures(host.get("details") or {}):
                gauge = self.size if figure == "size" else self.days_left
                gauge.labels(task, name, item).set(value)
            self._observe_checks(task, name, host.get("details") or {})

    def _observe_checks(self, task: str, host: str, details: Any) -> None:
        stated, measured = set(), set()
        for check, state, value, _ in detail_checks(details):
            self.check_state.labels(task, host, check).set(int(state))
            stated.add(check)
            if value is not None:
                self.check_value.labels(task, host, check).set(value)
                measured.add(check)
        old_stated, old_measured = self._checks.get((task, host), (set(), set()))
        for check in old_stated - stated:
            self.check_state.remove(task, host, check)
        for check in old_measured - measured:
            self.check_value.remove(task, host, check)
        self._checks[(task, host)] = (stated, measured)


class SchedulerMetrics(TaskMetrics):
    """The daemon's registry: the per-host gauges plus each job's runs, skips and next run."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        super().__init__(self.registry)
        self.runs = Counter(
            "maint_job_runs",
            "Runs of each job by outcome; 'skipped' counts runs not started because the"
            " previous one was still going.",
            ("job", "status"),
            registry=self.registry,
        )
        self.job_last_success = Gauge(
            "maint_job_last_success_timestamp_seconds",
            "When the job last finished ok on every host (Unix time).",
            ("job",),
            registry=self.registry,
        )
        self.job_duration = Gauge(
            "maint_job_last_duration_seconds",
            "How long the job's last run took.",
            ("job",),
            registry=self.registry,
        )
        self.job_status = StateGauge(
            "maint_job_last_status",
            "The outcome of the job's last run (1 for it, 0 for the others).",
            ("job",),
            JOB_STATES,
            self.registry,
        )
        self.running = Gauge(
            "maint_job_running",
            "1 while a run of the job is going.",
            ("job",),
            registry=self.registry,
        )
        self.next_run = Gauge(
            "maint_job_next_run_timestamp_seconds",
            "When the job runs next (Unix time).",
            ("job",),
            registry=self.registry,
        )

    def job_finished(self, job: str, task: str, outcome: Outcome) -> None:
        finished = outcome.ended.timestamp()
        self.runs.labels(job, outcome.status).inc()
        self.job_duration.labels(job).set(outcome.duration_s)
        if outcome.status in JOB_STATES:
            self.job_status.set(outcome.status, job)
        if outcome.status == "ok":
            self.job_last_success.labels(job).set(finished)
        self.observe(task, outcome.hosts, finished)


def detail_figures(details: Any, where: str = "") -> Iterator[tuple[str, str, float]]:
    """(figure, item, value) for every `size` / `days_left` number anywhere in DETAILS.

    The item is the name-like key of the mapping holding the figure (database, endpoint, ...),
    else its position in the details, so two certificates of one host stay apart.
    """
    if isinstance(details, Mapping):
        item = next((str(details[key]) for key in _ITEM_KEYS if key in details), where)
        for key, value in details.items():
            figure = _FIGURES.get(str(key))
            if figure and isinstance(value, int | float) and not isinstance(value, bool):
                yield figure, item, float(value)
            elif isinstance(value, Mapping | list):
                yield from detail_figures(value, f"{where}.{key}" if where else str(key))
    elif isinstance(details, list):
        for index, value in enumerate(details):
            yield from detail_figures(value, f"{where}[{index}]")


class CheckReport(NamedTuple):
    """One check a task reported for a host: what metrics export and alerts compare."""

    name: str
    state: State
    value: float | None
    message: str


def detail_checks(details: Any) -> Iterator[CheckReport]:
    """Each check in DETAILS: its name, state, measured value (or None) and message.

    health.check lists `checks` ({name, state, message, value}); certs.check lists `targets`
    ({target, state, error, certificates: [{days_left, problems}]}), a target's value being
    the fewest days left among its certificates and its message its error or problems.
    Entries without a known state are not checks.
    """
    if not isinstance(details, Mapping):
        return
    for key in ("checks", "targets"):
        entries = details.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            name, state = entry.get("name") or entry.get("target"), entry.get("state")
            if not name or state not in State.__members__:
                continue
            value = _number(entry.get("value"))
            certificates = [c for c in entry.get("certificates") or [] if isinstance(c, Mapping)]
            if value is None and certificates:
                days = [_number(c.get("days_left")) for c in certificates]
                value = min((d for d in days if d is not None), default=None)
            message = (
                entry.get("message")
                or entry.get("error")
                or "; ".join(
                    str(problem) for c in certificates for problem in c.get("problems") or []
                )
            )
            if not message and value is not None and certificates:
                message = f"{value:g} days left"
            yield CheckReport(str(name), State[str(state)], value, str(message or ""))


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def textfile_path(directory: Path, task: str) -> Path:
    return directory / f"maint_{task.replace('.', '_').replace('-', '_')}.prom"


def write_textfile(
    directory: Path, task: str, hosts: Sequence[Mapping[str, Any]], finished: float
) -> Path:
    """Write TASK's per-host metrics as DIRECTORY/maint_<task>.prom for node_exporter.

    Hosts not in this run keep their earlier lines, and every host keeps its last success
    time, so a failed or --limit'ed run does not erase what an earlier one reported. The file
    is replaced atomically (node_exporter never reads half of it).
    """
    path = textfile_path(directory, task)
    registry = CollectorRegistry()
    metrics = TaskMetrics(registry)
    if path.exists():
        _restore(path.read_text(encoding="utf-8"), metrics, {str(host["host"]) for host in hosts})
    metrics.observe(task, hosts, finished)
    directory.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(path), registry)
    return path


def _restore(text: str, metrics: TaskMetrics, current_hosts: set[str]) -> None:
    gauges = {
        "maint_task_last_run_timestamp_seconds": metrics.last_run,
        "maint_task_last_duration_seconds": metrics.duration,
        "maint_task_size_bytes": metrics.size,
        "maint_task_days_left": metrics.days_left,
        "maint_check_state": metrics.check_state,
        "maint_check_value": metrics.check_value,
    }
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if sample.name == "maint_task_last_success_timestamp_seconds":
                metrics.last_success.labels(**labels).set(sample.value)
            elif labels.get("host") in current_hosts:
                continue
            elif sample.name in gauges:
                gauges[sample.name].labels(**labels).set(sample.value)
            elif sample.name == "maint_task_last_status" and sample.value == 1:
                # A file from before the label was `state` names it after the metric.
                state = labels.get("state") or labels.get("maint_task_last_status")
                if state in HOST_STATES:
                    metrics.status.set(state, labels["task"], labels["host"])
