"""What the sender does with each answer of WeChat's customer-service API."""

from __future__ import annotations

from enum import Enum

__all__ = ("Action", "action_for", "OK", "SYSTEM_BUSY")

OK = 0
SYSTEM_BUSY = -1
INVALID_CREDENTIAL = 40001
ACCESS_TOKEN_EXPIRED = 42001
REPLY_WINDOW_EXPIRED = 45015
TOO_MANY_REPLIES = 45047
API_UNAUTHORIZED = 48001


class Action(Enum):
    SENT = "sent"
    REFRESH_TOKEN = "refresh_token"  # fetch a new access token, then try once more
    RETRY = "retry"  # after a jittered pause, up to the retry budget
    MAILBOX = "mailbox"  # keep the reply for the user's next message
    DEAD_LETTER = "dead_letter"  # give up, with the errcode as the reason


_ACTIONS = {
    OK: Action.SENT,
    SYSTEM_BUSY: Action.RETRY,
    INVALID_CREDENTIAL: Action.REFRESH_TOKEN,
    ACCESS_TOKEN_EXPIRED: Action.REFRESH_TOKEN,
    # The user has not written for 48 h, or got as many messages as one of theirs allows,
    # or the account has no customer-service API: their next message opens the way again.
    REPLY_WINDOW_EXPIRED: Action.MAILBOX,
    TOO_MANY_REPLIES: Action.MAILBOX,
    API_UNAUTHORIZED: Action.MAILBOX,
}


def action_for(errcode: int) -> Action:
    """Everything not listed (45009 daily quota, 40164 IP not allowed, 40003 bad openid,
    45002 too long, ...) cannot succeed by retrying: dead letter, so that ops see it."""
    return _ACTIONS.get(errcode, Action.DEAD_LETTER)
