"""pog info, export and fsck on a pool that a daemon holds (asked of the
daemon over its control socket), and pog commit/abort/status from any path
inside a mount."""
import json
import re
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import POG, Mount, mkfs


def pog(*args, check=True, cwd=None, **kw):
    r = subprocess.run([POG, *map(str, args)], capture_output=True, text=True,
                       cwd=cwd, **kw)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def socket_of(pool):
    return pool.parent / ("." + pool.name + ".sock")


def fill(mount):
    m = mount.path
    (m / "people" / "ada").mkdir(parents=True)
    (m / "people" / "ada" / "born").write_text("1815\n")
    os.setxattr(m / "people" / "ada" / "born", "user.pog.type", b"int")
    (m / "note").write_text("hello\n")
    mount.commit("filled")
    (m / "staged-only").write_text("not committed\n")


def test_info_export_fsck_of_a_mounted_pool(mount):
    fill(mount)
    pool = mount.pool
    assert socket_of(pool).exists()
    info = pog("info", pool).stdout
    assert "last commit:     2" in info
    assert f"mounted:         at {mount.path} by pogfs (pid {mount.proc.pid})" in info
    assert re.search(r"; [1-9][0-9]* staged changes? there", info)
    exported = pog("export", pool).stdout
    # The last commit, not what is staged.
    assert json.loads(exported) == {"note": "hello\n",
                                    "people": {"ada": {"born": 1815}}}
    r = pog("fsck", pool)
    assert r.stdout.splitlines()[-1].endswith(": clean")
    assert "through the pogfs daemon" in r.stdout
    # --repair and gc need the pool for themselves.
    r = pog("fsck", pool, "--repair", check=False)
    assert r.returncode == 2 and "in use" in r.stderr
    r = pog("gc", pool, check=False)
    assert r.returncode == 1 and "in use" in r.stderr
    # The same bytes as an export of the unmounted pool.
    out = mount.path.parent / "mounted.json.gz"
    pog("export", pool, "-o", out)
    mount.stop()
    assert not socket_of(pool).exists()
    assert pog("export", pool).stdout == exported
    r = subprocess.run(["gzip", "-dc", str(out)], capture_output=True, text=True)
    assert r.stdout == exported
    assert "mounted:" not in pog("info", pool).stdout


def test_read_only_mount(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        fill(m)
    finally:
        m.stop()
    m = Mount(pool, tmp_path / "mnt").start("-o", "ro")
    try:
        with pytest.raises(OSError):
            (m.path / "new").write_text("x")
        mounted_info = pog("info", pool).stdout
        assert "last commit:     2" in mounted_info
        assert json.loads(pog("export", pool).stdout)["note"] == "hello\n"
        assert pog("fsck", pool).stdout.splitlines()[-1].endswith(": clean")
    finally:
        m.stop()
    # The daemon's answer is what pog says of the unmounted pool, and
    # where it was mounted.
    offline = pog("info", pool).stdout.splitlines()
    assert [l for l in mounted_info.splitlines()
            if not l.startswith("mounted:")] == offline


def test_stale_socket_after_kill9(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start()
    fill(m)
    m.kill9()
    sock = socket_of(pool)
    assert sock.exists()  # nobody removed it
    # No daemon: pog opens the pool itself (the connection is refused).
    info = pog("info", pool).stdout
    assert "last commit:     2" in info and "mounted:" not in info
    # A new daemon replaces the stale socket and answers on it.
    m.start()
    try:
        assert sock.exists()
        assert f"pid {m.proc.pid})" in pog("info", pool).stdout
    finally:
        m.stop()
    assert not sock.exists()


def test_long_pool_path(tmp_path):
    """unix socket names hold 107 bytes; deeper pools work all the same."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    pool = deep / "long-named.pool"
    mkfs(pool)
    assert len(str(socket_of(pool))) > 108
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        (m.path / "x").write_text("1\n")
        m.commit()
        assert socket_of(pool).exists()
        assert json.loads(pog("export", pool).stdout) == {"x": "1\n"}
    finally:
        m.stop()
        pool.unlink()


def test_pool_in_a_read_only_directory(tmp_path):
    """When the pool's directory cannot hold the socket, it goes under
    /run/pogfs (root) and pog finds it there. A read-only bind mount in a
    private namespace makes the directory read-only even for root."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare")
    d = tmp_path / "ro"
    d.mkdir()
    pool = d / "p.pool"
    mkfs(pool)
    writable = tmp_path / "rw.pool"
    os.link(pool, writable)  # the same file, reached outside the ro dir
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    from conftest import POGFS
    script = r'''
set -eu
mount --bind "$1" "$1" && mount -o remount,bind,ro "$1"
mount --bind "$5" "$1/p.pool"   # the file itself stays writable
"$2" "$1/p.pool" "$3"
trap 'umount "$3"' EXIT
test ! -e "$1/.p.pool.sock"
ls /run/pogfs/ | grep -c '\.sock$'
"$4" info "$1/p.pool" | grep '^mounted:'
'''
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "bash",
                        "-c", script, "bash", str(d), POGFS, str(mnt), POG,
                        str(writable)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"mounted:         at {mnt}" in r.stdout
    # The daemon removes its socket when it exits.
    deadline = time.monotonic() + 30
    while any(Path("/run/pogfs").glob("*.sock")) and time.monotonic() < deadline:
        time.sleep(0.05)
    writable.unlink()
    pool.unlink()


def test_another_user_who_may_read_the_pool(tmp_path):
    """A user who may read the pool file is answered; the daemon checks
    the caller's credentials (SO_PEERCRED)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv")
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534",
                            "--clear-groups", POG, "--version"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip("the built pog is not reachable by nobody")
    d = Path(tempfile.mkdtemp(prefix="pogfs-serve."))
    try:
        d.chmod(0o755)
        pool = d / "shared.pool"
        mkfs(pool)
        pool.chmod(0o644)
        m = Mount(pool, d / "mnt").start()
        try:
            as_nobody = ["setpriv", "--reuid=65534", "--regid=65534",
                         "--clear-groups", POG]
            r = subprocess.run(as_nobody + ["info", str(pool)],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert "mounted:" in r.stdout
            pool.chmod(0o600)
            r = subprocess.run(as_nobody + ["info", str(pool)],
                               capture_output=True, text=True)
            assert r.returncode == 1
            assert r.stderr.startswith("pog: info ")
        finally:
            m.stop()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_commit_abort_status_from_inside_the_mount(mount):
    m = mount.path
    (m / "a" / "b").mkdir(parents=True)
    (m / "a" / "b" / "f").write_text("1\n")
    deep = m / "a" / "b"
    # From a directory inside, with no MNT operand.
    status = json.loads(pog("status", cwd=deep).stdout)
    assert status["staged"] > 0
    assert pog("commit", cwd=deep).stdout.startswith("commit 2:")
    # A file inside names its mount too; a message follows.
    (m / "a" / "g").write_text("2\n")
    out = pog("commit", deep / "f", "from", "a", "file").stdout
    assert out.startswith("commit 3:")
    assert "from a file" in (m / ".pog" / "log").read_text()
    (m / "a" / "h").write_text("3\n")
    assert pog("abort", deep).stdout.startswith("aborted: ")
    assert not (m / "a" / "h").exists()
    # Outside any mount: one clear line.
    r = pog("status", cwd=m.parent, check=False)
    assert r.returncode == 1
    assert "not a pogfs mount" in r.stderr and len(r.stderr.splitlines()) == 1
