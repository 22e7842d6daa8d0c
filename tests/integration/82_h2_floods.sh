#!/usr/bin/env bash
# 82_h2_floods: HTTP/2 abuse over raw frames (tests/integration/lib/h2raw.py): rapid reset
# (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316 class), SETTINGS and PING floods
# from a client that never reads, streams beyond limits.max_streams, a header list over
# limits.max_header_bytes (plain, split over CONTINUATION, and an HPACK dynamic-table bomb).
# Each is answered as nghttp2's protections dictate (GOAWAY, RST_STREAM or connection
# closed, recorded below), nothing of it reaches the simulator, and another client is
# served during and after every flood.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAX_STREAMS=8
# debug: smsguard logs nghttp2's reason when it ends a session (checked at the end)
GUARD_SETTINGS=("limits=max_streams = $MAX_STREAMS; max_header_bytes = 4096; max_body_bytes = 65536;"
    log_level=debug)
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" "$SIM_RECORD" "$MAX_STREAMS" <<'PY'
import socket, ssl, struct, sys, threading, time
from h2raw import (Conn, get, record_paths, frame, HEADERS, CONTINUATION, SETTINGS, PING, DATA,
                   PRIORITY, WINDOW_UPDATE, RST_STREAM, END_STREAM, END_HEADERS)

port, ca, record, max_streams = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
failed = []

def check(what):
    print("-- " + what, flush=True)

def expect(cond, msg):
    if not cond:
        failed.append(msg)
        print("   FAILED: " + msg, flush=True)

def post(path, cl=5):
    return [(":method", "POST"), (":scheme", "https"), (":authority", "127.0.0.1"),
            (":path", path), ("content-length", str(cl))]

def served(tag):
    """A fresh client gets a 200 for /sim/echo/h2ok-TAG."""
    c = Conn(port, ca)
    c.request(1, get("/sim/echo/h2ok-" + tag))
    got = c.outcome(1, 10)
    c.close()
    expect(got == "status 200", "%s: another client got %s instead of 200" % (tag, got))
    return got

def blast(c, data, seconds=20):
    """Send data from a thread (the main thread does not read); returns the thread and a
    dict saying how much went out before the peer stopped taking it."""
    st = {"sent": 0, "error": None}
    def run():
        c.sock.settimeout(seconds)
        view = memoryview(data)
        try:
            while st["sent"] < len(data):
                st["sent"] += c.sock.send(view[st["sent"]:st["sent"] + 65536])
        except (OSError, ssl.SSLError) as e:
            st["error"] = type(e).__name__
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, st

# ---------------------------------------------------------------------------------------
check("rapid reset: 2000 streams opened and cancelled at once -> GOAWAY, nothing forwarded")
c = Conn(port, ca)
c.read_frames(lambda c: any(f[0] == SETTINGS for f in c.frames_seen), 5)
burst = b"".join(c.headers_frame(2 * i + 1, post("/sim/echo/flood-rr"), end_stream=False) +
                 frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8)) for i in range(2000))
t, st = blast(c, burst)
during = served("during-rapid-reset")
t.join(20)
c.wait_closed(10)
print("   sent %d/%d bytes (%s); GOAWAY %s; connection closed: %s; another client during: %s"
      % (st["sent"], len(burst), st["error"], c.goaway, c.closed, during), flush=True)
expect(c.goaway is not None, "rapid reset: no GOAWAY")
expect(c.closed, "rapid reset: the connection was not closed")
c.close()

check("900 streams opened and cancelled (under nghttp2's burst of 1000): no GOAWAY, the connection serves on")
c = Conn(port, ca)
burst = b"".join(c.headers_frame(2 * i + 1, post("/sim/echo/flood-rr-under"), end_stream=False) +
                 frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8)) for i in range(900))
c.send(burst)
c.request(1801, get("/sim/echo/h2ok-after-900-resets"))
got = c.outcome(1801, 10)
print("   then: %s; GOAWAY %s" % (got, c.goaway), flush=True)
expect(got == "status 200" and c.goaway is None,
       "900 resets: expected the connection to serve on, got %s, GOAWAY %s" % (got, c.goaway))
c.close()

# ---------------------------------------------------------------------------------------
check("CONTINUATION flood: HEADERS without END_HEADERS, then 10000 CONTINUATION frames")
c = Conn(port, ca)
blk = c.block(get("/sim/echo/flood-continuation") + [("x-pad", "p")])
data = frame(HEADERS, END_STREAM, 1, blk[:3])
rest = blk[3:]
data += b"".join(frame(CONTINUATION, 0, 1, rest[i:i + 1]) for i in range(len(rest)))
data += frame(CONTINUATION, 0, 1, b"") * 10000
t, st = blast(c, data)
c.wait_closed(10)
t.join(20)
print("   sent %d/%d bytes (%s); GOAWAY %s; connection closed: %s"
      % (st["sent"], len(data), st["error"], c.goaway, c.closed), flush=True)
# nghttp2 (max_continuations 8) fails the session with NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
# and queues no GOAWAY: smsguard drops the connection, as nghttpx does.
expect(c.closed, "CONTINUATION flood: the connection was not closed")
c.close()
served("after-continuation")

# ---------------------------------------------------------------------------------------
for kind, one in (("SETTINGS", frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535))),
                  ("PING", frame(PING, 0, 0, b"12345678"))):
    check("%s flood: 300000 frames, the client never reads the ACKs" % kind)
    c = Conn(port, ca, rcvbuf=4096)
    data = one * 300000
    t, st = blast(c, data, 15)
    t.join(25)
    c.wait_closed(15)
    print("   sent %d/%d bytes (%s); GOAWAY %s; connection closed: %s"
          % (st["sent"], len(data), st["error"], c.goaway, c.closed), flush=True)
    expect(c.closed, "%s flood: the connection was not closed" % kind)
    c.close()
    served("after-" + kind.lower())

# ---------------------------------------------------------------------------------------
check("more than max_streams (%d) open streams: the extra ones are refused" % max_streams)
c = Conn(port, ca)
c.read_frames(lambda c: any(f[0] == SETTINGS for f in c.frames_seen), 5)
time.sleep(0.1)
n = max_streams + 12
c.send(b"".join(c.headers_frame(2 * i + 1, post("/sim/echo/flood-streams"), end_stream=False)
                for i in range(n)))
c.read_frames(lambda c: len(c.resets) >= n - max_streams or c.goaway is not None, 5)
print("   resets %s; GOAWAY %s" % (sorted(set(c.resets.values())) or "none", c.goaway), flush=True)
refused = [s for s in c.resets if s > 2 * max_streams - 1]
# RFC 9113 5.1.2 allows a stream error (REFUSED_STREAM) or PROTOCOL_ERROR; nghttp2 1.52
# ends the connection with GOAWAY PROTOCOL_ERROR once our SETTINGS are acknowledged,
# its last stream id being the last one within the limit.
if c.goaway is not None:
    expect(c.goaway == (2 * max_streams - 1, "PROTOCOL_ERROR"),
           "max_streams: GOAWAY %s, expected last stream %d, PROTOCOL_ERROR" % (c.goaway, 2 * max_streams - 1))
else:
    expect(len(refused) == n - max_streams and set(c.resets.values()) <= {"REFUSED_STREAM", "PROTOCOL_ERROR"},
           "max_streams: %d streams over the limit, resets %s" % (n - max_streams, c.resets))
expect(not any(s <= 2 * max_streams - 1 for s in c.resets),
       "max_streams: a stream within the limit was reset: %s" % c.resets)
if c.goaway is None:
    # cancel the open ones; the connection then serves a request again
    for i in range(max_streams):
        c.rst(2 * i + 1)
    sid = 2 * n + 1
    c.request(sid, get("/sim/echo/h2ok-same-conn-after-streams"))
    got = c.outcome(sid)
    print("   then on the same connection: %s" % got)
    expect(got == "status 200", "max_streams: the connection did not serve a request afterwards: " + got)
c.close()
served("after-streams")

# ---------------------------------------------------------------------------------------
check("a header list over max_header_bytes (4096): refused, plain and over CONTINUATION")
c = Conn(port, ca)
c.request(1, get("/sim/echo/flood-bighdr") + [("x-big", "b" * 6000)])
r1 = c.outcome(1)
hdrs = get("/sim/echo/flood-manyhdr") + [("x-many-%03d" % i, "v" * 100) for i in range(60)]
blk = c.block(hdrs)
parts = [blk[i:i + 1500] for i in range(0, len(blk), 1500)]
data = frame(HEADERS, END_STREAM, 3, parts[0])
for i, p in enumerate(parts[1:]):
    data += frame(CONTINUATION, END_HEADERS if i == len(parts) - 2 else 0, 3, p)
c.send(data)
r3 = c.outcome(3)
print("   one 6000-byte field: %s; %d fields over %d CONTINUATION frames: %s"
      % (r1, len(hdrs), len(parts) - 1, r3), flush=True)
for what, got in (("one big field", r1), ("fields over CONTINUATION", r3)):
    expect(got in ("status 431", "rst PROTOCOL_ERROR", "rst REFUSED_STREAM")
           or got.startswith("goaway"), "max_header_bytes (%s): got %s" % (what, got))
c.close()

check("an HPACK bomb: one 3000-byte field in the dynamic table, referenced 2000 times")
c = Conn(port, ca)
import hpack
enc = hpack.Encoder()
# the priming request is within the limits (and answered); its x-bomb field, encoded last,
# becomes dynamic-table entry 62
first = enc.encode(get("/sim/echo/h2ok-hpack-prime") + [(b"x-bomb", b"z" * 3000)])
# the bomb: pseudo-headers not indexed (entry 62 stays x-bomb), then 2000 one-byte
# references to it: 2 kB on the wire, 6 MB of header list
pseudo = [hpack.NeverIndexedHeaderTuple(n.encode(), v.encode())
          for n, v in get("/sim/echo/flood-hpack-bomb")]
bomb = enc.encode(pseudo) + b"\xbe" * 2000
c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, first))
r1 = c.outcome(1)
c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, bomb))
r3 = c.outcome(3)
print("   priming request: %s; bomb (%d bytes on the wire): %s" % (r1, len(bomb), r3), flush=True)
expect(r1 == "status 200", "HPACK bomb: the priming request got %s" % r1)
expect(r3 == "status 431", "HPACK bomb: got %s, expected 431" % r3)
c.close()
served("after-header-limits")

# ---------------------------------------------------------------------------------------
# Not protected by nghttp2 1.52 (a gap, see the report): floods that cost the gateway CPU
# but produce no answer frames. Only checked: smsguard keeps serving others.
for kind, data in (("PRIORITY", frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)) * 200000),
                   ("WINDOW_UPDATE", frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)) * 200000),
                   ("empty DATA", None)):
    check("%s flood (200000 frames): reported, not required to be cut; others are served" % kind)
    c = Conn(port, ca)
    if data is None:
        c.request(1, post("/sim/echo/flood-empty-data"), end_stream=False)
        data = frame(DATA, 0, 1, b"") * 200000
    t, st = blast(c, data, 15)
    served("during-" + kind.replace(" ", "-").lower())
    t.join(20)
    c.read_frames(lambda c: c.goaway is not None, 1)
    print("   sent %d/%d bytes; GOAWAY %s; connection closed: %s"
          % (st["sent"], len(data), c.goaway, c.closed), flush=True)
    c.close()

# ---------------------------------------------------------------------------------------
time.sleep(0.3)
bad = [p for p in record_paths(record) if "flood-" in p]
expect(not bad, "flood requests reached the simulator: %s" % sorted(set(bad)))
for msg in failed:
    print("FAIL: " + msg)
sys.exit(1 if failed else 0)
PY

check "smsguard is still up and serving (curl h2 and h1), /healthz 200"
is_alive "$SG_PID" || fail "smsguard died"
for proto in http2 http1.1; do
    out=$(sg_curl "--$proto" -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/still-alive-$proto")
    assert_eq 200 "$out" "status after the floods (--$proto)"
done
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz"
record_none_of flood-

# What nghttp2 named (informational: the closes themselves are asserted above; once, under a
# loaded machine, the CONTINUATION line was missing while the connection had been closed).
echo "   nghttp2's reasons in smsguard's debug log:"
grep "HTTP/2 error" "$SG_LOG" | sort | uniq -c | sed "s/^/   /"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
