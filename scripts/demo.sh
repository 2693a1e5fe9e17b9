#!/usr/bin/env bash
# make demo: wagate serve against wagate mock, with a demo session paired by the mock's
# "phone", so a newcomer without a phone sees it work. Everything on loopback by default; Ctrl-C stops both.
#
# Environment:
#   WAGATE_LISTEN      HOST:PORT of the API and the dashboard (default 127.0.0.1:8080)
#   DEMO_MOCK_LISTEN   HOST:PORT of the mock WhatsApp server (default 127.0.0.1:8081)
#   DEMO_MOCK_CONTROL  HOST:PORT of the mock's control API (default 127.0.0.1:8082)
#   WAGATE_API_KEY     the key to sign in with (default: a random one kept in $DEMO_DIR/api-key)
#   WAGATE_BIN         the binary (default build/wagate)
#   DEMO_DIR           database, keys and logs (default var/demo)
# A default port that is taken is replaced by a free one (a demo should just start); a port you chose that is
# taken is an error, since you presumably chose it for a reason. Port 0 means "pick a free one".
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${WAGATE_BIN:-build/wagate}
DEMO=${DEMO_DIR:-var/demo}

say() { printf 'demo: %s\n' "$*" >&2; }
die() {
	say "$@"
	exit 1
}

# The last lines of a server's log, so a failure explains itself without a second command.
show_log() {
	if [ -s "$1" ]; then
		printf -- '--- last lines of %s:\n' "$1" >&2
		tail -n 15 "$1" >&2
		printf -- '---\n' >&2
	else
		say "($1 is empty)"
	fi
}

command -v "$BIN" >/dev/null || die "$BIN is missing or not executable: run make first, or set WAGATE_BIN"
for tool in python3 curl; do
	command -v "$tool" >/dev/null || die "$tool is needed (apt-get install $tool)"
done

# Exit 0 when HOST:PORT can be bound now; otherwise print why. SO_REUSEADDR as wagate sets it, so a port
# held only by old TIME_WAIT connections counts as free, while one that something listens on (on that address
# or on the wildcard) does not. Binding tells more than connecting: it also catches a listener on another
# address of the same port, and an address that is not this machine's.
can_bind() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1].strip("[]"), int(sys.argv[2])
try:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
except OSError as e:
    print(e.strerror or e)
    sys.exit(1)
PY
}

# A port the kernel considers free on HOST: bind port 0 and read it back. It is released before wagate binds
# it; another program taking it in that moment is unlikely, and would show as a start failure with its log.
free_port() {
	python3 - "$1" <<'PY'
import socket, sys
host = sys.argv[1].strip("[]")
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((host, 0))
print(s.getsockname()[1])
PY
}

# pick VAR DEFAULT WHAT: sets $picked to the HOST:PORT to listen on for VAR. Sets a global rather than
# printing, because die must end the script (not a command substitution) and $taken must persist.
taken=" "
pick() {
	local var=$1 def=$2 what=$3 given=${!1:-} addr host port why
	addr=${given:-$def}
	host=${addr%:*} port=${addr##*:}
	if [[ $addr != *:* || -z $host || ! $port =~ ^[0-9]{1,5}$ ]] || ((10#$port > 65535)); then
		die "$var=$addr: expected HOST:PORT, e.g. 127.0.0.1:8080"
	fi
	port=$((10#$port))
	if ((port != 0)); then
		if [[ $taken == *" $port "* ]]; then
			why="the demo already uses it for another server"
		elif why=$(can_bind "$host" "$port"); then
			picked=$host:$port taken+="$port "
			return
		fi
		if [ -n "$given" ]; then
			local hint=""
			[ "$why" != "Address already in use" ] || hint=", or stop what holds it (ss -ltnp 'sport = :$port' shows it)"
			die "$var=$addr ($what) cannot be used: $why. Set $var to another HOST:PORT (port 0 picks a free one)$hint."
		fi
	fi
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		port=$(free_port "$host") || die "$var: cannot find a free port on $host"
		[[ $taken == *" $port "* ]] || break
	done
	if [ -z "$given" ]; then
		say "$addr ($what) is taken ($why); using $host:$port instead (set $var to choose)"
	fi
	picked=$host:$port taken+="$port "
}

# Where a client connects to reach a listen address: a wildcard is reached on loopback.
connect_addr() {
	case ${1%:*} in
	0.0.0.0) echo "127.0.0.1:${1##*:}" ;;
	'[::]') echo "[::1]:${1##*:}" ;;
	*) echo "$1" ;;
	esac
}

pick WAGATE_LISTEN 127.0.0.1:8080 "the API and dashboard"
API=$picked
pick DEMO_MOCK_LISTEN 127.0.0.1:8081 "the mock WhatsApp server"
MOCK_LISTEN=$picked
pick DEMO_MOCK_CONTROL 127.0.0.1:8082 "the mock's control API"
MOCK_CONTROL=$picked
BASE=http://$(connect_addr "$API")
MOCK_WS=ws://$(connect_addr "$MOCK_LISTEN")/ws/chat
CONTROL=http://$(connect_addr "$MOCK_CONTROL")

mkdir -p "$DEMO"

# The key to sign in with. Not a fixed string: the dashboard may be reachable by others (WAGATE_LISTEN on a
# public address). Kept per demo dir so that a browser signed in stays signed in across runs of the demo.
if [ -n "${WAGATE_API_KEY:-}" ]; then
	KEY=$WAGATE_API_KEY key_note="from WAGATE_API_KEY"
else
	keyfile=$DEMO/api-key
	if [ ! -s "$keyfile" ]; then
		(
			umask 077 # before the file exists: only you can read the key, from the start
			{ openssl rand -hex 16 2>/dev/null || od -An -vN16 -tx1 /dev/urandom | tr -d ' \n'; } >"$keyfile.new"
		)
		mv "$keyfile.new" "$keyfile"
	fi
	chmod 600 "$keyfile"
	KEY=$(tr -d ' \r\n' <"$keyfile")
	key_note="kept in $keyfile"
fi
# wagate serve refuses other lengths; saying so here beats a log line after a start that failed.
((${#KEY} >= 16 && ${#KEY} <= 255)) || die "the API key ($key_note) must be 16 to 255 characters"

pids=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	trap '' INT TERM # a second Ctrl-C must not cut the cleanup short and leave a server behind
	((${#pids[@]})) || return 0
	kill -TERM "${pids[@]}" 2>/dev/null || true
	# Both stop within a second on TERM; KILL whatever still runs after 5 s rather than hang or leave it behind.
	# jobs -rp rather than kill -0: it lists only our children still running, never a reused pid.
	local left
	for _ in $(seq 50); do
		left=$(jobs -rp)
		[ -n "$left" ] || break
		sleep 0.1
	done
	# shellcheck disable=SC2086 # one pid a word
	[ -z "$left" ] || kill -KILL $left 2>/dev/null || true
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_ready NAME PID LOG CHECK...: runs CHECK every 0.1 s for 10 s while PID lives. If PID ends or the time
# runs out, says which and shows LOG, then exits (cleanup stops the other server).
wait_ready() {
	local name=$1 pid=$2 log=$3 rc=0
	shift 3
	for _ in $(seq 100); do
		"$@" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid" || rc=$?
			say "$name exited (status $rc) before it was ready"
			show_log "$log"
			exit 1
		fi
		sleep 0.1
	done
	say "$name did not become ready within 10 s"
	show_log "$log"
	exit 1
}

# Emptied first: the mock's own truncation happens after the fork, and a stale root-pubkey line from the last
# run would otherwise read as ready.
: >"$DEMO/mock.out"
"$BIN" mock --listen "$MOCK_LISTEN" --control "$MOCK_CONTROL" --root-key-file "$DEMO/mock-root.key" \
	--state "$DEMO/mock-state.json" >"$DEMO/mock.out" 2>"$DEMO/mock.log" &
mock_pid=$!
pids+=("$mock_pid")
# shellcheck disable=SC2317 # called by wait_ready
mock_ready() { grep -q '^root-pubkey' "$DEMO/mock.out"; }
wait_ready "wagate mock" "$mock_pid" "$DEMO/mock.log" mock_ready
ROOT=$(awk '/^root-pubkey/{print $2}' "$DEMO/mock.out")

WAGATE_DATABASE=sqlite:$DEMO/wagate.db WAGATE_LISTEN=$API WAGATE_API_KEY=$KEY \
	WAGATE_WA_URL=$MOCK_WS WAGATE_WA_ROOT_PUBKEY=$ROOT \
	"$BIN" serve >"$DEMO/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
# Any HTTP answer means it listens: /health may say 503 while a reused session is still connecting.
# shellcheck disable=SC2317 # called by wait_ready
serve_ready() { curl -s -o /dev/null --max-time 1 "$BASE/health"; }
wait_ready "wagate serve" "$serve_pid" "$DEMO/serve.log" serve_ready

# http METHOD PATH-OR-URL [JSON]: sets $code (000 when there was no answer) and $body.
http() {
	local url=$2 out
	[[ $url == http* ]] || url=$BASE$url
	local args=(-sS --max-time 15 -X "$1" -H "x-api-key: $KEY" -H 'content-type: application/json'
		-w '\n%{http_code}')
	if [ $# -ge 3 ]; then args+=(-d "$3"); fi
	out=$(curl "${args[@]}" "$url" 2>&1) || true
	code=${out##*$'\n'} body=${out%$'\n'*}
	body=${body%$'\n'}
}
# field NAME: the value of NAME in $body (one session object), strings unquoted; empty when absent.
field() {
	printf '%s' "$body" | sed -n -e "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" -e t -e "s/.*\"$1\":\([^,}]*\).*/\1/p" | head -n 1
}

pair_failed() {
	say "pairing the demo session failed: $*"
	if [ -n "${id:-}" ]; then
		http GET "/sessions/$id"
		local err
		err=$(field lastError)
		[ -z "$err" ] || [ "$err" = null ] || say "the session's lastError: $err"
	fi
	say "see $DEMO/serve.log and $DEMO/mock.log"
	exit 1
}

# The QR code the session shows, handed to the mock's "phone", as a person would scan it.
scan() {
	local qr=""
	for _ in $(seq 50); do
		http GET "/sessions/$id/qr"
		if [ "$code" = 200 ]; then qr=$(printf '%s' "$body" | sed -n 's/.*"qr":"\([^"]*\)".*/\1/p'); fi
		[ -n "$qr" ] && break
		sleep 0.1
	done
	[ -n "$qr" ] || pair_failed "session $id showed no QR code within 5 s (last answer $code: $body)"
	http POST "$CONTROL/scan" "{\"qr\":\"$qr\",\"phone\":\"27821234567\"}"
	[ "$code" = 200 ] || pair_failed "the mock refused the scan ($code: $body)"
}

# Returns 0 once the session is connected, 2 if it is logged out, 1 after 10 s.
wait_connected() {
	for _ in $(seq 100); do
		http GET "/sessions/$id"
		case $(field connectionStatus) in
		connected) return 0 ;;
		logged_out) return 2 ;;
		esac
		sleep 0.1
	done
	return 1
}

# A new device for session $id, then the mock's phone scans it: $1 prefixes the error, $2 is said first.
pair_again() {
	http POST "/sessions/$id/pair"
	[ "$code" = 200 ] || pair_failed "${1}POST /sessions/$id/pair answered $code: $body"
	echo "$2"
	scan
}

http GET /sessions
[ "$code" = 200 ] || pair_failed "GET /sessions answered $code: $body"
# Keys come in a fixed order (sessionId, then sessionName), so the primary session's id can be read off.
id=$(printf '%s' "$body" | grep -o '"sessionId":"[^"]*","sessionName":"primary"' | head -n 1 | cut -d'"' -f4 || true)

if [ -z "$id" ]; then
	http POST /sessions '{"sessionName":"primary"}'
	[ "$code" = 201 ] || pair_failed "POST /sessions answered $code: $body"
	id=$(field sessionId)
	echo "demo: created session $id; the mock's phone scans its QR code..."
	scan
else
	http GET "/sessions/$id"
	if [ "$(field paired)" = true ] && [ "$(field connectionStatus)" != logged_out ]; then
		echo "demo: reusing session $id"
	else
		# Paired no more (an earlier demo stopped mid-pairing, or the mock's state was removed): pair again.
		pair_again "" "demo: pairing session $id again; the mock's phone scans its QR code..."
	fi
fi
rc=0
wait_connected || rc=$?
if [ "$rc" = 2 ]; then
	# The mock no longer knows the device (its state file was reset): the stored credentials are dead.
	pair_again "session $id is logged out, and " "demo: session $id was logged out; pairing it again..."
	rc=0
	wait_connected || rc=$?
fi
[ "$rc" = 0 ] || pair_failed "session $id is not connected after 10 s (connectionStatus $(field connectionStatus))"

cat <<MSG

wagate is running against the mock WhatsApp server, with a paired demo session.
  dashboard:    $BASE/
  demo key:     $KEY
                (sign in with this key; $key_note)
  health:       curl $BASE/health
  details:      curl -H 'x-api-key: $KEY' $BASE/health/deep
  sessions:     curl -H 'x-api-key: $KEY' $BASE/sessions
  break it:     curl -X POST $CONTROL/connections/all/kill      (watch it reconnect)
  logs:         $DEMO/serve.log, $DEMO/mock.log
Ctrl-C stops both.
MSG
curl -s "$BASE/health" || true
echo

# Up until Ctrl-C, or until one of the servers stops by itself: then say which, and why.
rc=0
wait -n "${pids[@]}" || rc=$?
if [ "$rc" = 0 ]; then
	# Both exit 0 only on SIGINT or SIGTERM: someone stopped it on purpose (e.g. Ctrl-C reached it before us).
	say "a server was stopped by a signal; stopping the demo"
	exit 0
elif ! kill -0 "$serve_pid" 2>/dev/null; then
	say "wagate serve stopped (status $rc)"
	show_log "$DEMO/serve.log"
else
	say "wagate mock stopped (status $rc)"
	show_log "$DEMO/mock.log"
fi
exit 1
