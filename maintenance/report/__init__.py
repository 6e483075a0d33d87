"""`maint report`: one page that says whether every database can be restored, and how fast."""

from .collect import build_report
from .fleet import fleet_report, report_page
from .html import render_html
from .model import CRITICAL, OK, WARNING, Report, Row

__all__ = [
    "CRITICAL",
    "OK",
    "WARNING",
    "Report",
    "Row",
    "build_report",
    "fleet_report",
    "render_html",
    "report_page",
]
