#!/usr/bin/env python3
"""tests/integration/lib/badup.py - a hostile or broken HTTP/1.1 upstream for
tests/integration/29_upstream_hostile.sh (python standard library only).

    badup.py --port PORT [--tls CERT KEY] [--record FILE] [--mode MODE]

The mode is taken, per request, from the request path: /bad/MODE/... on ordinary paths,
and the provider moId on the stop-test route (/sdk/vim25/R/sms/VasaProvider/MODE/...),
so that one server plays every failure; --mode gives the mode for any other path. Every
request is recorded (--record: one JSON line {method, path, conn, mode}, the simulator's
--record format) before the answer starts, so a test can prove what was forwarded.

Modes (the answer to a stop-test is an SmsTask reference when it is well formed):
  ok          a valid 200 with Content-Length (kept alive)
  reset-hdr   part of the header block, then a TCP reset (SO_LINGER 0)
  reset-body  the whole header block (Content-Length 1000) and 100 body bytes, then a reset
  close-hdr   part of the header block, then an orderly close (FIN)
  drip        a valid response, one byte every 200 ms
  drip-body   the header block at once, then the body one byte every 200 ms
  bighdr      100 KB of header lines
  midhdr      a valid 200 with 40 KB of header lines (within smsguard's limit)
  manyhdr     a valid 200 with 650 header lines of 94 bytes (61 KB, over the limit once
              each field counts 32 bytes as in HPACK: too many for one HTTP/2 block)
  badstatus   "HTTP/1.1 2x0 OK"
  nocolon     a header line without a colon
  barelf      a header block whose lines end in a bare LF
  split       a valid 200 whose header block comes in 5-byte writes 30 ms apart, so that
              names and values are cut across reads (kept alive)
  nul         a NUL byte inside a header value
  spacename   a valid 200 but for a header line with a space before the colon ("X-Evil : 1"),
              which the client side refuses from a client (RFC 9112 5.1)
  barecr      a valid 200 but for a bare CR inside a header value ("X-Evil: a\rb")
  obsfold     a valid 200 but for a header value folded onto a second line (RFC 9112 5.2)
  tegzip      "Transfer-Encoding: gzip, chunked": a coding smsguard does not implement, whose
              bytes it would relay unlabelled
  big         a valid 200 of 300 KB (Content-Length)
  huge        a valid 200 of 24 MB (Content-Length): more than the sockets buffer, so a
              client that does not read makes smsguard stop reading the upstream
  badhex      chunked, a chunk size that is not hex
  nocrlf      chunked, chunk data not followed by CRLF
  chunkovf    chunked, chunk size ffffffffffffffffff (overflows 64 bits)
  clshort     Content-Length 100, 10 bytes, then close
  dupcl       two different Content-Length headers
"""
import argparse
import json
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time

TASK = b'{"_typeName":"ManagedObjectReference","type":"SmsTask","value":"task-badup-1"}'
BIG = 300 * 1024
# header lines a strict HTTP/1 reader refuses, in an otherwise valid answer
EVIL = {"spacename": b"X-Evil : 1\r\n", "barecr": b"X-Evil: a\rb\r\n",
        "obsfold": b"X-Evil: a\r\n folded\r\n"}

conn_ids = iter(range(1, 1 << 30))
lock = threading.Lock()


def mode_of(path, default):
    segs = path.split("?")[0].split("/")
    if len(segs) > 2 and segs[1] == "bad":
        return segs[2]
    if "VasaProvider" in segs:
        i = segs.index("VasaProvider")
        if i + 1 < len(segs):
            return segs[i + 1]
    return default


def ok_response(body=TASK, extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def chunked(chunks):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunks)


class Handler(socketserver.BaseRequestHandler):
    def setup(self):
        with lock:
            self.conn = next(conn_ids)
        self.sock = self.request
        if self.server.tls is not None:
            self.sock.settimeout(10)
            try:
                self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
            except (ssl.SSLError, OSError):
                self.sock = None  # the client refused us: that is the test
        self.buf = b""

    def read_request(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d
            if self.buf.startswith(b"\x16\x03"):
                # a TLS ClientHello on the plain port: answer as HTTP servers do
                self.sock.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                                  b"Content-Length: 0\r\n\r\n")
                return None
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        clen = 0
        for l in lines[1:]:
            n, _, v = l.partition(":")
            if n.strip().lower() == "content-length":
                clen = int(v.strip())
        while len(rest) < clen:
            d = self.sock.recv(65536)
            if not d:
                return None
            rest += d
        self.buf = rest[clen:]
        return method, path

    def record(self, method, path, mode):
        if self.server.record:
            with lock, open(self.server.record, "a") as f:
                f.write(json.dumps({"method": method, "path": path, "conn": self.conn,
                                    "mode": mode}) + "\n")

    def reset(self):
        # RST instead of FIN: SO_LINGER with a zero timeout on the TCP socket
        raw = self.request
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.close()

    def drip(self, data):
        for i in range(len(data)):
            self.sock.sendall(data[i:i + 1])
            time.sleep(0.2)

    def handle(self):
        if self.sock is None:
            return
        try:
            while True:
                req = self.read_request()
                if req is None:
                    return
                method, path = req
                mode = mode_of(path, self.server.mode)
                self.record(method, path, mode)
                if not self.answer(mode):
                    return
        except (OSError, ssl.SSLError):
            return

    def answer(self, mode):
        """Send the answer of MODE; True when the connection may serve another request."""
        s = self.sock
        if mode == "ok":
            s.sendall(ok_response())
            return True
        if mode == "reset-hdr":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: appl")
            time.sleep(0.1)
            self.reset()
        elif mode == "reset-body":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n" + b"x" * 100)
            time.sleep(0.1)
            self.reset()
        elif mode == "close-hdr":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Ty")
        elif mode == "drip":
            self.drip(ok_response())
        elif mode == "drip-body":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(TASK)).encode() + b"\r\n\r\n")
            self.drip(TASK)
        elif mode == "bighdr":
            filler = b"".join(b"x-filler-%05d: %s\r\n" % (i, b"f" * 80) for i in range(1100))
            s.sendall(ok_response(extra=filler))
        elif mode in ("midhdr", "manyhdr"):
            n = 440 if mode == "midhdr" else 650
            filler = b"".join(b"x-filler-%05d: %s\r\n" % (i, b"f" * 80) for i in range(n))
            s.sendall(ok_response(extra=filler))
            return True
        elif mode == "badstatus":
            s.sendall(b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok")
        elif mode == "nocolon":
            s.sendall(b"HTTP/1.1 200 OK\r\nX-Broken header line\r\nContent-Length: 2\r\n\r\nok")
        elif mode == "split":
            data = ok_response(extra=b"X-Split-Header: one two three four five six\r\n")
            head = data.index(b"\r\n\r\n") + 4
            for i in range(0, head, 5):
                s.sendall(data[i:min(i + 5, head)])
                time.sleep(0.03)
            s.sendall(data[head:])
            return True
        elif mode == "barelf":
            s.sendall(b"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: " +
                      str(len(TASK)).encode() + b"\n\n" + TASK)
        elif mode == "nul":
            s.sendall(b"HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\n\r\nok")
        elif mode in EVIL:
            s.sendall(ok_response(extra=EVIL[mode]))
        elif mode == "tegzip":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        elif mode == "big":
            s.sendall(ok_response(body=b'{"_typeName":"ManagedObjectReference","type":"SmsTask",'
                                  b'"value":"task-big","pad":"' + b"p" * BIG + b'"}'))
        elif mode == "huge":
            n = 24 << 20
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Content-Length: " + str(n).encode() + b"\r\n\r\n")
            block = b"h" * (1 << 20)
            for _ in range(n >> 20):
                s.sendall(block)
            return True
        elif mode == "badhex":
            s.sendall(chunked(b"5\r\nhello\r\nzz\r\nabc\r\n0\r\n\r\n"))
        elif mode == "nocrlf":
            s.sendall(chunked(b"5\r\nhelloXY0\r\n\r\n"))
        elif mode == "chunkovf":
            s.sendall(chunked(b"5\r\nhello\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n"))
        elif mode == "clshort":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n" + b"y" * 10)
        elif mode == "dupcl":
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
        else:
            s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            return True
        return False

    def finish(self):
        if self.sock is not None and self.request.fileno() >= 0:
            try:
                self.sock.close()
            except OSError:
                pass


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--record")
    ap.add_argument("--mode", default="ok")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.record = a.record
    srv.mode = a.mode
    srv.tls = None
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.tls = ctx
    sys.stdout.write("listening %d\n" % a.port)
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
