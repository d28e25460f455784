#!/bin/sh
# The end-to-end demo: two namespaces joined by a veth, the XDP program on the server's
# end, a real SCTP association (socat as echo server and client) crossing it, then the
# per-flow report of what XDP saw. Needs root and a kernel with SCTP.
set -eu
BIN="$PWD/target/release/sctp-user"
CLI=sxd-cli-$$
SRV=sxd-srv-$$
OUT=$(mktemp)
cleanup() {
    [ -n "${XDP:-}" ] && kill "$XDP" 2>/dev/null || true
    [ -n "${ECHO:-}" ] && kill "$ECHO" 2>/dev/null || true
    ip netns del "$CLI" 2>/dev/null || true
    ip netns del "$SRV" 2>/dev/null || true
    rm -f "$OUT"
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

ip netns exec "$SRV" "$BIN" run --iface sxd1 >"$OUT" 2>&1 &
XDP=$!
for _ in $(seq 100); do grep -q "attached" "$OUT" && break; sleep 0.2; done
grep -q "attached" "$OUT" || { cat "$OUT"; echo "demo: XDP did not attach"; exit 1; }

ip netns exec "$SRV" socat SCTP-LISTEN:36412,fork,reuseaddr EXEC:cat &
ECHO=$!
sleep 1
for i in 1 2 3 4 5; do
    # SCTP has no half-close: keep stdin open until the echo is back, or EOF would
    # shut the association down first.
    reply=$({ echo "S1AP-like message $i"; sleep 1; } | ip netns exec "$CLI" socat -t 2 - SCTP:198.18.0.2:36412)
    echo "demo: sent message $i, echo: $reply"
done
sleep 2
kill -INT "$XDP"
wait "$XDP" || true
XDP=
echo
echo "What XDP counted on the server's interface (client -> server direction):"
cat "$OUT"
