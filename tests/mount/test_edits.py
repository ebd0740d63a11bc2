"""Real tools keep the object graph: editors, sed -i, tar, cp -a and rsync.

Each test drives the real program on a real mount: types survive saving by
rename, refs follow the edit, empty typed scalars are never committed,
links made before their targets become refs at commit, and pog stat shows
what getfattr cannot of a symlink.
"""
import errno
import json
import os
import pty
import select
import shutil
import subprocess
import time

import pytest

from conftest import POG, Mount, mkfs


def run(*args, cwd=None, check=True):
    return subprocess.run(list(args), cwd=cwd, check=check,
                          capture_output=True, text=True)


def pog_type(path):
    return os.getxattr(path, "user.pog.type").decode()


def changes(mount):
    return (mount.path / ".pog" / "changes").read_text().splitlines()


def export(target):
    return run(POG, "export", str(target)).stdout


def stat_json(path):
    return json.loads(run(POG, "stat", str(path), "--json").stdout)


def need(program):
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (tools/deps.sh)")


# ---- the editors -------------------------------------------------------------


def drain(fd, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return


def nano_replace(path, text):
    """nano on a terminal: cut the line, type text, save (^S), quit (^X)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["TERM"] = "xterm"
        os.chdir(os.path.dirname(path))
        os.execvp("nano", ["nano", "--ignorercfiles", os.path.basename(path)])
    try:
        drain(fd, 0.6)
        for keys in (b"\x0b", text.encode(), b"\x13", b"\x18"):
            os.write(fd, keys)
            drain(fd, 0.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            drain(fd, 0.1)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("nano did not exit")
    finally:
        os.close(fd)


# vim as it is run: default settings save by renaming the file away and
# writing a new one (outside /tmp: 'backupskip' keeps /tmp/* out of that,
# and these mounts live under /tmp, so it is emptied), backupcopy=no does
# the same always, and under /tmp the defaults write in place.
VIM = {
    "vim-default": ["-u", "DEFAULTS", "-c", "set backupskip="],
    "vim-backupcopy-no": ["-u", "NONE", "-N", "-c", "set backupskip=",
                          "-c", "set backupcopy=no"],
    "vim-in-place": ["-u", "DEFAULTS"],
}
EDITORS = list(VIM) + ["nano", "sed"]


def edit(editor, path, old, new):
    """Replace old by new in the file path with a real editor."""
    path = str(path)
    if editor in VIM:
        need("vim")
        run("vim", "-i", "NONE", "-es", *VIM[editor],
            "-c", f"%s/{old}/{new}/", "-c", "wq", os.path.basename(path),
            cwd=os.path.dirname(path))
    elif editor == "nano":
        need("nano")
        with open(path) as f:
            text = f.read().replace(old, new).rstrip("\n")
        assert nano_replace(path, text) == 0
    else:
        run("sed", "-i", f"s/{old}/{new}/", os.path.basename(path),
            cwd=os.path.dirname(path))


VALUES = {  # type: (text, old, new, text after)
    "int": ("1815\n", "1815", "1816", "1816\n"),
    "float": ("2.5\n", "2.5", "3.25", "3.25\n"),
    "string": ("hello\n", "hello", "hullo", "hullo\n"),
}


def make_scalar(path, type_, text):
    path.write_text(text)
    if type_ != "string":
        os.setxattr(path, "user.pog.type", type_.encode())
    os.setxattr(path, "user.note", b"kept")


def check_edited(mount, place, ref, type_, after):
    assert place.read_text() == after
    assert pog_type(place) == type_
    assert os.getxattr(place, "user.note") == b"kept"
    # the ref follows the edit (reads through its current path)
    assert ref.read_text() == after
    assert stat_json(ref)["target"]["ino"] == os.stat(place).st_ino
    rel = str(place.relative_to(mount.path))
    lines = changes(mount)
    assert f"M {rel}" in lines
    assert f"A {rel}" not in lines and f"D {rel}" not in lines
    assert not [l for l in lines if l.endswith(("~", ".swp"))]
    want = after if type_ == "string" else json.loads(after)
    assert json.loads(export(place)) == want


def edit_all(mount, editor, places):
    """Make a scalar of each type at places[type], a ref to each, commit,
    edit each with the editor, check, commit."""
    mnt = mount.path
    for type_, place in places.items():
        make_scalar(place, type_, VALUES[type_][0])
        os.symlink(os.path.relpath(place, mnt), mnt / f"ref-{type_}")
    mount.commit()
    for type_, place in places.items():
        _, old, new, after = VALUES[type_]
        edit(editor, place, old, new)
        check_edited(mount, place, mnt / f"ref-{type_}", type_, after)
    mount.commit()


@pytest.mark.parametrize("editor", EDITORS)
def test_editor_keeps_types_and_refs_in_a_map(mount, editor):
    mnt = mount.path
    (mnt / "ada").mkdir()
    places = {t: mnt / "ada" / t for t in VALUES}
    edit_all(mount, editor, places)
    mount.remount()
    for type_, place in places.items():
        after = VALUES[type_][3]
        assert place.read_text() == after and pog_type(place) == type_
        assert (mnt / f"ref-{type_}").read_text() == after


# Inside a list too: sed -i makes sedXXXXXX there and vim with
# backupcopy=no renames 1 to 1~ (temporary entries of the list); nano and
# vim's default 'backupcopy' write in place.
@pytest.mark.parametrize("editor", EDITORS)
def test_editor_keeps_types_and_refs_in_a_list(mount, editor):
    mnt = mount.path
    (mnt / "todo").mkdir()
    os.setxattr(mnt / "todo", "user.pog.type", b"list")
    (mnt / "todo" / "0").write_text("first\n")
    places = {t: mnt / "todo" / str(i + 1) for i, t in enumerate(VALUES)}
    edit_all(mount, editor, places)
    assert sorted(os.listdir(mnt / "todo")) == ["0", "1", "2", "3"]


def test_sed_on_a_new_int_in_the_same_transaction(mnt, mount):
    make_scalar(mnt / "count", "int", "17\n")
    os.symlink("count", mnt / "r")
    edit("sed", mnt / "count", "17", "18")
    assert (mnt / "count").read_text() == "18\n"
    assert pog_type(mnt / "count") == "int"
    assert (mnt / "r").read_text() == "18\n"
    assert "A count" in changes(mount)
    mount.commit()


def test_text_that_does_not_parse_is_a_new_string(mnt, mount):
    """No type to take: plain POSIX, the ref keeps the old object."""
    make_scalar(mnt / "born", "int", "1815\n")
    os.symlink("born", mnt / "r")
    mount.commit()
    edit("sed", mnt / "born", "1815", "abc")
    assert pog_type(mnt / "born") == "string"
    assert (mnt / "born").read_text() == "abc\n"
    assert (mnt / "r").read_text() == "1815\n"
    assert os.readlink(mnt / "r").startswith(".pog/objects/")
    assert {"A born", "D born"} <= set(changes(mount))


def test_a_file_typed_on_purpose_keeps_its_type(mnt, mount):
    make_scalar(mnt / "born", "int", "1815\n")
    mount.commit()
    (mnt / "new").write_text("1816\n")
    os.setxattr(mnt / "new", "user.pog.type", b"string")
    os.rename(mnt / "new", mnt / "born")
    assert pog_type(mnt / "born") == "string"


def test_open_descriptor_reads_the_old_object(mnt, mount):
    make_scalar(mnt / "born", "int", "1815\n")
    mount.commit()
    fd = os.open(mnt / "born", os.O_RDONLY)
    try:
        edit("sed", mnt / "born", "1815", "1816")
        assert os.pread(fd, 100, 0) == b"1815\n"
    finally:
        os.close(fd)
    assert (mnt / "born").read_text() == "1816\n"
    assert pog_type(mnt / "born") == "int"


def test_hard_link_keeps_the_old_object(mnt, mount):
    make_scalar(mnt / "born", "int", "1815\n")
    os.link(mnt / "born", mnt / "also")
    os.symlink("also", mnt / "r")
    mount.commit()
    old_ino = os.stat(mnt / "also").st_ino
    edit("sed", mnt / "born", "1815", "1816")
    # sed -i breaks the link, as on any filesystem: no identity moves
    assert (mnt / "also").read_text() == "1815\n"
    assert pog_type(mnt / "also") == "int"
    assert os.stat(mnt / "also").st_ino == old_ino
    assert (mnt / "born").read_text() == "1816\n"
    assert pog_type(mnt / "born") == "string"
    assert stat_json(mnt / "r")["target"]["ino"] == old_ino


def test_xattrs_of_the_new_file_win(mnt, mount):
    make_scalar(mnt / "born", "int", "1815\n")
    mount.commit()
    (mnt / "tmp").write_text("1816\n")
    os.setxattr(mnt / "tmp", "user.mine", b"new")
    os.rename(mnt / "tmp", mnt / "born")
    assert pog_type(mnt / "born") == "int"
    assert os.getxattr(mnt / "born", "user.mine") == b"new"
    with pytest.raises(OSError) as e:
        os.getxattr(mnt / "born", "user.note")
    assert e.value.errno == errno.ENODATA


# ---- empty typed scalars ------------------------------------------------------


def test_type_on_an_empty_file(mnt, mount):
    for type_ in ("int", "float", "bool", "null"):
        (mnt / type_).touch()
        os.setxattr(mnt / type_, "user.pog.type", type_.encode())
        assert pog_type(mnt / type_) == type_
        assert (mnt / type_).read_bytes() == b""
    with pytest.raises(OSError) as e:
        mount.commit()
    assert e.value.errno == errno.EINVAL
    assert "an empty" in mount.status()["last_error"]
    for type_, text in (("int", "42\n"), ("float", "0.5\n"), ("bool", "true\n"),
                        ("null", "null\n")):
        (mnt / type_).write_text(text)
    mount.commit()
    assert json.loads(export(mnt)) == {"int": 42, "float": 0.5, "bool": True,
                                       "null": None}


def test_truncate_makes_an_int_empty(mnt, mount):
    make_scalar(mnt / "n", "int", "5\n")
    mount.commit()
    run("truncate", "-s", "0", str(mnt / "n"))
    assert (mnt / "n").read_bytes() == b""
    assert pog_type(mnt / "n") == "int"
    # export and cat never disagree: no value, no document
    r = run(POG, "export", str(mnt), check=False)
    assert r.returncode != 0 and "n: an empty int has no value" in r.stderr
    with pytest.raises(OSError) as e:
        mount.commit()
    assert e.value.errno == errno.EINVAL
    assert mount.status()["last_error"].startswith("commit: n: an empty int")
    # nothing was applied
    assert json.loads(export(mnt / ".pog" / "committed")) == {"n": 5}
    (mnt / "n").write_text("6\n")
    mount.commit()
    mount.remount()
    assert (mnt / "n").read_text() == "6\n"
    assert json.loads(export(mnt)) == {"n": 6}
    mount.stop()
    assert run(POG, "fsck", str(mount.pool)).returncode == 0
    assert json.loads(export(mount.pool)) == {"n": 6}
    mount.start()


def test_a_failed_write_keeps_the_old_value(mnt, mount):
    make_scalar(mnt / "n", "int", "5\n")
    r = subprocess.run(["sh", "-c", f"echo abc > {mnt / 'n'}"],
                       capture_output=True)
    assert r.returncode != 0
    assert (mnt / "n").read_text() == "5\n"


def test_an_empty_int_nothing_reaches_commits(mnt, mount):
    (mnt / "n").touch()
    os.setxattr(mnt / "n", "user.pog.type", b"int")
    os.unlink(mnt / "n")
    mount.commit()


# ---- links made before their targets -------------------------------------------


def test_link_before_target_becomes_a_ref(mnt, mount):
    os.symlink("z/target", mnt / "a")
    os.symlink(f"{mnt}/z/other", mnt / "b")
    os.symlink("../outside", mnt / "c")
    assert stat_json(mnt / "a")["type"] == "symlink"
    (mnt / "z").mkdir()
    (mnt / "z" / "target").write_text("t\n")
    (mnt / "z" / "other").write_text("o\n")
    mount.commit()
    a, b = stat_json(mnt / "a"), stat_json(mnt / "b")
    assert a["type"] == "ref" and a["target"]["path"] == "z/target"
    assert b["type"] == "ref" and b["target"]["path"] == "z/other"
    assert stat_json(mnt / "c")["type"] == "symlink"
    os.rename(mnt / "z", mnt / "y")
    assert os.readlink(mnt / "a") == "y/target"


def test_a_link_from_an_earlier_commit_stays_text(mnt, mount):
    os.symlink("later", mnt / "a")
    mount.commit()
    (mnt / "later").write_text("x\n")
    mount.commit()
    assert stat_json(mnt / "a")["type"] == "symlink"


# ---- pog stat -------------------------------------------------------------------


def test_pog_stat(mnt, mount):
    (mnt / "d").mkdir()
    make_scalar(mnt / "d" / "n", "int", "42\n")
    os.symlink("d/n", mnt / "r")
    os.symlink("/nowhere", mnt / "s")
    ino = os.stat(mnt / "d" / "n").st_ino
    r = stat_json(mnt / "r")
    assert r["type"] == "ref" and r["ino"] == os.lstat(mnt / "r").st_ino
    assert r["target"] == {"ino": ino, "path": "d/n"}
    assert r["hash"] == f"{r['hash']:0>8}" and len(r["hash"]) == 8
    s = stat_json(mnt / "s")
    assert s["type"] == "symlink" and s["link"] == "/nowhere"
    n = stat_json(mnt / "d" / "n")
    assert n["type"] == "int" and n["ino"] == ino
    assert n["hash"] == os.getxattr(mnt / "d" / "n", "user.pog.hash").decode()
    assert stat_json(mnt)["type"] == "map"
    human = run(POG, "stat", str(mnt / "r"), cwd=str(mnt / "d")).stdout
    assert "type    ref" in human and f"target  {ino} d/n" in human
    os.unlink(mnt / "d" / "n")
    assert stat_json(mnt / "r")["target"] == {"ino": ino, "path": None}
    mount.commit()
    c = stat_json(mnt / ".pog" / "committed" / "r")
    assert c["view"] == "committed" and c["target"]["ino"] == ino
    bad = run(POG, "stat", str(mnt / "missing"), check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("pog: stat: ")


# ---- backups --------------------------------------------------------------------


def build_store(mnt):
    """Typed scalars, refs whose targets sort after them, hard links,
    xattrs and a plain symlink, made in one transaction."""
    (mnt / "z").mkdir()
    (mnt / "z" / "target").write_text("t\n")
    os.setxattr(mnt / "z" / "target", "user.color", b"red")
    os.link(mnt / "z" / "target", mnt / "z" / "hard")
    os.symlink("z/target", mnt / "a")
    os.symlink("../b/deep/n", mnt / "z" / "up")
    (mnt / "b").mkdir()
    (mnt / "b" / "deep").mkdir()
    for name, type_, text in (("n", "int", "7\n"), ("f", "float", "0.25\n"),
                              ("t", "bool", "true\n"), ("z", "null", "null\n")):
        make_scalar(mnt / "b" / "deep" / name, type_, text)
    os.symlink("/etc/hostname", mnt / "outside")
    (mnt / "m").mkdir()
    os.setxattr(mnt / "m", "user.dir", b"yes")


@pytest.fixture
def second(tmp_path):
    pool = tmp_path / "second.pool"
    mkfs(pool)
    m = Mount(pool, tmp_path / "mnt2")
    m.start()
    try:
        yield m
    finally:
        m.stop()


def check_restored(mount, second):
    second.commit()
    original = export(mount.pool if mount.proc is None else mount.path)
    restored = export(second.path)
    doc = json.loads(original)
    root = doc["root"] if "$pogfs" in doc else doc  # a marked document
    assert root["a"] == {"$ref": 1}
    assert restored == original


def test_tar_xattrs_backup_and_restore(mount, second, tmp_path):
    need("tar")
    build_store(mount.path)
    mount.commit()
    archive = tmp_path / "backup.tar"
    run("tar", "--xattrs", "--xattrs-include=user.*", "-cf", str(archive),
        "-C", str(mount.path), ".")
    r = run("tar", "--xattrs", "--xattrs-include=user.*", "-xf", str(archive),
            "-C", str(second.path))
    assert r.returncode == 0 and r.stderr == ""
    check_restored(mount, second)


def test_cp_a_restore(mount, second, tmp_path):
    build_store(mount.path)
    mount.commit()
    backup = tmp_path / "backup"
    run("cp", "-a", f"{mount.path}/.", str(backup))
    assert os.getxattr(backup / "b" / "deep" / "n", "user.pog.type") == b"int"
    run("cp", "-a", f"{backup}/.", str(second.path))
    check_restored(mount, second)


def test_rsync_one_pass_restore(mount, second, tmp_path):
    need("rsync")
    build_store(mount.path)
    mount.commit()
    backup = tmp_path / "backup"
    run("rsync", "-aHAX", f"{mount.path}/", f"{backup}/")
    r = run("rsync", "-aHAX", f"{backup}/", f"{second.path}/", check=False)
    assert r.returncode == 0, r.stderr
    check_restored(mount, second)


def test_cp_preserve_xattr_of_a_typed_file(mnt, mount, tmp_path):
    make_scalar(mnt / "n", "int", "12\n")
    mount.commit()
    run("cp", "--preserve=xattr", str(mnt / "n"), str(mnt / "copy"))
    assert pog_type(mnt / "copy") == "int"
    assert (mnt / "copy").read_text() == "12\n"
