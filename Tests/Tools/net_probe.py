#!/usr/bin/env python3
"""Host-side network peer for the virtio-net tests and benchmark, run inside the test's network
namespace (`ip netns exec NS python3 net_probe.py ...`). Each subcommand prints one result line.

  ping IP COUNT                      ICMP echo over a raw socket: PING sent=N received=M
  udp IP PORT COUNT SIZE...          echo round trips per size: UDP sent=N received=M
  echo-server IP PORT SECONDS        answers datagrams for SECONDS: ECHO count=N
  garp IFACE IP SECONDS              waits up to SECONDS for a gratuitous ARP for IP on IFACE: GARP count=0|1
  flood IP PORT SIZE SECONDS         sends datagrams as fast as it can: FLOOD sent=N
  stream IP PORT HZ SECONDS          numbered datagrams at HZ, echoes matched until 2 s after the
                                     last: STREAM sent=N received=M lost=K duplicated=D
                                     longest_gap_ms=G (the longest time without an echo)
"""
import socket
import struct
import sys
import time


def checksum(data):
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ping_count(ip, count, ident=0x4567):
    """ICMP echo over a raw socket: how many replies came back with the payload and checksum intact."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(1.0)
    received = 0
    for seq in range(1, count + 1):
        payload = bytes((seq + i) & 0xFF for i in range(56))
        header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
        s.sendto(struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload, (ip, 0))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                packet, address = s.recvfrom(2048)
            except socket.timeout:
                break
            start = (packet[0] & 15) * 4
            kind, _, _, got_ident, got_seq = struct.unpack("!BBHHH", packet[start:start + 8])
            if address[0] == ip and kind == 0 and got_ident == ident and got_seq == seq:
                received += packet[start + 8:] == payload and checksum(packet[start:]) == 0
                break
    s.close()
    return received


def ping(ip, count):
    print(f"PING sent={count} received={ping_count(ip, count)}", flush=True)


def udp_count(ip, port, count, sizes):
    """`count` echo round trips per size, one datagram in flight: (sent, answers that matched)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    sent = received = 0
    for size in sizes:
        for k in range(count):
            data = bytes((size * 7 + k * 13 + i) & 0xFF for i in range(size))
            s.sendto(data, (ip, port))
            sent += 1
            try:
                back, address = s.recvfrom(65536)
                received += back == data and address == (ip, port)
            except socket.timeout:
                pass
    s.close()
    return sent, received


def udp(ip, port, count, sizes):
    sent, received = udp_count(ip, port, count, sizes)
    print(f"UDP sent={sent} received={received}", flush=True)


def echo_server(ip, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    s.settimeout(0.2)
    print("ECHO ready", flush=True)
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            data, address = s.recvfrom(65536)
        except socket.timeout:
            continue
        count += 1
        s.sendto(data, address)
    print(f"ECHO count={count}", flush=True)


def garp(interface, ip, seconds):
    # ETH_P_ALL: a tap on a bridge hands its frames to the bridge before protocol sockets see them.
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((interface, 0))
    s.settimeout(0.2)
    address = socket.inet_aton(ip)
    print("GARP ready", flush=True)
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            packet = s.recv(2048)
        except socket.timeout:
            continue
        # An ARP whose sender and target address are both the guest's: it announces itself.
        if packet[12:14] == b"\x08\x06" and packet[28:32] == address and packet[38:42] == address:
            count += 1
            break
    print(f"GARP count={count}", flush=True)


def flood(ip, port, size, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    data, sent, end = bytes(size), 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(256):
            try:
                s.sendto(data, (ip, port))
                sent += 1
            except BlockingIOError:
                time.sleep(0.0005)
    print(f"FLOOD sent={sent}", flush=True)


def stream(ip, port, hertz, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setblocking(False)
    print("STREAM ready", flush=True)
    interval, start = 1.0 / hertz, time.monotonic()
    count = int(hertz * seconds)
    seen, duplicated, sent = set(), 0, 0
    last_echo, longest_gap = start, 0.0
    end = start + seconds + 2.0
    while True:
        now = time.monotonic()
        while sent < count and start + sent * interval <= now:
            s.sendto(struct.pack("!Q", sent) + bytes(56), (ip, port))
            sent += 1
        try:
            data, _ = s.recvfrom(2048)
            number = struct.unpack("!Q", data[:8])[0]
            if number in seen:
                duplicated += 1
            seen.add(number)
            longest_gap = max(longest_gap, now - last_echo)
            last_echo = now
            continue
        except BlockingIOError:
            pass
        if now >= end or (sent == count and len(seen) == count):
            break
        time.sleep(0.0002)
    print(f"STREAM sent={sent} received={len(seen)} lost={sent - len(seen)} duplicated={duplicated} "
          f"longest_gap_ms={longest_gap * 1000:.1f}", flush=True)


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "ping":
        ping(args[0], int(args[1]))
    elif command == "udp":
        udp(args[0], int(args[1]), int(args[2]), [int(size) for size in args[3:]])
    elif command == "echo-server":
        echo_server(args[0], int(args[1]), float(args[2]))
    elif command == "garp":
        garp(args[0], args[1], float(args[2]))
    elif command == "flood":
        flood(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif command == "stream":
        stream(args[0], int(args[1]), float(args[2]), float(args[3]))
    else:
        sys.exit(f"net_probe: unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
