"""Runs on the host as `python3 -I -S -c` (stdlib only, any Python 3.7+): the MariaDB/MySQL
side of a mysql source. Not imported by the product; its source text is sent. The password
comes in MYSQL_PWD, which the clients read themselves; it is never an argument.

`dump COUNTS DATABASE CLIENT_ARGS...`: runs mariadb-dump (or mysqldump) --single-transaction
on DATABASE and copies its output to stdout, counting the rows of every table as they pass;
the counts go to the file COUNTS as JSON once the dump has succeeded. Counting the dump's
own INSERT statements makes the counts exactly the snapshot's (the one transaction the dump
read in), with no second session and no lock.

`drill PATH SCRATCH CLIENT_ARGS...`: creates the database SCRATCH, loads the dump at PATH into
it with the mariadb (or mysql) client, counts every table's rows and drops SCRATCH whatever
happened. Prints {"counts", "error"}.

`restore PATH DATABASE CLIENT_ARGS...`: loads the dump at PATH into DATABASE (made when
missing). Prints {"error"}. `tables DATABASE CLIENT_ARGS...`: prints {"tables"}, DATABASE's
base tables. `versions CLIENT_ARGS...`: prints {"server", "tool"}.

CLIENT_ARGS are the connection options (--host, --port, --user), the same for every client.
"""

import contextlib
import fcntl
import json
import re
import shutil
import subprocess
import sys

CHUNK = 1024 * 1024
F_SETPIPE_SZ = 1031  # from linux/fcntl.h; Python's fcntl names it from 3.10 on
# mysqldump and mariadb-dump write a table's rows as INSERT (or REPLACE) statements. MariaDB
# 10.11 puts each row on a line of its own after a line ending in VALUES; older ones and
# MySQL write a statement on one line. A raw newline never occurs inside a value (it is
# written as \n), so lines are safe boundaries.
#
# MARK finds the next thing that matters to the counter, at a line's start: a data statement
# (its table, and whether its rows follow one per line), a table's definition (tables without
# rows count 0), or a DELIMITER line (routines, triggers and events sit between DELIMITER ;;
# and DELIMITER ; and their bodies may hold INSERT statements that are not data).
MARK = re.compile(
    rb"^(?:"
    rb"(?:INSERT(?: IGNORE)?|REPLACE) INTO `(?P<data>(?:[^`\n]|``)+)`(?: \([^\n]*?\))? VALUES"
    rb"(?P<layout>\n| )"
    rb"|CREATE TABLE `(?P<table>(?:[^`\n]|``)+)` \("
    rb"|DELIMITER (?P<delimiter>\S+)$"
    rb")",
    re.M,
)
DELIMITER = re.compile(rb"^DELIMITER (\S+)$", re.M)
# A statement's last line ends with ';' (rows' lines with ','); re finds it about three times
# as fast as bytes.find does.
STATEMENT_END = re.compile(rb";\n")


class RowCounter:
    """Counts each table's rows in a dump fed in chunks of any size."""

    def __init__(self):
        self.counts = {}
        self._pending = b""
        self._table = None  # inside a statement with one row per line: its table
        self._in_routines = False

    def feed(self, chunk):
        data = self._pending + chunk
        end = data.rfind(b"\n") + 1  # only whole lines are read
        self._pending = data[end:]
        position = 0
        while position < end:
            if self._table is not None:
                position = self._rows_per_line(data, position, end)
            elif self._in_routines:
                found = DELIMITER.search(data, position, end)
                if found is None:
                    return
                self._in_routines = found.group(1) != b";"
                position = found.end()
            else:
                position = self._statement(data, position, end)

    def _rows_per_line(self, data, position, end):
        finish = STATEMENT_END.search(data, position, end)
        stop = end if finish is None else finish.end()
        self.counts[self._table] += data.count(b"\n", position, stop)
        if finish is not None:
            self._table = None
        return stop

    def _statement(self, data, position, end):
        """Read the next data statement, table or DELIMITER after POSITION; return where
        reading goes on."""
        mark = MARK.search(data, position, end)
        if mark is None:
            return end
        if mark.group("delimiter") is not None:
            self._in_routines = mark.group("delimiter") != b";"
            return mark.end()
        table = _name(mark.group("data") or mark.group("table"))
        self.counts.setdefault(table, 0)
        if mark.group("table") is not None:
            return mark.end()
        if mark.group("layout") == b"\n":
            self._table = table
            return mark.end()
        line_end = data.index(b"\n", mark.end()) + 1
        self.counts[table] += tuples(data[mark.end() : line_end])
        return line_end


def _name(quoted_name):
    return quoted_name.replace(b"``", b"`").decode("utf-8", "replace")


def tuples(values):
    """The number of rows in VALUES, `(...),(...);`: the `),(` outside quoted strings, plus
    one. Escaped characters are removed first, so every quote left opens or closes a string."""
    plain = values.replace(b"\\\\", b"").replace(b"\\'", b"")
    return b"".join(plain.split(b"'")[::2]).count(b"),(") + 1


def widen_pipe(fd):
    """Let the pipe at FD hold CHUNK bytes (Linux; 64 KiB by default): fewer, larger reads
    and writes, and fewer wake-ups of the processes on either side."""
    with contextlib.suppress(OSError):  # not a pipe, or above pipe-max-size: kept as it is
        fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)


def tool(*names):
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    sys.exit("none of " + ", ".join(names) + " is installed on this host")


def dump(counts_path, database, client_args):
    command = [tool("mariadb-dump", "mysqldump"), *client_args]
    command += ["--single-transaction", "--routines", "--events", "--triggers", "--", database]
    counter = RowCounter()
    out = sys.stdout.buffer
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    widen_pipe(process.stdout.fileno())
    widen_pipe(out.fileno())
    while True:
        chunk = process.stdout.read1(CHUNK)
        if not chunk:
            break
        out.write(chunk)
        counter.feed(chunk)
    out.flush()
    status = process.wait()
    if status:
        sys.exit(status)
    with open(counts_path, "w") as handle:
        json.dump(counter.counts, handle)


def sql(client_args, statement, database=None):
    command = [tool("mariadb", "mysql"), *client_args, "--batch", "--skip-column-names"]
    command += ["--database=" + database] if database else []
    done = subprocess.run(command, input=statement.encode(), capture_output=True)
    if done.returncode:
        raise RuntimeError(done.stderr.decode("utf-8", "replace").strip())
    return [line.split("\t") for line in done.stdout.decode("utf-8").splitlines()]


def quoted(name):
    return "`" + name.replace("`", "``") + "`"


def tables(client_args, database):
    """The base tables of DATABASE (none when it does not exist)."""
    # The name as a hex literal: nothing to escape, whatever the server's sql_mode.
    name = "CONVERT(X'" + database.encode("utf-8").hex() + "' USING utf8mb4)"
    found = sql(
        client_args,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = "  # noqa: S608
        + name
        + " AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    return [row[0] for row in found]


def table_counts(client_args, database):
    names = tables(client_args, database)
    if not names:
        return {}
    # One statement, one round trip, rows in the order of NAMES; names are quoted identifiers.
    union = " UNION ALL ".join("SELECT COUNT(*) FROM " + quoted(name) for name in names)  # noqa: S608
    found = sql(client_args, union, database)
    return {name: int(row[0]) for name, row in zip(names, found)}  # noqa: B905 (3.10+)


def drill(path, scratch, client_args):
    result = {"counts": {}, "error": None}
    try:
        sql(client_args, "CREATE DATABASE " + quoted(scratch))
    except RuntimeError as exc:
        result["error"] = "cannot create the scratch database: " + str(exc)
        return result
    try:
        result["error"] = load(client_args, path, scratch)
        if result["error"] is None:
            result["counts"] = table_counts(client_args, scratch)
    except RuntimeError as exc:
        result["error"] = str(exc)
    finally:
        try:
            sql(client_args, "DROP DATABASE IF EXISTS " + quoted(scratch))
        except RuntimeError as exc:
            result["error"] = (result["error"] or "") + "; cannot drop it: " + str(exc)
    return result


def load(client_args, path, database):
    """Load the dump at PATH into DATABASE; the client's stderr when it fails, else None."""
    with open(path, "rb") as dump_file:
        loaded = subprocess.run(
            [tool("mariadb", "mysql"), *client_args, "--database=" + database],
            stdin=dump_file,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    if loaded.returncode:
        error = loaded.stderr.decode("utf-8", "replace").strip()
        return "the client exited " + str(loaded.returncode) + ": " + error
    return None


def restore(path, database, client_args):
    try:
        sql(client_args, "CREATE DATABASE IF NOT EXISTS " + quoted(database))
    except RuntimeError as exc:
        return {"error": str(exc)}
    return {"error": load(client_args, path, database)}


def versions(client_args):
    """The server's version (which also proves the connection and password) and the dump
    tool's."""
    try:
        server = sql(client_args, "SELECT VERSION()")[0][0]
    except RuntimeError as exc:
        sys.exit(str(exc))
    done = subprocess.run([tool("mariadb-dump", "mysqldump"), "--version"], stdout=subprocess.PIPE)
    return {"server": server, "tool": done.stdout.decode("utf-8", "replace").strip()}


def main(argv):
    mode, args = argv[0], argv[1:]
    if mode == "dump":
        dump(args[0], args[1], args[2:])
    elif mode == "drill":
        print(json.dumps(drill(args[0], args[1], args[2:])))
    elif mode == "restore":
        print(json.dumps(restore(args[0], args[1], args[2:])))
    elif mode == "tables":
        print(json.dumps({"tables": tables(args[1:], args[0])}))
    else:
        print(json.dumps(versions(args)))


if __name__ == "__main__":
    main(sys.argv[1:])
