"""A user's mailbox: owed replies in the order they are to be read, each once."""

from __future__ import annotations

from tables.outbox import REST_OF, Mailbox, MailItem


def ids(box: Mailbox) -> list[str]:
    return [item.reply_id for item in box.items]


def test_items_are_added_once_and_in_order():
    box = Mailbox(items=[]).adding(MailItem(reply_id="r1", text="one")).adding(MailItem(reply_id="r2", text="two"))
    assert box.adding(MailItem(reply_id="r1", text="one again")) is box
    assert (ids(box), box.text) == (["r1", "r2"], "one\n\ntwo")


def test_a_reply_goes_right_before_its_rest_and_a_rest_right_after_its_reply():
    rest = MailItem(reply_id=REST_OF.format("r1"), text="rest of one")
    box = Mailbox(items=[MailItem(reply_id="r0", text="zero"), rest, MailItem(reply_id="r2", text="two")])
    assert ids(box.adding(MailItem(reply_id="r1", text="one"))) == ["r0", "r1", "r1+rest", "r2"]
    box = Mailbox(items=[MailItem(reply_id="r1", text="one"), MailItem(reply_id="r2", text="two")])
    assert ids(box.adding(rest)) == ["r1", "r1+rest", "r2"]


def test_without_leaves_the_items_added_since():
    sent = Mailbox(items=[MailItem(reply_id="r1", text="one")])
    now = sent.adding(MailItem(reply_id="r2", text="two"))
    assert ids(now.without(sent)) == ["r2"]
