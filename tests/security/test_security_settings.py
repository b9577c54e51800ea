"""The security settings (names are a contract), their validation, the client arguments they become, that
every Kafka client in the code receives them, and that the password never shows."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from cpkmon.kafka_security import (
    aiokafka_kwargs,
    describe,
    faust_credentials,
    kafka_python_kwargs,
    ssl_context,
)
from cpkmon.settings import Settings
from tests.security.secure_kafka import Pki, make_pki

REPO = Path(__file__).resolve().parents[2]
SECRET = "Hx7-s3cr3t-pw-4d1e"
ENV_NAMES = (
    "CPKMON_KAFKA_SECURITY_PROTOCOL", "CPKMON_KAFKA_SSL_CAFILE", "CPKMON_KAFKA_SSL_CERTFILE",
    "CPKMON_KAFKA_SSL_KEYFILE", "CPKMON_KAFKA_SASL_MECHANISM", "CPKMON_KAFKA_SASL_USERNAME",
    "CPKMON_KAFKA_SASL_PASSWORD",
)  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for key in list(os.environ):
        if key.startswith("CPKMON_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_the_contract_env_names(clean_env: pytest.MonkeyPatch, pki: Pki) -> None:
    values = dict(zip(ENV_NAMES, (
        "sasl_ssl", str(pki.ca), str(pki.client_cert), str(pki.client_key), "scram-sha-512", "svc", SECRET,
    ), strict=True))  # fmt: skip
    for k, v in values.items():
        clean_env.setenv(k, v)
    s = Settings()
    assert s.kafka_security_protocol == "SASL_SSL" and s.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert (s.kafka_ssl_cafile, s.kafka_ssl_certfile, s.kafka_ssl_keyfile) == (
        pki.ca, pki.client_cert, pki.client_key
    )
    assert s.kafka_sasl_username == "svc"
    assert s.kafka_sasl_password is not None and s.kafka_sasl_password.get_secret_value() == SECRET


def test_defaults_are_plaintext_and_empty_values_mean_unset(clean_env: pytest.MonkeyPatch) -> None:
    assert Settings().kafka_security_protocol == "PLAINTEXT"
    for k in ENV_NAMES[1:]:
        clean_env.setenv(k, "")  # compose's ${VAR:-}
    s = Settings()
    assert s.kafka_ssl_cafile is None and s.kafka_sasl_password is None and s.kafka_sasl_mechanism is None
    assert aiokafka_kwargs(s) == {"security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs CPKMON_KAFKA_SASL_MECHANISM"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
          "kafka_sasl_password": SECRET}, "needs CPKMON_KAFKA_SASL_USERNAME"),
        ({"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN",
          "kafka_sasl_username": "u"}, "needs CPKMON_KAFKA_SASL_PASSWORD"),
        ({"kafka_sasl_username": "u", "kafka_sasl_password": SECRET}, "CPKMON_KAFKA_SASL_* are set but"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"},
         "CPKMON_KAFKA_SSL_CAFILE=/nonexistent/ca.pem: not a readable file"),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "GSSAPI", "kafka_sasl_username": "u",
          "kafka_sasl_password": SECRET}, "kafka_sasl_mechanism"),
    ],
)  # fmt: skip
def test_inconsistent_settings_are_refused_naming_the_variable(
    clean_env: pytest.MonkeyPatch, fields: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**fields)
    assert needle in str(info.value)
    assert SECRET not in str(info.value)  # pydantic would print the inputs: hide_input_in_errors


def test_tls_files_must_agree(clean_env: pytest.MonkeyPatch, pki: Pki) -> None:
    with pytest.raises(ValidationError, match="CERTFILE and CPKMON_KAFKA_SSL_KEYFILE go together"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki.ca, kafka_ssl_certfile=pki.client_cert)
    with pytest.raises(ValidationError, match="CPKMON_KAFKA_SSL_\\* are set but"):
        Settings(kafka_ssl_cafile=pki.ca)


def sasl_ssl(pki: Pki, **extra: Any) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=pki.ca,
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="svc",
        kafka_sasl_password=SECRET,
        **extra,
    )


def test_the_password_never_shows(clean_env: pytest.MonkeyPatch, pki: Pki) -> None:
    s = sasl_ssl(pki)
    for text in (repr(s), str(s), s.model_dump_json(), str(s.model_dump()), describe(s)):
        assert SECRET not in text
    assert describe(s) == f"SASL_SSL (SCRAM-SHA-256 as 'svc', CA {pki.ca})"
    creds = faust_credentials(s)
    assert SECRET not in repr(creds)


def test_client_arguments_per_protocol(clean_env: pytest.MonkeyPatch, pki: Pki) -> None:
    s = sasl_ssl(pki)
    kw = aiokafka_kwargs(s)
    assert kw["security_protocol"] == "SASL_SSL"
    assert (kw["sasl_mechanism"], kw["sasl_plain_username"], kw["sasl_plain_password"]) == (
        "SCRAM-SHA-256", "svc", SECRET
    )
    ctx = kw["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert kafka_python_kwargs(s).keys() == kw.keys()
    tls = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=pki.ca,
        kafka_ssl_certfile=pki.client_cert,
        kafka_ssl_keyfile=pki.client_key,
        kafka_ssl_check_hostname=False,
    )
    kw = aiokafka_kwargs(tls)
    assert set(kw) == {"security_protocol", "ssl_context"} and not kw["ssl_context"].check_hostname
    assert ssl_context(Settings()) is None


def test_faust_credentials_give_the_same_aiokafka_arguments(clean_env: pytest.MonkeyPatch, pki: Pki) -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    assert faust_credentials(Settings()) is None
    for s in (sasl_ssl(pki), Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki.ca)):
        got = dict(credentials_to_aiokafka_auth(faust_credentials(s)))
        want = aiokafka_kwargs(s)
        assert got.pop("ssl_context") is not None
        want.pop("ssl_context")
        assert {k: v for k, v in got.items() if k in want} == want


# ------------------------------------------------------------------- every client gets the security settings
CLIENTS = {
    "AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient",
    "KafkaProducer", "KafkaConsumer", "KafkaAdminClient",
}  # fmt: skip
SOURCES = ["cpkmon", "stream", "api", "deploy/examples"]


def client_calls() -> list[tuple[str, int, str, ast.Call]]:
    found = []
    for folder in SOURCES:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
                if name in CLIENTS or (name == "App" and isinstance(f, ast.Attribute)):
                    found.append((str(path.relative_to(REPO)), node.lineno, name, node))
    return found


def test_every_kafka_client_in_the_code_gets_the_security_arguments() -> None:
    calls = client_calls()
    names = {name for _, _, name, _ in calls}
    assert {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "KafkaProducer", "App"} <= names
    missing = []
    for path, line, name, call in calls:
        if name == "App":
            ok = any(k.arg == "broker_credentials" for k in call.keywords)
        else:  # **aiokafka_kwargs(...), **self.security, **security_from_env(), ...
            ok = any(k.arg is None for k in call.keywords)
        if not ok:
            missing.append(f"{path}:{line} {name}")
    assert not missing, f"Kafka clients without the TLS/SASL settings: {missing}"


def test_compose_passes_the_security_variables_to_workers_and_api() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    for name in ("worker-1", "worker-2", "api"):
        env = services[name]["environment"]
        for var in ENV_NAMES:
            assert env[var].startswith("${" + var + ":-"), (name, var)
