"""Versioned schema migrations, one directory of ``NNNN_name.sql`` files per database dialect."""

import dataclasses
import importlib.resources
import re

_FILE_PATTERN = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclasses.dataclass(frozen=True)
class Migration:
    """One schema change: its version (the file's number), name and SQL script."""

    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """Return a dialect's migrations in version order (reads files: call it off the event loop)."""
    directory = importlib.resources.files(__name__) / dialect
    migrations = []
    for entry in directory.iterdir():
        match = _FILE_PATTERN.match(entry.name)
        if match is not None:
            migrations.append(
                Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8"))
            )
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {dialect}: {versions}")
    return migrations
