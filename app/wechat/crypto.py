"""AES message crypto of WeChat's compat and safe modes.

AES-256-CBC, key = base64(EncodingAESKey + "="), IV = key[:16]. The plaintext is
`16 random bytes | 4-byte big-endian length | message | appid`, padded PKCS#7 to a
multiple of 32 bytes. Decryption is strict: base64, block alignment, every padding
byte, the declared length and the trailing appid are all checked, and each failure
names what was wrong. Operators rotate keys in WeChat's console, so an account holds
the current key and optionally the previous ones; decryption tries them in order.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import struct
from dataclasses import dataclass
from typing import Callable, Sequence

from Crypto.Cipher import AES

from app.wechat.errors import AESKeyError, AppIdError, CipherError, WeChatError

__all__ = ("AESKey", "MessageCrypto", "Decrypted")

PAD_BLOCK = 32
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class AESKey:
    """A decoded EncodingAESKey (32 bytes); the IV is its first 16 bytes."""

    key: bytes

    @classmethod
    def from_encoding_aes_key(cls, encoding_aes_key: str) -> "AESKey":
        if len(encoding_aes_key) != 43:
            raise AESKeyError(f"EncodingAESKey must be 43 characters, got {len(encoding_aes_key)}")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AESKeyError(f"EncodingAESKey is not base64: {exc}") from None
        if len(key) != 32:
            raise AESKeyError(f"EncodingAESKey must decode to 32 bytes, got {len(key)}")
        return cls(key)

    def cipher(self):
        return AES.new(self.key, AES.MODE_CBC, self.key[:16])


@dataclass(frozen=True, slots=True)
class Decrypted:
    """A decrypted payload and which configured key opened it (0 = current)."""

    message: bytes
    key_index: int


class MessageCrypto:
    """Encrypts and decrypts payloads for one appid with its current and previous keys."""

    def __init__(
        self,
        appid: str,
        encoding_aes_keys: Sequence[str],
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not encoding_aes_keys:
            raise AESKeyError("at least one EncodingAESKey is required")
        self.appid = appid
        self._appid_bytes = appid.encode("utf-8")
        self.keys = tuple(AESKey.from_encoding_aes_key(k) for k in encoding_aes_keys)
        # A CBC cipher object is stateful (single use); an ECB one is not, so it is built once.
        self._ecb = tuple(AES.new(k.key, AES.MODE_ECB) for k in self.keys)
        self._random_bytes = random_bytes

    def encrypt(self, message: bytes) -> str:
        """Encrypt with the current key; returns the base64 `Encrypt` value."""
        body = self._random_bytes(16) + _LENGTH.pack(len(message)) + message + self._appid_bytes
        pad = PAD_BLOCK - len(body) % PAD_BLOCK
        body += bytes((pad,)) * pad
        return base64.b64encode(self.keys[0].cipher().encrypt(body)).decode("ascii")

    def decrypt(self, encrypted: str) -> Decrypted:
        """Decrypt with the first key that yields a valid payload for our appid.

        When every key fails, the error of the current key is raised: that is the one an
        operator needs to see unless a rotation is in progress.
        """
        ciphertext = _decode_ciphertext(encrypted)
        first_error: WeChatError | None = None
        for index, key in enumerate(self.keys):
            try:
                return Decrypted(self._open(key, self._ecb[index], ciphertext), index)
            except (CipherError, AppIdError) as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def _open(self, key: AESKey, ecb, ciphertext: bytes) -> bytes:
        plain = _cbc_decrypt(ecb, key.key[:16], ciphertext)
        content = plain[16 : len(plain) - _padding_length(plain)]
        if len(content) < 4:
            raise CipherError("payload too short for its length prefix")
        length = int.from_bytes(content[:4], "big")
        if length > len(content) - 4:
            raise CipherError(f"declared length {length} exceeds payload of {len(content) - 4} bytes")
        appid = content[4 + length :]
        if not hmac.compare_digest(appid, self._appid_bytes):
            raise AppIdError(f"appid mismatch: {appid.decode('utf-8', 'replace')!r} != {self.appid!r}")
        return content[4 : 4 + length]


def _decode_ciphertext(encrypted: str) -> bytes:
    try:
        data = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CipherError(f"ciphertext is not base64: {exc}") from None
    if not data or len(data) % AES.block_size:
        raise CipherError(f"ciphertext length {len(data)} not a multiple of {AES.block_size}")
    return data


def _cbc_decrypt(ecb, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-CBC decryption: each ECB-decrypted block XOR the previous ciphertext block (the IV
    for the first). Equal to `AES.new(key, MODE_CBC, iv).decrypt`, without building a cipher
    per message."""
    mixed = int.from_bytes(ecb.decrypt(ciphertext), "big") ^ int.from_bytes(iv + ciphertext[:-16], "big")
    return mixed.to_bytes(len(ciphertext), "big")


def _padding_length(plain: bytes) -> int:
    pad = plain[-1]
    if not 1 <= pad <= PAD_BLOCK or pad > len(plain) - 16 or plain[-pad:] != bytes((pad,)) * pad:
        raise CipherError(f"bad padding byte {pad}")
    return pad
