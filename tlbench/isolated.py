"""The one way the driver runs TensorFlow code outside a trial: a function,
named `"module:function"`, called in a fresh Python process.

The driver never imports TensorFlow (it would hold a GPU context, threads and
gigabytes the trials need). What it must still learn from TensorFlow before
the trials start - where each backbone's weights come from, a backbone's FLOP
count, a TFDS dataset written as an image folder - runs here, and so does
nothing else. Arguments and results cross as JSON, never pickle. A UsageError
in the child is a UsageError here, with its one line; any other failure is a
UsageError saying what failed. The child sees no GPU: nothing it does needs
one, and a CUDA context would take GPU memory from trials on the same node.

    python -m tlbench.isolated RESULT_FILE    # the child: the call on stdin
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tlbench.errors import UsageError, described, one_line


def resolve(target: str):
    """The function a `"module:function"` name stands for (imported now)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def call(target: str, *args):
    """`target(*args)` in a fresh Python process; its JSON result."""
    with tempfile.TemporaryDirectory(prefix="tlbench-call-") as folder:
        result = Path(folder) / "result.json"
        done = subprocess.run(
            [sys.executable, "-m", "tlbench.isolated", str(result)],
            input=json.dumps({"target": target, "args": list(args)}),
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        )
        try:
            answer = json.loads(result.read_text())
        except (OSError, ValueError):
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            last = one_line(lines[-1]) if lines else "no message"
            raise UsageError(f"{target} ended with exit status {done.returncode} ({last})") from None
    if "usage_error" in answer:
        raise UsageError(answer["usage_error"])
    if "error" in answer:
        raise UsageError(f"{target} failed: {answer['error']}")
    return answer["value"]


def main(argv: list[str]) -> int:
    (result_file,) = argv  # `python -m tlbench.isolated` imported tlbench first: TF_USE_LEGACY_KERAS is set
    request = json.loads(sys.stdin.read())
    try:
        answer = {"value": resolve(request["target"])(*request["args"])}
    except UsageError as error:
        answer = {"usage_error": one_line(error, 2000)}
    except Exception as error:  # noqa: BLE001 - whatever failed, the driver gets one line
        answer = {"error": described(error)}
    staging = f"{result_file}.tmp-{os.getpid()}"
    with open(staging, "w") as f:
        json.dump(answer, f, default=str)
    os.replace(staging, result_file)
    return 0 if "value" in answer else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
