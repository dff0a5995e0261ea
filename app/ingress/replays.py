"""One body per signed query, for the callbacks whose body nobody signs.

In plain mode (and for plaintext callbacks of compat accounts) WeChat's `signature` covers
the token, timestamp and nonce only. Anyone who sees one callback's URL (an access log, a
proxy) could send any body with it until the timestamp leaves the accepted window. The
ingress remembers, for that window, a digest of the body each signed query came with:
the same query again with the same body is WeChat retrying, and goes on; with another body
it is a forgery, and is rejected. Encrypted callbacks need none of this: `msg_signature`
covers their body.

The memory is per process: with several ingress processes behind one port a forger may
reach another one; safe mode closes the hole everywhere.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Callable

__all__ = ("ReplayGuard",)

MAX_ENTRIES = 500_000  # about 100 MB at most; past it the oldest queries are forgotten first


class ReplayGuard:
    def __init__(self, window_s: float, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()  # in time order

    def admits(self, account: str, signature: str, body: bytes) -> bool:
        """False when this signed query already came with another body."""
        now = self._clock()
        self._forget_before(now - self._window_s)
        key = (account, signature.lower())
        digest = hashlib.blake2b(body, digest_size=16).digest()
        seen = self._seen.get(key)
        if seen is not None:
            return seen[1] == digest
        self._seen[key] = (now, digest)
        if len(self._seen) > self._max_entries:
            self._seen.popitem(last=False)
        return True

    def _forget_before(self, horizon: float) -> None:
        while self._seen:
            key, (at, _) = next(iter(self._seen.items()))
            if at >= horizon:
                return
            del self._seen[key]
