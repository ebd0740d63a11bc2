"""History (SPEC 5a): retained commits as read-only trees, snapshots,
diff, export of an old commit, retention across remounts, GC."""
import errno
import json
import os
import subprocess

import pytest

from conftest import POG, Mount


def ctl_fails(mount, command):
    with pytest.raises(OSError) as e:
        mount.ctl(command)
    return e.value.errno


def commit_id(mount):
    return mount.status()["commit_id"]


def history(mnt):
    return sorted(int(x) for x in os.listdir(mnt / ".pog" / "history"))


def diff(mount, a, b):
    return mount.ctl(f"diff {a} {b}\n").splitlines()


def test_browse_old_commits(mount):
    mnt = mount.path
    (mnt / "a").write_text("one")
    (mnt / "d").mkdir()
    (mnt / "d" / "x").write_text("x")
    os.setxattr(mnt / "a", "user.note", b"first")
    mount.commit("c1")
    c1 = commit_id(mount)
    (mnt / "a").write_text("two")
    os.setxattr(mnt / "a", "user.note", b"second")
    (mnt / "d" / "x").unlink()
    mount.commit("c2")
    c2 = commit_id(mount)
    assert {c1, c2} <= set(history(mnt))
    old = mnt / ".pog" / "history" / str(c1)
    assert (old / "a").read_text() == "one"
    assert os.getxattr(old / "a", "user.note") == b"first"
    assert (old / "d" / "x").read_text() == "x"
    assert (mnt / ".pog" / "history" / str(c2) / "a").read_text() == "two"
    assert not (mnt / "d" / "x").exists()
    # hashes and types of that commit
    assert os.getxattr(old / "a", "user.pog.type") == b"string"
    assert (os.getxattr(old / "a", "user.pog.hash") !=
            os.getxattr(mnt / "a", "user.pog.hash"))
    # read-only
    for act in (lambda: (old / "a").write_text("no"),
                lambda: (old / "new").write_text("no"),
                lambda: (old / "d").rmdir(),
                lambda: os.setxattr(old / "a", "user.x", b"1")):
        with pytest.raises(OSError) as e:
            act()
        assert e.value.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
    # inode numbers distinct from the live view's, stable while retained
    ino = os.stat(old / "a").st_ino
    assert ino != os.stat(mnt / "a").st_ino
    assert ino != os.stat(mnt / ".pog" / "committed" / "a").st_ino
    (mnt / "b").write_text("b")
    mount.commit()
    assert os.stat(old / "a").st_ino == ino
    # a consistent source for rsync while editing goes on
    (mnt / "a").write_text("three")
    out = mount.path.parent / "copy"
    subprocess.run(["cp", "-a", str(old), str(out)], check=True)
    assert (out / "a").read_text() == "one"
    assert (out / "d" / "x").read_text() == "x"


def test_snapshots(mount):
    mnt = mount.path
    (mnt / "f").write_text("v1")
    mount.commit()
    answer = mount.ctl("snapshot before-edit\n")
    assert answer.startswith("snapshot before-edit ")
    snap_id = int(answer.split()[2])
    assert snap_id == commit_id(mount)
    assert ctl_fails(mount, "snapshot before-edit\n") == errno.EEXIST
    assert ctl_fails(mount, "snapshot a/b\n") == errno.EINVAL
    assert os.listdir(mnt / ".pog" / "snapshots") == ["before-edit"]
    for i in range(20):  # beyond keep: the snapshot stays
        (mnt / "f").write_text(f"v{i + 2}")
        mount.commit()
    assert (mnt / ".pog" / "snapshots" / "before-edit" / "f").read_text() == "v1"
    assert snap_id in history(mnt)
    assert len(history(mnt)) == 16 + 1
    mount.remount()
    assert (mnt / ".pog" / "snapshots" / "before-edit" / "f").read_text() == "v1"
    assert ctl_fails(mount, "unsnapshot nothing\n") == errno.ENOENT
    mount.ctl("unsnapshot before-edit\n")
    assert os.listdir(mnt / ".pog" / "snapshots") == []
    mount.ctl("gc\n")
    assert snap_id not in history(mnt)
    assert len(history(mnt)) == 16


def test_retention_bound_across_remount(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start("-o", "keep=4")
    try:
        for i in range(10):
            (m.path / "f").write_text(str(i))
            m.commit()
        last = commit_id(m)
        assert history(m.path) == list(range(last - 3, last + 1))
        m.stop()
        m.start()
        # unmounting ran GC (a commit of its own when it collects)
        hist = history(m.path)
        assert len(hist) == 4 and hist[-1] == commit_id(m)
        first = m.path / ".pog" / "history" / str(hist[0]) / "f"
        assert first.read_text() in {str(i) for i in range(10)}
        log = (m.path / ".pog" / "log").read_text().splitlines()
        kept = [int(l.split()[0]) for l in log if l.split()[5] == "retained"]
        assert kept == hist
        gone = [l for l in log if l.split()[5] == "gone"]
        assert gone and all(l.split()[4] == "-" for l in gone)
    finally:
        m.stop()
    # offline: pog keep
    out = subprocess.run([POG, "keep", str(pool)], capture_output=True,
                         text=True, check=True).stdout
    assert "keep: 4" in out
    subprocess.run([POG, "keep", str(pool), "2"], check=True)
    assert "keep: 2" in subprocess.run([POG, "keep", str(pool)],
                                       capture_output=True, text=True).stdout


def test_diff_of_known_edits(mount):
    mnt = mount.path
    (mnt / "keep").write_text("k")
    (mnt / "gone").write_text("g")
    (mnt / "old-name").write_text("r")
    (mnt / "num").write_text("42\n")
    (mnt / "lst").mkdir()
    for i, v in enumerate("abc"):
        (mnt / "lst" / str(i)).write_text(v)
    os.setxattr(mnt / "lst", "user.pog.type", b"list")
    (mnt / "x").write_text("x")
    mount.commit("base")
    base = commit_id(mount)
    (mnt / "new").write_text("n")
    (mnt / "gone").unlink()
    os.rename(mnt / "old-name", mnt / "new-name")
    os.setxattr(mnt / "num", "user.pog.type", b"int")
    (mnt / "lst" / "3").write_text("d")
    os.setxattr(mnt / "x", "user.tag", b"t")
    os.link(mnt / "keep", mnt / "keep-link")
    # a list's order is its content: M for the list, A for a new element;
    # a map whose names changed is M (the root is "."), as in .pog/changes
    expected = ["M .", "A keep-link", "A new", "A new-name", "D gone",
                "M lst", "A lst/3", "M num", "D old-name", "M x"]
    expected.sort(key=lambda l: (l[2:], l[0]))
    assert diff(mount, base, "staged") == expected
    mount.commit("edits")
    edits = commit_id(mount)
    assert diff(mount, base, edits) == expected
    # reverse direction: A and D swap
    swapped = {"A": "D", "D": "A", "M": "M"}
    assert diff(mount, edits, base) == [swapped[l[0]] + l[1:] for l in expected]
    assert diff(mount, edits, edits) == []
    # pog diff: the same lines, a path filter, JSON
    out = subprocess.run([POG, "diff", str(mnt), str(base), str(edits)],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == expected
    out = subprocess.run([POG, "diff", str(mnt), str(base), str(edits), "lst",
                          "--json"], capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == [{"change": "M", "path": "lst"},
                               {"change": "A", "path": "lst/3"}]
    assert ctl_fails(mount, "diff 999999 staged\n") == errno.ENOENT
    assert ctl_fails(mount, "diff onlyone\n") == errno.EINVAL


def test_diff_offline_and_export_commit(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        (m.path / "d").mkdir()
        (m.path / "d" / "f").write_text("old")
        m.commit()
        m.ctl("snapshot v1\n")
        (m.path / "d" / "f").write_text("new")
        (m.path / "e").write_text("e")
        m.commit()
        mnt_doc = subprocess.run([POG, "export", str(m.path / "d"), "--commit",
                                  "v1"], capture_output=True, text=True,
                                 check=True).stdout
        assert json.loads(mnt_doc) == {"f": "old"}
    finally:
        m.stop()
    doc = subprocess.run([POG, "export", str(pool), "--commit", "v1"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(doc) == {"d": {"f": "old"}}
    out = subprocess.run([POG, "diff", str(pool), "v1", "staged"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["M .", "M d/f", "A e"]
    r = subprocess.run([POG, "export", str(pool), "--commit", "nosuch"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "nosuch" in r.stderr


def test_gc_after_unsnapshot_returns_space(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start("-o", "keep=1")
    try:
        m.ctl("gc\n")
        before = m.status()["blocks_used"]
        data = os.urandom(8 << 20)
        (m.path / "big").write_bytes(data)
        m.commit()
        m.ctl("snapshot big\n")
        (m.path / "big").unlink()
        m.commit()
        m.ctl("gc\n")
        held = m.status()["blocks_used"]
        assert held >= before + (8 << 20) // 4096
        assert (m.path / ".pog" / "snapshots" / "big" / "big").read_bytes() == data
        m.ctl("unsnapshot big\n")
        m.ctl("gc\n")
        after = m.status()["blocks_used"]
        assert after <= before + before // 20 + 8
    finally:
        m.stop()


def test_kill9_while_snapshotting(pool, tmp_path):
    m = Mount(pool, tmp_path / "mnt").start()
    (m.path / "f").write_text("base")
    m.commit()
    proc = subprocess.Popen(
        ["sh", "-c", "i=0; while :; do i=$((i+1)); echo snapshot s$i > "
         f"{m.path}/.pog/ctl || break; echo x$i > {m.path}/f; "
         f"echo commit > {m.path}/.pog/ctl || break; done"],
        stderr=subprocess.DEVNULL)
    try:
        import time
        time.sleep(1.0)
        m.kill9()
    finally:
        proc.wait()
    r = subprocess.run([POG, "fsck", str(pool)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    m.start()
    try:
        snaps = os.listdir(m.path / ".pog" / "snapshots")
        assert snaps
        for s in snaps:  # every surviving name shows a whole tree
            assert (m.path / ".pog" / "snapshots" / s / "f").read_text()
    finally:
        m.stop()
    r = subprocess.run([POG, "fsck", str(pool)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def revert(mount, cid):
    return mount.ctl(f"revert {cid}\n")


def test_revert_each_kind(mount):
    mnt = mount.path
    (mnt / "f").write_text("old")
    (mnt / "gone").write_text("g")
    (mnt / "name").write_text("n")
    (mnt / "num").write_text("1\n")
    (mnt / "d").mkdir()
    (mnt / "d" / "inner").write_text("i")
    (mnt / "lst").mkdir()
    for i, v in enumerate("ab"):
        (mnt / "lst" / str(i)).write_text(v)
    os.setxattr(mnt / "lst", "user.pog.type", b"list")
    mount.commit("base")
    before = mount.ctl("export .\n")
    (mnt / "f").write_text("new")                        # content
    (mnt / "gone").unlink()                              # remove
    os.rename(mnt / "name", mnt / "renamed")             # rename
    os.setxattr(mnt / "num", "user.pog.type", b"int")    # type change
    (mnt / "lst" / "2").write_text("c")                  # list insert
    os.setxattr(mnt / "f", "user.tag", b"t")             # xattr
    os.link(mnt / "f", mnt / "hard")                     # hard link
    (mnt / "added").write_text("a")                      # add
    subprocess.run(["rm", "-r", str(mnt / "d")], check=True)  # a subtree
    mount.commit("edits")
    edits = commit_id(mount)
    mount.ctl("gc\n")  # the removed objects are collected: revert brings them back
    answer = revert(mount, edits)
    assert answer.startswith(f"revert {edits} ")
    assert (mnt / ".pog" / "changes").read_text()
    mount.commit("undo")
    assert mount.ctl("export .\n") == before
    assert (mnt / "d" / "inner").read_text() == "i"
    assert not (mnt / "hard").exists()
    assert "user.tag" not in os.listxattr(mnt / "f")
    r = subprocess.run([POG, "fsck", str(mount.pool)], capture_output=True,
                       text=True)
    # the pool is held by the daemon: fsck asks it
    assert r.returncode == 0, r.stdout + r.stderr


def test_revert_conflict(mount):
    mnt = mount.path
    (mnt / "a").write_text("1")
    (mnt / "b").write_text("1")
    (mnt / "m").mkdir()
    mount.commit("base")
    (mnt / "a").write_text("2")
    (mnt / "m" / "k1").write_text("x")
    mount.commit("c1")
    c1 = commit_id(mount)
    (mnt / "m" / "k2").write_text("y")   # another key of m: no conflict
    mount.commit("c2")
    # staged changes to the same things conflict
    (mnt / "m" / "k1").write_text("staged")
    with pytest.raises(OSError) as e:
        revert(mount, c1)
    assert e.value.errno == errno.ESTALE
    assert (mnt / ".pog" / "conflicts").read_text().splitlines() == ["C m/k1"]
    mount.abort()
    revert(mount, c1)
    assert (mnt / ".pog" / "conflicts").read_text() == ""
    mount.commit("undo c1")
    assert (mnt / "a").read_text() == "1"
    assert sorted(os.listdir(mnt / "m")) == ["k2"]
    # a later commit changed the same file: ESTALE, nothing staged
    (mnt / "b").write_text("2")
    mount.commit("c4")
    c4 = commit_id(mount)
    (mnt / "b").write_text("3")
    mount.commit("c5")
    with pytest.raises(OSError) as e:
        revert(mount, c4)
    assert e.value.errno == errno.ESTALE
    assert (mnt / ".pog" / "conflicts").read_text().splitlines() == ["C b"]
    assert "conflicts" in mount.status()["last_error"]
    assert mount.status()["staged"] == 0
    assert (mnt / "b").read_text() == "3"
    assert ctl_fails(mount, "revert 1\n") == errno.EINVAL
    assert ctl_fails(mount, "revert 99999\n") == errno.ENOENT
