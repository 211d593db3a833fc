"""WXBizMsgCrypt: the AES envelope of WeCom callbacks (and of DingTalk event callbacks).

AES-256-CBC with ``base64(EncodingAESKey + "=")`` as key and its first 16 bytes as IV,
PKCS#7 padding to 32 bytes, plaintext ``random16 + len32be + message + receive_id``; the
signature is the SHA-1 of the sorted token, timestamp, nonce and ciphertext. wechatpy
does the cipher work; we compare signatures in constant time (wechatpy uses ``==``) and
turn its failures into :class:`RejectedRequest` errors.

Docs: https://developer.work.weixin.qq.com/document/path/90968 (加解密方案说明).
"""

from __future__ import annotations

import binascii
import hmac
import secrets
import struct
import time
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.utils import WeChatSigner

from bot.platforms.base import BadSignature, MalformedRequest


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The SHA-1 hex signature over the four strings, sorted and joined."""
    signer = WeChatSigner()
    signer.add_data(token, timestamp, nonce, encrypt)
    return str(signer.signature)


class MessageCrypto:
    """Verify, decrypt and encrypt WXBizMsgCrypt envelopes for one token, key and receive id.

    Args:
        token: the callback Token from the console.
        encoding_aes_key: the 43-character EncodingAESKey.
        receive_id: CorpID for a WeCom self-built app, ``""`` for WeCom robots and AI
            bots, the appKey (or corpId / suiteKey) for DingTalk.
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self._token = token
        self._key = binascii.a2b_base64(encoding_aes_key + "=")
        if len(self._key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self._receive_id = receive_id
        # Built once: it only holds the key and IV; each call makes its own cipher context.
        self._prp = PrpCrypto(self._key)

    def __repr__(self) -> str:
        return f"MessageCrypto(receive_id={self._receive_id!r})"

    def verify(self, given: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Check a signature in constant time.

        Raises:
            BadSignature: it does not match.
        """
        expected = signature(self._token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise BadSignature("signature does not match")

    def decrypt(self, encrypt: str) -> str:
        """Decrypt a verified ciphertext and check its receive id.

        Raises:
            BadSignature: the receive id inside is not ours.
            MalformedRequest: the ciphertext is not valid base64 / AES / UTF-8.
        """
        try:
            plaintext = self._prp.decrypt(encrypt, self._receive_id)
        except InvalidCorpIdException:
            raise BadSignature("the receive id inside the envelope is not this bot's") from None
        except (
            ValueError,
            binascii.Error,
            UnicodeDecodeError,
            IndexError,
            TypeError,
            struct.error,
        ) as exc:
            raise MalformedRequest(f"cannot decrypt: {type(exc).__name__}") from None
        return str(plaintext)

    def open(self, given: str, timestamp: str, nonce: str, encrypt: str) -> str:
        """Verify, then decrypt."""
        self.verify(given, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def seal(self, plaintext: str, *, timestamp: str | None = None) -> tuple[str, str, str, str]:
        """Encrypt and sign a reply: returns ``(encrypt, signature, timestamp, nonce)``."""
        stamp = timestamp or str(int(time.time()))
        nonce = secrets.token_hex(8)
        encrypt = self._prp.encrypt(plaintext, self._receive_id).decode()
        return encrypt, signature(self._token, stamp, nonce, encrypt), stamp, nonce


def parse_xml(text: str | bytes, what: str) -> dict[str, Any]:
    """The children of a WeCom ``<xml>`` document as a dict (xmltodict's shapes).

    Entities are not expanded (``disable_entities``), so a hostile DTD cannot blow up.

    Raises:
        MalformedRequest: it is not an ``<xml>`` document.
    """
    try:
        document = xmltodict.parse(text, disable_entities=True)
    except (ExpatError, ValueError):
        raise MalformedRequest(f"{what} is not valid XML") from None
    root = document.get("xml") if isinstance(document, dict) else None
    if not isinstance(root, dict):
        raise MalformedRequest(f"{what} is not an <xml> document")
    return root
