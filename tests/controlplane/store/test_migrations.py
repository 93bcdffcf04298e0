"""The migrated schema is exactly the ORM's, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from controlplane.store.db import Database, alembic_config, make_engine, schema_is_current
from controlplane.store.models import Base


def test_migrations_produce_the_orm_schema(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert schema_is_current(db.engine)
        with db.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata)
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


def test_0007_binds_agents_from_before_to_nobody_and_goes_back(db_url: str) -> None:
    """Agents recorded before revision 0007 are bound to no credential ("" and ""): the first one
    that connects under their id claims them. The downgrade drops the binding again."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0006")
            connection.execute(
                text(
                    "INSERT INTO agents (id, name, host, address, labels, state, last_seen, connected_at, last_nack) "
                    "VALUES ('a1', 'alpha', 'h', 'a', '{}', 'lost', :now, :now, '')"
                ),
                {"now": datetime.now(UTC)},
            )
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        with engine.connect() as connection:
            owners = connection.execute(text("SELECT id, owner_token, owner_certificate FROM agents")).all()
        assert [tuple(r) for r in owners] == [("a1", "", "")]
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0006")
        with engine.connect() as connection:
            assert "owner_token" not in {c["name"] for c in inspect(connection).get_columns("agents")}
            assert connection.execute(text("SELECT name FROM agents")).scalar_one() == "alpha"
    finally:
        engine.dispose()


def test_0012_sizes_imports_without_a_file_and_leaves_the_others_to_the_first_read(db_url: str) -> None:
    """label_imports.bytes: 0 for an import that stored no file, NULL (sized lazily by the control
    plane, which knows the labels directory) for one with a file; the downgrade drops it."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0011")
            for import_id, path in (("with-file", "deployment=d/with-file.parquet"), ("empty", "")):
                connection.execute(
                    text(
                        "INSERT INTO label_imports (id, deployment, principal, source, atomic, created_at, rows, "
                        "accepted, duplicates, replaced, unknown_ids, late, refused, refusals, path) "
                        "VALUES (:id, 'd', 'alice', 'import', false, :now, 1, 1, 0, 0, 0, 0, 0, '[]', :path)"
                    ),
                    {"id": import_id, "now": datetime.now(UTC), "path": path},
                )
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")
        with engine.connect() as connection:
            sizes = dict(connection.execute(text("SELECT id, bytes FROM label_imports")).all())
        assert sizes == {"with-file": None, "empty": 0}
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "0011")
        with engine.connect() as connection:
            assert "bytes" not in {c["name"] for c in inspect(connection).get_columns("label_imports")}
    finally:
        engine.dispose()
