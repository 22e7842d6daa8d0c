#!/usr/bin/env bash
# 80_h1_smuggling: hostile HTTP/1.1 framing and header bytes (request smuggling vectors,
# RFC 9112 6.1/6.3, 5.1, 5.2, 2.2) are refused with a clear 4xx/501 InvalidRequest answer,
# the connection is closed after the refusal, nothing (neither the request nor a request
# hidden in its body) reaches the simulator, and smsguard keeps serving. What
# 27_bad_http1.sh covers (CL then TE, two different Content-Lengths, a bad chunk size,
# a negative Content-Length, headers over the limit) is not repeated here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GUARD_SETTINGS=("limits=max_header_bytes = 8192; header_timeout_ms = 3000; max_body_bytes = 65536;")
start_all
BASE_SOCKETS=$(sg_sockets)   # listeners and admin, before any client

# The request each hostile one carries after its headers: if smsguard (or, after it, the
# upstream) ever reads it as a request, the simulator records NAME-smuggled.
smug() { printf 'GET /sim/echo/%s-smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n' "$1"; }

# bad NAME STATUS FORMAT [ARGS...]: send printf FORMAT ARGS (the escapes \r \n \x00 ...
# are bytes) on a new TLS connection, followed by a hidden request; expect one answer
# "HTTP/1.1 STATUS" with an InvalidRequest fault, no second answer, the connection closed,
# and the simulator's record unchanged.
bad() {
    local name=$1 status=$2 fmt=$3 st head resp n0
    shift 3
    check "$name: $status, InvalidRequest, connection closed, nothing forwarded"
    n0=$(record_count)
    # shellcheck disable=SC2059
    { printf "$fmt" "$@"; smug "$name"; } >"$WORK/$name.in"
    st=$(tls_raw "$SG_PORT" "$WORK/$name.in" "$WORK/$name.out" 5)
    head=$(head -n 1 "$WORK/$name.out" | tr -d '\r')
    echo "   got: '$head', connection $st"
    [[ $head == "HTTP/1.1 $status "* ]] ||
        fail "$name: expected 'HTTP/1.1 $status', got '$head' (all: $(head -c 600 "$WORK/$name.out" | cat -v))"
    resp=$(h1_responses "$WORK/$name.out" "$WORK/$name.body")
    assert_eq 1 "$(grep -c . <<<"$resp")" "$name: number of answers on the connection"
    assert_fault "$WORK/$name.body.1" InvalidRequest
    assert_eq closed "${st% *}" "$name: connection state after the refusal"
    sleep 0.05
    assert_eq "$n0" "$(record_count)" "$name: requests recorded by the simulator"
}

P='POST /sim/echo/%s HTTP/1.1\r\nHost: localhost\r\n'

# ---- Content-Length ----------------------------------------------------------------
bad te-then-cl 400 "${P}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-then-cl
bad cl-twice-same 400 "${P}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello" cl-twice-same
bad cl-list-same 400 "${P}Content-Length: 5, 5\r\n\r\nhello" cl-list-same
bad cl-list-diff 400 "${P}Content-Length: 5, 6\r\n\r\nhello!" cl-list-diff
bad cl-plus-sign 400 "${P}Content-Length: +5\r\n\r\nhello" cl-plus-sign
bad cl-hex 400 "${P}Content-Length: 0x5\r\n\r\nhello" cl-hex
bad cl-overflow 400 "${P}Content-Length: 99999999999999999999999\r\n\r\nhello" cl-overflow

# ---- Transfer-Encoding other than one "chunked" (RFC 9112 6.1, 6.3 item 4) ----------
bad te-chunked-chunked 400 "${P}Transfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-chunked-chunked
bad te-two-headers 400 "${P}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-two-headers
bad te-xchunked 400 "${P}Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-xchunked
bad te-chunked-gzip 400 "${P}Transfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-chunked-gzip
bad te-identity 400 "${P}Transfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello" te-identity
bad te-gzip-chunked 501 "${P}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-gzip-chunked
bad te-http10 400 'POST /sim/echo/%s HTTP/1.0\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' te-http10
bad te-vtab 400 "${P}Transfer-Encoding: \x0bchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-vtab
bad te-space-before-colon 400 "${P}Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n5\r\nhello\r\n0\r\n\r\n" te-space-before-colon

# ---- HTTP versions other than 1.x are not reinterpreted as HTTP/1.1 (RFC 9110 6.2) ----
bad version-9-9 505 'GET /sim/echo/%s HTTP/9.9\r\nHost: localhost\r\n\r\n' version-9-9
bad version-2-0 505 'GET /sim/echo/%s HTTP/2.0\r\nHost: localhost\r\n\r\n' version-2-0
bad version-0-9 505 'GET /sim/echo/%s HTTP/0.9\r\nHost: localhost\r\n\r\n' version-0-9

# ---- chunked body abuse ------------------------------------------------------------
# a size over max_body_bytes, overflowing or not, is 413 at once (issue 8; 29_upstream_hostile)
bad chunk-size-overflow 413 "${P}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n" chunk-size-overflow
bad chunk-ext-bare-lf 400 "${P}Transfer-Encoding: chunked\r\n\r\n5;a\nxx\r\nhello\r\n0\r\n\r\n" chunk-ext-bare-lf
bad chunk-ext-bare-cr 400 "${P}Transfer-Encoding: chunked\r\n\r\n5;a\rZhello\r\n0\r\n\r\n" chunk-ext-bare-cr
bad chunk-ext-nul 400 "${P}Transfer-Encoding: chunked\r\n\r\n5;a=\x00\r\nhello\r\n0\r\n\r\n" chunk-ext-nul
bad chunk-bad-terminator 400 "${P}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" chunk-bad-terminator
bad chunk-data-bare-lf 400 "${P}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n" chunk-data-bare-lf
bad chunk-size-bare-lf 400 "${P}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" chunk-size-bare-lf
bad chunk-too-long 400 "${P}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" chunk-too-long
bad chunk-trailer-ctl 400 "${P}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: a\x01b\r\n\r\n" chunk-trailer-ctl

# ---- header syntax -----------------------------------------------------------------
G='GET /sim/echo/%s HTTP/1.1\r\nHost: localhost\r\n'
bad obs-fold 400 "${G}X-Folded: one\r\n two\r\n\r\n" obs-fold
bad obs-fold-tab 400 "${G}X-Folded: one\r\n\tHost: evil\r\n\r\n" obs-fold-tab
bad bare-cr-in-value 400 "${G}X-A: one\rX-B: two\r\n\r\n" bare-cr-in-value
bad bare-cr-line-end 400 'GET /sim/echo/%s HTTP/1.1\rHost: localhost\r\n\r\n' bare-cr-line-end
bad nul-in-value 400 "${G}X-A: one\x00two\r\n\r\n" nul-in-value
bad nul-in-name 400 "${G}X-\x00A: one\r\n\r\n" nul-in-name
bad ctl-in-value 400 "${G}X-A: one\x01two\r\n\r\n" ctl-in-value
bad del-in-value 400 "${G}X-A: one\x7ftwo\r\n\r\n" del-in-value
bad ctl-in-name 400 "${G}X-\x01A: one\r\n\r\n" ctl-in-name
bad space-in-name 400 "${G}X A: one\r\n\r\n" space-in-name
bad space-before-colon 400 "${G}X-A : one\r\n\r\n" space-before-colon
bad host-space-before-colon 400 'GET /sim/echo/%s HTTP/1.1\r\nHost : evil.example\r\nHost: localhost\r\n\r\n' host-space-before-colon
bad leading-space-header 400 "${G} X-A: one\r\n\r\n" leading-space-header
bad two-hosts 400 'GET /sim/echo/%s HTTP/1.1\r\nHost: localhost\r\nHost: b\r\n\r\n' two-hosts
bad no-host 400 'GET /sim/echo/%s HTTP/1.1\r\nX-A: b\r\n\r\n' no-host
bad request-line-ctl 400 'GET /sim/echo/%s\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n' request-line-ctl


# ---- valid chunked bodies still pass, however the bytes are cut --------------------
check "a valid chunked body with extensions and trailers, sent a byte at a time and in one piece, arrives whole"
PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" >"$WORK/chunk-ok.out" <<'PY'
import sys, time
import h1tls
req = (b"POST /sim/echo/chunk-ok-%d HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
       b"5;name=value;x=\"q d\"\r\nhello\r\n0006\r\n world\r\n0;end\r\nX-Trailer: t\r\n\r\n")
for k, step in ((1, 1), (2, 10000)):
    s = h1tls.connect(int(sys.argv[1]), sys.argv[2])
    data = req % k + b"GET /sim/echo/chunk-ok-next-%d HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % k
    for i in range(0, len(data), step):
        s.sendall(data[i:i + step])
        if step == 1:
            time.sleep(0.002)
    buf, _ = h1tls.read_all(s)
    print(buf.count(b"HTTP/1.1 200 OK"))
PY
assert_eq "2 2" "$(tr '\n' ' ' <"$WORK/chunk-ok.out" | sed 's/ $//')" "200 answers (chunked request and the one after it), per connection"
for k in 1 2; do
    record_get_to "/sim/echo/chunk-ok-$k" "$WORK/chunk-ok-$k.json"
    echo_body_to "$WORK/chunk-ok-$k.json" "$WORK/chunk-ok-$k.body"
    assert_eq "hello world" "$(cat "$WORK/chunk-ok-$k.body")" "body forwarded (connection $k)"
    record_has_path "/sim/echo/chunk-ok-next-$k" || fail "the request after the chunked one was not forwarded"
done

# ---- a split header value is not mistaken for obs-fold ----------------------------
check "a header value split across TLS records (and its CRLF split too) is accepted whole"
PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" python3 - "$SG_PORT" "$CA_CRT" >"$WORK/split.out" <<'PY'
import sys, time
import h1tls
s = h1tls.connect(int(sys.argv[1]), sys.argv[2])
for part in (b"GET /sim/echo/split-value HTTP/1.1\r\nHost: localhost\r\nX-Split: aaa", b"bbb\r",
             b"\nX-Next: c\r\nConnection: close\r\n", b"\r\n"):
    s.sendall(part)
    time.sleep(0.15)
buf, _ = h1tls.read_all(s)
sys.stdout.write(buf.split(b"\r\n", 1)[0].decode("latin-1"))
PY
assert_eq "HTTP/1.1 200 OK" "$(cat "$WORK/split.out")" "answer to the split request"
record_get_to /sim/echo/split-value "$WORK/split.json"
assert_eq aaabbb "$(echo_header "$WORK/split.json" x-split)" "X-Split upstream"
assert_eq c "$(echo_header "$WORK/split.json" x-next)" "X-Next upstream"

# ---- absolute-form target (RFC 9112 3.2.2): the upstream gets the origin-form path and
# its own Host (never the client's); the target's authority must name the same host as
# Host and one of listen.server_names (proxy/reqcheck.c), else 421 ------------------------
check "absolute-form: forwarded as origin-form with the upstream's Host"
printf 'GET http://localhost/sim/echo/abs-form HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >"$WORK/abs.in"
tls_raw "$SG_PORT" "$WORK/abs.in" "$WORK/abs.out" 5 >/dev/null
assert_eq "200 /sim/echo/abs-form" "$(h1_responses "$WORK/abs.out" | awk '{print $1, $3}')" "answer"
record_get_to /sim/echo/abs-form "$WORK/abs.json"
assert_eq "127.0.0.1:$SIM_PORT" "$(echo_header "$WORK/abs.json" host)" "Host upstream"
# the client's authority is reported only as X-Forwarded-Host, once verified
assert_eq localhost "$(echo_header "$WORK/abs.json" x-forwarded-host)" "X-Forwarded-Host upstream"

check "absolute-form to another host than Host, or to a foreign host: 421, nothing forwarded"
printf 'GET http://evil.example/sim/echo/abs-evil HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >"$WORK/abs2.in"
tls_raw "$SG_PORT" "$WORK/abs2.in" "$WORK/abs2.out" 5 >/dev/null
assert_eq 421 "$(h1_responses "$WORK/abs2.out" | awk '{print $1}')" "absolute-form host differs from Host"
printf 'GET http://evil.example/sim/echo/abs-evil2 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n' >"$WORK/abs3.in"
tls_raw "$SG_PORT" "$WORK/abs3.in" "$WORK/abs3.out" 5 >/dev/null
assert_eq 421 "$(h1_responses "$WORK/abs3.out" | awk '{print $1}')" "absolute-form to a foreign host"
record_none_of abs-evil evil.example

check "absolute-form cannot reach the stop-test method unchecked (no token: NotAuthenticated, nothing forwarded)"
n0=$(record_count)
body='{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}],"force":false}'
printf 'POST http://localhost/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/TestFailoverReplicationGroupStop_Task HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "${#body}" "$body" >"$WORK/abs-stop.in"
tls_raw "$SG_PORT" "$WORK/abs-stop.in" "$WORK/abs-stop.out" 5 >/dev/null
resp=$(h1_responses "$WORK/abs-stop.out" "$WORK/abs-stop.body")
assert_eq 500 "${resp%% *}" "status of an unauthenticated absolute-form stop request"
assert_fault "$WORK/abs-stop.body.1" NotAuthenticated
assert_eq "$n0" "$(record_count)" "requests recorded by the simulator"

check "nothing smuggled was ever forwarded, and smsguard still serves h1 and h2"
[[ -z $(record_grep -smuggled) ]] || fail "a hidden request reached the simulator: $(record_grep -smuggled)"
assert_serving "after the hostile clients"
assert_no_leaked_sockets

echo "PASS: $TEST_NAME"
