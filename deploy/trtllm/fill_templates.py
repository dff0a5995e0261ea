"""Fill the `${name}` placeholders of a tree of Triton config templates, strictly.

TensorRT-LLM's own tools/fill_template.py leaves placeholders it is not given in place,
and Triton then loads a config with `${...}` in it. Here every placeholder must be given
a value and every value must be used by some template, so a typo fails the build instead
of the deployment. The templates use the same names as tensorrtllm_backend's, so they
can be filled by either tool.

    python3 fill_templates.py TEMPLATES OUTPUT name=value [name=value ...]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class FillError(ValueError):
    """A placeholder without a value, or a value without a placeholder."""


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def fill(templates: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    """Each template (by name) with its placeholders replaced by `values`."""
    used: set[str] = set()
    filled = {}
    for name, text in templates.items():
        wanted = placeholders(text)
        missing = sorted(wanted - values.keys())
        if missing:
            raise FillError(f"{name}: no value for {', '.join('${' + m + '}' for m in missing)}")
        used |= wanted
        filled[name] = PLACEHOLDER.sub(lambda match: values[match.group(1)], text)
    unused = sorted(values.keys() - used)
    if unused:
        raise FillError(f"no template has a placeholder for {', '.join(unused)}")
    return filled


def parse_values(pairs: list[str]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not PLACEHOLDER.fullmatch("${" + name + "}"):
            raise FillError(f"expected name=value, got {pair!r}")
        values[name] = value
    return values


def fill_tree(source: Path, target: Path, values: dict[str, str]) -> list[Path]:
    """Copy `source` to `target` (replacing it), filling every `config.pbtxt`."""
    paths = sorted(source.rglob("config.pbtxt"))
    if not paths:
        raise FillError(f"no config.pbtxt under {source}")
    filled = fill({str(p.relative_to(source)): p.read_text(encoding="utf-8") for p in paths}, values)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    written = []
    for name, text in filled.items():
        (target / name).write_text(text, encoding="utf-8")
        written.append(target / name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("templates", type=Path, help="directory of config.pbtxt templates")
    parser.add_argument("output", type=Path, help="directory to write (replaced if it exists)")
    parser.add_argument("values", nargs="+", help="name=value for each ${name}")
    args = parser.parse_args(argv)
    try:
        written = fill_tree(args.templates, args.output, parse_values(args.values))
    except FillError as exc:
        print(f"fill_templates: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"  filled {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
