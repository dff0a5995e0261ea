"""The performance page: docs/performance.md and its plots (docs/images/perf-*.png),
rendered from the benchmarks' results files (bench/results/*.json).

`make bench` runs every benchmark and then this; run alone, it renders the page again from
the results already there:

    .venv/bin/python -m bench.report [--results bench/results] [--docs docs]

Every results file gets a section: its headline figures next to the baseline measured in
the same run, their ratio and the goal; details; plots; where and when it ran; and the
command that reproduces it. A benchmark this module does not know yet still gets a section
with the figures it can find (a ratio, a goal, a pass). Building the page (sections,
markdown, chart data) is pure; only `main` reads files and only `draw` needs matplotlib.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from bench import description

__all__ = ("Figure", "Series", "Chart", "Section", "sections", "render_markdown", "draw", "main")

ROOT = Path(__file__).resolve().parent.parent
IMAGES = "images"  # under the docs directory
PAGE = "performance.md"
PREFIX = "perf-"  # every plot this module writes, and nothing else, starts so

Record = dict[str, Any]


# -- what a page is made of ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One headline figure: the candidate's value, the baseline's, their ratio and the goal.
    `progress` is how far the goal is reached (1.0 = just met), for the summary chart."""

    name: str
    measured: str
    baseline: str = "-"
    ratio: str = "-"
    goal: str = "-"
    met: bool | None = None  # None: no goal
    progress: float | None = None


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    x: tuple[float, ...]
    y: tuple[float | None, ...]  # None: no value there (a gap)
    dashed: bool = False
    color: int | None = None  # index into the palette; series sharing it are drawn alike


@dataclass(frozen=True, slots=True)
class Chart:
    """A plot as data: lines over x, or horizontal bars (`bars`: one label per y value)."""

    file: str  # perf-*.png
    title: str
    xlabel: str
    ylabel: str
    series: tuple[Series, ...] = ()
    log_y: bool = False
    hlines: tuple[tuple[float, str], ...] = ()  # reference lines: (y, label)
    vlines: tuple[tuple[float, str], ...] = ()  # (x, label)
    diagonal: str | None = None  # label of a y = x line
    bars: tuple[tuple[str, float], ...] = ()
    gap_label: str | None = None  # what a missing value means; drawn as a cross on the top edge


@dataclass(frozen=True)
class Section:
    key: str  # the results file's stem
    title: str
    what: str
    figures: tuple[Figure, ...]
    command: str
    environment: str
    when: str = ""  # when it ran, as the results file says
    details: tuple[str, ...] = ()  # markdown lines
    charts: tuple[Chart, ...] = field(default=())


# -- formatting ----------------------------------------------------------------------------


def _num(value: float | None, digits: int = 0, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{unit}"


def _ms(value: float | None) -> str:
    """Milliseconds; `none` where a percentile fell among messages never answered."""
    return "none" if value is None else f"{value:,.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}" if value >= 0.1 else f"{value:.1%}"


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met(met: bool | None) -> str:
    return "-" if met is None else "met" if met else "**not met**"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _progress_up(value: float | None, goal: float | None) -> float | None:
    """Reached share of a goal where more is better."""
    return value / goal if value is not None and goal else None


def _progress_down(value: float | None, goal: float | None) -> float | None:
    """Reached share of a goal where less is better."""
    return goal / value if value and goal is not None else None


def _environment(record: Record) -> str:
    env = record.get("environment") or {}
    parts = [
        f"{env['cpus']} cores" if env.get("cpus") else "cores not recorded",
        env.get("machine"),
        f"Python {env['python']}" if env.get("python") else None,
        f"measured {record['when']}" if record.get("when") else None,
    ]
    text = ", ".join(p for p in parts if p)
    return f"{text}; {env['note']}" if env.get("note") else text


# Flags that reproduce a run from its config, for results files written without a command.
_FLAGS = {
    "protocol": (("seconds", "--seconds"), ("rounds", "--rounds")),
    "ingress": (
        ("seconds", "--seconds"),
        ("rounds", "--rounds"),
        ("connections", "--connections"),
        ("rate", "--rate"),
        ("warmup_s", "--warmup"),
        ("messages", "--messages"),
        ("partitions", "--partitions"),
    ),
    "pipeline": (
        ("events", "--events"),
        ("users", "--users"),
        ("rounds", "--rounds"),
        ("partitions", "--partitions"),
        ("state_tables", "--state-tables"),
    ),
}


def _provenance(record: Record) -> dict[str, str]:
    """The fields every section takes from its record as it is: command, environment, date."""
    return {"command": _command(record), "environment": _environment(record), "when": record.get("when", "")}


def _command(record: Record) -> str:
    if record.get("command"):
        return str(record["command"])
    name = record.get("benchmark", "")
    config = record.get("config") or {}
    argv = [".venv/bin/python", "-m", f"bench.{name}"]
    for key, flag in _FLAGS.get(name, ()):
        if config.get(key) is not None:
            argv += [flag, f"{config[key]:g}" if isinstance(config[key], float) else str(config[key])]
    if name == "pipeline" and config.get("one_record_batches") is False:
        argv.append("--no-workaround")
    return shlex.join(argv)


# -- one section per benchmark -----------------------------------------------------------------


def protocol_section(key: str, r: Record) -> Section:
    ours, theirs = r["candidate"], r["baseline"]
    return Section(
        key=key,
        title="Protocol core",
        what=f"{r['what']}; {r.get('unit', 'operations per second')}, baseline {theirs['name']}.",
        figures=(
            Figure(
                "messages per CPU-second",
                _num(ours["ops_per_s"]),
                _num(theirs["ops_per_s"]),
                _times(r["ratio"]),
                f">= {r['goal']:.2f}x",
                bool(r["pass"]),
                _progress_up(r["ratio"], r["goal"]),
            ),
        ),
        details=(
            f"Per message: {ours['us_per_op']:.1f} µs ({ours['name']}) vs {theirs['us_per_op']:.1f} µs"
            f" ({theirs['name']}); the ratio is the median of {len(r.get('round_ratios', []))} interleaved rounds.",
        ),
        **_provenance(r),
    )


def ingress_section(key: str, r: Record) -> Section:
    goals, passed, rate = r["goals"], r["pass"], r["config"]["rate"]
    full_lat, bare_lat = r["full_latency_ms"], r["bare_latency_ms"]
    cpu = r.get("server_cpu_us_per_request") or {}
    full_cpu, bare_cpu = cpu.get("full ingress"), cpu.get("bare aiohttp")
    achieved, unanswered = r.get("open_loop_achieved_rps", {}), r.get("open_loop_unanswered", {})
    rows = [
        (
            case,
            _num(achieved.get(case)),
            _ms(lat["p50"]),
            _ms(lat["p99"]),
            _ms(lat.get("p999")),
            _num(unanswered.get(case)),
        )
        for case, lat in (
            ("full ingress", full_lat),
            ("produce floor", r.get("floor_latency_ms")),
            ("bare aiohttp", bare_lat),
        )
        if lat is not None
    ]
    return Section(
        key=key,
        title="Ingress",
        what=f"{r['what']}.",
        figures=(
            Figure(
                "max requests/s (closed loop)",
                _num(r["full_rps"]),
                _num(r["bare_rps"]),
                _pct(r["ratio"]),
                f">= {goals['ratio']:.0%} of baseline",
                bool(passed["ratio"]),
                _progress_up(r["ratio"], goals["ratio"]),
            ),
            Figure(
                "max requests/s, absolute",
                _num(r["full_rps"]),
                goal=f">= {goals['full_rps']:,.0f}",
                met=bool(passed["rps"]),
                progress=_progress_up(r["full_rps"], goals["full_rps"]),
            ),
            Figure(
                f"p99 ms at {rate:,.0f} req/s offered",
                _ms(full_lat["p99"]),
                _ms(bare_lat["p99"]),
                _times(full_lat["p99"] / bare_lat["p99"] if bare_lat["p99"] else None),
                f"< {goals['full_p99_ms']:g} ms",
                bool(passed["p99"]),
                _progress_down(full_lat["p99"], goals["full_p99_ms"]),
            ),
            *_floor_figures(
                "max requests/s, produce floor (aiohttp + the durable write alone)",
                "max requests/s, against that floor",
                r.get("floor_rps"),
                r["bare_rps"],
                r["full_rps"],
            ),
            Figure(
                "server CPU µs per request",
                _num(full_cpu),
                _num(bare_cpu),
                _times(full_cpu / bare_cpu if full_cpu and bare_cpu else None),
            ),
        ),
        details=(
            f"Open loop at {rate:,.0f} requests/s offered, latency in ms from each request's scheduled send:",
            "",
            *_table(("case", "achieved req/s", "p50", "p99", "p99.9", "unanswered"), rows),
        ),
        **_provenance(r),
    )


def _floor_figures(
    floor_name: str, candidate_name: str, floor: float | None, baseline: float, candidate: float
) -> tuple[Figure, ...]:
    """A floor beside a goal: the least any implementation on the same libraries does,
    against the baseline, and the candidate against it. None: results of older runs."""
    if floor is None:
        return ()
    return (
        Figure(floor_name, _num(floor), _num(baseline), _pct(floor / baseline)),
        Figure(candidate_name, _num(candidate), _num(floor), _pct(candidate / floor)),
    )


def pipeline_section(key: str, r: Record) -> Section:
    stages, cpu = r["stages"], r["cpu"]
    base = stages["pass-through:forwarded"]["events_per_s"]
    ours, theirs = cpu["pipeline"], cpu["pass-through"]
    worker_ms, bare_ms = ours["ms_per_event"].get("consumer"), theirs["ms_per_event"].get("consumer")
    multi = r["config"].get("one_record_batches") is False
    rows = [
        (name, _num(stage["events_per_s"]), " ".join(_num(v) for v in stage.get("rounds_events_per_s", ())))
        for name, stage in stages.items()
    ]
    return Section(
        key=key,
        title="Pipeline, multi-record batches" if multi else "Pipeline",
        what=f"{r['what']}" + ("; with multi-record batches, as a real Kafka allows." if multi else "."),
        figures=(
            Figure(
                "events/s to the replies topic",
                _num(stages["pipeline:replies"]["events_per_s"]),
                _num(base),
                _pct(r["ratio"]),
                f">= {r['goal']:.0%} of baseline",
                bool(r["pass"]),
                _progress_up(r["ratio"], r["goal"]),
            ),
            Figure(
                "events/s to the clean topic (dedupe)",
                _num(stages["pipeline:clean"]["events_per_s"]),
                _num(base),
                _pct(r.get("ratio_clean")),
            ),
            *_floor_figures(
                f"events/s, pass-through + {r.get('state_tables')} tables (Faust's floor for the state)",
                "events/s to the replies topic, against that floor",
                stages.get("state floor:forwarded", {}).get("events_per_s"),
                base,
                stages["pipeline:replies"]["events_per_s"],
            ),
            Figure(
                "worker CPU ms per event",
                _num(worker_ms, 2),
                _num(bare_ms, 2),
                _times(worker_ms / bare_ms if worker_ms and bare_ms else None),
            ),
            Figure(
                "records written per event",
                _num(ours.get("records_written_per_event"), 1),
                _num(theirs.get("records_written_per_event"), 1),
            ),
        ),
        details=("Events/s per stage, median and each round:", "", *_table(("case:stage", "events/s", "rounds"), rows)),
        **_provenance(r),
    )


LOAD_COLUMNS = (
    "offered",
    "achieved",
    "stack p50",
    "p95",
    "p99",
    "bare p50",
    "p99",
    "overhead p50",
    "p99",
    "unanswered",
)


def _stages(steps: Sequence[Record]) -> list[str]:
    """The stages the end-to-end record times, in its order."""
    return list(dict.fromkeys(stage for step in steps for stage in step.get("stages_ms", {})))


def endtoend_section(key: str, r: Record) -> Section:
    steps, goal = r["steps"], r["goal"]
    stages = _stages(steps)
    offered = tuple(float(s["stack"]["offered_rps"]) for s in steps)
    first = steps[0] if steps else None
    at_goal = next((s for s in steps if s["stack"]["offered_rps"] == goal["rate"]), None)
    figures = []
    if at_goal is not None:
        stack_p99, bare_p99 = at_goal["stack"]["latency_ms"].get("p99"), at_goal["bare"]["latency_ms"].get("p99")
        figures.append(
            Figure(
                f"p99 pipeline overhead at {goal['rate']:,.0f} msg/s, ms",
                _ms(r["overhead_p99_at_goal_ms"]),
                f"{_ms(bare_p99)} (bare p99)",
                _times(stack_p99 / bare_p99 if stack_p99 is not None and bare_p99 else None),
                f"< {goal['overhead_p99_ms']:g} ms, all answered",
                bool(r["pass"]),
                _progress_down(r["overhead_p99_at_goal_ms"], goal["overhead_p99_ms"]) or 0.0,
            )
        )
    knee = r.get("knee_rps")
    figures.append(
        Figure(
            "knee: first load not kept up with, msg/s",
            _num(knee) if knee is not None else f"none up to {max(offered, default=0):,.0f}",
        )
    )
    if first is not None:
        s, b = first["stack"], first["bare"]
        figures.append(
            Figure(
                f"p50 / p99 ms at {s['offered_rps']:,.0f} msg/s",
                f"{_ms(s['latency_ms'].get('p50'))} / {_ms(s['latency_ms'].get('p99'))}",
                f"{_ms(b['latency_ms'].get('p50'))} / {_ms(b['latency_ms'].get('p99'))}",
            )
        )
    loads = [
        (
            _num(s["stack"]["offered_rps"]),
            f"{_num(s['stack']['achieved_rps'])} ({_pct(s['stack']['achieved_ratio'])})",
            *(_ms(s["stack"]["latency_ms"].get(p)) for p in ("p50", "p95", "p99")),
            *(_ms(s["bare"]["latency_ms"].get(p)) for p in ("p50", "p99")),
            *(_ms(s["overhead_ms"].get(p)) for p in ("p50", "p99")),
            _num(s["stack"]["unanswered"]),
        )
        for s in steps
    ]
    stage_rows = [
        (_num(s["stack"]["offered_rps"]), *(_stage_cell(s.get("stages_ms", {}).get(st)) for st in stages))
        for s in steps
    ]
    processes = list(first["cpu_cores"]) if first else []
    cpu_rows = [(_num(s["stack"]["offered_rps"]), *(_num(s["cpu_cores"].get(p), 2) for p in processes)) for s in steps]
    config = r["config"]
    return Section(
        key=key,
        title="End to end",
        what=(
            f"{r['what']}. Open loop: {config['seconds']:g} s per load from {config['users']:,} simulated users;"
            " latency from each message's scheduled send to the reply the user received; pipeline overhead ="
            " stack minus bare at the same percentile; `none`: the percentile fell among messages that got no reply."
        ),
        figures=tuple(figures),
        details=(
            "Per offered load (messages/s; latencies in ms):",
            "",
            *_table(LOAD_COLUMNS, loads),
            "",
            "Time in each stage of the answered messages, p50 / p99 ms (Kafka timestamps of each message's records):",
            "",
            *_table(("offered", *stages), stage_rows),
            "",
            "Cores each process used while the stack was loaded:",
            "",
            *_table(("offered", *processes), cpu_rows),
        ),
        charts=endtoend_charts(key, r) if steps else (),
        **_provenance(r),
    )


def _stage_cell(spread: dict[str, float | None] | None) -> str:
    return "-" if not spread else f"{_ms(spread.get('p50'))} / {_ms(spread.get('p99'))}"


def endtoend_charts(key: str, r: Record) -> tuple[Chart, ...]:
    steps, goal = r["steps"], r["goal"]
    x = tuple(float(s["stack"]["offered_rps"]) for s in steps)

    def ys(target: str, pick: Callable[[Record], float | None]) -> tuple[float | None, ...]:
        return tuple(pick(s[target]) for s in steps)

    knee = ((float(r["knee_rps"]), "knee"),) if r.get("knee_rps") is not None else ()
    throughput = Chart(
        file=f"{PREFIX}{key}-throughput.png",
        title="End to end: achieved vs offered load",
        xlabel="offered, messages/s",
        ylabel="answered, messages/s",
        series=(
            Series("stack (passive replies)", x, ys("stack", lambda t: t["achieved_rps"]), color=0),
            Series("bare aiohttp", x, ys("bare", lambda t: t["achieved_rps"]), dashed=True, color=1),
        ),
        diagonal="offered",
        vlines=knee,
    )
    latency = Chart(
        file=f"{PREFIX}{key}-latency.png",
        title="End to end: latency percentiles vs offered load",
        xlabel="offered, messages/s",
        ylabel="ms (log)",
        series=(
            *(
                Series(f"stack {p}", x, ys("stack", lambda t, p=p: t["latency_ms"].get(p)), color=i)
                for i, p in enumerate(("p50", "p95", "p99"))
            ),
            Series("bare p99", x, ys("bare", lambda t: t["latency_ms"].get("p99")), dashed=True, color=3),
            Series("overhead p99", x, tuple(s["overhead_ms"].get("p99") for s in steps), dashed=True, color=4),
        ),
        log_y=True,
        hlines=((float(goal["overhead_p99_ms"]), f"goal: overhead p99 < {goal['overhead_p99_ms']:g} ms"),),
        vlines=knee,
        gap_label="none: the percentile fell among messages without a reply",
    )
    stages = Chart(
        file=f"{PREFIX}{key}-stages.png",
        title="End to end: time per stage, p50 (solid) and p99 (dashed)",
        xlabel="offered, messages/s",
        ylabel="ms (log)",
        series=tuple(
            Series(
                f"{stage} {p}",
                x,
                tuple((s.get("stages_ms", {}).get(stage) or {}).get(p) for s in steps),
                dashed=p == "p99",
                color=i,
            )
            for i, stage in enumerate(_stages(steps))
            for p in ("p50", "p99")
        ),
        log_y=True,
    )
    return throughput, latency, stages


def model_client_section(key: str, r: Record) -> Section:
    lat, thr, glm = r["latency"], r["throughput"], r.get("glm")
    ours, raw, goal = lat["wxstream"], lat["raw"], lat["goal"]
    figures = [
        Figure(
            "p50 latency, one request at a time, ms",
            _num(ours["p50"], 3),
            _num(raw["p50"], 3),
            _times(lat["p50_ratio"]),
            f"<= {goal['p50_ratio_max']:.2f}x",
            lat["p50_ratio"] <= goal["p50_ratio_max"],
            _progress_down(lat["p50_ratio"], goal["p50_ratio_max"]),
        ),
        Figure(
            "p50 latency added, µs",
            _num(lat["p50_added_ms"] * 1000),
            goal=f"< {goal['p50_added_ms_below'] * 1000:.0f}",
            met=lat["p50_added_ms"] < goal["p50_added_ms_below"],
        ),
        Figure(
            f"requests/s, {thr['concurrency']} concurrent",
            _num(thr["wxstream"]["requests_per_s"]),
            _num(thr["raw"]["requests_per_s"]),
            _pct(thr["ratio"]),
        ),
    ]
    if glm:
        figures.append(
            Figure(
                f"{glm['model']} tokens/s on CPU ({glm['tokens']} tokens an answer)",
                _num(glm["wxstream"]["tokens_per_s"], 1),
                _num(glm["raw"]["tokens_per_s"], 1),
                _pct(glm["ratio"]),
            )
        )
        figures.append(
            Figure(
                f"{glm['model']} decode tokens/s (after the first token)",
                _num(glm["wxstream"]["decode_tokens_per_s"], 1),
                _num(glm["raw"]["decode_tokens_per_s"], 1),
            )
        )
    rows = [
        (case["name"], _num(case["p50"], 3), _num(case["p90"], 3), _num(case["p99"], 3), _num(case["requests"]))
        for case in (ours, raw)
    ]
    return Section(
        key=key,
        title="Model client",
        what=f"{r['what']}; baseline {r['baseline']['name']}.",
        figures=tuple(figures),
        details=("Latency of single requests, ms:", "", *_table(("client", "p50", "p90", "p99", "requests"), rows)),
        **_provenance(r),
    )


def broker_section(key: str, r: Record) -> Section:
    cases = r["cases"]
    loaded, fresh = cases["loaded"], cases["fresh"]
    batches = r["config"]["batches"]
    figures = (
        Figure(
            f"produce-then-fetch round trips/s, partition of {batches:,} batches",
            _num(loaded["round_trips_per_s"]),
            f"{_num(fresh['round_trips_per_s'])} (fresh partition)",
            _pct(r["ratio"]),
        ),
        Figure(
            "broker CPU per round trip, ms",
            _num(loaded["broker_cpu_ms_per_round_trip"], 2),
            _num(fresh["broker_cpu_ms_per_round_trip"], 2),
        ),
        Figure("broker CPU per stored batch per fetch, µs", _num(r["broker_cpu_us_per_stored_batch"], 2)),
    )
    return Section(
        key=key,
        title="Embedded broker",
        what=(
            f"{r['what']}: how a fetch's cost grows with the batches stored in the partition "
            '(README, "The embedded broker slows down as its topics grow"); no goal, it describes the broker.'
        ),
        figures=figures,
        **_provenance(r),
    )


def generic_section(key: str, r: Record) -> Section:
    """A benchmark this module has no layout for: its ratio, goals and passes as found."""
    figures = []
    candidate, baseline = r.get("candidate"), r.get("baseline")
    if isinstance(candidate, dict) and isinstance(baseline, dict) and "ops_per_s" in candidate:
        figures.append(
            Figure(
                f"{candidate.get('name', 'candidate')}, operations/s",
                _num(candidate["ops_per_s"]),
                f"{_num(baseline.get('ops_per_s'))} ({baseline.get('name', 'baseline')})",
            )
        )
    if isinstance(r.get("ratio"), (int, float)):
        goal = r.get("goal")
        figures.append(
            Figure(
                "ratio to baseline",
                _times(r["ratio"]),
                goal=f">= {goal:g}" if isinstance(goal, (int, float)) else "-",
                met=r["pass"] if isinstance(r.get("pass"), bool) else None,
                progress=_progress_up(r["ratio"], goal) if isinstance(goal, (int, float)) else None,
            )
        )
    goals, passes = r.get("goals"), r.get("pass")
    if isinstance(goals, dict):
        for name, goal in goals.items():
            value = r.get(name)
            met = passes.get(name) if isinstance(passes, dict) else None
            figures.append(
                Figure(name, _num(value, 2) if isinstance(value, (int, float)) else "-", goal=str(goal), met=met)
            )
    return Section(
        key=key,
        title=key.replace("_", " ").replace("-", " ").capitalize(),
        what=f"{r.get('what', 'see the benchmark module')}.",
        figures=tuple(figures) or (Figure("(no headline figures in the results file)", "-"),),
        **_provenance(r),
    )


LAYOUTS: dict[str, Callable[[str, Record], Section]] = {
    "protocol": protocol_section,
    "ingress": ingress_section,
    "pipeline": pipeline_section,
    "model_client": model_client_section,
    "endtoend": endtoend_section,
    "broker": broker_section,
}
ORDER = ("protocol", "ingress", "pipeline", "model_client", "endtoend", "broker")  # the order `make bench` runs them


def sections(results: dict[str, Record]) -> list[Section]:
    """One section per results file (by stem), in the order `make bench` runs them."""

    def rank(stem: str) -> tuple[int, str]:
        name = results[stem].get("benchmark", stem)
        return (ORDER.index(name) if name in ORDER else len(ORDER), stem)

    return [
        LAYOUTS.get(results[s].get("benchmark", ""), generic_section)(s, results[s]) for s in sorted(results, key=rank)
    ]


def summary_chart(found: Sequence[Section]) -> Chart:
    bars = tuple(
        (f"{s.title}: {f.name}", round(f.progress, 4)) for s in found for f in s.figures if f.progress is not None
    )
    return Chart(
        file=f"{PREFIX}goals.png",
        title="Share of each goal reached (100% = met)",
        xlabel="% of goal (log)",
        ylabel="",
        bars=bars,
        vlines=((100.0, "goal"),),
    )


# -- the page ------------------------------------------------------------------------------------


def render_markdown(found: Sequence[Section], summary: Chart | None) -> str:
    dates = sorted(s.when for s in found if s.when)
    lines = [
        "# Performance",
        "",
        "Rendered by `python -m bench.report` from `bench/results/*.json`; do not edit by hand. `make bench` runs"
        " every benchmark, then renders this page again (about ten minutes on two cores).",
        "",
        "Each benchmark measures wxstream against a baseline run in the same process or on the same machine at the"
        " same time. The machine these figures come from is shared and noisy, so ratios are steadier than absolute"
        " figures." + (f" Figures measured {dates[0]} to {dates[-1]}." if dates else ""),
        "",
        "## Summary",
        "",
        *_table(
            ("benchmark", "figure", "measured", "baseline", "ratio", "goal", "met"),
            [
                (s.title, f.name, f.measured, f.baseline, f.ratio, f.goal, _met(f.met))
                for s in found
                for f in s.figures
                if f.met is not None
            ],
        ),
    ]
    if summary is not None and summary.bars:
        lines += ["", _image(summary)]
    for s in found:
        lines += [
            "",
            f"## {s.title}",
            "",
            f"`{s.key}`: {s.what}",
            "",
            *_table(
                ("figure", "measured", "baseline", "ratio", "goal", "met"),
                [(f.name, f.measured, f.baseline, f.ratio, f.goal, _met(f.met)) for f in s.figures],
            ),
        ]
        if s.details:
            lines += ["", *s.details]
        for chart in s.charts:
            lines += ["", _image(chart)]
        lines += ["", f"Environment: {s.environment}.", "", "Reproduce:", "", "```sh", s.command, "```"]
    return "\n".join(lines) + "\n"


def _image(chart: Chart) -> str:
    return f"![{chart.title}]({IMAGES}/{chart.file})"


# -- drawing (matplotlib) ------------------------------------------------------------------------


def draw(chart: Chart, path: Path) -> None:
    """Render one chart to a PNG file."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(8, 4.5 if not chart.bars else 1.2 + 0.4 * len(chart.bars)), dpi=100)
    try:
        if chart.bars:
            labels, values = zip(*chart.bars)
            percent = [max(v * 100, 0.1) for v in values]
            colors = [palette[2] if v >= 1 else palette[3] for v in values]
            ax.barh(range(len(values)), percent, color=colors)
            ax.set_yticks(range(len(values)), labels)
            ax.invert_yaxis()
            ax.set_xscale("log")
            for i, v in enumerate(values):
                ax.annotate(f"{v:.0%}", (percent[i], i), xytext=(3, 0), textcoords="offset points", va="center")
        top = blended_transform_factory(ax.transData, ax.transAxes)  # x in data, y in axes fraction
        for i, s in enumerate(chart.series):
            color = palette[(s.color if s.color is not None else i) % len(palette)]
            points = [(x, y) for x, y in zip(s.x, s.y) if y is not None]
            if points:
                ax.plot(*zip(*points), "--" if s.dashed else "-", marker="o", color=color, label=s.label)
            gaps = [x for x, y in zip(s.x, s.y) if y is None]
            if gaps and chart.gap_label:  # no value there: a cross along the top edge
                ax.plot(gaps, [0.97] * len(gaps), "x", color=color, transform=top, clip_on=False)
        if chart.gap_label and any(y is None for s in chart.series for y in s.y):
            ax.plot([], [], "x", color="grey", label=chart.gap_label)
        if chart.diagonal:
            top = max((x for s in chart.series for x in s.x), default=1.0)
            ax.plot([0, top], [0, top], ":", color="grey", label=chart.diagonal)
        for y, label in chart.hlines:
            ax.axhline(y, color="red", linestyle=":", label=label)
        for x, label in chart.vlines:
            ax.axvline(
                x, color="grey", linestyle="-." if not chart.bars else ":", label=label if not chart.bars else None
            )
        if chart.log_y:
            ax.set_yscale("log")
        ax.set_title(chart.title)
        ax.set_xlabel(chart.xlabel)
        ax.set_ylabel(chart.ylabel)
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="best")
        fig.tight_layout()
        fig.savefig(path, metadata={"Software": None})
    finally:
        plt.close(fig)


# -- files ---------------------------------------------------------------------------------------


def load_results(directory: Path) -> dict[str, Record]:
    """Every results file in `directory`, by stem; a file that is not a benchmark's JSON
    object stops the render with its name."""
    results = {}
    for path in sorted(directory.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise SystemExit(f"{path}: not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise SystemExit(f"{path}: not a benchmark's results object")
        results[path.stem] = record
    return results


def write_page(results: dict[str, Record], docs: Path) -> list[Path]:
    """Write the page and its plots under `docs`; remove plots of this page no longer drawn.
    Returns the files written."""
    found = sections(results)
    summary = summary_chart(found)
    charts = [c for s in found for c in s.charts] + ([summary] if summary.bars else [])
    images = docs / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    written = []
    for chart in charts:
        draw(chart, images / chart.file)
        written.append(images / chart.file)
    for stale in set(images.glob(f"{PREFIX}*.png")) - set(written):
        stale.unlink()
    page = docs / PAGE
    page.write_text(render_markdown(found, summary), encoding="utf-8")
    return [page, *written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=description(__doc__))
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="results directory")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help=f"where {PAGE} and {IMAGES}/ go")
    args = parser.parse_args(argv)
    results = load_results(args.results)
    if not results:
        print(f"no results in {args.results}: run `make bench` first", file=sys.stderr)
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib is not installed; `make bench` installs the bench extra (pip install -e '.[bench]')")
        return 2
    for path in write_page(results, args.docs):
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        print(f"  wrote {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
