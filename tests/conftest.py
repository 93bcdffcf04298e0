"""Fixtures shared by the whole suite: databases, trained models and running servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from controlplane.artifacts import ArtifactStore
from controlplane.config import Config
from controlplane.context import Context
from controlplane.events import EventBus
from controlplane.store.db import Database
from core.client import SluiceClient
from tests.harness import ServerThread, start_server
from tests.timing import TIME_FACTOR, scaled

POSTGRES_ENV = "SLUICE_TEST_POSTGRES_URL"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-timeout's limit scales with SLUICE_TEST_TIME_FACTOR like every other deadline: the
    `timeout` of pyproject.toml and each `@pytest.mark.timeout(N)`. A limit given on purpose
    (`--timeout=N`, or PYTEST_TIMEOUT in the environment) is taken as it is."""
    if TIME_FACTOR == 1.0 or config.getoption("timeout", None) is not None or os.environ.get("PYTEST_TIMEOUT"):
        return
    default = float(config.getini("timeout") or 0)
    for item in items:
        marker = item.get_closest_marker("timeout")
        args, kwargs = (marker.args, dict(marker.kwargs)) if marker is not None else ((), {})
        seconds = float(args[0] if args else kwargs.pop("timeout", default) or 0)
        if seconds > 0:  # 0 or None: no limit, scaled or not
            item.add_marker(pytest.mark.timeout(scaled(seconds), *args[1:], **kwargs), append=False)


def _postgres_base() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI"):  # in CI a skipped PostgreSQL variant would hide a real gap
            pytest.fail(f"{POSTGRES_ENV} is not set but CI is: PostgreSQL tests must run in CI (.ci/run sets both)")
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL store tests skipped (.ci/run sets it)")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    base = make_url(_postgres_base()).set(drivername="postgresql+psycopg")
    name = f"sluice_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every store test runs on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[Context]:
    db = Database(db_url)
    context = Context(
        db=db, artifacts=ArtifactStore(tmp_path / "artifacts"), config=Config(), events=EventBus()
    )
    yield context
    db.dispose()


@pytest.fixture(scope="session", autouse=True)
def sandbox_forkserver() -> Iterator[None]:
    """The model sandbox's forkserver in this test process: it preloads what every kind of job
    here imports (a control plane's, an agent's, the sandbox tests'), whichever runs first, so no
    job pays an import in its child; it is started by the first job and ends with the session."""
    from runtime import sandbox

    sandbox.preload(
        "controlplane.model_checks", "controlplane.sandbox_warmup", "agent.serving", "tests.runtime.sandbox_jobs"
    )
    yield
    sandbox.shutdown()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """One control plane (SQLite) shared by tests that use unique names."""
    server = start_server(tmp_path_factory.mktemp("cp"))
    yield server
    server.stop()


@pytest.fixture
def client(shared_server: ServerThread) -> Iterator[SluiceClient]:
    with SluiceClient(shared_server.address, token="") as c:
        yield c
