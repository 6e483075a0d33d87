"""Compressing a dump on the host that makes it, so only compressed bytes cross the network.

For an SSH host whose PATH has zstd, the dump command's stdout is piped into zstd there and the
control machine receives the stored bytes as they are: it hashes and counts them, and
decompresses them (about a tenth of compression's CPU) only to count the raw bytes and follow
the archive's table of contents for the manifest's data offsets. The stored object is a zstd
frame like the one compressed here, so its key, manifest and restores do not change.

A host without zstd, the `gz` and `none` codecs, and the local host (where both ends are this
machine) keep compressing on the control machine.
"""

from __future__ import annotations

import weakref

from maintenance.runners import LocalRunner, Runner

from .codecs import ZSTD_LEVEL

# zstd's --ultra range starts above 19; the settings never ask for it (settings/backup.py).
_ULTRA = 19

_FOUND: weakref.WeakKeyDictionary[Runner, bool] = weakref.WeakKeyDictionary()


def compresses_on_host(runner: Runner, codec: str) -> bool:
    """Whether a dump on RUNNER's host is compressed there: a zstd backup over SSH to a host
    with zstd on PATH. The host is asked once per runner (one run of a host)."""
    if codec != "zst" or isinstance(runner, LocalRunner):
        return False
    if runner not in _FOUND:
        _FOUND[runner] = runner.run("command -v zstd >/dev/null").ok
    return _FOUND[runner]


def piped_into_zstd(command: str, level: int | None) -> str:
    """A POSIX sh script running COMMAND with its stdout compressed by the host's zstd.

    dash has no `pipefail`, so COMMAND's exit status comes back through a pipe of its own
    (descriptor 3, read by the command substitution) while zstd writes to the real stdout
    (kept as descriptor 4); COMMAND runs in a subshell that holds neither. The script exits
    with COMMAND's status when it failed, else zstd's. COMMAND's stderr is untouched.
    """
    level = level or ZSTD_LEVEL
    zstd = f"zstd -q -c -T0 {'--ultra ' if level > _ULTRA else ''}-{level}"
    return (
        "exec 4>&1; "
        f"status=$( {{ {{ ( {command}\n) 3>&- 4>&-; echo $? >&3; }} | {zstd} >&4 3>&- 4>&-; }}"
        " 3>&1 ); "
        "compressed=$?; "
        'case $status in 0) exit $compressed ;; "") exit 1 ;; *) exit $status ;; esac'
    )
