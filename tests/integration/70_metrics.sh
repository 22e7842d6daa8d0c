#!/usr/bin/env bash
# 70_metrics: GET /metrics on the admin listener (issue 9). Scrape, send an allowed stop-test
# (HTTP/2), a refused one (a wrong token, HTTP/1.1), a forwarded request (HTTP/1.1) and one
# for a host the listener does not serve (421, refused before routing), scrape again: the
# counters moved by exactly what was sent, under the right upstream label (upstream="default",
# the one-vCenter form's name; "" for the 421, issue 18), and both scrapes are valid
# Prometheus text exposition 0.0.4 (every sample line `name{labels} value`, every metric
# with HELP and TYPE, counters ending in _total, histogram buckets cumulative with
# +Inf == _count, and the _sum/_count present).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AUDIT=$WORK/audit.log
GUARD_SETTINGS=("extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };")
start_all

# scrape OUT: GET /metrics into OUT; the answer must be 200 text/plain version 0.0.4.
scrape() {
    local code
    code=$(curl -sS --max-time 5 -D "$1.hdr" -o "$1" -w '%{http_code}' "$SG_ADMIN_URL/metrics")
    assert_eq 200 "$code" "/metrics status"
    assert_contains "$(tr 'A-Z' 'a-z' <"$1.hdr")" "content-type: text/plain; version=0.0.4" "/metrics headers"
}

# expo_check FILE: the file is valid text exposition; prints nothing when it is.
expo_check() {
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
errs = []
if not text.endswith("\n"):
    errs.append("does not end with a newline")
helps, types, samples = {}, {}, []
line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
for i, line in enumerate(text.split("\n")[:-1], 1):
    if line.startswith("# HELP "):
        name, _, h = line[7:].partition(" ")
        if name in helps: errs.append("line %d: second HELP for %s" % (i, name))
        helps[name] = h
        continue
    if line.startswith("# TYPE "):
        name, _, t = line[7:].partition(" ")
        if t not in ("counter", "gauge", "histogram", "summary", "untyped"):
            errs.append("line %d: bad TYPE %r" % (i, t))
        if name in types: errs.append("line %d: second TYPE for %s" % (i, name))
        if any(s[0] == name or s[0].startswith(name + "_") for s in samples if s[4] == name):
            errs.append("line %d: TYPE after samples of %s" % (i, name))
        types[name] = t
        continue
    if line.startswith("#") or not line:
        errs.append("line %d: unexpected %r" % (i, line)); continue
    m = line_re.match(line)
    if not m:
        errs.append("line %d: not `name{labels} value`: %r" % (i, line)); continue
    name, labels, value = m.group(1), m.group(3), m.group(4)
    lab = {}
    if labels:
        rest = labels
        for part in re.finditer(label_re, labels):
            lab[part.group(1)] = part.group(2)
        if label_re.sub("", labels).replace(",", "") != "":
            errs.append("line %d: bad labels %r" % (i, labels))
    try:
        v = float(value)
    except ValueError:
        errs.append("line %d: bad value %r" % (i, value)); continue
    base = name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and name[:-len(suf)] in types and types[name[:-len(suf)]] == "histogram":
            base = name[:-len(suf)]
    if base not in types or base not in helps:
        errs.append("line %d: %s has no HELP/TYPE before it" % (i, name))
    if types.get(base) == "counter" and not base.endswith("_total"):
        errs.append("counter %s does not end in _total" % base)
    if not name.startswith("smsguard_"):
        errs.append("line %d: %s is not prefixed smsguard_" % (i, name))
    samples.append((name, lab, v, i, base))
# histograms: buckets cumulative, +Inf == _count, _sum present
for h in [n for n, t in types.items() if t == "histogram"]:
    series = {}
    for name, lab, v, i, base in samples:
        if base != h: continue
        key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
        s = series.setdefault(key, {"b": [], "sum": None, "count": None})
        if name == h + "_bucket":
            s["b"].append((float(lab["le"]), v))
        elif name == h + "_sum": s["sum"] = v
        elif name == h + "_count": s["count"] = v
    if not series: errs.append("histogram %s has no samples" % h)
    for key, s in series.items():
        b = s["b"]
        if [x for x, _ in b] != sorted(x for x, _ in b) or not b or b[-1][0] != float("inf"):
            errs.append("%s: buckets not in order or no +Inf" % h)
        if any(b[k][1] > b[k + 1][1] for k in range(len(b) - 1)):
            errs.append("%s: buckets not cumulative: %s" % (h, b))
        if s["count"] is None or s["sum"] is None:
            errs.append("%s: no _sum or _count" % h)
        elif b and b[-1][1] != s["count"]:
            errs.append("%s: +Inf %s != _count %s" % (h, b[-1][1], s["count"]))
print("\n".join(errs))
PY
}

# val FILE NAME [LABELS]: the value of the sample NAME{LABELS} (exact label set, as python
# dict literal, e.g. "{'fault':'NotAuthenticated'}"), 0 when absent.
val() {
    python3 - "$1" "$2" "${3:-{\}}" <<'PY'
import ast, re, sys
f, want, wl = sys.argv[1], sys.argv[2], ast.literal_eval(sys.argv[3])
tot = 0
for line in open(f):
    if line.startswith("#"): continue
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line.strip())
    if not m or m.group(1) != want: continue
    lab = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
    if lab == wl:
        tot += float(m.group(4))
print(int(tot) if tot == int(tot) else tot)
PY
}

check "GET /metrics answers valid exposition text before any request"
scrape "$WORK/m0"
errs=$(expo_check "$WORK/m0")
[[ -z $errs ]] || fail "first scrape is not valid exposition format: $errs"
check "before any request, the configured upstream has its zero series (upstream=\"default\")"
for m in request_duration_seconds_count upstream_duration_seconds_count \
    upstream_connections_open upstream_connections_idle upstream_connect_failures_total \
    batch_parts_total; do
    assert_contains "$(cat "$WORK/m0")" "smsguard_$m{upstream=\"default\"} 0" "metrics output"
done
for m in requests_total refusals_total request_duration_seconds upstream_duration_seconds \
    upstream_connections_open upstream_connections_idle upstream_connect_failures_total \
    batch_parts_total audit_records_total audit_write_failures_total audit_sync_duration_seconds \
    tls_handshakes_total tls_handshake_failures_total http2_abuse_total connections_open; do
    assert_contains "$(cat "$WORK/m0")" "# TYPE smsguard_$m " "metrics output"
done

check "POST /metrics is 405, HEAD /metrics is 200 without a body"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST "$SG_ADMIN_URL/metrics")
assert_eq 405 "$out" "POST /metrics"
out=$(curl -sS --max-time 5 -I -o /dev/null -w '%{http_code} %{size_download}' "$SG_ADMIN_URL/metrics")
assert_eq "200 0" "$out" "HEAD /metrics"

check "an allowed stop-test over HTTP/2 (200)"
stop_post http2 vp-1 "$WORK/allow"
assert_eq 200 "$REQ_CODE" "allowed stop-test status"

check "a stop-test with a wrong token over HTTP/1.1 (NotAuthenticated)"
stop_post http1.1 vp-2 "$WORK/deny" dg-vp-2 -H "Authorization: Bearer wrong-$SG_TOKEN"
assert_eq 500 "$REQ_CODE" "refused stop-test status"
assert_fault "$WORK/deny.body" NotAuthenticated

check "a forwarded request over HTTP/1.1 (200)"
out=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/m")
assert_eq 200 "$out" "forwarded request status"

check "a request for a host this listener does not serve (421, before routing)"
out=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' -H 'Host: foreign.example' \
    "$SG_URL/sim/echo/misdirected")
assert_eq 421 "$out" "misdirected request status"
record_has_path /sim/echo/misdirected && fail "the misdirected request was forwarded"

# gauges are published every 100 ms; the audit writer counts after its write
sleep 0.3
scrape "$WORK/m1"
errs=$(expo_check "$WORK/m1")
[[ -z $errs ]] || fail "second scrape is not valid exposition format: $errs"

delta() { echo $(($(val "$WORK/m1" "$@") - $(val "$WORK/m0" "$@"))); }

check "requests_total moved by one for each request, with the right labels"
assert_eq 1 "$(delta smsguard_requests_total "{'upstream':'default','route':'stop_test','protocol':'h2','decision':'allow','status':'200'}")" "allowed stop-test"
assert_eq 1 "$(delta smsguard_requests_total "{'upstream':'default','route':'stop_test','protocol':'h1','decision':'deny','status':'500'}")" "refused stop-test"
assert_eq 1 "$(delta smsguard_requests_total "{'upstream':'default','route':'other','protocol':'h1','decision':'none','status':'200'}")" "forwarded request"
assert_eq 1 "$(delta smsguard_requests_total "{'upstream':'','route':'other','protocol':'h1','decision':'none','status':'other'}")" "misdirected request"
total=0
while read -r n; do total=$((total + n)); done < <(python3 -c '
import re, sys
for line in open(sys.argv[1]):
    if line.startswith("smsguard_requests_total{"):
        assert line.startswith("smsguard_requests_total{upstream=\""), line
        print(line.split()[-1])' "$WORK/m1")
assert_eq 4 "$total" "sum of requests_total"

check "refusals_total{fault=NotAuthenticated} +1, nothing else refused"
assert_eq 1 "$(delta smsguard_refusals_total "{'fault':'NotAuthenticated'}")" "NotAuthenticated refusals"
assert_eq 0 "$(delta smsguard_refusals_total "{'fault':'NoPermission'}")" "NoPermission refusals"

check "request_duration_seconds counted 3 + 1 (421), upstream_duration_seconds counted 2 (stop-test, echo)"
assert_eq 3 "$(delta smsguard_request_duration_seconds_count "{'upstream':'default'}")" "request durations"
assert_eq 1 "$(delta smsguard_request_duration_seconds_count "{'upstream':''}")" "request durations (421)"
assert_eq 2 "$(delta smsguard_upstream_duration_seconds_count "{'upstream':'default'}")" "upstream durations"
assert_eq 0 "$(delta smsguard_upstream_duration_seconds_count "{'upstream':''}")" "upstream durations (421)"

check "TLS handshakes: 4 completed, none failed; no HTTP/2 abuse"
assert_eq 4 "$(delta smsguard_tls_handshakes_total)" "TLS handshakes"
assert_eq 0 "$(delta smsguard_tls_handshake_failures_total)" "TLS handshake failures"
assert_eq 0 "$(delta smsguard_http2_abuse_total "{'kind':'protocol_error'}")" "http2 abuse"

check "audit: 2 records (decision + outcome of the allowed, decision of the refused) and more"
a=$(delta smsguard_audit_records_total)
assert_le 3 "$a" "audit records written"
assert_eq 0 "$(delta smsguard_audit_write_failures_total)" "audit write failures"
assert_le 1 "$(delta smsguard_audit_sync_duration_seconds_count)" "audit syncs timed"
assert_eq 0 "$(delta smsguard_upstream_connect_failures_total "{'upstream':'default'}")" "upstream connect failures"
assert_eq 1 "$(delta smsguard_batch_parts_total "{'upstream':'default'}")" "batch parts (the allowed stop-test's one part)"

check "upstream pool gauges: at least one idle connection, open >= idle"
op=$(val "$WORK/m1" smsguard_upstream_connections_open "{'upstream':'default'}")
idle=$(val "$WORK/m1" smsguard_upstream_connections_idle "{'upstream':'default'}")
assert_le 1 "$idle" "idle upstream connections"
assert_le "$idle" "$op" "idle <= open"

check "a TLS handshake that fails counts in tls_handshake_failures_total"
printf 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' | timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.stdin.buffer.read())
try:
    s.recv(100)
except Exception:
    pass' "$SG_PORT" || true
sleep 0.2
scrape "$WORK/m2"
assert_eq 1 "$(($(val "$WORK/m2" smsguard_tls_handshake_failures_total) - $(val "$WORK/m1" smsguard_tls_handshake_failures_total)))" "TLS handshake failures"

check "an HTTP/2 connection with a bad client preface counts in http2_abuse_total{kind=bad_preface}"
python3 - "$SG_PORT" "$CA_CRT" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["h2"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5),
                    server_hostname="127.0.0.1")
assert s.selected_alpn_protocol() == "h2"
s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")  # not the HTTP/2 preface
try:
    while s.recv(4096):
        pass
except Exception:
    pass
PY
sleep 0.2
scrape "$WORK/m3"
assert_eq 1 "$(($(val "$WORK/m3" smsguard_http2_abuse_total "{'kind':'bad_preface'}") - $(val "$WORK/m2" smsguard_http2_abuse_total "{'kind':'bad_preface'}")))" "http2 abuse (bad_preface)"
assert_eq 0 "$(val "$WORK/m3" smsguard_http2_abuse_total "{'kind':'protocol_error'}")" "http2 abuse (protocol_error)"
errs=$(expo_check "$WORK/m3")
[[ -z $errs ]] || fail "scrape is not valid exposition format: $errs"

check "connections_open drops back once the clients are gone"
deadline=$((SECONDS + 5))
while :; do
    scrape "$WORK/m4"
    [[ $(val "$WORK/m4" smsguard_connections_open) == 0 ]] && break
    ((SECONDS < deadline)) || fail "connections_open is $(val "$WORK/m4" smsguard_connections_open), not 0"
    sleep 0.1
done

echo "PASS: $TEST_NAME"
