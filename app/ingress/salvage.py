"""`wxstream salvage-spool [DIR ...]`: write the intact records of damaged ingress spools
to the raw topic.

An ingress that finds its spool too damaged to open sets it aside under
`<data dir>/spool/damaged/` and starts an empty one (app/ingress/server.py), so that it
takes WeChat's callbacks again at once. The callbacks in the damaged spool were answered,
so WeChat will not send them again: this writes every intact record not yet drained to the
raw topic, in the spool's order, with its key (so to its user's partition), acks=all, and
then moves the spool to `<data dir>/spool/salvaged/`. What the damage destroyed is listed
by file, offset and length. A record written before, by the drain or by an earlier run of
this command, is written again and the dedupe agent drops the copy: running it again is safe.
"""

from __future__ import annotations

import argparse
import shutil
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kafka import KafkaProducer

from app.datatools.broker import FLUSH_TIMEOUT_S, Produced, find_bootstrap, open_producer
from app.datatools.command import Ticker, UsageError, datatool
from app.ingress.server import damaged_spools_dir, spools_set_aside
from app.ingress.spool import Damage, salvage
from app.settings import Settings
from app.topics import RAW_EVENTS

__all__ = ("SalvageTally", "run_salvage", "salvaged_spools_dir")

PROGRESS_EVERY_S = 1.0


def salvaged_spools_dir(settings: Settings) -> Path:
    return settings.data_dir / "spool" / "salvaged"


@dataclass
class SalvageTally(Produced):
    """What one damaged spool held, and what of it the broker acknowledged."""

    found: int = 0  # intact records not yet drained
    damage: list[Damage] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.acked == self.found and not self.failed


def summary(directory: Path, tally: SalvageTally, *, dry_run: bool) -> str:
    lines = [f"salvage-spool: {directory}: {tally.found:,} intact records not yet drained"]
    if dry_run:
        lines.append("salvage-spool: dry run, nothing produced")
    else:
        lines.append(f"salvage-spool: {tally.acked:,} of {tally.found:,} written to {RAW_EVENTS.name} (acks=all)")
    if tally.failed:
        lines.append(f"salvage-spool: {len(tally.failed):,} failed, first: {tally.failed[0]}")
    lost = sum(damage.length for damage in tally.damage)
    if tally.damage:
        lines.append(f"salvage-spool: {lost:,} damaged bytes, whatever records they held are lost:")
        lines.extend(f"  {damage}" for damage in tally.damage)
    return "\n".join(lines)


def _spools_to_salvage(settings: Settings, given: list[Path]) -> list[Path]:
    if not given:
        return spools_set_aside(settings)
    for directory in given:
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory")
        if (directory / ".lock").exists():
            raise UsageError(f"{directory} is a live ingress spool (it has a .lock file): its ingress drains it")
    return given


def _salvage_one(directory: Path, producer: KafkaProducer | None, err: IO[str]) -> SalvageTally:
    tally = SalvageTally()
    ticker = Ticker(PROGRESS_EVERY_S)
    for record in salvage(directory, tally.damage):
        tally.found += 1
        if producer is not None:
            tally.track(producer.send(RAW_EVENTS.name, key=record.key, value=record.value))
        if ticker.due():
            progress = f"salvage-spool: {directory}: {tally.found:,} records read, {tally.acked:,} written"
            print(progress, file=err, flush=True)
    if producer is not None:
        producer.flush(timeout=FLUSH_TIMEOUT_S)
    return tally


@datatool("salvage-spool")
def run_salvage(settings: Settings, args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    spools = _spools_to_salvage(settings, args.directories)
    if not spools:
        print(f"salvage-spool: no damaged spools in {damaged_spools_dir(settings)}", file=out)
        return 0
    incomplete = 0
    with ExitStack() as clients:
        producer = None
        if not args.dry_run:
            producer = open_producer(settings, find_bootstrap(settings), "wxstream-salvage-spool")
            clients.callback(producer.close)
        for directory in spools:
            tally = _salvage_one(directory, producer, err)
            print(summary(directory, tally, dry_run=args.dry_run), file=out)
            if args.dry_run:
                continue
            if not tally.complete:
                incomplete += 1
                print(f"salvage-spool: {directory} stays where it is; running this again is safe", file=out)
                continue
            done = salvaged_spools_dir(settings) / directory.name
            done.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(directory, done)
            print(f"salvage-spool: moved to {done}", file=out)
    return 1 if incomplete else 0
