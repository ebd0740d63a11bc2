"""fallocate, copy_file_range and lseek SEEK_DATA/SEEK_HOLE through the
mount, compared with tmpfs doing the same operations.

What is compared after every step: each file's size and every byte, and
the answers of SEEK_DATA and SEEK_HOLE from a spread of offsets (or the
ENXIO they give). pogfs answers SEEK_DATA/SEEK_HOLE by 4 KiB page as
tmpfs does, so the answers are compared exactly; block counts
(st_blocks) are not compared (pogfs shares pages).

Where pogfs differs from tmpfs on purpose, the tmpfs side does what the
call means on pogfs:
- fallocate mode 0 and KEEP_SIZE: tmpfs preallocates pages, which its
  SEEK_DATA then reports as data (and which a later truncate up shows).
  pogfs writes pages copy-on-write and cannot reserve them (as ZFS): mode
  0 only extends the size over a hole, KEEP_SIZE changes nothing. On
  tmpfs they are done as a truncate up and as nothing.
- tmpfs has no FALLOC_FL_ZERO_RANGE: on tmpfs it is a punched hole and,
  without KEEP_SIZE, a truncate up to its end.
"""
import ctypes
import errno
import mmap
import os
import random
import shutil
import subprocess
import tempfile

import pytest

KEEP = 0x01  # FALLOC_FL_KEEP_SIZE
PUNCH = 0x02  # FALLOC_FL_PUNCH_HOLE
ZERO = 0x10  # FALLOC_FL_ZERO_RANGE
PAGE = 4096
MAXSIZE = 40 * PAGE

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                            ctypes.c_long]


def fallocate(fd, mode, off, length):
    if _libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def tmpfs_dir():
    """A fresh directory on tmpfs (/dev/shm), or skip."""
    base = "/dev/shm"
    r = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", base],
                       capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.split()[:1] != ["tmpfs"]:
        pytest.skip(f"{base} is not tmpfs")
    return tempfile.mkdtemp(prefix="pogfs-falloc-", dir=base)


@pytest.fixture
def ref_dir():
    d = tmpfs_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def seek(fd, off, whence):
    try:
        return os.lseek(fd, off, whence)
    except OSError as e:
        return -e.errno


class Pair:
    """The same file on pogfs and on tmpfs, open read-write."""

    def __init__(self, pog_path, ref_path):
        self.fds = [os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
                    for p in (pog_path, ref_path)]

    def close(self):
        for fd in self.fds:
            os.close(fd)

    def size(self, side):
        return os.fstat(self.fds[side]).st_size

    def check(self, what):
        pog, ref = self.fds
        size = os.fstat(ref).st_size
        assert os.fstat(pog).st_size == size, what
        a = os.pread(pog, size + 10, 0)
        b = os.pread(ref, size + 10, 0)
        if a != b:
            at = next(i for i in range(min(len(a), len(b))) if a[i] != b[i]) \
                if len(a) == len(b) else min(len(a), len(b))
            pytest.fail(f"{what}: content differs at byte {at} "
                        f"(lengths {len(a)}, {len(b)})")
        offsets = sorted({0, size // 2, max(size - 1, 0), size,
                          *range(0, size, PAGE // 2 * 3)})
        for off in offsets:
            for whence in (os.SEEK_DATA, os.SEEK_HOLE):
                got, want = seek(pog, off, whence), seek(ref, off, whence)
                name = "SEEK_DATA" if whence == os.SEEK_DATA else "SEEK_HOLE"
                assert got == want, f"{what}: {name} from {off}: {got}, " \
                                    f"tmpfs {want}"


def both(pair, fn):
    for side, fd in enumerate(pair.fds):
        fn(side, fd)


def do_fallocate(pair, mode, off, length):
    """fallocate on pogfs, and what it means on tmpfs (module doc)."""
    pog, ref = pair.fds
    fallocate(pog, mode, off, length)
    size = os.fstat(ref).st_size
    if mode & (ZERO | PUNCH):
        fallocate(ref, PUNCH | KEEP, off, length)
    if not mode & KEEP and off + length > size:
        os.ftruncate(ref, off + length)


def mmap_write(pair, off, data):
    for fd in pair.fds:
        size = os.fstat(fd).st_size
        with mmap.mmap(fd, size) as m:
            m[off:off + len(data)] = data
            m.flush()


def rand_off(rng):
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randrange(300)
    if kind == 1:
        return rng.randrange(MAXSIZE // PAGE) * PAGE
    if kind == 2:
        return max(0, rng.randrange(MAXSIZE // PAGE) * PAGE
                   + rng.randrange(-3, 4))
    return rng.randrange(MAXSIZE)


def rand_len(rng):
    return rng.choice([1, 100, PAGE, 2 * PAGE, 3 * PAGE + 17,
                       rng.randrange(1, 5 * PAGE)])


def random_op(rng, pairs):
    p = rng.choice(pairs)
    off, length = rand_off(rng), rand_len(rng)
    length = min(length, MAXSIZE - off) or 1
    op = rng.choice(["write", "write", "truncate", "falloc", "falloc",
                     "punch", "punch", "zero", "copy", "mmap", "zeros"])
    if op == "write":
        data = rng.randbytes(length)
        both(p, lambda side, fd: os.pwrite(fd, data, off))
    elif op == "zeros":  # written zeros are data, not a hole
        both(p, lambda side, fd: os.pwrite(fd, bytes(length), off))
    elif op == "truncate":
        both(p, lambda side, fd: os.ftruncate(fd, off))
    elif op == "falloc":
        mode = rng.choice([0, KEEP])
        do_fallocate(p, mode, off, length)
        op += f" mode {mode:#x}"
    elif op == "punch":
        do_fallocate(p, PUNCH | KEEP, off, length)
    elif op == "zero":
        mode = rng.choice([ZERO, ZERO | KEEP])
        do_fallocate(p, mode, off, length)
        op += f" mode {mode:#x}"
    elif op == "copy":
        q = rng.choice(pairs)
        src = rng.randrange(p.size(1) + 1) if p.size(1) else 0
        if q is p and src < off + length and off < src + length:
            return "skipped overlapping copy"
        counts = []
        for side in (0, 1):
            counts.append(os.copy_file_range(p.fds[side], q.fds[side],
                                             length, src, off))
        assert counts[0] == counts[1], f"copy_file_range counts {counts}"
        return f"copy {length} from {src} of one file to {off} of another"
    elif op == "mmap":
        size = p.size(1)
        if size == 0:
            return "skipped mmap of an empty file"
        off %= size
        data = rng.randbytes(min(length, size - off))
        mmap_write(p, off, data)
    return f"{op} at {off} length {length}"


def test_fallocate_modes_against_tmpfs(mount, ref_dir):
    """Each mode once, by hand, on a 5-page file."""
    p = Pair(mount.path / "f", os.path.join(ref_dir, "f"))
    try:
        data = random.Random(1).randbytes(5 * PAGE + 123)
        both(p, lambda side, fd: os.pwrite(fd, data, 0))
        p.check("written")
        do_fallocate(p, PUNCH | KEEP, 100, 2 * PAGE)
        p.check("punch across pages")
        do_fallocate(p, PUNCH | KEEP, 3 * PAGE, PAGE)
        p.check("punch one whole page")
        do_fallocate(p, KEEP, 0, 20 * PAGE)
        p.check("keep size past the end")
        do_fallocate(p, 0, 8 * PAGE, PAGE)
        p.check("extend")
        do_fallocate(p, ZERO | KEEP, 4 * PAGE + 1, 10 * PAGE)
        p.check("zero range keeping the size")
        do_fallocate(p, ZERO, 8 * PAGE + 5, 3 * PAGE)
        p.check("zero range past the end")
        do_fallocate(p, PUNCH | KEEP, 0, 100 * PAGE)
        p.check("punch everything")
    finally:
        p.close()
    # a punch needs KEEP_SIZE; other modes are refused
    fd = os.open(mount.path / "f", os.O_RDWR)
    try:
        for mode in (PUNCH, 0x08, 0x20):  # collapse, insert range
            with pytest.raises(OSError) as e:
                fallocate(fd, mode, 0, PAGE)
            assert e.value.errno == errno.EOPNOTSUPP
    finally:
        os.close(fd)
    mount.commit("fallocate")
    mount.remount()
    assert (mount.path / "f").stat().st_size == 11 * PAGE + 5
    assert (mount.path / "f").read_bytes() == bytes(11 * PAGE + 5)


def test_typed_scalar_refuses_zeros(mount):
    n = mount.path / "n"
    n.write_text("42\n")
    subprocess.run(["setfattr", "-n", "user.pog.type", "-v", "int", str(n)],
                   check=True)
    fd = os.open(n, os.O_RDWR)
    try:
        for mode, off, length in [(0, 0, 10), (PUNCH | KEEP, 0, 1),
                                  (ZERO, 1, 1), (ZERO | KEEP, 2, 10)]:
            with pytest.raises(OSError) as e:
                fallocate(fd, mode, off, length)
            assert e.value.errno == errno.EINVAL
        fallocate(fd, KEEP, 0, 100)       # changes nothing: fine
        fallocate(fd, PUNCH | KEEP, 3, 5)  # past the end: nothing
        assert os.lseek(fd, 0, os.SEEK_HOLE) == 3
    finally:
        os.close(fd)
    assert n.read_text() == "42\n"
    assert "int" in mount.status()["last_error"]


def test_copy_file_range_and_cp(mount, ref_dir):
    """cp uses copy_file_range; a sparse source keeps its content."""
    src = mount.path / "src"
    fd = os.open(src, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"head" * 1000, 0)
    os.pwrite(fd, b"tail" * 1000, 50 * PAGE)
    os.close(fd)
    r = subprocess.run(["cp", str(src), str(mount.path / "copy")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (mount.path / "copy").read_bytes() == src.read_bytes()
    a = os.open(src, os.O_RDONLY)
    b = os.open(mount.path / "copy2", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.copy_file_range(a, b, 10 * PAGE, 0, 3) == 10 * PAGE
        assert os.copy_file_range(a, b, PAGE, 60 * PAGE, 0) == 0  # past EOF
        assert os.pread(b, 10 * PAGE + 3, 0) == \
            b"\0\0\0" + os.pread(a, 10 * PAGE, 0)
    finally:
        os.close(a)
        os.close(b)
    mount.commit("copies")
    mount.remount()
    assert (mount.path / "copy").read_bytes() == \
        (mount.path / "src").read_bytes()


@pytest.mark.parametrize("seed", [1, 2])
def test_random_against_tmpfs(mount, ref_dir, seed):
    rng = random.Random(int(os.environ.get("POGFS_TEST_SEED", seed)))
    pairs = [Pair(mount.path / f"r{i}", os.path.join(ref_dir, f"r{i}"))
             for i in range(3)]
    history = []
    try:
        for step in range(200):
            history.append(random_op(rng, pairs))
            for i, p in enumerate(pairs):
                p.check(f"seed {seed} step {step} file r{i} after "
                        + "; ".join(history[-4:]))
            if step % 100 == 99:
                mount.commit(f"random {step}")
    finally:
        for p in pairs:
            p.close()
