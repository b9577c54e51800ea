"""TLS to the broker, for real: stunnel4 terminates TLS in front of the embedded broker, which advertises the
stunnel address, so every connection of every client — bootstrap and metadata-directed — is TLS.

- A CA file is enough for the worker, the API, ``cpkmon simulate`` and ``cpkmon replay``: events flow from
  both producers through the worker to the API.
- Mutual TLS (stunnel ``requireCert``): with a client certificate and key the stack works; without one every
  process stops (or the API reports not ready) with "requires a client certificate", within seconds.
- A wrong CA fails fast, naming the broker and the cause, for every process (time bound asserted).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cpkmon.broker import free_port
from tests.security.secure_kafka import STUNNEL, Pki, make_pki, tls_broker
from tests.stream.harness import Proc, base_env, running, start_api, start_worker

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.skipif(STUNNEL is None, reason="stunnel4 is not installed (apt-get install stunnel4)"),
]

# A failing process must be gone within this bound: Python + Faust imports take 2-4 s on this machine; the
# TLS failure itself is reported by the pre-flight check in milliseconds (measured: 8-20 ms).
FAIL_FAST_S = 15.0


def tls_env(bootstrap: str, tmp: Path, pki: Pki, client_cert: bool = False, **extra: str) -> dict[str, str]:
    env = base_env(bootstrap, tmp, CPKMON_KAFKA_SECURITY_PROTOCOL="SSL", CPKMON_KAFKA_SSL_CAFILE=str(pki.ca))
    if client_cert:
        env.update(
            CPKMON_KAFKA_SSL_CERTFILE=str(pki.client_cert), CPKMON_KAFKA_SSL_KEYFILE=str(pki.client_key)
        )
    env.update(CPKMON_PARTITIONS="2", **extra)
    return env


def cli(args: list[str], env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cpkmon.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def replay_file(tmp: Path, line: str = "R1", subgroups: int = 6) -> Path:
    """A spec and ``subgroups`` × 5 measurements of one characteristic, as JSON lines."""
    docs: list[dict[str, Any]] = [
        {"line": line, "characteristic": "bore", "lsl": 9.0, "usl": 11.0, "subgroup_size": 5}
    ]
    for g in range(subgroups):
        for i in range(5):
            docs.append({
                "event_id": f"{line}-{g}-{i}", "ts": 1_764_000_000_000 + g * 1000 + i, "line": line,
                "station": "S1", "characteristic": "bore", "value": 10.0 + ((g * 5 + i) % 7 - 3) * 0.01,
                "subgroup": f"g{g}",
            })  # fmt: skip
    path = tmp / f"{line}.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def run_stack(env: dict[str, str], tmp: Path) -> None:
    """Worker + API over TLS; replay and simulate publish over TLS; both producers' lines reach the API."""
    worker = start_worker(env, tmp)
    api = start_api(env, tmp)
    with running(api, worker):
        res = cli(["replay", str(replay_file(tmp))], env)
        assert res.returncode == 0, res.stderr
        assert "cpkmon.measurements: 30" in res.stdout
        res = cli(["simulate", "--lines", "2", "--rate", "300", "--duration", "3"], env)
        assert res.returncode == 0, res.stderr

        def all_lines() -> bool:
            status, lines = get(api.url("/api/v1/lines"))
            return status == 200 and {"R1", "L1", "L2"} <= {row["line"] for row in lines}

        wait_for(all_lines, 30, "lines R1 (replay), L1, L2 (simulate) in the API")
        status, doc = get(api.url("/api/v1/lines/R1"))
        assert status == 200
        assert doc["characteristics"][0]["values_total"] == 30  # every replayed value counted once
        status, ready = get(api.url("/readyz"))
        assert status == 200 and ready["reason"] is None
        health = worker.get("/healthz")
        assert health["lines"] >= 3


def up_over_tls(env: dict[str, str], tmp: Path) -> None:
    """``cpkmon up --demo`` against the TLS broker: its worker, API and simulator inherit the settings."""
    api_port, worker_port = free_port(), free_port()
    up_env = dict(env, CPKMON_API_PORT=str(api_port), CPKMON_WORKER_PORT=str(worker_port),
                  CPKMON_DATA_DIR=str(tmp / "up"))  # fmt: skip
    log = (tmp / "up.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpkmon.cli", "up", "--demo", "--lines", "3", "--rate", "300",
         "--duration", "20"],
        env=up_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        def l3() -> bool:
            try:
                status, lines = get(f"http://127.0.0.1:{api_port}/api/v1/lines")
            except OSError:
                return False
            return status == 200 and "L3" in {row["line"] for row in lines}

        wait_for(l3, 30, "cpkmon up --demo: line L3 in its API")
        assert proc.wait(timeout=40) == 0, (tmp / "up.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        log.close()


def test_tls_with_a_ca_file_end_to_end(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with tls_broker(tmp_path, pki) as tunnel:
        env = tls_env(f"127.0.0.1:{tunnel.port}", tmp_path, pki)
        run_stack(env, tmp_path)
        # the standalone example producer reads the same variables
        example = REPO / "deploy" / "examples" / "producer.py"
        res = subprocess.run(
            [sys.executable, str(example), "--bootstrap", f"127.0.0.1:{tunnel.port}", "--line", "X1"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.returncode == 0 and len(res.stdout.split()) == 3, res.stdout + res.stderr
        up_over_tls(env, tmp_path)
        log = tunnel.log.read_text()
    # the traffic really went through the TLS terminator (worker, API, replay, simulate, their metadata hops)
    assert log.count("accepted connection") >= 8, log[-2000:]


def expect_fast_failure(args: list[str], env: dict[str, str], tmp: Path, *needles: str) -> float:
    """Run a cpkmon command that must fail: non-zero within FAIL_FAST_S, output naming every needle."""
    t0 = time.monotonic()
    res = cli(args, env, timeout=FAIL_FAST_S + 30)
    took = time.monotonic() - t0
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    for needle in needles:
        assert needle in out, f"{args}: {needle!r} not in output:\n{out[-3000:]}"
    assert took < FAIL_FAST_S, f"{args} took {took:.1f} s to fail"
    print(f"{args[0]}: failed in {took:.2f} s")
    return took


def api_not_ready_with_reason(env: dict[str, str], tmp: Path, *needles: str) -> dict[str, Any]:
    port = free_port()
    api = Proc(["api", "--log-level", "warning"], dict(env, CPKMON_API_PORT=str(port)), port, tmp / "api.log")
    api.start()
    with running(api):
        t0 = time.monotonic()

        def reason() -> dict[str, Any] | None:
            try:
                status, body = get(api.url("/readyz"))
            except OSError:
                return None
            return body if status == 503 and body.get("reason") else None

        body = wait_for(reason, FAIL_FAST_S, "/readyz with a reason")
        print(f"api: /readyz reason after {time.monotonic() - t0:.2f} s")
    for needle in needles:
        assert needle in body["reason"], body
    return body


def test_mutual_tls_with_and_without_a_client_certificate(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    with tls_broker(tmp_path, pki, require_client_cert=True) as tunnel:
        bootstrap = f"127.0.0.1:{tunnel.port}"
        # without a client certificate: every process says so, fast
        env = tls_env(bootstrap, tmp_path, pki)
        # TLS 1.3: the server's "certificate required" alert arrives after the handshake, and sometimes only
        # the closed connection does; both messages name the missing client certificate and its variable
        need = "client certificate (set CPKMON_KAFKA_SSL_CERTFILE"
        worker_env = dict(env, CPKMON_WORKER_PORT=str(free_port()))
        expect_fast_failure(["worker"], worker_env, tmp_path, bootstrap, need)
        expect_fast_failure(["replay", str(replay_file(tmp_path))], env, tmp_path, bootstrap, need)
        expect_fast_failure(["simulate", "--duration", "1"], env, tmp_path, bootstrap, need)
        api_not_ready_with_reason(env, tmp_path, bootstrap, need)
        # a client certificate of another CA: refused by the broker, said so
        other = make_pki(tmp_path / "other", ca_cn="some other CA")
        env = dict(env, CPKMON_KAFKA_SSL_CERTFILE=str(other.client_cert),
                   CPKMON_KAFKA_SSL_KEYFILE=str(other.client_key))  # fmt: skip
        replay = ["replay", str(replay_file(tmp_path))]
        expect_fast_failure(replay, env, tmp_path, bootstrap, "client certificate")
        # with one of ours: the whole stack works
        run_stack(tls_env(bootstrap, tmp_path, pki, client_cert=True), tmp_path)


def test_wrong_ca_fails_fast_and_clearly(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", ca_cn="some other CA")
    with tls_broker(tmp_path, pki) as tunnel:
        bootstrap = f"127.0.0.1:{tunnel.port}"
        env = base_env(
            bootstrap, tmp_path, CPKMON_KAFKA_SECURITY_PROTOCOL="SSL", CPKMON_KAFKA_SSL_CAFILE=str(other.ca)
        )
        need = "certificate is not trusted"
        worker_env = dict(env, CPKMON_WORKER_PORT=str(free_port()))
        took = expect_fast_failure(["worker"], worker_env, tmp_path, bootstrap, need, str(other.ca))
        expect_fast_failure(["replay", str(replay_file(tmp_path))], env, tmp_path, bootstrap, need)
        expect_fast_failure(["simulate", "--duration", "1"], env, tmp_path, bootstrap, need)
        port = free_port()
        expect_fast_failure(["up"], dict(env, CPKMON_API_PORT=str(port)), tmp_path, bootstrap, need)
        api_not_ready_with_reason(env, tmp_path, bootstrap, need)
    assert took < FAIL_FAST_S
