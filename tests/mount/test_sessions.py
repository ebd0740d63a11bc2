"""Sessions: each mount of a pool is its own transaction (SPEC section 5).
The first mount's daemon serves the others (`pogfs POOL MNT2` hands its
mount over); MagLev's tutorial, first committer wins, merges, .pog/sessions
and .pog/conflicts, unmounting in every order, kill -9."""
import errno
import itertools
import json
import os
import subprocess
import time

import pytest

from conftest import POG, POGFS, Mount, tree_snapshot


class Session:
    """A mount added to the daemon serving the pool (no process of its
    own: the `pogfs` that mounts it exits once the daemon serves it)."""

    def __init__(self, pool, path):
        self.pool = pool
        self.path = path

    def start(self, *opts):
        self.path.mkdir(exist_ok=True)
        r = subprocess.run([POGFS, str(self.pool), str(self.path), *opts],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert os.path.ismount(self.path)
        return self

    def stop(self):
        if os.path.ismount(self.path):
            subprocess.run(["fusermount3", "-u", str(self.path)], check=True)

    def ctl(self, command):
        fd = os.open(self.path / ".pog" / "ctl", os.O_RDWR)
        try:
            os.write(fd, command.encode())
            os.lseek(fd, 0, os.SEEK_SET)
            return os.read(fd, 1 << 20).decode()
        finally:
            os.close(fd)

    def commit(self):
        return self.ctl("commit\n")

    def abort(self):
        return self.ctl("abort\n")

    def status(self):
        return json.loads((self.path / ".pog" / "status").read_text())


@pytest.fixture
def two(mount, tmp_path):
    s = Session(mount.pool, tmp_path / "two").start()
    yield s
    s.stop()


def test_maglev_tutorial(mount, two):
    """One writes and commits; Two still reads the old value; Two aborts
    and reads the new one (MagLev's persistence tutorial, two irb's)."""
    one = mount
    (one.path / "hat").write_text("old")
    one.commit()
    two.abort()                       # Two's view: the latest commit
    assert (two.path / "hat").read_text() == "old"
    committed = two.path / ".pog" / "committed" / "hat"
    assert committed.read_text() == "old"
    (one.path / "hat").write_text("rabbit")
    assert (two.path / "hat").read_text() == "old"   # staged in One
    one.commit()
    assert (two.path / "hat").read_text() == "old"   # committed by One
    assert committed.read_text() == "rabbit"         # the latest commit
    assert two.status()["base_commit"] < one.status()["commit_id"]
    two.abort()
    assert (two.path / "hat").read_text() == "rabbit"
    assert two.status()["base_commit"] == one.status()["commit_id"]


def test_conflicting_edits_estale(mount, two):
    one = mount
    (one.path / "f").write_text("base")
    one.commit()
    two.abort()
    (one.path / "f").write_text("one")
    (two.path / "f").write_text("two")
    (two.path / "g").write_text("g")
    one.commit()
    with pytest.raises(OSError) as e:
        two.commit()
    assert e.value.errno == errno.ESTALE
    assert (two.path / ".pog" / "conflicts").read_text() == "C f\n"
    assert "conflicts" in two.status()["last_error"]
    assert (two.path / "f").read_text() == "two"     # still staged
    assert (two.path / "g").read_text() == "g"
    assert not (one.path / "g").exists()
    two.abort()
    assert (two.path / ".pog" / "conflicts").read_text() == ""
    assert (two.path / "f").read_text() == "one"
    assert not (two.path / "g").exists()


def test_different_keys_both_commit(mount, two):
    one = mount
    (one.path / "people").mkdir()
    one.commit()
    two.abort()
    (one.path / "people" / "ada").write_text("1815")
    (two.path / "people" / "bob").write_text("1900")
    (two.path / "people" / "sub").mkdir()
    one.commit()
    two.commit()                      # merged onto One's commit
    assert sorted(os.listdir(two.path / "people")) == ["ada", "bob", "sub"]
    assert os.stat(two.path / "people").st_nlink == 3
    one.abort()
    assert sorted(os.listdir(one.path / "people")) == ["ada", "bob", "sub"]
    assert (one.path / "people" / "bob").read_text() == "1900"


def test_sessions_and_status(mount, two):
    one = mount
    (two.path / "x").write_text("x")
    lines = (one.path / ".pog" / "sessions").read_text().splitlines()
    rows = sorted(line.split("\t") for line in lines)
    assert [r[0] for r in rows] == sorted([str(os.path.realpath(one.path)),
                                           str(os.path.realpath(two.path))])
    staged = {r[0]: int(r[2]) for r in rows}
    assert staged[str(os.path.realpath(two.path))] > 0
    assert staged[str(os.path.realpath(one.path))] == 0
    assert one.status()["sessions"] == 2
    assert one.status()["session"] != two.status()["session"]


def test_sessions_file_single_mount(mount):
    mnt = mount.path
    st = mount.status()
    assert st["sessions"] == 1
    assert st["base_commit"] == st["commit_id"]
    line = (mnt / ".pog" / "sessions").read_text()
    assert line == f"{os.path.realpath(mnt)}\t{st['commit_id']}\t0\n"
    assert os.stat(mnt / ".pog" / "sessions").st_size == len(line)
    assert (mnt / ".pog" / "conflicts").read_text() == ""


def test_gc_keeps_staged_and_the_next_commit_lands(mount, two):
    """gc runs in a session of its own: what any session stages stays
    staged, and their commits (onto gc's commits) keep everything."""
    mnt = mount.path
    (mnt / "gone").write_text("g" * 100000)
    mount.commit()
    os.unlink(mnt / "gone")
    mount.commit()
    (mnt / "new").write_text("staged")
    two.abort()
    (two.path / "d").mkdir()
    (two.path / "d" / "x").write_text("x")
    mount.ctl("gc")
    two.ctl("gc")
    assert mount.status()["staged"] > 0 and two.status()["staged"] > 0
    assert (mnt / "new").read_text() == "staged"
    mount.commit()
    two.commit()
    mount.abort()
    assert sorted(os.listdir(mnt)) == ["d", "new"]
    assert (mnt / "d" / "x").read_text() == "x"


def wait_gone(proc, timeout=60):
    proc.wait(timeout=timeout)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_unmount_in_every_order(pool, tmp_path, order):
    first = Mount(pool, tmp_path / "m0").start()
    mounts = [first]
    try:
        for i in (1, 2):
            mounts.append(Session(pool, tmp_path / f"m{i}").start())
        for i, m in enumerate(mounts):
            (m.path / f"from{i}").write_text(str(i))
        mounts[1].commit()            # the others' changes are discarded
        for k, i in enumerate(order):
            m = mounts[i]
            if i == 0:
                subprocess.run(["fusermount3", "-u", str(m.path)], check=True)
            else:
                m.stop()
            if k < 2:                 # the daemon lives while mounts do
                assert first.proc.poll() is None, (order, k)
            for j in order[k + 1:]:   # the others still work
                assert (mounts[j].path / f"from{j}").read_text() == str(j)
        first.proc.wait(timeout=60)
        first.proc = None
        first.stderr_file.close()
    finally:
        for m in mounts[1:]:
            m.stop()
        first.stop()
    r = subprocess.run([POG, "fsck", str(pool)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    m = Mount(pool, tmp_path / "m0").start()
    try:
        assert sorted(os.listdir(m.path)) == ["from1"]
    finally:
        m.stop()


def test_kill9_with_three_sessions_staged(pool, tmp_path):
    first = Mount(pool, tmp_path / "m0").start()
    sessions = []
    try:
        (first.path / "safe").write_text("committed")
        first.commit("safe")
        for i in (1, 2):
            sessions.append(Session(pool, tmp_path / f"m{i}").start())
        before = tree_snapshot(first.path)
        for i, m in enumerate([first] + sessions):
            (m.path / "safe").write_text(f"staged {i}")
            (m.path / f"extra{i}").write_bytes(os.urandom(200_000))
        first.kill9()
    finally:
        for s in sessions:
            subprocess.run(["fusermount3", "-u", "-z", str(s.path)],
                           stderr=subprocess.DEVNULL)
        first.stop()
    r = subprocess.run([POG, "fsck", str(pool)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    first.start()
    try:
        assert tree_snapshot(first.path) == before
    finally:
        first.stop()


def test_follow_moves_with_each_commit(mount, tmp_path):
    one = mount
    (one.path / "news").write_text("v1")
    (one.path / "old").write_text("o")
    one.commit()
    dash = Session(mount.pool, tmp_path / "dash").start("-o", "follow")
    try:
        assert (dash.path / "news").read_text() == "v1"
        os.stat(dash.path / "old")                 # cached by the kernel
        (one.path / "news").write_text("v2")
        os.unlink(one.path / "old")
        one.commit()
        assert (dash.path / "news").read_text() == "v2"   # at once
        assert not (dash.path / "old").exists()
        assert dash.status()["base_commit"] == one.status()["commit_id"]
        # with something staged a follower stays where it is
        (dash.path / "mine").write_text("m")
        (one.path / "news").write_text("v3")
        one.commit()
        assert (dash.path / "news").read_text() == "v2"
        dash.abort()
        assert (dash.path / "news").read_text() == "v3"
    finally:
        dash.stop()


def test_pog_export_import_reach_the_named_mount(mount, two, tmp_path):
    """The control socket's requests name no mount: with two mounts, pog
    export and pog import of MNT2 paths act on MNT2's session (staged
    view), not on the daemon's first mount."""
    one = mount
    (one.path / "m").mkdir()
    one.commit()
    two.abort()
    (two.path / "m" / "only_two").write_text("2")
    (one.path / "m" / "only_one").write_text("1")
    r = subprocess.run([POG, "export", str(two.path / "m")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"only_two": "2"}
    doc = tmp_path / "doc.json"
    doc.write_text('{"imported": "yes"}')
    r = subprocess.run([POG, "import", str(two.path / "m" / "sub"), str(doc)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (two.path / "m" / "sub" / "imported").read_text() == "yes"
    assert not (one.path / "m" / "sub").exists()


def test_four_sessions_stress_serializable(mount, tmp_path):
    """Four sessions edit keys of one map with random overlaps and commit
    in turns. A commit whose keys no other commit touched since its base
    must land; one that overlaps must fail with ESTALE and apply nothing.
    After every commit the committer's view equals the model, and every
    session that aborts sees it too (its kernel caches were told)."""
    import random
    rnd = random.Random(20261130)
    keys = [f"k{i}" for i in range(6)]
    (mount.path / "m").mkdir()
    model = {}
    for k in keys[:3]:
        (mount.path / "m" / k).write_text(f"{k}=init")
        model[k] = f"{k}=init"
    mount.commit("init")
    sessions = [Session(mount.pool, tmp_path / f"s{i}").start()
                for i in (1, 2, 3)]
    everyone = [mount] + sessions
    version = 0
    outcomes = {True: 0, False: 0}
    changed_at = {}                        # key -> version that changed it
    base = [version] * 4                   # each session's base
    staged = [dict() for _ in range(4)]    # key -> value or None (removed)

    def view(s):
        d = s.path / "m"
        return {n: (d / n).read_text() for n in os.listdir(d)}

    try:
        for _ in range(48):
            i = rnd.randrange(4)
            s = everyone[i]
            for _ in range(rnd.randint(1, 2)):
                k = rnd.choice(keys)
                exists = (s.path / "m" / k).exists()
                if exists and rnd.random() < 0.3:
                    os.unlink(s.path / "m" / k)
                    staged[i][k] = None
                else:
                    v = f"{k}=s{i}v{rnd.randrange(1000)}"
                    (s.path / "m" / k).write_text(v)
                    staged[i][k] = v
            if rnd.random() < 0.5:
                continue
            overlap = any(changed_at.get(k, -1) > base[i] for k in staged[i])
            try:
                s.ctl("commit\n")
                landed = True
            except OSError as e:
                assert e.errno == errno.ESTALE, e
                landed = False
            assert landed == (not overlap), (i, staged[i], base[i], changed_at)
            outcomes[landed] += 1
            if landed:
                version += 1
                for k, v in staged[i].items():
                    changed_at[k] = version
                    if v is None:
                        model.pop(k, None)
                    else:
                        model[k] = v
                assert view(s) == model
            else:
                s.ctl("abort\n")
                assert view(s) == model
            staged[i] = {}
            base[i] = version
            # another session, with nothing staged, moves on by abort
            j = rnd.randrange(4)
            if not staged[j]:
                everyone[j].ctl("abort\n")
                base[j] = version
                assert view(everyone[j]) == model
        assert outcomes[True] >= 5 and outcomes[False] >= 2, outcomes
    finally:
        for s in sessions:
            s.stop()


def test_added_mount_autocommits_after_quiet_period(mount, tmp_path):
    auto = Session(mount.pool, tmp_path / "auto").start(
        "-o", "autocommit,autocommit_delay=1")
    try:
        (auto.path / "note").write_text("saved by itself")
        deadline = time.time() + 20
        while auto.status()["staged"] and time.time() < deadline:
            time.sleep(0.2)
        assert auto.status()["staged"] == 0
        mount.abort()                  # the first mount moves to it
        assert (mount.path / "note").read_text() == "saved by itself"
        log = (mount.path / ".pog" / "log").read_text().splitlines()
        assert "autocommit" in log[-1] and str(auto.path) in log[-1]
    finally:
        auto.stop()


def test_first_mount_leaves_while_another_lives(pool, tmp_path):
    """Unmounting the daemon's first mount ends its session at once (its
    staged changes are discarded and counted) although the daemon goes on
    serving the other mount; mounting it again adds a session."""
    first = Mount(pool, tmp_path / "m0").start()
    two = Session(pool, tmp_path / "m1").start()
    try:
        (first.path / "staged-in-first").write_text("x")
        subprocess.run(["fusermount3", "-u", str(first.path)], check=True)
        deadline = time.time() + 20    # the daemon hears it a moment later
        while True:
            lines = (two.path / ".pog" / "sessions").read_text().splitlines()
            if len(lines) == 1 or time.time() > deadline:
                break
            time.sleep(0.05)
        assert [l.split("\t")[0] for l in lines] == [str(two.path)]
        st = two.status()
        assert st["sessions"] == 1
        assert first.proc.poll() is None     # the daemon serves two
        (two.path / "kept").write_text("k")
        two.commit()
        again = Session(pool, tmp_path / "m0").start()
        try:
            assert sorted(os.listdir(again.path)) == ["kept"]
            assert len((again.path / ".pog" / "sessions").read_text()
                       .splitlines()) == 2
        finally:
            again.stop()
        two.stop()
        first.proc.wait(timeout=60)
        first.proc = None
        first.stderr_file.close()
    finally:
        two.stop()
        first.stop()
    r = subprocess.run([POG, "fsck", str(pool)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
