#!/bin/sh
# An INIT flood from 1,024 sources dropped by one rule (source prefix 198.18.100.0/22)
# at XDP (sctp-user run --deny-src) and by the same rule in nftables (netdev ingress:
# its earliest hook), side by side on one veth in one run. The sender is sctp-user
# flood (sendmmsg, qdisc bypassed) in the other namespace; a veth delivers in the
# sender's softirq, so the rate is of the whole path, sender included, for both.
set -eu
BIN="$PWD/target/release/sctp-user"
: "${DROP_XDP_OBJ:?the drop-all XDP object (cargo xtask bench sets it)}"
COUNT=${FLOOD_COUNT:-2000000}
ROUNDS=${FLOOD_ROUNDS:-3}
A=sxf-a-$$
B=sxf-b-$$
LOG=$(mktemp)
cleanup() {
    [ -n "${RUN:-}" ] && kill "$RUN" 2>/dev/null || true
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT
ip netns add "$A"; ip netns add "$B"
ip link add sxf0 netns "$A" type veth peer name sxf1 netns "$B"
ip -n "$A" addr add 198.18.0.1/24 dev sxf0; ip -n "$B" addr add 198.18.0.2/24 dev sxf1
ip -n "$A" link set sxf0 up; ip -n "$B" link set sxf1 up; ip -n "$B" link set lo up
MAC=$(ip -n "$B" -j link show sxf1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')

flood() {
    ip netns exec "$A" "$BIN" flood --iface sxf0 --dst-mac "$MAC" --from 198.18.100.0 \
        --sources 1024 --count "$COUNT" | sed 's/.* in \([0-9.]*\) s.*/\1/'
}

xdp_drops() {
    ip netns exec "$B" python3 -c 'import json,urllib.request
print(json.load(urllib.request.urlopen("http://127.0.0.1:9464/stats"))["xdp"]["drops"]["deny_src"])'
}

nft_drops() {
    ip netns exec "$B" nft -j list table netdev sxf | python3 -c 'import json,sys
for o in json.load(sys.stdin)["nftables"]:
    for e in o.get("rule", {}).get("expr", []):
        if "counter" in e: print(e["counter"]["packets"])'
}

# Waits until a counter stops moving; prints its value.
settle() {
    last=-1
    while :; do
        now=$("$@")
        [ "$now" = "$last" ] && { echo "$now"; return; }
        last=$now; sleep 0.5
    done
}

echo "INIT flood, $COUNT packets per round, $ROUNDS rounds, one rule: drop source 198.18.100.0/22"
for round in $(seq "$ROUNDS"); do
    # Native XDP on a veth converts each socket buffer to an XDP buffer (a copy when the
    # headroom is short); generic XDP runs on the socket buffer: both are measured.
    for mode in native generic; do
        ip netns exec "$B" "$BIN" run --iface sxf1 --mode "$mode" --no-echo --no-pin \
            --deny-src 198.18.100.0/22 >"$LOG" 2>&1 &
        RUN=$!
        until grep -q "metrics on" "$LOG"; do sleep 0.2; done
        sleep 1.2
        before=$(xdp_drops)
        secs=$(flood)
        dropped=$(( $(settle xdp_drops) - before ))
        kill -INT "$RUN"; wait "$RUN" || true; RUN=
        echo "xdp ($mode) round $round: $dropped of $COUNT dropped in $secs s: $(python3 -c "print(round($dropped/$secs))") drops/s"
    done

    # The floor: a program that drops everything, on the same path (iproute2 loads it;
    # it keeps no counter, so its rate is the packets sent over the sending time).
    ip -n "$B" link set dev sxf1 xdpdrv obj "$DROP_XDP_OBJ" sec xdp
    secs=$(flood)
    ip -n "$B" link set dev sxf1 xdpdrv off
    echo "xdp floor (drop all) round $round: $COUNT sent in $secs s: $(python3 -c "print(round($COUNT/$secs))") drops/s"

    ip netns exec "$B" nft -f - <<NFT
table netdev sxf {
    chain ingress {
        type filter hook ingress device sxf1 priority 0;
        ip saddr 198.18.100.0/22 counter drop
    }
}
NFT
    secs=$(flood)
    dropped=$(settle nft_drops)
    ip netns exec "$B" nft delete table netdev sxf
    echo "nftables round $round: $dropped of $COUNT dropped in $secs s: $(python3 -c "print(round($dropped/$secs))") drops/s"
done
