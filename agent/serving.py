"""What the agent serves right now: an immutable routing table, swapped atomically.

`apply_snapshot` turns a Snapshot into a new `ServingTable`: it makes sure every artifact is in the
cache (fetching and verifying missing ones), opens and warms an onnxruntime session per new
sha256 (sessions of unchanged versions are reused), and builds each deployment's router. A
deployment that cannot be applied keeps its previous state; the failures become the NACK reason.
Request handlers read `state.table` once per request, so a swap never mixes two snapshots.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from agent.cache import AgentCache
from agent.router import Router, RouteSpec, Segment
from core.errors import InvalidInput, SluiceError
from core.vocabulary import SegmentSource, ServingRole
from protos import agent_pb2, common_pb2
from runtime import sandbox
from runtime.model import ModelRuntime
from runtime.session import ort_reason

log = logging.getLogger("sluice.agent")

#: fetch(sha256) -> path of the verified artifact in the cache
Fetcher = Callable[[str], Awaitable[Path]]


class ApplyError(Exception):
    """One deployment of a snapshot could not be applied."""


@dataclass(frozen=True, eq=False)
class LoadedRoute:
    index: int
    model: str
    version: str
    ref: common_pb2.VersionRef
    role: ServingRole
    role_proto: common_pb2.Role
    weight: int
    sha256: str
    task: str
    runtime: ModelRuntime

    @property
    def label(self) -> str:
        return f"{self.model}:{self.version}"


@dataclass(frozen=True, eq=False)
class LoadedDeployment:
    name: str
    generation: int
    snapshot: agent_pb2.DeploymentSnapshot
    routes: tuple[LoadedRoute, ...]
    router: Router
    champion: LoadedRoute
    shadows: tuple[LoadedRoute, ...]
    #: the policy's `fallback`: a challenger's model failure is answered by the champion
    fallback: bool = False

    def choose(self, key: str, attributes: dict[str, str] | None) -> LoadedRoute:
        return self.routes[self.router.route(key, attributes)]


@dataclass(frozen=True, eq=False)
class ServingTable:
    snapshot_id: int
    deployments: dict[str, LoadedDeployment]
    #: deployments named by the snapshot that could not be loaded yet: name -> reason
    failed: dict[str, str] = field(default_factory=dict)

    def generations(self) -> dict[str, int]:
        return {name: d.generation for name, d in self.deployments.items()}

    def digests(self) -> dict[str, str]:
        """The control plane's digest of each served deployment (echoed in Hello, ACK and NACK)."""
        return {name: d.snapshot.digest for name, d in self.deployments.items() if d.snapshot.digest}

    def applied_snapshot(self) -> agent_pb2.Snapshot:
        """What is actually served (persisted in the cache for a restart)."""
        return agent_pb2.Snapshot(
            snapshot_id=self.snapshot_id,
            deployments=[d.snapshot for _, d in sorted(self.deployments.items())],
        )

    def runtimes(self) -> dict[str, ModelRuntime]:
        return {r.sha256: r.runtime for d in self.deployments.values() for r in d.routes}


def open_runtime(path: Path) -> ModelRuntime:
    """Open and warm an onnxruntime session (blocking: call it in a thread)."""
    runtime = ModelRuntime(path)
    runtime.warm_up()
    return runtime


def probe_runtime(path: str) -> None:
    """`open_runtime` in the sandbox's child process: proves the model loads and warms up in time.

    A model onnxruntime cannot load or run raises InvalidInput with onnxruntime's reason.
    """
    try:
        open_runtime(Path(path))
    except Exception as exc:  # onnxruntime's pybind exceptions share no useful base
        raise InvalidInput(ort_reason(exc)) from exc


class ModelProbe:
    """Loads and warms up each new artifact in the sandbox before the agent loads it itself.

    A model that takes all memory or never finishes its warm-up would otherwise stop this process
    (and with it every deployment it serves). Outcomes are remembered per sha256 (the bytes decide
    them): a version proven once is not probed again, and a refused one is refused at once when a
    later snapshot names it again, until the agent restarts.
    """

    REMEMBERED = 256

    def __init__(self, limits: sandbox.Limits | None) -> None:
        #: None: no probe (the agent trusts what it loads)
        self.limits = limits
        #: sha256 -> None (proven) or (the model failed to load: True / a limit: False, the reason)
        self._outcomes: OrderedDict[str, tuple[bool, str] | None] = OrderedDict()

    def _remember(self, sha256: str, outcome: tuple[bool, str] | None) -> None:
        self._outcomes[sha256] = outcome
        self._outcomes.move_to_end(sha256)
        while len(self._outcomes) > self.REMEMBERED:
            self._outcomes.popitem(last=False)

    async def _probe(self, path: Path, limits: sandbox.Limits) -> tuple[bool, str] | None:
        try:
            await asyncio.to_thread(sandbox.run, probe_runtime, str(path), limits=limits)
        except sandbox.SandboxError as exc:
            if isinstance(exc, sandbox.SandboxMemory):
                hint = "; raise `sluice agent --model-memory-mb` if the model really needs it"
            elif isinstance(exc, sandbox.SandboxTimeout):
                hint = "; raise `sluice agent --model-timeout` if the model is just slow"
            else:
                hint = ""
            return False, f"loading and warming it up in the sandbox {exc.message}{hint}"
        except SluiceError as exc:
            return True, exc.message
        return None

    async def check(self, path: Path, sha256: str, what: str) -> None:
        """ApplyError with the reason when the model does not load and warm up within the limits."""
        if self.limits is None:
            return
        if sha256 in self._outcomes:
            outcome = self._outcomes[sha256]
        else:
            outcome = await self._probe(path, self.limits)
            self._remember(sha256, outcome)
        if outcome is not None:
            load_failed, reason = outcome
            raise ApplyError(
                f"onnxruntime cannot load {what}: {reason}" if load_failed else f"{what} was refused: {reason}"
            )


def segments_of(rules: list[common_pb2.SegmentRule]) -> list[Segment]:
    """The router's rules; a name's prefix (`feature.`, `attribute.`) says what it tests."""
    out = []
    for rule in rules:
        source, name = SegmentSource.of_name(rule.attribute)
        if rule.has_range:
            out.append(Segment(name, has_range=True, low=rule.min, high=rule.max, source=source))
        else:
            out.append(Segment(name, values=frozenset(rule.values), source=source))
    return out


#: the agent's defaults (`sluice agent --model-timeout`, `--model-memory-mb`)
DEFAULT_PROBE_LIMITS = sandbox.Limits(timeout_seconds=30.0, memory_mb=2048, niceness=10)


class SnapshotApplier:
    def __init__(self, cache: AgentCache, probe_limits: sandbox.Limits | None = DEFAULT_PROBE_LIMITS) -> None:
        self.cache = cache
        #: re-hash cached files before opening them (on the restart from the cache)
        self.verify_cached = False
        #: new artifacts load and warm up in the sandbox first; off for the cached snapshot at
        #: start, whose versions were proven before they were applied and saved
        self.probe = ModelProbe(probe_limits)
        self.probe_new = True

    async def _artifact(self, sha256: str, fetch: Fetcher | None, what: str) -> Path:
        if self.cache.has(sha256) and (not self.verify_cached or await asyncio.to_thread(self.cache.verify, sha256)):
            return self.cache.artifact_path(sha256)
        if fetch is None:
            raise ApplyError(f"the artifact of {what} ({sha256[:12]}) is not in the cache")
        return await fetch(sha256)

    async def _deployment(
        self,
        snap: agent_pb2.DeploymentSnapshot,
        fetch: Fetcher | None,
        loaded: dict[str, ModelRuntime],
    ) -> LoadedDeployment:
        if not snap.routes:
            raise ApplyError("the snapshot gives it no versions")
        routes = []
        for index, route in enumerate(snap.routes):
            what = f"{route.version.model}:{route.version.version}"
            try:
                role = ServingRole.from_wire(route.role)
            except ValueError:
                raise ApplyError(f"{what} has no role") from None
            runtime = loaded.get(route.sha256)
            if runtime is None:
                path = await self._artifact(route.sha256, fetch, what)
                if self.probe_new:
                    await self.probe.check(path, route.sha256, what)
                try:
                    runtime = await asyncio.to_thread(open_runtime, path)
                except Exception as exc:
                    raise ApplyError(f"onnxruntime cannot load {what}: {exc}") from exc
                loaded[route.sha256] = runtime
            routes.append(
                LoadedRoute(
                    index=index,
                    model=route.version.model,
                    version=route.version.version,
                    ref=common_pb2.VersionRef(model=route.version.model, version=route.version.version),
                    role=role,
                    role_proto=route.role,
                    weight=route.weight,
                    sha256=route.sha256,
                    task=route.task,
                    runtime=runtime,
                )
            )
        try:
            router = Router(
                [RouteSpec(r.weight, r.role) for r in routes],
                snap.salt,
                segments_of(list(snap.segment_rules)),
            )
        except ValueError as exc:
            raise ApplyError(str(exc)) from exc
        return LoadedDeployment(
            name=snap.name,
            generation=snap.generation,
            snapshot=snap,
            routes=tuple(routes),
            router=router,
            champion=routes[router.champion],
            shadows=tuple(routes[i] for i in router.shadows),
            fallback=snap.fallback,
        )

    async def apply(
        self, snapshot: agent_pb2.Snapshot, current: ServingTable | None, fetch: Fetcher | None
    ) -> tuple[ServingTable, list[str]]:
        """The new table and the reasons of the deployments that kept their previous state."""
        previous = current.deployments if current is not None else {}
        loaded = current.runtimes() if current is not None else {}
        deployments: dict[str, LoadedDeployment] = {}
        failed: dict[str, str] = {}
        problems: list[str] = []
        for snap in snapshot.deployments:
            old = previous.get(snap.name)
            if old is not None and old.generation == snap.generation and old.snapshot == snap:
                deployments[snap.name] = old
                continue
            try:
                deployments[snap.name] = await self._deployment(snap, fetch, loaded)
            except (ApplyError, OSError) as exc:
                reason = f"deployment {snap.name} generation {snap.generation}: {exc}"
                problems.append(reason)
                failed[snap.name] = str(exc)
                if old is not None:
                    deployments[snap.name] = old  # the previous version keeps serving
        return ServingTable(snapshot.snapshot_id, deployments, failed), problems
