#!/bin/sh
# Echo throughput, side by side in one VM run: sctp-user run (XDP attached, the join fed)
# against the textbook blocking echo loop, 1 KiB messages, 1 and 16 associations.
set -eu
BIN="$PWD/target/release/sctp-user"
TEXTBOOK="$PWD/target/release/textbook-echo"
CLI=sxb-cli-$$
SRV=sxb-srv-$$
LOG=$(mktemp)
cleanup() {
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$CLI"; ip netns add "$SRV"
ip link add sxb0 netns "$CLI" type veth peer name sxb1 netns "$SRV"
ip -n "$CLI" addr add 198.18.0.1/24 dev sxb0; ip -n "$SRV" addr add 198.18.0.2/24 dev sxb1
for ns in "$CLI" "$SRV"; do ip -n "$ns" link set lo up; done
ip -n "$CLI" link set sxb0 up; ip -n "$SRV" link set sxb1 up

measure() { # name, associations
    timeout 300 ip netns exec "$CLI" "$BIN" client --connect 198.18.0.2:36412 --associations "$2" --size 1024 \
        --messages "$MESSAGES" --window 8 --format json \
        | python3 -c "import json,sys; d=json.load(sys.stdin); print('$1', $2, round(d['messages_per_s']), d['latency_us']['p50'], d['latency_us']['p99'], sep='\t')"
}
start() { # ready-word, command...
    word=$1; shift
    : >"$LOG"
    ip netns exec "$SRV" "$@" >"$LOG" 2>&1 &
    SERVER=$!
    for _ in $(seq 300); do grep -q "$word" "$LOG" && return; sleep 0.2; done
    cat "$LOG"; exit 1
}
stop() { kill -INT "$SERVER"; timeout 30 sh -c "while kill -0 $SERVER 2>/dev/null; do sleep 0.2; done" || kill -9 "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }

MESSAGES=${MESSAGES:-2000}
echo "server	associations	messages/s	p50_us	p99_us"
for round in $(seq "${ROUNDS:-1}"); do
    start attached "$BIN" run --no-pin --iface sxb1 --listen 198.18.0.2:36412
    measure sctp-user 1; measure sctp-user 16
    stop
    start listening "$TEXTBOOK" 198.18.0.2:36412
    measure textbook 1; measure textbook 16
    stop
    # The same loop with the same XDP program on the interface: the echo servers alone.
    ip netns exec "$SRV" "$BIN" run --no-pin --no-metrics --no-echo --iface sxb1 >/dev/null 2>&1 &
    XDP=$!
    sleep 5
    start listening "$TEXTBOOK" 198.18.0.2:36412
    measure textbook+xdp 1; measure textbook+xdp 16
    stop
    kill -INT "$XDP"; wait "$XDP" || true
done
