"""python -m benchmarks.frame_rates: counting at low frame rates (issue 13)."""
