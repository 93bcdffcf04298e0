"""The agent's cache directory: its stable id, verified artifacts and the last applied snapshot.

Layout:
    agent_id            the stable id sent in every Hello
    report_seq          the high-water mark of metric-report sequence numbers (blocks reserved)
    artifacts/SHA256    ONNX files, named by the sha256 of their bytes (verified before the rename)
    snapshot.pb         the last applied Snapshot (what the agent serves after a restart)
    reports/N.seg       the report spool: every metric report from the moment it is built until
                        the control plane's ReportAck (`agent.spool`: append + fsync, checksummed
                        records, a torn tail cut off on start, segments deleted once all acked)
    windows/ID.journal  the open metric window, one record per counted request (`agent.journal`):
                        a restarted agent turns a journal left by a crash into a report
    reports.pb          (agents before the spool) reports kept at a graceful stop; moved into the
                        spool on start
Whole files (agent_id, report_seq, snapshot.pb, artifacts) go to a temporary file first and are
renamed into place, so a crash never leaves a half-written file under a final name; the spool and
the journals are append-only and detect a torn last record instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from protos import agent_pb2

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
KEEP_UNUSED_ARTIFACTS = 8


class ArtifactMismatch(Exception):
    """The bytes received do not hash to the sha256 they were requested by."""


def is_sha256(value: str) -> bool:
    return bool(_SHA256.fullmatch(value))


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Download:
    """An artifact being received chunk by chunk; hashed as it arrives."""

    def __init__(self, cache: AgentCache, sha256: str) -> None:
        self.cache = cache
        self.sha256 = sha256
        fd, name = tempfile.mkstemp(dir=cache.artifacts_dir, prefix=".download-")
        self._handle = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self._hash.update(data)
        self._handle.write(data)
        self.size += len(data)

    def commit(self) -> Path:
        """Verify the sha256 and move the file to its final name; raises ArtifactMismatch."""
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        actual = self._hash.hexdigest()
        if actual != self.sha256:
            self.path.unlink(missing_ok=True)
            raise ArtifactMismatch(f"artifact {self.sha256[:12]}: the {self.size} bytes received hash to {actual[:12]}")
        target = self.cache.artifact_path(self.sha256)
        os.replace(self.path, target)
        return target

    def discard(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self.path.unlink(missing_ok=True)


class AgentCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.artifacts_dir = self.root / "artifacts"
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_path = self.root / "snapshot.pb"
        self.reports_path = self.root / "reports.pb"  # legacy: see saved_reports
        self.spool_dir = self.root / "reports"
        self.journal_dir = self.root / "windows"
        for stale in self.artifacts_dir.glob(".download-*"):
            stale.unlink(missing_ok=True)

    def agent_id(self) -> str:
        """The id kept across restarts; created on first use."""
        path = self.root / "agent_id"
        try:
            value = path.read_text().strip()
            if value:
                return value
        except FileNotFoundError:
            pass
        value = uuid.uuid4().hex
        _write_atomic(path, value.encode())
        return value

    def reserve_seqs(self, count: int) -> int:
        """The first of `count` metric-report sequence numbers this agent id has never used,
        whatever its clock does (a VM restore, a host without a real-time clock).

        The high-water mark is written to the cache (fsync) before any number of the block is
        used; the agent id lives in the same cache, so the two are exactly as durable.
        """
        if count < 1:
            raise ValueError("reserve at least one sequence number")
        path = self.root / "report_seq"
        try:
            mark = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            # No mark yet: agents before marks were kept numbered reports by the clock in
            # microseconds, so a first mark starts above those (a new agent id has none at all).
            mark = time.time_ns() // 1000
        _write_atomic(path, str(mark + count).encode())
        return mark

    def artifact_path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise ValueError(f"{sha256[:80]!r} is not a sha256")
        return self.artifacts_dir / sha256

    def has(self, sha256: str) -> bool:
        return is_sha256(sha256) and self.artifact_path(sha256).is_file()

    def verify(self, sha256: str) -> bool:
        """Re-hash a cached file (used when loading from the cache after a restart)."""
        path = self.artifact_path(sha256)
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        except FileNotFoundError:
            return False
        if digest.hexdigest() != sha256:
            path.unlink(missing_ok=True)
            return False
        return True

    def cached_sha256s(self) -> list[str]:
        return sorted(p.name for p in self.artifacts_dir.iterdir() if is_sha256(p.name))

    def begin_download(self, sha256: str) -> Download:
        return Download(self, sha256)

    def put(self, data: bytes, sha256: str) -> Path:
        download = self.begin_download(sha256)
        try:
            download.write(data)
            return download.commit()
        except BaseException:
            download.discard()
            raise

    def save_snapshot(self, snapshot: agent_pb2.Snapshot) -> None:
        _write_atomic(self.snapshot_path, snapshot.SerializeToString())

    def load_snapshot(self) -> agent_pb2.Snapshot | None:
        try:
            data = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            return None
        snapshot = agent_pb2.Snapshot()
        try:
            snapshot.ParseFromString(data)
        except Exception:  # noqa: BLE001 - a corrupt cache file means "no snapshot"
            return None
        return snapshot

    def saved_reports(self) -> list[agent_pb2.MetricReport]:
        """Reports an agent before the spool kept in reports.pb at a graceful stop (length-prefixed,
        in order); the caller moves them into the spool, then calls `forget_saved_reports`."""
        try:
            data = self.reports_path.read_bytes()
        except FileNotFoundError:
            return []
        reports = []
        offset = 0
        while offset + 4 <= len(data):
            size = int.from_bytes(data[offset : offset + 4], "big")
            chunk = data[offset + 4 : offset + 4 + size]
            offset += 4 + size
            if len(chunk) != size:
                break  # a torn tail: keep what was whole
            report = agent_pb2.MetricReport()
            try:
                report.ParseFromString(chunk)
            except Exception:  # noqa: BLE001 - a corrupt entry is skipped
                continue
            reports.append(report)
        return reports

    def forget_saved_reports(self) -> None:
        self.reports_path.unlink(missing_ok=True)

    def collect_garbage(self, in_use: Iterable[str], keep: int = KEEP_UNUSED_ARTIFACTS) -> list[str]:
        """Delete unused artifacts beyond the `keep` most recent ones (kept for quick rollbacks)."""
        used = set(in_use)
        unused = [p for p in self.artifacts_dir.iterdir() if is_sha256(p.name) and p.name not in used]
        unused.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        removed = []
        for path in unused[keep:]:
            path.unlink(missing_ok=True)
            removed.append(path.name)
        return removed
