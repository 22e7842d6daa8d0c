# shellcheck shell=bash disable=SC2034
# tests/integration/lib.sh - shared helpers for the integration tests.
#
# Sourced by every tests/integration/NN_<topic>.sh (run by ctest as `bash FILE` with
# SMSGUARD, SMS_SIM and SG_SOURCE_DIR set; see CMakeLists.txt). It owns the test's work
# directory (mktemp -d, removed on exit), the processes the test starts (stopped by PID on
# exit, never by name), certificates, configuration files, free ports and assertions.
# It knows nothing of what a test checks: each test prints its own checks and ends with
# `echo "PASS: <name>"`.
#
# Everything listens on 127.0.0.1 only, on ports the kernel picks; every wait is bounded.

set -euo pipefail

# The static token every default configuration accepts (guard_conf's default policy).
SG_TOKEN=test-token-$$

# PYBIN: the system interpreter (it has python3-hpack, and starts faster than a pyenv shim:
# 0.2 s a call adds up); python3 runs it. Use "$PYBIN" where $! must be its own PID.
PYBIN=/usr/bin/python3
[[ -x $PYBIN ]] || PYBIN=$(type -P python3)
python3() { "$PYBIN" "$@"; }

SG_SOURCE_DIR=${SG_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SMSGUARD=${SMSGUARD:-$SG_SOURCE_DIR/build/smsguard}
SMS_SIM=${SMS_SIM:-$SG_SOURCE_DIR/build/sms-sim}
TEST_NAME=$(basename "$0" .sh)

[[ -x $SMSGUARD ]] || { echo "FAIL: $TEST_NAME: SMSGUARD=$SMSGUARD is not an executable" >&2; exit 1; }
[[ -x $SMS_SIM ]] || { echo "FAIL: $TEST_NAME: SMS_SIM=$SMS_SIM is not an executable" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sg-$TEST_NAME.XXXXXX")
export WORK

declare -a SG__PIDS=()        # every process this test started, in start order
declare -A SG__PIDNAME=()     # pid -> name for messages
declare -A SG__PIDCHECK=()    # pid -> 1 when its exit status after SIGTERM must be 0
SG__SEQ=0                     # counter for unique log names
SG__USED_PORTS=" "

# ---------------------------------------------------------------------------------------
# Process bookkeeping and clean-up

# is_alive PID: true while PID runs (a zombie counts as gone).
is_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z ]]
}

# track_pid PID NAME [check]: remember a started process; with "check", a non-zero exit
# status after the clean-up's SIGTERM fails the test (smsguard must exit 0 on SIGTERM).
track_pid() {
    SG__PIDS+=("$1")
    SG__PIDNAME[$1]=$2
    [[ ${3:-} == check ]] && SG__PIDCHECK[$1]=1
    return 0
}

# forget_pid PID: the test has reaped PID itself (e.g. waited for its exit status).
forget_pid() {
    local p keep=()
    for p in "${SG__PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    SG__PIDS=("${keep[@]+"${keep[@]}"}")
}

# dump_logs: show the stderr of every process the test started.
dump_logs() {
    local f
    for f in "$WORK"/*.err; do
        [[ -e $f ]] || continue
        echo "----- $(basename "$f") (last 80 lines) -----" >&2
        tail -n 80 "$f" >&2 || true
    done
    echo "----- end of logs -----" >&2
}

sg__cleanup() {
    local rc=$? pid st deadline t0=$SECONDS
    set +e
    trap - EXIT ERR
    for pid in "${SG__PIDS[@]+"${SG__PIDS[@]}"}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    deadline=$((SECONDS + 10))
    for pid in "${SG__PIDS[@]+"${SG__PIDS[@]}"}"; do
        while is_alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
        if [[ -n ${SG__PIDCHECK[$pid]:-} ]] && ((SECONDS - t0 >= 2)); then
            # nothing is in flight at clean-up: a slow exit means a connection or request
            # was not released (smsguard waited for its drain timeout)
            echo "WARN: ${SG__PIDNAME[$pid]} (pid $pid) took $((SECONDS - t0)) s or more to exit after SIGTERM with no client left" >&2
        fi
        if is_alive "$pid"; then
            echo "WARN: ${SG__PIDNAME[$pid]} (pid $pid) still running 10 s after SIGTERM: killing" >&2
            kill -KILL "$pid" 2>/dev/null
            wait "$pid" 2>/dev/null
            continue
        fi
        wait "$pid" 2>/dev/null
        st=$?
        if [[ -n ${SG__PIDCHECK[$pid]:-} && $st -ne 0 && $st -ne 127 ]]; then
            echo "FAIL: $TEST_NAME: ${SG__PIDNAME[$pid]} (pid $pid) exited $st after SIGTERM" >&2
            rc=1
        fi
    done
    if grep -lE 'AddressSanitizer|LeakSanitizer|runtime error:' "$WORK"/*.err >/dev/null 2>&1; then
        echo "FAIL: $TEST_NAME: a sanitizer reported an error (see logs below)" >&2
        rc=1
    fi
    if ((rc != 0)) && ! ((rc == 77 && ${SG__SKIPPED:-0})); then
        dump_logs
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap sg__cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A command that fails outside an assertion ends the test (set -e): say which one, once.
SG__ERR_SHOWN=0
sg__on_err() {
    local rc=$?
    if ((SG__ERR_SHOWN == 0)) && [[ $BASHPID == "$$" ]]; then
        SG__ERR_SHOWN=1
        echo "FAIL: $TEST_NAME: command failed (exit $rc) at ${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}: $BASH_COMMAND" >&2
    fi
}
set -o errtrace
trap sg__on_err ERR

# ---------------------------------------------------------------------------------------
# One python3 for the helpers (lib/pyhelp.py)
#
# pyrun ARGS... <<'PY' SCRIPT PY   what `python3 - ARGS` does with the script on stdin
# pyc SCRIPT ARGS...               what `python3 -c SCRIPT ARGS` does
# but in the test's one helper process: starting python3 costs 30-50 ms of CPU, and the
# checks below run thousands of times a suite. A script's stdin is empty; its stdout and
# exit status are the call's, its stderr the test's. Calls are serialised (flock), so
# background jobs may make them too.

mkfifo "$WORK/.pyh.in" "$WORK/.pyh.out"
"$PYBIN" "$SG_SOURCE_DIR/tests/integration/lib/pyhelp.py" <"$WORK/.pyh.in" >"$WORK/.pyh.out" &
track_pid $! "python3 helper (lib/pyhelp.py)"
exec {SG__PYH_W}>"$WORK/.pyh.in" {SG__PYH_R}<"$WORK/.pyh.out"

sg__pyh_call() {
    local rc=1 n=0 out="" lk LC_ALL=C # read -N counts bytes
    {
        flock "$lk"
        { printf '%d\0' "$#" && printf '%s\0' "$@"; } >&"$SG__PYH_W"
        IFS=' ' read -r rc n <&"$SG__PYH_R" || fail "the python3 helper (lib/pyhelp.py) is gone"
        if ((n > 0)); then IFS= read -r -N "$n" out <&"$SG__PYH_R" || true; fi
    } {lk}>"$WORK/.pyh.lock"
    exec {lk}>&- # a {var} redirection outlives its command: close it, and the lock with it
    printf '%s' "$out"
    return "$rc"
}

pyrun() {
    local script
    IFS= read -r -d '' script || true
    sg__pyh_call "$script" "$@"
}

pyc() { sg__pyh_call "$@"; }

# ---------------------------------------------------------------------------------------
# Assertions

# check MSG: say what is checked next.
check() { echo "-- $*"; }

# fail MSG: the test failed; the EXIT trap shows smsguard's and sms-sim's stderr.
fail() {
    echo "FAIL: $TEST_NAME: $*" >&2
    exit 1
}

# skip REASON: the test cannot run here (a tool is missing, not root, ...): exit 77, which
# ctest reports as skipped, never as passed (SKIP_RETURN_CODE in CMakeLists.txt), and
# scripts/test.sh counts and lists with REASON. The usual clean-up runs (what the test
# started is stopped), without dumping logs.
SG__SKIPPED=0
skip() {
    echo "SKIP: $TEST_NAME: $*"
    SG__SKIPPED=1
    exit 77
}

# need COMMAND PACKAGE: skip the test unless COMMAND is installed; PACKAGE is the Debian
# package that has it (scripts/deps.sh --test installs it).
need() {
    command -v "$1" >/dev/null 2>&1 ||
        skip "$1 is not installed (Debian package $2; scripts/deps.sh --test installs it)"
}

# assert_eq EXPECTED ACTUAL [WHAT]
assert_eq() {
    [[ $1 == "$2" ]] || fail "${3:-value}: expected '$1', got '$2'"
}

# assert_ne UNEXPECTED ACTUAL [WHAT]
assert_ne() {
    [[ $1 != "$2" ]] || fail "${3:-value}: got '$2', which it must not be"
}

# assert_contains HAYSTACK NEEDLE [WHAT]
assert_contains() {
    [[ $1 == *"$2"* ]] || fail "${3:-text} does not contain '$2'; it was: $(printf '%s' "$1" | head -c 2000)"
}

# assert_not_contains HAYSTACK NEEDLE [WHAT]
assert_not_contains() {
    [[ $1 != *"$2"* ]] || fail "${3:-text} contains '$2' but must not; it was: $(printf '%s' "$1" | head -c 2000)"
}

# assert_match REGEX STRING [WHAT] (extended regular expression, bash =~)
assert_match() {
    [[ $2 =~ $1 ]] || fail "${3:-text} does not match /$1/; it was: $(printf '%s' "$2" | head -c 2000)"
}

# assert_le A B [WHAT], assert_lt A B [WHAT]: integers
assert_le() { (($1 <= $2)) || fail "${3:-value}: expected $1 <= $2"; }
assert_lt() { (($1 < $2)) || fail "${3:-value}: expected $1 < $2"; }

# assert_time_between SECONDS LOW HIGH [WHAT]: decimal seconds (e.g. curl's %{time_total})
assert_time_between() {
    pyc 'import sys; t,lo,hi=map(float,sys.argv[1:4]); sys.exit(0 if lo<=t<=hi else 1)' "$1" "$2" "$3" ||
        fail "${4:-duration}: ${1}s is not within [${2}s, ${3}s]"
}

# assert_fault FILE TYPE: FILE holds a JSON fault body whose _typeName is TYPE.
assert_fault() {
    local got
    got=$(pyc '
import json, sys
try:
    d = json.load(open(sys.argv[1], "rb"))
    print(d.get("_typeName", "<no _typeName>") if isinstance(d, dict) else "<not an object>")
except Exception as e:
    print("<not JSON: %s>" % e)' "$1")
    [[ $got == "$2" ]] || fail "fault body: expected _typeName '$2', got '$got'; body: $(head -c 1000 "$1")"
}

# ---------------------------------------------------------------------------------------
# JSON helpers (python3's json module, never grep on JSON)

# json_eval FILE EXPR: print the python expression EXPR over d = the JSON in FILE.
json_eval() {
    pyc '
import json, sys
d = json.load(open(sys.argv[1], "rb"))
v = eval(sys.argv[2])
print(v if not isinstance(v, (dict, list)) else json.dumps(v))' "$1" "$2"
}

# echo_header FILE NAME: the values of header NAME (any case) in a /sim/echo answer, one a line.
echo_header() {
    pyc '
import json, sys
d = json.load(open(sys.argv[1], "rb"))
for n, v in d["headers"]:
    if n.lower() == sys.argv[2].lower():
        print(v)' "$1" "$2"
}

# echo_header_count FILE NAME: how many times header NAME was received.
echo_header_count() {
    pyc '
import json, sys
d = json.load(open(sys.argv[1], "rb"))
print(sum(1 for n, v in d["headers"] if n.lower() == sys.argv[2].lower()))' "$1" "$2"
}

# echo_body_to FILE OUT: write the echoed request body (UTF-8) to OUT.
echo_body_to() {
    pyc '
import json, sys
d = json.load(open(sys.argv[1], "rb"))
open(sys.argv[2], "wb").write((d.get("body") or "").encode("utf-8"))' "$1" "$2"
}

# ---------------------------------------------------------------------------------------
# The simulator's record (--record FILE: one JSON object a line)

SIM_RECORD=${SIM_RECORD:-$WORK/sim-record.jsonl}

# record_count [FILE]: how many requests the simulator received.
record_count() {
    local f=${1:-$SIM_RECORD}
    [[ -s $f ]] || { echo 0; return 0; }
    grep -c . "$f" || true
}

# record_conn_ids [PATH_PREFIX [FILE]]: distinct upstream connection ids among the recorded
# requests whose path starts with PATH_PREFIX (all requests when empty).
record_conn_ids() {
    local f=${2:-$SIM_RECORD}
    [[ -s $f ]] || { echo 0; return 0; }
    pyc '
import json, sys
ids = set()
for line in open(sys.argv[1], "rb"):
    if not line.strip():
        continue
    r = json.loads(line)
    if r["path"].startswith(sys.argv[2]):
        ids.add(r["conn"])
print(len(ids))' "$f" "${1:-}"
}

# record_paths [FILE]: the recorded request paths in order, one a line.
record_paths() {
    local f=${1:-$SIM_RECORD}
    [[ -s $f ]] || return 0
    pyc '
import json, sys
for line in open(sys.argv[1], "rb"):
    if line.strip():
        print(json.loads(line)["path"])' "$f"
}

# record_has_path PATH [FILE]: true when a request for exactly PATH (query included) was received.
record_has_path() {
    # grep reads everything (no -q): an early exit would break the pipe under pipefail.
    record_paths "${2:-$SIM_RECORD}" | grep -xF -- "$1" >/dev/null
}

# record_wait_path PATH SECONDS: wait until the simulator recorded PATH; false on timeout.
record_wait_path() {
    local deadline=$((SECONDS + $2))
    while ! record_has_path "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

# record_get_to PATH OUT [FILE]: write the first recorded request for exactly PATH to OUT
# (the same shape as a /sim/echo answer, so echo_header and echo_body_to read it); fails
# the test when there is none.
record_get_to() {
    local f=${3:-$SIM_RECORD}
    [[ -s $f ]] || fail "the simulator recorded nothing (looking for $1)"
    pyc '
import json, sys
for line in open(sys.argv[1], "rb"):
    if line.strip():
        r = json.loads(line)
        if r["path"] == sys.argv[2]:
            open(sys.argv[3], "w").write(json.dumps(r))
            sys.exit(0)
sys.exit(1)' "$f" "$1" "$2" || fail "the simulator did not record a request for $1"
}

# record_last_to OUT [FILE]: write the last recorded request (one JSON object) to OUT.
record_last_to() {
    tail -n 1 "${2:-$SIM_RECORD}" >"$1"
}

# ---------------------------------------------------------------------------------------
# Ports, certificates, configuration

# free_port VAR: set VAR to a TCP port on 127.0.0.1 that was free a moment ago (the kernel
# picks it: bind to port 0) and was not handed out before in this test. Not $(free_port):
# the list of ports handed out must survive the call.
free_port() {
    local p i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        p=$(pyc 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')
        if [[ $SG__USED_PORTS != *" $p "* ]]; then
            SG__USED_PORTS+="$p "
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    fail "could not find a free port"
}

# gen_ca NAME: a self-signed CA, $WORK/NAME.crt and $WORK/NAME.key (EC P-256).
gen_ca() {
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$WORK/$1.key" -out "$WORK/$1.crt" -days 30 -subj "/CN=smsguard test CA $1" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" >"$WORK/openssl.out" 2>&1 ||
        { cat "$WORK/openssl.out" >&2; fail "openssl could not make CA $1"; }
}

# gen_cert CA NAME [CN [DAYS [SAN]]]: a server certificate signed by CA, valid DAYS (30), for
# the subjectAltName SAN (default "IP:127.0.0.1,DNS:localhost"), $WORK/NAME.crt and .key.
gen_cert() {
    local ca=$1 name=$2 cn=${3:-localhost} days=${4:-30} san=${5:-IP:127.0.0.1,DNS:localhost}
    cat >"$WORK/$name.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    { openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$WORK/$name.key" -out "$WORK/$name.csr" -subj "/CN=$cn" &&
        openssl x509 -req -in "$WORK/$name.csr" -CA "$WORK/$ca.crt" -CAkey "$WORK/$ca.key" \
            -set_serial "0x$(openssl rand -hex 8)" -days "$days" -extfile "$WORK/$name.ext" \
            -out "$WORK/$name.crt"; } >"$WORK/openssl.out" 2>&1 ||
        { cat "$WORK/openssl.out" >&2; fail "openssl could not make certificate $name"; }
}

# setup_certs: CA "ca" and its server certificate "server"; sets CA_CRT, SERVER_CRT,
# SERVER_KEY. Idempotent.
setup_certs() {
    if [[ ! -e $WORK/server.crt ]]; then
        gen_ca ca
        gen_cert ca server
    fi
    CA_CRT=$WORK/ca.crt
    SERVER_CRT=$WORK/server.crt
    SERVER_KEY=$WORK/server.key
}

# guard_conf FILE [key=value ...]: write a smsguard configuration (docs/design.md key names).
# Keys (defaults): listen_port (free), admin_port (free), workers (2),
#   cert/key ($SERVER_CRT/$SERVER_KEY), upstream_url (http://127.0.0.1:$SIM_PORT),
#   ca_file (""), verify (true), server_name (""), connect_timeout_ms (2000),
#   response_timeout_ms (10000), max_idle (32),
#   limits (lines inside `limits = { ... };`, default "max_body_bytes = 1048576;"; a
#   "drain_timeout_ms = 3000;" is added unless given),
#   log_level (info), access (off), extra (text appended at top level),
#   policy (the whole `policy = {...};` block; default: the static token $SG_TOKEN for
#   subject "tester", tenant "all" covering every provider and fault domain, with
#   StorageViews.ConfigureService),
#   upstreams (the whole `upstreams = (...);` list: written instead of the one `upstream`
#   group, whose keys above are then unused), listen_extra (lines added inside the listener,
#   e.g. server_names, upstream, vhosts).
# The ports go to FILE.ports for start_guard.
guard_conf() {
    local file=$1 kv
    shift
    setup_certs
    local listen_port="" admin_port="" workers=2 cert=$SERVER_CRT key=$SERVER_KEY
    local upstream_url="" ca_file="" verify=true server_name="" connect_timeout_ms=2000
    local response_timeout_ms=10000 max_idle=32 limits="max_body_bytes = 1048576;"
    local log_level=info access=off extra="" policy="" upstreams="" listen_extra=""
    for kv in "$@"; do
        case ${kv%%=*} in
        listen_port | admin_port | workers | cert | key | upstream_url | ca_file | verify | \
            server_name | connect_timeout_ms | response_timeout_ms | max_idle | limits | \
            log_level | access | extra | policy | upstreams | listen_extra)
            printf -v "${kv%%=*}" '%s' "${kv#*=}"
            ;;
        *) fail "guard_conf: unknown setting '$kv'" ;;
        esac
    done
    # a short drain keeps the clean-up quick; tests of draining set their own
    [[ $limits == *drain_timeout_ms* ]] || limits+=" drain_timeout_ms = 3000;"
    if [[ -z $policy ]]; then
        policy="policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)\";
               subject = \"tester\"; tenant = \"all\"; roles = [\"dr-operator\"]; } );
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"all\"; providers = [\"*\"]; fault_domains = [\"*\"]; } );
};"
    fi
    [[ -n $listen_port ]] || free_port listen_port
    [[ -n $admin_port ]] || free_port admin_port
    if [[ -z $upstreams ]]; then
        if [[ -z $upstream_url ]]; then
            [[ -n ${SIM_PORT:-} ]] || fail "guard_conf: no upstream_url and no simulator started"
            upstream_url=http://127.0.0.1:$SIM_PORT
        fi
        upstreams="upstream = {
  url = \"$upstream_url\";
  ca_file = \"$ca_file\";
  verify = $verify;
  server_name = \"$server_name\";
  connect_timeout_ms = $connect_timeout_ms;
  response_timeout_ms = $response_timeout_ms;
  max_idle = $max_idle;
};"
    fi
    cat >"$file" <<EOF
# smsguard configuration written by tests/integration/lib.sh for $TEST_NAME
workers = $workers;
listen = (
  {
    address = "127.0.0.1";
    port = $listen_port;
    tls = {
      certificate = "$cert";
      private_key = "$key";
    };
$listen_extra
  }
);
admin = {
  address = "127.0.0.1";
  port = $admin_port;
};
$upstreams
limits = {
  $limits
};
log = {
  access = "$access";
  level = "$log_level";
};
$policy
$extra
EOF
    echo "$listen_port $admin_port" >"$file.ports"
}

# sanitized_build: true when $SMSGUARD comes from a build with SG_SANITIZE or SG_FUZZ (its
# directory's CMakeCache.txt says so).
sanitized_build() {
    local cache
    cache="$(dirname "$SMSGUARD")/CMakeCache.txt"
    [[ -f $cache ]] && grep -qE '^SG_(SANITIZE|FUZZ):BOOL=(ON|TRUE|1)$' "$cache"
}

# wait_file PATH WHAT [SECONDS]: wait until PATH exists (a log reopened after a rotation);
# fail naming WHAT when it does not within SECONDS (default 5).
wait_file() {
    local deadline=$((SECONDS + ${3:-5}))
    until [[ -e $1 ]]; do
        ((SECONDS < deadline)) || fail "no new $2 ${3:-5} s after SIGUSR1"
        sleep 0.05
    done
}

# ---------------------------------------------------------------------------------------
# Starting the binaries

# wait_port PORT PID NAME LOG [SECONDS]: wait until 127.0.0.1:PORT accepts; fail with the
# process's stderr when it exits first or the time (default 15 s) runs out.
wait_port() {
    local port=$1 pid=$2 name=$3 log=$4 deadline=$((SECONDS + ${5:-15}))
    while :; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! is_alive "$pid"; then
            echo "----- $name stderr -----" >&2
            cat "$log" >&2 || true
            fail "$name (pid $pid) exited before listening on 127.0.0.1:$port"
        fi
        if ((SECONDS >= deadline)); then
            fail "$name (pid $pid) is not accepting on 127.0.0.1:$port after ${5:-15} s"
        fi
        sleep 0.05
    done
}

# start_sim [sms-sim options...]: start the simulator on a free port with --record $SIM_RECORD.
# Sets SIM_PORT, SIM_PID, SIM_LOG.
start_sim() {
    SG__SEQ=$((SG__SEQ + 1))
    free_port SIM_PORT
    SIM_LOG=$WORK/sms-sim-$SG__SEQ.err
    "$SMS_SIM" --listen "127.0.0.1:$SIM_PORT" --record "$SIM_RECORD" "$@" \
        </dev/null >"$WORK/sms-sim-$SG__SEQ.out" 2>"$SIM_LOG" &
    SIM_PID=$!
    track_pid "$SIM_PID" "sms-sim"
    wait_port "$SIM_PORT" "$SIM_PID" sms-sim "$SIM_LOG"
}

# start_guard CONF: start smsguard -c CONF (written by guard_conf) and wait for its listener
# and admin port. Sets SG_PID, SG_PORT, SG_ADMIN_PORT, SG_URL, SG_ADMIN_URL, SG_LOG.
start_guard() {
    local conf=$1 ports
    ports=$(cat "$conf.ports")
    SG__SEQ=$((SG__SEQ + 1))
    SG_PORT=${ports% *}
    SG_ADMIN_PORT=${ports#* }
    SG_LOG=$WORK/smsguard-$SG__SEQ.err
    "$SMSGUARD" -c "$conf" </dev/null >"$WORK/smsguard-$SG__SEQ.out" 2>"$SG_LOG" &
    SG_PID=$!
    SG__START_TIME[$SG_PID]=$(sg__start_time "$SG_PID") # for assert_serving: not a restart
    track_pid "$SG_PID" "smsguard" check
    wait_port "$SG_PORT" "$SG_PID" smsguard "$SG_LOG"
    wait_port "$SG_ADMIN_PORT" "$SG_PID" "smsguard (admin)" "$SG_LOG"
    SG_URL=https://127.0.0.1:$SG_PORT
    SG_ADMIN_URL=http://127.0.0.1:$SG_ADMIN_PORT
}

# start_all [sms-sim options...]: certificates, simulator and one smsguard with default
# configuration plus the guard_conf settings in GUARD_SETTINGS (an array, may be unset).
start_all() {
    setup_certs
    start_sim "$@"
    guard_conf "$WORK/smsguard.conf" "${GUARD_SETTINGS[@]+"${GUARD_SETTINGS[@]}"}"
    start_guard "$WORK/smsguard.conf"
}

# sg_sockets [PID]: how many sockets smsguard (default $SG_PID) holds open.
sg_sockets() {
    # an fd may close while find reads the directory: ignore find's complaint
    { find "/proc/${1:-$SG_PID}/fd" -maxdepth 1 -lname 'socket:*' 2>/dev/null || true; } | wc -l
}

# ---------------------------------------------------------------------------------------
# Clients

# sg_curl ARGS...: curl trusting the test CA, bounded in time, quiet but showing errors.
sg_curl() {
    curl -sS --max-time 20 --cacert "$CA_CRT" "$@"
}

# tls_raw PORT INFILE OUTFILE [SECONDS [SNI]]: open TLS (ALPN http/1.1, verifying the test
# CA for the name SNI, default 127.0.0.1: an address, so no SNI is sent) to 127.0.0.1:PORT,
# send INFILE's bytes in one write, read until the peer closes or SECONDS (default 5) pass.
# Writes what was read to OUTFILE and prints "closed T" or "open T", T being the seconds
# from the end of the handshake.
tls_raw() {
    pyrun "$1" "$2" "$3" "${4:-5}" "$CA_CRT" "${5:-127.0.0.1}" <<'PY'
import socket, ssl, sys, time
port, infile, outfile, limit, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
raw = socket.create_connection(("127.0.0.1", port), timeout=10)
s = ctx.wrap_socket(raw, server_hostname=sys.argv[6])
data = open(infile, "rb").read()
t0 = time.monotonic()
if data:
    s.sendall(data)
buf = b""
state = "open"
while True:
    left = t0 + limit - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        state = "closed"
        break
    if not chunk:
        state = "closed"
        break
    buf += chunk
open(outfile, "wb").write(buf)
print("%s %.2f" % (state, time.monotonic() - t0))
PY
}

# h1_responses FILE [BODY_PREFIX]: parse the HTTP/1.1 responses in FILE (Content-Length,
# chunked or until end); print one line per response: "STATUS BODY_LENGTH PATH", PATH being
# the "path" member of a JSON body (a /sim/echo answer) or "-". With BODY_PREFIX, the
# body of response N (from 1) is written to BODY_PREFIX.N, de-chunked.
h1_responses() {
    pyrun "$1" "${2:-}" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
prefix = sys.argv[2]
count = 0
pos = 0
while pos < len(data):
    end = data.find(b"\r\n\r\n", pos)
    if end < 0:
        print("INCOMPLETE 0 -")
        break
    head = data[pos:end].decode("latin-1").split("\r\n")
    status = head[0].split(" ")[1] if len(head[0].split(" ")) > 1 else "?"
    hdrs = {}
    for h in head[1:]:
        n, _, v = h.partition(":")
        hdrs[n.strip().lower()] = v.strip()
    pos = end + 4
    body = b""
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        try:
            while True:
                le = data.find(b"\r\n", pos)
                size = int(data[pos:le].split(b";")[0], 16)
                pos = le + 2
                if size == 0:
                    pos = data.find(b"\r\n", pos) + 2  # no trailers expected
                    break
                body += data[pos:pos + size]
                pos += size + 2
        except ValueError:
            print(status, len(body), "BAD-CHUNKING")
            break
    elif "content-length" in hdrs:
        n = int(hdrs["content-length"])
        body = data[pos:pos + n]
        pos += n
    else:
        body = data[pos:]
        pos = len(data)
    count += 1
    if prefix:
        open("%s.%d" % (prefix, count), "wb").write(body)
    path = "-"
    try:
        path = json.loads(body).get("path", "-")
    except Exception:
        pass
    print(status, len(body), path)
PY
}

# h2load_check OUT TOTAL: h2load's output in OUT shows TOTAL requests succeeded, all 2xx.
h2load_check() {
    local out=$1 n=$2 line codes
    line=$(grep -E '^requests:' "$out" || true)
    codes=$(grep -E '^status codes:' "$out" || true)
    echo "   $line"
    echo "   $codes"
    [[ $line =~ ([0-9]+)\ succeeded,\ ([0-9]+)\ failed,\ ([0-9]+)\ errored ]] ||
        fail "h2load printed no requests line: $(cat "$out")"
    assert_eq "$n" "${BASH_REMATCH[1]}" "h2load succeeded requests"
    [[ $codes =~ ^status\ codes:\ ([0-9]+)\ 2xx ]] ||
        fail "h2load printed no status codes line: $(cat "$out")"
    assert_eq "$n" "${BASH_REMATCH[1]}" "h2load 2xx answers"
}

# ---------------------------------------------------------------------------------------
# Requests with an exact target, and VI/JSON faults (30_route_canon, 31_body_validation)

# sg_req PROTO METHOD TARGET OUT [curl args...]: one request with curl over PROTO (http1.1
# or http2) whose request-target (HTTP/2 :path) is TARGET byte for byte (--request-target:
# curl neither normalises nor encodes it). The answer's body goes to OUT.body, its headers
# (curl -D) to OUT.hdr, curl's complaints to OUT.err. Sets REQ_CODE (000 when no answer)
# and REQ_VER (curl's %{http_version}: 1.1 or 2).
sg_req() {
    local proto=$1 method=$2 target=$3 out=$4 w
    shift 4
    w=$(sg_curl "--$proto" -H 'Expect:' -H "Authorization: Bearer $SG_TOKEN" \
        -X "$method" --path-as-is --request-target "$target" \
        -D "$out.hdr" -o "$out.body" -w '%{http_code} %{http_version}' "$@" "$SG_URL/" \
        2>"$out.err") || true
    [[ -e $out.body ]] || : >"$out.body"
    [[ -e $out.hdr ]] || : >"$out.hdr"
    REQ_CODE=${w%% *}
    REQ_VER=${w#* }
    [[ -n $REQ_CODE ]] || REQ_CODE=000
}

# hdr_value HEADERS NAME: the value(s) of header NAME (any case) in the last response of a
# curl -D dump, one a line.
hdr_value() {
    pyrun "$1" "$2" <<'PY'
import sys
blocks = []
for line in open(sys.argv[1], "rb").read().decode("latin-1").split("\n"):
    line = line.rstrip("\r")
    if line.startswith("HTTP/"):
        blocks.append([])
    elif blocks and ":" in line:
        n, _, v = line.partition(":")
        blocks[-1].append((n.strip().lower(), v.strip()))
for n, v in (blocks[-1] if blocks else []):
    if n == sys.argv[2].lower():
        print(v)
PY
}

# assert_vim_fault BODY HEADERS TYPE [WHAT]: BODY is a VI/JSON fault (docs/design.md "Answers"):
# a JSON object whose _typeName matches the extended regex ^(TYPE)$, with a non-empty
# string faultstring and a faultMessage array whose first element is a LocalizableMessage
# with string key and message, sent with Content-Type application/json (HEADERS: curl -D
# dump; "-" skips that check). Sets FAULT_TYPE and FAULT_PROP (invalidProperty, or empty).
assert_vim_fault() {
    local got
    got=$(pyrun "$1" "$2" "$3" <<'PY'
import json, re, sys
body, hdrs, want = sys.argv[1:4]
if hdrs != "-":
    blocks = []
    for line in open(hdrs, "rb").read().decode("latin-1").split("\n"):
        line = line.rstrip("\r")
        if line.startswith("HTTP/"):
            blocks.append({})
        elif blocks and ":" in line:
            n, _, v = line.partition(":")
            blocks[-1].setdefault(n.strip().lower(), v.strip())
    ct = (blocks[-1] if blocks else {}).get("content-type", "")
    if not re.fullmatch(r"application/json\s*(;.*)?", ct, re.I):
        print("ERR\tContent-Type is %r, not application/json" % ct); sys.exit()
try:
    d = json.loads(open(body, "rb").read().decode("utf-8"))
except Exception as e:
    print("ERR\tnot JSON (%s)" % e); sys.exit()
if not isinstance(d, dict):
    print("ERR\tnot a JSON object"); sys.exit()
t = d.get("_typeName")
if not isinstance(t, str) or not re.fullmatch("(?:%s)" % want, t):
    print("ERR\t_typeName is %r, expected %s" % (t, want)); sys.exit()
if not isinstance(d.get("faultstring"), str) or not d["faultstring"]:
    print("ERR\tno non-empty string faultstring"); sys.exit()
fm = d.get("faultMessage")
if not (isinstance(fm, list) and fm and isinstance(fm[0], dict)
        and fm[0].get("_typeName") == "LocalizableMessage"
        and isinstance(fm[0].get("key"), str) and isinstance(fm[0].get("message"), str)):
    print("ERR\tfaultMessage is not [LocalizableMessage with key and message]: %r" % (fm,)); sys.exit()
p = d.get("invalidProperty", "")
print("OK\t%s\t%s" % (t, p if isinstance(p, str) else repr(p)))
PY
    )
    [[ $got == OK$'\t'* ]] || fail "${4:-fault}: ${got#ERR$'\t'}; body: $(head -c 600 "$1")"
    got=${got#OK$'\t'}
    FAULT_TYPE=${got%%$'\t'*}
    FAULT_PROP=${got#*$'\t'}
}

# record_grep TEXT [FILE]: the recorded requests (method and path) whose record line holds
# TEXT anywhere (path, headers or body), one a line; nothing when none.
record_grep() {
    local f=${2:-$SIM_RECORD}
    [[ -s $f ]] || return 0
    pyrun "$f" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1], "rb"):
    if sys.argv[2].encode() in line:
        r = json.loads(line)
        print(r["method"], r["path"])
PY
}

# record_none_of MARKER...: fail the test when a recorded request (path, headers or body)
# holds any of the MARKERs; say which requests did.
record_none_of() {
    local got
    [[ -s $SIM_RECORD ]] || return 0
    got=$(pyrun "$SIM_RECORD" "$@" <<'PY'
import json, sys
marks = [m.encode() for m in sys.argv[2:]]
for line in open(sys.argv[1], "rb"):
    hit = [m.decode() for m in marks if m in line]
    if hit:
        r = json.loads(line)
        print("%s (%s %s)" % (", ".join(hit), r["method"], r["path"]))
PY
    )
    [[ -z $got ]] || fail "refused requests reached the simulator: $got"
}

# h1_refusal_framing NAME STATUS HEAD [chunked [AFTER_STATUS]]: request smuggling check
# after a refusal.
# On one TLS connection send the request HEAD (request line and headers, CRLF-separated,
# without the blank line, Content-Length or Transfer-Encoding), whose body is itself a
# complete request for /sim/echo/NAME-smuggled (sent with Content-Length, or chunked),
# followed by GET /sim/echo/NAME-after. The first answer must have STATUS; the body must
# never be taken for a request (the simulator never sees NAME-smuggled); the second
# request must be answered AFTER_STATUS (default 200: framing kept) or not at all
# (connection closed). Sets H1_AFTER to 1 when the second request was answered, else 0.
h1_refusal_framing() {
    local name=$1 status=$2 head=$3 after=${5:-200} smug resp first second
    smug="POST /sim/echo/$name-smuggled HTTP/1.1"$'\r\n'"Host: localhost"$'\r\n'"Content-Length: 0"$'\r\n\r\n'
    {
        printf '%s\r\n' "$head"
        if [[ ${4:-} == chunked ]]; then
            printf 'Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' "${#smug}" "$smug"
        else
            printf 'Content-Length: %d\r\n\r\n%s' "${#smug}" "$smug"
        fi
        printf 'GET /sim/echo/%s-after HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$name"
    } >"$WORK/$name.in"
    tls_raw "$SG_PORT" "$WORK/$name.in" "$WORK/$name.out" 5 >/dev/null
    resp=$(h1_responses "$WORK/$name.out")
    echo "   $name: $(tr '\n' ';' <<<"$resp")"
    first=$(head -n 1 <<<"$resp")
    assert_eq "$status" "${first%% *}" "$name: status of the refused request"
    H1_AFTER=0
    second=$(sed -n 2p <<<"$resp")
    if [[ -n $second ]]; then
        [[ ${second%% *} == "$after" ]] && { [[ $after != 200 ]] || [[ $second == *" /sim/echo/$name-after" ]]; } ||
            fail "$name: the second answer on the connection is '$second', expected $after for /sim/echo/$name-after or none"
        H1_AFTER=1
    fi
    assert_eq "" "$(sed -n 3p <<<"$resp")" "$name: a third answer on the connection"
    if record_has_path "/sim/echo/$name-smuggled"; then
        fail "$name: the refused request's body was taken for a request and forwarded"
    fi
    return 0
}

# ---------------------------------------------------------------------------------------
# Authentication and authorisation faults (40_authn, 41_authz)

# sg_post PROTO TARGET OUT [curl args...]: sg_req with method POST but no Authorization of
# its own: the curl args say what the request carries (none, one or several). The answer's
# body goes to OUT.body, its headers to OUT.hdr, curl's complaints to OUT.err. Sets REQ_CODE
# (000 when no answer) and REQ_VER.
sg_post() {
    local proto=$1 target=$2 out=$3 w
    shift 3
    w=$(sg_curl "--$proto" -H 'Expect:' -X POST --path-as-is --request-target "$target" \
        -D "$out.hdr" -o "$out.body" -w '%{http_code} %{http_version}' "$@" "$SG_URL/" \
        2>"$out.err") || true
    [[ -e $out.body ]] || : >"$out.body"
    [[ -e $out.hdr ]] || : >"$out.hdr"
    REQ_CODE=${w%% *}
    REQ_VER=${w#* }
    [[ -n $REQ_CODE ]] || REQ_CODE=000
}

# assert_fault_ref BODY HEADERS TYPE FAULTSTRING PRIVILEGE OBJTYPE OBJVALUE [WHAT]: BODY is a
# VI/JSON fault (assert_vim_fault) of exactly TYPE with that faultstring ("-": any), that
# privilegeId and `object` the ManagedObjectReference {OBJTYPE, OBJVALUE}; a NoPermission
# fault also has missingPrivileges [{NoPermissionEntityPrivileges, entity: that reference,
# privilegeIds: [PRIVILEGE]}].
assert_fault_ref() {
    local got what=${8:-$3 fault}
    assert_vim_fault "$1" "$2" "$3" "$what"
    got=$(pyrun "$@" <<'PY'
import json, sys
body, hdrs, typ, fs, priv, otype, oval = sys.argv[1:8]
d = json.load(open(body, "rb"))
errs = []
if d.get("_typeName") != typ:
    errs.append("_typeName %r, expected %r" % (d.get("_typeName"), typ))
if fs != "-" and d.get("faultstring") != fs:
    errs.append("faultstring %r, expected %r" % (d.get("faultstring"), fs))
if d.get("privilegeId") != priv:
    errs.append("privilegeId %r, expected %r" % (d.get("privilegeId"), priv))
ref = {"_typeName": "ManagedObjectReference", "type": otype, "value": oval}
if d.get("object") != ref:
    errs.append("object %s, expected %s" % (json.dumps(d.get("object")), json.dumps(ref)))
if typ == "NoPermission":
    mp = [{"_typeName": "NoPermissionEntityPrivileges", "entity": ref, "privilegeIds": [priv]}]
    if d.get("missingPrivileges") != mp:
        errs.append("missingPrivileges %s, expected %s" % (json.dumps(d.get("missingPrivileges")),
                                                          json.dumps(mp)))
print("; ".join(errs))
PY
    )
    [[ -z $got ]] || fail "$what: $got; body: $(head -c 700 "$1")"
}

# ---------------------------------------------------------------------------------------
# The audit log (50_audit_records .. 53_audit_crash)

SMSGUARD_AUDIT=${SMSGUARD_AUDIT:-$SG_SOURCE_DIR/build/smsguard-audit}

# stop_post PROTO MOID OUT [DEVICE_GROUP [curl args...]]: POST a valid stop-test request
# (fault domain fd-1, the device group, default dg-MOID, force false) for provider MOID with
# the token $SG_TOKEN; sg_req's OUT files, REQ_CODE and REQ_VER.
stop_post() {
    local proto=$1 moid=$2 out=$3 dg=${4:-dg-$2}
    shift 3
    (($# == 0)) || shift
    sg_req "$proto" POST "/sdk/vim25/8.0.3.0/sms/VasaProvider/$moid/TestFailoverReplicationGroupStop_Task" \
        "$out" -H 'Content-Type: application/json' \
        --data-binary "{\"groupId\":[{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"$dg\"}}],\"force\":false}" \
        "$@"
}

# stop_guard_term [PID [SECONDS]]: SIGTERM smsguard (default $SG_PID), wait up to SECONDS
# (default 10) for it to exit and require exit status 0.
stop_guard_term() {
    local pid=${1:-$SG_PID} limit=${2:-10} deadline st=0
    deadline=$((SECONDS + limit))
    kill -TERM "$pid"
    while is_alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
    is_alive "$pid" && fail "smsguard (pid $pid) still runs $limit s after SIGTERM"
    wait "$pid" || st=$?
    forget_pid "$pid"
    assert_eq 0 "$st" "smsguard's exit status after SIGTERM"
}

# audit_verify FILE... [--key PUB]: run smsguard-audit verify; sets AV_RC (exit status) and
# AV_OUT (stdout and stderr).
audit_verify() {
    [[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"
    AV_RC=0
    AV_OUT=$("$SMSGUARD_AUDIT" verify "$@" 2>&1) || AV_RC=$?
}

# audit_chain_check FILE...: the files, in order, are one chain of complete lines, checked
# with python alone: each line one JSON object of valid UTF-8 starting {"seq":N,"prev":"H",
# seq +1 from the first line's, prev the SHA-256 of the previous line's bytes (64 zeros
# when the first seq is 1). Prints "LINES FIRST_SEQ LAST_SEQ"; fails the test otherwise.
audit_chain_check() {
    local got
    got=$(pyrun "$@" <<'PY'
import hashlib, json, re, sys
prev = None
seq = None
n = 0
first = None
for f in sys.argv[1:]:
    data = open(f, "rb").read()
    if data and not data.endswith(b"\n"):
        print("ERR %s: does not end with a newline" % f); sys.exit()
    for i, raw in enumerate(data.split(b"\n")[:-1], 1):
        try:
            text = raw.decode("utf-8")
            d = json.loads(text)
        except ValueError as e:
            print("ERR %s:%d: not one JSON object of valid UTF-8 (%s): %r" % (f, i, e, raw[:200])); sys.exit()
        m = re.match(r'\{"seq":([1-9][0-9]*),"prev":"([0-9a-f]{64})",', text)
        if not isinstance(d, dict) or not m:
            print("ERR %s:%d: no {\"seq\":N,\"prev\":\"H\", prefix" % (f, i)); sys.exit()
        s, p = int(m.group(1)), m.group(2)
        if seq is None:
            first = s
            if s == 1 and p != "0" * 64:
                print("ERR %s:%d: seq 1 with prev %s" % (f, i, p)); sys.exit()
        else:
            if s != seq + 1:
                print("ERR %s:%d: seq %d after %d" % (f, i, s, seq)); sys.exit()
            if p != prev:
                print("ERR %s:%d: prev %s is not the hash of the previous line %s" % (f, i, p, prev)); sys.exit()
        seq, prev = s, hashlib.sha256(raw).hexdigest()
        n += 1
print("OK %d %s %s" % (n, first, seq))
PY
    )
    [[ $got == OK* ]] || fail "audit chain ($*): ${got#ERR }"
    echo "${got#OK }"
}

# ---------------------------------------------------------------------------------------
# Liveness: how every hostile-client test ends

declare -A SG__START_TIME=() # smsguard PID -> its start time (start_guard)
SG__ALIVE_SEQ=0

# sg__start_time PID: the process's start time in clock ticks since boot (/proc/PID/stat
# field 22): a PID the kernel reused for another process has another one.
sg__start_time() {
    sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# assert_serving WHAT [PATH [CURL_ARGS...]]: the gateway survived what came before (WHAT
# says what), and it is the same process: smsguard's PID is the one start_guard recorded
# ($SG_PID), with the same start time (not a restart, not a reused PID); it alone holds the
# listening sockets of $SG_PORT (so a new connection reaches it and no other process); and
# it serves a valid request on a NEW connection over HTTP/2 and one over HTTP/1.1 (a curl
# each: two requests, two access-log lines) with 200 from the upstream. By default that is
# GET /sim/echo/alive-N-PROTO, whose answer must name that path (sms-sim echoes it); PATH
# and CURL_ARGS (e.g. -X POST, a token, a body) are for a configuration that refuses it or
# an upstream that is not sms-sim, and are sent as given.
assert_serving() {
    local what=$1 path=${2:-} proto out got target
    shift $(($# < 2 ? $# : 2))
    is_alive "$SG_PID" || fail "smsguard (pid $SG_PID) died ($what)"
    [[ -n ${SG__START_TIME[$SG_PID]:-} ]] || fail "assert_serving: $SG_PID was not started by start_guard"
    assert_eq "${SG__START_TIME[$SG_PID]}" "$(sg__start_time "$SG_PID")" \
        "start time of smsguard pid $SG_PID ($what: the process was replaced)"
    got=$(pyrun "$SG_PID" "$SG_PORT" <<'PY'
import os, sys
pid, port = sys.argv[1], int(sys.argv[2])
listening = set()
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        rows = open(table).read().splitlines()[1:]
    except OSError:
        continue
    for row in rows:
        f = row.split()
        if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
            listening.add(f[9])
held = set()
for fd in os.listdir("/proc/%s/fd" % pid):
    try:
        t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
    except OSError:
        continue
    if t.startswith("socket:["):
        held.add(t[8:-1])
if not listening:
    print("nothing listens on port %d" % port)
elif listening - held:
    print("%d of the %d sockets listening on port %d are not smsguard's (pid %s)"
          % (len(listening - held), len(listening), port, pid))
PY
    )
    [[ -z $got ]] || fail "$what: $got"
    for proto in http2 http1.1; do
        SG__ALIVE_SEQ=$((SG__ALIVE_SEQ + 1))
        target=${path:-/sim/echo/alive-$SG__ALIVE_SEQ-$proto}
        out=$(sg_curl "--$proto" -o "$WORK/alive.body" -w '%{http_code} %{http_version}' \
            "$@" "$SG_URL$target") || true
        assert_eq "200 ${proto#http}" "$out" "status and version on a new $proto connection $what"
        if [[ -z $path ]]; then
            got=$(json_eval "$WORK/alive.body" 'd.get("path")' 2>/dev/null) || got="(not JSON)"
            assert_eq "$target" "$got" "path the simulator echoed $what"
        fi
    done
    is_alive "$SG_PID" || fail "smsguard (pid $SG_PID) died ($what, after the liveness requests)"
}

# mount_tmpfs DIR SIZE: mount a tmpfs of SIZE (e.g. 64k) on DIR (created), lazily unmounted
# when the test ends. False when mounting is not permitted here.
declare -a SG__MOUNTS=()

# hup_and_wait PATTERN [PID [LOG]]: SIGHUP PID (default smsguard's) and wait, 10 s at most,
# for one more line matching PATTERN (ERE) in LOG (default smsguard's); prints that line.
hup_and_wait() {
    local pid=${2:-$SG_PID} log=${3:-$SG_LOG} n0 deadline=$((SECONDS + 10))
    n0=$(grep -cE "$1" "$log" || true)
    kill -HUP "$pid"
    while (($(grep -cE "$1" "$log" || true) <= n0)); do
        ((SECONDS < deadline)) ||
            fail "no new line matching '$1' in $log 10 s after SIGHUP ($(grep 'reload refused' "$log" | tail -n 1))"
        is_alive "$pid" || fail "smsguard ($pid) died after SIGHUP"
        sleep 0.05
    done
    grep -E "$1" "$log" | tail -n 1 | sed 's/^/   log: /'
}

sg__umount_all() {
    local m
    for m in "${SG__MOUNTS[@]+"${SG__MOUNTS[@]}"}"; do
        umount -l "$m" 2>/dev/null || true
    done
}
mount_tmpfs() {
    mkdir -p "$1"
    mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>/dev/null || return 1
    SG__MOUNTS+=("$1")
    # unmount (lazily: smsguard may still hold the audit file) before the usual clean-up,
    # which must see the test's exit status in $?
    trap 'sg__rc=$?; set +e; trap - ERR; sg__umount_all; (exit $sg__rc); sg__cleanup' EXIT
}

# assert_no_leaked_sockets: once the clients are gone, smsguard holds no more sockets than
# at start ($BASE_SOCKETS) plus the upstream connections it opened (idle in its pool).
assert_no_leaked_sockets() {
    local up deadline=$((SECONDS + 5))
    up=$(record_conn_ids)
    while (($(sg_sockets) > BASE_SOCKETS + up)) && ((SECONDS < deadline)); do sleep 0.1; done
    echo "   sockets: $(sg_sockets) now, $BASE_SOCKETS at start, $up upstream connection(s) used"
    assert_le "$(sg_sockets)" $((BASE_SOCKETS + up)) "sockets smsguard holds after all clients closed"
}
