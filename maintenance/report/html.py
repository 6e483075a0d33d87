"""The report as one self-contained HTML page: inline CSS, JS and SVG, nothing fetched.

The page is read from `file://`, mailed, archived and printed, so it carries everything it
shows; a Content-Security-Policy forbids any request besides the page itself, so a change that
reached for a font or a script from elsewhere would be refused by the browser. Every text
from the inventory or a store is escaped. A row's colour also reads as a word (OK, WARNING,
CRITICAL), for printers and readers that do not see colour. Sorting and the group filter are
a few lines of script; printing shows every row whatever the filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from ..units import format_duration, format_size
from .model import CRITICAL, OK, WARNING, BackupPoint, Maintenance, Report, Row, state_of_check

_WORDS = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL"}

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
.summary { font-size: 1.15em; margin: .4em 0 1em; }
.counts span { margin-right: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #eee; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; white-space: nowrap; }
tr.ok td.state { background: #c8efc8; }
tr.warning td.state { background: #ffe08a; }
tr.critical td.state { background: #f6b3b3; }
tr.ok { background: #f1fbf1; }
tr.warning { background: #fff8e1; }
tr.critical { background: #fdecec; }
.reasons { margin: 0; padding-left: 1.1em; }
svg.spark { vertical-align: middle; }
svg.spark polyline { fill: none; stroke: #2a6fb0; stroke-width: 1.5; }
.muted { color: #666; }
.check-ok { color: #1e7b1e; } .check-warning { color: #8a6100; } .check-critical { color: #b00; }
@media screen { tr.filtered { display: none; } }
@media print {
  .controls { display: none; }
  body { margin: 0; font-size: 10px; }
  tr { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

# Sort by a header's column (numbers as numbers, by each cell's data-sort), filter by group.
_JS = """
(function () {
  var table = document.getElementById("rows");
  var body = table.tBodies[0];
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
        other.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-sort");
        var y = b.cells[column].getAttribute("data-sort");
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return up ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  var select = document.getElementById("group");
  select.addEventListener("change", function () {
    var group = select.value;
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var groups = row.getAttribute("data-groups").split(" ");
      var hide = group !== "" && groups.indexOf(group) < 0;
      row.classList.toggle("filtered", hide);
      if (!hide) { shown += 1; }
    });
    var count = document.getElementById("shown");
    count.textContent = shown + " of " + body.rows.length + " rows shown";
  });
})();
"""

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)

_COLUMNS = (
    "State",
    "Host",
    "Name",
    "Newest backup",
    "Age / RPO",
    "Size",
    "Duration",
    "Newest passing drill",
    "Restore / RTO",
    "Reasons",
)


def render_html(report: Report, title: str = "Restore report") -> str:
    """REPORT as one HTML page that needs nothing else to be read or printed."""
    summary = report.summary()
    groups = sorted({group for row in report.rows for group in row.groups})
    options = "".join(f'<option value="{_e(g)}">{_e(g)}</option>' for g in groups)
    head = "".join(f'<th scope="col">{_e(name)}</th>' for name in _COLUMNS)
    rows = "\n".join(
        _row(row, state, reasons, report.generated) for row, state, reasons in report.states()
    )
    problems = "".join(f"<li>{_e(problem)}</li>" for problem in report.problems)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">Generated {_e(_stamp(report.generated))}. Red: no complete backup within the
RPO. Amber: backed up, but the drill is missing, failed, too old or over the RTO.</p>
<p class="summary" id="summary">{_e(summary["text"])}</p>
<p class="counts"><span class="check-ok">{summary[OK]} OK</span>
<span class="check-warning">{summary[WARNING]} WARNING</span>
<span class="check-critical">{summary[CRITICAL]} CRITICAL</span></p>
{f'<ul class="problems">{problems}</ul>' if problems else ""}
<p class="controls"><label for="group">Group</label>
<select id="group"><option value="">all groups</option>{options}</select>
<span id="shown" class="muted">{len(report.rows)} of {len(report.rows)} rows shown</span></p>
<table id="rows"><thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody></table>
{_maintenance(report.maintenance)}
<script>{_JS}</script>
</body></html>
"""


def _row(row: Row, state: str, reasons: Sequence[str], now: datetime) -> str:
    backup, drill, objectives = row.backup, row.last_passed, row.objectives
    age = _seconds_since(now, backup.time) if backup else None
    drill_age = _seconds_since(now, drill.time) if drill else None
    restore = drill.restore_time_s if drill else None
    rto = f" / {_words(objectives.rto.total_seconds())}" if objectives.rto else ""
    cells = [
        _cell(_WORDS[state], ["ok", "warning", "critical"].index(state), "state"),
        _cell(row.host, row.host),
        _cell(f"{row.name}" + (f" ({row.kind})" if row.kind != "postgres" else ""), row.name),
        _cell(_stamp(backup.time) if backup else "never", backup.time.timestamp() if backup else 0),
        _cell(
            f"{_words(age)} / {_words(objectives.rpo.total_seconds())}" if age is not None else "-",
            age if age is not None else 1e18,
            "num",
        ),
        _trend_cell(row.trend, "size"),
        _trend_cell(row.trend, "duration"),
        _cell(
            f"{_stamp(drill.time)} ({_words(drill_age or 0)} ago)" if drill else "never",
            drill_age if drill_age is not None else 1e18,
        ),
        _cell(
            f"{_words(restore)}{rto}" if restore is not None else "-",
            restore if restore is not None else -1,
            "num",
        ),
    ]
    items = "".join(f"<li>{_e(reason)}</li>" for reason in reasons)
    cells.append(f'<td data-sort="{_e(" ".join(reasons))}"><ul class="reasons">{items}</ul></td>')
    return (
        f'<tr class="{state}" data-state="{state}" data-host="{_e(row.host)}" '
        f'data-name="{_e(row.name)}" data-groups="{_e(" ".join(row.groups))}">{"".join(cells)}</tr>'
    )


def _cell(text: str, sort: object, css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return f'<td{attribute} data-sort="{_e(str(sort))}">{_e(text)}</td>'


def _trend_cell(trend: Sequence[BackupPoint], figure: str) -> str:
    """The newest backup's size (or duration) and a sparkline of the last ones."""
    values = [float(point.size) if figure == "size" else point.duration_s for point in trend]
    newest = values[-1] if values else None
    if newest is None:
        text = "-"
    else:
        text = format_size(int(newest)) if figure == "size" else _words(newest)
    points = [value for value in values if value is not None]
    title = f"{figure} of the last {len(points)} backups"
    spark = _sparkline(points, title) if len(points) > 1 else ""
    sort = newest if newest is not None else -1
    return f'<td class="num" data-sort="{sort}">{_e(text)} {spark}</td>'


def _sparkline(values: Sequence[float], title: str, width: int = 90, height: int = 18) -> str:
    """An inline SVG polyline of VALUES, oldest left, scaled to the row's own range."""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    coords = " ".join(
        f"{index * step:.1f},{height - 1 - (value - low) / span * (height - 2):.1f}"
        for index, value in enumerate(values)
    )
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>'
        f'<polyline points="{coords}"/></svg>'
    )


def _maintenance(records: dict[str, Maintenance] | None) -> str:
    """The scheduler's last runs and check states per host; nothing without a state store."""
    if records is None:
        return ""
    rows = []
    for host, entry in records.items():
        runs = ", ".join(
            f"{run.task} {run.status}" + (f" {_stamp(run.started)}" if run.started else "")
            for run in entry.runs
        )
        checks = " ".join(
            f'<span class="check-{state_of_check(check.state)}" title="{_e(check.message)}">'
            f"{_e(check.check)}: {_e(check.state)}</span>"
            for check in entry.checks
        )
        rows.append(
            f"<tr><td>{_e(host)}</td><td>{_e(runs) or '-'}</td><td>{checks or '-'}</td></tr>"
        )
    return (
        '<h2>Maintenance</h2><p class="muted">Last run of each task and the checks\' states, '
        "as the scheduler recorded them; they do not change a row's colour.</p>"
        '<table id="maintenance"><thead><tr><th>Host</th><th>Last runs</th><th>Checks</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _seconds_since(now: datetime, time: datetime) -> float:
    """Seconds from TIME to NOW; 0 for a time a little ahead of this clock (within skew)."""
    return max((now - time).total_seconds(), 0.0)


def _words(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(seconds)


def _stamp(time: datetime) -> str:
    return time.strftime("%Y-%m-%d %H:%MZ")


def _e(text: str) -> str:
    return escape(text, quote=True)
