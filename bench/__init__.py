"""Benchmarks: `make bench` runs them; each module here is `python -m bench.<name>`."""
