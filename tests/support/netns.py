"""Several hosts on one machine: Linux network namespaces joined by a bridge, made and removed by the test.

Each host is a network namespace with its own loopback and one address on a private /24; the root
namespace holds the bridge and its first address, so the test itself (and the backing services it
starts there) is one more host on that network. Nothing routes beyond the /24: the hosts reach only
each other. Names carry a per-run suffix, so two runs on one machine never touch each other's
namespaces, and ``Network.remove`` deletes only its own.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from support.processes import SatchelProcess


def require_namespaces() -> None:
    """Fail when CI cannot make network namespaces (CI must run these tests); elsewhere skip, saying why."""
    reason = None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        reason = "making network namespaces needs root"
    elif shutil.which("ip") is None:
        reason = "the ip command is missing (apt-get install iproute2)"
    else:
        probe = f"satchel-probe-{secrets.token_hex(3)}"
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
        subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
        if made.returncode != 0:
            reason = f"this machine refuses network namespaces ({made.stderr.strip()})"
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the multi-host tests.")
    pytest.skip(f"{reason}, so the multi-host tests cannot run")


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
    return done


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no route on this machine covers, so the test's hosts shadow nothing real."""
    routes = json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    taken = [
        ipaddress.ip_network(r["dst"], strict=False) for r in routes if r.get("dst", "default") not in ("default", "")
    ]
    for _ in range(100):
        subnet = ipaddress.ip_network(f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(subnet.overlaps(t) for t in taken):
            return subnet
    raise RuntimeError("no free 10.x.y.0/24 for the test network")


@dataclass(frozen=True)
class Host:
    """One machine of the test: a network namespace with one address."""

    name: str
    namespace: str
    address: str

    def command(self, *argv: str) -> list[str]:
        """``argv`` run on this host. ``ip netns exec`` execs it in place: the pid is the program's own."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def pids(self) -> list[int]:
        """Every process that still runs on this host."""
        found = _ip("netns", "pids", self.namespace, check=False).stdout.split()
        return [int(pid) for pid in found if pid.isdigit()]


@dataclass
class Network:
    """A bridge in the root namespace at the /24's first address, and hosts joined to it by veth pairs."""

    subnet: ipaddress.IPv4Network = field(default_factory=_free_subnet)
    run: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: list[Host] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"sb{self.run}"  # interface names: 15 characters at most

    @property
    def gateway(self) -> str:
        """The root namespace's address: where the test and the backing services it starts are reached."""
        return str(self.subnet.network_address + 1)

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        host = Host(name, f"satchel-{self.run}-{name}", str(self.subnet.network_address + 10 + index))
        outside, inside = f"s{self.run}{index}h", f"s{self.run}{index}n"
        _ip("netns", "add", host.namespace)
        self.hosts.append(host)  # from here on, remove() deletes it
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", host.namespace)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        _ip("link", "set", "lo", "up", namespace=host.namespace)
        _ip("addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", inside, namespace=host.namespace)
        _ip("link", "set", inside, "up", namespace=host.namespace)
        return host

    def remove(self) -> None:
        """Kill whatever still runs on the hosts (only this network's own processes), then delete it all."""
        for host in self.hosts:
            for pid in host.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _ip("netns", "delete", host.namespace, check=False)  # takes the veth pair with it
        for index in range(1, len(self.hosts) + 1):
            _ip("link", "delete", f"s{self.run}{index}h", check=False)  # already gone, unless its host was not
        _ip("link", "delete", self.bridge, check=False)


@contextlib.contextmanager
def network(*names: str) -> Iterator[Network]:
    """A network with a host for each of ``names``; removed afterwards, whatever happened."""
    net = Network()
    try:
        net.create()
        for name in names:
            net.add_host(name)
        yield net
    finally:
        net.remove()


class HostProcess(SatchelProcess):
    """``python -m satchel <args>`` on ``host``, with the same stdout collection as ``SatchelProcess``."""

    def __init__(self, host: Host, *args: str, env: dict[str, str], cwd: str | None = None) -> None:
        self.host = host
        super().__init__(*args, env=env, cwd=cwd, launcher=host.command())

    def kill(self) -> None:
        """SIGKILL to the process and every process it started, as a host that loses power."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
