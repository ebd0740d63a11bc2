"""pog export MNTPATH streams from the daemon's control socket
("export-path PATH"): the same bytes as MNT/.pog/ctl's "export PATH", and
the daemon's memory stays bounded whatever the size of one string."""
import json
import os
import subprocess

from conftest import POG

DOC = ('{"$pogfs":2,"root":{"$$schema":"v1","a/b":{"$bytes":"/w=="},'
       '"count":42,"items":{"$id":1,"$value":[true,null,"x"]},'
       '"mine":{"$ref":1},"note":{"$id":2,"$value":"hi\\n"},"ratio":0.5,'
       '"same-note":{"$link":2}}}')


def pog(*args, check=True):
    r = subprocess.run([POG, *map(str, args)], capture_output=True)
    if check:
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r


def ctl_export(mount, path):
    """The answer of MNT/.pog/ctl's "export PATH" (the former way)."""
    fd = os.open(mount.path / ".pog" / "ctl", os.O_RDWR)
    try:
        os.write(fd, f"export {path}\n".encode())
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def socket_of(pool):
    return pool.parent / ("." + pool.name + ".sock")


def fill(mount, tmp_path):
    doc = tmp_path / "doc.json"
    doc.write_text(DOC)
    pog("import", mount.path / "sub", doc)
    mount.commit("sub")
    (mount.path / "sub" / "count").write_text("43\n")  # staged only
    os.setxattr(mount.path / "sub" / "count", "user.pog.type", b"int")


def test_export_through_the_socket_equals_ctl(mount, tmp_path):
    fill(mount, tmp_path)
    assert socket_of(mount.pool).exists()
    for rel in ["", "sub", "sub/items", ".pog/committed", ".pog/committed/sub"]:
        target = mount.path / rel if rel else mount.path
        out = pog("export", target, "-q").stdout
        assert out == ctl_export(mount, rel or "."), rel
    staged = json.loads(pog("export", mount.path / "sub").stdout)
    assert staged["root"]["count"] == 43
    committed = json.loads(
        pog("export", mount.path / ".pog" / "committed" / "sub").stdout)
    assert committed["root"]["count"] == 42
    assert committed["root"]["mine"] == {"$ref": 1}
    # From inside the mount, with a relative path.
    r = subprocess.run([POG, "export", "sub"], capture_output=True,
                       cwd=mount.path)
    assert r.returncode == 0 and r.stdout == ctl_export(mount, "sub")
    # A name that is not there: a clear error, nothing written.
    out = tmp_path / "none.json"
    r = pog("export", mount.path / "sub" / "nope", "-o", out, check=False)
    assert r.returncode != 0 and not out.exists()


def test_export_falls_back_to_ctl_without_a_socket(mount, tmp_path):
    fill(mount, tmp_path)
    via_socket = pog("export", mount.path / "sub").stdout
    socket_of(mount.pool).unlink()
    assert pog("export", mount.path / "sub").stdout == via_socket
    assert via_socket == ctl_export(mount, "sub")


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def exported_size(path):
    """pog export PATH through a pipe: the document's length in bytes
    (6 bytes of \\u0000 escape per zero byte: not kept on disk)."""
    r = subprocess.run(f'set -o pipefail; "{POG}" export "{path}" -q | wc -c',
                       shell=True, executable="/bin/bash",
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return int(r.stdout)


def test_export_of_sparse_files_keeps_the_daemon_small(mount):
    # Through ctl, a 64 MiB sparse file grew the daemon by 386 MiB; the
    # socket streams, so these stay under 64 MiB whatever their size.
    # The committed view: a 128 MiB file (768 MiB of JSON), committed.
    with open(mount.path / "c", "wb") as f:
        f.truncate(128 << 20)
    mount.commit("c")
    # The staged view: and a 512 MiB one, staged only.
    with open(mount.path / "big", "wb") as f:
        f.truncate(512 << 20)
    for path, length in [(mount.path, (512 << 20) + (128 << 20)),
                         (mount.path / ".pog" / "committed", 128 << 20)]:
        before = peak_rss_kib(mount.proc.pid)
        size = exported_size(path)
        grown = peak_rss_kib(mount.proc.pid) - before
        assert grown < 64 * 1024, f"{path}: daemon peak RSS grew by {grown} KiB"
        # {"big":"\u0000...","c":"\u0000..."}, a \u0000 per zero byte
        assert 6 * length < size <= 6 * length + 20, (path, size)
