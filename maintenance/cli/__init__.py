"""The command line: `maint` and tasks.py build the same task tree from these modules.

structlog imports rich, when it is installed, only to draw tracebacks on a terminal; maint
never shows one (a crash becomes a failed host with a one-line error), and on a 2-core
machine that import costs about 40 ms of every run. So the CLI has structlog import without
it: `rich` reads as absent while structlog loads, and is importable again right after.
"""

import sys

if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]
