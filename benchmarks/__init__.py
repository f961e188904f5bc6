"""Coherence benchmarks (`make bench`): see `benchmarks/run.py`."""
