"""user.pog.hash is never stale: after every step of long random sequences of
edits through the mount (writes, truncates, hard links and unlinks of one
name, refs, renames over names and across directories, RENAME_EXCHANGE,
type changes, list edits, xattrs, commit, abort, GC), every directory's
and file's hash, in the staged tree and in .pog/committed, equals the one
computed here from scratch by the README's definition (zlib.crc32 over
what the mount shows), with no help from the daemon's cache.
"""
import ctypes
import errno
import os
import random
import stat
import struct
import zlib

import pytest

STEPS = int(os.environ.get("POGFS_HASH_STEPS", "150"))
SEEDS = int(os.environ.get("POGFS_HASH_SEEDS", "3"))
INO_MASK = (1 << 62) - 1

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2


def exchange(a, b):
    if _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b),
                       RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def crc(b):
    return zlib.crc32(b) & 0xFFFFFFFF


def pog_type(path):
    return os.getxattr(path, "user.pog.type").decode()


def canonical(kind, text):
    t = text.strip()
    if kind == "int":
        return str(int(t))
    if kind == "float":
        d = float(t)
        if d == int(d) and abs(d) < 1e16:
            return "%.1f" % d
        for prec in range(1, 18):
            s = "%.*g" % (prec, d)
            if float(s) == d:
                break
        return s if any(c in s for c in ".eEn") else s + ".0"
    return t  # bool, null


def reference(path, mnt):
    """The README's hash of the object at path, from scratch."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        text = os.readlink(path)
        target = os.path.normpath(os.path.join(os.path.dirname(path), text))
        inside = os.path.commonpath([target, str(mnt)]) == str(mnt)
        if inside and os.path.lexists(target):
            ino = os.lstat(target).st_ino & INO_MASK
            return crc(b"r" + struct.pack("<Q", ino))
        return crc(b"y" + os.fsencode(text))
    if stat.S_ISDIR(st.st_mode):
        names = os.listdir(path)
        if pog_type(path) == "list":
            # staged names keep their numbers (0 1 2 4, 2.5) and sort
            # numerically; the test makes no temporary entries
            order = sorted(names, key=float)
            data = b"l" + b"".join(
                struct.pack("<I", reference(os.path.join(path, n), mnt))
                for n in order)
            return crc(data)
        total = 0
        for n in names:
            assert not n.startswith("%"), n  # the test makes no escaped keys
            h = reference(os.path.join(path, n), mnt)
            total += crc(os.fsencode(n) + struct.pack("<I", h))
        return crc(b"m" + struct.pack("<I", total & 0xFFFFFFFF))
    if stat.S_ISREG(st.st_mode):
        kind = pog_type(path)
        with open(path, "rb") as f:
            data = f.read()
        if kind == "string":
            return crc(b"s" + data)
        tag = {"int": b"i", "float": b"f", "bool": b"b", "null": b"n"}[kind]
        return crc(tag + canonical(kind, data.decode()).encode())
    return crc(b"x" + struct.pack("<IQ", st.st_mode, st.st_rdev))


def walk(root):
    """Every path below root (root included), directories first."""
    out = [str(root)]
    for i in range(len(out)):
        p = out[i]
        if os.path.isdir(p) and not os.path.islink(p):
            out.extend(os.path.join(p, n) for n in sorted(os.listdir(p)))
    return out


def check_tree(root, mnt, rng, label):
    paths = walk(root)
    if rng.random() < 0.5:
        paths.reverse()  # children first: the cache fills another way
    for p in paths:
        mode = os.lstat(p).st_mode
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            continue  # the kernel keeps user.* xattrs off symlinks, fifos
        got = int(os.getxattr(p, "user.pog.hash").decode(), 16)
        want = reference(p, mnt)
        assert got == want, f"{label}: {os.path.relpath(p, mnt)}: " \
                            f"hash {got:08x}, from scratch {want:08x}"


class Run:
    SCALARS = {"int": ["42\n", "-7\n", "1815\n"],
               "float": ["2.5\n", "7.0\n", "0.125\n"],
               "bool": ["true\n", "false\n"], "null": ["null\n"]}

    def __init__(self, mount, seed):
        self.mount = mount
        self.m = mount.path
        self.rng = random.Random(seed)

    def entries(self, want=None):
        out = []
        for p in walk(self.m)[1:]:
            isdir = os.path.isdir(p) and not os.path.islink(p)
            if want == "dir" and not isdir:
                continue
            if want == "file" and (isdir or os.path.islink(p)):
                continue
            out.append(p)
        return out

    def dirs(self):
        return [str(self.m)] + self.entries("dir")

    def is_list(self, d):
        return pog_type(d) == "list"

    def new_name(self, d):
        if self.is_list(d):
            return os.path.join(d, str(len(os.listdir(d))))
        return os.path.join(d, self.rng.choice("abcdef") +
                            str(self.rng.randrange(4)))

    def pick(self, items):
        return self.rng.choice(items) if items else None

    # ---- steps: each may be refused (OSError); that is no failure ----
    def write(self):
        f = self.pick([p for p in self.entries("file")
                       if pog_type(p) == "string"])
        if f:
            off = self.rng.choice([0, self.rng.randrange(300),
                                   self.rng.randrange(20000)])
            n = self.rng.choice([1, 100, 5000])
            data = self.rng.randbytes(n) if self.rng.random() < .5 else b"z" * n
            with open(f, "r+b") as fh:
                fh.seek(off)
                fh.write(data)

    def truncate(self):
        f = self.pick([p for p in self.entries("file")
                       if pog_type(p) == "string"])
        if f:
            os.truncate(f, self.rng.choice([0, 5, 200, 9000]))

    def create(self):
        d = self.pick(self.dirs())
        p = self.new_name(d)
        what = self.rng.randrange(6)
        if what == 0:
            os.mkdir(p)
        elif what == 1:
            os.mkdir(p)
            os.setxattr(p, "user.pog.type", b"list")
        elif what == 2:
            t = self.pick(self.entries())
            os.symlink(os.path.relpath(t, os.path.dirname(p)), p)  # a ref
        elif what == 3:
            os.symlink("/nonexistent/plain text", p)
        elif what == 4:
            os.mkfifo(p)
        else:
            with open(p, "wb") as fh:
                fh.write(os.fsencode(os.path.basename(p)) * self.rng.randrange(3))

    def scalar(self):
        f = self.pick(self.entries("file"))
        if not f or not stat.S_ISREG(os.lstat(f).st_mode):
            return
        kind = pog_type(f)
        if kind == "string":
            kind = self.rng.choice(list(self.SCALARS))
            with open(f, "w") as fh:
                fh.write(self.rng.choice(self.SCALARS[kind]))
            os.setxattr(f, "user.pog.type", kind.encode())
        elif self.rng.random() < .7:
            with open(f, "w") as fh:  # echo 43 > count
                fh.write(self.rng.choice(self.SCALARS[kind]))
        else:
            os.setxattr(f, "user.pog.type", b"string")

    def link(self):
        f = self.pick([p for p in self.entries("file")
                       if not os.path.islink(p)])
        if f:
            os.link(f, self.new_name(self.pick(self.dirs())))

    def remove(self):
        p = self.pick(self.entries())
        if p is None:
            return
        if os.path.isdir(p) and not os.path.islink(p):
            os.rmdir(p)
        else:
            os.unlink(p)

    def rename(self):
        src = self.pick(self.entries())
        if src is None:
            return
        if self.rng.random() < .35:
            dst = self.pick(self.entries())
            if self.rng.random() < .5:
                exchange(src, dst)
            else:
                os.rename(src, dst)
        else:
            os.rename(src, self.new_name(self.pick(self.dirs())))

    def dirtype(self):
        d = self.pick(self.entries("dir"))
        if d:
            os.setxattr(d, "user.pog.type",
                        b"map" if self.is_list(d) else b"list")

    def xattr(self):
        p = self.pick([p for p in self.entries() if not os.path.islink(p)])
        if p:
            os.setxattr(p, "user.note", self.rng.randbytes(4))

    def txn(self):
        r = self.rng.random()
        if r < .25:
            self.mount.abort()
        elif r < .4:
            self.mount.commit("step")
            self.mount.ctl("gc\n")
        else:
            self.mount.commit("step")

    def step(self):
        steps = [self.write] * 3 + [self.truncate] + [self.create] * 3 + \
            [self.scalar, self.link, self.link, self.remove, self.remove,
             self.rename, self.rename, self.dirtype, self.xattr, self.txn,
             self.txn]
        action = self.rng.choice(steps)
        try:
            action()
            return action.__name__, None
        except OSError as e:
            return action.__name__, e.errno


@pytest.mark.parametrize("seed", range(SEEDS))
def test_hashes_match_a_computation_from_scratch(mount, seed):
    m = mount.path
    # the case first: a file under two names loses the first
    (m / "d0").mkdir()
    (m / "d1").mkdir()
    (m / "d0" / "a").write_text("one\n")
    os.link(m / "d0" / "a", m / "d1" / "b")
    os.getxattr(m, "user.pog.hash")
    os.unlink(m / "d0" / "a")
    (m / "d1" / "b").write_text("two\n")
    rng = random.Random(seed)
    check_tree(m, m, rng, "the issue's case")
    run = Run(mount, seed)
    done = refused = 0
    for i in range(STEPS):
        name, err = run.step()
        if err is None:
            done += 1
        else:
            refused += 1
        label = f"seed {seed} step {i} ({name}" + \
            (f", {errno.errorcode.get(err, err)})" if err else ")")
        check_tree(m, m, rng, label)
        committed = m / ".pog" / "committed"
        check_tree(committed, committed, rng, label + " committed")
    assert done > STEPS // 2, (done, refused)
