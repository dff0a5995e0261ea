"""Shared fixtures of the protocol tests: the reference vectors and a sample account.

Vector fixtures (`vector`, `cipher_vector`, ...) are parametrized by vector name over the
subset of `vectors/wechat-vectors.json` that each one selects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable

import pytest

from app.wechat.callback import CallbackCodec
from app.wechat.errors import AppIdError, CipherError, SignatureError, WeChatError

VECTORS_PATH = Path(__file__).parent / "vectors" / "wechat-vectors.json"

Vector = dict[str, Any]


@cache
def load_vectors() -> tuple[Vector, ...]:
    return tuple(json.loads(VECTORS_PATH.read_text(encoding="utf-8")))


def _positive(vector: Vector) -> bool:
    return not vector.get("negative", False)


VECTOR_SETS: dict[str, Callable[[Vector], bool]] = {
    "vector": lambda v: True,
    "cipher_vector": lambda v: _positive(v) and {"encrypt", "plaintext_msg", "random"} <= v.keys(),
    "xml_request_vector": lambda v: _positive(v)
    and v["kind"] == "decrypt_message"
    and v["plaintext_msg"].startswith("<xml>"),
    "json_request_vector": lambda v: _positive(v)
    and v["kind"] == "decrypt_message"
    and v["plaintext_msg"].startswith("{"),
    "msg_signature_vector": lambda v: _positive(v) and "msg_signature" in v,
    "url_signature_vector": lambda v: _positive(v) and "signature" in v,
    "encrypt_reply_vector": lambda v: _positive(v) and v["kind"] == "encrypt_reply",
    "negative_vector": lambda v: not _positive(v),
    "decryption_negative_vector": lambda v: not _positive(v)
    and REJECTION_CLASSES[v["name"]] in (CipherError, AppIdError),
    "signature_negative_vector": lambda v: not _positive(v) and REJECTION_CLASSES[v["name"]] is SignatureError,
}

REJECTION_CLASSES: dict[str, type[WeChatError]] = {
    "neg_wrong_appid": AppIdError,
    "neg_wrong_msg_signature": SignatureError,
    "neg_truncated_ciphertext_block": CipherError,
    "neg_ciphertext_not_block_multiple": CipherError,
    "neg_bad_padding_zero_byte": CipherError,
    "neg_inconsistent_padding_bytes": CipherError,
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, select in VECTOR_SETS.items():
        if name in metafunc.fixturenames:
            chosen = [v for v in load_vectors() if select(v)]
            metafunc.parametrize(name, chosen, ids=[v["name"] for v in chosen])


@dataclass(frozen=True)
class Rejection:
    """What a negative vector must raise: the class and, where the reference states it, the message."""

    error: type[WeChatError]
    message: str | None


def expected_rejection(vector: Vector) -> Rejection:
    outcome = vector["strict_reference_outcome"]
    message = outcome.removeprefix("rejected: ") if outcome.startswith("rejected: ") else None
    return Rejection(REJECTION_CLASSES[vector["name"]], message)


@pytest.fixture(scope="session")
def rejection_of() -> Callable[[Vector], Rejection]:
    return expected_rejection


def vector_random(vector: Vector) -> Callable[[int], bytes]:
    """The vector's 16-character `random` as the 16 random bytes of an encryption."""

    def random_bytes(n: int) -> bytes:
        assert n == 16
        return vector["random"].encode("ascii")

    return random_bytes


@pytest.fixture(scope="session")
def vectors() -> tuple[Vector, ...]:
    return load_vectors()


@pytest.fixture(scope="session")
def fixed_random() -> Callable[[Vector], Callable[[int], bytes]]:
    return vector_random


@dataclass(frozen=True)
class SampleAccount:
    """An account with a current and a previous EncodingAESKey."""

    token: str = "wxstream-token"
    appid: str = "wx1234567890abcdef"
    key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    old_key: str = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"

    def codec(self, mode: str, *, keys: tuple[str, ...] | None = None, **kwargs: Any) -> CallbackCodec:
        if keys is None:
            keys = () if mode == "plain" else (self.key,)
        return CallbackCodec(token=self.token, appid=self.appid, mode=mode, aes_keys=keys, **kwargs)


@pytest.fixture(scope="session")
def account() -> SampleAccount:
    return SampleAccount()
