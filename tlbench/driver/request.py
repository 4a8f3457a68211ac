"""What a run is asked to do, and what it resolved to.

- `RunRequest`: what the command line asked for, checked before Ray starts.
  Backbones, modes and batch sizes left out take the default grid of the
  cluster the run lands on.
- `RunPlan`: the request resolved on a cluster: the grid's selection, the
  budget, each backbone's weights source and FLOP count. It is written whole
  to env.json (under run_env.ENV_KEY) and read back whole by `--resume`: its
  JSON types through env.json's checker (run_env.Plan), its values through
  the same checks as the command line, so a resumed run runs exactly the
  grid it recorded, with the weights it recorded, on a cluster of any shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tlbench import checks, data, record, schema
from tlbench.errors import UsageError, os_reason
from tlbench.files import expand_user, is_url
from tlbench.plan import (
    BATCH_NORM_POLICIES,
    BUDGETS,
    DEFAULT_BATCH_NORM,
    DEFAULT_BATCH_NORM_MOMENTUM,
    Protocol,
    build_grid,
    choose_budget,
    default_selection,
)
from tlbench.registry import check_ladder, check_mode, get_backbone, has_mode
from tlbench.run_env import ENV_KEY, Plan

WEIGHTS_POLICIES = ("auto", "hub", "standin")
SOURCE_KINDS = ("local", "tfhub", "standin")


@dataclass(frozen=True)
class RunRequest:
    """A new run as the command line asked for it."""

    dataset: str  # "digits", tfds:NAME, or an image folder's absolute path
    backbones: tuple[str, ...] = ()  # empty: the default grid's
    modes: tuple[str, ...] = ()
    batch_sizes: tuple[int, ...] = ()
    seeds: tuple[int, ...] = (0,)
    quick: bool = False
    weights: str = "auto"  # WEIGHTS_POLICIES
    modules: dict = field(default_factory=dict)  # --module overrides, {backbone: local path or URL}
    protocol: Protocol = field(default_factory=Protocol)
    xla: bool = False
    mixed_precision: bool = False
    device_memory: int | None = None  # --device-memory, bytes
    max_batch_size: bool = False  # --batch-size max

    def resolve(self, cluster_gpus: int, sources: dict, forward_flops: dict) -> RunPlan:
        """The plan on a cluster with `cluster_gpus` GPUs (the default grid
        and the budget depend on it), given the prepared weights sources and
        FLOP counts of the selection's backbones."""
        default = default_selection(cluster_gpus)
        return RunPlan(
            backbones=self.backbones or tuple(default["backbones"]),
            modes=self.modes or tuple(default["modes"]),
            batch_sizes=() if self.max_batch_size else self.batch_sizes or tuple(default["batch_sizes"]),
            seeds=self.seeds,
            dataset=self.dataset,
            budget=choose_budget(self.quick, cluster_gpus).name,
            protocol=self.protocol,
            xla=self.xla,
            mixed_precision=self.mixed_precision,
            device_memory=self.device_memory,
            batch_size_searches={} if self.max_batch_size else None,
            weights=self.weights,
            modules=dict(self.modules),
            sources=dict(sources),
            forward_flops=dict(forward_flops),
        )

    def backbones_on(self, cluster_gpus: int) -> tuple[str, ...]:
        return self.backbones or tuple(default_selection(cluster_gpus)["backbones"])

    @classmethod
    def for_screen(cls, args) -> RunRequest:
        """The request of `screen`'s parsed arguments: its backbones (none: every one known) in transfer."""
        backbones = tuple(dict.fromkeys(get_backbone(name).name for name in args.backbone or ()))
        modules = parse_module_overrides(args.module)
        dataset = dataset_argument(args.dataset)
        return cls(dataset, backbones, ("transfer",), quick=args.quick, weights=args.weights, modules=modules)

    @classmethod
    def from_args(cls, args) -> RunRequest:
        """The request of `run`'s parsed arguments (without --resume)."""
        chosen = {"backbones": args.backbone, "modes": args.mode, "batch_sizes": args.batch_size}
        if args.all and any(chosen.values()):
            raise UsageError("--all runs the default grid; drop it, or drop --backbone/--mode/--batch-size")
        if not args.all and not any(chosen.values()):
            raise UsageError("say what to run: --all for the default grid, or --backbone/--mode/--batch-size")
        if args.seed + args.seeds - 1 > checks.MAX_SEED:
            raise UsageError(
                f"--seed {args.seed} with --seeds {args.seeds} goes past the largest seed, {checks.MAX_SEED}"
            )
        backbones = tuple(dict.fromkeys(get_backbone(name).name for name in args.backbone or ()))
        modes = tuple(dict.fromkeys(check_mode(mode) for mode in args.mode or ()))
        for backbone in backbones:
            for mode in modes:
                check_ladder(backbone, mode)
        batch_sizes = tuple(dict.fromkeys(args.batch_size or ()))
        if checks.MAX_BATCH in batch_sizes and len(batch_sizes) > 1:
            raise UsageError("--batch-size max searches each backbone x mode's batch size: give it alone")
        return cls(
            dataset=dataset_argument(args.dataset),
            backbones=backbones,
            modes=modes,
            batch_sizes=() if checks.MAX_BATCH in batch_sizes else batch_sizes,
            seeds=tuple(range(args.seed, args.seed + args.seeds)),
            quick=args.quick,
            weights=args.weights,
            modules=parse_module_overrides(args.module),
            protocol=Protocol(args.split_seed, args.train_size, args.batch_norm_momentum, args.batch_norm),
            xla=args.xla,
            mixed_precision=args.mixed_precision,
            device_memory=args.device_memory,
            max_batch_size=checks.MAX_BATCH in batch_sizes,
        )


# What --resume takes from the run instead: each of these given with it is
# refused, with its flag named. (argparse attribute, flag, its default)
RECORDED_SETTINGS = (
    ("all", "--all", False),
    ("backbone", "--backbone", None),
    ("mode", "--mode", None),
    ("batch_size", "--batch-size", None),
    ("quick", "--quick", False),
    ("module", "--module", None),
    ("dataset", "--dataset", data.EMBEDDED),
    ("seed", "--seed", 0),
    ("seeds", "--seeds", 1),
    ("split_seed", "--split-seed", 0),
    ("train_size", "--train-size", None),
    ("batch_norm_momentum", "--batch-norm-momentum", DEFAULT_BATCH_NORM_MOMENTUM),
    ("batch_norm", "--batch-norm", DEFAULT_BATCH_NORM),
    ("weights", "--weights", "auto"),
    ("xla", "--xla", False),
    ("mixed_precision", "--mixed-precision", False),
    ("device_memory", "--device-memory", None),
)


def check_resume_args(args) -> Path:
    """--resume's folder; a setting given beside it is a UsageError (the
    resumed run keeps the settings it recorded)."""
    given = [flag for attribute, flag, default in RECORDED_SETTINGS if getattr(args, attribute) != default]
    if given:
        raise UsageError(f"--resume keeps the grid and settings of that run; drop {', '.join(given)}")
    if not args.resume.strip():  # Path('') is the current folder
        raise UsageError("--resume is empty: give a run folder, e.g. results/<run-id>")
    return expand_user(args.resume, "--resume")


@dataclass(frozen=True)
class RunPlan:
    """A run resolved on its cluster: what env.json records and --resume reads."""

    backbones: tuple[str, ...]
    modes: tuple[str, ...]
    batch_sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    dataset: str
    budget: str  # a name in plan.BUDGETS
    protocol: Protocol
    xla: bool
    mixed_precision: bool
    device_memory: int | None  # --device-memory: bytes of every trial's device, emulated
    # --batch-size max: {"backbone/mode": BatchSizeSearch} of the searches done (batch_sizes is empty); else None
    batch_size_searches: dict | None
    weights: str  # the policy asked for
    modules: dict  # --module overrides as given
    sources: dict  # {backbone: plan.ModuleSource}, chosen once for the run
    forward_flops: dict  # {backbone: FLOPs per image}: orders the grid

    def grid(self):
        return build_grid(
            self.backbones,
            self.modes,
            self.batch_sizes,
            self.dataset,
            self.seeds,
            BUDGETS[self.budget],
            self.sources,
            protocol=self.protocol,
            xla=self.xla,
            mixed_precision=self.mixed_precision,
            device_memory=self.device_memory,
            batch_size_searches=self.batch_size_searches,
        )

    def spec(self, backbone: str, mode: str, batch_size: int):
        """The first seed's trial of one pair at `batch_size`: what a --batch-size max probe tries."""
        pair = replace(self, backbones=(backbone,), modes=(mode,), batch_sizes=(batch_size,), batch_size_searches=None)
        return pair.grid()[0]

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Every backbone x mode the grid has (a partial mode only where the registry knows its blocks)."""
        return [(b, m) for b in self.backbones for m in self.modes if has_mode(b, m)]

    def as_json(self) -> dict:
        payload = asdict(self)
        payload["sources"] = {name: asdict(source) for name, source in self.sources.items()}
        return payload

    @classmethod
    def from_json(cls, payload, where: str) -> RunPlan:
        """A recorded plan: its JSON types as env.json's checker reads them
        (numbers must be JSON numbers), every value checked as the command
        line checks it; a bad or missing one is a UsageError naming it and
        `where`."""
        if not isinstance(payload, dict):
            raise UsageError(f"{where} has no run plan (an interrupted start, or another tlbench version)")
        wrong = schema.problems(payload, Plan, ENV_KEY)
        if wrong:
            raise UsageError(f"{where}: {wrong[0]}")
        recorded = _Recorded(payload)
        try:
            backbones = recorded.items("backbones", lambda name: get_backbone(checks.text("backbone", name)).name)
            protocol = _Recorded(recorded.mapping("protocol"), "protocol.")
            sources, flops = recorded.mapping("sources"), recorded.mapping("forward_flops")
            searches = recorded.optional("batch_size_searches", _searches)
            return cls(
                backbones=backbones,
                modes=recorded.items("modes", lambda mode: check_mode(checks.text("mode", mode))),
                batch_sizes=() if searches is not None else recorded.items("batch_sizes", checks.batch_size),
                seeds=recorded.items("seeds", checks.seed),
                dataset=recorded.checked("dataset", lambda value: checks.text("dataset", value)),
                budget=recorded.choice("budget", tuple(BUDGETS)),
                protocol=Protocol(
                    split_seed=protocol.checked("split_seed", checks.seed),
                    train_size=protocol.optional("train_size", checks.train_size),
                    batch_norm_momentum=protocol.checked("batch_norm_momentum", checks.momentum),
                    # Runs recorded before the policy was fine-tuned with BatchNorm in training mode.
                    batch_norm=protocol.choice("batch_norm", BATCH_NORM_POLICIES, missing="train"),
                ),
                xla=recorded.checked("xla", lambda value: checks.flag("xla", value)),
                mixed_precision=recorded.checked(
                    "mixed_precision", lambda value: checks.flag("mixed_precision", value)
                ),
                device_memory=recorded.optional("device_memory", checks.device_memory),
                batch_size_searches=searches,
                weights=recorded.choice("weights", WEIGHTS_POLICIES),
                modules={
                    get_backbone(checks.text("backbone", name)).name: checks.text(f"module of {name}", location)
                    for name, location in recorded.mapping("modules").items()
                },
                sources={name: _source(name, sources.get(name)) for name in backbones},
                forward_flops={name: _flops(name, flops.get(name)) for name in backbones},
            )
        except UsageError as error:
            raise UsageError(f"{where}: {error}") from None


class _Recorded:
    """Values of a recorded JSON object, each present (their JSON types are
    the checker's: `from_json` ran it first)."""

    def __init__(self, payload: dict, prefix: str = ""):
        self.payload, self.prefix = payload, prefix

    def value(self, key: str):
        if key not in self.payload:
            raise UsageError(f"the run plan lacks '{self.prefix}{key}'")
        return self.payload[key]

    def checked(self, key: str, check):
        """`check(value)`, its complaint naming the key."""
        value = self.value(key)
        try:
            return check(value)
        except UsageError as error:
            raise UsageError(f"'{self.prefix}{key}': {error}") from None

    def optional(self, key: str, check):
        return None if self.payload.get(key) is None else self.checked(key, check)

    def items(self, key: str, check) -> tuple:
        values = self.value(key)
        if not values:
            raise UsageError(f"'{self.prefix}{key}' must be a non-empty list, got {values!r}")
        return self.checked(key, lambda values: tuple(dict.fromkeys(check(v) for v in values)))

    def mapping(self, key: str) -> dict:
        return self.value(key)

    def choice(self, key: str, known: tuple, missing: str | None = None) -> str:
        """One of `known`; `missing`, when given, stands for an absent key."""
        value = self.payload.get(key, missing) if missing is not None else self.value(key)
        if value not in known:
            raise UsageError(f"unknown {key} {value!r}: known: {', '.join(known)}")
        return value


def recorded_plan(run_dir: Path) -> tuple[RunPlan, frozenset]:
    """The plan `run_dir` recorded, checked, and the trial ids that are done
    (`record.done`: by the last record of each trial, as the report counts)."""
    from tlbench import results

    run = results.read_run(run_dir)
    where = str(run_dir / results.ENV)
    if ENV_KEY in run.env_dropped:  # read_run left out a part of the wrong type: not the plan that ran
        raise UsageError(f"{where}: {run.env_dropped[ENV_KEY][0]}")
    plan = RunPlan.from_json(run.env.get(ENV_KEY), where)
    return plan, frozenset(r["trial_id"] for r in run.records if record.done(r))


def _source(backbone: str, payload):
    """A recorded weights source, checked: a local module must still be a
    SavedModel folder."""
    from tlbench.plan import ModuleSource

    if payload is None:
        raise UsageError(f"no weights source recorded for {backbone}")
    kind = payload.get("kind")
    if kind not in SOURCE_KINDS:
        raise UsageError(f"weights source of {backbone} has kind {kind!r}; known: {', '.join(SOURCE_KINDS)}")
    location = checks.text(f"weights location of {backbone}", payload.get("location"))
    if kind == "local":
        location = check_local_module(location)
    return ModuleSource(kind, location, payload.get("note"))


def _searches(payload: dict) -> dict:
    """Recorded searches (their types checked): each found batch a batch size."""
    for key, search in payload.items():
        if search.get("found") is not None:
            checks.batch_size(search["found"])
        if search.get("probes") is None:
            raise UsageError(f"the search of {key} has no probes")
    return payload


def _flops(backbone: str, value: int | None) -> int:
    if value is None or value <= 0:
        raise UsageError(f"FLOPs per image of {backbone} must be a whole number above 0, got {value!r}")
    return value


def check_local_module(path: str) -> str:
    """An existing SavedModel directory, as an absolute path."""
    module = expand_user(path, "module path")
    try:
        if not module.is_dir():
            raise UsageError(f"module path '{path}' is not a directory")
    except OSError as error:  # a name too long to look up
        raise UsageError(f"module path '{path}': {os_reason(error)}") from None
    if not any((module / f).exists() for f in ("saved_model.pb", "saved_model.pbtxt")):
        raise UsageError(f"module path '{path}' holds no saved_model.pb; give a SavedModel or TF Hub module folder")
    return str(module.resolve())


def parse_module_overrides(items) -> dict[str, str]:
    """`--module NAME=PATH_OR_URL` values as {backbone name: location}."""
    overrides = {}
    for item in items or ():
        name, sep, location = item.partition("=")
        if not sep or not name or not location:
            raise UsageError(f"--module takes NAME=PATH_OR_URL, got '{item}'")
        get_backbone(name)  # unknown names are usage errors
        overrides[name] = location if is_url(location) else check_local_module(location)
    return overrides


def dataset_argument(dataset: str) -> str:
    """A folder as its absolute path, anything else as typed (open_dataset
    says what is wrong with it)."""
    data.check_given(dataset)  # '' would resolve to the current folder
    folder = not data.is_named(dataset) and data.exists(Path(dataset))
    return str(Path(dataset).resolve()) if folder else dataset
