"""Shared-memory regions of killed tritonservers are removed; those in use are not."""

from __future__ import annotations

import mmap
import os

from app.embedded.triton import SHM_PREFIX, remove_orphaned_shm


def region(directory, name: str, age_s: float):
    path = directory / f"{SHM_PREFIX}{name}"
    path.write_bytes(b"\0" * mmap.PAGESIZE)
    then = path.stat().st_mtime - age_s
    os.utime(path, (then, then))
    return path


def test_only_old_regions_that_no_process_maps_are_removed(tmp_path):
    orphan = region(tmp_path, "orphan", age_s=3600)
    in_use = region(tmp_path, "in-use", age_s=3600)
    new = region(tmp_path, "new", age_s=0)
    other = tmp_path / "not-a-triton-region"
    other.write_bytes(b"x")
    os.utime(other, (0, 0))

    with open(in_use, "r+b") as file, mmap.mmap(file.fileno(), 0):
        assert remove_orphaned_shm(tmp_path, min_age_s=60) == 1

    assert not orphan.exists()
    assert in_use.exists() and new.exists() and other.exists()
