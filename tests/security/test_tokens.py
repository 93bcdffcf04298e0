"""Tokens: stored as sha256 digests, compared in constant time, made with `sluice token`."""

from __future__ import annotations

import hmac
import tomllib

import pytest

from controlplane.api import auth
from controlplane.config import Config, TokenConfig, token_digest
from controlplane.domain import Role
from tests.harness import run_cli


def test_token_hash_reads_stdin_and_prints_the_digest() -> None:
    secret = "a-token-long-enough-to-be-fine"
    result = run_cli("token", "hash", input=secret + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == token_digest(secret)
    assert secret not in result.stdout


def test_token_new_prints_a_config_entry_that_authenticates_the_token() -> None:
    result = run_cli("token", "new", "--name", "ci-bot", "--role", "operator")
    assert result.returncode == 0, result.stderr
    secret = result.stderr.strip().rsplit(" ", 1)[-1]
    entry = tomllib.loads(result.stdout)["tokens"][0]
    assert entry == {"name": "ci-bot", "role": "operator", "sha256": token_digest(secret)}
    assert secret not in result.stdout  # the file-bound output holds no secret
    book = auth.TokenBook([TokenConfig(**entry)])
    principal = book.resolve(secret)
    assert principal is not None and principal.name == "ci-bot" and principal.role == Role.OPERATOR
    assert book.resolve(secret + "x") is None


def test_token_new_refuses_an_unknown_role() -> None:
    result = run_cli("token", "new", "--name", "x", "--role", "root")
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_tokens_are_compared_in_constant_time_without_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = [TokenConfig(name=f"t{i}", role="viewer", sha256=token_digest(f"secret-{i}")) for i in range(5)]
    book = auth.TokenBook(tokens)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    found = book.resolve("secret-0")  # the first entry matches; every entry is still compared
    assert found is not None and found.name == "t0"
    assert len(calls) == len(tokens)
    # Digests are compared, never the raw secret.
    assert all(len(a) == len(b) == 32 for a, b in calls)


def test_plain_and_hashed_config_entries_are_equivalent() -> None:
    plain = auth.TokenBook([TokenConfig(name="a", role="admin", token="plain-secret-value")])
    hashed = auth.TokenBook([TokenConfig(name="a", role="admin", sha256=token_digest("plain-secret-value"))])
    assert plain.resolve("plain-secret-value") == hashed.resolve("plain-secret-value")
    assert Config().tokens == []
