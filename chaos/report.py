"""The chaos run's summary table and its progress lines (pure text)."""

from __future__ import annotations

from typing import Sequence

from app.simulator.report import Tally
from chaos.result import ScenarioResult

__all__ = ("table", "progress_line")

COLUMNS = ("sent", "accepted", "once", "twice", "lost", "rejected")


def _cell(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def table(results: Sequence[ScenarioResult]) -> str:
    """One row per scenario, then each scenario's checks, with the reason of a failure."""
    width = max([len("scenario"), *(len(r.name) for r in results)])
    lines = [f"  {'scenario':<{width}}" + "".join(f"{c:>10}" for c in COLUMNS) + "  result"]
    for r in results:
        cells = (r.sent, r.accepted, r.answered_once, r.answered_twice, r.lost, r.rejected)
        lines.append(
            f"  {r.name:<{width}}" + "".join(f"{_cell(v):>10}" for v in cells)
            + f"  {'PASS' if r.passed else 'FAIL'} ({r.seconds:.0f} s)"
        )
    for r in results:
        for check in r.checks:
            mark = "ok  " if check.ok else "FAIL"
            detail = f": {check.detail}" if check.detail and not check.ok else ""
            lines.append(f"  {mark} {r.name}: {check.name}{detail}")
    return "\n".join(lines)


def progress_line(scenario: str, phase: str, elapsed_s: float, tally: Tally | None, received: int) -> str:
    """What a running scenario has done so far."""
    load = f" {tally.line()}" if tally is not None else ""
    return f"  [{scenario}] {elapsed_s:5.0f}s {phase}:{load} received={received}"
