"""AES message crypto: reference vectors both ways, strict rejection, key rotation."""

from __future__ import annotations

import base64
import binascii
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest
from Crypto.Cipher import AES
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.wechat.crypto import AESKey, CBCEncryptor, Decrypted, MessageCrypto
from app.wechat.errors import AESKeyError, AppIdError, CipherError, WeChatError

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
OTHER_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
APPID = "wx1234567890abcdef"

aes_keys = st.binary(min_size=32, max_size=32).map(lambda raw: base64.b64encode(raw).decode("ascii")[:-1])
appids = st.text(min_size=1, max_size=40)


def crypto_for(vector, appid=None, random_bytes=None):
    kwargs = {"random_bytes": random_bytes} if random_bytes else {}
    return MessageCrypto(appid or vector["appid"], [vector["encoding_aes_key"]], **kwargs)


def raw_encrypt(key: str, plaintext: bytes) -> str:
    aes = AESKey.from_encoding_aes_key(key)
    return base64.b64encode(AES.new(aes.key, AES.MODE_CBC, aes.key[:16]).encrypt(plaintext)).decode("ascii")


def test_vector_decrypts_to_plaintext(cipher_vector):
    opened = crypto_for(cipher_vector).decrypt(cipher_vector["encrypt"])
    assert opened == Decrypted(cipher_vector["plaintext_msg"].encode("utf-8"), 0)


def test_vector_encrypts_byte_exactly(cipher_vector, fixed_random):
    crypto = crypto_for(cipher_vector, random_bytes=fixed_random(cipher_vector))
    assert crypto.encrypt(cipher_vector["plaintext_msg"].encode("utf-8")) == cipher_vector["encrypt"]


def test_negative_vector_is_rejected(decryption_negative_vector, rejection_of):
    rejection = rejection_of(decryption_negative_vector)
    with pytest.raises(rejection.error) as caught:
        crypto_for(decryption_negative_vector).decrypt(decryption_negative_vector["encrypt"])
    assert type(caught.value) is rejection.error
    if rejection.message is not None:
        assert caught.value.message == rejection.message
        assert str(caught.value) == rejection.message


def test_inconsistent_padding_is_not_accepted_leniently(vectors):
    (vector,) = [v for v in vectors if v["name"] == "neg_inconsistent_padding_bytes"]
    with pytest.raises(CipherError):
        crypto_for(vector).decrypt(vector["encrypt"])


def test_aes_key_decodes_to_32_bytes():
    assert AESKey.from_encoding_aes_key(OTHER_KEY).key == bytes(32)
    assert len(AESKey.from_encoding_aes_key(KEY).key) == 32


@pytest.mark.parametrize(
    "bad_key",
    [
        "",
        "A" * 42,
        "A" * 44,
        "A" * 42 + "!",
        "A" * 42 + "é",
        "A" * 41 + " A",
        "A" * 42 + "=",
        "A" * 41 + "==",
        "A" * 40 + "===",
    ],
)
def test_bad_encoding_aes_key(bad_key):
    with pytest.raises(AESKeyError):
        AESKey.from_encoding_aes_key(bad_key)
    with pytest.raises(AESKeyError):
        MessageCrypto(APPID, [KEY, bad_key])


def test_at_least_one_key_required():
    with pytest.raises(AESKeyError):
        MessageCrypto(APPID, [])


def test_layout_of_encrypted_payload():
    calls = []

    def random_bytes(n):
        calls.append(n)
        return b"R" * n

    encrypted = MessageCrypto(APPID, [KEY], random_bytes).encrypt(b"hello")
    aes = AESKey.from_encoding_aes_key(KEY)
    plain = AES.new(aes.key, AES.MODE_CBC, aes.key[:16]).decrypt(base64.b64decode(encrypted))
    body = b"R" * 16 + struct.pack(">I", 5) + b"hello" + APPID.encode()
    pad = 32 - len(body) % 32
    assert calls == [16]
    assert plain == body + bytes([pad]) * pad
    assert len(plain) % 32 == 0


def test_full_block_of_padding_when_aligned():
    appid = "x" * (64 - 16 - 4 - 12)
    encrypted = MessageCrypto(appid, [KEY], lambda n: bytes(n)).encrypt(b"m" * 12)
    assert len(base64.b64decode(encrypted)) == 96
    assert MessageCrypto(appid, [KEY]).decrypt(encrypted).message == b"m" * 12


@settings(max_examples=100, deadline=None)
@given(text=st.text(), appid=appids, key=aes_keys)
def test_round_trip_any_text(text, appid, key):
    crypto = MessageCrypto(appid, [key])
    message = text.encode("utf-8")
    assert crypto.decrypt(crypto.encrypt(message)) == Decrypted(message, 0)


@pytest.mark.parametrize("text", ["", "中文", "😀🎉👍🏽", "\U0001f9d1\u200d\U0001f4bb", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\U0010ffff", "]]>&<"])
def test_round_trip_multibyte_utf8(text):
    crypto = MessageCrypto("wx中文😀", [KEY])
    assert crypto.decrypt(crypto.encrypt(text.encode("utf-8"))).message.decode("utf-8") == text


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=300), new=aes_keys, old=aes_keys)
def test_rotation_previous_key_opens_with_index_1(message, new, old):
    assume(new != old)
    encrypted = MessageCrypto(APPID, [old]).encrypt(message)
    assert MessageCrypto(APPID, [new, old]).decrypt(encrypted) == Decrypted(message, 1)
    assert MessageCrypto(APPID, [old, new]).decrypt(encrypted) == Decrypted(message, 0)


@settings(max_examples=50, deadline=None)
@given(message=st.binary(max_size=300), stranger=aes_keys)
def test_rotation_unknown_key_fails(message, stranger):
    assume(stranger not in (KEY, OLD_KEY))
    encrypted = MessageCrypto(APPID, [stranger]).encrypt(message)
    with pytest.raises((CipherError, AppIdError)):
        MessageCrypto(APPID, [KEY, OLD_KEY]).decrypt(encrypted)


def test_rotation_reports_error_of_current_key():
    encrypted = MessageCrypto("someone-else", [KEY]).encrypt(b"hi")
    with pytest.raises(AppIdError, match="appid mismatch: 'someone-else'"):
        MessageCrypto(APPID, [KEY, OLD_KEY]).decrypt(encrypted)


def test_wrong_appid_is_rejected():
    encrypted = MessageCrypto("wxaaaaaaaaaaaaaaaa", [KEY]).encrypt(b"hi")
    with pytest.raises(AppIdError) as caught:
        MessageCrypto("wxbbbbbbbbbbbbbbbb", [KEY]).decrypt(encrypted)
    assert caught.value.message == "appid mismatch: 'wxaaaaaaaaaaaaaaaa' != 'wxbbbbbbbbbbbbbbbb'"


def test_appid_prefix_is_not_enough():
    encrypted = MessageCrypto(APPID + "x", [KEY]).encrypt(b"hi")
    with pytest.raises(AppIdError):
        MessageCrypto(APPID, [KEY]).decrypt(encrypted)


@pytest.mark.parametrize(
    "encrypted, message",
    [
        ("", "ciphertext length 0 not a multiple of 16"),
        ("QUJD", "ciphertext length 3 not a multiple of 16"),
        ("not base64!", "ciphertext is not base64"),
        ("QUJD\nREVG", "ciphertext is not base64"),
        ("QUJ", "ciphertext is not base64"),
        ("密文", "ciphertext is not base64"),
    ],
)
def test_malformed_ciphertext(encrypted, message):
    with pytest.raises(CipherError, match=message):
        MessageCrypto(APPID, [KEY]).decrypt(encrypted)


@pytest.mark.parametrize(
    "plaintext, message",
    [
        (b"\x00" * 32, "bad padding byte 0"),
        (b"\x00" * 31 + b"\x21", "bad padding byte 33"),
        (b"\x00" * 16 + b"\x11" * 16, "bad padding byte 17"),
        (b"\x00" * 30 + b"\x01\x02", "bad padding byte 2"),
        (b"\x00" * 16 + b"\x10" * 16, "payload too short"),
        (b"\x00" * 16, "no payload after the 16-byte random prefix"),
        (b"R" * 16 + b"\x00\x00\x00\x09" + b"abc" + b"\x09" * 9, "declared length 9 exceeds payload of 3 bytes"),
        (b"R" * 16 + b"\xff\xff\xff\xff" + b"\x0c" * 12, "declared length 4294967295"),
    ],
)
def test_strict_decryption_names_the_defect(plaintext, message):
    with pytest.raises(CipherError, match=message):
        MessageCrypto(APPID, [KEY]).decrypt(raw_encrypt(KEY, plaintext))


def fresh_cbc_encrypt(key: bytes, plain: bytes) -> bytes:
    return AES.new(key, AES.MODE_CBC, key[:16]).encrypt(plain)


blocks = st.integers(1, 20).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n))


@settings(max_examples=60, deadline=None)
@given(key=st.binary(min_size=32, max_size=32), plains=st.lists(blocks, min_size=1, max_size=6))
def test_one_encryptor_encrypts_each_message_as_a_fresh_cipher(key, plains):
    encryptor = CBCEncryptor(key, key[:16])
    assert [encryptor.encrypt(p) for p in plains] == [fresh_cbc_encrypt(key, p) for p in plains]


def test_encryptor_shared_by_threads():
    key = AESKey.from_encoding_aes_key(KEY).key
    encryptor = CBCEncryptor(key, key[:16])
    plains = [bytes([i % 256]) * (16 * (1 + i % 30)) for i in range(400)]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(encryptor.encrypt, plains)) == [fresh_cbc_encrypt(key, p) for p in plains]


@settings(max_examples=60, deadline=None)
@given(message=st.binary(max_size=300), random=st.binary(min_size=16, max_size=16))
def test_decryption_reads_what_a_fresh_cipher_decrypts(message, random):
    encrypted = MessageCrypto(APPID, [KEY], lambda n: random).encrypt(message)
    key = AESKey.from_encoding_aes_key(KEY).key
    plain = AES.new(key, AES.MODE_CBC, key[:16]).decrypt(base64.b64decode(encrypted))
    assert plain[:16] == random
    assert MessageCrypto(APPID, [KEY]).decrypt(encrypted).message == plain[20 : 20 + len(message)] == message


def strictly_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    encrypted=st.text(st.sampled_from("QUJDRA+/=\n é"), max_size=12)
    | st.binary(max_size=40).map(lambda raw: base64.b64encode(raw).decode("ascii")).flatmap(
        lambda text: st.sampled_from([text, text + "=", text.rstrip("="), text + "QQ==", " " + text, text[1:]])
    )
)
def test_base64_is_checked_as_strictly_as_b64decode_validate(encrypted):
    try:
        MessageCrypto(APPID, [KEY]).decrypt(encrypted)
    except CipherError as exc:
        refused_as_base64 = "not base64" in exc.message
    except AppIdError:
        refused_as_base64 = False
    else:
        refused_as_base64 = False
    assert refused_as_base64 is not strictly_base64(encrypted)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=16, max_size=256).map(lambda b: b[: len(b) - len(b) % 16]))
def test_random_ciphertext_is_rejected_cleanly(data):
    try:
        result = MessageCrypto(APPID, [KEY, OLD_KEY]).decrypt(base64.b64encode(data).decode("ascii"))
    except WeChatError as exc:
        assert isinstance(exc, (CipherError, AppIdError))
    else:
        assert isinstance(result, Decrypted)


def test_vector_file_is_complete(vectors):
    assert len(vectors) == 16
    assert len({v["name"] for v in vectors}) == 16
    assert {v["kind"] for v in vectors} == {
        "decrypt_message",
        "decrypt_payload",
        "encrypt_reply",
        "plain_signature",
        "verify_url_encrypted_echostr",
    }
    assert all(v["strict_reference_outcome"] for v in vectors if v.get("negative"))


def test_a_keys_repr_does_not_show_the_key():
    key = AESKey.from_encoding_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    assert key.key.hex() not in repr(key) and str(key.key) not in repr(key)
