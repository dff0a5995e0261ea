"""The ingress benchmark's HTTP client: the requests it writes and how it reads answers."""

from __future__ import annotations

import pytest

from bench.load import HttpError, http_request, take_answer

SUCCESS = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 7\r\n\r\nsuccess"


def test_a_request_is_a_post_with_its_length():
    data = http_request("127.0.0.1:8080", "/wechat/bench?nonce=1", b"<xml/>")

    assert data == (
        b"POST /wechat/bench?nonce=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: text/xml\r\n"
        b"Content-Length: 6\r\n\r\n<xml/>"
    )


def test_an_answer_is_taken_once_whole_and_what_follows_stays():
    buffer = bytearray()
    for byte in SUCCESS[:-1]:
        buffer.append(byte)
        assert take_answer(buffer) is None
    buffer += SUCCESS[-1:] + SUCCESS[:10]

    assert take_answer(buffer) == (200, b"success", True)
    assert buffer == SUCCESS[:10]


def test_status_and_connection_close_are_read():
    buffer = bytearray(b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nContent-Length: 12\r\n\r\nunavailable\n")

    assert take_answer(buffer) == (503, b"unavailable\n", False)
    assert buffer == b""


@pytest.mark.parametrize(
    "answer, problem",
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nsuccess\r\n0\r\n\r\n", "without Content-Length"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "bad status line"),
    ],
)
def test_answers_the_client_cannot_read_are_errors(answer, problem):
    with pytest.raises(HttpError, match=problem):
        take_answer(bytearray(answer))
