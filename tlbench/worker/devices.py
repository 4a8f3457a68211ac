"""The device a trial runs on: GPU memory growth, the device's label, whether
mixed precision pays there, and whether an error means out of memory."""

from __future__ import annotations

from tlbench import environment


def configure_devices() -> str:
    """Memory growth on every visible GPU (before any op runs, so trials sharing
    a machine don't grab each other's memory); returns the device label."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU:{details.get('device_name', 'unknown')}"
    return f"CPU:{environment.cpu_model()}"


def compute_device() -> str:
    """The TensorFlow device the trial's steps run on."""
    import tensorflow as tf

    return "GPU:0" if tf.config.list_logical_devices("GPU") else "CPU:0"


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
