"""Installing: `meson install --destdir`, the installed programs, man pages and
bash completion, and mounting through mount(8) and fstab lines.

The fstab tests run in a private mount namespace (unshare -m) with a scratch
fstab (mount -T, or bound over /etc/fstab inside the namespace only), and
put the installed helpers where mount(8) looks (/sbin) with read-only
overlays that exist only in that namespace: the machine's files are never
touched.
"""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD, POG, mkfs

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="mount(8) and unshare need root")


def build_option(name):
    out = subprocess.run(["meson", "introspect", str(BUILD), "--buildoptions"],
                         check=True, capture_output=True, text=True).stdout
    for option in json.loads(out):
        if option["name"] == name:
            return option["value"]
    raise KeyError(name)


def under(prefix, directory):
    return directory if directory.startswith("/") else prefix + "/" + directory


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """meson install into a DESTDIR; the paths of what it installed."""
    if not shutil.which("meson") or not (BUILD / "meson-info").is_dir():
        pytest.skip("no meson build directory to install from")
    dest = tmp_path_factory.mktemp("destdir")
    subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir",
                    str(dest), "--no-rebuild", "--quiet"], check=True,
                   stdout=subprocess.DEVNULL)
    prefix = build_option("prefix")
    paths = {
        "dest": dest,
        "bindir": Path(str(dest) + under(prefix, build_option("bindir"))),
        "sbindir": Path(str(dest) + under(prefix, build_option("sbindir"))),
        "mandir": Path(str(dest) + under(prefix, build_option("mandir"))),
        "datadir": Path(str(dest) + under(prefix, build_option("datadir"))),
    }
    paths["pog"] = paths["bindir"] / "pog"
    paths["pogfs"] = paths["bindir"] / "pogfs"
    return paths


def wait_unmounted_and_free(pool, timeout=30):
    """After an unmount the daemon collects garbage, then lets go."""
    sock = pool.parent / ("." + pool.name + ".sock")
    deadline = time.monotonic() + timeout
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sock.exists(), "the daemon did not exit"


def test_install_puts_everything_in_place(installed):
    for name in ("pog", "pogfs"):
        assert os.access(installed["bindir"] / name, os.X_OK)
    for helper in ("mount.pogfs", "mount.fuse.pogfs"):
        link = installed["sbindir"] / helper
        assert link.is_symlink()
        assert link.resolve() == installed["pogfs"].resolve()
    man = installed["mandir"]
    for page in ("man8/pogfs.8", "man1/pog.1", "man8/mount.pogfs.8",
                 "man8/mount.fuse.pogfs.8"):
        assert (man / page).is_file(), page
    completion = installed["datadir"] / "bash-completion" / "completions" / "pog"
    assert completion.is_file()


@pytest.mark.parametrize("page", ["man8/pogfs.8", "man1/pog.1"])
def test_man_pages_render_without_warnings(installed, page):
    if not shutil.which("man"):
        pytest.skip("man is not installed")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    r = subprocess.run(["man", "--warnings", "-l", str(installed["mandir"] / page)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    text = r.stdout
    assert "SYNOPSIS" in text and "DESCRIPTION" in text
    assert ("fuse.pogfs" in text) if page.endswith(".8") else ("pog fsck" in text)


def test_bash_completion(installed, tmp_path):
    library = Path("/usr/share/bash-completion/bash_completion")
    if not library.exists():
        pytest.skip("bash-completion is not installed")
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "a.pool").write_text("")
    (tmp_path / "sub").mkdir()
    script = r'''
. /usr/share/bash-completion/bash_completion
. "$1"
cd "$2"
complete_line() {
    COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}
    read -ra COMP_WORDS <<<"$1"
    [[ $1 == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
    _pog
    printf '%s\n' "${COMPREPLY[*]}"
}
complete_line "pog ex"
complete_line "pog fsck --"
complete_line "pog import a.pool "
complete_line "pog status "
complete -p pog
'''
    completion = installed["datadir"] / "bash-completion" / "completions" / "pog"
    out = subprocess.run(["bash", "-c", script, "bash", str(completion),
                          str(tmp_path)], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    assert out[0] == "export"
    assert set(out[1].split()) == {"--repair", "--quiet", "--help"}
    assert set(out[2].split()) == {"data.json", "sub"}
    assert out[3] == "sub"
    assert out[4] == "complete -F _pog pog"


def test_installed_programs_run(installed, tmp_path):
    pog, pogfs = str(installed["pog"]), str(installed["pogfs"])
    for program in (pog, pogfs):
        r = subprocess.run([program, "--version"], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.split()[0] in ("pog", "pogfs")
        r = subprocess.run([program, "--help"], capture_output=True, text=True)
        assert r.returncode == 0 and "usage" in (r.stdout + r.stderr).lower() \
            or "SYNOPSIS" in r.stdout
    pool = tmp_path / "inst.pool"
    subprocess.run([pog, "mkfs", str(pool), "--size", "64M"], check=True,
                   stdout=subprocess.DEVNULL)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # The helper as mount(8) runs it: fstab options pogfs must ignore.
    helper = str(installed["sbindir"] / "mount.pogfs")
    subprocess.run([helper, str(pool), str(mnt), "-o",
                    "rw,nofail,noauto,user,_netdev,x-systemd.automount,comment=x"],
                   check=True, timeout=30)
    try:
        assert os.path.ismount(mnt)
        fields = [l.split() for l in open("/proc/self/mounts")
                  if l.split()[1] == str(mnt)][0]
        assert fields[0] == str(pool) and fields[2] == "fuse.pogfs"
        (mnt / "hello").write_text("hi\n")
        subprocess.run([pog, "commit", str(mnt), "installed"], check=True,
                       stdout=subprocess.DEVNULL)
        info = subprocess.run([pog, "info", str(pool)], check=True,
                              capture_output=True, text=True).stdout
        assert "last commit:     2" in info and str(mnt) in info
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])
    wait_unmounted_and_free(pool)
    out = subprocess.run([pog, "export", str(pool)], check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == {"hello": "hi\n"}
    # mount -f (fake): checks, mounts nothing.
    subprocess.run([helper, str(pool), str(mnt), "-f", "-o", "rw"], check=True)
    assert not os.path.ismount(mnt)
    r = subprocess.run([helper, str(pool)], capture_output=True, text=True)
    assert r.returncode != 0 and "usage" in r.stderr
    pool.unlink()


NAMESPACE_SCRIPT = r'''
set -eu
D_BIN=$1 D_SBIN=$2 WORK=$3
cleanup() {
    for m in "$WORK"/m*; do
        mountpoint -q "$m" && umount -l "$m"
    done
    return 0
}
trap cleanup EXIT
not_mounted() {
    if mountpoint -q "$1"; then echo "$1 is mounted" >&2; return 1; fi
}
# The installed programs where mount(8) looks, in this namespace only.
mount -t overlay overlay -o "lowerdir=$D_BIN:/usr/bin" /usr/bin
mount -t overlay overlay -o "lowerdir=$D_SBIN:/usr/sbin" /usr/sbin
'''


def in_namespace(installed, work, body, check=True):
    script = NAMESPACE_SCRIPT + body
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "bash",
                        "-c", script, "bash", str(installed["bindir"]),
                        str(installed["sbindir"]), str(work)],
                       capture_output=True, text=True, timeout=180)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


@pytest.fixture
def work():
    """A directory others may enter (the user-mount test runs as nobody)."""
    d = Path(tempfile.mkdtemp(prefix="pogfs-fstab."))
    d.chmod(0o755)
    yield d
    for p in d.glob("m*"):
        if os.path.ismount(p):
            subprocess.run(["umount", "-l", str(p)])
    shutil.rmtree(d, ignore_errors=True)


def pools(work, *names):
    for name in names:
        mkfs(work / f"{name}.pool", "64M")
        (work / f"m{name}").mkdir()


@needs_root
def test_fstab_and_mount_t(installed, work):
    if not shutil.which("unshare"):
        pytest.skip("unshare is not installed")
    pools(work, "a", "b", "c", "d")
    w = str(work)
    (work / "fstab").write_text(
        f"{w}/a.pool {w}/ma fuse.pogfs defaults,nofail 0 0\n"
        f"{w}/b.pool {w}/mb fuse.pogfs noauto,nofail,x-systemd.automount,_netdev 0 0\n"
        f"{w}/c.pool {w}/mc fuse.pogfs noauto,user 0 0\n")
    body = r'''
fstab=$WORK/fstab
mount -T "$fstab" -a                       # what boot does: a only (noauto)
findmnt -n -o FSTYPE,SOURCE "$WORK/ma"
not_mounted "$WORK/mb"
not_mounted "$WORK/mc"
echo one > "$WORK/ma/x"
pog commit "$WORK/ma" fstab
mount -T "$fstab" "$WORK/mb"               # by name: noauto lines too
findmnt -n -o FSTYPE,SOURCE "$WORK/mb"
# What systemd's mount unit runs for the x-systemd.automount line.
umount "$WORK/mb"
while [ -e "$WORK/.b.pool.sock" ]; do sleep 0.05; done
mount "$WORK/b.pool" "$WORK/mb" -t fuse.pogfs -o noauto,nofail,x-systemd.automount,_netdev
findmnt -n -o FSTYPE,SOURCE "$WORK/mb"
# mount -t with an explicit type, and -o ro.
mount -t fuse.pogfs -o ro "$WORK/d.pool" "$WORK/md"
findmnt -n -o FSTYPE,OPTIONS "$WORK/md" | grep -q '^fuse.pogfs ro,'
pog info "$WORK/d.pool" | grep '^mounted:'
pog fsck "$WORK/d.pool" | tail -n 1
# The short type name finds /sbin/mount.pogfs.
mount -t pogfs "$WORK/c.pool" "$WORK/mc"
findmnt -n -o FSTYPE,SOURCE "$WORK/mc"
umount "$WORK/ma" "$WORK/mb" "$WORK/md" "$WORK/mc"
'''
    r = in_namespace(installed, work, body)
    lines = r.stdout.splitlines()
    assert lines[0] == f"fuse.pogfs {w}/a.pool"
    assert f"fuse.pogfs {w}/b.pool" in lines
    assert any(l.startswith("mounted:         at " + w + "/md") for l in lines)
    assert lines[-1] == f"fuse.pogfs {w}/c.pool"
    assert lines[-2].endswith(": clean")
    # Nothing leaked out of the namespace, and the commit made it.
    assert not os.path.ismount(work / "ma")
    wait_unmounted_and_free(work / "a.pool")
    out = subprocess.run([POG, "export", str(work / "a.pool")], check=True,
                         capture_output=True, text=True).stdout
    assert json.loads(out) == {"x": "one\n"}


@needs_root
def test_fstab_user_mount(installed, work):
    """The `user` option: an ordinary user mounts and unmounts by name, as
    sshfs documents it. /etc/fstab is replaced in the namespace only."""
    if not shutil.which("unshare") or not shutil.which("setpriv"):
        pytest.skip("unshare or setpriv is not installed")
    os.chown(work, 65534, 65534)  # the pool and mount point are theirs
    w = str(work)
    (work / "fstab").write_text(f"{w}/u.pool {w}/mu fuse.pogfs noauto,user 0 0\n")
    # Debian's udev makes /dev/fuse 0666; containers often leave it 0600,
    # where no user can mount FUSE at all. Give the namespace a 0666 node
    # of the same device (the machine's /dev/fuse stays as it is).
    fuse_dev = ""
    if os.stat("/dev/fuse").st_mode & 0o006 != 0o006:
        os.mknod(work / "fuse", 0o666 | stat.S_IFCHR, os.makedev(10, 229))
        (work / "fuse").chmod(0o666)
        fuse_dev = 'mount --bind "$WORK/fuse" /dev/fuse\n'
    body = fuse_dev + r'''
mount --bind "$WORK/fstab" /etc/fstab
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_nobody pog mkfs "$WORK/u.pool" --size 64M >/dev/null
as_nobody mkdir "$WORK/mu"
as_nobody mount "$WORK/mu"
findmnt -n -o FSTYPE,SOURCE "$WORK/mu"
as_nobody sh -c 'echo mine > "$1/f" && stat -c %u "$1/f"' sh "$WORK/mu"
as_nobody umount "$WORK/mu"
not_mounted "$WORK/mu"
'''
    r = in_namespace(installed, work, body)
    lines = r.stdout.splitlines()
    assert lines[0] == f"fuse.pogfs {w}/u.pool"
    assert lines[1] == "65534"


def test_systemd_fstab_generator_reads_the_line(tmp_path):
    """systemd is not running here: check only that its fstab generator
    turns an x-systemd.automount line into a .mount and an .automount unit
    whose options are the ones the tests above mount with."""
    generator = Path("/lib/systemd/system-generators/systemd-fstab-generator")
    if not generator.exists():
        pytest.skip("systemd's fstab generator is not installed")
    fstab = tmp_path / "fstab"
    fstab.write_text("/srv/data.pool /srv/data fuse.pogfs "
                     "noauto,nofail,x-systemd.automount 0 0\n")
    out = tmp_path / "units"
    out.mkdir()
    subprocess.run([str(generator), str(out), str(out), str(out)], check=True,
                   env=dict(os.environ, SYSTEMD_FSTAB=str(fstab),
                            SYSTEMD_PROC_CMDLINE=""),
                   capture_output=True)
    mount_unit = (out / "srv-data.mount").read_text()
    assert "Type=fuse.pogfs" in mount_unit
    assert "Options=noauto,nofail,x-systemd.automount" in mount_unit
    assert "Where=/srv/data" in (out / "srv-data.automount").read_text()


def test_readiness_notification(pool, tmp_path):
    """Type=notify: with $NOTIFY_SOCKET set, pogfs -f sends READY=1 and its
    pid once the mount is up (what systemd waits for)."""
    import socket
    from conftest import POGFS
    address = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(30)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    proc = subprocess.Popen([POGFS, str(pool), str(mnt), "-f"],
                            env=dict(os.environ, NOTIFY_SOCKET=address),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        message = listener.recv(4096).decode()
        assert os.path.ismount(mnt)  # ready means mounted
        assert message.splitlines() == ["READY=1", f"MAINPID={proc.pid}"]
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)])
        proc.wait(timeout=60)
        listener.close()
