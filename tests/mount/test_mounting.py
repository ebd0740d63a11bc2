"""Mounting behaves: remount at once, mount point checks, background failures,
/proc/mounts, SIGINT, newer formats, logs and the discard count."""
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import time

import pytest

from conftest import POG, POGFS, Mount, mkfs

F_OFD_GETLK, F_OFD_SETLK = 36, 37
F_WRLCK, F_UNLCK = 1, 2


def ofd_lock(fd, kind, start, length=1):
    """An open-file-description lock, as pogfs takes them."""
    fcntl.fcntl(fd, F_OFD_SETLK, struct.pack("hh4xqqi4x", kind, 0, start,
                                              length, 0))


def unmount(path):
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", str(path)], check=True)


def wait_pool_free(pool):
    """pog info waits for a finishing daemon, so it returns once the last
    background daemon let go of the pool."""
    r = subprocess.run([POG, "info", str(pool)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def mounts_entry(path):
    for line in open("/proc/self/mounts"):
        source, point, fstype = line.split()[:3]
        if point == str(path):
            return source.replace("\\040", " "), fstype
    return None


@pytest.fixture
def mnt_dir(tmp_path):
    d = tmp_path / "mnt"
    d.mkdir()
    yield d
    # never leave a background daemon behind
    if os.path.ismount(d):
        subprocess.run(["fusermount3", "-u", str(d)])


def background(pool, mnt, *opts, cwd=None):
    return subprocess.run([POGFS, str(pool), str(mnt), *opts],
                          capture_output=True, text=True, timeout=120,
                          cwd=cwd)


# ---- remount right after unmount ----------------------------------------------

def test_remount_right_after_unmount_five_times(pool, mnt_dir, tmp_path):
    # enough objects that collecting garbage at unmount takes a while
    doc = tmp_path / "many.json"
    doc.write_text(json.dumps({"d%d" % d: {"f%d" % i: "x" * 40 for i in range(1000)}
                               for d in range(20)}))
    subprocess.run([POG, "import", str(pool), str(doc)], check=True,
                   capture_output=True)
    r = background(pool, mnt_dir)
    assert r.returncode == 0, r.stderr
    script = f'fusermount3 -u "{mnt_dir}" && "{POGFS}" "{pool}" "{mnt_dir}"'
    try:
        for i in range(5):
            (mnt_dir / ("staged%d" % i)).write_text("discarded at unmount")
            r = subprocess.run(["bash", "-c", script], capture_output=True,
                               text=True, timeout=120)
            assert r.returncode == 0, (i, r.stderr)
            assert os.path.ismount(mnt_dir)
            for line in r.stderr.splitlines():
                assert line.startswith("pogfs: waiting for the previous daemon"), line
            assert len(os.listdir(mnt_dir / "d7")) == 1000
    finally:
        unmount(mnt_dir)
        wait_pool_free(pool)


def test_waits_for_a_finishing_daemon_saying_so(pool, mnt_dir):
    """A holder marked as finishing (what a daemon does after its unmount)
    is waited for; the mount follows once it lets go."""
    fd = os.open(pool, os.O_RDWR)
    try:
        ofd_lock(fd, F_WRLCK, 0)  # the holder's lock
        ofd_lock(fd, F_WRLCK, 2)  # finishing
        proc = subprocess.Popen([POGFS, str(pool), str(mnt_dir), "-f"],
                                stderr=subprocess.PIPE, text=True)
        line = proc.stderr.readline()
        assert line.startswith("pogfs: waiting for the previous daemon to finish with")
        time.sleep(0.5)
        assert proc.poll() is None and not os.path.ismount(mnt_dir)
    finally:
        os.close(fd)  # lets go of both locks
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mnt_dir):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        unmount(mnt_dir)
        assert proc.wait(timeout=60) == 0


def test_other_holder_is_refused_at_once(pool, mnt_dir):
    """A pool locked by something that is no finishing daemon: in use."""
    fd = os.open(pool, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)  # the whole file, as old pogfs did
        start = time.monotonic()
        r = background(pool, mnt_dir)
        assert r.returncode != 0
        assert time.monotonic() - start < 10
        assert r.stderr.startswith("pogfs: ") and "in use" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    finally:
        os.close(fd)
    assert not os.path.ismount(mnt_dir)


# ---- mount points ---------------------------------------------------------------

def test_mount_on_a_regular_file_is_refused(pool, tmp_path):
    f = tmp_path / "file"
    f.write_text("keep me\n")
    for opts in ([], ["-f"]):
        r = background(pool, f, *opts)
        assert r.returncode != 0
        assert r.stderr.startswith("pogfs: ") and "not a directory" in r.stderr
        assert f.read_text() == "keep me\n"
        assert not os.path.ismount(f)


def test_non_empty_directory_needs_nonempty(pool, mnt_dir):
    (mnt_dir / "lost").write_text("hidden by a mount\n")
    r = background(pool, mnt_dir)
    assert r.returncode != 0
    assert r.stderr.startswith("pogfs: ") and "not empty" in r.stderr
    assert "-o nonempty" in r.stderr
    assert not os.path.ismount(mnt_dir)
    m = Mount(pool, mnt_dir)
    m.start("-o", "nonempty")
    try:
        assert os.listdir(mnt_dir) == []  # the pool's empty root
    finally:
        m.stop()
    assert (mnt_dir / "lost").read_text() == "hidden by a mount\n"


# ---- background start ----------------------------------------------------------

def test_failing_background_mount_exits_non_zero_with_reason(pool, mnt_dir,
                                                              tmp_path):
    r = background(pool, mnt_dir, "-o", "no_such_option")
    assert r.returncode != 0
    assert r.stderr.startswith("pogfs: ") and "no_such_option" in r.stderr
    junk = tmp_path / "junk.pool"
    junk.write_bytes(b"not a pool" * 1000)
    r = background(junk, mnt_dir)
    assert r.returncode != 0
    assert r.stderr.startswith("pogfs: ") and "not a pogfs pool" in r.stderr
    assert not os.path.ismount(mnt_dir)


def test_background_mount_with_max_read(pool, mnt_dir):
    """-o max_read used to pass the start and fail at INIT, exiting 0."""
    r = background(pool, mnt_dir, "-o", "max_read=65536")
    try:
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(mnt_dir)
        (mnt_dir / "big").write_bytes(os.urandom(300000))
        data = (mnt_dir / "big").read_bytes()
        assert len(data) == 300000
    finally:
        unmount(mnt_dir)
        wait_pool_free(pool)


# ---- /proc/mounts -----------------------------------------------------------------

def test_proc_mounts_type_and_source(pool, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # a relative pool name still shows as its absolute path
    r = background(pool.name, "mnt", cwd=tmp_path)
    try:
        assert r.returncode == 0, r.stderr
        assert mounts_entry(mnt) == (str(pool), "fuse.pogfs")
    finally:
        unmount(mnt)
        wait_pool_free(pool)
    m = Mount(pool, mnt)
    m.start("-o", "fsname=mystore")
    try:
        assert mounts_entry(mnt) == ("mystore", "fuse.pogfs")
    finally:
        m.stop()


# ---- signals ----------------------------------------------------------------------

def test_sigint_in_the_foreground_unmounts_and_exits_0(pool, mnt_dir):
    m = Mount(pool, mnt_dir)
    m.start()
    proc = m.proc
    try:
        (mnt_dir / "f").write_text("x")
        m.commit()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not os.path.ismount(mnt_dir)
    finally:
        m.proc = proc
        m.stop()
    m.start()
    try:
        assert (mnt_dir / "f").read_text() == "x"
    finally:
        m.stop()


# ---- versions -----------------------------------------------------------------------

def test_newer_format_is_refused_naming_both_versions(pool, mnt_dir):
    with open(pool, "r+b") as f:
        data = f.read(64 << 20)
        at = data.find(b"POGPOOL1")
        assert at >= 0
        f.seek(at + 8)
        f.write((7).to_bytes(4, "little"))
    r = background(pool, mnt_dir, "-f")
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pogfs: ")
    assert "newer format" in lines[0]
    assert "version 7" in lines[0] and "version 3" in lines[0]
    r = subprocess.run([POG, "info", str(pool)], capture_output=True, text=True)
    assert r.returncode != 0
    assert "version 7" in r.stderr and "version 3" in r.stderr


# ---- logs and the discard count --------------------------------------------------------

def test_log_file_and_discard_count(pool, mnt_dir, tmp_path):
    log = tmp_path / "pogfs.log"
    m = Mount(pool, mnt_dir)
    m.start("-o", "log=" + str(log))
    try:
        (mnt_dir / "kept").write_text("committed\n")
        m.commit()
        for i in range(3):
            (mnt_dir / ("lost%d" % i)).write_text("staged\n")
        staged = m.status()["staged"]
        assert staged >= 3
    finally:
        m.stop()
    text = log.read_text()
    lines = text.splitlines()
    assert lines
    for line in lines:
        assert re.match(r"^\S+ pogfs\[\d+\]: ", line), line
    found = re.search(r"discarded (\d+) staged change", text)
    assert found and int(found.group(1)) == staged
    # the foreground stderr shows the same, as pogfs: lines
    assert ("pogfs: unmount: discarded %d staged" % staged) in m.stderr()
    # pog info shows the last discard, which lives in the pool
    info = wait_pool_free(pool)
    assert re.search(r"last discard: +%d staged changes" % staged, info), info
    m.start()
    try:
        st = m.status()
        assert st["last_discard"]["changes"] == staged
        assert st["last_discard"]["time"] > 0
    finally:
        m.stop()


def test_background_daemon_logs_to_file(pool, mnt_dir, tmp_path):
    log = tmp_path / "bg.log"
    r = background(pool, mnt_dir, "-o", "log=" + str(log))
    assert r.returncode == 0, r.stderr
    try:
        (mnt_dir / "a").write_text("x")
    finally:
        unmount(mnt_dir)
        wait_pool_free(pool)
    assert re.search(r"pogfs\[\d+\]: unmount: discarded \d+ staged", log.read_text())


def test_messages_start_with_pogfs(pool, tmp_path):
    r = subprocess.run([POGFS, str(pool)], capture_output=True, text=True)
    assert r.returncode != 0
    assert r.stderr.startswith("pogfs: ")
