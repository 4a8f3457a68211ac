"""What a run records of its time: env.json's start, and each frozen
computation's end with the early answer it gave, as the worker's
`frozen.record_fields` copies them into a record's `frozen_inputs`. No
TensorFlow, no Ray."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from records import trial

from tlbench import record, run_env
from tlbench.worker import frozen as frozen_inputs

START = datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)
MOBILENET = "mobilenet_v2_035_128"


def _at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def test_the_worker_records_when_its_frozen_computation_ended_and_its_answer():
    ended = {"computation": "c1", "node_id": "n", "seconds": 16.0, "finished_at": _at(41), "logme": 1.2}
    answered = {**ended, "ridge_val_accuracy": 0.95, "feature_images_per_sec": 384.0, "features": {}}
    shared = frozen_inputs.record_fields(answered, {"activations": None}, "")
    fields = record.make(**trial(MOBILENET, "transfer", 16, 0), frozen_inputs=shared)  # of the declared types
    assert fields["frozen_inputs"] == {
        "shared": True,
        "activations_shared": False,
        **{k: v for k, v in answered.items() if k != "features"},
        "note": None,
    }
    failed = frozen_inputs.record_fields({**ended, "error": "E: x", "logme": None}, None, "failed")
    assert failed["finished_at"] == _at(41) and failed["ridge_val_accuracy"] is None and failed["logme"] is None
    assert set(frozen_inputs.record_fields(None, None, "")) == set(failed)  # one trial: every field, null


def test_env_json_records_the_runs_start_as_records_write_a_moment():
    now = record.utc_now()
    assert datetime.fromisoformat(now).tzinfo == timezone.utc and len(now.split(".")[1]) == len("000+00:00")
    assert run_env.make(started_at=now)["started_at"] == now
    with pytest.raises(TypeError, match="started_at"):
        run_env.make(started_at=1.5)
