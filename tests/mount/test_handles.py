"""NFS-ready file handles: name_to_handle_at / open_by_handle_at (what knfsd
uses) across a daemon restart, and ESTALE for an object GC freed.

open_by_handle_at needs CAP_DAC_READ_SEARCH: these tests run as root only.
"""
import ctypes
import ctypes.util
import errno
import os

import pytest

from conftest import Mount

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
AT_FDCWD = -100
MAX_HANDLE_SZ = 128

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="open_by_handle_at needs root")


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint),
                ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * MAX_HANDLE_SZ)]


def name_to_handle(path):
    fh = FileHandle()
    fh.handle_bytes = MAX_HANDLE_SZ
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(AT_FDCWD, os.fsencode(str(path)),
                              ctypes.byref(fh), ctypes.byref(mount_id),
                              0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), str(path))
    return bytes(fh)  # the whole structure: a handle survives as bytes


def open_by_handle(mount_path, handle, flags=os.O_RDONLY):
    fh = FileHandle.from_buffer_copy(handle)
    mfd = os.open(mount_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), flags)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return fd
    finally:
        os.close(mfd)


def read_fd(fd):
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def test_handles_survive_restart(mount):
    mnt = mount.path
    (mnt / "a" / "b").mkdir(parents=True)
    (mnt / "a" / "b" / "note").write_text("kept\n")
    (mnt / "top").write_text("top\n")
    mount.commit("handles")
    h_file = name_to_handle(mnt / "a" / "b" / "note")
    h_dir = name_to_handle(mnt / "a" / "b")
    h_top = name_to_handle(mnt / "top")
    h_root = name_to_handle(mnt)
    ino = os.stat(mnt / "a" / "b" / "note").st_ino

    # Same daemon, inode still cached: the easy case.
    assert read_fd(open_by_handle(mnt, h_file)) == b"kept\n"

    # A new daemon and a new superblock: nothing is cached any more.
    mount.remount()
    fd = open_by_handle(mnt, h_file)
    assert os.fstat(fd).st_ino == ino
    assert read_fd(fd) == b"kept\n"
    assert read_fd(open_by_handle(mnt, h_top)) == b"top\n"

    # A directory handle opens the directory, and its parent is known
    # (the kernel reconnects it with a lookup of "..").
    dfd = open_by_handle(mnt, h_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert os.listdir(dfd) == ["note"]
        assert os.readlink(f"/proc/self/fd/{dfd}") == str(mnt / "a" / "b")
        pfd = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=dfd)
        try:
            assert os.listdir(pfd) == ["b"]
        finally:
            os.close(pfd)
    finally:
        os.close(dfd)
    rfd = open_by_handle(mnt, h_root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert "a" in os.listdir(rfd)
    finally:
        os.close(rfd)


def test_handle_of_collected_object_is_stale(mount):
    mnt = mount.path
    (mnt / "gone").write_text("bye\n")
    (mnt / "dir").mkdir()
    mount.commit()
    h_file = name_to_handle(mnt / "gone")
    h_dir = name_to_handle(mnt / "dir")
    (mnt / "gone").unlink()
    (mnt / "dir").rmdir()
    mount.commit("remove")
    mount.remount()  # the unmount collects the garbage
    for h in (h_file, h_dir):
        with pytest.raises(OSError) as exc:
            os.close(open_by_handle(mnt, h))
        assert exc.value.errno == errno.ESTALE


def test_handles_in_pog_control_tree(mount):
    """Handles of objects under .pog/committed decode after a restart."""
    mnt = mount.path
    (mnt / "c").write_text("committed\n")
    mount.commit()
    h = name_to_handle(mnt / ".pog" / "committed" / "c")
    mount.remount()
    assert read_fd(open_by_handle(mnt, h)) == b"committed\n"


def test_handle_after_restart_of_staged_only_object(pool, tmp_path):
    """An object that was never committed is gone after the restart."""
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        (m.path / "staged").write_text("x\n")
        h = name_to_handle(m.path / "staged")
        m.remount()
        with pytest.raises(OSError) as exc:
            os.close(open_by_handle(m.path, h))
        assert exc.value.errno == errno.ESTALE
    finally:
        m.stop()
