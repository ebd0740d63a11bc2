# deps.sh - the Debian packages pogfs needs, and a function that installs
# the missing ones. Sourced by tools/up.sh, tests/run.sh and .ci/run.

# Build: compiler, meson, libraries. Run: fuse3 (fusermount3). Tests:
# cmocka, pytest, rsync, attr (setfattr/getfattr), sqlite3 (benchmarks),
# bash-completion (the completion test), and the tools the mount tests
# edit and back up with: vim, nano, tar (sed and cp are essential).
POG_DEPS=(
	gcc libc6-dev meson ninja-build pkg-config
	libfuse3-dev fuse3 libpmemobj-dev zlib1g-dev libcjson-dev
	libcmocka-dev python3-pytest rsync attr sqlite3 libsqlite3-dev
	bash-completion vim nano sed tar findutils
)

# Print the packages of POG_DEPS that are not installed, one per line.
pog_missing_deps() {
	local package
	for package in "${POG_DEPS[@]}"; do
		if [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" \
			2>/dev/null)" != installed ]; then
			echo "$package"
		fi
	done
}

# Install what is missing (apt-get update first, only then). Needs root
# when something is missing. Returns non-zero, with a message on stderr,
# when it cannot.
pog_install_deps() {
	local missing
	if ! command -v dpkg-query >/dev/null; then
		echo "pogfs: not a Debian system (no dpkg-query); install by hand: ${POG_DEPS[*]}" >&2
		return 1
	fi
	missing=$(pog_missing_deps | tr '\n' ' ')
	missing=${missing% }
	if [ -z "$missing" ]; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ]; then
		echo "pogfs: missing Debian packages: $missing; run as root (sudo) to install them" >&2
		return 1
	fi
	echo "pogfs: installing Debian packages: $missing"
	if ! DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null; then
		echo "pogfs: apt-get update failed" >&2
		return 1
	fi
	# shellcheck disable=SC2086 # the list is meant to split into words
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $missing </dev/null; then
		echo "pogfs: apt-get could not install: $missing" >&2
		return 1
	fi
}
