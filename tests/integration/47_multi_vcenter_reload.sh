#!/usr/bin/env bash
# 47_multi_vcenter_reload: SIGHUP adds and removes vCenters (issue 18). Three sms-sim
# instances play vc-east, vc-west and vc-north; each vCenter has a vhost (X.vc.test, its own
# certificate) and a tenant scoped on it alone. smsguard starts with east and west.
#   - while h2load runs against east.vc.test, a reload adds vc-north (upstream, vhost,
#     tenant): h2load ends with every request a 2xx and none failed or errored, all of them
#     received by vc-east; north.vc.test is served from the reload on (its certificate, its
#     simulator, its tenant; its tenant's token refused on east), /healthz lists it
#   - while h2load runs against north.vc.test and a request is in flight on west.vc.test,
#     a reload removes vc-west: h2load has no failure, the request in flight finishes 200,
#     west.vc.test is then 421 (nothing more reaches vc-west), also on an HTTP/2 and an
#     HTTP/1.1 connection to it opened before the reload, east and north serve on, the
#     pooled connections to vc-east are reused (no new upstream connection), /healthz no
#     longer lists vc-west
#   - a reload that moves vc-north to another simulator (north2): a request in flight on the
#     old one finishes there with 200, new requests reach only north2 (also those on client
#     connections opened before the reload), vc-east's pooled connections are still reused
#   - north2 stopped: vc-north is held down (502, /healthz/vc-north 503); a reload pointing
#     vc-north back at the first simulator serves the next request at once (no hold-down
#     carried over to the new address)
# Every step ends with the same process serving.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need h2load nghttp2-client

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
BODY='{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"rg-1"}}],"force":false}'

sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }

setup_certs
declare -A REC=() SIMPORT=() SIMPID=() TOK=()
for vc in east west north north2; do
    [[ $vc == north2 ]] || gen_cert ca "$vc" "$vc.vc.test" 30 "DNS:$vc.vc.test"
    SIM_RECORD=$WORK/sim-$vc.jsonl
    start_sim
    REC[$vc]=$SIM_RECORD SIMPORT[$vc]=$SIM_PORT SIMPID[$vc]=$SIM_PID
    TOK[$vc]=tok-$vc-$$-$RANDOM$RANDOM
done

# conf_for VC...: write $WORK/sg.conf with these vCenters: for each an upstream vc-VC, a
# vhost VC.vc.test with its certificate, and tenant t-VC (token TOK[VC]) scoped on vc-VC.
conf_for() {
    local vc ups="" vhs="" toks="" tens="" sep="" ports=()
    for vc in "$@"; do
        ups+="$sep{ name = \"vc-$vc\"; url = \"http://127.0.0.1:${SIMPORT[$vc]}\"; }"
        vhs+="$sep{ server_names = [\"$vc.vc.test\"]; upstream = \"vc-$vc\";
        certificate = \"$WORK/$vc.crt\"; private_key = \"$WORK/$vc.key\"; }"
        toks+="$sep{ id = \"$vc\"; sha256 = \"$(sha "${TOK[$vc]}")\"; subject = \"op-$vc\";
      tenant = \"t-$vc\"; roles = [\"op\"]; }"
        tens+="$sep{ name = \"t-$vc\";
      scopes = ( { upstream = \"vc-$vc\"; providers = [\"*\"]; fault_domains = [\"*\"]; } ); }"
        sep=$',\n    '
    done
    [[ -n ${SG_PORT:-} ]] && ports=("listen_port=$SG_PORT" "admin_port=$SG_ADMIN_PORT")
    guard_conf "$WORK/sg.conf" "${ports[@]+"${ports[@]}"}" \
        upstreams="upstreams = (
    $ups
);" listen_extra="    vhosts = (
    $vhs
    );" policy="policy = {
  tokens = (
    $toks
  );
  roles = ( { name = \"op\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = (
    $tens
  );
};"
}

# vget VH PATH [curl args...]: GET https://VH.vc.test/PATH (SNI and Host VH.vc.test);
# prints the status.
vget() {
    local vh=$1 path=$2
    shift 2
    sg_curl --resolve "$vh.vc.test:$SG_PORT:127.0.0.1" -o /dev/null -w '%{http_code}' "$@" \
        "https://$vh.vc.test:$SG_PORT$path" 2>/dev/null || true
}

# stop VH WHO MOID: WHO's stop-test for MOID on vhost VH; prints "STATUS TYPE", TYPE the
# answer's _typeName (ManagedObjectReference on success, else the fault).
stop() {
    local out
    out=$(sg_curl --resolve "$1.vc.test:$SG_PORT:127.0.0.1" -H 'content-type: application/json' \
        -H "authorization: Bearer ${TOK[$2]}" --data-binary "$BODY" -w ' %{http_code}' \
        "https://$1.vc.test:$SG_PORT$VP/$3/$M") || true
    printf '%s %s' "${out##* }" "$(sed -n 's/^{"_typeName":"\([A-Za-z]*\)".*/\1/p' <<<"${out% *}")"
}

# seen VC TEXT: how many requests vc-VC's simulator recorded holding TEXT.
seen() {
    [[ -s ${REC[$1]} ]] || { echo 0; return 0; }
    grep -cF -- "$2" "${REC[$1]}" || true
}

# serving WHAT VH...: the same smsguard process serves new connections to each vhost VH
# (assert_serving with SNI and Host VH.vc.test), and the requests reach vc-VH.
serving() {
    local what=$1 vh n
    shift
    for vh in "$@"; do
        n=$(record_count "${REC[$vh]}")
        SG_URL=https://$vh.vc.test:$SG_PORT assert_serving "$what ($vh.vc.test)" "" \
            --resolve "$vh.vc.test:$SG_PORT:127.0.0.1"
        assert_eq $((n + 2)) "$(record_count "${REC[$vh]}")" "requests vc-$vh's simulator received serving $what"
    done
}

# wait_seen VC TEXT N: wait (30 s at most) until vc-VC's simulator recorded N requests
# holding TEXT.
wait_seen() {
    local deadline=$((SECONDS + 30))
    while (($(seen "$1" "$2") < $3)); do
        ((SECONDS < deadline)) || fail "vc-$1's simulator recorded $(seen "$1" "$2") requests with $2, not $3, in 30 s"
        sleep 0.1
    done
}

# conns VC: the connection ids vc-VC's simulator has seen, on one line.
conns() {
    pyrun "${REC[$1]}" <<'PY'
import json, sys
print(" ".join(sorted({str(json.loads(l)["conn"]) for l in open(sys.argv[1], "rb") if l.strip()}, key=int)))
PY
}

# new_conns VC N OLD: the connection ids of the requests vc-VC's simulator recorded after its
# first N lines that are not among OLD (conns' output), on one line.
new_conns() {
    pyrun "${REC[$1]}" "$2" "$3" <<'PY'
import json, sys
old = set(sys.argv[3].split())
lines = [l for l in open(sys.argv[1], "rb").read().splitlines() if l.strip()][int(sys.argv[2]):]
print(" ".join(sorted({str(json.loads(l)["conn"]) for l in lines} - old, key=int)))
PY
}

# held_open VH TAG: an HTTP/2 and an HTTP/1.1 connection to VH.vc.test, each served GET
# /sim/echo/held-h2-before-TAG (h1: held-h1-before-TAG) at once, kept open in a python3 in
# the background; held_close makes each send one more request (held-h2-after-TAG, ...) and
# leaves "h2 BEFORE -> AFTER" and "h1 BEFORE -> AFTER", the answers' fates, in held.out.
held_open() {
    rm -f "$WORK/held.ready" "$WORK/held.go"
    PYTHONPATH="$SG_SOURCE_DIR/tests/integration/lib" "$PYBIN" - "$SG_PORT" "$CA_CRT" "$WORK/held.ready" \
        "$WORK/held.go" "$1.vc.test" "$2" >"$WORK/held.out" 2>&1 <<'PY' &
import os, socket, ssl, sys, time
from h2raw import Conn

port, ca, ready, go, host, tag = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]

def get(path):
    return [(":method", "GET"), (":scheme", "https"), (":authority", host), (":path", path)]

def h1(s, path):
    """One GET on the HTTP/1.1 connection s: 'status N' or 'closed'."""
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, host)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(65536)
            if not d:
                return "closed"
            buf += d
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        n = 0
        for l in lines[1:]:
            k, _, v = l.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v)
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                return "closed"
            body += d
        return "status " + lines[0].split(" ")[1]
    except (OSError, ssl.SSLError):
        return "closed"

c = Conn(port, ca, sni=host)
c.request(1, get("/sim/echo/held-h2-before-" + tag))
h2_before = c.outcome(1)
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname=host)
h1_before = h1(s, "/sim/echo/held-h1-before-" + tag)
open(ready, "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
c.request(3, get("/sim/echo/held-h2-after-" + tag))
print("h2 %s -> %s" % (h2_before, c.outcome(3)))
print("h1 %s -> %s" % (h1_before, h1(s, "/sim/echo/held-h1-after-" + tag)))
PY
    HELD=$!
    track_pid "$HELD" "python3 (connections held across a reload)"
    local deadline=$((SECONDS + 10))
    until [[ -e $WORK/held.ready ]]; do
        ((SECONDS < deadline)) || fail "the held connections were not served in 10 s: $(cat "$WORK/held.out")"
        is_alive "$HELD" || fail "the held connections failed: $(cat "$WORK/held.out")"
        sleep 0.05
    done
}
held_close() { # not in $(...): it waits for its own child
    : >"$WORK/held.go"
    wait "$HELD" || fail "the held connections: $(cat "$WORK/held.out")"
    forget_pid "$HELD"
}

# cert_fp SNI: SHA-256 fingerprint of the certificate served for SNI.
cert_fp() {
    openssl s_client -connect "127.0.0.1:$SG_PORT" -servername "$1" </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}
file_fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }

# health [SUFFIX]: GET /healthz SUFFIX; body in $WORK/health.body; prints the status.
health() {
    curl -sS --max-time 5 -o "$WORK/health.body" -w '%{http_code}' "$SG_ADMIN_URL/healthz${1:-}" || true
}

# h2load_ok OUT N VC PATH: h2load's output OUT shows N requests, all 2xx, none failed or
# errored, over h2; vc-VC's simulator received N requests for PATH.
h2load_ok() {
    grep -q 'Application protocol: h2' "$1" || fail "h2load did not use h2: $(cat "$1")"
    h2load_check "$1" "$2"
    assert_match " 0 failed, 0 errored, 0 timeout" "$(grep '^requests:' "$1")" "h2load failures"
    assert_eq "$2" "$(record_paths "${REC[$3]}" | grep -cxF "$4" || true)" "requests for $4 vc-$3's simulator received"
}

conf_for east west
start_guard "$WORK/sg.conf"

check "before: east and west serve their tenants; north.vc.test is not served"
assert_eq "200 ManagedObjectReference" "$(stop east east vasa-1)" "t-east's stop-test on east.vc.test"
assert_eq "200 ManagedObjectReference" "$(stop west west vasa-1)" "t-west's stop-test on west.vc.test"
printf 'GET /sim/echo/north-early HTTP/1.1\r\nHost: north.vc.test\r\nConnection: close\r\n\r\n' >"$WORK/early.in"
tls_raw "$SG_PORT" "$WORK/early.in" "$WORK/early.out" 3 >/dev/null
assert_eq 421 "$(head -c 12 "$WORK/early.out" | cut -d' ' -f2)" "Host north.vc.test before the reload"
assert_eq 0 "$(seen north north-early)" "requests vc-north's simulator received"
assert_eq 200 "$(health)" "/healthz"
assert_not_contains "$(cat "$WORK/health.body")" "vc-north" "/healthz before the reload"

# =======================================================================================
check "reload adding vc-north while h2load runs against east.vc.test"
N1=12000
h2load -n "$N1" -c 8 -m 4 --rps 200 --connect-to="127.0.0.1:$SG_PORT" \
    "https://east.vc.test:$SG_PORT/sim/echo/load-east" >"$WORK/h2load-1.out" 2>&1 &
HL=$!
track_pid "$HL" "h2load (east)"
wait_seen east /sim/echo/load-east 3000
conf_for east west north
hup_and_wait "reloaded"
is_alive "$HL" || fail "h2load ended before the reload: raise N1 or lower the rate"
echo "   reloaded with $(seen east /sim/echo/load-east) load requests received by vc-east"

check "north.vc.test serves at once: its certificate, its simulator, its tenant"
assert_eq "$(file_fp "$WORK/north.crt")" "$(cert_fp north.vc.test)" "certificate for SNI north.vc.test"
assert_eq 200 "$(vget north /sim/echo/north-1 --http2)" "GET on north.vc.test over HTTP/2"
assert_eq 200 "$(vget north /sim/echo/north-2 --http1.1)" "GET on north.vc.test over HTTP/1.1"
assert_eq 1 "$(seen north /sim/echo/north-1)" "vc-north's record"
assert_eq 0 "$(seen east /sim/echo/north-)" "vc-east's record"
n=$(seen north "$VP/vasa-n/$M")
assert_eq "200 ManagedObjectReference" "$(stop north north vasa-n)" "t-north's stop-test on north.vc.test"
assert_eq $((n + 1)) "$(seen north "$VP/vasa-n/$M")" "t-north's stop-test at vc-north"
assert_eq "500 NoPermission" "$(stop east north vasa-n2)" "t-north's token on east.vc.test"
assert_eq "500 NoPermission" "$(stop north east vasa-n3)" "t-east's token on north.vc.test"
for vc in east west north; do
    assert_eq "0 0" "$(seen "$vc" vasa-n2) $(seen "$vc" vasa-n3)" "refused stop-tests at vc-$vc"
done
assert_eq 200 "$(health)" "/healthz"
assert_contains "$(cat "$WORK/health.body")" "upstream vc-north: up" "/healthz after the reload"
assert_eq 200 "$(health /vc-north)" "/healthz/vc-north after the reload"

check "h2load across the reload: every request succeeded"
wait "$HL" || fail "h2load exited non-zero: $(cat "$WORK/h2load-1.out")"
forget_pid "$HL"
h2load_ok "$WORK/h2load-1.out" "$N1" east /sim/echo/load-east
serving "after the reload adding vc-north" east west north

# =======================================================================================
check "reload removing vc-west while a request is in flight on it and h2load runs against north"
N2=6000
h2load -n "$N2" -c 4 -m 4 --rps 200 --connect-to="127.0.0.1:$SG_PORT" \
    "https://north.vc.test:$SG_PORT/sim/echo/load-north" >"$WORK/h2load-2.out" 2>&1 &
HL=$!
track_pid "$HL" "h2load (north)"
wait_seen north /sim/echo/load-north 1500
# vc-west answers this one 2 s late: it is in flight across the reload that removes vc-west
vget west /sim/echo/west-inflight -H 'x-sim-delay-ms: 2000' >"$WORK/inflight.code" &
INF=$!
wait_seen west /sim/echo/west-inflight 1
# the connections vc-east's simulator has seen so far (all idle in smsguard's pools now)
EAST_CONNS=$(conns east)
held_open west gone
WEST_N=$(record_count "${REC[west]}")
conf_for east north
hup_and_wait "reloaded"
is_alive "$INF" || fail "the request on west.vc.test ended before the reload took effect: raise its delay"
is_alive "$HL" || fail "h2load ended before the reload: raise N2 or lower the rate"
echo "   reloaded with $(seen north /sim/echo/load-north) load requests received by vc-north, a request on vc-west in flight"

check "after the removal: the request in flight finished, west.vc.test is 421 with nothing forwarded"
wait "$INF" || true
assert_eq 200 "$(cat "$WORK/inflight.code")" "the request in flight on vc-west during its removal"
assert_ne "$(file_fp "$WORK/west.crt")" "$(cert_fp west.vc.test)" "certificate for SNI west.vc.test after the removal"
for proto in http1.1 http2; do
    # the vhost is gone: SNI west.vc.test gets the listener's certificate, hence -k
    code=$(vget west "/sim/echo/west-gone-$proto" "--$proto" -k)
    assert_eq 421 "$code" "GET on west.vc.test over $proto after the removal"
done
held_close
got=$(cat "$WORK/held.out")
sed 's/^/   connection opened before the reload: /' <<<"$got"
assert_eq $'h2 status 200 -> status 421\nh1 status 200 -> status 421' "$got" \
    "answers on connections to west.vc.test opened before its removal (before -> after)"
printf 'GET /sim/echo/west-gone-raw HTTP/1.1\r\nHost: west.vc.test\r\nConnection: close\r\n\r\n' >"$WORK/gone.in"
tls_raw "$SG_PORT" "$WORK/gone.in" "$WORK/gone.out" 3 >/dev/null
assert_eq 421 "$(head -c 12 "$WORK/gone.out" | cut -d' ' -f2)" "Host west.vc.test without SNI after the removal"
assert_eq "500 NotAuthenticated" "$(stop east west vasa-w)" "t-west's token (removed with its tenant) on east.vc.test"
assert_eq "$WEST_N" "$(record_count "${REC[west]}")" "requests vc-west's simulator received after its removal"
assert_eq "1 1 0 0" "$(seen west held-h2-before-gone) $(seen west held-h1-before-gone) $(seen west held-h2-after-gone) $(seen west held-h1-after-gone)" \
    "requests on the held connections vc-west's simulator received (h2, h1 before; h2, h1 after)"
assert_eq 200 "$(health)" "/healthz"
assert_not_contains "$(cat "$WORK/health.body")" "vc-west" "/healthz after the removal"
assert_contains "$(cat "$WORK/health.body")" "upstream vc-east: up" "/healthz after the removal"
assert_contains "$(cat "$WORK/health.body")" "upstream vc-north: up" "/healthz after the removal"

check "east serves on its pooled connections, north's h2load has no failure"
n=$(record_count "${REC[east]}")
for i in 1 2 3 4; do
    assert_eq 200 "$(vget east "/sim/echo/east-after-$i")" "GET $i on east.vc.test after the removal"
done
assert_eq "200 ManagedObjectReference" "$(stop east east vasa-1)" "t-east's stop-test after the removal"
got=$(new_conns east "$n" "$EAST_CONNS")
echo "   vc-east connections before the removal: $(wc -w <<<"$EAST_CONNS"); new ones after it: ${got:-none}"
assert_eq "" "$got" "new connections to vc-east after a reload that left it unchanged"
wait "$HL" || fail "h2load exited non-zero: $(cat "$WORK/h2load-2.out")"
forget_pid "$HL"
h2load_ok "$WORK/h2load-2.out" "$N2" north /sim/echo/load-north
assert_eq 0 "$(grep -c 'reload refused' "$SG_LOG" || true)" "refused reloads"
serving "after the reload removing vc-west" east north

# =======================================================================================
check "reload moving vc-north to another simulator: in flight stays, new requests move"
vget north /sim/echo/north-inflight -H 'x-sim-delay-ms: 2000' >"$WORK/inflight2.code" &
INF=$!
wait_seen north /sim/echo/north-inflight 1
held_open north moved
EAST_CONNS=$(conns east)
NORTH_N=$(record_count "${REC[north]}")
NORTH1_PORT=${SIMPORT[north]} NORTH1_REC=${REC[north]}
SIMPORT[north]=${SIMPORT[north2]}
conf_for east north
hup_and_wait "reloaded"
held_close
got=$(cat "$WORK/held.out")
sed 's/^/   connection opened before the reload: /' <<<"$got"
assert_eq $'h2 status 200 -> status 200\nh1 status 200 -> status 200' "$got" \
    "answers on connections to north.vc.test opened before the move (before -> after)"
assert_eq "0 0 1 1" "$(seen north held-h2-after-moved) $(seen north held-h1-after-moved) $(seen north2 held-h2-after-moved) $(seen north2 held-h1-after-moved)" \
    "requests sent after the move on connections opened before it, at the old vc-north (h2 h1) and at north2 (h2 h1)"
is_alive "$INF" || fail "the request on north.vc.test ended before the reload took effect: raise its delay"
for proto in http1.1 http2; do
    assert_eq 200 "$(vget north "/sim/echo/moved-$proto" "--$proto")" "GET on north.vc.test over $proto after the move"
    assert_eq 1 "$(seen north2 "/sim/echo/moved-$proto")" "requests north2 received for moved-$proto"
done
assert_eq "200 ManagedObjectReference" "$(stop north north vasa-moved)" "t-north's stop-test after the move"
assert_eq 1 "$(seen north2 "$VP/vasa-moved/$M")" "t-north's stop-test at north2"
wait "$INF" || true
assert_eq 200 "$(cat "$WORK/inflight2.code")" "the request in flight on the old vc-north during the move"
assert_eq "$NORTH_N" "$(record_count "${REC[north]}")" "requests the old vc-north simulator received after the move"
n=$(record_count "${REC[east]}")
assert_eq 200 "$(vget east /sim/echo/east-after-move)" "GET on east.vc.test after the move"
got=$(new_conns east "$n" "$EAST_CONNS")
assert_eq "" "$got" "new connections to vc-east after a reload that changed vc-north only"
echo "   vc-north now at north2; the request in flight finished on the old one; vc-east's connections kept"
assert_eq 0 "$(grep -c 'reload refused' "$SG_LOG" || true)" "refused reloads"
REC[north]=${REC[north2]}
serving "after the reload moving vc-north" east north

# =======================================================================================
check "vc-north down (north2 stopped), then a reload pointing it at a live simulator: served at once"
kill -TERM "${SIMPID[north2]}"
deadline=$((SECONDS + 5))
while is_alive "${SIMPID[north2]}" && ((SECONDS < deadline)); do sleep 0.05; done
is_alive "${SIMPID[north2]}" && fail "north2 still runs 5 s after SIGTERM"
wait "${SIMPID[north2]}" 2>/dev/null || true
forget_pid "${SIMPID[north2]}"
deadline=$((SECONDS + 5))
until [[ $(health /vc-north) == 503 ]]; do
    ((SECONDS < deadline)) || fail "/healthz/vc-north 5 s after north2 stopped: $(health /vc-north)"
    assert_eq 502 "$(vget north /sim/echo/north-down)" "GET on north.vc.test with north2 stopped"
    sleep 0.1
done
# 3 to 4 s more of requests: the probes fail, the hold-down doubles to 4 s, beyond the reload
t0=$SECONDS
while ((SECONDS - t0 < 4)); do
    assert_eq 502 "$(vget north /sim/echo/north-down)" "GET on north.vc.test while vc-north is held down"
    sleep 0.2
done
SIMPORT[north]=$NORTH1_PORT REC[north]=$NORTH1_REC
n=$(record_count "${REC[north]}")
conf_for east north
hup_and_wait "reloaded"
# no hold-down carried over to the new address: the first request is forwarded
assert_eq 200 "$(vget north /sim/echo/north-back-1)" "GET on north.vc.test right after the reload"
assert_eq $((n + 1)) "$(record_count "${REC[north]}")" "requests the first vc-north simulator received after the reload"
assert_eq 200 "$(health /vc-north)" "/healthz/vc-north after a request was served"
echo "   vc-north back on its first simulator: served at once, /healthz/vc-north 200"
assert_eq 0 "$(grep -c 'reload refused' "$SG_LOG" || true)" "refused reloads"
serving "after the reload pointing vc-north at a live simulator" east north

echo "PASS: $TEST_NAME"
