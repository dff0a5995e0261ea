"""What a simulated user sends: the XML fields of each kind of message or event.

Every message gets its own MsgId. Events have none (WeChat dedupes them on the user and
CreateTime), so a user's events get distinct CreateTimes, one second apart if need be.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Mapping

from app.simulator.config import SimAccount
from app.simulator.population import User

__all__ = ("SimMessage", "MessageFactory")

_TEXTS = (
    "你好，请问订单 #{n} 发货了吗？",
    "What are your opening hours? ({n})",
    "明天{h}点还能预约吗 / can I book for tomorrow? #{n}",
    "推荐一款适合送人的礼物吧 🎁 {n}",
    "How do I reset my password? ref {n}",
)
_VOICE = ("帮我查一下天气 {n}", "我想退货 {n}", "play some music {n}")
_MENU_KEYS = ("MENU_HELP", "MENU_ORDERS", "MENU_CONTACT")
EVENT_KINDS = ("subscribe", "click")


def _common(account: SimAccount, user: User, create_time: int, msg_type: str) -> dict[str, str]:
    return {
        "ToUserName": account.account.original_id or account.appid,
        "FromUserName": user.openid,
        "CreateTime": str(create_time),
        "MsgType": msg_type,
    }


@dataclass(frozen=True)
class SimMessage:
    seq: int  # position in the run
    user: User
    kind: str
    create_time: int
    fields: Mapping[str, str]
    msg_id: int | None = None  # None for events
    text: str = ""  # what the user said: Content, or Recognition of a voice message


@dataclass
class MessageFactory:
    seed: int = 0
    # MsgIds start at the current time in units of 10 ns, so later runs do not reuse them.
    next_msg_id: int = field(default_factory=lambda: time.time_ns() // 10)
    _random: random.Random = field(init=False, repr=False)
    _last_event: dict[User, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(f"messages:{self.seed}")

    def build(self, seq: int, account: SimAccount, user: User, kind: str, now: float | None = None) -> SimMessage:
        now_s = int(time.time() if now is None else now)
        if kind in EVENT_KINDS:
            create_time = max(now_s, self._last_event.get(user, 0) + 1)
            self._last_event[user] = create_time
            fields = {**_common(account, user, create_time, "event"), **self._event(kind)}
            return SimMessage(seq, user, kind, create_time, fields)
        msg_id, self.next_msg_id = self.next_msg_id, self.next_msg_id + 1
        text, extra = self._content(kind, seq)
        fields = {**_common(account, user, now_s, kind), **extra, "MsgId": str(msg_id)}
        return SimMessage(seq, user, kind, now_s, fields, msg_id, text)

    def _event(self, kind: str) -> dict[str, str]:
        if kind == "subscribe":
            return {"Event": "subscribe", "EventKey": ""}
        return {"Event": "CLICK", "EventKey": self._random.choice(_MENU_KEYS)}

    def _content(self, kind: str, n: int) -> tuple[str, dict[str, str]]:
        rng = self._random
        if kind == "text":
            text = rng.choice(_TEXTS).format(n=n, h=rng.randint(8, 20))
            return text, {"Content": text}
        if kind == "voice":
            text = rng.choice(_VOICE).format(n=n)
            return text, {"MediaId": f"media_voice_{n}", "Format": "amr", "Recognition": text}
        if kind == "image":
            return "", {"PicUrl": f"http://mmbiz.qpic.cn/sim/{n}.jpg", "MediaId": f"media_image_{n}"}
        if kind == "location":
            lat, lon = rng.uniform(22, 40), rng.uniform(100, 122)
            return "", {"Location_X": f"{lat:.6f}", "Location_Y": f"{lon:.6f}", "Scale": "15", "Label": f"地点 {n}"}
        raise ValueError(f"unknown message kind {kind!r}")
