"""`wxstream simulate`: WeChat's API on loopback, and optionally traffic at the ingress.

Without `--rate` it serves the API until Ctrl-C. With `--rate` it also sends users'
messages to the ingress for `--duration` seconds, prints a progress line per second,
keeps serving `--linger` seconds for late customer-service messages, then prints a
summary and exits (status 1 when no message got through). The flags are in arguments.py.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from typing import Callable, Mapping

from app.accounts import Account
from app.settings import Settings
from app.simulator.config import ApiLimits
from app.simulator.faults import FaultPlan
from app.simulator.population import Mix
from app.simulator.report import Report
from app.simulator.server import ApiServer
from app.simulator.state import SimState
from app.simulator.traffic import TrafficPlan, drive
from app.stack import read_stack_file

__all__ = ("run_simulate",)


def run_simulate(
    settings: Settings, accounts: Mapping[str, Account], args: argparse.Namespace, echo: Callable[[str], None] = print
) -> int:
    try:
        state = _state(accounts, args)
        plan = _plan(args) if args.rate is not None else None
    except ValueError as exc:
        echo(f"wxstream simulate: {exc}")
        return 2
    try:
        return asyncio.run(_simulate(settings, state, plan, args, echo))
    except KeyboardInterrupt:
        echo("wxstream simulate: stopped.")
        return 0
    except OSError as exc:  # the port is taken, most likely
        echo(f"wxstream simulate: cannot serve on {args.host}: {exc}")
        stack = read_stack_file(settings.data_dir)
        if stack is not None and stack.simulator_url:
            echo(
                f"wxstream simulate: the running stack serves its own simulator at {stack.simulator_url}, which does not "
                "know this run's users; start the stack with WXSTREAM_WECHAT_API_URL=http://127.0.0.1:8082 and run "
                "`wxstream simulate --port 8082 ...` (README, \"Playing WeChat\")"
            )
        return 1


def _state(accounts: Mapping[str, Account], args: argparse.Namespace) -> SimState:
    unknown = set(args.account + args.uncertified) - set(accounts)
    if unknown:
        raise ValueError(f"unknown account(s) {', '.join(sorted(unknown))}; known: {', '.join(accounts)}")
    faults = FaultPlan(seed=args.seed)
    for spec in args.fail:
        endpoint, errcode, probability = _split(spec, 3, "--fail")
        faults.set(endpoint, errcode=int(errcode), probability=float(probability))
    for spec in args.fail_next:
        endpoint, errcode = _split(spec, 2, "--fail-next")
        faults.enqueue(endpoint, int(errcode))
    for spec in args.break_next:
        endpoint, kind = _split(spec, 2, "--break-next")
        faults.break_transport(endpoint, kind)
    for spec in args.latency:
        endpoint, seconds = _split(spec, 2, "--latency")
        faults.set(endpoint, latency_s=float(seconds))
    limits = ApiLimits(token_lifetime_s=args.token_lifetime, daily_token_quota=args.token_quota)
    return SimState.of(accounts.values(), uncertified=args.uncertified, limits=limits, faults=faults)


def _split(spec: str, parts: int, flag: str) -> list[str]:
    fields = spec.rsplit(":", parts - 1)
    if len(fields) != parts:
        raise ValueError(f"{flag} {spec!r}: expected {parts} fields separated by ':'")
    return fields


def _plan(args: argparse.Namespace) -> TrafficPlan:
    return TrafficPlan(
        rate=args.rate,
        users=args.users,
        duration_s=args.duration,
        mix=Mix.parse(args.mix),
        accounts=tuple(args.account),
        seed=args.seed,
    )


async def _simulate(
    settings: Settings, state: SimState, plan: TrafficPlan | None, args: argparse.Namespace, echo: Callable[[str], None]
) -> int:
    port = settings.simulator_port if args.port is None else args.port
    ingress = _ingress_url(settings, args)
    async with ApiServer(state, args.host, port, ingress_url=ingress) as server:
        echo(f"wxstream simulate: WeChat API on {server.url} (WXSTREAM_WECHAT_API_URL={server.url})")
        for account in state.accounts.values():
            if account.secret is None:
                echo(f"wxstream simulate: account {account.name} has no `secret`: its token requests get 40125")
        if plan is None:
            echo("wxstream simulate: serving; Ctrl-C stops.")
            await asyncio.Event().wait()
            return 0
        return await _traffic(state, plan, ingress, args.linger, echo)


def _ingress_url(settings: Settings, args: argparse.Namespace) -> str:
    if args.ingress:
        return args.ingress
    stack = read_stack_file(settings.data_dir)
    return stack.ingress_url if stack else settings.ingress_url


async def _traffic(
    state: SimState, plan: TrafficPlan, ingress: str, linger_s: float, echo: Callable[[str], None]
) -> int:
    echo(f"wxstream simulate: {plan.rate:g} messages/s for {plan.duration_s:g}s to {ingress}")

    def tick(report: Report) -> None:
        echo(f"[{report.elapsed_s:5.1f}s] {report.tally.line()} api={state.stats.received['api']}")

    report = await drive(state, ingress, plan, on_tick=tick)
    if linger_s > 0:
        echo(f"wxstream simulate: serving {linger_s:g}s more for customer-service messages")
        await asyncio.sleep(linger_s)
    echo(f"summary: {report.summary()}")
    echo(f"received: passive={state.stats.received['passive']} api={state.stats.received['api']}")
    for error, count in _errors(report).items():
        echo(f"  failed {count}x: {error}")
    if report.tally.failed == report.tally.sent > 0:
        echo(f"wxstream simulate: no message got through; is the ingress running at {ingress}?")
        return 1
    return 0


def _errors(report: Report) -> dict[str, int]:
    """The five most frequent reasons of failed deliveries."""
    counts = Counter(outcome.error for outcome in report.outcomes if outcome.error)
    return dict(counts.most_common(5))
