"""The JSON conformance corpus (tests/json-corpus) through `pog import` and
`pog export`, on a mounted store and on a pool file, and the memory of
`pog export` for a store holding a multi-GiB sparse file and a big map.

Valid documents (and implementation-defined ones named accept_*) must import
and export as the same value, compared by Python's json module (with the
numbers mapped as pogfs maps them: integers within int64 exactly, all others
as doubles); invalid ones (and refuse_*) must fail with FILE:LINE:COLUMN and
change nothing.
"""
import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import POG

CORPUS = Path(__file__).resolve().parents[1] / "json-corpus"


def pog(*args, check=True, **kw):
    r = subprocess.run([POG, *map(str, args)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"pog {args}: {r.returncode} {r.stderr!r}")
    return r


def as_pogfs(text):
    """The value pogfs gives a document: ints beyond int64 are doubles."""
    def number(s):
        i = int(s)
        return i if -2**63 <= i < 2**63 else float(s)
    return json.loads(text, parse_int=number)


def cases(*subs):
    out = []
    for sub in subs:
        for f in sorted((CORPUS / sub).glob("*.json")):
            accept = sub == "valid" or (sub == "implementation" and
                                        f.name.startswith("accept_"))
            out.append(pytest.param(f, accept, id=f"{sub}/{f.stem}"))
    return out


ALL = cases("valid", "invalid", "implementation")


@pytest.fixture(scope="module", autouse=True)
def deep_recursion():
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    yield
    sys.setrecursionlimit(old)


def test_corpus_is_complete():
    names = {p.id for p in ALL}
    assert sum(n.startswith("valid/") for n in names) >= 50
    assert sum(n.startswith("invalid/") for n in names) >= 60
    for real in ("real_json_schema_draft07", "real_openapi", "real_geojson",
                 "real_package_json"):
        assert f"valid/{real}" in names


def test_corpus_through_the_mount(mount, tmp_path):
    """Every document under a name of a mounted store, one by one."""
    mnt = mount.path
    failures = []
    for param in ALL:
        f, accept = param.values
        name = "c_" + f.stem
        r = pog("import", mnt / name, f, check=False)
        if accept:
            if r.returncode != 0:
                failures.append(f"{f.name}: refused: {r.stderr!r}")
                continue
            # (what `pog export MNT/NAME` sends; one process less each)
            out = mount.ctl(f"export {name}\n").encode()
            want = as_pogfs(f.read_bytes().decode("utf-8-sig"))
            if as_pogfs(out) != want:
                failures.append(f"{f.name}: exports as another value: {out[:200]!r}")
            if out.startswith(b'{"$pogfs":2,"root":'):
                failures.append(f"{f.name}: a plain document exports marked")
            mount.abort()
        else:
            err = r.stderr.decode(errors="replace")
            if r.returncode == 0:
                failures.append(f"{f.name}: accepted")
            elif not re.search(re.escape(str(f)) + r":\d+:\d+: ", err):
                failures.append(f"{f.name}: no line and column: {err!r}")
            if os.path.lexists(mnt / name):
                failures.append(f"{f.name}: left {name} behind")
    assert not failures, "\n".join(failures)


# Through a pool file each `pog import` opens the pool (about a second):
# the invalid documents that say most, one by one; the valid ones at once.
POOL_INVALID = ["raw_newline_in_string", "raw_tab_in_string",
                "nul_between_tokens", "formfeed_between_tokens",
                "trailing_comma_object", "comment_line", "invalid_utf8_byte",
                "nesting_100000_arrays", "number_leading_zero", "bom_twice"]


def test_corpus_into_a_pool_file(pool, tmp_path):
    """The valid object documents merged into the root of a pool file (no
    daemon), each under a key of its own, in one document; some invalid
    ones, each refused with FILE:LINE:COLUMN."""
    parts = []
    for param in ALL:
        f, accept = param.values
        text = f.read_bytes().removeprefix(b"\xef\xbb\xbf")
        if accept and text.lstrip().startswith(b"{"):
            parts.append(b'"' + f.stem.encode() + b'": ' + text)
    whole_doc = tmp_path / "all.json"
    whole_doc.write_bytes(b"{" + b",\n".join(parts) + b"}")
    pog("import", pool, whole_doc)
    failures = []
    for name in POOL_INVALID:
        f = CORPUS / "invalid" / (name + ".json")
        r = pog("import", pool, f, check=False)
        if r.returncode == 0:
            failures.append(f"{f.name}: accepted")
        elif not re.search(re.escape(str(f)) + r":\d+:\d+: invalid JSON: ",
                           r.stderr.decode(errors="replace")):
            failures.append(f"{f.name}: no line and column: {r.stderr!r}")
    assert not failures, "\n".join(failures)
    whole = as_pogfs(pog("export", pool).stdout)
    assert whole == as_pogfs(whole_doc.read_bytes())
    schema = whole["real_json_schema_draft07"]
    assert schema["$id"] == "http://json-schema.org/draft-07/schema#"
    assert schema["properties"]["$ref"]["format"] == "uri-reference"
    assert whole["key_ref_nested"] == {"a": {"$ref": "#/x"}}
    assert whole["duplicate_keys"] == {"a": 3, "b": 2}
    assert whole["string_nul_escape"] == {"s": "a\u0000b"}


def test_old_export_needs_its_mark(pool, tmp_path):
    """A document written by the pogfs before the mark (format 1) is plain
    JSON to pog import; wrapped in {"$pogfs": 1, "root": ...} its forms
    are read as before."""
    old = ('{"items":{"$id":1,"$value":[true,null]},"mine":{"$ref":1},'
           '"$$x":"dollar","b":{"$bytes":"/w=="}}')
    (tmp_path / "old.json").write_text('{"plain": ' + old + '}')
    (tmp_path / "wrapped.json").write_text('{"$pogfs": 1, "root": {"old": ' + old + '}}')
    pog("import", pool, tmp_path / "old.json")
    pog("import", pool, tmp_path / "wrapped.json")
    out = pog("export", pool).stdout
    assert out.startswith(b'{"$pogfs":2,"root":')
    doc = json.loads(out)["root"]
    # plain: maps with "$" keys (escaped with one more "$" in the marked export)
    assert doc["plain"]["mine"] == {"$$ref": 1}
    assert doc["plain"]["$$$x"] == "dollar"
    # wrapped: a ref, a shared list, bytes
    assert doc["old"]["items"]["$value"] == [True, None]
    assert doc["old"]["mine"] == {"$ref": doc["old"]["items"]["$id"]}
    assert doc["old"]["$$x"] == "dollar"
    assert doc["old"]["b"] == {"$bytes": "/w=="}
    # and the export imports again to the same bytes
    p2 = tmp_path / "again.pool"
    subprocess.run([POG, "mkfs", str(p2), "--size", "64M"], check=True,
                   stdout=subprocess.DEVNULL)
    (tmp_path / "out.json").write_bytes(out)
    pog("import", p2, tmp_path / "out.json")
    assert pog("export", p2).stdout == out
    p2.unlink()


def child_maxrss_kib(args):
    """Run pog with stdout to /dev/null; its peak RSS in KiB."""
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.execv(POG, [POG, *map(str, args)])
    _, status, ru = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return ru.ru_maxrss


def sanitized():
    with open(POG, "rb") as f:
        return b"__asan_init" in f.read()


def test_export_memory_bounded(mount, tmp_path):
    """A 4 GiB sparse file and a map of 100,000 entries: `pog export` of the
    pool stays within 64 MiB of peak RSS (the pool's pages it reads count
    too); it used to read each file whole into memory first."""
    if sanitized():  # ASan's shadow memory and quarantine count too
        pytest.skip("sanitizer build: memory is not measured")
    mnt = mount.path
    with open(mnt / "sparse", "wb") as f:
        f.write(b"\xff")
        f.truncate(4 << 30)
    big = {f"key-{i}": i for i in range(100000)}
    (tmp_path / "big.json").write_text(json.dumps({"map": big}))
    pog("import", mnt, tmp_path / "big.json")
    mount.commit("big")
    mount.stop()
    rss = child_maxrss_kib(["export", mount.pool])
    print(f"pog export: peak RSS {rss // 1024} MiB")
    assert rss < 64 * 1024
    mount.start()
