"""Restoring some tables of a full custom-format dump: pg_restore's `--use-list`, made from the TOC.

`pg_restore -t purchase` (the runbooks' way) restores the table and its rows but none of its
indexes, constraints, defaults or triggers, and cannot name a schema. The archive's table of
contents says what depends on what, so the list here holds each chosen table, its data, and
every index, constraint, default, trigger, policy and comment that depends on it, with the
sequences it owns (their definitions and current values). Foreign keys of the chosen tables
come with them (the tables they reference must exist in the target); those of other tables
that reference them do not.
"""

from __future__ import annotations

import io

from backups.archive.toc import MAX_TOC_BYTES, ArchiveError, Toc, TocEntry, toc_if_complete
from maintenance.errors import MaintError
from maintenance.runners import Runner
from maintenance.tablenames import Table

# Entries that belong to the table they depend on; those in _NAMED_BY_TABLE carry that
# table's name first in their tag ("purchase purchase_pkey"): a foreign key depends on the
# table it references too, and belongs only to the one it is on.
_WITH_TABLE = frozenset({
    "TABLE DATA", "INDEX", "CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "DEFAULT",
    "TRIGGER", "POLICY", "ROW SECURITY", "RULE", "COMMENT", "STATISTICS", "SEQUENCE",
})  # fmt: skip
_NAMED_BY_TABLE = frozenset({
    "CONSTRAINT", "FK CONSTRAINT", "CHECK CONSTRAINT", "DEFAULT", "TRIGGER", "POLICY", "RULE",
})  # fmt: skip
_FIRST_READ = 1024 * 1024


def read_toc(runner: Runner, path: str) -> Toc:
    """The TOC of the dump at PATH on the runner's host, reading no more of it than needed."""
    size = _FIRST_READ
    while True:
        buffer = io.BytesIO()
        result = runner.stream(["head", "-c", str(size), path], stdout=buffer)
        if result.exit_code != 0:
            raise MaintError(f"cannot read {path}: {result.stderr.strip()}")
        head = buffer.getvalue()
        try:
            toc = toc_if_complete(head)
        except ArchiveError as exc:
            raise MaintError(f"{path}: {exc}") from None
        if toc is not None:
            return toc
        if len(head) < size or size >= MAX_TOC_BYTES:
            raise MaintError(f"{path}: the archive ends inside its table of contents")
        size *= 4


def table_entries(toc: Toc, tables: list[Table]) -> list[TocEntry]:
    """TOC's entries that restore TABLES with what belongs to them, in archive order.

    Raise MaintError naming a table the archive does not hold.
    """
    ids = {
        entry.dump_id: (entry.namespace, entry.tag)
        for entry in toc.entries
        if entry.desc == "TABLE" and (entry.namespace, entry.tag) in tables
    }
    missing = [f"{schema}.{name}" for schema, name in tables if (schema, name) not in ids.values()]
    if missing:
        raise MaintError(f"the backup holds no table {', '.join(missing)}")
    chosen = set(ids)
    for entry in toc.entries:
        if entry.desc in _WITH_TABLE and any(
            _belongs(entry, ids[i]) for i in entry.dependencies if i in ids
        ):
            chosen.add(entry.dump_id)
    sequences = {e.dump_id for e in toc.entries if e.desc == "SEQUENCE" and e.dump_id in chosen}
    for entry in toc.entries:  # serial and identity sequences: ownership and current value
        if entry.desc in ("SEQUENCE OWNED BY", "SEQUENCE SET") and sequences.intersection(
            entry.dependencies
        ):
            chosen.add(entry.dump_id)
    return [entry for entry in toc.entries if entry.dump_id in chosen]


def _belongs(entry: TocEntry, table: Table) -> bool:
    """Whether ENTRY, which depends on TABLE, is one of TABLE's own objects."""
    if entry.desc not in _NAMED_BY_TABLE:
        return True
    return entry.namespace == table[0] and entry.tag.startswith(table[1] + " ")


def use_list(entries: list[TocEntry]) -> bytes:
    """A `pg_restore --use-list` file naming ENTRIES (pg_restore reads the id before ';')."""
    lines = [f"{e.dump_id}; {e.desc} {e.namespace} {e.tag}".rstrip() for e in entries]
    return ("\n".join(lines) + "\n").encode()
