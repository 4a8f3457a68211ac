"""The worker side: what runs inside a trial's process (or a fresh process
started through `tlbench.isolated`). Imports TensorFlow, lazily."""
