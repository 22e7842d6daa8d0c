#!/usr/bin/env bash
# 29_upstream_hostile: a hostile or broken upstream (issue 8), played by lib/badup.py, gives
# the client a clean fault and the audit an outcome that says what happened:
#   - for every mode (reset mid-header and mid-body, close mid-header, slow drip of the
#     whole response and of its body, 100 KB of headers, a malformed status line, a header
#     line without a colon, a NUL in a header, a header that the client side would refuse
#     from a client (a space before the colon, a bare CR, obs-fold), a transfer coding
#     other than chunked (gzip, chunked), invalid chunking: bad
#     hex, no CRLF after the data, a size overflowing 64 bits; Content-Length longer than
#     the body; two different
#     Content-Lengths; 61 KB of headers in 650 fields, more than one HTTP/2 header block
#     may carry to the client), over HTTP/1.1 and HTTP/2:
#       * an ordinary path gets 502, or 504 for the drip (response_timeout_ms is a total,
#         not an idle timer: a byte every 200 ms does not keep it alive), with a
#         ProviderUnavailable fault body; when the status line had already been handed to
#         the client the stream is reset / the connection closed: never a complete-looking
#         answer
#       * the stop-test route gets 500 ProviderUnavailable, and the audit log holds the
#         decision and an outcome with upstream.status 0 and upstream.reason naming the
#         failure ("upstream reset", "upstream timeout", "upstream bad response", ...)
#   - a response larger than limits.max_body_bytes streams whole on an ordinary path but is
#     refused on the stop-test route, whose answer smsguard buffers and parses
#   - the header a client side would refuse never reaches the client, in any header block
#   - a response whose header lines end in bare LF is accepted (RFC 9112 2.2) and relayed,
#     and so is one with 40 KB of headers, and one whose header block comes a few bytes
#     per read (names and values cut across reads reach the client whole)
#   - TLS: a certificate from an unknown CA, a certificate for another name, and a plain
#     TCP server behind an https:// URL give 502 / 500 with reason "upstream tls"
#   - HTTP/1 chunked request bodies: a chunk size over max_body_bytes (or overflowing) is
#     refused with 413 at once, before any of its data; an exact-limit body still passes
#   - smsguard-audit verify passes; the same smsguard process serves new connections
#     (assert_serving), /healthz 200, no leaked sockets.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"
BADUP=$SG_SOURCE_DIR/tests/integration/lib/badup.py
setup_certs
AUDIT=$WORK/audit.log

# start_badup VAR [badup options...]: a hostile upstream on a free port (VAR), recording
# into $SIM_RECORD.
start_badup() {
    local var=$1 port pid
    shift
    free_port port
    # $PYBIN, not lib.sh's python3 function: $! must be its PID for the clean-up to stop it
    "$PYBIN" "$BADUP" --port "$port" --record "$SIM_RECORD" "$@" \
        </dev/null >"$WORK/badup-$port.out" 2>"$WORK/badup-$port.err" &
    pid=$!
    track_pid "$pid" badup
    wait_port "$port" "$pid" badup "$WORK/badup-$port.err"
    printf -v "$var" '%s' "$port"
}

# audit_outcomes FILE PROVIDER: "status|reason|upstream.reason|fault|task" of each outcome
# record for PROVIDER, one a line, after checking that each has a decision record (allow)
# with the same request_id before it.
audit_outcomes() {
    python3 - "$1" "$2" <<'PY'
import json, sys
dec = {}
for line in open(sys.argv[1], "rb"):
    d = json.loads(line)
    if d.get("provider") != sys.argv[2]:
        continue
    if d["stage"] == "decision":
        dec[d["request_id"]] = d["decision"]
    elif d["stage"] == "outcome":
        if dec.get(d["request_id"]) != "allow":
            print("NO-DECISION %s" % d["request_id"])
        u = d["upstream"]
        print("%s|%s|%s|%s|%s" % (u["status"], d["reason"], u.get("reason"), d["fault"], u["task"]))
PY
}

start_badup BAD_PORT
guard_conf "$WORK/g.conf" "upstream_url=http://127.0.0.1:$BAD_PORT" response_timeout_ms=1500 \
    "limits=max_body_bytes = 65536;" \
    "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };"
start_guard "$WORK/g.conf"
BASE_SOCKETS=$(sg_sockets)

# mode -> what an ordinary path gets (502, 504, reset: the answer had started, 200) and
# the outcome's upstream.reason on the stop-test route ("-": the task came back)
declare -A PLAIN=(
    [reset-hdr]=502 [reset-body]=reset [close-hdr]=502 [drip]=504 [drip-body]=reset
    [bighdr]=502 [manyhdr]=502 [midhdr]=200 [badstatus]=502 [nocolon]=502 [nul]=502 [badhex]=reset [nocrlf]=reset
    [chunkovf]=reset [clshort]=reset [dupcl]=502 [big]=200 [barelf]=200 [split]=200 [ok]=200
    [spacename]=502 [barecr]=502 [obsfold]=502 [tegzip]=502)
declare -A WHY=(
    [reset-hdr]="upstream reset" [reset-body]="upstream reset" [close-hdr]="upstream closed early"
    [drip]="upstream timeout" [drip-body]="upstream timeout" [bighdr]="upstream headers too large"
    [manyhdr]="upstream headers too large" [midhdr]=-
    [badstatus]="upstream bad response" [nocolon]="upstream bad response"
    [nul]="upstream bad response" [badhex]="upstream bad response"
    [nocrlf]="upstream bad response" [chunkovf]="upstream bad response"
    [clshort]="upstream closed early" [dupcl]="upstream bad response"
    [big]="upstream response too large" [barelf]=- [split]=- [ok]=-
    [spacename]="upstream bad response" [barecr]="upstream bad response"
    [obsfold]="upstream bad response" [tegzip]="upstream bad response")
MODES="ok reset-hdr reset-body close-hdr drip drip-body bighdr manyhdr midhdr badstatus nocolon nul badhex
nocrlf chunkovf clshort dupcl big barelf split spacename barecr obsfold tegzip"

check "every hostile mode, HTTP/1.1 and HTTP/2: ordinary path 502/504/reset, stop-test 500"
for mode in $MODES; do
    for proto in http1.1 http2; do
        rc=0
        w=$(sg_curl "--$proto" -o "$WORK/p.body" -w '%{http_code} %{time_total} %{size_download}' \
            "$SG_URL/bad/$mode/$proto" 2>"$WORK/p.err") || rc=$?
        read -r code secs size <<<"$w"
        want=${PLAIN[$mode]}
        echo "   $mode --$proto: plain $code rc=$rc ${secs}s ${size}B"
        record_has_path "/bad/$mode/$proto" || fail "$mode --$proto: not forwarded to the upstream"
        case $want in
        502 | 504)
            assert_eq "0 $want" "$rc $code" "$mode --$proto: curl status and HTTP status"
            assert_vim_fault "$WORK/p.body" - ProviderUnavailable "$mode --$proto fault"
            ;;
        reset)
            # the status line went out: the stream is cut, curl reports an incomplete answer
            # (18 partial, 52 empty, 56 recv, 92 HTTP/2 stream reset), never a clean one
            [[ $rc =~ ^(18|52|56|92)$ ]] ||
                fail "$mode --$proto: curl exit $rc (HTTP $code), expected a cut answer"
            ;;
        200)
            assert_eq "0 200" "$rc $code" "$mode --$proto: curl status and HTTP status"
            if [[ $mode == big ]]; then
                assert_eq 307283 "$size" "$mode --$proto: bytes of the streamed answer"
            else
                assert_contains "$(cat "$WORK/p.body")" task-badup-1 "$mode --$proto body"
            fi
            ;;
        esac
        if [[ $mode == drip* ]]; then
            assert_time_between "$secs" 1.3 4.5 "$mode --$proto: time to the cut (total 1.5 s)"
        else
            assert_time_between "$secs" 0 3 "$mode --$proto: time to answer"
        fi

        stop_post "$proto" "$mode" "$WORK/s"
        echo "   $mode --$proto: stop-test $REQ_CODE"
        if [[ ${WHY[$mode]} == - ]]; then
            assert_eq 200 "$REQ_CODE" "$mode --$proto: stop-test status"
            assert_contains "$(cat "$WORK/s.body")" task-badup-1 "$mode --$proto: stop-test body"
        else
            assert_eq 500 "$REQ_CODE" "$mode --$proto: stop-test status"
            assert_vim_fault "$WORK/s.body" "$WORK/s.hdr" ProviderUnavailable \
                "$mode --$proto: stop-test fault"
        fi
        record_has_path "/sdk/vim25/8.0.3.0/sms/VasaProvider/$mode/TestFailoverReplicationGroupStop_Task" ||
            fail "$mode --$proto: the stop-test was not forwarded"
        assert_not_contains "$(tr 'A-Z' 'a-z' <"$WORK/s.hdr")" x-evil "$mode --$proto: stop-test headers"
    done
done

check "an upstream header the client side would refuse never reaches the client"
# The answers are valid but for one header line (lib/badup.py EVIL): the whole answer is
# refused (502 here, 500 ProviderUnavailable on the stop-test route above, whose headers
# the loop above checked too), and nothing of it is relayed.
for mode in spacename barecr obsfold; do
    for proto in http1.1 http2; do
        code=$(sg_curl "--$proto" -D "$WORK/e.hdr" -o "$WORK/e.body" -w '%{http_code}' \
            "$SG_URL/bad/$mode/hdr-$proto" 2>"$WORK/e.err" || true)
        echo "   $mode --$proto: $code"
        assert_eq 502 "$code" "$mode --$proto: status"
        assert_vim_fault "$WORK/e.body" "$WORK/e.hdr" ProviderUnavailable "$mode --$proto fault"
        assert_not_contains "$(tr 'A-Z' 'a-z' <"$WORK/e.hdr")" x-evil "$mode --$proto: headers"
        assert_not_contains "$(cat "$WORK/e.body")" task-badup-1 "$mode --$proto: body"
    done
    assert_serving "after the upstream's '$mode' header" "/bad/ok/after-$mode"
done

check "a header block cut across many reads reaches the client whole"
for proto in http1.1 http2; do
    code=$(sg_curl "--$proto" -D "$WORK/sp.hdr" -o "$WORK/sp.body" -w '%{http_code}' \
        "$SG_URL/bad/split/hdr-$proto" 2>"$WORK/sp.err" || true)
    hdrs=$(tr 'A-Z' 'a-z' <"$WORK/sp.hdr" | tr -d '\r')
    echo "   split --$proto: $code"
    assert_eq 200 "$code" "split --$proto: status"
    assert_contains "$hdrs" "x-split-header: one two three four five six" "split --$proto: header"
    assert_contains "$hdrs" "content-type: application/json" "split --$proto: content-type"
    assert_contains "$(cat "$WORK/sp.body")" task-badup-1 "split --$proto: body"
done

check "a slow client is not the upstream's fault: time it does not read does not count"
# 24 MB, more than the socket buffers hold: smsguard stops reading the upstream while the
# client reads nothing for 2.5 s (longer than the 1.5 s total), then the whole answer comes
got=$(python3 - "$SG_PORT" "$CA_CRT" <<'PY'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20),
                    server_hostname="127.0.0.1")
s.sendall(b"GET /bad/huge/slow-client HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
time.sleep(2.5)
parts = []
while True:
    d = s.recv(1 << 20)
    if not d:
        break
    parts.append(d)
buf = b"".join(parts)
head, _, body = buf.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), len(body))
PY
)
echo "   $got"
assert_eq "HTTP/1.1 200 OK $((24 << 20))" "$got" "a reader that paused for 2.5 s"

check "HTTP/1 chunked request bodies: a chunk size over max_body_bytes is 413 at once"
# 0x10001 = 65537 > 65536; the data never comes
printf 'POST /bad/ok/ck-big HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n' \
    >"$WORK/ck1.in"
# a size overflowing 64 bits
printf 'POST /bad/ok/ck-ovf HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n' \
    >"$WORK/ck2.in"
# a first chunk of 40000 bytes, then a second size line that would pass the limit
{ printf 'POST /bad/ok/ck-sum HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n9c40\r\n'
  head -c 40000 /dev/zero | tr '\0' a; printf '\r\n9c40\r\n'; } >"$WORK/ck3.in"
for n in 1 2 3; do
    st=$(tls_raw "$SG_PORT" "$WORK/ck$n.in" "$WORK/ck$n.out" 4)
    echo "   case $n: $st, $(head -c 40 "$WORK/ck$n.out" | head -1)"
    assert_match '^HTTP/1\.1 413' "$(head -c 12 "$WORK/ck$n.out")" "case $n: status"
    [[ $st == closed* ]] || fail "case $n: the connection was left open ($st)"
    assert_time_between "${st#* }" 0 2 "case $n: time to the 413 (no data was sent)"
done
for p in ck-big ck-ovf ck-sum; do
    ! record_has_path "/bad/ok/$p" || fail "$p was forwarded"
done
# exactly the limit in two chunks sent in one write (the parser takes both at once): passes
{ printf 'POST /bad/ok/ck-fit HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n'
  head -c 32768 /dev/zero | tr '\0' a; printf '\r\n8000\r\n'
  head -c 32768 /dev/zero | tr '\0' b; printf '\r\n0\r\n\r\n'; } >"$WORK/ck4.in"
st=$(tls_raw "$SG_PORT" "$WORK/ck4.in" "$WORK/ck4.out" 4)
assert_match '^HTTP/1\.1 200' "$(head -c 12 "$WORK/ck4.out")" "a body of exactly max_body_bytes"
record_has_path /bad/ok/ck-fit || fail "the body of exactly max_body_bytes was not forwarded"

check "the audit log: a decision and an outcome per stop-test, saying what happened"
stop_guard_term
for mode in $MODES; do
    out=$(audit_outcomes "$AUDIT" "$mode")
    assert_not_contains "$out" NO-DECISION "$mode: outcome without an allow decision before it"
    assert_eq 2 "$(grep -c . <<<"$out")" "$mode: outcome records (h1 and h2)"
    while IFS='|' read -r status reason upreason fault task; do
        if [[ ${WHY[$mode]} == - ]]; then
            assert_eq "200|answered|None|None|task-badup-1" \
                "$status|$reason|$upreason|$fault|$task" "$mode: outcome"
        else
            assert_eq "0|upstream failed|${WHY[$mode]}|ProviderUnavailable|None" \
                "$status|$reason|$upreason|$fault|$task" "$mode: outcome"
        fi
    done <<<"$out"
done
audit_verify "$AUDIT"
assert_eq 0 "$AV_RC" "smsguard-audit verify: $AV_OUT"
audit_chain_check "$AUDIT" >/dev/null
grep -q 'upstream failed (502, upstream reset)' "$SG_LOG" || fail "no warning naming the reset"
grep -q 'upstream failed (504, upstream timeout)' "$SG_LOG" || fail "no warning naming the timeout"

check "TLS: unknown CA, wrong name, plain TCP behind https:// give 502 / 500 'upstream tls'"
gen_ca other
gen_cert other rogue
start_badup TLS_OK --tls "$SERVER_CRT" "$SERVER_KEY"
start_badup TLS_ROGUE --tls "$WORK/rogue.crt" "$WORK/rogue.key"
n=0
for c in "control https://127.0.0.1:$TLS_OK -" "unknown-ca https://127.0.0.1:$TLS_ROGUE -" \
    "wrong-name https://127.0.0.1:$TLS_OK wrong.example" "plain https://127.0.0.1:$BAD_PORT -"; do
    read -r what url sni <<<"$c"
    n=$((n + 1))
    [[ $sni == - ]] && sni=""
    guard_conf "$WORK/t$n.conf" "upstream_url=$url" "ca_file=$CA_CRT" verify=true \
        "server_name=$sni" "extra=audit = { file = \"$WORK/audit-t$n.log\"; sync = \"always\"; };"
    start_guard "$WORK/t$n.conf"
    for proto in http1.1 http2; do
        w=$(sg_curl "--$proto" -o "$WORK/t.body" -w '%{http_code} %{time_total}' \
            "$SG_URL/bad/ok/tls-$what-$proto" 2>"$WORK/t.err" || true)
        stop_post "$proto" "ok" "$WORK/ts"
        echo "   $what --$proto: plain ${w% *} stop-test $REQ_CODE"
        assert_time_between "${w#* }" 0 3 "$what --$proto: time"
        if [[ $what == control ]]; then
            assert_eq "200 200" "${w% *} $REQ_CODE" "$what --$proto: statuses"
        else
            assert_eq "502 500" "${w% *} $REQ_CODE" "$what --$proto: statuses"
            assert_vim_fault "$WORK/t.body" - ProviderUnavailable "$what --$proto fault"
            assert_vim_fault "$WORK/ts.body" "$WORK/ts.hdr" ProviderUnavailable \
                "$what --$proto stop-test fault"
            ! record_has_path "/bad/ok/tls-$what-$proto" ||
                fail "$what --$proto: a request reached the untrusted upstream"
        fi
    done
    stop_guard_term
    out=$(audit_outcomes "$WORK/audit-t$n.log" ok)
    assert_eq 2 "$(grep -c . <<<"$out")" "$what: outcome records"
    if [[ $what == control ]]; then
        assert_not_contains "$out" "upstream failed" "$what: outcomes"
    else
        assert_eq "0|upstream failed|upstream tls|ProviderUnavailable|None" \
            "$(sort -u <<<"$out")" "$what: outcomes"
    fi
    audit_verify "$WORK/audit-t$n.log"
    assert_eq 0 "$AV_RC" "$what: smsguard-audit verify: $AV_OUT"
    grep -q 'TLS handshake failed' "$SG_LOG" || [[ $what == control ]] ||
        fail "$what: no log line on the handshake failure"
done

check "after all that: a fresh smsguard on the hostile upstream closes every hostile connection, then the same process serves, /healthz 200, no leaks"
start_guard "$WORK/g.conf"
BASE_SOCKETS=$(sg_sockets)
for mode in reset-body drip-body nocrlf clshort; do
    for proto in http1.1 http2; do
        sg_curl "--$proto" -o /dev/null "$SG_URL/bad/$mode/again-$proto" 2>/dev/null || true
    done
done
# every hostile upstream connection was closed: none may stay pooled
deadline=$((SECONDS + 5))
while (($(sg_sockets) > BASE_SOCKETS)) && ((SECONDS < deadline)); do sleep 0.1; done
assert_le "$(sg_sockets)" "$BASE_SOCKETS" "sockets after the hostile exchanges"
assert_serving "after the hostile upstream's answers" /bad/ok/final
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")
assert_eq 200 "$out" "/healthz"
assert_no_leaked_sockets
stop_guard_term

echo "PASS: $TEST_NAME"
