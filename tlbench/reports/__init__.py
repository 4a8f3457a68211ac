"""Reports from saved run files alone: tables, analysis, recommendation,
plots, comparison. Run in the driver; never import TensorFlow."""
