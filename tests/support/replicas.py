"""Real graphrun server processes (`python -m graphrun_server`) on the test database,
for tests of what happens across replicas: takeovers, kills, drains."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import grpc

from graphrun.v1 import run_service_pb2_grpc, thread_service_pb2_grpc

STARTUP_TIMEOUT = 30


class Replica:
    """`argv` replaces `python -m graphrun_server` (e.g. the `graphrun serve` command, as a user
    starts it); `cwd` is the folder it starts in."""

    def __init__(self, name: str, database_url: str, config: str, *, argv: list[str] | None = None,
                 cwd: str | None = None, **settings: str):
        self.name = name
        self.argv, self.cwd = argv or [sys.executable, "-m", "graphrun_server"], cwd
        self.env = {**os.environ, "GRAPHRUN_DATABASE_URL": database_url, "GRAPHRUN_CONFIG": config,
                    "GRAPHRUN_PORT": "0", "GRAPHRUN_HOST": "127.0.0.1", "GRAPHRUN_LOG_LEVEL": "INFO",
                    **{f"GRAPHRUN_{k.upper()}": str(v) for k, v in settings.items()}}
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0
        self.log: list[str] = []
        self._logged = asyncio.Condition()
        self.channel: grpc.aio.Channel | None = None

    async def start(self) -> Replica:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read_log())
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), STARTUP_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"replica {self.name} did not start in time:\n" + "".join(self.log)) from None
        ready = json.loads(line)["message"] if line.startswith(b"{") else line.decode()  # JSON logs: JSON too
        if not ready.startswith("graphrun serving on"):
            raise RuntimeError(f"replica {self.name} did not start: {line!r}\n" + "".join(self.log))
        self.port = int(ready.rsplit(":", 1)[1])
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")
        self.runs = run_service_pb2_grpc.RunServiceStub(self.channel)
        self.threads = thread_service_pb2_grpc.ThreadServiceStub(self.channel)
        return self

    async def _read_log(self) -> None:
        async for line in self.proc.stderr:
            async with self._logged:
                self.log.append(line.decode(errors="replace"))
                self._logged.notify_all()

    async def wait_for_log(self, text: str, timeout: float = 60) -> str:
        """Wait until the replica logs a line containing text (reading its stderr, no polling)."""
        async def found():
            async with self._logged:
                while True:
                    for line in self.log:
                        if text in line:
                            return line
                    await self._logged.wait()
        return await asyncio.wait_for(found(), timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    async def exited(self, timeout: float = 60) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def close(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
                self.proc.kill()
            except ProcessLookupError:
                pass
            await self.proc.wait()
        if getattr(self, "_reader", None):
            await asyncio.gather(self._reader, return_exceptions=True)
