"""tlbench: which TF Hub backbone, in which mode, at which batch size?

The code is split by the process it runs in. `driver/` and `reports/` run in
the driver, the process of the command, and never import TensorFlow.
`worker/` runs inside a trial's Ray worker process, or in a fresh process the
driver starts through `isolated` for what must touch TensorFlow before the
trials (weights, FLOP counts, TFDS exports). The modules at the top are
shared by both sides and import no TensorFlow either.

| module                  | its job                                                                  |
| ----------------------- | ------------------------------------------------------------------------ |
| `cli.py`                | the command line: parse, check, dispatch; usage errors exit 2            |
| `api.py`                | `tlbench.run(...)` and `tlbench.load_run(path)` for notebooks            |
| `checks.py`             | each user-given value checked once, for the command line and `--resume`  |
| `errors.py`             | the errors that end a command with one line; an exception as that line   |
| `files.py`              | cache folder and entries made once, `~` paths, atomic files, folder locks |
| `registry.py`           | the backbones tlbench knows (handle, size, stand-in, block layout), modes |
| `plan.py`               | budgets, protocol, weights sources, trial specs, the grid, its order     |
| `record.py`             | the trial record: its fields, types and ranges; finished or not          |
| `schema.py`             | JSON checked against TypedDicts, types and ranges: records and env.json  |
| `figures.py`            | a trial's figures, once: table column, trials.csv, HParams, live line    |
| `formats.py`            | how a figure is written: accuracy, images/s, bytes, percent, mean ± std  |
| `run_env.py`            | env.json: its fields and types, the plan's key; checked as records are   |
| `stability.py`          | when a timed figure can't be trusted: tolerances, judgement, smoke       |
| `data.py`               | datasets as arrays or files, checked; stratified splits                  |
| `imagefolder.py`        | an image folder walked without blocking; decode verdicts, skip reasons   |
| `results.py`            | run folders: env.json, trials.jsonl appends, reading back, the lock      |
| `environment.py`        | versions, CPU, GPUs, git commit, command line                            |
| `isolated.py`           | a worker-side function called in a fresh process, JSON in and out        |
| `device_memory.py`      | a device's memory: its size, a smaller one emulated, the batch that fits |
| `batch_search.py`       | `--batch-size max`: which batch to try next, when the search ends        |
| `listing.py`            | `list`: the backbones with their FLOPs per image, modes, datasets        |
| `linear.py`             | LogME, a ridge probe, the logistic probe (L-BFGS): numpy and scipy       |
| `driver/request.py`     | the run request from the command line; the resolved plan in env.json     |
| `driver/runner.py`      | a run or a resume: lock, env.json, records as trials end, live view      |
| `driver/cluster.py`     | Ray: start or join a cluster, place trials, collect their records        |
| `driver/frozen_tasks.py`| the frozen inputs' tasks: one per backbone, before its trials            |
| `driver/carry.py`       | fine-tuning's rate searched at the smallest batch, carried to the rest   |
| `driver/stopping.py`    | SIGTERM stops a command as Ctrl-C does; blocks that finish first         |
| `driver/max_batch.py`   | `--batch-size max` on the cluster: prediction, probes, each search kept  |
| `driver/progress.py`    | the live view: done / running / failed, where, time left; early answers  |
| `driver/estimate.py`    | a trial's seconds predicted from its backbone's frozen task and protocol |
| `driver/screen.py`      | `screen`: every backbone, one features pass each, ranked; what to run    |
| `driver/prefetch.py`    | `prefetch`: modules into TFHUB_CACHE_DIR for nodes without internet      |
| `worker/entry.py`       | what the driver calls on the worker side: weights, FLOPs, prefetch       |
| `worker/trial.py`       | one trial in one worker process: spec in, record out, phase by phase     |
| `worker/fit_probe.py`   | a batch tried as a short trial in a fresh worker; the graph's prediction |
| `worker/devices.py`     | GPU memory growth, device labels, mixed precision, out-of-memory errors  |
| `worker/weights.py`     | where a backbone comes from: `--module`, TF Hub cache/network, stand-in  |
| `worker/hub_cache.py`   | a TF Hub handle resolved through TFHUB_CACHE_DIR or the network          |
| `worker/convert.py`     | TF1 Hub modules' TF-Slim checkpoints mapped onto tf_keras architectures  |
| `worker/savedmodel.py`  | the SavedModels tlbench exports: TF Hub's reusable format, one function  |
| `worker/model.py`       | Input -> hub.KerasLayer -> Dense, the variables a mode trains, the steps |
| `worker/pipeline.py`    | `tf.data` input pipelines: resize, cache, batch; timed streams           |
| `worker/training.py`    | the protocol: linear probe, fine-tuning, successive halving, evaluation  |
| `worker/boundary.py`    | a backbone cut at its first trained layer; training on its activations   |
| `worker/frozen.py`      | a backbone's frozen inputs, once per run, shared by its trials           |
| `worker/screen.py`      | `screen`'s worker side: one features pass, what it tells                 |
| `worker/measure.py`     | timed windows (median, IQR), memory vs a baseline, matmul peak probe     |
| `worker/graphcost.py`   | from a model's graph: FLOPs per image, activation bytes a step keeps     |
| `worker/liveness.py`    | which buffers a step holds at once: the step-peak simulation             |
| `worker/kernel_scratch.py` | working buffers kernels take beside the graph's tensors (Eigen's)     |
| `worker/costs.py`       | those counts for a trial's model or a backbone, cached; memory refusal   |
| `worker/tfds_export.py` | `tfds:NAME` datasets written once as image folders                       |
| `worker/decode_check.py` | which image files a trial decodes; the file a failed trial choked on   |
| `reports/rules.py`      | each rule once: a result, ranking on accuracy, chance, both noise rules  |
| `reports/columns.py`    | the reports' column lists; a table as rich, Markdown or HTML             |
| `reports/configs.py`    | across trials: configurations over seeds, memory against batch size     |
| `reports/decide.py`     | recommendation, Pareto front, the best configuration under constraints   |
| `reports/ladder.py`     | does fine-tuning pay: each backbone's rungs, what a step up buys, which  |
| `reports/timing.py`     | when the answers came, whether the early ranking held, where time went   |
| `reports/analysis.py`   | `analyse(run)`: all of the above once per run, what every renderer reads |
| `reports/document.py`   | the report as one document: sections of text, notes, tables, images     |
| `reports/report.py`     | that document as `report.md` and `report.html`, with plots and exports   |
| `reports/terminal.py`   | that document in a terminal (tables fitted to it); `compare`, `list`     |
| `reports/plots.py`      | the report's PNG plots (matplotlib)                                      |
| `reports/export.py`     | `trials.csv` and `tensorboard/` (HParams sessions, validation curves)    |
| `reports/compare.py`    | `compare RUN_A RUN_B`: changes per configuration, regressions            |
"""

import os

# tensorflow_hub.KerasLayer is a tf-keras layer; TF >= 2.16 defaults to Keras 3
# unless this is set before TensorFlow is first imported. Every process that
# imports tlbench (driver, Ray workers, isolated calls) gets it.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# "Peak memory" is TensorFlow's allocator peak on every machine. The CPU
# allocator keeps statistics only as the BFC allocator, which TensorFlow
# chooses from this variable when it is first imported; without it a CPU
# trial could only read the process's resident set, mostly the runtime.
os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
# BFC's own default limit is 64 GB: the machine's memory instead, so that it
# refuses only what the machine could not hold (a device size the user asks
# for sets it lower).
from tlbench.device_memory import CPU_LIMIT_VARIABLE  # noqa: E402 - no TensorFlow in it

if CPU_LIMIT_VARIABLE not in os.environ and hasattr(os, "sysconf"):
    try:
        _ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        os.environ[CPU_LIMIT_VARIABLE] = str(_ram_mb)
    except (ValueError, OSError):  # a platform without these names: TensorFlow's default
        pass

__version__ = "0.2.0"  # 0.2: env.json records the resolved plan ("plan"), which --resume reads


def __getattr__(name):
    """`tlbench.run`, `tlbench.load_run`, `tlbench.Run` (see `api`): imported on
    first use, so a worker importing tlbench doesn't load the driver side."""
    if name in ("run", "load_run", "Run"):
        from tlbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'tlbench' has no attribute '{name}'")
