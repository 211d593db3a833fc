"""Outbound posts into groups: one module per platform behind one :class:`Sender` protocol.

- :mod:`bot.senders.wecom`: WeCom group robot webhook (markdown, text, image).
- :mod:`bot.senders.dingtalk`: DingTalk custom robot webhook with the signing secret.
- :mod:`bot.senders.feishu`: Feishu custom bot webhook with its signature.

A sender makes one attempt and classifies the outcome: success returns, a rate limit or
transient failure raises :class:`TransientSendError` (the outbox retries it later), a
permanent one raises :class:`PermanentSendError` (the outbox marks the post failed).
"""

from __future__ import annotations

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


def build_senders(client: object) -> dict[str, Sender]:
    """One sender per platform, sharing the app's one ``httpx.AsyncClient``."""
    import httpx

    assert isinstance(client, httpx.AsyncClient)  # noqa: S101 - wiring invariant
    return {
        "wecom": WecomWebhookSender(client),
        "dingtalk": DingtalkWebhookSender(client),
        "feishu": FeishuWebhookSender(client),
    }
