"""The object graph through the mount (issue 4): typed scalars, lists, refs
by identity, and JSON export/import through the mount and through pool
files, driven with real shell tools and plain os calls."""
import errno
import json
import os
import random
import subprocess

import pytest

from conftest import POG, Mount, mkfs


def sh(script, cwd, check=True):
    """Run a bash script in cwd; returns the CompletedProcess (text)."""
    r = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True,
                       text=True)
    if check:
        assert r.returncode == 0, (script, r.stdout, r.stderr)
    return r


def pog(*args, check=True, **kw):
    r = subprocess.run([POG, *map(str, args)], capture_output=True, **kw)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def pog_type(path):
    return os.getxattr(path, "user.pog.type", follow_symlinks=False).decode()


def changes(mount):
    return (mount.path / ".pog" / "changes").read_text()


# ---- typed scalars ---------------------------------------------------------

def test_int_with_shell_tools(mnt):
    sh("echo 42 > n && setfattr -n user.pog.type -v int n", mnt)
    assert sh("getfattr -n user.pog.type --only-values n", mnt).stdout == "int"
    assert sh("cat n", mnt).stdout == "42\n"
    sh("echo 43 > n", mnt)
    assert sh("cat n", mnt).stdout == "43\n"
    r = sh("echo abc > n", mnt, check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert sh("cat n", mnt).stdout == "43\n"
    assert pog_type(mnt / "n") == "int"
    # appending would leave "43\n7\n": not an int
    r = sh("echo 7 >> n", mnt, check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert sh("cat n", mnt).stdout == "43\n"
    sh("echo -12 > n", mnt)
    assert int(sh("cat n", mnt).stdout) == -12


def test_float_bool_null_conversions(mnt):
    sh("echo 2.5 > f && setfattr -n user.pog.type -v float f", mnt)
    assert pog_type(mnt / "f") == "float"
    assert sh("cat f", mnt).stdout == "2.5\n"
    sh("echo 1e3 > f", mnt)
    assert float(sh("cat f", mnt).stdout) == 1000.0
    r = sh("echo abc > f", mnt, check=False)
    assert "Invalid argument" in r.stderr
    assert float(sh("cat f", mnt).stdout) == 1000.0
    # an integer text converts to float and shows as one
    sh("echo 7 > g && setfattr -n user.pog.type -v float g", mnt)
    assert sh("cat g", mnt).stdout == "7.0\n"

    sh("echo true > b && setfattr -n user.pog.type -v bool b", mnt)
    assert pog_type(mnt / "b") == "bool"
    assert sh("cat b", mnt).stdout == "true\n"
    sh("echo false > b", mnt)
    assert sh("cat b", mnt).stdout == "false\n"
    r = sh("echo yes > b", mnt, check=False)
    assert "Invalid argument" in r.stderr
    assert sh("cat b", mnt).stdout == "false\n"

    sh("echo null > z && setfattr -n user.pog.type -v null z", mnt)
    assert pog_type(mnt / "z") == "null"
    assert sh("cat z", mnt).stdout == "null\n"
    r = sh("echo 0 > z", mnt, check=False)
    assert "Invalid argument" in r.stderr

    # back to a string: the canonical text stays, anything may be written
    sh("setfattr -n user.pog.type -v string b && echo yes > b", mnt)
    assert pog_type(mnt / "b") == "string"
    assert sh("cat b", mnt).stdout == "yes\n"
    # int -> float -> int keeps the value when it is whole
    sh("echo 5 > i && setfattr -n user.pog.type -v int i", mnt)
    sh("setfattr -n user.pog.type -v float i", mnt)
    assert sh("cat i", mnt).stdout == "5.0\n"


def test_conversion_of_text_that_does_not_parse(mnt):
    sh("echo hello > w", mnt)
    for t in ["int", "float", "bool", "null"]:
        r = sh(f"setfattr -n user.pog.type -v {t} w", mnt, check=False)
        assert r.returncode != 0 and "Invalid argument" in r.stderr, t
        assert pog_type(mnt / "w") == "string"
        assert sh("cat w", mnt).stdout == "hello\n"
    r = sh("setfattr -n user.pog.type -v nonsense w", mnt, check=False)
    assert r.returncode != 0
    # a map with entries cannot become a list; a file cannot become a map
    sh("mkdir d && touch d/x", mnt)
    r = sh("setfattr -n user.pog.type -v list d", mnt, check=False)
    assert r.returncode != 0
    assert pog_type(mnt / "d") == "map"
    r = sh("setfattr -n user.pog.type -v map w", mnt, check=False)
    assert r.returncode != 0


# ---- lists -------------------------------------------------------------------

def test_list_with_shell_tools(mount):
    mnt = mount.path
    sh("mkdir l && setfattr -n user.pog.type -v list l", mnt)
    assert pog_type(mnt / "l") == "list"
    sh("echo a > l/0 && echo b > l/1", mnt)
    # any free number is a position; other names are temporary entries
    sh("echo x > l/5 && echo t > l/one", mnt)
    assert sh("ls -U l | tr '\\n' ' '", mnt).stdout == "0 1 5 one "
    r = sh("echo commit > .pog/ctl", mnt, check=False)
    assert r.returncode != 0 and "Invalid argument" in r.stderr
    assert "l/one" in json.loads((mnt / ".pog/status").read_text())["last_error"]
    sh("rm l/one", mnt)
    mount.commit()
    assert sh("ls -U l | tr '\\n' ' '", mnt).stdout == "0 1 2 "
    sh("rm l/0", mnt)
    assert sh("ls -U l | tr '\\n' ' '", mnt).stdout == "1 2 "
    assert sh("cat l/1 l/2", mnt).stdout == "b\nx\n"
    sh("mv l/2 l/0.5", mnt)  # moves x before b
    mount.commit()
    assert sh("cat l/0 l/1", mnt).stdout == "x\nb\n"
    for i in range(2, 12):
        sh(f"echo {i} > l/{i}", mnt)
    # readdir gives the positions in numeric order
    assert os.listdir(mnt / "l") == [str(i) for i in range(12)]
    r = sh("rmdir l", mnt, check=False)
    assert r.returncode != 0 and "not empty" in r.stderr
    sh("rm l/* && rmdir l", mnt)
    assert not (mnt / "l").exists()


# Names never shift inside a transaction: rm -r and find -delete unlink
# what they read and meet every entry once.
def test_rm_r_of_a_list(mnt):
    sh("mkdir l && setfattr -n user.pog.type -v list l && "
       "for i in $(seq 0 29); do echo $i > l/$i; done", mnt)
    sh("rm -r l", mnt)
    assert not (mnt / "l").exists()


def test_rm_r_of_nested_lists_and_maps(mnt):
    sh("mkdir -p t/l && setfattr -n user.pog.type -v list t/l && "
       "for i in 0 1 2 3 4; do mkdir t/l/$i && echo $i > t/l/$i/v; done && "
       "mkdir t/l/5 && setfattr -n user.pog.type -v list t/l/5 && "
       "for i in 0 1 2; do echo $i > t/l/5/$i; done && ln -s 0 t/l/6", mnt)
    assert sh("ls t/l | wc -l", mnt).stdout == "7\n"
    assert sh("readlink t/l/6", mnt).stdout == "0\n"
    sh("rm -r t", mnt)
    assert not (mnt / "t").exists()


def test_find_delete_of_a_list(mnt):
    sh("mkdir l && setfattr -n user.pog.type -v list l && "
       "for i in $(seq 0 9); do mkdir l/$i && echo x > l/$i/f; done", mnt)
    sh("find l -delete", mnt)
    assert not (mnt / "l").exists()


def test_rsync_restores_a_list(pool, tmp_path):
    """A backup with lists goes back in ONE rsync pass: rsync writes each
    file under a temporary name (.0.XXXXXX) and renames it to its number,
    in its own order (0 1 10 11 12 13 2 ...); names are positions, so the
    list comes back in order."""
    backup = tmp_path / "backup"
    m = Mount(pool, tmp_path / "m1").start()
    try:
        sh("mkdir l && setfattr -n user.pog.type -v list l && "
           "for i in $(seq 0 11); do echo v$i > l/$i; done && "
           "mkdir l/12 && echo x > l/12/k && mkdir l/13 && "
           "setfattr -n user.pog.type -v list l/13 && echo y > l/13/0 && "
           "echo 5 > n && setfattr -n user.pog.type -v int n", m.path)
        m.commit("list")
        want = m.ctl("export\n")
        sh(f"rsync -aHAX ./ {backup}/", m.path)
    finally:
        m.stop()
    pool2 = tmp_path / "one.pool"
    mkfs(pool2)
    m = Mount(pool2, tmp_path / "m-one").start()
    try:
        sh(f"rsync -aHAX {backup}/ ./", m.path)
        assert pog_type(m.path / "l") == "list"
        assert pog_type(m.path / "l" / "13") == "list"
        assert pog_type(m.path / "n") == "int"
        m.commit("restored")
        got = m.ctl("export\n")
        assert got == want
        sh("rm l/0", m.path)  # names stay until the commit
        assert sh("cat l/1", m.path).stdout == "v1\n"
        m.commit("removed")
        assert sh("cat l/0", m.path).stdout == "v1\n"
    finally:
        m.stop()


def test_list_persists(mount):
    mnt = mount.path
    sh("mkdir l && setfattr -n user.pog.type -v list l && "
       "echo a > l/0 && mkdir l/1 && echo v > l/1/k", mnt)
    mount.commit()
    mount.remount()
    assert pog_type(mnt / "l") == "list"
    assert sh("cat l/0 l/1/k", mnt).stdout == "a\nv\n"


# ---- refs by identity -------------------------------------------------------

def test_ref_follows_identity(mount):
    mnt = mount.path
    sh("mkdir a b && echo hi > a/target && ln -s a/target link", mnt)
    # a ref needs pogfs's forms: the document is marked
    assert json.loads(mount.ctl("export\n"))["root"]["link"] == {"$ref": 1}
    ino = os.stat(mnt / "a" / "target").st_ino
    sh("mv a/target b/moved", mnt)
    assert sh("readlink link", mnt).stdout == "b/moved\n"
    assert sh("cat link", mnt).stdout == "hi\n"
    # the owner goes away: the ref keeps the object, by identity
    sh("rm b/moved", mnt)
    assert sh("readlink link", mnt).stdout == f".pog/objects/{ino}\n"
    assert sh("cat link", mnt).stdout == "hi\n"
    assert os.stat(mnt / "link").st_ino == ino
    mount.commit()
    mount.remount()
    assert sh("readlink link", mnt).stdout == f".pog/objects/{ino}\n"
    assert sh("cat link", mnt).stdout == "hi\n"
    mount.ctl("gc\n")
    assert sh("cat link", mnt).stdout == "hi\n"
    assert (mnt / ".pog" / "objects" / str(ino)).read_text() == "hi\n"
    mount.remount()  # and the GC at unmount keeps it too
    assert sh("cat link", mnt).stdout == "hi\n"
    # dropping the last ref lets GC take it
    sh("rm link", mnt)
    mount.commit()
    mount.remount()
    assert not (mnt / ".pog" / "objects" / str(ino)).exists()


def test_ref_to_directory_and_cycle(mount):
    mnt = mount.path
    sh("mkdir -p d/e && echo x > d/e/f && ln -s .. d/e/up && ln -s ../d/e d/self", mnt)
    assert sh("cat d/e/up/e/f d/self/f", mnt).stdout == "x\nx\n"
    sh("mv d dd", mnt)
    assert sh("readlink dd/self", mnt).stdout == "e\n"
    assert sh("readlink dd/e/up", mnt).stdout == "..\n"
    mount.commit()
    mount.remount()
    assert sh("cat dd/e/up/self/f", mnt).stdout == "x\n"


# ---- JSON through the mount ----------------------------------------------------

def test_export_mount_matches_core_export(mount, tmp_path):
    mnt = mount.path
    sh("mkdir -p dir/sub && echo hello > dir/s && echo 42 > dir/n && "
       "setfattr -n user.pog.type -v int dir/n && mkdir dir/l && "
       "setfattr -n user.pog.type -v list dir/l && echo 1.5 > dir/l/0 && "
       "setfattr -n user.pog.type -v float dir/l/0 && echo true > dir/sub/t && "
       "setfattr -n user.pog.type -v bool dir/sub/t", mnt)
    through_tool = pog("export", mnt / "dir").stdout
    assert through_tool.decode() == mount.ctl("export dir\n")
    assert json.loads(through_tool) == {
        "s": "hello\n", "n": 42, "l": [1.5], "sub": {"t": True}}
    # the whole mount: "." and "" are its root
    whole = pog("export", mnt).stdout.decode()
    assert whole == mount.ctl("export .\n") == mount.ctl("export\n")
    assert whole == mount.ctl(f"export {mnt}\n")
    # the pool file's export (last commit) agrees after a commit
    mount.commit()
    mount.stop()
    from_pool = pog("export", mount.pool).stdout.decode()
    assert from_pool == whole
    assert json.loads(from_pool)["dir"] == json.loads(through_tool)
    mount.start()


def test_import_through_mount_then_remount(mount, tmp_path):
    mnt = mount.path
    doc = {"name": "x", "n": 3, "f": 0.25, "ok": False, "none": None,
           "list": [1, "two", [3], {"four": 4}], "m": {"a/b": "slash", "": "empty"}}
    f = tmp_path / "doc.json"
    f.write_text(json.dumps(doc))
    assert not (mnt / "newname").exists()  # the kernel must not cache this
    pog("import", mnt / "newname", f)
    assert sh("cat newname/name newname/n newname/list/1", mnt).stdout == "x3\ntwo"
    assert pog_type(mnt / "newname" / "list") == "list"
    assert pog_type(mnt / "newname" / "f") == "float"
    assert sorted(os.listdir(mnt / "newname" / "m")) == ["%", "%a%2Fb"]
    assert "A newname" in changes(mount)
    mount.commit("imported")
    mount.remount()
    assert json.loads(pog("export", mnt / "newname").stdout) == doc
    assert sh("cat newname/list/3/four", mnt).stdout == "4\n"
    # into an existing map: the entries are added
    (tmp_path / "more.json").write_text('{"extra": 1, "more": {"x": "y"}}')
    pog("import", mnt / "newname", tmp_path / "more.json")
    assert sh("cat newname/extra newname/more/x", mnt).stdout == "1\ny"
    # a list takes a new entry at any free position
    (tmp_path / "five.json").write_text("5")
    pog("import", mnt / "newname/list/4", tmp_path / "five.json")
    assert sh("cat newname/list/4", mnt).stdout == "5\n"
    pog("import", mnt / "newname/list/0.5", tmp_path / "five.json")
    r = pog("import", mnt / "newname/list/4", tmp_path / "five.json", check=False)
    assert r.returncode != 0  # taken
    assert json.loads(pog("export", mnt / "newname/list").stdout)[1] == 5
    # into the root, and "." names it
    (tmp_path / "root.json").write_text('{"top": "level"}')
    pog("import", mnt, tmp_path / "root.json")
    assert (mnt / "top").read_text() == "level"
    # an existing non-map cannot take a document
    r = pog("import", mnt / "top", tmp_path / "more.json", check=False)
    assert r.returncode != 0 and b"not a map" in r.stderr
    r = pog("import", mnt / ".pog/committed/x", tmp_path / "more.json", check=False)
    assert r.returncode != 0 and b"read-only" in r.stderr


def test_ctl_import_protocol(mount, tmp_path):
    mnt = mount.path
    ctl = mnt / ".pog" / "ctl"
    # a document bigger than max_write arrives in several pieces
    big = {f"k{i:05d}": "v" * 200 for i in range(12000)}
    body = json.dumps(big).encode()
    assert len(body) > 2 << 20
    fd = os.open(ctl, os.O_RDWR)
    try:
        msg = b"import %d big\n" % len(body) + body
        assert os.write(fd, msg) == len(msg)
        os.lseek(fd, 0, os.SEEK_SET)
        assert os.read(fd, 4096).startswith(b"import ")
    finally:
        os.close(fd)
    assert len(os.listdir(mnt / "big")) == 12000
    assert (mnt / "big" / "k11999").read_text() == "v" * 200

    # a header and its document in separate writes
    fd = os.open(ctl, os.O_RDWR)
    try:
        os.write(fd, b"import 11 parts\n")
        os.write(fd, b'{"a":')
        os.write(fd, b'[1,2]}')
    finally:
        os.close(fd)
    assert (mnt / "parts" / "a" / "1").read_text() == "2\n"

    # more than LENGTH bytes: EINVAL, nothing made
    fd = os.open(ctl, os.O_RDWR)
    try:
        with pytest.raises(OSError) as e:
            os.write(fd, b'import 3 toolong\n{"a":1}')
        assert e.value.errno == errno.EINVAL
        os.write(fd, b"import 10 toolong2\n{\"a\"")
        with pytest.raises(OSError) as e:
            os.write(fd, b':1, "b":2}')
        assert e.value.errno == errno.EINVAL
        # a new command (at another offset) before the document is complete
        os.write(fd, b"import 10 cut\n{\"a\"")
        os.lseek(fd, 0, os.SEEK_SET)
        with pytest.raises(OSError) as e:
            os.write(fd, b"commit\n")
        assert e.value.errno == errno.EINVAL
        for bad in [b"import\n", b"import x y\n", b"import -1 p\n",
                    b"import 5 p\x00q\n{}"]:
            with pytest.raises(OSError) as e:
                os.write(fd, bad)
            assert e.value.errno == errno.EINVAL, bad
    finally:
        os.close(fd)
    for name in ["toolong", "toolong2", "cut"]:
        assert not (mnt / name).exists()

    # bad JSON: EINVAL, where and why in the answer and in the status
    staged = mount.status()["staged"]
    fd = os.open(ctl, os.O_RDWR)
    try:
        doc = b'{\n  "a": [1, 2,\n  "b": }'
        with pytest.raises(OSError) as e:
            os.write(fd, b"import %d bad\n" % len(doc) + doc)
        assert e.value.errno == errno.EINVAL
        os.lseek(fd, 0, os.SEEK_SET)
        answer = os.read(fd, 4096).decode()
    finally:
        os.close(fd)
    assert answer.startswith("error: line 3, column 6: ")
    assert mount.status()["last_error"] == answer[len("error: "):].strip()
    assert mount.status()["staged"] == staged
    assert not (mnt / "bad").exists()

    # new objects belong to the writer (the uid of the write that ends it)
    fd = os.open(ctl, os.O_RDWR)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setresgid(4321, 4321, 4321)
            os.setresuid(1234, 1234, 1234)
            doc = b'{"f": "x", "d": {}}'
            os.write(fd, b"import %d owned\n" % len(doc) + doc)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert status == 0
    for p in ["owned", "owned/f", "owned/d"]:
        st = os.stat(mnt / p)
        assert (st.st_uid, st.st_gid) == (1234, 4321), p


def test_bad_json_changes_nothing(mount, tmp_path):
    mnt = mount.path
    mount.commit()
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "ok": 1,\n  "broken": tru\n}\n')
    r = pog("import", mnt / "x", bad, check=False)
    assert r.returncode != 0
    err = r.stderr.decode()
    assert err.startswith(f"pog: import: {bad}:3:"), err
    assert err.count("\n") == 1
    assert changes(mount) == ""
    assert not (mnt / "x").exists()
    r = pog("import", mnt, bad, check=False)
    assert r.returncode != 0 and f"{bad}:3:" in r.stderr.decode()
    assert changes(mount) == ""
    # an empty document is bad JSON too
    (tmp_path / "empty.json").write_bytes(b"")
    r = pog("import", mnt / "y", tmp_path / "empty.json", check=False)
    assert r.returncode != 0 and "empty.json:1:1:" in r.stderr.decode()
    assert changes(mount) == ""
    # the same through a pool file: refused, the pool unchanged
    mount.stop()
    before = pog("export", mount.pool).stdout
    r = pog("import", mount.pool, bad, check=False)
    assert r.returncode != 0 and f"{bad}:3:" in r.stderr.decode()
    assert pog("export", mount.pool).stdout == before
    mount.start()


def test_gzip_round_trip(mount, tmp_path):
    mnt = mount.path
    sh("mkdir -p g/h && echo text > g/h/t && echo 9 > g/n && "
       "setfattr -n user.pog.type -v int g/n", mnt)
    plain = pog("export", mnt / "g").stdout
    gz = tmp_path / "x.json.gz"
    pog("export", mnt / "g", "-o", gz)
    assert subprocess.run(["gzip", "-dc", gz], capture_output=True,
                          check=True).stdout == plain
    pog("export", mnt / "g", "--gzip", "-o", tmp_path / "forced")
    assert subprocess.run(["gzip", "-dc", tmp_path / "forced"], capture_output=True,
                          check=True).stdout == plain
    pog("import", mnt / "g2", gz)
    assert pog("export", mnt / "g2").stdout == plain
    # and into a pool file
    mount.commit()
    mount.stop()
    pool2 = tmp_path / "second.pool"
    mkfs(pool2, "64M")
    pog("import", pool2, gz)
    whole = json.loads(pog("export", pool2).stdout)
    assert whole == json.loads(plain)
    pool2.unlink()
    mount.start()


# ---- exact round trips ----------------------------------------------------------

SPECIAL_NAMES = {  # name through the mount -> key in the store
    "%a%2Fb": "a/b", "%.": ".", "%": "", "%..": "..", "%2F": "%2F",
    "$ref": "$ref", "$$x": "$$x", "$b64:AA==": "$b64:AA==",
}


def random_bytes(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
    if kind == 1:
        return b""
    if kind == 2:
        return "ünïcødé ✓ \"quoted\" \\ tab\t nl\n".encode()
    if kind == 3:
        return b"nul\x00inside"
    return ("w" * rng.randrange(1, 5000)).encode()


def random_name(rng, taken):
    while True:
        kind = rng.randrange(6)
        if kind == 0:
            name = rng.choice(list(SPECIAL_NAMES))
        elif kind == 1:
            name = b"\xff\xfe-" + str(rng.randrange(1000)).encode()
        elif kind == 2:
            name = "ключ-" + str(rng.randrange(1000))
        else:
            name = "k" + str(rng.randrange(10000))
        if name not in taken:
            taken.add(name)
            return name


def build_random_graph(root, seed):
    """A random tree under root through plain os calls, then refs (some
    shared, one making a cycle) and hard links between its objects."""
    rng = random.Random(seed)
    os.mkdir(root)
    dirs, files = [root], []

    def add_leaf(path):
        kind = rng.choice(["string", "string", "int", "float", "bool", "null"])
        text = {"string": None,
                "int": str(rng.randrange(-10**12, 10**12)),
                "float": repr(rng.uniform(-1e6, 1e6)) if rng.random() < 0.8
                else rng.choice(["1e300", "-2.5e-300", "0.1", "3.0"]),
                "bool": rng.choice(["true", "false"]),
                "null": "null"}[kind]
        with open(path, "wb") as f:
            f.write(random_bytes(rng) if text is None else (text + "\n").encode())
        if kind != "string":
            os.setxattr(path, "user.pog.type", kind.encode())
        files.append(path)

    def fill(d, depth, is_list):
        taken = set()
        for i in range(rng.randrange(1, 7)):
            if is_list:
                name = str(i)
            else:
                name = random_name(rng, taken)
            p = os.path.join(os.fsencode(d), os.fsencode(name))
            r = rng.random()
            if depth < 3 and r < 0.3:
                os.mkdir(p)
                sub_list = rng.random() < 0.35
                if sub_list:
                    os.setxattr(p, "user.pog.type", b"list")
                dirs.append(p)
                fill(p, depth + 1, sub_list)
            else:
                add_leaf(p)

    fill(root, 0, False)
    root = os.fsencode(root)
    dirs = [os.fsencode(d) for d in dirs]
    list_dirs = {d for d in dirs if pog_type(d) == "list"}

    def new_place(d):
        if d in list_dirs:
            return os.path.join(d, str(len(os.listdir(d))).encode())
        names = set(os.listdir(d))
        i = 0
        while f"r{i}".encode() in names:
            i += 1
        return os.path.join(d, f"r{i}".encode())

    # refs: a few to random objects (sharing targets), one to an ancestor
    targets = rng.sample(dirs[1:] + files, min(4, len(dirs) - 1 + len(files)))
    for _ in range(6):
        t = rng.choice(targets)
        d = rng.choice(dirs)
        place = new_place(d)
        os.symlink(os.path.relpath(os.fsencode(t), d), place)
    deep = max(dirs, key=lambda d: d.count(b"/"))
    place = new_place(deep)
    os.symlink(os.path.relpath(root, deep), place)  # a cycle through a ref
    # hard links of files in maps into maps (in lists: see
    # test_hard_link_in_list_round_trip)
    in_maps = [f for f in map(os.fsencode, files)
               if os.path.dirname(f) not in list_dirs]
    for f in rng.sample(in_maps, min(2, len(in_maps))):
        d = rng.choice([d for d in dirs if d not in list_dirs])
        os.link(f, new_place(d))
    os.symlink(b"plain/text/nowhere", new_place(root))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_graph_round_trip(mount, tmp_path, seed):
    mnt = mount.path
    build_random_graph(mnt / "g", seed)
    first = pog("export", mnt / "g").stdout
    assert first.decode() == mount.ctl("export g\n")
    doc = json.loads(first)
    assert doc["$pogfs"] == 2  # refs and links: a marked document
    assert "$id" in doc["root"]  # the cycle names the root
    # export -> import -> export, through the mount
    f = tmp_path / "g.json"
    f.write_bytes(first)
    pog("import", mnt / "g2", f)
    second = pog("export", mnt / "g2").stdout
    assert second == first
    # the copy is a real graph: the same names list back
    def names(root):
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            out += [(rel, n) for n in sorted(dirnames + filenames)]
        return sorted(out)
    assert names(os.fsencode(mnt / "g2")) == names(os.fsencode(mnt / "g"))
    # committed, remounted, and through pool files
    mount.commit()
    mount.remount()
    assert pog("export", mnt / "g2").stdout == first
    mount.stop()
    whole = pog("export", mount.pool).stdout
    (tmp_path / "whole.json").write_bytes(whole)
    pool2 = tmp_path / "copy.pool"
    mkfs(pool2, "64M")
    try:
        pog("import", pool2, tmp_path / "whole.json")
        assert pog("export", pool2).stdout == whole
        m2 = Mount(pool2, tmp_path / "mnt2").start()
        try:
            assert pog("export", m2.path / "g").stdout == first
        finally:
            m2.stop()
    finally:
        pool2.unlink()
    mount.start()


def test_hard_link_in_list_round_trip(mount, tmp_path):
    mnt = mount.path
    sh("mkdir g && echo x > g/a && mkdir g/l && "
       "setfattr -n user.pog.type -v list g/l && ln g/a g/l/0 && echo z > g/l/1", mnt)
    first = pog("export", mnt / "g").stdout
    assert json.loads(first) == {"$pogfs": 2, "root": {
        "a": {"$id": 1, "$value": "x\n"}, "l": [{"$link": 1}, "z\n"]}}
    (tmp_path / "g.json").write_bytes(first)
    pog("import", mnt / "g2", tmp_path / "g.json")
    assert pog("export", mnt / "g2").stdout == first


def test_special_keys_and_bytes(mount, tmp_path):
    mnt = mount.path
    (mnt / "k").mkdir()
    for name in SPECIAL_NAMES:
        (mnt / "k" / name).write_text(name)
    os.mkdir(os.path.join(os.fsencode(mnt / "k"), b"\xffbin"))
    (mnt / "k" / "bytes").write_bytes(b"\x00\xff\xfe")
    doc = json.loads(pog("export", mnt / "k").stdout)
    assert doc["$pogfs"] == 2  # bytes that are not UTF-8: marked
    doc = doc["root"]
    keys = set(doc)
    assert {"a/b", ".", "", "..", "%2F", "$$ref", "$$$x", "$$b64:AA==",
            "$b64:/2Jpbg==", "bytes"} == keys
    assert doc["bytes"] == {"$bytes": "AP/+"}
    assert doc["a/b"] == "%a%2Fb"
    f = tmp_path / "k.json"
    f.write_bytes(pog("export", mnt / "k").stdout)
    pog("import", mnt / "k2", f)
    assert sorted(os.listdir(os.fsencode(mnt / "k2"))) == \
        sorted(os.listdir(os.fsencode(mnt / "k")))
    assert (mnt / "k2" / "bytes").read_bytes() == b"\x00\xff\xfe"
    assert pog("export", mnt / "k2").stdout == f.read_bytes()


PACKAGE_JSON = {
    "name": "@scope/widget", "version": "1.4.2", "private": False,
    "description": "A widget — with “quotes” and emoji 🎉",
    "main": "dist/index.js",
    "scripts": {"build": "tsc -p .", "test": "jest --coverage", "$schema": "x"},
    "keywords": [], "files": ["dist/", "README.md"],
    "dependencies": {"left-pad": "^1.3.0", "react": ">=17 <19"},
    "engines": {"node": ">=18"}, "config": {"port": 8080, "ratio": 0.75,
                                            "nothing": None, "nested": {}},
}

GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "id": 1,
         "geometry": {"type": "Point", "coordinates": [102.0, 0.5]},
         "properties": {"prop0": "value0", "elevation": -12.125}},
        {"type": "Feature", "id": 2,
         "geometry": {"type": "LineString",
                      "coordinates": [[102.0, 0.0], [103.0, 1.0],
                                      [104.0, 0.0], [105.0, 1.0e-7]]},
         "properties": {"prop0": "value0", "prop1": 0.1 + 0.2}},
        {"type": "Feature", "id": 3,
         "geometry": {"type": "Polygon",
                      "coordinates": [[[100.0, 0.0], [101.0, 0.0], [101.0, 1.0],
                                       [100.0, 1.0], [100.0, 0.0]]]},
         "properties": {"prop0": "value0", "prop1": {"this": "that"},
                        "big": 12345678901234, "small": 2.2250738585072014e-308}},
    ],
    "bbox": [100.0, 0.0, 105.0, 1.0],
}


@pytest.mark.parametrize("doc", [PACKAGE_JSON, GEOJSON], ids=["package", "geojson"])
def test_real_world_documents(mount, tmp_path, doc):
    mnt = mount.path
    f = tmp_path / "doc.json"
    f.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    pog("import", mnt / "doc", f)
    first = pog("export", mnt / "doc").stdout
    # plain "$..." keys import as they are, and a plain document exports
    # as plain JSON: the same keys
    assert json.loads(first) == doc
    # floats stay floats (102.0 is not 102), ints stay ints
    text = first.decode()
    if doc is GEOJSON:
        assert pog_type(mnt / "doc/features/0/geometry/coordinates/0") == "float"
        assert (mnt / "doc/features/0/geometry/coordinates/0").read_text() == "102.0\n"
        assert pog_type(mnt / "doc/features/0/id") == "int"
        assert "[102.0,0.5]" in text
    else:
        assert pog_type(mnt / "doc/config/port") == "int"
        assert pog_type(mnt / "doc/keywords") == "list"
        assert os.listdir(mnt / "doc/keywords") == []
        assert "\"$schema\":\"x\"" in text
    (tmp_path / "again.json").write_bytes(first)
    pog("import", mnt / "again", tmp_path / "again.json")
    assert pog("export", mnt / "again").stdout == first
    mount.commit()
    mount.remount()
    assert json.loads(pog("export", mnt / "doc").stdout) == doc


def test_subnormal_float_imports(mount, tmp_path):
    f = tmp_path / "tiny.json"
    f.write_text('{"tiny": 5e-324}')
    pog("import", mount.path / "t", f)
    assert json.loads(pog("export", mount.path / "t").stdout) == {"tiny": 5e-324}
