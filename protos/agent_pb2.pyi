import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentMessage(_message.Message):
    __slots__ = ("hello", "ack", "nack", "heartbeat", "report", "goodbye", "labels", "log_segment")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    NACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    GOODBYE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LOG_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    ack: SnapshotAck
    nack: SnapshotNack
    heartbeat: Heartbeat
    report: MetricReport
    goodbye: Goodbye
    labels: LabelBatch
    log_segment: LogSegment
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., ack: _Optional[_Union[SnapshotAck, _Mapping]] = ..., nack: _Optional[_Union[SnapshotNack, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., report: _Optional[_Union[MetricReport, _Mapping]] = ..., goodbye: _Optional[_Union[Goodbye, _Mapping]] = ..., labels: _Optional[_Union[LabelBatch, _Mapping]] = ..., log_segment: _Optional[_Union[LogSegment, _Mapping]] = ...) -> None: ...

class Goodbye(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ControlMessage(_message.Message):
    __slots__ = ("snapshot", "heartbeat", "report_ack", "hello_ack", "labels_ack", "log_segment_ack")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    REPORT_ACK_FIELD_NUMBER: _ClassVar[int]
    HELLO_ACK_FIELD_NUMBER: _ClassVar[int]
    LABELS_ACK_FIELD_NUMBER: _ClassVar[int]
    LOG_SEGMENT_ACK_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    heartbeat: Heartbeat
    report_ack: ReportAck
    hello_ack: HelloAck
    labels_ack: LabelBatchAck
    log_segment_ack: LogSegmentAck
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., report_ack: _Optional[_Union[ReportAck, _Mapping]] = ..., hello_ack: _Optional[_Union[HelloAck, _Mapping]] = ..., labels_ack: _Optional[_Union[LabelBatchAck, _Mapping]] = ..., log_segment_ack: _Optional[_Union[LogSegmentAck, _Mapping]] = ...) -> None: ...

class LogSegment(_message.Message):
    __slots__ = ("segment_id", "deployment", "version", "date", "rows", "data", "uri", "size")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    deployment: str
    version: _common_pb2.VersionRef
    date: str
    rows: int
    data: bytes
    uri: str
    size: int
    def __init__(self, segment_id: _Optional[str] = ..., deployment: _Optional[str] = ..., version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., date: _Optional[str] = ..., rows: _Optional[int] = ..., data: _Optional[bytes] = ..., uri: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class LogSegmentAck(_message.Message):
    __slots__ = ("segment_id", "ok", "error", "retry_after_seconds")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    ok: bool
    error: str
    retry_after_seconds: float
    def __init__(self, segment_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ..., retry_after_seconds: _Optional[float] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("agent_id", "name", "host", "address", "labels", "cached_sha256", "applied_generations", "software_version", "applied_digests")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AppliedGenerationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class AppliedDigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    CACHED_SHA256_FIELD_NUMBER: _ClassVar[int]
    APPLIED_GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    SOFTWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    APPLIED_DIGESTS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    name: str
    host: str
    address: str
    labels: _containers.ScalarMap[str, str]
    cached_sha256: _containers.RepeatedScalarFieldContainer[str]
    applied_generations: _containers.ScalarMap[str, int]
    software_version: str
    applied_digests: _containers.ScalarMap[str, str]
    def __init__(self, agent_id: _Optional[str] = ..., name: _Optional[str] = ..., host: _Optional[str] = ..., address: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., cached_sha256: _Optional[_Iterable[str]] = ..., applied_generations: _Optional[_Mapping[str, int]] = ..., software_version: _Optional[str] = ..., applied_digests: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HelloAck(_message.Message):
    __slots__ = ("heartbeat_seconds", "report_seconds", "arrow_segments", "record_segments")
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REPORT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ARROW_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    RECORD_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    heartbeat_seconds: float
    report_seconds: float
    arrow_segments: bool
    record_segments: bool
    def __init__(self, heartbeat_seconds: _Optional[float] = ..., report_seconds: _Optional[float] = ..., arrow_segments: _Optional[bool] = ..., record_segments: _Optional[bool] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("at",)
    AT_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    def __init__(self, at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Route(_message.Message):
    __slots__ = ("version", "sha256", "weight", "role", "baseline", "task")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    version: _common_pb2.VersionRef
    sha256: str
    weight: int
    role: _common_pb2.Role
    baseline: _common_pb2.Baseline
    task: str
    def __init__(self, version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., sha256: _Optional[str] = ..., weight: _Optional[int] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., baseline: _Optional[_Union[_common_pb2.Baseline, _Mapping]] = ..., task: _Optional[str] = ...) -> None: ...

class DeploymentSnapshot(_message.Message):
    __slots__ = ("name", "generation", "salt", "routes", "experiment", "segment_rules", "log_sample_rate", "digest", "fallback", "tolerance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_RULES_FIELD_NUMBER: _ClassVar[int]
    LOG_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    generation: int
    salt: str
    routes: _containers.RepeatedCompositeFieldContainer[Route]
    experiment: str
    segment_rules: _containers.RepeatedCompositeFieldContainer[_common_pb2.SegmentRule]
    log_sample_rate: float
    digest: str
    fallback: bool
    tolerance: float
    def __init__(self, name: _Optional[str] = ..., generation: _Optional[int] = ..., salt: _Optional[str] = ..., routes: _Optional[_Iterable[_Union[Route, _Mapping]]] = ..., experiment: _Optional[str] = ..., segment_rules: _Optional[_Iterable[_Union[_common_pb2.SegmentRule, _Mapping]]] = ..., log_sample_rate: _Optional[float] = ..., digest: _Optional[str] = ..., fallback: _Optional[bool] = ..., tolerance: _Optional[float] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("snapshot_id", "deployments")
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentSnapshot]
    def __init__(self, snapshot_id: _Optional[int] = ..., deployments: _Optional[_Iterable[_Union[DeploymentSnapshot, _Mapping]]] = ...) -> None: ...

class SnapshotAck(_message.Message):
    __slots__ = ("snapshot_id", "generations", "digests")
    class GenerationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    generations: _containers.ScalarMap[str, int]
    digests: _containers.ScalarMap[str, str]
    def __init__(self, snapshot_id: _Optional[int] = ..., generations: _Optional[_Mapping[str, int]] = ..., digests: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SnapshotNack(_message.Message):
    __slots__ = ("snapshot_id", "reason", "generations", "digests")
    class GenerationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class DigestsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SNAPSHOT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GENERATIONS_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    snapshot_id: int
    reason: str
    generations: _containers.ScalarMap[str, int]
    digests: _containers.ScalarMap[str, str]
    def __init__(self, snapshot_id: _Optional[int] = ..., reason: _Optional[str] = ..., generations: _Optional[_Mapping[str, int]] = ..., digests: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ErrorCount(_message.Message):
    __slots__ = ("code", "count")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    code: str
    count: int
    def __init__(self, code: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class Feedback(_message.Message):
    __slots__ = ("n_labeled", "n_correct", "sum_abs_error", "n_within_tolerance", "abs_error", "sum_squared_error")
    N_LABELED_FIELD_NUMBER: _ClassVar[int]
    N_CORRECT_FIELD_NUMBER: _ClassVar[int]
    SUM_ABS_ERROR_FIELD_NUMBER: _ClassVar[int]
    N_WITHIN_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    ABS_ERROR_FIELD_NUMBER: _ClassVar[int]
    SUM_SQUARED_ERROR_FIELD_NUMBER: _ClassVar[int]
    n_labeled: int
    n_correct: int
    sum_abs_error: float
    n_within_tolerance: int
    abs_error: _common_pb2.Moments
    sum_squared_error: float
    def __init__(self, n_labeled: _Optional[int] = ..., n_correct: _Optional[int] = ..., sum_abs_error: _Optional[float] = ..., n_within_tolerance: _Optional[int] = ..., abs_error: _Optional[_Union[_common_pb2.Moments, _Mapping]] = ..., sum_squared_error: _Optional[float] = ...) -> None: ...

class ShadowPairs(_message.Message):
    __slots__ = ("pairs", "agreements", "labeled_pairs", "champion_only_correct", "challenger_only_correct")
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    LABELED_PAIRS_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_ONLY_CORRECT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_ONLY_CORRECT_FIELD_NUMBER: _ClassVar[int]
    pairs: int
    agreements: int
    labeled_pairs: int
    champion_only_correct: int
    challenger_only_correct: int
    def __init__(self, pairs: _Optional[int] = ..., agreements: _Optional[int] = ..., labeled_pairs: _Optional[int] = ..., champion_only_correct: _Optional[int] = ..., challenger_only_correct: _Optional[int] = ...) -> None: ...

class FeatureWindow(_message.Message):
    __slots__ = ("index", "counts", "out_of_range", "missing")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_RANGE_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    index: int
    counts: _containers.RepeatedScalarFieldContainer[int]
    out_of_range: int
    missing: int
    def __init__(self, index: _Optional[int] = ..., counts: _Optional[_Iterable[int]] = ..., out_of_range: _Optional[int] = ..., missing: _Optional[int] = ...) -> None: ...

class CategoryWindow(_message.Message):
    __slots__ = ("index", "counts", "missing", "unseen")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    UNSEEN_FIELD_NUMBER: _ClassVar[int]
    index: int
    counts: _containers.RepeatedScalarFieldContainer[int]
    missing: int
    unseen: int
    def __init__(self, index: _Optional[int] = ..., counts: _Optional[_Iterable[int]] = ..., missing: _Optional[int] = ..., unseen: _Optional[int] = ...) -> None: ...

class VersionWindow(_message.Message):
    __slots__ = ("deployment", "version", "role", "experiment", "requests", "rows", "errors", "latency", "prediction_counts", "prediction_values", "features", "reservoir_features", "reservoir", "feedback", "rejected_inputs", "shadow", "categories")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_VALUES_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    RESERVOIR_FEATURES_FIELD_NUMBER: _ClassVar[int]
    RESERVOIR_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    REJECTED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    version: _common_pb2.VersionRef
    role: _common_pb2.Role
    experiment: str
    requests: int
    rows: int
    errors: _containers.RepeatedCompositeFieldContainer[ErrorCount]
    latency: _common_pb2.LatencySketch
    prediction_counts: _containers.RepeatedScalarFieldContainer[int]
    prediction_values: _common_pb2.Moments
    features: _containers.RepeatedCompositeFieldContainer[FeatureWindow]
    reservoir_features: int
    reservoir: _containers.RepeatedScalarFieldContainer[float]
    feedback: Feedback
    rejected_inputs: int
    shadow: ShadowPairs
    categories: _containers.RepeatedCompositeFieldContainer[CategoryWindow]
    def __init__(self, deployment: _Optional[str] = ..., version: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., experiment: _Optional[str] = ..., requests: _Optional[int] = ..., rows: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[ErrorCount, _Mapping]]] = ..., latency: _Optional[_Union[_common_pb2.LatencySketch, _Mapping]] = ..., prediction_counts: _Optional[_Iterable[int]] = ..., prediction_values: _Optional[_Union[_common_pb2.Moments, _Mapping]] = ..., features: _Optional[_Iterable[_Union[FeatureWindow, _Mapping]]] = ..., reservoir_features: _Optional[int] = ..., reservoir: _Optional[_Iterable[float]] = ..., feedback: _Optional[_Union[Feedback, _Mapping]] = ..., rejected_inputs: _Optional[int] = ..., shadow: _Optional[_Union[ShadowPairs, _Mapping]] = ..., categories: _Optional[_Iterable[_Union[CategoryWindow, _Mapping]]] = ...) -> None: ...

class MetricReport(_message.Message):
    __slots__ = ("agent_id", "seq", "window_start", "window_seconds", "windows", "dropped_reports", "unmatched_feedback", "dropped_log_rows")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    DROPPED_REPORTS_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    DROPPED_LOG_ROWS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    seq: int
    window_start: _timestamp_pb2.Timestamp
    window_seconds: float
    windows: _containers.RepeatedCompositeFieldContainer[VersionWindow]
    dropped_reports: int
    unmatched_feedback: int
    dropped_log_rows: int
    def __init__(self, agent_id: _Optional[str] = ..., seq: _Optional[int] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_seconds: _Optional[float] = ..., windows: _Optional[_Iterable[_Union[VersionWindow, _Mapping]]] = ..., dropped_reports: _Optional[int] = ..., unmatched_feedback: _Optional[int] = ..., dropped_log_rows: _Optional[int] = ...) -> None: ...

class ReportAck(_message.Message):
    __slots__ = ("seq", "refused")
    class RefusedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SEQ_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    seq: int
    refused: _containers.ScalarMap[str, int]
    def __init__(self, seq: _Optional[int] = ..., refused: _Optional[_Mapping[str, int]] = ...) -> None: ...

class FetchArtifactRequest(_message.Message):
    __slots__ = ("sha256", "offset")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    offset: int
    def __init__(self, sha256: _Optional[str] = ..., offset: _Optional[int] = ...) -> None: ...

class ArtifactChunk(_message.Message):
    __slots__ = ("data", "offset", "total_size")
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    offset: int
    total_size: int
    def __init__(self, data: _Optional[bytes] = ..., offset: _Optional[int] = ..., total_size: _Optional[int] = ...) -> None: ...

class LabelBatch(_message.Message):
    __slots__ = ("batch_id", "deployment", "rows")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    deployment: str
    rows: _containers.RepeatedCompositeFieldContainer[_common_pb2.LabelRow]
    def __init__(self, batch_id: _Optional[str] = ..., deployment: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[_common_pb2.LabelRow, _Mapping]]] = ...) -> None: ...

class LabelBatchAck(_message.Message):
    __slots__ = ("batch_id", "ok", "error")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    ok: bool
    error: str
    def __init__(self, batch_id: _Optional[str] = ..., ok: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...
