#!/usr/bin/env python3
"""Latency of each step of one SMTP message, one connection at a time: connect to 220, EHLO, MAIL, RCPT,
DATA, the 1 KB body to 250, QUIT, close; medians and 90th percentiles over N messages. Measures what a
single sender waits for, step by step (docs/benchmarks.md, "Changes measured").
Usage: bench/latency.py PORT [N]   (a server on 127.0.0.1:PORT accepting mail for r@bench.test)"""
import socket
import sys
import time

port = int(sys.argv[1])
count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
body = b"Subject: latency\r\n\r\n" + b"x" * 1000 + b"\r\n.\r\n"
steps = [("EHLO", b"EHLO client.test\r\n"), ("MAIL", b"MAIL FROM:<s@client.test>\r\n"),
         ("RCPT", b"RCPT TO:<r@bench.test>\r\n"), ("DATA", b"DATA\r\n"), ("body", body), ("QUIT", b"QUIT\r\n")]
times = {}


def reply(sock):
    """Reads until the last line of a reply (a line whose fourth character is a space)."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
        lines = data.split(b"\r\n")
        if len(lines) > 1 and len(lines[-2]) > 3 and lines[-2][3:4] == b" ":
            return


for _ in range(count):
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    reply(s)
    times.setdefault("connect+220", []).append(time.perf_counter() - t)
    for name, command in steps:
        t = time.perf_counter()
        s.sendall(command)
        reply(s)
        times.setdefault(name, []).append(time.perf_counter() - t)
    t = time.perf_counter()
    s.recv(16)
    s.close()
    times.setdefault("close", []).append(time.perf_counter() - t)

for name, values in times.items():
    values.sort()
    print(f"{name:12s} p50 {values[len(values) // 2] * 1e6:7.0f} us  p90 {values[int(len(values) * 0.9)] * 1e6:7.0f} us")
