"""The S3 sink's configuration: what `--log-sink` and `--s3-endpoint` accept, and the object keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.logpending import SegmentInfo
from agent.logsink import S3Location, check_endpoint, parse_sink, segment_key
from core.errors import InvalidInput


def test_sink_uris() -> None:
    assert parse_sink("s3://logs") == S3Location("logs", "")
    assert parse_sink("s3://logs/a/b/") == S3Location("logs", "a/b")
    for bad in ("http://logs/x", "s3://", "logs", "s3://key:secret@logs/x", "s3://logs/a/../b", "s3://logs/a//b"):
        with pytest.raises(InvalidInput):
            parse_sink(bad)


def test_endpoints() -> None:
    assert check_endpoint("http://127.0.0.1:9000") == "http://127.0.0.1:9000"
    for bad in ("ftp://x", "127.0.0.1:9000", "http://user:pw@host"):
        with pytest.raises(InvalidInput):
            check_endpoint(bad)


def test_keys_follow_the_logs_hive_layout() -> None:
    info = SegmentInfo("0001-ab", Path("/x"), "churn", "m", "3", "2026-12-06", 10, 100)
    assert segment_key(S3Location("b", "p/q"), "agent1", info) == (
        "p/q/deployment=churn/date=2026-12-06/version=3/agent1-0001-ab.parquet"
    )
    assert segment_key(S3Location("b", ""), "agent1", info).startswith("deployment=churn/")
