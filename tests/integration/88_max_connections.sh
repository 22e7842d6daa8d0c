#!/usr/bin/env bash
# 88_max_connections: limits.max_connections (10 here, over 2 workers). With 10 client
# connections open (HTTP/1.1 keep-alive, each having been served once), the 11th is refused
# promptly (closed before or during its TLS handshake, well under a second) and never
# reaches the simulator; the 10 open ones keep working; once some close, new connections
# are accepted again. The count covers HTTP/2 connections too.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAX=10
GUARD_SETTINGS=("limits=max_connections = $MAX;")
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" \
    python3 - "$SG_PORT" "$CA_CRT" "$SIM_RECORD" "$MAX" "$SG_ADMIN_URL" <<'PY'
import json, socket, ssl, sys, time
from h2raw import metric

port, ca, record, cap, admin = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
failed = []

def expect(cond, msg):
    if not cond:
        failed.append(msg)
        print("   FAILED: " + msg, flush=True)

def connect(alpn="http/1.1"):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols([alpn])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")

def get(s, tag):
    """One keep-alive GET /sim/echo/TAG; returns the status line."""
    s.sendall(("GET /sim/echo/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % tag).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            return "closed"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = int([l.split(b":", 1)[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(rest) < n:
        rest += s.recv(65536)
    return head.split(b"\r\n", 1)[0].decode()

def attempt(tag):
    """A new connection and one request on it: ("served", secs) or ("refused: why", secs)."""
    t0 = time.monotonic()
    try:
        s = connect()
        st = get(s, tag)
        s.close()
        return ("served" if st.startswith("HTTP/1.1 200") else "refused: " + st), time.monotonic() - t0
    except (OSError, ssl.SSLError) as e:
        return "refused: %s" % type(e).__name__, time.monotonic() - t0

print("-- %d connections open, each served once" % cap, flush=True)
conns = []
for i in range(cap):
    s = connect()
    expect(get(s, "maxc-open-%d" % i).startswith("HTTP/1.1 200"), "connection %d was not served" % i)
    conns.append(s)

print("-- the next connection is refused promptly, counted, and is not forwarded", flush=True)
refused0 = metric(admin, "smsguard_connections_refused_total")
for i in range(3):
    what, secs = attempt("maxc-over-%d" % i)
    print("   attempt %d: %s in %.3f s" % (i, what, secs), flush=True)
    expect(what.startswith("refused"), "a connection over the limit was %s" % what)
    expect(secs < 1.0, "refusal took %.3f s" % secs)

refused = metric(admin, "smsguard_connections_refused_total") - refused0
expect(refused == 3, "smsguard_connections_refused_total moved by %s, expected 3" % refused)

print("-- the open connections keep working", flush=True)
for i, s in enumerate(conns):
    st = get(s, "maxc-again-%d" % i)
    expect(st.startswith("HTTP/1.1 200"), "open connection %d afterwards: %s" % (i, st))

print("-- 3 connections close: new ones are accepted again (HTTP/1.1 and HTTP/2 count alike)", flush=True)
for s in conns[:3]:
    s.close()
conns = conns[3:]
deadline, what = time.monotonic() + 3, "not tried"
while time.monotonic() < deadline:
    what, secs = attempt("maxc-after-close")
    if what == "served":
        break
    time.sleep(0.1)
expect(what == "served", "after 3 closed, a new connection was %s" % what)
h2 = [connect("h2") for _ in range(3)]
expect(all(s.selected_alpn_protocol() == "h2" for s in h2), "h2 connections not negotiated")
time.sleep(0.2)
what, secs = attempt("maxc-over-with-h2")
expect(what.startswith("refused"), "with 7 HTTP/1.1 and 3 HTTP/2 connections open, the next one was %s" % what)
for s in conns + h2:
    s.close()

paths = [json.loads(l)["path"] for l in open(record, encoding="utf-8") if l.strip()]
over = [p for p in paths if "maxc-over" in p]
expect(not over, "requests over the limit reached the simulator: %s" % over)
for msg in failed:
    print("FAIL: " + msg)
sys.exit(1 if failed else 0)
PY

assert_serving "after the connection limit"
assert_no_leaked_sockets
echo "PASS: $TEST_NAME"
