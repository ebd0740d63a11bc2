"""Lists whose positions are ranks (README "Lists inside"): the front of a
big list changes at the cost of its end, the kernel's cached names follow
a commit, and a big group of fractions lists once each."""
import json
import os
import subprocess

from conftest import POG


def make_list(mount, name, items):
    """A committed list of strings, imported through the mount."""
    doc = mount.path.parent / (name + ".json")
    doc.write_text(json.dumps(items))
    r = subprocess.run([POG, "import", str(mount.path / name), str(doc)],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    mount.commit("list " + name)


def test_front_removal_and_insertion_reach_the_kernel(mount):
    """Names the kernel looked up before a commit that shifted them are
    forgotten: after removing 0, `0` reads what `1` held, and the old last
    name is gone; inserting before the front shifts them back."""
    mnt = mount.path
    n = 3000
    make_list(mount, "l", [f"v{i}\n" for i in range(n)])
    lst = mnt / "l"
    # the kernel caches these names
    assert (lst / "0").read_text() == "v0\n"
    assert (lst / "1").read_text() == "v1\n"
    assert (lst / str(n - 1)).read_text() == f"v{n - 1}\n"
    os.unlink(lst / "0")
    assert not (lst / "0").exists()          # no shift inside the transaction
    assert (lst / "1").read_text() == "v1\n"
    mount.commit("front")
    assert (lst / "0").read_text() == "v1\n"
    assert (lst / "1").read_text() == "v2\n"
    assert not (lst / str(n - 1)).exists()
    assert (lst / str(n - 2)).read_text() == f"v{n - 1}\n"
    names = os.listdir(lst)
    assert names == [str(i) for i in range(n - 1)]

    # insert at 0: the first moves to 0.5, a new 0 comes before it
    os.rename(lst / "0", lst / "0.5")
    (lst / "0").write_text("new\n")
    assert os.listdir(lst)[:3] == ["0", "0.5", "1"]
    mount.commit("insert at 0")
    assert [(lst / str(i)).read_text() for i in range(3)] == \
        ["new\n", "v1\n", "v2\n"]
    assert (lst / str(n - 1)).read_text() == f"v{n - 1}\n"
    assert len(os.listdir(lst)) == n


def test_big_fraction_group_lists_once(mount):
    """More than 4,096 fractions between two positions: a listing that the
    kernel reads in many batches (cookies) shows each name once."""
    mnt = mount.path
    make_list(mount, "g", ["a\n", "b\n"])
    grp = mnt / "g"
    made = [f"0.{k:05d}1" for k in range(5000)]
    for name in made:
        (grp / name).write_text(name)
    listed = os.listdir(grp)
    assert listed == ["0"] + made + ["1"]
    mount.commit("group")
    listed = os.listdir(grp)
    assert listed == [str(i) for i in range(5002)]
    assert (grp / "5001").read_text() == "b\n"
    assert (grp / "1").read_text() == made[0]
