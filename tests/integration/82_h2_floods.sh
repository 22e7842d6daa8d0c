#!/usr/bin/env bash
# 82_h2_floods: HTTP/2 abuse over raw frames (tests/integration/lib/h2raw.py): rapid reset
# (CVE-2023-44487), CONTINUATION flood (CVE-2024-27316 class), SETTINGS and PING floods
# (no ACK sent, 4 KiB receive buffer), PRIORITY, WINDOW_UPDATE and empty DATA floods, streams
# beyond limits.max_streams, a header list over limits.max_header_bytes (plain, split over
# CONTINUATION, and an HPACK dynamic-table bomb). Every flood ends its connection with
# GOAWAY ENHANCE_YOUR_CALM and moves smsguard_http2_abuse_total{kind=...}; the stream
# limits are answered as nghttp2 dictates (RST_STREAM or GOAWAY PROTOCOL_ERROR) and
# oversized header lists with 431. Nothing of it reaches the simulator, and another
# client is served during and after every flood. Legitimate load (h2load, small windows,
# uploads) moves none of the counters.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need h2load nghttp2-client

MAX_STREAMS=8
# debug: smsguard logs nghttp2's reason when it ends a session (checked at the end)
GUARD_SETTINGS=("limits=max_streams = $MAX_STREAMS; max_header_bytes = 4096; max_body_bytes = 65536;"
    log_level=debug)
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" "$SIM_RECORD" "$MAX_STREAMS" "$SG_ADMIN_URL" <<'PY'
import socket, ssl, struct, sys, threading, time
from h2raw import (another_served, check, expect, failed, Conn, get, record_paths, frame, abuse, HEADERS, CONTINUATION, SETTINGS, PING,
                   DATA, PRIORITY, WINDOW_UPDATE, RST_STREAM, END_STREAM, END_HEADERS)

port, ca, record, max_streams = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
admin = sys.argv[5]

def post(path, cl=5):
    return [(":method", "POST"), (":scheme", "https"), (":authority", "127.0.0.1"),
            (":path", path), ("content-length", str(cl))]

def served(tag):
    return another_served(port, ca, "/sim/echo/h2ok-" + tag)

def flood(c, data, seconds=15, during=None):
    """c.flood(data) (send while reading, one thread); DURING() runs meanwhile on its own
    connection in another thread. Returns (sent, error) and what DURING returned."""
    res = {}
    t = None
    if during is not None:
        t = threading.Thread(target=lambda: res.setdefault("during", during()), daemon=True)
        t.start()
    sent, err = c.flood(data, seconds)
    if t is not None:
        t.join(20)
    return (sent, err), res.get("during")

def cut_for_abuse(what, c, kind, before, code="ENHANCE_YOUR_CALM"):
    """C was ended for abuse: GOAWAY CODE, connection closed, abuse counter KIND moved."""
    c.wait_closed(10)
    after = abuse(admin, kind)
    print("   GOAWAY %s; connection closed: %s; http2_abuse_total{kind=%s} %d -> %d"
          % (c.goaway, c.closed, kind, before, after), flush=True)
    expect(c.goaway is not None and c.goaway[1] == code,
           "%s: expected GOAWAY %s, got %s" % (what, code, c.goaway))
    expect(c.closed, "%s: the connection was not closed" % what)
    expect(after >= before + 1, "%s: http2_abuse_total{kind=%s} did not move" % (what, kind))

# ---------------------------------------------------------------------------------------
check("rapid reset: 2000 streams opened and cancelled at once -> GOAWAY ENHANCE_YOUR_CALM, nothing forwarded")
before = abuse(admin, "rapid_reset")
c = Conn(port, ca)
c.read_frames(lambda c: any(f[0] == SETTINGS for f in c.frames_seen), 5)
burst = b"".join(c.headers_frame(2 * i + 1, post("/sim/echo/flood-rr"), end_stream=False) +
                 frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8)) for i in range(2000))
st, during = flood(c, burst, during=lambda: served("during-rapid-reset"))
print("   sent %d/%d bytes (%s); another client during: %s" % (st[0], len(burst), st[1], during))
# smsguard's bucket of unanswered resets (burst 200, 33 a second) empties before
# nghttp2's (burst 1000, 33 a second), whose GOAWAY would say INTERNAL_ERROR
cut_for_abuse("rapid reset", c, "rapid_reset", before)
c.close()

check("150 streams opened and cancelled (under the burst of 200): no GOAWAY, the connection serves on")
c = Conn(port, ca)
burst = b"".join(c.headers_frame(2 * i + 1, post("/sim/echo/flood-rr-under"), end_stream=False) +
                 frame(RST_STREAM, 0, 2 * i + 1, struct.pack(">I", 8)) for i in range(150))
c.send(burst)
c.request(301, get("/sim/echo/h2ok-after-150-resets"))
got = c.outcome(301, 10)
print("   then: %s; GOAWAY %s" % (got, c.goaway), flush=True)
expect(got == "status 200" and c.goaway is None,
       "150 resets: expected the connection to serve on, got %s, GOAWAY %s" % (got, c.goaway))
c.close()

# ---------------------------------------------------------------------------------------
check("CONTINUATION flood: HEADERS without END_HEADERS, then 10000 CONTINUATION frames")
before = abuse(admin, "continuation_flood")
c = Conn(port, ca)
blk = c.block(get("/sim/echo/flood-continuation") + [("x-pad", "p")])
data = frame(HEADERS, END_STREAM, 1, blk[:3])
rest = blk[3:]
data += b"".join(frame(CONTINUATION, 0, 1, rest[i:i + 1]) for i in range(len(rest)))
data += frame(CONTINUATION, 0, 1, b"") * 10000
st, _ = flood(c, data)
print("   sent %d/%d bytes (%s)" % (st[0], len(data), st[1]), flush=True)
# nghttp2 (max_continuations 8) fails the session with NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
# and queues no GOAWAY: smsguard sends ENHANCE_YOUR_CALM itself before closing.
cut_for_abuse("CONTINUATION flood", c, "continuation_flood", before)
c.close()
served("after-continuation")

# ---------------------------------------------------------------------------------------
for kind, one in (("SETTINGS", frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 65535))),
                  ("PING", frame(PING, 0, 0, b"12345678"))):
    check("%s flood: 300000 frames from a client with a 4 KiB receive buffer, no ACK sent" % kind)
    label = kind.lower() + "_flood"
    before = abuse(admin, label)
    c = Conn(port, ca, rcvbuf=4096)
    data = one * 300000
    st, _ = flood(c, data)
    print("   sent %d/%d bytes (%s)" % (st[0], len(data), st[1]), flush=True)
    # smsguard's budget (100 a second) ends it long before nghttp2's queue of 1000 unread
    # ACKs (NGHTTP2_ERR_FLOODED, counted as kind "flood")
    cut_for_abuse(kind + " flood", c, label, before)
    c.close()
    served("after-" + kind.lower())

# ---------------------------------------------------------------------------------------
check("more than max_streams (%d) open streams: the extra ones are refused" % max_streams)
before = abuse(admin, "protocol_error")
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
    after = abuse(admin, "protocol_error")
    print("   http2_abuse_total{kind=protocol_error} %d -> %d" % (before, after))
    expect(after >= before + 1, "max_streams: GOAWAY PROTOCOL_ERROR not counted as protocol_error")
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
before = abuse(admin, "header_list")
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
after = abuse(admin, "header_list")
print("   http2_abuse_total{kind=header_list} %d -> %d" % (before, after))
expect(after >= before + 2, "max_header_bytes: http2_abuse_total{kind=header_list} did not count both")

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
# Not limited by nghttp2 1.52: smsguard's own counters (h2_server.c, "Abuse").
for kind, label, data in (
        ("PRIORITY", "priority_flood", frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)) * 200000),
        ("WINDOW_UPDATE", "window_update_flood", frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)) * 200000),
        ("empty DATA", "empty_data_flood", None)):
    check("%s flood (200000 frames): GOAWAY ENHANCE_YOUR_CALM, counted; others are served" % kind)
    before = abuse(admin, label)
    c = Conn(port, ca)
    if data is None:
        c.request(1, post("/sim/echo/flood-empty-data"), end_stream=False)
        data = frame(DATA, 0, 1, b"") * 200000
    st, during = flood(c, data, during=lambda: served("during-" + kind.replace(" ", "-").lower()))
    print("   sent %d/%d bytes (%s); another client during: %s" % (st[0], len(data), st[1], during),
          flush=True)
    cut_for_abuse(kind + " flood", c, label, before)
    c.close()

# ---------------------------------------------------------------------------------------
time.sleep(0.3)
bad = [p for p in record_paths(record) if "flood-" in p]
expect(not bad, "flood requests reached the simulator: %s" % sorted(set(bad)))
for msg in failed:
    print("FAIL: " + msg)
sys.exit(1 if failed else 0)
PY

# All of smsguard_http2_abuse_total, every kind summed.
abuse_sum() {
    curl -sS --max-time 5 "$SG_ADMIN_URL/metrics" |
        awk '/^smsguard_http2_abuse_total\{/ { n += $2 } END { printf "%d\n", n }'
}

check "legitimate load trips none of the limits: h2load 20000 requests over 32 connections, downloads with 1 KiB windows, 60 KiB uploads"
a0=$(abuse_sum)
# -m 8: this test's max_streams (it_24 runs -m 10 against the default of 100)
timeout 120 h2load -n 20000 -c 32 -m 8 "$SG_URL/sim/echo/legit-load" >"$WORK/h2load-a.out" 2>&1 ||
    { cat "$WORK/h2load-a.out" >&2; fail "h2load exited non-zero"; }
h2load_check "$WORK/h2load-a.out" 20000
# a WINDOW_UPDATE for every few hundred bytes of answer (stream and connection windows 1 KiB)
timeout 120 h2load -n 200 -c 2 -m 4 -w 10 -W 10 "$SG_URL/sim/bytes/200000" >"$WORK/h2load-b.out" 2>&1 ||
    { cat "$WORK/h2load-b.out" >&2; fail "h2load (small windows) exited non-zero"; }
h2load_check "$WORK/h2load-b.out" 200
head -c 61440 /dev/zero | tr '\0' 'a' >"$WORK/body60k"
timeout 120 h2load -n 500 -c 4 -m 4 -d "$WORK/body60k" "$SG_URL/sim/echo/legit-upload" >"$WORK/h2load-c.out" 2>&1 ||
    { cat "$WORK/h2load-c.out" >&2; fail "h2load (uploads) exited non-zero"; }
h2load_check "$WORK/h2load-c.out" 500
assert_eq "$a0" "$(abuse_sum)" "smsguard_http2_abuse_total (all kinds) moved under legitimate load"

check "smsguard is still up and serving (curl h2 and h1), /healthz 200"
assert_serving "after the floods"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz"
record_none_of flood-

# What nghttp2 named (informational: the closes themselves are asserted above; once, under a
# loaded machine, the CONTINUATION line was missing while the connection had been closed).
echo "   nghttp2's reasons in smsguard's debug log:"
grep "HTTP/2 error" "$SG_LOG" | sort | uniq -c | sed "s/^/   /"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
