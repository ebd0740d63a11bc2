"""Progress lines of pog import, export, fsck and gc: on a terminal (a
pseudo-terminal here), not on a pipe, not with --quiet; also when the
daemon holding the pool does the work."""
import json
import os
import pty
import re
import select
import subprocess

import pytest

from conftest import POG, Mount, mkfs, remove_pools

# Show the line from the first step (the default waits half a second, and
# these stores are quick to walk).
ENV = dict(os.environ, POG_PROGRESS_DELAY_MS="0")
N_OBJECTS = 3000


def run_on_terminal(*args):
    """Run pog with stderr on a pseudo-terminal; (status, stdout, stderr)."""
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([POG, *map(str, args)], stdout=subprocess.PIPE,
                             stderr=slave, stdin=subprocess.DEVNULL, env=ENV)
        os.close(slave)
        slave = -1
        err = b""
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                p.kill()
                raise AssertionError("pog hung")
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's last writer is gone
                break
            if not chunk:
                break
            err += chunk
        out = p.stdout.read()
        p.stdout.close()
        return p.wait(), out.decode(), err.decode(errors="replace")
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)


def run_on_pipe(*args):
    r = subprocess.run([POG, *map(str, args)], capture_output=True,
                       text=True, env=ENV)
    return r.returncode, r.stdout, r.stderr


def assert_progress(err, what, unit):
    lines = err.replace("\r\n", "\n").split("\r")
    drawn = [l for l in lines if l.startswith(what + ": ")]
    assert drawn, repr(err)
    # "export: 1200/3004 objects (39%), 51234/s, ETA 0 s"
    pattern = re.compile(re.escape(what) + r": \d+(/\d+ " + unit +
                         r" \(\d+%\)| " + unit + r"), \d+/s")
    assert all(pattern.match(l) for l in drawn), drawn
    assert re.search(r", done in \d+\.\d s\.\r?\n", err), repr(err)


@pytest.fixture
def big(tmp_path):
    """A pool and a document of some thousands of objects."""
    doc = {f"k{i:05d}": {"n": i, "s": "x" * (i % 50)} for i in range(N_OBJECTS // 3)}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc))
    pool = tmp_path / "big.pool"
    mkfs(pool)
    yield pool, path, doc
    remove_pools(tmp_path)


def test_progress_on_a_terminal(big):
    pool, doc_path, doc = big
    status, out, err = run_on_terminal("import", pool, doc_path)
    assert status == 0, err
    assert_progress(err, "import", "bytes")
    status, out, err = run_on_terminal("export", pool)
    assert status == 0, err
    assert json.loads(out) == doc
    assert_progress(err, "export", "objects")
    status, out, err = run_on_terminal("fsck", pool)
    assert status == 0, err
    assert_progress(err, "fsck", "objects")
    assert out.splitlines()[-1].endswith(": clean")
    status, out, err = run_on_terminal("gc", pool)
    assert status == 0, err
    assert_progress(err, "gc", "objects")


def test_quiet_and_not_a_terminal(big):
    pool, doc_path, doc = big
    status, out, err = run_on_pipe("import", pool, doc_path)
    assert status == 0 and err == ""
    for args in (["export", pool], ["fsck", pool], ["gc", pool]):
        status, out, err = run_on_pipe(*args)
        assert status == 0 and err == "", args
        status, out, err = run_on_terminal(*args, "--quiet")
        assert status == 0 and err == "", args
    status, out, err = run_on_terminal("export", pool, "-q")
    assert status == 0 and err == "" and json.loads(out) == doc


def test_progress_from_the_daemon(big, tmp_path):
    """export and fsck of a mounted pool: the daemon sends the progress."""
    pool, doc_path, doc = big
    assert run_on_pipe("import", pool, doc_path)[0] == 0
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        status, out, err = run_on_terminal("export", pool)
        assert status == 0, err
        assert json.loads(out) == doc
        # The daemon sends at most ten updates a second; the last always.
        assert_progress(err, "export", "objects")
        status, out, err = run_on_terminal("fsck", pool)
        assert status == 0, err
        assert_progress(err, "fsck", "objects")
        status, out, err = run_on_pipe("fsck", pool)
        assert status == 0 and err == ""
    finally:
        m.stop()
