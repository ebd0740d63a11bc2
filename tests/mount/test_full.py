"""A full pool can always be emptied (SPEC section 9): the reserve.

Each shape fills a 32 MiB pool until a growing operation through the mount
answers ENOSPC, commits and remounts; then rm (of files one by one and
rm -r), truncate, mv, commit, `gc` in ctl, and `pog gc` on the unmounted
pool all succeed, the space comes back (`pog info`, statfs), and new files
can be written again. The bulk of a fill of many small objects is
imported offline (`pog import POOL`, one commit) to about four fifths of
the pool, much faster than one file at a time through the mount; the rest
is imported through the mount (`pog import MNT/PATH`) and the last part is
one operation at a time, up to ENOSPC.
"""
import errno
import json
import os
import re
import subprocess

import pytest

from conftest import POG, POGFS, Mount, mkfs

POOL = "32M"


def _sanitized():
    r = subprocess.run(["ldd", POGFS], capture_output=True, text=True)
    return "libasan" in r.stdout


# Under ASan each fill takes minutes: there, the mount tests keep one
# shape, and tests/unit/test_full runs all of them under ASan too.
slow_under_asan = pytest.mark.skipif(
    os.path.exists(POGFS) and _sanitized(),
    reason="slow under ASan (the unit test test_full covers this shape)")


def pog(*args, check=True):
    return subprocess.run([POG, *map(str, args)], check=check,
                          capture_output=True, text=True)


def info_used(pool):
    """Blocks in use, from `pog info` of an unmounted pool."""
    out = pog("info", pool).stdout
    return int(re.search(r"\((\d+) of \d+ blocks", out).group(1))


def import_doc(mount, tmp_path, path, doc):
    """Import doc at mount/path; False once the pool is full."""
    f = tmp_path / "chunk.json"
    f.write_text(json.dumps(doc))
    r = pog("import", mount.path / path, f, check=False)
    if r.returncode == 0:
        return True
    assert "No space left" in r.stderr or "full" in r.stderr, r.stderr
    return False


def until_enospc(step):
    """Call step(i) for i = 0, 1, ... until it fails with ENOSPC."""
    i = 0
    while True:
        try:
            step(i)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
            return i
        i += 1


def statfs_reserve(mount):
    """statfs counts the reserve as free (f_bfree) but not available."""
    sv = os.statvfs(mount.path)
    st = mount.status()
    assert st["blocks_reserved"] >= 640
    assert sv.f_bfree - sv.f_bavail == st["blocks_reserved"]
    return sv


def prefill(pool, tmp_path, doc):
    """Import doc into the unmounted pool's root (committed)."""
    f = tmp_path / "prefill.json"
    f.write_text(json.dumps(doc))
    pog("import", pool, f)
    f.unlink()


def full_then_empty(tmp_path, fill, shrink, min_back, pre=None):
    """fill(mount) fills the pool to ENOSPC; shrink(mount) removes,
    truncates and renames with shell tools. min_back: blocks that at
    least must come back. pre: a document to import offline first."""
    pool = tmp_path / "full.pool"
    mkfs(pool, POOL)
    if pre:
        prefill(pool, tmp_path, pre)
    m = Mount(pool, tmp_path / "mnt")
    m.start()
    try:
        fill(m, tmp_path)
        # Full: the reserve is what is left, and only shrinking may use it.
        sv = statfs_reserve(m)
        assert sv.f_bavail < 300, sv
        with pytest.raises(OSError) as e:
            (m.path / "one-more").write_bytes(os.urandom(4096))
        assert e.value.errno == errno.ENOSPC
        assert "reserve" in m.status()["last_error"]
        m.commit("full")
        m.remount()
        full = m.status()["blocks_used"]
        shrink(m)
        m.commit("emptied some")
        m.ctl("gc\n")
        after_gc = m.status()["blocks_used"]
        assert after_gc + min_back <= full, (full, after_gc)
        m.stop()
        r = pog("gc", pool)
        assert r.returncode == 0
        used = info_used(pool)
        assert used <= after_gc
        assert pog("fsck", pool, check=False).returncode == 0
        m.start()
        # New files can be written, and committed, again.
        (m.path / "again").mkdir()
        for i in range(200):
            (m.path / "again" / f"f{i}").write_bytes(b"n" * 100)
        (m.path / "again" / "big").write_bytes(os.urandom(64 << 10))
        m.commit("written again")
        print(f"full {full} blocks, after emptying {after_gc}, "
              f"offline gc {used}")
    finally:
        m.stop()
    assert pog("fsck", pool, check=False).returncode == 0


def run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def small_tree(n, size=100):
    return {f"f{i}": "s" * (size - 1) + "\n" for i in range(n)}


PRE_DIRS = 34  # of about 42 that fill the pool


def pre_small():
    return {f"d{d}": small_tree(1000) for d in range(PRE_DIRS)}


def fill_small(m, tmp_path):
    d = PRE_DIRS
    while import_doc(m, tmp_path, f"d{d}", small_tree(1000)):
        d += 1
    top = m.path / "top"
    top.mkdir()
    until_enospc(lambda i: (top / f"f{i}").write_bytes(b"t" * 100))
    assert d > PRE_DIRS


def shrink_small(m):
    for i in range(1000):  # rm of 1,000 files, one by one
        os.unlink(m.path / "d1" / f"f{i}")
    run("rm", "-r", str(m.path / "d2"), str(m.path / "d3"))
    run("truncate", "-s", "10", str(m.path / "d4" / "f0"))
    run("truncate", "-s", "0", str(m.path / "d4" / "f1"))
    run("mv", str(m.path / "d4" / "f2"), str(m.path / "moved"))
    run("mv", str(m.path / "d5"), str(m.path / "d4" / "d5"))


@slow_under_asan
def test_full_small_files(tmp_path):
    """100-byte files in directories of 1,000."""
    full_then_empty(tmp_path, fill_small, shrink_small, 150, pre_small())


def fill_mib(m, tmp_path):
    def one(i):
        d = m.path / f"d{i // 4}"
        d.mkdir(exist_ok=True)
        with open(d / f"f{i % 4}", "wb") as f:
            f.write(os.urandom(1 << 20))
    assert until_enospc(one) >= 8
    until_enospc(lambda i: (m.path / f"s{i}").write_bytes(os.urandom(4096)))


def shrink_mib(m):
    os.unlink(m.path / "d0" / "f0")
    run("truncate", "-s", "1000", str(m.path / "d0" / "f1"))
    run("truncate", "-s", "0", str(m.path / "d0" / "f2"))
    run("mv", str(m.path / "d0" / "f3"), str(m.path / "moved"))
    run("rm", "-r", str(m.path / "d1"))


@slow_under_asan
def test_full_mib_files(tmp_path):
    """1 MiB files."""
    full_then_empty(tmp_path, fill_mib, shrink_mib, 1500)


def fill_big(m, tmp_path):
    with open(m.path / "big", "wb", buffering=0) as f:
        with pytest.raises(OSError) as e:
            while True:  # distinct bytes: nothing for dedup to share
                f.write(os.urandom(1 << 17))
        assert e.value.errno == errno.ENOSPC
    assert os.path.getsize(m.path / "big") > 8 << 20
    until_enospc(lambda i: (m.path / f"s{i}").write_bytes(os.urandom(4096)))


def shrink_big(m):
    size = os.path.getsize(m.path / "big")
    run("truncate", "-s", str(size // 2), str(m.path / "big"))
    run("mv", str(m.path / "big"), str(m.path / "half"))


def test_full_one_big_file(tmp_path):
    """One big file: truncating it to half gives half back."""
    full_then_empty(tmp_path, fill_big, shrink_big, 1000)


def chain(depth):
    doc = {}
    for _ in range(depth):
        doc = {"file": "d" * 99 + "\n", "d": doc}
    return doc


PRE_GROUPS = 13  # of about 16


def pre_deep():
    return {f"g{g}": {f"c{i}": chain(64) for i in range(20)}
            for g in range(PRE_GROUPS)}


def fill_deep(m, tmp_path):
    g = PRE_GROUPS
    while import_doc(m, tmp_path, f"g{g}",
                     {f"c{i}": chain(64) for i in range(20)}):
        g += 1

    def deeper(i):  # (the import that failed left part of g{g})
        p = m.path / "last" if i == 0 else deeper.last / "d"
        p.mkdir()
        (p / "file").write_bytes(b"d" * 100)
        deeper.last = p
    until_enospc(deeper)
    assert g > PRE_GROUPS


def shrink_deep(m):
    g0 = m.path / "g0"
    os.unlink(g0 / "c1" / "/".join(["d"] * 63) / "file")
    run("truncate", "-s", "3", str(g0 / "c2" / "/".join(["d"] * 30) / "file"))
    run("mv", str(g0 / "c3" / "/".join(["d"] * 10)), str(m.path / "lower"))
    run("rm", "-r", str(m.path / "g1"), *[str(g0 / f"c{i}") for i in range(4, 8)])


@slow_under_asan
def test_full_deep_dirs(tmp_path):
    """Chains of 64 nested directories, a file in each."""
    full_then_empty(tmp_path, fill_deep, shrink_deep, 150, pre_deep())


def fill_xattrs(m, tmp_path):
    def one(i):
        f = m.path / f"x{i}"
        f.write_bytes(b"x" * 100)
        for a in range(64):
            os.setxattr(f, f"user.attr{a}", bytes([97 + a % 26]) * 200)
    assert until_enospc(one) > 100


def shrink_xattrs(m):
    for i in range(1, 20):
        for a in range(64):
            os.removexattr(m.path / f"x{i}", f"user.attr{a}")
    for i in range(20, 60):
        os.unlink(m.path / f"x{i}")
    run("truncate", "-s", "0", str(m.path / "x60"))
    run("mv", str(m.path / "x61"), str(m.path / "renamed"))


@slow_under_asan
def test_full_xattrs(tmp_path):
    """Files of 64 xattrs of 200 bytes."""
    full_then_empty(tmp_path, fill_xattrs, shrink_xattrs, 300)


PRE_LISTS = 37  # of about 46


def pre_lists():
    return {f"l{n}": ["e" * 99 + "\n"] * 1000 for n in range(PRE_LISTS)}


def fill_lists(m, tmp_path):
    n = PRE_LISTS
    while import_doc(m, tmp_path, f"l{n}", ["e" * 99 + "\n"] * 1000):
        n += 1
    last = m.path / "last"
    last.mkdir()
    os.setxattr(last, "user.pog.type", b"list")
    until_enospc(lambda i: (last / str(i)).write_bytes(b"e" * 100))
    assert n > PRE_LISTS
    assert os.getxattr(m.path / "l0", "user.pog.type") == b"list"


def shrink_lists(m):
    for i in range(999, -1, -1):  # from the highest index down
        os.unlink(m.path / "l1" / str(i))
    run("rm", "-r", str(m.path / "l2"), str(m.path / "l3"))
    run("truncate", "-s", "7", str(m.path / "l4" / "5"))
    run("mv", str(m.path / "l4" / "999"), str(m.path / "from-list"))
    run("mv", str(m.path / "l4" / "3"), str(m.path / "l4" / "0"))


@slow_under_asan
def test_full_lists(tmp_path):
    """Lists of 1,000 entries named 0, 1, 2, ..."""
    full_then_empty(tmp_path, fill_lists, shrink_lists, 150, pre_lists())


@slow_under_asan
def test_full_huge_deletion_in_batches(tmp_path):
    """A deletion bigger than the reserve: rm -r of everything stops with
    ENOSPC, the reason in status; committing works, the commit's GC gives
    the space back, and rm -r goes on."""
    pool = tmp_path / "full.pool"
    mkfs(pool, POOL)
    prefill(pool, tmp_path, pre_small())
    m = Mount(pool, tmp_path / "mnt")
    # keep=1: once space is back, the batches' commits would be history
    # (the last 16 stay readable, holding what they had)
    m.start("-o", "keep=1")
    try:
        fill_small(m, tmp_path)
        m.commit("full")
        batches = 0
        for name in sorted(os.listdir(m.path)):
            for attempt in range(3):
                r = subprocess.run(["rm", "-r", str(m.path / name)],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    break
                assert "No space left" in r.stderr
                assert "commit" in m.status()["last_error"]
                m.commit("a batch")
                batches += 1
            assert r.returncode == 0, r.stderr
        assert batches > 0  # it was bigger than the reserve
        assert os.listdir(m.path) == []
        m.commit("the rest")
        m.ctl("gc\n")
        assert m.status()["blocks_used"] < 64
    finally:
        m.stop()
