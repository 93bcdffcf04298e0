"""The agent process: gRPC services, the control-plane link, metrics, graceful shutdown.

Start order gives static stability: the cached snapshot is loaded and served before the control
plane is contacted, so an agent restarted while the control plane is down serves at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from agent.cache import AgentCache
from agent.core import AgentCore
from agent.journal import WindowJournal
from agent.label_spool import LabelSpool
from agent.link import ControlPlaneLink, LinkOptions
from agent.logship import LogShipper
from agent.oip_service import OipService
from agent.options import AgentOptions, AgentStartError, default_name, split_host, tls_credentials
from agent.predlog import PredictionLog
from agent.prometheus import AgentPrometheus
from agent.recorder import MetricsRecorder
from agent.reports import ReportBuffer, open_reports
from agent.services import PARSERS, InferenceService
from agent.serving import ServingTable, SnapshotApplier
from core.decoding import DecodingRegistrar
from core.lifecycle import metrics_port_for, wait_for_stop_signal
from core.memory import keep_freed_memory
from protos import agent_pb2, inference_pb2, inference_pb2_grpc, oip_pb2, oip_pb2_grpc
from runtime import sandbox

log = logging.getLogger("sluice.agent")

SERVICE_NAMES = (
    inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name,
    oip_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
)


class AgentServer:
    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self.port = 0
        self.metrics_port = 0
        self.name = options.name
        self.core: AgentCore | None = None
        self.link: ControlPlaneLink | None = None
        self.reports: ReportBuffer | None = None
        self._server: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self._tasks: list[asyncio.Task[None]] = []
        self._prometheus = AgentPrometheus()
        self._recorder: MetricsRecorder | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.predlog: PredictionLog | None = None
        self.shipper: LogShipper | None = None
        self._reported_log_drops = 0  # the log's dropped rows as the last metric report carried them

    @property
    def address(self) -> str:
        host, _ = split_host(self.options.listen)
        return f"{host}:{self.port}"

    async def start(self) -> None:
        options = self.options
        if options.keep_freed_memory_mb > 0:
            keep_freed_memory(trim_mb=options.keep_freed_memory_mb)  # per-request buffers reuse their pages
        host, listen_port = split_host(options.listen)
        try:
            probe_limits = sandbox.Limits(options.model_timeout_seconds, options.model_memory_mb, niceness=10)
        except ValueError as exc:
            raise AgentStartError(str(exc)) from None
        try:
            metrics_port = metrics_port_for(listen_port, options.metrics_port)
        except ValueError as exc:
            raise AgentStartError(str(exc)) from None
        limit = options.max_message_bytes
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", max(limit, 64 << 20)),
                ("grpc.so_reuseport", 0),
            ]
        )
        # TLS files are read and checked before anything listens: a bad file is one clear line.
        server_tls, link_tls = tls_credentials(options)
        try:
            if server_tls is not None:
                self.port = server.add_secure_port(options.listen, server_tls)
            else:
                self.port = server.add_insecure_port(options.listen)
        except RuntimeError as exc:
            raise AgentStartError(f"cannot listen on {options.listen}: {exc}") from exc
        if self.port == 0:
            raise AgentStartError(f"cannot listen on {options.listen}: the address is in use or invalid")
        self.name = options.name or default_name(self.port)
        cache = AgentCache(options.cache or Path("sluice-data") / f"agent-{self.name}")
        agent_id = cache.agent_id()
        journal: WindowJournal | None = None
        try:
            reports, journal = await asyncio.to_thread(open_reports, cache, agent_id, options.report_buffer)
        except OSError as exc:
            # Serving comes first: a cache that cannot hold the spool (disk full, read-only) costs
            # durability, not the agent.
            log.warning("cannot open the report spool in %s: %s; reports kept in memory only", cache.root, exc)
            reports = ReportBuffer(agent_id, options.report_buffer, reserve=cache.reserve_seqs)
        self.reports = reports
        self._recorder = MetricsRecorder(window_seconds=1.0, journal=journal)
        core = self.core = AgentCore(self.name, agent_id, self._recorder, self._prometheus)
        core.defer = asyncio.get_running_loop().call_soon
        core.waiting_for = f"the control plane at {options.controlplane}"
        if options.log_buffer_mb > 0:
            self.predlog = core.predlog = PredictionLog(cache.root / "log", self.name, options.log_buffer_mb << 20)
            self.predlog.start()
        applier = SnapshotApplier(cache, probe_limits)
        # The sandbox's forkserver imports onnxruntime in its own process while this one starts
        # serving and connects: the first new model is probed without waiting for it.
        sandbox.start("agent.serving")

        cached = cache.load_snapshot()
        if cached is not None and cached.deployments:
            applier.verify_cached, applier.probe_new = True, False
            table, problems = await applier.apply(cached, None, None)
            applier.verify_cached, applier.probe_new = False, True
            if table.deployments:
                await self._swap(table)
                log.info("serving %d deployment(s) from the cache", len(table.deployments))
            for problem in problems:
                log.warning("cached snapshot: %s", problem)

        self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="sluice-batch")
        registrar = DecodingRegistrar(server, PARSERS)  # an undecodable request: INVALID_ARGUMENT
        inference_pb2_grpc.add_InferenceServicer_to_server(InferenceService(core, self._pool), registrar)
        oip_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(OipService(core, self._pool), registrar)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, registrar)
        registrar.enable_reflection((*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name))
        await self._set_health(core.table is not None)
        await server.start()
        self._server = server

        if metrics_port is not None:
            try:
                self.metrics_port = self._prometheus.serve(host or "0.0.0.0", metrics_port)
            except OSError as exc:
                await server.stop(None)
                raise AgentStartError(
                    f"cannot serve /metrics on port {metrics_port}: {exc.strerror or exc} "
                    "(give another --metrics-port, or 0 to turn it off)"
                ) from exc

        serve_host = host if host not in ("", "0.0.0.0", "::") else socket.gethostname()
        spool = core.labels = LabelSpool(cache.root / "labels", options.label_batches)
        self._prometheus.label_counts = lambda: (len(spool), spool.dropped)
        self.link = ControlPlaneLink(
            LinkOptions(
                address=options.controlplane,
                name=self.name,
                host=options.host or socket.gethostname(),
                serve_address=f"{serve_host}:{self.port}",
                labels=dict(options.labels),
                token=options.token,
                credentials=link_tls,
                max_message_bytes=limit,
                reconnect_max_seconds=options.reconnect_max_seconds,
            ),
            agent_id,
            cache,
            applier,
            lambda: core.table,
            self._swap,
            self.reports,
            on_connected=self._prometheus.set_connected,
            labels=core.labels,
        )
        link = self.link
        self._tasks = [
            asyncio.create_task(link.run(), name="controlplane-link"),
            asyncio.create_task(self._report_loop(), name="metric-reports"),
        ]
        if self.predlog is not None:
            sink = None
            if options.log_sink:
                from agent.logsink import S3Sink, parse_sink

                sink = S3Sink(parse_sink(options.log_sink), link.agent_id, options.s3_endpoint, options.s3_region)
            self.shipper = shipper = LogShipper(
                self.predlog, link.send, lambda: link.connects, sink=sink, accepts=lambda: link.segment_format
            )
            link.on_log_ack = shipper.on_ack
            predlog = self.predlog
            self._prometheus.log_counts = lambda: (len(predlog.pending()), shipper.deferred)
            self._tasks.append(asyncio.create_task(self.shipper.run(), name="log-shipping"))

    async def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, status)

    async def _swap(self, table: ServingTable) -> None:
        assert self.core is not None and self._recorder is not None
        first = self.core.table is None
        try:
            snapshot = table.applied_snapshot()
            self._recorder.configure(snapshot)
            if self.predlog is not None:
                self.predlog.configure(snapshot)
        except Exception:
            log.exception("the metrics recorder could not take the new snapshot")
        self.core.table = table  # one reference assignment: requests see old or new, never a mix
        self._prometheus.set_generations(table.generations())
        if first:
            await self._set_health(True)

    async def _deliver_last_reports(self, wait: float) -> None:
        """Close the current window and give the control plane a moment to acknowledge it."""
        if self.link is None or self.reports is None or self._recorder is None:
            return
        try:
            await asyncio.to_thread(self._close_window)
        except Exception:
            log.exception("the metrics recorder could not flush")
        if not self.link.connected:
            return
        self.reports.forget_sent()
        self.link.send_reports()
        deadline = asyncio.get_running_loop().time() + wait
        while len(self.reports) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)

    async def _report_loop(self) -> None:
        assert self.link is not None and self.reports is not None and self._recorder is not None
        while True:
            await asyncio.sleep(self.link.report_seconds)
            try:
                await asyncio.to_thread(self._close_window)
            except Exception:
                log.exception("the metrics recorder could not flush")
                continue
            self.link.send_reports()
            if self.core is not None and self.core.labels is not None:
                try:
                    await self.core.labels.compact()  # one import per deployment and round, not per call
                except OSError:
                    log.exception("could not merge the waiting label batches; they are sent as they are")
            self.link.send_labels()

    def _close_window(self) -> None:
        """Close the metric window: its report into the spool, then its journal deleted.

        In that order: a crash between the two leaves a journal whose window id the spool holds,
        which the next start deletes instead of counting twice. Settled spool segments are deleted
        here too (after the journal: a spooled report outlives its journal). Disk I/O with an
        fsync: runs on a worker thread, never on the event loop.
        """
        assert self.reports is not None and self._recorder is not None
        report, closed = self._recorder.close_window()
        log_drops = self.predlog.dropped_rows if self.predlog is not None else 0
        if report is None and log_drops != self._reported_log_drops:
            # Rows dropped after the last answer (the log's flush runs up to 2 s later) would wait
            # for the next request to be reported: an idle agent sends a report without windows.
            report = agent_pb2.MetricReport(window_seconds=self._recorder.window_seconds)
            report.window_start.FromNanoseconds(time.time_ns() - int(self._recorder.window_seconds * 1e9))
        if report is not None:
            if self.predlog is not None:  # a running total, like dropped_reports
                report.dropped_log_rows = log_drops
                self._reported_log_drops = log_drops
            self.reports.add(report, closed.window_id if closed is not None else b"")
        if closed is not None:
            closed.remove()
        self.reports.compact()

    async def _keep_last_window(self) -> None:
        """After the drain: what was answered since the last window closed goes into the spool, and
        the unacknowledged reports stay there for the next run."""
        if self.reports is None or self._recorder is None:
            return
        try:
            await asyncio.to_thread(self._close_window)
        except Exception:
            log.exception("the metrics recorder could not flush")
        self._recorder.close_journal()  # empty (else the next start recovers it)
        self._recorder.close()  # its fold thread
        kept = len(self.reports)
        if kept:
            log.info("%d unacknowledged metric report(s) kept in the spool for the next run", kept)
        if self.reports.spool is not None:
            self.reports.spool.close()

    async def stop(self, grace: float = 5.0) -> None:
        await self._health.enter_graceful_shutdown()
        await self._deliver_last_reports(min(grace, 2.0))
        if self.link is not None and self.link.connected:
            await self.link.say_goodbye("the agent is shutting down", min(grace, 1.0))
        for task in self._tasks:
            task.cancel()
        sandbox.stop_running()  # a model probe in progress ends now, not at its timeout
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.stop(grace)
        await self._keep_last_window()
        if self.predlog is not None:
            # After the last call: what waits in memory is written (shipped at the next start).
            await asyncio.to_thread(self.predlog.stop)
            log.info(
                "prediction log: %d row(s) written in %.2f s of CPU, %d dropped",
                self.predlog.written_rows,
                self.predlog.flush_cpu_seconds,
                self.predlog.dropped_rows,
            )
        self._prometheus.close()
        if self.core is not None:
            self.core.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


async def serve(options: AgentOptions, ready: Callable[[AgentServer], None] | None = None) -> None:
    agent = AgentServer(options)
    await agent.start()
    if ready is not None:
        ready(agent)
    await wait_for_stop_signal()
    log.info("shutting down: draining calls")
    await agent.stop()
