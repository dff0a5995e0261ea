"""Settings from `WXSTREAM_*`: every type parsed, bad values named, the round trip through
a child's environment, and the derived Kafka batching settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from app.settings import PREFIX, Settings, SettingsError

DEFAULT = Settings()


def from_env(**variables: str) -> Settings:
    return Settings.from_env({PREFIX + name: value for name, value in variables.items()})


def test_empty_environment_gives_the_defaults():
    assert Settings.from_env({}) == DEFAULT
    assert Settings.from_env({"UNRELATED": "1", "WXSTREAM": "x"}) == DEFAULT


def test_from_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("WXSTREAM_PARTITIONS", "7")
    assert Settings.from_env().partitions == 7


def test_overrides_win_over_the_environment():
    assert Settings.from_env({"WXSTREAM_PARTITIONS": "7"}, partitions=2).partitions == 2


# --- types ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "True", "yes", "YES", "on", " On "])
def test_bool_true(text):
    assert from_env(KAFKA_ONE_RECORD_BATCHES=text).kafka_one_record_batches is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "No", "off", " off\n"])
def test_bool_false(text):
    assert from_env(KAFKA_ONE_RECORD_BATCHES=text).kafka_one_record_batches is False


@pytest.mark.parametrize("text", ["", "  "])
def test_optional_bool_empty_is_unset(text):
    assert from_env(KAFKA_ONE_RECORD_BATCHES=text).kafka_one_record_batches is None


def test_ints():
    s = from_env(PARTITIONS="12", KAFKA_LINGER_MS="5", MAX_BODY_BYTES="1024", SESSION_MAX_TURNS="0")
    assert (s.partitions, s.kafka_linger_ms, s.max_body_bytes, s.session_max_turns) == (12, 5, 1024, 0)
    assert isinstance(s.partitions, int)


def test_floats():
    s = from_env(PRODUCE_TIMEOUT_S="0.25", PASSIVE_REPLY_WAIT_S="0", DEDUPE_TTL_S="60", ANSWER_CACHE_TTL_S="1e3")
    parsed = (s.produce_timeout_s, s.passive_reply_wait_s, s.dedupe_ttl_s, s.answer_cache_ttl_s)
    assert parsed == (0.25, 0.0, 60.0, 1000.0)
    assert isinstance(s.dedupe_ttl_s, float)


def test_ports():
    s = from_env(INGRESS_PORT="0", WEB_PORT="65535")
    assert (s.ingress_port, s.web_port) == (0, 65535)


def test_strings_are_kept_as_given():
    s = from_env(INGRESS_HOST="0.0.0.0", MODEL_NAME="glm4", INGRESS_ID="b", LOG_LEVEL="debug")
    assert (s.ingress_host, s.model_name, s.ingress_id, s.log_level) == ("0.0.0.0", "glm4", "b", "debug")


def test_optional_strings():
    s = from_env(KAFKA_URL=" broker:9092 ", TRITON_URL="triton:8001")
    assert (s.kafka_url, s.triton_url) == ("broker:9092", "triton:8001")


@pytest.mark.parametrize("text", ["", "   "])
def test_optional_strings_empty_are_unset(text):
    s = from_env(KAFKA_URL=text, TRITON_URL=text)
    assert (s.kafka_url, s.triton_url) == (None, None)


def test_paths(tmp_path):
    s = from_env(DATA_DIR=str(tmp_path / "data"), ACCOUNTS=str(tmp_path / "a.toml"), TRITON_MODELS="models")
    assert s.data_dir == tmp_path / "data"
    assert s.accounts == tmp_path / "a.toml"
    assert s.triton_models == Path("models")
    assert isinstance(s.data_dir, Path) and isinstance(s.accounts, Path)


def test_paths_expand_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    s = from_env(DATA_DIR="~/wx", ACCOUNTS="~/accounts.toml")
    assert s.data_dir == tmp_path / "wx"
    assert s.accounts == tmp_path / "accounts.toml"


@pytest.mark.parametrize("text", ["", "  "])
def test_optional_path_empty_is_unset(text):
    assert from_env(ACCOUNTS=text).accounts is None


# --- rejected values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INGRESS_PORT", "70000"),
        ("INGRESS_PORT", "-1"),
        ("WEB_PORT", "http"),
        ("PARTITIONS", "0"),
        ("PARTITIONS", "-3"),
        ("PARTITIONS", "four"),
        ("PARTITIONS", "2.5"),
        ("PARTITIONS", ""),
        ("KAFKA_ONE_RECORD_BATCHES", "maybe"),
        ("KAFKA_ONE_RECORD_BATCHES", "2"),
        ("KAFKA_LINGER_MS", "-1"),
        ("PRODUCE_TIMEOUT_S", "soon"),
        ("PRODUCE_TIMEOUT_S", "0"),
        ("MODEL_TIMEOUT_S", "-1"),
        ("DEDUPE_TTL_S", "nan"),
        ("SESSION_IDLE_S", "0"),
        ("PASSIVE_REPLY_WAIT_S", "-0.5"),
        ("PASSIVE_REPLY_WAIT_S", "5"),
        ("LOG_LEVEL", "garbage"),
        ("MODEL_TIMEOUT_S", "inf"),
        ("MODEL_MAX_TOKENS", "0"),
        ("KAFKA_SESSION_TIMEOUT_S", "0"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        from_env(**{name: value})
    assert PREFIX + name in str(caught.value)


def test_error_shows_the_bad_value_and_what_is_expected():
    with pytest.raises(SettingsError, match=r"WXSTREAM_INGRESS_PORT='70000'.*0\.\.65535"):
        from_env(INGRESS_PORT="70000")
    with pytest.raises(SettingsError, match=r"WXSTREAM_KAFKA_ONE_RECORD_BATCHES='maybe'.*true/false"):
        from_env(KAFKA_ONE_RECORD_BATCHES="maybe")
    with pytest.raises(SettingsError, match=r"WXSTREAM_PARTITIONS must be >= 1, got 0"):
        from_env(PARTITIONS="0")
    with pytest.raises(SettingsError, match=r"WXSTREAM_MORE_TEXT must be at most 256 UTF-8 bytes"):
        from_env(MORE_TEXT="更" * 86)


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


# --- round trip ----------------------------------------------------------------------


def other_value(field: dataclasses.Field, default):
    """A valid value of the field's type that differs from its default."""
    kind = str(field.type)
    if field.name == "log_level":
        return "debug"
    if kind == "bool | None" or kind == "bool":
        return not default if default is not None else False
    if kind == "int":
        return 1 if field.name.endswith("_port") else default + 3
    if kind == "float":
        return default + 0.125
    if kind in ("Path", "Path | None"):
        return Path("/srv/wxstream") / field.name
    if kind in ("str", "str | None"):
        return f"{field.name}-value:1"
    raise AssertionError(f"no test value for {field.name}: {kind}")


def test_every_field_has_a_parser():
    for field in dataclasses.fields(Settings):
        other_value(field, getattr(DEFAULT, field.name))


def test_to_env_round_trips_non_default_values():
    changed = {f.name: other_value(f, getattr(DEFAULT, f.name)) for f in dataclasses.fields(Settings)}
    settings = Settings(**changed)
    for name, value in changed.items():
        assert getattr(settings, name) != getattr(DEFAULT, name), name
    assert Settings.from_env(settings.to_env()) == settings


def test_to_env_round_trips_the_defaults():
    env = DEFAULT.to_env()
    assert "WXSTREAM_KAFKA_URL" not in env and "WXSTREAM_KAFKA_ONE_RECORD_BATCHES" not in env
    assert Settings.from_env(env) == DEFAULT


def test_to_env_writes_strings_and_bools_as_1_or_0():
    env = Settings(kafka_one_record_batches=True, partitions=6, kafka_url="k:9092").to_env()
    assert all(name.startswith(PREFIX) and isinstance(value, str) for name, value in env.items())
    assert env["WXSTREAM_KAFKA_ONE_RECORD_BATCHES"] == "1"
    assert env["WXSTREAM_PARTITIONS"] == "6"
    assert env["WXSTREAM_KAFKA_URL"] == "k:9092"
    assert Settings(kafka_one_record_batches=False).to_env()["WXSTREAM_KAFKA_ONE_RECORD_BATCHES"] == "0"


# --- Kafka batching ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kafka_url", "explicit", "one_record"),
    [
        (None, None, True),  # embedded broker
        ("broker:9092", None, False),  # external Kafka
        (None, False, False),
        ("broker:9092", True, True),
    ],
)
def test_one_record_batches(kafka_url, explicit, one_record):
    settings = Settings(kafka_url=kafka_url, kafka_one_record_batches=explicit)
    assert settings.embedded_kafka is (kafka_url is None)
    assert settings.one_record_batches is one_record
    assert settings.producer_max_batch_bytes == (1 if one_record else 16384)


def test_one_record_batches_from_the_environment():
    assert from_env().one_record_batches is True
    assert from_env(KAFKA_URL="broker:9092").one_record_batches is False
    assert from_env(KAFKA_URL="broker:9092", KAFKA_ONE_RECORD_BATCHES="yes").producer_max_batch_bytes == 1
    assert from_env(KAFKA_ONE_RECORD_BATCHES="off").producer_max_batch_bytes == 16384


def test_urls():
    settings = Settings(ingress_host="0.0.0.0", ingress_port=9000, web_host="localhost", web_port=7000)
    assert settings.ingress_url == "http://0.0.0.0:9000"
    assert settings.web_url == "http://localhost:7000"


# --- models the embedded tritonserver loads ------------------------------------------


def test_tritonserver_loads_the_reply_model_by_default():
    assert DEFAULT.triton_model_names == (DEFAULT.model_name,) == ("assistant",)
    assert from_env(MODEL_NAME="echo").triton_model_names == ("echo",)


def test_tritonserver_loads_the_listed_models_the_reply_model_and_the_candidate_once():
    s = from_env(TRITON_LOAD_MODELS=" glm4, glm4_stream,,echo ", MODEL_NAME="echo", MODEL_CANDIDATE="glm4")
    assert s.triton_model_names == ("glm4", "glm4_stream", "echo")


def test_tritonserver_loads_every_model_with_a_star():
    assert from_env(TRITON_LOAD_MODELS="echo,*").triton_model_names == ("*",)


def test_unknown_variables_are_named_with_the_setting_they_probably_meant():
    env = {"WXSTREAM_INGRES_PORT": "9999", "WXSTREAM_FROBNICATE": "1", "WXSTREAM_INGRESS_PORT": "8080",
           "WXSTREAM_MODEL_CACHE": "/tmp/m", "HOME": "/root"}
    assert Settings.unknown_variables(env) == [
        "WXSTREAM_FROBNICATE",
        "WXSTREAM_INGRES_PORT (did you mean WXSTREAM_INGRESS_PORT?)",
    ]
