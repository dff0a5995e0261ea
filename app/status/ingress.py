"""The ingress's spool depth, read from its `/metrics`: the spool belongs to the ingress,
and that page already has it, so the worker's status page asks rather than duplicates.

With several ingress processes on one port (SO_REUSEPORT), each request reaches one of
them; each process's own `/metrics` is the authority.
"""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from app.status.collect import IngressStatus

__all__ = ("SPOOL_DEPTH", "read_ingress_status", "spool_depth")

SPOOL_DEPTH = "wxstream_ingress_spool_depth"
_TIMEOUT_S = 0.5


def spool_depth(metrics_text: str) -> int | None:
    """The spool depth in a Prometheus text exposition, None when it is not there."""
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == SPOOL_DEPTH:
                return int(sample.value)
    return None


async def read_ingress_status(client: aiohttp.ClientSession, ingress_url: str) -> IngressStatus:
    """Never raises: an ingress that does not answer quickly shows as unknown."""
    try:
        async with client.get(f"{ingress_url}/metrics", timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S)) as response:
            response.raise_for_status()
            depth = spool_depth(await response.text())
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        depth = None
    return IngressStatus(url=ingress_url, spool_depth=depth)
