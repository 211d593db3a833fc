"""What every reply channel shares: reading the platform's answer."""

from __future__ import annotations

from typing import Any

import httpx

from handlers.context import ReplyError


def platform_error(response: httpx.Response, what: str) -> ReplyError | None:
    """A :class:`ReplyError` if the platform's answer is not a success, else None.

    WeCom and DingTalk webhooks answer HTTP 200 with ``errcode`` 0 on success.
    """
    if response.status_code != 200:
        return ReplyError(f"{what}: HTTP {response.status_code}")
    try:
        body: Any = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("errcode", 0) != 0:
        return ReplyError(f"{what}: errcode {body.get('errcode')} ({body.get('errmsg')})")
    return None
