#!/bin/bash
# An established bulk transfer with and without a spoofed SYN flood (issue 13:
# "a spoofed SYN flood of 10,000 SYN/s leaves new connections accepted and an
# established transfer with at least 85% of its throughput"), in a network
# namespace of its own: `tapstack up` on a TAP, the kernel's TCP on the other
# side. One connection carries data the whole time, kernel -> tapstack's discard
# service (`recv`: the stack receives) or tapstack's chargen -> kernel (`send`);
# its throughput is read over windows of SECONDS, in rounds that alternate
# without and with spoofed SYNs (random sources) sent to port 7 at
# SYN_PER_SECOND (ABBA order, so drift over the run falls on both sides), by
# tests/attack/spoofed_syns.py (a raw socket, paced in batches: it holds the
# rate where hping3 -i u100 reached about 7,500/s on a busy machine), or by
# hping3 with FLOOD=hping3 (GEN=PROGRAM swaps in another generator taking the
# same arguments DST PORT RATE SECONDS, as a control). In each flood window five new connections to the
# echo service are tried (each echoing a line within 3 s), and the SYNs the
# stack took in the window (SYN-queue entries and cookies) are read from
# `tapstack stats`. Everything runs under `timeout`; the namespace is deleted
# on exit, on failure too. Needs root, python3, iproute2 (hping3 if asked).
#
#   tests/attack/syn-flood-throughput.sh [TAPSTACK_BINARY] [SYN_PER_SECOND] [SECONDS] [ROUNDS] [recv|send|both]
#
# Defaults: target/release/tapstack, 10000, 10, 3, both. Prints one line per
# window, then per direction the medians and their ratio. Exits 1 if a
# connection attempt during a flood failed.
set -u
BIN=${1:-target/release/tapstack}
RATE=${2:-10000}
SECS=${3:-10}
ROUNDS=${4:-3}
DIRS=${5:-both}
[ "$DIRS" = both ] && DIRS="recv send"
NS=tsfloodtp$$
HOST=10.78.0.1
STACK=10.78.0.2
CTL=/tmp/$NS.sock
GEN=${GEN:-$(dirname "$0")/spoofed_syns.py}
FLOOD=${FLOOD:-raw}

cleanup() {
    [ -n "${UP:-}" ] && kill "$UP" 2>/dev/null && wait "$UP" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -f "$CTL"
}
trap cleanup EXIT INT TERM

ip netns add "$NS" || exit 1
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip tuntap add tap0 mode tap
ip netns exec "$NS" ip addr add "$HOST/24" dev tap0
ip netns exec "$NS" ip link set tap0 up
ip netns exec "$NS" "$BIN" up --tap tap0 --addr "$STACK/24" --seed 1 --serve echo,discard,chargen \
    --control "$CTL" >/dev/null 2>&1 &
UP=$!
for _ in $(seq 50); do
    ip netns exec "$NS" ping -c1 -W1 "$STACK" >/dev/null 2>&1 && break
    sleep 0.1
done

# Per direction: 2 s of warm-up, then 2 * ROUNDS windows of SECS with 1 s
# before each flood window (the flood starting) and 1 s after it (ending).
LIMIT=$(((2 * ROUNDS * (SECS + 3) + 30) * 2))
FAILED=0
for DIR in $DIRS; do
    timeout "$LIMIT" ip netns exec "$NS" python3 - "$STACK" "$RATE" "$SECS" "$ROUNDS" "$DIR" "$BIN" "$CTL" "$FLOOD" "$GEN" <<'PY' || FAILED=1
import re, socket, statistics, subprocess, sys, threading, time

host, rate, secs, rounds, direction, binary, control, flood_with, generator = sys.argv[1:10]
rate, secs, rounds = int(rate), float(secs), int(rounds)
moved = [0]
running = [True]

def transfer():
    port = 9 if direction == "recv" else 19
    s = socket.create_connection((host, port), timeout=10)
    buf = bytearray(65536)
    while running[0]:
        n = s.send(buf) if direction == "recv" else s.recv_into(buf)
        if n == 0:
            break
        moved[0] += n
    s.close()

def syns():
    """SYNs taken so far (into the SYN queue, or answered with a cookie), from the stack's counters."""
    out = subprocess.run([binary, "stats", "--control", control], capture_output=True, text=True).stdout
    n = [re.search(r"(\d+)\s+" + what, out) for what in ("passive opens", "SYNs answered with a SYN cookie")]
    return sum(int(m.group(1)) for m in n if m)

def connects(result):
    ok = 0
    for _ in range(5):
        try:
            c = socket.create_connection((host, 7), timeout=3)
            c.settimeout(3)
            c.sendall(b"hello\n")
            ok += c.recv(16) == b"hello\n"
            c.close()
        except OSError:
            pass
    result.append(ok)

def window(flood):
    """Throughput in Mbit/s over one window; with the flood, also SYN/s and connections."""
    hping = None
    if flood:
        if flood_with == "hping3":
            cmd = ["hping3", "-q", "-S", "-p", "7", "-i", f"u{1000000 // rate}", "--rand-source",
                   "-c", str(int(rate * (secs + 4))), host]
        else:
            cmd = ["python3", generator, host, "7", str(rate), str(secs + 4)]
        hping = subprocess.Popen(["timeout", str(int(secs) + 10)] + cmd,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        result, syn0 = [], syns()
        probe = threading.Thread(target=connects, args=(result,))
        probe.start()
    b0, t0 = moved[0], time.monotonic()
    time.sleep(secs)
    b1, t1 = moved[0], time.monotonic()
    mbit = (b1 - b0) * 8 / (t1 - t0) / 1e6
    extra = ""
    if flood:
        syn_rate = (syns() - syn0) / (t1 - t0)
        hping.terminate()
        hping.wait()
        probe.join()
        extra = f", {syn_rate:.0f} SYN/s reached the stack, connections {result[0]}/5"
        time.sleep(1)
        return mbit, result[0], extra
    return mbit, None, extra

t = threading.Thread(target=transfer, daemon=True)
t.start()
time.sleep(2)
calm, flooded, conns = [], [], []
for r in range(rounds):
    for flood in ([False, True] if r % 2 == 0 else [True, False]):
        mbit, ok, extra = window(flood)
        (flooded if flood else calm).append(mbit)
        if ok is not None:
            conns.append(ok)
        print(f"{direction} round {r + 1} {'flood' if flood else 'calm '}: {mbit:8.0f} Mbit/s{extra}", flush=True)
running[0] = False
c, f = statistics.median(calm), statistics.median(flooded)
print(f"{direction}: median {c:.0f} Mbit/s without, {f:.0f} Mbit/s with {rate} SYN/s: {100 * f / c:.0f}%; "
      f"connections during floods {sum(conns)}/{5 * len(conns)}", flush=True)
sys.exit(0 if sum(conns) == 5 * len(conns) else 1)
PY
done
"$BIN" stats --control "$CTL" 2>/dev/null | grep -iE "cookie|backlog|connection table" || true
exit $FAILED
