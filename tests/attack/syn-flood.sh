#!/bin/bash
# SYN flood against `tapstack up`, in a network namespace of its own (issue 13,
# item 2): hping3 sends spoofed SYNs (random sources) to the echo service at a
# fixed rate under `timeout`, while new connections are tried during and after
# the flood and tapstack's RSS is sampled. Everything it creates is deleted on
# exit, on failure too. Needs root, hping3, python3, iproute2.
#
#   tests/attack/syn-flood.sh [TAPSTACK_BINARY] [SYN_PER_SECOND] [SECONDS]
#
# Defaults: target/release/tapstack (else target/debug/tapstack), 10000, 10.
# Prints one line per phase; exits 1 if a connection attempt after the flood fails.
set -u
BIN=${1:-}
if [ -z "$BIN" ]; then
    BIN=target/release/tapstack
    [ -x "$BIN" ] || BIN=target/debug/tapstack
fi
RATE=${2:-10000}
SECS=${3:-10}
NS=tsflood$$
HOST=10.77.0.1
STACK=10.77.0.2
INTERVAL_US=$((1000000 / RATE))

cleanup() {
    [ -n "${UP:-}" ] && kill "$UP" 2>/dev/null && wait "$UP" 2>/dev/null
    [ -n "${SAMPLER:-}" ] && kill "$SAMPLER" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT INT TERM

ip netns add "$NS" || exit 1
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip tuntap add tap0 mode tap
ip netns exec "$NS" ip addr add "$HOST/24" dev tap0
ip netns exec "$NS" ip link set tap0 up
ip netns exec "$NS" "$BIN" up --tap tap0 --addr "$STACK/24" --seed 1 --serve echo \
    --control "/tmp/$NS.sock" >/dev/null 2>&1 &
UP=$!

# n connections to the echo service, each echoing one line within 3 s: prints ok/n.
try_connect() {
    ip netns exec "$NS" python3 - "$STACK" "$1" <<'PY'
import socket, sys
host, n = sys.argv[1], int(sys.argv[2])
ok = 0
for i in range(n):
    try:
        s = socket.create_connection((host, 7), timeout=3)
        s.settimeout(3)
        s.sendall(b"hello\n")
        ok += s.recv(16) == b"hello\n"
        s.close()
    except OSError:
        pass
print(f"{ok}/{n}")
PY
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$UP/status" 2>/dev/null; }

for _ in $(seq 50); do
    ip netns exec "$NS" ping -c1 -W1 "$STACK" >/dev/null 2>&1 && break
    sleep 0.1
done
echo "before: connections $(try_connect 5), RSS $(rss) KiB"
(while sleep 0.5; do rss; done >"/tmp/$NS.rss") &
SAMPLER=$!
timeout "$((SECS + 5))" ip netns exec "$NS" hping3 -q -S -p 7 -i "u$INTERVAL_US" --rand-source \
    -c "$((RATE * SECS))" "$STACK" >/dev/null 2>&1 &
FLOOD=$!
sleep 2
echo "during: connections $(try_connect 5), ping $(ip netns exec "$NS" ping -c3 -i0.2 -W1 -q "$STACK" | grep -o '[0-9]* received')"
wait "$FLOOD"
sleep 1
AFTER=$(try_connect 5)
kill "$SAMPLER"; SAMPLER=
PEAK=$(sort -n "/tmp/$NS.rss" | tail -1)
rm -f "/tmp/$NS.rss"
echo "after: connections $AFTER, RSS peak ${PEAK:-?} KiB, now $(rss) KiB, SYN-RECV entries $("$BIN" ss -ta --control "/tmp/$NS.sock" 2>/dev/null | grep -c '^SYN-RECV')"
"$BIN" stats --control "/tmp/$NS.sock" 2>/dev/null | grep -iE "cookie|backlog|connection table|bytes held" || true
[ "$AFTER" = "5/5" ]
