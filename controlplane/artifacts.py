"""Content-addressed artifact store: files named by their sha256, written atomically."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from core.errors import InvalidInput, NotFound, ResourceExhausted

CHUNK_SIZE = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise InvalidInput(f"{value[:80]!r} is not a sha256 (64 lowercase hex characters)")
    return value


class PendingUpload:
    """A file being received chunk by chunk, hashed as it arrives, capped at `limit` bytes."""

    def __init__(self, directory: Path, limit: int, what: str) -> None:
        self._file: IO[bytes] = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finish/discard
            dir=directory, prefix=".upload-", delete=False
        )
        self.path = Path(self._file.name)
        self.size = 0
        self.limit = limit
        self.what = what
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise ResourceExhausted(
                f"the {self.what} is larger than the limit of {self.limit} bytes "
                "(limits.max_artifact_bytes in the config)"
            )
        self._hash.update(data)
        self._file.write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class ArtifactStore:
    def __init__(self, root: Path, max_bytes: int = 2 << 30) -> None:
        self.root = root
        self.max_bytes = max_bytes
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def begin_upload(self, what: str = "model") -> PendingUpload:
        return PendingUpload(self.root / "tmp", self.max_bytes, what)

    def commit(self, upload: PendingUpload) -> str:
        """Move a finished upload to its content address; identical content is stored once."""
        upload.close()
        target = self.path(upload.sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            upload.path.unlink(missing_ok=True)
        else:
            os.replace(upload.path, target)
        return upload.sha256

    def put_bytes(self, data: bytes, what: str = "artifact") -> str:
        upload = self.begin_upload(what)
        try:
            upload.write(data)
            return self.commit(upload)
        except BaseException:
            upload.discard()
            raise

    def size(self, sha256: str) -> int:
        path = self.path(sha256)
        if not path.is_file():
            raise NotFound(f"no artifact with sha256 {sha256}")
        return path.stat().st_size

    def read_chunks(self, sha256: str, offset: int = 0, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        path = self.path(sha256)
        if not path.is_file():
            raise NotFound(f"no artifact with sha256 {sha256}")
        with path.open("rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(chunk_size):
                yield chunk
