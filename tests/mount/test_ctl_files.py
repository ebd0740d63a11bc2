"""What .pog shows is exact: sizes, escaped changes, ctl answers, last_error, import at close."""
import errno
import json
import os
import subprocess

import pytest

from conftest import POG


def last_error(mount):
    return mount.status()["last_error"]


def changes_lines(mnt):
    return (mnt / ".pog" / "changes").read_bytes().decode().split("\n")


# ---- .pog/changes ----------------------------------------------------------

def test_changes_shows_root_as_dot(mnt):
    (mnt / "greeting").write_text("hello\n")
    lines = changes_lines(mnt)
    assert "M ." in lines
    assert "A greeting" in lines
    assert not any(line in ("M", "M ") for line in lines)


def test_changes_escape_newline_and_backslash(mount, mnt):
    (mnt / "greeting").write_text("hello\n")
    mount.commit()
    (mnt / "evil\nD greeting").write_text("x")
    (mnt / "back\\slash").write_text("y")
    os.mkdir(mnt / "dir\nname")
    (mnt / "dir\nname" / "in\\side").write_text("z")
    lines = changes_lines(mnt)
    assert lines[-1] == ""  # every line ends with a newline
    lines = lines[:-1]
    # no name forges a line of its own
    assert "D greeting" not in lines
    assert all(line[:2] in ("A ", "M ", "D ") for line in lines), lines
    assert "A evil\\nD greeting" in lines
    assert "A back\\\\slash" in lines
    assert "A dir\\nname" in lines
    # removing them is shown escaped as well
    mount.commit()
    os.unlink(mnt / "evil\nD greeting")
    os.unlink(mnt / "back\\slash")
    lines = changes_lines(mnt)
    assert "D evil\\nD greeting" in lines
    assert "D back\\\\slash" in lines
    assert "D greeting" not in lines


# ---- sizes ------------------------------------------------------------------

CONTENT_FILES = ["status", "changes", "log"]


@pytest.mark.parametrize("name", CONTENT_FILES)
def test_stat_reports_the_content_size(mount, mnt, name):
    (mnt / "a").write_text("one\n")
    mount.commit("a message")
    (mnt / "b").write_text("two\n")
    path = mnt / ".pog" / name
    data = path.read_bytes()
    assert len(data) > 0
    assert os.stat(path).st_size == len(data)


@pytest.mark.parametrize("name", CONTENT_FILES)
def test_rsync_copies_pog_files(mount, mnt, tmp_path, name):
    (mnt / "a").write_text("one\n")
    mount.commit("first")
    (mnt / "b").write_text("two\n")
    dest = tmp_path / ("copy-" + name)
    subprocess.run(["rsync", str(mnt / ".pog" / name), str(dest)], check=True)
    copied = dest.read_bytes()
    assert len(copied) > 0
    assert copied == (mnt / ".pog" / name).read_bytes()
    if name == "status":
        assert json.loads(copied)["staged"] >= 1


def test_reader_that_trusts_fstat_gets_everything(mount, mnt):
    """open, fstat, read st_size bytes: exact even when the content changes
    between the open and the fstat (the open file keeps its content)."""
    fd = os.open(mnt / ".pog" / "status", os.O_RDONLY)
    try:
        # make the status longer after the open: a long last_error
        with pytest.raises(OSError):
            mount.ctl("no-such-command-" + "x" * 60)
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0)
        assert len(data) == size
        assert os.pread(fd, 100, size) == b""
        json.loads(data)  # complete
    finally:
        os.close(fd)
    # a fresh open sees the new content, with its size
    path = mnt / ".pog" / "status"
    data = path.read_bytes()
    assert os.stat(path).st_size == len(data)
    assert "no-such-command" in json.loads(data)["last_error"]


def test_python_readfile_and_shell_tools(mount, mnt):
    mount.commit("one")
    mount.commit("two")
    log = (mnt / ".pog" / "log").read_text()
    assert len(log.splitlines()) >= 3  # create, one, two
    out = subprocess.run(["cat", str(mnt / ".pog" / "log")], capture_output=True,
                         check=True).stdout.decode()
    assert out == log
    out = subprocess.run(["cp", str(mnt / ".pog" / "log"), "/dev/stdout"],
                         capture_output=True, check=True).stdout.decode()
    assert out == log


# ---- ctl answers read from offset 0 -----------------------------------------

def make_people(mount, mnt):
    os.makedirs(mnt / "people" / "ada")
    (mnt / "people" / "ada" / "born").write_text("1815\n")
    expected = mount.ctl("export people")
    assert expected.startswith("{")
    return expected


def test_ctl_answer_shell_exec_rw(mount, mnt):
    expected = make_people(mount, mnt)
    script = ("exec 3<> .pog/ctl; printf 'export people' >&3; cat <&3")
    r = subprocess.run(["bash", "-c", script], cwd=mnt, capture_output=True,
                       check=True)
    assert r.stdout.decode() == expected


def test_ctl_answer_python_unbuffered_and_buffered(mount, mnt):
    expected = make_people(mount, mnt)
    with open(mnt / ".pog" / "ctl", "r+b", buffering=0) as f:
        f.write(b"export people")
        assert f.read() == expected.encode()
        # the next command's answer again from its start
        f.write(b"export people/ada")
        assert f.read() == b'{"born":"1815\\n"}\n'
    with open(mnt / ".pog" / "ctl", "r+") as f:
        f.write("export people")
        f.flush()
        assert f.read() == expected


def test_ctl_answer_pread_at_zero_still_works(mount, mnt):
    expected = make_people(mount, mnt)
    fd = os.open(mnt / ".pog" / "ctl", os.O_RDWR)
    try:
        os.write(fd, b"export people")
        assert os.pread(fd, 1 << 20, 0).decode() == expected
        assert os.pread(fd, 1 << 20, 0).decode() == expected
    finally:
        os.close(fd)


# ---- last_error ---------------------------------------------------------------

def test_typed_write_einval_reason_then_cleared(mount, mnt):
    os.makedirs(mnt / "ada")
    born = mnt / "ada" / "born"
    born.write_text("1815\n")
    os.setxattr(born, "user.pog.type", b"int")
    assert last_error(mount) == ""
    with pytest.raises(OSError) as e:
        born.write_text("not-a-number\n")
    assert e.value.errno == errno.EINVAL
    err = last_error(mount)
    assert "ada/born" in err and "int" in err
    # reading status is no success: the reason stays
    assert last_error(mount) == err
    # the next change that succeeds clears it
    born.write_text("1816\n")
    assert last_error(mount) == ""


def test_type_conversion_einval_reasons(mount, mnt):
    f = mnt / "word"
    f.write_text("abc\n")
    with pytest.raises(OSError) as e:
        os.setxattr(f, "user.pog.type", b"int")
    assert e.value.errno == errno.EINVAL
    err = last_error(mount)
    assert "word" in err and "int" in err and "parse" in err
    with pytest.raises(OSError) as e:
        os.setxattr(f, "user.pog.type", b"integer")
    assert e.value.errno == errno.EINVAL
    assert 'unknown type "integer"' in last_error(mount)
    (mnt / "other").write_text("fine")
    assert last_error(mount) == ""


def test_ctl_command_einval_reason_cleared_by_next_command(mount, mnt):
    with pytest.raises(OSError) as e:
        mount.ctl("frobnicate")
    assert e.value.errno == errno.EINVAL
    assert "frobnicate" in last_error(mount)
    mount.ctl("export .")
    assert last_error(mount) == ""


# ---- close() in the middle of an import --------------------------------------

def test_close_mid_import_fails_with_einval(mount, mnt):
    doc = b'{"a": 1, "b": [true, null]}'
    fd = os.open(mnt / ".pog" / "ctl", os.O_RDWR)
    os.write(fd, b"import %d half\n" % len(doc) + doc[:10])
    with pytest.raises(OSError) as e:
        os.close(fd)
    assert e.value.errno == errno.EINVAL
    err = last_error(mount)
    assert "import" in err and "10 of %d" % len(doc) in err
    assert not (mnt / "half").exists()
    assert mount.status()["staged"] == 0
    # a complete one works, and its close succeeds
    fd = os.open(mnt / ".pog" / "ctl", os.O_RDWR)
    os.write(fd, b"import %d whole\n" % len(doc) + doc[:10])
    os.write(fd, doc[10:])
    os.close(fd)
    assert (mnt / "whole" / "a").read_text() == "1\n"
    assert last_error(mount) == ""


def test_import_survives_a_child_closing_its_copy(mount, mnt):
    """Only the process that started an import fails it by closing."""
    doc = b'{"k": "v"}'
    fd = os.open(mnt / ".pog" / "ctl", os.O_RDWR)
    try:
        os.set_inheritable(fd, True)
        os.write(fd, b"import %d kept\n" % len(doc) + doc[:3])
        subprocess.run(["true"], close_fds=False, check=True)
        os.write(fd, doc[3:])
    finally:
        os.close(fd)
    assert (mnt / "kept" / "k").read_text() == "v"


def test_pog_tool_import_through_mount_still_works(mount, mnt, tmp_path):
    src = tmp_path / "doc.json"
    src.write_text('{"x": [1, 2, 3]}')
    subprocess.run([POG, "import", str(mnt / "copy"), str(src)], check=True)
    assert sorted(os.listdir(mnt / "copy" / "x")) == ["0", "1", "2"]
