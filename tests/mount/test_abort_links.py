"""Abort drops every name the kernel cached for a hard-linked file at once.

After `abort` the daemon tells the kernel to forget the names it handed
out (fuse_lowlevel_notify_inval_entry). A file with several names must
lose (or get back) all of them immediately, not after the entry timeout.
Most tests mount with a 60 s entry and attribute timeout, so that only the
invalidation, never an expiring cache, can make them pass.
"""
import errno
import os
import subprocess

import pytest

from conftest import Mount
from test_files import RENAME_EXCHANGE, renameat2


@pytest.fixture
def slow_cache(pool, tmp_path):
    """A mount whose kernel caches hold entries and attributes for 60 s."""
    m = Mount(pool, tmp_path / "mnt")
    m.start("-o", "timeout=60")
    try:
        yield m
    finally:
        m.stop()


def gone(path):
    with pytest.raises(FileNotFoundError):
        os.lstat(path)


def ls_l(directory):
    """What `ls -l` does: readdirplus hands the kernel every name."""
    subprocess.run(["ls", "-l", str(directory)], check=True,
                   stdout=subprocess.DEVNULL)


def test_abort_forgets_new_links_shell(mount):
    """The example as a shell runs it, on the default 1 s timeout."""
    script = """
        set -e
        cd "$1"
        echo x > a
        echo commit > .pog/ctl
        ln a b
        ln a c
        ls -l > /dev/null
        echo abort > .pog/ctl
        for name in b c; do
            if out=$(ls $name 2>&1); then echo "$name still there"; exit 1; fi
            case $out in *"No such file"*) ;; *) echo "$out"; exit 1;; esac
        done
        test "$(stat -c %h a)" = 1 || { echo "nlink $(stat -c %h a)"; exit 1; }
        test "$(ls)" = "a" || { echo "ls: $(ls)"; exit 1; }
    """
    r = subprocess.run(["bash", "-c", script, "sh", str(mount.path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_abort_forgets_new_links(slow_cache):
    mnt = slow_cache.path
    (mnt / "a").write_text("x\n")
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_text("f\n")
    slow_cache.commit()
    os.link(mnt / "a", mnt / "b")
    os.link(mnt / "a", mnt / "c")
    ls_l(mnt)
    for name in "abc":
        assert os.stat(mnt / name).st_nlink == 3
    # Below the root, abort's invalidation of d/ drops the unused names
    # in it anyway; names kept busy by open files stay.
    os.link(mnt / "d" / "f", mnt / "d" / "g")
    os.link(mnt / "d" / "f", mnt / "d" / "h")
    ls_l(mnt / "d")
    with open(mnt / "d" / "g") as g, open(mnt / "d" / "h") as h:
        slow_cache.abort()
        gone(mnt / "b")
        gone(mnt / "c")
        gone(mnt / "d" / "g")
        gone(mnt / "d" / "h")
        assert g.read() == h.read() == "f\n"
    assert os.stat(mnt / "a").st_nlink == 1
    assert os.stat(mnt / "d" / "f").st_nlink == 1
    assert sorted(os.listdir(mnt)) == ["a", "d"]
    assert os.listdir(mnt / "d") == ["f"]


def test_abort_brings_back_removed_link(slow_cache):
    mnt = slow_cache.path
    (mnt / "d").mkdir()
    (mnt / "a").write_text("x\n")
    os.link(mnt / "a", mnt / "b")
    os.link(mnt / "a", mnt / "d" / "e")
    slow_cache.commit()
    ino = os.stat(mnt / "a").st_ino
    ls_l(mnt)
    ls_l(mnt / "d")
    (mnt / "b").unlink()
    (mnt / "d" / "e").unlink()
    gone(mnt / "b")
    assert os.stat(mnt / "a").st_nlink == 1
    slow_cache.abort()
    for p in (mnt / "a", mnt / "b", mnt / "d" / "e"):
        st = os.stat(p)
        assert (st.st_ino, st.st_nlink) == (ino, 3), p
    assert (mnt / "b").read_text() == "x\n"


def test_abort_undoes_rename_of_link(slow_cache):
    mnt = slow_cache.path
    (mnt / "d").mkdir()
    (mnt / "a").write_text("x\n")
    os.link(mnt / "a", mnt / "b")
    os.link(mnt / "a", mnt / "c")
    (mnt / "other").write_text("other\n")
    slow_cache.commit()
    ino = os.stat(mnt / "a").st_ino
    other = os.stat(mnt / "other").st_ino
    ls_l(mnt)
    # moved within the directory, into another one, and over another file
    os.rename(mnt / "b", mnt / "b2")
    os.rename(mnt / "c", mnt / "d" / "c2")
    os.rename(mnt / "other", mnt / "a")
    assert os.stat(mnt / "b2").st_ino == ino
    assert os.stat(mnt / "d" / "c2").st_ino == ino
    assert os.stat(mnt / "a").st_ino == other
    slow_cache.abort()
    gone(mnt / "b2")
    gone(mnt / "d" / "c2")
    for name in "abc":
        st = os.stat(mnt / name)
        assert (st.st_ino, st.st_nlink) == (ino, 3), name
    assert os.stat(mnt / "other").st_ino == other
    assert (mnt / "a").read_text() == "x\n"
    assert sorted(os.listdir(mnt)) == ["a", "b", "c", "d", "other"]
    assert os.listdir(mnt / "d") == []


def test_abort_undoes_exchange_of_link(slow_cache):
    mnt = slow_cache.path
    (mnt / "a").write_text("x\n")
    os.link(mnt / "a", mnt / "b")
    (mnt / "y").write_text("y\n")
    slow_cache.commit()
    ino = os.stat(mnt / "a").st_ino
    y = os.stat(mnt / "y").st_ino
    ls_l(mnt)
    renameat2(mnt / "b", mnt / "y", RENAME_EXCHANGE)
    assert os.stat(mnt / "b").st_ino == y
    assert os.stat(mnt / "y").st_ino == ino
    slow_cache.abort()
    assert os.stat(mnt / "b").st_ino == ino
    assert os.stat(mnt / "y").st_ino == y
    assert (mnt / "y").read_text() == "y\n"


def test_abort_forgets_thousands_of_links(slow_cache):
    # in the root: abort never invalidates the root's own dentry, so each
    # name must be invalidated by itself
    mnt = slow_cache.path
    (mnt / "f").write_text("many\n")
    slow_cache.commit()
    n = 3000
    for i in range(n):
        os.link(mnt / "f", mnt / f"l{i}")
    ls_l(mnt)
    for i in range(0, n, 7):
        os.stat(mnt / f"l{i}")
    # names removed before the abort are forgotten by the unlink
    for i in range(0, n, 2):
        os.unlink(mnt / f"l{i}")
    assert os.stat(mnt / "f").st_nlink == n // 2 + 1
    slow_cache.abort()
    for i in range(n):
        try:
            os.lstat(mnt / f"l{i}")
        except OSError as e:
            assert e.errno == errno.ENOENT
        else:
            pytest.fail(f"l{i} survived the abort")
    assert os.listdir(mnt) == ["f"]
    assert os.stat(mnt / "f").st_nlink == 1
