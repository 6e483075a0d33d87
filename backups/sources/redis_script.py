"""Runs on the host as `python3 -I -S -c` (stdlib only, any Python 3.7+): the Redis side of a
redis source. Not imported by the product; its source text is sent. The password comes in
REDISCLI_AUTH (as redis-cli takes it), never as an argument.

`dump COUNTS HOST PORT TLS USER PAUSE_MS`: streams an RDB snapshot to stdout by the
replication protocol, as `redis-cli --rdb` does, and writes the keys per logical database at
that snapshot to the file COUNTS as JSON. For the counts to be the snapshot's, writes are
paused (`CLIENT PAUSE WRITE`, which also holds back expiry and eviction) from the INFO that
counts the keys until the server has forked the child writing the snapshot: the server
answers PSYNC with +FULLRESYNC once that child runs. Clients that write wait that long (a few
milliseconds; the fork's time), they are not refused. The replica does not offer diskless
sync unless the server starts one at once (repl-diskless-sync-delay 0); otherwise the server
would wait that delay (5 s by default) for other replicas before forking, with writes paused.
Without diskless sync it forks at once but writes the snapshot to its own `dir` first, as
BGSAVE does, and sends it when complete: slower for large datasets (see docs/backups.md).
The script waits for any BGSAVE or AOF rewrite child to end before pausing; if the pause still
ran out before the fork, it fails rather than record counts that may not be the snapshot's.

`drill PATH`: starts a throwaway redis-server on a private unix socket (no TCP port) loading
the RDB at PATH, reads its keys per database and shuts it down. It runs as a replica of an
unreachable master, because a master drops keys whose TTL passed while loading and a replica
keeps them: the keys counted are the snapshot's, however old it is. Prints {"counts",
"error", "version"}.
"""

import contextlib
import fcntl
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

CHUNK = 1024 * 1024
F_SETPIPE_SZ = 1031  # from linux/fcntl.h; Python's fcntl names it from 3.10 on


class Connection:
    """One RESP connection: commands out, replies in (enough of RESP2 for this script)."""

    def __init__(self, sock):
        self.sock = sock
        self.reader = sock.makefile("rb")

    def call(self, *words):
        self.send(*words)
        return self.reply()

    def send(self, *words):
        encoded = [word.encode() if isinstance(word, str) else word for word in words]
        message = b"*%d\r\n" % len(encoded)
        for word in encoded:
            message += b"$%d\r\n%s\r\n" % (len(word), word)
        self.sock.sendall(message)

    def line(self):
        line = self.reader.readline()
        if not line:
            raise RuntimeError("the server closed the connection")
        return line.rstrip(b"\r\n")

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RuntimeError(rest.decode("utf-8", "replace"))
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.reader.read(size + 2)[:-2].decode()
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        return rest.decode("utf-8", "replace")


def connect(host, port, use_tls, user, password):
    sock = socket.create_connection((host, int(port)), timeout=60)
    if use_tls == "1":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    connection = Connection(sock)
    if password is not None:
        connection.call("AUTH", *([user] if user else []), password)
    return connection


def keyspace(info):
    """{"db0": keys, ...} from INFO keyspace's text."""
    counts = {}
    for line in info.splitlines():
        if line.startswith("db") and ":" in line:
            name, fields = line.split(":", 1)
            values = dict(field.split("=", 1) for field in fields.split(","))
            counts[name] = int(values["keys"])
    return counts


def info_field(info, name):
    for line in info.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def starts_diskless_at_once(control):
    """True when the server streams a snapshot to a replica offering diskless sync as soon as
    it asks (repl-diskless-sync yes, repl-diskless-sync-delay 0): the RDB is then written to
    the socket while it is made, not to the server's disk first. With a delay, the fork would
    wait for it, and so would the paused writes. A user without CONFIG rights gets the disk
    transfer."""
    try:
        pairs = control.call("CONFIG", "GET", "repl-diskless-sync*")
    except RuntimeError:
        return False
    config = dict(zip(pairs[::2], pairs[1::2]))  # noqa: B905 (3.10+)
    return (
        config.get("repl-diskless-sync") == "yes" and config.get("repl-diskless-sync-delay") == "0"
    )


def widen_pipe(fd):
    """Let the pipe at FD hold CHUNK bytes (Linux; 64 KiB by default): fewer, larger reads
    and writes, and fewer wake-ups of the processes on either side."""
    with contextlib.suppress(OSError):  # not a pipe, or above pipe-max-size: kept as it is
        fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)


def copy_length(reader, left):
    """Copy the LEFT bytes of a snapshot sent from the server's disk to stdout."""
    out = sys.stdout.buffer
    while left:
        chunk = reader.read1(min(CHUNK, left))
        if not chunk:
            sys.exit(f"the server closed the connection {left} bytes before the end")
        out.write(chunk)
        left -= len(chunk)
    out.flush()


def copy_until_mark(reader, mark):
    """Copy a diskless snapshot to stdout: it ends with MARK (40 random characters, as the
    server announced), which is not part of it."""
    out = sys.stdout.buffer
    tail = b""
    while True:
        chunk = reader.read1(CHUNK)
        if not chunk:
            sys.exit("the server closed the connection before the end of the snapshot")
        data = tail + chunk
        out.write(data[: -len(mark)])
        tail = data[-len(mark) :]
        if tail == mark:
            out.flush()
            return


def wait_for_no_child(control, timeout=600):
    """Wait until the server runs no BGSAVE, AOF rewrite or module child: with one busy, a
    snapshot would wait for it while writes are paused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = control.call("INFO", "persistence")
        busy = ("rdb_bgsave_in_progress", "aof_rewrite_in_progress", "module_fork_in_progress")
        if all(info_field(info, name) in ("0", "") for name in busy):
            return
        time.sleep(0.1)
    sys.exit("the server was busy with a child process (BGSAVE, AOF rewrite) for too long")


def dump(counts_path, host, port, use_tls, user, pause_ms):
    password = os.environ.get("REDISCLI_AUTH")
    control = connect(host, port, use_tls, user, password)
    replica = connect(host, port, use_tls, user, password)
    version = info_field(control.call("INFO", "server"), "redis_version")
    # Redis 7: no command stream after the snapshot; older servers send one, which is not read
    with contextlib.suppress(RuntimeError):
        replica.call("REPLCONF", "rdb-only", "1")
    diskless = starts_diskless_at_once(control)
    if diskless:
        replica.call("REPLCONF", "capa", "eof")
    wait_for_no_child(control)
    control.call("CLIENT", "PAUSE", pause_ms, "WRITE")
    paused = time.monotonic()
    try:
        counts = keyspace(control.call("INFO", "keyspace"))
        replica.send("PSYNC", "?", "-1")
        answer = replica.line()
        in_time = time.monotonic() - paused < int(pause_ms) / 1000.0
    finally:
        control.call("CLIENT", "UNPAUSE")
    if not answer.startswith(b"+FULLRESYNC"):
        sys.exit("the server refused the snapshot: " + answer.decode("utf-8", "replace"))
    if not in_time:
        sys.exit(
            "the server did not fork its snapshot within " + pause_ms + " ms of pausing"
            " writes (another child process was busy): keys not counted, try again"
        )
    widen_pipe(sys.stdout.fileno())
    header = replica.line()
    while not header:  # newlines keep the connection alive until the snapshot is written
        header = replica.line()
    if header.startswith(b"$EOF:") and diskless:
        copy_until_mark(replica.reader, header[5:])
    elif header.startswith(b"$") and header[1:].isdigit():
        copy_length(replica.reader, int(header[1:]))
    else:
        sys.exit("unexpected snapshot header " + repr(header[:60]))
    with open(counts_path, "w") as handle:
        json.dump({"counts": counts, "version": version}, handle)


def drill(path):
    server = shutil.which("redis-server")
    if server is None:
        return {"counts": {}, "error": "redis-server is not installed on this host"}
    workdir = tempfile.mkdtemp(prefix="maint-redis-drill-")
    try:
        return _loaded(server, path, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _loaded(server, path, workdir):
    socket_path = os.path.join(workdir, "redis.sock")
    log = os.path.join(workdir, "redis.log")
    os.symlink(os.path.abspath(path), os.path.join(workdir, "dump.rdb"))
    process = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", socket_path, "--unixsocketperm", "700",
         "--dir", workdir, "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
         "--replicaof", "127.0.0.1", "1", "--logfile", log],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        info = _info_once_loaded(process, socket_path)
        if info is None:
            with open(log, errors="replace") as handle:
                tail = " ".join(handle.read().splitlines()[-2:])
            return {"counts": {}, "error": "redis-server did not load the snapshot: " + tail}
        return {
            "counts": keyspace(info),
            "error": None,
            "version": info_field(info, "redis_version"),
        }
    finally:
        process.kill()
        process.wait()


def _info_once_loaded(process, socket_path):
    """INFO of the throwaway server once it has loaded the snapshot; None if it exited."""
    while process.poll() is None:
        try:
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(socket_path)
        except OSError:
            time.sleep(0.02)
            continue
        connection = Connection(sock)
        try:
            info = connection.call("INFO", "all")
        except (RuntimeError, OSError):  # LOADING, or it failed to load and exits
            time.sleep(0.05)
            continue
        finally:
            sock.close()
        if info_field(info, "loading") == "0":
            return info
        time.sleep(0.05)
    return None


def main(argv):
    if argv[0] == "dump":
        try:
            dump(*argv[1:])
        except (OSError, RuntimeError) as exc:
            sys.exit("redis: " + str(exc))
    else:
        print(json.dumps(drill(argv[1])))


if __name__ == "__main__":
    main(sys.argv[1:])
