#!/usr/bin/env bash
# scripts/demo.sh - run smsguard in front of the SMS simulator and show a real
# TestFailoverReplicationGroupStop_Task request going through over HTTP/2.
#
#   ./scripts/demo.sh          install, build, start both, show requests, leave them running
#   ./scripts/demo.sh --once   the same, then stop both (the default when CI=true)
#   ./scripts/demo.sh --stop   stop what an earlier run left running
#
# Files: build/ (cmake Release), .dev/ (git-ignored: development CA ca.crt/ca.key, server
# certificate server.crt/server.key for localhost and 127.0.0.1, logs, PID files, and the
# simulator's record sim-record.jsonl). Ports: smsguard 8443 (TLS, h2 and http/1.1), admin
# 9901, sms-sim 9443, all on 127.0.0.1; conf/smsguard.conf says so.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
DEV=$ROOT/.dev
CONF=conf/smsguard.conf
TOKEN=dev-token-please-change
RELEASE=8.0.3.0
PROVIDER=vasa-1
SG_PORT=8443
ADMIN_PORT=9901
SIM_PORT=9443

ONCE=0
[[ ${CI:-} == true ]] && ONCE=1
case ${1:-} in
--once) ONCE=1 ;;
--stop) ;;
"") ;;
-h | --help)
    sed -n '2,12p' "$0"
    exit 0
    ;;
*)
    echo "demo.sh: unknown option $1 (try --help)" >&2
    exit 2
    ;;
esac

STEP=0
BOLD="" PLAIN=""
if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; fi
step() {
    STEP=$((STEP + 1))
    printf '\n%s==> %d. %s%s\n' "$BOLD" "$STEP" "$*" "$PLAIN"
}
say() { printf '    %s\n' "$*"; }
die() {
    printf '\ndemo.sh: %s\n' "$*" >&2
    exit 1
}

# running NAME: the PID in .dev/NAME.pid when that process is still NAME; else nothing.
running() {
    local pid
    pid=$(cat "$DEV/$1.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    local argv0
    argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)
    [[ $(basename -- "$argv0") == "$1" ]] || return 1
    echo "$pid"
}

# stop NAME: stop the process an earlier run started (by its recorded PID only).
stop() {
    local pid
    pid=$(running "$1") || { rm -f "$DEV/$1.pid"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [[ -e /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -e /proc/$pid ]]; then
        echo "    $1 (pid $pid) did not stop in 10 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$DEV/$1.pid"
    say "stopped $1 (pid $pid)"
}

if [[ ${1:-} == --stop ]]; then
    stop smsguard
    stop sms-sim
    exit 0
fi

# port_open PORT: something accepts on 127.0.0.1:PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port NAME PID PORT LOG: wait (15 s at most) until PORT accepts.
wait_port() {
    local _
    for _ in $(seq 1 300); do
        port_open "$3" && return 0
        if [[ ! -e /proc/$2 ]]; then
            echo "----- $4 -----" >&2
            tail -n 40 "$4" >&2 || true
            die "$1 exited before listening on 127.0.0.1:$3"
        fi
        sleep 0.05
    done
    tail -n 40 "$4" >&2 || true
    die "$1 is not accepting on 127.0.0.1:$3 after 15 s"
}

step "Dependencies (scripts/deps.sh --demo: the build, openssl, curl, python3)"
./scripts/deps.sh --demo

step "Build (cmake Release into build/: smsguard and sms-sim)"
# BUILD_TESTING=OFF: the demo needs neither cmocka nor the test binaries (scripts/test.sh
# configures build/ again with them).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSG_SANITIZE=OFF -DBUILD_TESTING=OFF \
    >build-demo-configure.log 2>&1 ||
    { cat build-demo-configure.log >&2; die "cmake configure failed"; }
rm -f build-demo-configure.log
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target smsguard sms-sim
SMSGUARD=$ROOT/build/smsguard
SMS_SIM=$ROOT/build/sms-sim
say "$("$SMSGUARD" --version 2>&1 | head -n 1)"

step "Development CA and server certificate (.dev/)"
mkdir -p "$DEV"
chmod 700 "$DEV"
if [[ -s $DEV/ca.crt && -s $DEV/ca.key && -s $DEV/server.crt && -s $DEV/server.key ]] &&
    openssl x509 -in "$DEV/server.crt" -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl verify -CAfile "$DEV/ca.crt" "$DEV/server.crt" >/dev/null 2>&1; then
    say "reusing .dev/ca.crt and .dev/server.crt"
else
    (
        cd "$DEV"
        umask 077
        openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout ca.key -out ca.crt -days 825 -subj "/CN=smsguard development CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign"
        cat >server.ext <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
        openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout server.key -out server.csr -subj "/CN=localhost"
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
            -set_serial "0x$(openssl rand -hex 8)" -days 397 -extfile server.ext -out server.crt
        rm -f server.csr server.ext
    ) >"$DEV/openssl.log" 2>&1 || { cat "$DEV/openssl.log" >&2; die "openssl failed"; }
    say "made .dev/ca.crt (CA) and .dev/server.crt + .dev/server.key (localhost, 127.0.0.1)"
fi
say "server certificate: $(openssl x509 -in "$DEV/server.crt" -noout -subject -nameopt oneline 2>/dev/null), $(openssl x509 -in "$DEV/server.crt" -noout -ext subjectAltName 2>/dev/null | tail -n 1 | sed -e 's/^ *//'), until $(openssl x509 -in "$DEV/server.crt" -noout -enddate | cut -d= -f2)"

step "Start sms-sim on 127.0.0.1:$SIM_PORT (records every request in .dev/sim-record.jsonl)"
stop smsguard
stop sms-sim
for p in $SIM_PORT $SG_PORT $ADMIN_PORT; do
    ! port_open "$p" || die "127.0.0.1:$p is in use by another program; stop it first"
done
: >"$DEV/sim-record.jsonl"
setsid "$SMS_SIM" --listen "127.0.0.1:$SIM_PORT" --record "$DEV/sim-record.jsonl" \
    </dev/null >"$DEV/sms-sim.log" 2>&1 &
SIM_PID=$!
echo "$SIM_PID" >"$DEV/sms-sim.pid"
wait_port sms-sim "$SIM_PID" "$SIM_PORT" "$DEV/sms-sim.log"
say "sms-sim pid $SIM_PID, log .dev/sms-sim.log"

step "Start smsguard -c $CONF (https://localhost:$SG_PORT, admin 127.0.0.1:$ADMIN_PORT)"
"$SMSGUARD" -t -c "$CONF" || die "$CONF does not pass smsguard -t"
setsid "$SMSGUARD" -c "$CONF" </dev/null >"$DEV/smsguard.log" 2>&1 &
SG_PID=$!
echo "$SG_PID" >"$DEV/smsguard.pid"
wait_port smsguard "$SG_PID" "$SG_PORT" "$DEV/smsguard.log"
wait_port "smsguard (admin)" "$SG_PID" "$ADMIN_PORT" "$DEV/smsguard.log"
say "smsguard pid $SG_PID, log .dev/smsguard.log"
say "GET http://127.0.0.1:$ADMIN_PORT/healthz -> $(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN_PORT/healthz")"

STOP_PATH=/sdk/vim25/$RELEASE/sms/VasaProvider/$PROVIDER/TestFailoverReplicationGroupStop_Task
BODY='{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"rg-1"}}],"force":false}'

step "TestFailoverReplicationGroupStop_Task through smsguard over HTTP/2"
cat <<EOF
    \$ curl --http2 --cacert .dev/ca.crt -H 'Authorization: Bearer $TOKEN' \\
        -H 'Content-Type: application/json' \\
        --data '$BODY' \\
        https://localhost:$SG_PORT$STOP_PATH -v

EOF
rc=0
PROTO="" STATUS=""
curl --http2 --cacert .dev/ca.crt -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data "$BODY" --max-time 30 --no-progress-meter \
    -o "$DEV/stop-answer.json" -w '%{http_version} %{http_code}' \
    "https://localhost:$SG_PORT$STOP_PATH" -v >"$DEV/stop-meta.txt" 2>"$DEV/stop-verbose.txt" || rc=$?
sed -e 's/^/    /' "$DEV/stop-verbose.txt" | grep -vE '^    (\{ \[|\} \[)' || true
read -r PROTO STATUS <"$DEV/stop-meta.txt" || true
((rc == 0)) || die "curl failed (exit $rc); see .dev/smsguard.log"
echo
say "protocol: HTTP/${PROTO:-?}   status: ${STATUS:-?}"
say "answer:"
python3 -m json.tool "$DEV/stop-answer.json" 2>/dev/null | sed -e 's/^/      /' ||
    sed -e 's/^/      /' "$DEV/stop-answer.json"
echo
[[ $PROTO == 2 ]] || die "the request did not go over HTTP/2"
[[ $STATUS == 200 ]] || die "the stop-test request was not answered 200"

TASK=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["value"])' \
    "$DEV/stop-answer.json") || die "the answer holds no task reference"
TASK_TYPE=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("type") or "SmsTask")' \
    "$DEV/stop-answer.json")

step "QuerySmsTaskInfo for $TASK_TYPE $TASK"
INFO_PATH=/sdk/vim25/$RELEASE/sms/SmsTask/$TASK/QuerySmsTaskInfo
say "\$ curl --http2 --cacert .dev/ca.crt -H 'Authorization: Bearer $TOKEN' -X POST https://localhost:$SG_PORT$INFO_PATH"
state=""
for _ in $(seq 1 20); do
    out=$(curl -sS --http2 --cacert .dev/ca.crt -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -X POST --max-time 10 \
        -o "$DEV/task-info.json" -w '%{http_version} %{http_code}' "https://localhost:$SG_PORT$INFO_PATH") ||
        die "QuerySmsTaskInfo failed"
    state=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("state",""))' \
        "$DEV/task-info.json" 2>/dev/null || true)
    [[ $state == queued || $state == running ]] || break
    say "state $state; asking again in 0.5 s"
    sleep 0.5
done
say "protocol: HTTP/${out% *}   status: ${out#* }   task state: ${state:-?}"
python3 -m json.tool "$DEV/task-info.json" 2>/dev/null | sed -e 's/^/      /' ||
    sed -e 's/^/      /' "$DEV/task-info.json"

step "What sms-sim received (.dev/sim-record.jsonl)"
python3 - "$DEV/sim-record.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.strip():
        continue
    r = json.loads(line)
    print("    [%s] upstream conn %s: %s %s" % (r.get("time"), r.get("conn"), r.get("method"), r.get("path")))
    for n, v in r.get("headers", []):
        print("        %s: %s" % (n, v))
    if r.get("body"):
        print("        body: %s" % r["body"])
    names = [n.lower() for n, v in r.get("headers", [])]
    print("        (Authorization forwarded: %s)" % ("YES" if "authorization" in names else "no"))
PY

if ((ONCE)); then
    step "Stop (--once)"
    stop smsguard
    stop sms-sim
    echo
    echo "demo.sh: done"
    exit 0
fi

step "Running"
cat <<EOF
    smsguard  pid $SG_PID   https://localhost:$SG_PORT   admin http://127.0.0.1:$ADMIN_PORT/healthz
              log .dev/smsguard.log
    sms-sim   pid $SIM_PID   http://127.0.0.1:$SIM_PORT    record .dev/sim-record.jsonl
              log .dev/sms-sim.log

    Try:   curl --cacert .dev/ca.crt https://localhost:$SG_PORT/sdk/vim25/$RELEASE/sms/SmsTask/$TASK/QuerySmsTaskResult \\
               -X POST -H 'Authorization: Bearer $TOKEN'
    Stop:  ./scripts/demo.sh --stop      (or: kill $SG_PID $SIM_PID)
EOF
