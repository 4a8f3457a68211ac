"""The device a trial runs on: GPU memory growth or a device of --device-memory's
size, the device's label and memory, whether mixed precision pays there, and
whether an error means out of memory."""

from __future__ import annotations

import os

from tlbench import environment


def configure_devices(device_memory: int | None = None) -> str:
    """Before any op runs: memory growth on every visible GPU (so trials
    sharing a machine don't grab each other's memory), or with
    `device_memory` a device of that many bytes (`--device-memory`): a
    logical GPU of that size, or on a CPU the allocator's limit at that size,
    what a GPU trial keeps in host memory being kept out of the allocator
    (pipeline.py's host_memory). Returns the device label."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")  # makes no allocator yet
    if device_memory is not None and not gpus:
        _limit_cpu_allocator(device_memory)
    for gpu in gpus:
        if device_memory is None:
            tf.config.experimental.set_memory_growth(gpu, True)
        else:  # TensorFlow's GPU allocator then fails past it, as a GPU of that size would
            config = tf.config.LogicalDeviceConfiguration(memory_limit=device_memory // 2**20)
            tf.config.set_logical_device_configuration(gpu, [config])
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU:{details.get('device_name', 'unknown')}"
    return f"CPU:{environment.cpu_model()}"


def _limit_cpu_allocator(device_memory: int) -> None:
    from tensorflow.python.eager import context

    from tlbench import device_memory as memory

    in_effect, before = memory.cpu_allocator_limit(), os.environ.get(memory.CPU_LIMIT_VARIABLE)
    wanted = memory.limit_cpu_allocator(device_memory)
    if context.context()._initialized and in_effect != wanted:  # private: TensorFlow has no public flag for it
        os.environ.pop(memory.CPU_LIMIT_VARIABLE)  # as it was, for this process's children too
        os.environ.update({} if before is None else {memory.CPU_LIMIT_VARIABLE: before})
        raise RuntimeError(
            "--device-memory can't take effect: this process ran TensorFlow ops before the trial, and the CPU "
            "allocator's limit is read at the first one (a trial's own worker process runs none before)"
        )
    if onednn_enabled():
        raise RuntimeError(
            "--device-memory on a CPU needs TensorFlow's own CPU kernels: oneDNN's crash when an allocation fails "
            "at the limit; set TF_ENABLE_ONEDNN_OPTS=0 before TensorFlow is imported (tlbench's workers do)"
        )
    # One op at a time, in the graph's order, as a GPU's stream runs them: with
    # ops side by side the allocator's chunks land differently from run to run,
    # and a batch near the limit fits in one run and not in the next (MobileNet
    # V2 0.35/128 fine-tuning at batch 39 under 384 MiB: two runs of three).
    import tensorflow as tf

    if not context.context()._initialized:
        tf.config.threading.set_inter_op_parallelism_threads(1)


def device_memory_bytes(device: str, requested: int | None) -> int | None:
    """The memory of the trial's device: `requested` (--device-memory), else
    the GPU's as TensorFlow's allocator has it, else the CPU allocator's
    limit (the machine's memory, tlbench/__init__.py)."""
    if requested is not None:
        return requested
    if device.startswith("GPU"):
        from tensorflow.python.client import device_lib

        gpus = [d for d in device_lib.list_local_devices() if d.device_type == "GPU"]
        return int(gpus[0].memory_limit) if gpus else None
    from tlbench.device_memory import cpu_allocator_limit

    return cpu_allocator_limit()


def compute_device() -> str:
    """The TensorFlow device the trial's steps run on."""
    import tensorflow as tf

    return "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels: TF_ENABLE_ONEDNN_OPTS,
    else TensorFlow's own default, which it takes from the CPU's features
    (off on an AVX2 CPU without AVX-512, as measured here).
    They change a CPU step's speed and what its allocator holds: Eigen's
    convolution gradients take working buffers there, oneDNN's outside it."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def mixed_precision(requested: bool, device: str) -> tuple[bool, str | None]:
    """(applied, why not): mixed_float16 where it pays, on GPUs of compute
    capability 7.0 or newer."""
    if not requested:
        return False, None
    import tensorflow as tf

    if device.startswith("GPU"):
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
        if details.get("compute_capability", (0, 0)) >= (7, 0):
            return True, "head in mixed_float16 with loss scaling; the TF Hub module computes in float32"
        return (
            False,
            f"not applied: {details.get('device_name', 'this GPU')} has no fast float16 (compute capability < 7.0)",
        )
    return False, "not applied: mixed_float16 needs a GPU of compute capability 7.0 or newer"


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, MemoryError):
        return True
    try:
        import tensorflow as tf
    except ImportError:
        return False
    return isinstance(error, tf.errors.ResourceExhaustedError)
