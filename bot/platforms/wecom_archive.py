"""WeCom session archive (会话内容存档): the official C SDK through ctypes, and its records.

The SDK (``libWeWorkFinanceSdk_C.so``) is Tencent's, not on PyPI and not shipped with
qunpulse; download it from the official doc page "会话内容存档 / 获取会话内容"
(https://developer.work.weixin.qq.com/document/path/91774). Its C header
``WeWorkFinanceSdk_C.h`` declares::

    WeWorkFinanceSdk_t* NewSdk();
    int  Init(WeWorkFinanceSdk_t* sdk, const char* corpid, const char* secret);
    int  GetChatData(WeWorkFinanceSdk_t* sdk, unsigned long long seq, unsigned int limit,
                     const char* proxy, const char* passwd, int timeout, Slice_t* chatDatas);
    int  DecryptData(const char* encrypt_key, const char* encrypt_msg, Slice_t* msg);
    void DestroySdk(WeWorkFinanceSdk_t* sdk);
    Slice_t* NewSlice();  void FreeSlice(Slice_t* slice);
    char* GetContentFromSlice(Slice_t* slice);  int GetSliceLen(Slice_t* slice);

``GetChatData`` answers ``{"errcode", "errmsg", "chatdata": [{seq, msgid, publickey_ver,
encrypt_random_key, encrypt_chat_msg}]}``. ``encrypt_random_key`` is base64 of the random
key RSA-encrypted (PKCS#1 v1.5) with the public key of version ``publickey_ver``; the
decrypted key and ``encrypt_chat_msg`` go to ``DecryptData``, which yields the message
JSON. Nothing in this module logs a secret, a key or a decrypted message.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bot.events import Chat, ChatId, MessageEvent, Person, UserId
from storage.history import Recall

#: The SDK's own error codes (from WeWorkFinanceSdk_C.h).
SDK_ERRORS = {
    10000: "bad parameters",
    10001: "network error",
    10002: "data could not be parsed",
    10003: "system failure",
    10004: "encryption failed because of a wrong key",
    10005: "bad fileid",
    10006: "decryption failed",
    10007: "no private key for this message's key version: upload a new one",
    10008: "encrypt_key could not be parsed",
    10009: "IP address not allowed",
    10010: "data expired",
    10011: "certificate error",
}

#: Most records ``GetChatData`` returns per call (the SDK's limit).
MAX_LIMIT = 1000


class ArchiveError(Exception):
    """The archive cannot be pulled; the message names the config key or the SDK code."""


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One encrypted record as ``GetChatData`` lists it."""

    seq: int
    msgid: str
    publickey_ver: int
    encrypt_random_key: str
    encrypt_chat_msg: str


class FinanceSdk:
    """A loaded ``libWeWorkFinanceSdk_C.so``, initialised for one corp.

    The SDK is not documented as thread safe, so one lock serialises every call.
    Use as a context manager, or call :meth:`close`, to ``DestroySdk`` it.

    Raises:
        ArchiveError: the library cannot be loaded or ``Init`` fails.
    """

    def __init__(self, library: str | Path, corp_id: str, secret: str) -> None:
        try:
            lib = ctypes.CDLL(str(library))
        except OSError as error:
            raise ArchiveError(
                f"archive.sdk_path: cannot load {library} ({error}); download "
                "libWeWorkFinanceSdk_C.so from the WeCom developer docs (see README)"
            ) from None
        _declare(lib)
        self._lib = lib
        self._lock = threading.Lock()
        self._sdk: int | None = lib.NewSdk()
        if not self._sdk:
            raise ArchiveError("archive: NewSdk() returned NULL")
        code = lib.Init(self._sdk, corp_id.encode(), secret.encode())
        if code != 0:
            self.close()
            raise ArchiveError(
                f"archive: Init failed with SDK error {code} ({_describe(code)}); "
                "check corp_id and archive.secret (the 会话内容存档 Secret)"
            )

    def __enter__(self) -> FinanceSdk:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the SDK handle (``DestroySdk``); safe to call twice."""
        with self._lock:
            if self._sdk:
                self._lib.DestroySdk(self._sdk)
                self._sdk = None

    def get_chat_data(
        self,
        seq: int,
        limit: int,
        *,
        proxy: str | None = None,
        proxy_password: str | None = None,
        timeout: int = 10,
    ) -> list[ArchiveRecord]:
        """Return up to ``limit`` records after ``seq``.

        Raises:
            ArchiveError: the SDK or the WeCom server reported an error.
        """
        with self._lock:
            if not self._sdk:
                raise ArchiveError("archive: the SDK was closed")
            with self._slice() as out:
                code = self._lib.GetChatData(
                    self._sdk,
                    seq,
                    min(limit, MAX_LIMIT),
                    (proxy or "").encode(),
                    (proxy_password or "").encode(),
                    timeout,
                    out,
                )
                if code != 0:
                    raise ArchiveError(
                        f"archive: GetChatData failed: SDK error {code} ({_describe(code)})"
                    )
                payload = self._content(out)
        try:
            answer = json.loads(payload)
        except ValueError:
            raise ArchiveError("archive: GetChatData answered something that is not JSON") from None
        if answer.get("errcode", 0) != 0:
            raise ArchiveError(
                f"archive: GetChatData: WeCom errcode {answer.get('errcode')} "
                f"({answer.get('errmsg', '')})"
            )
        try:
            return [
                ArchiveRecord(
                    seq=int(item["seq"]),
                    msgid=str(item["msgid"]),
                    publickey_ver=int(item["publickey_ver"]),
                    encrypt_random_key=str(item["encrypt_random_key"]),
                    encrypt_chat_msg=str(item["encrypt_chat_msg"]),
                )
                for item in answer.get("chatdata", [])
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise ArchiveError(f"archive: a chatdata record lacks a field ({error})") from None

    def decrypt(self, random_key: bytes, encrypt_chat_msg: str) -> dict[str, Any]:
        """``DecryptData`` one record with its decrypted random key; return the message.

        Raises:
            ArchiveError: the SDK could not decrypt it, or the result is not JSON.
        """
        with self._lock, self._slice() as out:
            code = self._lib.DecryptData(random_key, encrypt_chat_msg.encode(), out)
            if code != 0:
                raise ArchiveError(
                    f"archive: DecryptData failed: SDK error {code} ({_describe(code)})"
                )
            plain = self._content(out)
        try:
            message = json.loads(plain)
        except ValueError:
            raise ArchiveError("archive: DecryptData gave something that is not JSON") from None
        if not isinstance(message, dict):
            raise ArchiveError("archive: DecryptData gave JSON that is not an object")
        return message

    @contextmanager
    def _slice(self) -> Iterator[int]:
        """A fresh ``Slice_t``, always freed, even when the call using it fails."""
        pointer = self._lib.NewSlice()
        if not pointer:
            raise ArchiveError("archive: NewSlice() returned NULL")
        try:
            yield pointer
        finally:
            self._lib.FreeSlice(pointer)

    def _content(self, pointer: int) -> bytes:
        length = self._lib.GetSliceLen(pointer)
        buffer = self._lib.GetContentFromSlice(pointer)
        if not buffer or length <= 0:
            return b""
        return ctypes.string_at(buffer, length)


def _declare(lib: ctypes.CDLL) -> None:
    """Give every function its C signature; ctypes would otherwise truncate pointers."""
    void_p, char_p = ctypes.c_void_p, ctypes.c_char_p
    signatures: dict[str, tuple[list[Any], Any]] = {
        "NewSdk": ([], void_p),
        "Init": ([void_p, char_p, char_p], ctypes.c_int),
        "GetChatData": (
            [void_p, ctypes.c_ulonglong, ctypes.c_uint, char_p, char_p, ctypes.c_int, void_p],
            ctypes.c_int,
        ),
        "DecryptData": ([char_p, char_p, void_p], ctypes.c_int),
        "DestroySdk": ([void_p], None),
        "NewSlice": ([], void_p),
        "FreeSlice": ([void_p], None),
        "GetContentFromSlice": ([void_p], void_p),
        "GetSliceLen": ([void_p], ctypes.c_int),
    }
    for name, (arguments, result) in signatures.items():
        try:
            function = getattr(lib, name)
        except AttributeError:
            raise ArchiveError(
                f"archive.sdk_path: the library does not export {name}(); "
                "is it libWeWorkFinanceSdk_C.so?"
            ) from None
        function.argtypes = arguments
        function.restype = result


def _describe(code: int) -> str:
    return SDK_ERRORS.get(code, "unknown error")


class PrivateKeys:
    """The RSA private keys of the archive, by ``publickey_ver``.

    Raises:
        ArchiveError: a key file cannot be read or is not an RSA private key.
    """

    def __init__(self, paths: Mapping[str, str]) -> None:
        self._keys: dict[int, RSAPrivateKey] = {}
        for version, path in paths.items():
            key_name = f"archive.private_keys.{version}"
            try:
                number = int(version)
            except ValueError:
                raise ArchiveError(f"{key_name}: the version must be a number") from None
            try:
                data = Path(path).read_bytes()
            except OSError as error:
                raise ArchiveError(f"{key_name}: cannot read {path} ({error.strerror})") from None
            try:
                key = load_pem_private_key(data, password=None)
            except (ValueError, TypeError):
                raise ArchiveError(
                    f"{key_name}: {path} is not an unencrypted PEM private key"
                ) from None
            if not isinstance(key, RSAPrivateKey):
                raise ArchiveError(f"{key_name}: {path} is not an RSA key")
            self._keys[number] = key

    def decrypt_random_key(self, record: ArchiveRecord) -> bytes:
        """RSA-decrypt (PKCS#1 v1.5) a record's ``encrypt_random_key``.

        Raises:
            ArchiveError: no key of this version is configured, or decryption failed.
        """
        key = self._keys.get(record.publickey_ver)
        if key is None:
            raise ArchiveError(
                f"archive.private_keys: no key for publickey_ver {record.publickey_ver} "
                f"(record seq {record.seq}); add the private key of that version"
            )
        try:
            return key.decrypt(base64.b64decode(record.encrypt_random_key), PKCS1v15())
        except (ValueError, binascii.Error):
            raise ArchiveError(
                f"archive.private_keys.{record.publickey_ver}: cannot decrypt the random key "
                f"of record seq {record.seq}; is it the key of that version?"
            ) from None


def archive_item(message: Mapping[str, Any], bot_id: str) -> MessageEvent | Recall | None:
    """Turn one decrypted archive message into a group message, a recall, or nothing.

    ``switch`` records (a user switching enterprise) and private chats (empty
    ``roomid``) give ``None``. A recall (``action: recall``; ``msgtype: revoke`` with
    ``revoke.pre_msgid`` naming the original) gives a :class:`Recall` of the original.

    Raises:
        ValueError: a field is missing or has the wrong type; the message says which.
    """
    action = message.get("action", "send")
    if action == "switch":
        return None
    msgid = _text_field(message, "msgid")
    if "msgtime" not in message:
        raise ValueError("missing field 'msgtime'")
    try:
        sent_at = datetime.fromtimestamp(int(message["msgtime"]) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"msgtime: expected milliseconds, got {message['msgtime']!r}") from None
    if action == "recall" or message.get("msgtype") == "revoke":
        revoke = message.get("revoke")
        original = revoke.get("pre_msgid") if isinstance(revoke, dict) else None
        return Recall("wecom", str(original or msgid), sent_at)
    if action != "send":
        raise ValueError(f"action: expected send, recall or switch, got {action!r}")
    room = message.get("roomid") or ""
    if not isinstance(room, str):
        raise ValueError("roomid: expected a string")
    if not room:
        return None  # a one-to-one chat: not group activity
    sender = _text_field(message, "from")
    msg_type = _text_field(message, "msgtype")
    text: str | None = None
    if msg_type == "text":
        body = message.get("text")
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str):
            raise ValueError("text.content: missing in a text message")
        text = content
    return MessageEvent(
        platform="wecom",
        bot_id=bot_id,
        message_id=msgid,
        chat=Chat(ChatId(room), "group"),
        sender=Person(UserId(sender)),
        msg_type=msg_type[:32],
        text=text,
        sent_at=sent_at,
        source="full",
        mentions_bot=False,
    )


def _text_field(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"missing field {name!r}")
    return value
