"""A round-robin TCP load balancer on loopback, standing in for the one in front of several web processes.

Each new connection goes to the next backend that accepts it (a dead one is skipped), and the
balancer keeps count of what each connection carried, so a test can tell which process is
receiving an upload right now.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field

from satchel.runtime.embedded import free_port


@dataclass
class Connection:
    backend: int
    sent: int = 0  # bytes from the client to the backend
    open: bool = True


@dataclass
class RoundRobinProxy:
    backends: list[tuple[str, int]]
    port: int = field(default_factory=free_port)
    connections: list[Connection] = field(default_factory=list)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self._server.close()

    def bytes_sent(self) -> int:
        with self._lock:
            return sum(c.sent for c in self.connections)

    def receiving(self) -> Connection | None:
        """The open connection that carried the most request bytes: the one an upload is going through."""
        with self._lock:
            open_ = [c for c in self.connections if c.open]
            return max(open_, key=lambda c: c.sent, default=None)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _connect(self) -> tuple[socket.socket, int] | None:
        with self._lock:
            first = self._next
            self._next = (self._next + 1) % len(self.backends)
        for step in range(len(self.backends)):
            index = (first + step) % len(self.backends)
            try:
                return socket.create_connection(self.backends[index], timeout=2), index
            except OSError:
                continue  # that process is down: the next one takes it
        return None

    def _serve(self, client: socket.socket) -> None:
        found = self._connect()
        if found is None:
            client.close()
            return
        upstream, index = found
        upstream.settimeout(None)
        connection = Connection(index)
        with self._lock:
            self.connections.append(connection)
        back = threading.Thread(target=self._pipe, args=(upstream, client, None), daemon=True)
        back.start()
        self._pipe(client, upstream, connection)
        back.join(5)
        connection.open = False

    def _pipe(self, source: socket.socket, target: socket.socket, counted: Connection | None) -> None:
        try:
            while data := source.recv(1 << 20):
                target.sendall(data)
                if counted is not None:
                    counted.sent += len(data)
        except OSError:
            pass  # either side went away: close both, as a balancer does
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
