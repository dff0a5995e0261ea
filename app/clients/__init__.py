"""Async I/O adapters used by the agents (Triton, WeChat's API)."""
