"""Chaos and fuzz runs against the whole stack: components killed or frozen under steady
load, hostile and fuzzed requests at the ingress; every message WeChat counted as taken
must be answered exactly once. `python -m chaos` (`make chaos`); see docs/chaos.md."""
