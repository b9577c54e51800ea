"""The one configuration object of cpkmon.

Every field maps to a ``CPKMON_<FIELD>`` environment variable (SPEC §8): the names are a public contract
that deployments and tests set, so a field is never renamed. The statistical options mirror SPEC §4/§5 one to
one and are handed to the pure core as a plain :class:`cpkmon.capability.options.Options`, so that the core
never imports pydantic-settings.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cpkmon.capability.options import Options


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CPKMON_", extra="ignore", case_sensitive=False)

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

    # --- statistics (SPEC §4, §4.1) -----------------------------------------------------------------------
    window_subgroups: int = Field(default=25, ge=2, le=10_000)
    window_max_age: float | None = Field(default=None, gt=0, description="seconds of event time")
    min_subgroups: int = Field(default=20, ge=2)
    subgroup_size: int = Field(default=5, ge=1, le=25, description="default when a spec names none")
    sigma_method: Literal["default", "pooled"] = "default"
    chart_points: int = Field(default=50, ge=1, le=10_000)
    run_rules: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1, 2, 3, 5, 6])
    require_stability: bool = False
    yield_window: int = Field(default=1000, ge=1)
    min_units: int = Field(default=50, ge=1)
    cost_window_days: float = Field(default=365.0, gt=0)

    # --- ladder and alerts (SPEC §5) ------------------------------------------------------------------------
    confirm_evaluations: int = Field(default=3, ge=1)
    grade_hysteresis: float = Field(default=0.05, ge=0, le=1)
    require_all_criteria: bool = False

    # --- pipeline -------------------------------------------------------------------------------------------
    status_interval_ms: int = Field(default=200, ge=0)
    max_message_bytes: int = Field(default=1 << 20, ge=1024)
    spec_hold_seconds: float = Field(default=30.0, ge=0)
    checkpoint_interval_ms: int = Field(default=1000, ge=10)
    session_timeout_ms: int = Field(default=10_000, ge=1000, description="consumer group session timeout")
    heartbeat_interval_ms: int = Field(default=1_000, ge=100)

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
        yield_window=settings.yield_window,
        min_units=settings.min_units,
        cost_window_days=settings.cost_window_days,
        confirm_evaluations=settings.confirm_evaluations,
        grade_hysteresis=settings.grade_hysteresis,
        require_all_criteria=settings.require_all_criteria,
    )
