"""Bounded fuzzing of the protocol core: any input yields a result or a WeChatError.

Queries are signed where that lets a mutated body reach the parser or the cipher, so
that every stage (signature, envelope, decryption, XML, typed fields) sees hostile input.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import parse_qsl

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.decode import decode_callback
from app.wechat import signature
from app.wechat.callback import MODES, CallbackCodec, CallbackQuery, Decoded
from app.wechat.crypto import Decrypted, MessageCrypto
from app.wechat.errors import WeChatError
from app.wechat.messages import Message, from_fields
from app.wechat.xmlparse import parse_fields
from tests.unit.wechat.mutations import SEEDS, mutated

TOKEN = "fuzz-token"
APPID = "wxfuzz0000000000"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
TIMESTAMP = "1714000000"
NONCE = "1320562132"

CODECS = {
    mode: CallbackCodec(token=TOKEN, appid=APPID, mode=mode, aes_keys=() if mode == "plain" else (KEY, OLD_KEY))
    for mode in MODES
}
CRYPTO = MessageCrypto(APPID, [KEY, OLD_KEY], random_bytes=lambda n: bytes(range(n)))

FIELD_NAMES = ["timestamp", "nonce", "signature", "msg_signature", "encrypt_type", "echostr", "openid"]


mutated_seed = st.sampled_from(SEEDS).flatmap(mutated)
bodies = st.binary(max_size=256) | mutated_seed
query_values = st.sampled_from(["", "aes", "AES", TIMESTAMP, NONCE, "0" * 40]) | st.text(max_size=24)
queries = st.dictionaries(st.sampled_from(FIELD_NAMES), query_values, max_size=len(FIELD_NAMES))

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_LIGHT = settings(FUZZ, max_examples=150)


def decode(mode: str, query: dict[str, str], body: bytes) -> Decoded | WeChatError:
    try:
        decoded = CODECS[mode].decode(CallbackQuery.from_mapping(query), body)
    except WeChatError as error:
        return error
    assert isinstance(decoded, Decoded)
    assert isinstance(decoded.message, Message)
    return decoded


def signed(body_encrypt: str | None = None) -> dict[str, str]:
    query = {"timestamp": TIMESTAMP, "nonce": NONCE, "signature": signature.sign(TOKEN, TIMESTAMP, NONCE)}
    if body_encrypt is not None:
        query["encrypt_type"] = "aes"
        query["msg_signature"] = signature.sign(TOKEN, TIMESTAMP, NONCE, body_encrypt)
    return query


def envelope(encrypt: str) -> bytes:
    return f"<xml><ToUserName><![CDATA[{APPID}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()


@FUZZ
@given(mode=st.sampled_from(MODES), query=queries, body=bodies)
def test_decode_arbitrary_request(mode, query, body):
    decode(mode, query, body)


@FUZZ
@given(mode=st.sampled_from(["plain", "compat"]), body=bodies)
def test_decode_signed_plain_body(mode, body):
    decode(mode, signed(), body)


@FUZZ
@given(mode=st.sampled_from(["compat", "safe"]), plaintext=bodies)
def test_decode_signed_encrypted_payload(mode, plaintext):
    encrypt = CRYPTO.encrypt(plaintext)
    decode(mode, signed(encrypt), envelope(encrypt))


@FUZZ_LIGHT
@given(
    ciphertext=st.sampled_from(SEEDS).map(lambda seed: CRYPTO.encrypt(seed).encode()).flatmap(
        lambda encrypt: mutated(encrypt, [b"=", b"+", b"/", b"A", b"AAAA", b"====", b" ", b"\n", "é".encode()])
    )
)
def test_decode_signed_mutated_ciphertext(ciphertext):
    encrypt = ciphertext.decode("utf-8", "replace")
    result = decode("safe", signed(encrypt), envelope(encrypt))
    if not isinstance(result, WeChatError):
        assert result.encrypted


@FUZZ_LIGHT
@given(body=st.sampled_from(SEEDS).map(lambda seed: envelope(CRYPTO.encrypt(seed))).flatmap(mutated))
def test_decode_mutated_envelope(body):
    try:
        encrypt = parse_fields(body).get("Encrypt")
    except WeChatError:
        encrypt = None
    decode("safe", signed(encrypt or ""), body)


query_strings = st.text(max_size=120) | st.lists(st.sampled_from(FIELD_NAMES)).map(
    lambda names: "&".join(f"{name}=%ff{name}" for name in names)
)


@FUZZ_LIGHT
@given(mode=st.sampled_from(MODES), query=query_strings)
def test_decode_random_query_string(mode, query):
    decode(mode, dict(parse_qsl(query, keep_blank_values=True)), SEEDS[0])


@FUZZ_LIGHT
@given(query=query_strings, body=bodies, keyed=st.booleans(), window=st.sampled_from([0, 300]))
def test_decode_command_never_raises(query, body, keyed, window):
    out, err = io.StringIO(), io.StringIO()
    rc = decode_callback(
        token=TOKEN,
        appid=APPID,
        aes_keys=[KEY] if keyed else [],
        query=query,
        body=body,
        window_s=window,
        out=out,
        err=err,
    )
    assert (rc, bool(out.getvalue()), err.getvalue().startswith("rejected: ")) in ((0, True, False), (1, False, True))


ciphertexts = (
    st.text(max_size=120)
    | st.binary(max_size=160).map(lambda raw: base64.b64encode(raw).decode("ascii"))
    | st.sampled_from(SEEDS).map(lambda seed: CRYPTO.encrypt(seed).encode()).flatmap(mutated).map(
        lambda raw: raw.decode("latin-1")
    )
)


@FUZZ_LIGHT
@given(encrypted=ciphertexts)
def test_decrypt_arbitrary_ciphertext(encrypted):
    try:
        opened = CRYPTO.decrypt(encrypted)
    except WeChatError:
        return
    assert isinstance(opened, Decrypted)
    assert opened.key_index in (0, 1)


@settings(FUZZ, max_examples=200)
@given(body=bodies, max_depth=st.integers(1, 8))
def test_parse_fields_and_from_fields(body, max_depth):
    try:
        fields = parse_fields(body, max_depth=max_depth)
        message = from_fields(fields)
    except WeChatError:
        return
    assert isinstance(message, Message)
