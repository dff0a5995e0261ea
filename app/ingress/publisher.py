"""Writes accepted callbacks to the raw topic and waits for the broker's acknowledgement."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from app.settings import Settings
from app.topics import RAW_EVENTS, RawEvent, user_key

__all__ = ("RawEventPublisher",)


class RawEventPublisher:
    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="wxstream-ingress",
            acks="all",
            enable_idempotence=False,
            linger_ms=settings.kafka_linger_ms,
            max_batch_size=settings.producer_max_batch_bytes,
            request_timeout_ms=5000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, event: RawEvent) -> None:
        """Return once the broker has the event (acks=all); raise if it cannot take it."""
        await self._producer.send_and_wait(
            RAW_EVENTS.name,
            key=user_key(event.account, event.openid).encode("utf-8"),
            value=event.dumps(),
        )
