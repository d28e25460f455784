#!/bin/sh
# The end-to-end demo: two namespaces joined by a veth; in the server's, `sctp-user run`
# attaches XDP to its end and runs the one-to-many echo server; in the client's,
# `sctp-user client` drives several associations over several streams and PPIDs (S1AP 18,
# NGAP 60, Diameter 46), a quarter unordered, checking every echo. On Ctrl-C-like SIGINT
# the server shuts associations down, detaches and prints the joined report: per
# association, messages the application received against DATA chunks XDP saw, per stream
# and PPID, duplicates against the kernel's counters, and wire-to-application latency.
# Needs root and a kernel with SCTP.
set -eu
BIN="$PWD/target/release/sctp-user"
CLI=sxd-cli-$$
SRV=sxd-srv-$$
LOG=$(mktemp)
cleanup() {
    [ -n "${SERVER:-}" ] && kill "$SERVER" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT
ip netns add "$CLI"
ip netns add "$SRV"
ip link add sxd0 netns "$CLI" type veth peer name sxd1 netns "$SRV"
ip -n "$CLI" addr add 198.18.0.1/24 dev sxd0
ip -n "$SRV" addr add 198.18.0.2/24 dev sxd1
for ns in "$CLI" "$SRV"; do ip -n "$ns" link set lo up; done
ip -n "$CLI" link set sxd0 up
ip -n "$SRV" link set sxd1 up

ip netns exec "$SRV" "$BIN" run --no-pin --iface sxd1 --listen 198.18.0.2:36412 --report "${DEMO_REPORT:-/dev/null}" >"$LOG" 2>&1 &
SERVER=$!
# Loading (the verifier) can take seconds under emulation: wait for the word.
for _ in $(seq 300); do grep -q "attached" "$LOG" && break; sleep 0.2; done
grep -q "attached" "$LOG" || { cat "$LOG"; echo "demo: XDP did not attach"; exit 1; }

echo "demo: client: 8 associations x 2000 messages at 150/s each, 4 streams, PPIDs 18/60/46, 25% unordered"
ip netns exec "$CLI" "$BIN" client --connect 198.18.0.2:36412 --associations 8 --streams 4 \
    --ppid 18,60,46 --unordered 0.25 --size 200,1000 --messages 2000 --window 4 --rate 150 &
CLIENT=$!
if command -v tmux >/dev/null; then
    # What `sctp-user top` shows while the traffic runs (illustration only: never fatal).
    export TMUX_TMPDIR="${TMPDIR:-/tmp}"
    sleep 4
    if ip netns exec "$SRV" tmux new-session -d -x 110 -y 28 -s sxdtop "$BIN top"; then
        sleep 3
        echo "demo: sctp-user top, mid-run:"
        ip netns exec "$SRV" tmux capture-pane -p -t sxdtop || true
        ip netns exec "$SRV" tmux kill-session -t sxdtop || true
    fi
fi
wait "$CLIENT"
sleep 2
echo "demo: a sample of /metrics:"
ip netns exec "$SRV" python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode())" \
    | grep -E '^sctp_(xdp_chunks_total.type="(DATA|SACK|INIT)"|echo_messages_total|echo_associations_total|wire_data_chunks_by_ppid_total|wire_to_app_latency_seconds_(count|sum)|join_delivery_ratio|flow_data_chunks_total.flow="other")'
kill -INT "$SERVER"
wait "$SERVER"
SERVER=
echo
cat "$LOG"
