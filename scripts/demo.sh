#!/usr/bin/env bash
# make demo: wagate serve against wagate mock, with a demo session paired by the mock's
# "phone", so a newcomer without a phone sees it work. Everything on loopback; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${WAGATE_BIN:-build/wagate}
DEMO=${DEMO_DIR:-var/demo}
MOCK_LISTEN=127.0.0.1:8081
MOCK_CONTROL=127.0.0.1:8082
API=127.0.0.1:8080
KEY=demo-api-key-change-me
mkdir -p "$DEMO"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$BIN" mock --listen $MOCK_LISTEN --control $MOCK_CONTROL --root-key-file "$DEMO/mock-root.key" \
	--state "$DEMO/mock-state.json" >"$DEMO/mock.out" 2>"$DEMO/mock.log" &
pids+=($!)
for _ in $(seq 50); do grep -q '^root-pubkey' "$DEMO/mock.out" 2>/dev/null && break; sleep 0.1; done
ROOT=$(awk '/^root-pubkey/{print $2}' "$DEMO/mock.out")

WAGATE_DATABASE=sqlite:$DEMO/wagate.db WAGATE_LISTEN=$API WAGATE_API_KEY=$KEY \
	WAGATE_WA_URL=ws://$MOCK_LISTEN/ws/chat WAGATE_WA_ROOT_PUBKEY=$ROOT \
	"$BIN" serve 2>"$DEMO/serve.log" &
pids+=($!)
for _ in $(seq 50); do curl -sf "http://$API/health" >/dev/null 2>&1 && break; sleep 0.1; done

api() { curl -sf -H "x-api-key: $KEY" -H 'content-type: application/json' "$@"; }
existing=$(api "http://$API/sessions" | grep -o '"sessionId":"[^"]*"' | head -1 | cut -d'"' -f4 || true)
if [ -z "$existing" ]; then
	id=$(api -X POST "http://$API/sessions" -d '{"sessionName":"primary"}' | grep -o '"sessionId":"[^"]*"' | cut -d'"' -f4)
	echo "demo: created session $id; the mock's phone scans its QR code..."
	qr=""
	for _ in $(seq 50); do
		qr=$(api "http://$API/sessions/$id/qr" 2>/dev/null | sed -n 's/.*"qr":"\([^"]*\)".*/\1/p' || true)
		[ -n "$qr" ] && break
		sleep 0.1
	done
	curl -sf -X POST "http://$MOCK_CONTROL/scan" -d "{\"qr\":\"$qr\",\"phone\":\"27821234567\"}" >/dev/null
	for _ in $(seq 50); do
		api "http://$API/sessions/$id" | grep -q '"connectionStatus":"connected"' && break
		sleep 0.1
	done
fi
cat <<MSG

wagate is running against the mock WhatsApp server, with a paired demo session.
  health:       curl http://$API/health
  details:      curl -H 'x-api-key: $KEY' http://$API/health/deep
  sessions:     curl -H 'x-api-key: $KEY' http://$API/sessions
  break it:     curl -X POST http://$MOCK_CONTROL/connections/all/kill      (watch it reconnect)
  logs:         $DEMO/serve.log, $DEMO/mock.log
Ctrl-C stops both.
MSG
curl -s "http://$API/health"; echo
wait
