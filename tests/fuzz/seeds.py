#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from captures/ (see README.md).

- frame_path: each reference capture's peer frames as a program (src/program.rs
  gives the encoding), after socket calls that open what the scenario's
  application opened, with the capture's time steps; plus hand-written
  programs that open, use and close TCP connections both ways, UDP, ping,
  fragments and ICMP errors, through the built-frame operations.
- capture_reader: the capture files themselves.
- scenario_parse: the scenario files.
- replay: a byte naming the scenario (its index in src/lib.rs SCENARIOS, which
  is the sorted order of the names) followed by its capture.

Usage: seeds.py CAPTURES_DIR CORPUS_DIR
"""
import hashlib
import os
import struct
import sys
import tomllib

STACK_MAC = bytes.fromhex("027461700002")


def pcapng_frames(data):
    """(timestamp in µs, frame) of every Enhanced Packet Block (little-endian files)."""
    out, i = [], 0
    while i + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, i)
        if blen < 12:
            break
        if btype == 6:
            _, hi, lo, caplen, _ = struct.unpack_from("<IIIII", data, i + 8)
            out.append(((hi << 32) | lo, data[i + 28 : i + 28 + caplen]))
        i += blen
    return out


def op_frame(f):
    return bytes([0]) + struct.pack(">H", len(f)) + f


def op_advance_us(us):
    ops = b""
    while us > 0:
        if us < 65536:
            return ops + bytes([6, 0]) + struct.pack(">H", us)
        ms = min(us // 1000, 65535)
        ops += bytes([6, 1]) + struct.pack(">H", ms)
        us -= ms * 1000
    return ops


def call(c, fd_sel=0, arg=0, value=0):
    return bytes([8, c, fd_sel, arg]) + struct.pack(">H", value)


SOCKET_STREAM, SOCKET_DGRAM, BIND, LISTEN, CONNECT, SEND, RECV, CLOSE, SHUTDOWN, ACCEPT = range(10)
LOCAL = {7: 0, 80: 1, 5000: 2, 0: 3}
PEER_PORT = {8080: 0, 5001: 1, 40000: 2, 40001: 3}
POLL, RUN = bytes([7]), bytes([9])


def prologue(scenario):
    """Socket calls that open what the scenario's application opened; the
    descriptors are 0.. in the harness's list, in this order."""
    ops, fds = b"", 0
    app = scenario.get("app", {})
    for svc in app.get("services", []):
        port = {"echo": 7, "http": 80, "discard": 7, "chargen": 7, "udp-echo": 7}.get(svc, 7)
        if svc == "udp-echo":
            ops += call(SOCKET_DGRAM) + call(BIND, fds, LOCAL[port])
        else:
            ops += call(SOCKET_STREAM) + call(BIND, fds, LOCAL[port]) + call(LISTEN, fds, 4)
        fds += 1
    for step in app.get("script", []):
        if "listen" in step and step["listen"] in LOCAL:
            ops += call(SOCKET_STREAM) + call(BIND, fds, LOCAL[step["listen"]]) + call(LISTEN, fds, 4)
            fds += 1
        if "connect" in step:
            port = int(step["connect"].rsplit(":", 1)[1])
            ops += call(SOCKET_STREAM) + call(CONNECT, fds, PEER_PORT.get(port, 0))
            fds += 1
    return ops


def capture_program(pcap, scenario):
    prog, last = prologue(scenario), None
    for ts, f in pcapng_frames(pcap):
        if f[6:12] == STACK_MAC:
            continue
        if last is not None and ts > last:
            prog += op_advance_us(ts - last) + POLL
        last = ts
        # Answer as the application would: accept, read, echo.
        prog += op_frame(f) + call(ACCEPT, 0) + call(RECV, 1, 0, 2000) + call(SEND, 1, 0, 20)
    return prog + RUN * 4


def tcp(sel, flags, mode=0, seq=0, ack=0, window=0xFFFF, opts=0, data=b""):
    return bytes([1, sel, flags, mode]) + struct.pack(">HHHBB", seq, ack, window, opts, len(data)) + data


SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
ARP_REPLY = bytes([4, 1])
TRACKED = 0x80


def hand_programs():
    listen7 = call(SOCKET_STREAM) + call(BIND, 0, 0) + call(LISTEN, 0, 4)
    passive = listen7 + ARP_REPLY + tcp(0, SYN, opts=0x47) + tcp(0, ACK) + call(ACCEPT, 0)
    active = call(SOCKET_STREAM) + call(CONNECT, 0, 0) + ARP_REPLY + POLL + tcp(TRACKED, SYN | ACK, 1, opts=0x4F)
    yield "passive-echo", passive + tcp(0, ACK | PSH, data=b"hello") + call(RECV, 1, 0, 100) + call(
        SEND, 1, 0, 3000
    ) + RUN + tcp(0, ACK) + tcp(0, FIN | ACK) + call(CLOSE, 1) + RUN + tcp(0, ACK) + RUN * 3
    yield "passive-stack-closes", passive + call(CLOSE, 1) + RUN + tcp(0, ACK) + tcp(0, FIN | ACK) + RUN * 4
    yield "active-data", active + call(SEND, 0, 0, 1000) + RUN + tcp(TRACKED, ACK, 1) + tcp(
        TRACKED, ACK | PSH, 1, data=b"x" * 100
    ) + call(RECV, 0, 0, 4000) + call(SHUTDOWN, 0, 1) + RUN + tcp(TRACKED, FIN | ACK, 1) + RUN * 4
    yield "active-zero-window", active + call(SEND, 0, 0, 4000) + tcp(TRACKED, ACK, 1, window=0) + RUN * 6
    yield "simultaneous-open", call(SOCKET_STREAM) + call(CONNECT, 0, 0) + ARP_REPLY + POLL + tcp(
        TRACKED, SYN, 1
    ) + call(CLOSE, 0) + RUN * 6
    yield "rst-and-challenge", passive + tcp(0, RST, 2, seq=0x100) + tcp(0, SYN, 2) + tcp(0, RST) + RUN
    yield "udp-echo", call(SOCKET_DGRAM) + call(BIND, 0, 0) + bytes([2, 0, 0, 7, 12]) + b"hello, world" + call(
        RECV, 0, 0, 100
    ) + call(11, 0, 0, 12) + ARP_REPLY + RUN * 2
    yield "ping", bytes([3, 0, 0, 0, 1, 56]) + bytes(range(56)) + ARP_REPLY + RUN
    frag = lambda off, mf, n: bytes([5, 1]) + struct.pack(">H", off) + bytes([0x80 if mf else 0, 1, n]) + bytes(n * 8)
    yield "fragments", frag(0, True, 2) + frag(2, True, 2) + frag(4, False, 1) + frag(1, True, 2) + RUN * 2
    yield "frag-needed", active + call(SEND, 0, 0, 3000) + bytes([3, 1, 0, 0x02, 0x40, 0]) + bytes(
        [3, 0x41, 8, 0x02, 0x40, 0]
    ) + RUN * 3
    yield "arp-conflict", bytes([4, 0, 4, 3, 4, 0x44, 4, 2]) + RUN * 2


def write(dirname, content):
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, hashlib.sha1(content).hexdigest()), "wb") as f:
        f.write(content)


def main(captures, corpus):
    names = sorted(n[: -len(".toml")] for n in os.listdir(captures) if n.endswith(".toml"))
    for i, name in enumerate(names):
        with open(os.path.join(captures, name + ".toml"), "rb") as f:
            text = f.read()
        pcap_path = os.path.join(captures, name + ".pcapng")
        if not os.path.exists(pcap_path):
            continue
        with open(pcap_path, "rb") as f:
            pcap = f.read()
        write(os.path.join(corpus, "scenario_parse"), text)
        write(os.path.join(corpus, "capture_reader"), pcap)
        write(os.path.join(corpus, "replay"), bytes([i]) + pcap)
        write(os.path.join(corpus, "frame_path"), capture_program(pcap, tomllib.loads(text.decode())))
    for _, prog in hand_programs():
        write(os.path.join(corpus, "frame_path"), prog)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
