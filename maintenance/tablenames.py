"""Table names as users give them with --table: `schema.table`, or a plain `table`.

One reading for every task that takes --table (backup.db, restore.db, db.vacuum, db.analyze):
a plain name matches that table in any schema, and must match exactly one; a qualified one
matches that schema's table. The names are only compared with the catalog's (or a manifest's)
here: statements always quote them with psycopg.sql.Identifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .errors import MaintError

Table = tuple[str, str]  # (schema, table)


class UnknownTable(MaintError):
    """A --table that names no table there, or more than one."""


def qualified_name(table: Table) -> str:
    return f"{table[0]}.{table[1]}"


def match_table(name: str, available: Iterable[Table]) -> list[Table]:
    """The tables of AVAILABLE that NAME stands for: `schema.table` exactly (the first dot
    splits), else a plain name in every schema that has it."""
    tables = list(available)
    schema, dot, table = name.partition(".")
    if dot:
        exact = [t for t in tables if t == (schema, table)]
        if exact:
            return exact
    return [t for t in tables if t[1] == name]


def resolve_tables(names: Sequence[str], available: Iterable[Table], where: str) -> list[Table]:
    """The one table each of NAMES stands for in AVAILABLE, in the order given, each once.

    Raise UnknownTable naming every name that matches nothing (with the nearest table, when
    one is close) or several tables, and WHERE it was looked for.
    """
    tables = sorted(set(available))
    chosen: list[Table] = []
    problems = []
    for name in names:
        found = match_table(name, tables)
        if len(found) == 1:
            if found[0] not in chosen:
                chosen.append(found[0])
        elif found:
            problems.append(
                f"table {name!r} is ambiguous in {where}: "
                + ", ".join(qualified_name(t) for t in found)
                + " (give the schema)"
            )
        else:
            problems.append(f"no table {name!r} in {where}{_nearest(name, tables)}")
    if problems:
        raise UnknownTable("; ".join(problems))
    return chosen


def _nearest(name: str, tables: Sequence[Table]) -> str:
    from .settings.problems import closest

    plain = name.rpartition(".")[2]
    guess = closest(plain, {t[1] for t in tables}, within=2)
    return f"; did you mean {guess!r}?" if guess else ""
