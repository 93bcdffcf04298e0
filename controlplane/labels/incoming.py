"""The rows of one label import as they arrive: each checked against the deployment's task and
the limits, then kept in columnar form (Arrow) until the import ends.

Pure: no SQL, no files. A refused row names its row number (1 = the first row sent), so a person
can find it in the file they imported (`sluice labels import`: line N+1 of a CSV with a header).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from controlplane.config import LabelsConfig
from core.errors import InvalidInput, ResourceExhausted
from core.vocabulary import LabelSource, ModelTask

if TYPE_CHECKING:
    import pyarrow as pa

MAX_REQUEST_ID_LENGTH = 256  # as the agent's request ids (agent/core.py MAX_ID_LENGTH)
MAX_LABEL_LENGTH = 1024  # a class name
IMPORT_ID_LENGTH = 64
MAX_REFUSALS_KEPT = 10  # refusals quoted in a summary; the count covers them all
_IMPORT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def validate_import_id(import_id: str) -> str:
    """An import id names a file: letters, digits, '.', '_', '-', starting with a letter or digit."""
    if not import_id:
        raise InvalidInput("the import id is empty: name the import (a retry with the same id is answered once)")
    if len(import_id) > IMPORT_ID_LENGTH:
        raise InvalidInput(f"the import id is {len(import_id)} characters; the limit is {IMPORT_ID_LENGTH}")
    if not _IMPORT_ID.fullmatch(import_id):
        raise InvalidInput(
            f"the import id {import_id[:80]!r} may only contain letters, digits, '.', '_' and '-' "
            "and must start with a letter or digit"
        )
    return import_id


@dataclass(frozen=True, slots=True)
class LabelInput:
    """One label as sent: exactly one of `label` (a classifier's class) and `value` (a
    regressor's number) should be set."""

    request_id: str
    label: str | None = None
    value: float | None = None
    event_time: datetime | None = None


@dataclass(frozen=True)
class ImportTarget:
    """What an import is for, resolved when it begins."""

    deployment: str
    import_id: str
    task: ModelTask
    atomic: bool
    source: LabelSource = LabelSource.IMPORT


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def refusal(row: LabelInput, task: ModelTask) -> str | None:
    """Why a row cannot be stored (None: it can)."""
    if not row.request_id:
        return "the request id is empty"
    if len(row.request_id) > MAX_REQUEST_ID_LENGTH:
        return f"the request id is {len(row.request_id)} characters; the limit is {MAX_REQUEST_ID_LENGTH}"
    if task == ModelTask.REGRESSOR:
        if row.label is not None:
            return f"the deployment is a regressor: its truth is a number ('value'), not the label {_shown(row.label)}"
        if row.value is None:
            return "no value: a regressor's truth is a number ('value')"
        if not math.isfinite(row.value):
            return f"the value {row.value} is not a finite number"
        return None
    if row.value is not None:
        return f"the deployment is a classifier: its truth is a class ('label'), not the number {row.value:g}"
    if row.label is None or row.label == "":
        return "no label: a classifier's truth is its class by name ('label')"
    if len(row.label) > MAX_LABEL_LENGTH:
        return f"the label is {len(row.label)} characters; the limit is {MAX_LABEL_LENGTH}"
    return None


def label_schema() -> pa.Schema:
    """The columns of a label file (docs/PREDICTION_LOG.md)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("label", pa.string()),
            ("value", pa.float64()),
            ("event_time", pa.timestamp("us", tz="UTC")),
            ("received_at", pa.timestamp("us", tz="UTC")),
            ("import_id", pa.string()),
        ]
    )


@dataclass
class PendingImport:
    """An import between its header and its end. `add` checks each batch; `table` is what was
    taken, with each row's number (`row`) for the store to order repeats of one request."""

    target: ImportTarget
    limits: LabelsConfig
    rows: int = 0
    refused: int = 0
    refusals: list[str] = field(default_factory=list)
    _batches: list[Any] = field(default_factory=list)

    def add(self, batch: Sequence[LabelInput]) -> None:
        """Take one message's rows. Atomic: the first refused row refuses the import (raises);
        otherwise refused rows are counted and the first few quoted."""
        import pyarrow as pa

        if len(batch) > self.limits.max_rows_per_message:
            raise ResourceExhausted(
                f"a batch carries {len(batch)} labels; the limit is {self.limits.max_rows_per_message} "
                "per message (labels.max_rows_per_message): send smaller batches"
            )
        if self.rows + len(batch) > self.limits.max_rows_per_import:
            raise ResourceExhausted(
                f"the import has more than {self.limits.max_rows_per_import} labels "
                "(labels.max_rows_per_import): split the file into several imports"
            )
        numbers: list[int] = []
        ids: list[str] = []
        labels: list[str | None] = []
        values: list[float | None] = []
        times: list[datetime | None] = []
        for row in batch:
            self.rows += 1
            why = refusal(row, self.target.task)
            if why is not None:
                message = f"row {self.rows} (request id {_shown(row.request_id)}): {why}"
                if self.target.atomic:
                    raise InvalidInput(f"{message}; nothing of import {self.target.import_id} was stored")
                self.refused += 1
                if len(self.refusals) < MAX_REFUSALS_KEPT:
                    self.refusals.append(message)
                continue
            numbers.append(self.rows)
            ids.append(row.request_id)
            labels.append(row.label)
            values.append(row.value)
            times.append(row.event_time.astimezone(UTC) if row.event_time is not None else None)
        if numbers:
            self._batches.append(
                pa.record_batch(
                    [
                        pa.array(numbers, pa.int64()),
                        pa.array(ids, pa.string()),
                        pa.array(labels, pa.string()),
                        pa.array(values, pa.float64()),
                        pa.array(times, pa.timestamp("us", tz="UTC")),
                    ],
                    names=["row", "request_id", "label", "value", "event_time"],
                )
            )

    def table(self) -> pa.Table:
        import pyarrow as pa

        schema = pa.schema(
            [
                ("row", pa.int64()),
                ("request_id", pa.string()),
                ("label", pa.string()),
                ("value", pa.float64()),
                ("event_time", pa.timestamp("us", tz="UTC")),
            ]
        )
        return pa.Table.from_batches(self._batches, schema=schema)
