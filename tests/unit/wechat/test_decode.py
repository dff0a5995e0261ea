"""`wxstream decode`: one JSON line for a valid callback, the exact reason for a rejected one."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import urlencode

import pytest

from app.decode import decode_callback
from app.wechat import signature
from app.wechat.callback import CallbackCodec
from app.wechat.xmlparse import render_fields

TOKEN = "wxstream-token"
APPID = "wx1234567890abcdef"
KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"

FIELDS = {
    "ToUserName": "gh_account",
    "FromUserName": "oUser",
    "CreateTime": "1714000000",
    "MsgType": "text",
    "Content": "你好 \"quoted\" ]]>",
    "MsgId": "1234567890123456",
}


def run(query: str, body: bytes, *, aes_keys=(), window_s: float = 0) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = decode_callback(
        token=TOKEN, appid=APPID, aes_keys=list(aes_keys), query=query, body=body, window_s=window_s, out=out, err=err
    )
    return rc, out.getvalue(), err.getvalue()


def callback(*, encrypted: bool, keys=(KEY,), timestamp: str = "1714000000", fields=FIELDS) -> tuple[str, bytes]:
    codec = CallbackCodec(token=TOKEN, appid=APPID, mode="compat" if keys else "plain", aes_keys=keys)
    query, body = codec.encode_callback(render_fields(fields), timestamp=timestamp, nonce="42", encrypted=encrypted)
    return urlencode(query), body


@pytest.mark.parametrize("encrypted, aes_keys", [(False, ()), (False, (KEY,)), (True, (KEY,))])
def test_success_prints_one_json_line(encrypted, aes_keys):
    query, body = callback(encrypted=encrypted, keys=aes_keys)
    rc, out, err = run(query, body, aes_keys=aes_keys)
    assert rc == 0
    assert err == ""
    assert out.endswith("\n") and out.count("\n") == 1
    assert json.loads(out) == {**FIELDS, "dedupe_key": "msg:1234567890123456"}
    assert "你好" in out


def test_success_for_an_event():
    fields = {"ToUserName": "gh", "FromUserName": "oUser", "CreateTime": "1714000000", "MsgType": "event",
              "Event": "subscribe", "EventKey": "qrscene_7"}
    query, body = callback(encrypted=False, keys=(), fields=fields)
    rc, out, _ = run(query, body)
    assert rc == 0
    assert json.loads(out) == {**fields, "dedupe_key": "evt:oUser:1714000000:subscribe:qrscene_7"}


def test_query_may_start_with_question_mark():
    query, body = callback(encrypted=False, keys=())
    assert run("?" + query, body)[0] == 0


def test_previous_key_is_noted():
    query, body = callback(encrypted=True, keys=(OLD_KEY,))
    rc, out, err = run(query, body, aes_keys=(KEY, OLD_KEY))
    assert rc == 0
    assert json.loads(out)["Content"] == FIELDS["Content"]
    assert err == "note: opened with previous key #1\n"


def test_inside_window():
    now = str(int(time.time()))
    query, body = callback(encrypted=False, keys=(), timestamp=now)
    assert run(query, body, window_s=300)[0] == 0


def rejected(query: str, body: bytes, **kwargs) -> str:
    rc, out, err = run(query, body, **kwargs)
    assert rc == 1
    assert out == ""
    assert err.startswith("rejected: ")
    assert err.count("\n") == 1
    return err


def test_forged_signature():
    query, body = callback(encrypted=False, keys=())
    err = rejected(query.replace("signature=", "signature=0"), body)
    assert err == "rejected: bad_signature (errcode -40001): signature mismatch\n"


def test_missing_signature():
    assert rejected("timestamp=1&nonce=2", b"<xml/>") == "rejected: bad_signature (errcode -40001): missing signature\n"


def test_stale_timestamp():
    query, body = callback(encrypted=False, keys=(), timestamp="1000000000")
    assert rejected(query, body, window_s=300).startswith("rejected: stale_timestamp (errcode -40001): timestamp ")


@pytest.mark.parametrize("timestamp", ["", "abc", "²"])
def test_bad_timestamp(timestamp):
    query, body = callback(encrypted=False, keys=(), timestamp=timestamp)
    assert rejected(query, body, window_s=300).startswith("rejected: bad_signature (errcode -40001): bad timestamp")


def test_encrypted_callback_without_keys():
    query, body = callback(encrypted=True)
    assert rejected(query, body).startswith("rejected: wrong_mode (errcode -40008): ")


def test_wrong_key():
    query, body = callback(encrypted=True, keys=(OLD_KEY,))
    assert rejected(query, body, aes_keys=(KEY,)).startswith(("rejected: bad_ciphertext ", "rejected: wrong_appid "))


def test_bad_aes_key_is_reported():
    query, body = callback(encrypted=True)
    assert rejected(query, body, aes_keys=("A" * 42 + "=",)).startswith("rejected: bad_aes_key (errcode -40004): ")


def test_malformed_body():
    query, _ = callback(encrypted=False, keys=())
    assert rejected(query, b"<xml><A></xml>").startswith("rejected: bad_xml (errcode -40002): malformed XML")


def test_missing_fields():
    query, _ = callback(encrypted=False, keys=())
    err = rejected(query, b"<xml><Content>x</Content></xml>")
    assert err.startswith("rejected: bad_xml (errcode -40002): missing required field(s): ToUserName")


def test_negative_vectors(negative_vector, rejection_of):
    v = negative_vector
    rejection = rejection_of(v)
    msg_signature = v.get("msg_signature") or signature.sign(v["token"], v["timestamp"], v["nonce"], v["encrypt"])
    query = urlencode(
        {"timestamp": v["timestamp"], "nonce": v["nonce"], "encrypt_type": "aes", "msg_signature": msg_signature}
    )
    body = f"<xml><Encrypt><![CDATA[{v['encrypt']}]]></Encrypt></xml>".encode()
    out, err = io.StringIO(), io.StringIO()
    rc = decode_callback(
        token=v["token"], appid=v["appid"], aes_keys=[v["encoding_aes_key"]], query=query, body=body, window_s=0,
        out=out, err=err,
    )
    assert rc == 1
    assert err.getvalue().startswith(f"rejected: {rejection.error.reason} (errcode {rejection.error.errcode}): ")
    if rejection.message is not None:
        assert err.getvalue() == (
            f"rejected: {rejection.error.reason} (errcode {rejection.error.errcode}): {rejection.message}\n"
        )


def test_xml_vectors(xml_request_vector):
    v = xml_request_vector
    query = urlencode(
        {"timestamp": v["timestamp"], "nonce": v["nonce"], "encrypt_type": "aes", "msg_signature": v["msg_signature"]}
    )
    body = f"<xml><Encrypt><![CDATA[{v['encrypt']}]]></Encrypt></xml>".encode()
    out, err = io.StringIO(), io.StringIO()
    rc = decode_callback(
        token=v["token"], appid=v["appid"], aes_keys=[v["encoding_aes_key"]], query=query, body=body, window_s=0,
        out=out, err=err,
    )
    assert (rc, err.getvalue()) == (0, "")
    document = json.loads(out.getvalue())
    assert document["MsgType"] in ("text", "event")
    assert document["dedupe_key"].startswith(("msg:", "evt:"))
