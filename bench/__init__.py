"""Benchmarks: `make bench` runs them; each module here is `python -m bench.<name>`."""


def description(doc: str | None) -> str:
    """A module docstring's first paragraph on one line: the `--help` text of its command."""
    return " ".join((doc or "").split("\n\n")[0].split())
