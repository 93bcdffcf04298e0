"""The agent's label spool: labels on disk before Feedback answers, written together, kept across
a restart until acked, bounded with counted drops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.label_spool import LabelSpool
from protos import agent_pb2, common_pb2


def row(request_id: str, label: str = "1") -> common_pb2.LabelRow:
    return common_pb2.LabelRow(request_id=request_id, label=label)


async def test_labels_are_on_disk_when_add_returns_and_a_new_spool_finds_them(tmp_path: Path) -> None:
    spool = LabelSpool(tmp_path)
    # A burst waits together: fewer files than labels, each of one deployment.
    kept = await asyncio.gather(*(spool.add("web" if i % 2 else "api", row(f"r{i}")) for i in range(50)))
    assert all(kept) and 2 <= len(spool) < 50
    files = sorted(tmp_path.glob("*.pb"))
    assert len(files) == len(spool)
    batches = spool.to_send()
    assert sum(len(b.rows) for b in batches) == 50 and {b.deployment for b in batches} == {"web", "api"}

    # A crash: a new spool on the same directory sends the same batches, a torn write is gone.
    (tmp_path / ".torn.pb.tmp").write_bytes(b"\x0a\x05ab")
    again = LabelSpool(tmp_path)
    assert [b.batch_id for b in again.to_send()] == [b.batch_id for b in batches]
    assert not list(tmp_path.glob(".*.tmp"))

    # In flight: not sent twice until a reconnect; an ack (ok or refused for good) removes the file.
    for batch in again.to_send():
        again.mark_sent(batch.batch_id)
    assert again.to_send() == []
    again.forget_sent()
    assert len(again.to_send()) == len(batches)
    assert again.ack(agent_pb2.LabelBatchAck(batch_id=batches[0].batch_id, ok=True))
    assert again.ack(agent_pb2.LabelBatchAck(batch_id=batches[1].batch_id, ok=False, error="no deployment"))
    assert not again.ack(agent_pb2.LabelBatchAck(batch_id="never-sent", ok=True))
    assert (again.acked, again.refused, len(again)) == (1, 1, len(batches) - 2)
    assert len(list(tmp_path.glob("*.pb"))) == len(batches) - 2


async def test_a_full_spool_drops_new_labels_and_counts_them(tmp_path: Path) -> None:
    spool = LabelSpool(tmp_path, max_batches=2)
    assert await spool.add("web", row("a"))
    assert await spool.add("web", row("b"))
    assert not await spool.add("web", row("c"))
    assert spool.dropped == 1 and len(spool) == 2
    spool.ack(agent_pb2.LabelBatchAck(batch_id=spool.to_send()[0].batch_id, ok=True))
    assert await spool.add("web", row("d")) and spool.dropped == 1


async def test_batches_of_one_feedback_call_each_are_merged_before_they_are_sent(tmp_path: Path) -> None:
    """Feedback called once per prediction: one batch per call on disk, one per deployment sent
    (each batch is an import in the control plane's label store); a batch in flight stays itself."""
    spool = LabelSpool(tmp_path)
    for i in range(6):
        assert await spool.add("web", row(f"w{i}", str(i % 2)))
    assert await spool.add("api", row("a0"))
    in_flight = spool.to_send()[0]
    spool.mark_sent(in_flight.batch_id)
    assert len(spool) == 7

    assert await spool.compact() == 5  # the five web batches not in flight; api alone stays
    assert len(spool) == 3 and len(list(tmp_path.glob("*.pb"))) == 3
    sent = spool.to_send()
    merged = next(b for b in sent if b.deployment == "web")
    assert [r.request_id for r in merged.rows] == [f"w{i}" for i in range(1, 6)]
    assert [r.label for r in merged.rows] == [str(i % 2) for i in range(1, 6)]
    assert await spool.compact() == 0

    again = LabelSpool(tmp_path)  # what a restart finds: the same labels, each once
    rows = sorted(r.request_id for b in again.to_send() for r in b.rows)
    assert rows == sorted([f"w{i}" for i in range(6)] + ["a0"])
