"""Files, directories, links and metadata through a real pogfs mount."""
import ctypes
import errno
import os
import stat
import shutil
import subprocess
import tempfile
import time

import pytest

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(old, new, flags):
    rc = _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                         os.fsencode(new), ctypes.c_uint(flags))
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(old))


def test_create_read_write(mnt):
    f = mnt / "hello.txt"
    f.write_text("hello, world\n")
    assert f.read_text() == "hello, world\n"
    st = f.stat()
    assert stat.S_ISREG(st.st_mode)
    assert st.st_size == 13
    assert st.st_uid == os.getuid()
    # overwrite in the middle
    with open(f, "r+b") as h:
        h.seek(7)
        h.write(b"pogfs")
    assert f.read_bytes() == b"hello, pogfs\n"


def test_append_and_o_trunc(mnt):
    f = mnt / "log"
    with open(f, "w") as h:
        h.write("one\n")
    with open(f, "a") as h:
        h.write("two\n")
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    os.write(fd, b"three\n")
    os.close(fd)
    assert f.read_text() == "one\ntwo\nthree\n"
    with open(f, "w") as h:  # O_TRUNC
        h.write("x")
    assert f.read_text() == "x"
    assert f.stat().st_size == 1


def test_truncate_and_sparse(mnt):
    f = mnt / "sparse"
    with open(f, "wb") as h:
        h.write(b"abc")
        h.seek(1 << 20)
        h.write(b"end")
    data = f.read_bytes()
    assert len(data) == (1 << 20) + 3
    assert data[:3] == b"abc"
    assert data[3:1 << 20] == bytes((1 << 20) - 3)
    assert data[-3:] == b"end"
    os.truncate(f, 2)
    assert f.read_bytes() == b"ab"
    os.truncate(f, 10)
    assert f.read_bytes() == b"ab" + bytes(8)
    assert f.stat().st_size == 10


def test_large_file(mnt):
    f = mnt / "big"
    block = os.urandom(1 << 16)
    with open(f, "wb") as h:
        for _ in range(64):  # 4 MiB
            h.write(block)
    with open(f, "rb") as h:
        for _ in range(64):
            assert h.read(1 << 16) == block
        assert h.read(1) == b""


def test_mkdir_rmdir(mnt):
    d = mnt / "a" / "b" / "c"
    d.mkdir(parents=True)
    assert (mnt / "a" / "b").is_dir()
    assert sorted(os.listdir(mnt / "a")) == ["b"]
    (d / "f").write_text("x")
    with pytest.raises(OSError) as e:
        (mnt / "a" / "b" / "c").rmdir()
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(OSError) as e:
        os.unlink(mnt / "a")
    assert e.value.errno in (errno.EISDIR, errno.EPERM)
    (d / "f").unlink()
    d.rmdir()
    assert os.listdir(mnt / "a" / "b") == []
    with pytest.raises(FileExistsError):
        (mnt / "a").mkdir()
    st = (mnt / "a").stat()
    assert st.st_nlink == 3  # ., .. and b/..


def test_rename(mnt):
    (mnt / "x").write_text("x")
    (mnt / "y").write_text("y")
    ino = (mnt / "x").stat().st_ino
    os.rename(mnt / "x", mnt / "y")  # replaces
    assert (mnt / "y").read_text() == "x"
    assert (mnt / "y").stat().st_ino == ino
    assert not (mnt / "x").exists()
    # a directory over an empty directory, and into another directory
    (mnt / "d1").mkdir()
    (mnt / "d1" / "f").write_text("f")
    (mnt / "d2").mkdir()
    os.rename(mnt / "d1", mnt / "d2")
    assert (mnt / "d2" / "f").read_text() == "f"
    (mnt / "d3").mkdir()
    (mnt / "d3" / "g").write_text("g")
    with pytest.raises(OSError) as e:
        os.rename(mnt / "d2", mnt / "d3")
    assert e.value.errno in (errno.ENOTEMPTY, errno.EEXIST)
    os.rename(mnt / "y", mnt / "d3" / "moved")
    assert (mnt / "d3" / "moved").stat().st_ino == ino


def test_rename_noreplace_exchange(mnt):
    (mnt / "a").write_text("A")
    (mnt / "b").write_text("B")
    with pytest.raises(OSError) as e:
        renameat2(mnt / "a", mnt / "b", RENAME_NOREPLACE)
    assert e.value.errno == errno.EEXIST
    renameat2(mnt / "a", mnt / "c", RENAME_NOREPLACE)
    assert (mnt / "c").read_text() == "A"
    renameat2(mnt / "b", mnt / "c", RENAME_EXCHANGE)
    assert (mnt / "c").read_text() == "B"
    assert (mnt / "b").read_text() == "A"
    (mnt / "dir").mkdir()
    renameat2(mnt / "dir", mnt / "b", RENAME_EXCHANGE)
    assert (mnt / "b").is_dir()
    assert (mnt / "dir").read_text() == "A"


def test_hard_links(mnt):
    a = mnt / "a"
    a.write_text("shared")
    os.link(a, mnt / "b")
    (mnt / "sub").mkdir()
    os.link(a, mnt / "sub" / "c")
    st = a.stat()
    assert st.st_nlink == 3
    assert (mnt / "b").stat().st_ino == st.st_ino
    with open(mnt / "sub" / "c", "a") as h:
        h.write("!")
    assert (mnt / "b").read_text() == "shared!"
    a.unlink()
    assert (mnt / "b").stat().st_nlink == 2
    assert (mnt / "sub" / "c").read_text() == "shared!"
    with pytest.raises(OSError):
        os.link(mnt / "sub", mnt / "sub2")  # no hard links to directories


def test_symlink_ref_follows_rename(mnt):
    (mnt / "dir").mkdir()
    (mnt / "dir" / "target").write_text("T")
    os.symlink("dir/target", mnt / "link")
    assert os.readlink(mnt / "link") == "dir/target"
    assert (mnt / "link").read_text() == "T"
    # the link is a reference: it follows the object when it moves
    (mnt / "other").mkdir()
    os.rename(mnt / "dir" / "target", mnt / "other" / "renamed")
    assert os.readlink(mnt / "link") == "other/renamed"
    assert (mnt / "link").read_text() == "T"
    # absolute paths under the mount point are refs too
    os.symlink(str(mnt / "other"), mnt / "abs")
    assert os.readlink(mnt / "abs") == "other"
    assert stat.S_ISLNK((mnt / "abs").lstat().st_mode)


def test_symlink_plain_text(mnt):
    os.symlink("/etc/hostname", mnt / "outside")
    assert os.readlink(mnt / "outside") == "/etc/hostname"
    os.symlink("does/not/exist", mnt / "dangling")
    assert os.readlink(mnt / "dangling") == "does/not/exist"
    os.symlink("../../above", mnt / "above")
    assert os.readlink(mnt / "above") == "../../above"


def test_chmod_chown_utimens(mnt):
    f = mnt / "f"
    f.write_text("x")
    c0 = f.stat().st_ctime_ns
    time.sleep(0.01)
    os.chmod(f, 0o640)
    st = f.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert st.st_ctime_ns > c0
    os.chown(f, 1234, 5678)
    st = f.stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(f, -1, 42)  # -1 leaves the owner alone
    st = f.stat()
    assert (st.st_uid, st.st_gid) == (1234, 42)
    os.utime(f, ns=(1_000_000_123, 2_000_000_456_789_012))
    st = f.stat()
    assert st.st_atime_ns == 1_000_000_123
    assert st.st_mtime_ns == 2_000_000_456_789_012
    before = time.time_ns()
    os.utime(f)  # UTIME_NOW
    assert abs(f.stat().st_mtime_ns - before) < 5_000_000_000
    # UTIME_OMIT on atime: only mtime changes
    os.utime(f, ns=(5_000_000_000, 6_000_000_000))
    libc_utimensat_omit_atime(f, 7_000_000_000)
    st = f.stat()
    assert st.st_atime_ns == 5_000_000_000
    assert st.st_mtime_ns == 7_000_000_000
    (mnt / "d").mkdir(mode=0o700)
    assert stat.S_IMODE((mnt / "d").stat().st_mode) == 0o700


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def libc_utimensat_omit_atime(path, mtime_ns):
    UTIME_OMIT = (1 << 30) - 2
    times = (Timespec * 2)(Timespec(0, UTIME_OMIT),
                           Timespec(mtime_ns // 10**9, mtime_ns % 10**9))
    rc = _libc.utimensat(AT_FDCWD, os.fsencode(path), times, 0)
    assert rc == 0, os.strerror(ctypes.get_errno())


def test_create_owner_is_caller(pool):
    """New objects belong to the calling process, not to the daemon."""
    from conftest import Mount
    top = tempfile.mkdtemp(prefix="pogfs-owner.")
    os.chmod(top, 0o755)  # other users must reach the mount point
    m = Mount(pool, os.path.join(top, "mnt")).start("-o", "allow_other")
    try:
        mnt = m.path
        os.chmod(mnt, 0o777)
        script = ("open('%s/by_nobody', 'w').write('n'); import os; "
                  "os.mkdir('%s/dir_nobody')" % (mnt, mnt))
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        subprocess.run(nobody + ["/usr/bin/python3", "-c", script], check=True)
        for name in ("by_nobody", "dir_nobody"):
            st = (mnt / name).stat()
            assert (st.st_uid, st.st_gid) == (65534, 65534)
        # permission checks are the kernel's (default_permissions)
        (mnt / "private").write_text("secret")
        os.chmod(mnt / "private", 0o600)
        r = subprocess.run(nobody + ["cat", str(mnt / "private")], capture_output=True)
        assert r.returncode != 0
        assert b"Permission denied" in r.stderr
    finally:
        m.stop()
        shutil.rmtree(top, ignore_errors=True)


def test_xattrs(mnt):
    f = mnt / "f"
    f.write_text("x")
    subprocess.run(["setfattr", "-n", "user.color", "-v", "blue", str(f)], check=True)
    out = subprocess.run(["getfattr", "--only-values", "-n", "user.color", str(f)],
                         check=True, capture_output=True).stdout
    assert out == b"blue"
    assert os.getxattr(f, "user.color") == b"blue"
    names = os.listxattr(f)
    assert "user.color" in names and "user.pog.type" in names
    assert os.getxattr(f, "user.pog.type") == b"string"
    (mnt / "d").mkdir()
    assert os.getxattr(mnt / "d", "user.pog.type") == b"map"
    os.setxattr(f, "user.pog.type", b"string")  # same type: a no-op
    with pytest.raises(OSError) as e:
        os.setxattr(f, "user.pog.type", b"no-such-type")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError):
        os.setxattr(f, "user.pog.hash", b"forged")
    with pytest.raises(OSError) as e:
        os.setxattr(f, "user.color", b"red", os.XATTR_CREATE)
    assert e.value.errno == errno.EEXIST
    os.removexattr(f, "user.color")
    with pytest.raises(OSError) as e:
        os.getxattr(f, "user.color")
    assert e.value.errno == errno.ENODATA


def test_fifo(mnt):
    os.mkfifo(mnt / "fifo", 0o644)
    assert stat.S_ISFIFO((mnt / "fifo").lstat().st_mode)


def test_names_round_trip(mnt):
    names = ["with space", "%", "%2F", "%25", "a%2Fb", "ünïcødé", "x" * 255,
             "-dash", ".hidden", "tab\tname", "new\nline"]
    for n in names:
        (mnt / n).write_text(n)
    assert sorted(os.listdir(mnt)) == sorted(names)
    for n in names:
        assert (mnt / n).read_text() == n
    with pytest.raises(OSError) as e:
        (mnt / ("y" * 256)).write_text("too long")
    assert e.value.errno == errno.ENAMETOOLONG


def test_unlinked_open_file_stays_readable(mnt):
    f = mnt / "gone"
    f.write_text("still here")
    with open(f, "r+") as h:
        f.unlink()
        assert not f.exists()
        assert h.read() == "still here"
        h.write(" and more")
        h.seek(0)
        assert h.read() == "still here and more"


def test_statfs(mnt):
    sv = os.statvfs(mnt)
    assert sv.f_blocks > 0
    assert 0 < sv.f_bfree <= sv.f_blocks
    assert sv.f_namemax == 255
    total = sv.f_blocks * sv.f_frsize
    assert total >= 64 << 20


def test_fsync_and_fallocate(mnt):
    f = mnt / "f"
    with open(f, "wb") as h:
        h.write(b"data")
        h.flush()
        os.fsync(h.fileno())
    assert f.read_bytes() == b"data"


def test_limits(mnt):
    f = mnt / "f"
    f.write_text("x")
    with pytest.raises(OSError) as e:
        os.setxattr(f, "user.big", b"v" * 4096)
    assert e.value.errno == errno.E2BIG
    fd = os.open(f, os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"x", 1 << 44)
        assert e.value.errno == errno.EFBIG
    finally:
        os.close(fd)
    assert f.read_text() == "x"


def test_big_directory_listing(mnt):
    d = mnt / "many"
    d.mkdir()
    names = {f"entry-{i:05d}-{'x' * (i % 50)}" for i in range(3000)}
    for n in names:
        os.close(os.open(d / n, os.O_CREAT | os.O_WRONLY, 0o644))
    listed = os.listdir(d)
    assert len(listed) == len(names)
    assert set(listed) == names
    # a listing that resumes from the middle (several readdir calls)
    out = subprocess.run(["ls", "-U", str(d)], check=True, capture_output=True,
                         text=True).stdout.split("\n")
    assert set(filter(None, out)) == names
    with os.scandir(d) as it:
        inos = {e.name: e.inode() for e in it}
    assert inos[min(names)] == (d / min(names)).stat().st_ino


def test_links_to_symlinks_and_fifos(mnt):
    os.symlink("target-text", mnt / "s")
    os.link(mnt / "s", mnt / "s2", follow_symlinks=False)
    assert os.readlink(mnt / "s2") == "target-text"
    assert os.lstat(mnt / "s").st_nlink == 2


def test_typed_scalars(mnt):
    count = mnt / "count"
    count.write_text("42\n")
    subprocess.run(["setfattr", "-n", "user.pog.type", "-v", "int", str(count)], check=True)
    assert os.getxattr(count, "user.pog.type") == b"int"
    assert count.read_text().strip() == "42"
    subprocess.run(["bash", "-c", f"echo 43 > '{count}'"], check=True)
    assert count.read_text().strip() == "43"
    r = subprocess.run(["bash", "-c", f"echo not-a-number > '{count}'"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    fd = os.open(count, os.O_WRONLY)
    try:
        with pytest.raises(OSError) as e:
            os.pwrite(fd, b"x", 0)
        assert e.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    # a string that does not parse cannot become an int
    word = mnt / "word"
    word.write_text("hello")
    with pytest.raises(OSError) as e:
        os.setxattr(word, "user.pog.type", b"int")
    assert e.value.errno == errno.EINVAL
    assert os.getxattr(word, "user.pog.type") == b"string"
    assert word.read_text() == "hello"
    # canonical text after conversion, seen at once through the cache
    f = mnt / "f"
    f.write_text("7")
    assert f.read_text() == "7"
    os.setxattr(f, "user.pog.type", b"float")
    assert os.getxattr(f, "user.pog.type") == b"float"
    float(f.read_text())
    os.setxattr(f, "user.pog.type", b"string")
    assert os.getxattr(f, "user.pog.type") == b"string"


def test_list_directories(mnt):
    lst = mnt / "lst"
    lst.mkdir()
    subprocess.run(["setfattr", "-n", "user.pog.type", "-v", "list", str(lst)], check=True)
    assert os.getxattr(lst, "user.pog.type") == b"list"
    for i, word in enumerate(["zero", "one", "two"]):
        (lst / str(i)).write_text(word)
    assert os.listdir(lst) == ["0", "1", "2"]
    (lst / "7").write_text("gap")  # any free number: a position
    assert os.listdir(lst) == ["0", "1", "2", "7"]
    (lst / "7").unlink()
    (lst / "0").unlink()  # the others keep their names until a commit
    assert os.listdir(lst) == ["1", "2"]
    (mnt / ".pog" / "ctl").write_text("commit\n")
    assert os.listdir(lst) == ["0", "1"]
    assert (lst / "0").read_text() == "one"
    assert (lst / "1").read_text() == "two"
    assert not (lst / "2").exists()
    os.setxattr(lst, "user.pog.type", b"map")  # the map of names 0, 1
    assert os.getxattr(lst, "user.pog.type") == b"map"
    assert (lst / "1").read_text() == "two"
