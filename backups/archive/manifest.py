"""The manifest written beside each backup, last: its presence is what makes a backup complete.

It records what a restore needs to check the data against: size and sha256 of the stored
bytes, which kind of source made it (`source`: postgres, sqlite, command ...), and row
counts per table taken from the same snapshot as the dump (`tables` for PostgreSQL, `counts`
for every kind); and, for a
custom-format dump, where each table's data starts in it (`data_offsets`, dumpId -> byte
offset), which pg_dump could not write into its own TOC through a pipe.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from backups.archive.layout import BackupKey
from backups.stores import Store
from maintenance.errors import MaintError

FORMAT = 1


class ManifestError(MaintError):
    """A manifest that cannot be read or lacks what it must record."""


@dataclass(frozen=True)
class TableCount:
    rows: int
    exact: bool


@dataclass(frozen=True)
class Manifest:
    host: str
    database: str
    key: str
    started_at: str
    finished_at: str
    size: int
    sha256: str
    codec: str
    server_version: str
    pg_dump_version: str
    tool_version: str
    tables: dict[str, TableCount] = field(default_factory=dict)
    kind: str = "database"  # or "globals"
    flags: list[str] = field(default_factory=list)
    data_offsets: dict[str, int] | None = None
    # What made the backup: {"kind": "postgres" | "sqlite" | "command" | ..., "name": ...};
    # None in manifests written before backup.sources existed (all PostgreSQL).
    source: dict[str, str] | None = None
    # Rows (or keys) per logical database or table, at the dump's snapshot.
    counts: dict[str, int] = field(default_factory=dict)
    # backup.db --table: the only tables this backup holds ("schema.table"); None: all of them.
    partial_tables: list[str] | None = None
    format: int = FORMAT

    def offsets(self) -> dict[int, int] | None:
        """data_offsets with int dumpIds (JSON keys are strings); None when not recorded."""
        if not self.data_offsets:
            return None
        return {int(dump_id): int(offset) for dump_id, offset in self.data_offsets.items()}

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """Parse a manifest. Raise ManifestError naming WHERE if it is not one we can use."""
        try:
            raw: dict[str, Any] = json.loads(data)
            if raw.get("format") != FORMAT:
                raise ManifestError(f"{where}: unsupported manifest format {raw.get('format')!r}")
            raw["tables"] = {
                name: TableCount(int(count["rows"]), bool(count["exact"]))
                for name, count in raw.get("tables", {}).items()
            }
            return cls(**raw)
        except ManifestError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ManifestError(f"{where}: not a valid manifest: {exc}") from None


def read_manifest(store: Store, key: BackupKey) -> Manifest:
    """KEY's manifest from STORE. Raise ManifestError when it is missing or unusable."""
    try:
        return Manifest.from_json(store.get_bytes(key.manifest_key), key.manifest_key)
    except ManifestError:
        raise
    except MaintError as exc:
        raise ManifestError(f"{key.key}: manifest cannot be read: {exc}") from exc
