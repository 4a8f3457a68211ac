"""What tlbench trusts: nothing read back with pickle, names that can't become
paths. What it exposes, a local Ray on loopback only with no dashboard:
tests/system/test_ray_loopback.py."""

import json

from tlbench import results
from tlbench.plan import dataset_tag, trial_id


def test_run_files_are_json_never_pickle(tmp_path):
    results.append_record(tmp_path, {"trial_id": "t", "note": object()})  # unknown types become strings
    (line,) = (tmp_path / results.TRIALS).read_text().splitlines()
    assert json.loads(line)["note"].startswith("<object object")


def test_names_from_the_command_line_cannot_reach_outside_the_run_folder():
    for dataset in ("../../etc", "/etc/passwd", "..", "a/../../b", "tfds:../../x", "C:\\\\Windows\\\\..\\\\x"):
        tag = dataset_tag(dataset)
        assert "/" not in tag and "\\\\" not in tag and tag not in ("", ".", "..")
        assert "/" not in trial_id("resnet_v2_50", "transfer", 8, dataset, 0)
