#!/usr/bin/python3
"""fs_bench.py - staged operations through pogfs vs libfuse's passthrough_ll.

Builds passthrough_ll from the libfuse examples into a temporary directory,
mounts it over a tmpfs directory, mounts pogfs on a pool in /dev/shm, runs
the same workload on both in one run, and prints times and the ratios
pogfs/passthrough (goals: metadata <= 1.2x, data <= 1.4x). Then the data
path of issue 15, as speed ratios pogfs/passthrough (goal >= 1.0 each):
a sequential write (1 MiB writes), 4 KiB create+write, mkdir, 100-byte
appends to one log file, and `tar xf` of a tarball this script makes of
/usr/include (time ratio, goal <= 1.0).

Run as root (mounts tmpfs, drops the page cache before reads):
    /usr/bin/python3 tests/bench/fs_bench.py [--files N] [--mib M] [--repeat R]
                                             [--appends N] [--only data]
Binaries: $POGFS_BIN, $POG_BIN, else ./build/fs/pogfs and ./build/tools/pog.
Not part of the test suite.
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POGFS_BUILD_DIR", REPO / "build"))
POGFS = os.environ.get("POGFS_BIN", str(BUILD / "fs" / "pogfs"))
POG = os.environ.get("POG_BIN", str(BUILD / "tools" / "pog"))
EXAMPLES = Path("/usr/share/doc/libfuse3-dev/examples")


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def build_passthrough(tmp):
    src = EXAMPLES / "passthrough_ll.c"
    if not src.exists() and (EXAMPLES / "passthrough_ll.c.gz").exists():
        sh("sh", "-c", f"gunzip -c {EXAMPLES}/passthrough_ll.c.gz > {tmp}/passthrough_ll.c")
        src = tmp / "passthrough_ll.c"
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                           capture_output=True, text=True).stdout.split()
    out = tmp / "passthrough_ll"
    sh("gcc", "-O2", "-Wall", "-I", str(EXAMPLES), str(src), "-o", str(out), *flags)
    return out


def raise_nofile():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def wait_mount(path, proc, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.ismount(path):
        if proc.poll() is not None:
            raise RuntimeError(f"daemon for {path} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not mount")
        time.sleep(0.02)


def unmount(path, proc):
    subprocess.run(["fusermount3", "-u", str(path)], stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def workload(root, nfiles, mib):
    """Returns {operation: seconds}."""
    d = root / "bench"
    d.mkdir()
    names = [str(d / f"file{i:06d}") for i in range(nfiles)]
    payload = b"x" * 4096
    res = {}

    def create():
        for n in names:
            os.close(os.open(n, os.O_CREAT | os.O_WRONLY, 0o644))

    def stat():
        for n in names:
            os.stat(n)

    def readdir():
        for _ in range(10):
            with os.scandir(d) as it:
                for _e in it:
                    pass

    def write4k():
        for n in names:
            fd = os.open(n, os.O_WRONLY)
            os.write(fd, payload)
            os.close(fd)

    def read4k():
        for n in names:
            fd = os.open(n, os.O_RDONLY)
            os.read(fd, 8192)
            os.close(fd)

    renamed = [n + ".r" for n in names]

    def rename():
        for a, b in zip(names, renamed):
            os.rename(a, b)

    def unlink():
        for n in renamed:
            os.unlink(n)

    big = str(root / "big")
    block = os.urandom(1 << 20)

    def seq_write():
        fd = os.open(big, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        for _ in range(mib):
            os.write(fd, block)
        os.close(fd)

    def seq_read():
        fd = os.open(big, os.O_RDONLY)
        while os.read(fd, 1 << 20):
            pass
        os.close(fd)

    res["create"] = timed(create)
    res["stat"] = timed(stat)
    res["readdir x10"] = timed(readdir)
    res["write 4 KiB"] = timed(write4k)
    drop_caches()
    res["read 4 KiB"] = timed(read4k)
    res["rename"] = timed(rename)
    res["unlink"] = timed(unlink)
    res[f"seq write {mib} MiB"] = timed(seq_write)
    drop_caches()
    res[f"seq read {mib} MiB"] = timed(seq_read)
    os.unlink(big)
    d.rmdir()
    return res


def data_workload(root, nfiles, mib, appends, tarball):
    """Issue 15's data path. Returns {operation: (seconds, units, unit)}."""
    d = root / "data"
    d.mkdir()
    res = {}
    block = os.urandom(1 << 20)
    big = str(d / "big")

    def seq_write():
        fd = os.open(big, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        for _ in range(mib):
            os.write(fd, block)
        os.close(fd)

    payload = os.urandom(4096)
    files = [str(d / f"cw{i:06d}") for i in range(nfiles)]

    def create_write():
        for n in files:
            fd = os.open(n, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            os.write(fd, payload)
            os.close(fd)

    dirs = [str(d / f"dir{i:06d}") for i in range(nfiles)]

    def mkdirs():
        for n in dirs:
            os.mkdir(n)

    line = (b"2026-11-30T08:00:00 INFO something happened, "
            b"request 123456 took 17 ms; all well \n")
    line = (line * 3)[:99] + b"\n"

    def append():
        fd = os.open(str(d / "log"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
        for _ in range(appends):
            os.write(fd, line)
        os.close(fd)

    tdir = d / "tar"
    tdir.mkdir()

    def untar():
        sh("tar", "xf", str(tarball), "-C", str(tdir))

    # Between steps the kernel forgets its inodes (drop_caches), so that
    # passthrough_ll, which holds a descriptor for each, stays in its limit.
    res[f"seq write {mib} MiB"] = (timed(seq_write), mib, "MiB")
    os.unlink(big)
    drop_caches()
    res["create+write 4 KiB"] = (timed(create_write), nfiles, "files")
    drop_caches()
    res["mkdir"] = (timed(mkdirs), nfiles, "dirs")
    drop_caches()
    res["append 100 B"] = (timed(append), appends, "appends")
    drop_caches()
    res["tar xf /usr/include"] = (timed(untar), 1, "tar")
    return res


def run_data(args, pt_mnt, pog_mnt, tarball):
    """Best of --repeat runs of data_workload on both; prints the ratios."""
    best = {"passthrough": None, "pogfs": None}
    for _ in range(args.repeat):
        for name, m in (("passthrough", pt_mnt), ("pogfs", pog_mnt)):
            r = data_workload(m, args.files, args.mib, args.appends, tarball)
            if name == "pogfs":
                with open(m / ".pog" / "ctl", "w") as c:
                    c.write("abort\n")
            else:
                shutil.rmtree(m / "data")
            b = best[name]
            best[name] = r if b is None else {
                k: min(b[k], r[k], key=lambda x: x[0]) for k in r}
    print(f"\ndata path (issue 15), best of {args.repeat}; ratio = pogfs speed / "
          "passthrough_ll speed (for tar: pogfs time / passthrough_ll time)")
    print(f"{'operation':<22}{'passthrough_ll':>16}{'pogfs':>16}{'ratio':>8}  goal")
    for op, (tb, units, unit) in best["pogfs"].items():
        ta = best["passthrough"][op][0]
        if unit == "tar":
            ratio, goal = tb / ta, "<= 1.0"
            mark = "ok" if ratio <= 1.0 else "SLOW"
            sa, sb = f"{ta:.2f} s", f"{tb:.2f} s"
        else:
            ratio, goal = ta / tb, ">= 1.0"
            mark = "ok" if ratio >= 1.0 else "SLOW"
            if unit == "MiB":
                sa, sb = f"{units / ta:.0f} MiB/s", f"{units / tb:.0f} MiB/s"
            else:
                sa, sb = f"{units / ta:.0f} /s", f"{units / tb:.0f} /s"
        print(f"{op:<22}{sa:>16}{sb:>16}{ratio:>7.2f}x  {goal} {mark}")


def make_tarball(where):
    tarball = where / "include.tar"
    sh("tar", "cf", str(tarball), "-C", "/usr", "include")
    return tarball


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per file system; the best time counts")
    ap.add_argument("--pool-size", default="4G")
    ap.add_argument("--appends", type=int, default=50000,
                    help="100-byte appends to the log file")
    ap.add_argument("--only", choices=("meta", "data"),
                    help="run only the first table (meta) or the data path")
    ap.add_argument("--passthrough-default-permissions", action="store_true",
                    help="mount passthrough_ll with -o default_permissions too "
                         "(pogfs always has it: one GETATTR of the directory "
                         "before each change in it)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("pog: fs_bench: run as root (mounts tmpfs)")
    for b in (POGFS, POG):
        if not os.access(b, os.X_OK):
            sys.exit(f"pog: fs_bench: {b}: not built")

    tmp = Path(tempfile.mkdtemp(prefix="pogfs-bench."))
    shm = Path(tempfile.mkdtemp(prefix="pogfs-bench.", dir="/dev/shm"))
    mounted = []
    procs = []
    try:
        pt = build_passthrough(tmp)
        backing = tmp / "tmpfs"
        backing.mkdir()
        sh("mount", "-t", "tmpfs", "-o", f"size={args.mib + 1024}m", "tmpfs", str(backing))
        mounted.append(backing)
        pt_mnt = tmp / "passthrough"
        pt_mnt.mkdir()
        pt_opts = f"source={backing}"
        if args.passthrough_default_permissions:
            pt_opts += ",default_permissions"
        # passthrough_ll holds a descriptor per inode the kernel knows
        p = subprocess.Popen([str(pt), "-f", "-o", pt_opts, str(pt_mnt)],
                             preexec_fn=raise_nofile)
        procs.append((pt_mnt, p))
        wait_mount(pt_mnt, p)

        pool = shm / "bench.pool"
        sh(POG, "mkfs", str(pool), "--size", args.pool_size, stdout=subprocess.DEVNULL)
        pog_mnt = tmp / "pogfs"
        pog_mnt.mkdir()
        q = subprocess.Popen([POGFS, str(pool), str(pog_mnt), "-f"])
        procs.append((pog_mnt, q))
        wait_mount(pog_mnt, q)

        if args.only != "meta":
            run_data(args, pt_mnt, pog_mnt, make_tarball(shm))
        if args.only == "data":
            return
        results = {"passthrough": None, "pogfs": None}
        for _ in range(args.repeat):
            for name, m in (("passthrough", pt_mnt), ("pogfs", pog_mnt)):
                r = workload(m, args.files, args.mib)
                if name == "pogfs":
                    # keep the pool from filling up between repeats
                    with open(m / ".pog" / "ctl", "w") as c:
                        c.write("abort\n")
                best = results[name]
                results[name] = r if best is None else {k: min(best[k], r[k]) for k in r}

        print(f"\n{args.files} files, {args.mib} MiB sequential; best of {args.repeat}; "
              f"passthrough_ll {'with' if args.passthrough_default_permissions else 'without'}"
              " default_permissions")
        print(f"{'operation':<22}{'passthrough_ll':>16}{'pogfs':>12}{'ratio':>8}  goal")
        data_ops = ("write 4 KiB", "read 4 KiB")
        for op in results["pogfs"]:
            a, b = results["passthrough"][op], results["pogfs"][op]
            goal = 1.4 if op.startswith("seq") or op in data_ops else 1.2
            mark = "ok" if b / a <= goal else "SLOW"
            if op.startswith("seq"):
                ta = f"{args.mib / a:.0f} MiB/s"
                tb = f"{args.mib / b:.0f} MiB/s"
            else:
                ta = f"{a / args.files * 1e6:.1f} us"
                tb = f"{b / args.files * 1e6:.1f} us"
            print(f"{op:<22}{ta:>16}{tb:>12}{b / a:>7.2f}x  <= {goal} {mark}")
    finally:
        for m, p in reversed(procs):
            unmount(m, p)
        for m in reversed(mounted):
            subprocess.run(["umount", str(m)])
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


if __name__ == "__main__":
    main()
