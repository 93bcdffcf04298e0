from protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_TYPE_FLOAT32: _ClassVar[DataType]
    DATA_TYPE_FLOAT64: _ClassVar[DataType]
    DATA_TYPE_INT64: _ClassVar[DataType]
    DATA_TYPE_INT32: _ClassVar[DataType]
    DATA_TYPE_BOOL: _ClassVar[DataType]
    DATA_TYPE_STRING: _ClassVar[DataType]
    DATA_TYPE_FLOAT16: _ClassVar[DataType]
    DATA_TYPE_INT16: _ClassVar[DataType]
    DATA_TYPE_INT8: _ClassVar[DataType]
    DATA_TYPE_UINT8: _ClassVar[DataType]
    DATA_TYPE_UINT16: _ClassVar[DataType]
    DATA_TYPE_UINT32: _ClassVar[DataType]
    DATA_TYPE_UINT64: _ClassVar[DataType]
DATA_TYPE_FLOAT32: DataType
DATA_TYPE_FLOAT64: DataType
DATA_TYPE_INT64: DataType
DATA_TYPE_INT32: DataType
DATA_TYPE_BOOL: DataType
DATA_TYPE_STRING: DataType
DATA_TYPE_FLOAT16: DataType
DATA_TYPE_INT16: DataType
DATA_TYPE_INT8: DataType
DATA_TYPE_UINT8: DataType
DATA_TYPE_UINT16: DataType
DATA_TYPE_UINT32: DataType
DATA_TYPE_UINT64: DataType

class Tensor(_message.Message):
    __slots__ = ("shape", "values", "raw", "dtype", "float64_values", "int64_values", "bool_values", "string_values")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    FLOAT64_VALUES_FIELD_NUMBER: _ClassVar[int]
    INT64_VALUES_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUES_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUES_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    raw: bytes
    dtype: DataType
    float64_values: _containers.RepeatedScalarFieldContainer[float]
    int64_values: _containers.RepeatedScalarFieldContainer[int]
    bool_values: _containers.RepeatedScalarFieldContainer[bool]
    string_values: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., raw: _Optional[bytes] = ..., dtype: _Optional[_Union[DataType, str]] = ..., float64_values: _Optional[_Iterable[float]] = ..., int64_values: _Optional[_Iterable[int]] = ..., bool_values: _Optional[_Iterable[bool]] = ..., string_values: _Optional[_Iterable[bytes]] = ...) -> None: ...

class FeatureValue(_message.Message):
    __slots__ = ("missing", "number", "integer", "text", "flag", "list")
    MISSING_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    missing: bool
    number: float
    integer: int
    text: str
    flag: bool
    list: FeatureList
    def __init__(self, missing: _Optional[bool] = ..., number: _Optional[float] = ..., integer: _Optional[int] = ..., text: _Optional[str] = ..., flag: _Optional[bool] = ..., list: _Optional[_Union[FeatureList, _Mapping]] = ...) -> None: ...

class FeatureList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[FeatureValue]
    def __init__(self, values: _Optional[_Iterable[_Union[FeatureValue, _Mapping]]] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("features",)
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FeatureValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FeatureValue, _Mapping]] = ...) -> None: ...
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    features: _containers.MessageMap[str, FeatureValue]
    def __init__(self, features: _Optional[_Mapping[str, FeatureValue]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("deployment", "input", "named_inputs", "routing_key", "request_id", "attributes", "records")
    class NamedInputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    NAMED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    input: Tensor
    named_inputs: _containers.MessageMap[str, Tensor]
    routing_key: str
    request_id: str
    attributes: _containers.ScalarMap[str, str]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    def __init__(self, deployment: _Optional[str] = ..., input: _Optional[_Union[Tensor, _Mapping]] = ..., named_inputs: _Optional[_Mapping[str, Tensor]] = ..., routing_key: _Optional[str] = ..., request_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("request_id", "served_by", "role", "labels", "probabilities", "values", "agent", "class_labels", "classes", "values_shape")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABELS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    VALUES_SHAPE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    served_by: _common_pb2.VersionRef
    role: _common_pb2.Role
    labels: _containers.RepeatedScalarFieldContainer[int]
    probabilities: Tensor
    values: _containers.RepeatedScalarFieldContainer[float]
    agent: str
    class_labels: _containers.RepeatedScalarFieldContainer[str]
    classes: _containers.RepeatedScalarFieldContainer[str]
    values_shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, request_id: _Optional[str] = ..., served_by: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., labels: _Optional[_Iterable[int]] = ..., probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., values: _Optional[_Iterable[float]] = ..., agent: _Optional[str] = ..., class_labels: _Optional[_Iterable[str]] = ..., classes: _Optional[_Iterable[str]] = ..., values_shape: _Optional[_Iterable[int]] = ...) -> None: ...

class PredictBatchRequest(_message.Message):
    __slots__ = ("deployment", "inputs", "routing_keys", "request_ids", "columnar_only", "named_inputs", "records")
    class NamedInputsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Tensor, _Mapping]] = ...) -> None: ...
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEYS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    COLUMNAR_ONLY_FIELD_NUMBER: _ClassVar[int]
    NAMED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    inputs: Tensor
    routing_keys: _containers.RepeatedScalarFieldContainer[str]
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    columnar_only: bool
    named_inputs: _containers.MessageMap[str, Tensor]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    def __init__(self, deployment: _Optional[str] = ..., inputs: _Optional[_Union[Tensor, _Mapping]] = ..., routing_keys: _Optional[_Iterable[str]] = ..., request_ids: _Optional[_Iterable[str]] = ..., columnar_only: _Optional[bool] = ..., named_inputs: _Optional[_Mapping[str, Tensor]] = ..., records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ...) -> None: ...

class RowResult(_message.Message):
    __slots__ = ("request_id", "served_by", "label", "value")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    served_by: int
    label: int
    value: float
    def __init__(self, request_id: _Optional[str] = ..., served_by: _Optional[int] = ..., label: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class PredictBatchResponse(_message.Message):
    __slots__ = ("versions", "rows", "probabilities", "agent", "served_by", "labels", "values", "request_ids", "class_labels", "values_width")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABELS_FIELD_NUMBER: _ClassVar[int]
    VALUES_WIDTH_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.VersionRef]
    rows: _containers.RepeatedCompositeFieldContainer[RowResult]
    probabilities: Tensor
    agent: str
    served_by: bytes
    labels: bytes
    values: bytes
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    class_labels: _containers.RepeatedScalarFieldContainer[str]
    values_width: int
    def __init__(self, versions: _Optional[_Iterable[_Union[_common_pb2.VersionRef, _Mapping]]] = ..., rows: _Optional[_Iterable[_Union[RowResult, _Mapping]]] = ..., probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., agent: _Optional[str] = ..., served_by: _Optional[bytes] = ..., labels: _Optional[bytes] = ..., values: _Optional[bytes] = ..., request_ids: _Optional[_Iterable[str]] = ..., class_labels: _Optional[_Iterable[str]] = ..., values_width: _Optional[int] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("deployment", "request_id", "label", "value", "class_label")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CLASS_LABEL_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    request_id: str
    label: int
    value: float
    class_label: str
    def __init__(self, deployment: _Optional[str] = ..., request_id: _Optional[str] = ..., label: _Optional[int] = ..., value: _Optional[float] = ..., class_label: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("matched",)
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    matched: bool
    def __init__(self, matched: _Optional[bool] = ...) -> None: ...
