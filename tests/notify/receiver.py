"""A real webhook receiver on a free loopback port, for the notifier's tests.

It behaves like the receivers a plant has: some attempts fail with 500, some hang past the client's timeout,
some answer slowly. It verifies the ``X-Cpkmon-Signature`` HMAC of signed paths itself (a bad signature gets
401 and is counted) and keeps every attempt and every successful delivery, so that tests can deduplicate by
``Idempotency-Key`` exactly as a real receiver would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# action for one attempt: "ok", "fail" (500), "hang" (no answer for HANG_S), "slow" (200 after SLOW_S),
# "reject" (400), or ("status", code, body)
Action = Any
HANG_S = 2.0
SLOW_S = 0.3


@dataclass(frozen=True)
class Delivery:
    path: str
    key: str
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``plan(path, key, attempt)`` decides each attempt (attempt counts from 1 per path and key)."""

    plan: Callable[[str, str, int], Action] = lambda path, key, attempt: "ok"
    secrets: dict[str, str] = field(default_factory=dict)  # path prefix → HMAC secret to verify
    deliveries: list[Delivery] = field(default_factory=list)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    bad_signatures: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                path = self.path.split("?", 1)[0]
                key = self.headers.get("Idempotency-Key", "")
                for prefix, secret in receiver.secrets.items():
                    if path.startswith(prefix):
                        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                        got = self.headers.get("X-Cpkmon-Signature", "")
                        if not hmac.compare_digest(want, got):
                            with receiver.lock:
                                receiver.bad_signatures.append((path, key))
                            self._answer(401, b"bad signature")
                            return
                with receiver.lock:
                    n = receiver.attempts.get((path, key), 0) + 1
                    receiver.attempts[(path, key)] = n
                action = receiver.plan(path, key, n)
                if action == "hang":
                    time.sleep(HANG_S)
                    self.close_connection = True
                    return
                if action == "fail":
                    self._answer(500, b"try again")
                    return
                if action == "reject":
                    self._answer(400, b"no")
                    return
                if isinstance(action, tuple):
                    self._answer(action[1], action[2])
                    return
                with receiver.lock:  # recorded when the receiver accepts it, before a slow answer
                    receiver.deliveries.append(Delivery(path, key, body, time.monotonic()))
                if action == "slow":
                    time.sleep(SLOW_S)
                self._answer(200, b'{"errcode":0,"errmsg":"ok"}')

            def _answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout) meanwhile
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def delivered(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == path]

    def first_deliveries(self, path: str) -> list[Delivery]:
        """Deduplicated by idempotency key, first arrival kept, in arrival order (what a receiver keeps)."""
        seen: set[str] = set()
        out: list[Delivery] = []
        for d in self.delivered(path):
            if d.key not in seen:
                seen.add(d.key)
                out.append(d)
        return out


def by_key_hash(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def troublesome(path: str, key: str, attempt: int) -> Action:
    """A receiver that fails, times out and answers slowly, deterministically per key: a third of the
    messages get 500 twice, a sixth hang on the first attempt, a sixth answer slowly."""
    h = by_key_hash(key) % 6
    if h in (0, 1) and attempt <= 2:
        return "fail"
    if h == 2 and attempt == 1:
        return "hang"
    if h == 3:
        return "slow"
    return "ok"
