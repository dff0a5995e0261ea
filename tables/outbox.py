"""`outbox`: where each reply stands on its way to the user, and `mailbox`: replies
WeChat would not take by the API, kept for the user's next message.

`outbox` is keyed by reply id, in tumbling windows of the sender's state TTL on the
worker's clock: an entry is written to the window of now and read from it or the one
before (see `latest`), and windows older than twice the TTL are purged. The clock, not
the records' timestamps: a reply and its verdict come from different hosts, and a record
stamped before the boundary but read after it must still find the newest state.
`mailbox` is keyed by user and emptied when delivered. Both write through AckedTable, so
the sender can wait until a change is safe in the broker.
"""

from __future__ import annotations

import time
from datetime import timedelta

import faust

from app.outbound.outbox import OutboxEntry
from app.settings import Settings
from tables.acked import AckedTable

__all__ = ("MailItem", "Mailbox", "Outbox", "REST_OF", "latest")

OUTBOX_TABLE = "outbox-v1"
MAILBOX_TABLE = "mailbox-v1"


class MailItem(faust.Record, serializer="json", include_metadata=False):
    reply_id: str
    text: str


# The reply id of a reply's rest, which did not fit in a passive reply.
REST_OF = "{}+rest"


class Mailbox(faust.Record, serializer="json", include_metadata=False):
    items: list[MailItem]

    @property
    def text(self) -> str:
        return "\n\n".join(item.text for item in self.items)

    def adding(self, item: MailItem) -> "Mailbox":
        """With `item`, unless an item of its reply id is here: after the others, but a
        reply's rest right after the reply, and a reply right before its rest."""
        items = list(self.items)
        ids = [each.reply_id for each in items]
        if item.reply_id in ids:
            return self
        at = len(items)
        for index, other in enumerate(ids):
            if item.reply_id == REST_OF.format(other):
                at = index + 1
            elif other == REST_OF.format(item.reply_id):
                at = index
        items.insert(at, item)
        return Mailbox(items=items)

    def without(self, sent: "Mailbox") -> "Mailbox":
        """What is left once the items of `sent` are out: replies mailboxed since stay."""
        gone = {item.reply_id for item in sent.items}
        return Mailbox(items=[item for item in self.items if item.reply_id not in gone])


class Outbox:
    """The sender's two tables."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        ttl = settings.outbound_state_ttl_s
        self.entries_table = _acked(app, OUTBOX_TABLE, OutboxEntry, settings, "delivery state of each reply", OutboxEntry)
        windows = self.entries_table.tumbling(ttl, expires=timedelta(seconds=2 * ttl))
        self.entries = windows.relative_to(lambda event=None: time.time())
        self.entries_before = windows.relative_to(lambda event=None: time.time() - ttl)
        self.mailboxes = _acked(app, MAILBOX_TABLE, Mailbox, settings, "replies waiting for the user's next message")

    async def persisted(self) -> None:
        await self.entries_table.persisted()
        await self.mailboxes.persisted()


def latest(outbox: Outbox, reply_id: str) -> OutboxEntry:
    """The entry of `reply_id` in the window of now, else in the one before, else empty."""
    entry = outbox.entries[reply_id].value()
    return outbox.entries_before[reply_id].value() if entry.empty else entry


def _acked(app: faust.App, name: str, record: type, settings: Settings, help: str, default=None) -> AckedTable:
    return app.tables.add(
        AckedTable(
            app,
            name=name,
            key_type=str,
            value_type=record,
            default=default,
            partitions=settings.partitions,
            help=help,
        )
    )
