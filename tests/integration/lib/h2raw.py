"""tests/integration/lib/h2raw.py - a frame-level HTTP/2 client for hostile-input tests.

Frames are built by hand (struct) and header blocks encoded with hpack, so a test can send
what a conforming client library refuses to: uppercase names, CR/LF/NUL in values,
connection-specific fields, pseudo-headers out of order, DATA beyond content-length,
CONTINUATION, SETTINGS and PING floods. TLS with ALPN h2 to 127.0.0.1 only, verifying the
test CA. Used by 81_h2_malformed.sh, 82_h2_floods.sh, 83_h2_timeouts.sh and 84_slow_readers.sh.
"""
import json
import re
import select
import socket
import ssl
import struct
import time
import urllib.request

import hpack

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
          4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM",
          8: "CANCEL", 9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR", 11: "ENHANCE_YOUR_CALM",
          12: "INADEQUATE_SECURITY", 13: "HTTP_1_1_REQUIRED"}
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, sid) + payload


class Conn:
    """One HTTP/2 connection. Reading is explicit (read_frames / wait_*)."""

    def __init__(self, port, ca, rcvbuf=None, settings=b"", sni="127.0.0.1"):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.set_alpn_protocols(["h2"])
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(10)
        raw.connect(("127.0.0.1", port))
        # An IP address as server_hostname verifies the IP and sends no SNI (RFC 6066 3).
        self.sock = ctx.wrap_socket(raw, server_hostname=sni)
        assert self.sock.selected_alpn_protocol() == "h2", self.sock.selected_alpn_protocol()
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_allowed_table_size = 65536
        self.buf = b""
        self.closed = False
        self.goaway = None          # (last_stream_id, error name)
        self.resets = {}            # stream id -> error name
        self.status = {}            # stream id -> :status
        self.headers = {}           # stream id -> [(name, value)] (bytes) of its answer
        self.bodies = {}            # stream id -> bytes
        self.ended = set()          # stream ids whose answer ended
        self.frames_seen = []       # (type, flags, sid) of every frame read
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings))

    # ---- sending ----
    def send(self, data):
        self.sock.sendall(data)

    def block(self, headers):
        """HPACK-encode [(name, value)], bytes or str, exactly as given (no normalising)."""
        hs = [(n.encode() if isinstance(n, str) else n, v.encode() if isinstance(v, str) else v)
              for n, v in headers]
        return self.enc.encode(hs)

    def headers_frame(self, sid, headers, end_stream=True, end_headers=True):
        flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
        return frame(HEADERS, flags, sid, self.block(headers))

    def request(self, sid, headers, end_stream=True):
        self.send(self.headers_frame(sid, headers, end_stream))

    def data(self, sid, payload, end_stream=False):
        self.send(frame(DATA, END_STREAM if end_stream else 0, sid, payload))

    def rst(self, sid, code=8):
        self.send(frame(RST_STREAM, 0, sid, struct.pack(">I", code)))

    # ---- reading ----
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def _parse(self, until, ack=True):
        """Handle the whole frames in buf; True as soon as until(self) holds."""
        while len(self.buf) >= 9:
            ln = struct.unpack(">I", b"\0" + self.buf[:3])[0]
            if len(self.buf) < 9 + ln:
                break
            ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
            sid &= 0x7FFFFFFF
            payload = self.buf[9:9 + ln]
            self.buf = self.buf[9 + ln:]
            self._handle(ftype, flags, sid, payload, ack)
            if until(self):
                return True
        return False

    def read_frames(self, until, timeout=5.0):
        """Read and handle frames until until(self) is true, the peer closes or time is up.
        SETTINGS are acknowledged; nothing else is answered. Returns until(self)."""
        deadline = time.monotonic() + timeout
        while not until(self):
            if self._parse(until):
                return True
            if self.closed or not self._fill(deadline):
                return until(self)
        return True

    def flood(self, data, timeout=15.0):
        """Send DATA as fast as the peer takes it while reading (one thread: an SSL object
        must not be used by two at once), until the peer closes or time is up. Frames read
        are handled as by read_frames, except that SETTINGS are not acknowledged. Returns
        (bytes sent, name of the error that stopped sending or None)."""
        sock, view, sent, err = self.sock, memoryview(data), 0, None
        deadline = time.monotonic() + timeout
        sock.setblocking(False)
        try:
            while not self.closed and time.monotonic() < deadline:
                want_w = err is None and sent < len(data)
                r, w, _ = select.select([sock], [sock] if want_w else [], [], 0.05)
                if w:
                    try:
                        sent += sock.send(view[sent:sent + 16384])
                    except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                        pass
                    except (OSError, ssl.SSLError) as e:
                        err = type(e).__name__
                while r or sock.pending():
                    r = None
                    try:
                        chunk = sock.recv(1 << 20)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        break
                    except (OSError, ssl.SSLError):
                        chunk = b""
                    if not chunk:
                        self.closed = True
                        break
                    self.buf += chunk
                self._parse(lambda c: False, ack=False)
        finally:
            sock.setblocking(True)
        return sent, err

    def _handle(self, ftype, flags, sid, payload, ack=True):
        self.frames_seen.append((ftype, flags, sid))
        if ftype == SETTINGS and not flags & ACK and ack:
            try:
                self.send(frame(SETTINGS, ACK, 0))
            except OSError:
                pass
        elif ftype == HEADERS:
            p = payload
            if flags & 0x8:
                p = p[1:len(p) - p[0]]
            if flags & 0x20:
                p = p[5:]
            for n, v in self.dec.decode(p, raw=True):
                if n == b":status":
                    self.status[sid] = int(v)
                self.headers.setdefault(sid, []).append((n, v))
            if flags & END_STREAM:
                self.ended.add(sid)
        elif ftype == DATA:
            self.bodies[sid] = self.bodies.get(sid, b"") + payload
            if flags & END_STREAM:
                self.ended.add(sid)
        elif ftype == RST_STREAM:
            self.resets[sid] = ERRORS.get(struct.unpack(">I", payload)[0], "?")
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, ERRORS.get(code, str(code)))

    def outcome(self, sid, timeout=5.0):
        """Wait for stream sid's fate: 'status N', 'rst ERROR', 'goaway ERROR' or 'closed'."""
        self.read_frames(lambda c: sid in c.ended or sid in c.resets or c.goaway is not None,
                         timeout)
        if sid in self.resets:
            return "rst " + self.resets[sid]
        if sid in self.ended and sid in self.status:
            return "status %d" % self.status[sid]
        if self.goaway is not None:
            return "goaway " + self.goaway[1]
        return "closed" if self.closed else "none"

    def wait_closed(self, timeout=5.0):
        """Read (and discard) until the peer closes; True when it did."""
        return self.read_frames(lambda c: c.closed, timeout) or self.closed

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def get(path):
    return [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"),
            (":path", path)]


def record_paths(record_file):
    try:
        with open(record_file, "rb") as f:
            return [json.loads(l)["path"] for l in f if l.strip()]
    except FileNotFoundError:
        return []


def metric(admin_url, name, labels=None):
    """The value of smsguard's metric NAME ({label: value} must match exactly), 0 if absent."""
    text = urllib.request.urlopen(admin_url + "/metrics", timeout=10).read().decode()
    want = dict(labels or {})
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if got == want:
            return float(m.group(3))
    return 0.0


def abuse(admin_url, kind):
    """smsguard_http2_abuse_total{kind=KIND}."""
    return metric(admin_url, "smsguard_http2_abuse_total", {"kind": kind})


# ---- reporting, shared by the tests' Python parts ----
failed = []  # messages of the expectations that did not hold


def check(what):
    print("-- " + what, flush=True)


def expect(cond, msg):
    if not cond:
        failed.append(msg)
        print("   FAILED: " + msg, flush=True)


def another_served(port, ca, path):
    """Expect a fresh connection to get a 200 for GET PATH; returns its outcome."""
    c = Conn(port, ca)
    c.request(1, get(path))
    got = c.outcome(1, 10)
    c.close()
    expect(got == "status 200", "%s: another client got %s instead of 200" % (path, got))
    return got
