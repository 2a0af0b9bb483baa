"""A PostgreSQL the test starts, stops and starts again itself, for database-outage tests.

It uses the binaries pgserver ships in its wheel (a runtime dependency of
graphrun), so it works wherever `make test` does. It listens on 127.0.0.1 at a
fixed free port, so a restarted server is found at the same address. PostgreSQL
refuses to run as root: as root it runs as pgserver's `pgserver` user.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import tempfile

from pgserver import _commands as pg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnPostgres:
    def __init__(self) -> None:
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="graphrun-outage-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = None
        self.running = False
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command, args: list[str]) -> str:
        return command(args, pgdata=self.data, user=self.user, timeout=60)

    def init(self) -> OwnPostgres:
        self.data.mkdir()
        if os.geteuid() == 0:
            from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists("pgserver")
            ensure_prefix_permissions(pg.POSTGRES_BIN_PATH)  # as pgserver's embedded mode does for its data
            self.user = "pgserver"
            self.root.chmod(0o755)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)
        self._run(pg.initdb, ["--auth=trust", "--encoding=utf8", "-U", "postgres"])
        return self

    def start(self) -> None:
        self._run(pg.pg_ctl, ["-w", "-l", str(self.data / "server.log"),
                              "-o", f"-p {self.port} -h 127.0.0.1 -c unix_socket_directories=''", "start"])
        self.running = True

    def stop(self) -> None:
        """A fast shutdown, as in a restart or failover: open sessions are terminated."""
        self._run(pg.pg_ctl, ["-w", "-m", "fast", "stop"])
        self.running = False

    def destroy(self) -> None:
        if self.running:
            self._run(pg.pg_ctl, ["-w", "-m", "immediate", "stop"])
            self.running = False
        shutil.rmtree(self.root, ignore_errors=True)
