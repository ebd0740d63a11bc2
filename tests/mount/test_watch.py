"""Watch: .pog/events (JSON lines of committed changes), pog watch, and
abort's deletions reaching inotify (SPEC section 5b)."""
import ctypes
import ctypes.util
import errno
import json
import os
import select
import signal
import struct
import subprocess
import threading
import time

import pytest

from conftest import POG, Mount

EVENTS = os.path.join(".pog", "events")


def hash_of(path):
    return os.getxattr(path, "user.pog.hash").decode()


def wait_in_read(pid, tid=None, timeout=20):
    """Wait until the process (or one of its threads) sits in read(2)."""
    where = f"/proc/{pid}/task/{tid}/syscall" if tid else f"/proc/{pid}/syscall"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(where) as f:
                if f.read().split()[0] == "0":  # __NR_read on x86-64
                    return
        except (OSError, IndexError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"{where}: not in read()")


def wait_blocked(mount, n=1, timeout=20):
    """Wait until the daemon holds n blocked reads of .pog/events."""
    deadline = time.monotonic() + timeout
    while mount.status()["events"]["blocked"] < n:
        assert time.monotonic() < deadline, "no blocked read in the daemon"
        time.sleep(0.02)


def reader_thread(fd, result):
    """A thread blocked in read(fd), once this returns."""
    ready = threading.Event()

    def run():
        result["tid"] = threading.get_native_id()
        ready.set()
        try:
            result["data"] = os.read(fd, 4096)
        except OSError as e:
            result["error"] = e.errno
    t = threading.Thread(target=run)
    t.start()
    ready.wait()
    wait_in_read(os.getpid(), result["tid"])
    return t


class Reader:
    """An open .pog/events read through select(), lines parsed."""

    def __init__(self, mnt, flags=os.O_RDONLY):
        self.fd = os.open(os.path.join(mnt, EVENTS), flags)
        self.buf = b""
        self.queue = []

    def lines(self, want, timeout=10):
        """The next `want` lines (JSON objects), waiting in select()."""
        deadline = time.monotonic() + timeout
        while len(self.queue) < want:
            left = deadline - time.monotonic()
            assert left > 0, f"only {len(self.queue)} of {want} lines: {self.queue}"
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                continue
            data = os.read(self.fd, 65536)
            assert data, "end of stream"
            self.buf += data
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                self.queue.append(json.loads(line))
        out, self.queue = self.queue[:want], self.queue[want:]
        return out

    def quiet(self, wait=0.3):
        """Nothing more to read for `wait` seconds."""
        if self.queue or self.buf:
            return False
        r, _, _ = select.select([self.fd], [], [], wait)
        return not r

    def close(self):
        os.close(self.fd)


def by_path(lines):
    return {(l["change"], l["path"]): l for l in lines}


def test_events_lines_hashes_and_order(mount, mnt):
    (mnt / "a").mkdir()
    (mnt / "a" / "x").write_text("one\n")
    mount.commit("before")  # before the open: never seen
    r = Reader(mnt)
    try:
        assert r.quiet(0.2)
        (mnt / "a" / "x").write_text("two\n")
        (mnt / "b").write_text("bee\n")
        mount.commit("first")
        c1 = mount.status()["commit_id"]
        lines = r.lines(3)
        assert r.quiet()
        got = by_path(lines)
        # a/x's content changed, not a's entries: no line for a
        assert set(got) == {("M", "."), ("M", "a/x"), ("A", "b")}
        assert all(l["commit"] == c1 for l in lines)
        assert all(l["session"] == str(mnt) for l in lines)
        assert got[("M", "a/x")]["hash"] == hash_of(mnt / "a" / "x")
        assert got[("A", "b")]["hash"] == hash_of(mnt / "b")
        assert got[("M", ".")]["hash"] == hash_of(mnt)

        os.unlink(mnt / "b")
        mount.commit("second")
        c2 = mount.status()["commit_id"]
        assert c2 > c1
        lines = r.lines(2)
        got = by_path(lines)
        assert set(got) == {("M", "."), ("D", "b")}
        assert got[("D", "b")]["hash"] is None
        assert all(l["commit"] == c2 for l in lines)
        assert got[("M", ".")]["hash"] == hash_of(mnt)
        # a commit of nothing has no lines
        mount.commit("empty")
        assert r.quiet()
        ev = mount.status()["events"]
        assert ev["readers"] == 1 and ev["blocked"] == 0
        assert ev["commits"] == 3 and ev["lines"] == 5 and ev["dropped"] == 0
    finally:
        r.close()


def test_events_poll_epoll_and_nonblock(mount, mnt):
    fd = os.open(mnt / EVENTS, os.O_RDONLY | os.O_NONBLOCK)
    ep = select.epoll()
    try:
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(100) == []
        ep.register(fd, select.EPOLLIN)
        assert ep.poll(0.1) == []
        (mnt / "f").write_text("x")
        mount.commit()
        assert p.poll(5000) == [(fd, select.POLLIN)]
        assert ep.poll(5) == [(fd, select.EPOLLIN)]
        data = os.read(fd, 65536)
        assert [json.loads(l)["path"] for l in data.splitlines()] == [".", "f"]
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)
        assert p.poll(100) == []
    finally:
        ep.close()
        os.close(fd)


def test_events_small_reads_get_whole_stream(mount, mnt):
    r = Reader(mnt)
    try:
        (mnt / ("long-name-" * 20)).write_text("x")
        mount.commit()
        got = b""
        while got.count(b"\n") < 2:
            select.select([r.fd], [], [], 5)
            got += os.read(r.fd, 7)  # smaller than one line
        lines = [json.loads(l) for l in got.splitlines()]
        assert [l["path"] for l in lines] == [".", "long-name-" * 20]
    finally:
        r.close()


def test_events_blocking_read_and_interrupt(mount, mnt):
    fd = os.open(mnt / EVENTS, os.O_RDONLY)
    result = {}

    class Woken(Exception):
        pass

    def handler(signum, frame):
        raise Woken()

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        # A signal interrupts a blocked read (FUSE interrupt -> EINTR).
        main = threading.get_native_id()

        def interrupt_soon():
            wait_in_read(os.getpid(), main)
            os.kill(os.getpid(), signal.SIGUSR1)
        t = threading.Thread(target=interrupt_soon)
        t.start()
        with pytest.raises(Woken):
            os.read(fd, 4096)
        t.join()

        # A blocked read returns when a commit lands.
        t = reader_thread(fd, result)
        (mnt / "g").write_text("y")
        mount.commit()
        t.join(60)
        assert not t.is_alive()
        assert b'"path":"g"' in result["data"]
    finally:
        signal.signal(signal.SIGUSR1, old)
        os.close(fd)


def test_events_slow_reader_loses_and_goes_on(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start("-o", "events_ring=16")
    try:
        mnt = m.path
        r = Reader(mnt)
        try:
            (mnt / "d").mkdir()
            for i in range(40):
                (mnt / "d" / f"f{i:02}").write_text(str(i))
            m.commit()  # 42 lines into a ring of 16
            got = b""  # in reads of 5 bytes, the lost line too
            while b"\n" not in got:
                select.select([r.fd], [], [], 5)
                got += os.read(r.fd, 5)
            line, r.buf = got.split(b"\n", 1)
            assert json.loads(line) == {"lost": 42 - 16}
            rest = r.lines(16)
            assert [l["path"] for l in rest] == [f"d/f{i:02}" for i in range(24, 40)]
            (mnt / "d" / "f00").write_text("again")
            m.commit()
            lines = r.lines(1)
            assert [(l["change"], l["path"]) for l in lines] == [("M", "d/f00")]
            assert lines[0]["hash"] == hash_of(mnt / "d" / "f00")
            assert r.quiet()
        finally:
            r.close()
    finally:
        m.stop()


def test_events_many_readers(mount, mnt):
    readers = [Reader(mnt) for _ in range(50)]
    try:
        for n in range(3):
            (mnt / f"n{n}").write_text(str(n))
            mount.commit()
        want = None
        for r in readers:
            lines = r.lines(6)
            paths = [(l["commit"], l["path"]) for l in lines]
            assert paths == sorted(paths)
            if want is None:
                want = lines
            assert lines == want
        assert [l["path"] for l in want if l["path"] != "."] == ["n0", "n1", "n2"]
    finally:
        for r in readers:
            r.close()


def test_events_unmount_while_read_blocked(pool, tmp_path):
    """A lazy unmount (the busy mount refuses a plain one) ends the
    stream: the blocked read returns end of file and the daemon exits."""
    m = Mount(pool, tmp_path / "mnt").start()
    proc = m.proc
    fd = os.open(m.path / EVENTS, os.O_RDONLY)
    result = {}
    t = reader_thread(fd, result)
    try:
        wait_blocked(m)
        r = subprocess.run(["fusermount3", "-u", str(m.path)],
                           stderr=subprocess.DEVNULL)
        assert r.returncode != 0  # busy: the reader holds the file
        subprocess.run(["fusermount3", "-u", "-z", str(m.path)], check=True)
        t.join(60)
        assert not t.is_alive()
        assert result["data"] == b"" and "error" not in result
    finally:
        os.close(fd)
        m.stop(timeout=30)
    assert proc.returncode == 0


def test_events_daemon_stopped_while_read_blocked(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start()
    fd = os.open(m.path / EVENTS, os.O_RDONLY)
    result = {}
    t = reader_thread(fd, result)
    try:
        wait_blocked(m)  # the daemon has it (else: ECONNABORTED)
        m.proc.send_signal(signal.SIGTERM)
        t.join(60)
        assert not t.is_alive()
        assert result["data"] == b"" and "error" not in result
    finally:
        try:
            os.close(fd)
        except OSError:
            pass  # the daemon closed its connection: ECONNABORTED
        m.stop(timeout=30)


def test_events_watch_registration(mount, mnt):
    fd = os.open(mnt / EVENTS, os.O_RDWR | os.O_NONBLOCK)
    try:
        for bad in (b"watch a/../b\n", b"watch ./a\n", b"look a\n"):
            with pytest.raises(OSError) as e:
                os.write(fd, bad)
            assert e.value.errno == errno.EINVAL
        os.write(fd, b"watch w\n")
        (mnt / "w").mkdir()
        (mnt / "other").write_text("o")
        mount.commit()
        select.select([fd], [], [], 5)
        lines = [json.loads(l) for l in os.read(fd, 65536).splitlines()]
        assert [(l["change"], l["path"]) for l in lines] == [("A", "w")]
    finally:
        os.close(fd)


def test_pog_watch(mount, mnt):
    (mnt / "a").mkdir()
    (mnt / "a" / "x").write_text("1\n")
    (mnt / "b").mkdir()
    mount.commit()
    out = open(mnt.parent / "watch.out", "w+")
    w = subprocess.Popen([POG, "watch", str(mnt), "a"], stdout=out,
                         stderr=subprocess.PIPE)
    wj = subprocess.Popen([POG, "watch", str(mnt), "a/x", "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_in_read(w.pid)  # registered, then reading
        wait_in_read(wj.pid)
        expected = []
        hashes = []

        def commit():
            mount.commit()
            return mount.status()["commit_id"]

        (mnt / "a" / "x").write_text("2\n")
        c = commit()
        expected += [f"{c} M a/x"]
        hashes.append((c, hash_of(mnt / "a" / "x")))
        (mnt / "a" / "x").write_text("2\n")  # same bytes: same hash
        commit()
        os.chmod(mnt / "a" / "x", 0o600)  # metadata only: same hash
        commit()
        (mnt / "b" / "y").write_text("elsewhere")
        commit()
        (mnt / "a" / "x").write_text("3\n")
        c = commit()
        expected += [f"{c} M a/x"]
        hashes.append((c, hash_of(mnt / "a" / "x")))
        (mnt / "a" / "z").write_text("new")
        c = commit()
        expected += [f"{c} M a", f"{c} A a/z"]
        time.sleep(0.5)
    finally:
        mount.stop()  # busy: a lazy unmount, then the streams end
    assert w.wait(timeout=20) == 0
    assert wj.wait(timeout=20) == 0
    out.seek(0)
    assert out.read().splitlines() == expected
    lines = [json.loads(l) for l in wj.stdout.read().splitlines()]
    assert [(l["commit"], l["hash"]) for l in lines] == hashes
    assert all(l["path"] == "a/x" and l["change"] == "M" for l in lines)
    out.close()


def test_pog_watch_usage_errors(mount, mnt):
    r = subprocess.run([POG, "watch", str(mnt), "a/../b"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith("pog: watch ")
    assert "not a path in the store" in r.stderr
    r = subprocess.run([POG, "watch"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([POG, "watch", "/"], capture_output=True, text=True)
    assert r.returncode == 1


# ---- inotify sees what an abort removed ----------------------------------

IN_CREATE = 0x100
IN_DELETE_SELF = 0x400
IN_IGNORED = 0x8000
IN_NONBLOCK = 0o4000


class Inotify:
    def __init__(self):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(IN_NONBLOCK)
        assert self.fd >= 0

    def watch(self, path, mask):
        wd = self.libc.inotify_add_watch(self.fd, str(path).encode(), mask)
        assert wd >= 0, os.strerror(ctypes.get_errno())
        return wd

    def events(self, timeout=2.0):
        out = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.fd], [], [], 0.1)
            if not r:
                if out:
                    break
                continue
            data = os.read(self.fd, 65536)
            i = 0
            while i < len(data):
                wd, mask, _cookie, n = struct.unpack_from("iIII", data, i)
                name = data[i + 16:i + 16 + n].rstrip(b"\0").decode()
                out.append((wd, mask, name))
                i += 16 + n
        return out

    def close(self):
        os.close(self.fd)


def test_abort_deletions_reach_inotify(mount, mnt):
    """What an abort removed is deleted in the kernel (notify_delete):
    inotify watches on those files and directories get IN_DELETE_SELF.
    (Linux sends the parent directory's watchers no IN_DELETE for a
    FUSE_NOTIFY_DELETE: the kernel deletes the dentry without fsnotify.)"""
    (mnt / "keep").write_text("k")
    (mnt / "dir").mkdir()
    mount.commit()
    ino = Inotify()
    try:
        root = ino.watch(mnt, IN_CREATE)
        (mnt / "new").write_text("n")
        (mnt / "newdir").mkdir()
        (mnt / "newdir" / "inner").write_text("i")
        (mnt / "dir" / "made").write_text("m")
        keep = ino.watch(mnt / "keep", IN_DELETE_SELF)
        new = ino.watch(mnt / "new", IN_DELETE_SELF)
        newdir = ino.watch(mnt / "newdir", IN_DELETE_SELF)
        inner = ino.watch(mnt / "newdir" / "inner", IN_DELETE_SELF)
        made = ino.watch(mnt / "dir" / "made", IN_DELETE_SELF)
        assert (root, IN_CREATE, "new") in ino.events()
        mount.abort()
        got = ino.events()
        for wd in (new, newdir, inner, made):
            assert (wd, IN_DELETE_SELF, "") in got
            assert (wd, IN_IGNORED, "") in got
        assert not any(wd in (keep, root) for wd, _, _ in got)
        assert not (mnt / "new").exists()
        assert (mnt / "keep").read_text() == "k"
        assert sorted(os.listdir(mnt)) == ["dir", "keep"]
        assert os.listdir(mnt / "dir") == []
    finally:
        ino.close()


# ---- two sessions of one daemon (SPEC 5 and 5b) ----------------------------

def test_events_from_another_session(mount, mnt, tmp_path):
    """One stream for the pool: readers on either mount see the commits of
    both, in order, each line naming the mount that committed."""
    from test_sessions import Session
    two = Session(mount.pool, tmp_path / "two").start()
    r1, r2 = Reader(mnt), Reader(two.path)
    try:
        (two.path / "t").write_text("from two\n")
        two.commit()
        c2 = two.status()["commit_id"]
        h = hash_of(two.path / "t")
        (mnt / "o").write_text("from one\n")
        mount.commit()                  # onto two's commit: it merges
        c1 = mount.status()["commit_id"]
        assert c1 > c2
        for r in (r1, r2):
            first, second = r.lines(2), r.lines(2)
            assert set(by_path(first)) == {("M", "."), ("A", "t")}
            assert all(l["commit"] == c2 and l["session"] == str(two.path)
                       for l in first)
            assert by_path(first)[("A", "t")]["hash"] == h
            assert set(by_path(second)) == {("M", "."), ("A", "o")}
            assert all(l["commit"] == c1 and l["session"] == str(mnt)
                       for l in second)
            assert r.quiet()
        assert not (two.path / "o").exists()   # two's view did not move
    finally:
        r1.close()
        r2.close()
        two.stop()


def test_lazy_unmount_ends_only_that_mounts_streams(mount, mnt, tmp_path):
    from test_sessions import Session
    two = Session(mount.pool, tmp_path / "two").start()
    fd = os.open(two.path / EVENTS, os.O_RDONLY)
    result = {}
    r1 = Reader(mnt)
    try:
        t = reader_thread(fd, result)
        wait_blocked(mount)
        subprocess.run(["fusermount3", "-u", "-z", str(two.path)], check=True)
        t.join(60)
        assert not t.is_alive()
        assert result["data"] == b"" and "error" not in result
        (mnt / "after").write_text("a")
        mount.commit()
        assert set(by_path(r1.lines(2))) == {("M", "."), ("A", "after")}
    finally:
        r1.close()
        os.close(fd)
        two.stop()


def test_follow_deletions_reach_inotify(mount, mnt, tmp_path):
    """A follower's view moves past another session's commit: what that
    commit removed is deleted in the follower's kernel (notify_delete),
    and only that: a watch on a file that stays hears nothing."""
    from test_sessions import Session
    (mnt / "gone").write_text("g")
    (mnt / "stays").write_text("s")
    (mnt / "d").mkdir()
    (mnt / "d" / "in").write_text("i")
    mount.commit()
    dash = Session(mount.pool, tmp_path / "dash").start("-o", "follow")
    ino = Inotify()
    try:
        gone = ino.watch(dash.path / "gone", IN_DELETE_SELF)
        inner = ino.watch(dash.path / "d" / "in", IN_DELETE_SELF)
        stays = ino.watch(dash.path / "stays", IN_DELETE_SELF)
        os.unlink(mnt / "gone")
        os.unlink(mnt / "d" / "in")
        os.rmdir(mnt / "d")
        mount.commit()
        got = ino.events()
        for wd in (gone, inner):
            assert (wd, IN_DELETE_SELF, "") in got
        assert not any(wd == stays for wd, _, _ in got)
        assert sorted(os.listdir(dash.path)) == ["stays"]
    finally:
        ino.close()
        dash.stop()


def test_pog_watch_on_another_mount(mount, mnt, tmp_path):
    """pog watch on an added mount prints the first mount's commits."""
    from test_sessions import Session
    (mnt / "a").mkdir()
    mount.commit()
    two = Session(mount.pool, tmp_path / "two").start()
    w = subprocess.Popen([POG, "watch", str(two.path), "a"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_in_read(w.pid)
        (mnt / "elsewhere").write_text("not under a")
        mount.commit()
        (mnt / "a" / "x").write_text("1")
        mount.commit()
        c = mount.status()["commit_id"]
        time.sleep(0.5)
        # busy (pog watch reads .pog/events): a lazy unmount ends it
        subprocess.run(["fusermount3", "-u", "-z", str(two.path)], check=True)
        out, err = w.communicate(timeout=20)
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()
        two.stop()
    assert w.returncode == 0, err
    assert out.splitlines() == [f"{c} M a", f"{c} A a/x"]
