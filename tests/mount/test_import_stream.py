"""pog import MNTPATH goes over the daemon's control socket ("import LENGTH
PATH"), and MNT/.pog/ctl's "import LENGTH PATH" takes its document in
pieces: either way the daemon holds the document in an unlinked temporary
file, not in its memory, so its peak RSS stays far below the document's
size; pog shows a progress line on a terminal; a bad or broken upload
imports nothing and leaves no file behind."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

from conftest import POG
from test_progress import run_on_terminal, run_on_pipe

ITEMS = 20000
BLOBS = 500
BLOB_ZEROS = 4096          # "\u0000" escapes: 4 KiB of data, 24 KiB of JSON
PAD = 512 << 10            # blanks after each blob: JSON without data


def generate(path, blobs=BLOBS, pad=PAD):
    """A document of some hundreds of MiB, written as it is made: a list
    of ITEMS numbers, blobs strings of zero bytes, and whitespace (valid
    between any two tokens), so that the pool holds little of it."""
    zeros = "\\u0000" * BLOB_ZEROS
    blank = "\n" + " " * (pad - 1)
    with open(path, "w") as f:
        f.write('{"items": [')
        f.write(",".join(map(str, range(ITEMS))))
        f.write('],\n"blobs": {')
        for i in range(blobs):
            f.write(f'{"," if i else ""}"b{i:04d}": "blob {i}:{zeros}"{blank}')
        f.write("}}\n")
    return os.path.getsize(path)


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def reset_peak(pid):
    """Let VmHWM count from now (Linux: 5 in clear_refs)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def spooled_files(pid):
    """The unlinked files the daemon holds open (its spools)."""
    found = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(" (deleted)"):
            found.append(target)
    return found


def check_imported(root, blobs=BLOBS):
    items = root / "items"
    names = os.listdir(items)
    assert len(names) == ITEMS
    for k in (0, 1, 4999, ITEMS - 1):
        assert (items / names[k]).read_text() == f"{k}\n"
    assert sorted(os.listdir(root / "blobs")) == [f"b{i:04d}"
                                                  for i in range(blobs)]
    for i in (0, 17, blobs - 1):
        head = f"blob {i}:".encode()
        data = (root / "blobs" / f"b{i:04d}").read_bytes()
        assert data == head + bytes(BLOB_ZEROS), i


def ctl_import(mnt, path, doc, piece=1 << 20):
    """The document through MNT/.pog/ctl in writes of piece bytes."""
    size = os.path.getsize(doc)
    fd = os.open(mnt / ".pog" / "ctl", os.O_RDWR)
    try:
        os.write(fd, f"import {size} {path}\n".encode())
        with open(doc, "rb") as f:
            while True:
                b = f.read(piece)
                if not b:
                    break
                assert os.write(fd, b) == len(b)
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


def test_large_import_keeps_the_daemon_small(mount, tmp_path):
    doc = tmp_path / "big.json"
    size = generate(doc)
    assert size > 256 << 20
    pid = mount.proc.pid
    # Holding the document took more than its size before (the ctl
    # buffer grew by doubling): now the growth is the pool's pages and
    # the few MiB the import reads between two passes of the pager.
    bound = 96 << 10  # KiB, about a third of the document
    for how in ("socket", "ctl"):
        reset_peak(pid)
        before = peak_rss_kib(pid)
        if how == "socket":
            r = subprocess.run([POG, "import", mount.path / "x", doc, "-q"],
                               capture_output=True, text=True)
            assert r.returncode == 0 and r.stderr == "", r.stderr
            target = mount.path / "x"
        else:
            answer = ctl_import(mount.path, "y", doc)
            assert answer == f"import {size} y\n"
            target = mount.path / "y"
        grown = peak_rss_kib(pid) - before
        print(f"{how}: {size} bytes, daemon peak RSS grew by {grown} KiB")
        assert grown < bound, f"{how}: daemon peak RSS grew by {grown} KiB"
        check_imported(target)
        assert spooled_files(pid) == []
    mount.commit("big")
    check_imported(mount.path / ".pog" / "committed" / "x")


def test_progress_of_an_import_through_the_mount(mount, tmp_path):
    doc = tmp_path / "doc.json"
    generate(doc, blobs=40, pad=64 << 10)
    status, out, err = run_on_terminal("import", mount.path / "x", doc)
    assert status == 0, err
    lines = err.replace("\r\n", "\n").split("\r")
    drawn = [l for l in lines if l.startswith("import: ")]
    # Sending, then the daemon's own progress (its "P" frames).
    pattern = re.compile(r"import: \d+/\d+ bytes( sent)? \(\d+%\), \d+/s")
    assert drawn and all(pattern.match(l) for l in drawn), drawn
    assert any(" bytes sent " in l for l in drawn), drawn
    assert any(" bytes (" in l for l in drawn), drawn
    assert re.search(r", done in \d+\.\d s\.\r?\n", err), repr(err)
    check_imported(mount.path / "x", 40)
    # Not a terminal, or --quiet: nothing.
    assert run_on_pipe("import", mount.path / "y", doc) == (0, "", "")
    status, out, err = run_on_terminal("import", mount.path / "z", doc, "-q")
    assert (status, out, err) == (0, "", "")
    check_imported(mount.path / "z", 40)


def daemon_alive(mount):
    assert mount.proc.poll() is None
    (mount.path / "alive").write_text("yes\n")
    assert (mount.path / "alive").read_text() == "yes\n"


def test_bad_documents_over_the_socket(mount, tmp_path):
    good = tmp_path / "good.json"
    good.write_text('{"a": [1, 2, {"b": "c"}], "d": "e"}')
    for name, text, want in [
            ("cut.json", good.read_text()[:20], r"cut\.json:1:20: invalid JSON: the string never ends"),
            ("raw.json", '{"a": "x\ty"}', r"raw\.json:1:9: .*control"),
            ("two.json", '{"a": 1} {"b": 2}', r"two\.json:1:10: "),
            ("empty.json", "", r"empty\.json:")]:
        bad = tmp_path / name
        bad.write_text(text)
        r = subprocess.run([POG, "import", mount.path / "x", bad],
                           capture_output=True, text=True)
        assert r.returncode == 1, (name, r.stderr)
        assert re.match(r"pog: import: .*" + want, r.stderr), (name, r.stderr)
        assert not (mount.path / "x").exists(), name
        assert mount.status()["staged"] == 0, name
        assert mount.status()["last_error"], name
    # Where nothing may go: the control directory, under a string.
    for where, want in [(".pog/x", "control directory"),
                        ("alive", "not a map")]:
        daemon_alive(mount)
        r = subprocess.run([POG, "import", mount.path / where, good],
                           capture_output=True, text=True)
        assert r.returncode == 1 and want in r.stderr, (where, r.stderr)
    # The daemon lives on, a good import works and clears the error.
    subprocess.run([POG, "import", mount.path / "x", good], check=True)
    assert json.loads(subprocess.run([POG, "export", mount.path / "x"],
                                     capture_output=True, check=True)
                      .stdout)["d"] == "e"
    assert mount.status()["last_error"] == ""
    assert spooled_files(mount.proc.pid) == []


def socket_of(pool):
    return pool.parent / ("." + pool.name + ".sock")


def read_frame(sock):
    head = b""
    while not head.endswith(b"\n"):
        c = sock.recv(1)
        if not c:
            return None, None
        head += c
    kind, length = head.decode().split()
    body = b""
    while len(body) < int(length):
        body += sock.recv(int(length) - len(body))
    return kind, body.decode()


def test_no_room_for_the_document(mount):
    """A LENGTH no filesystem has room for: refused before any byte."""
    huge = 1 << 50
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_of(mount.pool)))
        s.sendall(f"import {huge} x\n".encode())
        kind, body = read_frame(s)
    assert kind == "E"
    rc, message = body.split(" ", 1)
    assert int(rc) < 0
    assert message.startswith(f"import: no room to hold the document "
                              f"({huge} bytes): {mount.pool.parent}: "), message
    fd = os.open(mount.path / ".pog" / "ctl", os.O_RDWR)
    try:
        try:
            os.write(fd, f"import {huge} x\n".encode())
            raise AssertionError("the write succeeded")
        except OSError as e:
            assert e.errno in (28, 27)  # ENOSPC, EFBIG
    finally:
        os.close(fd)
    assert mount.status()["last_error"].startswith("import: no room")
    daemon_alive(mount)


# A client that sends part of a document, says so, and waits to be killed.
PARTIAL_SOCKET = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"import 100000000 x\n")
assert s.recv(4) == b"G 0\n"
s.sendall(b'{"a": "' + b"z" * (8 << 20))
print("sent", flush=True)
time.sleep(600)
"""

PARTIAL_CTL = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b"import 100000000 y\n" + b'{"a": "' + b"z" * (1 << 20))
print("sent", flush=True)
time.sleep(600)
"""


def killed_mid_send(mount, script, target):
    p = subprocess.Popen([sys.executable, "-c", script, str(target)],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "sent\n"
        # The daemon holds the part in an unlinked file...
        deadline = time.monotonic() + 10
        while not spooled_files(mount.proc.pid):
            assert time.monotonic() < deadline, "no spool seen"
            time.sleep(0.05)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
    # ... and lets it go with the client.
    deadline = time.monotonic() + 10
    while spooled_files(mount.proc.pid):
        assert time.monotonic() < deadline, spooled_files(mount.proc.pid)
        time.sleep(0.05)


def test_a_client_killed_mid_send_imports_nothing(mount):
    killed_mid_send(mount, PARTIAL_SOCKET, socket_of(mount.pool))
    assert not (mount.path / "x").exists()
    assert mount.status()["staged"] == 0
    assert re.match(r"import: the connection closed after \d+ of 100000000 "
                    r"bytes of the document; nothing was imported",
                    mount.status()["last_error"]), mount.status()
    daemon_alive(mount)
    killed_mid_send(mount, PARTIAL_CTL, mount.path / ".pog" / "ctl")
    assert not (mount.path / "y").exists()
    assert "nothing was imported" in mount.status()["last_error"]
    daemon_alive(mount)
    # No spool left in the pool's directory either (O_TMPFILE has no
    # name; the fallback's name is unlinked at once).
    assert not [n for n in os.listdir(mount.pool.parent)
                if n.startswith(".pogfs-import-")]
