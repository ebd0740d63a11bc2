#!/usr/bin/python3
"""view_move_bench.py - what moving a mount's view costs, through FUSE.

Two mounts of one pool (the second added to the first's daemon). The
first makes 10,000 small files (100 directories of 100) and commits; the
second moves to that commit and stats every file, so that its kernel
holds all of them. Then the first rewrites N files and commits, and the
time of `abort` in the second (its view moves past that commit: the
daemon finds what changed and tells the kernel, inside the write to
.pog/ctl) is measured, for N = 1, 100 and 10,000; afterwards the second
mount must read the new bytes of every rewritten file.

    /usr/bin/python3 tests/bench/view_move_bench.py [--dir DIR]
Binaries: $POGFS_BIN, $POG_BIN, else ./build/fs/pogfs and ./build/tools/pog.
Not part of the test suite.
"""
import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POGFS_BUILD_DIR", REPO / "build"))
POGFS = os.environ.get("POGFS_BIN", str(BUILD / "fs" / "pogfs"))
POG = os.environ.get("POG_BIN", str(BUILD / "tools" / "pog"))

DIRS, FILES = 100, 100


def ctl(mnt, command):
    with open(mnt / ".pog" / "ctl", "w") as f:
        f.write(command)


def path(mnt, i):
    return mnt / f"d{i // FILES}" / f"f{i % FILES}"


def rewrite(mnt, n, stamp):
    for i in range(n):
        path(mnt, i).write_text(f"{stamp}:{i}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None, help="where the pool goes")
    args = ap.parse_args()
    top = Path(tempfile.mkdtemp(prefix="view_move_bench.",
                                dir=args.dir or REPO))
    pool, one, two = top / "p.pool", top / "one", top / "two"
    subprocess.run([POG, "mkfs", str(pool), "--size", "1G"], check=True,
                   stdout=subprocess.DEVNULL)
    one.mkdir()
    two.mkdir()
    mounted = []
    try:
        subprocess.run([POGFS, str(pool), str(one)], check=True)
        mounted.append(one)
        subprocess.run([POGFS, str(pool), str(two)], check=True)
        mounted.append(two)
        for d in range(DIRS):
            (one / f"d{d}").mkdir()
        rewrite(one, DIRS * FILES, 0)
        ctl(one, "commit\n")
        ctl(two, "abort\n")
        for stamp, n in enumerate((1, 100, DIRS * FILES), start=1):
            for i in range(DIRS * FILES):   # the kernel holds them all
                os.stat(path(two, i))
            rewrite(one, n, stamp)
            ctl(one, "commit\n")
            t0 = time.perf_counter()
            ctl(two, "abort\n")
            t = time.perf_counter() - t0
            stale = sum(path(two, i).read_text() != f"{stamp}:{i}\n"
                        for i in range(n))
            print(f"moving a view past a commit of {n:5d} changed files "
                  f"(10,000 held by the kernel): {t * 1e3:8.3f} ms"
                  f"{'' if not stale else f', {stale} STALE READS'}",
                  flush=True)
    finally:
        for m in reversed(mounted):
            subprocess.run(["fusermount3", "-u", str(m)])
        time.sleep(1)
        subprocess.run(["rm", "-rf", str(top)])


if __name__ == "__main__":
    main()
