"""Creating wxstream's topics on a broker, explicitly and idempotently.

Auto-created topics get the broker's default partition count (4 on the embedded broker,
whatever the cluster says elsewhere), which would silently break co-partitioning with
the tables' changelogs; so every process that produces creates the topics it needs.
"""

from __future__ import annotations

import logging

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from app.settings import Settings
from app.topics import TOPICS

log = logging.getLogger("wxstream.kafka")


def ensure_topics(settings: Settings, bootstrap: str) -> None:
    """Create every topic in `app.topics.TOPICS` that does not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="wxstream-admin", request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        missing = [spec.name for spec in TOPICS if spec.name not in existing]
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, settings.partitions, 1)])
                log.info("created topic %s with %d partitions", name, settings.partitions)
            except TopicAlreadyExistsError:  # another process won the race
                pass
    finally:
        admin.close()
