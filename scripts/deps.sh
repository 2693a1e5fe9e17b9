#!/usr/bin/env bash
# Installs what building, running or testing wagate needs, and nothing when it is all present.
#   scripts/deps.sh build     Debian packages to build and run the server
#   scripts/deps.sh test      the above, plus the packages and npm modules the test suites use
# Quiet and quick when everything is already there: it asks dpkg, not the network.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-build}
build_pkgs=(gcc make cmake pkg-config libevent-dev libssl-dev libprotobuf-c-dev
	protobuf-c-compiler libsignal-protocol-c-dev libjansson-dev libqrencode-dev zlib1g-dev
	libsqlite3-dev libpq-dev libsodium-dev libsystemd-dev ca-certificates curl)
test_pkgs=(libcmocka-dev sqlite3 postgresql chromium fonts-dejavu-core wrk openssl util-linux strace e2fsprogs prometheus man-db systemd python3)

pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
# Node builds the dashboard (build) and runs the end-to-end and interop tests (test).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	sudo=""
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm modules, pinned by committed lock files. A stamp records which lock file was
# installed, so an unchanged tree costs nothing and asks no registry.
npm_ci() {
	local dir=$1 stamp=$1/node_modules/.wagate-lock
	[ -f "$dir/package-lock.json" ] || return 0
	if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
		echo "deps: npm ci in $dir"
		(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
		cp "$dir/package-lock.json" "$stamp"
	fi
}

npm_ci web
if [ "$what" = test ]; then
	npm_ci tests/interop
	npm_ci tests/browser
	npm_ci examples/nextjs
fi
