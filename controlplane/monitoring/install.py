"""The monitoring area on the server: its loops, the /metrics endpoint and the alert webhooks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controlplane.host import AreaHost
from controlplane.monitoring import alert_views, evaluator, retraining, rollup
from controlplane.monitoring.health import connected_agents
from controlplane.monitoring.state import state_of
from controlplane.monitoring.webhooks import WebhookSender
from controlplane.predlog.retention import retention_once
from core.errors import InvalidInput

log = logging.getLogger("sluice.monitoring")


def install(server: AreaHost) -> None:
    ctx = server.ctx
    assert ctx is not None
    loop = asyncio.get_running_loop()
    state = state_of(ctx)
    config = ctx.config

    async def run(fn: Any, *args: Any) -> Any:
        return await loop.run_in_executor(server.executor, fn, *args)

    port = server.metrics_port
    if port is not None:
        host = server.options.listen.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"
        try:
            server.metrics_port = state.metrics.serve(host, port)
        except OSError as exc:
            raise InvalidInput(
                f"cannot serve /metrics on {host}:{port}: {exc.strerror or exc} "
                "(give another --metrics-port, or 0 to turn it off)"
            ) from None
        log.info("control-plane metrics on http://%s:%d/metrics", host, server.metrics_port)

    if config.alerts.webhooks:
        state.webhooks = WebhookSender(
            config.alerts.webhooks,
            config.alerts.webhook_timeout_seconds,
            config.alerts.webhook_retries,
            queue_size=config.limits.webhook_queue,
        )

    def read_store() -> tuple[int, dict[str, int]]:
        return connected_agents(ctx), alert_views.open_counts(ctx)

    state.metrics.watch_store(read_store)

    async def evaluate_loop() -> None:
        while True:
            await asyncio.sleep(config.alerts.evaluate_seconds)
            try:
                await run(evaluator.evaluate_once, ctx)
            except Exception:
                log.exception("health evaluation failed; trying again next round")

    async def rollup_loop() -> None:
        while True:
            try:
                await run(rollup.rollup_once, ctx)
            except Exception:
                log.exception("rollup failed; trying again next round")
            await asyncio.sleep(config.retention.rollup_interval_seconds)

    async def log_retention_loop() -> None:
        while True:
            try:
                result = await run(retention_once, ctx)
                if result.segments_by_age:
                    state.metrics.log_segments_deleted.labels("age").inc(result.segments_by_age)
                if result.segments_by_size:
                    state.metrics.log_segments_deleted.labels("size").inc(result.segments_by_size)
                if result.bytes:
                    state.metrics.log_bytes_deleted.labels("retention").inc(result.bytes)
                if result.rows or result.label_imports:
                    log.info(
                        "log retention: %d segment(s) (%d rows, %d bytes) and %d label import(s) deleted",
                        result.segments_by_age + result.segments_by_size, result.rows, result.bytes,
                        result.label_imports,
                    )  # fmt: skip
            except Exception:
                log.exception("log retention failed; trying again next round")
            await asyncio.sleep(config.log.retention_interval_seconds)

    running: set[asyncio.Task[None]] = set()

    async def retraining_loop() -> None:
        abandoned = await run(retraining.abandon_running, ctx)
        if abandoned:
            log.warning("%d retraining run(s) left running by a previous process marked failed", abandoned)
        workdir = ctx.artifacts.root / "retraining"
        while True:
            await asyncio.sleep(config.alerts.evaluate_seconds)
            for rc in config.retraining:
                try:
                    started = await run(retraining.start_if_due, ctx, rc)
                except Exception:
                    log.exception("checking the retraining triggers of %s failed", rc.deployment)
                    continue
                if started is None:
                    continue
                task = asyncio.create_task(
                    retraining.execute(ctx, rc, started, workdir, server.address, run),
                    name=f"retraining-{started.id}",
                )
                running.add(task)
                task.add_done_callback(running.discard)

    server.spawn("monitoring-evaluate", evaluate_loop)
    server.spawn("monitoring-rollup", rollup_loop)
    if config.log.retention_days or config.log.max_bytes or config.labels.retention_days:
        server.spawn("log-retention", log_retention_loop)
    if config.retraining:
        server.spawn("monitoring-retraining", retraining_loop)

    async def stop() -> None:
        for task in list(running):
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        state.metrics.close()
        if state.webhooks is not None:
            await asyncio.to_thread(state.webhooks.close)

    server.on_stop(stop)
