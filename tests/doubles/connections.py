"""Stand-ins for DingTalk event subscription, Feishu and a WeCom self-built app.

Each signs and encrypts with the platform's real algorithm, written out from
PLATFORMS.md (not through qunpulse's code), and POSTs over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.doubles.wecom import wx_decrypt, wx_encrypt, wx_signature


@dataclass
class DingTalkEventsDouble:
    """DingTalk delivering event-subscription callbacks (AES envelope, receive id = appKey)."""

    url: str
    token: str
    aes_key: str
    app_key: str
    camel_query: bool = False

    async def post_encrypted(
        self, encrypt: str, *, timestamp: str, nonce: str, signature: str
    ) -> httpx.Response:
        if self.camel_query:
            query = {"signature": signature, "timestamp": timestamp, "nonce": nonce}
        else:
            query = {"msg_signature": signature, "timeStamp": timestamp, "nonce": nonce}
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.post(self.url, params=query, json={"encrypt": encrypt})

    async def deliver(
        self, payload: dict[str, Any], *, bad_signature: bool = False
    ) -> httpx.Response:
        encrypt = wx_encrypt(json.dumps(payload, ensure_ascii=False), self.aes_key, self.app_key)
        stamp = str(int(time.time() * 1000))
        nonce = os.urandom(4).hex()
        signature = "0" * 40 if bad_signature else wx_signature(self.token, stamp, nonce, encrypt)
        return await self.post_encrypted(encrypt, timestamp=stamp, nonce=nonce, signature=signature)

    def open_answer(self, response: httpx.Response) -> str:
        """Check the answer's signature and decrypt it, as DingTalk does."""
        body = response.json()
        expected = wx_signature(self.token, body["timeStamp"], body["nonce"], body["encrypt"])
        assert body["msg_signature"] == expected, "answer signature does not verify"
        plaintext, receive_id = wx_decrypt(body["encrypt"], self.aes_key)
        assert receive_id == self.app_key
        return plaintext


def feishu_encrypt(plaintext: str, encrypt_key: str) -> str:
    key = hashlib.sha256(encrypt_key.encode()).digest()
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


@dataclass
class FeishuDouble:
    """Feishu delivering schema 2.0 events (encrypted and signed when a key is given)."""

    url: str
    verification_token: str
    encrypt_key: str | None = None
    app_id: str = "cli_test"

    async def post(
        self, document: dict[str, Any], *, bad_signature: bool = False, sign: bool = True
    ) -> httpx.Response:
        if self.encrypt_key is not None:
            body = json.dumps({"encrypt": feishu_encrypt(json.dumps(document), self.encrypt_key)})
        else:
            body = json.dumps(document)
        raw = body.encode()
        headers = {"Content-Type": "application/json"}
        if self.encrypt_key is not None and sign:
            stamp, nonce = str(int(time.time())), os.urandom(8).hex()
            digest = hashlib.sha256((stamp + nonce + self.encrypt_key).encode() + raw).hexdigest()
            headers |= {
                "X-Lark-Request-Timestamp": stamp,
                "X-Lark-Request-Nonce": nonce,
                "X-Lark-Signature": "0" * 64 if bad_signature else digest,
            }
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.post(self.url, content=raw, headers=headers)

    async def url_verification(self, challenge: str, *, token: str | None = None) -> httpx.Response:
        return await self.post(
            {
                "challenge": challenge,
                "token": token or self.verification_token,
                "type": "url_verification",
            },
            sign=False,
        )

    def event(
        self, event_id: str, event_type: str, event: dict[str, Any], *, create_ms: int | None = None
    ) -> dict[str, Any]:
        return {
            "schema": "2.0",
            "header": {
                "event_id": event_id,
                "event_type": event_type,
                "create_time": str(create_ms or int(time.time() * 1000)),
                "token": self.verification_token,
                "app_id": self.app_id,
                "tenant_key": "tenant",
            },
            "event": event,
        }

    def group_text(
        self,
        event_id: str,
        message_id: str,
        chat_id: str,
        user_id: str,
        text: str,
        mentions: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return self.event(
            event_id,
            "im.message.receive_v1",
            {
                "sender": {
                    "sender_id": {
                        "open_id": f"ou_{user_id}",
                        "user_id": user_id,
                        "union_id": f"on_{user_id}",
                    },
                    "sender_type": "user",
                    "tenant_key": "tenant",
                },
                "message": {
                    "message_id": message_id,
                    "create_time": str(int(time.time() * 1000)),
                    "chat_id": chat_id,
                    "chat_type": "group",
                    "message_type": "text",
                    "content": json.dumps({"text": text}, ensure_ascii=False),
                    "mentions": mentions or [],
                },
            },
        )

    def members(
        self, event_id: str, added: bool, chat_id: str, operator: str, users: list[tuple[str, str]]
    ) -> dict[str, Any]:
        return self.event(
            event_id,
            "im.chat.member.user.added_v1" if added else "im.chat.member.user.deleted_v1",
            {
                "chat_id": chat_id,
                "operator_id": {"open_id": f"ou_{operator}", "user_id": operator},
                "external": False,
                "operator_tenant_key": "tenant",
                "name": "飞书产品群",
                "users": [
                    {
                        "name": name,
                        "tenant_key": "tenant",
                        "user_id": {
                            "open_id": f"ou_{uid}",
                            "user_id": uid,
                            "union_id": f"on_{uid}",
                        },
                    }
                    for uid, name in users
                ],
            },
        )


@dataclass
class WeComAppDouble:
    """WeCom delivering a self-built app's XML callbacks (receive id = CorpID)."""

    url: str
    token: str
    encoding_aes_key: str
    corp_id: str
    agent_id: int = 1000002

    def _query(self, encrypt: str, signature: str | None = None) -> dict[str, str]:
        stamp, nonce = str(int(time.time())), os.urandom(4).hex()
        return {
            "msg_signature": signature or wx_signature(self.token, stamp, nonce, encrypt),
            "timestamp": stamp,
            "nonce": nonce,
        }

    async def url_check(self, echo: str = "1288432023552776189") -> httpx.Response:
        echostr = wx_encrypt(echo, self.encoding_aes_key, self.corp_id)
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.get(self.url, params=self._query(echostr) | {"echostr": echostr})

    async def deliver(self, xml: str, *, bad_signature: bool = False) -> httpx.Response:
        encrypt = wx_encrypt(xml, self.encoding_aes_key, self.corp_id)
        envelope = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt>"
            f"<AgentID><![CDATA[{self.agent_id}]]></AgentID></xml>"
        )
        query = self._query(encrypt, "0" * 40 if bad_signature else None)
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.post(self.url, params=query, content=envelope.encode())

    def chat_change(
        self,
        chat_id: str,
        change_type: str,
        detail: str = "",
        *,
        members: list[str] | None = None,
        item_form: bool = True,
        join_scene: int | None = None,
        quit_scene: int | None = None,
        last_ver: str = "",
        cur_ver: str = "",
        create_time: int | None = None,
    ) -> str:
        parts = [
            f"<ToUserName><![CDATA[{self.corp_id}]]></ToUserName>",
            "<FromUserName><![CDATA[sys]]></FromUserName>",
            f"<CreateTime>{create_time or int(time.time())}</CreateTime>",
            "<MsgType><![CDATA[event]]></MsgType>",
            "<Event><![CDATA[change_external_chat]]></Event>",
            f"<ChatId><![CDATA[{chat_id}]]></ChatId>",
            f"<ChangeType><![CDATA[{change_type}]]></ChangeType>",
        ]
        if detail:
            parts.append(f"<UpdateDetail><![CDATA[{detail}]]></UpdateDetail>")
        if join_scene is not None:
            parts.append(f"<JoinScene>{join_scene}</JoinScene>")
        if quit_scene is not None:
            parts.append(f"<QuitScene>{quit_scene}</QuitScene>")
        if members is not None:
            parts.append(f"<MemChangeCnt>{len(members)}</MemChangeCnt>")
            if item_form:
                items = "".join(f"<Item><![CDATA[{m}]]></Item>" for m in members)
                parts.append(f"<MemChangeList>{items}</MemChangeList>")
            else:
                parts.append(f"<MemChangeList><![CDATA[{','.join(members)}]]></MemChangeList>")
        if last_ver:
            parts.append(f"<LastMemVer><![CDATA[{last_ver}]]></LastMemVer>")
        if cur_ver:
            parts.append(f"<CurMemVer><![CDATA[{cur_ver}]]></CurMemVer>")
        return "<xml>" + "".join(parts) + "</xml>"
