"""Broken `report` settings through the real `maint report`, refused before anything is read.

Exit 2, the host or group and the key path, no traceback, no page written.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from maintenance.settings.report import ReportSettings
from tests.settings_cases import Case, assert_refused

REPORT = ("report",)


def report(**keys: object) -> dict[str, object]:
    return {"report": keys}


CASES = [
    Case("report-typo", report(rp="26h"),
         "report.rp: unknown key 'rp'; did you mean 'rpo'?", REPORT),
    Case("report-top-level-typo", {"reprot": {"rpo": "26h"}},
         "reprot: unknown key; did you mean 'report'?", REPORT),
    Case("report-wrong-unit", report(rpo="26 hors"),
         "report.rpo: unknown unit 'hors' in '26 hors' (use s, min, h, d, w, mo, y)", REPORT),
    Case("report-words", report(drill_max_age="weekly"),
         "report.drill_max_age: expected a duration like 30s", REPORT, on_group=True),
    Case("report-zero-rpo", report(rpo=0),
         "report.rpo: must be longer than zero", REPORT),
    Case("report-zero-rto", report(rto="0min"),
         "report.rto: must be longer than zero", REPORT, on_group=True),
    Case("report-negative", report(drill_max_age=-5),
         "report.drill_max_age: a duration cannot be negative", REPORT),
    Case("report-absurd", report(rpo="99999999999y"),
         "report.rpo: too long: at most 1000 years", REPORT),
    Case("report-bool", report(rto=True),
         "report.rto: expected a duration", REPORT),
    Case("report-not-a-mapping", {"report": "daily"},
         "report: expected a mapping of keys, got the string 'daily'", REPORT),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_broken_report_setting_is_refused(tmp_path: Path, case: Case, monkeypatch) -> None:
    """Exit 2 naming the host or group and the key; no page is written."""
    monkeypatch.chdir(tmp_path)
    assert_refused(tmp_path, case, "report")
    assert not (tmp_path / "maint-report.html").exists()


def test_defaults_and_units() -> None:
    """26h and 8d by default, no rto; compound durations and minutes are read as written."""
    defaults = ReportSettings()
    assert (defaults.rpo, defaults.drill_max_age, defaults.rto) == (
        timedelta(hours=26),
        timedelta(days=8),
        None,
    )
    given = ReportSettings(rpo="1d2h", drill_max_age="2w", rto="45min")
    assert (given.rpo, given.drill_max_age, given.rto) == (
        timedelta(hours=26),
        timedelta(weeks=2),
        timedelta(minutes=45),
    )
