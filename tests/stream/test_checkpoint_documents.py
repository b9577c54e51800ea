"""The worker's checkpoint records are the document model's (``LineCheckpoint``, ``PartitionCheckpoint``): the
bytes the checkpoint module writes validate strictly and against the exported JSON Schema."""

from __future__ import annotations

import jsonschema
import orjson

from cpkmon.alerts.line import LineState
from cpkmon.alerts.model import LineCheckpoint, PartitionCheckpoint, document_schema, validate_strict
from cpkmon.capability.options import Options
from cpkmon.capability.spec import Spec
from cpkmon.stream import checkpoint


def test_checkpoint_records_validate_against_the_model() -> None:
    st = LineState("L1", Options(min_subgroups=2))
    spec = Spec(lsl=0.0, usl=10.0, subgroup_size=2)
    t0 = 1_795_000_000.0
    for i in range(12):
        st.measurement("c", spec, "S1", 5.0 + 0.1 * (i % 3), t0 + i, f"e{i}", None, t0 + i)
    st.inspection("S1", True, True, 0, 10, 1_795_000_100.0, "i1", 1_795_000_100.0)
    st.applied["cpkmon.measurements"] = 11
    line_doc = orjson.loads(checkpoint.encode_line(st))
    validate_strict(LineCheckpoint, line_doc)
    jsonschema.validate(line_doc, document_schema("checkpoint_line", closed=True))
    part_doc = orjson.loads(checkpoint.encode_partition({"cpkmon.measurements": 11}, 8))
    validate_strict(PartitionCheckpoint, part_doc)
    jsonschema.validate(part_doc, document_schema("checkpoint_partition", closed=True))
