"""env.json through its one definition (`run_env.RunEnv`): written with a
checked constructor, read through the trial record's checker, a field of the
wrong type left out with a warning naming it; a run of tlbench 0.1 still
reads; `--resume` refuses a plan of the wrong shape in one line. No Ray, no
TensorFlow."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import typing
from pathlib import Path

import pytest

from tlbench import __version__, cli, environment, plan, results, run_env
from tlbench.driver.request import RunPlan, RunRequest
from tlbench.errors import UsageError

_RESOLVED = RunRequest(dataset="digits", backbones=("resnet_v2_50",), modes=("transfer",), quick=True).resolve(
    0,
    sources={"resnet_v2_50": plan.ModuleSource("standin", "/cache/r", "unreachable")},
    forward_flops={"resnet_v2_50": 7 * 10**9},
)
PLAN = json.loads(json.dumps(_RESOLVED.as_json()))  # as env.json holds it: lists, not tuples
CLUSTER = {"address": "local", "nodes": 1, "cpus": 2, "gpus": 0, "trial_resources": {"num_cpus": 2}}


def _env(**fields) -> run_env.RunEnv:
    """env.json as the runner builds it (runner.start)."""
    return run_env.make(
        **environment.machine_fields(["run", "--all"], CLUSTER),
        **{run_env.ENV_KEY: PLAN},
        budget=dataclasses.asdict(plan.BUDGETS["quick"]),
        dataset={"name": "digits", "images": 1797, "classes": 10, "skipped_files": 0, "skipped": {}},
        **fields,
    )


def _folder(tmp_path: Path, env) -> Path:
    (tmp_path / results.ENV).write_text(json.dumps(env, indent=2, sort_keys=True))
    return tmp_path


def _main(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    return status, err.getvalue()


def test_the_definition_has_every_field_of_what_it_records():
    """Plan, budget, protocol and weights source are dataclasses written
    whole with asdict: their TypedDicts must not fall behind them."""
    for typed, written in (
        (run_env.Plan, RunPlan),
        (run_env.Budget, plan.Budget),
        (run_env.Protocol, plan.Protocol),
        (run_env.Source, plan.ModuleSource),
    ):
        earlier = run_env.EARLIER_BUDGET_FIELDS if typed is run_env.Budget else set()
        assert set(typing.get_type_hints(typed)) - earlier == {f.name for f in dataclasses.fields(written)}, typed


def test_env_json_as_the_runner_writes_it_reads_back_whole_and_without_warnings(tmp_path):
    env = run_env.make(**{**_env(), "plan": _RESOLVED.as_json()})
    assert env["plan"]["backbones"] == ["resnet_v2_50"]  # tuples made the JSON lists they become
    run = results.read_run(_folder(tmp_path, env))
    assert run.env == env and run.env_dropped == {} and run.warnings == []
    assert RunPlan.from_json(run.env[run_env.ENV_KEY], "env.json") == _RESOLVED


def test_the_constructor_refuses_an_unknown_field_or_a_value_of_the_wrong_type():
    with pytest.raises(TypeError, match="not env.json fields: hosts"):
        _env(hosts="h")
    with pytest.raises(TypeError, match=r"memory_bytes is '1 GB', not a whole number"):
        run_env.make(memory_bytes="1 GB")
    with pytest.raises(TypeError, match=r"plan.seeds\[0\] is '0', not a whole number"):
        run_env.make(plan={**PLAN, "seeds": ["0"]})


def test_a_field_of_the_wrong_type_is_left_out_with_a_warning_naming_it(tmp_path):
    env = {
        "versions": {"tlbench": __version__},
        "host": 3,
        "cpu": {"model": "EPYC", "logical_cores": "two"},
        "gpus": ["A100", 7],
        "plan": {**PLAN, "batch_sizes": [1.5]},
        "later_field": {"kept": True},  # a later version's: kept as written
    }
    run = results.read_run(_folder(tmp_path, env))
    assert run.warnings == [  # in the file's order: tlbench sorts the keys
        "env.json: cpu.logical_cores is 'two', not a whole number; left out",
        "env.json: gpus[1] is 7, not text; left out",
        "env.json: host is 3, not text; left out",
        "env.json: plan.batch_sizes[0] is 1.5, not a whole number; left out",
    ]
    # An object loses its bad part; a list with a bad item goes whole.
    assert run.env == {
        "versions": {"tlbench": __version__},
        "cpu": {"model": "EPYC"},
        "plan": {k: v for k, v in PLAN.items() if k != "batch_sizes"},
        "later_field": {"kept": True},
    }
    assert set(run.env_dropped) == {"host", "cpu", "gpus", "plan"}
    # What is left reads at its declared types: no isinstance needed.
    assert run.env.get("cpu", {}).get("logical_cores") is None
    assert run_env.protocol(run.env) == PLAN["protocol"]


def test_versions_of_the_wrong_type_say_the_version_is_unknown(tmp_path):
    run = results.read_run(_folder(tmp_path, {"versions": ["0.2.0"]}))
    assert run.env == {}
    assert run.warnings[0].startswith("this run was written by tlbench of an unknown version")
    assert run.warnings[1] == "env.json: versions is a list, not an object; left out"


# tlbench 0.1's env.json: `request`, `selection` and `weights` where 0.2 has `plan`.
OLD_ENV = {
    "versions": {"tlbench": "0.1.0", "python": "3.11.7", "tensorflow": None},
    "host": "vm",
    "cluster": CLUSTER,
    "request": {
        "chosen": {"backbones": ["resnet_v2_50"], "batch_sizes": [16]},
        "dataset": "digits",
        "seed": 0,
        "quick": True,
        "weights": "auto",
        "modules": {},
        "seeds": 2,
        "protocol": {"split_seed": 3, "train_size": 64, "batch_norm_momentum": 0.997},
        "xla": False,
        "mixed_precision": False,
    },
    "budget": dataclasses.asdict(plan.BUDGETS["quick"]),
    "selection": {"backbones": ["resnet_v2_50"], "modes": ["transfer"], "batch_sizes": [16]},
    "dataset": {"name": "digits", "images": 1797, "classes": 10, "skipped_files": 0},
    "weights": {"resnet_v2_50": {"kind": "standin", "location": "/cache/r", "note": None}},
}


def test_a_run_of_tlbench_0_1_reads_and_its_protocol_is_its_requests(tmp_path):
    run = results.read_run(_folder(tmp_path, OLD_ENV))
    assert run.env == json.loads(json.dumps(OLD_ENV)) and run.env_dropped == {}
    assert run.warnings == [
        f"this run was written by tlbench 0.1.0, this is {__version__}: fields it lacks show as '-'"
    ]
    assert run_env.protocol(run.env) == {"split_seed": 3, "train_size": 64, "batch_norm_momentum": 0.997}
    # The plan's comes first where both are; neither: {}.
    assert run_env.protocol({**run.env, "plan": {"protocol": {"split_seed": 9}}}) == {"split_seed": 9}
    assert run_env.protocol({}) == {}


def test_a_run_of_tlbench_0_1_is_not_resumed(tmp_path):
    status, err = _main(["run", "--resume", str(_folder(tmp_path, OLD_ENV))])
    assert status == 2 and err.count("\n") == 1
    assert "env.json has no run plan (an interrupted start, or another tlbench version)" in err


@pytest.mark.parametrize(
    "tampered, says",
    [
        ({"batch_sizes": ["16"]}, "plan.batch_sizes[0] is '16', not a whole number"),
        ({"protocol": {**PLAN["protocol"], "batch_norm_momentum": "0.9"}}, "plan.protocol.batch_norm_momentum is"),
        ({"sources": {"resnet_v2_50": {"kind": "standin", "location": "/c", "note": 3}}}, "sources.resnet_v2_50.note"),
        ({"xla": "yes"}, "plan.xla is 'yes', not true/false"),
        ({"batch_sizes": [0]}, "'batch_sizes': batch size must be between 1 and 4096, got 0"),  # a value: checks.py
    ],
)
def test_resume_refuses_a_tampered_plan_in_one_line_naming_the_field(tmp_path, tampered, says):
    run_dir = _folder(tmp_path, {**_env(), "plan": {**PLAN, **tampered}})
    status, err = _main(["run", "--resume", str(run_dir)])
    assert status == 2 and err.count("\n") == 1 and f"{run_dir / results.ENV}: " in err and says in err, err
    # The same plan handed to RunPlan directly (not through read_run) is refused the same way.
    with pytest.raises(UsageError, match="env.json: "):
        RunPlan.from_json(json.loads(json.dumps({**PLAN, **tampered})), "env.json")
