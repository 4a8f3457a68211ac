"""Reports from saved run files alone: tables, analysis, recommendation,
the ladder of trainable depth (does fine-tuning pay), plots, comparison.
Run in the driver; never import TensorFlow."""
