"""mmap through the mount: writes through a mapping and through write()
see each other, survive commit and remount, and abort drops them."""
import mmap
import os


def test_mmap_write_then_read(mount):
    f = mount.path / "m.bin"
    f.write_bytes(b"\0" * 8192)
    fd = os.open(f, os.O_RDWR)
    try:
        with mmap.mmap(fd, 8192) as m:
            m[0:5] = b"hello"
            m[4096:4101] = b"world"
            m.flush()
            # read() on another descriptor sees the mapped writes
            assert f.read_bytes()[:5] == b"hello"
            assert f.read_bytes()[4096:4101] == b"world"
            # write() is seen through the mapping
            os.pwrite(fd, b"HE", 0)
            assert m[0:5] == b"HEllo"
    finally:
        os.close(fd)
    mount.commit("mmap")
    mount.remount()
    data = (mount.path / "m.bin").read_bytes()
    assert data[:5] == b"HEllo" and data[4096:4101] == b"world"


def test_mmap_read_after_abort(mount):
    f = mount.path / "a.bin"
    f.write_bytes(b"committed" + b"\0" * 4087)
    mount.commit("base")
    fd = os.open(f, os.O_RDWR)
    try:
        with mmap.mmap(fd, 4096) as m:
            m[0:9] = b"scratched"
            m.flush()
        mount.abort()
        with mmap.mmap(fd, 4096, prot=mmap.PROT_READ) as m:
            assert m[0:9] == b"committed"
    finally:
        os.close(fd)
    assert f.read_bytes()[:9] == b"committed"
