"""Lists driven by real tools: names never shift inside a transaction,
any decimal name is a position, other names are temporary entries, and a
commit renumbers 0..n-1 (README "Lists")."""
import ctypes
import json
import os
import subprocess

import pytest

from conftest import POG, Mount, mkfs


def sh(script, cwd, check=True):
    r = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True,
                       text=True)
    if check:
        assert r.returncode == 0, (script, r.stdout, r.stderr)
    return r


def pog(*args, check=True):
    r = subprocess.run([POG, *map(str, args)], capture_output=True)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def names(path):
    """The directory's names in readdir order."""
    return os.listdir(path)


def contents(path):
    return [(path / n).read_text() for n in names(path)]


def make_list(mount, name, items):
    """A committed list of strings, made by import through the mount."""
    doc = mount.path.parent / (name.replace("/", "_") + ".json")
    doc.write_text(json.dumps(items))
    pog("import", mount.path / name, doc)
    mount.commit("list " + name)


def status(mount):
    return json.loads((mount.path / ".pog" / "status").read_text())


# ---- names in a transaction ----------------------------------------------------

def test_rm_glob_removes_the_entries_named(mount):
    """The shell sorts 0 1 10 11 ... 19 2 20 3 ...: with names that shift
    on removal, rm l/1* removed the wrong entries."""
    mnt = mount.path
    make_list(mount, "todo", [f"item {i}\n" for i in range(21)])
    sh("rm todo/1*", mnt)
    keep = [0] + list(range(2, 10)) + [20]
    assert names(mnt / "todo") == [str(i) for i in keep]
    assert contents(mnt / "todo") == [f"item {i}\n" for i in keep]
    mount.commit()
    assert names(mnt / "todo") == [str(i) for i in range(len(keep))]
    assert contents(mnt / "todo") == [f"item {i}\n" for i in keep]
    assert not (mnt / "todo" / "12").exists()  # the kernel forgot it
    sh("rm todo/*", mnt)
    assert names(mnt / "todo") == []
    mount.commit()
    assert names(mnt / "todo") == []


@pytest.mark.parametrize("command", ["rm big/*", "rm -r big",
                                     "find big -delete"])
def test_remove_a_20000_entry_list(mount, command):
    """Above 10,000 entries rm and find sort names by inode: every order
    of removal works."""
    mnt = mount.path
    make_list(mount, "big", [str(i) for i in range(20000)])
    assert len(names(mnt / "big")) == 20000
    sh(command, mnt)
    if command.startswith("rm big/*"):
        assert names(mnt / "big") == []
    else:
        assert not (mnt / "big").exists()
    mount.commit()
    r = pog("export", mnt).stdout
    assert json.loads(r) in ({}, {"big": []})


def test_mv_to_a_fraction_inserts(mount):
    mnt = mount.path
    make_list(mount, "todo", ["a", "b", "c", "d"])
    sh("echo -n x > x && mv x todo/2.5", mnt)
    assert names(mnt / "todo") == ["0", "1", "2", "2.5", "3"]
    sh("echo -n e > todo/100", mnt)  # the end, in order
    assert names(mnt / "todo") == ["0", "1", "2", "2.5", "3", "100"]
    mount.commit()
    assert names(mnt / "todo") == ["0", "1", "2", "3", "4", "5"]
    assert contents(mnt / "todo") == ["a", "b", "c", "x", "d", "e"]
    mount.remount()
    assert contents(mnt / "todo") == ["a", "b", "c", "x", "d", "e"]


def test_temporary_entry_refuses_the_commit(mount):
    mnt = mount.path
    make_list(mount, "l", ["a", "b"])
    sh("echo t > l/.0.tmp && rm l/0", mnt)
    assert names(mnt / "l") == ["1", ".0.tmp"]  # after the positions
    r = sh("echo commit > .pog/ctl", mnt, check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert "l/.0.tmp" in status(mount)["last_error"]
    # nothing was applied: the staged names are as they were
    assert names(mnt / "l") == ["1", ".0.tmp"]
    assert names(mnt / ".pog" / "committed" / "l") == ["0", "1"]
    sh("mv l/.0.tmp l/0", mnt)
    mount.commit()
    assert contents(mnt / "l") == ["t\n", "b"]


def test_sed_i_in_a_list(mount):
    mnt = mount.path
    make_list(mount, "l", ["count 17\n", "other\n"])
    sh("sed -i s/17/18/ l/0", mnt)
    assert contents(mnt / "l") == ["count 18\n", "other\n"]
    mount.commit()
    assert json.loads(pog("export", mnt).stdout)["l"] == ["count 18\n",
                                                          "other\n"]


def test_vim_swap_file_in_a_list(mount, tmp_path):
    mnt = mount.path
    make_list(mount, "l", ["alpha\n", "beta\n"])
    seen = tmp_path / "seen"
    # vim (default settings, no vimrc) keeps its swap file .1.swp beside
    # the file while it edits; the shell command runs meanwhile
    r = subprocess.run(["vim", "-u", "NONE", "-es", "-c", f"!ls -a l > {seen}",
                        "-c", "s/beta/gamma/", "-c", "wq", "l/1"], cwd=mnt,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ".1.swp" in seen.read_text().split()
    assert names(mnt / "l") == ["0", "1"]  # the swap file is gone
    assert contents(mnt / "l") == ["alpha\n", "gamma\n"]
    mount.commit()


def test_abort_restores_a_list(mount):
    mnt = mount.path
    make_list(mount, "l", ["a", "b", "c"])
    sh("rm l/0 && echo -n x > l/1.5 && echo -n t > l/tmp && mv l/2 l/7",
       mnt)
    assert names(mnt / "l") == ["1", "1.5", "7", "tmp"]
    mount.abort()
    assert names(mnt / "l") == ["0", "1", "2"]
    assert contents(mnt / "l") == ["a", "b", "c"]


def test_rename_across_lists_and_exchange(mount):
    mnt = mount.path
    make_list(mount, "a", ["a0", "a1", "a2", "a3"])
    make_list(mount, "b", ["b0", "b1", "b2"])
    sh("mv a/3 b/1.5 && mv b/0 a/9", mnt)
    assert names(mnt / "a") == ["0", "1", "2", "9"]
    assert names(mnt / "b") == ["1", "1.5", "2"]
    # RENAME_EXCHANGE swaps two entries; the names stay
    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD, RENAME_EXCHANGE = -100, 2
    rc = libc.renameat2(AT_FDCWD, str(mnt / "a" / "0").encode(), AT_FDCWD,
                        str(mnt / "b" / "2").encode(), RENAME_EXCHANGE)
    assert rc == 0, os.strerror(ctypes.get_errno())
    assert contents(mnt / "a") == ["b2", "a1", "a2", "b0"]
    assert contents(mnt / "b") == ["b1", "a3", "a0"]
    mount.commit()
    assert names(mnt / "a") == ["0", "1", "2", "3"]
    assert contents(mnt / "a") == ["b2", "a1", "a2", "b0"]
    assert names(mnt / "b") == ["0", "1", "2"]
    assert contents(mnt / "b") == ["b1", "a3", "a0"]


def test_hard_links_in_a_list(mount):
    mnt = mount.path
    make_list(mount, "l", ["a", "b"])
    sh("echo -n f > f && ln f l/0.5 && ln l/1 l/7", mnt)
    assert os.stat(mnt / "f").st_nlink == 2
    assert os.stat(mnt / "l" / "7").st_nlink == 2
    assert contents(mnt / "l") == ["a", "f", "b", "b"]
    mount.commit()
    assert contents(mnt / "l") == ["a", "f", "b", "b"]
    assert os.stat(mnt / "l" / "1").st_ino == os.stat(mnt / "f").st_ino
    assert os.stat(mnt / "l" / "2").st_ino == os.stat(mnt / "l" / "3").st_ino
    # export says which entries are one object, and import agrees
    doc = pog("export", mnt).stdout
    (mnt.parent / "links.json").write_bytes(doc)
    pog("import", mnt / "copy", mnt.parent / "links.json")
    assert os.stat(mnt / "copy" / "l" / "2").st_ino == \
        os.stat(mnt / "copy" / "l" / "3").st_ino
    assert os.stat(mnt / "copy" / "l" / "1").st_ino == \
        os.stat(mnt / "copy" / "f").st_ino
    assert contents(mnt / "copy" / "l") == ["a", "f", "b", "b"]


def test_staged_list_export_hash_and_changes(mount):
    mnt = mount.path
    make_list(mount, "l", ["a", "b", "c", "d", "e"])
    sh("rm l/3 && echo -n x > l/1.5", mnt)
    assert names(mnt / "l") == ["0", "1", "1.5", "2", "4"]
    # the staged list exports in order, as an array
    staged = json.loads(mount.ctl("export l\n"))
    assert staged == ["a", "b", "x", "c", "e"]
    # its hash is the renumbered list's
    h_staged = os.getxattr(mnt / "l", "user.pog.hash")
    changes = (mnt / ".pog" / "changes").read_text().splitlines()
    assert "M l" in changes and "D l/3" in changes and "A l/1.5" in changes
    mount.commit()
    assert os.getxattr(mnt / "l", "user.pog.hash") == h_staged
    assert json.loads(mount.ctl("export l\n")) == staged
    sh("mkdir m && echo -n a > m/0 && echo -n b > m/1 && echo -n x > m/2 "
       "&& echo -n c > m/3 && echo -n e > m/4 && "
       "setfattr -n user.pog.type -v list m", mnt)
    assert os.getxattr(mnt / "m", "user.pog.hash") == h_staged


# ---- restore with rsync in one pass ------------------------------------------

def test_rsync_one_pass_restore(pool, tmp_path):
    """rsync -aHAX restores a store with lists of more than 10 entries in
    one pass (rsync's order: 0 1 10 11 ... 2, each file written under
    .N.XXXXXX and renamed): pog export of the restored store is byte for
    byte the original's."""
    backup = tmp_path / "backup"
    m = Mount(pool, tmp_path / "m1").start()
    try:
        doc = {"todo": [f"task {i}\n" for i in range(25)],
               "people": [{"name": f"p{i}\n", "tags": ["a\n", "b\n"]}
                          for i in range(12)],
               "nested": [[f"{i}.{j}\n" for j in range(11)] for i in range(3)],
               "plain": {"k": "v\n"}}
        (tmp_path / "doc.json").write_text(json.dumps(doc))
        pog("import", m.path / "data", tmp_path / "doc.json")
        sh("setfattr -n user.note -v first data/todo/0 && "
           "setfattr -n user.note -v list data/todo && "
           "setfattr -n user.note -v eleven data/people/11", m.path)
        m.commit("original")
        sh(f"rsync -aHAX ./ {backup}/", m.path)
    finally:
        m.stop()
    want = pog("export", pool).stdout
    pool2 = tmp_path / "restored.pool"
    mkfs(pool2)
    m = Mount(pool2, tmp_path / "m2").start()
    try:
        sh(f"rsync -aHAX {backup}/ ./", m.path)
        m.commit("restored")
        assert os.getxattr(m.path / "data" / "people" / "11",
                           "user.note") == b"eleven"
        assert os.getxattr(m.path / "data" / "todo", "user.note") == b"list"
    finally:
        m.stop()
    got = pog("export", pool2).stdout
    assert got == want
