"""The Store through graphrun (StoreService) against LangGraph's AsyncPostgresStore in-process on
the same database, calls interleaved in random order (only ratios hold on a shared machine).

    python -m benchmarks.store_latency
"""

from __future__ import annotations

import asyncio

from benchmarks.bench import interleaved, ms, pct, scratch_database, table

import grpc
from google.protobuf import struct_pb2

from graphrun.v1 import store_service_pb2 as pb, store_service_pb2_grpc
from graphrun_server.app import App, Settings
from graphrun_server.storage.database import make_pool
from graphrun_server.storage.store import GraphrunStore

N = 300


async def main() -> None:
    with scratch_database() as dsn:
        app = await App(Settings(host="127.0.0.1", port=0, database_url=dsn)).start()
        pool = make_pool(dsn, max_size=4)
        await pool.open(wait=True)
        local = GraphrunStore(pool)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
                store = store_service_pb2_grpc.StoreServiceStub(channel)
                value = struct_pb2.Struct()
                value.update({"text": "prefers tea", "n": 1})
                put = pb.StoreServicePutItemRequest(namespace=["bench", "api"], key="k", value=value)
                get = pb.StoreServiceGetItemRequest(namespace=["bench", "api"], key="k")
                search = pb.StoreServiceSearchItemsRequest(namespace_prefix=["bench"], limit=10)
                await store.PutItem(put)
                await local.aput(("bench", "local"), "k", {"text": "prefers tea", "n": 1})
                times = await interleaved({
                    "put graphrun": lambda: store.PutItem(put),
                    "put in-process": lambda: local.aput(("bench", "local"), "k", {"text": "prefers tea", "n": 1}),
                    "get graphrun": lambda: store.GetItem(get),
                    "get in-process": lambda: local.aget(("bench", "local"), "k"),
                    "search graphrun": lambda: store.SearchItems(search),
                    "search in-process": lambda: local.asearch(("bench",), limit=10),
                }, N)
            rows = []
            for op in ("put", "get", "search"):
                ours, theirs = times[f"{op} graphrun"], times[f"{op} in-process"]
                rows.append([op, ms(pct(ours, 50)), ms(pct(ours, 99)), ms(pct(theirs, 50)), ms(pct(theirs, 99)),
                             f"{pct(ours, 50) / pct(theirs, 50):.2f}"])
            table(f"Store operations (ms, n={N})", ["op", "graphrun p50", "p99", "in-process p50", "p99", "ratio p50"],
                  rows)
        finally:
            await pool.close()
            await app.stop(grace=1)


if __name__ == "__main__":
    asyncio.run(main())
