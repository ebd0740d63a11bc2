"""Fixtures for the mount tests: a fresh pool, a pogfs daemon, clean unmounts.

Binaries: $POGFS_BIN and $POG_BIN, else $POGFS_BUILD_DIR/{fs/pogfs,tools/pog},
else ./build/{fs/pogfs,tools/pog} of the repository.
"""
import errno
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("POGFS_BUILD_DIR", REPO / "build")).absolute()
POGFS = os.environ.get("POGFS_BIN", str(BUILD / "fs" / "pogfs"))
POG = os.environ.get("POG_BIN", str(BUILD / "tools" / "pog"))
# The sanitizer pass: libfuse's own leak in `pogfs POOL MNT2` (tests/lsan.supp).
os.environ["LSAN_OPTIONS"] = ":".join(
    o for o in (os.environ.get("LSAN_OPTIONS"),
                f"suppressions={REPO / 'tests' / 'lsan.supp'}") if o)
# Pool files are allocated for real: keep them small and remove them.
POOL_SIZE = os.environ.get("POGFS_TEST_POOL_SIZE", "128M")


def pytest_collection_modifyitems(config, items):
    reason = None
    if not os.path.exists("/dev/fuse"):
        reason = "/dev/fuse is missing"
    elif not os.access(POGFS, os.X_OK):
        reason = f"pogfs not built ({POGFS})"
    elif not os.access(POG, os.X_OK):
        reason = f"pog tool not built ({POG})"
    if reason:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


def mkfs(pool, size=POOL_SIZE):
    subprocess.run([POG, "mkfs", str(pool), "--size", size], check=True,
                   stdout=subprocess.DEVNULL)


class Mount:
    """One pogfs daemon in the foreground (-f) on a pool."""

    def __init__(self, pool, path):
        self.pool = Path(pool)
        self.path = Path(path)
        self.proc = None
        self.stderr_path = self.path.parent / (self.path.name + ".stderr")

    def start(self, *opts, timeout=15):
        assert self.proc is None
        self.path.mkdir(exist_ok=True)
        self.stderr_file = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [POGFS, str(self.pool), str(self.path), "-f", *opts],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.stderr_file)
        deadline = time.monotonic() + timeout
        while not self.is_mounted():
            if self.proc.poll() is not None:
                self.proc = None
                self.stderr_file.close()
                raise RuntimeError("pogfs exited: " + self.stderr())
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("pogfs did not mount in time")
            time.sleep(0.02)
        return self

    def is_mounted(self):
        return os.path.ismount(self.path)

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=60):
        """Unmount and wait for the daemon (which discards, then GCs)."""
        if self.proc is None:
            return
        if self.is_mounted():
            r = subprocess.run(["fusermount3", "-u", str(self.path)],
                               stderr=subprocess.DEVNULL)
            if r.returncode != 0:
                subprocess.run(["fusermount3", "-u", "-z", str(self.path)],
                               stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.stderr_file.close()

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", str(self.path)],
                       stderr=subprocess.DEVNULL)
        self.proc = None
        self.stderr_file.close()

    def remount(self, *opts):
        self.stop()
        return self.start(*opts)

    # ---- the .pog control directory ----
    def ctl(self, command):
        """Send one command; return the answer (raises OSError on failure)."""
        fd = os.open(self.path / ".pog" / "ctl", os.O_RDWR)
        try:
            data = command.encode() if isinstance(command, str) else command
            n = os.write(fd, data)
            assert n == len(data)
            os.lseek(fd, 0, os.SEEK_SET)
            return os.read(fd, 1 << 20).decode()
        finally:
            os.close(fd)

    def commit(self, message=None):
        return self.ctl("commit" + (" " + message if message else "") + "\n")

    def abort(self):
        return self.ctl("abort\n")

    def status(self):
        return json.loads((self.path / ".pog" / "status").read_text())


@pytest.fixture
def pool(tmp_path):
    p = tmp_path / "test.pool"
    mkfs(p)
    yield p
    remove_pools(tmp_path)


def remove_pools(directory):
    """Pool files are big and pytest keeps old temporary directories."""
    for f in Path(directory).glob("*.pool"):
        try:
            f.unlink()
        except OSError:
            pass


@pytest.fixture
def mount(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt")
    m.start()
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def mnt(mount):
    """The mount point as a Path."""
    return mount.path


def tree_snapshot(root):
    """{relative path: (kind, content or target, mode)} of a tree."""
    out = {}
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("l", os.readlink(p), 0)
            elif os.path.isdir(p):
                out[rel] = ("d", None, st.st_mode & 0o7777)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("f", f.read(), st.st_mode & 0o7777)
    return out


__all__ = ["Mount", "mkfs", "tree_snapshot", "POG", "POGFS", "errno"]
