"""Where a recorded segment's bytes are: a path under the log dir, or an `s3://` URI an agent
wrote with its S3 sink (agent/logsink.py).

Readers (DuckDB joins, exports, label lookups, purges) read local files: an S3 segment is fetched
once into `<data dir>/s3-cache/BUCKET/KEY` (temporary name, rename) and read from there; a
recorded object never changes (a purge writes a new key), so the copy never goes stale. The
cache is bounded by `[log] s3_cache_max_bytes`, least recently used out (s3cache.py). DuckDB's
httpfs extension is not needed (it is not always installable offline). The control plane reaches
the bucket with `[log] s3_endpoint` / `s3_region` and the AWS credentials of its environment.
"""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from controlplane.context import Context
from controlplane.datafiles import files
from controlplane.datafiles.s3cache import SegmentCache, cache_for
from controlplane.datafiles.s3cache import reading as reading  # readers: `with storage.reading(): ...`
from core.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa
    from pyarrow.fs import S3FileSystem

S3 = "s3://"
_filesystems: dict[tuple[str, str], S3FileSystem] = {}
_guard = threading.Lock()


def is_remote(path: str) -> bool:
    return path.startswith(S3)


def object_path(uri: str) -> str:
    """`s3://bucket/key` -> `bucket/key` (pyarrow's form)."""
    return uri[len(S3) :]


def log_root(ctx: Context) -> Path:
    configured = ctx.config.log.dir
    return Path(configured) if configured else files.data_dir(ctx.artifacts.root) / "predictions"


def filesystem(ctx: Context) -> S3FileSystem:
    """The control plane's S3 client ([log] s3_endpoint, s3_region; credentials from the env)."""
    key = (ctx.config.log.s3_endpoint, ctx.config.log.s3_region)
    with _guard:
        found = _filesystems.get(key)
        if found is None:
            from pyarrow import fs

            kwargs: dict[str, object] = {"connect_timeout": 3.0, "request_timeout": 60.0}
            if key[0]:
                parts = urlsplit(key[0])
                kwargs["endpoint_override"] = parts.netloc
                kwargs["scheme"] = parts.scheme
            if key[1]:
                kwargs["region"] = key[1]
            found = _filesystems[key] = fs.S3FileSystem(**kwargs)
        return found


def cache_dir(ctx: Context) -> Path:
    return files.data_dir(ctx.artifacts.root) / "s3-cache"


def cache(ctx: Context) -> SegmentCache:
    """The bookkeeping of the S3 cache ([log] s3_cache_max_bytes, least recently used out)."""
    return cache_for(cache_dir(ctx), ctx.config.log.s3_cache_max_bytes)


def local(ctx: Context, path: str) -> Path:
    """A local file with the segment's bytes (fetching an S3 object into the cache first). Call
    it inside `reading()` when the file is read later than right away (controlplane/datafiles/s3cache.py)."""
    if not is_remote(path):
        return log_root(ctx) / path
    if ".." in object_path(path).split("/"):
        raise InvalidInput(f"segment URI {path[:200]!r} has a '..' part")
    copies = cache(ctx)
    target = cache_dir(ctx) / object_path(path)
    if copies.use(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with filesystem(ctx).open_input_stream(object_path(path)) as source, temporary.open("wb") as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    copies.admit(target)
    return target


def write_table(ctx: Context, path: str, table: pa.Table) -> int:
    """Write `table` to `path` (never half visible: a local rename, or an S3 upload that appears
    only complete); returns its size."""
    if not is_remote(path):
        return files.write_parquet_atomically(table, log_root(ctx) / path)
    import pyarrow.parquet as pq

    fs = filesystem(ctx)
    with fs.open_output_stream(object_path(path)) as stream:
        pq.write_table(table, stream, compression="zstd")
    return int(fs.get_file_info(object_path(path)).size or 0)


def delete(ctx: Context, path: str) -> None:
    """Delete the segment's bytes (an object already gone is no error)."""
    if not is_remote(path):
        (log_root(ctx) / path).unlink(missing_ok=True)
        return
    from pyarrow import fs

    client = filesystem(ctx)
    if client.get_file_info(object_path(path)).type != fs.FileType.NotFound:
        client.delete_file(object_path(path))
    cache(ctx).forget(cache_dir(ctx) / object_path(path))


def sibling(path: str) -> str:
    """A new name beside `path` (a relative path or a URI) for its rewritten content."""
    head, _, name = path.rpartition("/")
    stem = name.split(".", 1)[0]
    renamed = f"{stem}.p{uuid.uuid4().hex[:10]}.parquet"
    return f"{head}/{renamed}" if head else renamed
