"""The migrated schema is exactly the ORM's, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from controlplane.store.db import Database, schema_is_current
from controlplane.store.models import Base


def test_migrations_produce_the_orm_schema(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert schema_is_current(db.engine)
        with db.engine.connect() as connection:
            diff = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
            )
        assert diff == [], f"migrations and ORM differ: {diff}"
    finally:
        db.dispose()


def test_migrating_twice_is_harmless(db_url: str) -> None:
    Database(db_url).dispose()
    db = Database(db_url)  # a restart runs migrations again on an up-to-date schema
    try:
        assert schema_is_current(db.engine)
    finally:
        db.dispose()
