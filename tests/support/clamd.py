"""A real ClamAV daemon with a signature database made here, so a test proves a real detection.

Public signature data cannot be downloaded on this machine; ClamAV's own `.ndb` format lets us
write one signature that matches a marker string, and clamd then detects it like any other.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CLAMD = "/usr/sbin/clamd"
MARKER = b"SATCHEL-TEST-SIGNATURE-7f3a9c"  # what the test signature matches
SIGNATURE = "Satchel.Test.Infected"


def available() -> bool:
    return Path(CLAMD).exists() or shutil.which("clamd") is not None


def require() -> None:
    """Fail where clamd must be (CI installs it), skip the test elsewhere."""
    import pytest

    if available():
        return
    if os.environ.get("CI"):
        pytest.fail("clamd is not installed (apt-get install clamav-daemon)")
    pytest.skip("clamd is not installed; install clamav-daemon to run the virus-scan tests")


@dataclass
class Clamd:
    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        database = self.root / "db"
        database.mkdir(parents=True, exist_ok=True)
        (database / "satchel.ndb").write_text(f"{SIGNATURE}:0:*:{MARKER.hex()}\n")
        config = self.root / "clamd.conf"
        config.write_text(
            f"TCPSocket {self.port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {database}\nForeground yes\n"
            "StreamMaxLength 100M\n" + ("User root\n" if os.geteuid() == 0 else "")
            # As root, stay root: the test's private folders are not readable by clamd's own user.
        )
        binary = CLAMD if Path(CLAMD).exists() else str(shutil.which("clamd"))
        self.process = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1) as sock:
                    sock.sendall(b"zPING\0")
                    if sock.recv(16).startswith(b"PONG"):
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("clamd did not start")

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(20)
