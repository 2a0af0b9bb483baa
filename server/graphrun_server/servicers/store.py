"""StoreService: the long-term Store graphs share (`App.store`, LangGraph's `AsyncPostgresStore`)
over gRPC. Thin: validate, confine the caller to its own namespaces, translate, call the Store.

With authentication on, a caller's namespaces are those whose first label is `owner_label` of
its identity; another caller's items are answered exactly as missing ones (NOT_FOUND, absent
from searches and listings), and writing under another label is PERMISSION_DENIED.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from langgraph.store.base import NOT_PROVIDED, Item, SearchItem

from graphrun.v1 import store_pb2, store_service_pb2 as pb, store_service_pb2_grpc

from ..auth import owner_filter
from ..errors import FieldViolation, GraphrunError, InvalidArgument, NotFound
from .convert import fill_struct, struct_to_dict
from .errors import rpc

MAX_VALUE_BYTES = 1024 * 1024  # a value, as compact JSON (UTF-8)
MAX_KEY_BYTES = 1024  # keys and namespaces sit in a btree index, whose entries must stay small
MAX_NAMESPACE_BYTES = 1024  # the labels joined with "."
MAX_FILTER_BYTES = 64 * 1024
MAX_QUERY_BYTES = 64 * 1024
MAX_INDEX_FIELDS = 100
MAX_INDEX_FIELD_BYTES = 256
# LangGraph keeps an item's TTL in an integer column of minutes (a refresh on read restarts it from
# there: 30 s would be kept as 0 and expire the item on its next read), so a TTL is a whole number
# of minutes, up to a century (expiry timestamps stay in PostgreSQL's range); 0: never expires.
MAX_TTL_MINUTES = 36_525 * 24 * 60
MAX_LIMIT = 1000
DEFAULT_SEARCH_LIMIT = 10  # LangGraph's defaults
DEFAULT_LIST_LIMIT = 100
FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")  # what LangGraph's PostgreSQL store knows
RESERVED_ROOT = "langgraph"  # LangGraph refuses to put items under it


def owner_label(identity: str) -> str:
    """The namespace label naming an authenticated caller: its identity, with `%` written `%25`
    and `.` (which labels cannot contain) `%2E`, so two identities never share a label. The rare
    identities that would still not be usable labels are written the same way: NUL as `%00`, `*`
    (a wildcard in ListNamespaces) as `%2A`, `langgraph` (a reserved root) as `%6Cangraph`, and
    the empty identity as `%`."""
    label = identity.replace("%", "%25").replace(".", "%2E").replace("\x00", "%00")
    return {"": "%", "*": "%2A", RESERVED_ROOT: "%6Cangraph"}.get(label, label)


def _own_label() -> str | None:
    """The caller's label with authentication on; None without, or for an admin (everything is visible)."""
    who = owner_filter()
    return None if who is None else owner_label(who)


class ItemNotFound(NotFound):
    reason = "ITEM_NOT_FOUND"

    def __init__(self, namespace: tuple[str, ...], key: str):
        labels = json.dumps(list(namespace), ensure_ascii=False)
        super().__init__(f"no item {key!r} in namespace {labels}", metadata={"namespace": labels, "key": key})


class NamespaceNotOwned(GraphrunError):
    """A put under another caller's label (with authentication on)."""

    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "NAMESPACE_NOT_OWNED"

    def __init__(self, own: str):
        self.description = f"with authentication on, a caller writes only in namespaces whose first label is {own!r}"
        super().__init__(f"namespace: {self.description}", metadata={"field": "namespace", "owner_label": own})

    def details(self) -> list:
        return [
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field="namespace", description=self.description)
                ]
            )
        ]


# -- validation ---------------------------------------------------------------------------


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _json_len(value: Any) -> int:
    return _utf8_len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _labels(labels, field: str, violations: list[FieldViolation]) -> tuple[str, ...]:
    """LangGraph's label rules (not empty, no `.`, no NUL) and the size bound."""
    for i, label in enumerate(labels):
        if not label:
            violations.append(FieldViolation(f"{field}[{i}]", "must not be empty"))
        elif "." in label:
            violations.append(FieldViolation(f"{field}[{i}]", "must not contain '.' (LangGraph joins labels with it)"))
        elif "\x00" in label:
            violations.append(FieldViolation(f"{field}[{i}]", "must not contain NUL characters (\\u0000)"))
    if _utf8_len(".".join(labels)) > MAX_NAMESPACE_BYTES:
        violations.append(FieldViolation(field, f"is longer than {MAX_NAMESPACE_BYTES} bytes (labels joined with '.')"))
    return tuple(labels)


def _namespace(labels, violations: list[FieldViolation], *, writing: bool = False) -> tuple[str, ...]:
    if not labels:
        violations.append(FieldViolation("namespace", "is required: at least one label"))
        return ()
    namespace = _labels(labels, "namespace", violations)
    if writing and namespace[0] == RESERVED_ROOT:
        violations.append(FieldViolation("namespace[0]", f"{RESERVED_ROOT!r} is reserved by LangGraph as first label"))
    return namespace


def _key(key: str, violations: list[FieldViolation]) -> str:
    if not key:
        violations.append(FieldViolation("key", "is required"))
    elif "\x00" in key:
        violations.append(FieldViolation("key", "must not contain NUL characters (\\u0000)"))
    elif _utf8_len(key) > MAX_KEY_BYTES:
        violations.append(FieldViolation("key", f"is longer than {MAX_KEY_BYTES} bytes"))
    return key


def _struct(message, field: str, limit: int, violations: list[FieldViolation]) -> dict[str, Any] | None:
    """A Struct field as a dict (numbers written as integers are ints again), bounded as JSON."""
    try:
        value = struct_to_dict(message, field)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
        return None
    if _json_len(value) > limit:
        violations.append(FieldViolation(field, f"is larger than {limit} bytes as JSON"))
    return value


def _index(request, violations: list[FieldViolation]) -> list[str] | bool | None:
    """LangGraph's `index` argument: None (the configured fields), False (none) or the paths."""
    mode, fields = request.index, list(request.index_fields)
    if mode not in store_pb2.IndexMode.values():
        violations.append(FieldViolation("index", f"unknown value {mode}"))
        return None
    if mode == store_pb2.INDEX_MODE_UNSPECIFIED:
        mode = store_pb2.INDEX_MODE_FIELDS if fields else store_pb2.INDEX_MODE_DEFAULT
    if mode != store_pb2.INDEX_MODE_FIELDS:
        if fields:
            violations.append(FieldViolation("index_fields", f"must be empty with {store_pb2.IndexMode.Name(mode)}"))
        return False if mode == store_pb2.INDEX_MODE_NONE else None
    if not fields:
        violations.append(FieldViolation("index_fields", "is required with INDEX_MODE_FIELDS"))
    elif len(fields) > MAX_INDEX_FIELDS:
        violations.append(FieldViolation("index_fields", f"has more than {MAX_INDEX_FIELDS} paths"))
    for i, path in enumerate(fields[:MAX_INDEX_FIELDS]):
        if not path.strip():
            violations.append(FieldViolation(f"index_fields[{i}]", "must not be empty"))
        elif _utf8_len(path) > MAX_INDEX_FIELD_BYTES:
            violations.append(FieldViolation(f"index_fields[{i}]", f"is longer than {MAX_INDEX_FIELD_BYTES} bytes"))
        elif path.strip() == "$":
            violations.append(
                FieldViolation(
                    f"index_fields[{i}]",
                    "'$' embeds nothing in a put (LangGraph); "
                    "INDEX_MODE_DEFAULT embeds the whole value when store.index.fields "
                    "is not set",
                )
            )
    return fields


def _ttl_minutes(request, violations: list[FieldViolation]):
    """LangGraph's `ttl` in minutes: NOT_PROVIDED (the configured default) when unset, None
    (never expires) for zero."""
    if not request.HasField("ttl"):
        return NOT_PROVIDED
    seconds, nanos = request.ttl.seconds, request.ttl.nanos
    if seconds == 0 and nanos == 0:
        return None
    if nanos or seconds % 60 or not 0 < seconds // 60 <= MAX_TTL_MINUTES:
        violations.append(
            FieldViolation(
                "ttl",
                "must be a whole number of minutes (LangGraph keeps TTLs in minutes), "
                f"from 1 to {MAX_TTL_MINUTES} (100 years), or 0 (never expires)",
            )
        )
        return NOT_PROVIDED
    return seconds // 60


def _filter(request, violations: list[FieldViolation]) -> dict[str, Any] | None:
    if not request.HasField("filter"):
        return None
    value = _struct(request.filter, "filter", MAX_FILTER_BYTES, violations)
    for key, condition in (value or {}).items():
        if isinstance(condition, dict):  # LangGraph reads an object as operators, never as a value
            for operator in condition:
                if operator not in FILTER_OPERATORS:
                    violations.append(
                        FieldViolation(
                            f"filter.{key}.{operator}",
                            f"unknown operator; an object in a filter holds operators ({', '.join(FILTER_OPERATORS)})",
                        )
                    )
    return value or None


def _page(limit: int, offset: int, default: int, violations: list[FieldViolation]) -> tuple[int, int]:
    if limit < 0 or limit > MAX_LIMIT:
        violations.append(FieldViolation("limit", f"must be between 1 and {MAX_LIMIT} (0 for the default {default})"))
    if offset < 0:
        violations.append(FieldViolation("offset", "must not be negative"))
    return limit or default, offset


def _refresh(request) -> bool | None:
    return request.refresh_ttl if request.HasField("refresh_ttl") else None


def _check(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument(violations)


# -- responses ----------------------------------------------------------------------------


def _timestamp(value) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def _item(item: Item) -> store_pb2.Item:
    message = store_pb2.Item(
        namespace=item.namespace,
        key=item.key,
        created_at=_timestamp(item.created_at),
        updated_at=_timestamp(item.updated_at),
    )
    fill_struct(message.value, item.value)
    message.value.SetInParent()  # {} is a value too
    return message


def _search_item(item: SearchItem) -> store_pb2.SearchItem:
    result = store_pb2.SearchItem(item=_item(item))
    if item.score is not None:
        result.score = item.score
    return result


def _address(request) -> tuple[tuple[str, ...], str]:
    """An item's namespace and key from a Get or Delete request, checked (INVALID_ARGUMENT naming
    each bad field)."""
    violations: list[FieldViolation] = []
    namespace = _namespace(request.namespace, violations)
    key = _key(request.key, violations)
    _check(violations)
    return namespace, key


class StoreServicer(store_service_pb2_grpc.StoreServiceServicer):
    def __init__(self, store):
        self.store = store

    @rpc
    async def PutItem(self, request, context):
        violations: list[FieldViolation] = []
        namespace = _namespace(request.namespace, violations, writing=True)
        key = _key(request.key, violations)
        value = None
        if request.HasField("value"):
            value = _struct(request.value, "value", MAX_VALUE_BYTES, violations)
        else:
            violations.append(FieldViolation("value", "is required (a JSON object; {} is one)"))
        index = _index(request, violations)
        ttl = _ttl_minutes(request, violations)
        _check(violations)
        own = _own_label()
        if own is not None and namespace[0] != own:
            raise NamespaceNotOwned(own)
        await self.store.aput(namespace, key, value, index=index, ttl=ttl)
        return pb.StoreServicePutItemResponse()

    @rpc
    async def GetItem(self, request, context):
        namespace, key = _address(request)
        own = _own_label()
        item = None
        if own is None or namespace[0] == own:
            item = await self.store.aget(namespace, key, refresh_ttl=_refresh(request))
        if item is None:
            raise ItemNotFound(namespace, key)
        return pb.StoreServiceGetItemResponse(item=_item(item))

    @rpc
    async def DeleteItem(self, request, context):
        namespace, key = _address(request)
        own = _own_label()
        # LangGraph's delete says nothing of a missing item; ask first, so a missing item (or another
        # caller's) is NOT_FOUND. Reading does not refresh the TTL of an item about to go.
        foreign = own is not None and namespace[0] != own
        if foreign or await self.store.aget(namespace, key, refresh_ttl=False) is None:
            raise ItemNotFound(namespace, key)
        await self.store.adelete(namespace, key)
        return pb.StoreServiceDeleteItemResponse()

    @rpc
    async def SearchItems(self, request, context):
        violations: list[FieldViolation] = []
        prefix = _labels(request.namespace_prefix, "namespace_prefix", violations)
        filter_ = _filter(request, violations)
        if _utf8_len(request.query) > MAX_QUERY_BYTES:
            violations.append(FieldViolation("query", f"is longer than {MAX_QUERY_BYTES} bytes"))
        limit, offset = _page(request.limit, request.offset, DEFAULT_SEARCH_LIMIT, violations)
        _check(violations)
        own = _own_label()
        if own is not None:
            if not prefix:
                prefix = (own,)
            elif prefix[0] != own:
                return pb.StoreServiceSearchItemsResponse()
        items = await self.store.asearch(
            prefix,
            query=request.query or None,
            filter=filter_,
            limit=limit,
            offset=offset,
            refresh_ttl=_refresh(request),
        )
        return pb.StoreServiceSearchItemsResponse(items=[_search_item(item) for item in items])

    @rpc
    async def ListNamespaces(self, request, context):
        violations: list[FieldViolation] = []
        prefix = _labels(request.prefix, "prefix", violations)
        suffix = _labels(request.suffix, "suffix", violations)
        if request.max_depth < 0:
            violations.append(FieldViolation("max_depth", "must not be negative (0: no cut)"))
        limit, offset = _page(request.limit, request.offset, DEFAULT_LIST_LIMIT, violations)
        _check(violations)
        own = _own_label()
        if own is not None:
            if not prefix:
                prefix = (own,)
            elif prefix[0] == "*":  # any first label: the caller's is the only one it may see
                prefix = (own, *prefix[1:])
            elif prefix[0] != own:
                return pb.StoreServiceListNamespacesResponse()
        namespaces = await self.store.alist_namespaces(
            prefix=prefix or None,
            suffix=suffix or None,
            max_depth=request.max_depth or None,
            limit=limit,
            offset=offset,
        )
        return pb.StoreServiceListNamespacesResponse(
            namespaces=[store_pb2.Namespace(labels=namespace) for namespace in namespaces]
        )
