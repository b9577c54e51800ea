"""The specification registry: every worker holds every spec.

Specs come from the compacted ``cpkmon.specs`` topic (key ``line/characteristic``, a null value removes the
spec), read by each worker outside the consumer group from the beginning; and from a file at start-up, which
the worker publishes to the topic so that every worker and the API see the same specs. A spec change restarts
that characteristic's window and baseline (``LineState.characteristic_for`` compares specs). A record
``{"command": "rebaseline"}`` written here by older releases is reported as ``rebaseline`` and ignored by the
worker: commands are not state and live in the commands topic (see :mod:`cpkmon.stream.processor`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from cpkmon.capability.spec import Spec
from cpkmon.stream.events import SpecIn, parse_spec

Action = Literal["set", "delete", "rebaseline", "invalid", "unchanged"]


@dataclass(frozen=True, slots=True)
class SpecChange:
    action: Action
    line: str | None
    characteristic: str | None
    reason: str | None = None
    payload: Any = None


def to_spec(m: SpecIn, default_subgroup_size: int) -> Spec:
    return Spec(
        lsl=None if m.lsl is None else float(m.lsl),
        usl=None if m.usl is None else float(m.usl),
        target=None if m.target is None else float(m.target),
        subgroup_size=m.subgroup_size if m.subgroup_size is not None else default_subgroup_size,
        center=None if m.center is None else float(m.center),
        sigma=None if m.sigma is None else float(m.sigma),
    )


def spec_key(line: str, characteristic: str) -> str:
    return f"{line}/{characteristic}"


class SpecRegistry:
    def __init__(self, default_subgroup_size: int = 5) -> None:
        self.default_subgroup_size = default_subgroup_size
        self._specs: dict[tuple[str, str], Spec] = {}
        self.version = 0  # bumped on every change: "verified missing" verdicts are valid for one version

    def get(self, line: str, characteristic: str) -> Spec | None:
        return self._specs.get((line, characteristic))

    def __len__(self) -> int:
        return len(self._specs)

    def items(self) -> list[tuple[tuple[str, str], Spec]]:
        return list(self._specs.items())

    def set(self, doc: dict[str, Any]) -> SpecChange:
        try:
            m = parse_spec(doc)
            spec = to_spec(m, self.default_subgroup_size)
        except (ValidationError, ValueError) as exc:
            return SpecChange(
                "invalid", doc.get("line"), doc.get("characteristic"), f"invalid spec: {exc}", doc
            )
        key = (m.line, m.characteristic)
        if self._specs.get(key) == spec:
            return SpecChange("unchanged", m.line, m.characteristic)
        self._specs[key] = spec
        self.version += 1
        return SpecChange("set", m.line, m.characteristic)

    def apply_record(self, key: bytes | None, value: bytes | None) -> SpecChange:
        """One record of the specs topic."""
        key_text = key.decode("utf-8", errors="replace") if key is not None else None
        if value is None:
            if not key_text or "/" not in key_text:
                return SpecChange(
                    "invalid", None, None, "tombstone without a line/characteristic key", key_text
                )
            line, char = key_text.split("/", 1)
            self._specs.pop((line, char), None)
            self.version += 1
            return SpecChange("delete", line, char)
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return SpecChange(
                "invalid", None, None, f"not JSON: {exc}", value[:65536].decode("utf-8", "replace")
            )
        if not isinstance(doc, dict):
            return SpecChange("invalid", None, None, "a spec must be a JSON object", doc)
        if doc.get("command") == "rebaseline":
            target_line, target_char = doc.get("line"), doc.get("characteristic")
            if not isinstance(target_line, str) or not isinstance(target_char, str):
                return SpecChange("invalid", None, None, "rebaseline needs line and characteristic", doc)
            return SpecChange("rebaseline", target_line, target_char)
        change = self.set(doc)
        if (
            change.action in ("set", "unchanged")
            and key_text
            and key_text != spec_key(str(change.line), str(change.characteristic))
        ):
            return SpecChange(
                "set", change.line, change.characteristic, "key differs from line/characteristic"
            )
        return change


def load_specs_file(path: Path) -> list[dict[str, Any]]:
    """A JSON array, a JSON object ``{"specs": [...]}`` or JSON lines of spec objects."""
    text = path.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        docs = json.loads(text)
    elif stripped.startswith("{") and '"specs"' in stripped[:200]:
        docs = json.loads(text)["specs"]
    else:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise ValueError(f"{path}: expected a list of spec objects")
    return docs
