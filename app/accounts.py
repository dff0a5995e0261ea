"""Official Accounts served by this deployment, from a TOML file.

```toml
[accounts.demo]
token = "..."            # the Token set in WeChat's console
appid = "wx..."          # the account's AppID
aes_keys = ["...", "..."] # EncodingAESKey: current first, then previous (rotation)
mode = "safe"            # plain | compat | safe
secret = "..."           # AppSecret (optional): the outbound sender fetches access tokens with it
system_prompt = "You are the helpful assistant of ..."
user_per_minute = 10     # messages a user may send per minute before replies pause
account_per_second = 50  # messages per second for the whole account (shared by partitions)
certified = true         # false: no customer-service API; replies go passively or by mailbox

[[accounts.demo.keywords]]  # answered without the model, first match wins
pattern = "event:subscribe"
reply = "Welcome!"

[[accounts.demo.keywords]]
kind = "regex"
pattern = "^(price|价格)"
reply = "See our price list at ..."
```
The NAME is the `{account}` of the callback URL `/wechat/{account}`. Without a file a demo
account is generated once in the data directory so that `make run` works out of the box.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from app.keywords import KeywordRule
from app.settings import Settings
from app.topics import ACCOUNT_NAME
from app.wechat import CallbackCodec, Mode
from app.wechat.callback import MODES
from app.wechat.errors import WeChatError

__all__ = ("Account", "AccountsError", "load_accounts", "demo_accounts_file")

DEMO_ACCOUNT = "demo"


class AccountsError(ValueError):
    """The accounts file is missing, unreadable or has an invalid entry."""


@dataclass(frozen=True)
class Account:
    name: str
    token: str
    appid: str
    mode: Mode = "plain"
    aes_keys: tuple[str, ...] = ()
    original_id: str = ""  # gh_..., the ToUserName of its callbacks
    secret: str | None = None  # AppSecret: fetches the access_token of the customer-service API
    system_prompt: str = "You are a helpful assistant. Answer briefly."
    user_per_minute: int = 10
    account_per_second: int = 50
    # Certified accounts may use the customer-service API; others only answer passively.
    certified: bool = True
    keywords: tuple[KeywordRule, ...] = ()
    codec: CallbackCodec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "codec",
            CallbackCodec(token=self.token, appid=self.appid, mode=self.mode, aes_keys=self.aes_keys),
        )

    def __repr__(self) -> str:  # secrets never reach a log line
        return f"Account(name={self.name!r}, appid={self.appid!r}, mode={self.mode!r})"


def load_accounts(settings: Settings) -> Mapping[str, Account]:
    """Accounts from `settings.accounts`, or the demo file (created on first use)."""
    path = settings.accounts or demo_accounts_file(settings.data_dir)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AccountsError(f"accounts file {path} does not exist (WXSTREAM_ACCOUNTS)") from None
    except tomllib.TOMLDecodeError as exc:
        raise AccountsError(f"accounts file {path} is not valid TOML: {exc}") from None
    table = document.get("accounts")
    if not isinstance(table, dict) or not table:
        raise AccountsError(f"accounts file {path} has no [accounts.NAME] table")
    return {name: _account(path, name, entry) for name, entry in table.items()}


_KEYS = (
    "token",
    "appid",
    "aes_keys",
    "mode",
    "original_id",
    "secret",
    "system_prompt",
    "user_per_minute",
    "account_per_second",
    "certified",
    "keywords",
)


def _account(path: Path, name: str, entry: object) -> Account:
    where = f"{path}: [accounts.{name}]"
    if not ACCOUNT_NAME.fullmatch(name):
        raise AccountsError(f"{where}: account names may use letters, digits, '_' and '-' (they are URL paths)")
    if not isinstance(entry, dict):
        raise AccountsError(f"{where} must be a table")
    unknown = set(entry) - set(_KEYS)
    if unknown:
        raise AccountsError(f"{where} has unknown key(s): {', '.join(sorted(unknown))}")
    for key in ("token", "appid"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise AccountsError(f"{where} needs a non-empty string `{key}`")
    mode = entry.get("mode", "plain")
    if mode not in MODES:
        raise AccountsError(f"{where} mode must be one of {', '.join(MODES)}, got {mode!r}")
    keys = entry.get("aes_keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise AccountsError(f"{where} aes_keys must be a list of strings (current key first)")
    if "secret" in entry and (not isinstance(entry["secret"], str) or not entry["secret"]):
        raise AccountsError(f"{where} secret must be a non-empty string (the AppSecret)")
    if "certified" in entry and not isinstance(entry["certified"], bool):
        raise AccountsError(f"{where} certified must be true or false")
    for key in ("user_per_minute", "account_per_second"):
        if key in entry and (type(entry[key]) is not int or entry[key] < 1):
            raise AccountsError(f"{where} {key} must be an integer >= 1")
    rules = entry.get("keywords", [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise AccountsError(f"{where} keywords must be an array of tables ([[accounts.{name}.keywords]])")
    try:
        return Account(
            name=name,
            token=entry["token"],
            appid=entry["appid"],
            mode=mode,
            aes_keys=tuple(keys),
            **{key: entry[key] for key in _KEYS[4:-1] if key in entry},
            keywords=tuple(KeywordRule(**rule) for rule in rules),
        )
    except (ValueError, TypeError, re.error, WeChatError) as exc:  # bad keys, mode/key mismatch, bad rule
        raise AccountsError(f"{where}: {exc}") from None


def demo_accounts_file(data_dir: Path) -> Path:
    """Create (once) and return a file with one safe-mode demo account and random secrets."""
    path = data_dir / "accounts.toml"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as file:
            file.write(
                "# Generated by wxstream for local runs; point WXSTREAM_ACCOUNTS at your own file.\n"
                f"[accounts.{DEMO_ACCOUNT}]\n"
                f'token = "{secrets.token_hex(16)}"\n'
                f'appid = "wx{secrets.token_hex(8)}"\n'
                f'secret = "{secrets.token_hex(16)}"\n'
                f'aes_keys = ["{key}"]\n'
                'mode = "safe"\n'
                'original_id = "gh_demo00000000"\n'
                "\n[[accounts.demo.keywords]]\n"
                'pattern = "event:subscribe"\n'
                'reply = "Welcome! Ask me anything; send /reset to start a new conversation."\n'
            )
    return path
