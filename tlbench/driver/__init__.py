"""The driver side: the command's process. Never imports TensorFlow."""
