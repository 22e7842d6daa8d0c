#!/usr/bin/env python3
"""tests/soak/traffic.py - a bounded mix of valid and hostile traffic against one smsguard on
127.0.0.1, for a soak (tests/integration/95_soak.sh; issue 8).

For --seconds, several threads run at once, each paced so the load stays bounded:

  stop-h1, stop-h2   valid stop-test requests (HTTP/1.1 keep-alive, HTTP/2 over h2raw.Conn),
                     each with its own deviceGroupId "soak-dg-<n>" (written to --groups when
                     answered 200, so the test can find each in the audit log)
  echo-h1            valid unguarded requests (GET /sim/echo/soak-ok-<n>)
  h2load             bursts of h2load (-n bounded) on /sim/echo/soak-h2load
  hostile            in turn: malformed HTTP/1.1, smuggling attempts (CL+TE, TE twice, two
                     Content-Lengths), a wrong token, invalid JSON, HTTP/2 rapid reset,
                     abrupt disconnects mid-request (HTTP/1.1 and HTTP/2)
  slow               slow clients (headers dripped, a body never finished) that smsguard's
                     header/body timeouts must cut
  rss                smsguard's VmRSS (/proc/PID/status) every second; notes if it is gone

Every hostile request names "soakhostile" in its path (and body): the simulator must never
receive one. A summary (counts by class, failures, RSS samples) goes to --out as JSON.
Exit status 0 unless the generator itself broke; the test judges the summary.
"""
import argparse
import http.client
import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                                "lib"))
from h2raw import (Conn, frame, DATA, HEADERS, RST_STREAM, WINDOW_UPDATE,  # noqa: E402
                   END_STREAM, END_HEADERS)

VP = "/sdk/vim25/8.0.3.0/sms/VasaProvider"
M = "TestFailoverReplicationGroupStop_Task"
MARK = "soakhostile"

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--ca", required=True)
ap.add_argument("--token", required=True)
ap.add_argument("--pid", type=int, required=True)
ap.add_argument("--seconds", type=float, default=30)
ap.add_argument("--out", required=True)
ap.add_argument("--groups", required=True)
ap.add_argument("--slow-cut-s", type=float, default=10.0,
                help="a slow client not cut by smsguard within this many seconds is a failure")
args = ap.parse_args()

T0 = time.monotonic()
END = T0 + args.seconds
lock = threading.Lock()
counts = {}        # class -> number of requests (or attempts) made
failures = []      # (class, what happened), first ones only
groups_ok = []     # deviceGroupIds of valid stop-tests answered 200
rss = []           # (seconds since start, VmRSS kB)
state = {"alive": True, "seq": 0}


def count(cls, n=1):
    with lock:
        counts[cls] = counts.get(cls, 0) + n


def failure(cls, what):
    with lock:
        counts["failures." + cls] = counts.get("failures." + cls, 0) + 1
        if len(failures) < 50:
            failures.append([cls, round(time.monotonic() - T0, 1), str(what)[:300]])


def next_seq():
    with lock:
        state["seq"] += 1
        return state["seq"]


def running():
    return time.monotonic() < END and state["alive"]


def ctx():
    c = ssl.create_default_context(cafile=args.ca)
    c.set_alpn_protocols(["http/1.1"])
    return c


def tls_socket(timeout=10):
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=timeout)
    return ctx().wrap_socket(raw, server_hostname="127.0.0.1")


def stop_body(dg):
    return json.dumps({"groupId": [{"faultDomainId": {"id": "fd-1"},
                                    "deviceGroupId": {"id": dg}}], "force": False}).encode()


def read_until_close(s, limit_s):
    """Read until the peer closes (or limit_s passes); the bytes read and whether it closed."""
    got, deadline = b"", time.monotonic() + limit_s
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except (OSError, ssl.SSLError):
            return got, True
        if not chunk:
            return got, True
        got += chunk
    return got, False


def status_of(raw):
    """The status of the first HTTP/1.1 answer in raw bytes, or 0."""
    try:
        return int(raw.split(b"\r\n", 1)[0].split(b" ")[1])
    except (IndexError, ValueError):
        return 0


# ---- valid traffic ----------------------------------------------------------------------

def stop_h1():
    conn, used = None, 0
    while running():
        n = next_seq()
        dg = "soak-dg-%d" % n
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", args.port, timeout=15,
                                                   context=ctx())
                used = 0
            conn.request("POST", "%s/soakv-%d/%s" % (VP, n, M), body=stop_body(dg),
                         headers={"Authorization": "Bearer " + args.token,
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
            count("stop_valid")
            if r.status == 200:
                with lock:
                    groups_ok.append(dg)
            else:
                failure("stop_valid", "h1 %s: status %d %r" % (dg, r.status, body[:120]))
            used += 1
            if used >= 40 or r.getheader("connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            count("stop_valid")
            failure("stop_valid", "h1 %s: %r" % (dg, e))
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(0.03)
    if conn is not None:
        conn.close()


def h2_open():
    c = Conn(args.port, args.ca)
    # h2raw answers no flow control: open the connection window once, wide
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", (1 << 30))))
    return c


def stop_h2():
    c, sid = None, 1
    while running():
        n = next_seq()
        dg = "soak-dg-%d" % n
        try:
            if c is None or sid > 2 * 30:
                if c is not None:
                    c.close()
                c, sid = h2_open(), 1
            body = stop_body(dg)
            hdrs = [(":method", "POST"), (":scheme", "https"), (":authority", "127.0.0.1"),
                    (":path", "%s/soakv-%d/%s" % (VP, n, M)),
                    ("authorization", "Bearer " + args.token),
                    ("content-type", "application/json"), ("content-length", str(len(body)))]
            c.send(c.headers_frame(sid, hdrs, end_stream=False) +
                   frame(DATA, END_STREAM, sid, body))
            out = c.outcome(sid, 15)
            count("stop_valid")
            if out == "status 200":
                with lock:
                    groups_ok.append(dg)
            else:
                failure("stop_valid", "h2 %s: %s" % (dg, out))
                c.close()
                c = None
            sid += 2
            # every other request on this connection: an unguarded one
            c2 = c
            if c2 is not None:
                c2.request(sid, [(":method", "GET"), (":scheme", "https"),
                                 (":authority", "127.0.0.1"), (":path", "/sim/echo/soak-ok-h2-%d" % n)])
                out = c2.outcome(sid, 15)
                count("echo_valid")
                if out != "status 200":
                    failure("echo_valid", "h2 soak-ok-h2-%d: %s" % (n, out))
                    c2.close()
                    c = None
                sid += 2
        except (OSError, ssl.SSLError, AssertionError) as e:
            count("stop_valid")
            failure("stop_valid", "h2 %s: %r" % (dg, e))
            if c is not None:
                c.close()
            c = None
        time.sleep(0.03)
    if c is not None:
        c.close()


def echo_h1():
    conn = None
    while running():
        n = next_seq()
        try:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", args.port, timeout=15,
                                                   context=ctx())
            conn.request("GET", "/sim/echo/soak-ok-%d" % n)
            r = conn.getresponse()
            r.read()
            count("echo_valid")
            if r.status != 200:
                failure("echo_valid", "h1 soak-ok-%d: status %d" % (n, r.status))
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            count("echo_valid")
            failure("echo_valid", "h1 soak-ok-%d: %r" % (n, e))
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(0.05)
    if conn is not None:
        conn.close()


def h2load():
    url = "https://127.0.0.1:%d/sim/echo/soak-h2load" % args.port
    n_req = 300
    while running():
        # not started when it could outlive the soak by much
        if END - time.monotonic() < 5:
            break
        try:
            p = subprocess.run(["h2load", "-n", str(n_req), "-c", "4", "-m", "8", url],
                               capture_output=True, text=True, timeout=60)
            out = p.stdout
            ok = 0
            for line in out.splitlines():
                if line.startswith("status codes:"):
                    ok = int(line.split()[2])
            count("h2load_bursts")
            count("h2load_requests", n_req)
            count("h2load_2xx", ok)
            if ok != n_req:
                failure("h2load", "burst: %d of %d 2xx: %s" % (ok, n_req, out[-400:]))
        except (OSError, subprocess.SubprocessError) as e:
            failure("h2load", repr(e))
        stop = time.monotonic() + 10
        while running() and time.monotonic() < stop:
            time.sleep(0.2)


# ---- hostile traffic ----------------------------------------------------------------------

def raw_h1(kind, data, expect, fault=None):
    """Send DATA over a new TLS connection; the first answer must have a status in EXPECT
    and, with FAULT, be the VI/JSON fault of that _typeName (docs/design.md: faults are 500s)."""
    count("hostile." + kind)
    try:
        s = tls_socket()
        s.sendall(data)
        got, _ = read_until_close(s, 5)
        s.close()
    except (OSError, ssl.SSLError) as e:
        failure("hostile." + kind, repr(e))
        return
    st = status_of(got)
    if st not in expect:
        failure("hostile." + kind, "status %d (want one of %s): %r" % (st, expect, got[:120]))
    elif fault is not None and b'"_typeName":"%s"' % fault.encode() not in got:
        failure("hostile." + kind, "not a %s fault: %r" % (fault, got[:300]))


def hostile_round(n):
    tag = "%s-%d" % (MARK, n)
    host = b"Host: 127.0.0.1\r\n"
    smuggled = ("GET /sim/echo/%s-smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % tag).encode()
    # malformed request lines and headers
    raw_h1("malformed", ("GET /sim/echo/%s-m1 HTTP/1.1\r\n" % tag).encode() + host +
           b"Bad Header Without Colon\r\n\r\n", (400,))
    raw_h1("malformed", ("GET /sim/echo/%s-m2 x HTTP/1.1\r\n" % tag).encode() + host + b"\r\n",
           (400,))
    raw_h1("malformed", ("GET /sim/echo/%s-m3 HTTP/1.1\r\n" % tag).encode() + host +
           b"X-Nul: a\x00b\r\n\r\n", (400,))
    # request smuggling: the body is itself a request that must never be taken for one
    chunk = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    raw_h1("smuggling", ("POST /sim/echo/%s-clte HTTP/1.1\r\n" % tag).encode() + host +
           b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + smuggled, (400,))
    raw_h1("smuggling", ("POST /sim/echo/%s-tete HTTP/1.1\r\n" % tag).encode() + host +
           b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + chunk, (400,))
    raw_h1("smuggling", ("POST /sim/echo/%s-clcl HTTP/1.1\r\n" % tag).encode() + host +
           b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled, (400,))
    # a wrong token and invalid JSON on the stop-test
    body = stop_body(tag + "-dg")
    raw_h1("bad_token", ("POST %s/%s-tok/%s HTTP/1.1\r\n" % (VP, tag, M)).encode() + host +
           b"Authorization: Bearer not-the-token-%d\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (n, len(body)) + body, (500,), "NotAuthenticated")
    bad = b'{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"' + \
        tag.encode() + b'"}}],"force":fal'
    raw_h1("bad_json", ("POST %s/%s-json/%s HTTP/1.1\r\n" % (VP, tag, M)).encode() + host +
           ("Authorization: Bearer %s\r\n" % args.token).encode() +
           b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
           % len(bad) + bad, (500,), "InvalidRequest")
    # abrupt disconnect mid-request (HTTP/1.1): half the body, then gone
    count("hostile.abrupt_h1")
    try:
        s = tls_socket()
        s.sendall(("POST %s/%s-cut/%s HTTP/1.1\r\n" % (VP, tag, M)).encode() + host +
                  ("Authorization: Bearer %s\r\n" % args.token).encode() +
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) +
                  body[:len(body) // 2])
        s.close()
    except (OSError, ssl.SSLError) as e:
        failure("hostile.abrupt_h1", repr(e))
    # HTTP/2: stop-test headers and half a body, then the socket closed
    count("hostile.abrupt_h2")
    try:
        c = h2_open()
        c.send(c.headers_frame(1, [(":method", "POST"), (":scheme", "https"),
                                   (":authority", "127.0.0.1"),
                                   (":path", "%s/%s-h2cut/%s" % (VP, tag, M)),
                                   ("authorization", "Bearer " + args.token),
                                   ("content-type", "application/json"),
                                   ("content-length", str(len(body)))], end_stream=False) +
               frame(DATA, 0, 1, body[:10]))
        c.close()
    except (OSError, ssl.SSLError, AssertionError) as e:
        failure("hostile.abrupt_h2", repr(e))
    # HTTP/2 rapid reset: many stop-test streams (bodies never sent) opened and cancelled
    count("hostile.rapid_reset")
    try:
        c = h2_open()
        burst = b""
        for i in range(300):
            sid = 2 * i + 1
            burst += c.headers_frame(sid, [(":method", "POST"), (":scheme", "https"),
                                           (":authority", "127.0.0.1"),
                                           (":path", "%s/%s-rr%d/%s" % (VP, tag, i, M)),
                                           ("authorization", "Bearer " + args.token),
                                           ("content-type", "application/json"),
                                           ("content-length", "100")], end_stream=False)
            burst += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
        c.flood(burst, timeout=5)
        c.close()
    except (OSError, ssl.SSLError, AssertionError) as e:
        failure("hostile.rapid_reset", repr(e))


def hostile():
    n = 0
    while running():
        n += 1
        hostile_round(n)
        time.sleep(0.2)


def slow():
    """Slow clients, two kinds in turn: headers dripped one byte at a time, never ended;
    a stop-test body that never completes. smsguard's timeouts must cut both."""
    n = 0
    while running():
        n += 1
        kind = "slow_headers" if n % 2 else "slow_body"
        count("hostile." + kind)
        tag = "%s-slow-%d" % (MARK, n)
        t0 = time.monotonic()
        cut = False
        try:
            s = tls_socket()
            if kind == "slow_headers":
                s.sendall(("GET /sim/echo/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % tag).encode())
                drip = b"X-Slow: " + b"a" * 200
                for b in drip:
                    if time.monotonic() - t0 > args.slow_cut_s:
                        break
                    try:
                        s.sendall(bytes([b]))
                    except (OSError, ssl.SSLError):
                        cut = True
                        break
                    got, closed = read_until_close(s, 0.25)
                    if closed:
                        cut = True
                        break
            else:
                body = stop_body(tag)
                s.sendall(("POST %s/%s/%s HTTP/1.1\r\n" % (VP, tag, M)).encode() +
                          b"Host: 127.0.0.1\r\n" +
                          ("Authorization: Bearer %s\r\n" % args.token).encode() +
                          b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                          % len(body) + body[:5])
                _, cut = read_until_close(s, args.slow_cut_s)
            s.close()
        except (OSError, ssl.SSLError) as e:
            failure("hostile." + kind, repr(e))
            continue
        if not cut:
            failure("hostile." + kind, "not cut within %.0f s" % args.slow_cut_s)
        else:
            count("hostile.%s_cut" % kind)


def sampler():
    while time.monotonic() < END + 0.5:
        t = round(time.monotonic() - T0, 1)
        try:
            with open("/proc/%d/status" % args.pid) as f:
                st = f.read()
            kb = int(st.split("VmRSS:")[1].split()[0])
            state_line = st.split("State:")[1].split()[0]
            if state_line == "Z":
                raise FileNotFoundError
            rss.append([t, kb])
        except (OSError, IndexError, ValueError):
            state["alive"] = False
            failure("alive", "smsguard (pid %d) gone at %.1f s" % (args.pid, t))
            return
        time.sleep(1.0)


threads = [threading.Thread(target=f, name=f.__name__, daemon=True)
           for f in (sampler, stop_h1, stop_h2, echo_h1, h2load, hostile, slow)]
for t in threads:
    t.start()
for t in threads:
    t.join(args.seconds + 90)
stuck = [t.name for t in threads if t.is_alive()]

with open(args.groups, "w") as f:
    f.write("".join(g + "\n" for g in groups_ok))
summary = {"seconds": round(time.monotonic() - T0, 1), "alive": state["alive"], "counts": counts,
           "stop_valid_ok": len(groups_ok), "failures": failures, "stuck_threads": stuck,
           "rss_kb": rss}
with open(args.out, "w") as f:
    json.dump(summary, f, indent=1)
sys.exit(0)
