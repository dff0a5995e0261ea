"""A durable on-disk FIFO, so the ingress keeps accepting WeChat callbacks while Kafka is down.

WeChat gives up on a callback after a few retries within seconds, so the ingress takes the
record itself: it is appended here and fsync'd before the HTTP answer, and drained to Kafka
in order later. Pure synchronous file I/O; callers on an event loop use a thread.

Files in the spool directory (others, such as a caller's lock file, are left alone):

* ``spool-<firstseq:020d>.log``: append-only segments of framed records, little-endian::

      magic "WXS1" | seq u64 | unix time f64 | key len u32 | value len u32 | crc32 u32 | key | value

  The crc covers the 28 header bytes before it, the key and the value. Seqs are contiguous,
  so a segment holds ``firstseq, firstseq + 1, ...`` and its name says where it starts.
* ``ack``: the highest drained seq, in two slots of ``magic "WXA1" | seq u64 | crc32 u32``
  written in turn, in place (and fdatasync'd): an ack takes no new disk block, so a full
  disk cannot stop the drain from freeing segments, and a torn write spoils only the slot
  written, so after a crash the file holds the new value or the one before.

Recovery drops only what a crash can leave behind, a torn append at the end of the last
segment (with a warning). Any other damage raises :class:`SpoolCorruptError` naming the file
and offset, because dropping it could silently lose callbacks WeChat was told we have.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import re
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

__all__ = ("MAX_RECORD_BYTES", "Damage", "Spool", "SpoolCorruptError", "SpooledRecord", "salvage", "set_aside")

log = logging.getLogger("wxstream.ingress.spool")

MAX_RECORD_BYTES = 16 * 1024 * 1024  # key + value; far above any WeChat callback
_MAGIC = b"WXS1"
_HEAD = struct.Struct("<4sQdII")  # magic, seq, wall-clock time, key length, value length
_CRC = struct.Struct("<I")
_HDR = _HEAD.size + _CRC.size  # 32 bytes before the key
_ACK_MAGIC = b"WXA1"
_ACK = struct.Struct("<4sQ")  # magic, acked seq; followed by the crc32 of these 12 bytes
_ACK_FILE = "ack"
# The ack file's slots (see ``ack`` above); files of one slot, from earlier releases, are read too.
_ACK_SLOT = _ACK.size + _CRC.size
_ACK_SLOTS = 2
_SEGMENT = re.compile(r"spool-(\d{20})\.log")
_READ_CHUNK = 256 * 1024


class SpoolCorruptError(RuntimeError):
    """The spool holds damage that no crash can explain; refusing to guess and drop records."""

    def __init__(self, path: Path, offset: int, reason: str) -> None:
        super().__init__(f"spool file {path} is corrupt at offset {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    seq: int  # monotonically increasing across the spool's life (survives reopen)
    key: bytes
    value: bytes


@dataclass(eq=False, slots=True)
class _Segment:
    first: int
    path: Path
    size: int = 0  # bytes of whole records
    count: int = 0
    rfd: int = -1  # read descriptor, opened on first use

    @property
    def end(self) -> int:
        """The seq after this segment's last record."""
        return self.first + self.count


def _frame(buf: bytes | mmap.mmap | memoryview, off: int, size: int) -> tuple[int, float, int, int] | str:
    """(seq, time, key length, value length) of the whole, intact record at ``off``, or why not."""
    if size - off < _HDR:
        return "short header"
    magic, seq, ts, klen, vlen = _HEAD.unpack_from(buf, off)
    if magic != _MAGIC:
        return "bad magic"
    if klen + vlen > MAX_RECORD_BYTES:
        return f"record length {klen + vlen} out of range"
    end = off + _HDR + klen + vlen
    if end > size:
        return "record runs past the end of the file"
    (crc,) = _CRC.unpack_from(buf, off + _HEAD.size)
    if zlib.crc32(buf[off + _HDR : end], zlib.crc32(buf[off : off + _HEAD.size])) != crc:
        return "crc mismatch"
    return seq, ts, klen, vlen


class Spool:
    """Durable FIFO of (key, value) records on local disk.

    Thread-safe: appends may run in several threads while one thread drains with
    ``peek``/``ack``; ``len()`` and ``oldest_age_s`` never block, so an event loop may call them.
    """

    def __init__(self, directory: Path, *, fsync: bool = True, segment_bytes: int = 64 * 1024 * 1024) -> None:
        """Open or create the spool: scan the segments, drop a torn tail, restore the ack position.

        ``fsync=False`` still survives a killed process (the page cache outlives it) but not
        a power loss; it is for tests and benchmarks.
        """
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        self._dir = Path(directory)
        self._fsync = fsync
        self._segment_bytes = segment_bytes
        self._wlock = threading.Lock()  # the append path, held through its fsync
        self._lock = threading.Lock()  # the in-memory state; never held through an append's fsync
        self._closed = False
        self._failed: BaseException | None = None  # an fsync failed: the page cache can't be trusted
        self._after: dict[int, tuple[_Segment, int]] = {}  # last peek: seq -> where the next record starts
        self._dir.mkdir(parents=True, exist_ok=True)
        self._acked, self._ack_slot = _read_ack_file(self._dir / _ACK_FILE)
        self._ack_fd = self._open_ack()
        self._segs = self._recover()
        self._next = self._segs[-1].end
        self._wfd = os.open(self._segs[-1].path, os.O_WRONLY | os.O_APPEND)
        self._head_ts: float | None = None
        self._load_head_ts()

    # --- public API ---------------------------------------------------------------------

    def append(self, key: bytes, value: bytes) -> int:
        """Add a record and return its seq; with ``fsync=True`` it is on disk when this returns."""
        if len(key) + len(value) > MAX_RECORD_BYTES:
            raise ValueError(f"record of {len(key) + len(value)} bytes exceeds {MAX_RECORD_BYTES}")
        with self._wlock:
            self._check_open()
            if self._failed is not None:
                raise OSError(f"spool {self._dir} unusable after a failed fsync; reopen it") from self._failed
            seq, ts = self._next, time.time()
            head = _HEAD.pack(_MAGIC, seq, ts, len(key), len(value))
            crc = zlib.crc32(value, zlib.crc32(key, zlib.crc32(head)))
            frame = b"".join((head, _CRC.pack(crc), key, value))
            seg = self._segs[-1]
            if seg.size and seg.size + len(frame) > self._segment_bytes:
                seg = self._roll()
            try:
                done = os.write(self._wfd, frame)
                while done < len(frame):  # regular files take it all at once; be safe anyway
                    done += os.write(self._wfd, memoryview(frame)[done:])
            except BaseException as exc:
                try:  # cut a partial frame off, or the next append would land behind garbage
                    os.ftruncate(self._wfd, seg.size)
                except OSError:
                    self._failed = exc
                raise
            if self._fsync:
                try:
                    os.fdatasync(self._wfd)
                except BaseException as exc:
                    self._failed = exc
                    raise
            with self._lock:
                seg.size += len(frame)
                seg.count += 1
                self._next = seq + 1
                if self._head_ts is None:
                    self._head_ts = ts
            return seq

    def peek(self, limit: int) -> list[SpooledRecord]:
        """The oldest un-acked records, in order, at most ``limit``; does not consume them."""
        out: list[SpooledRecord] = []
        with self._lock:
            self._check_open()
            self._after.clear()
            idx, off, seq = self._hidx, self._hoff, self._acked + 1
            while len(out) < limit and seq < self._next:
                seg = self._segs[idx]
                if off >= seg.size:
                    idx, off = idx + 1, 0
                    continue
                buf = self._pread(seg, off, min(seg.size - off, _READ_CHUNK))
                if len(buf) >= _HDR:  # a first record larger than the chunk is read whole
                    need = _HDR + sum(_HEAD.unpack_from(buf)[3:])
                    if len(buf) < need <= seg.size - off:
                        buf = self._pread(seg, off, need)
                pos = 0
                while len(out) < limit and pos < len(buf):
                    got = _frame(buf, pos, len(buf))
                    if isinstance(got, str):
                        if pos and got in ("short header", "record runs past the end of the file"):
                            break  # the chunk ends mid-record: read on from here
                        raise SpoolCorruptError(seg.path, off + pos, got)
                    rseq, _, klen, vlen = got
                    if rseq != seq:
                        raise SpoolCorruptError(seg.path, off + pos, f"seq {rseq} where {seq} was expected")
                    start = pos + _HDR
                    pos = start + klen + vlen
                    out.append(SpooledRecord(seq, buf[start : start + klen], buf[start + klen : pos]))
                    self._after[seq] = (seg, off + pos)
                    seq += 1
                off += pos
        return out

    def ack(self, seq: int) -> None:
        """Mark everything up to ``seq`` drained, durably; delete segments left fully drained."""
        with self._lock:
            self._check_open()
            if seq >= self._next:
                raise ValueError(f"cannot ack seq {seq}: the last appended is {self._next - 1}")
            if seq <= self._acked:
                return
            idx, off = self._locate(seq + 1)
            self._write_ack(seq)
            self._acked, self._hidx, self._hoff = seq, idx, off
            self._gc()
            self._load_head_ts()

    def __len__(self) -> int:
        """Un-acked records (the spool depth). Lock-free."""
        return max(0, self._next - 1 - self._acked)

    @property
    def oldest_age_s(self) -> float | None:
        """Seconds since the oldest un-acked record was appended (its stored wall clock), or None. Lock-free."""
        ts = self._head_ts
        return None if ts is None else max(0.0, time.time() - ts)

    def close(self) -> None:
        with self._wlock, self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._wfd)
            os.close(self._ack_fd)
            for seg in self._segs:
                if seg.rfd >= 0:
                    os.close(seg.rfd)
                    seg.rfd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- recovery -----------------------------------------------------------------------

    def _open_ack(self) -> int:
        """The ack file, for writing in place; made two slots long first if it is not."""
        path = self._dir / _ACK_FILE
        if not path.exists() or path.stat().st_size != _ACK_SLOT * _ACK_SLOTS:
            tmp = self._dir / (_ACK_FILE + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_all(fd, _ack_slot(self._acked) * _ACK_SLOTS, 0)
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            if self._fsync:
                _fsync_dir(self._dir)
        return os.open(path, os.O_WRONLY)

    def _recover(self) -> list[_Segment]:
        """Scan the segments, check they chain up, drop drained ones; set the read cursor."""
        found = sorted((int(m[1]), name) for name in os.listdir(self._dir) if (m := _SEGMENT.fullmatch(name)))
        segs = [_Segment(first, self._dir / name) for first, name in found]
        want = self._acked + 1  # the oldest seq that must still be on disk
        # A segment followed by one starting at or before `want` is drained: delete, don't read.
        drained = [a for a, b in zip(segs, segs[1:]) if b.first <= want]
        segs = segs[len(drained) :]
        head_off = 0
        for i, seg in enumerate(segs):
            at = self._scan(seg, last=i == len(segs) - 1, want=want)
            if at is not None:
                head_off = at
        for a, b in zip(segs, segs[1:]):
            if b.first != a.end:
                raise SpoolCorruptError(b.path, 0, f"segment starts at seq {b.first}, expected {a.end}")
        if segs and segs[0].first > want:
            raise SpoolCorruptError(segs[0].path, 0, f"records {want}..{segs[0].first - 1} are missing")
        if segs and segs[-1].end < want:
            # Only after a power loss with fsync=False: the ack survived, the data did not.
            last = segs[-1].end - 1
            log.warning("spool %s: ack %d is past the data (%d); starting afresh", self._dir, want - 1, last)
            drained, segs = drained + segs, []
        for seg in drained:
            seg.path.unlink(missing_ok=True)
        if not segs:
            segs = [self._create_segment(want)]
        self._hidx = next((i for i, s in enumerate(segs) if s.first <= want < s.end), len(segs) - 1)
        self._hoff = head_off if segs[self._hidx].first <= want < segs[self._hidx].end else segs[-1].size
        return segs

    def _scan(self, seg: _Segment, *, last: bool, want: int) -> int | None:
        """Verify ``seg``, set its size and count, and return the offset of seq ``want`` if in it.

        Only the last segment may end in a torn record, and only if no intact record follows:
        a crash can tear the final append, never one before it."""
        size = seg.path.stat().st_size
        off, seq, at, bad = 0, seg.first, None, None
        if size:
            with open(seg.path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                while off < size:
                    got = _frame(mm, off, size)
                    if isinstance(got, str):
                        bad = got
                        break
                    if got[0] != seq:
                        raise SpoolCorruptError(seg.path, off, f"seq {got[0]} where {seq} was expected")
                    if seq == want:
                        at = off
                    off += _HDR + got[2] + got[3]
                    seq += 1
                # Older intact records after the damage are stale blocks that a power loss
                # can leave in a torn tail, not records appended after the damage.
                if bad is not None and (not last or _next_intact(mm, off + 1, size, seq) < size):
                    raise SpoolCorruptError(seg.path, off, bad)
        if bad is not None:
            log.warning("spool %s: dropping a torn record at offset %d (%s, %d bytes)", seg.path, off, bad, size - off)
            fd = os.open(seg.path, os.O_WRONLY)
            try:
                os.ftruncate(fd, off)
                if self._fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        seg.size, seg.count = off, seq - seg.first
        return at

    # --- internals ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"spool {self._dir} is closed")

    def _create_segment(self, first: int) -> _Segment:
        path = self._dir / f"spool-{first:020d}.log"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            if path.stat().st_size:  # records are never written over
                raise
            # Empty: left by a start of this segment that failed after creating it.
        if self._fsync:
            _fsync_dir(self._dir)
        return _Segment(first, path)

    def _roll(self) -> _Segment:
        """Start a new segment; the old one is made durable first, so only the last can be torn."""
        if self._fsync:
            try:
                os.fsync(self._wfd)
            except BaseException as exc:
                self._failed = exc  # as for an append's: the page cache can't be trusted
                raise
        seg = self._create_segment(self._next)
        wfd = os.open(seg.path, os.O_WRONLY | os.O_APPEND)
        os.close(self._wfd)
        self._wfd = wfd
        with self._lock:
            self._segs.append(seg)
            self._gc()
        return seg

    def _gc(self) -> None:
        """Move the cursor off a drained, finished segment and delete the segments behind it."""
        head = self._segs[self._hidx]
        if self._hoff >= head.size and self._hidx + 1 < len(self._segs):
            self._hidx, self._hoff = self._hidx + 1, 0
        for seg in self._segs[: self._hidx]:
            if seg.rfd >= 0:
                os.close(seg.rfd)
            seg.path.unlink(missing_ok=True)
        del self._segs[: self._hidx]
        self._hidx = 0

    def _locate(self, target: int) -> tuple[int, int]:
        """(segment index, offset) of seq ``target``, walking forward from the read cursor."""
        if (hit := self._after.get(target - 1)) is not None and hit[0] in self._segs:
            return self._segs.index(hit[0]), hit[1]
        idx, off, seq = self._hidx, self._hoff, self._acked + 1
        while seq < target:
            seg = self._segs[idx]
            if target >= seg.end:
                if idx + 1 == len(self._segs):
                    return idx, seg.size
                idx, off, seq = idx + 1, 0, self._segs[idx + 1].first
                continue
            magic, rseq, _, klen, vlen = _HEAD.unpack(self._pread(seg, off, _HEAD.size))
            if magic != _MAGIC or rseq != seq:
                raise SpoolCorruptError(seg.path, off, f"bad header walking to seq {target}")
            off += _HDR + klen + vlen
            seq += 1
        return idx, off

    def _load_head_ts(self) -> None:
        """Cache the oldest un-acked record's time, so ``oldest_age_s`` needs no I/O."""
        if self._acked + 1 >= self._next:
            self._head_ts = None
            return
        seg, off = self._segs[self._hidx], self._hoff
        if off >= seg.size:
            seg, off = self._segs[self._hidx + 1], 0
        self._head_ts = _HEAD.unpack(self._pread(seg, off, _HEAD.size))[2]

    def _pread(self, seg: _Segment, off: int, n: int) -> bytes:
        if seg.rfd < 0:
            seg.rfd = os.open(seg.path, os.O_RDONLY)
        data = os.pread(seg.rfd, n, off)
        if len(data) != n:
            raise SpoolCorruptError(seg.path, off, f"short read ({len(data)} of {n} bytes)")
        return data

    def _write_ack(self, seq: int) -> None:
        """Over the older slot, in place; the next ack takes the other one."""
        _write_all(self._ack_fd, _ack_slot(seq), self._ack_slot * _ACK_SLOT)
        if self._fsync:
            os.fdatasync(self._ack_fd)
        self._ack_slot = (self._ack_slot + 1) % _ACK_SLOTS


def _read_ack_file(path: Path) -> tuple[int, int]:
    """(the ack position, the slot to write the next ack to: the older one)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0, 0
    if len(data) not in (_ACK_SLOT, _ACK_SLOT * _ACK_SLOTS):
        raise SpoolCorruptError(path, 0, f"ack file damaged ({len(data)} bytes)")
    acks = [_ack_in(data[at : at + _ACK_SLOT]) for at in range(0, len(data), _ACK_SLOT)]
    if all(ack is None for ack in acks):
        raise SpoolCorruptError(path, 0, "ack file damaged")
    newest = max(range(len(acks)), key=lambda slot: -1 if acks[slot] is None else acks[slot])
    return int(acks[newest]), (newest + 1) % _ACK_SLOTS


def _ack_slot(seq: int) -> bytes:
    data = _ACK.pack(_ACK_MAGIC, seq)
    return data + _CRC.pack(zlib.crc32(data))


def _ack_in(slot: bytes) -> int | None:
    """The ack position a slot holds, or None when it is torn or was never written."""
    if len(slot) != _ACK_SLOT or _CRC.unpack_from(slot, _ACK.size)[0] != zlib.crc32(slot[: _ACK.size]):
        return None
    magic, acked = _ACK.unpack_from(slot)
    return int(acked) if magic == _ACK_MAGIC else None


def _fsync_dir(path: Path) -> None:
    """Make the entries of directory `path` (files created, renamed, deleted) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    if os.pwrite(fd, data, offset) != len(data):
        raise OSError(errno.EIO, f"short write of {len(data)} bytes at {offset}")


# --- damaged spools ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Damage:
    """Bytes of a spool file that hold no intact record."""

    path: Path
    offset: int
    length: int

    def __str__(self) -> str:
        return f"{self.path}: {self.length} bytes at offset {self.offset}"


def set_aside(directory: Path, destination: Path) -> None:
    """Move the spool's files (its segments and ack file; nothing else) to `destination`, so
    that a spool :class:`Spool` refuses to open waits there for :func:`salvage` while a new
    one starts in `directory`."""
    destination.mkdir(parents=True, exist_ok=False)
    for name in sorted(os.listdir(directory)):
        if _SEGMENT.fullmatch(name) or name in (_ACK_FILE, _ACK_FILE + ".tmp"):
            os.replace(directory / name, destination / name)
    for place in (destination, destination.parent, directory):
        _fsync_dir(place)


def salvage(directory: Path, damage: list[Damage]) -> Iterator[SpooledRecord]:
    """Every intact record of a spool not yet drained, in order and each once, also around
    damage that makes :class:`Spool` refuse it: records are found by their magic and crc.
    What holds no intact record is added to `damage`. A damaged ack file counts as nothing
    drained: the raw topic is at-least-once, and the dedupe agent drops what went before."""
    try:
        acked, _ = _read_ack_file(directory / _ACK_FILE)
    except SpoolCorruptError as exc:
        damage.append(Damage(exc.path, 0, exc.path.stat().st_size))
        acked = 0
    last = acked
    found = sorted((int(m[1]), name) for name in os.listdir(directory) if (m := _SEGMENT.fullmatch(name)))
    for _, name in found:
        path = directory / name
        size = path.stat().st_size
        if not size:
            continue
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            off = 0
            while off < size:
                got = _frame(mm, off, size)
                if isinstance(got, str):
                    end = _next_intact(mm, off + 1, size)
                    damage.append(Damage(path, off, end - off))
                    off = end
                    continue
                seq, _, klen, vlen = got
                start = off + _HDR
                off = start + klen + vlen
                if seq > last:  # older ones: drained, or stale blocks a power loss left
                    last = seq
                    yield SpooledRecord(seq, mm[start : start + klen], mm[start + klen : off])


def _next_intact(mm: mmap.mmap, start: int, size: int, seq: int = 0) -> int:
    """Where the next intact record of seq ``seq`` or later in ``mm[start:size]`` starts,
    or ``size``."""
    while (i := mm.find(_MAGIC, start, size)) != -1:
        got = _frame(mm, i, size)
        if not isinstance(got, str) and got[0] >= seq:
            return i
        start = i + 1
    return size
