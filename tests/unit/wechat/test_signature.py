"""Request signatures and the replay window."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wechat import signature
from app.wechat.errors import SignatureError, TimestampError, WeChatError

NOW = 1_714_000_000


def test_url_signature_vectors(url_signature_vector):
    v = url_signature_vector
    assert signature.sign(v["token"], v["timestamp"], v["nonce"]) == v["signature"]
    signature.verify(v["signature"], v["token"], v["timestamp"], v["nonce"])


def test_msg_signature_vectors(msg_signature_vector):
    v = msg_signature_vector
    parts = (v["token"], v["timestamp"], v["nonce"], v["encrypt"])
    assert signature.sign(*parts) == v["msg_signature"]
    signature.verify(v["msg_signature"], *parts)


def test_url_signature_does_not_sign_the_encrypted_body(msg_signature_vector):
    v = msg_signature_vector
    url_signature = signature.sign(v["token"], v["timestamp"], v["nonce"])
    with pytest.raises(SignatureError, match="signature mismatch"):
        signature.verify(url_signature, v["token"], v["timestamp"], v["nonce"], v["encrypt"])


def test_sign_is_sha1_of_sorted_concatenation():
    expected = hashlib.sha1(b"15147114921714036504AAAAA").hexdigest()
    assert signature.sign("AAAAA", "1714036504", "1514711492") == expected


@settings(deadline=None)
@given(st.permutations(["token", "1714036504", "nonce", "Encrypt=="]))
def test_sign_ignores_argument_order(parts):
    assert signature.sign(*parts) == signature.sign("token", "1714036504", "nonce", "Encrypt==")


def test_verify_accepts_uppercase_hex():
    good = signature.sign("t", "1", "n")
    signature.verify(good.upper(), "t", "1", "n")


@pytest.mark.parametrize("missing", [None, ""])
def test_verify_rejects_missing_signature(missing):
    with pytest.raises(SignatureError, match="missing signature"):
        signature.verify(missing, "t", "1", "n")


@pytest.mark.parametrize(
    "forged",
    [
        "0" * 40,
        "deadbeef",
        "x" * 1000,
        "é" * 40,
        "\x00",
    ],
)
def test_verify_rejects_forged_signature(forged):
    with pytest.raises(SignatureError, match="signature mismatch"):
        signature.verify(forged, "t", "1", "n")


def test_verify_rejects_a_signature_of_other_parts():
    with pytest.raises(SignatureError):
        signature.verify(signature.sign("t", "1", "n"), "t", "1", "m")


@settings(max_examples=100, deadline=None)
@given(st.text(), st.text(), st.text(), st.text())
def test_verify_only_raises_signature_errors(sig, token, timestamp, nonce):
    try:
        signature.verify(sig, token, timestamp, nonce)
    except SignatureError:
        pass


@pytest.mark.parametrize("offset", [0, 1, -1, 299, -299, 300, -300])
def test_check_timestamp_inside_window(offset):
    assert signature.check_timestamp(str(NOW + offset), NOW, 300) == NOW + offset


@pytest.mark.parametrize("offset", [301, -301, 86_400, -NOW])
def test_check_timestamp_outside_window(offset):
    with pytest.raises(TimestampError) as caught:
        signature.check_timestamp(str(NOW + offset), NOW, 300)
    assert isinstance(caught.value, SignatureError)
    assert caught.value.reason == "stale_timestamp"


@pytest.mark.parametrize(
    "timestamp",
    [None, "", " ", "abc", "-1", "+1714000000", "1714000000.5", "1e9", " 1714000000", "1714000000\n",
     "1" * 13, "²", "¹²³", "١٧١٤٠٠٠٠٠٠", "１７１４"],
)
def test_check_timestamp_rejects_non_digits(timestamp):
    with pytest.raises(SignatureError) as caught:
        signature.check_timestamp(timestamp, NOW, 300)
    assert type(caught.value) is SignatureError
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize("window", [0, -1])
def test_check_timestamp_window_zero_disables(window):
    assert signature.check_timestamp("1", NOW, window) == 1
    assert signature.check_timestamp("999999999999", NOW, window) == 999_999_999_999


def test_check_timestamp_window_zero_still_requires_digits():
    with pytest.raises(SignatureError):
        signature.check_timestamp("soon", NOW, 0)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=20)), st.floats(0, 2e9), st.floats(-10, 1e6))
def test_check_timestamp_yields_int_or_signature_error(timestamp, now, window):
    try:
        value = signature.check_timestamp(timestamp, now, window)
    except WeChatError as exc:
        assert isinstance(exc, SignatureError)
    else:
        assert isinstance(value, int)
        assert timestamp is not None and timestamp.isascii() and timestamp.isdigit()


def test_negative_vector_signature_is_rejected(signature_negative_vector, rejection_of):
    v = signature_negative_vector
    rejection = rejection_of(v)
    with pytest.raises(rejection.error, match="signature mismatch"):
        signature.verify(v["msg_signature"], v["token"], v["timestamp"], v["nonce"], v["encrypt"])
