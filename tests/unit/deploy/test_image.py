"""The Dockerfile installs the project as pyproject.toml describes it and runs the
`wxstream` script; .dockerignore lets in exactly what that needs."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import fields

from app.settings import PREFIX, Settings
from tests.unit.deploy.compose import ROOT, load_compose

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
INSTRUCTIONS = [
    (keyword.upper(), argument)
    for keyword, argument in re.findall(r"^(\w+)\s+(.*(?:\\\n.*)*)$", DOCKERFILE, flags=re.MULTILINE)
]


def _arguments(keyword: str) -> list[str]:
    return [argument for name, argument in INSTRUCTIONS if name == keyword]


def _env() -> dict[str, str]:
    pairs = re.findall(r"(\w+)=(\S+)", " ".join(_arguments("ENV")))
    return dict(pairs)


def test_the_image_is_python_3_11_slim_with_the_project_installed():
    assert _arguments("FROM") == ["python:3.11-slim"]
    assert any(re.match(r"pip install \.(\s|$)", run) for run in _arguments("RUN"))


def test_the_entry_point_is_the_wxstream_script():
    (entrypoint,) = _arguments("ENTRYPOINT")
    assert json.loads(entrypoint) == ["wxstream"]
    assert PYPROJECT["project"]["scripts"]["wxstream"] == "app.cli:main"


def test_everything_pip_install_reads_is_copied_and_not_ignored():
    copied = {source.rstrip("/") for copy in _arguments("COPY") for source in copy.split()[:-1]}
    packages = {pattern.rstrip("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"], *packages}
    assert needed <= copied
    ignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignore, ".dockerignore lets in only what it lists"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert copied <= allowed, f"ignored by .dockerignore: {copied - allowed}"


def test_the_process_is_not_root_and_keeps_state_where_compose_mounts_volumes():
    (user,) = _arguments("USER")
    assert user not in {"root", "0"}
    env = _env()
    assert set(env) & {PREFIX + f.name.upper() for f in fields(Settings)} == {"WXSTREAM_DATA_DIR"}
    home = re.search(r"--home-dir (\S+) --create-home", " ".join(_arguments("RUN")))[1]
    assert env["WXSTREAM_DATA_DIR"] == home, "the data directory must belong to the process's user"
    project = load_compose()
    for name in ("ingress", "worker"):
        assert str(project.settings(name).data_dir) == home
