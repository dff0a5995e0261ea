"""The embedded Triton Inference Server: the real `tritonserver` from the nvidia-pytriton
wheel, on CPU, serving `triton_models/` with the Python backend.

The wheel ships the server, the Python backend and one backend stub per Python version;
we assemble a backends directory once (the stub must be a copy) and start the server
with the library path and PATH its stubs need to find this interpreter's packages.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path
from typing import Sequence

from app.embedded.process import ManagedProcess, free_port, http_ready

__all__ = ("start_triton", "remove_orphaned_shm")

log = logging.getLogger("wxstream.embedded.triton")

# Where models of triton_models/ keep what they build once (tiny GLM-4 weights, SmolLM2 converted from GGUF).
MODEL_CACHE_ENV = "WXSTREAM_MODEL_CACHE"


def _pytriton_root() -> Path:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nvidia-pytriton is not installed; run `make run` to bootstrap the environment")
    return Path(spec.submodule_search_locations[0])


def _backends_dir(data_dir: Path, server_root: Path) -> Path:
    """`<data_dir>/triton/backends/python` with this Python's stub; built once."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = data_dir / "triton" / f"backends-py{version}"
    python = target / "python"
    stub = python / "triton_python_backend_stub"
    if not stub.exists():
        python.mkdir(parents=True, exist_ok=True)
        shutil.copy2(server_root / "python_backend_stubs" / version / "triton_python_backend_stub", stub)
        for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
            link = python / name
            if not link.exists():
                link.symlink_to(server_root / "backends" / "python" / name)
    return target


def _environment(root: Path) -> dict[str, str]:
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(root.parent / "nvidia_pytriton.libs")]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([p for p in libs if p] + [env.get("LD_LIBRARY_PATH", "")]).rstrip(os.pathsep)
    # The stub runs `python` from PATH: it must be this interpreter, with its packages.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


SHM_DIR = Path("/dev/shm")
SHM_PREFIX = "triton_python_backend_shm_region_"


def remove_orphaned_shm(shm_dir: Path = SHM_DIR, min_age_s: float = 60.0) -> int:
    """Delete the Python backend's shared-memory regions that no process maps any more;
    returns how many. A tritonserver that is killed (crash tests, kill -9, OOM) leaves its
    regions behind, 16 MiB each, until /dev/shm is full and no server starts. Regions
    younger than `min_age_s` are left alone: a server starting elsewhere may not have
    mapped them yet."""
    now = time.time()
    regions = set()
    for path in shm_dir.glob(SHM_PREFIX + "*"):
        try:
            if now - path.stat().st_mtime >= min_age_s:
                regions.add(str(path))
        except OSError:
            continue
    if not regions:
        return 0
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:  # gone, or another user's
            continue
        if SHM_PREFIX in text:
            regions -= {line.split(maxsplit=5)[-1] for line in text.splitlines() if SHM_PREFIX in line}
    removed = 0
    for region in regions:
        try:
            os.unlink(region)
            removed += 1
        except OSError:
            pass
    if removed:
        log.info("removed %d shared-memory regions left in %s by tritonservers that were killed", removed, shm_dir)
    return removed


def start_triton(
    model_repository: Path,
    data_dir: Path,
    log_dir: Path,
    host: str = "127.0.0.1",
    timeout: float = 120.0,
    *,
    http_port: int | None = None,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
    models: Sequence[str] | None = None,
) -> tuple[ManagedProcess, str]:
    """Start tritonserver on the given ports (a free one for each not given); returns the
    process and its gRPC `host:port`. With `models`, only those are loaded (`*`: all),
    at start, and the server is ready once they are; without, every model in the
    repository."""
    remove_orphaned_shm()
    root = _pytriton_root()
    server_root = root / "tritonserver"
    http_port = http_port or free_port(host)
    grpc_port = grpc_port or free_port(host)
    metrics_port = metrics_port or free_port(host)
    argv = [
        str(server_root / "bin" / "tritonserver"),
        f"--model-repository={model_repository.resolve()}",
        f"--backend-directory={_backends_dir(data_dir, server_root).resolve()}",
        f"--http-address={host}",
        f"--http-port={http_port}",
        f"--grpc-address={host}",
        f"--grpc-port={grpc_port}",
        f"--metrics-address={host}",
        f"--metrics-port={metrics_port}",
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
        "--exit-timeout-secs=5",
        "--backend-config=python,shm-default-byte-size=16777216",
    ]
    if models is not None:
        argv += ["--model-control-mode=explicit", *(f"--load-model={name}" for name in models)]
    env = _environment(root)
    env[MODEL_CACHE_ENV] = str((data_dir / "models").resolve())
    proc = ManagedProcess("tritonserver", argv, log_dir / "tritonserver.log", env=env).start()
    try:
        proc.wait_ready(http_ready(f"http://{host}:{http_port}/v2/health/ready"), timeout)
    except Exception:
        proc.stop()
        raise
    return proc, f"{host}:{grpc_port}"
