"""docker-compose.yml, its development override, the Dockerfile and the pinned requirements."""

from __future__ import annotations

import fnmatch
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import tomllib
from typing import Any

import pytest
import yaml
from deploy_helpers import COMPOSE, COMPOSE_OVERRIDE, PROM_CONFIG, REPO

# The CLI contract (SPEC §8): every command a compose service may run.
# SPEC §8's commands, plus ``schema`` (issue 11: the JSON Schema export of the document model for integrators)
# and ``notify`` (issue 12: webhook notifications of alarm transitions)
CLI_COMMANDS = {"broker", "worker", "api", "up", "simulate", "replay", "capability", "schema", "notify"}
SERVICES = {"kafka", "worker-1", "worker-2", "api", "prometheus", "grafana"}
SECRETS = {"CPKMON_API_KEYS", "GRAFANA_ADMIN_PASSWORD"}
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
SECRET_ENV = {"CPKMON_API_KEYS": "test-key-1,test-key-2", "GRAFANA_ADMIN_PASSWORD": "test-password"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def interpolate(value: Any) -> str:
    """Compose-style ``${VAR:-default}`` / ``${VAR:?error}`` in an empty environment (secrets: a dummy)."""

    def sub(m: re.Match[str]) -> str:
        if m.group("op") in (":-", "-"):
            return m.group("arg")
        return SECRET_ENV.get(m.group("name"), "x")

    return _VAR.sub(sub, str(value))


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def cpkmon_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if (s.get("command") or [None])[0] == "cpkmon"}


# ---- validation by docker compose itself, when a working client is installed -------------------------------


def _compose_client() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        res = subprocess.run([*cmd, "version"], capture_output=True, text=True, timeout=30)
        if res.returncode == 0:
            return cmd
    return None


def test_docker_compose_config_validates() -> None:
    """``docker-compose -f docker-compose.yml config``: the file's schema and interpolation, checked by
    compose itself (Debian's docker-compose 1.29 needs no daemon for it; `.ci/run` installs it: CI never
    skips)."""
    cmd = _compose_client()
    if cmd is None:
        if os.environ.get("CI"):
            pytest.fail("no compose client in CI: .ci/run installs Debian's docker-compose")
        pytest.skip("no working `docker compose` client here; the structural checks below stand in for it")
    env = {**os.environ, **SECRET_ENV}
    for files in (["-f", str(COMPOSE)], ["-f", str(COMPOSE), "-f", str(COMPOSE_OVERRIDE)]):
        res = subprocess.run(
            [*cmd, *files, "config", "-q"], capture_output=True, text=True, env=env, cwd=REPO
        )
        assert res.returncode == 0, res.stderr
    # what compose renders: every service, the secrets and defaults interpolated
    res = subprocess.run(
        [*cmd, "-f", str(COMPOSE), "config"], capture_output=True, text=True, env=env, cwd=REPO, check=True
    )
    rendered = yaml.safe_load(res.stdout)
    assert set(rendered["services"]) == SERVICES
    api_env = rendered["services"]["api"]["environment"]
    assert api_env["CPKMON_API_KEYS"] == SECRET_ENV["CPKMON_API_KEYS"]
    assert api_env["CPKMON_BROKER"] == "kafka://kafka:9092"
    # without the required secrets, compose refuses
    bare = {k: v for k, v in os.environ.items() if k not in SECRETS}
    res = subprocess.run(
        [*cmd, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, env=bare, cwd=REPO
    )
    assert res.returncode != 0 and "CPKMON_API_KEYS" in res.stderr


# ---- structure ---------------------------------------------------------------------------------------------


def test_services_and_healthchecks() -> None:
    svc = services()
    assert set(svc) == SERVICES
    for name, s in svc.items():
        hc = s.get("healthcheck")
        assert hc and hc.get("test") and not hc.get("disable"), f"{name}: needs a healthcheck"
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), name
        for key in ("interval", "timeout", "retries", "start_period"):
            assert key in hc, f"{name}: healthcheck.{key}"
        assert s.get("restart") == "unless-stopped", name
        assert "ports" not in s, f"{name}: the base file publishes no ports (the override does, on 127.0.0.1)"


def test_depends_on_waits_for_healthy() -> None:
    svc = services()
    for name, s in svc.items():
        deps = s.get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on must use the long form with conditions"
        for dep, spec in deps.items():
            assert dep in svc, f"{name} depends on unknown {dep}"
            assert spec == {"condition": "service_healthy"}, f"{name} -> {dep}: {spec}"
            assert svc[dep].get("healthcheck"), f"{dep} must have a healthcheck for {name} to wait on"
    assert set(svc["worker-1"]["depends_on"]) == {"kafka"}
    assert set(svc["worker-2"]["depends_on"]) == {"kafka"}
    assert {"kafka", "worker-1", "worker-2"} <= set(svc["api"]["depends_on"])
    assert set(svc["grafana"]["depends_on"]) == {"prometheus"}
    assert "depends_on" not in svc["prometheus"], "monitoring must start even when cpkmon does not"


def test_required_secrets_fail_fast() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    required = {m.group("name") for m in _VAR.finditer(text) if m.group("op") == ":?"}
    assert required == SECRETS
    for m in _VAR.finditer(text):
        if m.group("op") == ":?":
            assert m.group("arg").strip(), f"{m.group(0)}: say what to set"
    assert env_of(services()["api"])["CPKMON_API_KEYS"].startswith("${CPKMON_API_KEYS:?")
    assert env_of(services()["grafana"])["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    # every variable reference is well-formed (no bare $VAR that compose would interpolate silently)
    bare = re.findall(r"(?<!\$)\$(?!\{|\$)[A-Za-z_]", text)
    assert not bare, bare


def test_kafka_is_kraft_pinned_apache_kafka() -> None:
    k = services()["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", k["image"]), k["image"]
    env = env_of(k)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert not any("ZOOKEEPER" in key for key in env)
    # a KRaft cluster id is a base64url-encoded 16-byte UUID (22 characters)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", interpolate(env["CLUSTER_ID"]))
    assert any(v.endswith(":/var/lib/kafka/data") for v in k["volumes"])
    assert env["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    # the three-broker settings are documented next to the single-broker ones
    text = COMPOSE.read_text(encoding="utf-8")
    assert "KAFKA_MIN_INSYNC_REPLICAS: 2" in text and "KAFKA_DEFAULT_REPLICATION_FACTOR: 3" in text


def test_images_are_pinned() -> None:
    for name, s in services().items():
        image = interpolate(s["image"])
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_commands_are_real_cpkmon_subcommands() -> None:
    import typer.main

    from cpkmon import cli

    registered = set()
    for info in cli.app.registered_commands:
        registered.add(info.name or typer.main.get_command_name(info.callback.__name__))
    assert registered <= CLI_COMMANDS, f"commands outside the SPEC §8 contract: {registered - CLI_COMMANDS}"

    ours = cpkmon_services()
    assert set(ours) == {"worker-1", "worker-2", "api"}
    for name, s in ours.items():
        command = s["command"]
        assert isinstance(command, list) and len(command) == 2, f"{name}: exec form ['cpkmon', '<command>']"
        assert command[1] in CLI_COMMANDS, f"{name}: `{command[1]}` is not a cpkmon command"
        assert command[1] in registered, f"{name}: `cpkmon {command[1]}` is not registered in cpkmon.cli"
    assert ours["worker-1"]["command"] == ours["worker-2"]["command"] == ["cpkmon", "worker"]
    assert ours["api"]["command"] == ["cpkmon", "api"]


def test_cpkmon_environment_is_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from cpkmon.settings import Settings

    prefix = str(Settings.model_config.get("env_prefix", "")).upper()
    assert prefix == "CPKMON_"
    fields = {name.upper() for name in Settings.model_fields}
    for name, s in cpkmon_services().items():
        env = env_of(s)
        cpkmon_vars = {k: v for k, v in env.items() if k.upper().startswith(prefix)}
        for key in cpkmon_vars:
            assert key.upper()[len(prefix) :] in fields, (
                f"{name}: {key} is not a cpkmon.settings.Settings field"
            )
        # the values (defaults interpolated) are valid settings
        for key in list(os.environ):
            if key.upper().startswith(prefix):
                monkeypatch.delenv(key)
        for key, value in cpkmon_vars.items():
            monkeypatch.setenv(key, interpolate(value))
        settings = Settings()
        assert settings.bootstrap_servers() == ["kafka:9092"], name
        assert env["CPKMON_BROKER"] == "kafka://kafka:9092"
        if name == "api":
            assert settings.api_host == "0.0.0.0" and settings.api_port == 8000
            assert settings.api_keys == ["test-key-1", "test-key-2"]
            probe = f"http://127.0.0.1:{settings.api_port}/readyz"
        else:
            assert settings.worker_host == "0.0.0.0" and settings.worker_port == 6066
            probe = f"http://127.0.0.1:{settings.worker_port}/healthz"
        assert probe in " ".join(s["healthcheck"]["test"]), f"{name}: healthcheck must probe {probe}"


def test_prometheus_scrapes_what_compose_runs() -> None:
    config = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    targets = {
        name: {t for sc in j.get("static_configs", []) for t in sc["targets"]} for name, j in jobs.items()
    }
    svc = services()
    workers = {
        f"{n}:{interpolate(env_of(s)['CPKMON_WORKER_PORT'])}"
        for n, s in cpkmon_services().items()
        if n != "api"
    }
    assert targets["cpkmon-worker"] == workers == {"worker-1:6066", "worker-2:6066"}
    assert targets["cpkmon-api"] == {f"api:{interpolate(env_of(svc['api'])['CPKMON_API_PORT'])}"}
    mounts = svc["prometheus"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in mounts
    assert "--config.file=/etc/prometheus/prometheus.yml" in svc["prometheus"]["command"]


def test_grafana_mounts_provisioning_and_dashboards() -> None:
    g = services()["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in g["volumes"] if m.startswith("./")}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dash_target = mounts["./deploy/grafana/dashboards"]
    provider = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/cpkmon.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == dash_target
    for host in mounts:
        assert (REPO / host).is_dir(), host


def test_override_publishes_on_loopback_only() -> None:
    override = yaml.safe_load(COMPOSE_OVERRIDE.read_text(encoding="utf-8"))
    published = 0
    for name, s in override["services"].items():
        assert name in SERVICES, name
        for port in s.get("ports", []):
            published += 1
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port} must bind 127.0.0.1"
    assert published >= 4
    kafka_env = env_of(services()["kafka"])
    assert "EXTERNAL://localhost:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]


# ---- Dockerfile, .dockerignore, pinned requirements --------------------------------------------------------


def _dockerfile() -> str:
    return (REPO / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_is_slim_non_root_and_pinned() -> None:
    text = _dockerfile()
    froms = re.findall(r"(?m)^FROM\s+(\S+)", text)
    assert froms and all(f == "python:3.11-slim" for f in froms), froms
    users = re.findall(r"(?m)^USER\s+(\S+)", text)
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users
    assert "-r /src/deploy/requirements.lock" in text
    assert re.search(r"pip install [^\n]*--no-deps", text), "the package itself must not pull unpinned deps"


def _dockerignored(path: str) -> bool:
    ignored = False
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.rstrip("/") + "/*"):
            ignored = not negate
    return ignored


def test_dockerfile_copies_every_package_and_dockerignore_keeps_them() -> None:
    text = _dockerfile()
    sources = {src for line in re.findall(r"(?m)^COPY\s+(?!--from)(.+)$", text) for src in line.split()[:-1]}
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    package_dirs = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    assert package_dirs <= sources, f"Dockerfile misses package dirs {package_dirs - sources}"
    for src in sources:
        if "*" in src:
            continue
        assert (REPO / src).exists(), src
        assert not _dockerignored(src), f".dockerignore excludes {src}, which the Dockerfile copies"
    for junk in (".git", "tests", ".env", "cpkmon/__pycache__/x.pyc"):
        assert _dockerignored(junk), junk


def _closure() -> dict[str, str]:
    """Runtime dependency closure of the installed cpkmon (+ uvloop): normalized name -> installed version."""
    from packaging.requirements import Requirement

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    roots = [Requirement(r).name for r in md.requires("cpkmon") or [] if "extra ==" not in r] + ["uvloop"]
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if norm(name) in seen:
            continue
        dist = md.distribution(name)
        seen[norm(name)] = dist.version
        for r in dist.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_requirements_lock_pins_the_installed_closure() -> None:
    lock: dict[str, str] = {}
    for raw in (REPO / "deploy/requirements.lock").read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"not an exact pin: {raw!r}"
        lock[m.group(1).lower()] = m.group(2)
    closure = _closure()
    assert set(closure) <= set(lock), f"missing from the lock: {sorted(set(closure) - set(lock))}"
    for name, version in lock.items():
        assert md.version(name) == version, f"{name}: locked {version}, installed {md.version(name)}"
    for direct in (
        "faust-streaming",
        "aiokafka",
        "kafka-python",
        "fastapi",
        "uvicorn",
        "prometheus-client",
        "uvloop",
    ):
        assert direct in lock, direct


def test_dockerfile_builds_the_compiled_core_and_ships_no_compiler() -> None:
    """Issue 11: the image runs the mypyc-compiled core. The build stage has a C compiler, copies setup.py and
    fails if the installed core is not compiled; the runtime stage (after the last FROM) installs nothing."""
    text = _dockerfile()
    build, _, runtime = text.rpartition("\nFROM ")
    assert re.search(r"apt-get install [^\n]*\bgcc\b", build), "no C compiler in the build stage"
    assert re.search(r"(?m)^COPY [^\n]*\bsetup\.py\b", build)
    assert "cpkmon.compiled_core()" in build, "the build must fail when the core did not compile"
    assert "gcc" not in runtime and "pip install" not in runtime
