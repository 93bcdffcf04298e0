"""The wire's label rows (`LabelRow`, in SubmitLabels and in an agent's LabelBatch) as the store
takes them; each is checked there, by its row number."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from controlplane.labels.incoming import LabelInput
from protos import common_pb2


def label_inputs(rows: Sequence[common_pb2.LabelRow]) -> list[LabelInput]:
    out = []
    for row in rows:
        truth = row.WhichOneof("truth")
        out.append(
            LabelInput(
                row.request_id,
                label=row.label if truth == "label" else None,
                value=row.value if truth == "value" else None,
                event_time=row.event_time.ToDatetime(tzinfo=UTC) if row.HasField("event_time") else None,
            )
        )
    return out
