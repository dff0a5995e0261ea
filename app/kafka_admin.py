"""Creating wxstream's topics on a broker, explicitly and idempotently.

Auto-created topics get the broker's default partition count (4 on the embedded broker,
whatever the cluster says elsewhere), which would silently break co-partitioning with
the tables' changelogs; so every process that produces creates the topics it needs.
"""

from __future__ import annotations

import logging
from typing import Sequence

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from app.settings import Settings
from app.topics import TOPICS

log = logging.getLogger("wxstream.kafka")


def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create every topic in `app.topics.TOPICS` that does not exist yet."""
    create_topics(bootstrap, [spec.name for spec in TOPICS], settings.partitions)


def create_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Create those of `names` that do not exist yet, with `partitions` partitions each."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="wxstream-admin", request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        for name in (n for n in names if n not in existing):
            try:
                admin.create_topics([NewTopic(name, partitions, 1)])
                log.info("created topic %s with %d partitions", name, partitions)
            except TopicAlreadyExistsError:  # another process won the race
                pass
    finally:
        admin.close()
