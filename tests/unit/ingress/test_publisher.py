"""What the publisher writes for a record: exactly what the record's own `dumps()` writes."""

from __future__ import annotations

from app.ingress.publisher import record_json
from app.topics import Delivery, RawEvent


def test_record_json_is_the_records_dumps():
    event = RawEvent(
        account="shop",
        openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        msg_type="text",
        dedupe_key="msg:1234567890123456",
        fields={"Content": '你好 "quoted" \\ 🙏\n', "MsgId": "1234567890123456"},
        received_at=1_700_000_000.123456,
        encrypted=True,
    )
    delivery = Delivery(
        reply_id="0123456789abcdef01234567",
        account="shop",
        openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        path="deferred",
        delivered_at=1_700_000_001.5,
        reason="not ready in time",
    )

    for record in (event, delivery):
        assert record_json(record) == record.dumps()
