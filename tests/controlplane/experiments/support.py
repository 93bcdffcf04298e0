"""Shared pieces of the experiment tests: real models, a deployed champion, simulated windows.

Simulated windows are real `MetricWindowRow`s written through the monitoring area's own
`WindowSummary`, so the engine reads them back exactly as it reads what agents report.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from controlplane import deployment_reads, deployments, registry
from controlplane.agenthub import agents, fleet
from controlplane.context import Context
from controlplane.domain import Principal, Role, VersionInfo
from controlplane.experiments import commands
from controlplane.experiments.rollout import RolloutEngine, Transition
from controlplane.experiments.spec import ExperimentInfo, ExperimentSpec
from controlplane.monitoring.summary import WindowSummary
from controlplane.onnx_export import export_onnx
from controlplane.sample_data import breast_cancer_arrays
from controlplane.store.models import MetricWindowRow
from controlplane.training import train_model
from core.sketch import LatencySketch
from core.summaries import Moments
from core.vocabulary import AgentState
from tests.harness import unique
from tests.models import make_classifier_onnx, make_regressor_onnx

ALICE = Principal("alice", Role.OPERATOR)
WEAK_FEATURE = 1  # "mean texture": on its own a poor predictor (accuracy about 0.7)
_lock = threading.Lock()


def _cached(path: Path, write: object) -> Path:
    with _lock:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}{path.suffix}")
            try:
                write(tmp)  # type: ignore[operator]
                os.replace(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
    return path


def make_weak_classifier_onnx(directory: Path) -> Path:
    """A deliberately weak champion: logistic regression that only sees one feature.

    The other 29 columns are zero during training, so their weights stay exactly 0 and the model
    takes the same [N, 30] input as every other breast-cancer classifier.
    """

    def write(tmp: Path) -> None:
        X, y = breast_cancer_arrays()
        masked = np.zeros_like(X)
        masked[:, WEAK_FEATURE] = X[:, WEAK_FEATURE]
        export_onnx(train_model(masked, y, "logreg", 0), X.shape[1], tmp)

    return _cached(Path(directory) / "classifier-weak.onnx", write)


def make_narrow_classifier_onnx(directory: Path, width: int = 10) -> Path:
    """A classifier on the first `width` features only: a different input schema."""

    def write(tmp: Path) -> None:
        X, y = breast_cancer_arrays()
        export_onnx(train_model(X[:, :width], y, "logreg", 0), width, tmp)

    return _cached(Path(directory) / f"classifier-narrow-{width}.onnx", write)


def make_gbr_onnx(directory: Path) -> Path:
    """A gradient-boosted regressor of the benign label (a better regressor than ridge)."""

    def write(tmp: Path) -> None:
        X, y = breast_cancer_arrays()
        export_onnx(train_model(X, y.astype(np.float64), "gbr", 0), X.shape[1], tmp)

    return _cached(Path(directory) / "regressor-gbr.onnx", write)


FLEET_AGENT = "fleet-agent"


def fleet_serves_everything(ctx: Context) -> None:
    """One connected agent applies the current generation of every deployment, as the AgentHub
    records a real agent's ACK: a rollout step goes live only when the fleet serves it."""
    hello = agents.validate_hello(FLEET_AGENT, FLEET_AGENT, "test-host", "127.0.0.1:7500", {}, {})
    if FLEET_AGENT not in {a.id for a in fleet.list_agents(ctx) if a.state == AgentState.CONNECTED}:
        agents.agent_connected(ctx, hello)
    agents.record_applied(ctx, FLEET_AGENT, {d.name: d.generation for d in deployment_reads.list_deployments(ctx)})


@dataclass
class Setup:
    deployment: str
    model: str
    champion: VersionInfo
    challenger: VersionInfo


def register(ctx: Context, model: str, version: str, path: Path) -> VersionInfo:
    return registry.register_file(ctx, ALICE, registry.NewVersion(model=model, version=version), path, None)


def model_path(models_dir: Path, kind: str) -> Path:
    """'weak' (one feature), 'gbr' (regressor) or a kind of tests.models.make_classifier_onnx."""
    if kind == "weak":
        return make_weak_classifier_onnx(models_dir)
    if kind == "gbr":
        return make_gbr_onnx(models_dir)
    if kind == "ridge":
        return make_regressor_onnx(models_dir)
    return make_classifier_onnx(models_dir, kind)


def deployed_pair(ctx: Context, models_dir: Path, champion_kind: str = "logreg", challenger_kind: str = "gbm") -> Setup:
    """Two versions of one model, the first deployed as champion of a fresh deployment."""
    model = unique("cancer")
    champion_path = model_path(models_dir, champion_kind)
    challenger_path = model_path(models_dir, challenger_kind)
    champion = register(ctx, model, "v1", champion_path)
    challenger = register(ctx, model, "v2", challenger_path)
    deployment = unique("dep")
    deployments.deploy(ctx, ALICE, deployment, model, "v1")
    return Setup(deployment, model, champion, challenger)


def add_window(
    ctx: Context,
    deployment: str,
    version_id: int,
    experiment: str,
    at: datetime,
    *,
    role: str = "champion",
    requests: int = 0,
    n_labeled: int = 0,
    n_correct: int = 0,
    errors: int = 0,
    latencies: np.ndarray | None = None,
    abs_errors: np.ndarray | None = None,
    shadow: tuple[int, int, int, int, int] | None = None,
    agent: str = "",
) -> None:
    """One reported window (by `agent`): counts, latency sketch, feedback, shadow pairs (pairs,
    agreements, labeled pairs, champion-only correct, challenger-only correct)."""
    sketch = LatencySketch(0.01)
    if latencies is not None:
        sketch.add_many(latencies)
    summary = WindowSummary(
        requests=requests,
        rows=requests,
        errors={"INTERNAL": errors} if errors else {},
        latency=sketch,
        n_labeled=n_labeled,
        n_correct=n_correct,
    )
    if abs_errors is not None:
        summary.abs_error = Moments.of(abs_errors)
        summary.sum_abs_error = float(np.sum(abs_errors))
    if shadow is not None:
        (
            summary.shadow_pairs,
            summary.shadow_agreements,
            summary.shadow_labeled_pairs,
            summary.champion_only_correct,
            summary.challenger_only_correct,
        ) = shadow
    with ctx.db.session() as session:
        session.add(
            MetricWindowRow(
                deployment=deployment,
                version_id=version_id,
                agent_id=agent,
                role=role,
                experiment=experiment,
                resolution="raw",
                window_start=at,
                window_seconds=1.0,
                requests=summary.requests,
                errors=summary.n_errors,
                n_labeled=summary.n_labeled,
                n_correct=summary.n_correct,
                summary=summary.to_json(),
            )
        )


def simulate_step(
    ctx: Context,
    setup: Setup,
    experiment: str,
    start: datetime,
    *,
    percent: int,
    requests: int,
    accuracy: tuple[float, float],
    seed: int,
    windows: int = 10,
    latency: tuple[float, float] = (0.005, 0.005),
    agent: str = "",
) -> None:
    """`windows` one-second windows from `start` + 5 s, reported by `agent`: requests split by
    `percent` (a multinomial draw, so the split matches the weights as a real router's would),
    every request labeled, each arm correct with its accuracy, lognormal latencies around the
    given medians (seconds)."""
    rng = np.random.default_rng(seed)
    per_window = requests // windows
    for w in range(windows):
        at = start + timedelta(seconds=5 + w)
        to_challenger = int(rng.binomial(per_window, percent / 100))
        arms = (
            (setup.champion.id, "champion", per_window - to_challenger, accuracy[0], latency[0]),
            (setup.challenger.id, "challenger", to_challenger, accuracy[1], latency[1]),
        )
        for version_id, role, n, acc, median in arms:
            if n == 0:
                continue
            add_window(
                ctx,
                setup.deployment,
                version_id,
                experiment,
                at,
                role=role,
                requests=n,
                n_labeled=n,
                n_correct=int(rng.binomial(n, acc)),
                latencies=rng.lognormal(np.log(median), 0.3, n),
                agent=agent,
            )


#: the hold of every step in the engine tests (the engine's clock is injected: nobody waits)
HOLD = 60.0


def start(ctx: Context, s: Setup, **kw: object) -> ExperimentInfo:
    """Start a 10 -> 50 -> 100 rollout of the challenger (override with keyword arguments); the
    fleet serves its first step."""
    spec = ExperimentSpec(
        deployment=s.deployment,
        challenger=(s.model, s.challenger.version),
        **{"plan": [10, 50, 100], "hold_seconds": HOLD, "min_samples": 50, **kw},  # type: ignore[arg-type]
    )
    started = commands.start_experiment(ctx, ALICE, unique("exp"), spec, reason="test")
    fleet_serves_everything(ctx)
    return started


def tick(ctx: Context, at: datetime) -> list[Transition]:
    """The fleet applies every change so far (as agents ACK), then the engine ticks at `at`."""
    fleet_serves_everything(ctx)
    return RolloutEngine(ctx, clock=lambda: at).tick()
