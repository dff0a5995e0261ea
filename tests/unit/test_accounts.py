"""The accounts file: a full valid file, every invalid entry named, secrets kept out of
reprs, and the generated demo file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app.accounts import DEMO_ACCOUNT, Account, AccountsError, demo_accounts_file, load_accounts
from app.keywords import KeywordRule
from app.settings import Settings

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OLD_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
TOKEN = "s3cr3t-t0ken-value"

FULL = f"""
[accounts.shop]
token = "{TOKEN}"
appid = "wx1234567890abcdef"
aes_keys = ["{KEY}", "{OLD_KEY}"]
mode = "safe"
original_id = "gh_0123456789ab"
system_prompt = "You are the shop's assistant."
user_per_minute = 5
account_per_second = 20

[[accounts.shop.keywords]]
pattern = "event:subscribe"
reply = "Welcome!"

[[accounts.shop.keywords]]
kind = "regex"
pattern = "^(price|价格)"
reply = "See our price list."

[accounts.plain]
token = "other-token"
appid = "wxplain"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str):
    return load_accounts(Settings(accounts=write(tmp_path, text), data_dir=tmp_path / "data"))


def test_full_file_loads(tmp_path):
    accounts = load(tmp_path, FULL)
    assert set(accounts) == {"shop", "plain"}
    shop = accounts["shop"]
    assert isinstance(shop, Account)
    assert shop.name == "shop"
    assert shop.token == TOKEN
    assert shop.appid == "wx1234567890abcdef"
    assert shop.aes_keys == (KEY, OLD_KEY)
    assert shop.mode == "safe"
    assert shop.original_id == "gh_0123456789ab"
    assert shop.system_prompt == "You are the shop's assistant."
    assert shop.user_per_minute == 5
    assert shop.account_per_second == 20
    assert shop.keywords == (
        KeywordRule("event:subscribe", "Welcome!"),
        KeywordRule("^(price|价格)", "See our price list.", kind="regex"),
    )
    assert shop.codec.mode == "safe" and shop.codec.crypto is not None


def test_defaults_of_a_minimal_account(tmp_path):
    plain = load(tmp_path, FULL)["plain"]
    assert plain.mode == "plain"
    assert plain.aes_keys == ()
    assert plain.keywords == ()
    assert plain.original_id == ""
    assert (plain.user_per_minute, plain.account_per_second) == (10, 50)
    assert plain.system_prompt == Account(name="x", token="t", appid="a").system_prompt
    assert plain.codec.crypto is None


def test_repr_hides_secrets(tmp_path):
    shop = load(tmp_path, FULL)["shop"]
    text = repr(shop)
    assert "shop" in text
    for secret in (TOKEN, KEY, OLD_KEY):
        assert secret not in text
    assert TOKEN not in str(shop)


ACCOUNT = """
[accounts.shop]
token = "t"
appid = "wx1"
"""

INVALID = {
    "missing-token": ('[accounts.shop]\nappid = "wx1"\n', "token"),
    "empty-token": ('[accounts.shop]\ntoken = ""\nappid = "wx1"\n', "token"),
    "token-not-a-string": ('[accounts.shop]\ntoken = 5\nappid = "wx1"\n', "token"),
    "missing-appid": ('[accounts.shop]\ntoken = "t"\n', "appid"),
    "bad-mode": (ACCOUNT + 'mode = "secure"\n', "mode"),
    "safe-without-keys": (ACCOUNT + 'mode = "safe"\n', "EncodingAESKey"),
    "compat-without-keys": (ACCOUNT + 'mode = "compat"\n', "EncodingAESKey"),
    "aes-key-too-short": (ACCOUNT + 'mode = "safe"\naes_keys = ["abc"]\n', "43"),
    "aes-key-too-long": (ACCOUNT + f'mode = "safe"\naes_keys = ["{KEY}A"]\n', "43"),
    "aes-key-not-base64": (ACCOUNT + f'mode = "safe"\naes_keys = ["{"!" * 43}"]\n', "base64"),
    "aes-keys-not-a-list": (ACCOUNT + f'mode = "safe"\naes_keys = "{KEY}"\n', "aes_keys"),
    "unknown-key": (ACCOUNT + 'tokn = "typo"\n', "tokn"),
    "user-per-minute-zero": (ACCOUNT + "user_per_minute = 0\n", "user_per_minute"),
    "user-per-minute-string": (ACCOUNT + 'user_per_minute = "10"\n', "user_per_minute"),
    "account-per-second-negative": (ACCOUNT + "account_per_second = -1\n", "account_per_second"),
    "keywords-not-tables": (ACCOUNT + 'keywords = ["hello"]\n', "keywords"),
    "keywords-a-table": (ACCOUNT + '[accounts.shop.keywords]\npattern = "a"\nreply = "b"\n', "keywords"),
    "keyword-bad-regex": (ACCOUNT + '[[accounts.shop.keywords]]\nkind = "regex"\npattern = "("\nreply = "b"\n', "shop"),
    "keyword-bad-kind": (ACCOUNT + '[[accounts.shop.keywords]]\nkind = "glob"\npattern = "a*"\nreply = "b"\n', "kind"),
    "keyword-unknown-key": (ACCOUNT + '[[accounts.shop.keywords]]\npattern = "a"\nanswer = "b"\n', "shop"),
    "keyword-without-reply": (ACCOUNT + '[[accounts.shop.keywords]]\npattern = "a"\n', "reply"),
    "account-not-a-table": ('[accounts]\nshop = "x"\n', "table"),
}


@pytest.mark.parametrize(("text", "mentions"), INVALID.values(), ids=INVALID.keys())
def test_invalid_account_names_file_and_account(tmp_path, text, mentions):
    with pytest.raises(AccountsError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    assert str(tmp_path / "accounts.toml") in message
    assert "[accounts.shop]" in message
    assert mentions in message


def test_valid_account_before_an_invalid_one_does_not_hide_it(tmp_path):
    with pytest.raises(AccountsError, match=r"\[accounts\.bad\]"):
        load(tmp_path, ACCOUNT + '\n[accounts.bad]\ntoken = "t"\nappid = "wx2"\nmode = "nope"\n')


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("", "no [accounts.NAME] table"),
        ("[other]\nx = 1\n", "no [accounts.NAME] table"),
        ("[accounts]\n", "no [accounts.NAME] table"),
        ("accounts = 5\n", "no [accounts.NAME] table"),
        ("[accounts.shop\n", "not valid TOML"),
    ],
)
def test_invalid_file_names_the_file(tmp_path, text, mentions):
    with pytest.raises(AccountsError) as caught:
        load(tmp_path, text)
    assert str(tmp_path / "accounts.toml") in str(caught.value)
    assert mentions in str(caught.value)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(AccountsError, match="does not exist") as caught:
        load_accounts(Settings(accounts=missing, data_dir=tmp_path))
    assert str(missing) in str(caught.value)


# --- demo file -----------------------------------------------------------------------


def test_demo_file_is_created_private_and_loads(tmp_path):
    data_dir = tmp_path / "nested" / "data"
    path = demo_accounts_file(data_dir)
    assert path == data_dir / "accounts.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    accounts = load_accounts(Settings(data_dir=data_dir))
    assert list(accounts) == [DEMO_ACCOUNT]
    demo = accounts[DEMO_ACCOUNT]
    assert demo.mode == "safe"
    assert len(demo.aes_keys) == 1 and len(demo.aes_keys[0]) == 43
    assert demo.appid.startswith("wx")
    assert demo.original_id == "gh_demo00000000"
    assert demo.keywords[0].pattern == "event:subscribe"


def test_demo_file_is_created_once(tmp_path):
    path = demo_accounts_file(tmp_path)
    first = path.read_bytes()
    stamp = path.stat().st_mtime_ns
    assert demo_accounts_file(tmp_path) == path
    assert path.read_bytes() == first
    assert path.stat().st_mtime_ns == stamp
    assert load_accounts(Settings(data_dir=tmp_path))[DEMO_ACCOUNT].token in first.decode("utf-8")


def test_demo_files_have_their_own_secrets(tmp_path):
    a = load_accounts(Settings(data_dir=tmp_path / "a"))[DEMO_ACCOUNT]
    b = load_accounts(Settings(data_dir=tmp_path / "b"))[DEMO_ACCOUNT]
    assert a.token != b.token
    assert a.aes_keys != b.aes_keys


@pytest.mark.parametrize("name", ["a:b", "with space", "ü"])
def test_account_names_must_be_url_safe(tmp_path, name):
    path = tmp_path / "accounts.toml"
    path.write_text(f'[accounts."{name}"]\ntoken = "t"\nappid = "wx1"\n')
    with pytest.raises(AccountsError, match="account names"):
        load_accounts(Settings(accounts=path, data_dir=tmp_path))
