"""Alert documents (SPEC §5) and their deterministic ids.

Why deterministic ids: the worker has no broker transactions (SPEC §10), so after a crash it replays from its
last checkpoint and may publish an alert a second time. Every input to an alert — the tracker state restored
from the checkpoint, the evaluations replayed in the same order, the Kafka timestamp used as ``detected_at`` —
is the same the second time, so the document is rebuilt byte for byte with the same ``alert_id`` and every
reader keeps one.
"""

from __future__ import annotations

import hashlib
import json
import math

from cpkmon.capability.timeutil import to_rfc3339

from .ladder import Limiting, grade_ref

# The alert types are defined once, in the document model (whose GradeAlert / OutOfControlAlert describe the
# documents built here); importable from here as before.
from .model import ALERT_TYPES, GRADE_ALERT_TYPES, GRADE_DEGRADED, GRADE_RECOVERED, OUT_OF_CONTROL

__all__ = ["ALERT_TYPES", "GRADE_DEGRADED", "GRADE_RECOVERED", "OUT_OF_CONTROL", "alert_id", "grade_alert",
           "json_number", "out_of_control_alert"]


def alert_id(*parts: object) -> str:
    """32 hex characters of SHA-256 over the JSON encoding of ``parts`` (order matters, types matter).

    JSON rather than ``str()`` joins so that ``("a:b", "c")`` and ``("a", "b:c")`` cannot collide.
    """
    payload = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def json_number(value: float | None) -> float | None:
    """A finite float, or None (NaN and ±inf are not JSON)."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def grade_alert(
    *,
    type_: str,
    line: str,
    sequence: int,
    from_level: int,
    to_level: int,
    limiting: Limiting | None,
    cpk: float | None,
    rty: float | None,
    sigma_level: float | None,
    event_time: float,
    detected_at: float,
    incident: str | None = None,
) -> dict[str, object]:
    """A ``grade_degraded`` / ``grade_recovered`` document: the SPEC §5 fields plus ``incident``.

    ``incident`` groups the degradations of one drop across several levels (the id of its first alert; None
    on a recovery); ``limiting.reason`` says why the new grade is not higher.

    ``sequence`` is the line's transition counter (kept in the tracker's checkpointed state): it makes the id
    unique when a line degrades 4→3 twice, and identical when the same transition is replayed.
    """
    if type_ not in GRADE_ALERT_TYPES:
        raise ValueError(f"not a grade alert type: {type_!r}")
    return {
        "alert_id": alert_id(line, type_, sequence, from_level, to_level),
        "type": type_,
        "line": line,
        "from_grade": grade_ref(from_level, chinese=False),
        "to_grade": grade_ref(to_level, chinese=False),
        "limiting": None if limiting is None else limiting.alert_dict(),
        "cpk": json_number(cpk),
        "rty": json_number(rty),
        "sigma_level": json_number(sigma_level),
        "event_time": to_rfc3339(event_time),
        "detected_at": to_rfc3339(detected_at),
        "incident": incident,
    }


def out_of_control_alert(
    *,
    line: str,
    characteristic: str,
    station: str | None,
    rule: int,
    chart: str,
    value: float,
    limit: float | None,
    subgroup: str,
    seq: int,
    event_time: float,
    detected_at: float,
    epoch: int = 0,
) -> dict[str, object]:
    """An ``out_of_control`` document, exactly the SPEC §5 fields; id over (line, characteristic, rule, seq,
    epoch).

    The violating subgroup's seq (which never restarts, not even when the spec changes) and the limits epoch
    (how many times the characteristic's limits were frozen: a re-baseline's Phase I may flag a subgroup that
    already fired against the old limits) make the id unique per firing and stable under replay.
    """
    return {
        "alert_id": alert_id(line, characteristic, rule, seq, epoch),
        "type": OUT_OF_CONTROL,
        "line": line,
        "characteristic": characteristic,
        "station": station,
        "rule": rule,
        "chart": chart,
        "value": json_number(value),
        "limit": json_number(limit),
        "subgroup": subgroup,
        "event_time": to_rfc3339(event_time),
        "detected_at": to_rfc3339(detected_at),
    }
