"""LangGraph projects served unmodified: langgraph.json as LangGraph reads it, runtime context,
graph factories called per run, and the long-term Store — each compared with what LangGraph
itself does in-process on the same graph where it can run there.

Two projects under tests/projects/:
- react_agent: shaped like LangGraph's public react-agent template (a package under src/ with
  its pyproject.toml, "dependencies": ["."], "env": ".env", a Context dataclass read through
  Runtime[Context], a chat model making a tool call: replaced by a fake), served with
  `graphrun serve --config` from another folder, as a user would start it;
- features: one graph per capability, served by an in-process server.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import uuid

import grpc
import pytest
from dotenv import dotenv_values

from conftest import scratch_database
from graphrun.v1 import (assistant_service_pb2 as assistant_pb, assistant_service_pb2_grpc, run_pb2,
                         run_service_pb2 as run_pb, run_service_pb2_grpc, store_service_pb2 as store_pb,
                         store_service_pb2_grpc, thread_service_pb2 as thread_pb, thread_service_pb2_grpc)
from graphrun_server.app import App, Settings
from graphrun_server.wire import message_to_json
from support.helpers import details, messages, spec, to_dict, wait_request
from support.replicas import Replica

PROJECTS = pathlib.Path(__file__).parents[1] / "projects"
TEMPLATE = PROJECTS / "react_agent"
FEATURES = PROJECTS / "features"
GRAPHRUN = str(pathlib.Path(sys.executable).parent / "graphrun")
QUESTION = {"messages": [{"role": "user", "content": "weather in Paris"}]}


def _without_ids(wire_messages: list[dict]) -> list[dict]:
    """Message ids are random per run; everything else must be equal."""
    return [{k: v for k, v in m.items() if k != "id"} for m in wire_messages]


# -- the react-agent template, served by `graphrun serve --config` ---------------------------


@pytest.fixture(scope="module")
async def template_server(admin_dsn, tmp_path_factory):
    """The template project served from another folder than its own, with none of its .env set."""
    with scratch_database(admin_dsn) as dsn:
        replica = Replica("template", dsn, str(TEMPLATE / "langgraph.json"), cwd=str(tmp_path_factory.mktemp("cwd")),
                          argv=[GRAPHRUN, "serve", "--config", str(TEMPLATE / "langgraph.json"), "--port", "0"])
        for name in dotenv_values(TEMPLATE / ".env"):
            replica.env.pop(name, None)
        await replica.start()
        try:
            yield replica
        finally:
            await replica.close()


@pytest.fixture(scope="module")
def template_in_process():
    """The same project run by LangGraph in-process, with its .env loaded as `langgraph dev` loads it."""
    sys.path.insert(0, str(TEMPLATE / "src"))
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in dotenv_values(TEMPLATE / ".env").items() if v is not None})
    try:
        from langgraph.checkpoint.memory import InMemorySaver
        from react_agent.context import Context
        from react_agent.graph import graph

        yield graph.copy(update={"checkpointer": InMemorySaver()}), Context
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sys.path.remove(str(TEMPLATE / "src"))


@pytest.mark.parametrize("request_context, in_process_context, answer", [
    # No context: LangGraph Server builds the schema's defaults (which the template's
    # Context.__post_init__ takes from the environment: the project's .env).
    ({}, {}, "fake/from-dotenv found 10 results for 'weather in Paris' in the project's .env"),
    ({"context": {"model": "fake/explicit", "max_search_results": 3}}, {"model": "fake/explicit", "max_search_results": 3},
     "fake/explicit found 3 results for 'weather in Paris' in the project's .env"),
    # A client written before context existed sends the same values in config.configurable.
    ({"config": {"configurable": {"model": "fake/configurable"}}}, {"model": "fake/configurable"},
     "fake/configurable found 10 results for 'weather in Paris' in the project's .env"),
], ids=["defaults", "context", "configurable"])
async def test_the_template_project_runs_as_langgraph_runs_it(template_server, template_in_process,
                                                              request_context, in_process_context, answer):
    graph, Context = template_in_process
    reply = await template_server.runs.Wait(wait_request(assistant_id="agent", input=QUESTION, **request_context),
                                            timeout=30)
    assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS
    served = messages(reply.state)
    assert served[-1]["content"] == answer
    assert [m["type"] for m in served] == ["human", "ai", "tool", "ai"]
    assert served[1]["tool_calls"][0]["name"] == "search"

    local = await graph.ainvoke(QUESTION, {"configurable": {"thread_id": str(uuid.uuid4())}},
                                context=Context(**in_process_context))
    assert _without_ids(served) == _without_ids([message_to_json(m) for m in local["messages"]])


async def test_the_template_project_refuses_a_context_its_schema_refuses(template_server):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await template_server.runs.Wait(wait_request(assistant_id="agent", input=QUESTION,
                                                     context={"max_search_results": "many"}), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.context.max_search_results" in details(refused.value)["violations"]


async def test_the_template_assistant_shows_its_context_schema(template_server):
    stub = assistant_service_pb2_grpc.AssistantServiceStub(template_server.channel)
    assistant = (await stub.Get(assistant_pb.AssistantServiceGetRequest(assistant_id="agent"), timeout=30)).assistant
    properties = to_dict(assistant.context_schema)["properties"]
    assert set(properties) == {"system_prompt", "model", "max_search_results"}
    assert properties["max_search_results"]["default"] == 10
    assert assistant.description.startswith("Define a custom Reasoning and Action agent.")


# -- one graph per capability, served in-process ------------------------------------------


@pytest.fixture(scope="module")
async def features(admin_dsn):
    """The features project on a database of its own, with one of its env variables already set
    in the process environment (which wins over the project's value)."""
    os.environ["FEATURES_OVERRIDDEN"] = "the operator's value"
    with scratch_database(admin_dsn) as dsn:
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn,
                                 config=str(FEATURES / "langgraph.json"))).start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                yield Served(app, dsn, channel)
        finally:
            await app.stop(grace=1)
            os.environ.pop("FEATURES_OVERRIDDEN", None)


class Served:
    def __init__(self, app: App, dsn: str, channel: grpc.aio.Channel):
        self.app, self.dsn, self.channel = app, dsn, channel
        self.runs = run_service_pb2_grpc.RunServiceStub(channel)
        self.threads = thread_service_pb2_grpc.ThreadServiceStub(channel)
        self.assistants = assistant_service_pb2_grpc.AssistantServiceStub(channel)

    async def values(self, **fields) -> dict:
        reply = await self.runs.Wait(wait_request(**fields), timeout=30)
        assert reply.run.status == run_pb2.RUN_STATUS_SUCCESS, reply.run.error
        return to_dict(reply.state.values)


async def test_env_and_a_plain_folder_dependency(features):
    """`"dependencies": ["./lib"]` makes `features_lib.graphs:graph` importable; the env object
    applies, except where the process environment already sets the variable."""
    assert await features.values(assistant_id="module_graph", input={}) == {
        "greeting": "hello from langgraph.json", "overridden": "the operator's value"}


async def test_a_factory_taking_a_config_is_called_for_each_run_with_its_configurable(features):
    first = await features.values(assistant_id="from_config", input={}, config={"configurable": {"persona": "pirate"}})
    second = await features.values(assistant_id="from_config", input={}, config={"configurable": {"persona": "poet"}})
    assert (first["built_for"], second["built_for"]) == ("pirate", "poet")
    assert second["calls"] == first["calls"] + 1


async def test_an_async_factory_and_a_context_manager_factory(features):
    built = await features.values(assistant_id="from_async", input={}, config={"configurable": {"persona": "async"}})
    assert built["built_for"] == "async"
    managed = await features.values(assistant_id="from_context_manager", input={},
                                    config={"configurable": {"persona": "managed"}})
    # The factory's context stays open while the run executes.
    assert (managed["built_for"], managed["resource"]) == ("managed", "open")


async def test_a_factory_taking_the_server_runtime_sees_the_run_context(features):
    given = await features.values(assistant_id="from_runtime", input={}, context={"persona": "a given persona"})
    default = await features.values(assistant_id="from_runtime", input={})
    assert given["built_for"] == "threads.create_run: a given persona"
    assert default["built_for"] == "threads.create_run: default persona"


async def test_a_factory_that_raises_fails_its_run_not_the_server(features):
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await features.runs.Wait(wait_request(assistant_id="failing_factory", input={},
                                              config={"configurable": {"fail": True}}), timeout=30)
    assert failed.value.code() == grpc.StatusCode.ABORTED
    run_id = details(failed.value)["metadata"]["run_id"]
    run = (await features.runs.Get(run_pb.RunServiceGetRequest(run_id=run_id), timeout=30)).run
    assert run.status == run_pb2.RUN_STATUS_ERROR
    assert (run.error.type, run.error.message) == ("ValueError", "this factory refuses to build a graph for this run")
    assert (await features.values(assistant_id="failing_factory", input={}))["built_for"] == "ok"


async def test_a_pydantic_context_is_validated_and_its_defaults_fill_the_rest(features):
    assert (await features.values(assistant_id="pydantic_context", input={}, context={"temperature": 1.5}))["seen"] == {
        "type": "Strict", "temperature": 1.5, "retries": 2}
    # Older clients: the schema's fields found in configurable (others there are not context).
    assert (await features.values(assistant_id="pydantic_context", input={},
                                  config={"configurable": {"retries": 5, "unrelated": "x"}}))["seen"] == {
        "type": "Strict", "temperature": 0.5, "retries": 5}


async def test_a_context_the_schema_refuses_is_invalid_argument_and_records_nothing(features):
    thread_id = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await features.runs.Wait(wait_request(assistant_id="pydantic_context", input={}, thread_id=thread_id,
                                              if_not_exists="IF_NOT_EXISTS_CREATE",
                                              context={"temperature": 3, "surprise": True}), timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(details(refused.value)["violations"]) == {"spec.context.temperature", "spec.context.surprise"}
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await features.threads.Get(thread_pb.ThreadServiceGetRequest(thread_id=thread_id), timeout=30)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_typed_dict_context_keeps_only_its_keys(features):
    seen = (await features.values(assistant_id="typed_dict_context", input={},
                                  context={"tenant": "acme", "not_in_schema": 1}))["seen"]
    assert seen == {"type": "dict", "tenant": "acme"}
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await features.runs.Wait(wait_request(assistant_id="typed_dict_context", input={}, context={"tenant": 7}),
                                 timeout=30)
    assert "spec.context.tenant" in details(refused.value)["violations"]


async def test_a_background_run_keeps_its_context(features):
    """The context is stored with the run: a run started later by a worker (here: after a
    start delay, claimed from the database) builds the same one."""
    created = await features.runs.Create(run_pb.RunServiceCreateRequest(
        spec=spec(assistant_id="pydantic_context", input={}, context={"retries": 9}),
        start_delay={"nanos": 50_000_000}), timeout=30)
    events = [r.event async for r in features.runs.Join(run_pb.RunServiceJoinRequest(run_id=created.run.run_id),
                                                        timeout=30)]
    assert events[-1].end.run.status == run_pb2.RUN_STATUS_SUCCESS
    assert to_dict(events[-1].end.state.values)["seen"]["retries"] == 9


async def test_memories_written_on_one_thread_are_read_on_another_and_survive_a_restart(features, admin_dsn):
    user = f"user-{uuid.uuid4().hex[:8]}"
    told = await features.values(assistant_id="memory", input={"remember": "prefers tea"}, context={"user_id": user})
    assert told["recalled"] == ["prefers tea"]
    # Another thread (each Wait without a thread id starts one), the same user.
    assert (await features.values(assistant_id="memory", input={}, context={"user_id": user}))["recalled"] == [
        "prefers tea"]
    # The older spelling: a `store: BaseStore` node parameter.
    assert (await features.values(assistant_id="memory_param", input={}, config={"configurable": {"user_id": user}}))[
        "recalled"] == ["prefers tea"]
    # Another server on the same database (a restart, or another replica) sees it too, and so
    # does an API caller, through StoreService.
    other = await App(Settings(host="127.0.0.1", port=0, database_url=features.dsn,
                               config=str(FEATURES / "langgraph.json"))).start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as channel:
            again = await Served(other, features.dsn, channel).values(assistant_id="memory", input={},
                                                                       context={"user_id": user})
            item = (await store_service_pb2_grpc.StoreServiceStub(channel).GetItem(
                store_pb.StoreServiceGetItemRequest(namespace=["memories", user], key="fact-0"), timeout=30)).item
        assert again["recalled"] == ["prefers tea"]
        assert to_dict(item.value) == {"text": "prefers tea"}
    finally:
        await other.stop(grace=1)


async def test_assistants_show_context_schemas_and_descriptions_from_the_config(features):
    listed = {a.assistant_id: a for a in (await features.assistants.List(
        assistant_pb.AssistantServiceListRequest(), timeout=30)).assistants}
    assert to_dict(listed["pydantic_context"].context_schema)["additionalProperties"] is False
    assert listed["memory_param"].description == "Remembers through a store: BaseStore parameter."
    assert not listed["module_graph"].HasField("context_schema")


# -- what stops the server: one line, no traceback ----------------------------------------


def _serve(config: pathlib.Path, dsn: str, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRAPHRUN_DATABASE_URL": dsn, "GRAPHRUN_PORT": "0"}
    return subprocess.run([GRAPHRUN, "serve", "--config", str(config)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def startup_database(admin_dsn):
    with scratch_database(admin_dsn) as dsn:
        yield dsn


@pytest.mark.parametrize("config, files, expected", [
    ({"graphs": {"g": "./g.py:graph"}, "env": ".env.missing"}, {}, "env file"),
    ({"graphs": {"g": "./g.py:graph"}, "dependencies": [".", "surely-not-installed-pkg>=1", "langgraph"]}, {},
     "dependencies not installed: surely-not-installed-pkg>=1; install them with: pip install "
     "'surely-not-installed-pkg>=1'"),
    ({"graphs": {"g": "./g.py:graph"}, "dependencies": ["./nowhere"]}, {}, "dependency './nowhere' is not a folder"),
    ({"graphs": {"g": "./g.py"}}, {}, "graph 'g' must be './path/file.py:attr'"),
    ({"graphs": {"g": "./g.py:graph"}}, {"g.py": "import surely_not_a_module\n"},
     "graph 'g' (./g.py:graph) could not be loaded: ModuleNotFoundError: No module named 'surely_not_a_module'"),
    ({"graphs": {"g": "./g.py:graph"}}, {"g.py": "other = 1\n"},
     "graph 'g' (./g.py:graph) could not be loaded: AttributeError:"),
    ({"graphs": {"g": "./missing.py:graph"}}, {}, "graph 'g' (./missing.py:graph) could not be loaded: FileNotFoundError"),
    ({"graphs": {"g": "./g.py:graph"}}, {"g.py": "def graph(a, b, c):\n    pass\n"},
     "graph 'g' (./g.py:graph) could not be loaded: TypeError: a graph factory takes nothing"),
], ids=["env-file", "package", "folder", "reference", "import", "attribute", "file", "factory-signature"])
def test_a_project_that_cannot_be_served_stops_with_one_line(tmp_path, startup_database, config, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _serve(tmp_path / "langgraph.json", startup_database, elsewhere)
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert expected in last


def test_keys_graphrun_does_not_use_are_logged_as_ignored(tmp_path, startup_database):
    """Reading the config logs them once; they stop nothing (here the server stops later, at a
    graph that does not exist, so the test needs no running server)."""
    import json

    (tmp_path / "langgraph.json").write_text(json.dumps({
        "graphs": {"g": "./missing.py:graph"}, "python_version": "3.12", "dockerfile_lines": ["RUN true"],
        "http": {"cors": {}}, "something_new": 1}))
    done = _serve(tmp_path / "langgraph.json", startup_database, tmp_path)
    for key in ("python_version", "dockerfile_lines", "http"):
        assert f"ignoring {key!r}" in done.stderr
    assert "ignoring unknown key 'something_new'" in done.stderr


# -- the CLI ---------------------------------------------------------------------------------


async def test_the_cli_sends_a_context(features, capsys):
    from graphrun.cli import main

    target = f"127.0.0.1:{features.app.port}"
    code = await asyncio.to_thread(main, ["--target", target, "wait", "hello", "--assistant", "pydantic_context",
                                          "--context", '{"retries": 4}', "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["state"]["values"]["seen"] == {"type": "Strict", "temperature": 0.5, "retries": 4}

    with pytest.raises(SystemExit) as usage:  # argparse's usage error
        await asyncio.to_thread(main, ["--target", target, "wait", "hello", "--assistant", "pydantic_context",
                                       "--context", '{"retries": 4'])
    assert usage.value.code == 2 and "--context must be JSON" in capsys.readouterr().err
