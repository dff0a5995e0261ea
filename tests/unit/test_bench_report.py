"""The performance page rendered from a small set of results files: a section per file in
the order `make bench` runs them, verdicts, environment, the command that reproduces each
run, and the end-to-end plots. The end-to-end record is built with the benchmark's own
figure functions, so the page is checked against the schema the benchmark writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import endtoend, report
from bench.endtoend import Sample

PROTOCOL = {
    "benchmark": "protocol",
    "what": "messages/s: verify + decrypt + parse of one safe-mode text callback",
    "unit": "messages per CPU-second of one thread",
    "when": "2026-11-25T10:00:00+0000",
    "config": {"seconds": 1.0, "rounds": 5},
    "candidate": {"name": "wxstream CallbackCodec", "ops_per_s": 9200.0, "us_per_op": 108.7},
    "baseline": {"name": "wechatpy 1.8.18", "ops_per_s": 6000.0, "us_per_op": 166.7},
    "ratio": 1.6,
    "round_ratios": [1.5, 1.6, 1.7],
    "goal": 1.5,
    "pass": True,
    "environment": {"python": "3.11.7", "machine": "x86_64"},
}

PIPELINE = {
    "benchmark": "pipeline",
    "what": "raw events/s through the worker vs a bare Faust pass-through",
    "when": "2026-11-25T11:00:00+0000",
    "config": {"events": 3000, "users": 300, "rounds": 3, "partitions": 4, "one_record_batches": False},
    "stages": {
        "pass-through:forwarded": {"events_per_s": 1000.0, "rounds_events_per_s": [900.0, 1000.0, 1100.0]},
        "pipeline:clean": {"events_per_s": 90.0, "rounds_events_per_s": [90.0]},
        "pipeline:replies": {"events_per_s": 80.0, "rounds_events_per_s": [80.0]},
    },
    "cpu": {
        "pass-through": {"ms_per_event": {"consumer": 0.6}, "records_written_per_event": 1.0},
        "pipeline": {"ms_per_event": {"consumer": 9.0}, "records_written_per_event": 6.1},
    },
    "ratio": 0.08,
    "ratio_clean": 0.09,
    "goal": 0.5,
    "pass": False,
    "command": ".venv/bin/python -m bench.pipeline --no-workaround --events 3000",
    "environment": {"python": "3.11.7", "machine": "x86_64", "cpus": 2, "note": "all processes share the cores"},
}

MODEL_CLIENT = {
    "benchmark": "model_client",
    "what": "latency of single requests through wxstream's ModelClient vs a raw tritonclient grpc.aio infer",
    "baseline": {"name": "raw grpc.aio infer", "p50_ms": 0.995},
    "latency": {
        "wxstream": {"name": "wxstream ModelClient", "requests": 4355, "p50": 1.046, "p90": 1.49, "p99": 3.53},
        "raw": {"name": "raw grpc.aio infer", "requests": 4355, "p50": 0.995, "p90": 1.43, "p99": 3.087},
        "p50_ratio": 1.051,
        "p50_added_ms": 0.051,
        "goal": {"p50_ratio_max": 1.1, "p50_added_ms_below": 0.3},
        "pass": True,
    },
    "throughput": {
        "concurrency": 8,
        "wxstream": {"requests_per_s": 1167.0},
        "raw": {"requests_per_s": 1239.0},
        "ratio": 0.96,
    },
    "glm": {
        "model": "glm4_stream",
        "tokens": 64,
        "wxstream": {"tokens_per_s": 230.7, "decode_tokens_per_s": 238.1},
        "raw": {"tokens_per_s": 212.4, "decode_tokens_per_s": 225.5},
        "ratio": 1.09,
    },
    "command": ".venv/bin/python -m bench.model_client --seconds 1 --rounds 5",
}

UNKNOWN = {
    "benchmark": "outbound_sender",
    "what": "messages/s through the sender",
    "ratio": 0.8,
    "goal": 0.7,
    "pass": True,
}


def _samples(rate: float, count: int, latency_s: float, unanswered: int = 0) -> list[Sample]:
    """`count` messages due at `rate`, the last `unanswered` of them without their answer."""
    return [Sample(f"msg:{i}", i / rate, i / rate + latency_s, answered=i < count - unanswered) for i in range(count)]


def _endtoend() -> dict:
    """Two loads: 50 msg/s kept up with, 500 msg/s far past the knee (half unanswered)."""
    steps = []
    for rate, latency, unanswered in ((50.0, 0.060, 0), (500.0, 2.0, 750)):
        stack = endtoend.load_figures(_samples(rate, int(rate * 3), latency, unanswered), rate)
        bare = endtoend.load_figures(_samples(rate, int(rate * 3), 0.003), rate)
        step = {"stack": stack, "bare": bare, "cpu_cores": {"worker": 0.7, "simulator": 0.1}, "drain_s": 0.0}
        step["overhead_ms"] = endtoend.overhead_ms(stack["latency_ms"], bare["latency_ms"])
        step["stages_ms"] = {"ingress": {"p50": 3.0, "p99": 9.0}, "dedupe": {"p50": 20.0, "p99": 50.0}}
        steps.append(step)
    p99, met = endtoend.goal_verdict(steps)
    return {
        "benchmark": "endtoend",
        "what": "a user's message to its passive reply through the whole stack",
        "when": "2026-11-25T12:00:00+0000",
        "config": {"steps_rps": [50.0, 500.0], "seconds": 3.0, "users": 1000},
        "steps": steps,
        "knee_rps": endtoend.find_knee(steps, 250.0),
        "overhead_p99_at_goal_ms": p99,
        "goal": {"rate": endtoend.GOAL_RATE, "overhead_p99_ms": endtoend.GOAL_OVERHEAD_P99_MS},
        "pass": met,
        "command": ".venv/bin/python -m bench.endtoend --seconds 3",
        "environment": {"python": "3.11.7", "machine": "x86_64", "cpus": 2, "note": "shared"},
    }


@pytest.fixture
def results() -> dict[str, dict]:
    return {
        "endtoend": _endtoend(),
        "model_client": MODEL_CLIENT,
        "outbound_sender": UNKNOWN,
        "pipeline-no-workaround": PIPELINE,
        "protocol": PROTOCOL,
    }


def test_sections_follow_the_order_of_make_bench_and_unknown_benchmarks_get_one_too(results):
    found = report.sections(results)
    assert [s.key for s in found] == [
        "protocol",
        "pipeline-no-workaround",
        "model_client",
        "endtoend",
        "outbound_sender",
    ]
    assert [s.title for s in found] == [
        "Protocol core",
        "Pipeline, multi-record batches",
        "Model client",
        "End to end",
        "Outbound sender",
    ]
    generic = found[-1].figures
    assert [(f.name, f.measured, f.goal, f.met) for f in generic] == [("ratio to baseline", "0.80x", ">= 0.7", True)]


def test_endtoend_figures_come_from_the_benchmark_schema(results):
    record = results["endtoend"]
    low, high = record["steps"]
    assert low["stack"]["achieved_ratio"] == pytest.approx(1.0)
    assert low["overhead_ms"]["p99"] == pytest.approx(57.0)
    assert high["stack"]["latency_ms"]["p99"] is None  # half the messages never got their reply
    assert record["knee_rps"] == 500.0
    assert record["overhead_p99_at_goal_ms"] is None and record["pass"] is False


def test_page_has_verdicts_environment_and_the_commands_that_reproduce_each_run(results):
    found = report.sections(results)
    page = report.render_markdown(found, report.summary_chart(found))
    summary = page.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "| Protocol core | messages per CPU-second | 9,200 | 6,000 | 1.60x | >= 1.50x | met |" in summary
    assert "| events/s to the replies topic | 80 | 1,000 | 8.0% | >= 50% of baseline | **not met** |" in summary
    assert "p99 pipeline overhead at 500 msg/s, ms | none |" in summary
    assert "worker CPU ms per event" not in summary  # no goal: only in its section
    assert "Figures measured 2026-11-25T10:00:00+0000 to 2026-11-25T12:00:00+0000." in page
    assert "Environment: 2 cores, x86_64, Python 3.11.7, measured 2026-11-25T11:00:00+0000; all processes" in page
    assert "Environment: cores not recorded, x86_64, Python 3.11.7" in page
    # recorded commands verbatim; a file without one gets the command rebuilt from its config
    assert "\n.venv/bin/python -m bench.pipeline --no-workaround --events 3000\n" in page
    assert "\n.venv/bin/python -m bench.protocol --seconds 1 --rounds 5\n" in page
    assert "\n.venv/bin/python -m bench.outbound_sender\n" in page
    assert "| Model client | p50 latency, one request at a time, ms | 1.046 | 0.995 | 1.05x | <= 1.10x | met |" in summary
    assert "| 500 | 250 (50%) | 2,000.0 | none | none | 3.0 | 3.0 | 1,997.0 | none | 750 |" in page
    assert "| offered | ingress | dedupe |" in page
    assert "| 50 | 3.0 / 9.0 | 20.0 / 50.0 |" in page
    for chart in ("perf-goals.png", "perf-endtoend-throughput.png", "perf-endtoend-latency.png"):
        assert f"(images/{chart})" in page


def test_endtoend_charts_carry_gaps_the_knee_and_the_goal(results):
    throughput, latency, stages = report.endtoend_charts("endtoend", results["endtoend"])
    assert throughput.series[0].x == (50.0, 500.0) and throughput.vlines == ((500.0, "knee"),)
    assert throughput.diagonal == "offered"
    p99 = next(s for s in latency.series if s.label == "stack p99")
    assert p99.y[1] is None and latency.log_y and latency.gap_label.startswith("none")
    assert latency.hlines == ((50.0, "goal: overhead p99 < 50 ms"),)
    assert [s.label for s in stages.series] == ["ingress p50", "ingress p99", "dedupe p50", "dedupe p99"]
    assert stages.series[3].y == (50.0, 50.0) and stages.series[3].dashed


def test_the_goals_chart_shows_how_far_each_goal_is(results):
    bars = dict(report.summary_chart(report.sections(results)).bars)
    assert bars["Protocol core: messages per CPU-second"] == pytest.approx(1.6 / 1.5, abs=1e-4)
    assert bars["Pipeline, multi-record batches: events/s to the replies topic"] == pytest.approx(0.16)
    assert bars["End to end: p99 pipeline overhead at 500 msg/s, ms"] == 0.0


def test_main_writes_the_page_and_its_plots_and_removes_stale_plots(results, tmp_path: Path, capsys):
    pytest.importorskip("matplotlib")
    results_dir, docs = tmp_path / "results", tmp_path / "docs"
    results_dir.mkdir()
    for stem, record in results.items():
        (results_dir / f"{stem}.json").write_text(json.dumps(record))
    (docs / "images").mkdir(parents=True)
    (docs / "images" / "perf-gone.png").write_bytes(b"old")
    (docs / "images" / "architecture.png").write_bytes(b"not ours")

    assert report.main(["--results", str(results_dir), "--docs", str(docs)]) == 0

    assert (docs / "performance.md").read_text().startswith("# Performance\n")
    plots = sorted(p.name for p in (docs / "images").glob("perf-*.png"))
    expected = [
        "perf-endtoend-latency.png",
        "perf-endtoend-stages.png",
        "perf-endtoend-throughput.png",
        "perf-goals.png",
    ]
    assert plots == expected
    assert all((docs / "images" / p).read_bytes().startswith(b"\x89PNG\r\n\x1a\n") for p in plots)
    assert (docs / "images" / "architecture.png").exists()
    assert "wrote" in capsys.readouterr().out


INGRESS = {
    "benchmark": "ingress",
    "what": "safe-mode text callbacks through the ingress vs a bare aiohttp handler",
    "config": {"rate": 1000.0},
    "full_rps": 1500.0,
    "bare_rps": 9000.0,
    "ratio": 1500.0 / 9000.0,
    "floor_rps": 4500.0,
    "floor_ratio": 0.5,
    "server_cpu_us_per_request": {"full ingress": 600.0, "bare aiohttp": 110.0},
    "full_latency_ms": {"p50": 5.0, "p99": 15.0, "p999": 25.0},
    "floor_latency_ms": {"p50": 1.5, "p99": 3.0, "p999": 6.0},
    "bare_latency_ms": {"p50": 0.8, "p99": 2.0, "p999": 3.0},
    "goals": {"full_rps": 3000.0, "ratio": 0.6, "full_p99_ms": 20.0},
    "pass": {"rps": False, "ratio": False, "p99": True},
}


def _figures(section: report.Section) -> dict[str, tuple[str, str, str, str]]:
    return {f.name: (f.measured, f.baseline, f.ratio, f.goal) for f in section.figures}


def test_the_floors_are_shown_beside_the_goals_they_bound_and_older_results_go_without():
    ingress = _figures(report.ingress_section("ingress", INGRESS))
    assert ingress["max requests/s, produce floor (aiohttp + the durable write alone)"] == ("4,500", "9,000", "50%", "-")
    assert ingress["max requests/s, against that floor"] == ("1,500", "4,500", "33%", "-")
    page = report.render_markdown([report.ingress_section("ingress", INGRESS)], None)
    assert "| produce floor | - | 1.5 | 3.0 | 6.0 | - |" in page

    floor = {"events_per_s": 250.0, "rounds_events_per_s": [250.0]}
    pipeline = {
        **PIPELINE,
        "stages": {**PIPELINE["stages"], "state floor:forwarded": floor},
        "state_tables": 3,
        "ratio_state_floor": 0.25,
        "ratio_to_state_floor": 0.32,
    }
    figures = _figures(report.pipeline_section("pipeline", pipeline))
    assert figures["events/s, pass-through + 3 tables (Faust's floor for the state)"] == ("250", "1,000", "25%", "-")
    assert figures["events/s to the replies topic, against that floor"] == ("80", "250", "32%", "-")

    older = {k: v for k, v in INGRESS.items() if not k.startswith("floor")}
    assert not any("floor" in name for name in _figures(report.ingress_section("ingress", older)))
    assert not any("floor" in name for name in _figures(report.pipeline_section("pipeline", PIPELINE)))


def test_a_broken_results_file_is_named(tmp_path: Path):
    (tmp_path / "ingress.json").write_text("{not json")
    with pytest.raises(SystemExit, match="ingress.json: not JSON"):
        report.load_results(tmp_path)
