#!/usr/bin/env bash
# 84_slow_readers: limits.send_timeout_ms. Clients that ask for a large answer
# (/sim/bytes/N) and then take none of it are cut once no byte has gone out for
# send_timeout_ms: an HTTP/1.1 client and an HTTP/2 client that do not read their sockets
# (conn.c's send timer), and an HTTP/2 client that reads but keeps its flow-control window
# at 0 (GOAWAY ENHANCE_YOUR_CALM). Each is counted (smsguard_client_send_timeouts_total,
# and smsguard_http2_abuse_total{kind="send_timeout"} for HTTP/2); 20 such clients at once
# keep smsguard's memory bounded (RSS from /proc), a client that reads slowly but steadily
# gets its whole answer, and others are served meanwhile.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GUARD_SETTINGS=("limits=send_timeout_ms = 1500; max_body_bytes = 65536;" log_level=debug)
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" "$SG_ADMIN_URL" "$SG_PID" <<'PY'
import socket, ssl, struct, sys, threading, time
import h1tls
from h2raw import another_served, check, expect, failed, Conn, get, frame, abuse, metric, SETTINGS, WINDOW_UPDATE

port, ca, admin, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
SEND_S = 1.5
BIG = 200 * 1000 * 1000   # far more than any buffer on the way

def timeouts():
    return metric(admin, "smsguard_client_send_timeouts_total")

def rss_kb():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def h1_conn(rcvbuf=8192):
    return h1tls.connect(port, ca, rcvbuf)

def h1_get(s, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())

def h2_big_window():
    """An HTTP/2 client that opens every window wide (the socket is the only brake)."""
    c = Conn(port, ca, rcvbuf=8192, settings=struct.pack(">HI", 4, 2**31 - 1))
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1 - 65535)))
    return c

def wait_metric(fn, target, limit):
    t0 = time.monotonic()
    while fn() < target and time.monotonic() - t0 < limit:
        time.sleep(0.05)
    return fn(), time.monotonic() - t0

def served(tag):
    return another_served(port, ca, "/sim/echo/slow-ok-" + tag)

# ---------------------------------------------------------------------------------------
check("HTTP/1.1: a %d-byte answer, the client never reads: cut after send_timeout_ms" % BIG)
before = timeouts()
s = h1_conn()
h1_get(s, "/sim/bytes/%d" % BIG)
got, took = wait_metric(timeouts, before + 1, SEND_S + 10)
print("   client_send_timeouts_total %d -> %d after %.2f s; another client: %s"
      % (before, got, took, served("h1")), flush=True)
expect(got >= before + 1, "h1: the connection was not cut for its send timeout")
expect(SEND_S - 0.1 <= took <= SEND_S + 6, "h1: cut after %.2f s, send_timeout is %.1f s" % (took, SEND_S))
got, end = h1tls.read_all(s)
n = len(got)
print("   the client then read %d bytes and saw %s" % (n, end))
expect(n < BIG and end != "timeout", "h1: read %d bytes, ended by %s: not cut" % (n, end))
s.close()

# ---------------------------------------------------------------------------------------
check("HTTP/2: the same with every window open, the client never reads its socket")
before, before2 = timeouts(), abuse(admin, "send_timeout")
c = h2_big_window()
c.request(1, get("/sim/bytes/%d" % BIG))
got, took = wait_metric(timeouts, before + 1, SEND_S + 10)
got2 = abuse(admin, "send_timeout")
print("   client_send_timeouts_total %d -> %d after %.2f s; http2_abuse_total{kind=send_timeout}"
      " %d -> %d" % (before, got, took, before2, got2), flush=True)
expect(got >= before + 1, "h2: the connection was not cut for its send timeout")
expect(got2 >= before2 + 1, "h2: http2_abuse_total{kind=send_timeout} did not move")
expect(SEND_S - 0.1 <= took <= SEND_S + 6, "h2: cut after %.2f s, send_timeout is %.1f s" % (took, SEND_S))
c.read_frames(lambda c: c.closed, 15)
n = len(c.bodies.get(1, b""))
print("   the client then read %d bytes of body; closed: %s" % (n, c.closed))
expect(c.closed and n < BIG, "h2: read %d bytes, closed %s" % (n, c.closed))
c.close()

# ---------------------------------------------------------------------------------------
check("HTTP/2: a client that reads but keeps its stream window at 0: GOAWAY ENHANCE_YOUR_CALM")
before, before2 = timeouts(), abuse(admin, "send_timeout")
c = Conn(port, ca, settings=struct.pack(">HI", 4, 0))
t0 = time.monotonic()
c.request(1, get("/sim/bytes/1000000"))
c.read_frames(lambda c: c.closed, SEND_S + 10)
took = time.monotonic() - t0
got2 = abuse(admin, "send_timeout")
print("   status %s, %d body bytes, GOAWAY %s, closed %s after %.2f s; send_timeout %d -> %d"
      % (c.status.get(1), len(c.bodies.get(1, b"")), c.goaway, c.closed, took, before2, got2))
expect(c.status.get(1) == 200, "zero window: no 200 headers")
expect(c.goaway is not None and c.goaway[1] == "ENHANCE_YOUR_CALM",
       "zero window: expected GOAWAY ENHANCE_YOUR_CALM, got %s" % (c.goaway,))
expect(c.closed, "zero window: the connection was not closed")
expect(SEND_S - 0.1 <= took <= SEND_S + 6, "zero window: cut after %.2f s" % took)
expect(got2 >= before2 + 1, "zero window: http2_abuse_total{kind=send_timeout} did not move")
expect(timeouts() >= before + 1, "zero window: client_send_timeouts_total did not move")
c.close()

# ---------------------------------------------------------------------------------------
check("a client that reads 128 KiB every 0.5 s (under send_timeout) gets its whole 1 MB answer")
s = h1_conn(rcvbuf=65536)
h1_get(s, "/sim/bytes/1000000")
data = b""
s.settimeout(10)
t0 = time.monotonic()
try:
    while b"\r\n\r\n" not in data or len(data) - data.index(b"\r\n\r\n") - 4 < 1000000:
        time.sleep(0.5)
        got = 0
        while got < 131072:
            b = s.recv(131072 - got)
            if not b:
                raise EOFError
            got += len(b)
            data += b
            if len(data) - data.find(b"\r\n\r\n") - 4 >= 1000000 and b"\r\n\r\n" in data:
                break
except (EOFError, OSError, ssl.SSLError) as e:
    print("   stopped: %s" % type(e).__name__)
body = len(data) - data.index(b"\r\n\r\n") - 4 if b"\r\n\r\n" in data else -1
print("   %s; %d body bytes in %.1f s" % (data.split(b"\r\n")[0], body, time.monotonic() - t0))
expect(data.startswith(b"HTTP/1.1 200") and body == 1000000, "slow reader: got %d body bytes" % body)
s.close()

# ---------------------------------------------------------------------------------------
check("20 clients (10 HTTP/1.1, 10 HTTP/2) ask for %d bytes each and never read: memory stays bounded" % BIG)
before = timeouts()
rss0 = rss_kb()
conns = []
for i in range(10):
    s = h1_conn()
    h1_get(s, "/sim/bytes/%d" % BIG)
    conns.append(s)
    c = h2_big_window()
    c.request(1, get("/sim/bytes/%d" % BIG))
    conns.append(c)
peak = rss0
t0 = time.monotonic()
while timeouts() < before + 20 and time.monotonic() - t0 < SEND_S + 15:
    peak = max(peak, rss_kb())
    time.sleep(0.05)
got = timeouts()
print("   RSS %d kB before, %d kB at the peak; %d cut after %.2f s; another client: %s"
      % (rss0, peak, got - before, time.monotonic() - t0, served("during-20")), flush=True)
expect(got >= before + 20, "20 slow readers: only %d were cut" % (got - before))
# about 0.5 MB each at most (the upstream pauses at 256 KiB of backlog); unbounded would
# be gigabytes
expect(peak - rss0 < 64 * 1024, "20 slow readers: RSS grew by %d kB" % (peak - rss0))
for x in conns:
    x.close()

for msg in failed:
    print("FAIL: " + msg)
sys.exit(1 if failed else 0)
PY

check "smsguard is still up and serving (curl h2 and h1)"
assert_serving "after the slow readers"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
