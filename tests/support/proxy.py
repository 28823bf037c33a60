"""A round-robin TCP load balancer on loopback, standing in for the one in front of several web processes;
and a faulty link to one backend (slow, cut or stalled replies), standing in for a flaky network.

Each new connection goes to the next backend that accepts it (a dead one is skipped), and the
balancer keeps count of what each connection carried, so a test can tell which process is
receiving an upload right now.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from satchel.runtime.embedded import free_port


@dataclass
class Connection:
    backend: int
    sent: int = 0  # bytes from the client to the backend
    open: bool = True


@dataclass(kw_only=True)
class _Listener:
    """A loopback port accepting connections in a thread of its own; ``_accepted`` takes each one."""

    port: int = field(default_factory=free_port)
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

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            self._accepted(client)

    def _accepted(self, client: socket.socket) -> None:
        raise NotImplementedError


@dataclass
class RoundRobinProxy(_Listener):
    backends: list[tuple[str, int]]
    connections: list[Connection] = field(default_factory=list)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def bytes_sent(self) -> int:
        with self._lock:
            return sum(c.sent for c in self.connections)

    def receiving(self) -> Connection | None:
        """The open connection that carried the most request bytes: the one an upload is going through."""
        with self._lock:
            open_ = [c for c in self.connections if c.open]
            return max(open_, key=lambda c: c.sent, default=None)

    def _accepted(self, client: socket.socket) -> None:
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


@dataclass
class FaultyLink(_Listener):
    """A TCP link to one backend that misbehaves on the way back, as a flaky network does.

    ``pause`` slows every 64 KiB sent back (slow, but always progressing); the first ``cuts``
    connections are cut once ``cut_after`` bytes came back on them (``on_cut`` runs first), and
    the first connection stalls for ``stall`` seconds once ``stall_after`` bytes came back.
    """

    backend: tuple[str, int]
    pause: float = 0.0
    cut_after: int = 0
    cuts: int = 0
    on_cut: Callable[[], None] | None = None
    stall_after: int = 0
    stall: float = 0.0
    connections: int = 0
    cut: int = 0  # connections cut so far
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _accepted(self, client: socket.socket) -> None:
        with self._lock:
            self.connections += 1
            number = self.connections
        threading.Thread(target=self._serve, args=(client, number), daemon=True).start()

    def _serve(self, client: socket.socket, number: int) -> None:
        upstream = socket.create_connection(self.backend, timeout=5)
        upstream.settimeout(None)
        threading.Thread(target=_forward, args=(client, upstream), daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(64 * 1024):
                if self._cuts_now(sent + len(data)):
                    client.sendall(data[: self.cut_after - sent])
                    if self.on_cut is not None:
                        self.on_cut()
                    break
                if number == 1 and self.stall and sent < self.stall_after <= sent + len(data):
                    time.sleep(self.stall)
                client.sendall(data)
                sent += len(data)
                if self.pause:
                    time.sleep(self.pause)
        except OSError:
            pass
        finally:
            _close(client, upstream)

    def _cuts_now(self, sent: int) -> bool:
        with self._lock:
            if not self.cuts or self.cut >= self.cuts or sent <= self.cut_after:
                return False
            self.cut += 1
            return True


def _forward(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(1 << 20):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(source, target)


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
