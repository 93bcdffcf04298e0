"""Mixed-type tables from CSV or Parquet: numeric columns (NaN where missing) and string columns.

What `sluice train`, `sluice evaluate` and a registered baseline read when the data is more than
one numeric matrix: a column is numeric when its cells are numbers (an empty cell is a missing
value, NaN), categorical when they are text (an empty cell is the empty string: the record form
has no missing value for a string input, so "" is the category of "not given"). Anything else is
refused with a one-line reason naming the column: a Parquet type that is neither (dates, lists,
binary...), a column empty in every row, a column of numbers with a stray word in it (a typo far
more often than a category).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InvalidInput

PARQUET_MAGIC = b"PAR1"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: longest category kept (bytes of UTF-8); longer text is refused, as agents refuse it in requests
MAX_CATEGORY_BYTES = 1024


@dataclass(frozen=True)
class Table:
    """Columns in file order: numeric ones float64 [rows] (NaN = missing), categorical ones object
    arrays of str [rows] ("" = missing)."""

    names: tuple[str, ...]
    columns: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        return int(next(iter(self.columns.values())).shape[0]) if self.columns else 0

    def kind(self, name: str) -> str:
        return NUMERIC if self.columns[name].dtype.kind == "f" else CATEGORICAL

    def numeric(self) -> list[str]:
        return [n for n in self.names if self.kind(n) == NUMERIC]

    def categorical(self) -> list[str]:
        return [n for n in self.names if self.kind(n) == CATEGORICAL]

    def without(self, name: str) -> Table:
        return Table(tuple(n for n in self.names if n != name), {n: c for n, c in self.columns.items() if n != name})

    def take(self, rows: np.ndarray) -> Table:
        return Table(self.names, {n: c[rows] for n, c in self.columns.items()})

    def complete_numeric(self) -> bool:
        """Every column numeric and no cell missing: a plain [rows, features] matrix."""
        return all(self.kind(n) == NUMERIC and not np.isnan(self.columns[n]).any() for n in self.names)

    def matrix(self) -> np.ndarray:
        """The numeric columns side by side, float64 [rows, columns]."""
        return np.column_stack([self.columns[n] for n in self.numeric()]) if self.names else np.empty((0, 0))

    def to_arrow(self) -> object:
        """A pyarrow Table (what scikit-learn's ColumnTransformer selects columns of by name)."""
        import pyarrow as pa

        return pa.table({n: self._arrow_column(n) for n in self.names})

    def _arrow_column(self, name: str) -> object:
        import pyarrow as pa

        column = self.columns[name]
        if self.kind(name) == NUMERIC:
            return pa.array(column, type=pa.float64())
        return pa.array(column.tolist(), type=pa.string())


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _column_of(what: str, name: str, cells: list[str], lines: list[int]) -> np.ndarray:
    """One CSV column as numbers (NaN where empty) or categories ("" where empty)."""
    given = [(c, line) for c, line in zip(cells, lines, strict=True) if c]
    if not given:
        raise InvalidInput(f"{what}: column {name!r} is empty in every row; drop it or fill it in")
    numbers = sum(1 for c, _ in given if _is_number(c))
    if numbers == len(given):
        return np.array([float(c) if c else math.nan for c in cells], dtype=np.float64)
    if numbers * 2 >= len(given):
        cell, line = next((c, line) for c, line in given if not _is_number(c))
        raise InvalidInput(
            f"{what}: line {line}, column {name!r} is {cell[:40]!r}, not a number (the column's other cells are "
            "numbers; a categorical column holds text in most cells)"
        )
    return _categories(what, name, cells)


def _categories(what: str, name: str, values: list[str]) -> np.ndarray:
    for v in values:
        if len(v) > MAX_CATEGORY_BYTES // 4 and len(v.encode("utf-8")) > MAX_CATEGORY_BYTES:
            raise InvalidInput(f"{what}: column {name!r} has a value longer than {MAX_CATEGORY_BYTES} bytes")
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _read_csv(data: bytes, what: str) -> tuple[Table, list[int]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not a UTF-8 text CSV file ({exc.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise InvalidInput(f"{what} is empty: expected a CSV header line and data rows")
        header = [cell.strip() for cell in header]
        body: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise InvalidInput(
                    f"{what}: line {reader.line_num} has {len(row)} cells but the header has {len(header)} columns"
                )
            body.append([cell.strip() for cell in row])
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise InvalidInput(f"{what} is not a readable CSV file: {exc}") from None
    _check_header(what, header)
    if not body:
        raise InvalidInput(f"{what} has a header but no data rows")
    columns = {name: _column_of(what, name, [r[i] for r in body], lines) for i, name in enumerate(header)}
    return Table(tuple(header), columns), lines


def _check_header(what: str, header: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(header):
        if not name:
            raise InvalidInput(f"{what}: column {i + 1} of the header has no name")
        if name in seen:
            raise InvalidInput(f"{what}: the header names column {name!r} twice")
        seen.add(name)


def _read_parquet(data: bytes, what: str) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        arrow = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError... for a damaged file
        raise InvalidInput(f"{what} is not a readable Parquet file: {' '.join(str(exc).split())[:200]}") from None
    _check_header(what, list(arrow.column_names))
    if arrow.num_rows == 0:
        raise InvalidInput(f"{what} has columns but no rows")
    columns: dict[str, np.ndarray] = {}
    for name in arrow.column_names:
        column = arrow.column(name)
        kind = column.type
        if pa.types.is_dictionary(kind):
            column = column.cast(kind.value_type)
            kind = column.type
        if column.null_count == len(column):
            raise InvalidInput(f"{what}: column {name!r} is empty in every row; drop it or fill it in")
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
            columns[name] = np.asarray(values, dtype=np.float64)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            columns[name] = _categories(what, name, ["" if v is None else v for v in column.to_pylist()])
        else:
            raise InvalidInput(
                f"{what}: column {name!r} has type {kind}; only numbers (features, labels) and strings "
                "(categories) are supported: convert it first"
            )
    return Table(tuple(arrow.column_names), columns)


def read_table(data: bytes, what: str) -> Table:
    """A CSV (with a header) or Parquet file's columns; `what` names the file in messages."""
    if not data:
        raise InvalidInput(f"{what} is empty")
    if data.startswith(PARQUET_MAGIC):
        return _read_parquet(data, what)
    return _read_csv(data, what)[0]


def read_table_file(path: Path) -> Table:
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist or is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read: {exc.strerror or exc}") from None
    return read_table(data, str(path))


def split_label(table: Table, label_column: str | None, what: str) -> tuple[Table, np.ndarray]:
    """(the feature columns, the label column); the label is `label_column` or the last column.

    Numeric features must be finite where given (NaN is a missing value; infinity is refused), and
    every row needs a label.
    """
    if len(table.names) < 2:
        raise InvalidInput(f"{what} has {len(table.names)} column; at least one feature column and a label are needed")
    name = table.names[-1] if label_column is None else label_column
    if name not in table.columns:
        raise InvalidInput(f"{what} has no column {name!r}; its columns are {', '.join(table.names)}")
    labels = table.columns[name]
    missing = np.isnan(labels) if labels.dtype.kind == "f" else labels == ""
    if missing.any():
        raise InvalidInput(f"{what}: row {int(np.argmax(missing)) + 1} has no label in column {name!r}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise InvalidInput(f"{what}: column {name!r} holds an infinite label")
    features = table.without(name)
    for column in features.numeric():
        values = features.columns[column]
        if np.isinf(values).any():
            row = int(np.argmax(np.isinf(values))) + 1
            raise InvalidInput(f"{what}: row {row}, column {column!r} is infinite; only finite numbers or empty cells")
        if np.abs(np.nan_to_num(values)).max(initial=0.0) > np.finfo(np.float32).max:
            raise InvalidInput(f"{what}: column {column!r} has values beyond the float32 range (about ±3.4e38)")
    return features, labels


def write_parquet(table: Table, path: Path) -> None:
    """The table as a Parquet file (written next to the target, then renamed into place)."""
    import os

    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table.to_arrow(), tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
