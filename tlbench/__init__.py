"""tlbench: which TF Hub backbone, in which mode, at which batch size?

Each module has one job:

| module           | its job                                                                 |
| ---------------- | ----------------------------------------------------------------------- |
| `cli.py`         | the command line: parse, validate, dispatch; usage errors exit 2        |
| `registry.py`    | the backbones tlbench knows (TF Hub handle, input size, stand-in)       |
| `plan.py`        | trial specs, budgets (quick / cpu / gpu) and the grid                   |
| `data.py`        | datasets as arrays or files, checked; stratified splits (no TensorFlow) |
| `tfds_dataset.py`| `tfds:NAME` datasets written once as image folders (in a subprocess)    |
| `pipeline.py`    | `tf.data` input pipelines: resize, cache, batch; timed streams          |
| `weights.py`     | where a backbone comes from: `--module`, TF Hub cache/network, stand-in |
| `convert.py`     | TF1 Hub modules' TF-Slim checkpoints mapped onto tf_keras architectures |
| `model.py`       | Input -> hub.KerasLayer -> Dense, and the compiled steps                |
| `training.py`    | the protocol: linear probe, fine-tuning, early stopping, evaluation     |
| `measure.py`     | timed windows (median, IQR), memory vs a baseline, matmul peak probe    |
| `graphcost.py`   | from a model's graph: FLOPs per image, activation bytes a step keeps    |
| `costs.py`       | those counts for a trial's model or a backbone, cached                  |
| `trial.py`       | one trial in one worker process: spec in, record out                    |
| `cluster.py`     | Ray: start or join a cluster, place trials, collect records             |
| `results.py`     | run folders, `env.json`, atomic `trials.jsonl` appends, reading back    |
| `environment.py` | versions, CPU, GPUs, git commit, command line                           |
| `columns.py`     | column lists for the terminal, Markdown and HTML tables                 |
| `analysis.py`    | across trials: configurations over seeds, noise, memory slopes          |
| `decide.py`      | recommendation, Pareto front, the best configuration under constraints  |
| `plots.py`       | the report's PNG plots (matplotlib)                                     |
| `report.py`      | `report.md`, `report.html` and the terminal tables of a run             |
| `compare.py`     | `compare RUN_A RUN_B`: changes per configuration, regressions           |

The driver (cli, cluster, results, report, decide, plots, compare) never
imports TensorFlow; only the Ray worker processes that run trials do (and, in
subprocesses, `list`'s one-off FLOP count and a `tfds:` dataset's export).
"""

import os

# tensorflow_hub.KerasLayer is a tf-keras layer; TF >= 2.16 defaults to Keras 3
# unless this is set before TensorFlow is first imported. Every process that
# imports tlbench (driver and Ray workers alike) gets it.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
