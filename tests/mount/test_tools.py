"""Real shell tools on a realistic tree: cp -a, mv, sed -i, tar, find, du, rm -r, rsync."""
import os
import shutil
import subprocess

from conftest import Mount, mkfs, tree_snapshot


def make_tree(root):
    """A small but realistic tree: text, binary, empty files, modes,
    nested directories, symlinks (relative and dangling), a hard link."""
    root.mkdir(parents=True, exist_ok=True)
    src = "/usr/include/fuse3"
    shutil.copytree(src, root / "include", symlinks=True)
    (root / "docs" / "deep" / "er").mkdir(parents=True)
    (root / "docs" / "readme.txt").write_text("hello\nworld\n" * 100)
    (root / "docs" / "deep" / "er" / "data.bin").write_bytes(os.urandom(200_000))
    (root / "docs" / "empty").write_bytes(b"")
    (root / "docs" / "script.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "docs" / "script.sh", 0o755)
    os.chmod(root / "docs" / "deep", 0o750)
    os.symlink("readme.txt", root / "docs" / "link-to-readme")
    os.symlink("nowhere/at/all", root / "docs" / "dangling")
    os.link(root / "docs" / "readme.txt", root / "docs" / "hardlink.txt")
    os.utime(root / "docs" / "readme.txt", ns=(1_600_000_000_123_456_789,) * 2)
    # rsync retouches a directory's mtime only when the second differs:
    # give the directories times in the past, as a real tree has.
    for dirpath, _dirs, _files in os.walk(root, topdown=False):
        os.utime(dirpath, ns=(1_500_000_000_987_654_321,) * 2)


def run(*cmd, cwd=None):
    return subprocess.run(cmd, check=True, cwd=cwd, capture_output=True)


def test_cp_mv_sed_find_du_rm(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    run("cp", "-a", str(src), str(mnt / "tree"))
    run("diff", "-r", "--no-dereference", str(src), str(mnt / "tree"))
    assert tree_snapshot(src) == tree_snapshot(mnt / "tree")
    st = (mnt / "tree" / "docs" / "readme.txt").stat()
    assert st.st_mtime_ns == 1_600_000_000_123_456_789
    assert st.st_nlink == 2
    # mv within the mount
    run("mv", str(mnt / "tree" / "docs"), str(mnt / "docs-moved"))
    assert (mnt / "docs-moved" / "readme.txt").exists()
    # sed -i writes a temporary file and renames it over the original
    run("sed", "-i", "s/world/pogfs/", str(mnt / "docs-moved" / "readme.txt"))
    assert (mnt / "docs-moved" / "readme.txt").read_text() == "hello\npogfs\n" * 100
    # find and du see everything
    found = run("find", str(mnt / "tree")).stdout.decode().splitlines()
    expect = run("find", str(src), "-path", str(src / "docs"), "-prune", "-o",
                 "-print").stdout.decode().splitlines()
    assert len(found) == len(expect)
    du = int(run("du", "-s", "-B1", "--apparent-size", str(mnt / "tree")).stdout.split()[0])
    assert du > 100_000
    run("rm", "-r", str(mnt / "tree"), str(mnt / "docs-moved"))
    assert sorted(os.listdir(mnt)) == []


def test_tar_round_trip(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    tarball = tmp_path / "t.tar"
    run("tar", "-C", str(src), "-cf", str(tarball), ".")
    (mnt / "x").mkdir()
    run("tar", "-C", str(mnt / "x"), "-xpf", str(tarball))
    assert tree_snapshot(src) == tree_snapshot(mnt / "x")
    tarball2 = tmp_path / "t2.tar"
    run("tar", "-C", str(mnt / "x"), "-cf", str(tarball2), ".")
    out = tmp_path / "out"
    out.mkdir()
    run("tar", "-C", str(out), "-xpf", str(tarball2))
    assert tree_snapshot(src) == tree_snapshot(out)


def full_snapshot(root):
    """Content, modes, mtimes, symlink targets and hard-link groups."""
    snap = tree_snapshot(root)
    meta = {}
    inodes = {}
    for rel in snap:
        st = os.lstat(os.path.join(root, rel))
        if not os.path.isdir(os.path.join(root, rel)) or os.path.islink(os.path.join(root, rel)):
            meta[rel] = (st.st_mode, st.st_mtime_ns if not os.path.islink(os.path.join(root, rel)) else 0)
        else:
            meta[rel] = (st.st_mode, st.st_mtime_ns)
        if st.st_nlink > 1 and not os.path.isdir(os.path.join(root, rel)):
            inodes.setdefault(st.st_ino, []).append(rel)
    links = sorted(sorted(v) for v in inodes.values())
    return snap, meta, links


def assert_same_tree(a, b):
    """Compare two full_snapshot results, naming what differs."""
    for part, what in zip(range(3), ("content", "metadata", "hard links")):
        if part == 2:
            assert a[2] == b[2], what
            continue
        diff = {k: (a[part].get(k), b[part].get(k))
                for k in set(a[part]) | set(b[part])
                if a[part].get(k) != b[part].get(k)}
        assert not diff, f"{what} differs: {sorted(diff.items())[:5]}"


def test_rsync_round_trip(pool, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.setxattr(src / "docs" / "readme.txt", "user.note", b"kept")
    m = Mount(pool, tmp_path / "mnt").start()
    try:
        run("rsync", "-aHAX", str(src) + "/", str(m.path) + "/")
        m.commit("from rsync")
        assert_same_tree(full_snapshot(src), full_snapshot(m.path))
        # mount -> plain directory
        backup = tmp_path / "backup"
        run("rsync", "-aHAX", str(m.path) + "/", str(backup) + "/")
        assert not (backup / ".pog").exists()
    finally:
        m.stop()
    assert_same_tree(full_snapshot(src), full_snapshot(backup))
    assert os.getxattr(backup / "docs" / "readme.txt", "user.note") == b"kept"
    # restore into a fresh store, commit, remount, compare
    pool2 = tmp_path / "second.pool"
    mkfs(pool2)
    m2 = Mount(pool2, tmp_path / "mnt2").start()
    try:
        run("rsync", "-aHAX", str(backup) + "/", str(m2.path) + "/")
        m2.commit("restore")
        m2.remount()
        assert_same_tree(full_snapshot(backup), full_snapshot(m2.path))
        assert os.getxattr(m2.path / "docs" / "readme.txt", "user.note") == b"kept"
        # the committed view is a consistent source too
        backup2 = tmp_path / "backup2"
        run("rsync", "-aHAX", str(m2.path / ".pog" / "committed") + "/", str(backup2) + "/")
        assert tree_snapshot(backup2) == tree_snapshot(backup)
    finally:
        m2.stop()
        pool2.unlink()


def test_vim_edit(mnt):
    if not shutil.which("vim"):
        import pytest
        pytest.skip("vim is not installed")
    f = mnt / "notes.txt"
    f.write_text("line one\nline two\n")
    ino = f.stat().st_ino
    os.link(f, mnt / "notes-link.txt")
    subprocess.run(["vim", "-N", "-u", "NONE", "-i", "NONE", "-n", "-es",
                    "-c", "%s/two/2/", "-c", "wq", str(f)], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert f.read_text() == "line one\nline 2\n"
    # vim writes in place when the file has other links
    assert f.stat().st_ino == ino
    assert (mnt / "notes-link.txt").read_text() == "line one\nline 2\n"
    # with a swap file and a backup (create, write, fsync, rename, unlink)
    g = mnt / "other.txt"
    g.write_text("alpha\n")
    subprocess.run(["vim", "-N", "-u", "NONE", "-i", "NONE", "-es",
                    "-c", "set backup writebackup backupcopy=no",
                    "-c", "%s/alpha/beta/", "-c", "wq", str(g)], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert g.read_text() == "beta\n"
    leftovers = [n for n in os.listdir(mnt) if n.endswith((".swp", "~"))]
    assert sorted(leftovers) in ([], ["other.txt~"])
