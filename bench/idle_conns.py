#!/usr/bin/env python3
"""bench/idle_conns.py - what an idle TLS client connection costs a proxy, in memory.

    idle_conns.py --port PORT --count N --proto h2|h1 --pid PID [--parallel K] [--settle S]

Reads the resident memory (VmRSS) of PID and of every process under it, opens N TLS
connections to 127.0.0.1:PORT (K handshakes in flight at a time, non-blocking, one
selector), leaves them idle, waits S seconds, reads VmRSS again and prints one line:

    conns=N rss_before_kib=A rss_after_kib=B per_conn_kib=X

  h2: ALPN h2; once the handshake is done the client sends the connection preface and an
      empty SETTINGS frame, and acknowledges the server's SETTINGS (so that no server
      closes the connection for a missing SETTINGS ACK). Nothing else.
  h1: ALPN http/1.1; the handshake only, no request.

Before it reports, it checks that every connection is still open (no EOF or reset from the
server) and fails otherwise: a proxy that closed idle connections early would look cheap.
Python standard library only (ssl, selectors, socket).
"""
import argparse
import os
import selectors
import socket
import ssl
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"       # empty SETTINGS, stream 0
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"   # SETTINGS with the ACK flag


def tree_pids(root):
    """root and all its descendants, from /proc/*/stat parent pids."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kib(root):
    total = 0
    for p in tree_pids(root):
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Conn:
    """One client connection: handshake, then (h2) preface, SETTINGS and its ACK."""

    def __init__(self, ctx, port, proto):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setblocking(False)
        raw.connect_ex(("127.0.0.1", port))
        self.s = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
        self.proto = proto
        self.state = "handshake"
        self.out = b""
        self.inbuf = b""

    def step(self):
        """Advance; returns the selector events wanted next, or 0 when idle (done)."""
        if self.state == "handshake":
            try:
                self.s.do_handshake()
            except ssl.SSLWantReadError:
                return selectors.EVENT_READ
            except ssl.SSLWantWriteError:
                return selectors.EVENT_WRITE
            except OSError as e:
                if getattr(e, "errno", None) in (115, 11):  # EINPROGRESS, EAGAIN
                    return selectors.EVENT_WRITE
                raise
            want = "h2" if self.proto == "h2" else "http/1.1"
            got = self.s.selected_alpn_protocol()
            if got != want:
                raise RuntimeError("ALPN %r, expected %r" % (got, want))
            if self.proto == "h1":
                self.state = "idle"
                return 0
            self.out = PREFACE + SETTINGS
            self.state = "h2"
        if self.state == "h2":
            if self.out:
                try:
                    n = self.s.send(self.out)
                    self.out = self.out[n:]
                except (ssl.SSLWantWriteError, BlockingIOError):
                    return selectors.EVENT_WRITE
                except ssl.SSLWantReadError:
                    return selectors.EVENT_READ
                if self.out:
                    return selectors.EVENT_WRITE
            # wait for the server's SETTINGS (not an ACK), then acknowledge it
            try:
                data = self.s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                return selectors.EVENT_READ
            if not data:
                raise RuntimeError("server closed during the HTTP/2 preface")
            self.inbuf += data
            while len(self.inbuf) >= 9:
                length = int.from_bytes(self.inbuf[0:3], "big")
                ftype, flags = self.inbuf[3], self.inbuf[4]
                if len(self.inbuf) < 9 + length:
                    break
                self.inbuf = self.inbuf[9 + length:]
                if ftype == 4 and not flags & 1:
                    self.out = SETTINGS_ACK
                    self.state = "ack"
                    break
                if ftype == 7:
                    raise RuntimeError("server sent GOAWAY during the preface")
            if self.state == "h2":
                return selectors.EVENT_READ
        if self.state == "ack":
            try:
                n = self.s.send(self.out)
                self.out = self.out[n:]
            except (ssl.SSLWantWriteError, BlockingIOError):
                return selectors.EVENT_WRITE
            if self.out:
                return selectors.EVENT_WRITE
            self.state = "idle"
        return 0

    def still_open(self):
        """Drain what the server sent; False on EOF, reset or GOAWAY."""
        while True:
            try:
                data = self.s.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                return True
            except OSError:
                return False
            if not data:
                return False
            if self.proto == "h2":
                self.inbuf += data
                while len(self.inbuf) >= 9:
                    length = int.from_bytes(self.inbuf[0:3], "big")
                    if len(self.inbuf) < 9 + length:
                        break
                    if self.inbuf[3] == 7:     # GOAWAY
                        return False
                    self.inbuf = self.inbuf[9 + length:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--proto", choices=["h2", "h1"], required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--parallel", type=int, default=64)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE     # a load tool: the bench certificate is self-signed
    ctx.set_alpn_protocols(["h2" if a.proto == "h2" else "http/1.1"])

    time.sleep(a.settle)
    before = rss_kib(a.pid)
    sel = selectors.DefaultSelector()
    done, started, pending = [], 0, 0
    deadline = time.monotonic() + a.timeout
    while len(done) < a.count:
        while started < a.count and pending < a.parallel:
            c = Conn(ctx, a.port, a.proto)
            sel.register(c.s, selectors.EVENT_WRITE, c)
            started += 1
            pending += 1
        if time.monotonic() > deadline:
            sys.exit("idle_conns: only %d of %d connections set up in %.0f s"
                     % (len(done), a.count, a.timeout))
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            try:
                ev = c.step()
            except Exception as e:  # noqa: BLE001 - any failure ends the measurement
                sys.exit("idle_conns: connection %d: %s" % (started, e))
            if ev:
                sel.modify(c.s, ev, c)
            else:
                sel.unregister(c.s)
                done.append(c)
                pending -= 1
    time.sleep(a.settle)
    after = rss_kib(a.pid)
    closed = sum(1 for c in done if not c.still_open())
    if closed:
        sys.exit("idle_conns: the server closed %d of %d idle connections" % (closed, a.count))
    print("conns=%d rss_before_kib=%d rss_after_kib=%d per_conn_kib=%.2f"
          % (a.count, before, after, (after - before) / a.count))
    for c in done:
        c.s.close()


if __name__ == "__main__":
    main()
