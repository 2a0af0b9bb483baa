import json
from graphrun import AsyncClient

async def test_explore(server):
    async with AsyncClient(f"127.0.0.1:{server.port}") as client:
        r = await client.wait("agent", {"messages": [{"role": "user", "content": "Wann wurde die Heizungsanlage gewartet?"}]})
        print(json.dumps({"run": r.run, "state": r.state}, indent=1, ensure_ascii=False))
        async for e in client.stream("agent", {"messages": [{"role": "user", "content": "Wann wurde die Heizungsanlage gewartet?"}]}, stream_mode=["messages", "tasks"]):
            print(e.sequence, e.kind, json.dumps(e.data, ensure_ascii=False)[:300])
        try:
            async for e in client.stream("steps", {"fail_at": "second"}, stream_mode=["updates", "custom"]):
                print(e.sequence, e.kind, json.dumps(e.data, ensure_ascii=False)[:300])
        except Exception as exc:
            print(repr(exc), exc.run_id, exc.thread_id, exc.metadata)
        print(await client.health())
        print(await client.list_assistants())
