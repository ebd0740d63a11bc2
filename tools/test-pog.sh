#!/bin/bash
# test-pog.sh - checks the pog command line on real pool files (no mount).
# Usage: tools/test-pog.sh PATH/TO/pog     (meson test registers it)
set -u

POG=$(realpath "${1:?usage: test-pog.sh PATH/TO/pog}")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pog-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0
checks=0

# expect STATUS DESCRIPTION -- COMMAND...: run it, keep stdout/stderr in
# $TMP/out and $TMP/err, and check the exit status.
expect() {
	local want=$1 what=$2 got
	shift 3
	"$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	got=$?
	checks=$((checks + 1))
	if [ "$got" -ne "$want" ]; then
		echo "FAIL: $what: exit $got, wanted $want ($*)"
		sed 's/^/    stdout: /' "$TMP/out"
		sed 's/^/    stderr: /' "$TMP/err"
		failures=$((failures + 1))
		return 1
	fi
	echo "ok: $what"
}

# check DESCRIPTION FILE REGEX: FILE has a line matching REGEX (grep -E).
check() {
	checks=$((checks + 1))
	if grep -Eq -- "$3" "$2"; then
		echo "ok: $1"
	else
		echo "FAIL: $1: no line matching '$3' in:"
		sed 's/^/    /' "$2"
		failures=$((failures + 1))
	fi
}

# one_error_line DESCRIPTION: stderr is exactly one 'pog: WHAT: WHY' line.
one_error_line() {
	checks=$((checks + 1))
	if [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q '^pog: .*: .' "$TMP/err"
	then
		echo "ok: $1: one error line"
	else
		echo "FAIL: $1: stderr is not one 'pog: WHAT: WHY' line:"
		sed 's/^/    /' "$TMP/err"
		failures=$((failures + 1))
	fi
}

# --- usage ----------------------------------------------------------------
expect 0 "pog --help" -- "$POG" --help
check "pog --help lists commands" "$TMP/out" '^ +fsck '
expect 2 "pog without a command" -- "$POG"
expect 2 "unknown command" -- "$POG" frobnicate
one_error_line "unknown command"
for cmd in mkfs info gc fsck export import commit abort status; do
	expect 0 "pog $cmd --help" -- "$POG" "$cmd" --help
	check "pog $cmd --help has a synopsis" "$TMP/out" "^ +pog $cmd "
done
expect 2 "unknown option" -- "$POG" info --bogus x.pool
one_error_line "unknown option"
expect 2 "missing operand" -- "$POG" info
one_error_line "missing operand"

# --- mkfs ------------------------------------------------------------------
P=$TMP/test.pool
expect 2 "mkfs with a bad size" -- "$POG" mkfs "$P" --size 12Q
one_error_line "mkfs bad size"
[ ! -e "$P" ] || { echo "FAIL: a bad size created a file"; failures=$((failures + 1)); }
expect 0 "mkfs --size 64M" -- "$POG" mkfs "$P" --size 64M
check "mkfs reports the pool" "$TMP/out" "created"
before=$(cksum <"$P")
expect 1 "mkfs never overwrites" -- "$POG" mkfs "$P" --size 64M
check "mkfs says the file exists" "$TMP/err" "exists"
one_error_line "mkfs over a pool"
[ "$(cksum <"$P")" = "$before" ] || { echo "FAIL: mkfs changed an existing pool"; failures=$((failures + 1)); }
echo "precious" >"$TMP/precious"
expect 1 "mkfs over an ordinary file" -- "$POG" mkfs "$TMP/precious"
check "the file is untouched" "$TMP/precious" '^precious$'
expect 1 "mkfs in a missing directory" -- "$POG" mkfs "$TMP/nodir/x.pool"
one_error_line "mkfs in a missing directory"

# --- info, gc, fsck on a fresh pool -------------------------------------------
expect 0 "info" -- "$POG" info "$P"
check "info shows the format version" "$TMP/out" '^format version: +[0-9]+$'
check "info shows the size" "$TMP/out" '^size: +[0-9.]+ [KMGT]?i?B \([0-9]+ bytes\)$'
[ "$(stat -c %s "$P")" = 67108864 ] || { echo "FAIL: --size 64M did not make a 64 MiB file"; failures=$((failures + 1)); }
check "info shows used space" "$TMP/out" '^used: '
check "info shows objects" "$TMP/out" '^objects: +[0-9]+$'
check "info shows the last commit" "$TMP/out" '^last commit: '
expect 0 "fsck of a fresh pool" -- "$POG" fsck "$P"
check "fsck says clean" "$TMP/out" ': clean$'
expect 0 "fsck --repair of a fresh pool" -- "$POG" fsck "$P" --repair
expect 0 "gc" -- "$POG" gc "$P"
check "gc reports what it freed" "$TMP/out" '^freed [0-9]+ objects'
expect 0 "fsck after gc" -- "$POG" fsck "$P"

# --- refusals ----------------------------------------------------------------
expect 1 "info of a missing file" -- "$POG" info "$TMP/missing.pool"
check "says there is no such file" "$TMP/err" "no such file"
one_error_line "info missing"
expect 2 "fsck of a missing file cannot run" -- "$POG" fsck "$TMP/missing.pool"
head -c 16777216 /dev/urandom >"$TMP/random.pool"
expect 1 "info of a file that is not a pool" -- "$POG" info "$TMP/random.pool"
check "says it is not a pool" "$TMP/err" "not a pogfs pool"
one_error_line "info not a pool"
expect 2 "fsck of a file that is not a pool" -- "$POG" fsck "$TMP/random.pool"
expect 1 "info of a directory" -- "$POG" info "$TMP"
one_error_line "info of a directory"

# A pool another process holds (as a running pogfs does) is refused.
/usr/bin/python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+b")
fcntl.lockf(f, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
' "$P" >"$TMP/locker.out" 2>&1 </dev/null &
locker=$!
for _ in $(seq 100); do
	grep -q locked "$TMP/locker.out" 2>/dev/null && break
	sleep 0.05
done
expect 1 "info of a pool in use" -- "$POG" info "$P"
check "says the pool is in use" "$TMP/err" "in use by another process"
one_error_line "info of a pool in use"
expect 2 "fsck of a pool in use cannot run" -- "$POG" fsck "$P"
kill "$locker" 2>/dev/null
wait "$locker" 2>/dev/null
expect 0 "info once the pool is free again" -- "$POG" info "$P"

# --- mount commands away from a mount ---------------------------------------
mkdir "$TMP/notmnt"
for cmd in commit abort status; do
	expect 1 "$cmd on a plain directory" -- "$POG" "$cmd" "$TMP/notmnt"
	check "$cmd says it is not a mount" "$TMP/err" "not a pogfs mount"
	one_error_line "$cmd on a plain directory"
done
# A failing ctl write reports the errno and the daemon's last_error. A
# stand-in mount: ctl is /dev/full (writes fail with ENOSPC).
mkdir -p "$TMP/fakemnt/.pog"
ln -s /dev/full "$TMP/fakemnt/.pog/ctl"
echo '{"commit_id": 7, "last_error": "pool is full"}' >"$TMP/fakemnt/.pog/status"
expect 1 "a failed commit" -- "$POG" commit "$TMP/fakemnt" a message
check "the failure has errno and reason" "$TMP/err" \
	"^pog: commit .*fakemnt: No space left on device: pool is full\$"
one_error_line "a failed commit"
expect 0 "status of the stand-in" -- "$POG" status "$TMP/fakemnt"
check "status prints .pog/status" "$TMP/out" '"commit_id": 7'
expect 1 "status of a missing directory" -- "$POG" status "$TMP/nowhere"
one_error_line "status missing"

# --- a pool of a newer format is refused -------------------------------------
N=$TMP/newer.pool
expect 0 "mkfs for the format test" -- "$POG" mkfs "$N" --size 64M
/usr/bin/python3 - "$N" <<'PY'
import sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read(64 << 20))
at = data.find(b"POGPOOL1")
assert at >= 0, "superblock magic not found"
data[at + 8:at + 12] = (99).to_bytes(4, "little")  # format_version
with open(path, "r+b") as f:
    f.write(data)
PY
expect 1 "a newer format is refused" -- "$POG" info "$N"
check "it says why" "$TMP/err" 'newer format'
one_error_line "newer format"

# --- export and import ------------------------------------------------------
J=$TMP/json.pool
expect 0 "mkfs for json" -- "$POG" mkfs "$J" --size 64M
printf '{"name": "pog", "n": 3, "pi": 3.25, "ok": true, "none": null,\n "list": [1, "two", {"x": []}]}\n' >"$TMP/doc.json"
expect 0 "import a plain document" -- "$POG" import "$J" "$TMP/doc.json"
expect 0 "export it" -- "$POG" export "$J"
check "export keeps types and order" "$TMP/out" '^\{"list":\[1,"two",\{"x":\[\]\}\],"n":3,"name":"pog","none":null,"ok":true,"pi":3.25\}$'
expect 0 "export gzip to a file" -- "$POG" export "$J" -o "$TMP/out.json.gz"
expect 0 "mkfs for the copy" -- "$POG" mkfs "$TMP/copy.pool" --size 64M
expect 0 "import the gzip file" -- "$POG" import "$TMP/copy.pool" "$TMP/out.json.gz"
expect 0 "export the copy" -- "$POG" export "$TMP/copy.pool" -o "$TMP/copy.json"
checks=$((checks + 1))
if zcat "$TMP/out.json.gz" | cmp -s - "$TMP/copy.json"; then
	echo "ok: export, import, export is identical"
else
	echo "FAIL: export, import, export differs"
	failures=$((failures + 1))
fi
printf '{"a": 1,\n "b": [1, 2,, 3]}\n' >"$TMP/bad.json"
expect 1 "bad JSON is refused" -- "$POG" import "$TMP/copy.pool" "$TMP/bad.json"
check "bad JSON names line and column" "$TMP/err" '^pog: import: .*bad.json:2:[0-9]+: '
one_error_line "bad JSON"
expect 0 "nothing of it applied" -- "$POG" export "$TMP/copy.pool" -o "$TMP/after.json"
checks=$((checks + 1))
if cmp -s "$TMP/copy.json" "$TMP/after.json"; then
	echo "ok: a refused import changes nothing"
else
	echo "FAIL: a refused import changed the store"
	failures=$((failures + 1))
fi
expect 1 "import of a missing file" -- "$POG" import "$J" "$TMP/none.json"
one_error_line "import of a missing file"

echo "$((checks - failures)) of $checks checks passed"
[ "$failures" -eq 0 ]
