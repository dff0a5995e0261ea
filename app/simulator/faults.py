"""Injected failures and delays per API endpoint, to exercise a client's error paths.

An explicit queue of errcodes is answered first, one per request, in order; then each
request fails with `probability`. Delays apply to every request of the endpoint, failed
or not. Injected errcodes touch no state: no token is issued, no message delivered.

Transport faults break the HTTP exchange instead, each for one request, in the order
queued: `http_502` answers 502 before the request has any effect (a gateway failing);
`not_json` and `drop` let the request take effect (the message is delivered), then
answer an HTML page, or close the connection without an answer. A client cannot tell
whether such a request had its effect, which is what these test.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

__all__ = ("ENDPOINTS", "TRANSPORT_FAULTS", "Fault", "FaultPlan")

ENDPOINTS = ("token", "stable_token", "custom_send", "typing")
TRANSPORT_FAULTS = ("http_502", "not_json", "drop")


@dataclass
class Fault:
    """The failure settings of one endpoint."""

    queue: deque[int] = field(default_factory=deque)
    transport: deque[str] = field(default_factory=deque)  # of TRANSPORT_FAULTS
    probability: float = 0.0
    errcode: int = -1  # answered with `probability`
    latency_s: float = 0.0


@dataclass
class FaultPlan:
    seed: int | None = None
    faults: dict[str, Fault] = field(default_factory=lambda: {name: Fault() for name in ENDPOINTS})
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def fault(self, endpoint: str) -> Fault:
        if endpoint not in self.faults:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        return self.faults[endpoint]

    def enqueue(self, endpoint: str, *errcodes: int) -> None:
        """The next requests to `endpoint` fail with these errcodes, in order."""
        self.fault(endpoint).queue.extend(errcodes)

    def set(
        self,
        endpoint: str,
        *,
        probability: float | None = None,
        errcode: int | None = None,
        latency_s: float | None = None,
    ) -> None:
        fault = self.fault(endpoint)
        if probability is not None:
            if not 0.0 <= probability <= 1.0:
                raise ValueError("probability must be within 0..1")
            fault.probability = probability
        if errcode is not None:
            fault.errcode = errcode
        if latency_s is not None:
            if latency_s < 0:
                raise ValueError("latency_s must be >= 0")
            fault.latency_s = latency_s

    def break_transport(self, endpoint: str, *kinds: str) -> None:
        """The next requests to `endpoint` meet these transport faults, in order."""
        unknown = [kind for kind in kinds if kind not in TRANSPORT_FAULTS]
        if unknown:
            raise ValueError(f"unknown transport faults {unknown}; known: {', '.join(TRANSPORT_FAULTS)}")
        self.fault(endpoint).transport.extend(kinds)

    def draw_transport(self, endpoint: str) -> str | None:
        """The transport fault this request meets, or None."""
        queue = self.fault(endpoint).transport
        return queue.popleft() if queue else None

    def draw(self, endpoint: str) -> int | None:
        """The errcode to fail this request with, or None to serve it."""
        fault = self.fault(endpoint)
        if fault.queue:
            return fault.queue.popleft()
        if fault.probability and self._random.random() < fault.probability:
            return fault.errcode
        return None

    def latency(self, endpoint: str) -> float:
        return self.fault(endpoint).latency_s

    def clear(self) -> None:
        self.faults = {name: Fault() for name in ENDPOINTS}
