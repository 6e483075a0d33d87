"""Runs on the host as `python3 -I -S -c` (stdlib only, any Python 3.6+): the SQLite side of
a sqlite source. Not imported by the product; its source text is sent.

`snapshot PATH TMP_DIR`: SQLite's online backup API copies PATH into a private file in TMP_DIR
in one step, under one read transaction, so the copy is consistent while the application
writes (in WAL mode the writer never waits; in rollback mode it waits for the step). Prints
{"copy", "counts", "version"}: the counts are the copy's, so they are the snapshot's.

`check PATH`: PRAGMA integrity_check and the row counts of the file at PATH.
"""

import json
import os
import sqlite3
import sys
import tempfile
from urllib.parse import quote


def read_only(path):
    return sqlite3.connect("file:" + quote(path) + "?mode=ro", uri=True, timeout=60)


def counts(connection):
    names = [
        row[0]
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]
    quoted = {name: '"' + name.replace('"', '""') + '"' for name in names}
    return {
        name: connection.execute("SELECT count(*) FROM " + quoted[name]).fetchone()[0]  # noqa: S608 - a quoted identifier
        for name in names
    }


def snapshot(path, tmp_dir):
    if not os.path.isfile(path):
        sys.exit("no SQLite database at " + path)
    os.umask(0o077)
    handle, copy = tempfile.mkstemp(prefix="maint-sqlite-", suffix=".db", dir=tmp_dir)
    os.close(handle)
    try:
        source = read_only(path)
        target = sqlite3.connect(copy)
        source.backup(target)
        source.close()
        found = counts(target)
        target.close()
    except BaseException:
        os.unlink(copy)
        raise
    return {"copy": copy, "counts": found, "version": sqlite3.sqlite_version}


def check(path):
    connection = read_only(path)
    problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
    result = {"integrity": problems, "counts": counts(connection)}
    connection.close()
    return result


def main(argv):
    try:
        result = snapshot(argv[1], argv[2]) if argv[0] == "snapshot" else check(argv[1])
    except sqlite3.Error as exc:
        sys.exit("sqlite: " + str(exc))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
