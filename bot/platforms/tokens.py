"""Access tokens for the platforms' server APIs, fetched once and cached until they expire.

- WeCom: ``GET {api_base}/cgi-bin/gettoken?corpid=…&corpsecret=…`` → ``access_token``,
  ``expires_in`` (7200 s). https://developer.work.weixin.qq.com/document/path/91039
- DingTalk: ``POST {api_base}/v1.0/oauth2/accessToken`` ``{appKey, appSecret}`` →
  ``accessToken``, ``expireIn``. https://open.dingtalk.com/document/orgapp/obtain-the-access_token-of-an-internal-app
- Feishu: ``POST {api_base}/open-apis/auth/v3/tenant_access_token/internal``
  ``{app_id, app_secret}`` → ``tenant_access_token``, ``expire``.
  https://open.feishu.cn/document/server-docs/authentication-management/access-token/tenant_access_token_internal

A token is renewed a few minutes before it expires, and concurrent callers share one
fetch. :meth:`TokenCache.invalidate` drops a token the platform rejected (WeCom 40014 /
42001, Feishu 99991663 …) so that the next call fetches a fresh one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.platforms.base import Clock

#: Renew this long before the platform's expiry, so no call goes out with a dying token.
RENEW_MARGIN = timedelta(minutes=5)


class TokenError(Exception):
    """The platform refused to issue a token; the message says which setting to check."""


@dataclass(frozen=True, slots=True)
class Token:
    value: str
    expires_at: datetime


Fetcher = Callable[[httpx.AsyncClient, datetime], Awaitable[Token]]


class TokenCache:
    """One cached token, fetched with ``fetcher`` on first use and before expiry."""

    def __init__(self, client: httpx.AsyncClient, fetcher: Fetcher, clock: Clock) -> None:
        self._client = client
        self._fetcher = fetcher
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid token, fetching one if needed.

        Raises:
            TokenError: the platform refused the credentials.
            httpx.HTTPError: the platform could not be reached.
        """
        async with self._lock:
            now = self._clock()
            if self._token is None or now >= self._token.expires_at - RENEW_MARGIN:
                self._token = await self._fetcher(self._client, now)
            return self._token.value

    def invalidate(self) -> None:
        """Forget the token (the platform said it is invalid or expired)."""
        self._token = None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise TokenError(
            f"token endpoint answered HTTP {response.status_code} without JSON"
        ) from None
    if not isinstance(body, dict):
        raise TokenError("token endpoint answered with something other than a JSON object")
    return body


def wecom_fetcher(api_base: str, corp_id: str, secret: str, key: str) -> Fetcher:
    """Fetch a WeCom access token; ``key`` names the setting holding ``secret``."""

    async def fetch(client: httpx.AsyncClient, now: datetime) -> Token:
        response = await client.get(
            f"{api_base}/cgi-bin/gettoken", params={"corpid": corp_id, "corpsecret": secret}
        )
        body = _json(response)
        if body.get("errcode", 0) != 0 or "access_token" not in body:
            raise TokenError(
                f"WeCom refused the access token (errcode {body.get('errcode')}: "
                f"{body.get('errmsg')}); check {key} and corp_id"
            )
        return Token(
            body["access_token"], now + timedelta(seconds=int(body.get("expires_in", 7200)))
        )

    return fetch


def dingtalk_fetcher(api_base: str, app_key: str, app_secret: str, key: str) -> Fetcher:
    """Fetch a DingTalk (new API) access token for an internal app."""

    async def fetch(client: httpx.AsyncClient, now: datetime) -> Token:
        response = await client.post(
            f"{api_base}/v1.0/oauth2/accessToken", json={"appKey": app_key, "appSecret": app_secret}
        )
        body = _json(response)
        if response.status_code != 200 or "accessToken" not in body:
            raise TokenError(
                f"DingTalk refused the access token ({body.get('code')}: {body.get('message')}); "
                f"check {key} and app_key"
            )
        return Token(body["accessToken"], now + timedelta(seconds=int(body.get("expireIn", 7200))))

    return fetch


def feishu_fetcher(api_base: str, app_id: str, app_secret: str, key: str) -> Fetcher:
    """Fetch a Feishu tenant access token for a self-built app."""

    async def fetch(client: httpx.AsyncClient, now: datetime) -> Token:
        response = await client.post(
            f"{api_base}/open-apis/auth/v3/tenant_access_token/internal",
            json={"app_id": app_id, "app_secret": app_secret},
        )
        body = _json(response)
        if body.get("code", 0) != 0 or "tenant_access_token" not in body:
            raise TokenError(
                f"Feishu refused the tenant token ({body.get('code')}: {body.get('msg')}); "
                f"check {key} and app_id"
            )
        return Token(
            body["tenant_access_token"], now + timedelta(seconds=int(body.get("expire", 7200)))
        )

    return fetch
