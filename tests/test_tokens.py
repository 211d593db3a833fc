"""Access tokens are fetched once, cached until shortly before expiry, and refetched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.platforms.tokens import (
    TokenCache,
    TokenError,
    dingtalk_fetcher,
    feishu_fetcher,
    wecom_fetcher,
)
from tests.doubles.api import LoopbackOnly, PlatformAPI


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 8, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_wecom_token_cached_until_near_expiry(platform_api: PlatformAPI) -> None:
    clock = FakeClock()
    async with httpx.AsyncClient(transport=LoopbackOnly()) as client:
        cache = TokenCache(
            client, wecom_fetcher(platform_api.base_url, "ww1", "s3cret", "bots[1].secret"), clock
        )
        first = await cache.get()
        assert await cache.get() == first
        clock.now += timedelta(seconds=7200 - 299)
        renewed = await cache.get()
    assert renewed != first
    calls = platform_api.calls_to("/cgi-bin/gettoken")
    assert len(calls) == 2
    assert calls[0].query == {"corpid": "ww1", "corpsecret": "s3cret"}


async def test_dingtalk_and_feishu_tokens(platform_api: PlatformAPI) -> None:
    clock = FakeClock()
    async with httpx.AsyncClient(transport=LoopbackOnly()) as client:
        ding = TokenCache(
            client, dingtalk_fetcher(platform_api.base_url, "k", "s", "bots[0].app_secret"), clock
        )
        feishu = TokenCache(
            client, feishu_fetcher(platform_api.base_url, "cli_a", "s", "bots[2].app_secret"), clock
        )
        assert (await ding.get()).startswith("ding-token-")
        assert (await feishu.get()).startswith("t-")
        feishu.invalidate()
        await feishu.get()
    assert platform_api.calls_to("/v1.0/oauth2/accessToken")[0].json == {
        "appKey": "k",
        "appSecret": "s",
    }
    assert len(platform_api.calls_to("/open-apis/auth/v3/tenant_access_token/internal")) == 2


async def test_refused_credentials_name_the_setting(platform_api: PlatformAPI) -> None:
    platform_api.route(
        "GET",
        "/cgi-bin/gettoken",
        lambda call: (200, {"errcode": 40001, "errmsg": "invalid credential"}),
    )
    async with httpx.AsyncClient(transport=LoopbackOnly()) as client:
        cache = TokenCache(
            client,
            wecom_fetcher(platform_api.base_url, "ww1", "bad", "bots[1].secret"),
            FakeClock(),
        )
        with pytest.raises(TokenError, match=r"errcode 40001.*bots\[1\]\.secret"):
            await cache.get()


async def test_loopback_only_transport_refuses_real_hosts() -> None:
    async with httpx.AsyncClient(transport=LoopbackOnly()) as client:
        with pytest.raises(AssertionError, match="unexpected outbound call"):
            await client.get("https://qyapi.weixin.qq.com/cgi-bin/gettoken")
