"""The lock file: what is installed is exactly uv.lock, and a stale lock is caught."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from tests.harness import REPO

UV = REPO / ".tools" / "bin" / "uv"


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], set()).add(package["version"])
    # A package locked at two versions (one per Python range) is checked by the one installed.
    return {name: "|".join(sorted(v)) for name, v in versions.items()}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.skipif(bool(os.environ.get("SLUICE_UNLOCKED")), reason="make test-latest runs the newest releases")
def test_every_installed_package_is_the_locked_version() -> None:
    locked = locked_versions()
    installed = {normalized(d.metadata["Name"]): d.version for d in metadata.distributions()}
    assert "numpy" in installed and "onnxruntime" in installed
    wrong = {
        name: (version, locked[name])
        for name, version in installed.items()
        if name in locked and version not in locked[name].split("|")
    }
    assert wrong == {}, "installed (version, locked): run `make test`, which syncs the venv to uv.lock"
    # Every runtime dependency of the project is in the lock.
    requires = metadata.requires("sluice") or []
    names = {normalized(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in requires}
    assert names - set(locked) == set()


def test_uv_is_pinned_once_for_make_and_the_image() -> None:
    make = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.M)
    image = re.search(r"uv==(\S+)", (REPO / "Dockerfile").read_text())
    assert make is not None and image is not None
    assert make.group(1) == image.group(1)


@pytest.mark.skipif(not UV.exists(), reason="uv is installed by `make` into .tools/")
def test_the_lock_check_fails_when_pyproject_moves_without_the_lock(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)

    def check() -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
        return subprocess.run(
            [str(UV), "lock", "--check"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )

    agreed = check()
    assert agreed.returncode == 0, agreed.stderr
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '"numpy>=1.26",' in text
    pyproject.write_text(text.replace('"numpy>=1.26",', '"numpy>=1.26.1",'))
    stale = check()
    assert stale.returncode != 0
    assert "needs to be updated" in stale.stderr, stale.stderr


@pytest.mark.xdist_group("grouping-check")
def test_xdist_groups_keep_their_tests_on_one_worker(request: pytest.FixtureRequest) -> None:
    """`make test` relies on --dist loadgroup: module-scoped clusters are shared by the tests of
    one group. xdist tags a grouped test's node id with '@GROUP'; without the tag the grouping is off."""
    if getattr(request.config, "workerinput", None) is None or not request.config.getvalue("loadgroup"):
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@grouping-check"), request.node.nodeid
