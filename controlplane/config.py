"""The control plane's configuration file (TOML).

Every key is known: an unknown key or a bad value stops the control plane at start with a
message naming it, instead of being silently ignored. `config_decode.py` turns the TOML tables
into these dataclasses by their type hints; the checks across keys are here.

Over 400 lines: it is one file format, one dataclass per section with each key's default and
meaning, and the checks that relate keys of those sections (intervals, thresholds, retraining
triggers) beside them; split up, a key's meaning and its checks would live apart.
"""

from __future__ import annotations

import hashlib
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.config_decode import decode
from controlplane.domain import Role
from core.errors import InvalidInput
from core.names import NAME_LENGTH
from core.report_limits import MAX_CATEGORIES
from core.vocabulary import MetricSource, PolicyAction


@dataclass
class TokenConfig:
    name: str = ""
    role: str = "viewer"
    # Prefer `sha256` (hex of the token) so the file holds no secret; `token` is accepted too.
    sha256: str = ""
    token: str = ""


@dataclass
class LimitsConfig:
    """Every size, queue and time bound of the control plane (docs/OPERATIONS.md lists them)."""

    max_message_bytes: int = 16 * 1024 * 1024  # one gRPC message, either way (RESOURCE_EXHAUSTED)
    max_artifact_bytes: int = 2 * 1024 * 1024 * 1024  # one uploaded ONNX model or baseline
    max_evaluation_bytes: int = 64 * 1024 * 1024  # the data file of one Evaluate call
    max_watchers: int = 256  # open WatchEvents streams
    max_watchers_per_principal: int = 16  # of them, held by one token (one viewer cannot take them all)
    # The longest a unary RPC may run when its caller set no deadline (0: no limit). RPCs with
    # their own bound (uploads, Evaluate, WaitForSync) are exempt.
    default_deadline_seconds: float = 30.0
    event_queue: int = 1000  # events buffered per watcher/pusher; a slow one loses the oldest
    webhook_queue: int = 1000  # alert webhooks waiting to be posted; beyond it they are dropped
    agent_outbox: int = 10_000  # messages queued to one agent; beyond it its stream is closed
    # Agent records one credential (agent token, or client certificate) may register; a Hello with
    # a new agent id beyond it is refused (RESOURCE_EXHAUSTED) until one is forgotten.
    max_agents_per_credential: int = 256
    # What one agent may claim to have served, per second of a metric window (at least 1 s is
    # assumed): a window beyond it is refused as implausible. Requests are calls; rows also bound
    # the rows answered, labels joined and shadow pairs (a PredictBatch call carries many rows).
    # Generous on purpose: one agent on a 2-core VM answered 1.2 million rows/s of a small model in
    # 100,000-row PredictBatch calls (bench/big_requests.py), and an honest report must never be
    # refused; the bounds stop invented counts like the review's 10^9 labels in a window.
    max_requests_per_second_per_agent: int = 200_000
    max_rows_per_second_per_agent: int = 50_000_000
    # Windows of a (deployment, version) an agent was told to stop serving (a newer snapshot sent
    # to it left it out) are still accepted this long: its last windows and buffered reports.
    report_route_grace_seconds: float = 600.0


@dataclass
class AgentsConfig:
    heartbeat_seconds: float = 2.0
    lost_after_missed: int = 3
    # An agent record not seen for this long (disconnected, lost or stopped) is deleted with what it
    # applied, and its alerts resolve; it frees its place under limits.max_agents_per_credential.
    forget_after_seconds: float = 7 * 86400


@dataclass
class HealthConfig:
    window_seconds: float = 60.0
    min_samples: int = 100
    min_drift_samples: int = 200
    accuracy_warning: float = 0.80
    accuracy_critical: float = 0.75
    mae_warning: float = 0.0  # 0 disables (MAE has no universal scale)
    mae_critical: float = 0.0
    rmse_warning: float = 0.0  # 0 disables (as MAE: in the target's units)
    rmse_critical: float = 0.0
    p95_latency_ms_warning: float = 100.0
    p95_latency_ms_critical: float = 200.0
    error_rate_warning: float = 0.01
    error_rate_critical: float = 0.05
    psi_warning: float = 0.1
    psi_critical: float = 0.25
    # PSI of the predictions (classes, or a regressor's values on the baseline's value bins)
    # against the version's baseline predictions
    prediction_psi_warning: float = 0.1
    prediction_psi_critical: float = 0.25
    ks_alpha: float = 0.01
    tolerance: float = 0.1  # regression: |error| <= tolerance counts as "within"
    within_tolerance_warning: float = 0.0  # regression: share within tolerance below this; 0 disables
    within_tolerance_critical: float = 0.0
    # Categorical features: the baseline's k most frequent categories get a bin each ("other"
    # one more), fixed at registration.
    category_top_k: int = 20
    # Data quality per feature: the share of missing values above the baseline's own share by
    # more than this (0 disables), and the share of categories the baseline never had.
    missing_share_warning: float = 0.1
    missing_share_critical: float = 0.3
    unseen_share_warning: float = 0.05
    unseen_share_critical: float = 0.2
    # Where accuracy / MAE / RMSE are judged from: "live" (the agents' Feedback windows of the last
    # window_seconds) or "joined" (the prediction log joined with the label store: the predictions
    # made in the label_window_seconds that ended label_delay_seconds ago, old enough to have their
    # label). A deployment's policy may set accuracy_source and label_delay_seconds.
    accuracy_source: str = "live"
    label_delay_seconds: float = 0.0
    label_window_seconds: float = 3600.0


@dataclass
class AlertsConfig:
    # Hysteresis: an alert resolves only after this many consecutive healthy evaluations.
    resolve_after: int = 3
    evaluate_seconds: float = 5.0
    webhooks: list[str] = field(default_factory=list)
    webhook_timeout_seconds: float = 5.0
    webhook_retries: int = 5


@dataclass
class RetentionConfig:
    # Raw windows older than raw_seconds roll up into minute windows, minutes older than
    # minute_seconds into hours; hours older than hour_seconds are deleted.
    raw_seconds: float = 3600.0
    minute_seconds: float = 7 * 86400
    hour_seconds: float = 400 * 86400
    rollup_interval_seconds: float = 60.0
    # (agent, seq) receipts that make replays no-ops; agents resend within minutes, not days.
    receipt_seconds: float = 2 * 86400


@dataclass
class RetrainingConfig:
    deployment: str = ""
    command: str = ""
    max_age_hours: float = 0.0  # 0 disables the age trigger
    new_labeled_samples: int = 0  # 0 disables
    on_critical: bool = False
    min_hours_between: float = 1.0
    max_per_day: int = 3
    start_experiment: bool = True
    experiment_traffic_percent: int = 10
    timeout_seconds: float = 1800.0


@dataclass
class RolloutConfig:
    default_hold_seconds: float = 300.0
    tick_seconds: float = 1.0


@dataclass
class PolicyConfig:
    """Every deployment's health policy until `sluice policy set` changes it (the thresholds are
    [health]'s)."""

    # none | alert | pause | rollback_challenger | rollback_champion (core.vocabulary.PolicyAction)
    action: str = "alert"
    action_after_seconds: float = 300.0  # critical this long (without a break) before it acts


@dataclass
class ModelsConfig:
    """Limits of the sandbox that opens and runs models the control plane has not proven yet."""

    # Registration: load, ONNX checks and a trial run on the baseline rows (or a row of zeros).
    inspect_timeout_seconds: float = 30.0
    inspect_memory_mb: int = 2048  # beyond what the sandbox process has mapped at start
    register_concurrency: int = 4  # registrations checked at once; 4x as many wait, the rest are refused
    # Offline evaluation (`sluice evaluate`): each version scores the whole data file.
    evaluate_timeout_seconds: float = 120.0  # per version; both within the clients' 300 s deadline
    evaluate_memory_mb: int = 4096
    evaluate_concurrency: int = 2  # evaluations run at once; 4x as many wait, the rest are refused


@dataclass
class LabelsConfig:
    """The label store (docs/PREDICTION_LOG.md): where its Parquet files live and its bounds."""

    # "" means <data dir>/labels: beside the artifacts directory (sluice-data/labels by default)
    dir: str = ""
    # A label more than this after its prediction counts as late (it is stored and joined all the
    # same; the count tells that metrics judged within this horizon did not see it).
    late_after_seconds: float = 7 * 86400
    max_rows_per_import: int = 5_000_000  # one SubmitLabels call; split bigger files
    max_rows_per_message: int = 10_000  # one batch message of SubmitLabels
    # Imports older than this many days are deleted by the log's retention job; 0 keeps them.
    retention_days: float = 0.0


@dataclass
class LogConfig:
    """The prediction log's local sink (docs/PREDICTION_LOG.md): where agents' segments are kept."""

    # Root of the hive layout deployment=D/date=YYYY-MM-DD/version=V/...; "" : <data dir>/predictions,
    # beside the artifacts directory.
    dir: str = ""
    # One segment's Parquet file; a bigger one is refused (agents write at most 8 MiB).
    max_segment_bytes: int = 12 * 1024 * 1024
    # Retention (docs/PREDICTION_LOG.md): segments whose day is older than retention_days days
    # are deleted, then the oldest beyond max_bytes in all; 0 turns either bound off.
    retention_days: float = 0.0
    max_bytes: int = 0
    retention_interval_seconds: float = 3600.0
    # Agents with an S3 sink (`sluice agent --log-sink s3://...`) record s3:// URIs; the control
    # plane reads (and purges, expires) those objects through this endpoint ("" : AWS) and region,
    # with the AWS credentials of its environment.
    s3_endpoint: str = ""
    s3_region: str = ""
    # The control plane's local copies of the S3 segments it reads (<data dir>/s3-cache/): beyond
    # this many bytes the least recently used are deleted (fetched again when needed); 0: no bound.
    s3_cache_max_bytes: int = 2 * 1024**3


@dataclass
class TlsConfig:
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""  # set: agents must present a certificate signed by this CA


@dataclass
class Config:
    tokens: list[TokenConfig] = field(default_factory=list)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    agents: AgentsConfig = field(default_factory=AgentsConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    retraining: list[RetrainingConfig] = field(default_factory=list)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    log: LogConfig = field(default_factory=LogConfig)


#: intervals and durations that must be above 0: each paces a loop (0 would spin it, pinning a core)
#: or bounds a wait. Keys where 0 means "off" (limits.default_deadline_seconds, rollout.default_hold_seconds,
#: retraining's max_age_hours and min_hours_between) are not here; retraining[i].timeout_seconds is checked
#: with its section.
POSITIVE_SECONDS = {
    "agents": ("heartbeat_seconds", "forget_after_seconds"),
    "health": ("window_seconds", "label_window_seconds"),
    "alerts": ("evaluate_seconds", "webhook_timeout_seconds"),
    "retention": ("raw_seconds", "minute_seconds", "hour_seconds", "rollup_interval_seconds", "receipt_seconds"),
    "rollout": ("tick_seconds",),
    "policy": ("action_after_seconds",),
    "models": ("inspect_timeout_seconds", "evaluate_timeout_seconds"),
    "labels": ("late_after_seconds",),
    "log": ("retention_interval_seconds",),
}


#: the health thresholds a deployment's policy may set: (warning, critical) pairs and the tolerance
THRESHOLD_PAIRS = (
    ("accuracy_warning", "accuracy_critical"),
    ("p95_latency_ms_warning", "p95_latency_ms_critical"),
    ("error_rate_warning", "error_rate_critical"),
    ("psi_warning", "psi_critical"),
    ("mae_warning", "mae_critical"),
    ("rmse_warning", "rmse_critical"),
    ("within_tolerance_warning", "within_tolerance_critical"),
    ("prediction_psi_warning", "prediction_psi_critical"),
)
THRESHOLDS = (*(name for pair in THRESHOLD_PAIRS for name in pair), "tolerance")
_SHARES = ("accuracy_warning", "accuracy_critical", "error_rate_warning", "error_rate_critical",
           "within_tolerance_warning", "within_tolerance_critical")
_LOW_IS_BAD = ("accuracy", "within_tolerance")  # the critical level lies below the warning one


def check_thresholds(h: HealthConfig, where: str) -> None:
    """Finite, not negative, shares within [0, 1], and critical beyond warning in the bad direction
    (a threshold of 0 disables that check, so it is never compared)."""
    for name in THRESHOLDS:
        value = getattr(h, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise InvalidInput(f"{where}{name} must be a number >= 0, got {value!r}")
        if name in _SHARES and value > 1:
            raise InvalidInput(f"{where}{name} must be between 0 and 1, got {value:g}")
    for warning, critical in THRESHOLD_PAIRS:
        w, c = getattr(h, warning), getattr(h, critical)
        if not (w and c):
            continue
        low_is_bad = warning.removesuffix("_warning") in _LOW_IS_BAD
        if (c > w) if low_is_bad else (c < w):
            relation = "<=" if low_is_bad else ">="
            raise InvalidInput(f"{where}{critical} ({c:g}) must be {relation} {warning} ({w:g})")


def _validate_intervals(config: Config) -> None:
    for section, keys in POSITIVE_SECONDS.items():
        for key in keys:
            value = getattr(getattr(config, section), key)
            if not value > 0:
                raise InvalidInput(f"config: {section}.{key} must be more than 0 seconds, got {value:g}")


def _validate_data_quality(h: HealthConfig) -> None:
    """The categorical and data-quality settings ([health] only; a policy does not set them)."""

    if not 1 <= h.category_top_k <= MAX_CATEGORIES:
        raise InvalidInput(f"config: health.category_top_k must be 1..{MAX_CATEGORIES}, got {h.category_top_k}")
    for kind in ("missing_share", "unseen_share"):
        w, c = getattr(h, f"{kind}_warning"), getattr(h, f"{kind}_critical")
        for name, value in ((f"{kind}_warning", w), (f"{kind}_critical", c)):
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise InvalidInput(f"config: health.{name} must be between 0 and 1, got {value!r}")
        if w and c and c < w:
            raise InvalidInput(f"config: health.{kind}_critical ({c:g}) must be >= {kind}_warning ({w:g})")


def _validate(config: Config) -> None:
    _validate_intervals(config)
    _validate_data_quality(config.health)
    roles = {r.value for r in Role}
    for i, token in enumerate(config.tokens):
        where = f"tokens[{i}]"
        if not token.name:
            raise InvalidInput(f"config: {where}.name is required")
        if len(token.name) > NAME_LENGTH:  # it is stored as the principal of audit events and agents
            raise InvalidInput(f"config: {where}.name is {len(token.name)} characters; the limit is {NAME_LENGTH}")
        if token.role not in roles:
            raise InvalidInput(f"config: {where}.role {token.role!r} is not one of {', '.join(sorted(roles))}")
        if bool(token.sha256) == bool(token.token):
            raise InvalidInput(f"config: {where} needs exactly one of 'sha256' or 'token'")
        if token.sha256 and (len(token.sha256) != 64 or not all(c in "0123456789abcdef" for c in token.sha256)):
            raise InvalidInput(f"config: {where}.sha256 must be 64 lowercase hex characters")
    check_thresholds(config.health, "config: health.")
    if config.policy.action not in {a.value for a in PolicyAction}:
        raise InvalidInput(
            f"config: policy.action {config.policy.action!r} is not one of {', '.join(a.value for a in PolicyAction)}"
        )
    lim = config.limits
    if lim.max_message_bytes < 1024:
        raise InvalidInput("config: limits.max_message_bytes must be at least 1024")
    positive = (
        "max_artifact_bytes",
        "max_evaluation_bytes",
        "max_watchers",
        "max_watchers_per_principal",
        "event_queue",
        "webhook_queue",
        "max_agents_per_credential",
        "max_requests_per_second_per_agent",
        "max_rows_per_second_per_agent",
    )
    for name in positive:
        if getattr(lim, name) < 1:
            raise InvalidInput(f"config: limits.{name} must be at least 1")
    if lim.agent_outbox < 16:  # a snapshot, its acks and heartbeats must fit
        raise InvalidInput("config: limits.agent_outbox must be at least 16")
    agents = config.agents
    if agents.lost_after_missed < 1 or agents.heartbeat_seconds <= 0:
        raise InvalidInput("config: agents.heartbeat_seconds and lost_after_missed must be > 0")
    if agents.forget_after_seconds <= agents.heartbeat_seconds * agents.lost_after_missed:
        raise InvalidInput(
            "config: agents.forget_after_seconds must be longer than heartbeat_seconds x lost_after_missed "
            "(an agent is marked lost before it is forgotten)"
        )
    _validate_monitoring(config)
    for name in ("inspect_memory_mb", "evaluate_memory_mb", "register_concurrency", "evaluate_concurrency"):
        if getattr(config.models, name) < 1:
            raise InvalidInput(f"config: models.{name} must be at least 1")
    for name in ("inspect_timeout_seconds", "evaluate_timeout_seconds"):
        if not math.isfinite(getattr(config.models, name)):
            raise InvalidInput(f"config: models.{name} must be a finite number of seconds")
    for name in ("max_rows_per_import", "max_rows_per_message"):
        if getattr(config.labels, name) < 1:
            raise InvalidInput(f"config: labels.{name} must be at least 1")
    bounds = (
        ("log", "retention_days"),
        ("log", "max_bytes"),
        ("log", "s3_cache_max_bytes"),
        ("labels", "retention_days"),
    )
    for section, name in bounds:
        value = getattr(getattr(config, section), name)
        if not (math.isfinite(value) and value >= 0):
            raise InvalidInput(f"config: {section}.{name} must be >= 0 (0: no bound)")
    if bool(config.tls.cert_file) != bool(config.tls.key_file):
        raise InvalidInput("config: tls.cert_file and tls.key_file go together")
    if config.tls.client_ca_file and not config.tls.cert_file:
        raise InvalidInput("config: tls.client_ca_file (mutual TLS) needs tls.cert_file and tls.key_file")


def _validate_monitoring(config: Config) -> None:
    h = config.health
    if h.window_seconds <= 0:
        raise InvalidInput("config: health.window_seconds must be > 0")
    if h.min_samples < 1 or h.min_drift_samples < 1:
        raise InvalidInput("config: health.min_samples and health.min_drift_samples must be >= 1")
    if h.accuracy_source not in {m.value for m in MetricSource}:
        raise InvalidInput(
            f"config: health.accuracy_source is {h.accuracy_source!r}; choose "
            f"{' or '.join(m.value for m in MetricSource)}"
        )
    if not (math.isfinite(h.label_delay_seconds) and math.isfinite(h.label_window_seconds)):
        raise InvalidInput("config: health.label_delay_seconds and health.label_window_seconds must be finite")
    if not 0 < h.ks_alpha < 1:
        raise InvalidInput("config: health.ks_alpha must be between 0 and 1 (exclusive)")
    for name in ("within_tolerance_warning", "within_tolerance_critical"):
        if not 0 <= getattr(h, name) <= 1:
            raise InvalidInput(f"config: health.{name} must be between 0 and 1")
    if h.within_tolerance_warning and h.within_tolerance_critical > h.within_tolerance_warning:
        raise InvalidInput("config: health.within_tolerance_critical must be <= within_tolerance_warning")
    for kind in ("mae", "p95_latency_ms", "error_rate"):
        warning, critical = getattr(h, f"{kind}_warning"), getattr(h, f"{kind}_critical")
        if warning and critical and critical < warning:
            raise InvalidInput(f"config: health.{kind}_critical must be >= health.{kind}_warning")
    a = config.alerts
    if a.resolve_after < 1:
        raise InvalidInput("config: alerts.resolve_after must be >= 1")
    if a.evaluate_seconds <= 0 or a.webhook_timeout_seconds <= 0:
        raise InvalidInput("config: alerts.evaluate_seconds and alerts.webhook_timeout_seconds must be > 0")
    for i, url in enumerate(a.webhooks):
        if not url.startswith(("http://", "https://")):
            raise InvalidInput(f"config: alerts.webhooks[{i}] must be an http:// or https:// URL, got {url!r}")
    r = config.retention
    if r.rollup_interval_seconds <= 0 or r.raw_seconds <= 0:
        raise InvalidInput("config: retention.raw_seconds and retention.rollup_interval_seconds must be > 0")
    if not r.raw_seconds <= r.minute_seconds <= r.hour_seconds:
        raise InvalidInput(
            "config: retention must keep raw_seconds <= minute_seconds <= hour_seconds "
            "(each resolution is kept at least as long as the finer one)"
        )
    for i, run in enumerate(config.retraining):
        if not run.deployment or not run.command:
            raise InvalidInput(f"config: retraining[{i}] needs 'deployment' and 'command'")
        if not 1 <= run.experiment_traffic_percent <= 100:
            raise InvalidInput(f"config: retraining[{i}].experiment_traffic_percent must be 1-100")
        if run.max_per_day < 1:
            raise InvalidInput(f"config: retraining[{i}].max_per_day must be >= 1")
        if run.timeout_seconds <= 0:
            raise InvalidInput(f"config: retraining[{i}].timeout_seconds must be > 0")
        if not (run.max_age_hours or run.new_labeled_samples or run.on_critical):
            raise InvalidInput(
                f"config: retraining[{i}] has no trigger: set max_age_hours, new_labeled_samples or on_critical"
            )


def parse_tokens_env(value: str) -> list[TokenConfig]:
    """SLUICE_TOKENS='name:role:secret,name2:role2:secret2'."""
    tokens = []
    for i, item in enumerate(filter(None, (p.strip() for p in value.split(",")))):
        parts = item.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise InvalidInput(f"SLUICE_TOKENS entry {i + 1} must be NAME:ROLE:TOKEN")
        tokens.append(TokenConfig(name=parts[0], role=parts[1], token=parts[2]))
    return tokens


def load_config(path: Path | None, environ: dict[str, str] | None = None) -> Config:
    environ = dict(os.environ) if environ is None else environ
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise InvalidInput(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from exc
    config = decode(Config, data, "")
    if environ.get("SLUICE_TOKENS"):
        config.tokens.extend(parse_tokens_env(environ["SLUICE_TOKENS"]))
    _validate(config)
    return config


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
