"""Scenarios that break a component under steady load: the worker killed with kill -9,
tritonserver killed, the broker frozen. In each, every message WeChat counted as taken
must be answered exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

from chaos.checks import exactly_once, health, ledger_figures
from chaos.harness import ChaosStack
from chaos.ledger import Ledger
from chaos.load import Progress, answered, under_fault
from chaos.options import ChaosOptions
from chaos.result import Check, Findings
from chaos.sessions import session_problems

__all__ = ("worker_kill", "triton_kill", "broker_pause")


async def _sessions(h: ChaosStack, ledger: Ledger) -> Check:
    """Each user's stored conversation holds the messages the model answered, once each."""
    problems = []
    users = dict.fromkeys(m.user for m in ledger.messages)
    for account, openid in users:
        by_model = [m for m in ledger.of_user(account, openid) if ledger.kind_of(m) == "echo"]
        turns = await h.session_turns(account, openid)
        problems += [f"{openid}: {p}" for p in session_problems(by_model, turns, h.settings.session_max_turns)]
    return Check(f"sessions intact ({len(users)} users)", not problems, "; ".join(problems[:3]))


async def worker_kill(h: ChaosStack, options: ChaosOptions, progress: Progress) -> Findings:
    async def fault() -> dict[str, Any]:
        await asyncio.sleep(options.fault_delay_s)
        progress.note("kill -9 the worker")
        killed = time.monotonic()
        await h.call(h.stack.stop_worker, kill=True)
        await h.call(h.stack.start_worker)
        back = time.monotonic()
        progress.note(f"worker restarted and ready after {back - killed:.1f}s")
        return {"worker_killed_at_s": round(killed - progress.started, 1), "worker_down_s": round(back - killed, 1)}

    report, figures = await under_fault(h, options.plan(), fault, progress)
    ledger = await answered(h, report.outcomes, options, progress)
    checks = (*await exactly_once(h, ledger), await _sessions(h, ledger), *await health(h))
    return Findings(ledger.counts, checks, figures={**figures, **ledger_figures(ledger)})


async def triton_kill(h: ChaosStack, options: ChaosOptions, progress: Progress) -> Findings:
    async def fault() -> tuple[float, float]:
        await asyncio.sleep(options.fault_delay_s)
        progress.note("kill -9 tritonserver")
        killed = time.monotonic()
        await h.call(h.stack.stop_triton, kill=True)
        await asyncio.sleep(options.outage_s)
        progress.note("start tritonserver")
        await h.call(h.stack.start_triton)
        progress.note(f"tritonserver ready again, {time.monotonic() - killed:.1f}s after the kill")
        return killed, time.monotonic()

    report, (killed, back) = await under_fault(h, options.plan(), fault, progress)
    ledger = await answered(h, report.outcomes, options, progress)
    fallback = [m for m in ledger.messages if ledger.kind_of(m) == "generic"]
    after = [m for m in ledger.messages if m.started_at >= back]
    real_after = [m for m in after if ledger.kind_of(m) == "echo"]
    recovery = (
        f"{len(after)} messages were sent after the restart, none answered by the model"
        if after
        else "no message was sent after the restart: raise --messages or lower --fault-at"
    )
    checks = (
        *await exactly_once(h, ledger),
        Check("fallback replies while tritonserver was down", bool(fallback), "every message got a real reply"),
        Check("real replies again after tritonserver restarted", bool(real_after), recovery),
        *await health(h),
    )
    figures = {
        "triton_killed_at_s": round(killed - progress.started, 1),
        "triton_down_s": round(back - killed, 1),
        "fallback_replies": len(fallback),
        "sent_after_restart": len(after),
        "real_replies_after_restart": len(real_after),
        **ledger_figures(ledger),
    }
    return Findings(ledger.counts, checks, figures=figures)


async def broker_pause(h: ChaosStack, options: ChaosOptions, progress: Progress) -> Findings:
    """The embedded broker keeps its data in memory only, so it is frozen (SIGSTOP), not
    stopped: to its clients that is a broker that does not answer, as a dead one does."""

    async def fault() -> int:
        await asyncio.sleep(options.fault_delay_s)
        broker = h.stack.component("broker")
        assert broker.pid is not None
        progress.note(f"freeze the broker (SIGSTOP) for {options.outage_s:g}s")
        os.kill(broker.pid, signal.SIGSTOP)
        deepest = 0
        try:
            until = time.monotonic() + options.outage_s
            while time.monotonic() < until:
                deepest = max(deepest, await _spooled(h))
                await asyncio.sleep(0.5)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        progress.note(f"broker thawed (SIGCONT); the ingress had spooled up to {deepest} events")
        return deepest

    report, deepest = await under_fault(h, options.plan(), fault, progress)
    ledger = await answered(h, report.outcomes, options, progress)
    left = await _spooled(h)
    checks = (
        *await exactly_once(h, ledger),
        Check("the ingress spooled while the broker was frozen", deepest > 0, "nothing was spooled"),
        Check("the spool drained", left == 0, f"{left} events still spooled"),
        *await health(h),
    )
    return Findings(ledger.counts, checks, figures={"spooled_at_most": deepest, **ledger_figures(ledger)})


async def _spooled(h: ChaosStack) -> int:
    status, body = await h.ingress_get("/readyz")
    try:
        return int(json.loads(body)["spooled"]) if status is not None else 0
    except (ValueError, KeyError, TypeError):
        return 0
