#!/bin/bash
# up.sh - install what is missing, build pogfs into ./build, and mount the
# default store ./pogfs.pool at ./mnt. Safe to run again.
#
# Usage: sudo tools/up.sh     (or tools/up.sh as root, or as a user once
#                              the Debian packages are installed)
# Run with sudo, it installs packages as root, then builds and mounts as
# the user who ran sudo (when /dev/fuse lets that user mount), so the
# store and the mount belong to that user.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$PWD
POOL=pogfs.pool
MNT=mnt
POG=build/tools/pog
DAEMON=build/fs/pogfs

say() { printf 'up: %s\n' "$*"; }
die() { printf 'up: %s\n' "$*" >&2; exit 1; }

# True when the user can build in the tree and mount with fusermount3.
user_can_mount() {
	local user=$1
	sudo -u "$user" test -w "$REPO" -a -r /dev/fuse -a -w /dev/fuse \
		2>/dev/null || return 1
	if [ -e build ] && ! sudo -u "$user" test -w build; then
		return 1
	fi
	[ -u "$(command -v fusermount3)" ]
}

# When started through sudo: install as root, continue as the real user.
drop_privileges() {
	local user=${SUDO_USER:-}
	if [ "$(id -u)" -ne 0 ] || [ -z "$user" ] || [ "$user" = root ]; then
		return 0
	fi
	if user_can_mount "$user"; then
		say "packages done; building and mounting as $user"
		exec sudo -u "$user" -- "$REPO/tools/up.sh" --no-deps
	fi
	say "$user cannot mount here (/dev/fuse or the tree); continuing as root"
}

build() {
	if [ ! -f build/build.ninja ]; then
		meson setup build || die "meson setup failed"
	fi
	ninja -C build || die "the build failed (see above)"
	[ -x "$POG" ] || die "$POG was not built"
}

# Prints "mounted", "stale" (daemon gone), "foreign TYPE" or "" for ./mnt.
mount_state() {
	local fstype
	fstype=$(findmnt -rn -M "$REPO/$MNT" -o FSTYPE 2>/dev/null | tail -n 1 || true)
	[ -n "$fstype" ] || return 0
	case $fstype in
	fuse*) ;;
	*) echo "foreign $fstype"; return 0 ;;
	esac
	if stat "$MNT/." >/dev/null 2>&1; then
		echo mounted
	else
		echo stale
	fi
}

make_store() {
	if [ -e "$POOL" ]; then
		say "using the existing store ./$POOL"
	else
		"$POG" mkfs "$POOL" || die "could not create ./$POOL"
	fi
}

mount_store() {
	[ -x "$DAEMON" ] || die "the daemon $DAEMON is not built yet (fs/ is still being written); the store ./$POOL is ready: mount it later with '$DAEMON $POOL $MNT'"
	[ -e /dev/fuse ] || die "/dev/fuse is missing: load the fuse module (modprobe fuse), or give the container --device /dev/fuse"
	mkdir -p "$MNT"
	"$DAEMON" "$POOL" "$MNT" || die "pogfs could not mount ./$POOL (see above)"
	for _ in $(seq 50); do
		[ "$(mount_state)" = mounted ] && return 0
		sleep 0.1
	done
	die "pogfs started but ./$MNT is not mounted"
}

# row COMMAND COMMENT: one line of the tour.
row() { printf '  %-32s # %s\n' "$1" "$2"; }

print_tour() {
	printf '\nThe store ./%s is mounted at ./%s (in %s).\n' "$POOL" "$MNT" "$REPO"
	printf 'Changes are staged until you commit them.\n\n'
	printf '  cd %s\n' "$REPO"
	row "echo hello > $MNT/greeting" "a string object"
	row "mkdir $MNT/notes" "a map"
	row "cat $MNT/.pog/changes" "what is staged"
	row "echo commit > $MNT/.pog/ctl" "make it durable (or: $POG commit $MNT MESSAGE)"
	row "echo abort > $MNT/.pog/ctl" "or throw the staged changes away"
	row "cat $MNT/.pog/status $MNT/.pog/log" "state and history"
	row "fusermount3 -u $MNT" "unmount (uncommitted changes are discarded)"
}

main() {
	if [ "${1:-}" != --no-deps ]; then
		# shellcheck source=tools/deps.sh
		. tools/deps.sh
		pog_install_deps || die "cannot install the Debian packages; run: sudo tools/up.sh"
		drop_privileges
	fi
	build
	make_store
	case $(mount_state) in
	mounted)
		say "./$MNT is already mounted"
		print_tour
		return 0
		;;
	foreign*)
		die "./$MNT has another filesystem mounted on it ($(mount_state))"
		;;
	stale)
		say "./$MNT was left mounted by a daemon that is gone; unmounting it"
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" ||
			die "cannot unmount the stale ./$MNT"
		;;
	esac
	mount_store
	say "mounted ./$POOL at ./$MNT"
	print_tour
}

main "$@"
