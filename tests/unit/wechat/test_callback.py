"""CallbackCodec: one callback in, one verified typed message out, in every mode."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wechat import signature
from app.wechat.callback import CallbackCodec, CallbackQuery, Decoded
from app.wechat.crypto import MessageCrypto
from app.wechat.errors import (
    AESKeyError,
    AppIdError,
    CipherError,
    ModeError,
    SignatureError,
    TimestampError,
    TooLargeError,
    XMLError,
)
from app.wechat.messages import TextMessage, from_fields
from app.wechat.replies import Ack, TextReply, render
from app.wechat.xmlparse import parse_fields, render_fields

TIMESTAMP = "1714000000"
NONCE = "415670741"


def text_xml(content: str = "hello", msg_id: int = 1234567890123456, sender: str = "oUser") -> str:
    return render_fields(
        {
            "ToUserName": "gh_account",
            "FromUserName": sender,
            "CreateTime": TIMESTAMP,
            "MsgType": "text",
            "Content": content,
            "MsgId": str(msg_id),
        }
    )


def plain_query(token: str, **extra: str) -> CallbackQuery:
    return CallbackQuery.from_mapping(
        {"timestamp": TIMESTAMP, "nonce": NONCE, "signature": signature.sign(token, TIMESTAMP, NONCE), **extra}
    )


def encrypted_request(token: str, appid: str, encrypt: str, msg_signature: str | None = None, **extra: str):
    query = {
        "timestamp": TIMESTAMP,
        "nonce": NONCE,
        "signature": signature.sign(token, TIMESTAMP, NONCE),
        "encrypt_type": "aes",
        "msg_signature": msg_signature or signature.sign(token, TIMESTAMP, NONCE, encrypt),
        **extra,
    }
    body = f"<xml><ToUserName><![CDATA[{appid}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return CallbackQuery.from_mapping(query), body.encode("utf-8")


def vector_request(vector, msg_signature: str | None = None):
    query = {"timestamp": vector["timestamp"], "nonce": vector["nonce"], "encrypt_type": "aes"}
    query["msg_signature"] = msg_signature or vector.get("msg_signature") or signature.sign(
        vector["token"], vector["timestamp"], vector["nonce"], vector["encrypt"]
    )
    if "signature" in vector:
        query["signature"] = vector["signature"]
    encrypt = vector["encrypt"]
    body = f"<xml><ToUserName><![CDATA[gh_account]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return CallbackQuery.from_mapping(query), body.encode("utf-8")


def vector_codec(vector, mode: str = "safe", **kwargs) -> CallbackCodec:
    return CallbackCodec(
        token=vector["token"], appid=vector["appid"], mode=mode, aes_keys=[vector["encoding_aes_key"]], **kwargs
    )


# Reference vectors


@pytest.mark.parametrize("mode", ["safe", "compat"])
def test_xml_vector_decodes(xml_request_vector, mode):
    decoded = vector_codec(xml_request_vector, mode).decode(*vector_request(xml_request_vector))
    expected = from_fields(parse_fields(xml_request_vector["plaintext_msg"].encode("utf-8")))
    assert decoded == Decoded(expected, encrypted=True, key_index=0)
    assert dict(decoded.message.raw) == dict(expected.raw)


def test_json_vector_is_verified_then_refused_as_not_xml(json_request_vector):
    with pytest.raises(XMLError, match="malformed XML"):
        vector_codec(json_request_vector).decode(*vector_request(json_request_vector))


def test_negative_vector_through_codec(negative_vector, rejection_of):
    rejection = rejection_of(negative_vector)
    with pytest.raises(rejection.error) as caught:
        vector_codec(negative_vector).decode(*vector_request(negative_vector))
    assert type(caught.value) is rejection.error
    if rejection.message is not None:
        assert caught.value.message == rejection.message


def test_forged_msg_signature_is_rejected_before_decrypting(signature_negative_vector, monkeypatch):
    codec = vector_codec(signature_negative_vector)

    def must_not_decrypt(encrypted):
        raise AssertionError("decrypted a callback whose signature is forged")

    monkeypatch.setattr(codec.crypto, "decrypt", must_not_decrypt)
    with pytest.raises(SignatureError, match="signature mismatch"):
        codec.decode(*vector_request(signature_negative_vector))


def test_url_signature_as_msg_signature_is_rejected(xml_request_vector):
    v = xml_request_vector
    url_signature = signature.sign(v["token"], v["timestamp"], v["nonce"])
    with pytest.raises(SignatureError, match="signature mismatch"):
        vector_codec(v).decode(*vector_request(v, msg_signature=url_signature))


def test_encrypt_reply_vector_envelope(encrypt_reply_vector, fixed_random):
    v = encrypt_reply_vector
    codec = vector_codec(v, random_bytes=fixed_random(v))
    envelope = parse_fields(codec.envelope(v["plaintext_msg"], timestamp=v["timestamp"], nonce=v["nonce"]).encode())
    assert dict(envelope) == {
        "Encrypt": v["encrypt"],
        "MsgSignature": v["msg_signature"],
        "TimeStamp": v["timestamp"],
        "Nonce": v["nonce"],
    }


def test_url_signature_vector_verifies_url(url_signature_vector):
    v = url_signature_vector
    echostr = v.get("echostr", "4375120948345356249")
    query = CallbackQuery(timestamp=v["timestamp"], nonce=v["nonce"], signature=v["signature"], echostr=echostr)
    codec = CallbackCodec(token=v["token"], appid=v["appid"] or "wx", mode="plain")
    assert codec.verify_url(query) == echostr


# Modes


def test_plain_valid_signature(account):
    decoded = account.codec("plain").decode(plain_query(account.token), text_xml("hi").encode())
    assert decoded.encrypted is False
    assert decoded.key_index is None
    assert type(decoded.message) is TextMessage
    assert decoded.message.content == "hi"


@pytest.mark.parametrize("mode", ["plain", "compat"])
@pytest.mark.parametrize(
    "query",
    [
        {"timestamp": TIMESTAMP, "nonce": NONCE, "signature": "0" * 40},
        {"timestamp": TIMESTAMP, "nonce": NONCE, "signature": ""},
        {"timestamp": TIMESTAMP, "nonce": NONCE},
        {"timestamp": str(int(TIMESTAMP) + 1), "nonce": NONCE, "signature": "GOOD"},
        {"timestamp": TIMESTAMP, "nonce": NONCE + "0", "signature": "GOOD"},
        {},
    ],
    ids=["forged", "empty", "missing", "other_timestamp", "other_nonce", "no_query"],
)
def test_plain_bad_signature(account, mode, query):
    if query.get("signature") == "GOOD":
        query = {**query, "signature": signature.sign(account.token, TIMESTAMP, NONCE)}
    with pytest.raises(SignatureError):
        account.codec(mode).decode(CallbackQuery.from_mapping(query), text_xml().encode())


def test_plain_signature_is_checked_before_the_body_is_parsed(account):
    query = CallbackQuery.from_mapping({"timestamp": TIMESTAMP, "nonce": NONCE, "signature": "0" * 40})
    with pytest.raises(SignatureError):
        account.codec("plain").decode(query, b"<!DOCTYPE x><not-xml")


def test_plain_body_errors(account):
    codec = account.codec("plain", max_bytes=200)
    with pytest.raises(TooLargeError):
        codec.decode(plain_query(account.token), text_xml("x" * 300).encode())
    with pytest.raises(XMLError):
        codec.decode(plain_query(account.token), b"<xml><ToUserName>gh</ToUserName></xml>")
    with pytest.raises(XMLError):
        codec.decode(plain_query(account.token), b"not xml")


@pytest.mark.parametrize("encrypt_type", ["", "raw", "AES2"])
def test_safe_mode_requires_encrypt_type(account, encrypt_type):
    query = plain_query(account.token, encrypt_type=encrypt_type)
    with pytest.raises(ModeError):
        account.codec("safe").decode(query, text_xml().encode())


def test_safe_mode_rejects_a_correctly_signed_plain_callback(account):
    query, body = account.codec("compat").encode_callback(text_xml(), timestamp=TIMESTAMP, nonce=NONCE, encrypted=False)
    with pytest.raises(ModeError, match="unencrypted callback"):
        account.codec("safe").decode(CallbackQuery.from_mapping(query), body)


def test_encrypted_callback_to_plain_account(account):
    encrypt = MessageCrypto(account.appid, [account.key]).encrypt(text_xml().encode())
    with pytest.raises(ModeError, match="plain mode"):
        account.codec("plain").decode(*encrypted_request(account.token, account.appid, encrypt))


def test_plain_account_cannot_encode_encrypted_callback(account):
    with pytest.raises(ModeError):
        account.codec("plain").encode_callback(text_xml(), timestamp=TIMESTAMP, nonce=NONCE, encrypted=True)


@pytest.mark.parametrize("mode", ["safe", "compat"])
@pytest.mark.parametrize("encrypt_type", ["aes", "AES", "Aes"])
def test_encrypted_callback(account, mode, encrypt_type):
    encrypt = MessageCrypto(account.appid, [account.key]).encrypt(text_xml("秘密 😀").encode())
    query, body = encrypted_request(account.token, account.appid, encrypt, encrypt_type=encrypt_type)
    decoded = account.codec(mode).decode(query, body)
    assert decoded.encrypted is True
    assert decoded.key_index == 0
    assert decoded.message.content == "秘密 😀"


@pytest.mark.parametrize("mode", ["safe", "compat"])
def test_plain_signature_does_not_authenticate_encrypted_body(account, mode):
    encrypt = MessageCrypto(account.appid, [account.key]).encrypt(text_xml().encode())
    query, body = encrypted_request(account.token, account.appid, encrypt, msg_signature="0" * 40)
    assert query.signature == signature.sign(account.token, TIMESTAMP, NONCE)
    with pytest.raises(SignatureError, match="signature mismatch"):
        account.codec(mode).decode(query, body)


@pytest.mark.parametrize("mode", ["safe", "compat"])
def test_missing_msg_signature(account, mode):
    encrypt = MessageCrypto(account.appid, [account.key]).encrypt(text_xml().encode())
    query, body = encrypted_request(account.token, account.appid, encrypt)
    query = dataclasses.replace(query, msg_signature="")
    with pytest.raises(SignatureError, match="missing signature"):
        account.codec(mode).decode(query, body)


def test_msg_signature_covers_the_ciphertext(account):
    crypto = MessageCrypto(account.appid, [account.key])
    original = crypto.encrypt(text_xml("pay 1").encode())
    substitute = crypto.encrypt(text_xml("pay 1000").encode())
    query, _ = encrypted_request(account.token, account.appid, original)
    _, body = encrypted_request(account.token, account.appid, substitute)
    with pytest.raises(SignatureError):
        account.codec("safe").decode(query, body)


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><ToUserName>gh</ToUserName></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b"<xml><Encrypt><![CDATA[]]></Encrypt></xml>",
    ],
)
def test_encrypted_callback_without_encrypt_element(account, body):
    query = CallbackQuery.from_mapping({"timestamp": TIMESTAMP, "nonce": NONCE, "encrypt_type": "aes"})
    with pytest.raises(XMLError, match="without an <Encrypt> element"):
        account.codec("safe").decode(query, body)


def test_encrypted_callback_with_hostile_outer_body(account):
    query = CallbackQuery.from_mapping({"timestamp": TIMESTAMP, "nonce": NONCE, "encrypt_type": "aes"})
    with pytest.raises(XMLError):
        account.codec("safe").decode(query, b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml>&e;</xml>')


def test_encrypted_payload_must_be_a_message(account):
    encrypt = MessageCrypto(account.appid, [account.key]).encrypt(b"<xml><Content>x</Content></xml>")
    with pytest.raises(XMLError, match="missing required field"):
        account.codec("safe").decode(*encrypted_request(account.token, account.appid, encrypt))


def test_encrypted_payload_for_another_appid(account):
    encrypt = MessageCrypto("wx_someone_else", [account.key]).encrypt(text_xml().encode())
    with pytest.raises(AppIdError):
        account.codec("safe").decode(*encrypted_request(account.token, account.appid, encrypt))


def test_encrypted_payload_under_unknown_key(account):
    encrypt = MessageCrypto(account.appid, ["A" * 43]).encrypt(text_xml().encode())
    with pytest.raises((CipherError, AppIdError)):
        account.codec("safe", keys=(account.key, account.old_key)).decode(
            *encrypted_request(account.token, account.appid, encrypt)
        )


def test_key_rotation_through_codec(account):
    encrypt = MessageCrypto(account.appid, [account.old_key]).encrypt(text_xml("old").encode())
    decoded = account.codec("safe", keys=(account.key, account.old_key)).decode(
        *encrypted_request(account.token, account.appid, encrypt)
    )
    assert (decoded.message.content, decoded.key_index) == ("old", 1)


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_verify_url_returns_echostr(account, mode):
    query = plain_query(account.token, echostr="5927782489442352469")
    assert account.codec(mode).verify_url(query) == "5927782489442352469"


@pytest.mark.parametrize("bad", ["", "0" * 40])
def test_verify_url_rejects_bad_signature(account, bad):
    query = CallbackQuery(timestamp=TIMESTAMP, nonce=NONCE, signature=bad, echostr="e")
    with pytest.raises(SignatureError):
        account.codec("plain").verify_url(query)


def test_query_from_mapping():
    query = CallbackQuery.from_mapping({"timestamp": "1", "nonce": "n", "encrypt_type": "AES", "unknown": "x"})
    assert query == CallbackQuery(timestamp="1", nonce="n", encrypt_type="AES")
    assert query.encrypted
    assert not CallbackQuery().encrypted


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"mode": "secure"}, ValueError),
        ({"mode": "safe"}, ValueError),
        ({"mode": "compat"}, ValueError),
        ({"mode": "safe", "aes_keys": ["short"]}, AESKeyError),
    ],
)
def test_codec_configuration_errors(kwargs, error):
    with pytest.raises(error):
        CallbackCodec(token="t", appid="wx", **kwargs)


# Replies


def test_encode_plain_reply(account):
    message = account.codec("plain").decode(plain_query(account.token), text_xml().encode()).message
    body = account.codec("plain").encode_reply(TextReply("pong"), message, encrypted=False, timestamp=5, nonce="n")
    assert body == render(TextReply("pong"), to_user="oUser", from_user="gh_account", create_time=5)


def test_encode_encrypted_reply(account):
    codec = account.codec("safe")
    message = from_fields(parse_fields(text_xml().encode()))
    body = codec.encode_reply(TextReply("pong ]]>"), message, encrypted=True, timestamp=1714000001, nonce="99")
    envelope = parse_fields(body.encode())
    signature.verify(envelope["MsgSignature"], account.token, "1714000001", "99", envelope["Encrypt"])
    assert (envelope["TimeStamp"], envelope["Nonce"]) == ("1714000001", "99")
    inner = parse_fields(codec.crypto.decrypt(envelope["Encrypt"]).message)
    assert dict(inner) == {
        "ToUserName": "oUser",
        "FromUserName": "gh_account",
        "CreateTime": "1714000001",
        "MsgType": "text",
        "Content": "pong ]]>",
    }


@pytest.mark.parametrize("encrypted", [False, True])
def test_ack_is_never_encrypted(account, encrypted):
    message = from_fields(parse_fields(text_xml().encode()))
    assert account.codec("safe").encode_reply(Ack(), message, encrypted=encrypted, timestamp=1, nonce="n") == "success"


@pytest.mark.parametrize("encrypted", [False, True])
def test_decode_reply_inverts_encode_reply(account, encrypted):
    codec = account.codec("compat")
    message = from_fields(parse_fields(text_xml().encode()))
    body = codec.encode_reply(TextReply("答复"), message, encrypted=encrypted, timestamp=7, nonce="n")
    assert codec.decode_reply(body)["Content"] == "答复"


# Round trips

xml_text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"))
contents = st.lists(xml_text | st.sampled_from(["]]>", "\n", "\t"]), max_size=4).map("".join)
stamps = st.integers(1, 10**11).map(str)
nonces = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


@pytest.mark.parametrize(
    "mode, encrypted",
    [("plain", False), ("compat", False), ("compat", True), ("safe", True)],
)
@settings(max_examples=40, deadline=None)
@given(content=contents, msg_id=st.integers(1, 2**63 - 1), timestamp=stamps, nonce=nonces)
def test_encode_callback_decode_round_trip(account, mode, encrypted, content, msg_id, timestamp, nonce):
    codec = account.codec(mode, keys=None if mode == "plain" else (account.key, account.old_key))
    query, body = codec.encode_callback(
        text_xml(content, msg_id), timestamp=timestamp, nonce=nonce, encrypted=encrypted, openid="oUser"
    )
    decoded = codec.decode(CallbackQuery.from_mapping(query), body)
    assert decoded.encrypted is encrypted
    assert decoded.key_index == (0 if encrypted else None)
    assert type(decoded.message) is TextMessage
    assert (decoded.message.content, decoded.message.msg_id) == (content, msg_id)
    assert decoded.message.dedupe_key == f"msg:{msg_id}"
    assert query["openid"] == "oUser"


@settings(max_examples=30, deadline=None)
@given(content=contents)
def test_round_trip_after_rotation(account, content):
    sender = account.codec("safe", keys=(account.old_key,))
    receiver = account.codec("safe", keys=(account.key, account.old_key))
    query, body = sender.encode_callback(text_xml(content), timestamp=TIMESTAMP, nonce=NONCE, encrypted=True)
    decoded = receiver.decode(CallbackQuery.from_mapping(query), body)
    assert (decoded.message.content, decoded.key_index) == (content, 1)


# Timestamps: a replay is a correctly signed request with an old timestamp

STALE = int(TIMESTAMP) + 301.0  # `now` 301 s after TIMESTAMP, window 300 s


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_signed_request_with_an_old_timestamp_is_a_replay(account, encrypted):
    codec = account.codec("compat")
    query, body = codec.encode_callback(text_xml(), timestamp=TIMESTAMP, nonce=NONCE, encrypted=encrypted)
    query = CallbackQuery.from_mapping(query)

    assert codec.decode(query, body, now=STALE - 2, window_s=300).message.content == "hello"
    with pytest.raises(TimestampError):
        codec.decode(query, body, now=STALE, window_s=300)
    assert codec.decode(query, body).message.content == "hello", "no `now`: no freshness check"


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_forged_request_with_an_old_timestamp_is_a_forgery_not_a_replay(account, encrypted):
    codec = account.codec("compat")
    query, body = codec.encode_callback(text_xml(), timestamp=TIMESTAMP, nonce=NONCE, encrypted=encrypted)
    forged = CallbackQuery.from_mapping({**query, "signature": "0" * 40, "msg_signature": "0" * 40})

    with pytest.raises(SignatureError) as caught:
        codec.decode(forged, body, now=STALE, window_s=300)
    assert caught.value.reason == "bad_signature"


def test_url_verification_with_an_old_timestamp_is_a_replay(account):
    query = CallbackQuery(timestamp=TIMESTAMP, nonce=NONCE, signature=signature.sign(account.token, TIMESTAMP, NONCE), echostr="42")
    codec = account.codec("plain")

    assert codec.verify_url(query, now=STALE - 2, window_s=300) == "42"
    with pytest.raises(TimestampError):
        codec.verify_url(query, now=STALE, window_s=300)
