"""A PostgreSQL the test starts, stops and starts again itself, for database-outage tests.

It uses the binaries pgserver ships in its wheel (a runtime dependency of
graphrun), so it works wherever `make test` does. It listens on 127.0.0.1 at a
fixed free port, so a restarted server is found at the same address. PostgreSQL
refuses to run as root: as root it runs as pgserver's `pgserver` user, with the
same permission fixes pgserver's embedded mode makes.

The server process is started and signalled directly rather than through
pg_ctl: stop() is a fast shutdown (SIGINT), as in a restart or failover.
`standby()` makes a streaming standby of it with pg_basebackup (see
`BASEBACKUP`), which `promote()` turns into a primary, for failover tests.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import psycopg
from pgserver import _commands as pg

READY_WITHIN = 60.0  # seconds for the server to accept connections
BASEBACKUP = pg.POSTGRES_BIN_PATH / "pg_basebackup"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnPostgres:
    """`settings`: server settings given on its command line (so a base backup does not copy them)."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        self.settings = settings or {}
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="graphrun-outage-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.user: str | None = None
        self.process: subprocess.Popen | None = None
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> OwnPostgres:
        self.data.mkdir()
        if os.geteuid() == 0:
            self._open_to_pgserver_user()
        pg.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.data,
                  user=self.user, cwd=self.root, timeout=120)
        return self

    def _open_to_pgserver_user(self) -> None:
        import stat

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists("pgserver")
        read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(pg.POSTGRES_BIN_PATH)
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH.parent / "lib", read)
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH.parent / "share", read)
        ensure_prefix_permissions(self.data)
        self.root.chmod(0o755)
        os.chown(self.data, entry.pw_uid, entry.pw_gid)
        self.log.touch()
        os.chown(self.log, entry.pw_uid, entry.pw_gid)
        self.user = "pgserver"

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [str(pg.POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-h", "127.0.0.1", "-c", "unix_socket_directories=",
                 *(arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}"))],
                user=self.user, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres not ready after {READY_WITHIN}s:\n{self.log.read_text()}")
                time.sleep(0.05)  # polling a readiness condition, not synchronising with the code under test

    def standby(self) -> OwnPostgres:
        """A new server streaming from this one (pg_basebackup -R), not started yet."""
        standby = OwnPostgres()
        standby.user = self.user
        standby.data.mkdir(mode=0o700)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            standby.root.chmod(0o755)
            for path in (standby.data, standby.log):
                path.touch()
                os.chown(path, entry.pw_uid, entry.pw_gid)
        subprocess.run([str(BASEBACKUP), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                        "-D", str(standby.data), "-R", "-X", "stream", "--checkpoint=fast"],
                       user=self.user, cwd=standby.root, check=True, capture_output=True, timeout=120)
        return standby

    def promote(self) -> None:
        """Make this standby a primary (and wait until it is one)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT pg_promote(wait => true)").fetchone()[0]

    def stop(self, sig: int = signal.SIGINT) -> None:
        """SIGINT is PostgreSQL's fast shutdown: open sessions are terminated, as in a restart."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=60)
        self.process = None

    def destroy(self) -> None:
        try:
            self.stop(signal.SIGQUIT)  # immediate shutdown
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
