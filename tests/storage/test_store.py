"""StoreService: LangGraph's long-term Store over gRPC, against real servers and PostgreSQL.

Plain cases use the session server (no `store` section: no semantic index, no TTL config).
Other configurations start their own `App` from a langgraph.json written into tmp_path: TTLs
and sweeps on the test database, semantic search on the embedded PostgreSQL (which bundles
pgvector), callers kept apart with authentication on. Each test writes under a root label of
its own, so tests sharing the database do not see each other's items.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import pathlib
import time
import uuid

import grpc
import jwt
import psycopg
import pytest
from google.protobuf import duration_pb2, struct_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings, strategies as st

from graphrun import AsyncClient, Client, InvalidArgumentError, NotFoundError, PermissionDeniedError
from graphrun.cli import main
from graphrun.v1 import run_service_pb2_grpc, store_pb2, store_service_pb2 as pb, store_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.auth import AuthSettings
from graphrun_server.servicers.store import owner_label
from graphrun_server.storage.store import SWEEP_LOCK
from support.helpers import details, to_dict, wait_request

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND

# A deterministic toy embedding: how often each letter a-z occurs.
EMBED_PY = '''
def embed(texts):
    vectors = []
    for text in texts:
        vector = [0.0] * 26
        for ch in text.lower():
            if "a" <= ch <= "z":
                vector[ord(ch) - 97] += 1.0
        vectors.append(vector)
    return vectors
'''

# A graph that reads an item of the Store and writes one next to it.
MEMO_PY = '''
from typing import Any, TypedDict

from langgraph.graph import START, StateGraph
from langgraph.store.base import BaseStore


class State(TypedDict, total=False):
    namespace: list[str]
    key: str
    found: Any


async def recall(state: State, *, store: BaseStore) -> dict:
    namespace = tuple(state["namespace"])
    item = await store.aget(namespace, state["key"])
    await store.aput(namespace, state["key"] + "-seen", {"by": "graph"})
    return {"found": item.value if item else None}


builder = StateGraph(State)
builder.add_node("recall", recall)
builder.add_edge(START, "recall")
graph = builder.compile()
'''


def local_embed(text: str) -> list[float]:
    namespace: dict = {}
    exec(EMBED_PY, namespace)  # the very function the server loads
    return namespace["embed"]([text])[0]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def write_project(directory: pathlib.Path, store: dict | None = None) -> str:
    """A langgraph.json serving the memo graph, with this `store` section."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "embed.py").write_text(EMBED_PY)
    (directory / "memo.py").write_text(MEMO_PY)
    config = {"graphs": {"memo": "./memo.py:graph"}, **({"store": store} if store else {})}
    (directory / "langgraph.json").write_text(json.dumps(config))
    return str(directory / "langgraph.json")


def root() -> str:
    """A first label of this test's own."""
    return f"t{uuid.uuid4().hex[:12]}"


def struct(value: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)  # (not ParseDict, which refuses NaN)
    return message


def put(namespace: list[str], key: str, value: dict | None, **fields) -> pb.StoreServicePutItemRequest:
    if value is not None:
        fields["value"] = struct(value)
    return pb.StoreServicePutItemRequest(namespace=namespace, key=key, **fields)


def get(namespace: list[str], key: str, **fields) -> pb.StoreServiceGetItemRequest:
    return pb.StoreServiceGetItemRequest(namespace=namespace, key=key, **fields)


def delete(namespace: list[str], key: str) -> pb.StoreServiceDeleteItemRequest:
    return pb.StoreServiceDeleteItemRequest(namespace=namespace, key=key)


def search(prefix: list[str], **fields) -> pb.StoreServiceSearchItemsRequest:
    if isinstance(fields.get("filter"), dict):
        fields["filter"] = struct(fields["filter"])
    return pb.StoreServiceSearchItemsRequest(namespace_prefix=prefix, **fields)


def listing(**fields) -> pb.StoreServiceListNamespacesRequest:
    return pb.StoreServiceListNamespacesRequest(**fields)


def seconds(value: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(value), nanos=int(round(value % 1 * 1e9)))


async def refused(call, code: grpc.StatusCode = INVALID) -> dict:
    """The call's error details, after checking it failed with `code`."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return details(caught.value)


def keys(response: pb.StoreServiceSearchItemsResponse) -> list[str]:
    return [result.item.key for result in response.items]


def row(db, namespace: list[str], key: str) -> dict | None:
    return db.execute("SELECT value::text AS value, ttl_minutes, expires_at FROM store WHERE prefix = %s AND key = %s",
                      (".".join(namespace), key)).fetchone()


def expire(db, namespace: list[str]) -> None:
    """Make the namespace's items expired now, as if their TTL had run out."""
    db.execute("UPDATE store SET expires_at = now() - interval '1 minute' WHERE prefix = %s", (".".join(namespace),))


@pytest.fixture(scope="session")
def store(channel) -> store_service_pb2_grpc.StoreServiceStub:
    return store_service_pb2_grpc.StoreServiceStub(channel)


# -- every RPC, with LangGraph's semantics ------------------------------------------------


async def test_put_get_replace_and_delete(store, db):
    ns = [root(), "prefs"]
    value = {"color": "dark", "size": 3, "ratio": 0.5, "tags": ["a", "b"], "nested": {"x": None, "ok": True}}
    await store.PutItem(put(ns, "theme", value))
    item = (await store.GetItem(get(ns, "theme"))).item
    assert (list(item.namespace), item.key, to_dict(item.value)) == (ns, "theme", value)
    assert item.created_at == item.updated_at
    stored = db.execute("SELECT value->>'size' AS size, ttl_minutes FROM store WHERE prefix = %s AND key = %s",
                        (".".join(ns), "theme")).fetchone()
    assert stored == {"size": "3", "ttl_minutes": None}  # an integer as written (not Struct's 3.0); no TTL

    await store.PutItem(put(ns, "theme", {}))  # replaces the value; {} is a value
    again = (await store.GetItem(get(ns, "theme"))).item
    assert to_dict(again.value) == {} and again.HasField("value")
    assert again.created_at == item.created_at and again.updated_at.ToDatetime() > item.updated_at.ToDatetime()

    await store.DeleteItem(delete(ns, "theme"))
    assert row(db, ns, "theme") is None
    for call in (store.GetItem(get(ns, "theme")), store.DeleteItem(delete(ns, "theme"))):
        info = await refused(call, NOT_FOUND)
        assert info["reason"] == "ITEM_NOT_FOUND" and info["domain"] == "graphrun"
        assert info["metadata"] == {"namespace": json.dumps(ns), "key": "theme"}


async def test_search_under_a_prefix_with_filters_newest_first(store):
    r = root()
    items = [([r, "a"], "one", {"kind": "note", "stars": 9, "name": "b"}),
             ([r, "a", "deep"], "two", {"kind": "note", "stars": 10, "name": "a"}),
             ([r, "b"], "three", {"kind": "todo", "stars": 2, "name": "c", "meta": {"x": 1}}),
             ([r + "x"], "elsewhere", {"kind": "note", "stars": 5})]  # shares the text, not the label
    for ns, key, value in items:
        await store.PutItem(put(ns, key, value))

    assert keys(await store.SearchItems(search([r]))) == ["three", "two", "one"]  # newest updated_at first
    assert keys(await store.SearchItems(search([r, "a"]))) == ["two", "one"]  # and below, label by label
    assert keys(await store.SearchItems(search([r, "a", "deep"]))) == ["two"]
    assert keys(await store.SearchItems(search([r, "c"]))) == []
    assert "elsewhere" in keys(await store.SearchItems(search([], filter={"kind": "note"}, limit=1000)))

    async def matching(filter_: dict) -> set[str]:
        return set(keys(await store.SearchItems(search([r], filter=filter_))))

    assert await matching({"kind": "note"}) == {"one", "two"}
    assert await matching({"kind": "note", "stars": 9}) == {"one"}
    assert await matching({"meta": {"$eq": {"x": 1}}}) == {"three"}
    assert await matching({"kind": {"$ne": "note"}}) == {"three"}
    # Numbers compare as numbers (LangGraph's PostgreSQL store compared them as text: 9 >= 10).
    assert await matching({"stars": {"$gte": 10}}) == {"two"}
    assert await matching({"stars": {"$gt": 2, "$lt": 10}}) == {"one"}
    assert await matching({"stars": {"$lte": 9.5}}) == {"one", "three"}
    assert await matching({"name": {"$gt": "a"}}) == {"one", "three"}  # strings as text
    assert await matching({"missing": "x"}) == set()

    # limit and offset page through the same order.
    assert keys(await store.SearchItems(search([r], limit=2))) == ["three", "two"]
    assert keys(await store.SearchItems(search([r], limit=2, offset=2))) == ["one"]
    # Without a semantic index a query is ignored (as LangGraph does): a plain listing, no scores.
    plain = await store.SearchItems(search([r], query="anything at all"))
    assert keys(plain) == ["three", "two", "one"] and not any(result.HasField("score") for result in plain.items)
    first = plain.items[0].item
    assert list(first.namespace) == [r, "b"] and to_dict(first.value)["meta"] == {"x": 1}


async def test_list_namespaces_with_prefix_suffix_depth_and_paging(store):
    r = root()
    for ns in ([r, "a", "x"], [r, "a", "y", "z"], [r, "b", "x"], [r, "c"], [r, "c"]):
        await store.PutItem(put(ns, str(uuid.uuid4()), {"v": 1}))

    async def names(**fields) -> list[list[str]]:
        response = await store.ListNamespaces(listing(**fields))
        return [list(n.labels) for n in response.namespaces]

    assert await names(prefix=[r]) == [[r, "a", "x"], [r, "a", "y", "z"], [r, "b", "x"], [r, "c"]]
    assert await names(prefix=[r], max_depth=2) == [[r, "a"], [r, "b"], [r, "c"]]
    assert await names(prefix=[r, "a"], max_depth=3) == [[r, "a", "x"], [r, "a", "y"]]
    assert await names(prefix=[r, "*", "x"]) == [[r, "a", "x"], [r, "b", "x"]]
    assert await names(prefix=[r], suffix=["x"]) == [[r, "a", "x"], [r, "b", "x"]]
    assert await names(prefix=[r], suffix=["y", "*"]) == [[r, "a", "y", "z"]]
    assert await names(prefix=[r], limit=2, offset=1) == [[r, "a", "y", "z"], [r, "b", "x"]]
    assert await names(prefix=[r, "nothing"]) == []
    assert [r, "c"] in await names(suffix=["c"], limit=1000)


async def test_reflection_serves_the_store_service_with_its_docs(server):
    from google.protobuf import descriptor_pb2
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    def reflect() -> tuple[list[str], descriptor_pb2.FileDescriptorProto]:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            return list(database.get_services()), database.FindFileContainingSymbol("graphrun.v1.StoreService")

    services, file = await asyncio.to_thread(reflect)
    assert "graphrun.v1.StoreService" in services
    assert [m.name for m in file.service[0].method] == [
        "PutItem", "GetItem", "DeleteItem", "SearchItems", "ListNamespaces"]
    comments = " ".join(location.leading_comments for location in file.source_code_info.location)
    assert "1 MiB" in comments and "PERMISSION_DENIED" in comments  # grpcurl describe shows the docs


# -- refusals -------------------------------------------------------------------------------

BIG = {"blob": "x" * (1024 * 1024)}  # over 1 MiB as JSON
LABEL_1K = "l" * 1025

BAD_REQUESTS = [
    ("PutItem", put([], "k", {}), "namespace"),
    ("PutItem", put(["a", ""], "k", {}), "namespace[1]"),
    ("PutItem", put(["a.b"], "k", {}), "namespace[0]"),
    ("PutItem", put(["a", "b\x00"], "k", {}), "namespace[1]"),
    ("PutItem", put(["langgraph", "x"], "k", {}), "namespace[0]"),
    ("PutItem", put([LABEL_1K], "k", {}), "namespace"),
    ("PutItem", put(["a"], "", {}), "key"),
    ("PutItem", put(["a"], "k\x00", {}), "key"),
    ("PutItem", put(["a"], "k" * 1025, {}), "key"),
    ("PutItem", put(["a"], "k", None), "value"),
    ("PutItem", put(["a"], "k", BIG), "value"),
    ("PutItem", put(["a"], "k", {"x": "nul\x00"}), "value"),
    ("PutItem", put(["a"], "k", {"x": math.nan}), "value"),
    ("PutItem", put(["a"], "k", {}, ttl=seconds(-1)), "ttl"),
    ("PutItem", put(["a"], "k", {}, ttl=seconds(0.5)), "ttl"),
    ("PutItem", put(["a"], "k", {}, ttl=seconds(90)), "ttl"),  # LangGraph keeps whole minutes
    ("PutItem", put(["a"], "k", {}, ttl=duration_pb2.Duration(seconds=10**11)), "ttl"),
    ("PutItem", put(["a"], "k", {}, index=store_pb2.INDEX_MODE_NONE, index_fields=["text"]), "index_fields"),
    ("PutItem", put(["a"], "k", {}, index=store_pb2.INDEX_MODE_FIELDS), "index_fields"),
    ("PutItem", put(["a"], "k", {}, index_fields=["$"]), "index_fields[0]"),
    ("PutItem", put(["a"], "k", {}, index=7), "index"),
    ("GetItem", get([], "k"), "namespace"),
    ("GetItem", get(["a", "."], "k"), "namespace[1]"),
    ("GetItem", get(["a"], ""), "key"),
    ("DeleteItem", delete([""], "k"), "namespace[0]"),
    ("DeleteItem", delete(["a"], ""), "key"),
    ("SearchItems", search(["a."]), "namespace_prefix[0]"),
    ("SearchItems", search([], limit=1001), "limit"),
    ("SearchItems", search([], limit=-1), "limit"),
    ("SearchItems", search([], offset=-1), "offset"),
    ("SearchItems", search([], filter={"n": {"$regex": "x"}}), "filter.n.$regex"),
    ("SearchItems", search([], filter={"meta": {"a": 1}}), "filter.meta.a"),
    ("SearchItems", search([], filter={"blob": "x" * 70_000}), "filter"),
    ("SearchItems", search([], query="q" * 70_000), "query"),
    ("ListNamespaces", listing(prefix=[""]), "prefix[0]"),
    ("ListNamespaces", listing(suffix=["x.y"]), "suffix[0]"),
    ("ListNamespaces", listing(max_depth=-1), "max_depth"),
    ("ListNamespaces", listing(limit=5000), "limit"),
    ("ListNamespaces", listing(offset=-3), "offset"),
]


@pytest.mark.parametrize("method, request_, field", BAD_REQUESTS,
                         ids=[f"{m}-{f}-{i}" for i, (m, _, f) in enumerate(BAD_REQUESTS)])
async def test_bad_requests_are_refused_naming_the_field(store, db, method, request_, field):
    info = await refused(getattr(store, method)(request_))
    assert info["reason"] == "INVALID_ARGUMENT"
    assert field in info["violations"], info["violations"]
    text = [*request_.namespace, request_.key] if method == "PutItem" else []
    if text and all(text) and not any("\x00" in t for t in text):
        assert row(db, list(request_.namespace), request_.key) is None  # nothing written


async def test_odd_but_valid_requests_are_answered(store, db):
    """Edges that are not mistakes: `*` and `%` in labels, the largest limits, zero meaning defaults."""
    ns = [root(), "%_*", "ü"]
    await store.PutItem(put(ns, "k" * 1024, {"x": 1}, ttl=seconds(60)))
    assert row(db, ns, "k" * 1024)["ttl_minutes"] == 1
    await store.PutItem(put(ns, "century", {}, ttl=duration_pb2.Duration(seconds=36_525 * 24 * 3600)))
    assert keys(await store.SearchItems(search(ns, limit=1000, offset=0))) == ["century", "k" * 1024]
    assert keys(await store.SearchItems(search(ns[:2], offset=2**31 - 1))) == []
    listed = await store.ListNamespaces(listing(prefix=ns[:1], max_depth=2**31 - 1, limit=1000))
    assert [list(n.labels) for n in listed.namespaces] == [ns]
    assert keys(await store.SearchItems(search([ns[0], "%_"]))) == []  # % and _ are not wildcards


# -- TTLs and the sweep ------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def ttl_app(database_url, tmp_path_factory):
    """A server whose items live 60 minutes by default and whose reads do not refresh TTLs
    (sweeping every hour: the tests sweep themselves)."""
    config = write_project(tmp_path_factory.mktemp("ttl"), {
        "ttl": {"default_ttl": 60, "refresh_on_read": False, "sweep_interval_minutes": 60}})
    app = await App(Settings(port=0, database_url=database_url, config=config)).start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        app.test_store = store_service_pb2_grpc.StoreServiceStub(channel)
        yield app
    await app.stop(grace=1)


async def test_ttl_default_explicit_and_never(ttl_app, store, db):
    ns = [root()]
    await ttl_app.test_store.PutItem(put(ns, "default", {}))
    await ttl_app.test_store.PutItem(put(ns, "explicit", {}, ttl=seconds(120)))
    await ttl_app.test_store.PutItem(put(ns, "never", {}, ttl=seconds(0)))
    await store.PutItem(put(ns, "unconfigured", {}))  # the session server has no store.ttl
    assert row(db, ns, "default")["ttl_minutes"] == 60
    assert row(db, ns, "explicit")["ttl_minutes"] == 2
    assert row(db, ns, "never")["ttl_minutes"] is None and row(db, ns, "never")["expires_at"] is None
    assert row(db, ns, "unconfigured")["ttl_minutes"] is None


async def test_expired_items_are_gone_after_a_sweep_unless_a_read_refreshed_them(ttl_app, store, db):
    ns = [root()]
    s = ttl_app.test_store
    for key in ("unread", "read", "read-refreshing", "found-refreshing"):
        await s.PutItem(put(ns, key, {"key": key}))
    await store.PutItem(put(ns, "read-on-default-server", {}, ttl=seconds(60)))
    expire(db, ns)

    await s.GetItem(get(ns, "read"))  # refresh_on_read is false on this server
    await s.GetItem(get(ns, "read-refreshing", refresh_ttl=True))
    found = await s.SearchItems(search(ns, filter={"key": "found-refreshing"}, refresh_ttl=True))
    assert keys(found) == ["found-refreshing"]
    await store.GetItem(get(ns, "read-on-default-server"))  # refresh_on_read defaults to true
    await store.GetItem(get(ns, "read-refreshing", refresh_ttl=False))  # does not undo the refresh

    deleted = await ttl_app.store_sweeper.sweep()
    assert deleted >= 2  # other tests' expired items may go too
    for key in ("unread", "read"):
        assert (await refused(s.GetItem(get(ns, key)), NOT_FOUND))["reason"] == "ITEM_NOT_FOUND"
    for key in ("read-refreshing", "found-refreshing", "read-on-default-server"):
        assert (await s.GetItem(get(ns, key))).item.key == key
        assert row(db, ns, key)["expires_at"].timestamp() > time.time()


async def test_one_replica_sweeps_at_a_time(ttl_app, db):
    ns = [root()]
    await ttl_app.test_store.PutItem(put(ns, "k", {}))
    expire(db, ns)
    db.execute("SELECT pg_advisory_lock(%s)", (SWEEP_LOCK,))  # another replica is sweeping
    try:
        assert await ttl_app.store_sweeper.sweep() is None
        assert row(db, ns, "k") is not None
    finally:
        db.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))
    assert await ttl_app.store_sweeper.sweep() >= 1
    assert row(db, ns, "k") is None
    # The sweeping connection gave the lock back: another session takes it at once.
    assert db.execute("SELECT pg_try_advisory_lock(%s) AS ok", (SWEEP_LOCK,)).fetchone()["ok"]
    db.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))


async def test_the_server_sweeps_every_interval(database_url, tmp_path, db):
    config = write_project(tmp_path, {"ttl": {"sweep_interval_minutes": 0.001}})  # every 60 ms
    app = await App(Settings(port=0, database_url=database_url, config=config)).start()
    try:
        ns = [root()]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            await store_service_pb2_grpc.StoreServiceStub(channel).PutItem(put(ns, "k", {}, ttl=seconds(60)))
        expire(db, ns)
        # The first sweep to end may have begun before the item expired; the second began after.
        for _ in range(2):
            await asyncio.wait_for(app.store_sweeper.next_sweep(), timeout=60)
        assert row(db, ns, "k") is None
    finally:
        await app.stop(grace=1)
    assert app.store_sweeper is not None


# -- semantic search (embedded PostgreSQL, with pgvector) -------------------------------------


async def test_semantic_search_ranks_by_similarity_on_the_embedded_postgresql(tmp_path):
    config = write_project(tmp_path / "project", {"index": {"embed": "./embed.py:embed", "dims": 26,
                                                            "fields": ["text"]}})
    app = await App(Settings(port=0, data_dir=str(tmp_path / "pgdata"), config=config)).start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            s = store_service_pb2_grpc.StoreServiceStub(channel)
            ns = ["docs", "fruit"]
            texts = {"pie": "apple pie", "banana": "banana", "cherry": "cherry"}
            for key, text in texts.items():
                await s.PutItem(put(ns, key, {"text": text}))
            await s.PutItem(put(ns, "unindexed", {"text": "apple"}, index=store_pb2.INDEX_MODE_NONE))
            await s.PutItem(put(ns, "noted", {"text": "zzz", "note": "apple"}, index_fields=["note"]))

            found = await s.SearchItems(search(["docs"], query="apple"))
            expected = {key: cosine(local_embed("apple"), local_embed(text))
                        for key, text in {**texts, "noted": "apple"}.items()}
            assert keys(found) == sorted(expected, key=expected.get, reverse=True) == [
                "noted", "pie", "banana", "cherry"]
            for result in found.items:
                assert result.HasField("score") and result.score == pytest.approx(expected[result.item.key], abs=1e-4)
            assert [r.score for r in found.items] == sorted((r.score for r in found.items), reverse=True)

            assert keys(await s.SearchItems(search(["docs"], query="apple", limit=2, offset=1))) == ["pie", "banana"]
            assert keys(await s.SearchItems(search([], query="apple", filter={"text": "banana"}))) == ["banana"]
            plain = await s.SearchItems(search(["docs"]))  # no query: every item, newest first, no score
            assert keys(plain) == ["noted", "unindexed", "cherry", "banana", "pie"]
            assert not any(result.HasField("score") for result in plain.items)
    finally:
        await app.stop(grace=1)


async def test_a_semantic_index_without_pgvector_stops_start_up_with_one_line(database_url, tmp_path, db):
    if db.execute("SELECT count(*) AS n FROM pg_available_extensions WHERE name = 'vector'").fetchone()["n"]:
        pytest.skip("this PostgreSQL has pgvector")
    config = write_project(tmp_path, {"index": {"embed": "./embed.py:embed", "dims": 26}})
    with pytest.raises(SystemExit) as caught:
        await App(Settings(port=0, database_url=database_url, config=config)).start()
    message = str(caught.value.code)
    assert "\n" not in message
    assert "pgvector" in message and "install" in message and "embedded PostgreSQL" in message


# -- callers kept apart with authentication on ----------------------------------------------

SECRET = "test-secret-of-enough-length-for-hs256"


def bearer(sub: str) -> tuple[tuple[str, str], ...]:
    now = int(time.time())
    token = jwt.encode({"sub": sub, "exp": now + 300, "iat": now}, SECRET, algorithm="HS256")
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
async def secured(database_url, tmp_path_factory):
    directory = tmp_path_factory.mktemp("secured")
    keys_file = directory / "keys.json"
    keys_file.write_text(json.dumps({"key-of-team-b": "team.b"}))  # an identity with a '.'
    app = await App(Settings(port=0, database_url=database_url, config=write_project(directory),
                             auth=AuthSettings(jwt_secret=SECRET, api_keys_file=str(keys_file)))).start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        app.test_channel = channel
        yield app
    await app.stop(grace=1)


def test_owner_labels_are_distinct_and_valid():
    assert owner_label("alice") == "alice"
    assert owner_label("team.b") == "team%2Eb"
    assert owner_label("team%2Eb") == "team%252Eb"  # not team.b's label
    identities = ["a.b", "a%2Eb", "a%b", "*", "%2A", "langgraph", "", "%", "x\x00y"]
    labels = [owner_label(i) for i in identities]
    assert len(set(labels)) == len(labels)
    assert all(label and "." not in label and "\x00" not in label and label not in ("*", "langgraph")
               for label in labels)


async def test_each_caller_reaches_only_its_own_namespaces(secured, db):
    s = store_service_pb2_grpc.StoreServiceStub(secured.test_channel)
    a, b = bearer("alice"), (("authorization", "Bearer key-of-team-b"),)
    mine_a, mine_b = ["alice", "notes"], ["team%2Eb", "notes"]
    await s.PutItem(put(mine_a, "k", {"owner": "alice"}), metadata=a)
    await s.PutItem(put(mine_b, "k", {"owner": "team.b"}), metadata=b)

    # Writing under another caller's label is refused, naming the namespace; nothing is written.
    denied = grpc.StatusCode.PERMISSION_DENIED
    info = await refused(s.PutItem(put(mine_a, "k", {"owner": "team.b"}), metadata=b), denied)
    assert info["reason"] == "NAMESPACE_NOT_OWNED" and "namespace" in info["violations"]
    info = await refused(s.PutItem(put(["team.b", "x"], "k", {}), metadata=b))  # the raw identity is no label
    assert "namespace[0]" in info["violations"]
    await refused(s.PutItem(put(["other"], "k", {}), metadata=a), denied)
    assert json.loads(row(db, mine_a, "k")["value"]) == {"owner": "alice"}

    # Another caller's item is exactly a missing one.
    as_other = await refused(s.GetItem(get(mine_a, "k"), metadata=b), NOT_FOUND)
    await refused(s.DeleteItem(delete(mine_a, "k"), metadata=b), NOT_FOUND)
    assert row(db, mine_a, "k") is not None
    await s.PutItem(put(mine_a, "gone", {}), metadata=a)
    await s.DeleteItem(delete(mine_a, "gone"), metadata=a)
    missing = await refused(s.GetItem(get(mine_a, "gone"), metadata=a), NOT_FOUND)
    assert as_other["reason"] == missing["reason"] == "ITEM_NOT_FOUND"
    assert as_other["metadata"]["namespace"] == missing["metadata"]["namespace"]

    # Searches and listings: an empty prefix is the caller's own label; another's prefix finds nothing.
    found_b = await s.SearchItems(search([], limit=1000), metadata=b)
    assert found_b.items and all(result.item.namespace[0] == "team%2Eb" for result in found_b.items)
    assert keys(await s.SearchItems(search(["alice"]), metadata=b)) == []
    assert keys(await s.SearchItems(search(["alice"]), metadata=a)) == ["k"]
    for who, label in ((a, "alice"), (b, "team%2Eb")):
        for request in (listing(limit=1000), listing(prefix=["*", "notes"]), listing(suffix=["notes"])):
            listed = (await s.ListNamespaces(request, metadata=who)).namespaces
            assert listed and {n.labels[0] for n in listed} == {label}, (request, listed)
    assert not (await s.ListNamespaces(listing(prefix=["alice"]), metadata=b)).namespaces

    # Graphs see the whole Store: a run of team.b's reads alice's item and writes next to it.
    runs = run_service_pb2_grpc.RunServiceStub(secured.test_channel)
    done = await runs.Wait(wait_request(assistant_id="memo", input={"namespace": mine_a, "key": "k"}), metadata=b)
    assert to_dict(done.state.values)["found"] == {"owner": "alice"}
    assert to_dict((await s.GetItem(get(mine_a, "k-seen"), metadata=a)).item.value) == {"by": "graph"}

    # Unauthenticated calls do not reach the Store at all.
    await refused(s.SearchItems(search([])), grpc.StatusCode.UNAUTHENTICATED)


# -- Python client and CLI ------------------------------------------------------------------


async def test_async_client_round_trip(server):
    ns = (root(), "users", "alice")
    async with AsyncClient(f"127.0.0.1:{server.port}") as client:
        await client.put_item(ns, "prefs", {"theme": "dark", "size": 3}, ttl=90)
        item = await client.get_item(ns, "prefs")
        assert item["namespace"] == list(ns) and item["key"] == "prefs"
        assert item["value"] == {"theme": "dark", "size": 3} and isinstance(item["value"]["size"], int)
        assert item["created_at"] and item["updated_at"]
        await client.put_item(ns[:2], "other", {"theme": "light"}, index=False)
        results = await client.search_items(ns[:1], filter={"theme": "dark"})
        assert [(r["key"], r["score"]) for r in results] == [("prefs", None)]
        assert await client.search_items(ns[0], limit=1, offset=1) == [
            {**item, "score": None}]  # newest first: "other", then "prefs"
        assert await client.list_namespaces(prefix=ns[:1]) == [ns[:2], ns]
        assert await client.list_namespaces(prefix=[ns[0], "*"], max_depth=2) == [ns[:2]]
        await client.delete_item(ns, "prefs")
        with pytest.raises(NotFoundError) as caught:
            await client.get_item(ns, "prefs")
        assert caught.value.reason == "ITEM_NOT_FOUND"
        with pytest.raises(InvalidArgumentError) as caught:
            await client.put_item((ns[0], "a.b"), "k", {})
        assert [field for field, _ in caught.value.field_violations] == ["namespace[1]"]


async def test_sync_client_round_trip(server, db):
    ns = (root(), "cache")

    def scenario() -> None:
        with Client(f"127.0.0.1:{server.port}") as client:
            client.put_item(ns, "k", {"n": 1}, ttl=1, index=["n"])
            assert client.get_item(ns, "k", refresh_ttl=False)["value"] == {"n": 1}
            assert [r["key"] for r in client.search_items(ns, filter={"n": {"$gte": 1}})] == ["k"]
            assert client.list_namespaces(prefix=ns[0]) == [ns]
            client.delete_item(list(ns), "k")
            with pytest.raises(NotFoundError):
                client.delete_item(ns, "k")
            with pytest.raises(InvalidArgumentError) as caught:
                client.search_items(ns, limit=5000)
            assert caught.value.field_violations[0][0] == "limit"

    await asyncio.to_thread(scenario)


async def test_client_with_a_token_stays_in_its_own_namespaces(secured):
    token = bearer("carol")[0][1].removeprefix("Bearer ")
    async with AsyncClient(f"127.0.0.1:{secured.port}", token=token) as client:
        await client.put_item(("carol", "notes"), "k", {"n": 1})
        with pytest.raises(PermissionDeniedError) as caught:
            await client.put_item(("alice", "notes"), "k", {"n": 1})
        assert caught.value.reason == "NAMESPACE_NOT_OWNED" and caught.value.field_violations[0][0] == "namespace"
        assert await client.list_namespaces() == [("carol", "notes")]
        assert [item["key"] for item in await client.search_items()] == ["k"]
        with pytest.raises(NotFoundError):
            await client.get_item(("alice", "notes"), "k")


async def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_cli_round_trip(server, capsys):
    target = ("--target", f"127.0.0.1:{server.port}")
    r = root()
    code, out, _ = await cli(capsys, "store", "put", r, "users", "alice", "--key", "prefs",
                             "--value", '{"theme": "dark", "stars": 4}', "--ttl", "30", *target)
    assert code == 0 and out.strip() == f"stored {r}/users/alice prefs"
    await cli(capsys, "store", "put", r, "users", "bob", "--key", "prefs", "--value", '{"theme": "light"}', *target)

    code, out, _ = await cli(capsys, "store", "get", r, "users", "alice", "--key", "prefs", *target)
    assert code == 0
    value_text, footer = out.rsplit("}\n", 1)
    assert json.loads(value_text + "}") == {"theme": "dark", "stars": 4}
    assert footer.startswith(f"{r}/users/alice · prefs · updated ")
    code, out, _ = await cli(capsys, "store", "get", r, "users", "alice", "--key", "prefs", "--json", *target)
    item = json.loads(out)
    assert item["namespace"] == [r, "users", "alice"] and item["value"]["stars"] == 4

    code, out, _ = await cli(capsys, "store", "search", r, "--filter", '{"stars": {"$gte": 4}}', *target)
    [line] = out.splitlines()
    namespace, key, value = line.split("  ")
    assert code == 0 and (namespace, key) == (f"{r}/users/alice", "prefs")
    assert json.loads(value) == {"theme": "dark", "stars": 4}
    code, out, _ = await cli(capsys, "store", "search", r, "--limit", "1", "--json", *target)
    assert [i["key"] for i in json.loads(out)] == ["prefs"] and json.loads(out)[0]["namespace"][-1] == "bob"

    code, out, _ = await cli(capsys, "store", "namespaces", "--prefix", r, "--max-depth", "2", *target)
    assert code == 0 and out.splitlines() == [f"{r}/users"]
    code, out, _ = await cli(capsys, "store", "namespaces", "--prefix", r, "*", "--suffix", "bob", "--json", *target)
    assert json.loads(out) == [[r, "users", "bob"]]

    code, out, _ = await cli(capsys, "store", "delete", r, "users", "alice", "--key", "prefs", *target)
    assert code == 0 and out.strip() == f"deleted {r}/users/alice prefs"
    code, out, err = await cli(capsys, "store", "get", r, "users", "alice", "--key", "prefs", *target)
    assert code == 1 and out == "" and err.startswith("error: NOT_FOUND ITEM_NOT_FOUND: no item 'prefs'")

    with pytest.raises(SystemExit) as caught:  # usage errors exit 2, as argparse's own
        await cli(capsys, "store", "put", r, "--key", "k", "--value", "[1]", *target)
    assert caught.value.code == 2 and "--value must be a JSON object, not an array" in capsys.readouterr().err


# -- generated requests -----------------------------------------------------------------------

FUZZ_ROOT = f"fuzz{uuid.uuid4().hex[:8]}"
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_ODD_TEXT = st.one_of(_TEXT, st.sampled_from(["", ".", "a.b", "*", "langgraph", "%", "_", "x\x00y", "ü" * 600]))
_LABELS = st.one_of(st.lists(_ODD_TEXT, max_size=4),
                    st.lists(_ODD_TEXT, max_size=3).map(lambda rest: [FUZZ_ROOT, *rest]))
_INT32 = st.one_of(st.integers(-2**31, 2**31 - 1), st.sampled_from([-1, 0, 1, 1000, 1001]))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**60, 2**60), st.floats(), _ODD_TEXT)
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(_ODD_TEXT, inner, max_size=3)), max_leaves=8)
_OPERATORS = st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "x", ""])
_FILTERS = st.dictionaries(_ODD_TEXT, st.one_of(_JSON, st.dictionaries(_OPERATORS, _JSON, max_size=3)), max_size=3)
_DURATIONS = st.builds(duration_pb2.Duration, seconds=st.one_of(st.integers(-2**63, 2**63 - 1),
                                                                st.sampled_from([0, 59, 60, 3600, -60])),
                       nanos=st.one_of(st.just(0), st.integers(-999_999_999, 999_999_999)))


def _optional(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def _requests(draw):
    method = draw(st.sampled_from(["PutItem", "GetItem", "DeleteItem", "SearchItems", "ListNamespaces"]))
    if method in ("PutItem", "GetItem", "DeleteItem"):
        fields = {"namespace": draw(_LABELS), "key": draw(_ODD_TEXT)}
        if method == "PutItem":
            value = draw(_optional(st.dictionaries(_ODD_TEXT, _JSON, max_size=4)))
            if value is not None:
                fields["value"] = struct(value)
            fields["index"] = draw(st.one_of(st.sampled_from(sorted(store_pb2.IndexMode.values())), _INT32))
            fields["index_fields"] = draw(st.lists(_ODD_TEXT, max_size=3))
            if (ttl := draw(_optional(_DURATIONS))) is not None:
                fields["ttl"] = ttl
        elif method == "GetItem" and (refresh := draw(_optional(st.booleans()))) is not None:
            fields["refresh_ttl"] = refresh
        return method, getattr(pb, f"StoreService{method}Request")(**fields)
    if method == "SearchItems":
        fields = {"namespace_prefix": draw(_LABELS), "query": draw(_ODD_TEXT), "limit": draw(_INT32),
                  "offset": draw(_INT32)}
        if (filter_ := draw(_optional(_FILTERS))) is not None:
            fields["filter"] = struct(filter_)
        if (refresh := draw(_optional(st.booleans()))) is not None:
            fields["refresh_ttl"] = refresh
        return method, pb.StoreServiceSearchItemsRequest(**fields)
    return method, listing(prefix=draw(_LABELS), suffix=draw(st.lists(_ODD_TEXT, max_size=3)),
                           max_depth=draw(_INT32), limit=draw(_INT32), offset=draw(_INT32))


async def test_generated_requests_are_answered_or_refused_never_internal(server, database_url):
    """No INTERNAL or UNKNOWN whatever the request, and a refused PutItem changes nothing."""
    codes: collections.Counter = collections.Counter()

    def fuzz() -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        stub = store_service_pb2_grpc.StoreServiceStub(channel)
        db = psycopg.connect(database_url, autocommit=True)

        def stored(request) -> tuple | None:
            text = [*request.namespace, request.key]
            if any("\x00" in t for t in text):
                return None  # PostgreSQL text cannot hold it: nothing can be stored under it either
            return db.execute("SELECT value, updated_at FROM store WHERE prefix = %s AND key = %s",
                              (".".join(request.namespace), request.key)).fetchone()

        @settings(max_examples=400, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(_requests())
        def check(call) -> None:
            method, request = call
            before = stored(request) if method == "PutItem" else None
            try:
                getattr(stub, method)(request, timeout=30)
                codes[(method, "OK")] += 1
            except grpc.RpcError as exc:
                codes[(method, exc.code().name)] += 1
                assert exc.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (method, request)
                assert rpc_status.from_call(exc) is not None, "no rich status"
                if method == "PutItem":
                    assert stored(request) == before, "a refused put wrote something"

        try:
            check()
        finally:
            db.close()
            channel.close()

    await asyncio.to_thread(fuzz)
    print(f"\nStoreService generated requests: {dict(codes)}")
    for method in ("PutItem", "GetItem", "DeleteItem", "SearchItems", "ListNamespaces"):
        assert codes[(method, "INVALID_ARGUMENT")], codes  # each was sent bad requests
    assert codes[("PutItem", "OK")] and codes[("SearchItems", "OK")] and codes[("ListNamespaces", "OK")], codes
