"""Copy a Hugging Face checkpoint's tokenizer (its files, without the weights) for
Triton's pre- and postprocessing models, with the chat's end-of-turn token as eos_token.

TensorRT-LLM ends a request at one end id, which the stock preprocessing model takes from
the tokenizer's eos_token. GLM-4-9B-chat's eos_token is <|endoftext|>, but its chat turns
end with <|user|> (its generation_config lists both, and <|observation|>): with the
tokenizer as shipped, generation would run past the answer into an invented user turn.

    python3 copy_tokenizer.py MODEL_DIR TARGET_DIR [--eos-token '<|user|>']
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".ckpt"})
CONFIG = "tokenizer_config.json"
SPECIAL_TOKENS_MAP = "special_tokens_map.json"


class TokenizerError(ValueError):
    """The checkpoint has no tokenizer config, or the token is not one of its special tokens."""


def with_eos_token(config: dict, token: str) -> dict:
    """`config` (a tokenizer_config.json or special_tokens_map.json) with `token` as its eos_token."""
    known = {entry.get("content") for entry in config.get("added_tokens_decoder", {}).values()}
    if known and token not in known:
        raise TokenizerError(f"{token!r} is not a special token of this tokenizer")
    updated = dict(config)
    eos = config.get("eos_token")
    updated["eos_token"] = {**eos, "content": token} if isinstance(eos, dict) else token
    return updated


def copy_tokenizer(source: Path, target: Path, eos_token: str) -> list[Path]:
    """The tokenizer's files, copied from `source` into `target`; returns what was copied."""
    if not (source / CONFIG).is_file():
        raise TokenizerError(f"{source} has no {CONFIG}: is it a Hugging Face checkpoint?")
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix not in WEIGHT_SUFFIXES:
            copied.append(Path(shutil.copy2(path, target / path.name)))
    for name in (CONFIG, SPECIAL_TOKENS_MAP):
        path = target / name
        if path.is_file():
            config = json.loads(path.read_text(encoding="utf-8"))
            updated = with_eos_token(config, eos_token)
            path.write_text(json.dumps(updated, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the Hugging Face checkpoint directory")
    parser.add_argument("target", type=Path, help="where the tokenizer goes")
    parser.add_argument("--eos-token", default="<|user|>", help="the token that ends a reply (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        copied = copy_tokenizer(args.source, args.target, args.eos_token)
    except TokenizerError as exc:
        print(f"copy_tokenizer: {exc}", file=sys.stderr)
        return 1
    print(f"  tokenizer: {len(copied)} files in {args.target}, eos_token {args.eos_token}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
