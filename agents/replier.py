"""clean events -> replies: ask the model to answer each user text message."""

from __future__ import annotations

import hashlib
import logging
import time

import faust

from app.clients.triton import ModelClient, ModelError
from app.settings import Settings
from app.topics import CleanEvent, Reply, Topics

log = logging.getLogger("wxstream.agents.replier")

FALLBACK_TEXT = "Sorry, I cannot answer right now. Please try again in a moment."


def reply_id(account: str, dedupe_key: str) -> str:
    """Stable id of the reply to one message: the same message always gets the same id."""
    return hashlib.sha1(f"{account}:{dedupe_key}".encode("utf-8")).hexdigest()[:24]


def install(app: faust.App, topics: Topics, settings: Settings, model: ModelClient) -> faust.types.AgentT:
    @app.agent(topics.clean, name="wxstream.replier")
    async def replier(stream: faust.StreamT[CleanEvent]) -> None:
        try:
            async for key, event in stream.items():
                if event.msg_type != "text":
                    continue
                prompt = event.fields.get("Content", "")
                try:
                    text = await model.generate(prompt, settings.model_max_tokens)
                except ModelError as exc:
                    log.warning("model failed for %s: %s", event.dedupe_key, exc)
                    text = FALLBACK_TEXT
                reply = Reply(
                    reply_id=reply_id(event.account, event.dedupe_key),
                    account=event.account,
                    openid=event.openid,
                    in_reply_to=event.dedupe_key,
                    text=text,
                    model=model.model_name,
                    created_at=time.time(),
                )
                await topics.replies.send(key=key, value=reply)
        finally:
            await model.close()

    return replier
