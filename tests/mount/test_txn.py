"""Transactions through .pog: commit, abort, crash, unmount, control files."""
import errno
import json
import os
import subprocess
import time

import pytest

from conftest import POG, POGFS, Mount, mkfs, tree_snapshot


def test_pog_hidden_but_reachable(mount):
    mnt = mount.path
    (mnt / "a").write_text("a")
    assert os.listdir(mnt) == ["a"]
    ls = subprocess.run(["ls", "-a", str(mnt)], capture_output=True, text=True,
                        check=True).stdout.split()
    assert ".pog" not in ls
    assert sorted(os.listdir(mnt / ".pog")) == sorted(
        ["ctl", "status", "changes", "log", "events", "committed", "objects",
         "history", "snapshots", "conflicts", "sessions"])
    assert (mnt / ".pog").is_dir()
    with pytest.raises(OSError):
        (mnt / ".pog").rmdir()
    with pytest.raises(OSError):
        (mnt / ".pog" / "newfile").write_text("x")


def test_showpog_option(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start("-o", "showpog")
    try:
        assert ".pog" in os.listdir(m.path)
    finally:
        m.stop()


def test_commit_survives_remount(mount):
    mnt = mount.path
    (mnt / "dir").mkdir()
    (mnt / "dir" / "f").write_text("committed")
    answer = mount.commit("first")
    assert answer.startswith("commit ")
    st = mount.status()
    assert st["staged"] == 0
    assert st["commit_id"] >= 1
    log = (mnt / ".pog" / "log").read_text().splitlines()
    # ID TIME SESSION CHANGES HASH RETAINED MESSAGE
    assert log and log[-1].split(" ", 6)[6] == "first"
    mount.remount()
    assert (mnt / "dir" / "f").read_text() == "committed"


def test_unmount_discards_staged(mount):
    mnt = mount.path
    (mnt / "kept").write_text("kept")
    mount.commit()
    (mnt / "lost").write_text("lost")
    (mnt / "kept").write_text("changed")
    mount.stop()
    assert "discarded" in mount.stderr()
    mount.start()
    assert sorted(os.listdir(mnt)) == ["kept"]
    assert (mnt / "kept").read_text() == "kept"


def test_autocommit_on_unmount(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start("-o", "autocommit,autocommit_delay=60")
    try:
        (m.path / "auto").write_text("saved")
        m.remount()
        assert (m.path / "auto").read_text() == "saved"
    finally:
        m.stop()


def test_autocommit_after_quiet_period(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start("-o", "autocommit,autocommit_delay=1")
    try:
        (m.path / "auto").write_text("saved")
        deadline = time.monotonic() + 10
        while m.status()["staged"] != 0:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        m.kill9()
        m.start()
        assert (m.path / "auto").read_text() == "saved"
    finally:
        m.stop()


def test_abort_returns_committed_tree(mount):
    mnt = mount.path
    (mnt / "d").mkdir()
    (mnt / "d" / "f").write_text("old content\n")
    (mnt / "g").write_text("g")
    (mnt / "h").write_text("h")
    mount.commit("base")
    before = tree_snapshot(mnt)
    # read through the page cache, then change everything
    with open(mnt / "d" / "f") as h:
        assert h.read() == "old content\n"
    (mnt / "d" / "f").write_text("new content that is longer\n")
    assert (mnt / "d" / "f").read_text() == "new content that is longer\n"
    (mnt / "new").write_text("new")
    (mnt / "newdir").mkdir()
    (mnt / "g").unlink()
    os.rename(mnt / "h", mnt / "d" / "h2")
    os.chmod(mnt / "d", 0o700)
    assert mount.status()["staged"] > 0
    changes = (mnt / ".pog" / "changes").read_text().splitlines()
    assert any(line.startswith("A ") and "new" in line for line in changes)
    mount.abort()
    assert mount.status()["staged"] == 0
    assert tree_snapshot(mnt) == before
    assert (mnt / "d" / "f").read_text() == "old content\n"
    assert not (mnt / "new").exists()
    assert (mnt / "g").read_text() == "g"


def test_abort_invalidates_open_file(mount):
    mnt = mount.path
    (mnt / "f").write_text("A" * 10000)
    mount.commit()
    with open(mnt / "f", "rb") as h:
        assert h.read() == b"A" * 10000
        with open(mnt / "f", "r+b") as w:
            w.write(b"B" * 10000)
        h.seek(0)
        assert h.read() == b"B" * 10000
        mount.abort()
        h.seek(0)
        assert h.read() == b"A" * 10000


def test_committed_view_is_read_only(mount):
    mnt = mount.path
    (mnt / "f").write_text("v1")
    mount.commit()
    (mnt / "f").write_text("v2")
    (mnt / "staged-only").write_text("s")
    committed = mnt / ".pog" / "committed"
    assert (committed / "f").read_text() == "v1"
    assert not (committed / "staged-only").exists()
    for action in (lambda: (committed / "f").write_text("x"),
                   lambda: (committed / "new").write_text("x"),
                   lambda: (committed / "f").unlink(),
                   lambda: os.chmod(committed / "f", 0o600),
                   lambda: (committed / "dir").mkdir()):
        with pytest.raises(OSError) as e:
            action()
        assert e.value.errno == errno.EROFS
    mount.commit()
    assert (committed / "f").read_text() == "v2"


def test_objects_by_identity(mount):
    mnt = mount.path
    (mnt / "f").write_text("by ino")
    ino = (mnt / "f").stat().st_ino
    assert (mnt / ".pog" / "objects" / str(ino)).read_text() == "by ino"
    assert os.listdir(mnt / ".pog" / "objects") == []
    assert not (mnt / ".pog" / "objects" / "999999999").exists()


def test_bad_ctl_commands(mount):
    for bad in ["frobnicate\n", "abort now\n", "\n", "gc please\n",
                "import\n", "import 3\n{}{}", "commit\nabort\n", "commit\0x\n"]:
        with pytest.raises(OSError) as e:
            mount.ctl(bad)
        assert e.value.errno == errno.EINVAL, bad
        assert mount.status()["last_error"], bad
    with pytest.raises(OSError):
        mount.ctl("frobnicate\n")
    assert "frobnicate" in mount.status()["last_error"]
    # export with no PATH is the root's
    assert json.loads(mount.ctl("export\n")) == {}
    with pytest.raises(OSError) as e:
        mount.ctl("export no/such/tree\n")
    assert e.value.errno == errno.ENOENT
    assert "no/such/tree" in mount.status()["last_error"]
    # shell style: one write of "abort\n" works
    subprocess.run(["bash", "-c", f"echo abort > '{mount.path}/.pog/ctl'"], check=True)
    r = subprocess.run(["bash", "-c", f"echo bogus > '{mount.path}/.pog/ctl'"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "Invalid argument" in r.stderr


def test_gc_keeps_staged(mount):
    (mount.path / "f").write_text("x")
    answer = mount.ctl("gc")
    assert "freed" in answer
    assert (mount.path / "f").read_text() == "x"
    assert "f" in (mount.path / ".pog/changes").read_text()
    mount.commit()
    answer = mount.ctl("gc")
    assert "freed" in answer


def test_kill9_keeps_last_commit(mount):
    mnt = mount.path
    (mnt / "safe").write_text("committed")
    (mnt / "dir").mkdir()
    mount.commit("safe")
    before = tree_snapshot(mnt)
    (mnt / "safe").write_text("staged")
    (mnt / "extra").write_bytes(os.urandom(300_000))
    (mnt / "dir" / "x").write_text("x")
    mount.kill9()
    r = subprocess.run([POG, "fsck", str(mount.pool)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    mount.start()
    assert tree_snapshot(mnt) == before


def test_second_mount_is_a_session(mount, tmp_path):
    """pogfs POOL MNT2 while a daemon serves POOL: a session of that
    daemon (tests/mount/test_sessions.py has the rest)."""
    other = tmp_path / "other"
    other.mkdir()
    r = subprocess.run([POGFS, str(mount.pool), str(other), "-f"],
                       capture_output=True, text=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(other)
        assert mount.status()["sessions"] == 2
    finally:
        subprocess.run(["fusermount3", "-u", str(other)], check=True)


def test_refuses_non_pool(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a pool" * 1000)
    (tmp_path / "m").mkdir()
    r = subprocess.run([POGFS, str(junk), str(tmp_path / "m"), "-f"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert r.stderr.startswith("pogfs: ")
    assert len(r.stderr.strip().splitlines()) == 1


def test_help():
    r = subprocess.run([POGFS, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "autocommit" in r.stdout


def test_daemon_mode(pool, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([POGFS, str(pool), str(mnt)], capture_output=True, timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt)
        (mnt / "f").write_text("x")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])
    # the daemon exits after unmount and releases the pool's lock
    deadline = time.monotonic() + 30
    while True:
        r = subprocess.run([POG, "info", str(pool)], capture_output=True)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.returncode == 0


def test_gc_returns_space(tmp_path):
    pool = tmp_path / "gc.pool"
    mkfs(pool, "256M")
    # keep=1: the commit that held the data is not kept as history
    # (test_history.py covers GC of what history held)
    mount = Mount(pool, tmp_path / "mnt").start("-o", "keep=1")
    try:
        check_gc_returns_space(mount)
    finally:
        mount.stop()
        pool.unlink()


def check_gc_returns_space(mount):
    mnt = mount.path
    used0 = mount.status()["pool_used"]
    with open(mnt / "big", "wb") as h:
        for i in range(100):  # distinct pages: nothing to deduplicate
            h.write(os.urandom(1 << 20))
    mount.commit("big")
    used_big = mount.status()["pool_used"]
    assert used_big - used0 >= 90 << 20
    (mnt / "big").unlink()
    mount.commit("delete big")
    mount.ctl("gc")
    used_after = mount.status()["pool_used"]
    assert used_after < used0 + (10 << 20), (used0, used_big, used_after)
    sv = os.statvfs(mnt)
    assert (sv.f_blocks - sv.f_bfree) * sv.f_frsize < used_big


def test_pool_full_then_recover(tmp_path):
    pool = tmp_path / "small.pool"
    mkfs(pool, "64M")
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        (m.path / "keep").write_text("committed before the pool filled")
        m.commit("keep")
        block = os.urandom(1 << 20)
        written = 0
        with pytest.raises(OSError) as e:
            with open(m.path / "filler", "wb") as h:
                for _ in range(200):
                    h.write(block)
                    h.flush()
                    written += 1
        assert e.value.errno == errno.ENOSPC
        assert written >= 10
        # the mount still answers, the committed state is intact
        assert (m.path / "keep").read_text() == "committed before the pool filled"
        assert (m.path / ".pog" / "committed" / "keep").exists()
        (m.path / "filler").unlink()
        m.commit("drop filler")
        m.ctl("gc")
        (m.path / "after").write_bytes(block * 8)
        m.commit("after")
        m.remount()
        assert (m.path / "after").stat().st_size == 8 << 20
        assert not (m.path / "filler").exists()
    finally:
        m.stop()
        pool.unlink()


def test_concurrent_writers_with_commits_and_aborts(mount):
    import threading
    mnt = mount.path
    stop = threading.Event()
    errors = []

    def writer(k):
        i = 0
        while not stop.is_set():
            try:
                d = mnt / f"w{k}"
                d.mkdir(exist_ok=True)
                f = d / f"f{i % 20}"
                f.write_bytes(os.urandom(5000))
                os.rename(f, d / f"g{i % 20}")
            except OSError as e:
                # an abort may remove what a writer was working on (also
                # between mkdir's EEXIST and the is_dir() that
                # mkdir(exist_ok=True) then does: FileExistsError)
                if e.errno not in (errno.ENOENT, errno.ESTALE, errno.EEXIST):
                    errors.append(e)
            i += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        for j in range(30):
            time.sleep(0.02)
            if j % 6 == 5:
                mount.abort()
            else:
                mount.commit(f"round {j}")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:3]
    mount.commit("final")
    before = tree_snapshot(mnt)
    mount.remount()
    assert tree_snapshot(mnt) == before


def test_export_through_ctl(mount):
    import json
    mnt = mount.path
    (mnt / "sub").mkdir()
    (mnt / "sub" / "name").write_text("pog")
    (mnt / "sub" / "n").write_text("42\n")
    os.setxattr(mnt / "sub" / "n", "user.pog.type", b"int")
    doc = json.loads(mount.ctl("export sub\n"))
    assert json.dumps(doc).count("pog") >= 1
    assert json.dumps(doc).count("42") >= 1
    assert json.loads(mount.ctl(f"export {mnt}/sub\n")) == doc
    whole = json.loads(mount.ctl("export .\n"))
    assert "sub" in json.dumps(whole)
    mount.commit()
    (mnt / "sub" / "name").write_text("changed")
    assert json.loads(mount.ctl("export .pog/committed/sub\n")) == doc
