"""Drive one agent in Faust's own test context, with in-memory tables, keeping every
record it produces instead of sending it to a broker.

`AgentHarness` builds a small app (memory store, no broker, no web server) on which a
test installs the agent under test with the real table declarations from tables/. The app's producer is
a `RecordingProducer`: topic sends and table changelog writes take Faust's usual path to
it (future message, producer buffer) and it acknowledges each at once, so an agent's
`await delivery` and `AckedTable.persisted()` return as when the broker acknowledges.

`put` hands one record to the agent through `agent.test_context()` and returns once the
agent has finished with it (the record's final acknowledgement) and its table writes are
acknowledged. Two things differ from
the test wrapper's own `put`: the record names its topic (the wrapper names the agent's,
and the outbound agent reads two), and the wait lasts until the agent is done with the
record, not only until it received it: a sensor counts the events the stream is done with
(`on_stream_event_out`, called when the agent asks for the next one).
"""

from __future__ import annotations

import asyncio
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Optional

import faust
from faust.transport.producer import Producer
from faust.types import TP, EventT, FutureMessage, Message, RecordMetadata, StreamT
from faust.types.agents import AgentT, AgentTestWrapperT

from agents.metrics import AgentMetrics
from app.settings import Settings
from app.topics import Topics
from app.worker import APP_ID

__all__ = ("AgentHarness", "Produced", "RecordingProducer")

WAIT_S = 5.0


@dataclass(frozen=True)
class Produced:
    """One record as the producer got it: serialised key and value."""

    topic: str
    key: Optional[bytes]
    value: Optional[bytes]


class RecordingProducer(Producer):
    """Keeps what it is given; the broker it stands for acknowledges everything at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records: list[Produced] = []
        self._buffered: list[asyncio.Future] = []

    def send_soon(self, fut: FutureMessage) -> None:
        """Table changelogs come this way, through Faust's producer buffer."""
        self._buffered.append(fut)
        super().send_soon(fut)

    async def drained(self) -> None:
        """Return once every record put in the buffer so far is acknowledged."""
        buffered, self._buffered = self._buffered, []
        await asyncio.gather(*buffered)

    async def send(
        self,
        topic: str,
        key: Optional[bytes],
        value: Optional[bytes],
        partition: Optional[int],
        timestamp: Optional[float],
        headers: Any,
        *,
        transactional_id: Optional[str] = None,
    ) -> asyncio.Future:
        self.records.append(Produced(topic, key, value))
        tp = TP(topic, partition or 0)
        acknowledged = asyncio.get_running_loop().create_future()
        acknowledged.set_result(RecordMetadata(topic, tp.partition, tp, len(self.records) - 1, timestamp))
        return acknowledged

    async def send_and_wait(self, *args: Any, **kwargs: Any) -> RecordMetadata:
        return await (await self.send(*args, **kwargs))

    def key_partition(self, topic: str, key: bytes) -> TP:
        return TP(topic, 0)


class _Finished(faust.Sensor):
    """Counts the events a stream is done with, and wakes up whoever waits for one."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.progress = asyncio.Event()

    def on_stream_event_out(
        self, tp: TP, offset: int, stream: StreamT, event: EventT, state: Optional[dict] = None
    ) -> None:
        self.count += 1
        self.progress.set()


class AgentHarness:
    """One app for one test, built in its event loop (an async fixture): declare tables
    and install the agent on `app`, then `async with harness.running(agent)`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = faust.App(
            APP_ID,
            # Created outside the test's event loop, Faust's services would wait on another.
            loop=asyncio.get_running_loop(),
            store="memory://",
            topic_partitions=settings.partitions,
            autodiscover=False,
            web_enabled=False,
        )
        self.topics = Topics.declare(self.app, settings)
        self.metrics = AgentMetrics()
        self.producer = RecordingProducer(self.app.transport)
        self.app.producer = self.producer
        self._finished = _Finished()
        self.app.sensors.add(self._finished)
        self._crash: BaseException | None = None
        self.app.crash = self._on_crash  # what Acks calls when a job or an output fails
        self._agent: AgentTestWrapperT | None = None
        self._offset = 0

    @asynccontextmanager
    async def running(self, agent: AgentT) -> AsyncIterator["AgentHarness"]:
        """Start the producer and `agent` in its test context; stop both on the way out."""
        self.app.finalize()
        async with self.producer, agent.test_context(on_error=self._on_error) as wrapper:
            self._agent = wrapper
            yield self

    async def put(
        self, value: Any, *, key: str, topic: str, timestamp: float | None = None, offset: int | None = None
    ) -> None:
        """Give the agent one record of `topic` and wait until it is done with it (or
        raise what it failed with). `timestamp` is the record's, which places it in the
        windows of windowed tables; default: now. `offset` is the record's: by default
        the next one; an earlier one gives a record again, as after a crash."""
        assert self._agent is not None, "start the agent first"
        message = Message(
            topic=topic,
            partition=0,
            offset=self._offset if offset is None else offset,
            timestamp=time.time() if timestamp is None else timestamp,
            timestamp_type=0,
            headers=None,
            key=key,
            value=value,
            checksum=b"",
            generation_id=self.app.consumer_generation_id,
        )
        self._offset += 1
        channel = self._agent.stream().channel
        message.incref()  # as Faust's conductor does for each stream it hands a record to
        await channel.put(await channel.decode(message))
        await self._until_finished(self._offset)
        await self._until_acknowledged(message)
        await self.producer.drained()

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the agents' metrics; 0 when never counted."""
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def produced(self, topic: str) -> list[Produced]:
        return [record for record in self.producer.records if record.topic == topic]

    def values(self, topic: str, record: type[faust.Record]) -> list[Any]:
        """The values produced to `topic`, decoded as `record`."""
        return [record.loads(produced.value) for produced in self.produced(topic)]

    async def _until_finished(self, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while self._finished.count < count:
                if self._crash is not None:
                    raise self._crash
                self._finished.progress.clear()
                await self._finished.progress.wait()

    async def _until_acknowledged(self, message: Message) -> None:
        """An agent may finish with an event after taking the next one (jobs running on
        their own, outputs in flight): the event's final acknowledgement says it is done."""
        async with asyncio.timeout(WAIT_S):
            while not message.acked:
                if self._crash is not None:
                    raise self._crash
                await asyncio.sleep(0)

    async def _on_error(self, agent: AgentT, exc: BaseException) -> None:
        await self._on_crash(exc)

    async def _on_crash(self, reason: BaseException) -> None:
        self._crash = reason
        self._finished.progress.set()
