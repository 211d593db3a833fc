"""A stand-in for WeCom's servers calling a WeCom AI bot (智能机器人) callback URL."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def wx_encrypt(plaintext: str, encoding_aes_key: str, receive_id: str) -> str:
    """WXBizMsgCrypt encryption, written out from PLATFORMS.md (not through our code)."""
    key = base64.b64decode(encoding_aes_key + "=")
    body = plaintext.encode()
    raw = os.urandom(16) + struct.pack(">I", len(body)) + body + receive_id.encode()
    pad = 32 - len(raw) % 32
    raw += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(raw) + encryptor.finalize()).decode()


def wx_decrypt(encrypt: str, encoding_aes_key: str) -> tuple[str, str]:
    """Decrypt an envelope; returns (message, receive id)."""
    key = base64.b64decode(encoding_aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    raw = decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()
    raw = raw[: -raw[-1]]
    length = socket.ntohl(struct.unpack("I", raw[16:20])[0])
    return raw[20 : 20 + length].decode(), raw[20 + length :].decode()


def wx_signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324 - the platform's algorithm


@dataclass
class WeComAiBotDouble:
    """WeCom delivering AI-bot callbacks to ``url``."""

    url: str
    token: str
    encoding_aes_key: str
    aibotid: str = "aibot-test"

    def _query(self, encrypt: str, *, signature: str | None = None) -> dict[str, str]:
        timestamp = str(int(time.time()))
        nonce = os.urandom(4).hex()
        return {
            "msg_signature": signature or wx_signature(self.token, timestamp, nonce, encrypt),
            "timestamp": timestamp,
            "nonce": nonce,
        }

    async def url_check(self, echo: str = "1288432023552776189") -> httpx.Response:
        echostr = wx_encrypt(echo, self.encoding_aes_key, "")
        query = self._query(echostr) | {"echostr": echostr}
        async with httpx.AsyncClient(timeout=5) as client:
            return await client.get(self.url, params=query)

    async def deliver(
        self, payload: dict[str, Any], *, bad_signature: bool = False, seconds: float = 5
    ) -> httpx.Response:
        encrypt = wx_encrypt(json.dumps(payload, ensure_ascii=False), self.encoding_aes_key, "")
        query = self._query(encrypt, signature="0" * 40 if bad_signature else None)
        async with httpx.AsyncClient(timeout=seconds) as client:
            return await client.post(self.url, params=query, json={"encrypt": encrypt})

    def group_text(
        self,
        msgid: str,
        chatid: str,
        userid: str,
        content: str,
        *,
        bot_name: str = "群脉",
        response_base: str = "https://qyapi.weixin.qq.com",
    ) -> dict[str, Any]:
        """A decrypted group text message as the AI bot receives it.

        ``response_base`` points the message's ``response_url`` at a test double.
        """
        return {
            "msgid": msgid,
            "aibotid": self.aibotid,
            "chatid": chatid,
            "chattype": "group",
            "from": {"userid": userid},
            "response_url": f"{response_base}/cgi-bin/aibot/response?response_code={msgid}",
            "msgtype": "text",
            "text": {"content": f"@{bot_name} {content}"},
        }

    def private_text(
        self,
        msgid: str,
        userid: str,
        content: str,
        *,
        response_base: str = "https://qyapi.weixin.qq.com",
    ) -> dict[str, Any]:
        """A decrypted private (single) chat text message: no chatid, no @-mention."""
        return {
            "msgid": msgid,
            "aibotid": self.aibotid,
            "chattype": "single",
            "from": {"userid": userid},
            "response_url": f"{response_base}/cgi-bin/aibot/response?response_code={msgid}",
            "msgtype": "text",
            "text": {"content": content},
        }
