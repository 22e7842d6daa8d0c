#!/usr/bin/env bash
# 44_reload_listen: SIGHUP opens and closes listen addresses without dropping the others
# (issue 9). Two workers, so every address has one SO_REUSEPORT socket per worker.
#   - a second listen entry added by a reload is served at once; the first keeps serving,
#     and a keep-alive connection opened on it before the reload carries on
#   - a reload adding a port another process holds is refused with the address and the
#     reason in the log; both running ports keep serving. So is one moving the admin
#     listener to that port, and the listen port it had bound meanwhile is closed again
#   - a reload removing the first entry: its port refuses new connections, the connection
#     opened on it earlier still gets answers, the second port serves
#   - the admin listener moves to another port on reload: /healthz answers there, the old
#     port refuses
# Every answer is checked at the client and in the simulator's record.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need ss iproute2

# conf_ports FILE ADMIN PORT...: guard_conf, then one listen entry per PORT (same
# certificate), in that order.
conf_ports() {
    local file=$1 admin=$2
    shift 2
    guard_conf "$file" listen_port="$1" admin_port="$admin"
    python3 - "$file" "$@" <<'PY'
import re, sys
f, ports = sys.argv[1], sys.argv[2:]
s = open(f).read()
m = re.search(r"listen = \(\n  \{\n(.*?)\n  \}\n\);\n", s, re.S)
entry = m.group(1)
body = ",\n".join("  {\n%s\n  }" % re.sub(r"port = \d+;", "port = %s;" % p, entry) for p in ports)
open(f, "w").write(s[:m.start()] + "listen = (\n" + body + "\n);\n" + s[m.end():])
PY
}

# get PORT NAME: GET /sim/echo/NAME on 127.0.0.1:PORT; prints the status (000: no answer).
get() {
    sg_curl --max-time 5 -o "$WORK/$2.json" -w '%{http_code}' "https://127.0.0.1:$1/sim/echo/$2" \
        2>"$WORK/$2.curlerr" || true
}

# served PORT NAME WHAT: a request on PORT is answered 200 by the simulator.
served() {
    assert_eq 200 "$(get "$1" "$2")" "$3 (port $1): status; $(cat "$WORK/$2.curlerr")"
    assert_eq "/sim/echo/$2" "$(json_eval "$WORK/$2.json" 'd["path"]')" "$3: the echoed path"
    record_has_path "/sim/echo/$2" || fail "$3: the simulator did not record /sim/echo/$2"
}

# refused PORT WHAT: nothing accepts on 127.0.0.1:PORT (within 2 s: a worker closes its
# socket when it takes the reload).
refused() {
    local deadline=$((SECONDS + 2))
    while (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || fail "$2: 127.0.0.1:$1 still accepts connections"
        sleep 0.05
    done
}

setup_certs
start_sim
free_port P1
free_port P2
free_port P3
free_port P4
free_port A1
free_port A2
conf_ports "$WORK/sg.conf" "$A1" "$P1"
start_guard "$WORK/sg.conf"

# listeners PORT: how many sockets listen on 127.0.0.1:PORT (smsguard: one per worker).
listeners() { ss -Hltn "( sport = :$1 )" | wc -l; }

check "before the reload: port 1 serves, port 2 is closed"
served "$P1" before-p1 "port 1"
refused "$P2" "port 2 before it is configured"

check "a keep-alive connection opened on port 1 before the reloads"
# The client answers one request per line read from its FIFO, on one connection, and
# prints "STATUS PATH LOCALPORT" for each (the local port shows it is the same connection).
mkfifo "$WORK/keep.in"
cat >"$WORK/keep.py" <<'PY'
import http.client, json, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
for line in sys.stdin:
    name = line.strip()
    c.request("GET", "/sim/echo/" + name)
    r = c.getresponse()
    body = r.read()
    print(r.status, json.loads(body)["path"], c.sock.getsockname()[1], flush=True)
PY
# exec: $! must be the client itself (python3 is a shell function in lib.sh)
(exec "$PYBIN" -u "$WORK/keep.py" "$P1" "$CA_CRT" <"$WORK/keep.in" >"$WORK/keep.out" 2>"$WORK/keep.err") &
KEEP=$!
track_pid "$KEEP" "keep-alive client"
exec 7>"$WORK/keep.in"
# keep_req NAME WHAT: one request on the kept connection; it must be answered 200 on the
# same connection as the first.
KEEP_N=0
keep_req() {
    local deadline=$((SECONDS + 10)) line
    KEEP_N=$((KEEP_N + 1))
    echo "$1" >&7
    while (($(grep -c . "$WORK/keep.out" || true) < KEEP_N)); do
        is_alive "$KEEP" || fail "$2: the keep-alive client died: $(cat "$WORK/keep.err")"
        ((SECONDS < deadline)) || fail "$2: no answer on the keep-alive connection"
        sleep 0.05
    done
    line=$(sed -n "${KEEP_N}p" "$WORK/keep.out")
    echo "   $2: $line"
    assert_eq "200 /sim/echo/$1" "${line% *}" "$2: answer on the keep-alive connection"
    [[ -n ${KEEP_LPORT:-} ]] || KEEP_LPORT=${line##* }
    assert_eq "$KEEP_LPORT" "${line##* }" "$2: the client's local port (same connection)"
    record_has_path "/sim/echo/$1" || fail "$2: the simulator did not record /sim/echo/$1"
}
keep_req keep-1 "before the reload"

check "reload adding port 2: served at once; port 1 and the kept connection carry on"
conf_ports "$WORK/sg.conf" "$A1" "$P1" "$P2"
hup_and_wait "reloaded"
assert_match "listening on 127\.0\.0\.1:$P2 " "$(grep 'listening on' "$SG_LOG" | tail -n 1)" \
    "the log names the new address"
served "$P2" added-p2 "port 2 after the reload"
served "$P1" kept-p1 "port 1 after the reload"
keep_req keep-2 "after adding port 2"
for i in 1 2 3 4 5 6; do served "$P2" "p2-many-$i" "port 2, request $i"; done
assert_eq 2 "$(listeners "$P1")" "sockets listening on port 1 (one per worker)"
assert_eq 2 "$(listeners "$P2")" "sockets listening on port 2 (one per worker)"

check "reload adding a port another process holds: refused, both ports keep serving"
(exec "$PYBIN" -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("ready", flush=True)
time.sleep(60)' "$P3" >"$WORK/squat.out" 2>&1) &
SQUAT=$!
track_pid "$SQUAT" "port squatter"
for _ in $(seq 1 100); do [[ -s $WORK/squat.out ]] && break; sleep 0.05; done
[[ -s $WORK/squat.out ]] || fail "the port squatter did not start"
cp "$WORK/sg.conf" "$WORK/sg.good"
conf_ports "$WORK/sg.conf" "$A1" "$P1" "$P2" "$P3"
hup_and_wait "reload refused"
msg=$(grep 'reload refused' "$SG_LOG" | tail -n 1)
echo "   $msg"
assert_match "sg\.conf: listen 127\.0\.0\.1:$P3: Address already in use" "$msg" "the refusal"
served "$P1" squat-p1 "port 1 after the refused reload"
served "$P2" squat-p2 "port 2 after the refused reload"
keep_req keep-3 "after the refused reload"
assert_eq 1 "$(listeners "$P3")" "sockets listening on port 3 (the other process's only)"
assert_eq 2 "$(listeners "$P1")" "sockets listening on port 1"
assert_eq 2 "$(listeners "$P2")" "sockets listening on port 2"

check "reload adding port 4 but moving admin to the taken port: refused, port 4 closed again"
conf_ports "$WORK/sg.conf" "$P3" "$P1" "$P2" "$P4"
hup_and_wait "reload refused"
msg=$(grep 'reload refused' "$SG_LOG" | tail -n 1)
echo "   $msg"
assert_match "sg\.conf: admin 127\.0\.0\.1:$P3: Address already in use" "$msg" "the refusal"
assert_eq 0 "$(listeners "$P4")" "sockets listening on port 4 (bound, then closed by the refusal)"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A1/healthz" || true)
assert_eq 200 "$out" "/healthz on the running admin port"
served "$P2" squat2-p2 "port 2 after the second refused reload"
kill "$SQUAT"
wait "$SQUAT" 2>/dev/null || true
forget_pid "$SQUAT"

check "reload removing port 1: it refuses new connections; port 2 and the old connection serve"
cp "$WORK/sg.good" "$WORK/sg.conf"
conf_ports "$WORK/sg.conf" "$A1" "$P2"
hup_and_wait "reloaded"
assert_match "no longer listening on 127\.0\.0\.1:$P1\$" "$(grep 'no longer listening' "$SG_LOG" | tail -n 1)" \
    "the log names the closed address"
refused "$P1" "port 1 after its removal"
before=$(record_count)
assert_eq 000 "$(get "$P1" removed-p1)" "a request to port 1 after its removal"
assert_eq "$before" "$(record_count)" "requests the simulator received from the refused attempt"
served "$P2" only-p2 "port 2 after port 1 was removed"
keep_req keep-4 "the connection accepted on port 1 before its removal"
assert_eq 0 "$(listeners "$P1")" "sockets listening on port 1"
assert_eq 2 "$(listeners "$P2")" "sockets listening on port 2"

check "reload moving the admin listener: /healthz answers on the new port, the old one refuses"
conf_ports "$WORK/sg.conf" "$A2" "$P2"
hup_and_wait "reloaded"
out=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$A2/healthz" || true)
assert_eq 200 "$out" "/healthz on the new admin port"
refused "$A1" "the old admin port"
served "$P2" after-admin "port 2 after the admin move"

check "the keep-alive client ends cleanly; SIGTERM then exits 0"
exec 7>&-
wait "$KEEP" || fail "the keep-alive client failed: $(cat "$WORK/keep.err")"
forget_pid "$KEEP"
stop_guard_term
refused "$P2" "port 2 after SIGTERM"

echo "PASS: $TEST_NAME"
