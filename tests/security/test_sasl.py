"""SASL against the embedded broker (Tansu 0.6.0 ``--authentication``), and secrets that never leak.

What the broker accepts, found by reading its source (tansu-io/tansu at v0.6.0) and measured here:

- it offers SCRAM-SHA-512, SCRAM-SHA-256 and OAUTHBEARER (its SaslHandshake debug log: ``available=[...]``);
  PLAIN is not compiled into this build — a PLAIN handshake makes it drop the connection (NoSharedMechanism);
- OAUTHBEARER has no validator callback, so every OAUTHBEARER login fails;
- SCRAM credentials are looked up in the storage engine, and the only engine in this binary (``dynostore``:
  ``memory://``, ``s3://``) stores none — ``upsert_user_scram_credential`` is a no-op and
  ``user_scram_credential`` always answers "no such user" — and with ``--authentication`` even
  ``tansu user create`` is refused (it does not log in first).

So no SASL login can succeed on the embedded broker; what is testable here, and tested, is that every
mechanism cpkmon offers reaches the broker's SASL step (over plaintext and over TLS) and that a rejected login
ends each process within seconds with a message naming the broker, mechanism and user — never the password.
A successful SCRAM login is tested only on paper (README, "Security (TLS and SASL)").
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cpkmon.broker import EmbeddedBroker, free_port, tansu_binary
from cpkmon.kafka_security import BrokerConnectionError, check_broker
from cpkmon.settings import Settings
from tests.security.secure_kafka import STUNNEL, Stunnel, make_pki
from tests.security.test_tls import FAIL_FAST_S, cli, replay_file, wait_for
from tests.stream.harness import Proc, base_env, running

pytestmark = [pytest.mark.broker]

# distinctive, so that a grep for it cannot match anything by chance
PASSWORD = "Zq9-pw-7f3a1c-never-logged"
USER = "cpkmon-svc"


@pytest.fixture(scope="module")
def auth_broker() -> Any:
    with EmbeddedBroker(authentication=True) as broker:
        yield broker


def sasl_settings(bootstrap: str, mechanism: str, protocol: str = "SASL_PLAINTEXT", **extra: Any) -> Settings:
    return Settings(
        broker=f"kafka://{bootstrap}",
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        **extra,
    )


def failure(settings: Settings) -> tuple[str, float]:
    t0 = time.monotonic()
    with pytest.raises(BrokerConnectionError) as info:
        asyncio.run(check_broker(settings, timeout=10))
    return str(info.value), time.monotonic() - t0


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_rejected_login_fails_fast_and_clearly(auth_broker: EmbeddedBroker, mechanism: str) -> None:
    message, took = failure(sasl_settings(auth_broker.bootstrap, mechanism))
    assert f"SASL {mechanism} authentication failed for user '{USER}'" in message
    assert auth_broker.bootstrap in message and PASSWORD not in message
    assert took < 2.0, took


def test_plain_is_not_offered_by_this_broker_and_says_so(auth_broker: EmbeddedBroker) -> None:
    message, took = failure(sasl_settings(auth_broker.bootstrap, "PLAIN"))
    assert "during the SASL PLAIN login" in message and "may not offer PLAIN" in message
    assert PASSWORD not in message and took < 2.0


def test_a_client_without_sasl_is_told_the_broker_may_require_it(auth_broker: EmbeddedBroker) -> None:
    message, took = failure(Settings(broker=f"kafka://{auth_broker.bootstrap}"))
    assert "it may require SASL" in message and took < 2.0


def test_users_cannot_be_created_on_the_authenticating_embedded_broker(auth_broker: EmbeddedBroker) -> None:
    """The measured fact behind "no SASL success test here": Tansu's own user tool is refused."""
    res = subprocess.run(
        [tansu_binary(), "user", "create", "--broker", f"tcp://{auth_broker.bootstrap}", USER, PASSWORD,
         "--mechanism", "scram512"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode != 0


@pytest.mark.skipif(STUNNEL is None, reason="stunnel4 is not installed")
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_reaches_the_sasl_step_through_tls(
    auth_broker: EmbeddedBroker, tmp_path: Path, mechanism: str
) -> None:
    """SASL_SSL: TLS first (our CA, stunnel), then the SASL exchange inside it — rejected at the SASL step,
    which proves the TLS part was accepted and SASL ran over it."""
    pki = make_pki(tmp_path / "pki")
    tunnel = Stunnel(auth_broker.port, pki, tmp_path).start()
    try:
        settings = sasl_settings(
            f"127.0.0.1:{tunnel.port}", mechanism, protocol="SASL_SSL", kafka_ssl_cafile=pki.ca
        )
        # the SASL rejection on the bootstrap connection ends the check (before any advertised broker)
        message, took = failure(settings)
    finally:
        tunnel.stop()
    assert f"SASL {mechanism} authentication failed for user '{USER}'" in message, message
    assert "SASL_SSL" in message and str(pki.ca) in message and took < 2.0


@pytest.mark.slow
def test_processes_fail_fast_and_never_show_the_password(auth_broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = base_env(
        auth_broker.bootstrap,
        tmp_path,
        CPKMON_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        CPKMON_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        CPKMON_KAFKA_SASL_USERNAME=USER,
        CPKMON_KAFKA_SASL_PASSWORD=PASSWORD,
        CPKMON_API_KEYS="ops:k-123",
    )
    need = f"SASL SCRAM-SHA-512 authentication failed for user '{USER}'"
    seen: list[str] = []
    for args in (
        ["worker", "--loglevel", "debug"],
        ["replay", str(replay_file(tmp_path))],
        ["simulate", "--duration", "1"],
        ["up"],
    ):
        t0 = time.monotonic()
        res = cli(args, dict(env, CPKMON_WORKER_PORT=str(free_port()), CPKMON_API_PORT=str(free_port())))
        took = time.monotonic() - t0
        out = res.stdout + res.stderr
        seen.append(out)
        assert res.returncode != 0 and need in out and auth_broker.bootstrap in out, out[-3000:]
        assert took < FAIL_FAST_S, (args, took)
        print(f"{args[0]}: failed in {took:.2f} s")

    port = free_port()
    api_env = dict(env, CPKMON_API_PORT=str(port))
    api = Proc(["api", "--log-level", "debug"], api_env, port, tmp_path / "api.log")
    api.start()
    with running(api):
        base = api.url("")

        def not_ready_with_reason() -> dict[str, Any] | None:
            try:
                r = httpx.get(base + "/readyz", timeout=2)
            except httpx.HTTPError:
                return None
            return r.json() if r.status_code == 503 and r.json().get("reason") else None

        ready = wait_for(not_ready_with_reason, FAIL_FAST_S, "/readyz with a reason")
        assert need in ready["reason"]
        auth = {"Authorization": "Bearer k-123"}
        responses = [
            httpx.get(base + "/readyz"),
            httpx.get(base + "/metrics"),
            httpx.get(base + "/api/v1/lines"),
            httpx.get(base + "/api/v1/alerts"),
            httpx.put(base + "/api/v1/specs/L1/bore", json={"lsl": 1, "usl": 2}, headers=auth, timeout=30),
            httpx.post(base + "/api/v1/alerts/a1/ack", json={}, headers=auth, timeout=30),
        ]
        time.sleep(0.5)
    assert responses[4].status_code == 503  # a problem document: no broker to take the write
    seen += [r.text for r in responses]
    seen.append(api.log.read_text())
    seen.append("\n".join(str(p) for p in tmp_path.rglob("*")))
    for text in seen:
        assert PASSWORD not in text
