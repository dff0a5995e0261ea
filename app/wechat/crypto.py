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
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

from Crypto.Cipher import AES

from app.wechat.errors import AESKeyError, AppIdError, CipherError, WeChatError

__all__ = ("AESKey", "CBCEncryptor", "MessageCrypto", "Decrypted")

PAD_BLOCK = 32
_PADDINGS = tuple(bytes((n,)) * n for n in range(PAD_BLOCK + 1))
_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class AESKey:
    """A decoded EncodingAESKey (32 bytes); the IV is its first 16 bytes."""

    key: bytes = field(repr=False)  # a secret: never in a log line

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


class CBCEncryptor:
    """AES-CBC encryption of whole messages under one key and IV, with one cipher object.

    Building a cipher (`AES.new`) costs more than encrypting a message with it. A CBC
    cipher carries on from its last ciphertext block instead of the IV, so each message's
    first block is XOR-ed with that block and the IV: every message comes out exactly as
    a new `AES.new(key, MODE_CBC, iv)` would encrypt it. The lock keeps the chaining
    block and the cipher in step across threads.
    """

    def __init__(self, key: bytes, iv: bytes) -> None:
        self._cipher = AES.new(key, AES.MODE_CBC, iv)
        self._iv = self._chain = int.from_bytes(iv, "big")
        self._lock = threading.Lock()

    def encrypt(self, plain: bytes) -> bytes:
        with self._lock:
            first = int.from_bytes(plain[:16], "big") ^ self._iv ^ self._chain
            out = self._cipher.encrypt(first.to_bytes(16, "big") + plain[16:])
            self._chain = int.from_bytes(out[-16:], "big")
        return out


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
        # Ciphers are built once per key: decryption needs no IV past the first block (see
        # `_cbc_decrypt_after_first_block`), so a stateless ECB cipher serves every message.
        self._ecb = tuple(AES.new(k.key, AES.MODE_ECB) for k in self.keys)
        self._encryptor = CBCEncryptor(self.keys[0].key, self.keys[0].key[:16])
        self._random_bytes = random_bytes

    def encrypt(self, message: bytes) -> str:
        """Encrypt with the current key; returns the base64 `Encrypt` value."""
        body = self._random_bytes(16) + _LENGTH.pack(len(message)) + message + self._appid_bytes
        pad = PAD_BLOCK - len(body) % PAD_BLOCK
        body += bytes((pad,)) * pad
        return base64.b64encode(self._encryptor.encrypt(body)).decode("ascii")

    def decrypt(self, encrypted: str) -> Decrypted:
        """Decrypt with the first key that yields a valid payload for our appid.

        When every key fails, the error of the current key is raised: that is the one an
        operator needs to see unless a rotation is in progress.
        """
        ciphertext = _decode_ciphertext(encrypted)
        first_error: WeChatError | None = None
        for index, ecb in enumerate(self._ecb):
            try:
                return Decrypted(self._open(ecb, ciphertext), index)
            except (CipherError, AppIdError) as exc:
                first_error = first_error or exc
        assert first_error is not None
        raise first_error

    def _open(self, ecb, ciphertext: bytes) -> bytes:
        payload = _cbc_decrypt_after_first_block(ecb, ciphertext)  # the random prefix is not read
        end = len(payload) - _padding_length(payload)
        if end < 4:
            raise CipherError("payload too short for its length prefix")
        (length,) = _LENGTH.unpack_from(payload)
        if length > end - 4:
            raise CipherError(f"declared length {length} exceeds payload of {end - 4} bytes")
        appid = payload[4 + length : end]
        if not hmac.compare_digest(appid, self._appid_bytes):
            raise AppIdError(f"appid mismatch: {appid.decode('utf-8', 'replace')!r} != {self.appid!r}")
        return payload[4 : 4 + length]


def _decode_ciphertext(encrypted: str) -> bytes:
    """Strict base64 (alphabet, padding, nothing after it) of whole AES blocks."""
    try:
        data = binascii.a2b_base64(encrypted, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise CipherError(f"ciphertext is not base64: {exc}") from None
    if not data or len(data) % AES.block_size:
        raise CipherError(f"ciphertext length {len(data)} not a multiple of {AES.block_size}")
    return data


def _cbc_decrypt_after_first_block(ecb, ciphertext: bytes) -> bytes:
    """AES-CBC decryption of all but the first block: each ECB-decrypted block XOR the
    ciphertext block before it. Equal to `AES.new(key, MODE_CBC, iv).decrypt(ciphertext)[16:]`
    without building a cipher per message; the first block, the only one that needs the IV,
    holds the random prefix."""
    mixed = int.from_bytes(ecb.decrypt(ciphertext)[16:], "big") ^ int.from_bytes(ciphertext[:-16], "big")
    return mixed.to_bytes(len(ciphertext) - 16, "big")


def _padding_length(payload: bytes) -> int:
    """PKCS#7 over 32-byte blocks: the last byte n in 1..32, and the last n bytes all n."""
    if not payload:
        raise CipherError("no payload after the 16-byte random prefix")
    pad = payload[-1]
    if not 1 <= pad <= PAD_BLOCK or not payload.endswith(_PADDINGS[pad]):
        raise CipherError(f"bad padding byte {pad}")
    return pad
