"""Load generator of bench.ingress: safe-mode text callbacks POSTed over keep-alive
connections, as WeChat sends them; prints one JSON object with the results on stdout.

Before any timing it builds `--messages` distinct callbacks with the account's secrets
(`CallbackCodec.encode_callback`, exactly what WeChat sends): each its own MsgId, user
(openid), nonce and Chinese + ASCII text, signed with the current time, and renders each
into the bytes of its HTTP/1.1 request. The timed loop then only writes the next prepared
request and reads the answer's status line, Content-Length and body, on uvloop: the client
shares the cores with the servers, so every microsecond it spends is taken from them (an
aiohttp client spent about 400 us per request, more than the bare server). Every answer
must be 200 `success`; anything else is counted as an error.

closed  `--connections` senders, each sending its next callback as soon as the previous
        one is answered: the highest throughput the server sustains at that concurrency.
open    callbacks scheduled on a fixed timeline at `--rate` per second, whether or not
        earlier ones were answered (at most `--connections` in flight, the rest queue in
        the client); a request's latency runs from its scheduled send time, so queueing
        anywhere, client included, is counted rather than hidden (no coordinated omission).

Each `--target` is measured `--rounds` times, the targets alternating (A B, B A, ...), every
run on fresh connections and starting with `--warmup` seconds that are not counted.
Progress goes to stderr.

    python -m bench.load --target full=http://127.0.0.1:8080/wechat/bench --accounts accounts.toml \
        --account bench --mode open --rate 1000 --seconds 5 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import random
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlencode, urlsplit

import uvloop

from app.wechat import CallbackCodec
from bench import description
from bench.timing import cpu_seconds

EXPECTED = b"success"
STOP_GRACE_S = 10.0  # closed loop: how long the last requests may take once a run is over

_PRODUCTS = (
    "蓝牙耳机",
    "保温杯",
    "机械键盘",
    "羽绒服",
    "iPhone 15 手机壳",
    "有机绿茶礼盒",
    "儿童绘本套装",
    "USB-C 充电器",
)
_CITIES = ("北京南", "上海虹桥", "广州南", "深圳北", "杭州东", "成都东", "武汉", "南京南")
_TEMPLATES = (
    "你好，请帮我查一下订单 #{n} 的物流状态，谢谢！",
    "明天上午{h}点{a}到{b}的G{t}次高铁还有没有二等座？Thanks",
    "{p}还有货吗？想买{k}个，能开发票吗",
    "退货申请已经提交了，单号 SF{n}，请尽快处理 🙏",
    "I ordered the {p} last week (order {n}) but it has not arrived yet, 麻烦看一下",
    "发票抬头：上海某某科技有限公司，税号 91310115MA1K{t}，邮箱 finance{k}@example.com",
    "会员积分怎么兑换？我的账号是 {n}",
    "门店营业时间是几点到几点？周末{h}点以后还开门吗",
    "优惠券 CODE{t} 为什么用不了？提示 error {k}",
    "你好",
)


@dataclass(frozen=True, slots=True)
class Prepared:
    query: str
    body: bytes


def _openid(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "o" + "".join(rng.choice(alphabet) for _ in range(27))  # an openid is 28 characters


def _content(rng: random.Random) -> str:
    return rng.choice(_TEMPLATES).format(
        n=rng.randrange(10**11, 10**12),
        h=rng.randrange(6, 12),
        a=rng.choice(_CITIES),
        b=rng.choice(_CITIES),
        t=rng.randrange(1, 9999),
        p=rng.choice(_PRODUCTS),
        k=rng.randrange(1, 20),
    )


def prepare(codec: CallbackCodec, original_id: str, count: int, users: int, seed: int) -> list[Prepared]:
    """`count` distinct signed, encrypted text callbacks from `users` users, signed now."""
    rng = random.Random(seed)
    openids = [_openid(rng) for _ in range(users)]
    timestamp = str(int(time.time()))
    first_id = (int(time.time() * 1000) % 10**13) * 1000 + seed % 1000  # MsgIds are 64-bit
    prepared = []
    for i in range(count):
        openid = openids[i % users]
        xml = (
            f"<xml><ToUserName><![CDATA[{original_id}]]></ToUserName>\n"
            f"<FromUserName><![CDATA[{openid}]]></FromUserName>\n"
            f"<CreateTime>{timestamp}</CreateTime>\n"
            f"<MsgType><![CDATA[text]]></MsgType>\n"
            f"<Content><![CDATA[{_content(rng)}]]></Content>\n"
            f"<MsgId>{first_id + i}</MsgId>\n"
            f"</xml>"
        )
        nonce = str(rng.randrange(10**9, 10**10))
        query, body = codec.encode_callback(xml, timestamp=timestamp, nonce=nonce, encrypted=True, openid=openid)
        prepared.append(Prepared(urlencode(query), body))
    return prepared


class CpuWatch:
    """CPU used by named groups of processes (and this one) between `start` and `stop`, in cores."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = {**pids, "client": [os.getpid()]}
        self._t0 = 0.0
        self._seconds0: dict[str, float | None] = {}

    def _seconds(self, name: str) -> float | None:
        seconds = [cpu_seconds(pid) for pid in self.pids[name]]
        return None if None in seconds else sum(seconds)  # type: ignore[arg-type]

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._seconds0 = {name: self._seconds(name) for name in self.pids}

    def stop(self) -> dict[str, float | None]:
        elapsed = time.perf_counter() - self._t0
        cores: dict[str, float | None] = {}
        for name in self.pids:
            before, after = self._seconds0.get(name), self._seconds(name)
            cores[name] = None if before is None or after is None else round((after - before) / elapsed, 3)
        return cores


class Stats:
    def __init__(self) -> None:
        self.ok = 0
        self.errors: dict[str, int] = {}
        self.latencies: list[float] = []

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def answered(self, problem: str | None, latency: float) -> None:
        """One answer: its latency when it is the expected one, else the problem counted."""
        if problem is None:
            self.ok += 1
            self.latencies.append(latency)
        else:
            self.error(problem)


class HttpError(Exception):
    """The server's answer is not one this client can read (no Content-Length, bad status line)."""


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time: it writes prepared request
    bytes and reads just enough of the answer to check it."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            answer = take_answer(self._buffer)
        except HttpError as exc:
            self.close()
            self._fail(exc)
            return
        if answer is None:
            return
        status, body, keep_alive = answer
        if not keep_alive:
            self.close()
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((status, body))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send one request; the future gives the answer's (status, body)."""
        assert self._transport is not None, "request() before the connection is made"
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(data)
        return self._answer

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.close()

    def _fail(self, exc: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(exc)


def take_answer(buffer: bytearray) -> tuple[int, bytes, bool] | None:
    """The HTTP/1.1 answer at the start of `buffer` as (status, body, keep-alive), taken out
    of it; None until all of it is there. Raises HttpError for what this client can't read."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    status_line, _, headers = bytes(buffer[:end]).lower().partition(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    if version != b"http/1.1" or not rest[:3].isdigit():
        raise HttpError(f"bad status line {status_line[:40]!r}")
    length, keep_alive = None, True
    for line in headers.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep_alive = value.strip() != b"close"
    if length is None:
        raise HttpError("answer without Content-Length")
    stop = end + 4 + length
    if len(buffer) < stop:
        return None
    body = bytes(buffer[end + 4 : stop])
    del buffer[:stop]
    return int(rest[:3]), body, keep_alive


class ConnectionPool:
    """At most `size` connections to one server; requests beyond them wait, first come first served."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self._host, self._port, self._size = host, port, size
        self._idle: list[HttpConnection] = []
        self._all: set[HttpConnection] = set()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def request(self, data: bytes) -> tuple[int, bytes]:
        connection = await self._acquire()
        try:
            return await connection.request(data)
        except BaseException:
            connection.close()  # its answer may still come: never reuse it for another request
            raise
        finally:
            self._release(connection)

    async def _acquire(self) -> HttpConnection:
        while not self._idle and len(self._all) >= self._size:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        if self._idle:
            return self._idle.pop()
        connection = HttpConnection()
        self._all.add(connection)
        try:
            await asyncio.get_running_loop().create_connection(lambda: connection, self._host, self._port)
        except BaseException:
            self._release(connection)
            raise
        return connection

    def _release(self, connection: HttpConnection) -> None:
        if connection.open:
            self._idle.append(connection)
        else:
            self._all.discard(connection)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def close(self) -> None:
        for connection in self._all:
            connection.close()


class Target:
    """One server under load: one prepared HTTP request per callback."""

    def __init__(self, name: str, url: str, prepared: list[Prepared]) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"target {name}: expected http://host:port/path, got {url}")
        self.name = name
        self.host, self.port = parts.hostname, parts.port
        self.requests = [http_request(parts.netloc, f"{parts.path}?{item.query}", item.body) for item in prepared]
        self.cursor = 0  # the next run goes on where the last one stopped

    def request(self, i: int) -> bytes:
        return self.requests[(self.cursor + i) % len(self.requests)]

    def pool(self, connections: int) -> ConnectionPool:
        return ConnectionPool(self.host, self.port, connections)


def http_request(netloc: str, target: str, body: bytes) -> bytes:
    """The bytes of a POST of `body` (a callback's XML) to `target` on `netloc`."""
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {netloc}\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _send(pool: ConnectionPool, data: bytes) -> str | None:
    """POST one callback; None if answered 200 `success`, else what went wrong."""
    try:
        status, body = await pool.request(data)
    except (HttpError, OSError) as exc:
        return type(exc).__name__
    if status != 200:
        return f"http_{status}"
    if body != EXPECTED:
        return "unexpected_body"
    return None


async def closed_loop(target: Target, args: argparse.Namespace, watch: CpuWatch) -> dict[str, object]:
    stats: Stats | None = None  # None while warming up: nothing is counted
    state = {"next": 0, "stop": False}
    perf = time.perf_counter

    async def sender(pool: ConnectionPool) -> None:
        while not state["stop"]:
            i = state["next"]
            state["next"] = i + 1
            started = perf()
            problem = await _send(pool, target.request(i))
            counting = stats
            if counting is None:
                continue
            counting.answered(problem, perf() - started)

    pool = target.pool(args.connections)
    senders = [asyncio.create_task(sender(pool)) for _ in range(args.connections)]
    await asyncio.sleep(args.warmup)
    stats = Stats()
    watch.start()
    started = perf()
    await asyncio.sleep(args.seconds)
    measured, stats = stats, None
    elapsed = perf() - started
    cpu = watch.stop()
    state["stop"] = True
    await asyncio.wait(senders, timeout=STOP_GRACE_S)
    pool.close()  # fails what is still waiting for an answer
    await asyncio.gather(*senders)
    target.cursor += state["next"]
    return {
        "requests": measured.ok,
        "errors": measured.errors,
        "elapsed_s": elapsed,
        "rps": measured.ok / elapsed,
        "latency_ms": summarize(measured.latencies),
        "cpu_cores": cpu,
    }


async def open_loop(target: Target, args: argparse.Namespace, watch: CpuWatch) -> dict[str, object]:
    rate = args.rate
    warm_n = round(args.warmup * rate)
    total = warm_n + max(1, round(args.seconds * rate))
    stats = Stats()
    late_sends = 0
    perf = time.perf_counter
    pending: dict[int, float] = {}  # measured requests not answered yet: index -> scheduled time
    tasks: set[asyncio.Task[None]] = set()

    async def one(pool: ConnectionPool, i: int, due: float) -> None:
        problem = await _send(pool, target.request(i))
        if i < warm_n:
            return
        del pending[i]
        stats.answered(problem, perf() - due)

    pool = target.pool(args.connections)
    t0 = perf() + 0.01
    window_start = t0
    i = 0
    while i < total:
        due = t0 + i / rate
        now = perf()
        if due > now:
            await asyncio.sleep(due - now)
            continue
        if i == warm_n:
            watch.start()
            window_start = now
        if now - due > 0.005:
            late_sends += 1  # the client could not keep the schedule; counted in latency anyway
        if i >= warm_n:
            pending[i] = due
        task = asyncio.create_task(one(pool, i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    # Wait a little for the stragglers; those still unanswered then count with the age
    # they reached, a lower bound of their latency, so a server that falls behind shows.
    if tasks:
        await asyncio.wait(set(tasks), timeout=args.drain)
    cut = perf()
    cpu = watch.stop()
    elapsed = cut - window_start
    unfinished = [cut - due for due in pending.values()]
    for task in list(tasks):
        task.cancel()
    if tasks:
        await asyncio.wait(set(tasks))
    pool.close()
    target.cursor += total
    measured_n = total - warm_n
    return {
        "requests": stats.ok,
        "scheduled": measured_n,
        "errors": stats.errors,
        "unfinished": len(unfinished),
        "offered_rps": rate,
        "elapsed_s": elapsed,
        "achieved_rps": stats.ok / elapsed,
        "late_sends": late_sends,
        "latency_ms": summarize(stats.latencies + unfinished),
        "latencies_ms": [round(x * 1000, 3) for x in stats.latencies + unfinished],
        "cpu_cores": cpu,
    }


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def summarize(latencies_s: list[float]) -> dict[str, float]:
    ordered = sorted(x * 1000 for x in latencies_s)
    if not ordered:
        return {}
    return {
        "p50": percentile(ordered, 50),
        "p90": percentile(ordered, 90),
        "p99": percentile(ordered, 99),
        "p999": percentile(ordered, 99.9),
        "max": ordered[-1],
        "mean": sum(ordered) / len(ordered),
    }


def _pairs(values: list[str], what: str, parser: argparse.ArgumentParser) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            parser.error(f"{what} takes NAME=VALUE, got {value!r}")
        pairs[name] = rest
    return pairs


async def _run_all(targets: list[Target], args: argparse.Namespace, watch: CpuWatch) -> list[dict[str, object]]:
    run = closed_loop if args.mode == "closed" else open_loop
    runs = []
    for r in range(args.rounds):
        for target in targets if r % 2 == 0 else targets[::-1]:
            gc.collect()
            result = await run(target, args, watch)
            result.update(target=target.name, round=r + 1)
            runs.append(result)
            figure = (
                f"{result['rps']:,.0f} req/s"
                if args.mode == "closed"
                else f"p99 {result['latency_ms'].get('p99', float('nan')):,.2f} ms"
            )
            print(
                f"  {args.mode:<6} round {r + 1}/{args.rounds}  {target.name:<13} {figure}", file=sys.stderr, flush=True
            )
            await asyncio.sleep(0.2)  # let the server finish what the run left in flight
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=description(__doc__))
    parser.add_argument(
        "--target", action="append", required=True, metavar="NAME=URL", help="http://host:port/wechat/<account>"
    )
    parser.add_argument("--accounts", type=Path, required=True, help="accounts TOML holding the account's secrets")
    parser.add_argument("--account", required=True, help="name of a safe-mode account in --accounts")
    parser.add_argument("--mode", choices=("closed", "open"), required=True)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (default 5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds first (default 0.5)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per target, targets alternating (default 1)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop: requests per second (default 1000)")
    parser.add_argument(
        "--drain", type=float, default=2.0, help="open loop: seconds to wait for stragglers (default 2)"
    )
    parser.add_argument("--messages", type=int, default=4000, help="distinct callbacks prepared (default 4000)")
    parser.add_argument("--users", type=int, default=1000, help="distinct openids among them (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--watch", action="append", default=[], metavar="NAME=PID[,PID...]", help="report these processes' CPU, summed"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.connections < 1 or args.rate <= 0 or args.warmup < 0:
        parser.error("--seconds, --connections and --rate must be > 0, --rounds >= 1, --warmup >= 0")

    entry = tomllib.loads(args.accounts.read_text(encoding="utf-8"))["accounts"][args.account]
    if entry.get("mode") != "safe":
        parser.error(f"account {args.account} is not in safe mode")
    codec = CallbackCodec(token=entry["token"], appid=entry["appid"], mode="safe", aes_keys=entry["aes_keys"])
    prepared = prepare(codec, entry.get("original_id") or "gh_0000000000", args.messages, args.users, args.seed)
    targets = [Target(name, url, prepared) for name, url in _pairs(args.target, "--target", parser).items()]
    watch = CpuWatch(
        {name: [int(pid) for pid in pids.split(",")] for name, pids in _pairs(args.watch, "--watch", parser).items()}
    )
    gc.collect()
    gc.freeze()  # the prepared callbacks are never garbage; keep them out of collections
    runs = uvloop.run(_run_all(targets, args, watch))
    result = {
        "mode": args.mode,
        "connections": args.connections,
        "messages": len(prepared),
        "users": args.users,
        "runs": runs,
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
