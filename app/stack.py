"""`wxstream up`: the whole stack on one machine, started in order, stopped in reverse.

Broker (embedded unless WXSTREAM_KAFKA_URL), tritonserver (embedded unless
WXSTREAM_TRITON_URL), the WeChat simulator as the API the sender calls (unless
WXSTREAM_WECHAT_API_URL), the Faust worker and the ingress, each a supervised child
process.
The addresses of the running stack go to `<data_dir>/stack.json` so that tools such as
`wxstream send` find it with no configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from app.embedded.broker import start_broker
from app.embedded.process import ComponentError, ManagedProcess, free_port, http_ready, port_in_use
from app.embedded.triton import start_triton
from app.kafka_admin import ensure_topics
from app.settings import Settings
from app.worker_views import READY_PATH

__all__ = ("Stack", "StackAddresses", "read_stack_file")

STACK_FILE = "stack.json"


@dataclass(frozen=True)
class StackAddresses:
    kafka_url: str
    triton_url: str
    ingress_url: str
    web_url: str
    pid: int
    simulator_url: str = ""  # the embedded WeChat simulator, when the stack runs one


def read_stack_file(data_dir: Path) -> StackAddresses | None:
    """Addresses of a running `wxstream up` in this data dir, or None."""
    try:
        addresses = StackAddresses(**json.loads((data_dir / STACK_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(addresses.pid, 0)
    except OSError:
        return None  # stale: that `up` is gone
    return addresses


class Stack:
    """Starts and stops the components; `child_settings` is what the children run with."""

    def __init__(self, settings: Settings, echo: Callable[[str], None] = print) -> None:
        self.settings = replace(settings, data_dir=settings.data_dir.resolve())
        self.echo = echo
        self.log_dir = self.settings.data_dir / "logs"
        self.processes: list[ManagedProcess] = []
        self.child_settings: Settings | None = None
        self._child_env: dict[str, str] = {}
        self._triton_ports: dict[str, int] = {}  # the embedded tritonserver's, kept across restarts

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _status(self, name: str, where: str, proc: ManagedProcess | None = None) -> None:
        detail = f"pid {proc.pid}, log {proc.log_path}" if proc else "external"
        self.echo(f"  {name:<12} ready  {where:<34} ({detail})")

    def start(self) -> StackAddresses:
        s = self.settings
        started = time.monotonic()
        running = read_stack_file(s.data_dir)
        if running is not None and running.pid != os.getpid():
            raise ComponentError(
                f"a stack is already running from {s.data_dir} (pid {running.pid}, ingress {running.ingress_url}): "
                f"stop it first, or give this one a data dir of its own (WXSTREAM_DATA_DIR)"
            )
        if s.triton_url is None:
            self._check_models()
        self._check_ports()
        self.echo(f"wxstream: starting the stack (data in {s.data_dir})")
        kafka_url = s.kafka_url
        if kafka_url is None:
            self._forget_worker_state()
            broker, kafka_url = start_broker(self.log_dir)
            self.processes.append(broker)
            self._status("broker", kafka_url, broker)
        else:
            self._status("broker", kafka_url)
        ensure_topics(s, kafka_url)

        triton_url = s.triton_url
        if triton_url is None:
            self._triton_ports = {name: free_port() for name in ("http_port", "grpc_port", "metrics_port")}
            triton, triton_url = start_triton(
                s.triton_models, s.data_dir, self.log_dir, models=s.triton_model_names, **self._triton_ports
            )
            self.processes.append(triton)
            self._status("tritonserver", f"{triton_url} (gRPC)", triton)
        else:
            self._status("tritonserver", triton_url)

        simulator_port = 0 if s.wechat_api_url else s.simulator_port or free_port()
        child = replace(
            s,
            kafka_url=kafka_url,
            triton_url=triton_url,
            kafka_one_record_batches=s.one_record_batches,
            ingress_port=s.ingress_port or free_port(s.ingress_host),
            web_port=s.web_port or free_port(s.web_host),
            wechat_api_url=s.wechat_api_url or f"http://127.0.0.1:{simulator_port}",
            simulator_port=simulator_port or s.simulator_port,
        )
        self.child_settings = child
        env = self._child_env = {**os.environ, **child.to_env(), "PYTHONUNBUFFERED": "1"}
        simulator_url = ""
        if not s.wechat_api_url:
            simulator = self._spawn("simulate", env)
            simulator_url = child.wechat_api_url
            simulator.wait_ready(http_ready(simulator_url + "/_sim/stats"), timeout=30)
            self._status("wechat-sim", f"{simulator_url} (WeChat API)", simulator)
        else:
            self._status("wechat-api", s.wechat_api_url)
        worker = self._spawn("worker", env)
        worker.wait_ready(http_ready(child.web_url + READY_PATH), timeout=90)
        self._status("worker", f"{child.web_url} (Faust web)", worker)
        ingress = self._spawn("ingress", env)
        ingress.wait_ready(http_ready(child.ingress_url + "/readyz"), timeout=30)  # it reaches the broker
        self._status("ingress", f"{child.ingress_url}/wechat/<account>", ingress)

        addresses = StackAddresses(kafka_url, triton_url, child.ingress_url, child.web_url, os.getpid(), simulator_url)
        (s.data_dir / STACK_FILE).write_text(json.dumps(asdict(addresses), indent=2))
        self.echo(f"wxstream: up in {time.monotonic() - started:.1f}s")
        return addresses

    def _check_models(self) -> None:
        """Fail before starting anything when the embedded tritonserver is to load a model
        that triton_models/ does not have (it would only say so in its log)."""
        s = self.settings
        have = sorted(p.parent.name for p in s.triton_models.glob("*/config.pbtxt"))
        missing = [name for name in {s.model_name, *s.triton_model_names} - {"*"} if name not in have]
        if missing:
            raise ComponentError(
                f"no model {', '.join(map(repr, sorted(missing)))} in {s.triton_models} "
                f"(WXSTREAM_MODEL_NAME, WXSTREAM_MODEL_CANDIDATE, WXSTREAM_TRITON_LOAD_MODELS); it has: {', '.join(have)}"
            )

    def _check_ports(self) -> None:
        """Fail before starting anything when a fixed port the stack needs is taken (an
        earlier stack from another directory, most likely): the component would only fail
        after everything before it had started."""
        s = self.settings
        wanted = [("WXSTREAM_INGRESS_PORT", s.ingress_host, s.ingress_port), ("WXSTREAM_WEB_PORT", s.web_host, s.web_port)]
        if not s.wechat_api_url:
            wanted.append(("WXSTREAM_SIMULATOR_PORT", "127.0.0.1", s.simulator_port))
        taken = [f"{host}:{port} ({name})" for name, host, port in wanted if port and port_in_use(host, port)]
        if taken:
            raise ComponentError(
                f"port {', '.join(taken)} already in use: stop what holds it, or choose another port (0: any free one)"
            )

    def _forget_worker_state(self) -> None:
        """The embedded broker starts empty, so the worker's tables, whose changelogs and
        offsets it held, start empty too; Faust refuses local state ahead of its changelog."""
        state = self.settings.data_dir / "worker"
        if state.exists():
            shutil.rmtree(state, ignore_errors=True)
            self.echo(f"  (cleared the worker's tables in {state}: the embedded broker starts empty)")

    def _spawn(self, command: str, env: dict[str, str]) -> ManagedProcess:
        proc = ManagedProcess(
            command, [sys.executable, "-m", "app", command], self.log_dir / f"{command}.log", env=env
        ).start()
        self.processes.append(proc)
        return proc

    def component(self, name: str) -> ManagedProcess:
        return next(proc for proc in self.processes if proc.name == name)

    def stop_worker(self, *, kill: bool = False) -> None:
        """Stop the worker (SIGTERM, or SIGKILL with `kill`, as in a crash)."""
        worker = self.component("worker")
        if kill:
            worker.kill()
        worker.stop()
        self.processes.remove(worker)

    def start_worker(self, *, wipe_state: bool = False) -> ManagedProcess:
        """Start the worker again, optionally without its local RocksDB state (its tables
        must then come back from their changelogs), and wait until it serves."""
        assert self.child_settings is not None, "start() first"
        if wipe_state:
            shutil.rmtree(self.child_settings.data_dir / "worker", ignore_errors=True)
        worker = self._spawn("worker", self._child_env)
        worker.wait_ready(http_ready(self.child_settings.web_url + READY_PATH), timeout=90)
        return worker

    def stop_triton(self, *, kill: bool = False) -> None:
        """Stop the embedded tritonserver (SIGTERM, or SIGKILL with `kill`, as in a crash)."""
        triton = self.component("tritonserver")
        if kill:
            triton.kill()
        triton.stop()
        self.processes.remove(triton)

    def start_triton(self) -> ManagedProcess:
        """Start the embedded tritonserver again on the ports it had (clients keep their
        address) and wait until it is ready."""
        assert self._triton_ports, "no embedded tritonserver in this stack"
        s = self.settings
        triton, _ = start_triton(s.triton_models, s.data_dir, self.log_dir, models=s.triton_model_names, **self._triton_ports)
        # Keep the start order (broker, tritonserver, worker, ingress): stop() reverses it.
        at = next((i for i, proc in enumerate(self.processes) if proc.name in ("worker", "ingress")), len(self.processes))
        self.processes.insert(at, triton)
        return triton

    def watch(self, poll_s: float = 0.5) -> None:
        """Block until a component exits on its own; raise ComponentError naming it."""
        while True:
            for proc in self.processes:
                if not proc.alive:
                    raise ComponentError(f"{proc.name} exited with rc={proc.returncode()}{proc.log_tail()}")
            time.sleep(poll_s)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        stack_file = self.settings.data_dir / STACK_FILE
        if read_stack_file(self.settings.data_dir) is None or _owned(stack_file):
            stack_file.unlink(missing_ok=True)


def _owned(stack_file: Path) -> bool:
    try:
        return json.loads(stack_file.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError):
        return False
