"""Outbound posts into groups: one module per platform behind one :class:`Sender` protocol.

- :mod:`bot.senders.wecom`: WeCom group robot webhook (markdown, text, image).
- :mod:`bot.senders.dingtalk`: DingTalk custom robot webhook with the signing secret.
- :mod:`bot.senders.feishu`: Feishu custom bot webhook with its signature.
- :mod:`bot.senders.private`: private messages to people (operators' alerts): WeCom app
  message, DingTalk robot 1:1 message, Feishu message API; keyed ``PLATFORM:private``.

A sender makes one attempt and classifies the outcome: success returns, a rate limit or
transient failure raises :class:`TransientSendError` (the outbox retries it later), a
permanent one raises :class:`PermanentSendError` (the outbox marks the post failed).
"""

from __future__ import annotations

from bot.platforms.base import Clock
from bot.senders.base import (
    OutboundMessage,
    PermanentSendError,
    Sender,
    SendError,
    Target,
    TransientSendError,
)
from bot.senders.dingtalk import DingtalkWebhookSender
from bot.senders.feishu import FeishuWebhookSender
from bot.senders.ratelimit import SlidingWindowLimiter
from bot.senders.wecom import WecomWebhookSender

__all__ = [
    "DingtalkWebhookSender",
    "FeishuWebhookSender",
    "OutboundMessage",
    "PermanentSendError",
    "SendError",
    "Sender",
    "SlidingWindowLimiter",
    "Target",
    "TransientSendError",
    "WecomWebhookSender",
    "build_senders",
]


def build_senders(client: object, clock: Clock | None = None) -> dict[str, Sender]:
    """One sender per platform and channel, sharing the app's one ``httpx.AsyncClient``.

    Keys are :attr:`Target.sender_key`: ``wecom`` (webhook) and ``wecom:private`` (app
    messages to people), and so on; the private ones need ``clock`` for their tokens.
    """
    import httpx

    from bot.senders.private import DingtalkOtoSender, FeishuMessageSender, WecomAppSender

    assert isinstance(client, httpx.AsyncClient)  # noqa: S101 - wiring invariant
    senders: dict[str, Sender] = {
        "wecom": WecomWebhookSender(client),
        "dingtalk": DingtalkWebhookSender(client),
        "feishu": FeishuWebhookSender(client),
    }
    if clock is not None:
        senders["wecom:private"] = WecomAppSender(client, clock)
        senders["dingtalk:private"] = DingtalkOtoSender(client, clock)
        senders["feishu:private"] = FeishuMessageSender(client, clock)
    return senders
