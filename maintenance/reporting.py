"""End-of-task output: a summary table on a terminal, one JSON document with --json, exit codes."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from .results import Result, Status
from .secrets import mask_value

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def summary_counts(results: Sequence[Result]) -> dict[str, int]:
    counts = Counter(str(result.status) for result in results)
    return {str(status): counts.get(str(status), 0) for status in Status}


def document(task: str, results: Sequence[Result]) -> dict[str, Any]:
    """The --json document of DESIGN.md, secrets masked."""
    return mask_value(
        {
            "task": task,
            "results": [result.to_dict() for result in results],
            "summary": summary_counts(results),
        }
    )


def render_table(task: str, results: Sequence[Result]) -> str:
    """A fixed-width table: host, status, duration, and the summary or error of each host."""
    rows = [("HOST", "STATUS", "TIME", "DETAIL")]
    for result in results:
        detail = result.error if result.error else result.summary
        rows.append(
            (
                result.host,
                str(result.status),
                f"{result.duration_s:.1f}s",
                (detail or "").replace("\n", " "),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    counts = summary_counts(results)
    lines.append(f"{task}: " + ", ".join(f"{count} {status}" for status, count in counts.items()))
    return "\n".join(line.rstrip() for line in lines)


def render_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain table of ROWS (a procedure's `details["rows"]`), with the given COLUMNS."""
    cells = [list(columns)] + [[str(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def exit_code(results: Sequence[Result]) -> int:
    """0 when every host is ok, changed or skipped; 1 when any failed or was unreachable."""
    bad = {Status.FAILED, Status.UNREACHABLE}
    return EXIT_FAILED if any(result.status in bad for result in results) else EXIT_OK


def emit(
    task: str,
    results: Sequence[Result],
    *,
    as_json: bool,
    out: TextIO | None = None,
    columns: Sequence[str] = (),
) -> None:
    """Print the task's report on stdout: the JSON document, or per-host rows then the table.

    COLUMNS names the fields of `details["rows"]` worth showing on a terminal, if any.
    """
    out = out or sys.stdout
    if as_json:
        out.write(json.dumps(document(task, results), indent=2, default=str) + "\n")
    else:
        for result in results:
            rows = result.details.get("rows") if columns else None
            if rows:
                out.write(f"== {result.host}\n{render_rows(rows, columns)}\n\n")
        out.write(render_table(task, results) + "\n")
    out.flush()
