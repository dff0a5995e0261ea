"""docs/topics.md stays in step with app/topics.py: every topic and every record field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.topics import TOPICS

CATALOGUE = (Path(__file__).resolve().parents[2] / "docs" / "topics.md").read_text(encoding="utf-8")


def _section(name: str) -> str:
    start = CATALOGUE.index(f"## {name}\n")
    end = CATALOGUE.find("\n## ", start + 1)
    return CATALOGUE[start : end if end >= 0 else None]


@pytest.mark.parametrize("spec", TOPICS, ids=lambda spec: spec.name)
def test_every_topic_and_its_record_fields_are_documented(spec):
    section = _section(spec.name)
    assert f"`{spec.record.__name__}`" in section
    missing = [field for field in spec.record._options.fields if f"`{field}`" not in section]
    assert missing == [], f"{spec.name}: fields not in docs/topics.md"
