"""A TCP proxy between one replica and PostgreSQL that a test can cut in the ways networks fail.

- `forward()`: bytes pass both ways (the default, and how a partition heals).
- `blackhole()`: a silent partition. Every socket stays open, new connections are
  accepted, and every byte in either direction is read and dropped: nothing
  answers, nothing closes (a side that closes meanwhile is seen closing by the
  other only once the partition heals), as when a switch dies or a firewall rule
  drops packets.
- `reset()`: every open connection is reset (RST) at once, as when a peer restarts;
  new connections are forwarded.

Threads, not asyncio: the proxy must keep doing its job while the test's event
loop waits on something else.
"""

from __future__ import annotations

import socket
import struct
import threading

FORWARD, BLACKHOLE = "forward", "blackhole"


class _Pair:
    """One proxied connection: the client's socket and ours to the target."""

    def __init__(self, client: socket.socket, server: socket.socket):
        self.sockets = (client, server)
        self.reset = False


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.mode = FORWARD
        self._healed = threading.Condition()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[_Pair] = []
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def dsn(self, database_url: str) -> str:
        """database_url (a postgresql:// URL to the target) with this proxy as its host and port."""
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(database_url)
        params.update(host="127.0.0.1", port=str(self.port))
        return make_conninfo(**params)

    def forward(self) -> None:
        with self._healed:
            self.mode = FORWARD
            self._healed.notify_all()

    def blackhole(self) -> None:
        self.mode = BLACKHOLE

    def reset(self) -> int:
        """Reset every open connection (both sides); returns how many there were.

        A socket closed while another thread waits in recv() on it is only released (and the
        RST sent) once that recv() returns: so each pump is woken (shutdown for reading sends
        nothing to the peer) and closes its sockets itself, with SO_LINGER 0: RST, not FIN."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.reset = True
            for sock in pair.sockets:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        with self._healed:
            self._healed.notify_all()
        return len(pairs)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.forward()
        self.reset()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = _Pair(client, server)
            with self._lock:
                self._pairs.append(pair)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(pair, source, sink), name="proxy-pump",
                                 daemon=True).start()

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket) -> None:
        """Copy source to sink while forwarding; drop what comes while blackholed."""
        try:
            while chunk := source.recv(65536):
                if self.mode == FORWARD and not pair.reset:
                    sink.sendall(chunk)
        except OSError:
            pass
        with self._healed:  # a goodbye crosses a partition only once it heals
            self._healed.wait_for(lambda: self.mode == FORWARD or pair.reset)
        if not pair.reset:  # one side closed: close the other too, as a real connection ends
            for sock in pair.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for sock in pair.sockets:
            sock.close()  # with SO_LINGER 0 after a reset: RST
        with self._lock:
            if pair in self._pairs:
                self._pairs.remove(pair)
