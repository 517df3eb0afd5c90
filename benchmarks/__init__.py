"""Benchmarks run from a repository checkout (python -m benchmarks.tracking); not installed."""
