"""HTTP/1.1 requests written byte by byte, so that hostile and fuzzed requests can be
anything at all: methods, targets and headers an HTTP client library would refuse to
send, short Content-Lengths, chunked bodies. One request per connection."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlencode

__all__ = ("RawRequest", "RawResponse", "send_raw", "target")

CHUNK = 8192  # bytes per chunk of a chunked body


@dataclass(frozen=True)
class RawRequest:
    method: str
    target: str  # path and query string, as written on the request line
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    chunked: bool = False  # send the body with Transfer-Encoding: chunked, no Content-Length

    def encode(self, host: str) -> tuple[bytes, bytes]:
        """The request's head (request line and headers) and its body, as sent."""
        names = {name.lower() for name, _ in self.headers}
        head = [f"{self.method} {self.target} HTTP/1.1", f"Host: {host}", "Connection: close"]
        head += [f"{name}: {value}" for name, value in self.headers]
        body = self.body
        if self.chunked:
            head.append("Transfer-Encoding: chunked")
            chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
            body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
        elif "content-length" not in names and (body or self.method == "POST"):
            head.append(f"Content-Length: {len(body)}")
        return "\r\n".join(head).encode("utf-8", "surrogateescape") + b"\r\n\r\n", body


@dataclass(frozen=True)
class RawResponse:
    status: int | None  # None: the connection closed or timed out without a status line
    body: bytes = b""
    error: str = ""


def target(path: str, query: dict[str, str] | None = None) -> str:
    return f"{path}?{urlencode(query)}" if query else path


async def send_raw(host: str, port: int, request: RawRequest, timeout_s: float) -> RawResponse:
    """Send `request` on a new connection and read the answer until the server closes.

    The body is written while the answer is read: a server may answer (413) and close
    before it has read a large body, which resets the connection; what arrived first is
    kept."""
    head, body = request.encode(f"{host}:{port}")
    answer = bytearray()
    writer = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(head)
            sending = asyncio.create_task(_write(writer, body))
            try:
                while chunk := await reader.read(65536):
                    answer += chunk
            except ConnectionError:
                if not answer:
                    raise
            finally:
                sending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sending
    except TimeoutError:
        return RawResponse(None, bytes(answer), error=f"no answer within {timeout_s:g}s")
    except OSError as exc:
        return RawResponse(None, error=f"{type(exc).__name__}: {exc}")
    finally:
        if writer is not None:
            writer.close()
    return _parse(bytes(answer))


async def _write(writer: asyncio.StreamWriter, body: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        writer.write(body)
        await writer.drain()


def _parse(answer: bytes) -> RawResponse:
    """The final response: interim ones (100 Continue) are skipped."""
    rest = answer
    while True:
        head, _, body = rest.partition(b"\r\n\r\n")
        parts = head.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            return RawResponse(None, answer, error="no status line" if answer else "closed without an answer")
        status = int(parts[1])
        if not 100 <= status < 200:
            return RawResponse(status, body)
        rest = body
