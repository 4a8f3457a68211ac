"""env.json: one definition of what a run ran on and what it ran (`RunEnv`),
one constructor the driver writes it with (`make`) and one checker every
reader passes it through (`checked`), both schema.py's, as the trial record's (record.py).

A field of the wrong type is left out where it is read, with a warning
naming it (`plan.batch_sizes[0] is 1.5, not a whole number`), so a reader can
take every field it finds at its declared type; `--resume` refuses a plan
that lost a part. Fields this version doesn't know are kept as they are.

The resolved plan is under ENV_KEY. The driver writes it
(driver/request.py's `RunPlan.as_json`) and `--resume` reads it back through
checks.py; reports read it from here, never from the driver. Runs of tlbench
0.1 have `request`, `selection` and `weights` instead: `protocol(env)` reads
either.
"""

from __future__ import annotations

import typing
from typing import Final, TypedDict

from tlbench import schema
from tlbench.batch_search import BatchSizeSearch

ENV_KEY: Final = "plan"  # the resolved plan, which --resume reads
LEGACY_KEY: Final = "request"  # tlbench 0.1's record of the command line, in place of the plan


class Cpu(TypedDict, total=False):
    model: str
    logical_cores: int | None  # None where psutil can't tell
    physical_cores: int | None


class Git(TypedDict, total=False):
    commit: str | None  # None: tlbench is not run from a git checkout
    dirty: bool | None  # uncommitted changes to tracked files


class Cluster(TypedDict, total=False):
    """driver/cluster.py's ClusterInfo.env_fields()."""

    address: str  # "local" or what was joined
    nodes: int
    cpus: int  # logical CPUs, all nodes
    gpus: int
    trial_resources: dict[str, float]  # Ray resources per trial: num_cpus, num_gpus


class Budget(TypedDict, total=False):
    """plan.Budget's fields, every one (and an earlier version's)."""

    name: str  # quick / cpu / gpu
    max_train_images: int | None
    max_eval_images: int | None
    finetune_epochs: int
    probe_penalties: list[float]  # the linear probe's L2 penalties (L-BFGS)
    learning_rates: dict[str, list[float]]  # fine-tuning's: {"finetune": [...]}
    patience: dict[str, int]  # {"finetune": N}
    # Runs before the L-BFGS probe: the Adam probe's most epochs (learning_rates and patience had "transfer").
    transfer_epochs: int
    warmup_steps: int
    min_timed_steps: int
    min_timed_seconds: float
    timed_repeats: int


class Dataset(TypedDict, total=False):
    name: str  # "digits", tfds:NAME or an image folder's absolute path
    images: int  # usable images
    classes: int
    skipped_files: int
    skipped: dict[str, int]  # {reason: files}
    skipped_examples: dict[str, list[str]]  # {reason: a few of those files}
    budget_warning: str | None  # too few images for the budget


class Protocol(TypedDict, total=False):
    """plan.Protocol's fields."""

    split_seed: int
    train_size: int | None  # --train-size
    batch_norm_momentum: float
    batch_norm: str  # frozen / train; absent before 0.2.x, which fine-tuned with "train"


class Source(TypedDict, total=False):
    """plan.ModuleSource's fields."""

    kind: str  # local / tfhub / standin
    location: str
    note: str | None  # why a fallback


class Plan(TypedDict, total=False):
    """driver/request.py's RunPlan.as_json(): the request resolved on its cluster."""

    backbones: list[str]
    modes: list[str]
    batch_sizes: list[int]
    seeds: list[int]
    dataset: str
    budget: str  # a name in plan.BUDGETS
    protocol: Protocol
    xla: bool
    mixed_precision: bool
    device_memory: int | None  # --device-memory, bytes; None: each trial its device's own
    batch_size_searches: dict[str, BatchSizeSearch] | None  # --batch-size max: per "backbone/mode", as each ends
    weights: str  # the policy asked for: auto / hub / standin
    modules: dict[str, str]  # --module overrides as given
    sources: dict[str, Source]  # per backbone, chosen once for the run
    forward_flops: dict[str, int]  # per backbone, one image's forward pass


class Request(TypedDict, total=False):
    """tlbench 0.1's `request`, read for its protocol. Its `chosen` (0.1's
    --backbone/--mode/--batch-size, names and numbers in one object) is kept
    unchecked, as 0.1's `selection` is."""

    dataset: str
    seed: int
    seeds: int
    quick: bool
    weights: str
    modules: dict[str, str]
    protocol: Protocol
    xla: bool
    mixed_precision: bool


class RunEnv(TypedDict, total=False):
    # --- the machine (environment.machine_fields) ---
    versions: dict[str, str | None]  # python, tlbench and environment.PACKAGES; None: not installed
    host: str
    platform: str
    cpu: Cpu
    memory_bytes: int
    gpus: list[str]  # names on the driver's machine
    cluster: Cluster
    git: Git
    command: str  # the command line, as a shell would take it
    # --- the run (driver/runner.py) ---
    started_at: str  # UTC, ISO 8601 (milliseconds), as the command started a new run; --resume keeps it
    budget: Budget
    dataset: Dataset
    plan: Plan  # ENV_KEY
    # --- tlbench 0.1, in place of the plan ---
    request: Request  # LEGACY_KEY
    weights: dict[str, Source]  # per backbone


# Fields that only runs of earlier versions wrote.
EARLIER_BUDGET_FIELDS = frozenset({"transfer_epochs"})

FIELDS: dict[str, object] = typing.get_type_hints(RunEnv)
assert ENV_KEY in FIELDS and LEGACY_KEY in FIELDS


def make(**fields) -> RunEnv:
    """env.json's contents from its fields, checked against the definition:
    an unknown field or a value of the wrong type is a bug, raised as
    TypeError rather than written. Tuples become lists."""
    return typing.cast(RunEnv, schema.built(fields, FIELDS, "env.json"))


def checked(payload: dict) -> tuple[RunEnv, dict[str, list[str]]]:
    """env.json's object with every part of the wrong type left out, and per
    top-level field that lost a part (or went whole), one line per part
    naming it (`plan.seeds[0] is '0', not a whole number`)."""
    env, dropped = schema.kept(payload, FIELDS)
    return typing.cast(RunEnv, env), dropped


def protocol(env: RunEnv) -> Protocol:
    """How accuracy was measured: the plan's protocol, or in a run of tlbench
    0.1 its request's; {} where neither says."""
    if ENV_KEY in env:
        return env[ENV_KEY].get("protocol", {})
    return env.get(LEGACY_KEY, {}).get("protocol", {})
