"""A prediction-log segment's two file formats, shared by the agent and the control plane.

The agent writes its pending segments as Arrow IPC files (zstd-compressed buffers): about a
tenth of the CPU of a zstd Parquet file of the same rows (docs/PERFORMANCE.md, "The prediction
log on vs off"). The log itself, what every reader (DuckDB, dataset export, purge, retention)
reads, is Parquet: the control plane converts each Arrow segment it receives (`to_parquet`), and
an agent with an S3 sink converts before it uploads. Parquet segments (an agent of an earlier
release, or pending segments it wrote before an upgrade) are taken as they are. The two are told
apart by their magic bytes (`format_of`), never by a file name.

Needs pyarrow (the agent and controlplane extras); the agent imports this module only from its
flush thread, so an agent that logs nothing never loads pyarrow.
"""

from __future__ import annotations

import io
from enum import StrEnum
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_MAGIC = b"PAR1"
#: an Arrow IPC *file* (not stream) starts with these 6 bytes (then 2 of padding) and ends with them
ARROW_MAGIC = b"ARROW1"
#: the Parquet file's compression: readers scan these files for months; zstd is 2x smaller than lz4
PARQUET_COMPRESSION = "zstd"
#: the Arrow file's buffer compression: zstd at its fast level -1 took half the CPU of level 1
#: and of lz4 on the log's columns, for files 3x smaller than lz4's (less to fsync, ship and
#: parse); see docs/PERFORMANCE.md
ARROW_COMPRESSION = "zstd"
ARROW_COMPRESSION_LEVEL = -1
#: the only column whose Parquet statistics (min/max per row group) readers use: DuckDB skips
#: row groups by time with them. Those of the other columns cost 15% of a segment's write.
STATISTICS_COLUMNS = ("ts",)


class SegmentFormat(StrEnum):
    PARQUET = "parquet"
    ARROW = "arrow"

    @property
    def suffix(self) -> str:
        return f".{self.value}"


def format_of(data: bytes | memoryview) -> SegmentFormat | None:
    """The format a segment's bytes start and end with; None: neither (not a segment)."""
    if len(data) >= 12 and data[:4] == PARQUET_MAGIC and data[-4:] == PARQUET_MAGIC:
        return SegmentFormat.PARQUET
    if len(data) >= 12 and data[:6] == ARROW_MAGIC and data[-6:] == ARROW_MAGIC:
        return SegmentFormat.ARROW
    return None


def write_parquet(table: pa.Table, handle: BinaryIO) -> None:
    """The log's Parquet file: zstd, dictionary pages for the text columns only (repeated names
    and classes; on numbers they cost more time than they save space), statistics for `ts`."""
    strings = [f.name for f in table.schema if pa.types.is_string(f.type)]
    pq.write_table(
        table,
        handle,
        compression=PARQUET_COMPRESSION,
        use_dictionary=strings,
        write_statistics=list(STATISTICS_COLUMNS),
    )


def write_arrow(table: pa.Table, handle: BinaryIO) -> None:
    """The agent's pending segment: an Arrow IPC file, one record batch per chunk of the table,
    the schema's metadata kept. Compressed in this thread (no pool threads beside the serving ones)."""
    codec = pa.Codec(ARROW_COMPRESSION, compression_level=ARROW_COMPRESSION_LEVEL)
    options = pa.ipc.IpcWriteOptions(compression=codec, use_threads=False)
    with pa.ipc.new_file(handle, table.schema, options=options) as writer:
        writer.write_table(table)


def read_arrow(data: bytes | memoryview) -> pa.Table:
    """The rows of an Arrow IPC file, fully validated (offsets, UTF-8): a damaged file raises
    pyarrow's ArrowInvalid here, never reaches a Parquet writer as an array that lies."""
    table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
    table.validate(full=True)
    return table


def read_table(data: bytes | memoryview) -> pa.Table:
    """The rows of a segment of either format (ValueError when it is neither)."""
    found = format_of(data)
    if found is SegmentFormat.ARROW:
        return read_arrow(data)
    if found is SegmentFormat.PARQUET:
        return pq.read_table(pa.BufferReader(pa.py_buffer(data)))
    raise ValueError("neither a Parquet nor an Arrow IPC file")


def schema_metadata(data: bytes | memoryview) -> dict[bytes, bytes]:
    """The schema's key-value metadata of a segment of either format (the footer only)."""
    found = format_of(data)
    if found is SegmentFormat.ARROW:
        return dict(pa.ipc.open_file(pa.py_buffer(data)).schema.metadata or {})
    if found is SegmentFormat.PARQUET:
        return dict(pq.read_metadata(pa.BufferReader(pa.py_buffer(data))).metadata or {})
    raise ValueError("neither a Parquet nor an Arrow IPC file")


def to_parquet(data: bytes) -> bytes:
    """The segment as the log's Parquet file: Parquet bytes as they are, an Arrow file converted."""
    if format_of(data) is SegmentFormat.PARQUET:
        return data
    sink = io.BytesIO()
    write_parquet(read_table(data), sink)
    return sink.getvalue()
