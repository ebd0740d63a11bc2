"""Hashed pages through the mount: user.pog.hash, dedup, and a damaged
page answered with EIO (never wrong bytes), logged and found by fsck."""
import errno
import os
import subprocess

import pytest

from conftest import POG


def pog_hash(path):
    return os.getxattr(path, "user.pog.hash", follow_symlinks=False).decode()


def test_hash_follows_content(mount):
    m = mount.path
    (m / "d" / "e").mkdir(parents=True)
    (m / "d" / "e" / "f").write_text("one\n")
    (m / "top").write_text("x\n")
    h0 = pog_hash(m)
    assert len(h0) == 8 and int(h0, 16) >= 0
    assert pog_hash(m) == h0                       # stable
    assert "user.pog.hash" not in os.listxattr(m)  # read-only, not listed
    d0 = pog_hash(m / "d")
    (m / "d" / "e" / "f").write_text("two\n")      # a deep edit
    assert pog_hash(m) != h0 and pog_hash(m / "d") != d0
    assert pog_hash(m / "top") == pog_hash(m / "top")
    (m / "d" / "e" / "f").write_text("one\n")      # undone
    assert pog_hash(m) == h0
    os.chmod(m / "top", 0o600)                     # metadata only
    assert pog_hash(m) == h0
    (m / "d" / "new").mkdir()                      # add
    assert pog_hash(m) != h0
    os.rmdir(m / "d" / "new")
    assert pog_hash(m) == h0
    with pytest.raises(OSError) as e:
        os.setxattr(m / "top", "user.pog.hash", b"00000000")
    assert e.value.errno == errno.EPERM
    mount.commit("hashes")
    mount.remount()
    assert pog_hash(mount.path) == h0              # across remount


def test_dedup_stores_one_copy(mount):
    m = mount.path
    data = os.urandom(8 << 20)
    (m / "a").write_bytes(data)
    mount.commit("one copy")
    used1 = mount.status()["blocks_used"]
    for i in range(9):
        (m / f"copy{i}").write_bytes(data)
    mount.commit("nine more")
    used10 = mount.status()["blocks_used"]
    one_copy = (8 << 20) // 4096
    assert used10 - used1 < one_copy // 4, (used1, used10)
    assert mount.status()["logical_bytes"] >= 10 * len(data)
    # a write to one copy copies that page only; the others are unchanged
    with open(m / "copy3", "r+b") as f:
        f.seek(5000)
        f.write(b"!")
    mount.commit("changed one")
    assert (m / "copy4").read_bytes() == data
    assert (m / "copy3").read_bytes()[5000:5001] == b"!"


def test_damaged_page_is_eio(pool, tmp_path):
    from conftest import Mount
    m = Mount(pool, tmp_path / "mnt")
    m.start()
    try:
        marker = b"UNIQUE-MARKER-" + os.urandom(8).hex().encode()
        body = marker + b"." * (3 * 4096)
        (m.path / "victim").write_bytes(body)
        (m.path / "fine").write_bytes(b"y" * 9000)
        m.commit("victim")
    finally:
        m.stop()
    raw = bytearray(pool.read_bytes())
    at = raw.find(marker)
    assert at >= 0
    raw[at + 3] ^= 0x55
    pool.write_bytes(raw)
    m.start()
    try:
        with pytest.raises(OSError) as e:
            (m.path / "victim").read_bytes()
        assert e.value.errno == errno.EIO
        assert (m.path / "fine").read_bytes() == b"y" * 9000
        assert m.status()["checksum_errors"] >= 1
    finally:
        m.stop()
    assert "checksum mismatch" in m.stderr()
    r = subprocess.run([POG, "fsck", str(pool)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "bad-page-crc" in r.stdout and "/victim" in r.stdout
