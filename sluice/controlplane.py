"""`sluice.ControlPlane`: the control plane's API for scripts, with typed results.

A thin layer over `core.client.SluiceClient` (what the CLI and the TUI use): the same calls, the
same server-side checks, the same messages; results as `sluice.results` dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from core.client import SluiceClient
from core.names import parse_version_ref
from protos import common_pb2, controlplane_pb2
from sluice._calls import translated
from sluice.results import Agent, Alert, Deployment, Experiment, Status, Sync, Version


def _version_ref(text: str) -> common_pb2.VersionRef:
    model, version = parse_version_ref(text)  # the CLI's rule and message; InvalidInput when wrong
    return common_pb2.VersionRef(model=model, version=version)


class ControlPlane:
    """`address` defaults to SLUICE_CONTROLPLANE (else 127.0.0.1:7400), `token` to SLUICE_TOKEN;
    TLS comes from SLUICE_TLS_CA (+ SLUICE_TLS_CERT/KEY) as for the CLI. Use it as a context
    manager, or call `close()`."""

    @translated
    def __init__(self, address: str | None = None, token: str | None = None, *, timeout: float = 30.0) -> None:
        self._client = SluiceClient(address, token, timeout=timeout)

    @property
    def address(self) -> str:
        return self._client.address

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ControlPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- registry ----

    @translated
    def register(
        self, ref: str, model_path: str | Path, *, baseline: str | Path | None = None, description: str = ""
    ) -> Version:
        """Upload an ONNX model as `model:version` (with a baseline .npy of training inputs, for
        drift). The control plane validates it before storing anything."""
        r = _version_ref(ref)
        return Version.from_wire(
            self._client.register_version(
                r.model,
                r.version,
                Path(model_path),
                Path(baseline) if baseline is not None else None,
                description=description,
            )
        )

    @translated
    def versions(self, model: str = "") -> list[Version]:
        return [Version.from_wire(v) for v in self._client.list_versions(model)]

    # ---- deployments ----

    @translated
    def deploy(self, deployment: str, version: str, *, reason: str = "") -> Deployment:
        """Make `version` the champion of `deployment` at 100% (creates the deployment)."""
        _version_ref(version)
        return Deployment.from_wire(self._client.deploy(deployment, version, reason=reason))

    @translated
    def set_traffic(
        self, deployment: str, weights: Mapping[str, int], *, expected_generation: int | None = None, reason: str = ""
    ) -> Deployment:
        """`weights` maps "model:version" to percent (summing to 100); the first is the champion."""
        for version in weights:
            _version_ref(version)
        return Deployment.from_wire(
            self._client.set_traffic(deployment, dict(weights), expected_generation=expected_generation, reason=reason)
        )

    @translated
    def rollback(self, deployment: str, to: str | None = None, *, reason: str = "") -> Deployment:
        if to:
            _version_ref(to)
        return Deployment.from_wire(self._client.rollback(deployment, to, reason=reason))

    @translated
    def deployments(self) -> list[Deployment]:
        return [Deployment.from_wire(d) for d in self._client.list_deployments()]

    @translated
    def deployment(self, name: str) -> Deployment:
        return Deployment.from_wire(self._client.get_deployment(name))

    @translated
    def wait_for_sync(self, deployment: str, *, generation: int = 0, timeout: float = 30.0) -> Sync:
        """Wait until every connected agent serves `generation` (0: the current one), or timeout."""
        return Sync.from_wire(self._client.wait_for_sync(deployment, generation, timeout))

    # ---- experiments ----

    @translated
    def start_experiment(
        self,
        name: str,
        deployment: str,
        challenger: str,
        *,
        plan: Sequence[int] = (),
        traffic_percent: int = 10,
        metric: str = "accuracy",
        min_samples: int = 0,
        alpha: float = 0.05,
        min_improvement: float = 0.0,
        sequential: bool = False,
        hold_seconds: float | None = None,
        auto_promote: bool = False,
        shadow: bool = False,
        reason: str = "",
    ) -> Experiment:
        """The same experiment `sluice experiment start` starts; `plan` (e.g. [10, 50, 100]) makes it a
        progressive rollout, `hold_seconds` None means the configured hold per step."""
        config = controlplane_pb2.ExperimentConfig(
            deployment=deployment,
            challenger=_version_ref(challenger),
            traffic_percent=traffic_percent,
            metric=metric,
            min_samples=min_samples,
            alpha=alpha,
            min_improvement=min_improvement,
            sequential=sequential,
            plan=list(plan),
            auto_promote=auto_promote,
            shadow=shadow,
        )
        if hold_seconds is not None:
            # 0 on the wire means "the configured default"; a tiny hold stands for "no hold".
            config.hold_seconds = hold_seconds if hold_seconds > 0 else 1e-6
        return Experiment.from_wire(self._client.start_experiment(name, config, reason))

    @translated
    def experiment(self, name: str) -> Experiment:
        return Experiment.from_wire(self._client.get_experiment(name))

    @translated
    def experiments(self, deployment: str = "", *, include_finished: bool = False) -> list[Experiment]:
        return [Experiment.from_wire(e) for e in self._client.list_experiments(deployment, include_finished)]

    @translated
    def stop_experiment(self, name: str, reason: str = "") -> Experiment:
        return Experiment.from_wire(self._client.experiment_action("StopExperiment", name, reason))

    @translated
    def pause_experiment(self, name: str, reason: str = "") -> Experiment:
        """Traffic stays as it is; the rollout clock stops and no gate is checked until resumed."""
        return Experiment.from_wire(self._client.experiment_action("PauseExperiment", name, reason))

    @translated
    def resume_experiment(self, name: str, reason: str = "") -> Experiment:
        return Experiment.from_wire(self._client.experiment_action("ResumeExperiment", name, reason))

    @translated
    def abort_experiment(self, name: str, reason: str = "") -> Experiment:
        return Experiment.from_wire(self._client.experiment_action("AbortExperiment", name, reason))

    @translated
    def promote(self, name: str, reason: str = "") -> Deployment:
        """Make the experiment's challenger the champion at 100%."""
        return Deployment.from_wire(self._client.experiment_action("Promote", name, reason))

    # ---- monitoring ----

    @translated
    def status(self, deployment: str) -> Status:
        """Health, traffic and metrics of one deployment over the configured window."""
        found = self._client.status(deployment)
        return Status.from_wire(found[0])

    @translated
    def alerts(self, deployment: str = "", *, include_resolved: bool = False) -> list[Alert]:
        return [Alert.from_wire(a) for a in self._client.alerts(include_resolved, deployment)]

    @translated
    def acknowledge(self, alert_id: int) -> Alert:
        return Alert.from_wire(self._client.ack_alert(alert_id))

    @translated
    def agents(self) -> list[Agent]:
        return [Agent.from_wire(a) for a in self._client.agents()]
