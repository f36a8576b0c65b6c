import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApprovalFilter(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    APPROVAL_FILTER_UNSPECIFIED: _ClassVar[ApprovalFilter]
    APPROVAL_FILTER_PENDING: _ClassVar[ApprovalFilter]
    APPROVAL_FILTER_DECIDED: _ClassVar[ApprovalFilter]
    APPROVAL_FILTER_ALL: _ClassVar[ApprovalFilter]
APPROVAL_FILTER_UNSPECIFIED: ApprovalFilter
APPROVAL_FILTER_PENDING: ApprovalFilter
APPROVAL_FILTER_DECIDED: ApprovalFilter
APPROVAL_FILTER_ALL: ApprovalFilter

class Approval(_message.Message):
    __slots__ = ("approval_id", "workflow_id", "query", "proposed_action_json", "reason", "requested_at", "status", "decided_by", "decided_at", "feedback", "decided_by_api_key_id", "modified_action_json")
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_ACTION_JSON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    DECIDED_BY_API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_ACTION_JSON_FIELD_NUMBER: _ClassVar[int]
    approval_id: str
    workflow_id: str
    query: str
    proposed_action_json: str
    reason: str
    requested_at: _timestamp_pb2.Timestamp
    status: str
    decided_by: str
    decided_at: _timestamp_pb2.Timestamp
    feedback: str
    decided_by_api_key_id: str
    modified_action_json: str
    def __init__(self, approval_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., query: _Optional[str] = ..., proposed_action_json: _Optional[str] = ..., reason: _Optional[str] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., decided_by: _Optional[str] = ..., decided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., feedback: _Optional[str] = ..., decided_by_api_key_id: _Optional[str] = ..., modified_action_json: _Optional[str] = ...) -> None: ...

class ListApprovalsRequest(_message.Message):
    __slots__ = ("filter", "limit", "offset")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    filter: ApprovalFilter
    limit: int
    offset: int
    def __init__(self, filter: _Optional[_Union[ApprovalFilter, str]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class ListApprovalsResponse(_message.Message):
    __slots__ = ("approvals", "total_count")
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    total_count: int
    def __init__(self, approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ..., total_count: _Optional[int] = ...) -> None: ...

class DecideApprovalRequest(_message.Message):
    __slots__ = ("workflow_id", "approval_id", "approved", "feedback", "modified_action_json", "run_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVED_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_ACTION_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    approval_id: str
    approved: bool
    feedback: str
    modified_action_json: str
    run_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., approval_id: _Optional[str] = ..., approved: _Optional[bool] = ..., feedback: _Optional[str] = ..., modified_action_json: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class DecideApprovalResponse(_message.Message):
    __slots__ = ("success", "message", "workflow_id", "approval_id")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVAL_ID_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    workflow_id: str
    approval_id: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., workflow_id: _Optional[str] = ..., approval_id: _Optional[str] = ...) -> None: ...
