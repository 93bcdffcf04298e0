"""Optional alert webhooks: a JSON POST per alert transition, retried with backoff, off the loop.

`send` only puts the payload on a bounded queue; one daemon thread posts it to every configured
URL with urllib, retrying with exponential backoff. A webhook that is down is logged and given up
on after its retries; nothing else in the control plane notices.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("sluice.monitoring.webhooks")

QUEUE_SIZE = 1000
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0


class WebhookSender:
    def __init__(self, urls: list[str], timeout: float = 5.0, retries: int = 5, queue_size: int = QUEUE_SIZE) -> None:
        self.urls = list(urls)
        self.timeout = timeout
        self.retries = retries
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.queue_size = queue_size  # limits.webhook_queue
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sluice-webhooks", daemon=True)
        self._thread.start()

    def send(self, payload: dict[str, Any]) -> None:
        """Never blocks: a full queue drops the payload (and says so in the log)."""
        if self._stop.is_set() or not self.urls:
            return
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.dropped += 1
            log.warning(
                "webhook queue full (%d, limits.webhook_queue); alert %s not sent", self.queue_size, payload.get("id")
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            payload = self._queue.get()
            if payload is None:
                return
            body = json.dumps(payload, default=str).encode()
            for url in self.urls:
                if self._deliver(url, body):
                    self.sent += 1
                else:
                    self.failed += 1

    def _deliver(self, url: str, body: bytes) -> bool:
        delay = FIRST_BACKOFF
        for attempt in range(1, self.retries + 2):
            request = urllib.request.Request(
                url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if 200 <= response.status < 300:
                        return True
                    problem = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, ValueError) as exc:
                problem = str(getattr(exc, "reason", exc))
            if attempt > self.retries or self._stop.is_set():
                log.warning("webhook %s failed after %d attempts (%s); giving up on this alert", url, attempt, problem)
                return False
            log.info("webhook %s attempt %d failed (%s); retrying in %.1f s", url, attempt, problem, delay)
            if self._stop.wait(delay):
                return False
            delay = min(delay * 2, MAX_BACKOFF)
        return False

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)
