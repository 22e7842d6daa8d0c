#!/usr/bin/env bash
# 71_access_log: log.access = a file (docs/design.md; issue 9). Requests of each kind (an allowed
# stop-test over HTTP/2, one refused for a wrong token over HTTP/1.1, a forwarded request, a
# refused target, a path full of JSON-special and non-UTF-8 bytes, a host no vCenter is served
# for) each leave exactly one line that is one JSON object with every field, in order (the
# vCenter's name right after the tenant, null for the 421; then the change ticket, null
# when the request carried none); no token appears anywhere in the file;
# after the file is moved away, SIGUSR1 makes smsguard open a new file for the next lines.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ACCESS=$WORK/access.log
WRONG_TOKEN=wrong-token-$$-$RANDOM
GUARD_SETTINGS=("access=$ACCESS")
start_all

# nlines FILE: how many lines FILE has (0 when it does not exist).
nlines() {
    if [[ -e $1 ]]; then wc -l <"$1"; else echo 0; fi
}

# wait_lines FILE N: wait (up to 5 s) until FILE has at least N lines (lines may be 100 ms late).
wait_lines() {
    local deadline=$((SECONDS + 5))
    while (($(nlines "$1") < $2)); do
        ((SECONDS < deadline)) || fail "$1 has $(nlines "$1") line(s), expected $2"
        sleep 0.05
    done
}

check "requests of each kind"
stop_post http2 vp-allow "$WORK/allow"
assert_eq 200 "$REQ_CODE" "allowed stop-test"
stop_post http1.1 vp-deny "$WORK/deny" dg-vp-deny -H "Authorization: Bearer $WRONG_TOKEN"
assert_eq 500 "$REQ_CODE" "refused stop-test"
out=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' "$SG_URL/sim/bytes/5000")
assert_eq 200 "$out" "forwarded request"
sg_req http1.1 GET "/sdk/vim25/8.0.3.0/sms/VasaProvider/vp-x/TestFailoverReplicationGroupStop_Task/../x" "$WORK/bad"
assert_eq 400 "$REQ_CODE" "refused target"
# a target with a quote, a backslash, a tab-like escape and a byte that is not UTF-8
printf 'GET /sim/echo/q"u\\o\xff\xfe%%22 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n' \
    "$SG_TOKEN" >"$WORK/raw.in"
tls_raw "$SG_PORT" "$WORK/raw.in" "$WORK/raw.out" 5 >/dev/null
# a host this listener does not serve: 421 before any upstream is chosen
printf 'GET /sim/echo/foreign HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n' >"$WORK/foreign.in"
tls_raw "$SG_PORT" "$WORK/foreign.in" "$WORK/foreign.out" 5 >/dev/null
grep -q "^HTTP/1.1 421 " "$WORK/foreign.out" || fail "foreign host: $(head -c 200 "$WORK/foreign.out")"
wait_lines "$ACCESS" 6

check "every line is one JSON object with every field, and says what happened"
python3 - "$ACCESS" <<'PY' || fail "access log lines are wrong (see above)"
import json, re, sys
FIELDS = ["time", "request_id", "peer", "protocol", "method", "path", "route", "subject",
          "tenant", "upstream", "ticket", "decision", "status", "fault", "duration_ms", "upstream_ms",
          "bytes_in", "bytes_out", "term"]
data = open(sys.argv[1], "rb").read()
assert data.endswith(b"\n"), "the file does not end with a newline"
lines = [json.loads(l.decode("utf-8")) for l in data.split(b"\n")[:-1]]
errs = []
for d in lines:
    if not isinstance(d, dict) or list(d) != FIELDS:
        errs.append("fields %s" % list(d))
        continue
    if d["upstream"] is not None and d["upstream"] != "default":
        errs.append("upstream %r (the one-vCenter form's is \"default\")" % d["upstream"])
    if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", d["time"]):
        errs.append("time %r" % d["time"])
    if d["peer"] != "127.0.0.1": errs.append("peer %r" % d["peer"])
    if not isinstance(d["duration_ms"], int) or d["duration_ms"] < 0: errs.append("duration_ms")
    if len(d["term"]) != 2: errs.append("term %r" % d["term"])
    if len(d["request_id"]) < 3: errs.append("request_id %r" % d["request_id"])
def one(pred, what):
    m = [d for d in lines if pred(d)]
    if len(m) != 1:
        errs.append("%d line(s) for %s" % (len(m), what))
        return {}
    return m[0]
a = one(lambda d: "vp-allow" in d["path"], "the allowed stop-test")
if a and not (a["protocol"] == "HTTP/2" and a["method"] == "POST" and a["route"] == "stop_test"
              and a["subject"] == "tester" and a["tenant"] == "all" and a["upstream"] == "default"
              and a["ticket"] is None
              and a["decision"] == "allow"
              and a["status"] == 200 and a["fault"] is None and isinstance(a["upstream_ms"], int)
              and a["bytes_in"] > 50 and a["bytes_out"] > 0 and a["term"] == "--"):
    errs.append("allowed: %s" % a)
d = one(lambda d: "vp-deny" in d["path"], "the refused stop-test")
if d and not (d["protocol"] == "HTTP/1.1" and d["decision"] == "deny" and d["status"] == 500
              and d["fault"] == "NotAuthenticated" and d["subject"] is None
              and d["tenant"] is None and d["upstream"] == "default" and d["upstream_ms"] is None
              and d["term"] == "PA"):
    errs.append("refused: %s" % d)
f = one(lambda d: d["path"] == "/sim/bytes/5000", "the forwarded request")
if f and not (f["method"] == "GET" and f["route"] == "other" and f["decision"] == "none"
              and f["upstream"] == "default"
              and f["status"] == 200 and f["fault"] is None and f["bytes_out"] == 5000
              and f["bytes_in"] == 0 and isinstance(f["upstream_ms"], int)):
    errs.append("forwarded: %s" % f)
b = one(lambda d: "vp-x" in d["path"], "the refused target")
if b and not (b["status"] == 400 and b["fault"] == "InvalidRequest" and b["term"] == "PR"
              and b["decision"] == "deny" and b["upstream_ms"] is None):
    errs.append("refused target: %s" % b)
q = one(lambda d: d["path"].startswith("/sim/echo/q"), "the odd path")
if q and q["path"] != '/sim/echo/q"u\\o\ufffd\ufffd%22':
    errs.append("odd path %r" % q["path"])
m = one(lambda d: d["path"] == "/sim/echo/foreign", "the foreign host")
if m and not (m["status"] == 421 and m["upstream"] is None and m["fault"] == "InvalidRequest"
              and m["upstream_ms"] is None):
    errs.append("foreign host: %s" % m)
if len(lines) != 6: errs.append("%d lines, expected 6" % len(lines))
if errs:
    print("\n".join(errs)); sys.exit(1)
PY

check "no token appears in the access log"
! grep -qF "$SG_TOKEN" "$ACCESS" || fail "the valid token is in the access log"
! grep -qF "$WRONG_TOKEN" "$ACCESS" || fail "the wrong token is in the access log"
! grep -qi "bearer" "$ACCESS" || fail "an Authorization value is in the access log"

check "SIGUSR1 after moving the file: the next lines go to a new file at the configured path"
mv "$ACCESS" "$ACCESS.1"
kill -USR1 "$SG_PID"
wait_file "$ACCESS" "access log file"
# both workers reopen within 100 ms; requests on any of them go to the new file
sleep 0.3
for i in 1 2 3 4; do
    out=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/after-$i")
    assert_eq 200 "$out" "request after SIGUSR1"
done
wait_lines "$ACCESS" 4
assert_eq 4 "$(grep -c '"/sim/echo/after-' "$ACCESS")" "lines in the new file"
assert_eq 0 "$(grep -c '"/sim/echo/after-' "$ACCESS.1" || true)" "new lines in the moved file"
assert_eq 6 "$(nlines "$ACCESS.1")" "lines in the moved file"

check "SIGTERM flushes what is buffered"
out=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/last")
assert_eq 200 "$out" "last request"
stop_guard_term
assert_eq 1 "$(grep -c '"/sim/echo/last"' "$ACCESS")" "the last request's line"

check "log.access = stderr writes the lines to stderr"
guard_conf "$WORK/stderr.conf" "access=stderr"
start_guard "$WORK/stderr.conf"
out=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/to-stderr")
assert_eq 200 "$out" "request"
deadline=$((SECONDS + 5))
until grep -q '"path":"/sim/echo/to-stderr"' "$SG_LOG"; do
    ((SECONDS < deadline)) || fail "no access line on stderr"
    sleep 0.05
done

echo "PASS: $TEST_NAME"
