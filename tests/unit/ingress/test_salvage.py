"""`wxstream salvage-spool` without a broker: what it finds, what it refuses."""

from __future__ import annotations

from dataclasses import replace
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

from app.ingress.salvage import SalvageTally, run_salvage, summary
from app.ingress.spool import Damage, Spool, set_aside
from app.settings import Settings


def salvage_spool(data_dir: Path, *directories: Path, dry_run: bool = False) -> tuple[int, str, str]:
    """`wxstream --data-dir DATA_DIR salvage-spool [--dry-run] [DIR ...]`: (exit code, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    settings = replace(Settings.from_env({}), data_dir=data_dir)
    code = run_salvage(settings, SimpleNamespace(directories=list(directories), dry_run=dry_run), out, err)
    return code, out.getvalue(), err.getvalue()


def test_summary_names_what_was_written_and_what_the_damage_destroyed():
    tally = SalvageTally(found=3, acked=2, failed=["KafkaTimeoutError: flush"], damage=[Damage(Path("s/spool-1.log"), 46, 46)])

    text = summary(Path("s"), tally, dry_run=False)

    assert "s: 3 intact records not yet drained" in text
    assert "2 of 3 written to wxstream.events.raw.v1" in text
    assert "1 failed, first: KafkaTimeoutError: flush" in text
    assert "46 damaged bytes" in text and "s/spool-1.log: 46 bytes at offset 46" in text
    assert not tally.complete


def test_a_dry_run_counts_every_set_aside_spool_and_moves_nothing(tmp_path):
    damaged = tmp_path / "spool" / "damaged"
    for name, records in (("ingress-0-20261126T080000Z", 2), ("ingress-1-20261126T080000Z", 1)):
        live = tmp_path / name
        with Spool(live, fsync=False) as spool:
            for n in range(records):
                spool.append(b"k", b"v%d" % n)
        set_aside(live, damaged / name)

    code, out, _ = salvage_spool(tmp_path, dry_run=True)

    assert code == 0
    assert "ingress-0-20261126T080000Z: 2 intact records" in out and "ingress-1-20261126T080000Z: 1 intact" in out
    assert "dry run, nothing produced" in out
    assert sorted(p.name for p in damaged.iterdir()) == ["ingress-0-20261126T080000Z", "ingress-1-20261126T080000Z"]


def test_a_live_spool_is_refused(tmp_path):
    live = tmp_path / "spool" / "ingress-0"
    Spool(live, fsync=False).close()
    (live / ".lock").write_text("")

    code, _, err = salvage_spool(tmp_path, live)

    assert code == 2 and "is a live ingress spool" in err


def test_nothing_to_salvage_is_said_so(tmp_path):
    code, out, _ = salvage_spool(tmp_path)

    assert code == 0 and "no damaged spools in" in out
