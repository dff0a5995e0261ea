"""Reading docker-compose.yml the way Docker Compose does, as far as these tests need:
YAML with merge keys, then `${VAR:-default}` interpolation, then questions about services
(their ports, mounts, settings)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

import yaml

from app.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
THREE_BROKERS_ENV = ROOT / "deploy" / "kafka" / "three-brokers.env"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)


class InterpolationError(ValueError):
    """A variable the file uses has neither a value nor a default."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: `$$` is a literal `$`; `${VAR:-default}` (unset or empty)
    and `${VAR-default}` (unset) fall back. Stricter than Compose, which turns an unset
    variable into an empty string with a warning: here that is an error, so that a stray
    `$` (an nginx variable, say) is caught."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        value, op = env.get(name), match["op"]
        if op == ":-" and not value:
            return match["arg"]
        if op == "-" and value is None:
            return match["arg"]
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise InterpolationError(f"${{{name}}} is required: {match['arg']}")
        if value is None:
            raise InterpolationError(f"${name} has no value and no default (write $$ for a literal $)")
        return value

    return _VARIABLE.sub(substitute, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines of a Compose env file; comments and blank lines skipped."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


def raw_compose() -> dict[str, Any]:
    """The file as YAML, merge keys resolved, variables not yet interpolated."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def load_compose(env: Mapping[str, str] | None = None) -> "Project":
    """The project as Compose sees it with `env` as the shell's environment (default: none
    set, so every default applies)."""
    return Project(_interpolate_tree(raw_compose(), env or {}))


@dataclass(frozen=True)
class Mount:
    source: str | None  # None: an anonymous volume
    target: str
    read_only: bool

    @property
    def is_bind(self) -> bool:
        return self.source is not None and self.source.startswith((".", "/", "~"))


def parse_mount(entry: str | dict[str, Any]) -> Mount:
    """A `volumes` entry: the long syntax (a mapping), or the short one: `target`,
    `source:target` or `source:target:mode`."""
    if isinstance(entry, dict):
        return Mount(entry.get("source"), entry["target"], bool(entry.get("read_only")))
    parts = entry.split(":")
    if len(parts) == 1:
        return Mount(None, parts[0], False)
    return Mount(parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(","))


def container_port(entry: str | int) -> int:
    """The container side of a `ports`/`expose` entry: `[ip:][host:]container[/proto]`."""
    return int(str(entry).split("/")[0].rsplit(":", 1)[-1])


@dataclass(frozen=True)
class Project:
    document: dict[str, Any]

    @property
    def services(self) -> dict[str, dict[str, Any]]:
        return self.document["services"]

    def service(self, name: str) -> dict[str, Any]:
        return self.services[name]

    def app_services(self) -> dict[str, dict[str, Any]]:
        """Services that run the wxstream image built from the Dockerfile."""
        return {name: spec for name, spec in self.services.items() if "build" in spec}

    def command(self, name: str) -> list[str]:
        command = self.service(name).get("command", [])
        return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]

    def environment(self, name: str) -> dict[str, str]:
        env = self.service(name).get("environment", {})
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        return {key: "" if value is None else str(value) for key, value in env.items()}

    def settings(self, name: str) -> Settings:
        """The Settings the service's process builds from its environment."""
        return Settings.from_env({k: v for k, v in self.environment(name).items() if k.startswith(PREFIX)})

    def ports(self, name: str) -> set[int]:
        """Container ports a service publishes or exposes: where others may reach it."""
        spec = self.service(name)
        return {container_port(entry) for entry in [*spec.get("ports", []), *spec.get("expose", [])]}

    def mounts(self, name: str) -> list[Mount]:
        return [parse_mount(entry) for entry in self.service(name).get("volumes", [])]

    def host_path(self, name: str, container_path: str) -> Path | None:
        """The repository path a container path of `name` comes from, through its bind
        mounts (the deepest mount wins); None when no bind mount covers it."""
        wanted = PurePosixPath(container_path)
        best: tuple[int, Path] | None = None
        for mount in self.mounts(name):
            target = PurePosixPath(mount.target)
            if mount.is_bind and (wanted == target or target in wanted.parents):
                depth = len(target.parts)
                if best is None or depth > best[0]:
                    best = (depth, (ROOT / mount.source / wanted.relative_to(target)).resolve())
        return best[1] if best else None

    def flag(self, name: str, flag: str) -> str | None:
        """The value of `--flag=value` or `--flag value` in a service's command."""
        args = self.command(name)
        for i, arg in enumerate(args):
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
        return None
