"""setuid/setgid are cleared as on a local filesystem (the daemon does it:
FUSE_HANDLE_KILLPRIV_V2, fs/killpriv.c), and closing a file sends the
daemon nothing it does not need."""
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

USER = ["setpriv", "--reuid=1234", "--regid=1234", "--clear-groups"]


@pytest.fixture
def shared(pool):
    """A mount that uid 1234 can use (allow_other)."""
    from conftest import Mount
    top = tempfile.mkdtemp(prefix="pogfs-killpriv.")
    os.chmod(top, 0o755)
    m = Mount(pool, os.path.join(top, "mnt")).start("-o", "allow_other")
    try:
        os.chmod(m.path, 0o777)
        yield m.path
    finally:
        m.stop()
        shutil.rmtree(top, ignore_errors=True)


def as_user(script):
    subprocess.run(USER + ["/usr/bin/python3", "-c", script], check=True)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_by_other_user_clears_setuid_setgid(shared):
    f = shared / "f"
    f.write_text("hi\n")
    os.chmod(f, 0o6777)
    as_user(f"open('{f}', 'a').write('more\\n')")
    assert mode(f) == 0o777  # seen at once, not after the attribute timeout
    assert f.read_text() == "hi\nmore\n"


def test_setgid_without_group_execute(shared):
    f = shared / "f"
    f.write_text("x")
    os.chmod(f, 0o6767)  # the caller is not in the file's group: both go
    as_user(f"open('{f}', 'a').write('y')")
    assert mode(f) == 0o767
    os.chown(f, 0, 1234)
    os.chmod(f, 0o2767)  # a member of the group keeps setgid without g+x
    as_user(f"open('{f}', 'a').write('z')")
    assert mode(f) == 0o2767


def test_root_write_keeps_setuid(shared):
    f = shared / "f"
    f.write_text("x")
    os.chmod(f, 0o6777)
    with open(f, "a") as w:
        w.write("y")
    assert mode(f) == 0o6777


def test_truncate_and_o_trunc_by_other_user(shared):
    f = shared / "f"
    f.write_text("hello")
    os.chmod(f, 0o6777)
    as_user(f"import os; os.truncate('{f}', 1)")
    assert mode(f) == 0o777
    os.chmod(f, 0o6777)
    as_user(f"open('{f}', 'w').close()")
    assert mode(f) == 0o777
    assert f.read_bytes() == b""


def test_chown_clears_setuid_of_files_not_directories(shared):
    f = shared / "f"
    f.write_text("x")
    os.chmod(f, 0o6755)
    os.chown(f, 5, 5)
    assert mode(f) == 0o755
    d = shared / "d"
    d.mkdir()
    os.chmod(d, 0o6777)
    os.chown(d, 5, 5)
    assert mode(d) == 0o6777


def test_typed_scalar_write_clears_setuid(shared):
    n = shared / "n"
    n.write_text("5")
    os.setxattr(n, "user.pog.type", b"int")
    os.chmod(n, 0o4777)
    as_user(f"open('{n}', 'w').write('6')")
    assert mode(n) == 0o777
    assert n.read_text().strip() == "6"


def test_setuid_survives_commit_and_remount(mount):
    f = mount.path / "f"
    f.write_text("x")
    os.chmod(f, 0o4755)
    mount.commit()
    mount.remount()
    assert mode(mount.path / "f") == 0o4755


def test_close_after_write_and_ctl(mnt):
    """Store files need no FLUSH (noflush); .pog/ctl still works on close."""
    f = mnt / "f"
    with open(f, "w") as w:
        w.write("data")
    assert f.read_text() == "data"
    with open(mnt / ".pog" / "ctl", "w") as c:
        c.write("commit\n")
    assert (mnt / "f").read_text() == "data"
