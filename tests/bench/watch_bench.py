#!/usr/bin/python3
"""watch_bench.py - .pog/events: how soon a commit is readable, and what
readers cost a commit.

Mounts pogfs on a pool on ext4 (a temporary directory beside the
repository, or --dir), then measures in one run:
  1. latency from `commit` returning (the write to .pog/ctl) to the
     commit's event being readable on an open .pog/events (poll()),
     median and 90th percentile (goal: median under 1 ms);
  2. the time of a commit of one small change with no reader open, and
     with 100 readers each blocked in read() (each commit answers 100
     reads), alternated in rounds; prints the ratio (goal <= 1.1x):
     back to back (the next commit meets the 100 readers reading what
     the last one made: two cores are shared), and with a pause between
     commits (the commit's own cost).

    /usr/bin/python3 tests/bench/watch_bench.py [--commits N] [--readers R]
Binaries: $POGFS_BIN, $POG_BIN, else ./build/fs/pogfs and ./build/tools/pog.
Not part of the test suite.
"""
import argparse
import os
import select
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POGFS_BUILD_DIR", REPO / "build"))
POGFS = os.environ.get("POGFS_BIN", str(BUILD / "fs" / "pogfs"))
POG = os.environ.get("POG_BIN", str(BUILD / "tools" / "pog"))


def mount(pool, mnt):
    subprocess.run([POG, "mkfs", str(pool), "--size", "256M"], check=True,
                   stdout=subprocess.DEVNULL)
    mnt.mkdir()
    proc = subprocess.Popen([POGFS, str(pool), str(mnt), "-f"],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not os.path.ismount(mnt):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("pogfs did not mount")
        time.sleep(0.02)
    return proc


def unmount(mnt, proc):
    if subprocess.run(["fusermount3", "-u", str(mnt)],
                      stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
    proc.wait(timeout=120)


class Committer:
    def __init__(self, mnt):
        self.mnt = mnt
        self.fd = os.open(mnt / ".pog" / "ctl", os.O_RDWR)
        self.n = 0

    def change_and_commit(self):
        """One small change, then the commit; returns the commit's time."""
        self.n += 1
        with open(self.mnt / f"f{self.n % 50}", "w") as f:
            f.write(str(self.n))
        t0 = time.perf_counter()
        os.write(self.fd, b"commit\n")
        return time.perf_counter() - t0

    def close(self):
        os.close(self.fd)


def latency(mnt, commits):
    c = Committer(mnt)
    fd = os.open(mnt / ".pog" / "events", os.O_RDONLY | os.O_NONBLOCK)
    p = select.poll()
    p.register(fd, select.POLLIN)
    out = []
    try:
        for _ in range(commits):
            c.change_and_commit()
            t0 = time.perf_counter()  # commit returned
            assert p.poll(5000), "no event"
            out.append(time.perf_counter() - t0)
            while True:  # drain
                try:
                    if not os.read(fd, 1 << 16):
                        break
                except BlockingIOError:
                    break
    finally:
        os.close(fd)
        c.close()
    return out


def commit_times(mnt, commits, pause):
    c = Committer(mnt)
    out = []
    try:
        for _ in range(commits):
            out.append(c.change_and_commit())
            time.sleep(pause)  # the readers have read (or not)
        return out
    finally:
        c.close()


READERS = r"""
import os, sys, threading
fds = [os.open(sys.argv[1], os.O_RDONLY) for _ in range(int(sys.argv[2]))]
def run(fd):
    while True:
        try:
            if not os.read(fd, 1 << 16):
                return
        except OSError:
            return
for fd in fds:
    threading.Thread(target=run, args=(fd,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


def blocked_readers(mnt, n):
    """n readers in another process (its threads do not take this one's
    interpreter lock), each a thread blocked in read(): a pending request
    in the daemon, reading again after every answer."""
    proc = subprocess.Popen(["python3", "-c", READERS,
                             str(mnt / ".pog" / "events"), str(n)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.5)  # every thread is in read()
    return proc


def stop_readers(proc):
    proc.stdin.close()  # it exits; its blocked reads are interrupted
    proc.wait(timeout=60)


def ms(v):
    return f"{v * 1000:.3f} ms"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--readers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--pause", type=float, default=0.05,
                    help="seconds between commits in the second measure")
    ap.add_argument("--dir", default=None, help="where the pool goes (ext4)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir or REPO) as tmp:
        tmp = Path(tmp)
        mnt = tmp / "mnt"
        proc = mount(tmp / "bench.pool", mnt)
        try:
            lat = latency(mnt, args.commits)
            lat.sort()
            print(f"event latency after commit returned: median {ms(statistics.median(lat))}, "
                  f"p90 {ms(lat[int(len(lat) * 0.9)])}, max {ms(lat[-1])} "
                  f"({len(lat)} commits; goal: median < 1 ms)")
            for pause in (0.0, args.pause):
                commits_with_readers(mnt, args, pause)
        finally:
            unmount(mnt, proc)


def commits_with_readers(mnt, args, pause):
    none, many = [], []
    for _ in range(args.rounds):
        none += commit_times(mnt, args.commits // args.rounds, pause)
        readers = blocked_readers(mnt, args.readers)
        many += commit_times(mnt, args.commits // args.rounds, pause)
        stop_readers(readers)
    a, b = statistics.median(none), statistics.median(many)
    print(f"commit of one small change, {ms(pause)} between commits, median: "
          f"no reader {ms(a)}, {args.readers} blocked readers {ms(b)}: "
          f"ratio {b / a:.2f}x (goal <= 1.1x)")


if __name__ == "__main__":
    main()
