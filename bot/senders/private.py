"""Private messages to people (operators' alerts): one sender per platform.

- WeCom: an application message of a self-built app,
  ``POST {api_base}/cgi-bin/message/send?access_token=T`` with ``touser`` ("a|b"),
  ``agentid``, ``msgtype`` markdown. https://developer.work.weixin.qq.com/document/path/90236
- DingTalk: the robot's one-to-one message,
  ``POST {api_base}/v1.0/robot/oToMessages/batchSend`` (header
  ``x-acs-dingtalk-access-token``) with ``robotCode``, ``userIds``, ``msgKey``
  ``sampleMarkdown`` and ``msgParam`` a JSON string of ``{title, text}``.
  https://open.dingtalk.com/document/orgapp/chatbots-send-one-on-one-chat-messages-in-batches
- Feishu: ``POST {api_base}/open-apis/im/v1/messages?receive_id_type=open_id|user_id``
  with a tenant token, one user per call (so one outbox post per recipient).
  https://open.feishu.cn/document/server-docs/im-v1/message/create

Tokens come from :mod:`bot.platforms.tokens`, one cache per app; a token the platform
calls invalid is dropped and fetched once more within the same attempt. Outcomes are
classified like the webhook senders': rate limits and 5xx are transient, the rest
permanent.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from bot.platforms.base import Clock
from bot.platforms.tokens import (
    Fetcher,
    TokenCache,
    TokenError,
    dingtalk_fetcher,
    feishu_fetcher,
    wecom_fetcher,
)
from bot.senders.base import OutboundMessage, PermanentSendError, Target, TransientSendError

log = logging.getLogger(__name__)

#: WeCom: invalid or expired access token.
WECOM_TOKEN_INVALID = frozenset({40014, 42001})
#: WeCom: API frequency limits; -1 asks to retry a busy system.
WECOM_TRANSIENT = frozenset({45009, 45033, 45011, -1})
#: Feishu: invalid or expired tenant token.
FEISHU_TOKEN_INVALID = frozenset({99991661, 99991663, 99991664})
#: Feishu: request frequency limits.
FEISHU_TRANSIENT = frozenset({99991400, 11232, 230020})


class _Tokens:
    """One token cache per app (by config key), created on first use."""

    def __init__(self, client: httpx.AsyncClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._caches: dict[str, TokenCache] = {}

    def cache(self, target: Target, make: Fetcher) -> TokenCache:
        found = self._caches.get(target.config_key)
        if found is None:
            found = self._caches[target.config_key] = TokenCache(self._client, make, self._clock)
        return found


async def _post(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    *,
    label: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    try:
        response = await client.post(url, json=body, params=params, headers=headers)
    except httpx.TimeoutException:
        raise TransientSendError(f"{label}: timed out") from None
    except httpx.TransportError as error:
        raise TransientSendError(f"{label}: {type(error).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientSendError(f"{label}: HTTP {response.status_code}")
    try:
        result = response.json()
    except ValueError:
        result = {}
    return response.status_code, result if isinstance(result, dict) else {}


async def _token(cache: TokenCache, label: str) -> str:
    try:
        return await cache.get()
    except TokenError as error:
        raise PermanentSendError(f"{label}: {error}") from None
    except httpx.HTTPError as error:
        raise TransientSendError(f"{label}: token: {type(error).__name__}") from None


class WecomAppSender:
    """Sends a markdown application message to the target's recipients."""

    def __init__(self, client: httpx.AsyncClient, clock: Clock) -> None:
        self._client = client
        self._tokens = _Tokens(client, clock)

    async def send(self, target: Target, message: OutboundMessage) -> None:
        label = f"WeCom app {target.config_key}"
        base = target.url.rstrip("/")
        cache = self._tokens.cache(
            target,
            wecom_fetcher(base, target.app_id, target.secret or "", f"{target.config_key}.secret"),
        )
        body: dict[str, Any] = {
            "touser": "|".join(target.recipients),
            "agentid": int(target.agent),
            "msgtype": "markdown" if message.msg_type == "markdown" else "text",
        }
        if body["msgtype"] == "markdown":
            body["markdown"] = {"content": message.body}
        else:
            body["text"] = {"content": message.body}
        for attempt in range(2):
            token = await _token(cache, label)
            status, result = await _post(
                self._client,
                f"{base}/cgi-bin/message/send",
                body,
                label=label,
                params={"access_token": token},
            )
            code = result.get("errcode", 0 if status == 200 else status)
            if code in WECOM_TOKEN_INVALID and attempt == 0:
                cache.invalidate()
                continue
            break
        if status != 200:
            raise PermanentSendError(f"{label}: HTTP {status}")
        if code == 0:
            invalid = str(result.get("invaliduser") or "")
            if invalid:
                # Delivered to the others; the config names someone WeCom does not know.
                log.warning("%s: WeCom does not know the operator(s) %s", label, invalid)
                if set(invalid.split("|")) >= set(target.recipients):
                    raise PermanentSendError(f"{label}: every operator is unknown to WeCom")
            return
        reason = f"{label}: errcode {code}: {result.get('errmsg', '')}"
        if code in WECOM_TRANSIENT:
            raise TransientSendError(reason)
        if code in (60020, 48002, 301002):
            reason += f" (check {target.config_key}: IP allow-list, API permission, agent_id)"
        raise PermanentSendError(reason)


class DingtalkOtoSender:
    """Sends the robot's one-to-one markdown message to the target's recipients."""

    def __init__(self, client: httpx.AsyncClient, clock: Clock) -> None:
        self._client = client
        self._tokens = _Tokens(client, clock)

    async def send(self, target: Target, message: OutboundMessage) -> None:
        label = f"DingTalk robot {target.config_key} (1:1)"
        base = target.url.rstrip("/")
        cache = self._tokens.cache(
            target,
            dingtalk_fetcher(
                base, target.app_id, target.secret or "", f"{target.config_key}.app_secret"
            ),
        )
        if message.msg_type == "markdown":
            key, param = "sampleMarkdown", {"title": message.title, "text": message.body}
        else:
            key, param = "sampleText", {"content": message.body}
        body = {
            "robotCode": target.agent,
            "userIds": list(target.recipients),
            "msgKey": key,
            "msgParam": json.dumps(param, ensure_ascii=False),
        }
        for attempt in range(2):
            token = await _token(cache, label)
            status, result = await _post(
                self._client,
                f"{base}/v1.0/robot/oToMessages/batchSend",
                body,
                label=label,
                headers={"x-acs-dingtalk-access-token": token},
            )
            if status in (401, 403) and attempt == 0:
                cache.invalidate()  # an expired or revoked token: fetch once more
                continue
            break
        if status != 200:
            code = str(result.get("code", ""))
            reason = f"{label}: HTTP {status}: {code} {result.get('message', '')}".rstrip()
            if "throttl" in code.lower() or "qpslimit" in code.lower():
                raise TransientSendError(reason)
            raise PermanentSendError(reason + f" (check {target.config_key}.robot_code)")
        invalid = set(result.get("invalidStaffIdList") or [])
        limited = set(result.get("flowControlledStaffIdList") or [])
        if invalid:
            log.warning("%s: DingTalk calls these staff ids invalid: %s", label, sorted(invalid))
        if invalid >= set(target.recipients):
            raise PermanentSendError(f"{label}: every operator's staff id is invalid")
        if limited and limited | invalid >= set(target.recipients):
            raise TransientSendError(f"{label}: flow-controlled for every operator")


class FeishuMessageSender:
    """Sends an interactive markdown card to one user through the message API."""

    def __init__(self, client: httpx.AsyncClient, clock: Clock) -> None:
        self._client = client
        self._tokens = _Tokens(client, clock)

    async def send(self, target: Target, message: OutboundMessage) -> None:
        label = f"Feishu app {target.config_key}"
        base = target.url.rstrip("/")
        cache = self._tokens.cache(
            target,
            feishu_fetcher(
                base, target.app_id, target.secret or "", f"{target.config_key}.app_secret"
            ),
        )
        content = json.dumps(
            {
                "config": {"wide_screen_mode": True},
                "header": {"title": {"tag": "plain_text", "content": message.title}},
                "elements": [{"tag": "markdown", "content": message.body}],
            },
            ensure_ascii=False,
        )
        for user in target.recipients:
            # open_id values start with "ou_"; anything else is taken as a tenant user_id.
            id_type = "open_id" if user.startswith("ou_") else "user_id"
            body = {"receive_id": user, "msg_type": "interactive", "content": content}
            for attempt in range(2):
                token = await _token(cache, label)
                status, result = await _post(
                    self._client,
                    f"{base}/open-apis/im/v1/messages",
                    body,
                    label=label,
                    params={"receive_id_type": id_type},
                    headers={"Authorization": f"Bearer {token}"},
                )
                code = result.get("code")
                if code in FEISHU_TOKEN_INVALID and attempt == 0:
                    cache.invalidate()
                    continue
                break
            if status == 200 and code == 0:
                continue
            reason = f"{label}: HTTP {status}, code {code}: {result.get('msg', '')}"
            if code in FEISHU_TRANSIENT:
                raise TransientSendError(reason)
            raise PermanentSendError(reason)
