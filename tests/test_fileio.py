"""Atomic private writes and the cross-process lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qlikm2m.errors import ConfigError
from qlikm2m.fileio import atomic_write, locked


def test_atomic_write_creates_private_file_and_folder(tmp_path: Path) -> None:
    target = tmp_path / "new" / "file.json"
    atomic_write(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["file.json"], "no temp file left behind"


def test_atomic_write_replaces_and_tightens_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_failed_write_keeps_previous_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    atomic_write(target, b"previous")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"next")
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_lock_times_out_with_a_config_error_while_another_process_holds_it(tmp_path: Path) -> None:
    lock_path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from qlikm2m.fileio import locked\n"
            f"with locked(Path({str(lock_path)!r})):\n"
            "    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match="Timed out"), locked(lock_path, timeout=0.2):
            pass
    finally:
        holder.kill()
        holder.wait()
    with locked(lock_path, timeout=5):
        pass


def test_temp_files_left_by_killed_writers_are_removed_on_the_next_write(tmp_path: Path) -> None:
    target = tmp_path / "tokens" / "abc.json"
    atomic_write(target, b"first")
    stale = target.parent / ".abc.json.k1ll3d.tmp"
    stale.write_bytes(b"a token from a writer killed mid-write")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    in_flight = target.parent / ".abc.json.wr1t1ng.tmp"
    in_flight.write_bytes(b"another writer, right now")
    unrelated = target.parent / ".other.json.x.tmp"
    unrelated.write_bytes(b"")
    os.utime(unrelated, (old, old))

    atomic_write(target, b"second")

    assert not stale.exists()
    assert in_flight.exists(), "a recent temp file may belong to a live writer"
    assert unrelated.exists(), "only this file's own leftovers are touched"
    assert target.read_bytes() == b"second"
