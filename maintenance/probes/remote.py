"""Running a fetch function of maintenance.probes.fetch where the probe says: here, or on
the host (`via: host`) as `python3 -I -S -c` with the module's source, the request on stdin
(it may hold header values: never on a command line) and the answer as JSON on stdout."""

from __future__ import annotations

import inspect
import io
import json
import shlex
from collections.abc import Callable
from typing import Any

from ..errors import CommandError, CommandTimeout
from ..settings.probes import ProbeBase
from . import fetch
from .base import ProbeContext

Fetch = Callable[[dict[str, Any]], dict[str, Any]]

# Time for python3 to start on the host and SSH to carry the answer back, past the probe's own.
_START_S = 1.0


def fetched(
    function: Fetch, request: dict[str, Any], probe: ProbeBase, context: ProbeContext
) -> dict[str, Any]:
    """FUNCTION(REQUEST) run where PROBE runs. Raise CommandError when the host cannot run it."""
    if probe.via == "control":
        return function(request)
    script = (
        f"{inspect.getsource(fetch)}\n"
        "import json, sys\n"
        f"print(json.dumps({function.__name__}(json.load(sys.stdin))))\n"
    )
    try:
        done = context.runner.run(
            f"python3 -I -S -c {shlex.quote(script)}",  # no site or user packages: stdlib only
            stdin=io.BytesIO(json.dumps(request).encode()),
            timeout=probe.timeout + _START_S,
        )
    except CommandTimeout:
        return {"error": f"timed out after {probe.timeout:g}s (on the host)"}
    if done.exit_code != 0:
        raise CommandError(
            f"cannot probe from the host (python3 is needed there): exit {done.exit_code}: "
            f"{done.stderr.strip()[-300:]}"
        )
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer
