"""Sessions through one mount: .pog/sessions, .pog/conflicts and the
status of this session (several mounts of one pool: not yet, see README)."""
import os


def test_sessions_file_lists_this_mount(mount):
    mnt = mount.path
    st = mount.status()
    assert st["sessions"] == 1
    assert st["base_commit"] == st["commit_id"]
    lines = (mnt / ".pog" / "sessions").read_text().splitlines()
    assert lines == [f"{os.path.realpath(mnt)}\t{st['commit_id']}\t0"]
    (mnt / "a").write_text("x")
    fields = (mnt / ".pog" / "sessions").read_text().split("\t")
    assert fields[2].strip() == str(mount.status()["staged"])
    assert int(fields[2]) > 0
    mount.commit()
    st = mount.status()
    assert st["base_commit"] == st["commit_id"]
    line = (mnt / ".pog" / "sessions").read_text()
    assert line == f"{os.path.realpath(mnt)}\t{st['commit_id']}\t0\n"
    # the size stat reports is what a read returns (as for every .pog file)
    assert os.stat(mnt / ".pog" / "sessions").st_size == len(line)


def test_conflicts_empty_without_a_conflict(mount):
    mnt = mount.path
    assert (mnt / ".pog" / "conflicts").read_text() == ""
    (mnt / "f").write_text("1")
    mount.commit()
    assert (mnt / ".pog" / "conflicts").read_text() == ""


def test_gc_keeps_staged_and_the_next_commit_lands(mount):
    """gc runs in a session of its own: what is staged stays staged, and
    the commit after it (onto gc's commits) keeps everything."""
    mnt = mount.path
    (mnt / "gone").write_text("g" * 100000)
    mount.commit()
    os.unlink(mnt / "gone")
    mount.commit()
    (mnt / "new").write_text("staged")
    (mnt / "d").mkdir()
    (mnt / "d" / "x").write_text("x")
    mount.ctl("gc")
    assert mount.status()["staged"] > 0
    assert (mnt / "new").read_text() == "staged"
    mount.commit()
    st = mount.status()
    assert st["base_commit"] == st["commit_id"]
    assert (mnt / "new").read_text() == "staged"
    assert (mnt / "d" / "x").read_text() == "x"
    assert (mnt / ".pog" / "committed" / "d" / "x").read_text() == "x"
    mount.abort()
    assert sorted(os.listdir(mnt)) == ["d", "new"]
