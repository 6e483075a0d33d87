"""The `command` probe: a command line, graded as a monitoring plugin (exit code 0 OK,
1 WARNING, 2 CRITICAL, anything else UNKNOWN; its first line of output is the message) or,
when `warn` or `crit` is set, by the number it prints.

It runs on the control machine (`via: control`, through a local runner: the same process
group and timeout handling as a host's commands) or on the host through its runner.
"""

from __future__ import annotations

from ..errors import CommandTimeout
from ..monitoring import Check, State
from ..runners import LocalRunner, Runner
from ..settings.probes import CommandProbe
from .base import ProbeContext, graded, measured

_PLUGIN_STATES = {0: State.OK, 1: State.WARNING, 2: State.CRITICAL}


def probe(settings: CommandProbe, context: ProbeContext) -> Check:
    runner: Runner = context.runner if settings.via == "host" else LocalRunner(context.host)
    try:
        done = runner.run(settings.command, timeout=settings.timeout)
    except CommandTimeout:
        return Check(settings.name, State.CRITICAL, f"timed out after {settings.timeout:g}s")
    output = _first_line(done.stdout) or _first_line(done.stderr)
    if settings.warn is None and settings.crit is None:
        state = _PLUGIN_STATES.get(done.exit_code, State.UNKNOWN)
        return Check(settings.name, state, output or f"exit code {done.exit_code}", done.exit_code)
    if done.exit_code != 0:
        return Check(settings.name, State.UNKNOWN, f"exit code {done.exit_code}: {output}")
    try:
        value = float(output.split()[0])
    except (IndexError, ValueError):
        return Check(settings.name, State.UNKNOWN, f"expected a number, got {output!r}")
    number = int(value) if value.is_integer() else value
    state = graded(value, settings.warn, settings.crit, settings.worse)
    message = measured(number, settings.warn, settings.crit)
    return Check(settings.name, state, message, number, settings.warn, settings.crit)


def _first_line(text: str) -> str:
    """The first line of TEXT without a plugin's perfdata (after `|`)."""
    lines = text.strip().splitlines()
    return lines[0].split("|", 1)[0].strip() if lines else ""
