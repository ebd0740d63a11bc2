#!/bin/bash
# run.sh - build pogfs and run every test: meson's tests in ./build, the
# mount tests (pytest, tests/mount), then the unit tests and the mount
# tests again under ASan and UBSan in ./build-asan. Ends with one line
# "N passed, N failed" and exits non-zero when anything failed. Installs
# missing Debian packages as root.
set -uo pipefail # no -e: a failing step is counted, and the rest still runs

cd "$(dirname "$0")/.." || exit 2
REPO=$PWD
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/pogfs-tests.XXXXXX")
PASSED=0
FAILED=0

# Leave nothing behind: mounts a killed test left (so rm cannot walk into
# a store), then the logs and the pools of the mount tests.
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	findmnt -rn -o TARGET 2>/dev/null | grep -F "$LOGS/" |
		while read -r target; do
			fusermount3 -u -z "$target" 2>/dev/null ||
				umount -l "$target" 2>/dev/null
		done
	rm -rf --one-file-system "$LOGS"
}
trap cleanup EXIT
MOUNT_TEST_TIMEOUT=2400 # seconds for the whole pytest run (the ASan pass takes longest)

step() { printf '\n=== %s\n' "$*"; }

# fail_step WHAT: count one failure for a step that produced no test counts.
fail_step() {
	echo "run.sh: FAILED: $*"
	FAILED=$((FAILED + 1))
}

# build DIR [MESON OPTIONS...]: configure DIR when needed, then build it.
build() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		rm -rf "$dir"
		meson setup "$dir" "$@" || return 1
	fi
	ninja -C "$dir"
}

# count_meson LOG STATUS: add meson test's summary ("Ok: N", "Fail: N", ...)
# to the totals. A non-zero STATUS with no failing test counts as one failure.
count_meson() {
	local log=$1 status=$2 ok fail
	read -r ok fail < <(awk '
		/^Ok:/               { ok += $2 }
		/^Expected Fail:/    { ok += $3 }
		/^Fail:/             { fail += $2 }
		/^Unexpected Pass:/  { fail += $3 }
		/^Timeout:/          { fail += $2 }
		END { print ok + 0, fail + 0 }' "$log")
	PASSED=$((PASSED + ok))
	FAILED=$((FAILED + fail))
	if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail_step "meson test exited with status $status"
	fi
}

# meson_test DIR [OPTIONS...]: run meson test in DIR and count the results.
meson_test() {
	local dir=$1 log status
	shift
	log="$LOGS/$(basename "$dir").log"
	meson test -C "$dir" --no-rebuild --print-errorlogs "$@" 2>&1 |
		tee "$log"
	status=${PIPESTATUS[0]}
	count_meson "$log" "$status"
}

# count_pytest LOG STATUS: add pytest's last line ("3 passed, 1 failed,
# 2 errors in 1.0s") to the totals. Status 5 means no tests were collected.
count_pytest() {
	local log=$1 status=$2 line ok fail
	[ "$status" -eq 5 ] && return 0
	line=$(grep -E '[0-9]+ (passed|failed|errors?|skipped|deselected)' \
		"$log" | tail -n 1)
	ok=$(grep -oE '(^|[^a-z])[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' |
		head -n 1)
	fail=$(grep -oE '[0-9]+ (failed|errors?)' <<<"$line" |
		awk '{ n += $1 } END { print n + 0 }')
	PASSED=$((PASSED + ${ok:-0}))
	FAILED=$((FAILED + fail))
	if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail_step "pytest exited with status $status"
	fi
}

have_mount_tests() {
	[ -n "$(find tests/mount -name 'test_*.py' -o -name '*_test.py' \
		2>/dev/null | head -n 1)" ]
}

# mount_tests DIR: the pytest mount tests with the binaries of build DIR.
mount_tests() {
	local dir=$1 log="$LOGS/pytest-$1.log" status
	if ! have_mount_tests; then
		echo "no mount tests in tests/mount"
		return 0
	fi
	POGFS_BUILD_DIR="$REPO/$dir" timeout -k 10 "$MOUNT_TEST_TIMEOUT" \
		/usr/bin/pytest-3 -q -p no:cacheprovider \
		--basetemp="$LOGS/pytest-$dir" tests/mount \
		</dev/null 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
		echo "run.sh: the mount tests took more than $MOUNT_TEST_TIMEOUT s"
	fi
	count_pytest "$log" "$status"
}

finish() {
	echo
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
}

main() {
	# shellcheck source=tools/deps.sh
	. tools/deps.sh
	step "Debian packages"
	if ! pog_install_deps; then
		fail_step "missing Debian packages"
		finish
	fi

	step "build (./build)"
	if build build; then
		step "meson test (./build)"
		meson_test build
		step "mount tests (tests/mount)"
		mount_tests build
	else
		fail_step "the build in ./build"
	fi

	step "sanitizer build (./build-asan: address, undefined)"
	if build build-asan -Db_sanitize=address,undefined -Db_lundef=false
	then
		step "meson test --suite unit (./build-asan)"
		# The 1,000 damaged copies of the normal build are about
		# libpmemobj's trust; under the sanitizers 200 find the memory
		# errors as well in a fifth of the time.
		DAMAGED_COPIES=${DAMAGED_COPIES:-200} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
			meson_test build-asan --suite unit --timeout-multiplier 3
		step "mount tests, the daemon under ASan and UBSan (./build-asan)"
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
			mount_tests build-asan
	else
		fail_step "the sanitizer build in ./build-asan"
	fi
	finish
}

main "$@"
