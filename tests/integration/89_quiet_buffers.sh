#!/usr/bin/env bash
# 89_quiet_buffers: what conn.c does with a connection's buffers and TLS records.
# - A keep-alive connection that stays quiet gives its buffers back (its own, OpenSSL's and
#   the protocol's, after 0.1 s): the next requests on it, small and large, are answered in
#   full, over HTTP/1.1 and HTTP/2 alike.
# - TLS records are sized for the first byte: the first records of a burst fit one TCP
#   segment, full 16 KiB records follow once 64 KiB have gone, and after a pause of more
#   than a second the records are small again. The client reads the raw TCP stream and
#   decrypts it through an ssl.MemoryBIO, so it sees each record's length.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client
PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" <<'PY'
import socket, ssl, struct, sys, time
from h2raw import check, expect, Conn, get, frame, WINDOW_UPDATE
port, ca = int(sys.argv[1]), sys.argv[2]
SMALL, FULL = 1400, 16384
QUIET = 0.4   # longer than conn.c's CONN_QUIET_S (0.1 s)

class Records:
    """HTTP/1.1 over TLS through a MemoryBIO: every TLS record's length is seen."""
    def __init__(self):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["http/1.1"])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        self.raw = b""
        self.sizes = []     # ciphertext length of each application-data record
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.pull()
        self.flush()

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def pull(self):
        b = self.sock.recv(1 << 16)
        if not b:
            raise EOFError("server closed")
        self.raw += b
        while len(self.raw) >= 5:    # whole records only, so their lengths are known
            n = struct.unpack(">H", self.raw[3:5])[0]
            if len(self.raw) < 5 + n:
                break
            if self.raw[0] == 23:
                self.sizes.append(n)
            self.inc.write(self.raw[:5 + n])
            self.raw = self.raw[5 + n:]

    def get(self, path):
        """One request; returns (status line, body length) and the records it came in."""
        first = len(self.sizes)
        self.tls.write(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        self.flush()
        buf = b""
        while True:
            try:
                buf += self.tls.read(1 << 16)
            except ssl.SSLWantReadError:
                self.pull()
                continue
            head, sep, body = buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            clen = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                    if l.lower().startswith(b"content-length:")][0]
            if len(body) >= clen:
                return head.split(b"\r\n")[0].decode(), len(body), self.sizes[first:]

# TLS 1.3 adds the inner content type and a 16-byte tag; TLS 1.2's AEAD suites 24 bytes.
OVERHEAD = 24

check("HTTP/1.1: a 300 kB answer comes in small records first, then full ones")
r = Records()
status, n, sizes = r.get("/sim/bytes/300000")
print("   %s, %d bytes in %d records: first %s, largest %d" % (status, n, len(sizes), sizes[:3], max(sizes)))
expect(status.endswith("200 OK") and n == 300000, "h1: the large answer was not complete")
expect(sizes[0] <= SMALL + OVERHEAD, "h1: the first record holds %d bytes" % sizes[0])
expect(sum(s for s in sizes if s <= SMALL + OVERHEAD) >= 60000,
       "h1: fewer than 64 KiB went in small records")
expect(max(sizes) >= FULL, "h1: no full record once the burst was warm (largest %d)" % max(sizes))

check("HTTP/1.1: the same connection, quiet (buffers given back), then small and large answers")
time.sleep(QUIET)
status, n, sizes = r.get("/sim/echo/after-quiet")
print("   %s, %d bytes in %d records" % (status, n, len(sizes)))
expect(status.endswith("200 OK") and n > 0, "h1: no answer after a quiet period")
time.sleep(1.2)   # more than a second without output: the next burst starts small again
status, n, sizes = r.get("/sim/bytes/100000")
print("   %s, %d bytes in %d records: first %s" % (status, n, len(sizes), sizes[:3]))
expect(status.endswith("200 OK") and n == 100000, "h1: the large answer after a pause was not complete")
expect(sizes[0] <= SMALL + OVERHEAD, "h1: after a pause the first record holds %d bytes" % sizes[0])
time.sleep(QUIET)
status, n, sizes = r.get("/sim/bytes/100000")
expect(status.endswith("200 OK") and n == 100000, "h1: the second large answer was not complete")
r.sock.close()

check("HTTP/2: the same connection, quiet between requests, answers complete")
c = Conn(port, ca, settings=struct.pack(">HI", 4, 2**31 - 1))
c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1 - 65535)))
for sid, path, size in ((1, "/sim/bytes/200000", 200000), (3, "/sim/echo/h2-after-quiet", None),
                        (5, "/sim/bytes/200000", 200000), (7, "/sim/bytes/1000", 1000)):
    c.request(sid, get(path))
    out = c.outcome(sid, timeout=10)
    got = len(c.bodies.get(sid, b""))
    print("   stream %d %s: %s, %d bytes" % (sid, path, out, got))
    expect(out == "status 200", "h2: stream %d: %s" % (sid, out))
    expect(size is None and got > 0 or got == size, "h2: stream %d: %d bytes" % (sid, got))
    time.sleep(QUIET)
c.close()
PY
check "smsguard is still up and serving (curl h2 and h1)"
assert_serving "after the quiet connections"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
