"""docker-compose.yml agrees with the code: real settings with valid values, processes
listening where the others look for them, healthchecks on the right paths, declared
volumes, replicas, GPUs, and the one- and three-broker Kafka setups."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import fields

import pytest

from app.cli import _parser
from app.settings import PREFIX, Settings
from app.worker_views import READY_PATH
from tests.unit.deploy.compose import (
    COMPOSE_FILE,
    ROOT,
    THREE_BROKERS_ENV,
    InterpolationError,
    interpolate,
    load_compose,
    parse_mount,
    raw_compose,
    read_env_file,
)

PROJECT = load_compose()
APP_SERVICES = sorted(PROJECT.app_services())
SETTING_NAMES = {PREFIX + f.name.upper() for f in fields(Settings)}
SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "volumes", "ports", "expose", "healthcheck",
    "depends_on", "deploy", "restart", "profiles", "secrets", "configs", "shm_size", "ulimits", "stop_grace_period",
}  # fmt: skip
# What each wxstream command serves, as (host setting, port setting); `simulate` takes its
# host from --host.
LISTENS = {"ingress": ("ingress_host", "ingress_port"), "worker": ("web_host", "web_port"), "simulate": (None, "simulator_port")}
_ADDRESS = re.compile(r"^(?:https?://)?(?P<host>[a-z][a-z0-9-]*):(?P<port>\d+)(?:/|$)")
_LOCAL_URL = re.compile(r"(?:https?://)?(?:127\.0\.0\.1|localhost):(?P<port>\d+)(?P<path>/[\w/.-]*)?")


def subcommand(service: str) -> str:
    return PROJECT.command(service)[0]


def listen_port(service: str) -> int:
    return getattr(PROJECT.settings(service), LISTENS[subcommand(service)][1])


def test_every_variable_of_the_file_is_documented():
    variables = set(re.findall(r"\$\{([A-Za-z_]\w*)", COMPOSE_FILE.read_text(encoding="utf-8")))
    guide = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert sorted(name for name in variables if f"`{name}`" not in guide) == [], "document them in docs/operations.md"


def test_interpolation_follows_compose():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d} ${EMPTY-d} $SET $$SET", env) == "x d d  x $SET"
    with pytest.raises(InterpolationError, match="host"):
        interpolate("proxy_set_header Host $host;", env)
    with pytest.raises(InterpolationError, match="required"):
        interpolate("${UNSET:?required}", env)


def test_short_volume_syntax():
    assert parse_mount("/var/lib/wxstream").source is None
    bind = parse_mount("./deploy/prometheus:/etc/prometheus:ro")
    assert bind.is_bind and bind.read_only and bind.target == "/etc/prometheus"
    assert not parse_mount("kafka-data:/var/lib/kafka/data").is_bind


@pytest.mark.parametrize("name", sorted(PROJECT.services))
def test_every_service_has_a_pinned_image_or_the_build(name):
    spec = PROJECT.service(name)
    assert set(spec) <= SERVICE_KEYS, f"{name}: unexpected keys {set(spec) - SERVICE_KEYS}"
    if "build" in spec:
        assert spec["build"] == ".", f"{name}: wxstream services are built from the Dockerfile"
        return
    image = spec["image"]
    tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
    assert tag and tag != "latest", f"{name}: pin the version of {image}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_a_wxstream_command(name):
    args = _parser().parse_args(PROJECT.command(name))  # exits on an unknown command or flag
    assert args.command in LISTENS


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_wxstream_variable_is_a_setting_with_a_valid_value(name):
    env = PROJECT.environment(name)
    unknown = {key for key in env if key.startswith(PREFIX)} - SETTING_NAMES
    assert not unknown, f"{name}: not settings (app/settings.py): {sorted(unknown)}"
    PROJECT.settings(name)  # raises SettingsError naming the variable


def test_environment_values_are_strings_or_numbers():
    """Compose refuses booleans in `environment` (yes/no/true/false must be quoted)."""
    for name, spec in raw_compose()["services"].items():
        for key, value in (spec.get("environment") or {}).items():
            assert not isinstance(value, bool), f"{name}: quote the value of {key}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_listen_on_all_interfaces_on_their_published_port(name):
    host_setting, _ = LISTENS[subcommand(name)]
    host = getattr(PROJECT.settings(name), host_setting) if host_setting else PROJECT.flag(name, "--host")
    assert host == "0.0.0.0", f"{name} must listen on all interfaces inside its container"
    assert listen_port(name) in PROJECT.ports(name), f"{name} listens on {listen_port(name)}: expose or publish it"


def _addresses(name: str) -> list[tuple[str, str, int]]:
    """(where, service, port) for every `service:port` the service's settings or command
    name; other hosts (outside the project) are not checked."""
    found = []
    for where, value in [*PROJECT.environment(name).items(), *(("command", arg) for arg in PROJECT.command(name))]:
        match = _ADDRESS.match(value)
        if match and match["host"] in PROJECT.services:
            found.append((where, match["host"], int(match["port"])))
    return found


@pytest.mark.parametrize("env", [{}, {"WXSTREAM_WECHAT_API_URL": "http://simulator:8081"}], ids=["default", "simulator"])
def test_addresses_point_at_a_service_port(env):
    project = load_compose(env)
    checked = 0
    for name in project.app_services():
        for where, target, port in _addresses(name):
            assert port in project.ports(target), f"{name}: {where} points at {target}:{port}; it offers {project.ports(target)}"
            checked += 1
    assert checked >= 4  # kafka and triton from the worker, kafka from the ingress, the lb from the simulator


def test_the_worker_finds_kafka_and_triton_where_they_serve():
    settings = PROJECT.settings("worker")
    assert settings.kafka_url == "kafka:9092" and "PLAINTEXT://:9092" in PROJECT.environment("kafka")["KAFKA_LISTENERS"]
    assert settings.triton_url == f"triton:{PROJECT.flag('triton', '--grpc-port')}"
    assert PROJECT.settings("ingress").kafka_url == settings.kafka_url


def _healthcheck(name: str) -> str:
    test = PROJECT.service(name)["healthcheck"]["test"]
    return " ".join(test[1:]) if isinstance(test, list) else test


def test_ingress_healthcheck_asks_healthz_and_readyz_on_its_port():
    urls = _LOCAL_URL.findall(_healthcheck("ingress"))
    assert urls, "the ingress healthcheck names no local URL"
    assert {int(port) for port, _ in urls} == {listen_port("ingress")}
    check = _healthcheck("ingress")
    assert "/healthz" in check and "/readyz" in check


def test_worker_healthcheck_asks_ready_on_the_web_port():
    assert _LOCAL_URL.findall(_healthcheck("worker")) == [(str(listen_port("worker")), READY_PATH)]


def test_triton_healthcheck_asks_ready_on_its_http_port():
    assert _LOCAL_URL.findall(_healthcheck("triton")) == [(PROJECT.flag("triton", "--http-port"), "/v2/health/ready")]


@pytest.mark.parametrize("name", sorted(PROJECT.services))
def test_healthchecks_use_the_service_own_ports(name):
    if "healthcheck" not in PROJECT.service(name):
        return
    ports = {int(port) for port, _ in _LOCAL_URL.findall(_healthcheck(name))}
    assert ports and ports <= PROJECT.ports(name), f"{name}: healthcheck on {ports}, service offers {PROJECT.ports(name)}"


@pytest.mark.parametrize("name", sorted(PROJECT.services))
def test_dependencies_exist_start_with_it_and_are_healthy_when_awaited(name):
    profiles = set(PROJECT.service(name).get("profiles", []))
    for target, condition in PROJECT.service(name).get("depends_on", {}).items():
        assert target in PROJECT.services, f"{name} depends on unknown service {target}"
        target_profiles = set(PROJECT.service(target).get("profiles", []))
        assert not target_profiles or target_profiles & profiles, f"{name} depends on {target}, which is in a profile"
        if condition["condition"] == "service_healthy":
            assert "healthcheck" in PROJECT.service(target), f"{name} waits for {target} to be healthy: it has no healthcheck"


def test_named_volumes_are_declared_and_used_and_bind_mounts_exist():
    declared = set(PROJECT.document["volumes"])
    used = set()
    raw = raw_compose()["services"]
    for name in PROJECT.services:
        for mount, raw_mount in zip(PROJECT.mounts(name), map(parse_mount, raw[name].get("volumes", []))):
            if mount.source is None:
                continue
            if mount.is_bind:
                if not raw_mount.source.startswith("${"):  # a path the operator gives is not in the repo
                    assert (ROOT / mount.source).exists(), f"{name}: {mount.source} does not exist"
            else:
                assert mount.source in declared, f"{name}: volume {mount.source} is not declared"
                used.add(mount.source)
    assert declared == used, f"declared but unused: {declared - used}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_accounts_come_read_only_from_a_declared_secret(name):
    secrets = PROJECT.service(name)["secrets"]
    assert set(secrets) <= set(PROJECT.document["secrets"])
    assert str(PROJECT.settings(name).accounts) in {f"/run/secrets/{secret}" for secret in secrets}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_state_lives_on_a_volume_of_each_replica(name):
    data_dir = str(PROJECT.settings(name).data_dir)
    if subcommand(name) == "simulate":
        return  # keeps nothing
    mounts = {mount.target: mount for mount in PROJECT.mounts(name)}
    assert data_dir in mounts, f"{name}: WXSTREAM_DATA_DIR {data_dir} is not on a volume"
    assert mounts[data_dir].source is None, f"{name}: replicas must not share {data_dir} (spool lock, RocksDB)"


def test_ingress_and_worker_scale_by_replicas_within_the_partitions():
    partitions = PROJECT.settings("worker").partitions
    assert partitions == PROJECT.settings("ingress").partitions
    for name in ("ingress", "worker"):
        assert int(PROJECT.service(name)["deploy"]["replicas"]) >= 1
    assert int(load_compose({"WORKER_REPLICAS": "5"}).service("worker")["deploy"]["replicas"]) == 5
    assert int(PROJECT.service("worker")["deploy"]["replicas"]) <= partitions, "workers past the partition count idle"


def test_the_load_balancer_spreads_callbacks_over_the_ingress_replicas():
    config = PROJECT.document["configs"]["lb"]["content"]
    ingress = PROJECT.settings("ingress")
    assert f"set $ingress ingress:{ingress.ingress_port};" in config
    assert "location /wechat/ {" in config, "only callbacks pass; /metrics and the health views stay inside"
    assert "resolver 127.0.0.11" in config, "Docker's DNS, so that scaled replicas are found"
    body_kb = int(re.search(r"client_max_body_size (\d+)k;", config)[1])
    assert body_kb * 1024 > ingress.max_body_bytes, "the ingress must see (and count) too large bodies itself"
    assert int(re.search(r"proxy_read_timeout (\d+)s;", config)[1]) > ingress.passive_reply_wait_s
    listen = int(re.search(r"listen (\d+);", config)[1])
    assert listen in PROJECT.ports("lb") and ("command", "lb", listen) in _addresses("simulator")


@pytest.mark.parametrize("name", ["triton", "trtllm-build"])
def test_triton_runs_the_trtllm_image_on_a_gpu(name):
    spec = PROJECT.service(name)
    assert re.fullmatch(r"nvcr\.io/nvidia/tritonserver:\d\d\.\d\d-trtllm-python-py3", spec["image"])
    devices = spec["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_triton_serves_the_repository_the_build_writes():
    """build.sh writes under OUT_DIR and fills the configs with paths under SERVE_DIR."""
    build = PROJECT.environment("trtllm-build")
    written = {m.target: m.source for m in PROJECT.mounts("trtllm-build")}[build["OUT_DIR"]]
    served = {m.target: m.source for m in PROJECT.mounts("triton")}[build["SERVE_DIR"]]
    assert written == served and written in PROJECT.document["volumes"]
    assert PROJECT.flag("triton", "--model-repository") == build["SERVE_DIR"] + "/model_repo"


def test_the_build_reads_inputs_from_mounts():
    build = PROJECT.environment("trtllm-build")
    targets = {m.target for m in PROJECT.mounts("trtllm-build")}
    assert {build["MODEL_DIR"], build["TRTLLM_DIR"]} <= targets


def test_the_build_runs_deploy_trtllm_build_sh():
    trtllm = ROOT / "deploy" / "trtllm"
    if not trtllm.exists():
        pytest.skip("deploy/trtllm (model repository and build script) is not in this tree yet")
    script = PROJECT.service("trtllm-build")["entrypoint"][-1]
    assert PROJECT.host_path("trtllm-build", script) == trtllm / "build.sh"
    assert (trtllm / "build.sh").is_file()


def test_the_model_repository_has_the_model_the_worker_asks_for():
    repository = ROOT / "deploy" / "trtllm" / "model_repo"
    if not repository.exists():
        pytest.skip("deploy/trtllm/model_repo is not in this tree yet")
    model = PROJECT.settings("worker").model_name
    assert (repository / model / "config.pbtxt").is_file(), f"the worker asks for {model!r}"


def _kafka_cluster(env: dict[str, str]) -> tuple[dict[int, str], dict[str, dict[str, str]]]:
    project = load_compose(env)
    profiles = set(filter(None, env.get("COMPOSE_PROFILES", "").split(",")))
    brokers = {
        name: project.environment(name)
        for name, spec in project.services.items()
        if spec.get("image", "").startswith("apache/kafka:") and (not spec.get("profiles") or profiles & set(spec["profiles"]))
    }
    voters = {}
    for voter in next(iter(brokers.values()))["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","):
        node, address = voter.split("@")
        voters[int(node)] = address
    return voters, brokers


@pytest.mark.parametrize(
    "env, size",
    [({}, 1), ({**read_env_file(THREE_BROKERS_ENV), "COMPOSE_PROFILES": "kafka-cluster"}, 3)],
    ids=["one broker", "three brokers"],
)
def test_kafka_brokers_form_one_kraft_cluster(env, size):
    voters, brokers = _kafka_cluster(env)
    assert len(brokers) == len(voters) == size
    for name, broker in brokers.items():
        assert voters[int(broker["KAFKA_NODE_ID"])] == f"{name}:9093", f"{name} is not the voter of its node id"
        assert broker["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert int(broker["KAFKA_DEFAULT_REPLICATION_FACTOR"]) <= size
        assert int(broker["KAFKA_MIN_INSYNC_REPLICAS"]) == 1, "wxstream's topics have one replica"
    assert len({broker["CLUSTER_ID"] for broker in brokers.values()}) == 1


def test_kafka_cluster_id_is_a_kraft_uuid():
    cluster_id = PROJECT.environment("kafka")["CLUSTER_ID"]
    try:
        raw = base64.urlsafe_b64decode(cluster_id + "==")
    except binascii.Error:
        raw = b""
    assert len(cluster_id) == 22 and len(raw) == 16, "generate one with kafka-storage.sh random-uuid"
