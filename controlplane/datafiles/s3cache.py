"""The control plane's local copies of S3 log segments (`<data dir>/s3-cache/BUCKET/KEY`),
bounded by `[log] s3_cache_max_bytes` with least-recently-used eviction (0: no bound).

A copy is "used" when a reader resolves it (`storage.local`). Readers resolve the segments of one
query inside `reading()`: a copy resolved there is pinned, never evicted, until the scope ends, so
a query that needs more than the bound still reads every file it listed (the cache holds more
than the bound for that long, then is cut back to it). Outside a scope, a copy is protected only
during the call that returns it. A recorded object never changes, so an evicted copy is simply
fetched again when it is needed.

Recency lives in memory and in each copy's mtime (touched on every use), so a restarted control
plane scans the directory once and continues from the order of its last run.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("sluice.predlog")

#: the copies pinned by the current `reading()` scope (None: no scope)
_scope: contextvars.ContextVar[list[tuple[SegmentCache, Path]] | None] = contextvars.ContextVar(
    "s3cache_scope", default=None
)


@dataclass(frozen=True)
class CacheStats:
    files: int
    bytes: int
    evicted_files: int
    evicted_bytes: int


class SegmentCache:
    """The bookkeeping of one cache directory (the files are written by `storage.local`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.max_bytes = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[Path, int] | None = None  # oldest use first; scanned on first use
        self._total = 0
        self._pins: Counter[Path] = Counter()
        self._evicted_files = 0
        self._evicted_bytes = 0

    def _index(self) -> OrderedDict[Path, int]:
        if self._entries is None:
            found: list[tuple[float, Path, int]] = []
            if self.root.is_dir():
                for path in self.root.rglob("*"):
                    if path.name.startswith("."):  # a download in flight (or cut short): not a copy
                        continue
                    try:
                        info = path.stat()
                    except OSError:
                        continue
                    if path.is_file():
                        found.append((info.st_mtime, path, info.st_size))
            found.sort(key=lambda item: (item[0], str(item[1])))
            self._entries = OrderedDict((path, size) for _, path, size in found)
            self._total = sum(size for _, _, size in found)
        return self._entries

    def use(self, target: Path) -> bool:
        """True (and `target` marked as just used) when a copy of it is here."""
        with self._lock:
            entries = self._index()
            if target in entries:
                if not target.exists():  # removed behind our back
                    self._total -= entries.pop(target)
                    return False
                entries.move_to_end(target)
            else:
                try:
                    size = target.stat().st_size
                except OSError:
                    return False
                entries[target] = size
                self._total += size
            self._pin(target)
        _touch(target)
        return True

    def admit(self, target: Path) -> None:
        """A copy just renamed into place: count it, then evict down to the bound (never it)."""
        size = target.stat().st_size
        with self._lock:
            entries = self._index()
            self._total += size - entries.pop(target, 0)
            entries[target] = size
            self._pin(target)
            self._evict(keep=target)

    def forget(self, target: Path) -> None:
        """The object is deleted: drop its copy."""
        with self._lock:
            entries = self._index()
            self._total -= entries.pop(target, 0)
            self._pins.pop(target, None)
            target.unlink(missing_ok=True)

    def release(self, pinned: list[Path]) -> None:
        with self._lock:
            for path in pinned:
                self._pins[path] -= 1
                if self._pins[path] <= 0:
                    del self._pins[path]
            self._evict(keep=None)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(len(self._index()), self._total, self._evicted_files, self._evicted_bytes)

    def _pin(self, target: Path) -> None:
        pinned = _scope.get()
        if pinned is not None:
            pinned.append((self, target))
            self._pins[target] += 1

    def _evict(self, keep: Path | None) -> None:
        if self.max_bytes <= 0 or self._total <= self.max_bytes:
            return
        entries = self._index()
        for path in list(entries):
            if self._total <= self.max_bytes:
                break
            if path == keep or self._pins.get(path):
                continue
            size = entries.pop(path)
            self._total -= size
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # not counted any more; the next scan sees it again
                log.warning("could not evict %s from the S3 cache: %s", path, exc)
                continue
            self._evicted_files += 1
            self._evicted_bytes += size


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # evicted meanwhile by another reader: it is fetched again when needed
        pass


_caches: dict[Path, SegmentCache] = {}
_guard = threading.Lock()


def cache_for(root: Path, max_bytes: int) -> SegmentCache:
    with _guard:
        found = _caches.get(root)
        if found is None:
            found = _caches[root] = SegmentCache(root)
        found.max_bytes = max_bytes
        return found


@contextmanager
def reading() -> Iterator[None]:
    """Pin every copy resolved inside (this thread or task) until the end; nested scopes join the
    outermost one."""
    if _scope.get() is not None:
        yield
        return
    pinned: list[tuple[SegmentCache, Path]] = []
    token = _scope.set(pinned)
    try:
        yield
    finally:
        _scope.reset(token)
        by_cache: dict[SegmentCache, list[Path]] = {}
        for cache, path in pinned:
            by_cache.setdefault(cache, []).append(path)
        for cache, paths in by_cache.items():
            cache.release(paths)
