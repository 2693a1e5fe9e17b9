#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl, listening only
# on a Unix socket in DIR (no TCP port, no system service).
#   tests/pg/cluster.sh start DIR   prints the URL of database "wagate"
#   tests/pg/cluster.sh stop DIR    (fast shutdown; the data stays)
#   tests/pg/cluster.sh resume DIR  starts a stopped cluster again, data kept
#   tests/pg/cluster.sh url DIR [DB]
# As root, the server runs as the "postgres" user (initdb refuses root).
set -euo pipefail
cmd=${1:?usage: cluster.sh start|stop|resume|url DIR}
dir=$(realpath -m "${2:?usage: cluster.sh start|stop|resume|url DIR}")
db=${3:-wagate}

bindir=
for d in /usr/lib/postgresql/*/bin; do
	[ -x "$d/initdb" ] && bindir=$d
done
if [ -z "$bindir" ]; then
	echo "cluster.sh: PostgreSQL's server is not installed (Debian: apt-get install postgresql)" >&2
	exit 1
fi

as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

url() {
	# The socket directory goes in the host parameter, percent-encoded.
	local host
	host=$(printf '%s' "$dir" | sed 's|/|%2F|g')
	echo "postgresql://wagate@${host}/$1"
}

case $cmd in
start)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" -eq 0 ] && chown postgres "$dir"
	as_owner "$bindir/initdb" -D "$dir/data" -U wagate -A trust --no-sync -E UTF8 \
		--locale=C >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
	# fsync off: a test cluster holds nothing worth a disk flush.
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
		start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
	as_owner "$bindir/createdb" -h "$dir" -U wagate "$db"
	url "$db"
	;;
resume)
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
		start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
	;;
stop)
	if [ -f "$dir/data/postmaster.pid" ]; then
		as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
	fi
	;;
url)
	url "$db"
	;;
*)
	echo "usage: cluster.sh start|stop|resume|url DIR" >&2
	exit 1
	;;
esac
