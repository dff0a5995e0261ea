"""What each user received, in arrival order, by either path.

`passive` replies come in the HTTP response to a callback (decoded by the callback
sender); `api` messages through the customer-service API. Tests read this record to
check that a user saw each answer exactly once and in order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ("Via", "Received", "Recorder")

Via = Literal["passive", "api"]


@dataclass(frozen=True)
class Received:
    seq: int  # arrival order over all users
    account: str
    openid: str
    path: Via
    msg_type: str
    text: str  # Content of text messages; "" for other types
    at: float  # simulated time
    in_reply_to: int | None = None  # MsgId of the callback a passive reply answered

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Recorder:
    _items: list[Received] = field(default_factory=list)

    def add(
        self,
        account: str,
        openid: str,
        path: Via,
        *,
        text: str,
        at: float,
        msg_type: str = "text",
        in_reply_to: int | None = None,
    ) -> Received:
        item = Received(len(self._items), account, openid, path, msg_type, text, at, in_reply_to)
        self._items.append(item)
        return item

    def received(self, account: str | None = None, openid: str | None = None) -> list[Received]:
        """Everything received, optionally only by one account's user(s), in arrival order."""
        return [
            item
            for item in self._items
            if (account is None or item.account == account) and (openid is None or item.openid == openid)
        ]

    def texts(self, account: str, openid: str) -> list[str]:
        return [item.text for item in self.received(account, openid)]

    def reset(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
