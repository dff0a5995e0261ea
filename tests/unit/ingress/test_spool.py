"""The ingress spool: FIFO order, durable acks, recovery from torn tails and real crashes."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import deque
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from app.ingress import spool as spool_module
from app.ingress.spool import MAX_RECORD_BYTES, Damage, Spool, SpoolCorruptError, SpooledRecord, salvage, set_aside

REPO_ROOT = Path(__file__).resolve().parents[3]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("spool-*.log"))


def seqs(records: list[SpooledRecord]) -> list[int]:
    return [r.seq for r in records]


def fill(spool: Spool, n: int, size: int = 10) -> list[int]:
    return [spool.append(b"k%d" % i, b"%d:" % i + b"v" * size) for i in range(n)]


def test_append_peek_ack_in_order(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False) as spool:
        assert len(spool) == 0 and spool.peek(10) == []
        assert fill(spool, 5) == [1, 2, 3, 4, 5]
        assert len(spool) == 5
        assert spool.peek(0) == []
        first = spool.peek(3)
        assert first == [SpooledRecord(i + 1, b"k%d" % i, b"%d:" % i + b"v" * 10) for i in range(3)]
        assert spool.peek(3) == first  # peek does not consume
        spool.ack(2)
        assert seqs(spool.peek(10)) == [3, 4, 5] and len(spool) == 3
        spool.ack(1)  # behind the ack position: nothing happens
        assert len(spool) == 3
        with pytest.raises(ValueError):
            spool.ack(6)  # never appended
        spool.ack(5)
        assert spool.peek(10) == [] and len(spool) == 0
        assert spool.append(b"", b"") == 6
        assert spool.peek(10) == [SpooledRecord(6, b"", b"")]


def test_reopen_keeps_seq_and_ack_position(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 5)
        spool.ack(3)
    with Spool(tmp_path) as spool:
        assert len(spool) == 2
        assert [(r.seq, r.key) for r in spool.peek(10)] == [(4, b"k3"), (5, b"k4")]
        assert spool.append(b"a", b"b") == 6
        spool.ack(6)
    with Spool(tmp_path) as spool:  # everything drained: the ack file alone carries the seq on
        assert len(spool) == 0 and spool.peek(10) == []
        assert spool.append(b"c", b"d") == 7


def test_segments_roll_over_and_drained_ones_are_deleted(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False, segment_bytes=200) as spool:
        fill(spool, 30)  # 46-byte frames: 4 to a segment
        names = [p.name for p in segments(tmp_path)]
        assert len(names) == 8 and names[0] == "spool-00000000000000000001.log"
        assert names[1] == "spool-00000000000000000005.log"
        assert seqs(spool.peek(100)) == list(range(1, 31))
        spool.ack(9)  # seqs 1..8 fill two segments exactly
        assert segments(tmp_path)[0].name == "spool-00000000000000000009.log"
        assert seqs(spool.peek(3)) == [10, 11, 12]
    with Spool(tmp_path, fsync=False, segment_bytes=200) as spool:
        assert seqs(spool.peek(100)) == list(range(10, 31))
        spool.ack(30)
        assert [p.name for p in segments(tmp_path)] == ["spool-00000000000000000029.log"]  # the active one
        assert spool.append(b"x", b"y") == 31


def test_records_larger_than_a_read_chunk_and_spanning_chunks(tmp_path: Path) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB, above the 256 KiB read chunk
    with Spool(tmp_path, fsync=False) as spool:
        values = [b"%d" % i * 700 for i in range(600)]  # ~1-2 KiB each, crossing chunk boundaries
        for v in values[:300]:
            spool.append(b"k", v)
        spool.append(b"big", big)
        for v in values[300:]:
            spool.append(b"k", v)
        got = spool.peek(1000)
        assert [r.value for r in got] == values[:300] + [big] + values[300:]
        spool.ack(300)
        assert spool.peek(1)[0].value == big
        spool.ack(301)
        assert spool.peek(1)[0].value == values[300]


def test_oversized_record_rejected(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False) as spool:
        with pytest.raises(ValueError):
            spool.append(b"k", b"\0" * MAX_RECORD_BYTES)
        assert spool.append(b"", b"\0" * MAX_RECORD_BYTES) == 1


def test_oldest_age_and_len(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(spool_module.time, "time", lambda: clock[0])
    with Spool(tmp_path, fsync=False) as spool:
        assert spool.oldest_age_s is None
        spool.append(b"a", b"1")
        clock[0] = 1005.0
        spool.append(b"b", b"2")
        clock[0] = 1012.5
        assert spool.oldest_age_s == 12.5 and len(spool) == 2
        spool.ack(1)
        assert spool.oldest_age_s == 7.5 and len(spool) == 1
    with Spool(tmp_path, fsync=False) as spool:  # the time is read back from the record
        assert spool.oldest_age_s == 7.5
        spool.ack(2)
        assert spool.oldest_age_s is None and len(spool) == 0


def test_closed_spool_refuses(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False)
    spool.close()
    spool.close()
    for call in (lambda: spool.append(b"k", b"v"), lambda: spool.peek(1), lambda: spool.ack(0)):
        with pytest.raises(ValueError):
            call()


def _three_records(directory: Path) -> tuple[bytes, int]:
    """A one-segment spool of three records; its bytes and the offset of the third record."""
    with Spool(directory, fsync=False) as spool:
        spool.append(b"k1", b"first")
        spool.append(b"k2", b"second")
        (seg,) = segments(directory)
        third_at = seg.stat().st_size
        spool.append(b"k3", b"third record")
    return seg.read_bytes(), third_at


def _assert_first_two_survive(directory: Path) -> None:
    with Spool(directory, fsync=False) as spool:
        assert [(r.seq, r.value) for r in spool.peek(10)] == [(1, b"first"), (2, b"second")]
        assert len(spool) == 2
        assert spool.append(b"k4", b"after") == 3
    with Spool(directory, fsync=False) as spool:
        assert [(r.seq, r.value) for r in spool.peek(10)] == [(1, b"first"), (2, b"second"), (3, b"after")]


def test_torn_tail_at_every_offset_is_dropped(tmp_path: Path) -> None:
    data, third_at = _three_records(tmp_path / "ref")
    for cut in range(third_at, len(data)):
        directory = tmp_path / f"cut{cut}"
        directory.mkdir()
        (directory / "spool-00000000000000000001.log").write_bytes(data[:cut])
        _assert_first_two_survive(directory)


def test_zero_filled_and_crc_damaged_tails_are_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data, third_at = _three_records(tmp_path / "ref")
    tails = {
        "zeros": data[:third_at] + b"\0" * (len(data) - third_at),  # size extended, data never landed
        "crc": data[:-1] + bytes([data[-1] ^ 0xFF]),  # last byte of the last value flipped
        "junk": data + b"garbage",
    }
    for name, content in tails.items():
        directory = tmp_path / name
        directory.mkdir()
        (directory / "spool-00000000000000000001.log").write_bytes(content)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="wxstream.ingress.spool"):
            if name == "junk":
                with Spool(directory, fsync=False) as spool:
                    assert seqs(spool.peek(10)) == [1, 2, 3]
            else:
                _assert_first_two_survive(directory)
        assert any("torn" in r.getMessage() for r in caplog.records), name


def test_stale_records_in_a_torn_tail_are_dropped_with_it(tmp_path: Path) -> None:
    # A power loss can leave old blocks in the file's tail: intact records of earlier seqs.
    data, third_at = _three_records(tmp_path / "ref")
    directory = tmp_path / "stale"
    directory.mkdir()
    (directory / "spool-00000000000000000001.log").write_bytes(data[:third_at] + b"\0" * 7 + data[:third_at])
    _assert_first_two_survive(directory)


def test_a_segment_start_that_failed_is_tried_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Spool(tmp_path, fsync=False, segment_bytes=100) as spool:
        fill(spool, 2)  # the next append starts a segment
        opened = os.open

        def out_of_descriptors(path, flags, *args):
            if str(path).endswith("spool-00000000000000000003.log") and flags & os.O_APPEND:
                raise OSError(24, "Too many open files")
            return opened(path, flags, *args)

        monkeypatch.setattr(os, "open", out_of_descriptors)
        with pytest.raises(OSError, match="Too many open files"):
            spool.append(b"k", b"v")
        monkeypatch.setattr(os, "open", opened)
        assert spool.append(b"k", b"v") == 3
        assert seqs(spool.peek(10)) == [1, 2, 3]


def test_damage_before_an_intact_record_raises(tmp_path: Path) -> None:
    data, third_at = _three_records(tmp_path / "ref")
    (tmp_path / "bad").mkdir()
    seg = tmp_path / "bad" / "spool-00000000000000000001.log"
    seg.write_bytes(data[: third_at - 1] + bytes([data[third_at - 1] ^ 1]) + data[third_at:])  # record 2's crc
    with pytest.raises(SpoolCorruptError) as err:
        Spool(tmp_path / "bad", fsync=False)
    assert str(seg) in str(err.value) and err.value.offset < third_at
    assert seg.read_bytes()[third_at:] == data[third_at:]  # nothing was truncated


def test_corruption_in_an_older_segment_raises(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False, segment_bytes=200) as spool:
        fill(spool, 12)
    first = segments(tmp_path)[0]
    intact = first.read_bytes()  # four 46-byte records
    damaged = bytearray(intact)
    damaged[46 + 40] ^= 0xFF  # inside the second record's value
    first.write_bytes(bytes(damaged))
    with pytest.raises(SpoolCorruptError, match=r"spool-00000000000000000001\.log.*offset 46: crc"):
        Spool(tmp_path, fsync=False, segment_bytes=200)
    first.write_bytes(intact[:-5])  # a torn tail is only legal in the last segment
    with pytest.raises(SpoolCorruptError, match="offset 138"):
        Spool(tmp_path, fsync=False, segment_bytes=200)


def test_missing_segment_raises(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False, segment_bytes=200) as spool:
        fill(spool, 12)
        spool.ack(2)
    segments(tmp_path)[1].unlink()
    with pytest.raises(SpoolCorruptError, match="expected 5"):
        Spool(tmp_path, fsync=False)
    segments(tmp_path)[0].unlink()
    with pytest.raises(SpoolCorruptError, match=r"records 3\.\.8 are missing"):
        Spool(tmp_path, fsync=False)


def test_ack_file_ahead_of_lost_data_and_damaged_ack_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(tmp_path, fsync=False) as spool:
        fill(spool, 5)
        spool.ack(5)
    segments(tmp_path)[0].write_bytes(b"")  # a power loss with fsync=False kept the ack, not the data
    with caplog.at_level(logging.WARNING, logger="wxstream.ingress.spool"), Spool(tmp_path, fsync=False) as spool:
        assert len(spool) == 0 and spool.append(b"k", b"v") == 6
    assert any("past the data" in r.getMessage() for r in caplog.records)
    (tmp_path / "ack").write_bytes(b"WXA1" + b"\0" * 12)
    with pytest.raises(SpoolCorruptError, match="ack file"):
        Spool(tmp_path, fsync=False)


def salvaged(directory: Path) -> tuple[list[tuple[int, bytes, bytes]], list[Damage]]:
    damage: list[Damage] = []
    return [(r.seq, r.key, r.value) for r in salvage(directory, damage)], damage


def test_salvage_reads_every_undrained_record_around_the_damage(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False, segment_bytes=200) as spool:
        fill(spool, 12)  # four 46-byte records a segment
        spool.ack(2)
    first, second, _ = segments(tmp_path)
    damaged = bytearray(second.read_bytes())
    damaged[46 + 40] ^= 0xFF  # record 6's value
    damaged[3 * 46 : 3 * 46 + 4] = b"junk"  # record 8's magic
    second.write_bytes(bytes(damaged))
    with pytest.raises(SpoolCorruptError):
        Spool(tmp_path, fsync=False)

    records, damage = salvaged(tmp_path)

    assert [seq for seq, _, _ in records] == [3, 4, 5, 7, 9, 10, 11, 12]  # 1 and 2 were drained
    assert records[0] == (3, b"k2", b"2:" + b"v" * 10)
    assert damage == [Damage(second, 46, 46), Damage(second, 138, 46)]
    assert str(damage[0]) == f"{second}: 46 bytes at offset 46"


def test_salvage_with_a_damaged_ack_file_reads_every_record_once(tmp_path: Path) -> None:
    data, third_at = _three_records(tmp_path)
    (tmp_path / "ack").write_bytes(b"junk")
    seg = segments(tmp_path)[0]
    seg.write_bytes(data + data[:third_at])  # stale blocks of records already read

    records, damage = salvaged(tmp_path)

    assert [seq for seq, _, _ in records] == [1, 2, 3]
    assert damage == [Damage(tmp_path / "ack", 0, 4)]


def test_set_aside_moves_the_spools_files_and_a_new_spool_starts_empty(tmp_path: Path) -> None:
    live, aside = tmp_path / "ingress-0", tmp_path / "damaged" / "ingress-0-1"
    with Spool(live, fsync=False, segment_bytes=200) as spool:
        fill(spool, 6)
        spool.ack(1)
    (live / ".lock").write_text("")

    set_aside(live, aside)

    assert sorted(p.name for p in live.iterdir()) == [".lock"]
    assert [seq for seq, _, _ in salvaged(aside)[0]] == [2, 3, 4, 5, 6]
    with Spool(live, fsync=False) as spool:
        assert len(spool) == 0 and spool.append(b"k", b"v") == 1


def test_acks_are_written_in_place_and_a_torn_one_falls_back_to_the_ack_before(tmp_path: Path) -> None:
    ack_file = tmp_path / "ack"
    with Spool(tmp_path, fsync=False) as spool:
        fill(spool, 5)
        inode = ack_file.stat().st_ino
        spool.ack(2)
        spool.ack(4)  # the other slot
        assert ack_file.stat().st_ino == inode and not (tmp_path / "ack.tmp").exists()
    data = bytearray(ack_file.read_bytes())
    data[20] ^= 0xFF  # the slot of ack 4, torn
    ack_file.write_bytes(bytes(data))
    with Spool(tmp_path, fsync=False) as spool:
        assert [record.seq for record in spool.peek(10)] == [3, 4, 5]  # ack 2 holds: sent again, not lost
        spool.ack(5)  # over the torn slot
    with Spool(tmp_path, fsync=False) as spool:
        assert len(spool) == 0 and spool.append(b"k", b"v") == 6


def test_an_ack_file_of_one_slot_from_an_earlier_release_is_read(tmp_path: Path) -> None:
    with Spool(tmp_path, fsync=False) as spool:
        fill(spool, 3)
    old = b"WXA1" + (2).to_bytes(8, "little")
    (tmp_path / "ack").write_bytes(old + zlib.crc32(old).to_bytes(4, "little"))
    with Spool(tmp_path, fsync=False) as spool:
        assert [record.seq for record in spool.peek(10)] == [3]
    assert (tmp_path / "ack").stat().st_size == 32


def test_failed_write_leaves_no_partial_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path, fsync=False)
    spool.append(b"k", b"before")
    real_write = spool_module.os.write

    def disk_full(fd: int, data: bytes) -> int:
        if fd != spool._wfd:
            return real_write(fd, data)
        real_write(fd, bytes(data)[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool_module.os, "write", disk_full)
    with pytest.raises(OSError):
        spool.append(b"k", b"lost")
    monkeypatch.undo()
    assert spool.append(b"k", b"after") == 2  # the partial frame was cut off; the spool goes on
    spool.close()
    with Spool(tmp_path, fsync=False) as spool:
        assert [(r.seq, r.value) for r in spool.peek(10)] == [(1, b"before"), (2, b"after")]


def test_concurrent_appends_while_draining(tmp_path: Path) -> None:
    spool = Spool(tmp_path, fsync=False, segment_bytes=4096)
    drained: list[SpooledRecord] = []
    done = threading.Event()

    def writer(w: int) -> None:
        for i in range(500):
            spool.append(b"w%d" % w, b"%d" % i)

    def drainer() -> None:
        while not (done.is_set() and len(spool) == 0):
            batch = spool.peek(37)
            if batch:
                drained.extend(batch)
                spool.ack(batch[-1].seq)
            else:
                time.sleep(0.0005)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    drain = threading.Thread(target=drainer)
    for t in [*threads, drain]:
        t.start()
    for t in threads:
        t.join()
    done.set()
    drain.join(timeout=10)
    spool.close()
    assert seqs(drained) == list(range(1, 2001))
    for w in range(4):  # each writer's records in its own order
        assert [r.value for r in drained if r.key == b"w%d" % w] == [b"%d" % i for i in range(500)]


CRASH_WRITER = """
import sys
from pathlib import Path
from app.ingress.spool import Spool
spool = Spool(Path(sys.argv[1]), segment_bytes=16384)
i = 0
while True:
    seq = spool.append(b"key-%d" % i, b"value-%d-" % i + b"x" * (i % 3000))
    print(seq, flush=True)
    i += 1
"""


def test_sigkill_loses_no_acknowledged_record(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_WRITER, str(tmp_path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(60)]  # ~90 KiB: several segments
        proc.send_signal(signal.SIGKILL)  # at whatever point the writer has reached
        rest, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    printed = [int(line) for line in lines + rest.splitlines(keepends=True) if line.endswith("\n")]
    acknowledged = len(printed)
    assert printed == list(range(1, acknowledged + 1))
    with Spool(tmp_path) as spool:
        got = spool.peek(10**6)
    assert seqs(got)[:acknowledged] == list(range(1, acknowledged + 1))
    assert len(got) in (acknowledged, acknowledged + 1)  # plus at most the append in flight
    for r in got:
        i = r.seq - 1
        assert r.key == b"key-%d" % i and r.value == b"value-%d-" % i + b"x" * (i % 3000)


_JUNK = st.binary(min_size=1, max_size=60).filter(lambda b: b"WXS1" not in b)


class SpoolMachine(RuleBasedStateMachine):
    """Any interleaving of append, peek, ack, reopen and torn appends keeps FIFO and loses nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="spool-hyp-"))
        self.spool = Spool(self.dir, fsync=False, segment_bytes=256)
        self.model: deque[tuple[int, bytes, bytes]] = deque()
        self.last_seq = 0

    @rule(key=st.binary(max_size=8), value=st.binary(max_size=120))
    def append(self, key: bytes, value: bytes) -> None:
        seq = self.spool.append(key, value)
        assert seq == self.last_seq + 1
        self.last_seq = seq
        self.model.append((seq, key, value))

    @rule(limit=st.integers(0, 20))
    def peek(self, limit: int) -> None:
        got = [(r.seq, r.key, r.value) for r in self.spool.peek(limit)]
        assert got == list(self.model)[:limit]

    @rule(n=st.integers(1, 12))
    def ack(self, n: int) -> None:
        n = min(n, len(self.model))
        if n:
            seq = self.model[n - 1][0]
            for _ in range(n):
                self.model.popleft()
            self.spool.ack(seq)

    @rule()
    def reopen(self) -> None:
        self.spool.close()
        self.spool = Spool(self.dir, fsync=False, segment_bytes=256)

    @rule(junk=_JUNK, torn_header=st.booleans())
    def crash_mid_append(self, junk: bytes, torn_header: bool) -> None:
        self.spool.close()
        with segments(self.dir)[-1].open("ab") as f:
            f.write(b"WXS1" + junk[:20] if torn_header else junk)
        self.spool = Spool(self.dir, fsync=False, segment_bytes=256)

    @invariant()
    def depth_and_segments(self) -> None:
        assert len(self.spool) == len(self.model)
        assert (self.spool.oldest_age_s is None) == (not self.model)
        firsts = [int(p.name[6:26]) for p in segments(self.dir)]
        head = self.model[0][0] if self.model else self.last_seq + 1
        assert firsts[0] <= head  # nothing un-acked was deleted
        assert len(firsts) == 1 or firsts[1] > head  # nothing fully drained was kept

    def teardown(self) -> None:
        self.spool.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestSpoolMachine = SpoolMachine.TestCase
TestSpoolMachine.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
