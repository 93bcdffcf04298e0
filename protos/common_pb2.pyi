import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_CHAMPION: _ClassVar[Role]
    ROLE_CHALLENGER: _ClassVar[Role]
    ROLE_SHADOW: _ClassVar[Role]

class HealthState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTH_UNKNOWN: _ClassVar[HealthState]
    HEALTH_HEALTHY: _ClassVar[HealthState]
    HEALTH_WARNING: _ClassVar[HealthState]
    HEALTH_CRITICAL: _ClassVar[HealthState]
ROLE_UNSPECIFIED: Role
ROLE_CHAMPION: Role
ROLE_CHALLENGER: Role
ROLE_SHADOW: Role
HEALTH_UNKNOWN: HealthState
HEALTH_HEALTHY: HealthState
HEALTH_WARNING: HealthState
HEALTH_CRITICAL: HealthState

class VersionRef(_message.Message):
    __slots__ = ("model", "version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class TensorSpec(_message.Message):
    __slots__ = ("name", "dtype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    dtype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., dtype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class FeatureBins(_message.Message):
    __slots__ = ("index", "name", "inner_edges", "counts", "min", "max", "missing")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INNER_EDGES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    inner_edges: _containers.RepeatedScalarFieldContainer[float]
    counts: _containers.RepeatedScalarFieldContainer[int]
    min: float
    max: float
    missing: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., inner_edges: _Optional[_Iterable[float]] = ..., counts: _Optional[_Iterable[int]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., missing: _Optional[int] = ...) -> None: ...

class CategoryBins(_message.Message):
    __slots__ = ("index", "name", "categories", "counts", "missing", "known", "known_complete")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    KNOWN_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    counts: _containers.RepeatedScalarFieldContainer[int]
    missing: int
    known: _containers.RepeatedScalarFieldContainer[str]
    known_complete: bool
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., counts: _Optional[_Iterable[int]] = ..., missing: _Optional[int] = ..., known: _Optional[_Iterable[str]] = ..., known_complete: _Optional[bool] = ...) -> None: ...

class Baseline(_message.Message):
    __slots__ = ("n_rows", "features", "sample_sha256", "prediction_counts", "categories", "prediction_edges")
    N_ROWS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SHA256_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_COUNTS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_EDGES_FIELD_NUMBER: _ClassVar[int]
    n_rows: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureBins]
    sample_sha256: str
    prediction_counts: _containers.RepeatedScalarFieldContainer[int]
    categories: _containers.RepeatedCompositeFieldContainer[CategoryBins]
    prediction_edges: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, n_rows: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureBins, _Mapping]]] = ..., sample_sha256: _Optional[str] = ..., prediction_counts: _Optional[_Iterable[int]] = ..., categories: _Optional[_Iterable[_Union[CategoryBins, _Mapping]]] = ..., prediction_edges: _Optional[_Iterable[float]] = ...) -> None: ...

class OfflineEvaluation(_message.Message):
    __slots__ = ("deployment", "champion", "challenger", "metric", "n", "champion_metric", "challenger_metric", "p_value", "method", "min_improvement", "challenger_wins", "verdict", "evaluated_at", "evaluated_by")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    CHAMPION_METRIC_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_METRIC_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MIN_IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    CHALLENGER_WINS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_AT_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_BY_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    champion: VersionRef
    challenger: VersionRef
    metric: str
    n: int
    champion_metric: float
    challenger_metric: float
    p_value: float
    method: str
    min_improvement: float
    challenger_wins: bool
    verdict: str
    evaluated_at: _timestamp_pb2.Timestamp
    evaluated_by: str
    def __init__(self, deployment: _Optional[str] = ..., champion: _Optional[_Union[VersionRef, _Mapping]] = ..., challenger: _Optional[_Union[VersionRef, _Mapping]] = ..., metric: _Optional[str] = ..., n: _Optional[int] = ..., champion_metric: _Optional[float] = ..., challenger_metric: _Optional[float] = ..., p_value: _Optional[float] = ..., method: _Optional[str] = ..., min_improvement: _Optional[float] = ..., challenger_wins: _Optional[bool] = ..., verdict: _Optional[str] = ..., evaluated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., evaluated_by: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("ref", "sha256", "size_bytes", "inputs", "outputs", "task", "description", "created_at", "created_by", "baseline", "offline_evaluation")
    REF_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_EVALUATION_FIELD_NUMBER: _ClassVar[int]
    ref: VersionRef
    sha256: str
    size_bytes: int
    inputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    outputs: _containers.RepeatedCompositeFieldContainer[TensorSpec]
    task: str
    description: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    baseline: Baseline
    offline_evaluation: OfflineEvaluation
    def __init__(self, ref: _Optional[_Union[VersionRef, _Mapping]] = ..., sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., inputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., outputs: _Optional[_Iterable[_Union[TensorSpec, _Mapping]]] = ..., task: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., baseline: _Optional[_Union[Baseline, _Mapping]] = ..., offline_evaluation: _Optional[_Union[OfflineEvaluation, _Mapping]] = ...) -> None: ...

class SegmentRule(_message.Message):
    __slots__ = ("attribute", "values", "has_range", "min", "max")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    HAS_RANGE_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    values: _containers.RepeatedScalarFieldContainer[str]
    has_range: bool
    min: float
    max: float
    def __init__(self, attribute: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., has_range: _Optional[bool] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class TrafficSplit(_message.Message):
    __slots__ = ("version", "weight", "role", "sha256")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    version: VersionRef
    weight: int
    role: Role
    sha256: str
    def __init__(self, version: _Optional[_Union[VersionRef, _Mapping]] = ..., weight: _Optional[int] = ..., role: _Optional[_Union[Role, str]] = ..., sha256: _Optional[str] = ...) -> None: ...

class Moments(_message.Message):
    __slots__ = ("n", "mean", "m2")
    N_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    M2_FIELD_NUMBER: _ClassVar[int]
    n: int
    mean: float
    m2: float
    def __init__(self, n: _Optional[int] = ..., mean: _Optional[float] = ..., m2: _Optional[float] = ...) -> None: ...

class LatencySketch(_message.Message):
    __slots__ = ("relative_accuracy", "keys", "counts", "zero_count", "sum", "min", "max")
    RELATIVE_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ZERO_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUM_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    relative_accuracy: float
    keys: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    zero_count: int
    sum: float
    min: float
    max: float
    def __init__(self, relative_accuracy: _Optional[float] = ..., keys: _Optional[_Iterable[int]] = ..., counts: _Optional[_Iterable[int]] = ..., zero_count: _Optional[int] = ..., sum: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class LabelRow(_message.Message):
    __slots__ = ("request_id", "label", "value", "event_time")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    label: str
    value: float
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., label: _Optional[str] = ..., value: _Optional[float] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
