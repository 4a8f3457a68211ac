"""Property-based tests (hypothesis) of what users and files feed tlbench:

- the command line: any argv ends in a parsed command, a UsageError (one line,
  exit status 2 through `main`) or a clean --help/--version exit, never a
  traceback; what is accepted holds only valid values. `run`, `prefetch` and
  `list` are only parsed and checked (`build_parser().parse_args` and, for
  `run`, the request or the recorded plan): no Ray, no training. `report` and
  `compare` run for real on temporary run folders.
- a resumed run's recorded plan: accepted exactly when every value is valid.
- the record reader: whatever bytes are in trials.jsonl and env.json,
  `read_run` returns what it can read and a warning per unreadable line, and
  what tlbench writes it reads back equal.
- the report and the per-configuration summary on whatever `read_run` returned.

Each bug these properties found has its own property with the minimal
example as an explicit `@example`, so that it stays fixed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from conftest import ci_examples
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from records import record as _record

from tlbench import __version__, cli, results, run_env
from tlbench import record as record_module
from tlbench.driver.request import WEIGHTS_POLICIES, RunRequest, check_resume_args, recorded_plan
from tlbench.errors import UsageError
from tlbench.plan import BATCH_NORM_POLICIES, ModuleSource
from tlbench.registry import BACKBONES, MODES
import reporting

from tlbench.reports import configs as analysis

# No example database, and hypothesis' other files (its cache of the code's
# constants) in this session's temporary folder, not in the project: every run
# starts afresh and leaves nothing behind.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _session_tmp = Path(os.environ.get("TLBENCH_CACHE_DIR", "/nonexistent")).parent  # conftest removes it at the end
    set_hypothesis_home_dir(tempfile.mkdtemp(prefix="hypothesis-", dir=_session_tmp if _session_tmp.is_dir() else None))
# Examples per property: (locally, under CI's hypothesis profile; tests/conftest.py).
PROPERTY = settings(max_examples=ci_examples(100, 30), deadline=None, database=None, print_blob=True)
ROUND_TRIP = settings(
    max_examples=ci_examples(100, 30), deadline=None, database=None, print_blob=True
)  # append_record fsyncs each record
FEW = settings(max_examples=ci_examples(50, 20), deadline=None, database=None, print_blob=True)
# `report` and `compare` run for real: each example writes report.md and
# report.html, PNG plots and TensorBoard files.
REPORTS = settings(max_examples=ci_examples(50, 10), deadline=None, database=None, print_blob=True)

TRIALS, ENV, REQUIRED_KEYS = results.TRIALS, results.ENV, record_module.REQUIRED
STATUSES = [status.value for status in record_module.Status]
LINE_WARNING = re.compile(rf"^{re.escape(TRIALS)} line (\d+) ")
NO_SUCH_USER = "~tlbench-no-such-user"  # `~user` of a user this machine doesn't have


# ---------------------------------------------------------------- strategies


def _text(*, exclude: str = "", max_size: int = 20):
    # A real command line can't carry NUL; it can carry any other character,
    # lone surrogates included (undecodable bytes, via surrogateescape).
    return st.text(st.characters(exclude_characters="\x00" + exclude), max_size=max_size) | st.sampled_from(
        ["\udcff", "a\udc80b"]
    )


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30, max_value=10**300)
    | st.floats()  # NaN and the infinities too: json writes and reads them
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
hashable_json_scalars = json_values  # any JSON: read_run skips a record whose trial_id is not a string


@st.composite
def record_like(draw, trial_ids=hashable_json_scalars, values=json_values, keep_all: bool = False, typed=False):
    """A dict with (usually) every required key, any JSON values, extra keys.
    `typed`: the required keys have the types read_run asks for."""
    extra_keys = (
        st.text(max_size=10).filter(lambda key: key not in record_module.FIELDS) if typed else st.text(max_size=10)
    )
    record = draw(st.dictionaries(extra_keys, values, max_size=3))
    if typed:
        record.update({key: draw(st.text(max_size=10)) for key in REQUIRED_KEYS})
        record["batch_size"] = draw(st.integers(-(10**6), 10**6))
        record["status"] = draw(st.sampled_from(STATUSES))
    else:
        record.update({key: draw(values) for key in REQUIRED_KEYS})
    record["trial_id"] = draw(trial_ids)
    if not keep_all:
        for key in draw(st.sets(st.sampled_from(REQUIRED_KEYS), max_size=2)):
            record.pop(key)
    return record


def _cut(line: str, fraction: float) -> str:
    """A strict, non-empty prefix of a JSON object's text: never valid JSON."""
    return line[: max(1, min(len(line) - 1, int(len(line) * fraction)))]


def _garbage_lines(records, text):
    """Lines of a damaged trials.jsonl, as bytes."""
    return st.one_of(
        st.binary(max_size=30),
        text.map(str.encode),
        json_values_without(text).map(lambda value: json.dumps(value).encode()),
        records.map(lambda record: json.dumps(record).encode()),
        st.builds(lambda record, f: _cut(json.dumps(record), f).encode(), records, st.floats(0, 1)),
        st.sampled_from(
            [
                b"9" * 5000,  # past int's digit limit
                b"1e999",
                b"NaN",
                b"-Infinity",
                b"[NaN, Infinity]",
                b"\xff\xfe\xfd",  # not UTF-8
                b"\xc3",  # a cut UTF-8 sequence
                b'{"trial_id": "t", "backb',
                b"\xef\xbb\xbf{}",  # a BOM
                "\u2028\x85\x0c".encode(),  # line breaks to str.splitlines, not to read_run or a JSON reader
                b"\r",
                b"   \t",
            ]
        ),
    )


def json_values_without(text):
    """JSON values whose strings come from `text`."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=8,
    )


def _file_bytes(lines):
    return st.builds(
        lambda parts, newline: b"\n".join(parts) + (b"\n" if newline else b""),
        st.lists(lines, max_size=8),
        st.booleans(),
    )


# Anything read_run must survive: records with values of any JSON type.
wild_trials = _file_bytes(_garbage_lines(record_like(), st.text(max_size=20)))

# What report/compare must survive. Text without `[`, which rich reads as
# markup (test_report_survives_markup_like_text_in_run_files); no "ok" record
# lacking figures (test_report_constraints_and_compare_of_ok_records_missing_figures);
# fields of the types tlbench writes (the wrong types crash
# test_configurations_of_records_with_fields_of_any_type).
plain_text = st.text(st.characters(codec="utf-8", exclude_characters="["), max_size=12)
not_ok = st.sampled_from(["oom", "error"]) | plain_text.filter(lambda s: s != "ok")
cli_records = st.fixed_dictionaries(
    {
        "trial_id": plain_text,
        "backbone": st.sampled_from(["resnet_v2_50", "mobilenet_v2_035_128"]) | plain_text,
        "mode": st.sampled_from(MODES) | plain_text,
        "batch_size": st.integers(1, 64),
        "dataset": plain_text,
        "status": not_ok,
    },
    optional={
        "seed": st.integers(0, 5),
        "weights": st.sampled_from(["tfhub:h", "standin:ResNet50V2"]) | plain_text,
        "device": st.sampled_from(["CPU:AMD EPYC", "GPU:A100"]) | plain_text,
        "error": st.none() | plain_text,
        "test_accuracy": st.floats(0, 1),
        "train_images_per_sec": st.floats(0.1, 1e4),
        "peak_memory_bytes": st.integers(1, 2**34),
    },
)
garbage_trials = _file_bytes(_garbage_lines(cli_records, plain_text))
garbage_env = st.one_of(
    st.none(),  # no env.json
    st.binary(max_size=40),
    json_values_without(plain_text).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {}, optional={"versions": st.dictionaries(plain_text, plain_text) | st.just({"tlbench": __version__})}
    ).map(lambda env: json.dumps(env).encode()),
)

BACKBONE_NAMES = [b.name for b in BACKBONES]
RUN_FLAGS = [
    "--all",
    "--backbone",
    "--mode",
    "--batch-size",
    "--dataset",
    "--out",
    "--quick",
    "--weights",
    "--module",
    "--address",
    "--seed",
    "--seeds",
    "--split-seed",
    "--train-size",
    "--batch-norm-momentum",
    "--concurrency",
    "--max-retries",
    "--resume",
    "--xla",
    "--mixed-precision",
]
REPORT_FLAGS = ["--memory-budget", "--min-throughput", "--throughput", "--min-accuracy"]
COMPARE_FLAGS = ["--accuracy-drop", "--slowdown", "--memory-growth"]
ODD_FLAGS = ["-h", "--help", "--he", "--version", "--vers", "--", "-", "--bogus", "--batch", "--mod", "-x", "-hx"]
# Folders of the temporary layout `_layout` makes, as placeholders.
FOLDERS = [
    "{empty}",
    "{missing}",
    "{file}",
    "{garbage}",
    "{run}",
    "{measured}",
    "{resumable}",
    "{module}",
    "{tmp}/no/such",
]
VALUES = [
    *["0", "1", "2", "3", "16", "32", "100", "101", "1024", "4096", "4097", "-1", "-8", "+5", " 7 ", "1_000", "٣"],
    *["1e9", "1.5", "0.5", "0.0", "1.0", "-0.0", "nan", "NaN", "inf", "-inf", "1e999", "1e-320", "9" * 5000],
    *["", " ", "=", "==", "abc", "résumé", "💥", "\udcff", "a=b=c", "-5", "--5"],
    *["digits", "tfds:", "tfds:mnist", "tfds:no_such", *MODES, "finetuning", "auto", "hub", "standin", "pretrained"],
    *["train", "infer", "4GiB", "512 MiB", "8GB", "0B", "-4GiB", "1e3kb", "lots", "localhost:6379", "ray://x:1"],
    *BACKBONE_NAMES,
    *["resnet50", "resnet", "~", "~/x", NO_SUCH_USER, "relative/dir", "https://example.org/m/1"],
    *FOLDERS,
]


def _tokens(flags, text):
    module_values = st.builds(
        "{}={}".format,
        st.sampled_from([*BACKBONE_NAMES, "resnet", "", "x"]),
        st.sampled_from([*FOLDERS, "", "https://example.org/m/1", "relative/dir", "~", NO_SUCH_USER]) | text,
    )
    value = st.sampled_from(VALUES) | st.integers().map(str) | st.floats().map(str) | module_values | text
    flag = st.sampled_from(flags)
    option = st.builds(lambda f, vs: [f, *vs], flag, st.lists(value, max_size=3))
    joined = st.builds(lambda f, v: [f"{f}={v}"], flag, value)
    return st.lists(option | joined | value.map(lambda v: [v]), max_size=6).map(
        lambda parts: [token for part in parts for token in part]
    )


run_argv = _tokens(RUN_FLAGS + ODD_FLAGS, _text()).map(lambda rest: ["run", *rest])
any_argv = st.builds(
    lambda first, rest: [*first, *rest],
    st.lists(st.sampled_from([*cli.COMMANDS, "rn", "lst", "-h", "--version"]) | _text(), max_size=1),
    _tokens(RUN_FLAGS + REPORT_FLAGS + COMPARE_FLAGS + ODD_FLAGS + list(cli.COMMANDS), _text()),
)
# report/compare run through `main`: no newline in their values (see
# test_usage_error_is_one_line_even_when_the_value_has_a_newline).
one_line_text = _text(exclude="\n")
report_options = _tokens(REPORT_FLAGS + ODD_FLAGS, one_line_text)
compare_options = _tokens(COMPARE_FLAGS + ODD_FLAGS, one_line_text)
run_folders = st.sampled_from(["{empty}", "{missing}", "{file}", "{garbage}", "{run}", "{resumable}"])
# {measured} has every figure: report draws its plots (half a second), so only as an explicit example.


# ------------------------------------------------------------------ helpers


# A plan as `run` records it in env.json: what `--resume` reads back.
GOOD_PLAN = (
    RunRequest(dataset="digits", backbones=("resnet_v2_50",), quick=True)
    .resolve(
        0,
        sources={name: ModuleSource("standin", f"/cache/{name}") for name in ("resnet_v2_50", "mobilenet_v2_035_128")},
        forward_flops={"resnet_v2_50": 7 * 10**9, "mobilenet_v2_035_128": 10**8},
    )
    .as_json()
)
GOOD_ENV = {"versions": {"tlbench": __version__}, "plan": GOOD_PLAN}


def _write(folder: Path, records=(), env: dict | None = None) -> None:
    """Run files as tlbench writes them (append_record's and write_json_atomic's
    format) in one write each, without their fsyncs: set-up, not the property."""
    with open(folder / TRIALS, "a") as f:
        f.writelines(json.dumps(record, sort_keys=True, default=str) + "\n" for record in records)
    if env is not None:
        (folder / ENV).write_text(json.dumps(env, indent=2, sort_keys=True, default=str) + "\n")


def _layout(tmp: Path, garbage_trials: bytes = b"", garbage_env: bytes | None = None) -> dict[str, str]:
    """Folders and files the argv placeholders stand for."""
    folders = {name: tmp / name for name in ("empty", "garbage", "run", "measured", "resumable", "module")}
    for folder in folders.values():
        folder.mkdir()
    (tmp / "file").write_text("x")
    (folders["module"] / "saved_model.pb").write_bytes(b"")
    (folders["garbage"] / TRIALS).write_bytes(garbage_trials)
    if garbage_env is not None:
        (folders["garbage"] / ENV).write_bytes(garbage_env)
    _write(
        folders["run"],
        [_record(f"t{i}", status=s, seed=i, weights="standin:x") for i, s in enumerate(("error", "oom"))],
    )
    _write(folders["run"], env={"versions": {"tlbench": __version__}, "host": "h"})
    figures = [
        {"test_accuracy": 0.5, "train_images_per_sec": 10.0 * b, "peak_memory_bytes": 2**20 * b} for b in (8, 16)
    ]
    _write(folders["measured"], [_record(f"m{b}", batch_size=b, **f) for b, f in zip((8, 16), figures)])
    _write(folders["resumable"], [_record("done", status="oom")])  # done: not run again
    _write(folders["resumable"], env=GOOD_ENV)
    return {
        **{name: str(path) for name, path in folders.items()},
        "missing": str(tmp / "missing"),
        "file": str(tmp / "file"),
    }


def _fill(argv: list[str], places: dict[str, str], tmp: Path) -> list[str]:
    def one(token: str) -> str:
        token = token.replace("{tmp}", str(tmp))
        for name, path in places.items():
            token = token.replace("{" + name + "}", path)
        return token

    return [one(token) for token in argv]


def _help_or_version_exit(error: SystemExit, out: str) -> None:
    assert error.code == 0, f"argparse exited {error.code!r} instead of raising UsageError"
    assert out.startswith("usage: ") or out == f"tlbench {__version__}\n", out


def _checked_run(args):
    """What `run` checks before Ray starts: the request, or the recorded plan."""
    if args.resume:
        return recorded_plan(check_resume_args(args))[0]
    return RunRequest.from_args(args)


def _validate(argv: list[str]):
    """What `main` does before any work: the command, the parser, and for
    `run` the request or the recorded plan. Returns the outcome ("ok" with
    what `run` would run); raises anything else."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            cli._check_command(argv)
            args = cli.build_parser().parse_args(argv)
            if args.command == "run":
                return "ok", _checked_run(args)
    except UsageError as error:
        assert str(error) and "Traceback" not in str(error)  # main prints it as one line
        return "usage error", None
    except SystemExit as error:
        _help_or_version_exit(error, out.getvalue())
        return "help", None
    return "ok", None


def _assert_valid(checked) -> None:
    """Every value of an accepted request or plan is one a trial can run with."""
    if checked is None:
        return
    assert all(name in BACKBONE_NAMES for name in checked.backbones)
    assert all(mode in MODES for mode in checked.modes)
    assert all(type(b) is int and 1 <= b <= 4096 for b in checked.batch_sizes)
    assert checked.seeds and all(type(s) is int and 0 <= s <= 2**31 - 1 for s in checked.seeds)
    protocol = checked.protocol
    assert type(protocol.split_seed) is int and protocol.split_seed >= 0
    assert protocol.train_size is None or (type(protocol.train_size) is int and protocol.train_size >= 1)
    assert 0 < protocol.batch_norm_momentum < 1
    assert protocol.batch_norm in BATCH_NORM_POLICIES
    assert checked.weights in WEIGHTS_POLICIES
    assert isinstance(checked.dataset, str) and checked.dataset


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as error:
            _help_or_version_exit(error, out.getvalue())
            status = 0
    return status, out.getvalue(), err.getvalue()


def _check_main(argv: list[str]) -> None:
    # `report` with no RUN_DIR would read results/ of the current folder:
    # the folder argument always comes first and is a temporary one.
    assert argv[1].startswith("/")
    status, _, err = _main(argv)
    assert status in (0, 1, 2), status
    if status == 2:
        assert err.count("\n") == 1 and err.endswith("\n") and err.startswith("tlbench: error: "), repr(err)
    else:
        assert "tlbench: error" not in err and "Traceback" not in err, err


def _canonical(value) -> str:
    """JSON text, so that NaN equals NaN and 1 differs from 1.0 and True."""
    return json.dumps(value, sort_keys=True)


@contextlib.contextmanager
def _run_folder():
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        yield Path(tmp)


def _read(folder: Path, trials: bytes | None, env: bytes | None):
    if trials is not None:
        (folder / TRIALS).write_bytes(trials)
    if env is not None:
        (folder / ENV).write_bytes(env)
    return results.read_run(folder)


# ------------------------------------------------------------ command line


@PROPERTY
@given(argv=run_argv)
@example(argv=["run", "--all", "--module", "resnet_v2_50={module}"])
@example(argv=["run", "--resume", "{resumable}"])
@example(argv=["run", "--resume", "{garbage}"])
@example(argv=["run", "--batch-size", "9" * 5000])
def test_run_validation_raises_only_usage_errors(argv):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        places = _layout(Path(tmp), b"\xff\n{}\n" + json.dumps(_record()).encode())
        outcome, checked = _validate(_fill(argv, places, Path(tmp)))
    _assert_valid(checked)
    if argv in (["run", "--all", "--module", "resnet_v2_50={module}"], ["run", "--resume", "{resumable}"]):
        assert outcome == "ok"


@PROPERTY
@given(argv=any_argv)
@example(argv=[])
@example(argv=["--version"])
@example(argv=["prefetch", "--module", "resnet_v2_50=https://example.org/m/1"])
def test_any_argv_parses_or_raises_a_usage_error(argv):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        places = _layout(Path(tmp))
        _validate(_fill(argv, places, Path(tmp)))


@REPORTS
@given(folder=run_folders, options=report_options, trials=garbage_trials, env=garbage_env)
@example(folder="{run}", options=["--min-accuracy", "0.5"], trials=b"", env=None)
@example(folder="{measured}", options=["--min-accuracy", "0.1", "--memory-budget", "1GiB"], trials=b"", env=None)
@example(folder="{garbage}", options=[], trials=b"\xff\n{cut\n[1]\n", env=b"{")
def test_report_exits_0_1_or_2_with_one_error_line(folder, options, trials, env):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        places = _layout(Path(tmp), trials, env)
        _check_main(_fill(["report", folder, *options], places, Path(tmp)))


@REPORTS
@given(a=run_folders, b=run_folders, options=compare_options, trials=garbage_trials, env=garbage_env)
@example(a="{run}", b="{garbage}", options=["--slowdown", "0.5"], trials=b"", env=None)
@example(a="{measured}", b="{measured}", options=["--accuracy-drop", "0"], trials=b"", env=None)
def test_compare_exits_0_1_or_2_with_one_error_line(a, b, options, trials, env):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        places = _layout(Path(tmp), trials, env)
        _check_main(_fill(["compare", a, b, *options], places, Path(tmp)))


# Values a tampered env.json may hold, per key of the recorded plan: (valid, invalid).
_STANDIN = {"kind": "standin", "location": "/cache/x", "note": None}
_PROTOCOL = {"split_seed": 0, "train_size": None, "batch_norm_momentum": 0.99}
_PROBES = [{"batch_size": 40, "status": "oom", "peak_memory_bytes": None, "error": "OOM", "seconds": 1.0}]
_SEARCH = {"device_memory_bytes": 2**30, "predicted": 40, "found": 36, "probes": _PROBES, "stopped": "done"}
PLAN_VALUES = {
    "backbones": (
        [["resnet_v2_50"], ["mobilenet_v2_035_128", "resnet_v2_50"]],
        [[], ["resnet50"], "resnet_v2_50", [1], None, [""]],
    ),
    "modes": (
        [["transfer"], ["finetune", "transfer"], ["last_block", "last_stage"]],
        [["finetuning"], [], "transfer", [None], ["last"]],
    ),
    "batch_sizes": ([[1], [16, 4096]], [[0], [4097], [1.5], ["16"], [True], [], [-8], [float("nan")]]),
    "seeds": ([[0], [0, 1], [2**31 - 1]], [[-1], [2**31], [0.5], ["0"], [], [None], [float("inf")]]),
    "dataset": (["digits", "tfds:mnist"], ["", 3, None]),
    "budget": (["quick", "cpu", "gpu"], ["q", "", 1, None]),
    "protocol": (
        [
            _PROTOCOL,
            {"split_seed": 3, "train_size": 50, "batch_norm_momentum": 0.5},
            {**_PROTOCOL, "batch_norm": "frozen"},
            {**_PROTOCOL, "batch_norm": "train"},
        ],
        [
            {**_PROTOCOL, "batch_norm": "frozn"},
            {**_PROTOCOL, "batch_norm": None},
            {**_PROTOCOL, "batch_norm": True},
            {**_PROTOCOL, "split_seed": -1},
            {**_PROTOCOL, "train_size": 0},
            {**_PROTOCOL, "batch_norm_momentum": 1.0},
            {**_PROTOCOL, "batch_norm_momentum": "0.9"},
            {**_PROTOCOL, "batch_norm_momentum": float("nan")},
            {"split_seed": 0},
            "x",
        ],
    ),
    "xla": ([True, False], [0, "yes", None]),
    "mixed_precision": ([True, False], [1, "no", None]),
    "device_memory": ([None, 2**20, 80 * 2**30], [2**20 - 1, 0, -(2**30), "2GiB", 1.5e9, True]),
    "batch_size_searches": (
        [None, {}, {"resnet_v2_50/finetune": _SEARCH}, {"resnet_v2_50/transfer": {**_SEARCH, "found": None}}],
        [
            "max",
            [],
            {"resnet_v2_50/finetune": {**_SEARCH, "found": 0}},
            {"resnet_v2_50/finetune": {**_SEARCH, "probes": "many"}},
            {"resnet_v2_50/finetune": {key: value for key, value in _SEARCH.items() if key != "probes"}},
            {"resnet_v2_50/finetune": [_SEARCH]},
        ],
    ),
    "weights": (["auto", "hub", "standin"], ["pretrained", None, ""]),
    "modules": ([{}, {"resnet_v2_50": "https://example.org/m/1"}], [{"resnet": "x"}, {"resnet_v2_50": ""}, []]),
    "sources": (
        [{"resnet_v2_50": _STANDIN, "mobilenet_v2_035_128": {**_STANDIN, "note": "unreachable"}}],
        [
            {},
            {"resnet_v2_50": {**_STANDIN, "kind": "bogus"}, "mobilenet_v2_035_128": _STANDIN},
            {"resnet_v2_50": {**_STANDIN, "location": ""}, "mobilenet_v2_035_128": _STANDIN},
            {"resnet_v2_50": {"kind": "local", "location": "/no/such/module"}, "mobilenet_v2_035_128": _STANDIN},
            {"resnet_v2_50": {**_STANDIN, "note": 3}, "mobilenet_v2_035_128": _STANDIN},
        ],
    ),
    "forward_flops": (
        [{"resnet_v2_50": 1, "mobilenet_v2_035_128": 10**8}],
        [{}, {"resnet_v2_50": 0, "mobilenet_v2_035_128": 1}, {"resnet_v2_50": 1.5, "mobilenet_v2_035_128": 1}],
    ),
}
assert set(PLAN_VALUES) == set(GOOD_PLAN), "every recorded setting has valid and invalid values here"
# Settings a plan recorded before they existed lacks: the run had none (its devices' own memory).
OPTIONAL_IN_PLAN = {"device_memory", "batch_size_searches"}


@st.composite
def tampered_plans(draw):
    """GOOD_PLAN with some values replaced (or keys removed), and whether
    every value left is valid."""
    plan, bad = dict(GOOD_PLAN), set()
    for key in draw(st.sets(st.sampled_from(sorted(PLAN_VALUES)), max_size=4)):
        good, wrong = PLAN_VALUES[key]
        choice = draw(st.sampled_from(["good", "bad", "missing"]))
        if choice == "missing":
            del plan[key]
        else:
            plan[key] = draw(st.sampled_from(good if choice == "good" else wrong))
        if not (choice == "good" or (choice == "missing" and key in OPTIONAL_IN_PLAN)):
            bad.add(key)
    # A --batch-size max plan (its searches recorded, even none yet) has no batch sizes of its own: they are not read.
    if "batch_size_searches" not in bad and plan.get("batch_size_searches") is not None:
        bad.discard("batch_sizes")
    return plan, not bad


@FEW
@given(tampered=tampered_plans())
@example(tampered=(GOOD_PLAN, True))
@example(tampered=({**GOOD_PLAN, "batch_sizes": [0]}, False))
@example(tampered=({**GOOD_PLAN, "budget": "no-such-budget"}, False))
def test_a_recorded_plan_is_accepted_exactly_when_every_value_is_valid(tampered):
    plan, valid = tampered
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        _write(Path(tmp), env={**GOOD_ENV, "plan": plan})
        outcome, checked = _validate(["run", "--resume", tmp])
        assert outcome == ("ok" if valid else "usage error"), plan
        _assert_valid(checked)
        if not valid:  # the whole command: one line naming env.json, exit 2, before Ray starts
            status, _, err = _main(["run", "--resume", tmp])
            assert status == 2 and err.count("\n") == 1 and "env.json" in err, err


def test_a_plan_recorded_before_the_batch_norm_policy_resumes_as_it_ran():
    from tlbench.driver.request import RunPlan

    recorded = json.loads(json.dumps(GOOD_PLAN))  # as env.json holds it
    assert RunPlan.from_json(recorded, "env.json").protocol.batch_norm == "frozen"  # today's default
    older = {**recorded, "protocol": {k: v for k, v in recorded["protocol"].items() if k != "batch_norm"}}
    assert RunPlan.from_json(older, "env.json").protocol.batch_norm == "train"  # 0.2.0 fine-tuned so
    with pytest.raises(UsageError, match="unknown batch_norm 'frozn'"):
        RunPlan.from_json({**recorded, "protocol": {**recorded["protocol"], "batch_norm": "frozn"}}, "env.json")


@FEW
@given(env=json_values_without(st.text(max_size=8)))
@example(env={})
@example(env={"plan": None})
def test_resume_of_any_env_json_runs_a_valid_plan_or_says_why_not(env):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        _write(Path(tmp), env=env)
        outcome, checked = _validate(["run", "--resume", tmp])
    assert outcome in ("ok", "usage error")
    _assert_valid(checked)


# Bugs: each pinned with its minimal example.


@FEW
@given(value=st.text(min_size=1, max_size=8).map(lambda s: s + "\n" + s))
@example(value="a\nb")
def test_usage_error_is_one_line_even_when_the_value_has_a_newline(value):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        _check_main(["report", tmp, "--min-accuracy", value])


@REPORTS
@given(
    field=st.sampled_from(["backbone", "mode", "status"]),
    text=st.text(max_size=6).map(lambda s: "[/]" + s),
    command=st.sampled_from(["report", "compare"]),
)
@example(field="backbone", text="[/]", command="report")
def test_report_survives_markup_like_text_in_run_files(field, text, command):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        _write(Path(tmp), [_record(**{field: text})])
        _check_main([command, tmp] + ([tmp] if command == "compare" else []))


figures = st.fixed_dictionaries(
    {},
    optional={
        "test_accuracy": st.floats(0, 1),
        "train_images_per_sec": st.floats(1, 1e4),
        "infer_images_per_sec": st.floats(1, 1e4),
        "peak_memory_bytes": st.integers(1, 2**34),
    },
).filter(lambda f: not {"test_accuracy", "train_images_per_sec", "peak_memory_bytes"} <= set(f))


@REPORTS
@given(
    record=figures.map(lambda f: _record(**f)),
    argv=st.sampled_from(
        [
            ["report", "{dir}", "--min-accuracy", "0"],
            ["report", "{dir}", "--min-throughput", "0.5", "--throughput", "infer"],
            ["report", "{dir}", "--memory-budget", "1TiB"],
            ["compare", "{dir}", "{dir}"],
        ]
    ),
)
@example(record=_record(), argv=["report", "{dir}", "--min-accuracy", "0.5"])
def test_report_constraints_and_compare_of_ok_records_missing_figures(record, argv):
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        _write(Path(tmp), [record])
        _check_main([token.replace("{dir}", tmp) for token in argv])


@FEW
@given(user=st.text(st.characters(categories=["Ll"], max_codepoint=127), min_size=1, max_size=8))
@example(user="tlbench-no-such-user")
def test_module_path_of_an_unknown_users_home(user):
    assume(os.path.expanduser(f"~{user}").startswith("~"))  # no such user here
    with contextlib.redirect_stderr(io.StringIO()):
        args = cli.build_parser().parse_args(["run", "--all", "--module", f"resnet_v2_50=~{user}/module"])
    with pytest.raises(UsageError, match="home"):
        RunRequest.from_args(args)


@FEW
@given(key=st.sampled_from(["split_seed", "seeds"]), value=st.sampled_from([float("inf"), float("-inf")]))
@example(key="seeds", value=float("inf"))
def test_resume_plan_with_an_infinite_seed(key, value):
    plan = {**GOOD_PLAN}
    if key == "seeds":
        plan["seeds"] = [value]
    else:
        plan["protocol"] = {**plan["protocol"], "split_seed": value}
    with tempfile.TemporaryDirectory(prefix="tlbench-prop-") as tmp:
        _write(Path(tmp), env={**GOOD_ENV, "plan": plan})
        with pytest.raises(UsageError, match="env.json"):
            _checked_run(cli.build_parser().parse_args(["run", "--resume", tmp]))


# ------------------------------------------------------------ record reader


@PROPERTY
@given(trials=wild_trials | st.binary(max_size=200), env=garbage_env)
@example(trials=b"\xff\xfe\n\n  \n" + b"9" * 5000 + b"\nNaN\n{", env=b"[1")
@example(
    trials=b'{"trial_id": 1, "backbone": 0, "mode": 0, "batch_size": 0, "dataset": 0, "status": 0}\n' * 2, env=None
)
def test_read_run_reads_what_it_can_and_warns_per_bad_line(trials, env):
    with _run_folder() as folder:
        run = _read(folder, trials, env)
        lines = (folder / TRIALS).read_text(errors="replace").split("\n")  # as read_run splits
    assert isinstance(run.env, dict)
    assert all(isinstance(r, dict) and all(key in r for key in REQUIRED_KEYS) for r in run.records)
    warned = [int(m.group(1)) for m in map(LINE_WARNING.match, run.warnings) if m]
    non_empty = [number for number, line in enumerate(lines, 1) if line.strip()]
    assert len(set(warned)) == len(warned) and set(warned) <= set(non_empty)
    # Every other non-empty line is a record; a trial's last record replaces its earlier ones.
    kept = [json.loads(lines[number - 1]) for number in non_empty if number not in warned]
    assert all(isinstance(r, dict) and all(key in r for key in REQUIRED_KEYS) for r in kept)
    last = {}
    for record in kept:
        last[record["trial_id"]] = record
    # ... with the fields that say which trial it is as written; any other
    # field as written or (of the wrong type) left out, with a warning.
    assert [_canonical({k: r[k] for k in REQUIRED_KEYS}) for r in run.records] == [
        _canonical({k: r[k] for k in REQUIRED_KEYS}) for r in last.values()
    ]
    for read, written in zip(run.records, last.values()):
        assert set(read) <= set(written)
        assert record_module.checked(json.loads(json.dumps(read)))[1] == [], "what read_run returns reads back clean"
    assert len(run.records) + len(warned) <= len(non_empty)
    assert len(run.records) + len(warned) == len(non_empty) - (len(kept) - len(last))


class _Line:
    """A trials.jsonl line of a known kind, for the model below."""

    def __init__(self, kind: str, text: bytes, record: dict | None = None):
        self.kind, self.text, self.record = kind, text, record

    def __repr__(self):
        return f"{self.kind}:{self.text[:60]!r}"


no_breaks = st.characters(codec="utf-8", exclude_characters="\x00", exclude_categories=["Zl", "Zp", "Cc"])
model_records = record_like(trial_ids=st.sampled_from(["a", "b", "c", "d"]), keep_all=True, typed=True)


def _well_typed(record: dict) -> bool:
    """The six fields that say which trial a record is, of their types."""
    text = all(isinstance(record[key], str) for key in ("trial_id", "backbone", "mode", "dataset"))
    whole = isinstance(record["batch_size"], int) and not isinstance(record["batch_size"], bool)
    return text and whole and record["status"] in STATUSES


# (field, a wrong value, what the record keeps of it: None drops the field)
BAD_FIELDS = [
    ("test_accuracy", "high", None),
    ("seed", 1.5, None),
    ("peak_memory_bytes", True, None),
    ("train_timing", {"images_per_sec_median": "fast", "repeats": 3}, {"repeats": 3}),
    ("infer_timing", {"repeats": None}, {}),
    ("split_sizes", {"train": "many"}, None),
    ("lr_search", [{"val_curve": [{"epoch": "one"}]}], None),  # a list with a bad item goes whole
]


def _with_bad_field(record: dict, bad) -> _Line:
    field, value, kept = bad
    written = {**record, field: value}
    read = {key: v for key, v in written.items() if key != field}
    if kept is not None:
        read[field] = kept
    read["lost_figures"] = [field]  # the reader names what it left out
    line = _Line("bad field", json.dumps(written).encode(), read)
    line.field = field
    return line


model_lines = st.one_of(
    model_records.map(lambda r: _Line("record", json.dumps(r).encode(), r)),
    json_values.filter(lambda v: not (isinstance(v, dict) and all(k in v for k in REQUIRED_KEYS))).map(
        lambda v: _Line("lacks", json.dumps(v).encode())
    ),
    record_like()
    .filter(lambda r: not all(k in r for k in REQUIRED_KEYS))
    .map(lambda r: _Line("lacks", json.dumps(r).encode())),
    st.sampled_from([b"1e999", b"NaN", b"-Infinity", b"[NaN]", b'"text"', b"null"]).map(lambda t: _Line("lacks", t)),
    record_like(keep_all=True)
    .filter(lambda r: not _well_typed(r))
    .map(lambda r: _Line("mistyped", json.dumps(r).encode())),
    st.builds(lambda r, f: _Line("garbled", _cut(json.dumps(r), f).encode()), model_records, st.floats(0, 1)),
    st.text(no_breaks, max_size=20).map(lambda t: _Line("garbled", ("#" + t).encode())),
    st.binary(max_size=20).map(lambda b: _Line("garbled", b"\xff" + b)),
    st.builds(_with_bad_field, model_records, st.sampled_from(BAD_FIELDS)),
    st.sampled_from([b"", b" ", b"\t", b"  \t "]).map(lambda t: _Line("blank", t)),
)


def _one_line(line: _Line) -> bool:
    text = line.text.decode("utf-8", errors="replace")
    return "".join(text.splitlines()) == text and "\r" not in text


@PROPERTY
@given(lines=st.lists(model_lines.filter(_one_line), max_size=12), newline=st.booleans())
def test_read_run_matches_a_model_of_the_lines(lines, newline):
    with _run_folder() as folder:
        run = _read(folder, b"\n".join(line.text for line in lines) + (b"\n" if newline else b""), None)
    expected = {}
    for line in lines:
        if line.kind in ("record", "bad field"):
            expected[line.record["trial_id"]] = line.record
    assert {r["trial_id"]: _canonical(r) for r in run.records} == {k: _canonical(r) for k, r in expected.items()}
    assert len(run.records) == len(expected)
    bad = [(number, line.kind) for number, line in enumerate(lines, 1) if line.kind not in ("record", "blank")]
    assert len(run.warnings) == len(bad)
    said_of = {
        "garbled": " is cut or garbled; skipped",
        "lacks": (" lacks ", " is "),  # ... not a record; skipped
        "mistyped": " has ",  # ... of the wrong type; skipped
        "bad field": ": ",  # <field> is <value>, not <type>; shown as -
    }
    for warning, (number, kind) in zip(run.warnings, bad):
        said = said_of[kind] if isinstance(said_of[kind], tuple) else (said_of[kind],)
        assert warning.startswith(tuple(f"{TRIALS} line {number}{s}" for s in said)), (warning, kind)
        if kind == "bad field":
            field = lines[number - 1].field
            assert warning.endswith("; shown as -") and f": {field}" in warning, warning
    records, warnings = sum(line.kind == "record" for line in lines), len(run.warnings)
    assert records + warnings == sum(line.kind != "blank" for line in lines)


valid_records = st.lists(record_like(trial_ids=st.text(max_size=10), keep_all=True, typed=True), max_size=6).map(
    lambda records: list({r["trial_id"]: r for r in records}.values())  # one record per trial
)


@ROUND_TRIP
@given(records=valid_records)
def test_appended_records_read_back_equal(records):
    with _run_folder() as folder:
        for record in records:
            results.append_record(folder, record)
        if not records:
            (folder / TRIALS).touch()
        run = results.read_run(folder)
    assert [_canonical(r) for r in run.records] == [_canonical(r) for r in records]
    assert run.warnings == []


@ROUND_TRIP
@given(
    records=valid_records,
    last=record_like(trial_ids=st.text(max_size=10), keep_all=True, typed=True),
    cut=st.floats(0, 1),
)
def test_a_cut_last_line_loses_only_that_line(records, last, cut):
    with _run_folder() as folder:
        for record in records:
            results.append_record(folder, record)
        with open(folder / TRIALS, "ab") as f:
            f.write(_cut(json.dumps(last, sort_keys=True), cut).encode())
        run = results.read_run(folder)
    assert [_canonical(r) for r in run.records] == [_canonical(r) for r in records]
    assert run.warnings == [f"{TRIALS} line {len(records) + 1} is cut or garbled; skipped"]


@PROPERTY
@given(env=garbage_env.filter(lambda e: e is not None) | st.binary(max_size=60))
@example(env=json.dumps({"versions": {"tlbench": __version__}, "x": float("nan")}).encode())
@example(env=json.dumps({"versions": {"tlbench": __version__}, "host": 1, "cpu": {"model": None}}).encode())
@example(env=b"\xef\xbb\xbf{}")
def test_env_json_of_any_content_is_read_or_warned_about(env):
    with _run_folder() as folder:
        run = _read(folder, None, env)
        try:
            parsed = json.loads((folder / ENV).read_text())
        except ValueError:
            parsed = None
    if isinstance(parsed, dict):
        # Each field as written, or (a part of the wrong type) cut or left
        # out with a warning naming it; what is read checks clean.
        changed = {key for key in parsed if key not in run.env or _canonical(run.env[key]) != _canonical(parsed[key])}
        assert set(run.env) <= set(parsed) and changed == set(run.env_dropped)
        assert run_env.checked(json.loads(json.dumps(run.env)))[1] == {}
        same_version = run.env.get("versions", {}).get("tlbench") == __version__  # as read: a bad one is left out
        dropped = [line for lines in run.env_dropped.values() for line in lines]
        assert len(run.warnings) == (0 if same_version else 1) + len(dropped)
        assert all(f"{ENV}: {line}; left out" in run.warnings for line in dropped)
    else:
        assert run.env == {} and len(run.warnings) == 1 and ENV in run.warnings[0]
    assert run.records == []


@FEW
@given(versions=json_values.filter(lambda v: v and not isinstance(v, dict)))
@example(versions=1)
def test_env_json_versions_of_any_type(versions):
    with _run_folder() as folder:
        _read(folder, None, json.dumps({"versions": versions}).encode())


@FEW
@given(record=record_like(trial_ids=st.lists(json_scalars) | st.dictionaries(st.text(), json_scalars), keep_all=True))
@example(record={"trial_id": [], "backbone": 0, "mode": 0, "batch_size": 0, "dataset": 0, "status": 0})
def test_trial_ids_of_any_type(record):
    with _run_folder() as folder:
        _read(folder, json.dumps(record).encode() + b"\n", None)


@pytest.mark.parametrize("name", [TRIALS, ENV])
@FEW
@given(depth=st.integers(1, 200_000), closed=st.booleans())
@example(depth=100_000, closed=False)
def test_deeply_nested_json(name, depth, closed):
    text = ("[" * depth + ("]" * depth if closed else "")).encode()
    with _run_folder() as folder:
        _read(folder, text if name == TRIALS else None, text if name == ENV else b"{}")


# ------------------------------------------- report and configurations


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
# Throughputs above 0 (or NaN, inf): 0 images/s is test_advice_of_a_backbone_with_zero_throughput's.
throughputs = st.floats(1e-3, 1e5) | st.sampled_from([float("nan"), float("inf")])
metrics = st.floats(0, 1) | finite_or_not
sizes = st.integers(0, 2**40)
timing = st.fixed_dictionaries(
    {},
    optional={
        "images_per_sec_median": st.floats(0, 1e5) | finite_or_not,
        "images_per_sec_q1": st.floats(0, 1e5),
        "images_per_sec_q3": st.floats(0, 1e5),
        "repeats": st.integers(0, 10),
    },
)
well_typed_records = st.fixed_dictionaries(
    {
        "trial_id": st.text(max_size=10),
        "backbone": st.sampled_from(BACKBONE_NAMES[:3]) | st.text(max_size=6),
        "mode": st.sampled_from(MODES) | st.text(max_size=6),
        "batch_size": st.integers(1, 4096),
        "dataset": st.text(max_size=6),
        "status": st.sampled_from(["ok", "ok", "oom", "error"]),
    },
    optional={
        "seed": st.integers(0, 100),
        "weights": st.sampled_from(["tfhub:h", "standin:ResNet50V2", "local:/m"]) | st.text(max_size=6),
        "device": st.sampled_from(["CPU:AMD EPYC", "GPU:A100"]),
        "test_accuracy": metrics,
        "val_accuracy": metrics,
        "train_images_per_sec": throughputs,
        "infer_images_per_sec": throughputs,
        "train_timing": timing,
        "infer_timing": timing,
        "train_mfu": metrics,
        "timing_quality": st.sampled_from(["measured", "smoke"]) | st.text(max_size=6),
        "unstable": st.dictionaries(
            st.sampled_from(["train_images_per_sec", "infer_images_per_sec", "peak_flops_per_sec"])
            | st.text(max_size=6),
            st.text(max_size=10),
            max_size=2,
        ),
        "peak_memory_bytes": sizes,
        "activation_memory_bytes": sizes | st.integers(-(2**30), 0),
        "predicted_activation_bytes": sizes,
        "predicted_activation_bytes_per_image": sizes,
        "time_to_accuracy_seconds": st.floats(0, 1e4),
        "seconds": st.floats(0, 1e5),
        "kept_epoch": st.integers(0, 10),
        "split_sizes": st.fixed_dictionaries({"train": st.integers(0, 9), "val": st.integers(0, 9)}),
        "split_seed": st.integers(0, 9),
        "learning_rate_rule": st.text(max_size=10),
        "error": st.none() | st.text(max_size=10),
    },
)
well_typed_env = st.fixed_dictionaries(
    {},
    optional={
        "host": st.text(max_size=6),
        "cpu": st.fixed_dictionaries({}, optional={"model": st.text(max_size=6), "logical_cores": st.integers(1, 64)}),
        "gpus": st.lists(st.text(max_size=6), max_size=2),
        "versions": st.dictionaries(st.text(max_size=6), st.none() | st.text(max_size=6), max_size=3),
        "git": st.fixed_dictionaries({}, optional={"commit": st.none() | st.text(max_size=8)}),
        "command": st.text(max_size=10),
        "budget": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=6),
                "learning_rates": st.dictionaries(st.sampled_from(MODES), st.lists(st.floats(1e-6, 1), max_size=3)),
                "patience": st.dictionaries(st.sampled_from(MODES), st.integers(0, 5)),
                "transfer_epochs": st.integers(1, 9),
                "finetune_epochs": st.integers(1, 9),
            },
        ),
        "plan": st.fixed_dictionaries(
            {},
            optional={
                "protocol": st.fixed_dictionaries(
                    {},
                    optional={
                        "split_seed": st.integers(0, 9),
                        "train_size": st.none() | st.integers(1, 99),
                        "batch_norm_momentum": st.floats(0.01, 0.99),
                    },
                )
            },
        ),
    },
)


def _configuration_key(record: dict) -> tuple:
    return tuple(str(record.get(k)) for k in ("backbone", "mode", "batch_size", "weights", "device"))


@PROPERTY
@given(records=st.lists(well_typed_records, max_size=8), env=st.none() | well_typed_env, garbage=st.booleans())
def test_report_and_configurations_of_well_typed_records(records, env, garbage):
    with _run_folder() as folder:
        _write(folder, records)
        with open(folder / TRIALS, "ab") as f:
            f.write(b"{cut\n" if garbage else b"")
        if env is not None:
            _write(folder, env=env)
        run = results.read_run(folder)
    configs = analysis.configurations(run.records)
    assert len(configs) == len({_configuration_key(r) for r in run.records})
    assert all(c.seeds for c in configs)
    text = reporting.render_markdown(run)
    assert text.startswith(f"# tlbench run {folder.name}\n")
    for record in run.records:
        if record["status"] != "ok":
            assert f"`{record['trial_id']}`: {record['status']}" in text


@FEW
@given(
    zero=st.sampled_from([0.0, -0.0]),
    faster=st.floats(1e-3, 1e5),
    accuracies=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
@example(zero=0.0, faster=1.0, accuracies=(0.5, 0.5))
def test_advice_of_a_backbone_with_zero_throughput(zero, faster, accuracies):
    figures = {"peak_memory_bytes": 2**20, "mode": "transfer"}
    records = [
        _record("a", backbone="resnet_v2_50", test_accuracy=accuracies[0], train_images_per_sec=zero, **figures),
        _record(
            "b", backbone="mobilenet_v2_035_128", test_accuracy=accuracies[1], train_images_per_sec=faster, **figures
        ),
    ]
    with _run_folder() as folder:
        _write(folder, records)
        run = results.read_run(folder)
    reporting.render_markdown(run)


any_typed_records = st.lists(record_like(trial_ids=st.text(max_size=6), keep_all=True), max_size=6)


@PROPERTY
@given(records=any_typed_records)
@example(records=[_record(batch_size="a")])
def test_configurations_of_records_with_fields_of_any_type(records):
    with _run_folder() as folder:
        _write(folder, records)
        run = results.read_run(folder)
    analysis.configurations(run.records)


@PROPERTY
@given(
    records=any_typed_records,
    env=st.none() | st.dictionaries(st.sampled_from(["cpu", "gpus", "budget", "plan", "git", "host"]), json_values),
)
@example(records=[], env={"cpu": []})
def test_render_markdown_of_run_files_with_fields_of_any_type(records, env):
    with _run_folder() as folder:
        _write(folder, records)
        (folder / TRIALS).touch()
        if env is not None:
            _write(folder, env=env)
        run = results.read_run(folder)
    reporting.render_markdown(run)
