import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExperimentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_STATE_UNSPECIFIED: _ClassVar[ExperimentState]
    EXPERIMENT_RUNNING: _ClassVar[ExperimentState]
    EXPERIMENT_PAUSED: _ClassVar[ExperimentState]
    EXPERIMENT_STOPPED: _ClassVar[ExperimentState]
    EXPERIMENT_ABORTED: _ClassVar[ExperimentState]
    EXPERIMENT_ROLLED_BACK: _ClassVar[ExperimentState]
    EXPERIMENT_PROMOTED: _ClassVar[ExperimentState]
    EXPERIMENT_COMPLETED: _ClassVar[ExperimentState]

class AlertState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALERT_STATE_UNSPECIFIED: _ClassVar[AlertState]
    ALERT_OPEN: _ClassVar[AlertState]
    ALERT_ACKNOWLEDGED: _ClassVar[AlertState]
    ALERT_RESOLVED: _ClassVar[AlertState]

class PolicyAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_ACTION_UNSPECIFIED: _ClassVar[PolicyAction]
    POLICY_NONE: _ClassVar[PolicyAction]
    POLICY_ALERT: _ClassVar[PolicyAction]
    POLICY_PAUSE: _ClassVar[PolicyAction]
    POLICY_ROLLBACK_CHALLENGER: _ClassVar[PolicyAction]
    POLICY_ROLLBACK_CHAMPION: _ClassVar[PolicyAction]
EXPERIMENT_STATE_UNSPECIFIED: ExperimentState
EXPERIMENT_RUNNING: ExperimentState
EXPERIMENT_PAUSED: ExperimentState
EXPERIMENT_STOPPED: ExperimentState
EXPERIMENT_ABORTED: ExperimentState
EXPERIMENT_ROLLED_BACK: ExperimentState
EXPERIMENT_PROMOTED: ExperimentState
EXPERIMENT_COMPLETED: ExperimentState
ALERT_STATE_UNSPECIFIED: AlertState
ALERT_OPEN: AlertState
ALERT_ACKNOWLEDGED: AlertState
ALERT_RESOLVED: AlertState
POLICY_ACTION_UNSPECIFIED: PolicyAction
POLICY_NONE: PolicyAction
POLICY_ALERT: PolicyAction
POLICY_PAUSE: PolicyAction
POLICY_ROLLBACK_CHALLENGER: PolicyAction
POLICY_ROLLBACK_CHAMPION: PolicyAction

class RegisterVersionHeader(_message.Message):
    __slots__ = ("ref", "description", "model_size", "model_sha256", "baseline_size", "feature_names")
    REF_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SIZE_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.VersionRef
    description: str
    model_size: int
    model_sha256: str
    baseline_size: int
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ref: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., description: _Optional[str] = ..., model_size: _Optional[int] = ..., model_sha256: _Optional[str] = ..., baseline_size: _Optional[int] = ..., feature_names: _Optional[_Iterable[str]] = ...) -> None: ...

class RegisterVersionChunk(_message.Message):
    __slots__ = ("header", "model_chunk", "baseline_chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MODEL_CHUNK_FIELD_NUMBER: _ClassVar[int]
    BASELINE_CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: RegisterVersionHeader
    model_chunk: bytes
    baseline_chunk: bytes
    def __init__(self, header: _Optional[_Union[RegisterVersionHeader, _Mapping]] = ..., model_chunk: _Optional[bytes] = ..., baseline_chunk: _Optional[bytes] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.ModelVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[_common_pb2.ModelVersion, _Mapping]]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("challenger", "deployment", "data", "data_format", "label_column", "min_improvement", "alpha")
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DATA_FORMAT_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    challenger: _common_pb2.VersionRef
    deployment: str
    data: bytes
    data_format: str
    label_column: str
    min_improvement: float
    alpha: float
    def __init__(self, challenger: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., deployment: _Optional[str] = ..., data: _Optional[bytes] = ..., data_format: _Optional[str] = ..., label_column: _Optional[str] = ..., min_improvement: _Optional[float] = ..., alpha: _Optional[float] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("name", "generation", "splits", "salt", "experiment", "previous_champion", "created_at", "updated_at", "segment_rules", "ended_experiment", "log_sample_rate")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CHAMPION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_RULES_FIELD_NUMBER: _ClassVar[int]
    ENDED_EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    LOG_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    generation: int
    splits: _containers.RepeatedCompositeFieldContainer[_common_pb2.TrafficSplit]
    salt: str
    experiment: str
    previous_champion: _common_pb2.VersionRef
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    segment_rules: _containers.RepeatedCompositeFieldContainer[_common_pb2.SegmentRule]
    ended_experiment: str
    log_sample_rate: float
    def __init__(self, name: _Optional[str] = ..., generation: _Optional[int] = ..., splits: _Optional[_Iterable[_Union[_common_pb2.TrafficSplit, _Mapping]]] = ..., salt: _Optional[str] = ..., experiment: _Optional[str] = ..., previous_champion: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., segment_rules: _Optional[_Iterable[_Union[_common_pb2.SegmentRule, _Mapping]]] = ..., ended_experiment: _Optional[str] = ..., log_sample_rate: _Optional[float] = ...) -> None: ...

class SetLogSampleRateRequest(_message.Message):
    __slots__ = ("deployment", "sample_rate", "reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    sample_rate: float
    reason: str
    def __init__(self, deployment: _Optional[str] = ..., sample_rate: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class DeployRequest(_message.Message):
    __slots__ = ("deployment", "version", "expected_generation", "reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    version: _common_pb2.VersionRef
    expected_generation: int
    reason: str
    def __init__(self, deployment: _Optional[str] = ..., version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., expected_generation: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class TrafficWeight(_message.Message):
    __slots__ = ("version", "weight")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    version: _common_pb2.VersionRef
    weight: int
    def __init__(self, version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., weight: _Optional[int] = ...) -> None: ...

class SetTrafficRequest(_message.Message):
    __slots__ = ("deployment", "weights", "expected_generation", "reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    weights: _containers.RepeatedCompositeFieldContainer[TrafficWeight]
    expected_generation: int
    reason: str
    def __init__(self, deployment: _Optional[str] = ..., weights: _Optional[_Iterable[_Union[TrafficWeight, _Mapping]]] = ..., expected_generation: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("deployment", "to", "expected_generation", "reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    to: _common_pb2.VersionRef
    expected_generation: int
    reason: str
    def __init__(self, deployment: _Optional[str] = ..., to: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., expected_generation: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    def __init__(self, deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ...) -> None: ...

class WaitForSyncRequest(_message.Message):
    __slots__ = ("deployment", "generation", "timeout_seconds")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    generation: int
    timeout_seconds: float
    def __init__(self, deployment: _Optional[str] = ..., generation: _Optional[int] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class WaitForSyncResponse(_message.Message):
    __slots__ = ("in_sync", "generation", "synced_agents", "lagging_agents", "refused_agents")
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SYNCED_AGENTS_FIELD_NUMBER: _ClassVar[int]
    LAGGING_AGENTS_FIELD_NUMBER: _ClassVar[int]
    REFUSED_AGENTS_FIELD_NUMBER: _ClassVar[int]
    in_sync: bool
    generation: int
    synced_agents: _containers.RepeatedScalarFieldContainer[str]
    lagging_agents: _containers.RepeatedScalarFieldContainer[str]
    refused_agents: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, in_sync: _Optional[bool] = ..., generation: _Optional[int] = ..., synced_agents: _Optional[_Iterable[str]] = ..., lagging_agents: _Optional[_Iterable[str]] = ..., refused_agents: _Optional[_Iterable[str]] = ...) -> None: ...

class Guardrail(_message.Message):
    __slots__ = ("metric", "max_degradation")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    MAX_DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    metric: str
    max_degradation: float
    def __init__(self, metric: _Optional[str] = ..., max_degradation: _Optional[float] = ...) -> None: ...

class ExperimentConfig(_message.Message):
    __slots__ = ("deployment", "challenger", "traffic_percent", "metric", "guardrails", "min_samples", "alpha", "min_improvement", "sequential", "plan", "hold_seconds", "auto_promote", "shadow", "segment_rules", "require_offline_win", "min_detectable_effect", "baseline", "power", "planned_n_champion", "planned_n_challenger", "expected_power", "label_source", "label_delay_seconds")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENT_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUTO_PROMOTE_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_RULES_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_OFFLINE_WIN_FIELD_NUMBER: _ClassVar[int]
    MIN_DETECTABLE_EFFECT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    POWER_FIELD_NUMBER: _ClassVar[int]
    PLANNED_N_CHAMPION_FIELD_NUMBER: _ClassVar[int]
    PLANNED_N_CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_POWER_FIELD_NUMBER: _ClassVar[int]
    LABEL_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    challenger: _common_pb2.VersionRef
    traffic_percent: int
    metric: str
    guardrails: _containers.RepeatedCompositeFieldContainer[Guardrail]
    min_samples: int
    alpha: float
    min_improvement: float
    sequential: bool
    plan: _containers.RepeatedScalarFieldContainer[int]
    hold_seconds: float
    auto_promote: bool
    shadow: bool
    segment_rules: _containers.RepeatedCompositeFieldContainer[_common_pb2.SegmentRule]
    require_offline_win: bool
    min_detectable_effect: float
    baseline: float
    power: float
    planned_n_champion: int
    planned_n_challenger: int
    expected_power: float
    label_source: str
    label_delay_seconds: float
    def __init__(self, deployment: _Optional[str] = ..., challenger: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., traffic_percent: _Optional[int] = ..., metric: _Optional[str] = ..., guardrails: _Optional[_Iterable[_Union[Guardrail, _Mapping]]] = ..., min_samples: _Optional[int] = ..., alpha: _Optional[float] = ..., min_improvement: _Optional[float] = ..., sequential: _Optional[bool] = ..., plan: _Optional[_Iterable[int]] = ..., hold_seconds: _Optional[float] = ..., auto_promote: _Optional[bool] = ..., shadow: _Optional[bool] = ..., segment_rules: _Optional[_Iterable[_Union[_common_pb2.SegmentRule, _Mapping]]] = ..., require_offline_win: _Optional[bool] = ..., min_detectable_effect: _Optional[float] = ..., baseline: _Optional[float] = ..., power: _Optional[float] = ..., planned_n_champion: _Optional[int] = ..., planned_n_challenger: _Optional[int] = ..., expected_power: _Optional[float] = ..., label_source: _Optional[str] = ..., label_delay_seconds: _Optional[float] = ...) -> None: ...

class StartExperimentRequest(_message.Message):
    __slots__ = ("name", "config", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: ExperimentConfig
    reason: str
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[ExperimentConfig, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class ExperimentRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ListExperimentsRequest(_message.Message):
    __slots__ = ("deployment", "include_finished")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FINISHED_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    include_finished: bool
    def __init__(self, deployment: _Optional[str] = ..., include_finished: _Optional[bool] = ...) -> None: ...

class ListExperimentsResponse(_message.Message):
    __slots__ = ("experiments",)
    EXPERIMENTS_FIELD_NUMBER: _ClassVar[int]
    experiments: _containers.RepeatedCompositeFieldContainer[Experiment]
    def __init__(self, experiments: _Optional[_Iterable[_Union[Experiment, _Mapping]]] = ...) -> None: ...

class ArmSummary(_message.Message):
    __slots__ = ("version", "role", "requests", "n", "metric", "ci_low", "ci_high", "rows", "logged", "labels_not_due", "labels_overdue")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LOGGED_FIELD_NUMBER: _ClassVar[int]
    LABELS_NOT_DUE_FIELD_NUMBER: _ClassVar[int]
    LABELS_OVERDUE_FIELD_NUMBER: _ClassVar[int]
    version: _common_pb2.VersionRef
    role: _common_pb2.Role
    requests: int
    n: int
    metric: float
    ci_low: float
    ci_high: float
    rows: int
    logged: int
    labels_not_due: int
    labels_overdue: int
    def __init__(self, version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., requests: _Optional[int] = ..., n: _Optional[int] = ..., metric: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., rows: _Optional[int] = ..., logged: _Optional[int] = ..., labels_not_due: _Optional[int] = ..., labels_overdue: _Optional[int] = ...) -> None: ...

class GuardrailResult(_message.Message):
    __slots__ = ("metric", "passed", "detail", "ready", "max_degradation")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    MAX_DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    metric: str
    passed: bool
    detail: str
    ready: bool
    max_degradation: float
    def __init__(self, metric: _Optional[str] = ..., passed: _Optional[bool] = ..., detail: _Optional[str] = ..., ready: _Optional[bool] = ..., max_degradation: _Optional[float] = ...) -> None: ...

class ExperimentAnalysis(_message.Message):
    __slots__ = ("metric", "arms", "difference", "difference_ci_low", "difference_ci_high", "relative_lift", "relative_lift_ci_low", "relative_lift_ci_high", "p_value", "decision", "srm_detected", "srm_p_value", "sequential", "guardrails", "shadow_agreement", "shadow_mcnemar_p", "shadow_pairs", "agents", "label_source", "label_delay_seconds", "judged_until")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ARMS_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_LIFT_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_LIFT_CI_LOW_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_LIFT_CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    SRM_DETECTED_FIELD_NUMBER: _ClassVar[int]
    SRM_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    SEQUENTIAL_FIELD_NUMBER: _ClassVar[int]
    GUARDRAILS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SHADOW_MCNEMAR_P_FIELD_NUMBER: _ClassVar[int]
    SHADOW_PAIRS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    LABEL_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    JUDGED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    metric: str
    arms: _containers.RepeatedCompositeFieldContainer[ArmSummary]
    difference: float
    difference_ci_low: float
    difference_ci_high: float
    relative_lift: float
    relative_lift_ci_low: float
    relative_lift_ci_high: float
    p_value: float
    decision: str
    srm_detected: bool
    srm_p_value: float
    sequential: bool
    guardrails: _containers.RepeatedCompositeFieldContainer[GuardrailResult]
    shadow_agreement: float
    shadow_mcnemar_p: float
    shadow_pairs: int
    agents: _containers.RepeatedCompositeFieldContainer[AgentEvidence]
    label_source: str
    label_delay_seconds: float
    judged_until: _timestamp_pb2.Timestamp
    def __init__(self, metric: _Optional[str] = ..., arms: _Optional[_Iterable[_Union[ArmSummary, _Mapping]]] = ..., difference: _Optional[float] = ..., difference_ci_low: _Optional[float] = ..., difference_ci_high: _Optional[float] = ..., relative_lift: _Optional[float] = ..., relative_lift_ci_low: _Optional[float] = ..., relative_lift_ci_high: _Optional[float] = ..., p_value: _Optional[float] = ..., decision: _Optional[str] = ..., srm_detected: _Optional[bool] = ..., srm_p_value: _Optional[float] = ..., sequential: _Optional[bool] = ..., guardrails: _Optional[_Iterable[_Union[GuardrailResult, _Mapping]]] = ..., shadow_agreement: _Optional[float] = ..., shadow_mcnemar_p: _Optional[float] = ..., shadow_pairs: _Optional[int] = ..., agents: _Optional[_Iterable[_Union[AgentEvidence, _Mapping]]] = ..., label_source: _Optional[str] = ..., label_delay_seconds: _Optional[float] = ..., judged_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AgentEvidence(_message.Message):
    __slots__ = ("agent_id", "agent_name", "champion_n", "challenger_n", "champion_metric", "challenger_metric", "decision_without", "ready_without", "failed_without")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_NAME_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_N_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_N_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_METRIC_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_METRIC_FIELD_NUMBER: _ClassVar[int]
    DECISION_WITHOUT_FIELD_NUMBER: _ClassVar[int]
    READY_WITHOUT_FIELD_NUMBER: _ClassVar[int]
    FAILED_WITHOUT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    agent_name: str
    champion_n: int
    challenger_n: int
    champion_metric: float
    challenger_metric: float
    decision_without: str
    ready_without: bool
    failed_without: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., agent_name: _Optional[str] = ..., champion_n: _Optional[int] = ..., challenger_n: _Optional[int] = ..., champion_metric: _Optional[float] = ..., challenger_metric: _Optional[float] = ..., decision_without: _Optional[str] = ..., ready_without: _Optional[bool] = ..., failed_without: _Optional[_Iterable[str]] = ...) -> None: ...

class Experiment(_message.Message):
    __slots__ = ("name", "config", "state", "champion", "step_index", "current_percent", "step_started_at", "hold_remaining_seconds", "status_reason", "analysis", "created_at", "ended_at", "salt", "created_by", "paused_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    STEP_INDEX_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    STEP_STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    HOLD_REMAINING_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    PAUSED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    config: ExperimentConfig
    state: ExperimentState
    champion: _common_pb2.VersionRef
    step_index: int
    current_percent: int
    step_started_at: _timestamp_pb2.Timestamp
    hold_remaining_seconds: float
    status_reason: str
    analysis: ExperimentAnalysis
    created_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    salt: str
    created_by: str
    paused_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., config: _Optional[_Union[ExperimentConfig, _Mapping]] = ..., state: _Optional[_Union[ExperimentState, str]] = ..., champion: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., step_index: _Optional[int] = ..., current_percent: _Optional[int] = ..., step_started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., hold_remaining_seconds: _Optional[float] = ..., status_reason: _Optional[str] = ..., analysis: _Optional[_Union[ExperimentAnalysis, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., salt: _Optional[str] = ..., created_by: _Optional[str] = ..., paused_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FeatureDrift(_message.Message):
    __slots__ = ("feature", "psi", "ks_p_value", "drifted")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    KS_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FIELD_NUMBER: _ClassVar[int]
    feature: str
    psi: float
    ks_p_value: float
    drifted: bool
    def __init__(self, feature: _Optional[str] = ..., psi: _Optional[float] = ..., ks_p_value: _Optional[float] = ..., drifted: _Optional[bool] = ...) -> None: ...

class MetricValue(_message.Message):
    __slots__ = ("name", "value", "state")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: float
    state: _common_pb2.HealthState
    def __init__(self, name: _Optional[str] = ..., value: _Optional[float] = ..., state: _Optional[_Union[_common_pb2.HealthState, str]] = ...) -> None: ...

class VersionStatus(_message.Message):
    __slots__ = ("version", "role", "weight", "health", "reasons", "requests", "errors", "requests_per_second", "error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "n_labeled", "accuracy", "mae", "within_tolerance", "drift", "metrics", "rejected_inputs", "out_of_range_share", "rmse", "errors_by_code", "prediction_psi", "labeled")
    class ErrorsByCodeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_MS_FIELD_NUMBER: _ClassVar[int]
    N_LABELED_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MAE_FIELD_NUMBER: _ClassVar[int]
    WITHIN_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    DRIFT_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_RANGE_SHARE_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_BY_CODE_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_PSI_FIELD_NUMBER: _ClassVar[int]
    LABELED_FIELD_NUMBER: _ClassVar[int]
    version: _common_pb2.VersionRef
    role: _common_pb2.Role
    weight: int
    health: _common_pb2.HealthState
    reasons: _containers.RepeatedScalarFieldContainer[str]
    requests: int
    errors: int
    requests_per_second: float
    error_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    n_labeled: int
    accuracy: float
    mae: float
    within_tolerance: float
    drift: _containers.RepeatedCompositeFieldContainer[FeatureDrift]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricValue]
    rejected_inputs: int
    out_of_range_share: float
    rmse: float
    errors_by_code: _containers.ScalarMap[str, int]
    prediction_psi: float
    labeled: LabeledFigures
    def __init__(self, version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., weight: _Optional[int] = ..., health: _Optional[_Union[_common_pb2.HealthState, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., requests_per_second: _Optional[float] = ..., error_rate: _Optional[float] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., latency_p99_ms: _Optional[float] = ..., n_labeled: _Optional[int] = ..., accuracy: _Optional[float] = ..., mae: _Optional[float] = ..., within_tolerance: _Optional[float] = ..., drift: _Optional[_Iterable[_Union[FeatureDrift, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[MetricValue, _Mapping]]] = ..., rejected_inputs: _Optional[int] = ..., out_of_range_share: _Optional[float] = ..., rmse: _Optional[float] = ..., errors_by_code: _Optional[_Mapping[str, int]] = ..., prediction_psi: _Optional[float] = ..., labeled: _Optional[_Union[LabeledFigures, _Mapping]] = ...) -> None: ...

class LabeledFigures(_message.Message):
    __slots__ = ("predictions", "labeled", "waiting", "accuracy", "mae", "rmse")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    LABELED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MAE_FIELD_NUMBER: _ClassVar[int]
    RMSE_FIELD_NUMBER: _ClassVar[int]
    predictions: int
    labeled: int
    waiting: int
    accuracy: float
    mae: float
    rmse: float
    def __init__(self, predictions: _Optional[int] = ..., labeled: _Optional[int] = ..., waiting: _Optional[int] = ..., accuracy: _Optional[float] = ..., mae: _Optional[float] = ..., rmse: _Optional[float] = ...) -> None: ...

class DeploymentStatus(_message.Message):
    __slots__ = ("deployment", "health", "versions", "agents_in_sync", "agents_total", "requests_per_second", "open_alerts", "experiment", "agents_lost", "log_usage")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    AGENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    OPEN_ALERTS_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    AGENTS_LOST_FIELD_NUMBER: _ClassVar[int]
    LOG_USAGE_FIELD_NUMBER: _ClassVar[int]
    deployment: Deployment
    health: _common_pb2.HealthState
    versions: _containers.RepeatedCompositeFieldContainer[VersionStatus]
    agents_in_sync: int
    agents_total: int
    requests_per_second: float
    open_alerts: int
    experiment: Experiment
    agents_lost: int
    log_usage: LogUsage
    def __init__(self, deployment: _Optional[_Union[Deployment, _Mapping]] = ..., health: _Optional[_Union[_common_pb2.HealthState, str]] = ..., versions: _Optional[_Iterable[_Union[VersionStatus, _Mapping]]] = ..., agents_in_sync: _Optional[int] = ..., agents_total: _Optional[int] = ..., requests_per_second: _Optional[float] = ..., open_alerts: _Optional[int] = ..., experiment: _Optional[_Union[Experiment, _Mapping]] = ..., agents_lost: _Optional[int] = ..., log_usage: _Optional[_Union[LogUsage, _Mapping]] = ...) -> None: ...

class LogUsage(_message.Message):
    __slots__ = ("segments", "rows", "bytes", "label_files", "label_bytes")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FILES_FIELD_NUMBER: _ClassVar[int]
    LABEL_BYTES_FIELD_NUMBER: _ClassVar[int]
    segments: int
    rows: int
    bytes: int
    label_files: int
    label_bytes: int
    def __init__(self, segments: _Optional[int] = ..., rows: _Optional[int] = ..., bytes: _Optional[int] = ..., label_files: _Optional[int] = ..., label_bytes: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("deployment", "window_seconds")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    window_seconds: float
    def __init__(self, deployment: _Optional[str] = ..., window_seconds: _Optional[float] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentStatus]
    def __init__(self, deployments: _Optional[_Iterable[_Union[DeploymentStatus, _Mapping]]] = ...) -> None: ...

class MetricPoint(_message.Message):
    __slots__ = ("at", "requests_per_second", "error_rate", "latency_p95_ms", "accuracy")
    AT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    requests_per_second: float
    error_rate: float
    latency_p95_ms: float
    accuracy: float
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requests_per_second: _Optional[float] = ..., error_rate: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., accuracy: _Optional[float] = ...) -> None: ...

class GetMetricSeriesRequest(_message.Message):
    __slots__ = ("deployment", "version", "window_seconds", "step_seconds")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    version: _common_pb2.VersionRef
    window_seconds: float
    step_seconds: float
    def __init__(self, deployment: _Optional[str] = ..., version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., window_seconds: _Optional[float] = ..., step_seconds: _Optional[float] = ...) -> None: ...

class GetMetricSeriesResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[MetricPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[MetricPoint, _Mapping]]] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ("id", "deployment", "version", "kind", "severity", "state", "message", "value", "occurrences", "opened_at", "updated_at", "resolved_at", "acknowledged_by", "agent", "subject", "acknowledged_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    OCCURRENCES_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    deployment: str
    version: _common_pb2.VersionRef
    kind: str
    severity: _common_pb2.HealthState
    state: AlertState
    message: str
    value: float
    occurrences: int
    opened_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    resolved_at: _timestamp_pb2.Timestamp
    acknowledged_by: str
    agent: str
    subject: str
    acknowledged_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., deployment: _Optional[str] = ..., version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., kind: _Optional[str] = ..., severity: _Optional[_Union[_common_pb2.HealthState, str]] = ..., state: _Optional[_Union[AlertState, str]] = ..., message: _Optional[str] = ..., value: _Optional[float] = ..., occurrences: _Optional[int] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_by: _Optional[str] = ..., agent: _Optional[str] = ..., subject: _Optional[str] = ..., acknowledged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ("include_resolved", "deployment", "page_size", "page_token")
    INCLUDE_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    include_resolved: bool
    deployment: str
    page_size: int
    page_token: str
    def __init__(self, include_resolved: _Optional[bool] = ..., deployment: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ("alerts", "next_page_token")
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    next_page_token: str
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PolicyThresholds(_message.Message):
    __slots__ = ("accuracy_warning", "accuracy_critical", "p95_latency_ms_warning", "p95_latency_ms_critical", "error_rate_warning", "error_rate_critical", "psi_warning", "psi_critical", "mae_warning", "mae_critical", "within_tolerance_warning", "within_tolerance_critical", "tolerance", "rmse_warning", "rmse_critical", "prediction_psi_warning", "prediction_psi_critical")
    ACCURACY_WARNING_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_WARNING_FIELD_NUMBER: _ClassVar[int]
    P95_LATENCY_MS_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_WARNING_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    PSI_WARNING_FIELD_NUMBER: _ClassVar[int]
    PSI_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    MAE_WARNING_FIELD_NUMBER: _ClassVar[int]
    MAE_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    WITHIN_TOLERANCE_WARNING_FIELD_NUMBER: _ClassVar[int]
    WITHIN_TOLERANCE_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    RMSE_WARNING_FIELD_NUMBER: _ClassVar[int]
    RMSE_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_PSI_WARNING_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_PSI_CRITICAL_FIELD_NUMBER: _ClassVar[int]
    accuracy_warning: float
    accuracy_critical: float
    p95_latency_ms_warning: float
    p95_latency_ms_critical: float
    error_rate_warning: float
    error_rate_critical: float
    psi_warning: float
    psi_critical: float
    mae_warning: float
    mae_critical: float
    within_tolerance_warning: float
    within_tolerance_critical: float
    tolerance: float
    rmse_warning: float
    rmse_critical: float
    prediction_psi_warning: float
    prediction_psi_critical: float
    def __init__(self, accuracy_warning: _Optional[float] = ..., accuracy_critical: _Optional[float] = ..., p95_latency_ms_warning: _Optional[float] = ..., p95_latency_ms_critical: _Optional[float] = ..., error_rate_warning: _Optional[float] = ..., error_rate_critical: _Optional[float] = ..., psi_warning: _Optional[float] = ..., psi_critical: _Optional[float] = ..., mae_warning: _Optional[float] = ..., mae_critical: _Optional[float] = ..., within_tolerance_warning: _Optional[float] = ..., within_tolerance_critical: _Optional[float] = ..., tolerance: _Optional[float] = ..., rmse_warning: _Optional[float] = ..., rmse_critical: _Optional[float] = ..., prediction_psi_warning: _Optional[float] = ..., prediction_psi_critical: _Optional[float] = ...) -> None: ...

class PolicyRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("deployment", "thresholds", "action", "action_after_seconds", "reset", "reason", "fallback", "accuracy_source", "label_delay_seconds")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTION_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    thresholds: PolicyThresholds
    action: PolicyAction
    action_after_seconds: float
    reset: _containers.RepeatedScalarFieldContainer[str]
    reason: str
    fallback: bool
    accuracy_source: str
    label_delay_seconds: float
    def __init__(self, deployment: _Optional[str] = ..., thresholds: _Optional[_Union[PolicyThresholds, _Mapping]] = ..., action: _Optional[_Union[PolicyAction, str]] = ..., action_after_seconds: _Optional[float] = ..., reset: _Optional[_Iterable[str]] = ..., reason: _Optional[str] = ..., fallback: _Optional[bool] = ..., accuracy_source: _Optional[str] = ..., label_delay_seconds: _Optional[float] = ...) -> None: ...

class Policy(_message.Message):
    __slots__ = ("deployment", "thresholds", "overridden", "action", "action_after_seconds", "critical_since", "acts_at", "last_action", "last_action_at", "updated_by", "updated_at", "fallback", "accuracy_source", "label_delay_seconds")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDDEN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTION_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_SINCE_FIELD_NUMBER: _ClassVar[int]
    ACTS_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTION_FIELD_NUMBER: _ClassVar[int]
    LAST_ACTION_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_DELAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    thresholds: PolicyThresholds
    overridden: _containers.RepeatedScalarFieldContainer[str]
    action: PolicyAction
    action_after_seconds: float
    critical_since: _timestamp_pb2.Timestamp
    acts_at: _timestamp_pb2.Timestamp
    last_action: str
    last_action_at: _timestamp_pb2.Timestamp
    updated_by: str
    updated_at: _timestamp_pb2.Timestamp
    fallback: bool
    accuracy_source: str
    label_delay_seconds: float
    def __init__(self, deployment: _Optional[str] = ..., thresholds: _Optional[_Union[PolicyThresholds, _Mapping]] = ..., overridden: _Optional[_Iterable[str]] = ..., action: _Optional[_Union[PolicyAction, str]] = ..., action_after_seconds: _Optional[float] = ..., critical_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_action: _Optional[str] = ..., last_action_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fallback: _Optional[bool] = ..., accuracy_source: _Optional[str] = ..., label_delay_seconds: _Optional[float] = ...) -> None: ...

class AckAlertRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: int
    def __init__(self, id: _Optional[int] = ...) -> None: ...

class DeploymentSync(_message.Message):
    __slots__ = ("deployment", "applied_generation", "desired_generation", "in_sync")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    DESIRED_GENERATION_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    applied_generation: int
    desired_generation: int
    in_sync: bool
    def __init__(self, deployment: _Optional[str] = ..., applied_generation: _Optional[int] = ..., desired_generation: _Optional[int] = ..., in_sync: _Optional[bool] = ...) -> None: ...

class AgentInfo(_message.Message):
    __slots__ = ("id", "name", "host", "address", "labels", "state", "last_seen", "deployments", "last_nack", "connected_at")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    LAST_NACK_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    host: str
    address: str
    labels: _containers.ScalarMap[str, str]
    state: str
    last_seen: _timestamp_pb2.Timestamp
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentSync]
    last_nack: str
    connected_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., address: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., state: _Optional[str] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deployments: _Optional[_Iterable[_Union[DeploymentSync, _Mapping]]] = ..., last_nack: _Optional[str] = ..., connected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAgentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAgentsResponse(_message.Message):
    __slots__ = ("agents", "next_page_token")
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agents: _containers.RepeatedCompositeFieldContainer[AgentInfo]
    next_page_token: str
    def __init__(self, agents: _Optional[_Iterable[_Union[AgentInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RetrainingRun(_message.Message):
    __slots__ = ("id", "deployment", "reason", "state", "produced", "detail", "started_at", "finished_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRODUCED_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    deployment: str
    reason: str
    state: str
    produced: _common_pb2.VersionRef
    detail: str
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., deployment: _Optional[str] = ..., reason: _Optional[str] = ..., state: _Optional[str] = ..., produced: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., detail: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListRetrainingRunsRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class ListRetrainingRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[RetrainingRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[RetrainingRun, _Mapping]]] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("id", "deployment", "generation", "action", "principal", "reason", "splits", "at")
    ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    id: int
    deployment: str
    generation: int
    action: str
    principal: str
    reason: str
    splits: _containers.RepeatedCompositeFieldContainer[_common_pb2.TrafficSplit]
    at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., deployment: _Optional[str] = ..., generation: _Optional[int] = ..., action: _Optional[str] = ..., principal: _Optional[str] = ..., reason: _Optional[str] = ..., splits: _Optional[_Iterable[_Union[_common_pb2.TrafficSplit, _Mapping]]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListHistoryRequest(_message.Message):
    __slots__ = ("deployment", "limit")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    limit: int
    def __init__(self, deployment: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class AuditEvent(_message.Message):
    __slots__ = ("id", "at", "principal", "action", "target", "details_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: _timestamp_pb2.Timestamp
    principal: str
    action: str
    target: str
    details_json: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., principal: _Optional[str] = ..., action: _Optional[str] = ..., target: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class ListAuditRequest(_message.Message):
    __slots__ = ("target", "limit", "deployment")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    target: str
    limit: int
    deployment: str
    def __init__(self, target: _Optional[str] = ..., limit: _Optional[int] = ..., deployment: _Optional[str] = ...) -> None: ...

class ListAuditResponse(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[AuditEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[AuditEvent, _Mapping]]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("principal", "role")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    principal: str
    role: str
    def __init__(self, principal: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("name", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("deployment",)
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    def __init__(self, deployment: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "at", "kind", "deployment", "summary")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: _timestamp_pb2.Timestamp
    kind: str
    deployment: str
    summary: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[str] = ..., deployment: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class LabelImportHeader(_message.Message):
    __slots__ = ("deployment", "import_id", "atomic")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    IMPORT_ID_FIELD_NUMBER: _ClassVar[int]
    ATOMIC_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    import_id: str
    atomic: bool
    def __init__(self, deployment: _Optional[str] = ..., import_id: _Optional[str] = ..., atomic: _Optional[bool] = ...) -> None: ...

class LabelRows(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.LabelRow]
    def __init__(self, rows: _Optional[_Iterable[_Union[_common_pb2.LabelRow, _Mapping]]] = ...) -> None: ...

class LabelImportEnd(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    def __init__(self, rows: _Optional[int] = ...) -> None: ...

class SubmitLabelsRequest(_message.Message):
    __slots__ = ("header", "batch", "end")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    header: LabelImportHeader
    batch: LabelRows
    end: LabelImportEnd
    def __init__(self, header: _Optional[_Union[LabelImportHeader, _Mapping]] = ..., batch: _Optional[_Union[LabelRows, _Mapping]] = ..., end: _Optional[_Union[LabelImportEnd, _Mapping]] = ...) -> None: ...

class LabelImport(_message.Message):
    __slots__ = ("import_id", "deployment", "principal", "created_at", "rows", "accepted", "duplicates", "replaced", "unknown_ids", "late", "refused", "refusals", "replayed", "source")
    IMPORT_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_IDS_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    REFUSALS_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    import_id: str
    deployment: str
    principal: str
    created_at: _timestamp_pb2.Timestamp
    rows: int
    accepted: int
    duplicates: int
    replaced: int
    unknown_ids: int
    late: int
    refused: int
    refusals: _containers.RepeatedScalarFieldContainer[str]
    replayed: bool
    source: str
    def __init__(self, import_id: _Optional[str] = ..., deployment: _Optional[str] = ..., principal: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rows: _Optional[int] = ..., accepted: _Optional[int] = ..., duplicates: _Optional[int] = ..., replaced: _Optional[int] = ..., unknown_ids: _Optional[int] = ..., late: _Optional[int] = ..., refused: _Optional[int] = ..., refusals: _Optional[_Iterable[str]] = ..., replayed: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class ListLabelImportsRequest(_message.Message):
    __slots__ = ("deployment", "limit")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    limit: int
    def __init__(self, deployment: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListLabelImportsResponse(_message.Message):
    __slots__ = ("imports",)
    IMPORTS_FIELD_NUMBER: _ClassVar[int]
    imports: _containers.RepeatedCompositeFieldContainer[LabelImport]
    def __init__(self, imports: _Optional[_Iterable[_Union[LabelImport, _Mapping]]] = ...) -> None: ...

class ExportDatasetRequest(_message.Message):
    __slots__ = ("deployment", "since", "until", "version", "labeled_only")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LABELED_ONLY_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    version: _common_pb2.VersionRef
    labeled_only: bool
    def __init__(self, deployment: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., labeled_only: _Optional[bool] = ...) -> None: ...

class DatasetExportHeader(_message.Message):
    __slots__ = ("rows", "size")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    rows: int
    size: int
    def __init__(self, rows: _Optional[int] = ..., size: _Optional[int] = ...) -> None: ...

class DatasetChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: DatasetExportHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[DatasetExportHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class PurgeLogRequest(_message.Message):
    __slots__ = ("deployment", "older_than_seconds", "routing_key", "reason")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    OLDER_THAN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    older_than_seconds: float
    routing_key: str
    reason: str
    def __init__(self, deployment: _Optional[str] = ..., older_than_seconds: _Optional[float] = ..., routing_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PurgeSummary(_message.Message):
    __slots__ = ("segments_scanned", "segments_rewritten", "segments_deleted", "rows_removed", "bytes_freed", "labels_removed")
    SEGMENTS_SCANNED_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_REWRITTEN_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_DELETED_FIELD_NUMBER: _ClassVar[int]
    ROWS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    BYTES_FREED_FIELD_NUMBER: _ClassVar[int]
    LABELS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    segments_scanned: int
    segments_rewritten: int
    segments_deleted: int
    rows_removed: int
    bytes_freed: int
    labels_removed: int
    def __init__(self, segments_scanned: _Optional[int] = ..., segments_rewritten: _Optional[int] = ..., segments_deleted: _Optional[int] = ..., rows_removed: _Optional[int] = ..., bytes_freed: _Optional[int] = ..., labels_removed: _Optional[int] = ...) -> None: ...

class PurgeLogProgress(_message.Message):
    __slots__ = ("segments_done", "segments_total", "summary")
    SEGMENTS_DONE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    segments_done: int
    segments_total: int
    summary: PurgeSummary
    def __init__(self, segments_done: _Optional[int] = ..., segments_total: _Optional[int] = ..., summary: _Optional[_Union[PurgeSummary, _Mapping]] = ...) -> None: ...
