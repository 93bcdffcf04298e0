from protos import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tensor(_message.Message):
    __slots__ = ("shape", "values", "raw")
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    shape: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    raw: bytes
    def __init__(self, shape: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., raw: _Optional[bytes] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("deployment", "input", "named_inputs", "routing_key", "request_id", "attributes")
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
    deployment: str
    input: Tensor
    named_inputs: _containers.MessageMap[str, Tensor]
    routing_key: str
    request_id: str
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, deployment: _Optional[str] = ..., input: _Optional[_Union[Tensor, _Mapping]] = ..., named_inputs: _Optional[_Mapping[str, Tensor]] = ..., routing_key: _Optional[str] = ..., request_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("request_id", "served_by", "role", "labels", "probabilities", "values", "agent")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    served_by: _common_pb2.VersionRef
    role: _common_pb2.Role
    labels: _containers.RepeatedScalarFieldContainer[int]
    probabilities: Tensor
    values: _containers.RepeatedScalarFieldContainer[float]
    agent: str
    def __init__(self, request_id: _Optional[str] = ..., served_by: _Optional[_Union[_common_pb2.VersionRef, _Mapping]] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., labels: _Optional[_Iterable[int]] = ..., probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., values: _Optional[_Iterable[float]] = ..., agent: _Optional[str] = ...) -> None: ...

class PredictBatchRequest(_message.Message):
    __slots__ = ("deployment", "inputs", "routing_keys", "request_ids", "columnar_only")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_KEYS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    COLUMNAR_ONLY_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    inputs: Tensor
    routing_keys: _containers.RepeatedScalarFieldContainer[str]
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    columnar_only: bool
    def __init__(self, deployment: _Optional[str] = ..., inputs: _Optional[_Union[Tensor, _Mapping]] = ..., routing_keys: _Optional[_Iterable[str]] = ..., request_ids: _Optional[_Iterable[str]] = ..., columnar_only: _Optional[bool] = ...) -> None: ...

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
    __slots__ = ("versions", "rows", "probabilities", "agent", "served_by", "labels", "values", "request_ids")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    AGENT_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[_common_pb2.VersionRef]
    rows: _containers.RepeatedCompositeFieldContainer[RowResult]
    probabilities: Tensor
    agent: str
    served_by: bytes
    labels: bytes
    values: bytes
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, versions: _Optional[_Iterable[_Union[_common_pb2.VersionRef, _Mapping]]] = ..., rows: _Optional[_Iterable[_Union[RowResult, _Mapping]]] = ..., probabilities: _Optional[_Union[Tensor, _Mapping]] = ..., agent: _Optional[str] = ..., served_by: _Optional[bytes] = ..., labels: _Optional[bytes] = ..., values: _Optional[bytes] = ..., request_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class FeedbackRequest(_message.Message):
    __slots__ = ("deployment", "request_id", "label", "value")
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    deployment: str
    request_id: str
    label: int
    value: float
    def __init__(self, deployment: _Optional[str] = ..., request_id: _Optional[str] = ..., label: _Optional[int] = ..., value: _Optional[float] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("matched",)
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    matched: bool
    def __init__(self, matched: _Optional[bool] = ...) -> None: ...
