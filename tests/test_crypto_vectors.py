"""The official vectors of PLATFORMS.md pass through qunpulse's crypto code path."""

from __future__ import annotations

import pytest

from bot.platforms import BadSignature, MalformedRequest
from bot.platforms.wxcrypto import MessageCrypto
from tests.doubles.wecom import wx_decrypt

WECOM = MessageCrypto(
    "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
    "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
    "ww1436e0e65a779aee",
)
ECHOSTR = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
POST_ENCRYPT = (
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"
    "+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24Yh"
    "mZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpc"
    "wocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
)
DINGTALK = MessageCrypto(
    "mryue", "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7", "ding6ccabc44d2c8d38b"
)
DINGTALK_ENCRYPT = (
    "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4yhEL"
    "OFchzNukR+t8SB/qk4ROMu3"
)


def test_wecom_url_check_vector() -> None:
    plaintext = WECOM.open(
        "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", ECHOSTR
    )
    assert plaintext == "1288432023552776189"


def test_wecom_message_vector() -> None:
    plaintext = WECOM.open(
        "0c3914025cb4b4d68103f6bfc8db550f79dcf48e", "1476422779", "1597212914", POST_ENCRYPT
    )
    assert plaintext == (
        "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromUserName>"
        "<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
        "<MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
    )


def test_dingtalk_event_vector() -> None:
    plaintext = DINGTALK.open(
        "03044561471240d4a14bb09372dfcfd4fd0e40cb", "1608001896814", "WL4PK6yA", DINGTALK_ENCRYPT
    )
    assert plaintext == '{"EventType":"check_url"}'


def test_tampered_signature_is_refused() -> None:
    with pytest.raises(BadSignature):
        WECOM.open("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebec", "1476416373", "47744683", ECHOSTR)


def test_other_receive_id_is_refused() -> None:
    robot = MessageCrypto(
        "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt", ""
    )
    with pytest.raises(BadSignature, match="receive id"):
        robot.open("012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb", "1476416373", "47744683", ECHOSTR)


def test_garbage_ciphertext_is_malformed() -> None:
    from bot.platforms.wxcrypto import signature

    garbage = "bm90IGEgY2lwaGVydGV4dA=="
    with pytest.raises(MalformedRequest):
        WECOM.open(
            signature("hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo", "1", "n", garbage), "1", "n", garbage
        )


def test_sealed_reply_opens_with_the_platform_algorithm() -> None:
    encrypt, signed, timestamp, nonce = WECOM.seal("success")
    assert WECOM.open(signed, timestamp, nonce, encrypt) == "success"
    assert wx_decrypt(encrypt, "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt") == (
        "success",
        "ww1436e0e65a779aee",
    )
