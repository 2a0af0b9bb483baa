"""graphrun benchmarks, side by side with the same graphs run in-process (`make bench`).

Every figure is measured in one run against one PostgreSQL, so the ratios hold
on a noisy machine. graphrun runs as a separate server process (as in
production); the in-process baseline compiles the same graph with LangGraph's
stock `AsyncPostgresSaver` on a psycopg pool of the same size, and calls
`ainvoke` with the same durability (graphrun's default, `sync`, unless a table
says otherwise). Calls of both are interleaved.

    python -m benchmarks.bench [--quick] [--only latency,throughput,...]   (from the repository's root)

Sections: latency, durability, throughput, workers, stream, join, growth, dbsize, memory, cost, cpu.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pathlib
import random
import statistics
import sys
import time
import uuid

import grpc
import psutil
import psycopg
from langchain_core.messages import BaseMessageChunk
from google.protobuf import json_format
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from benchmarks import graphs
from graphrun.v1 import run_pb2, run_service_pb2 as pb, run_service_pb2_grpc
from graphrun_server.example_agent.agent import make_graph
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tests.support.replicas import Replica  # the test suite's server-process launcher

HERE = pathlib.Path(__file__).resolve().parent

CONFIG = str(HERE / "langgraph.json")
ADMIN_DSN = os.environ.get("GRAPHRUN_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
QUESTION = {"messages": [{"role": "user", "content": "Wann wurde die Heizungsanlage gewartet?"}]}
DURABILITY = {"sync": run_pb2.DURABILITY_SYNC, "async": run_pb2.DURABILITY_ASYNC, "exit": run_pb2.DURABILITY_EXIT}


# -- helpers -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    sys.stdout.flush()


@contextlib.contextmanager
def scratch_database():
    name = f"graphrun_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    info["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**info)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def spec(assistant: str, input: dict, thread_id: str = "", durability: str = "sync", **extra) -> run_pb2.RunSpec:
    message = json_format.ParseDict({"assistant_id": assistant, "input": input, **extra}, run_pb2.RunSpec())
    message.durability = DURABILITY[durability]
    if thread_id:
        message.thread_id = thread_id
        message.if_not_exists = run_pb2.IF_NOT_EXISTS_CREATE
    return message


class InProcess:
    """The baseline: the same graphs, compiled in this process with the stock saver."""

    def __init__(self, dsn: str, pool_size: int = 20):
        self.pool = AsyncConnectionPool(dsn, min_size=2, max_size=pool_size, open=False,
                                        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})

    async def open(self) -> InProcess:
        await self.pool.open(wait=True)
        saver = AsyncPostgresSaver(self.pool)
        await saver.setup()
        self.graphs = {"pair": graphs.pair.compile(checkpointer=saver), "chat": graphs.chat.compile(checkpointer=saver),
                       "agent": make_graph().copy(update={"checkpointer": saver}),
                       "tokens": graphs.tokens.compile(checkpointer=saver),
                       "paced": graphs.paced.compile(checkpointer=saver)}
        return self

    async def invoke(self, graph: str, input: dict, thread_id: str | None = None, durability: str = "sync"):
        config = {"configurable": {"thread_id": thread_id or str(uuid.uuid4())}}
        return await self.graphs[graph].ainvoke(input, config, durability=durability)

    async def close(self) -> None:
        await self.pool.close()


class Service:
    """graphrun through its gRPC API (raw stubs, no client library in between)."""

    def __init__(self, replica: Replica):
        self.replica = replica
        self.stub = run_service_pb2_grpc.RunServiceStub(replica.channel)
        self.health = health_pb2_grpc.HealthStub(replica.channel)

    async def wait(self, graph: str, input: dict, thread_id: str = "", durability: str = "sync", **extra):
        return await self.stub.Wait(pb.RunServiceWaitRequest(spec=spec(graph, input, thread_id, durability, **extra)))

    async def bare_call(self):
        """A gRPC round trip that does (almost) nothing: a health check, answered from memory."""
        return await self.health.Check(health_pb2.HealthCheckRequest())


_ORDER = random.Random(0)  # seeded: a rerun takes the calls in the same orders


async def interleaved(calls: dict[str, callable], n: int, warmup: int = 10) -> dict[str, list[float]]:
    """Latencies of each call, alternating between them so noise hits all alike. Each round takes
    the calls in a new (seeded) random order: a call runs faster after a call of its own kind
    (its processes and database connections still warm: ~1 ms for the 2-node graph in-process,
    ~0.5 ms through graphrun), so in a fixed order the one that follows its twin would win."""
    times = {name: [] for name in calls}
    names = list(calls)
    for i in range(warmup + n):
        _ORDER.shuffle(names)
        for name in names:
            start = time.perf_counter()
            await calls[name]()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return times


# -- sections ------------------------------------------------------------------------------


async def latency(svc: Service, local: InProcess, n: int) -> None:
    """graphrun's overhead (its p50 minus in-process) is to be compared with a bare gRPC call (a
    health check), the round trip it cannot avoid. The bare calls are timed in a rotation of
    their own with the in-process runs, so that, like the Waits, they often follow a run that
    left graphrun's processes idle: in the Waits' rotation they kept the server warm for the
    Wait after them (ratios ~0.04 lower than with the two alone); back to back they take half
    as long (~0.5 ms here)."""
    rows = []
    for graph, input in (("pair", {"log": []}), ("agent", QUESTION)):
        t = await interleaved({"graphrun": lambda: svc.wait(graph, input), "in-process": lambda: local.invoke(graph, input)}, n)
        b = (await interleaved({"bare": svc.bare_call, "in-process": lambda: local.invoke(graph, input)}, n // 2))["bare"]
        g, l = t["graphrun"], t["in-process"]
        rows.append([graph, ms(pct(g, 50)), ms(pct(g, 95)), ms(pct(g, 99)), ms(pct(l, 50)), ms(pct(l, 95)),
                     ms(pct(l, 99)), f"{pct(g, 50) / pct(l, 50):.2f}", ms(pct(g, 50) - pct(l, 50)), ms(pct(b, 50))])
    table(f"Wait latency, fresh thread per run (ms, n={n})",
          ["graph", "graphrun p50", "p95", "p99", "in-process p50", "p95", "p99", "ratio p50", "overhead p50",
           "bare gRPC call p50"], rows)


async def durability(svc: Service, local: InProcess, n: int) -> None:
    rows = []
    for mode in ("sync", "async", "exit"):
        t = await interleaved({"g": lambda: svc.wait("pair", {"log": []}, durability=mode),
                               "l": lambda: local.invoke("pair", {"log": []}, durability=mode)}, n)
        rows.append([mode, ms(pct(t["g"], 50)), ms(pct(t["l"], 50)), f"{pct(t['g'], 50) / pct(t['l'], 50):.2f}"])
    table(f"Durability modes, trivial graph (ms p50, n={n})", ["durability", "graphrun", "in-process", "ratio"], rows)


async def _load(worker, clients: int, seconds: float) -> tuple[float, float]:
    """Run `clients` concurrent loops of worker(i) for `seconds`; return (runs/s, p95 latency)."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def loop(i: int):
        while time.perf_counter() < stop:
            start = time.perf_counter()
            await worker(i)
            latencies.append(time.perf_counter() - start)

    begin = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(clients)))
    return len(latencies) / (time.perf_counter() - begin), pct(latencies, 95)


async def throughput(svc: Service, local: InProcess, seconds: float) -> None:
    rows = []
    for clients in (1, 8, 64):
        for threads in ("fresh", "same"):
            per_client = [str(uuid.uuid4()) for _ in range(clients)]
            tid = (lambda i: per_client[i]) if threads == "same" else (lambda i: "")
            g_rate, g_p95 = await _load(lambda i: svc.wait("pair", {"log": []}, tid(i)), clients, seconds)
            l_rate, l_p95 = await _load(lambda i: local.invoke("pair", {"log": []}, tid(i) or None), clients, seconds)
            rows.append([clients, threads, f"{g_rate:.0f}", ms(g_p95), f"{l_rate:.0f}", ms(l_p95), f"{g_rate / l_rate:.2f}"])
    table(f"Throughput, trivial graph ({seconds:.0f} s per cell)",
          ["clients", "thread", "graphrun runs/s", "p95 ms", "in-process runs/s", "p95 ms", "ratio"], rows)


async def workers(dsn: str, seconds: float) -> None:
    rows = []
    port = _free_port()
    for count in (1, 2):
        procs = [await Replica(f"w{i}", dsn, CONFIG, port=port, share_port=1).start() for i in range(count)]
        try:
            svc = Service(procs[0])
            for clients in (8, 64):
                rate, p95 = await _load(lambda i: svc.wait("pair", {"log": []}), clients, seconds)
                rows.append([count, clients, f"{rate:.0f}", ms(p95)])
        finally:
            for p in procs:
                await p.close()
    table("Worker processes on one port (SO_REUSEPORT), trivial graph",
          ["processes", "clients", "runs/s", "p95 ms"], rows)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def first_event_and_token(svc: Service, graph: str, input: dict, thread_id: str = "") -> tuple[float, float]:
    """Seconds from a `Stream`'s call to its first event and to its first token; read to its end
    (the next stream must not share the loop with this run)."""
    start, event, token = time.perf_counter(), None, None
    async for response in svc.stub.Stream(pb.RunServiceStreamRequest(
            spec=spec(graph, input, thread_id), stream_mode=["messages"], batch_events=True)):
        event = event or time.perf_counter()
        if token is None and any(e.HasField("message") and e.message.delta for e in response.events):
            token = time.perf_counter()
    return event - start, token - start


async def local_first_token(graph, input: dict, thread_id: str | None = None) -> float:
    """Seconds from in-process `astream(stream_mode="messages")` to its first token; read to its end."""
    start, token = time.perf_counter(), None
    config = {"configurable": {"thread_id": thread_id or str(uuid.uuid4())}}
    async for message, _meta in graph.astream(input, config, stream_mode="messages", durability="sync"):
        if token is None and isinstance(message, BaseMessageChunk):
            token = time.perf_counter()
    return token - start


async def stream(svc: Service, local: InProcess, n: int) -> None:
    """Streams side by side with the same graphs in-process (`astream(stream_mode="messages")`
    on the stock saver): time to the first event and token, and token events per second."""
    first_event, first_token, local_token, bare = [], [], [], []
    for _ in range(n):
        start = time.perf_counter()
        await svc.bare_call()
        bare.append(time.perf_counter() - start)
        event, token = await first_event_and_token(svc, "agent", QUESTION)
        first_event.append(event)
        first_token.append(token)
        local_token.append(await local_first_token(local.graphs["agent"], QUESTION))
    rows = [["bare gRPC round trip (health)", ms(pct(bare, 50)), ms(pct(bare, 95)), "", ""],
            ["time to first event (agent)", ms(pct(first_event, 50)), ms(pct(first_event, 95)), "",
             f"+{ms(pct(first_event, 50) - pct(bare, 50))} over the bare round trip"],
            ["time to first token (agent, demo model)", ms(pct(first_token, 50)), ms(pct(first_token, 95)),
             ms(pct(local_token, 50)), f"+{ms(pct(first_token, 50) - pct(local_token, 50))}"]]
    table(f"Stream latency (ms, n={n})", ["", "graphrun p50", "graphrun p95", "in-process p50", "difference"], rows)

    async def tokens(count: int, batch: bool = True) -> tuple[int, float]:
        """Token events through one Stream, read as graphrun's clients read them (`batch_events`:
        events ready together come in one response), or one event per response (grpcurl's way)."""
        received, start = 0, time.perf_counter()
        async for response in svc.stub.Stream(pb.RunServiceStreamRequest(
                spec=spec("tokens", {"n": count, "messages": [{"role": "user", "content": "go"}]}),
                stream_mode=["messages"], batch_events=batch)):
            for event in response.events or (response.event,):
                if event.HasField("message") and event.message.delta:
                    received += 1
        return received, time.perf_counter() - start

    async def local_tokens(count: int) -> tuple[int, float]:
        received, start = 0, time.perf_counter()
        config = {"configurable": {"thread_id": str(uuid.uuid4())}}
        async for message, _meta in local.graphs["tokens"].astream(
                {"n": count, "messages": [{"role": "user", "content": "go"}]}, config, stream_mode="messages",
                durability="sync"):
            if isinstance(message, BaseMessageChunk):
                received += 1
        return received, time.perf_counter() - start

    rows = []
    # 200 tokens a stream keeps the 100 streams' round within seconds: gRPC's server takes up new
    # calls one at a time on the event loop, and a call it has not taken up within 30 s (gRPC
    # core's limit) is cancelled, which a loop saturated by 100 token bursts on 2 cores can reach.
    for label, remote, here in (("1 stream", lambda: tokens(5000), lambda: local_tokens(5000)),
                                ("100 concurrent streams", lambda: _together(tokens, 200),
                                 lambda: _together(local_tokens, 200)),
                                ("1 stream, one event per response", lambda: tokens(5000, batch=False),
                                 lambda: local_tokens(5000)),
                                ("100 streams, one event per response",
                                 lambda: _together(lambda n: tokens(n, batch=False), 200),
                                 lambda: _together(local_tokens, 200))):
        g_count, g_t = await remote()
        l_count, l_t = await here()
        rows.append([label, g_count, f"{g_count / g_t:.0f}", f"{l_count / l_t:.0f}",
                     f"{(g_count / g_t) / (l_count / l_t):.2f}"])
    table("Token events through Stream vs in-process astream(stream_mode=\"messages\")",
          ["", "token events", "graphrun events/s", "in-process events/s", "ratio"], rows)


async def _together(one, count: int, streams: int = 100) -> tuple[int, float]:
    start = time.perf_counter()
    done = await asyncio.gather(*(one(count) for _ in range(streams)))
    return sum(c for c, _ in done), time.perf_counter() - start


async def growth(svc: Service, local: InProcess, turns: int, conversations: int = 5) -> None:
    """`conversations` threads through graphrun per granularity and as many in-process, a turn
    of each in turn (a new random order every turn): the state (and what each checkpoint write
    and Wait answer carries) grows by two messages a turn. LOW answers the conversation
    (`values.messages`); FULL every channel and the tasks. Each figure is the median of the 10
    turns up to it across the conversations (one conversation gave a median of 10 samples,
    which moved by 0.15 from run to run at turn 10)."""
    sides = ("LOW", "FULL", "in-process")
    threads = {(name, c): str(uuid.uuid4()) for name in sides for c in range(conversations)}
    samples: dict[str, dict[int, list[float]]] = {name: {} for name in sides}
    for turn in range(1, turns + 1):
        message = {"messages": [{"role": "user", "content": f"turn {turn}"}]}

        def call(name: str, c: int):
            if name == "in-process":
                return local.invoke("chat", message, threads[name, c])
            return svc.wait("chat", message, threads[name, c], granularity=f"GRANULARITY_{name}")

        for name, c in _ORDER.sample(list(threads), len(threads)):
            start = time.perf_counter()
            await call(name, c)
            samples[name].setdefault(turn, []).append(time.perf_counter() - start)
    rows = []
    for mark in (m for m in (1, 10, 50, 100, 200) if m <= turns):
        window = range(max(1, mark - 9), mark + 1)
        low, full, here = (statistics.median(x for t in window for x in samples[name][t]) for name in sides)
        rows.append([mark, ms(low), ms(full), ms(here), f"{low / here:.2f}", f"{full / here:.2f}"])
    table(f"Wait latency as a thread grows (chat graph, 2 messages per turn; {conversations} conversations "
          "each; median of the 10 turns up to each)",
          ["turn", "graphrun LOW ms", "graphrun FULL ms", "in-process ms", "ratio LOW", "ratio FULL"], rows)


async def join(dsn: str, svc: Service, runs: int) -> None:
    """A run streaming on replica A (the benchmark's), joined through replica B: how long after
    an event happened on A (its `event_time`) a client of B has it. `paced` sends a token every
    5 ms, as a model would; `tokens` sends them as fast as the CPU allows (a burst). Read as
    graphrun's clients read (`batch_events`)."""
    other = await Replica("join-b", dsn, CONFIG).start()
    try:
        joined = run_service_pb2_grpc.RunServiceStub(other.channel)
        rows = []
        for graph, extra in (("paced", {"pause": 0.005}), ("tokens", {})):
            lags: list[float] = []
            for _ in range(runs):
                run = (await svc.stub.Create(pb.RunServiceCreateRequest(
                    spec=spec(graph, {"n": 100, "messages": [{"role": "user", "content": "go"}], **extra}),
                    stream_mode=["messages"]))).run
                async for response in joined.Join(pb.RunServiceJoinRequest(run_id=run.run_id, batch_events=True)):
                    now = time.time()
                    lags.extend(now - e.event_time.ToNanoseconds() / 1e9 for e in response.events)
            rows.append([graph, len(lags), ms(pct(lags, 50)), ms(pct(lags, 95)), ms(pct(lags, 99))])
        table("Join through replica B of a run streaming on A: event on A -> client of B (ms)",
              ["graph", "events", "p50", "p95", "p99"], rows)
    finally:
        await other.close()


async def dbsize(svc: Service, dsn: str, n: int, target: int) -> None:
    empty = await interleaved({"w": lambda: svc.wait("pair", {"log": []})}, n)
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        per_thread = 10
        threads = max(target // per_thread, 1)
        # Clone real rows (one finished 'pair' thread) into `threads` synthetic threads.
        conn.execute("""
            CREATE TEMP TABLE seed AS
            SELECT * FROM checkpoints WHERE thread_id = (SELECT thread_id FROM checkpoints LIMIT 1)""")
        seed = conn.execute("SELECT count(*) FROM seed").fetchone()[0]
        copies = max(per_thread // max(seed, 1), 1)
        conn.execute("""
            INSERT INTO graphrun_thread (thread_id, status)
            SELECT (md5(t::text)::uuid), 'idle' FROM generate_series(1, %s) t ON CONFLICT DO NOTHING""", (threads,))
        conn.execute("""
            INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata)
            SELECT md5(t::text)::uuid::text, s.checkpoint_ns, s.checkpoint_id || '-' || c, s.parent_checkpoint_id,
                   s.type, s.checkpoint, s.metadata
              FROM seed s, generate_series(1, %s) t, generate_series(1, %s) c""", (threads, copies))
        conn.execute("""
            INSERT INTO graphrun_run (run_id, thread_id, assistant_id, status, attempt, multitask_strategy, spec, ended_at)
            SELECT gen_random_uuid(), md5(t::text)::uuid, 'pair', 'success', 1, 'reject', '{}', now()
              FROM generate_series(1, %s) t, generate_series(1, 3) r""", (threads,))
        conn.execute("ANALYZE")
        after = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    full = await interleaved({"w": lambda: svc.wait("pair", {"log": []})}, n)
    e, f = pct(empty["w"], 50), pct(full["w"], 50)
    table(f"Wait latency as the database grows (trivial graph, n={n})", ["checkpoints", "threads", "p50 ms", "ratio"],
          [[before, "—", ms(e), "1.00"], [after, threads, ms(f), f"{f / e:.2f}"]])


async def memory(dsn: str, streams: int) -> None:
    replica = await Replica("mem", dsn, CONFIG, max_concurrent_runs=streams + 100, pool_size=20).start()
    try:
        proc = psutil.Process(replica.proc.pid)
        before = proc.memory_info().rss
        stub = run_service_pb2_grpc.RunServiceStub(replica.channel)
        calls = [stub.Stream(pb.RunServiceStreamRequest(spec=spec("hang", {"log": []}), stream_mode=["updates"]))
                 for _ in range(streams)]
        await asyncio.gather(*(c.read() for c in calls))  # every run has started and sent its first event
        during = proc.memory_info().rss
        for c in calls:
            c.cancel()
        table(f"Server memory with {streams} open streams (each run executing)", ["", "RSS MiB"],
              [["idle server", f"{before / 2**20:.0f}"], [f"{streams} open streams", f"{during / 2**20:.0f}"],
               ["per stream", f"{(during - before) / streams / 1024:.0f} KiB"]])
    finally:
        await replica.close()


def _db_counters(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("""
            SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()) AS xacts,
                   (SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) FROM pg_stat_user_tables) AS rows,
                   (SELECT wal_bytes FROM pg_stat_wal) AS wal""").fetchone()
    return {"xacts": int(row[0]), "rows": int(row[1] or 0), "wal": int(row[2])}


class RoundTripCounter:
    """A TCP proxy in front of PostgreSQL that counts round trips: each time the database
    answers after the client sent something is one (a pipeline of statements is one)."""

    def __init__(self, dsn: str):
        self.info = psycopg.conninfo.conninfo_to_dict(dsn)
        self.round_trips = self.sent = self.received = 0
        self.pumps: set[asyncio.Task] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return psycopg.conninfo.make_conninfo(**{**self.info, "host": "127.0.0.1", "port": str(port)})

    async def _serve(self, client_r, client_w) -> None:
        server_r, server_w = await asyncio.open_connection(self.info.get("host", "127.0.0.1"),
                                                          int(self.info.get("port", 5432)))
        last = [None]

        async def pump(src, dst, upstream: bool) -> None:
            try:
                while data := await src.read(1 << 16):
                    if upstream:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                        self.round_trips += last[0] == "up"
                    last[0] = "up" if upstream else "down"
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            finally:
                dst.close()

        for task in (asyncio.ensure_future(pump(client_r, server_w, True)),
                     asyncio.ensure_future(pump(server_r, client_w, False))):
            self.pumps.add(task)
            task.add_done_callback(self.pumps.discard)

    def snapshot(self) -> tuple[int, int, int]:
        return self.round_trips, self.sent, self.received

    async def close(self) -> None:
        self.server.close()
        for task in list(self.pumps):
            task.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)


def _run_kinds(svc: Service, local: InProcess) -> list[tuple[str, callable]]:
    """The runs whose cost `cost` and `cpu` measure: the trivial graph on a new thread, and a turn
    of a thread that grows (`chat`), each through graphrun and in-process."""
    threads = {"graphrun": str(uuid.uuid4()), "in-process": str(uuid.uuid4())}
    turn = {"messages": [{"role": "user", "content": "again"}]}
    return [("graphrun Wait", lambda: svc.wait("pair", {"log": []})),
            ("in-process ainvoke", lambda: local.invoke("pair", {"log": []})),
            ("graphrun Wait, a turn of a thread (chat)",
             lambda: svc.wait("chat", turn, threads["graphrun"], granularity="GRANULARITY_LOW")),
            ("in-process ainvoke, a turn of a thread (chat)",
             lambda: local.invoke("chat", turn, threads["in-process"]))]


async def cost(dsn: str, n: int) -> None:
    """Database work per run: round trips and bytes on the wire (counted by a proxy), and
    transactions, rows and WAL from PostgreSQL's own statistics (flushed about once a second)."""
    counter = RoundTripCounter(dsn)
    proxied = await counter.start()
    replica = await Replica("cost", proxied, CONFIG).start()
    local = await InProcess(proxied).open()
    svc = Service(replica)
    rows = []
    try:
        for name, call in _run_kinds(svc, local):
            for _ in range(20):
                await call()
            await asyncio.sleep(1.5)  # the statistics collector's flush, not synchronisation
            before, wire = _db_counters(dsn), counter.snapshot()
            for _ in range(n):
                await call()
            wire = [b - a for a, b in zip(wire, counter.snapshot())]
            await asyncio.sleep(1.5)
            after = _db_counters(dsn)
            rows.append([name, f"{wire[0] / n:.1f}", f"{wire[1] / n / 1024:.1f}", f"{wire[2] / n / 1024:.1f}"]
                        + [f"{(after[k] - before[k]) / n:.1f}" for k in ("xacts", "rows")]
                        + [f"{(after['wal'] - before['wal']) / n / 1024:.1f}"])
    finally:
        await replica.close()
        await local.close()
        await counter.close()
    table(f"Database work per run, trivial graph on a new thread and a turn of a thread that grows (n={n}; "
          "includes the server's background activity)",
          ["", "round trips", "KiB sent", "KiB received", "transactions", "rows written", "WAL KiB"], rows)


def _postgres_cpu() -> float | None:
    """CPU seconds of every PostgreSQL process on this machine (None: none visible, a remote one)."""
    total, seen = 0.0, False
    for proc in psutil.process_iter(["name"]):
        if (proc.info["name"] or "").startswith("postgres"):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total, seen = total + times.user + times.system, True
    return total if seen else None


async def cpu(svc: Service, local: InProcess, n: int) -> None:
    """CPU per run of each process a run involves, graphrun beside in-process: where a run's
    cost goes besides the wall clock (the client's gRPC, the server's event loop and threads,
    PostgreSQL's backends, whose statements are on the run's path). PostgreSQL's figure counts
    every process of the local server, so it is only meaningful on an otherwise idle one."""
    me, server = psutil.Process(), psutil.Process(svc.replica.proc.pid)

    def seconds(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return times.user + times.system

    rows = []
    for name, call in _run_kinds(svc, local):
        for _ in range(20):
            await call()
        before = (time.perf_counter(), seconds(me), seconds(server), _postgres_cpu())
        for _ in range(n):
            await call()
        after = (time.perf_counter(), seconds(me), seconds(server), _postgres_cpu())
        wall, client, served = ((b - a) / n * 1000 for a, b in zip(before[:3], after[:3]))
        database = "" if before[3] is None or after[3] is None else ms((after[3] - before[3]) / n)
        graphrun = name.startswith("graphrun")
        rows.append([name, f"{wall:.2f}", f"{client:.2f}", f"{served:.2f}" if graphrun else "", database])
    table(f"CPU per run (ms, n={n}; trivial graph on a new thread, a turn of a thread that grows): the calling "
          "process (for in-process, the run itself), the server, PostgreSQL",
          ["", "wall", "caller CPU", "server CPU", "PostgreSQL CPU"], rows)


SECTIONS = ("latency", "durability", "throughput", "workers", "stream", "join", "growth", "dbsize", "memory", "cost",
            "cpu")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    args = parser.parse_args()
    only = set(args.only.split(","))
    quick = args.quick
    n = 30 if quick else 300
    seconds = 1.5 if quick else 5.0
    print(f"# graphrun benchmarks ({'quick' if quick else 'full'}; {os.cpu_count()} CPUs)")
    with scratch_database() as dsn:
        # Room above the 100 concurrent streams of the stream section: runs whose streams the
        # section broke off before may still be ending (else a stream is refused RESOURCE_EXHAUSTED).
        replica = await Replica("bench", dsn, CONFIG, max_concurrent_runs=200).start()
        local = await InProcess(dsn).open()
        svc = Service(replica)
        try:
            if "latency" in only:
                await latency(svc, local, n)
            if "durability" in only:
                await durability(svc, local, n // 2)
            if "throughput" in only:
                await throughput(svc, local, seconds)
            if "stream" in only:
                await stream(svc, local, 10 if quick else 50)
            if "join" in only:
                await join(dsn, svc, 5 if quick else 20)
            if "growth" in only:
                await growth(svc, local, 20 if quick else 200, 2 if quick else 5)
            if "cpu" in only:
                await cpu(svc, local, n)
            if "dbsize" in only:
                await dbsize(svc, dsn, n, 10_000 if quick else 100_000)
        finally:
            await replica.close()
            await local.close()
        if "workers" in only:
            await workers(dsn, seconds)
        if "memory" in only:
            await memory(dsn, 100 if quick else 1000)
        if "cost" in only:
            await cost(dsn, 50 if quick else 200)


if __name__ == "__main__":
    asyncio.run(main())
