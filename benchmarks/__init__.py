"""The benchmark harness: ``python benchmarks/run.py`` and the measurement scripts beside it."""
