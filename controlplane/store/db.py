"""Engine creation, migrations at start, and the one-transaction-per-request session scope."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CursorResult, Engine, Executable, Table, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

import migrations
from core.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
SQLITE_BUSY_TIMEOUT_MS = 10_000


def upsert_statement(session: Session, table: Table) -> Any:
    """The dialect's INSERT for `table` (PostgreSQL or SQLite), which has `on_conflict_do_*`."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    raise InvalidInput(f"unsupported database {dialect}")  # pragma: no cover - only the two stores


def insert_ignore(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite; True when a row was inserted."""
    statement = upsert_statement(session, table).values(**values).on_conflict_do_nothing()
    first_key = next(iter(table.primary_key.columns))
    # RETURNING says reliably whether the row went in (rowcount differs between drivers).
    return session.execute(statement.returning(first_key)).first() is not None


def execute_dml(session: Session, statement: Executable) -> int:
    """Run an UPDATE or DELETE; the number of rows it matched."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def one_line(error: object) -> str:
    """A driver's message on one line (psycopg adds tab-indented hints on further lines)."""
    return " ".join(str(error).split())


def normalise_url(url: str) -> str:
    """Accept a bare path for SQLite and `postgresql://` for psycopg 3."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """The engine for a URL; a URL SQLAlchemy cannot use is refused in one line (InvalidInput)."""
    try:
        return _make_engine(normalise_url(url))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        try:
            shown = make_url(url).render_as_string(hide_password=True)  # never echo a password
        except ArgumentError:
            shown = url
        raise InvalidInput(
            f"cannot use the database {shown!r}: {one_line(exc)}; "
            "use a SQLite path or postgresql+psycopg://USER@HOST/DB"
        ) from exc


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", _configure_sqlite)

        # SQLite's own BEGIN is deferred: take the write lock at BEGIN so two writers queue on
        # the busy timeout instead of failing mid-transaction on a lock upgrade.
        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        @event.listens_for(engine, "connect")
        def _no_pysqlite_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def alembic_config(connection: Any) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (an empty database included)."""
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")


def schema_is_current(engine: Engine) -> bool:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
        heads = ScriptDirectory.from_config(alembic_config(connection)).get_heads()
        return set(current) == set(heads)


class Database:
    """Owns the engine; `with db.session() as s:` is one unit of work (one transaction)."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        if run_migrations:
            try:
                migrate(self.engine)
            except OperationalError as exc:
                raise Unavailable(f"cannot reach the database {self.safe_url}: {one_line(exc.orig)}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on any error."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                raise Unavailable(f"the database is unavailable: {one_line(exc.orig)}") from exc
            raise

    def dispose(self) -> None:
        self.engine.dispose()
