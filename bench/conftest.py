import tlbench  # noqa: F401 - TF_USE_LEGACY_KERAS before TensorFlow
