"""Typed Python client of the control plane: what scripts, the CLI and the TUI use.

Every failure surfaces as `ClientError` with the gRPC status name and the server's message.
`batch_request` and `batch_results` build an agent's PredictBatch request and read its columnar
answer as numpy arrays.

Over 400 lines on purpose: one method per ControlPlane RPC, so the API's whole surface as a script
sees it is one class in one file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from core.errors import InvalidInput
from core.tensors import encode_record, encode_tensor
from protos import common_pb2, controlplane_pb2, controlplane_pb2_grpc, inference_pb2

DEFAULT_ADDRESS = "127.0.0.1:7400"
UPLOAD_CHUNK = 1 << 20
DEFAULT_TIMEOUT = 30.0


class ClientError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def ref(text_or_pair: str | tuple[str, str]) -> common_pb2.VersionRef:
    if isinstance(text_or_pair, tuple):
        model, version = text_or_pair
    else:
        model, sep, version = text_or_pair.partition(":")
        if not sep:
            raise ClientError(grpc.StatusCode.INVALID_ARGUMENT, f"{text_or_pair!r} is not MODEL:VERSION")
    return common_pb2.VersionRef(model=model, version=version)


def channel_credentials(ca_file: str | None = None) -> grpc.ChannelCredentials | None:
    """TLS when SLUICE_TLS_CA (or ca_file) names a CA bundle; plaintext otherwise.

    SLUICE_TLS_CERT/SLUICE_TLS_KEY add a client certificate (mutual TLS). A missing or bad file
    raises a one-line `TlsError` naming it.
    """
    from core.tls import env_channel_credentials

    return env_channel_credentials(ca_file)


def with_default_port(address: str, port: int = 7400) -> str:
    """`host` alone means the default port (gRPC itself would try 443)."""
    bare = ":" not in address or (address.startswith("[") and address.endswith("]"))
    return f"{address}:{port}" if bare else address


#: messages up to 64 MiB each way: a model upload chunk, a large PredictBatch
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)]


def open_channel(address: str, ca_file: str | None = None) -> grpc.Channel:
    """A channel to a control plane or an agent: TLS when configured (see channel_credentials)."""
    credentials = channel_credentials(ca_file)
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=CHANNEL_OPTIONS)
    return grpc.insecure_channel(address, options=CHANNEL_OPTIONS)


class SluiceClient:
    def __init__(
        self,
        address: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ca_file: str | None = None,
    ) -> None:
        self.address = with_default_port(address or os.environ.get("SLUICE_CONTROLPLANE") or DEFAULT_ADDRESS)
        self.token = token if token is not None else os.environ.get("SLUICE_TOKEN")
        if self.token and not all(33 <= ord(c) <= 126 for c in self.token):
            # gRPC would refuse the header with lines of its own and an INTERNAL error.
            raise InvalidInput(
                "the token (SLUICE_TOKEN) has a space, a line break or a non-ASCII character; "
                "tokens are printable ASCII (was the file saved with Windows line endings?)"
            )
        self.timeout = timeout
        self.ca_file = ca_file
        self.channel = open_channel(self.address, ca_file)
        self.stub = controlplane_pb2_grpc.ControlPlaneStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> SluiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")] if self.token else []

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self.stub, method)(
                request, timeout=timeout or self.timeout, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, ca_file=self.ca_file) from None

    # ---- registry ----

    def register_version(
        self,
        model: str,
        version: str,
        model_path: Path,
        baseline_path: Path | None = None,
        *,
        description: str = "",
        feature_names: Iterable[str] = (),
    ) -> common_pb2.ModelVersion:
        model_path = Path(model_path)
        sizes = (model_path.stat().st_size, baseline_path.stat().st_size if baseline_path else 0)

        def chunks() -> Iterator[controlplane_pb2.RegisterVersionChunk]:
            yield controlplane_pb2.RegisterVersionChunk(
                header=controlplane_pb2.RegisterVersionHeader(
                    ref=common_pb2.VersionRef(model=model, version=version),
                    description=description,
                    model_size=sizes[0],
                    baseline_size=sizes[1],
                    feature_names=list(feature_names),
                )
            )
            with model_path.open("rb") as handle:
                while data := handle.read(UPLOAD_CHUNK):
                    yield controlplane_pb2.RegisterVersionChunk(model_chunk=data)
            if baseline_path:
                with Path(baseline_path).open("rb") as handle:
                    while data := handle.read(UPLOAD_CHUNK):
                        yield controlplane_pb2.RegisterVersionChunk(baseline_chunk=data)

        return self._call("RegisterVersion", chunks(), timeout=max(self.timeout, 300))

    def list_versions(self, model: str = "") -> list[common_pb2.ModelVersion]:
        return list(self._call("ListVersions", controlplane_pb2.ListVersionsRequest(model=model)).versions)

    def get_version(self, version: str) -> common_pb2.ModelVersion:
        return self._call("GetVersion", ref(version))

    def evaluate(
        self,
        challenger: str,
        deployment: str,
        data_path: Path,
        *,
        label_column: str = "",
        min_improvement: float = 0.0,
        alpha: float = 0.05,
    ) -> common_pb2.OfflineEvaluation:
        data_path = Path(data_path)
        request = controlplane_pb2.EvaluateRequest(
            challenger=ref(challenger),
            deployment=deployment,
            data=data_path.read_bytes(),
            data_format={".npy": "npy", ".parquet": "parquet"}.get(data_path.suffix.lower(), "csv"),
            label_column=label_column,
            min_improvement=min_improvement,
            alpha=alpha,
        )
        return self._call("Evaluate", request, timeout=max(self.timeout, 300))

    # ---- deployments ----

    def deploy(
        self, deployment: str, version: str, *, expected_generation: int | None = None, reason: str = ""
    ) -> controlplane_pb2.Deployment:
        request = controlplane_pb2.DeployRequest(deployment=deployment, version=ref(version), reason=reason)
        if expected_generation is not None:
            request.expected_generation = expected_generation
        return self._call("Deploy", request)

    def set_traffic(
        self,
        deployment: str,
        weights: dict[str, int] | list[tuple[str, int]],
        *,
        expected_generation: int | None = None,
        reason: str = "",
    ) -> controlplane_pb2.Deployment:
        items = weights.items() if isinstance(weights, dict) else weights
        request = controlplane_pb2.SetTrafficRequest(
            deployment=deployment,
            weights=[controlplane_pb2.TrafficWeight(version=ref(v), weight=w) for v, w in items],
            reason=reason,
        )
        if expected_generation is not None:
            request.expected_generation = expected_generation
        return self._call("SetTraffic", request)

    def rollback(
        self,
        deployment: str,
        to: str | None = None,
        *,
        expected_generation: int | None = None,
        reason: str = "",
    ) -> controlplane_pb2.Deployment:
        request = controlplane_pb2.RollbackRequest(deployment=deployment, reason=reason)
        if to:
            request.to.CopyFrom(ref(to))
        if expected_generation is not None:
            request.expected_generation = expected_generation
        return self._call("Rollback", request)

    def list_deployments(self, deployment: str = "") -> list[controlplane_pb2.Deployment]:
        response = self._call(
            "ListDeployments", controlplane_pb2.ListDeploymentsRequest(deployment=deployment)
        )
        return list(response.deployments)

    def get_deployment(self, deployment: str) -> controlplane_pb2.Deployment:
        return self.list_deployments(deployment)[0]

    def wait_for_sync(
        self, deployment: str, generation: int = 0, timeout: float = 30.0
    ) -> controlplane_pb2.WaitForSyncResponse:
        request = controlplane_pb2.WaitForSyncRequest(
            deployment=deployment, generation=generation, timeout_seconds=timeout
        )
        return self._call("WaitForSync", request, timeout=timeout + 10)

    # ---- experiments ----

    def start_experiment(
        self, name: str, config: controlplane_pb2.ExperimentConfig, reason: str = ""
    ) -> controlplane_pb2.Experiment:
        return self._call(
            "StartExperiment",
            controlplane_pb2.StartExperimentRequest(name=name, config=config, reason=reason),
        )

    def get_experiment(self, name: str) -> controlplane_pb2.Experiment:
        return self._call("GetExperiment", controlplane_pb2.ExperimentRequest(name=name))

    def list_experiments(
        self, deployment: str = "", include_finished: bool = False
    ) -> list[controlplane_pb2.Experiment]:
        request = controlplane_pb2.ListExperimentsRequest(
            deployment=deployment, include_finished=include_finished
        )
        return list(self._call("ListExperiments", request).experiments)

    def experiment_action(self, action: str, name: str, reason: str = "") -> Any:
        """action: PauseExperiment | ResumeExperiment | StopExperiment | AbortExperiment | Promote."""
        return self._call(action, controlplane_pb2.ExperimentRequest(name=name, reason=reason))

    # ---- monitoring ----

    def status(
        self, deployment: str = "", window_seconds: float = 0.0
    ) -> list[controlplane_pb2.DeploymentStatus]:
        request = controlplane_pb2.GetStatusRequest(deployment=deployment, window_seconds=window_seconds)
        return list(self._call("GetStatus", request).deployments)

    def metric_series(
        self, deployment: str, window_seconds: float = 300, step_seconds: float = 10
    ) -> list[controlplane_pb2.MetricPoint]:
        request = controlplane_pb2.GetMetricSeriesRequest(
            deployment=deployment, window_seconds=window_seconds, step_seconds=step_seconds
        )
        return list(self._call("GetMetricSeries", request).points)

    def _pages(self, method: str, request: Any, field: str) -> Iterator[Any]:
        """Every item of a paged list RPC, one call per page (`request` gets each page token)."""
        seen: set[str] = set()
        while True:
            response = self._call(method, request)
            yield from getattr(response, field)
            token = response.next_page_token
            if not token or token in seen:  # the last page (a repeated token would never end)
                return
            seen.add(token)
            request.page_token = token

    def iter_alerts(
        self, include_resolved: bool = False, deployment: str = "", page_size: int = 0
    ) -> Iterator[controlplane_pb2.Alert]:
        """Alerts newest first, fetched a page at a time (page_size 0: the server's page size)."""
        request = controlplane_pb2.ListAlertsRequest(
            include_resolved=include_resolved, deployment=deployment, page_size=page_size
        )
        return self._pages("ListAlerts", request, "alerts")

    def alerts(
        self, include_resolved: bool = False, deployment: str = "", page_size: int = 0
    ) -> list[controlplane_pb2.Alert]:
        """Every alert (open ones, or all with `include_resolved`), newest first, over all pages."""
        return list(self.iter_alerts(include_resolved, deployment, page_size))

    def ack_alert(self, alert_id: int) -> controlplane_pb2.Alert:
        return self._call("AckAlert", controlplane_pb2.AckAlertRequest(id=alert_id))

    def iter_agents(self, page_size: int = 0) -> Iterator[controlplane_pb2.AgentInfo]:
        """Agents by name, fetched a page at a time (page_size 0: the server's page size)."""
        return self._pages("ListAgents", controlplane_pb2.ListAgentsRequest(page_size=page_size), "agents")

    def agents(self, page_size: int = 0) -> list[controlplane_pb2.AgentInfo]:
        """Every agent by name, over all pages."""
        return list(self.iter_agents(page_size))

    def retraining_runs(self, deployment: str = "") -> list[controlplane_pb2.RetrainingRun]:
        request = controlplane_pb2.ListRetrainingRunsRequest(deployment=deployment)
        return list(self._call("ListRetrainingRuns", request).runs)

    # ---- trail ----

    def history(self, deployment: str, limit: int = 100) -> list[controlplane_pb2.HistoryEntry]:
        request = controlplane_pb2.ListHistoryRequest(deployment=deployment, limit=limit)
        return list(self._call("ListHistory", request).entries)

    def audit(self, target: str = "", limit: int = 100, deployment: str = "") -> list[controlplane_pb2.AuditEvent]:
        request = controlplane_pb2.ListAuditRequest(target=target, limit=limit, deployment=deployment)
        return list(self._call("ListAudit", request).events)

    def get_policy(self, deployment: str) -> controlplane_pb2.Policy:
        return self._call("GetPolicy", controlplane_pb2.PolicyRequest(deployment=deployment))

    def set_policy(self, request: controlplane_pb2.SetPolicyRequest) -> controlplane_pb2.Policy:
        return self._call("SetPolicy", request)

    # ---- labels ----

    def submit_labels(
        self,
        deployment: str,
        import_id: str,
        batches: Iterable[Sequence[common_pb2.LabelRow]],
        *,
        atomic: bool = False,
        timeout: float = 3600.0,
    ) -> controlplane_pb2.LabelImport:
        """One import: the header, each batch (at most 10,000 rows each) as one message, the end.
        An exception raised by `batches` cancels the call (no end message is sent, so the server
        stores nothing of it) and is raised here."""
        failed: list[BaseException] = []
        started = threading.Event()
        call: list[Any] = []

        def messages() -> Iterator[controlplane_pb2.SubmitLabelsRequest]:
            header = controlplane_pb2.LabelImportHeader(deployment=deployment, import_id=import_id, atomic=atomic)
            yield controlplane_pb2.SubmitLabelsRequest(header=header)
            sent = 0
            try:
                for rows in batches:
                    sent += len(rows)
                    yield controlplane_pb2.SubmitLabelsRequest(batch=controlplane_pb2.LabelRows(rows=rows))
            except Exception as exc:  # noqa: BLE001 - raised again by the caller's thread below
                failed.append(exc)
                started.wait()
                call[0].cancel()  # and no end message: the server stores nothing of a stream without one
                return
            yield controlplane_pb2.SubmitLabelsRequest(end=controlplane_pb2.LabelImportEnd(rows=sent))

        try:
            call.append(self.stub.SubmitLabels.future(messages(), timeout=timeout, metadata=self.metadata))
            started.set()
            return call[0].result()
        except (grpc.RpcError, grpc.FutureCancelledError) as exc:
            if failed:
                raise failed[0] from None
            if not isinstance(exc, grpc.RpcError):
                raise
            raise client_error(exc, self.address, ca_file=self.ca_file) from None

    def label_imports(self, deployment: str, limit: int = 0) -> list[controlplane_pb2.LabelImport]:
        request = controlplane_pb2.ListLabelImportsRequest(deployment=deployment, limit=limit)
        return list(self._call("ListLabelImports", request).imports)
    def export_dataset(
        self,
        deployment: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        version: tuple[str, str] | None = None,
        labeled_only: bool = False,
        timeout: float = 3600.0,
    ) -> Iterator[controlplane_pb2.DatasetChunk]:
        """The export's header, then its Parquet bytes in chunks (as they arrive)."""
        request = controlplane_pb2.ExportDatasetRequest(deployment=deployment, labeled_only=labeled_only)
        if since is not None:
            request.since.FromDatetime(since)
        if until is not None:
            request.until.FromDatetime(until)
        if version is not None:
            request.version.CopyFrom(common_pb2.VersionRef(model=version[0], version=version[1]))
        try:
            yield from self.stub.ExportDataset(request, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, ca_file=self.ca_file) from None

    def set_log_sample_rate(self, deployment: str, rate: float, reason: str = "") -> controlplane_pb2.Deployment:
        request = controlplane_pb2.SetLogSampleRateRequest(deployment=deployment, sample_rate=rate, reason=reason)
        return self._call("SetLogSampleRate", request)

    def purge_log(
        self,
        deployment: str,
        *,
        older_than_seconds: float = 0.0,
        routing_key: str = "",
        reason: str = "",
        timeout: float = 3600.0,
    ) -> Iterator[controlplane_pb2.PurgeLogProgress]:
        """Progress messages as the purge goes; the last one carries the summary."""
        request = controlplane_pb2.PurgeLogRequest(
            deployment=deployment, older_than_seconds=older_than_seconds, routing_key=routing_key, reason=reason
        )
        try:
            yield from self.stub.PurgeLog(request, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, ca_file=self.ca_file) from None

    def whoami(self) -> controlplane_pb2.WhoAmIResponse:
        return self._call("WhoAmI", controlplane_pb2.WhoAmIRequest())

    def list_tokens(self) -> list[controlplane_pb2.TokenInfo]:
        return list(self._call("ListTokens", controlplane_pb2.ListTokensRequest()).tokens)

    def watch_events(self, deployment: str = "") -> Iterator[controlplane_pb2.Event]:
        """Blocks; iterate in a worker thread. Cancel with `.cancel()` on the returned call."""
        try:
            yield from self.stub.WatchEvents(
                controlplane_pb2.WatchEventsRequest(deployment=deployment), metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise client_error(exc, self.address, ca_file=self.ca_file) from None


#: per kind of server: the command that runs it, and what a caller reached instead when the method is missing
_SERVERS = {
    "control plane": ("sluice controlplane", "an agent? its port is 7500 by default"),
    "agent": ("sluice agent", "the control plane? use --agent HOST:7500"),
}


@dataclass(frozen=True)
class TlsUse:
    """The TLS files a client channel uses (from SLUICE_TLS_* or a CA file given in code)."""

    ca: str
    cert: str = ""


def tls_in_use(ca_file: str | None = None) -> TlsUse | None:
    """What open_channel(…, ca_file) uses: None for plaintext (no CA named)."""
    from core.tls import ENV_CA, ENV_CERT

    ca = ca_file or os.environ.get(ENV_CA, "")
    return TlsUse(ca, os.environ.get(ENV_CERT, "")) if ca else None


def tls_hint(details: str, server: str, tls: TlsUse | None) -> str:
    """What to check when a connection failed in a way TLS explains ("" when it does not look like TLS).

    gRPC reports a handshake the server refused as a closed socket: a plaintext client at a TLS
    server, a client without the certificate an mTLS server requires, or with one from another CA.
    A server certificate this client does not trust says CERTIFICATE_VERIFY_FAILED.
    """
    text = details.lower()
    closed = "socket closed" in text or "connection reset" in text
    if tls is None:
        if closed:
            return (
                f"the {server} closed the connection: if it serves TLS, set SLUICE_TLS_CA to the CA that "
                "signed its certificate (and SLUICE_TLS_CERT/SLUICE_TLS_KEY if it requires client certificates)"
            )
        return ""
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        return (
            f"the {server}'s certificate is not signed by the CA in SLUICE_TLS_CA ({tls.ca}) or does not name "
            "this address: set SLUICE_TLS_CA to the CA that signed it (CERTIFICATE_VERIFY_FAILED)"
        )
    if "wrong_version_number" in text or "wrong version number" in text:
        return f"the {server} does not speak TLS: unset SLUICE_TLS_CA to talk to it in plaintext"
    if closed or "handshake" in text:
        if tls.cert:
            return (
                f"the {server} refused the TLS handshake: is the client certificate in SLUICE_TLS_CERT "
                f"({tls.cert}) signed by the CA the {server} trusts for clients?"
            )
        return (
            f"the {server} refused the TLS handshake: it may require a client certificate; set "
            f"SLUICE_TLS_CERT and SLUICE_TLS_KEY to one signed by the CA it trusts for clients"
        )
    return ""


def client_error(
    exc: grpc.RpcError, address: str, server: str = "control plane", ca_file: str | None = None
) -> ClientError:
    """A failed call as one line a person can act on (`server` is "control plane" or "agent";
    `ca_file` is the one the channel was opened with, if not SLUICE_TLS_CA)."""
    command, other = _SERVERS[server]
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    # The control plane's own UNAVAILABLE (its database is down) reached us: no "cannot reach" hint.
    from_server = (details or "").startswith(("the database is unavailable", "cannot reach the database"))
    transport = "connect" in (details or "").lower() or not details
    if code == grpc.StatusCode.UNAVAILABLE and transport and not from_server:
        hint = tls_hint(details or "", server, tls_in_use(ca_file))
        if hint:
            details = f"cannot connect to the {server} at {address}: {hint}"
        else:
            details = f"cannot reach the {server} at {address} ({details}); is `{command}` running?"
    elif code == grpc.StatusCode.UNIMPLEMENTED and (details or "").startswith("Method not found"):
        details = f"{address} answers gRPC but is not a Sluice {server} ({other})"
    return ClientError(code, details or code.name)


# ---- an agent's Predict and PredictBatch ----


def predict_request(
    deployment: str,
    rows: Any = None,
    *,
    inputs: Mapping[str, Any] | None = None,
    records: Sequence[Mapping[str, Any]] | None = None,
    routing_key: str = "",
    request_id: str = "",
    attributes: Mapping[str, str] | None = None,
) -> inference_pb2.PredictRequest:
    """A Predict request in one of its three forms: float32 `rows` [rows, features] (a one-input
    model), typed tensors by input name (`inputs`: numpy arrays or lists; strings travel as
    UTF-8), or `records` (one mapping of named feature values per row, None for a missing value)."""
    forms = [name for name, given in (("rows", rows is not None), ("inputs", inputs), ("records", records)) if given]
    if len(forms) != 1:
        raise InvalidInput("give exactly one of rows, inputs (tensors by input name) or records (named features)")
    request = inference_pb2.PredictRequest(
        deployment=deployment, routing_key=routing_key, request_id=request_id, attributes=dict(attributes or {})
    )
    if rows is not None:
        x = np.asarray(rows, dtype=np.float64)
        x = x.reshape(1, -1) if x.ndim == 1 else x
        if x.ndim != 2 or x.size == 0:
            raise InvalidInput(f"rows must be a non-empty [rows, features] table, not shape {list(x.shape)}")
        request.input.CopyFrom(inference_pb2.Tensor(shape=list(x.shape), raw=x.astype("<f4").tobytes()))
    for name, values in (inputs or {}).items():
        request.named_inputs[name].CopyFrom(encode_tensor(values))
    request.records.extend(encode_record(r) for r in records or ())
    return request


def batch_request(
    deployment: str,
    rows: np.ndarray | None = None,
    keys: Sequence[str] = (),
    request_ids: Sequence[str] = (),
    *,
    inputs: Mapping[str, Any] | None = None,
    records: Sequence[Mapping[str, Any]] | None = None,
) -> inference_pb2.PredictBatchRequest:
    """A PredictBatch request, columnar answer only: float32 `rows` [rows, features] as raw
    bytes, or typed tensors by input name (`inputs`), or one record of named features per row."""
    request = inference_pb2.PredictBatchRequest(
        deployment=deployment, routing_keys=list(keys), request_ids=list(request_ids), columnar_only=True
    )
    if rows is not None:
        x = np.ascontiguousarray(rows, "<f4")
        request.inputs.CopyFrom(inference_pb2.Tensor(shape=list(x.shape), raw=x.tobytes()))
    for name, values in (inputs or {}).items():
        request.named_inputs[name].CopyFrom(encode_tensor(values))
    request.records.extend(encode_record(r) for r in records or ())
    return request


@dataclass(frozen=True)
class BatchResults:
    """A PredictBatch answer as numpy columns: row i is entry i of each."""

    versions: list[common_pb2.VersionRef]
    served_by: np.ndarray  # int32 per row: index into `versions`
    labels: np.ndarray | None  # int64 per row (classifiers)
    values: np.ndarray | None  # float64 per row (regressors), [rows, outputs] for several outputs
    probabilities: np.ndarray | None  # float32 [rows, classes] (classifiers)
    request_ids: list[str]  # the ids the request sent, or none
    agent: str
    #: each row's class by name when a classifier with string classes answered (labels: its index)
    class_labels: list[str] | None = None

    def __len__(self) -> int:
        return int(self.served_by.shape[0])

    def row_versions(self) -> list[str]:
        """The "model:version" that answered each row."""
        names = [f"{v.model}:{v.version}" for v in self.versions]
        return [names[i] for i in self.served_by.tolist()]


def tensor_array(tensor: inference_pb2.Tensor) -> np.ndarray | None:
    """A float32 Tensor of an answer as an array of its shape (it carries `values` or
    little-endian `raw`); None when the answer has none."""
    if not tensor.shape:
        return None
    flat = np.frombuffer(tensor.raw, dtype="<f4") if tensor.raw else np.asarray(tensor.values, dtype=np.float32)
    return flat.reshape(tuple(tensor.shape))


def _column(raw: bytes, dtype: str, what: str, rows: int) -> np.ndarray:
    array = np.frombuffer(raw, dtype=dtype)
    if array.shape[0] != rows:
        raise InvalidInput(f"the agent's answer is malformed: {what} has {array.shape[0]} entries for {rows} rows")
    return array


def batch_results(response: inference_pb2.PredictBatchResponse) -> BatchResults:
    """Read the columns of a PredictBatch answer (read-only arrays over the message's bytes).

    An agent older than release 0.2 answers with `rows` only (one RowResult per row); they are
    read into the same columns, so callers need not care which agent answered.
    """
    probabilities = tensor_array(response.probabilities) if response.HasField("probabilities") else None
    if response.served_by or not response.rows:
        served = np.frombuffer(response.served_by, dtype="<i4")
        rows = served.shape[0]
        labels = _column(response.labels, "<i8", "labels", rows) if response.labels else None
        width = max(response.values_width, 1)
        values = _column(response.values, "<f8", "values", rows * width) if response.values else None
        if values is not None and width > 1:
            values = values.reshape(rows, width)
        ids = list(response.request_ids)
    else:  # a pre-0.2 agent
        old = response.rows
        served = np.fromiter((r.served_by for r in old), dtype=np.int32, count=len(old))
        labels = np.fromiter((r.label for r in old), dtype=np.int64, count=len(old))
        values = np.fromiter((r.value for r in old), dtype=np.float64, count=len(old))
        labels, values = (labels, None) if probabilities is not None else (None, values)
        ids = [r.request_id for r in old] if any(r.request_id for r in old) else []
    names = list(response.class_labels) or None
    if names is not None and len(names) != served.shape[0]:
        raise InvalidInput(f"the agent's answer is malformed: class_labels has {len(names)} entries")
    return BatchResults(list(response.versions), served, labels, values, probabilities, ids, response.agent, names)
