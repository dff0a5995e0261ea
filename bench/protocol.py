"""Benchmark: messages/s to verify, decrypt and parse one safe-mode text callback.

Throughput is per CPU-second of one thread (time.thread_time), so that other processes
on the machine slow neither side; the two sides alternate every 50 ms within each round
and the reported ratio is the median of the per-round ratios.

candidate  wxstream, exactly what the ingress does per POST: `CallbackQuery.from_mapping`,
           `check_timestamp`, then `CallbackCodec.decode` (outer XML, msg_signature,
           AES-CBC with every padding/length/appid check, inner XML, typed message).
baseline   wechatpy 1.8.18 on the same query and body: `WeChatCrypto.decrypt_message`
           then `wechatpy.parse_message`.

The callback is made by wxstream's own `CallbackCodec.encode_callback`, and before any
timing both sides must decode it to the same message, so both do the same work. The goal
is candidate >= 1.5x baseline. Results go to bench/results/protocol.json.

    make bench
    .venv/bin/python -m bench.protocol --seconds 1 --rounds 5 [--check]
"""

from __future__ import annotations

import argparse
import base64
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

from app.settings import Settings
from app.wechat import CallbackCodec, CallbackQuery
from app.wechat.messages import TextMessage
from app.wechat.signature import check_timestamp
from bench import description
from bench.timing import Result, compare, environment, write_results

GOAL = 1.5
SLICE_S = 0.05  # cases alternate every SLICE_S of CPU time within a round
RESULTS = Path(__file__).resolve().parent / "results" / "protocol.json"

TOKEN = "wxstreamBenchToken2024"
APPID = "wx5823bf96d3bd56c7"
ENCODING_AES_KEY = base64.b64encode(bytes(range(7, 39))).decode("ascii").rstrip("=")  # 43 chars
WINDOW_S = Settings.timestamp_window_s  # the ingress's default replay window
TO_USER = "gh_3f9a1c2b7d4e"
FROM_USER = "oTqB-5Zk9xW3cLmN0pQrStUvWxYz"  # an openid is 28 characters
MSG_ID = "24871234567890123"
NONCE = "1320562132"
CONTENT = "你好，请帮我查一下明天上午北京南到上海虹桥的G12次高铁还有没有二等座？Thanks, order #20241125"

CANDIDATE = "wxstream CallbackCodec"
BASELINE = "wechatpy 1.8.18"


def make_callback(timestamp: str) -> tuple[dict[str, str], bytes]:
    """WeChat's side of one safe-mode text callback: the signed query and the body."""
    xml = (
        f"<xml><ToUserName><![CDATA[{TO_USER}]]></ToUserName>\n"
        f"<FromUserName><![CDATA[{FROM_USER}]]></FromUserName>\n"
        f"<CreateTime>{timestamp}</CreateTime>\n"
        f"<MsgType><![CDATA[text]]></MsgType>\n"
        f"<Content><![CDATA[{CONTENT}]]></Content>\n"
        f"<MsgId>{MSG_ID}</MsgId>\n"
        f"</xml>"
    )
    wechat = CallbackCodec(
        token=TOKEN, appid=APPID, mode="safe", aes_keys=[ENCODING_AES_KEY], random_bytes=lambda n: b"R" * n
    )
    return wechat.encode_callback(xml, timestamp=timestamp, nonce=NONCE, encrypted=True, openid=FROM_USER)


def build_cases(query: dict[str, str], body: bytes):
    """The two callables to time, each checked once to decode the callback fully."""
    from wechatpy import parse_message
    from wechatpy.crypto import WeChatCrypto

    codec = CallbackCodec(token=TOKEN, appid=APPID, mode="safe", aes_keys=[ENCODING_AES_KEY])
    crypto = WeChatCrypto(TOKEN, ENCODING_AES_KEY, APPID)

    def candidate():
        params = CallbackQuery.from_mapping(query)
        check_timestamp(params.timestamp, time.time(), WINDOW_S)
        return codec.decode(params, body)

    def baseline():
        xml = crypto.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
        return parse_message(xml)

    ours = candidate().message
    theirs = baseline()
    if not isinstance(ours, TextMessage) or type(theirs).__name__ != "TextMessage":
        raise SystemExit(f"not both text messages: {type(ours).__name__} / {type(theirs).__name__}")
    pairs = {
        "Content": (ours.content, theirs.content),
        "FromUserName": (ours.from_user, theirs.source),
        "ToUserName": (ours.to_user, theirs.target),
        "MsgId": (ours.msg_id, theirs.id),
    }
    for tag, (a, b) in pairs.items():
        if a != b:
            raise SystemExit(f"wxstream and wechatpy disagree on {tag}: {a!r} != {b!r}")
    if ours.content != CONTENT:
        raise SystemExit(f"decoded Content {ours.content!r} is not the one sent")
    return {CANDIDATE: candidate, BASELINE: baseline}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def protocol_environment() -> dict[str, object]:
    """The shared environment record, plus what decides either side's speed: the libraries'
    versions and the AES backend wechatpy picked."""
    from wechatpy.crypto import base as wechatpy_crypto

    return {
        **environment("one thread, timed in CPU seconds: other processes on the cores slow neither side"),
        "implementation": platform.python_implementation(),
        "processor": platform.processor() or None,
        "versions": {d: _version(d) for d in ("wechatpy", "pycryptodome", "cryptography", "lxml", "xmltodict")},
        "wechatpy_aes_backend": wechatpy_crypto.WeChatCipher.__module__,
    }


def paired_ratios(results: dict[str, Result]) -> list[float]:
    """candidate/baseline of each round: both ran interleaved in it, under the same noise."""
    return [a / b for a, b in zip(results[CANDIDATE].rounds, results[BASELINE].rounds)]


def report(results: dict[str, Result], *, seconds: float, rounds: int, body: bytes) -> tuple[str, float, bool]:
    """The table, the ratio (median of the paired per-round ratios) and whether it meets GOAL."""
    ours, theirs = results[CANDIDATE], results[BASELINE]
    per_round = paired_ratios(results)
    ratio = statistics.median(per_round)
    passed = ratio >= GOAL
    lines = [
        "protocol: verify + decrypt + parse of one safe-mode text callback",
        f"  body {len(body)} bytes, Content {len(CONTENT)} chars; one thread, timed in CPU seconds;",
        f"  {rounds} rounds of {seconds:g} s per case, interleaved in {SLICE_S * 1000:g} ms slices; median round shown",
        "",
        f"  {'case':<24} {'msgs/s':>10} {'us/msg':>9}   {'rounds min..max (msgs/s)':<26} spread",
    ]
    for r in (ours, theirs):
        span = f"{min(r.rounds):,.0f}..{max(r.rounds):,.0f}"
        lines.append(f"  {r.name:<24} {r.median:>10,.0f} {r.us_per_op:>9.2f}   {span:<26} {r.spread:.1%}")
    lines += [
        "",
        f"  ratio wxstream/wechatpy {ratio:>10.2f}x   goal >= {GOAL:.2f}x   {'PASS' if passed else 'MISS'}",
        f"  (median of the per-round ratios, {min(per_round):.2f}..{max(per_round):.2f})",
    ]
    return "\n".join(lines), ratio, passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.protocol", description=description(__doc__))
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per case per round (default 1.0)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported (default 5)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the ratio misses the goal")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        parser.error("--seconds must be > 0 and --rounds >= 1")
    try:
        import wechatpy  # noqa: F401
    except ImportError:
        print("wechatpy is not installed; `make bench` installs the bench extra (pip install -e '.[bench]')")
        return 2

    query, body = make_callback(str(int(time.time())))
    cases = build_cases(query, body)
    results = compare(cases, seconds=args.seconds, rounds=args.rounds, slice_s=SLICE_S, clock=time.thread_time)
    table, ratio, passed = report(results, seconds=args.seconds, rounds=args.rounds, body=body)
    print(table)

    record = {
        "benchmark": "protocol",
        "what": "messages/s: verify + decrypt + parse of one safe-mode text callback",
        "unit": "messages per CPU-second of one thread",
        "clock": "time.thread_time",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {"seconds": args.seconds, "rounds": args.rounds, "body_bytes": len(body), "content_chars": len(CONTENT)},
        "candidate": {"name": CANDIDATE, **results[CANDIDATE].as_dict()},
        "baseline": {"name": BASELINE, **results[BASELINE].as_dict()},
        "ratio": ratio,
        "ratio_basis": "median of round_ratios (candidate/baseline of each interleaved round)",
        "round_ratios": paired_ratios(results),
        "ratio_of_medians": results[CANDIDATE].median / results[BASELINE].median,
        "goal": GOAL,
        "pass": passed,
        "environment": protocol_environment(),
    }
    write_results(RESULTS, record)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
