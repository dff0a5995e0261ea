"""The optional `secret` (AppSecret) of an account in the accounts file: what the simulator
checks token requests against, kept out of reprs."""

from __future__ import annotations

import pytest

from app.accounts import AccountsError, load_accounts
from app.settings import Settings

BASE = '[accounts.shop]\ntoken = "t"\nappid = "wx1"\n'


def load(tmp_path, text):
    path = tmp_path / "accounts.toml"
    path.write_text(text, encoding="utf-8")
    return load_accounts(Settings(accounts=path, data_dir=tmp_path / "data"))


def test_secret_is_optional(tmp_path):
    assert load(tmp_path, BASE)["shop"].secret is None


def test_secret_is_loaded_and_never_shown(tmp_path):
    account = load(tmp_path, BASE + 'secret = "app-secret-value"\n')["shop"]
    assert account.secret == "app-secret-value"
    assert "app-secret-value" not in repr(account)


@pytest.mark.parametrize("value", ['""', "42", '["x"]'])
def test_bad_secrets_are_refused(tmp_path, value):
    with pytest.raises(AccountsError, match="secret must be a non-empty string"):
        load(tmp_path, BASE + f"secret = {value}\n")
