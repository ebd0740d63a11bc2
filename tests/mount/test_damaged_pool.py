"""Damaged pools are refused with one line, never crashed on, never hung on.

A real pool (files, a list, a ref, a big file, two commits) is copied many
times with a few random bytes changed: mostly in libpmemobj's metadata
(pool header and descriptor, the lanes' undo and redo logs, the heap
header, zone and chunk headers, the first runs, where the superblock and
segment table live), some anywhere. `pog info` and `pog fsck` must answer
each with an exit status 0, 1 or 2 (2: one line on stderr), never a signal
and never a hang; pogfs must mount a subset of them or refuse with one line.
The outcome counts are printed (pytest -s shows them). The suite runs 100
copies through the tools and 20 through the daemon (POGFS_DAMAGED_COPIES,
POGFS_DAMAGED_DAEMON_COPIES change that); tests/unit/test_damaged.c opens
and checks 1,000 copies in-process, each in a child.
"""
import collections
import concurrent.futures
import os
import random
import shutil
import struct
import subprocess
import tempfile
import time

import pytest
from pathlib import Path

from conftest import POG, POGFS, Mount, mkfs

COPIES = int(os.environ.get("POGFS_DAMAGED_COPIES", "100"))
DAEMON_COPIES = int(os.environ.get("POGFS_DAMAGED_DAEMON_COPIES", "20"))
TIMEOUT = 60  # seconds for one command on a 32 MiB pool: a hang, not load


def make_pool(tmp_path):
    pool = tmp_path / "base.pool"
    mkfs(pool, "32M")
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        root = m.path
        (root / "d").mkdir()
        for i in range(30):
            (root / "d" / f"f{i}").write_text(f"file {i}\n")
        (root / "big").write_bytes(random.Random(1).randbytes(20000))
        (root / "l").mkdir()
        subprocess.run(["setfattr", "-n", "user.pog.type", "-v", "list",
                        str(root / "l")], check=True)
        (root / "l" / "0").write_text("a\n")
        os.symlink("d/f1", root / "r")
        (root / ".pog" / "ctl").write_text("commit one\n")
        (root / "d" / "f2").write_text("changed\n")
        (root / ".pog" / "ctl").write_text("commit two\n")
    finally:
        m.stop()
    return pool


def regions(data):
    """(start, end, weight): where libpmemobj and pogfs keep metadata."""
    heap = struct.unpack_from("<Q", data, 4096 + 1024 + 16)[0]
    zone = heap + 1024
    chunks = zone + 64 + 65528 * 8
    return [(0, 8192, 3),               # pool header, descriptor, root fields
            (8192, heap, 3),            # lanes: undo and redo logs
            (heap, chunks, 2),          # heap header, zone and chunk headers
            (chunks, chunks + 2 * 262144, 1),  # first runs: superblock, table
            (0, len(data), 1)]          # anywhere


def damage(data, rnd, spots):
    start, end, _ = rnd.choices(spots, [w for *_, w in spots])[0]
    copy = bytearray(data)
    for _ in range(rnd.randint(1, 8)):
        copy[rnd.randrange(start, end)] ^= rnd.randrange(1, 256)
    return copy


def run_tool(cmd, path):
    """The outcome of one pog command: ('exit', N) or ('signal', N) or
    ('hang',), with its stderr."""
    try:
        p = subprocess.run([POG, cmd, str(path)], capture_output=True,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return ("hang",), ""
    err = p.stderr.decode(errors="replace")
    if p.returncode < 0:
        return ("signal", -p.returncode), err
    return ("exit", p.returncode), err


def reason(err):
    """The kind of a refusal: 'damaged pool metadata', 'not a pogfs pool'..."""
    line = err.strip().splitlines()[-1] if err.strip() else ""
    parts = line.split(": ")
    return parts[2] if len(parts) > 2 else line


@pytest.fixture
def shm():
    """Copies go to memory: on a disk every open's msync would dominate."""
    d = tempfile.mkdtemp(prefix="pogfs-damaged-",
                         dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def try_copy(base, spots, i, directory):
    """Damage copy i, run pog info and pog fsck on it: [(cmd, outcome,
    stderr)]."""
    copy = directory / f"copy{i}.pool"
    copy.write_bytes(damage(base, random.Random(i), spots))
    try:
        return [(cmd,) + run_tool(cmd, copy) for cmd in ("info", "fsck")]
    finally:
        copy.unlink()


def test_damaged_copies_are_refused_not_crashed_on(tmp_path, shm):
    base = make_pool(tmp_path).read_bytes()
    spots = regions(base)
    counts = collections.Counter()
    bad = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda i: (i, try_copy(base, spots, i, shm)),
                           range(COPIES))
        for i, runs in results:
            for cmd, outcome, err in runs:
                kind = reason(err) if outcome == ("exit", 2) else ""
                counts[(cmd,) + outcome + (kind,)] += 1
                if outcome[0] != "exit" or outcome[1] not in (0, 1, 2):
                    bad.append((i, cmd, outcome, err[-300:]))
                elif outcome[1] == 2 and len(err.strip().splitlines()) != 1:
                    bad.append((i, cmd, "not one line", err[-300:]))
    print(f"\n{COPIES} damaged copies:")
    for key, n in sorted(counts.items(), key=str):
        print(f"  {n:5d}  {' '.join(map(str, key))}")
    assert not bad, bad[:10]
    # the damage must have been seen: refusals and clean opens both occur
    assert counts[("info", "exit", 2, "damaged pool metadata")] > 0
    assert counts[("info", "exit", 0, "")] > 0


def mount_outcome(pool, mnt):
    """Start pogfs -f on pool: ('mounted',) (then unmounted), ('exit', N,
    stderr) or ('hang',). A daemon that dies by a signal shows as
    ('signal', N, stderr)."""
    mnt.mkdir()
    proc = subprocess.Popen([POGFS, str(pool), str(mnt), "-f"],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + TIMEOUT
    try:
        while not os.path.ismount(mnt):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace")
                kind = "exit" if proc.returncode >= 0 else "signal"
                return (kind, abs(proc.returncode), err)
            if time.monotonic() > deadline:
                return ("hang",)
            time.sleep(0.02)
        try:
            os.listdir(mnt)  # it answers (reads below may fail with EIO)
        except OSError:
            pass
        subprocess.run(["fusermount3", "-u", str(mnt)],
                       stderr=subprocess.DEVNULL)
        proc.wait(timeout=TIMEOUT)
        if proc.returncode < 0:
            return ("signal", -proc.returncode,
                    proc.stderr.read().decode(errors="replace"))
        return ("mounted",)
    finally:
        if proc.poll() is None:
            subprocess.run(["fusermount3", "-u", "-z", str(mnt)],
                           stderr=subprocess.DEVNULL)
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_daemon_refuses_damaged_copies(tmp_path, shm):
    base = make_pool(tmp_path).read_bytes()
    spots = regions(base)[:3]  # libpmemobj's metadata
    counts = collections.Counter()
    bad = []
    for i in range(DAEMON_COPIES):
        pool = shm / f"d{i}.pool"
        pool.write_bytes(damage(base, random.Random(10000 + i), spots))
        outcome = mount_outcome(pool, tmp_path / f"m{i}")
        pool.unlink()
        if outcome[0] == "mounted":
            counts["mounted"] += 1
            continue
        if outcome[0] != "exit" or outcome[1] == 0:
            bad.append((i, outcome))
            continue
        lines = outcome[2].strip().splitlines()
        if len(lines) != 1:
            bad.append((i, "refusal not one line", outcome))
        counts["refused: " + reason(outcome[2])] += 1
    print(f"\n{DAEMON_COPIES} damaged copies mounted:")
    for key, n in sorted(counts.items()):
        print(f"  {n:5d}  {key}")
    assert not bad, bad[:10]
    assert any(k.startswith("refused: damaged pool metadata") for k in counts)
