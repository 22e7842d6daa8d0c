#!/usr/bin/env bash
# 48_upstream_health: per-upstream reachability on /healthz (issue 18). Two upstreams:
# "vc-up" (the simulator, the listener's own names) and "vc-east" (vhost "localhost") on a
# port where nothing listens, both checked every 200 ms. Before any request /healthz shows
# vc-up up and vc-east down within about one interval, and stays 200 (the gateway serves
# vc-up); /healthz/NAME answers 200 / 503 / 404, HEAD too. A request for vc-east fails at
# once with ProviderUnavailable and is counted under upstream="vc-east". Once a listener
# appears on vc-east's port, the check brings it back without any client request, and
# requests for it are served there. A reload that adds an upstream on a closed port shows
# it down. The same process serves throughout.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

start_sim
free_port EAST_PORT
free_port RELOAD_DEAD_PORT
EAST_RECORD=$WORK/east.record

# conf FILE EXTRA_UPSTREAM [guard_conf settings]: guard_conf's file with two named
# upstreams (and EXTRA_UPSTREAM), the listener's own names going to vc-up and the vhost
# "localhost" to vc-east.
conf() {
    local file=$1 more=$2
    shift 2
    guard_conf "$file" "$@" "policy=policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)\";
               subject = \"tester\"; tenant = \"all\"; roles = [\"dr-operator\"]; } );
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"all\"; scopes = (
      { upstream = \"vc-up\"; providers = [\"*\"]; fault_domains = [\"*\"]; },
      { upstream = \"vc-east\"; providers = [\"*\"]; fault_domains = [\"*\"]; } ); } );
};"
    pyc '
import re, sys
f, sim, east, more = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s = open(f).read()
ups = """upstreams = (
  { name = "vc-up"; url = "http://127.0.0.1:%s"; check_interval_ms = 200; },
  { name = "vc-east"; url = "http://127.0.0.1:%s"; check_interval_ms = 200;
    connect_timeout_ms = 500; }%s
);""" % (sim, east, more)
s, n = re.subn(r"(?ms)^upstream = \{.*?^\};", lambda m: ups, s)
assert n == 1, "no upstream block"
s, n = re.subn(r"(?m)^    tls = \{", lambda m: """    upstream = "vc-up";
    vhosts = ( { server_names = ["localhost"]; upstream = "vc-east"; } );
    tls = {""", s)
assert n == 1, "no tls block"
open(f, "w").write(s)' "$file" "$SIM_PORT" "$EAST_PORT" "$more"
}

# healthz PATH [curl options]: "STATUS BODY" of GET PATH on the admin listener (the body's
# lines joined with "|").
healthz() {
    local path=$1 code
    shift
    code=$(curl -sS --max-time 5 -o "$WORK/hz.body" -w '%{http_code}' "$@" "$SG_ADMIN_URL$path")
    echo "$code $(tr '\n' '|' <"$WORK/hz.body")"
}

# wait_healthz PATH PATTERN WHAT: poll PATH until "STATUS BODY" matches PATTERN (ERE), 3 s
# at most (the check runs every 200 ms).
wait_healthz() {
    local got deadline=$((SECONDS + 3))
    while :; do
        got=$(healthz "$1")
        [[ $got =~ $2 ]] && break
        ((SECONDS < deadline)) || fail "$3: $1 is '$got' after 3 s, wanted /$2/"
        sleep 0.05
    done
    echo "   $1: $got"
}

# east_curl PATH OUT: a request for the vhost "localhost" (vc-east); prints the status.
east_curl() {
    sg_curl --http1.1 --resolve "localhost:$SG_PORT:127.0.0.1" -o "$2" -w '%{http_code}' \
        "https://localhost:$SG_PORT$1" || true
}

conf "$WORK/sg.conf" ""
start_guard "$WORK/sg.conf"

check "before any request: /healthz is 200, vc-up up, vc-east down within about one interval"
wait_healthz /healthz '^200 ok\|upstream vc-up: up\|upstream vc-east: down \(upstream unreachable, for [0-9]+s\)\|$' \
    "vc-east on a closed port"
[[ -s $SIM_RECORD ]] && fail "a request reached the simulator: $(record_paths)"

check "/healthz/NAME and /healthz?upstream=NAME: 200 up, 503 down, 404 unknown"
assert_eq "200 up|" "$(healthz /healthz/vc-up)" "GET /healthz/vc-up"
got=$(healthz /healthz/vc-east)
[[ $got =~ ^503\ down\ \(upstream\ unreachable,\ for\ [0-9]+s\)\|$ ]] || fail "GET /healthz/vc-east: '$got'"
got=$(healthz "/healthz?upstream=vc-east")
[[ $got == "503 down ("* ]] || fail "GET /healthz?upstream=vc-east: '$got'"
assert_eq "200 up|" "$(healthz "/healthz?upstream=vc-up")" "GET /healthz?upstream=vc-up"
assert_eq "404 unknown upstream|" "$(healthz /healthz/vc-nowhere)" "GET /healthz/vc-nowhere"
assert_eq "404 not found|" "$(healthz /healthz/)" "GET /healthz/ (no name)"
assert_eq "503 0" "$(curl -sS --max-time 5 -I -o /dev/null -w '%{http_code} %{size_download}' \
    "$SG_ADMIN_URL/healthz/vc-east")" "HEAD /healthz/vc-east"
assert_eq "200 0" "$(curl -sS --max-time 5 -I -o /dev/null -w '%{http_code} %{size_download}' \
    "$SG_ADMIN_URL/healthz/vc-up")" "HEAD /healthz/vc-up"
assert_eq 405 "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST \
    "$SG_ADMIN_URL/healthz/vc-up")" "POST /healthz/vc-up"

check "vc-up serves while vc-east is down; vc-east's request fails at once (ProviderUnavailable)"
out=$(sg_curl --http1.1 -o /dev/null -w '%{http_code}' "$SG_URL/sim/echo/to-up")
assert_eq 200 "$out" "request for vc-up"
out=$(sg_curl --http2 -o "$WORK/east.body" -w '%{http_code} %{time_total}' \
    --resolve "localhost:$SG_PORT:127.0.0.1" "https://localhost:$SG_PORT/sim/echo/to-east" || true)
echo "   vc-east: $out"
assert_eq 502 "${out% *}" "request for vc-east while it is down"
assert_time_between "${out#* }" 0 0.5 "time to 502 (no connect attempt)"
assert_fault "$WORK/east.body" ProviderUnavailable
record_has_path /sim/echo/to-east && fail "vc-east's request went to vc-up's server"
sleep 0.3 # the gauges are published every 100 ms
curl -sS --max-time 5 -o "$WORK/m1" "$SG_ADMIN_URL/metrics"
m=$(cat "$WORK/m1")
assert_contains "$m" 'smsguard_requests_total{upstream="vc-up",route="other",protocol="h1",decision="none",status="200"} 1' "metrics"
assert_contains "$m" 'smsguard_requests_total{upstream="vc-east",route="other",protocol="h2",decision="none",status="502"} 1' "metrics"
assert_contains "$m" 'smsguard_upstream_duration_seconds_count{upstream="vc-up"} 1' "metrics"
assert_contains "$m" 'smsguard_upstream_connections_open{upstream="vc-east"} 0' "metrics"
assert_contains "$m" 'smsguard_upstream_connections_idle{upstream="vc-up"} 1' "metrics"

check "a listener appears on vc-east's port: up again within about one interval, no request needed"
"$SMS_SIM" --listen "127.0.0.1:$EAST_PORT" --record "$EAST_RECORD" </dev/null \
    >"$WORK/east-sim.out" 2>"$WORK/east-sim.err" &
EAST_PID=$!
track_pid "$EAST_PID" "sms-sim (vc-east)"
wait_port "$EAST_PORT" "$EAST_PID" "sms-sim (vc-east)" "$WORK/east-sim.err"
wait_healthz /healthz/vc-east '^200 up\|$' "vc-east with a listener"
assert_eq "200 ok|upstream vc-up: up|upstream vc-east: up|" "$(healthz /healthz)" "GET /healthz"
assert_eq 200 "$(east_curl /sim/echo/east-back "$WORK/east.body")" "request for vc-east once up"
record_has_path /sim/echo/east-back "$EAST_RECORD" || fail "vc-east's server did not get the request"
record_has_path /sim/echo/east-back && fail "vc-east's request went to vc-up's server"

check "a reload adds vc-gone on a closed port: listed, down within about one interval, still 200"
conf "$WORK/sg.conf" ",
  { name = \"vc-gone\"; url = \"http://127.0.0.1:$RELOAD_DEAD_PORT\"; check_interval_ms = 200; }" \
    "listen_port=$SG_PORT" "admin_port=$SG_ADMIN_PORT"
hup_and_wait "reloaded"
wait_healthz /healthz '^200 ok\|upstream vc-up: up\|upstream vc-east: up\|upstream vc-gone: down \(upstream unreachable, for [0-9]+s\)\|$' \
    "vc-gone after the reload"
curl -sS --max-time 5 -o "$WORK/m2" "$SG_ADMIN_URL/metrics"
assert_contains "$(cat "$WORK/m2")" 'smsguard_upstream_connect_failures_total{upstream="vc-gone"} 0' \
    "metrics of the added upstream (the check's connects are not the data path's)"

check "the same process still serves"
assert_serving "after the upstreams' health changes"

echo "PASS: $TEST_NAME"
