"""python -m benchmarks.faults: each fault of issue 14, injected for real -> outcome -> events lost."""
