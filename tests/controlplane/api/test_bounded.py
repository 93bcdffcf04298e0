"""A lane for heavy calls: a few of its own threads, a bounded wait line, then RESOURCE_EXHAUSTED."""

from __future__ import annotations

import asyncio
import threading

import pytest

from controlplane.api.bounded import WAITING_PER_WORKER, Lane
from core.errors import ResourceExhausted


async def test_a_full_lane_refuses_at_once_and_frees_its_places_as_calls_finish() -> None:
    lane = Lane("test", 2, "offline evaluations", "evaluate_concurrency")
    release = threading.Event()
    running = threading.Semaphore(0)
    threads: set[str] = set()

    def heavy(i: int) -> int:
        threads.add(threading.current_thread().name)
        running.release()
        release.wait(30)
        return i

    try:
        capacity = 2 + 2 * WAITING_PER_WORKER
        calls = [asyncio.create_task(lane.run(heavy, i)) for i in range(capacity)]
        for _ in range(2):  # both workers are busy; the other calls wait holding no thread
            assert await asyncio.to_thread(running.acquire, True, 30)
        await asyncio.sleep(0)  # every admitted call has reached the lane
        assert lane.admitted == capacity
        with pytest.raises(ResourceExhausted, match=r"2 offline evaluations are running and 8 waiting") as full:
            await lane.run(heavy, -1)
        assert "[models] evaluate_concurrency = 2" in full.value.message
        release.set()
        assert await asyncio.gather(*calls) == list(range(capacity))
        assert lane.admitted == 0 and len(threads) == 2 and all(t.startswith("sluice-test") for t in threads)
        assert await lane.run(lambda: "again") == "again"
    finally:
        release.set()
        lane.shutdown()
