"""Delivers one user's message to the ingress exactly as WeChat does, and reads the answer.

WeChat waits 5 s per attempt and makes 3 attempts in all: it tries again, with the same
request, when an attempt times out or is answered with a status other than 200. A 200
answer ends the delivery: `success` or an empty body is an ack (the user sees nothing
yet), XML is a passive reply that the user sees at once, anything else is shown to the
user as an error.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

from app.simulator.config import SimAccount
from app.simulator.messages import SimMessage
from app.simulator.state import SimState
from app.wechat import WeChatError
from app.wechat.replies import ACK_BODY
from app.wechat.xmlparse import parse_fields, render_fields

__all__ = ("Timing", "Outcome", "CallbackSender")

Result = Literal["passive", "acked", "failed"]
HEADERS = {"Content-Type": "text/xml"}


@dataclass(frozen=True)
class Timing:
    deadline_s: float = 5.0  # per attempt
    attempts: int = 3  # in all
    retry_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.deadline_s > 0 or self.attempts < 1 or self.retry_delay_s < 0:
            raise ValueError("timing needs a deadline > 0, at least one attempt and a retry delay >= 0")


@dataclass(frozen=True)
class Outcome:
    message: SimMessage
    result: Result
    attempts: int
    started_at: float  # time.monotonic() of the first attempt
    finished_at: float
    reply: str = ""  # Content of a passive text reply
    reply_type: str = ""
    error: str = ""  # why the last attempt failed, or why the reply is invalid

    @property
    def retries(self) -> int:
        return self.attempts - 1


@dataclass(frozen=True)
class _Answer:
    status: int | None  # None: timed out or no connection
    body: str = ""
    error: str = ""


@dataclass
class CallbackSender:
    state: SimState
    session: aiohttp.ClientSession
    ingress_url: str  # e.g. http://127.0.0.1:8080, callbacks go to /wechat/<account>
    timing: Timing = field(default_factory=Timing)

    async def deliver(self, message: SimMessage) -> Outcome:
        account = self.state.accounts[message.user.account]
        self.state.users.interacted(account.name, message.user.openid)
        self.state.stats.callbacks["sent"] += 1
        url = f"{self.ingress_url}/wechat/{account.name}"
        query, body = encode(account, message)
        started = time.monotonic()
        answer = _Answer(None)
        attempt = 0
        while attempt < self.timing.attempts:
            if attempt:
                self.state.stats.callbacks["retries"] += 1
                await asyncio.sleep(self.timing.retry_delay_s)
            attempt += 1
            answer = await self._post(url, query, body)
            if answer.status == 200:
                break
        outcome = self._judge(account, message, answer, attempt, started)
        self.state.stats.callbacks[outcome.result] += 1
        return outcome

    async def _post(self, url: str, query: dict[str, str], body: bytes) -> _Answer:
        try:
            async with asyncio.timeout(self.timing.deadline_s):
                async with self.session.post(url, params=query, data=body, headers=HEADERS) as response:
                    return _Answer(response.status, await response.text(errors="replace"))
        except TimeoutError:
            return _Answer(None, error=f"no answer within {self.timing.deadline_s:g}s")
        except aiohttp.ClientError as exc:
            return _Answer(None, error=f"{type(exc).__name__}: {exc}")

    def _judge(
        self, account: SimAccount, message: SimMessage, answer: _Answer, attempts: int, started: float
    ) -> Outcome:
        done = dict(message=message, attempts=attempts, started_at=started, finished_at=time.monotonic())
        if answer.status != 200:
            return Outcome(result="failed", error=answer.error or f"HTTP {answer.status}", **done)
        if answer.body.strip() in ("", ACK_BODY):
            return Outcome(result="acked", **done)
        try:
            fields = account.account.codec.decode_reply(answer.body)
        except WeChatError as exc:
            self.state.stats.callbacks["invalid_reply"] += 1
            return Outcome(result="failed", error=f"invalid reply: {exc}", **done)
        if fields.get("ToUserName") != message.user.openid:
            self.state.stats.callbacks["invalid_reply"] += 1
            return Outcome(result="failed", error=f"reply addressed to {fields.get('ToUserName')!r}", **done)
        msg_type, text = fields.get("MsgType", ""), fields.get("Content", "")
        openid = message.user.openid
        self.state.receive(account.name, openid, "passive", text, msg_type=msg_type, in_reply_to=message.msg_id)
        return Outcome(result="passive", reply=text, reply_type=msg_type, **done)


def encode(account: SimAccount, message: SimMessage) -> tuple[dict[str, str], bytes]:
    """The signed query and body WeChat sends for `message` in the account's mode.

    In compat mode the body carries the plain fields beside `<Encrypt>`."""
    codec = account.account.codec
    xml = render_fields(message.fields)
    query, body = codec.encode_callback(
        xml,
        timestamp=str(int(time.time())),
        nonce=str(secrets.randbelow(10**10)),
        encrypted=account.account.mode != "plain",
        openid=message.user.openid,
    )
    if account.account.mode == "compat":
        body = render_fields({**message.fields, "Encrypt": parse_fields(body)["Encrypt"]}).encode("utf-8")
    return query, body
