"""Scenarios that attack the ingress: a flood of hostile requests and replays beside real
users' messages, and a bounded fuzz run on its HTTP surface. Nothing hostile may reach
a topic, nothing may break the service, and the real users are still answered once."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Awaitable, Callable, Sequence, TypeVar

from app.simulator.callbacks import Outcome, encode
from app.simulator.report import Report
from app.simulator.traffic import drive
from app.topics import RAW_EVENTS, REPLIES
from chaos.checks import exactly_once, health, ledger_figures, nothing_from, one_reply_each, raw_growth
from chaos.fuzz import FUZZ_PREFIX, Fuzzer
from chaos.harness import ACCOUNT, PLAIN_ACCOUNT, ChaosStack
from chaos.hostile import HOSTILE_PREFIX, XML_HEADERS, Hostile, hostile_requests
from chaos.http import RawRequest, RawResponse, send_raw, target
from chaos.load import Progress, answered
from chaos.options import ChaosOptions
from chaos.result import Check, Findings

__all__ = ("hostile_flood", "fuzz_ingress")

T = TypeVar("T")
TIMEOUT_S = 15.0  # per request: a valid callback may be held 4.5 s for its passive reply
# MsgIds of hostile and fuzzed messages, far from the load's (the simulator's start at
# the current time in units of 10 ns: about 1.8 * 10**17)
HOSTILE_MSG_IDS = 7 * 10**17
FUZZ_MSG_IDS = 8 * 10**17


async def _bounded(
    items: Sequence[T], concurrency: int, send: Callable[[T], Awaitable[RawResponse]]
) -> list[RawResponse]:
    """`send` every item, at most `concurrency` at once; the answers in the items' order."""
    slots = asyncio.Semaphore(concurrency)

    async def one(item: T) -> RawResponse:
        async with slots:
            return await send(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def _sender(h: ChaosStack) -> Callable[[RawRequest], Awaitable[RawResponse]]:
    host, port = h.child.ingress_host, h.child.ingress_port
    return lambda request: send_raw(host, port, request, TIMEOUT_S)


def _retries(report: Report) -> int:
    return sum(o.attempts - 1 for o in report.outcomes)


def _replay(h: ChaosStack, outcome: Outcome) -> RawRequest:
    """The same message again (same MsgId), signed afresh as a retry is."""
    query, body = encode(h.state.accounts[outcome.message.user.account], outcome.message)
    return RawRequest("POST", target(f"/wechat/{outcome.message.user.account}", query), XML_HEADERS, body)


def _misanswered(flood: Sequence[Hostile], answers: Sequence[RawResponse]) -> list[str]:
    wrong = []
    for hostile, answer in zip(flood, answers):
        reason = answer.body.decode("utf-8", "replace").strip()
        if answer.status != hostile.status or (hostile.reason is not None and reason != hostile.reason):
            expected = f"{hostile.status} {hostile.reason or ''}".strip()
            wrong.append(f"{hostile.name}: {answer.status} {reason[:40] or answer.error} (expected {expected})")
    return wrong


async def hostile_flood(h: ChaosStack, options: ChaosOptions, progress: Progress) -> Findings:
    raw_before = len(await h.topic_values(RAW_EVENTS))
    send = _sender(h)
    rng = random.Random(f"hostile:{options.seed}")
    safe, plain = h.accounts[ACCOUNT], h.accounts[PLAIN_ACCOUNT]

    async def flood() -> tuple[list[Hostile], list[RawResponse]]:
        requests: list[Hostile] = []
        answers: list[RawResponse] = []
        for round_no in range(options.hostile_rounds):
            first_msg_id = HOSTILE_MSG_IDS + 1000 * round_no
            now, limit = int(time.time()), h.settings.max_body_bytes
            batch = hostile_requests(safe, plain, now=now, rng=rng, max_body_bytes=limit, first_msg_id=first_msg_id)
            requests += batch
            answers += await _bounded([b.request for b in batch], options.concurrency, send)
            progress.tick(f"hostile round {round_no + 1}/{options.hostile_rounds}", None, len(h.state.recorder))
        return requests, answers

    progress.note(f"{options.attack_messages} users' messages beside {options.hostile_rounds} hostile rounds")
    load = asyncio.create_task(drive(h.state, h.child.ingress_url, options.plan(options.attack_messages)))
    try:
        flooded, refusals = await flood()
        report = await load
    finally:
        load.cancel()
    accepted = [o for o in report.outcomes if o.result != "failed"]
    progress.note(f"replaying the {len(accepted)} accepted messages (same MsgId, signed afresh)")
    replays = await _bounded([_replay(h, o) for o in accepted], options.concurrency, send)
    ledger = await answered(h, report.outcomes, options, progress)

    raw = await h.topic_values(RAW_EVENTS)
    replies = await h.topic_values(REPLIES)
    wrong = _misanswered(flooded, refusals)
    replays_taken = sum(r.status == 200 for r in replays)
    checks = (
        *await exactly_once(h, ledger),
        Check(f"each of {len(flooded)} hostile requests refused with its status", not wrong, "; ".join(wrong[:4])),
        Check("replays accepted (200)", replays_taken == len(replays), f"{len(replays) - replays_taken} not"),
        nothing_from(raw, HOSTILE_PREFIX, "hostile requests"),
        raw_growth(len(raw) - raw_before, ledger.counts.accepted + replays_taken, _retries(report)),
        one_reply_each(replies, [f"msg:{m.msg_id}" for m in ledger.messages]),
        *await health(h),
    )
    figures = {
        "hostile_requests": len(flooded),
        "hostile_statuses": dict(Counter(str(r.status) for r in refusals)),
        "replays": len(replays),
        "replays_answered_passively": sum(r.status == 200 and b"<xml>" in r.body for r in replays),
        **ledger_figures(ledger),
    }
    return Findings(
        ledger.counts,
        checks,
        more_sent=len(flooded) + len(replays),
        more_accepted=replays_taken,
        rejected=len(flooded) - len(wrong),
        figures=figures,
    )


async def fuzz_ingress(h: ChaosStack, options: ChaosOptions, progress: Progress) -> Findings:
    raw_before = len(await h.topic_values(RAW_EVENTS))
    fuzzer = Fuzzer((h.accounts[ACCOUNT], h.accounts[PLAIN_ACCOUNT]), seed=options.seed, first_msg_id=FUZZ_MSG_IDS)
    send = _sender(h)
    statuses: Counter[str] = Counter()
    server_errors: list[str] = []
    unanswered: list[str] = []
    taken = 0

    async def fuzz_one(index: int) -> RawResponse:
        nonlocal taken
        case = fuzzer.case(index, int(time.time()))
        answer = await send(case.request)
        statuses[str(answer.status)] += 1
        taken += answer.status == 200 and case.request.method == "POST"
        about = f"case {index} ({', '.join(case.mutations) or 'valid'})"
        if answer.status is None:
            unanswered.append(f"{about}: {answer.error}")
        elif answer.status >= 500:
            server_errors.append(f"{about}: {answer.status} {answer.body[:60]!r}")
        progress.tick(f"fuzzing, {sum(statuses.values())}/{options.fuzz_requests}", None, len(h.state.recorder))
        return answer

    progress.note(f"{options.fuzz_requests} fuzzed requests, seed {options.seed}")
    await _bounded(range(options.fuzz_requests), options.concurrency, fuzz_one)
    alive = await health(h)
    progress.note(f"{options.attack_messages} users' messages after the fuzz run")
    report = await drive(h.state, h.child.ingress_url, options.plan(options.attack_messages, seed_offset=1))
    ledger = await answered(h, report.outcomes, options, progress, ignore=(FUZZ_PREFIX,))

    raw = await h.topic_values(RAW_EVENTS)
    checks = (
        *await exactly_once(h, ledger),
        Check("no 5xx answer", not server_errors, "; ".join(server_errors[:4])),
        Check("every request answered", not unanswered, "; ".join(unanswered[:4])),
        Check("alive and ready right after the fuzz run", all(c.ok for c in alive), "; ".join(c.detail for c in alive)),
        raw_growth(len(raw) - raw_before, taken + ledger.counts.accepted, _retries(report) + len(unanswered)),
        *await health(h),
    )
    figures = {"statuses": dict(statuses), "fuzz_accepted": taken, **ledger_figures(ledger)}
    rejected = sum(n for status, n in statuses.items() if status.startswith("4"))
    return Findings(
        ledger.counts, checks, more_sent=options.fuzz_requests, more_accepted=taken, rejected=rejected, figures=figures
    )
