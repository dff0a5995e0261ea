"""Following the replies topic so that a callback can be answered with its own reply.

Every ingress process reads all partitions of the replies topic (no consumer group:
nothing to commit, nothing to rebalance), from the replies of the last `keep_s` seconds
on, and keeps each reply for `keep_s`, so that WeChat's retries of a message, which may
reach any ingress process, can pick the reply up too: also a process started after the
reply, e.g. in place of one killed after it claimed the reply but before it answered.

A reply is found by account, user and message id together: a callback that names
another user's message id (which a plain-mode body can, as WeChat does not sign it)
gets no reply, rather than someone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.offsets import first_offset_at
from app.topics import REPLIES, Reply

__all__ = ("ReplyWaiter",)

log = logging.getLogger("wxstream.ingress.passive")

Key = tuple[str, str, str]  # account, openid, in_reply_to


class ReplyWaiter:
    def __init__(self, bootstrap: str, fetch_max_wait_ms: int, keep_s: float = 60.0) -> None:
        self._bootstrap = bootstrap
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._consumer: AIOKafkaConsumer | None = None
        self._keep_s = keep_s
        self._recent: dict[Key, tuple[float, Reply]] = {}
        self._waiting: dict[Key, tuple[float, asyncio.Future[Reply]]] = {}
        self._left_to_sender: dict[Key, tuple[float, None]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Follow the replies of the last `keep_s`; raises while the broker cannot be
        reached, and may be called again then."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id="wxstream-ingress-replies",
            enable_auto_commit=False,
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        try:
            await consumer.start()
            partitions = [TopicPartition(REPLIES.name, p) for p in consumer.partitions_for_topic(REPLIES.name) or ()]
            consumer.assign(partitions)
            since_ms = int((time.time() - self._keep_s) * 1000)
            begins = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
            for tp in partitions:
                consumer.seek(tp, first_offset_at(found.get(tp), since_ms, begins[tp], ends[tp]))
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer), name="wxstream-reply-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait(self, account: str, openid: str, in_reply_to: str, timeout: float) -> Reply | None:
        """The reply to user `openid`'s message `in_reply_to` of `account`, or None after
        `timeout` seconds."""
        key = (account, openid, in_reply_to)
        if key in self._recent:
            return self._recent[key][1]
        if timeout <= 0:
            return None
        if key not in self._waiting:
            self._waiting[key] = (time.monotonic(), asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(self._waiting[key][1]), timeout)
        except asyncio.TimeoutError:
            return None

    def leave_to_sender(self, account: str, openid: str, in_reply_to: str) -> None:
        """Remember that this process told the sender to deliver this reply: an answer to
        WeChat's retry of the message (after a first answer that came too late) must not
        carry it a second time."""
        self._left_to_sender[(account, openid, in_reply_to)] = (time.monotonic(), None)

    def left_to_sender(self, account: str, openid: str, in_reply_to: str) -> bool:
        return (account, openid, in_reply_to) in self._left_to_sender

    def _arrived(self, reply: Reply, now: float) -> None:
        key = (reply.account, reply.openid, reply.in_reply_to)
        self._recent[key] = (now, reply)
        waiting = self._waiting.pop(key, None)
        if waiting is not None and not waiting[1].done():
            waiting[1].set_result(reply)

    def _forget_old(self, now: float) -> None:
        """Drop entries older than `keep_s`; each dict is in insertion (= time) order."""
        horizon = now - self._keep_s
        for table in (self._recent, self._waiting, self._left_to_sender):
            while table:
                key, (at, _) = next(iter(table.items()))
                if at >= horizon:
                    break
                del table[key]

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=1000)
            except Exception as exc:  # broker away: keep trying, callbacks just get no passive reply
                log.warning("reading %s failed: %s", REPLIES.name, exc)
                await asyncio.sleep(1.0)
                continue
            now = time.monotonic()
            too_old_ms = (time.time() - self._keep_s) * 1000
            for records in batches.values():
                for record in records:
                    if record.timestamp < too_old_ms:  # read on the way to the recent ones
                        continue
                    try:
                        self._arrived(Reply.loads(record.value), now)
                    except Exception as exc:  # a malformed record must not stop the follower
                        log.warning("skipping unreadable reply at %s:%s: %s", record.partition, record.offset, exc)
            self._forget_old(now)
