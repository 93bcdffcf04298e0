"""A prediction-log segment's formats as tables: Arrow and Parquet, shared by the agent and the
control plane.

An agent of this release ships record files (`runtime.logrecords`: no pyarrow on the agent); the
previous release's agents ship Arrow IPC files (zstd buffers), the first ones Parquet. The log
itself, what every reader (DuckDB, dataset export, purge, retention) reads, is Parquet: the
control plane writes it from whichever it receives, and an agent with an S3 sink (or a control
plane of an earlier release) converts its record files here before sending them (`to_parquet`,
`to_arrow`). The formats are told apart by their magic bytes (`format_of`), never by a name.

Needs pyarrow (the agent and controlplane extras); an agent imports this module only for an S3
sink, a control plane of an earlier release, or pending segments an earlier release left.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from runtime.logread import read_segment
from runtime.logrecords import SegmentFormat, format_of
from runtime.logtable import build_table

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


def read_records(data: bytes | memoryview, agent: str) -> pa.Table:
    """The rows of a record file (`runtime.logrecords`), every record checked (ValueError says
    what is wrong), as the log's table; `agent` fills its `agent` column."""
    entries, _ = read_segment(data)
    if not entries:
        raise ValueError("the record file holds no record")
    try:
        return build_table(entries, agent)
    except (pa.ArrowException, TypeError, IndexError) as exc:  # values one column cannot hold
        raise ValueError(f"its records do not make one table: {str(exc)[:300]}") from None


def read_table(data: bytes | memoryview, agent: str = "") -> pa.Table:
    """The rows of a segment of any format (ValueError when it is none of them); `agent` fills
    the `agent` column of a record file's rows."""
    found = format_of(data)
    if found is SegmentFormat.RECORDS:
        return read_records(data, agent)
    if found is SegmentFormat.ARROW:
        return read_arrow(data)
    if found is SegmentFormat.PARQUET:
        return pq.read_table(pa.BufferReader(pa.py_buffer(data)))
    raise ValueError("neither a record file, nor a Parquet or an Arrow IPC file")


def schema_metadata(data: bytes | memoryview) -> dict[bytes, bytes]:
    """The schema's key-value metadata of a segment of either format (the footer only)."""
    found = format_of(data)
    if found is SegmentFormat.ARROW:
        return dict(pa.ipc.open_file(pa.py_buffer(data)).schema.metadata or {})
    if found is SegmentFormat.PARQUET:
        return dict(pq.read_metadata(pa.BufferReader(pa.py_buffer(data))).metadata or {})
    raise ValueError("neither a Parquet nor an Arrow IPC file")


def to_parquet(data: bytes, agent: str) -> bytes:
    """The segment as the log's Parquet file: Parquet bytes as they are, the others converted."""
    if format_of(data) is SegmentFormat.PARQUET:
        return data
    sink = io.BytesIO()
    write_parquet(read_table(data, agent), sink)
    return sink.getvalue()


def to_arrow(data: bytes, agent: str) -> bytes:
    """A record file as an Arrow IPC file (for a control plane of the previous release)."""
    sink = io.BytesIO()
    write_arrow(read_records(data, agent), sink)
    return sink.getvalue()
