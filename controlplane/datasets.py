"""Labeled datasets from files: a CSV with a header or a 2-D .npy, as float32 features and labels.

Shared by the trainer (`training.py`) and the offline evaluation (`experiments/offline.py`).
Every problem with the file is an `InvalidInput` that names the file, the line and the column.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.errors import InvalidInput

NPY_MAGIC = b"\x93NUMPY"


def _cell_error(path: Path, line: int, column: str, cell: str) -> InvalidInput:
    if not cell.strip():
        return InvalidInput(
            f"{path}: line {line}, column {column!r} is empty; every cell needs a number"
        )
    return InvalidInput(
        f"{path}: line {line}, column {column!r} is {cell.strip()[:40]!r}, not a number "
        "(only numeric features and labels are supported)"
    )


def _load_csv(path: Path, label_column: str | None) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            while header is not None and not any(cell.strip() for cell in header):
                header = next(reader, None)
            if header is None:
                raise InvalidInput(f"{path} is empty: expected a CSV header line and data rows")
            header = [cell.strip() for cell in header]
            body: list[list[str]] = []
            lines: list[int] = []
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue  # blank lines, e.g. a trailing newline
                if len(row) != len(header):
                    raise InvalidInput(
                        f"{path}: line {reader.line_num} has {len(row)} cells but the header has "
                        f"{len(header)} columns"
                    )
                body.append(row)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not a UTF-8 text CSV file ({exc.reason})") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path} is not a readable CSV file: {exc}") from None
    if len(header) < 2:
        raise InvalidInput(
            f"{path} has {len(header)} column; at least one feature column and a label are needed"
        )
    if label_column is None:
        label_index = len(header) - 1
    elif label_column in header:
        label_index = header.index(label_column)
    else:
        raise InvalidInput(
            f"{path} has no column {label_column!r}; its columns are {', '.join(header)}"
        )
    if not body:
        raise InvalidInput(f"{path} has a header but no data rows")
    try:
        table = np.array(body, dtype=np.float64)  # numpy parses the strings: fast path
    except ValueError:
        for row, line in zip(body, lines, strict=True):
            for name, cell in zip(header, row, strict=True):
                try:
                    float(cell)
                except ValueError:
                    raise _cell_error(path, line, name, cell) from None
        raise
    features, labels = np.delete(table, label_index, axis=1), table[:, label_index]
    names = [h for i, h in enumerate(header) if i != label_index]
    _check_finite(path, features, labels, names, header[label_index], lines)
    return features, labels


def _load_npy(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        table = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError... for corrupt files
        raise InvalidInput(f"{path} is not a readable .npy array: {exc}") from exc
    if not (np.issubdtype(table.dtype, np.number) or table.dtype == np.bool_):
        raise InvalidInput(f"{path} holds {table.dtype} values; a numeric array is needed")
    if table.ndim != 2 or table.shape[1] < 2:
        raise InvalidInput(
            f"{path} must be a 2-D array [rows, features + label] with at least 2 columns, "
            f"got shape {list(table.shape)}"
        )
    if table.shape[0] == 0:
        raise InvalidInput(f"{path} has no rows")
    table = table.astype(np.float64)
    names = [f"#{i}" for i in range(table.shape[1] - 1)]
    _check_finite(path, table[:, :-1], table[:, -1], names, "label (last column)", None)
    return table[:, :-1], table[:, -1]


def _check_finite(
    path: Path,
    features: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    label_name: str,
    lines: list[int] | None,
) -> None:
    """Refuse NaN/inf, naming the first offending cell (a silent NaN would poison the model)."""
    for values, column_names in ((features, names), (labels[:, None], [label_name])):
        bad = ~np.isfinite(values)
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            where = f"line {lines[row]}" if lines is not None else f"row {row}"
            raise InvalidInput(
                f"{path}: {where}, column {column_names[column]!r} is {values[row, column]}; "
                "NaN and infinite values are not supported (drop or impute them first)"
            )


def load_dataset(path: Path, label_column: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32 [rows, features]) and labels from a CSV with a header or a 2-D .npy.

    CSV: the label is `label_column` or the last column. NPY: the label is the last column.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInput(f"{path} does not exist")
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file")
    try:
        with path.open("rb") as handle:
            magic = handle.read(len(NPY_MAGIC))
    except OSError as exc:
        raise InvalidInput(f"{path} cannot be read: {exc.strerror or exc}") from None
    if not magic:
        raise InvalidInput(f"{path} is empty")
    if path.suffix.lower() == ".npy" or magic == NPY_MAGIC:
        if label_column is not None:
            raise InvalidInput(
                f"{path} is a .npy array: it has no column names, its label is the last column"
            )
        features, labels = _load_npy(path)
    else:
        features, labels = _load_csv(path, label_column)
    if np.abs(features).max(initial=0.0) > np.finfo(np.float32).max:
        raise InvalidInput(f"{path} has feature values beyond the float32 range (about ±3.4e38)")
    return features.astype(np.float32), labels
