"""The one configuration object of cpkmon.

Every field maps to a ``CPKMON_<FIELD>`` environment variable (SPEC §8): the names are a public contract
that deployments and tests set, so a field is never renamed. The statistical options mirror SPEC §4/§5 one to
one and are handed to the pure core as a plain :class:`cpkmon.capability.options.Options`, so that the core
never imports pydantic-settings.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cpkmon.capability.options import Options


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error would otherwise print every input, the SASL password included
    model_config = SettingsConfigDict(
        env_prefix="CPKMON_", extra="ignore", case_sensitive=False, hide_input_in_errors=True
    )

    # --- where things are -------------------------------------------------------------------------------
    broker: str | None = Field(
        default=None,
        description="kafka://host:port[,host:port]; unset means `cpkmon up` starts the embedded broker",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    worker_host: str = "127.0.0.1"
    worker_port: int = 6066
    data_dir: Path = Path(".cpkmon")
    partitions: int = Field(default=8, ge=1)
    replication_factor: int = Field(default=1, ge=1, description="for topics the worker creates")
    embedded_broker_port: int = 9092
    specs_file: Path | None = None

    # --- connecting to a secured Kafka (README "Security (TLS and SASL)") --------------------------------
    # Names and values as Kafka clients spell them, so a plant's Kafka team can read them off their own
    # client.properties. Every client cpkmon creates gets them through cpkmon.kafka_security.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="PEM CA bundle the broker certificate must chain to; unset: system CAs"
    )
    kafka_ssl_certfile: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="PEM private key of the client cert")
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="the broker certificate must name the host the client connects to"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    # SecretStr: repr(settings), model_dump() and tracebacks show '**********', never the password
    kafka_sasl_password: SecretStr | None = None
    kafka_connect_timeout_s: float = Field(
        default=20.0,
        gt=0,
        description="how long start-up waits for an unreachable broker; TLS and SASL failures end at once",
    )

    # --- topics (SPEC §2/§3) ------------------------------------------------------------------------------
    topic_measurements: str = "cpkmon.measurements"
    topic_inspections: str = "cpkmon.inspections"
    topic_specs: str = "cpkmon.specs"
    topic_quality_costs: str = "cpkmon.quality-costs"
    topic_line_status: str = "cpkmon.line-status"
    topic_alerts: str = "cpkmon.alerts"
    topic_dead_letter: str = "cpkmon.dead-letter"
    topic_acks: str = "cpkmon.alert-acks"
    topic_checkpoints: str = "cpkmon.worker-checkpoints"
    topic_commands: str = Field(
        default="cpkmon.commands",
        description="operator commands (re-baseline), key = line: an input of the line's partition, "
        "never state — kept apart from the compacted specs topic, where compaction would drop the spec",
    )
    topic_alarm_events: str = Field(
        default="cpkmon.alarm-events",
        description="alarm transitions (ISA-18.2 events), key = line, co-partitioned with the inputs: the "
        "ordered history the alarm states are a pure function of; `cpkmon notify` delivers it to webhooks",
    )

    # --- statistics (SPEC §4, §4.1) -----------------------------------------------------------------------
    window_subgroups: int = Field(default=25, ge=2, le=10_000)
    window_max_age: float | None = Field(default=None, gt=0, description="seconds of event time")
    min_subgroups: int = Field(default=20, ge=2)
    subgroup_size: int = Field(default=5, ge=1, le=25, description="default when a spec names none")
    sigma_method: Literal["default", "pooled"] = "default"
    chart_points: int = Field(default=50, ge=1, le=10_000)
    run_rules: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1, 2, 3, 5, 6])
    require_stability: bool = False
    baseline_exclude_flagged: bool = Field(
        default=False,
        description="Phase I: recompute baseline limits without the subgroups a rule flagged",
    )
    yield_window: int = Field(default=1000, ge=1)
    min_units: int = Field(default=50, ge=1)
    cost_window_days: float = Field(default=365.0, gt=0)

    # --- ladder and alerts (SPEC §5) ------------------------------------------------------------------------
    confirm_evaluations: int = Field(default=3, ge=1)
    grade_hysteresis: float = Field(default=0.05, ge=0, le=1)
    grade_hysteresis_se_fall: float = Field(default=0.25, ge=0, le=10)
    grade_hysteresis_se_rise: float = Field(default=0.75, ge=0, le=10)
    require_all_criteria: bool = False
    alarm_clear_subgroups: int | None = Field(
        default=None,
        ge=1,
        description="a control alarm returns to normal after this many consecutive closed subgroups "
        "without a firing of an enabled rule (default: window_subgroups)",
    )

    # --- pipeline -------------------------------------------------------------------------------------------
    status_interval_ms: int = Field(default=200, ge=0)
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    spec_hold_seconds: float = Field(default=30.0, ge=0)
    checkpoint_interval_ms: int = Field(default=1000, ge=10)
    session_timeout_ms: int = Field(default=10_000, ge=1000, description="consumer group session timeout")
    heartbeat_interval_ms: int = Field(default=1_000, ge=100)

    # --- notifications (`cpkmon notify`, README "Notifications") -----------------------------------------
    notify_config: Path | None = Field(
        default=None,
        description="YAML/JSON file of webhook endpoints, routing, rate limit and retries; secrets are "
        "named there by environment variable, never written in it",
    )
    notify_host: str = Field(default="127.0.0.1", description="where `cpkmon notify` serves /metrics")
    notify_port: int = Field(default=6068, ge=0, le=65535, description="`cpkmon notify` /metrics port")
    notify_commit_interval_ms: int = Field(
        default=1000,
        ge=10,
        description="how often the notifier commits the offsets of records every endpoint is done with",
    )

    # --- api ------------------------------------------------------------------------------------------------
    api_sse_queue: int = Field(
        default=1000,
        ge=1,
        description="alerts buffered per SSE client; past it the client is cut off and "
        "resumes with Last-Event-ID (a slow client never stalls the view)",
    )
    api_write_wait_ms: int = Field(
        default=5000,
        ge=0,
        description="how long a write waits for its own record to reach the view, so a GET "
        "right after a PUT/ack sees it (read-your-writes)",
    )
    api_view_fetch_ms: int = Field(default=200, ge=10, description="view consumer poll timeout")
    api_metadata_refresh_ms: int = Field(
        default=10_000, ge=100, description="how often the view looks for new partitions of its topics"
    )

    # --- audit trail (README "Audit trail") -----------------------------------------------------------------
    topic_audit: str = Field(
        default="cpkmon.audit",
        description="the hash-chained audit trail: one partition, so one chain orders every change",
    )
    audit_retention_ms: int = Field(
        default=-1,
        ge=-1,
        description="retention.ms of the audit topic when cpkmon creates it; -1 keeps records forever "
        "(a quality record: keep it at least as long as the product's records)",
    )
    trusted_identity_header: str | None = Field(
        default=None,
        description="request header set by a trusted reverse proxy (e.g. X-Forwarded-User) whose value is "
        "the person recorded as `who`; unset: the API key's name",
    )

    # --- alarm management (README "Alarm management") -------------------------------------------------------
    require_cause: bool = Field(
        default=False,
        description="an alarm acknowledgement needs a cause code and a resolve a corrective action (every "
        "API replica must share it: the alarm states are folded with it)",
    )
    cause_codes_file: Path | None = Field(
        default=None,
        description="JSON or YAML list of {code, name, name_zh?}: the plant's assignable-cause codes; unset: "
        "5M1E (man, machine, material, method, measurement, environment)",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("run_rules", mode="before")
    @classmethod
    def _rules(cls, value: object) -> object:
        value = _split_csv(value)
        if isinstance(value, list):
            rules = sorted({int(v) for v in value})
            if any(r < 1 or r > 8 for r in rules):
                raise ValueError("run_rules are Nelson tests 1..8")
            return rules
        return value

    @field_validator("kafka_sasl_mechanism", mode="before")
    @classmethod
    def _mechanism(cls, value: object) -> object:
        """Kafka spells mechanisms in upper case; accept ``scram-sha-512`` too, and empty as unset."""
        if isinstance(value, str):
            return value.strip().upper() or None
        return value

    @field_validator("kafka_security_protocol", mode="before")
    @classmethod
    def _protocol(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().upper() or "PLAINTEXT"
        return value

    @field_validator(
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "cause_codes_file",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``VAR=`` (compose's ``${VAR:-}``) means unset — not the current directory, not an empty login."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _security(self) -> Settings:
        """Reject combinations a Kafka client would only fail on later (or silently ignore) at start-up,
        with the variable to fix in the message. Never echoes the password."""
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        tls = protocol.endswith("SSL")
        problems: list[str] = []
        if sasl:
            if self.kafka_sasl_mechanism is None:
                problems.append(
                    f"{protocol} needs CPKMON_KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                )
            if not self.kafka_sasl_username:
                problems.append(f"{protocol} needs CPKMON_KAFKA_SASL_USERNAME")
            if self.kafka_sasl_password is None or not self.kafka_sasl_password.get_secret_value():
                problems.append(f"{protocol} needs CPKMON_KAFKA_SASL_PASSWORD")
        elif self.kafka_sasl_mechanism or self.kafka_sasl_username or self.kafka_sasl_password is not None:
            problems.append(
                f"CPKMON_KAFKA_SASL_* are set but CPKMON_KAFKA_SECURITY_PROTOCOL is {protocol}: "
                "use SASL_SSL (or SASL_PLAINTEXT), or unset them"
            )
        files = {
            "CPKMON_KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "CPKMON_KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "CPKMON_KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
        }
        if not tls and any(files.values()):
            problems.append(
                f"CPKMON_KAFKA_SSL_* are set but CPKMON_KAFKA_SECURITY_PROTOCOL is {protocol}: "
                "use SSL (or SASL_SSL), or unset them"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            problems.append("CPKMON_KAFKA_SSL_CERTFILE and CPKMON_KAFKA_SSL_KEYFILE go together (mutual TLS)")
        for var, path in files.items():
            if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
                problems.append(f"{var}={path}: not a readable file")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def bootstrap_servers(self) -> list[str]:
        """``kafka://a:1,b:2`` → ``["a:1", "b:2"]`` (the scheme is optional)."""
        if not self.broker:
            return [f"127.0.0.1:{self.embedded_broker_port}"]
        raw = self.broker.split("://", 1)[-1]
        return [part.strip() for part in raw.split(",") if part.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def core_options(settings: Settings) -> Options:
    """The :class:`cpkmon.capability.options.Options` for these settings."""
    return Options(
        window_subgroups=settings.window_subgroups,
        window_max_age=settings.window_max_age,
        min_subgroups=settings.min_subgroups,
        subgroup_size=settings.subgroup_size,
        sigma_method=settings.sigma_method,
        chart_points=settings.chart_points,
        run_rules=tuple(settings.run_rules),
        require_stability=settings.require_stability,
        baseline_exclude_flagged=settings.baseline_exclude_flagged,
        yield_window=settings.yield_window,
        min_units=settings.min_units,
        cost_window_days=settings.cost_window_days,
        confirm_evaluations=settings.confirm_evaluations,
        grade_hysteresis=settings.grade_hysteresis,
        grade_hysteresis_se_fall=settings.grade_hysteresis_se_fall,
        grade_hysteresis_se_rise=settings.grade_hysteresis_se_rise,
        require_all_criteria=settings.require_all_criteria,
        alarm_clear_subgroups=settings.alarm_clear_subgroups,
    )
