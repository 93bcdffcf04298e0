"""Retraining triggers: run a configured command, register what it produced, start a challenger.

Per `[[retraining]]` entry of the config, a run is due when one of its triggers holds — the
champion (or the last run) is older than `max_age_hours`, at least `new_labeled_samples` labels
were joined since the last run, or the deployment's health is critical (`on_critical`) — and the
rate limits allow it (`min_hours_between` since the last run, at most `max_per_day` in 24 h).

The command runs as an asyncio subprocess with SLUICE_DEPLOYMENT, SLUICE_REASON, SLUICE_OUTPUT
(where to write the ONNX file), SLUICE_BASELINE_OUTPUT and SLUICE_CONTROLPLANE in its
environment. Its output is registered as `MODEL:retrain-YYYYmmddHHMMSS`; when the experiments
engine is available and `start_experiment` is set, it is started as a challenger.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.config import RetrainingConfig
from controlplane.context import Context
from controlplane.deployment_reads import deployment_info, find_deployment
from controlplane.domain import SYSTEM, VersionInfo
from controlplane.monitoring.query import labeled_since
from controlplane.monitoring.state import state_of
from controlplane.registry import NewVersion, register_file
from controlplane.store.models import ModelVersionRow, RetrainingRunRow, utcnow
from core.errors import AlreadyExists, NotFound, SluiceError
from core.names import validate_name
from core.vocabulary import Health, RetrainingState

log = logging.getLogger("sluice.retraining")

MAX_DETAIL = 4000
OUTPUT_TAIL = 1500


@dataclass(frozen=True)
class RunInfo:
    id: int
    deployment: str
    reason: str
    state: RetrainingState
    model: str
    version: str
    detail: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class StartedRun:
    id: int
    reason: str
    champion: VersionInfo


def list_runs(ctx: Context, deployment: str = "", limit: int = 200) -> list[RunInfo]:
    if deployment:
        validate_name("deployment", deployment)
    with ctx.db.session() as session:
        query = (
            select(RetrainingRunRow, ModelVersionRow.model, ModelVersionRow.version)
            .outerjoin(ModelVersionRow, ModelVersionRow.id == RetrainingRunRow.produced_version_id)
            .order_by(RetrainingRunRow.id.desc())
            .limit(limit)
        )
        if deployment:
            query = query.where(RetrainingRunRow.deployment == deployment)
        return [
            RunInfo(
                id=row.id,
                deployment=row.deployment,
                reason=row.reason,
                state=RetrainingState(row.state),
                model=model or "",
                version=version or "",
                detail=row.detail,
                started_at=row.started_at,
                finished_at=row.finished_at,
            )
            for row, model, version in session.execute(query)
        ]


def _due(
    session: Session,
    rc: RetrainingConfig,
    champion: VersionInfo,
    runs: list[RetrainingRunRow],
    now: datetime,
    health: Health,
) -> str | None:
    """The reason a run is due now, or None (rate limits checked by the caller)."""
    last = runs[0].started_at if runs else None
    if rc.on_critical and health == Health.CRITICAL:
        return f"deployment {rc.deployment} health is critical"
    if rc.max_age_hours > 0:
        reference = max(champion.created_at, last) if last else champion.created_at
        age_hours = (now - reference).total_seconds() / 3600
        if age_hours >= rc.max_age_hours:
            what = "the last retraining" if last and last > champion.created_at else f"champion {champion.ref}"
            return f"{what} is {age_hours:.2f} h old (max_age_hours {rc.max_age_hours:g})"
    if rc.new_labeled_samples > 0:
        since = last or champion.created_at
        labeled = labeled_since(session, rc.deployment, since)
        if labeled >= rc.new_labeled_samples:
            return f"{labeled} new labeled samples since {since:%Y-%m-%d %H:%M:%S} (threshold {rc.new_labeled_samples})"
    return None


def start_if_due(ctx: Context, rc: RetrainingConfig, now: datetime | None = None) -> StartedRun | None:
    """Record a new run when a trigger holds and the rate limits allow; one transaction."""
    now = now or utcnow()
    health = state_of(ctx).deployment_health.get(rc.deployment, Health.UNKNOWN)
    with ctx.db.session() as session:
        try:
            row = find_deployment(session, rc.deployment, lock=True)  # serialises concurrent checks
        except NotFound:
            return None
        champion = deployment_info(session, row).champion
        if champion is None:
            return None
        runs = list(
            session.scalars(
                select(RetrainingRunRow)
                .where(RetrainingRunRow.deployment == rc.deployment)
                .order_by(RetrainingRunRow.started_at.desc())
                .limit(max(rc.max_per_day, 1) + 1)
            )
        )
        if any(r.state == RetrainingState.RUNNING for r in runs):
            return None
        if runs and now - runs[0].started_at < timedelta(hours=rc.min_hours_between):
            return None
        if sum(1 for r in runs if now - r.started_at < timedelta(days=1)) >= rc.max_per_day:
            return None
        reason = _due(session, rc, champion, runs, now, health)
        if reason is None:
            return None
        run = RetrainingRunRow(
            deployment=rc.deployment, reason=reason, state=RetrainingState.RUNNING, detail="", started_at=now
        )
        session.add(run)
        session.flush()
        started = StartedRun(run.id, reason, champion)
    ctx.events.publish("retraining", rc.deployment, f"retraining run {started.id} started: {reason}")
    log.info("retraining run %s for %s started: %s", started.id, rc.deployment, reason)
    return started


def finish_run(ctx: Context, run_id: int, state: RetrainingState, detail: str, version_id: int | None = None) -> None:
    with ctx.db.session() as session:
        row = session.get(RetrainingRunRow, run_id, with_for_update=True)
        if row is None:
            return
        row.state = state
        row.detail = detail[:MAX_DETAIL]
        row.produced_version_id = version_id
        row.finished_at = utcnow()
        deployment = row.deployment
    ctx.events.publish("retraining", deployment, f"retraining run {run_id} {state}: {detail[:200]}")
    (log.info if state == RetrainingState.SUCCEEDED else log.warning)("retraining run %s %s: %s", run_id, state, detail)


def abandon_running(ctx: Context) -> int:
    """At start: runs left 'running' by a previous process will never finish; mark them failed."""
    with ctx.db.session() as session:
        rows = session.scalars(select(RetrainingRunRow).where(RetrainingRunRow.state == RetrainingState.RUNNING)).all()
        for row in rows:
            row.state = RetrainingState.FAILED
            row.detail = "the control plane stopped while this run was in progress"
            row.finished_at = utcnow()
        return len(rows)


def _label(now: datetime) -> str:
    return f"retrain-{now:%Y%m%d%H%M%S}"


def register_result(
    ctx: Context, champion: VersionInfo, reason: str, model_path: Path, baseline_path: Path | None, now: datetime
) -> VersionInfo:
    label = _label(now)
    for attempt in range(1, 100):
        new = NewVersion(
            model=champion.model,
            version=label if attempt == 1 else f"{label}-{attempt}",
            description=f"retrained for {reason}"[:2000],
            feature_names=list(champion.feature_names),
        )
        try:
            return register_file(ctx, SYSTEM, new, model_path, baseline_path)
        except AlreadyExists:
            continue
    raise AlreadyExists(f"could not find a free version label near {label}")


def experiments_engine() -> Any | None:
    """The experiments commands module, when that area provides start_experiment."""
    try:
        module = importlib.import_module("controlplane.experiments.commands")
    except ImportError:
        return None
    if not callable(getattr(module, "start_experiment", None)) or not hasattr(module, "ExperimentSpec"):
        return None
    return module


def start_challenger(ctx: Context, rc: RetrainingConfig, version: VersionInfo, reason: str) -> str:
    """Start the new version as a challenger; returns a sentence for the run's detail."""
    if not rc.start_experiment:
        return "left registered (start_experiment is off for this trigger)"
    engine = experiments_engine()
    if engine is None:
        return "left registered: the experiments engine is not available to start it as a challenger"
    name = f"{rc.deployment}-{version.version}"[:128]
    try:
        spec = engine.ExperimentSpec(
            deployment=rc.deployment,
            challenger=(version.model, version.version),
            traffic_percent=rc.experiment_traffic_percent,
            metric="mae" if version.task == "regressor" else "accuracy",
        )
        engine.start_experiment(ctx, SYSTEM, name, spec, reason=f"retraining: {reason}"[:2000])
    except SluiceError as exc:
        return f"left registered: starting experiment {name} failed: {exc.message}"
    except Exception as exc:  # the version stays registered whatever the engine does
        log.exception("starting the retraining challenger failed")
        return f"left registered: starting experiment {name} failed: {type(exc).__name__}: {exc}"
    return f"started experiment {name} with {version.ref} at {rc.experiment_traffic_percent}%"


async def execute(
    ctx: Context,
    rc: RetrainingConfig,
    run: StartedRun,
    workdir: Path,
    controlplane_address: str,
    runner: Callable[..., Any],
) -> None:
    """Run the command, register its output, maybe start the challenger, record the outcome.

    `runner(fn, *args)` runs blocking domain code off the event loop.
    """
    directory = workdir / f"run-{run.id}"
    directory.mkdir(parents=True, exist_ok=True)
    output = directory / "model.onnx"
    baseline = directory / "baseline.npy"
    env = {
        **os.environ,
        "SLUICE_DEPLOYMENT": rc.deployment,
        "SLUICE_REASON": run.reason,
        "SLUICE_OUTPUT": str(output),
        "SLUICE_BASELINE_OUTPUT": str(baseline),
        "SLUICE_CONTROLPLANE": controlplane_address,
        "SLUICE_RETRAINING_RUN": str(run.id),
        "SLUICE_CHAMPION": run.champion.ref,
    }
    try:
        process = await asyncio.create_subprocess_shell(
            rc.command,
            env=env,
            cwd=directory,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), rc.timeout_seconds)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            if isinstance(exc, asyncio.CancelledError):
                await runner(
                    finish_run, ctx, run.id, RetrainingState.FAILED, "cancelled: the control plane is stopping"
                )
                raise
            await runner(
                finish_run,
                ctx,
                run.id,
                RetrainingState.FAILED,
                f"the command did not finish within {rc.timeout_seconds:g} s",
            )
            return
        tail = out.decode(errors="replace")[-OUTPUT_TAIL:].strip()
        if process.returncode != 0:
            await runner(
                finish_run, ctx, run.id, RetrainingState.FAILED, f"the command exited with {process.returncode}: {tail}"
            )
            return
        if not output.is_file():
            await runner(
                finish_run,
                ctx,
                run.id,
                RetrainingState.FAILED,
                f"the command succeeded but wrote nothing at SLUICE_OUTPUT ({output}): {tail}",
            )
            return
        try:
            version = await runner(
                register_result,
                ctx,
                run.champion,
                run.reason,
                output,
                baseline if baseline.is_file() else None,
                utcnow(),
            )
        except SluiceError as exc:
            await runner(
                finish_run, ctx, run.id, RetrainingState.FAILED, f"registering the result failed: {exc.message}"
            )
            return
        started = await runner(start_challenger, ctx, rc, version, run.reason)
        await runner(
            finish_run, ctx, run.id, RetrainingState.SUCCEEDED, f"registered {version.ref}; {started}", version.id
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("retraining run %s failed", run.id)
        with contextlib.suppress(Exception):
            await runner(finish_run, ctx, run.id, RetrainingState.FAILED, f"{type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
