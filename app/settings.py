"""The one settings object, built from `WXSTREAM_*` environment variables.

Every process builds it once at start (`Settings.from_env()`) and passes it down; no
module reads the environment on its own. Invalid values fail at start with the
variable's name and what was wrong.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

__all__ = ("PRODUCER_BATCH_BYTES", "WECHAT_DEADLINE_S", "Settings", "SettingsError")

PREFIX = "WXSTREAM_"
# Bytes per partition and produce request; aiokafka's and Faust's default.
PRODUCER_BATCH_BYTES = 16384
SECRETS = frozenset({"admin_token"})
# Read elsewhere, not settings: the models' build cache (app/embedded/triton.py).
OTHER_VARIABLES = frozenset({"WXSTREAM_MODEL_CACHE"})
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# WeChat gives up on a callback attempt after this long and retries (3 attempts in all).
WECHAT_DEADLINE_S = 5.0
# more_text's share of a passive reply, at most.
MORE_TEXT_MAX_BYTES = 256


class SettingsError(ValueError):
    """A `WXSTREAM_*` variable has a value that cannot be used."""


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected one of 1/0, true/false, yes/no, on/off")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("expected a TCP port 0..65535")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected an integer >= 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise ValueError("expected a finite number >= 0")
    return value


def _optional_str(text: str) -> str | None:
    return text.strip() or None


def _optional_path(text: str) -> Path | None:
    return Path(text).expanduser() if text.strip() else None


_PARSERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": _count,
    "float": _non_negative_float,
    "bool": _bool,
    "Path": lambda text: Path(text).expanduser(),
    "str | None": _optional_str,
    "Path | None": _optional_path,
    "bool | None": lambda text: _bool(text) if text.strip() else None,
}


@dataclass(frozen=True)
class Settings:
    """Effective configuration. Each field is read from `WXSTREAM_<FIELD NAME>`."""

    # Where local state lives: RocksDB tables, logs, the demo accounts file, the running
    # stack's address file.
    data_dir: Path = Path(".wxstream")
    # Kafka bootstrap `host:port`. Unset: `wxstream up` starts the embedded broker.
    kafka_url: str | None = None
    # Triton gRPC `host:port`. Unset: `wxstream up` starts tritonserver on triton_models/.
    triton_url: str | None = None
    # Write every record as a one-record batch. Works around the embedded broker's wrong
    # end offsets for multi-record batches (which break Faust table recovery). Default:
    # on with the embedded broker, off with an external Kafka.
    kafka_one_record_batches: bool | None = None
    # How long producers wait to fill a batch: raises throughput on a real cluster.
    kafka_linger_ms: int = 0
    # Longest a consumer's fetch waits for data: bounds each pipeline hop's latency when
    # the broker does not answer a fetch as soon as data arrives.
    kafka_fetch_max_wait_ms: int = 25
    # Consumer-group session timeout; a group join takes about half of it.
    kafka_session_timeout_s: float = 6.0
    # Partitions of every wxstream topic (tables' changelogs follow).
    partitions: int = 4
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    # Faust's web server (monitoring views) of the worker.
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # Base URL of WeChat's API for the outbound sender (tokens, customer-service messages).
    # Unset: WeChat's real API; in development, the URL of `wxstream simulate`.
    wechat_api_url: str | None = None
    # Where `wxstream simulate` serves its WeChat API (its host is a flag, loopback by default).
    simulator_port: int = 8081
    # Outbound sender. A reply the ingress has not delivered passively nor handed over
    # (its process died, or the broker was away) is sent by the API after this long.
    outbound_verdict_timeout_s: float = 20.0
    # Attempts per message part on -1 (system busy) and network errors, with jittered
    # exponential pauses from outbound_retry_backoff_s up to outbound_retry_backoff_max_s;
    # then the reply goes to the dead letters.
    outbound_retries: int = 4
    outbound_retry_backoff_s: float = 0.2
    outbound_retry_backoff_max_s: float = 2.0
    # Deadline of one WeChat API request, in seconds.
    outbound_request_timeout_s: float = 5.0
    # Largest customer-service text message, in UTF-8 bytes; longer replies go in parts.
    outbound_max_part_bytes: int = 2048
    # How long the sender remembers a reply it has handled (drops later repeats of it).
    outbound_state_ttl_s: float = 3600.0
    # Show "typing..." to a user whose reply is not ready when the ingress hands it over.
    outbound_typing: bool = True
    # Accounts without the customer-service API: WeChat's retries of a callback are held
    # (not answered) while the first attempt is younger than this, so that a reply still
    # being generated can go back passively; past it, the user gets mailbox_notice_text
    # and the reply waits in their mailbox for their next message.
    uncertified_hold_s: float = 9.0
    mailbox_notice_text: str = "I am still thinking about that; send me any message and I will answer it."
    # Ends a reply cut to a passive reply's size for such an account; the rest waits in the
    # user's mailbox and comes with the reply to their next message.
    more_text: str = "(More to come: send me any message.)"
    # TOML file with `[accounts.NAME]` tables. Unset: a demo account file is created in
    # data_dir on first use.
    accounts: Path | None = None
    # Largest callback body the ingress accepts, in bytes.
    max_body_bytes: int = 65536
    # How long the ingress waits for the broker's acknowledgement before spooling locally.
    produce_timeout_s: float = 1.0
    # How long the ingress holds a callback waiting for its reply to answer it passively;
    # after that it answers `success` and the outbound sender delivers. 0: never wait.
    passive_reply_wait_s: float = 4.5
    # The ingress reports not ready (/readyz) while more events than this wait in its spool.
    spool_ready_max: int = 1000
    # Identity of this ingress process among several on one host: names its spool dir.
    ingress_id: str = "0"
    # Accept callbacks whose signed timestamp is within this many seconds of now.
    timestamp_window_s: float = 300.0
    # Model served by Triton and the generation budget per reply. `assistant` is
    # SmolLM2-135M-Instruct on CPU (readable replies); `echo` answers with the user's text;
    # `glm4` is a tiny random GLM-4 (gibberish). See triton_models/.
    model_name: str = "assistant"
    model_max_tokens: int = 256
    # Ask for the answer token by token (gRPC streaming, `stream` true) to record the
    # first token's latency (wxstream_model_first_token_seconds); the reply is still sent
    # whole. Needs a decoupled model: glm4_stream, or TensorRT-LLM built with
    # STREAMING=1 (deploy/trtllm).
    model_stream: bool = False
    # Deadline of one model request, in seconds: the wait for a slot, every attempt and
    # the pauses between attempts.
    model_timeout_s: float = 20.0
    # The reply when the model gives no answer (error, deadline, breaker open, shed).
    model_fallback_text: str = "Sorry, I cannot answer right now. Please try again in a moment."
    # Messages the conversation works on at once (one user's always one after another):
    # model calls overlap instead of each leaving the worker idle.
    conversation_concurrency: int = 8
    # Records about replies the sender works on at once (one user's always one after
    # another): a slow API call for one user does not hold up the others' replies.
    outbound_concurrency: int = 8
    # Model requests in flight at once per worker process, in total and per account.
    model_max_in_flight: int = 32
    model_max_in_flight_per_account: int = 8
    # Load shedding: a request gets the fallback at once when this many already wait for
    # a slot, or once it has waited this long for one, rather than queue past WeChat's
    # deadline.
    model_max_waiting: int = 32
    model_max_wait_s: float = 1.0
    # Retries of a request the server refused as UNAVAILABLE (never of a deadline exceeded
    # or an invalid request): at most this many, after jittered exponential pauses from
    # model_retry_backoff_s up to model_retry_backoff_max_s, all within model_timeout_s.
    model_retries: int = 2
    model_retry_backoff_s: float = 0.05
    model_retry_backoff_max_s: float = 1.0
    # Circuit breaker, one per model: opens after this many consecutive failures or
    # timeouts; after model_breaker_cooldown_s lets model_breaker_probes requests through,
    # and closes on a success. While open, users get the fallback text at once.
    model_breaker_failures: int = 5
    model_breaker_cooldown_s: float = 10.0
    model_breaker_probes: int = 1
    # Gray release: a candidate model answers every user of the listed accounts
    # (comma-separated) and a share (0..1) of all users, stable per user. Unset: none.
    model_candidate: str | None = None
    model_candidate_share: float = 0.0
    model_candidate_accounts: str = ""
    # A repeat of a message within this many seconds is dropped as a retry.
    dedupe_ttl_s: float = 600.0
    # Conversations: idle time after which a new one starts, and the history bounds.
    session_idle_s: float = 1800.0
    session_max_turns: int = 10
    session_max_tokens: int = 1500
    # How often the worker deletes the expired windows of its tables that Faust's own
    # cleanup misses (those an earlier run left in the local stores).
    window_sweep_interval_s: float = 600.0
    # Answers to context-free questions are reused within windows this long: an answer
    # serves from when it is cached to its window's end (0: no cache).
    answer_cache_ttl_s: float = 600.0
    # Bearer token for the worker's views of users' data (sessions); unset: those views are off.
    admin_token: str | None = None
    log_level: str = "info"
    # Directory served by the embedded tritonserver.
    triton_models: Path = Path(__file__).resolve().parent.parent / "triton_models"
    # Models the embedded tritonserver loads (comma-separated; `*`: all of triton_models/),
    # besides model_name and model_candidate, which are always loaded. Unset: only those.
    triton_load_models: str | None = None

    def __post_init__(self) -> None:
        if self.partitions < 1:
            raise SettingsError(f"{PREFIX}PARTITIONS must be >= 1, got {self.partitions}")
        for name in (
            "produce_timeout_s",
            "model_timeout_s",
            "kafka_session_timeout_s",
            "dedupe_ttl_s",
            "session_idle_s",
            "outbound_verdict_timeout_s",
            "outbound_request_timeout_s",
            "outbound_state_ttl_s",
            "window_sweep_interval_s",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()} must be > 0, got {getattr(self, name)}")
        for name in (
            "conversation_concurrency",
            "outbound_concurrency",
            "model_max_in_flight",
            "model_max_in_flight_per_account",
            "model_breaker_failures",
            "model_breaker_probes",
            "outbound_retries",
            "model_max_tokens",
        ):
            if getattr(self, name) < 1:
                raise SettingsError(f"{PREFIX}{name.upper()} must be >= 1, got {getattr(self, name)}")
        if self.outbound_verdict_timeout_s <= self.uncertified_hold_s + 6:
            raise SettingsError(
                f"{PREFIX}OUTBOUND_VERDICT_TIMEOUT_S ({self.outbound_verdict_timeout_s:g}) must exceed "
                f"{PREFIX}UNCERTIFIED_HOLD_S ({self.uncertified_hold_s:g}) + 6: a reply held across WeChat's "
                "retries must get its last chance at a passive answer before the sender takes it over"
            )
        if self.log_level.lower() not in LOG_LEVELS:
            raise SettingsError(f"{PREFIX}LOG_LEVEL={self.log_level!r}: expected one of {', '.join(LOG_LEVELS)}")
        if self.passive_reply_wait_s >= WECHAT_DEADLINE_S:
            raise SettingsError(
                f"{PREFIX}PASSIVE_REPLY_WAIT_S must be below WeChat's {WECHAT_DEADLINE_S:g} s deadline, "
                f"got {self.passive_reply_wait_s:g}"
            )
        if len(self.more_text.encode("utf-8")) > MORE_TEXT_MAX_BYTES:
            raise SettingsError(f"{PREFIX}MORE_TEXT must be at most {MORE_TEXT_MAX_BYTES} UTF-8 bytes")
        if self.outbound_max_part_bytes < 16:
            raise SettingsError(f"{PREFIX}OUTBOUND_MAX_PART_BYTES must be >= 16, got {self.outbound_max_part_bytes}")
        if not 0 <= self.model_candidate_share <= 1:
            raise SettingsError(f"{PREFIX}MODEL_CANDIDATE_SHARE must be within 0..1, got {self.model_candidate_share}")

    @classmethod
    def unknown_variables(cls, env: Mapping[str, str] | None = None) -> list[str]:
        """`WXSTREAM_*` names in `env` that no setting reads (typos, most likely), each
        with the setting it probably meant, for a warning: they are ignored."""
        env = os.environ if env is None else env
        known = {PREFIX + f.name.upper() for f in fields(cls)} | OTHER_VARIABLES
        unknown = []
        for name in sorted(n for n in env if n.startswith(PREFIX) and n not in known):
            close = difflib.get_close_matches(name.removeprefix(PREFIX), [k.removeprefix(PREFIX) for k in known], n=1)
            unknown.append(f"{name} (did you mean {PREFIX}{close[0]}?)" if close else name)
        return unknown

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Read `WXSTREAM_*` from `env` (default: os.environ); `overrides` win."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            if name not in env:
                continue
            parse = _port if f.name.endswith("_port") else _PARSERS[str(f.type)]
            try:
                values[f.name] = parse(env[name])
            except ValueError as exc:
                raise SettingsError(f"{name}={env[name]!r}: {exc}") from None
        values.update(overrides)
        return cls(**values)

    @property
    def embedded_kafka(self) -> bool:
        return self.kafka_url is None

    @property
    def one_record_batches(self) -> bool:
        if self.kafka_one_record_batches is None:
            return self.embedded_kafka
        return self.kafka_one_record_batches

    @property
    def ingress_url(self) -> str:
        return f"http://{self.ingress_host}:{self.ingress_port}"

    @property
    def web_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    @property
    def triton_model_names(self) -> tuple[str, ...]:
        """What the embedded tritonserver loads: `("*",)` for every model, else the names
        in triton_load_models, model_name and model_candidate, each once."""
        listed = [name.strip() for name in (self.triton_load_models or "").split(",") if name.strip()]
        if "*" in listed:
            return ("*",)
        return tuple(dict.fromkeys([*listed, self.model_name, *([self.model_candidate] if self.model_candidate else [])]))

    @property
    def producer_max_batch_bytes(self) -> int:
        """The batch limit of a producer that cannot pack one-record batches (kafka-python):
        1 byte forces one record per batch."""
        return 1 if self.one_record_batches else PRODUCER_BATCH_BYTES

    def to_env(self, *, mask_secrets: bool = False) -> dict[str, str]:
        """The environment that rebuilds these settings in a child process; with
        `mask_secrets`, for showing to people."""
        env: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool):
                value = "1" if value else "0"
            env[PREFIX + f.name.upper()] = "****" if mask_secrets and f.name in SECRETS else str(value)
        return env
