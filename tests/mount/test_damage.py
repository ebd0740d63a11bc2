"""A damaged page fails the read, whatever its range (SPEC section 9).

A byte of a committed file's page is flipped in the pool file; through the
mount every read whose range touches that page fails with EIO (read,
mmap, splice, readahead), the file's size never changes, and reads wholly
before or after it return the right bytes. The kernel serves reads
through the page cache: a read() that starts before the damaged page gets
the bytes up to it and the next read() fails, as on any Linux filesystem
with a bad block; what never happens is a read that ends early and then
finds the end of the file (the daemon never answers a short read that is
not the end: it fails the whole request, and the kernel then reads the
pages the caller wants one by one).
"""
import ctypes
import errno
import mmap
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import POG, POGFS, Mount, mkfs

PAGE = 4096
SEG_MAGIC = b"POGGSEG1"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.readahead.argtypes = [ctypes.c_int, ctypes.c_long, ctypes.c_size_t]


def page_bytes(i, tag=b"pg"):
    """A page whose bytes occur nowhere else in the pool."""
    unit = tag + b"%05d-" % i
    return (unit * (PAGE // len(unit) + 1))[:PAGE]


def flip(pool, offset, mask=0x5A):
    with open(pool, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ mask]))


def damage_page(pool, content, at=100):
    """Flip one byte of the one block holding content; its pool offset."""
    raw = Path(pool).read_bytes()
    off = raw.find(content)
    assert off >= 0, "page not found in the pool file"
    assert raw.find(content, off + 1) < 0, "page stored twice"
    flip(pool, off + at)
    return off


def drop_cache(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def pread_or_errno(fd, size, off):
    try:
        return os.pread(fd, size, off)
    except OSError as e:
        return e.errno


def read_loop(fd, bufsize):
    """Read as cat does until EOF or an error: (bytes, errno or 0)."""
    out = []
    while True:
        try:
            b = os.read(fd, bufsize)
        except OSError as e:
            return b"".join(out), e.errno
        if not b:
            return b"".join(out), 0
        out.append(b)


def in_child(code, *args):
    """Run python code in a child; its returncode (-SIGBUS when killed)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code),
                           *map(str, args)]).returncode


MMAP_READ = """
    import mmap, os, sys
    path, size, pages = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    fd = os.open(path, os.O_RDONLY)
    m = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    for p in pages:
        i = int(p)
        unit = b"pg%05d-" % i
        want = (unit * (4096 // len(unit) + 1))[:4096]
        if m[i * 4096:(i + 1) * 4096] != want:
            sys.exit(3)
    sys.exit(0)
"""


TEN_PAGES = b"".join(page_bytes(i) for i in range(10))


@pytest.fixture(scope="module")
def damaged_pool(tmp_path_factory):
    """A store with a 40,960-byte file f whose 4th page (page 3) is
    damaged, built once; each test mounts a copy of it."""
    d = tmp_path_factory.mktemp("damaged")
    pool = d / "damaged.pool"
    mkfs(pool, "64M")
    m = Mount(pool, d / "mnt")
    m.start()
    try:
        (m.path / "f").write_bytes(TEN_PAGES)
        (m.path / "other").write_bytes(b"fine\n" * 2000)
        m.commit("ten pages")
    finally:
        m.stop()
    damage_page(pool, page_bytes(3))
    yield pool
    pool.unlink()


@pytest.fixture
def damaged(damaged_pool, tmp_path):
    pool = tmp_path / "copy.pool"
    shutil.copyfile(damaged_pool, pool)
    m = Mount(pool, tmp_path / "mnt")
    m.start()
    try:
        yield m, TEN_PAGES
    finally:
        m.stop()
        pool.unlink()


def test_cat_fails_and_size_stays(damaged, tmp_path):
    m, data = damaged
    f = m.path / "f"
    assert f.stat().st_size == len(data)
    r = subprocess.run(f"cat '{f}' > '{tmp_path}/copy'", shell=True,
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "Input/output error" in r.stderr
    copied = (tmp_path / "copy").read_bytes()
    assert copied == data[:len(copied)] and len(copied) <= 3 * PAGE
    assert f.stat().st_size == len(data)
    r = subprocess.run(["dd", f"if={f}", f"of={tmp_path}/dd", "bs=1M"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Input/output error" in r.stderr
    assert f.stat().st_size == len(data)
    assert (m.path / "other").read_bytes() == b"fine\n" * 2000
    status = m.status()
    assert status["checksum_errors"] >= 1
    assert "checksum" in status["last_error"]


def test_reads_before_and_after(damaged):
    m, data = damaged
    f = m.path / "f"
    for order in (range(10), reversed(range(10))):
        drop_cache(f)
        fd = os.open(f, os.O_RDONLY)
        try:
            for i in order:
                got = pread_or_errno(fd, PAGE, i * PAGE)
                if i == 3:
                    assert got == errno.EIO
                else:
                    assert got == data[i * PAGE:(i + 1) * PAGE], i
        finally:
            os.close(fd)
    # reads inside the page, or across it, never give a byte of it
    fd = os.open(f, os.O_RDONLY)
    try:
        for off, size in [(3 * PAGE + 10, 5), (3 * PAGE - 1, 2),
                          (2 * PAGE, 2 * PAGE), (0, len(data)),
                          (3 * PAGE + PAGE - 1, 100)]:
            drop_cache(f)
            got = pread_or_errno(fd, size, off)
            if got != errno.EIO:
                # the page cache hands out what it has up to the page
                assert isinstance(got, bytes) and off + len(got) == 3 * PAGE
                assert got == data[off:3 * PAGE]
                assert pread_or_errno(fd, size, 3 * PAGE) == errno.EIO
        # cat's loop: the bytes before, then EIO; never an early EOF
        for bufsize in (PAGE, 65536, 1 << 20):
            drop_cache(f)
            os.lseek(fd, 0, os.SEEK_SET)
            got, err = read_loop(fd, bufsize)
            assert err == errno.EIO and got == data[:len(got)]
        # starting after it: all of the rest
        os.lseek(fd, 4 * PAGE, os.SEEK_SET)
        got, err = read_loop(fd, 65536)
        assert err == 0 and got == data[4 * PAGE:]
    finally:
        os.close(fd)
    assert f.stat().st_size == len(data)


def test_cold_reads_after_remount(damaged):
    """A cold page cache: the first read's readahead spans the damage."""
    m, data = damaged
    for i in (0, 2, 4, 9):
        m.remount()
        fd = os.open(m.path / "f", os.O_RDONLY)
        try:
            assert os.pread(fd, PAGE, i * PAGE) == data[i * PAGE:(i + 1) * PAGE]
            assert os.fstat(fd).st_size == len(data)
        finally:
            os.close(fd)


def test_mmap(damaged):
    m, data = damaged
    f = m.path / "f"
    drop_cache(f)
    assert in_child(MMAP_READ, f, len(data), 0, 1, 2, 4, 5, 9) == 0
    assert in_child(MMAP_READ, f, len(data), 3) == -signal.SIGBUS
    drop_cache(f)
    assert in_child(MMAP_READ, f, len(data), 9, 8, 2) == 0
    assert f.stat().st_size == len(data)


def test_splice_and_sendfile(damaged, tmp_path):
    m, data = damaged
    f = m.path / "f"
    fd = os.open(f, os.O_RDONLY)
    out = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        # a range before the page and one after it copy whole
        drop_cache(f)
        assert os.sendfile(out, fd, 0, 3 * PAGE) == 3 * PAGE
        assert os.sendfile(out, fd, 4 * PAGE, 6 * PAGE) == 6 * PAGE
        assert (tmp_path / "out").read_bytes() == data[:3 * PAGE] + \
            data[4 * PAGE:]
        # the whole file: never all of it, and an error at the page
        for start in (0, 3 * PAGE):
            drop_cache(f)
            pos, err = start, 0
            while True:
                try:
                    n = os.sendfile(out, fd, pos, len(data) - pos)
                except OSError as e:
                    err = e.errno
                    break
                if n == 0:
                    break
                pos += n
            assert err == errno.EIO and pos <= 3 * PAGE
        # splice into a pipe
        r, w = os.pipe()
        try:
            drop_cache(f)
            with pytest.raises(OSError) as e:
                os.splice(fd, w, PAGE, offset_src=3 * PAGE)
            assert e.value.errno == errno.EIO
            assert os.splice(fd, w, PAGE, offset_src=9 * PAGE) == PAGE
            assert os.read(r, PAGE) == data[9 * PAGE:]
        finally:
            os.close(r)
            os.close(w)
    finally:
        os.close(fd)
        os.close(out)
    assert f.stat().st_size == len(data)


def test_readahead(damaged):
    m, data = damaged
    f = m.path / "f"
    drop_cache(f)
    fd = os.open(f, os.O_RDONLY)
    try:
        _libc.readahead(fd, 0, len(data))  # may fail: only a hint
        os.posix_fadvise(fd, 0, len(data), os.POSIX_FADV_WILLNEED)
        assert os.fstat(fd).st_size == len(data)
        assert os.pread(fd, PAGE, 0) == data[:PAGE]
        assert os.pread(fd, PAGE, 9 * PAGE) == data[9 * PAGE:]
        assert pread_or_errno(fd, PAGE, 3 * PAGE) == errno.EIO
    finally:
        os.close(fd)
    assert f.stat().st_size == len(data)


def test_fsck_reports_and_punch_repairs(damaged):
    m, data = damaged
    m.stop()
    r = subprocess.run([POG, "fsck", str(m.pool)], capture_output=True,
                       text=True)
    assert r.returncode == 1
    assert "bad-page-crc" in r.stdout and "page 3" in r.stdout
    # punching the damaged page out needs none of its bytes
    m.start()
    fd = os.open(m.path / "f", os.O_RDWR)
    try:
        if _libc.fallocate(fd, 3, 3 * PAGE, PAGE) != 0:  # punch, keep size
            pytest.fail(os.strerror(ctypes.get_errno()))
    finally:
        os.close(fd)
    want = data[:3 * PAGE] + bytes(PAGE) + data[4 * PAGE:]
    assert (m.path / "f").read_bytes() == want
    m.commit("punched")
    m.stop()
    r = subprocess.run([POG, "fsck", str(m.pool)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout


def test_big_file_damaged_in_the_middle(pool, tmp_path):
    """Readahead windows of up to 1 MiB around page 500 of 1024."""
    n, bad = 1024, 500
    m = Mount(pool, tmp_path / "mnt")
    m.start()
    try:
        data = b"".join(page_bytes(i, b"bg") for i in range(n))
        (m.path / "big").write_bytes(data)
        m.commit("big")
        m.stop()
        damage_page(pool, page_bytes(bad, b"bg"), at=4000)
        m.start()
        f = m.path / "big"
        fd = os.open(f, os.O_RDONLY)
        try:
            for order in (range(n), reversed(range(n))):
                drop_cache(f)
                failed = [i for i in order
                          if pread_or_errno(fd, PAGE, i * PAGE)
                          != data[i * PAGE:(i + 1) * PAGE]]
                assert failed == [bad]
                assert pread_or_errno(fd, PAGE, bad * PAGE) == errno.EIO
            drop_cache(f)
            got, err = read_loop(fd, 1 << 20)
            assert err == errno.EIO and got == data[:len(got)]
            assert os.fstat(fd).st_size == len(data)
        finally:
            os.close(fd)
    finally:
        m.stop()


# ---- random damage --------------------------------------------------------

def build_small_store(m):
    """Files of every shape; returns {relative path: bytes}."""
    rng = random.Random(7)
    files = {
        "tiny": b"tiny text\n",
        "inline": rng.randbytes(120),
        "one-page": rng.randbytes(PAGE),
        "three-pages": rng.randbytes(3 * PAGE - 5),
        "ten-pages": b"".join(page_bytes(i, b"tp") for i in range(10)),
        "dir/nested": rng.randbytes(5 * PAGE + 7),
        "dir/deeper/leaf": b"leaf\n" * 300,
    }
    sparse = bytearray(12 * PAGE)
    sparse[5 * PAGE:5 * PAGE + 100] = rng.randbytes(100)
    sparse[11 * PAGE:] = rng.randbytes(PAGE)
    files["sparse"] = bytes(sparse)
    for rel, content in files.items():
        p = m.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if rel == "sparse":
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, content[5 * PAGE:5 * PAGE + 100], 5 * PAGE)
            os.pwrite(fd, content[11 * PAGE:], 11 * PAGE)
            os.close(fd)
        else:
            p.write_bytes(content)
    (m.path / "count").write_text("42\n")
    subprocess.run(["setfattr", "-n", "user.pog.type", "-v", "int",
                    str(m.path / "count")], check=True)
    files["count"] = b"42\n"
    return files


def used_block_bytes(pool):
    """Pool offsets of every byte in a used block of every segment
    (block 0, the header with the free bitmap, left out)."""
    raw = Path(pool).read_bytes()
    ranges = []
    at = raw.find(SEG_MAGIC)
    while at >= 0:
        if at % PAGE == 0:
            bitmap = raw[at + 16:at + 16 + 256]
            for block in range(1, 2048):
                if bitmap[block // 8] >> (block % 8) & 1:
                    ranges.append(at + block * PAGE)
        at = raw.find(SEG_MAGIC, at + 1)
    return ranges


def mounted(path):
    """Is path a mount point? (os.path.ismount says no when the root of
    the mount answers EIO, as a store whose root record is damaged does.)"""
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


class DamagedMount(Mount):
    """A mount that counts as up once listed, whatever its root answers."""

    def is_mounted(self):
        return mounted(self.path)


def check_reads(mnt, files):
    """Every file reads as committed or fails with EIO: counts."""
    outcome = {"exact": 0, "eio": 0}
    for rel, content in files.items():
        p = mnt / rel
        try:
            size = p.stat().st_size
            assert size == len(content), f"{rel}: size {size}"
            fd = os.open(p, os.O_RDONLY)
        except OSError as e:
            assert e.errno == errno.EIO, f"{rel}: {e}"
            outcome["eio"] += 1
            continue
        try:
            got, err = read_loop(fd, 65536)
            assert os.fstat(fd).st_size == len(content), f"{rel}: size"
        finally:
            os.close(fd)
        if err:
            assert err == errno.EIO, f"{rel}: {os.strerror(err)}"
            assert got == content[:len(got)], f"{rel}: wrong bytes"
            outcome["eio"] += 1
        else:
            assert got == content, f"{rel}: {len(got)} of {len(content)} " \
                "bytes, or wrong ones, and no error"
            outcome["exact"] += 1
    return outcome


def test_random_damage(tmp_path):
    """Flip random bytes of the blocks a real store uses (data pages,
    tree nodes, the commit record), one copy of the pool at a time."""
    trials = int(os.environ.get("POGFS_DAMAGE_TRIALS", "15"))
    seed = int(os.environ.get("POGFS_TEST_SEED", "9"))
    rng = random.Random(seed)
    work = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else tmp_path
    pristine = tmp_path / "pristine.pool"
    mkfs(pristine, "32M")
    m = Mount(pristine, tmp_path / "mnt")
    m.start()
    try:
        files = build_small_store(m)
        m.commit("small store")
    finally:
        m.stop()
    blocks = used_block_bytes(pristine)
    assert len(blocks) >= 20, "the store's blocks were not found"
    copy = work / f"pogfs-damage-{os.getpid()}.pool"
    tally = {"refused": 0, "all exact": 0, "some EIO": 0}
    try:
        for trial in range(trials):
            shutil.copyfile(pristine, copy)
            where = rng.choice(blocks) + rng.randrange(PAGE)
            flip(copy, where, rng.randrange(1, 256))
            d = DamagedMount(copy, tmp_path / "mnt")
            try:
                d.start()
            except RuntimeError as e:
                e = RuntimeError(f"trial {trial}, byte {where:#x}: {e}: "
                                 + d.stderr())
                # refused at start: fine, as long as it said why
                assert "pogfs:" in str(e) or "damaged" in str(e) \
                    or "corrupt" in str(e).lower(), str(e)
                tally["refused"] += 1
                continue
            try:
                out = check_reads(d.path, files)
            except AssertionError as e:
                raise AssertionError(f"seed {seed} trial {trial}, byte "
                                     f"{where:#x} flipped: {e}") from None
            finally:
                d.stop()
            tally["some EIO" if out["eio"] else "all exact"] += 1
    finally:
        copy.unlink(missing_ok=True)
    print(f"random damage, seed {seed}: {tally}")
