#!/usr/bin/env bash
# bench/run.sh - the smsguard benchmark: smsguard next to nghttpx, HAProxy, h2o and the
# upstream alone, on this machine, over TLS 1.3, HTTP/2 and HTTP/1.1 (docs/performance.md).
#
#   bench/run.sh                  full run (about 8 minutes on 2 cores)
#   bench/run.sh --quick          small counts, one repetition: a smoke test (under 2 minutes,
#                                 half a minute of it the instruction counts under valgrind)
#   bench/run.sh [--quick] [--throughput] [--idle] [--split] [--instructions]
#                                 only the parts named (default: all four)
#   options: --no-deps (do not check the Debian packages), --no-build (use the build
#            directory as it is)
#   bench/instructions.sh [BUILD_DIR] runs the instruction counts alone, on any build
#
# What it does, in order:
#   1. installs what is missing (nginx-light, nghttp2-proxy, haproxy, h2o, nghttp2-client,
#      valgrind, openssl, python3, curl, cmake, the build dependencies) with apt-get, as
#      scripts/deps.sh does; nothing is started by the packages (the daemons are only ever
#      run below, as our own processes with our own configuration files);
#   2. builds smsguard and sms-sim (Release) in build-bench/; makes a self-signed EC P-256
#      certificate for 127.0.0.1 and localhost, a static token, an ES256 JWT key and token
#      and a task key in a mktemp -d directory (removed on exit);
#   3. starts the upstream, nginx (bench/nginx.conf.in: one worker, no access log, a static
#      SmsTask answer to every POST, request counter by stub_status), and the proxies under
#      test, each once for the whole run:
#        sg-full  smsguard, stop-test route, static token: the whole filter chain with the
#                 audit record fsync'ed (audit.sync = "always") before forwarding
#        sg-jwt   the same with an ES256 JWT (the same token every time: the cached path)
#        sg-fwd   smsguard forwarding a path that is not a guarded route
#        nghttpx  nghttpx, one worker, no access log (bench/nghttpx.conf.in)
#        haproxy  HAProxy, one thread, no logs, http-reuse always (bench/haproxy.cfg.in)
#        h2o      h2o 2.2, one thread, no access log, upstream connections kept alive
#                 (bench/h2o.conf.in; its neverbleed and crash-handler helpers counted with it)
#        direct   no proxy: h2load to nginx itself (HTTP/2: cleartext, prior knowledge)
#      The proxy under test runs on CPU 0; nginx and h2load on CPU 1 (taskset).
#   4. throughput: for rep in 1..BENCH_REPS, for kind, for protocol (h2: -c 32 -m 10,
#      h1: --h1 -c 32), h2load POSTs a 2-group stop-test body: first saturated (a fixed
#      request count), then at a fixed total rate (BENCH_RPS for BENCH_RATE_SECONDS). Every
#      request must get a 2xx and reach nginx, over TLSv1.3 with the protocol asked for,
#      else the run stops with the evidence. Per run it keeps req/s, p50/p99 latency (from
#      h2load's per-request log), the CPU time the proxy used per request (utime + stime
#      from /proc/PID/stat, the proxy's processes summed), its peak RSS (VmHWM), and how
#      much of CPU 0 other work took meanwhile;
#   5. idle memory: for smsguard, nghttpx, HAProxy and h2o, each freshly started, opens
#      BENCH_IDLE_CONNS idle TLS connections (bench/idle_conns.py) per protocol and
#      reports (RSS after - RSS before) / connections;
#   6. split: smsguard in front of sms-sim --max-batch 4 with no batch size configured:
#      the first 100-group request learns 4 from the TooMany fault; then one 100-group
#      request (25 parts of 4) is timed against one 4-group request (curl, HTTP/2);
#   7. instructions: a count that does not depend on what else runs on the machine. For
#      sg-full, sg-jwt and sg-fwd, over h2 (h2load -c 4 -m 4) and h1 (--h1 -c 4): smsguard
#      (workers = 1) is started under `valgrind --tool=callgrind` (or `perf stat -e
#      instructions,cycles` where the machine has those counters), sent BENCH_INSTR_N1
#      requests, stopped (SIGTERM), then started again and sent BENCH_INSTR_N2; instructions
#      per request = (Ir(N2) - Ir(N1)) / (N2 - N1), which cancels start-up, the client's
#      handshakes and shutdown. Every request is checked as in the throughput runs;
#   8. prints the report and writes it to bench/results/<timestamp>.md (git-ignored).
#
# Settings (environment), full run / --quick:
#   BENCH_N (50000 / 10000)         saturated requests per HTTP/2 run
#   BENCH_N_H1 (30000 / 5000)       saturated requests per HTTP/1.1 run (with BENCH_N set
#                                   and this not: 3/5 of BENCH_N)
#   BENCH_RPS (20000)               fixed-rate mode: total offered requests per second
#                                   (h2load's --rps is per client: BENCH_RPS / clients each)
#   BENCH_RPS_H1 (BENCH_RPS)        the same for HTTP/1.1 (one request at a time on each
#                                   connection: the rate is reached only while the latency
#                                   stays below clients / rate, 1.6 ms at 32 and 20000)
#   BENCH_RATE_SECONDS (5 / 1)      fixed-rate mode: requests = BENCH_RPS x this
#   BENCH_REPS (3 / 1)              repetitions (kinds alternate within each repetition)
#   BENCH_CLIENTS (32), BENCH_STREAMS (10)   h2load -c, and -m for HTTP/2
#   BENCH_KINDS ("sg-full sg-jwt sg-fwd nghttpx haproxy h2o direct")
#   BENCH_IDLE_CONNS (5000 / 1000)  idle connections per proxy and protocol
#   BENCH_SPLIT_RUNS (5 / 3)        timed requests of each size in the split measurement
#   BENCH_INSTR_N1, BENCH_INSTR_N2 (200, 2200)  requests of the two instruction-count runs
#   BENCH_INSTR_TOOL (auto)         auto: perf if `perf stat -e instructions` works here,
#                                   else callgrind; or perf, or callgrind
#   BENCH_BUILD_DIR (build-bench)   the smsguard build measured (built there unless
#                                   --no-build; bench/instructions.sh sets it)
#   BENCH_AUDIT_SYNC (always)       smsguard's audit.sync: "none" or "batch" take the disk out
#                                   of the guarded path, to see what the fdatasync costs
#                                   (the report's header says which was used)
#   BENCH_KEEP (unset)              set: keep the work directory (configurations, logs)
#   TMPDIR (/tmp)                   where the work directory goes: the audit files are synced
#                                   there, so it should be the disk smsguard would log to
#
# Everything listens on 127.0.0.1 only, on ports the kernel picks. Every process this script
# starts is stopped by its PID when it ends (trap EXIT); nothing is killed by name.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD_DIR=${BENCH_BUILD_DIR:-$ROOT/build-bench}

# The system interpreter: a version-manager shim (pyenv) costs 0.2 s a call.
if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=python3; fi

# ---------------------------------------------------------------------------------------
# Command line and settings

ARGS="$*"
QUICK=0 DEPS=1 BUILD=1
declare -A PART=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while (($#)); do
    case $1 in
    --quick) QUICK=1 ;;
    --throughput) PART[throughput]=1 ;;
    --idle) PART[idle]=1 ;;
    --split) PART[split]=1 ;;
    --instructions) PART[instructions]=1 ;;
    --no-deps) DEPS=0 ;;
    --no-build) BUILD=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
((${#PART[@]})) || PART=([throughput]=1 [idle]=1 [split]=1 [instructions]=1)

if ((QUICK)); then
    N_H2=${BENCH_N:-10000}
    RATE_SECONDS=${BENCH_RATE_SECONDS:-1}
    REPS=${BENCH_REPS:-1}
    IDLE_CONNS=${BENCH_IDLE_CONNS:-1000}
    SPLIT_RUNS=${BENCH_SPLIT_RUNS:-3}
else
    N_H2=${BENCH_N:-50000}
    RATE_SECONDS=${BENCH_RATE_SECONDS:-5}
    REPS=${BENCH_REPS:-3}
    IDLE_CONNS=${BENCH_IDLE_CONNS:-5000}
    SPLIT_RUNS=${BENCH_SPLIT_RUNS:-5}
fi
if [[ -n ${BENCH_N_H1:-} ]]; then
    N_H1=$BENCH_N_H1
elif [[ -n ${BENCH_N:-} ]]; then
    N_H1=$((BENCH_N * 3 / 5))
else
    N_H1=$((QUICK ? 5000 : 30000))
fi
RPS=${BENCH_RPS:-20000}
RPS_H1=${BENCH_RPS_H1:-$RPS}
CLIENTS=${BENCH_CLIENTS:-32}
STREAMS=${BENCH_STREAMS:-10}
read -r -a KINDS <<<"${BENCH_KINDS:-sg-full sg-jwt sg-fwd nghttpx haproxy h2o direct}"
INSTR_N1=${BENCH_INSTR_N1:-200}
INSTR_N2=${BENCH_INSTR_N2:-2200}
INSTR_TOOL=${BENCH_INSTR_TOOL:-auto}
AUDIT_SYNC=${BENCH_AUDIT_SYNC:-always}
[[ $AUDIT_SYNC =~ ^(always|batch|none)$ ]] || { echo "bench: BENCH_AUDIT_SYNC='$AUDIT_SYNC': always, batch or none" >&2; exit 2; }
PROTOS=(h2 h1)

PROXY_CPU=0          # the proxy under test
LOAD_CPU=1           # h2load and nginx

STOP_PATH=/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-1/TestFailoverReplicationGroupStop_Task
FWD_PATH=/sdk/vim25/8.0.3.0/bench/forward      # not a guarded route: forwarded unchanged
UPSTREAM_ANSWER='{"_typeName":"ManagedObjectReference","type":"SmsTask","value":"task-1"}'

# ---------------------------------------------------------------------------------------
# Messages

say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
die() {
    printf 'bench: FAIL: %s\n' "$*" >&2
    exit 1
}

# show_log FILE [LINES]: the tail of a log file, on stderr.
show_log() {
    [[ -s $1 ]] || return 0
    printf -- '----- %s (last %s lines) -----\n' "${1##*/}" "${2:-30}" >&2
    tail -n "${2:-30}" "$1" >&2
}

# ---------------------------------------------------------------------------------------
# Processes: everything started here is remembered by PID and stopped by PID on exit.

WORK=""
declare -a PIDS=()
declare -A PIDNAME=()

is_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z ]]
}

# stop_pid PID [SECONDS]: SIGTERM, up to SECONDS (10) to exit, then SIGKILL.
stop_pid() {
    local pid=$1 grace=${2:-10} deadline keep=() p
    deadline=$((SECONDS + grace))
    kill -TERM "$pid" 2>/dev/null || true
    while is_alive "$pid" && ((SECONDS < deadline)); do sleep 0.05; done
    if is_alive "$pid"; then
        say "bench: ${PIDNAME[$pid]:-pid $pid} still runs $grace s after SIGTERM: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    local rc=$? i
    set +e
    trap - EXIT
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ -n ${BENCH_KEEP:-} ]]; then say "bench: kept $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# spawn CPU NAME LOG COMMAND...: start COMMAND pinned to CPU, stdout and stderr to LOG;
# sets SPAWNED to its PID.
SPAWNED=""
spawn() {
    local cpu=$1 name=$2 log=$3
    shift 3
    taskset -c "$cpu" "$@" </dev/null >"$log" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
    PIDNAME[$SPAWNED]=$name
}

# wait_port PORT PID NAME LOG [SECONDS]: wait (SECONDS, 15, at most) until 127.0.0.1:PORT
# accepts.
wait_port() {
    local port=$1 pid=$2 name=$3 log=$4 limit=${5:-15} deadline
    deadline=$((SECONDS + limit))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        is_alive "$pid" || { show_log "$log"; die "$name (pid $pid) exited before listening on port $port"; }
        ((SECONDS < deadline)) || { show_log "$log"; die "$name (pid $pid) does not listen on port $port after $limit s"; }
        sleep 0.05
    done
}

USED_PORTS=" "
# free_port VAR: a port on 127.0.0.1 the kernel just handed out, not handed out before here.
free_port() {
    local p i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        p=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if [[ $USED_PORTS != *" $p "* ]]; then
            USED_PORTS+="$p "
            printf -v "$1" '%s' "$p"
            return 0
        fi
    done
    die "no free port"
}

# tree_pids PID: PID and every process under it (nghttpx: main and worker processes).
tree_pids() {
    local p
    echo "$1"
    for p in $(pgrep -P "$1" || true); do tree_pids "$p"; done
}

# cpu_ticks PID: utime + stime (fields 14 and 15 of /proc/PID/stat, clock ticks) of PID
# and its descendants, all threads included.
cpu_ticks() {
    local p t=0 f
    for p in $(tree_pids "$1"); do
        f=$(sed -e 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        read -r -a f <<<"$f"
        t=$((t + f[11] + f[12]))   # fields 14 and 15, counted from field 3 (state)
    done
    echo "$t"
}

# cpu_busy CPU: "busy total" clock ticks of one CPU from /proc/stat (busy: user, nice,
# system, irq, softirq, steal; total adds idle and iowait).
cpu_busy() {
    awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}

# mem_kib PID FIELD: the sum of FIELD (VmRSS, VmHWM) in /proc/*/status over PID's tree.
mem_kib() {
    local p t=0 v
    for p in $(tree_pids "$1"); do
        v=$(awk -v k="$2:" '$1 == k { print $2 }' "/proc/$p/status" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    echo "$t"
}

# render TEMPLATE OUT KEY=VALUE...: copy TEMPLATE to OUT with every @KEY@ replaced.
render() {
    local tpl=$1 out=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$tpl" >"$out"
    if grep -q '@[A-Z0-9_]*@' "$out"; then
        die "render $tpl: placeholders left: $(grep -o '@[A-Z0-9_]*@' "$out" | sort -u | tr '\n' ' ')"
    fi
}

# ---------------------------------------------------------------------------------------
# 1. Packages

PACKAGES=(nginx-light nghttp2-proxy haproxy h2o nghttp2-client valgrind openssl python3 curl util-linux procps
    build-essential cmake pkg-config
    libnghttp2-dev libssl-dev libcjson-dev libconfig-dev libev-dev libhttp-parser-dev)

install_deps() {
    local p missing=() sudo=()
    if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
        say "deps: not a Debian system; make sure these are installed: ${PACKAGES[*]}"
        return 0
    fi
    for p in "${PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) != installed ]]; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        say "deps: all ${#PACKAGES[@]} packages are installed"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}; run as root or install sudo"
        sudo=(sudo)
    fi
    say "deps: installing ${missing[*]}"
    # The daemons are only ever run by this script with its own configuration: ask
    # invoke-rc.d not to start their system services (exit 101: "action forbidden"), unless
    # the machine already has a policy of its own.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# bench/run.sh: no service starts during its apt-get install\nexit 101\n' |
            "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        own_policy=1
    fi
    local rc=0
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || rc=$?
    if ((rc == 0)); then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
    fi
    if ((own_policy)); then "${sudo[@]}" rm -f "$policy"; fi
    ((rc == 0)) || die "apt-get install ${missing[*]} failed"
    say "deps: done"
}

# ---------------------------------------------------------------------------------------
# 2. Build, certificate, keys, tokens, request bodies

build() {
    say "build: Release in ${BUILD_DIR#"$ROOT"/}/"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DSG_WERROR=OFF \
        -DBUILD_TESTING=OFF >"$WORK/cmake.log" 2>&1 ||
        { show_log "$WORK/cmake.log" 40; die "cmake configure failed"; }
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target smsguard sms-sim >>"$WORK/cmake.log" 2>&1 ||
        { show_log "$WORK/cmake.log" 40; die "build failed (others editing the C code? retry in a minute)"; }
}

# stop_body FILE N: a stop-test body of N groups shaped as VI/JSON clients send it (root and
# group _typeName); fault domains alternate fd-1 / fd-2a (both in tenant t1).
stop_body() {
    "$PY" - "$1" "$2" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
groups = [{"_typeName": "ReplicationGroupId",
           "faultDomainId": {"_typeName": "FaultDomainId", "id": "fd-1" if i % 2 == 0 else "fd-2a"},
           "deviceGroupId": {"_typeName": "DeviceGroupId", "id": "rg-%04d" % (i + 1)}}
          for i in range(n)]
body = {"_typeName": "TestFailoverReplicationGroupStopRequestType", "groupId": groups, "force": False}
open(out, "w").write(json.dumps(body, separators=(",", ":")))
PY
}

make_material() {
    local ssl_log=$WORK/openssl.log
    {
        # the server certificate (self-signed, EC P-256) for every TLS listener
        openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
            -keyout "$WORK/server.key" -out "$WORK/server.crt" -days 7 -subj "/CN=127.0.0.1" \
            -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" &&
            cat "$WORK/server.crt" "$WORK/server.key" >"$WORK/server.pem" &&
            # the JWT signing key (ES256) and its public half for smsguard's policy
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/jwt.key" &&
            openssl pkey -in "$WORK/jwt.key" -pubout -out "$WORK/jwt.pub" &&
            # composite task handles (split measurement)
            openssl rand -out "$WORK/task.key" 32
    } >"$ssl_log" 2>&1 || { show_log "$ssl_log"; die "openssl could not make the certificate and keys"; }
    TOKEN=bench-static-$(openssl rand -hex 16)
    TOKEN_SHA256=$(printf '%s' "$TOKEN" | sha256sum | cut -c1-64)
    JWT=$("$PY" "$BENCH_DIR/mkjwt.py" "$WORK/jwt.key" bench-es) || die "could not make the JWT"
    stop_body "$WORK/body-2.json" 2
    stop_body "$WORK/body-4.json" 4
    stop_body "$WORK/body-100.json" 100
}

# ---------------------------------------------------------------------------------------
# 3. The upstream and the proxies

declare -A KPORT=()      # kind -> TLS port (direct: unused)
declare -A KPID=()       # kind -> PID of the process measured
declare -A KLOG=()       # kind -> its stderr / error log
declare -A KAUDIT=()     # kind -> audit file (smsguard kinds)

start_nginx() {
    free_port NGX_H1
    free_port NGX_H2C
    free_port NGX_STATUS
    mkdir -p "$WORK/nginx-tmp"
    render "$BENCH_DIR/nginx.conf.in" "$WORK/nginx.conf" DIR="$WORK" H1_PORT="$NGX_H1" \
        H2C_PORT="$NGX_H2C" STATUS_PORT="$NGX_STATUS"
    nginx -t -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" >"$WORK/nginx-t.log" 2>&1 ||
        { show_log "$WORK/nginx-t.log"; die "nginx -t refused bench/nginx.conf.in"; }
    spawn "$LOAD_CPU" nginx "$WORK/nginx.out" \
        nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"
    NGX_PID=$SPAWNED
    wait_port "$NGX_H1" "$NGX_PID" nginx "$WORK/nginx-error.log"
    wait_port "$NGX_H2C" "$NGX_PID" nginx "$WORK/nginx-error.log"
    wait_port "$NGX_STATUS" "$NGX_PID" nginx "$WORK/nginx-error.log"
    say "nginx: pid $NGX_PID, HTTP/1.1 :$NGX_H1, h2c :$NGX_H2C, stub_status :$NGX_STATUS (CPU $LOAD_CPU)"
}

# upstream_requests: nginx's request counter (stub_status "Requests", which counts this
# request too).
upstream_requests() {
    curl -sS --max-time 5 "http://127.0.0.1:$NGX_STATUS/status" | awk 'NR == 3 { print $3 }'
}

# smsguard_conf OUT UPSTREAM_URL BATCH_MAX_SIZE AUDIT_FILE: render bench/smsguard.conf.in on
# free ports (OUT.ports: "listen admin") and check it with smsguard -t.
smsguard_conf() {
    local out=$1 lport aport
    free_port lport
    free_port aport
    render "$BENCH_DIR/smsguard.conf.in" "$out" LISTEN_PORT="$lport" ADMIN_PORT="$aport" \
        CERT="$WORK/server.crt" KEY="$WORK/server.key" UPSTREAM_URL="$2" \
        TOKEN_SHA256="$TOKEN_SHA256" JWT_PUBLIC_KEY="$WORK/jwt.pub" BATCH_MAX_SIZE="$3" \
        TASK_KEY_FILE="$WORK/task.key" AUDIT_FILE="$4" AUDIT_SYNC="$AUDIT_SYNC"
    "$BUILD_DIR/smsguard" -t -c "$out" >"$out.check" 2>&1 ||
        { show_log "$out.check"; die "smsguard -t refused $out (from bench/smsguard.conf.in)"; }
    echo "$lport $aport" >"$out.ports"
}

# start_smsguard KIND UPSTREAM_URL BATCH_MAX_SIZE: one smsguard (workers = 1) on CPU 0.
start_smsguard() {
    local kind=$1 conf=$WORK/$1.conf lport ports
    smsguard_conf "$conf" "$2" "$3" "$WORK/$kind-audit.jsonl"
    read -r lport ports <"$conf.ports"
    KPORT[$kind]=$lport
    KLOG[$kind]=$WORK/$kind.err
    KAUDIT[$kind]=$WORK/$kind-audit.jsonl
    spawn "$PROXY_CPU" "smsguard ($kind)" "${KLOG[$kind]}" "$BUILD_DIR/smsguard" -c "$conf"
    KPID[$kind]=$SPAWNED
    wait_port "${KPORT[$kind]}" "$SPAWNED" "smsguard ($kind)" "${KLOG[$kind]}"
    wait_port "$ports" "$SPAWNED" "smsguard ($kind, admin)" "${KLOG[$kind]}"
}

start_nghttpx() {
    local kind=$1 port
    free_port port
    render "$BENCH_DIR/nghttpx.conf.in" "$WORK/$kind.conf" PORT="$port" UPSTREAM_PORT="$NGX_H1" \
        CERT="$WORK/server.crt" KEY="$WORK/server.key" DIR="$WORK/$kind"
    mkdir -p "$WORK/$kind"
    KPORT[$kind]=$port
    KLOG[$kind]=$WORK/$kind/nghttpx-error.log
    spawn "$PROXY_CPU" "nghttpx ($kind)" "$WORK/$kind.out" nghttpx --conf="$WORK/$kind.conf"
    KPID[$kind]=$SPAWNED
    wait_port "$port" "$SPAWNED" "nghttpx ($kind)" "${KLOG[$kind]}"
}

start_haproxy() {
    local kind=$1 port
    free_port port
    render "$BENCH_DIR/haproxy.cfg.in" "$WORK/$kind.cfg" PORT="$port" UPSTREAM_PORT="$NGX_H1" \
        PEM="$WORK/server.pem"
    haproxy -c -f "$WORK/$kind.cfg" >"$WORK/$kind.check" 2>&1 ||
        { show_log "$WORK/$kind.check"; die "haproxy -c refused bench/haproxy.cfg.in"; }
    KPORT[$kind]=$port
    KLOG[$kind]=$WORK/$kind.err
    spawn "$PROXY_CPU" "haproxy ($kind)" "${KLOG[$kind]}" haproxy -db -f "$WORK/$kind.cfg"
    KPID[$kind]=$SPAWNED
    wait_port "$port" "$SPAWNED" "haproxy ($kind)" "${KLOG[$kind]}"
}

start_h2o() {
    local kind=$1 port
    free_port port
    mkdir -p "$WORK/$kind"
    render "$BENCH_DIR/h2o.conf.in" "$WORK/$kind.conf" PORT="$port" UPSTREAM_PORT="$NGX_H1" \
        CERT="$WORK/server.crt" KEY="$WORK/server.key" DIR="$WORK/$kind"
    h2o -t -c "$WORK/$kind.conf" >"$WORK/$kind.check" 2>&1 ||
        { show_log "$WORK/$kind.check"; die "h2o -t refused bench/h2o.conf.in"; }
    KPORT[$kind]=$port
    KLOG[$kind]=$WORK/$kind/h2o-error.log
    spawn "$PROXY_CPU" "h2o ($kind)" "$WORK/$kind.out" h2o -c "$WORK/$kind.conf"
    KPID[$kind]=$SPAWNED
    wait_port "$port" "$SPAWNED" "h2o ($kind)" "${KLOG[$kind]}"
}

# start_kind KIND [NAME]: start what KIND needs under NAME (default KIND).
start_kind() {
    local name=${2:-$1}
    case $1 in
    sg-full | sg-jwt | sg-fwd) start_smsguard "$name" "http://127.0.0.1:$NGX_H1" 16 ;;
    nghttpx) start_nghttpx "$name" ;;
    haproxy) start_haproxy "$name" ;;
    h2o) start_h2o "$name" ;;
    direct) return 0 ;;
    *) die "unknown kind '$1'" ;;
    esac
    say "$name: pid ${KPID[$name]}, TLS :${KPORT[$name]} (CPU $PROXY_CPU)"
}

# target KIND PROTO [PORT]: the URL h2load and curl use (PORT: KIND's port by default).
target() {
    local port=${3:-${KPORT[$1]:-}}
    case $1 in
    direct) [[ $2 == h2 ]] && echo "http://127.0.0.1:$NGX_H2C$STOP_PATH" || echo "http://127.0.0.1:$NGX_H1$STOP_PATH" ;;
    sg-fwd) echo "https://127.0.0.1:$port$FWD_PATH" ;;
    *) echo "https://127.0.0.1:$port$STOP_PATH" ;;
    esac
}

# token KIND: the Bearer token KIND's requests carry.
token() { [[ $1 == sg-jwt ]] && echo "$JWT" || echo "$TOKEN"; }

# preflight KIND PROTO: one request with curl: 200, the upstream's answer unchanged, the
# HTTP version asked for; for smsguard's guarded kinds, one decision record (static / jwt).
preflight() {
    local kind=$1 proto=$2 url out=$WORK/preflight w want_ver=2 curl_proto=(--http2)
    url=$(target "$kind" "$proto")
    if [[ $proto == h1 ]]; then
        want_ver=1.1
        curl_proto=(--http1.1)
    fi
    if [[ $kind == direct && $proto == h2 ]]; then
        # nginx answers h2c before it reads the body, then resets the stream (NO_ERROR),
        # which curl 7.88 now and then takes for an error: nghttp for this one
        nghttp -d "$WORK/body-2.json" -H 'content-type: application/json' "$url" >"$out.body" 2>"$out.err" ||
            { cat "$out.err" >&2; die "$kind/$proto: nghttp $url failed"; }
        [[ $(cat "$out.body") == "$UPSTREAM_ANSWER" ]] ||
            die "$kind/$proto: preflight got body '$(head -c 400 "$out.body")', expected the upstream's answer"
        return 0
    fi
    w=$(curl -sS --max-time 10 --cacert "$WORK/server.crt" "${curl_proto[@]}" -X POST \
        -H 'content-type: application/json' -H "authorization: Bearer $(token "$kind")" \
        --data-binary @"$WORK/body-2.json" -o "$out.body" -w '%{http_code} %{http_version}' \
        "$url" 2>"$out.err") || { cat "$out.err" >&2; die "$kind/$proto: curl $url failed"; }
    [[ $w == "200 $want_ver" && $(cat "$out.body") == "$UPSTREAM_ANSWER" ]] || {
        show_log "${KLOG[$kind]:-/dev/null}"
        die "$kind/$proto: preflight got '$w' and body '$(head -c 400 "$out.body")'; expected '200 $want_ver' and the upstream's answer"
    }
    case $kind in
    sg-full | sg-jwt)
        local auth=static
        [[ $kind == sg-jwt ]] && auth=jwt
        grep -q "\"auth\":\"$auth\"" "${KAUDIT[$kind]}" ||
            die "$kind: no audit record with principal auth '$auth' after the preflight request"
        check_audit "$kind" 1
        ;;
    esac
}

# ---------------------------------------------------------------------------------------
# 4. Throughput runs

RUNS_TSV=""      # set in main: one row per h2load run (bench/report.py)

# h2load_run KIND PROTO MODE REP: one h2load run; checks it and appends a row to RUNS_TSV.
h2load_run() {
    local kind=$1 proto=$2 mode=$3 rep=$4 n args=() url out pid="" t0=0 t1=0
    local up0 up1 rps lrows lbad p50 p99 cpu=- rss=- want_alpn tls rate=- c0 c1 others=-
    url=$(target "$kind" "$proto")
    out=$WORK/h2load-$kind-$proto-$mode-$rep
    if [[ $proto == h2 ]]; then
        n=$N_H2
        args=(-c "$CLIENTS" -m "$STREAMS")
        want_alpn=h2
        [[ $kind == direct ]] && want_alpn=h2c
    else
        n=$N_H1
        args=(--h1 -c "$CLIENTS")
        want_alpn=http/1.1
    fi
    if [[ $mode == fixed ]]; then
        rate=$RPS
        [[ $proto == h1 ]] && rate=$RPS_H1
        n=$((rate * RATE_SECONDS))
        args+=(--rps="$((rate / CLIENTS))")
        rate=$((rate / CLIENTS * CLIENTS))      # what is actually offered
    fi
    ((n >= CLIENTS)) || n=$CLIENTS
    args+=(-n "$n" -d "$WORK/body-2.json" -H 'content-type: application/json'
        -H "authorization: Bearer $(token "$kind")" --log-file="$out.log")

    pid=${KPID[$kind]:-}
    up0=$(upstream_requests)
    [[ -n $pid ]] && t0=$(cpu_ticks "$pid")
    c0=$(cpu_busy "$PROXY_CPU")
    timeout 900 taskset -c "$LOAD_CPU" h2load "${args[@]}" "$url" >"$out.txt" 2>&1 || {
        cat "$out.txt" >&2
        show_log "${KLOG[$kind]:-/dev/null}"
        die "$kind/$proto/$mode: h2load failed or timed out"
    }
    [[ -n $pid ]] && t1=$(cpu_ticks "$pid")
    c1=$(cpu_busy "$PROXY_CPU")
    up1=$(upstream_requests)

    check_h2load "$kind/$proto/$mode" "$out.txt" "$n"
    if [[ $kind != direct ]]; then
        tls=$(awk -F': ' '/^TLS Protocol:/ { print $2 }' "$out.txt")
        [[ $tls == TLSv1.3 ]] || die "$kind/$proto/$mode: TLS protocol '$tls', expected TLSv1.3"
    fi
    grep -q "^Application protocol: $want_alpn\$" "$out.txt" ||
        die "$kind/$proto/$mode: h2load says '$(grep '^Application protocol' "$out.txt")', expected $want_alpn"
    # nginx's counter moved by the requests plus our second status request
    ((up1 - up0 - 1 >= n)) ||
        die "$kind/$proto/$mode: nginx saw $((up1 - up0 - 1)) requests for $n answered"

    rps=$(awk '/^finished in/ { print $4 }' "$out.txt")
    read -r lrows lbad p50 p99 < <("$PY" "$BENCH_DIR/report.py" latency "$out.log")
    ((lrows == n && lbad == 0)) || die "$kind/$proto/$mode: h2load's log has $lrows rows, $lbad not 2xx (expected $n, 0)"
    if [[ -n $pid ]]; then
        is_alive "$pid" || { show_log "${KLOG[$kind]}"; die "$kind exited during the run"; }
        cpu=$("$PY" -c 'import sys; t, n, hz = map(int, sys.argv[1:]); print("%.2f" % (t * 1e6 / hz / n))' \
            "$((t1 - t0))" "$n" "$CLK_TCK")
        rss=$(mem_kib "$pid" VmHWM)
        # CPU 0's busy time that was not the proxy's: other processes, interrupts
        others=$(awk -v a="$c0" -v b="$c1" -v t="$((t1 - t0))" 'BEGIN {
            split(a, x); split(b, y); d = y[2] - x[2]
            printf "%.0f", (d > 0 ? 100 * (y[1] - x[1] - t) / d : 0) }')
    fi
    case $kind in
    sg-full | sg-jwt) check_audit "$kind" "$n" ;;
    sg-fwd) [[ ! -s ${KAUDIT[$kind]} ]] || die "sg-fwd wrote audit records: $FWD_PATH was taken for a guarded route" ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$proto" "$mode" "$rep" "$n" \
        "$rps" "$p50" "$p99" "$cpu" "$rss" "$rate" "$others" >>"$RUNS_TSV"
    printf '  %-8s %-2s %-5s rep %s: %6d req  %9s req/s  p50 %7.2f ms  p99 %7.2f ms  cpu %6s us/req  rss %s KiB  others on CPU %s: %s%%\n' \
        "$kind" "$proto" "$mode" "$rep" "$n" "$rps" "$(bc_ms "$p50")" "$(bc_ms "$p99")" "$cpu" "$rss" "$PROXY_CPU" "$others"
    rm -f "$out.log"
}

bc_ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

# check_h2load WHAT OUTPUT N: every one of the N requests succeeded with a 2xx.
check_h2load() {
    local what=$1 txt=$2 n=$3 req codes
    req=$(grep -E '^requests:' "$txt" || true)
    codes=$(grep -E '^status codes:' "$txt" || true)
    if [[ ! $req =~ ([0-9]+)\ succeeded,\ ([0-9]+)\ failed,\ ([0-9]+)\ errored ]] ||
        ((BASH_REMATCH[1] != n || BASH_REMATCH[2] != 0 || BASH_REMATCH[3] != 0)) ||
        [[ ! $codes =~ ^status\ codes:\ ([0-9]+)\ 2xx ]] || ((BASH_REMATCH[1] != n)); then
        cat "$txt" >&2
        die "$what: not every one of the $n requests got a 2xx ($req / $codes)"
    fi
}

# check_audit KIND N: N more requests were answered by KIND; its audit file must hold at
# least one line per request answered so far (a decision record is written, and synced,
# before a request is forwarded).
declare -A AUDIT_REQS=()
check_audit() {
    local kind=$1 lines
    AUDIT_REQS[$kind]=$((${AUDIT_REQS[$kind]:-0} + $2))
    lines=$(wc -l <"${KAUDIT[$kind]}")
    ((lines >= AUDIT_REQS[$kind])) ||
        die "$kind: $lines audit lines for ${AUDIT_REQS[$kind]} requests answered"
}

throughput() {
    local rep kind proto
    step "throughput: ${REPS} repetition(s) x kinds (${KINDS[*]}) x (h2, h1); saturated, then ${RPS} req/s (HTTP/1.1: ${RPS_H1}) for ${RATE_SECONDS} s"
    say "h2load: HTTP/2 -c $CLIENTS -m $STREAMS -n $N_H2; HTTP/1.1 --h1 -c $CLIENTS -n $N_H1; fixed rate --rps $((RPS / CLIENTS)) (HTTP/1.1: $((RPS_H1 / CLIENTS))) per client"
    for kind in "${KINDS[@]}"; do
        start_kind "$kind"
        for proto in "${PROTOS[@]}"; do preflight "$kind" "$proto"; done
    done
    for ((rep = 1; rep <= REPS; rep++)); do
        for kind in "${KINDS[@]}"; do
            for proto in "${PROTOS[@]}"; do
                h2load_run "$kind" "$proto" sat "$rep"
                h2load_run "$kind" "$proto" fixed "$rep"
            done
        done
    done
    for kind in "${KINDS[@]}"; do
        [[ -n ${KLOG[$kind]:-} ]] || continue
        if grep -qiE 'error|warn|crit|alert' "${KLOG[$kind]}" 2>/dev/null; then
            say "note: $kind logged:"
            grep -iE 'error|warn|crit|alert' "${KLOG[$kind]}" | sort | uniq -c | sort -rn | head -n 5
        fi
    done
}

# audit_summary: once smsguard stopped, its log says how many records it wrote with how
# many fdatasync calls (group commit); one AUDIT_TSV row per guarded kind.
AUDIT_TSV=""
audit_summary() {
    local kind line
    for kind in sg-full sg-jwt; do
        [[ -n ${KLOG[$kind]:-} ]] || continue
        line=$(grep -o 'audit log closed at seq [0-9]* after [0-9]* sync' "${KLOG[$kind]}" | tail -n 1) || true
        [[ $line =~ seq\ ([0-9]+)\ after\ ([0-9]+) ]] || { say "note: $kind did not log its audit summary"; continue; }
        printf '%s\t%s\t%s\n' "$kind" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" >>"$AUDIT_TSV"
        say "audit: $kind wrote ${BASH_REMATCH[1]} records with ${BASH_REMATCH[2]} fdatasync calls"
    done
}

# ---------------------------------------------------------------------------------------
# 5. Memory per idle connection

IDLE_TSV=""
idle_memory() {
    local proxy proto name line
    step "idle memory: $IDLE_CONNS idle TLS connections per proxy and protocol, each proxy freshly started"
    for proxy in smsguard nghttpx haproxy h2o; do
        for proto in h2 h1; do
            name=idle-$proxy-$proto
            case $proxy in
            smsguard) start_smsguard "$name" "http://127.0.0.1:$NGX_H1" 16 ;;
            nghttpx) start_nghttpx "$name" ;;
            haproxy) start_haproxy "$name" ;;
            h2o) start_h2o "$name" ;;
            esac
            line=$(taskset -c "$LOAD_CPU" "$PY" "$BENCH_DIR/idle_conns.py" --port "${KPORT[$name]}" \
                --count "$IDLE_CONNS" --proto "$proto" --pid "${KPID[$name]}" 2>"$WORK/$name.idle.err") || {
                cat "$WORK/$name.idle.err" >&2
                show_log "${KLOG[$name]}"
                die "$name: idle connection measurement failed"
            }
            is_alive "${KPID[$name]}" || { show_log "${KLOG[$name]}"; die "$name exited during the idle measurement"; }
            say "  $proxy $proto: $line"
            # conns=N rss_before_kib=A rss_after_kib=B per_conn_kib=X -> proxy proto N A B X
            printf '%s\t%s\t%s\n' "$proxy" "$proto" \
                "$(sed -e 's/[a-z_]*=//g' -e 's/ /\t/g' <<<"$line")" >>"$IDLE_TSV"
            stop_pid "${KPID[$name]}"
        done
    done
}

# ---------------------------------------------------------------------------------------
# 6. Batch split: one 100-group request (25 parts of 4) against one 4-group request

SPLIT_TSV=""

# split_post BODY OUT: POST BODY to the split smsguard over HTTP/2 on a new connection;
# prints "status time_total time_appconnect" (seconds).
split_post() {
    curl -sS --max-time 30 --cacert "$WORK/server.crt" --http2 -X POST \
        -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" \
        --data-binary @"$1" -o "$2" -w '%{http_code} %{time_total} %{time_appconnect}' \
        "https://127.0.0.1:${KPORT[split]}$STOP_PATH"
}

# split_check OUT KIND: the answer is one SmsTask reference: the simulator's own
# (KIND plain) or a composite handle (KIND composite).
split_check() {
    local pat='^\{"_typeName":"ManagedObjectReference","type":"SmsTask","value":"SmsTask-[0-9]+"\}$'
    [[ $2 == composite ]] && pat='^\{"_typeName":"ManagedObjectReference","type":"SmsTask","value":"sgc1\.[A-Za-z0-9_.~-]+"\}$'
    [[ $(cat "$1") =~ $pat ]] || {
        show_log "${KLOG[split]}"
        die "split: expected a $2 SmsTask reference, got: $(head -c 300 "$1")"
    }
}

# sim_calls: the stop-test calls sms-sim received so far, by group count: "N:calls ..."
sim_calls() {
    "$PY" - "$WORK/sim.jsonl" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1], "rb"):
    r = json.loads(line)
    if r["path"].endswith("/TestFailoverReplicationGroupStop_Task"):
        c[len(json.loads(r["body"])["groupId"])] += 1
print(" ".join("%d:%d" % kv for kv in sorted(c.items())))
PY
}

split_timing() {
    local sim_pid sim_port i r tt ta t4=() a4=() t100=() a100=() first calls want
    step "split: smsguard in front of sms-sim --max-batch 4, no batch size configured (batch.max_size 1000)"
    free_port sim_port
    spawn "$LOAD_CPU" sms-sim "$WORK/sms-sim.err" \
        "$BUILD_DIR/sms-sim" --listen "127.0.0.1:$sim_port" --max-batch 4 --record "$WORK/sim.jsonl"
    sim_pid=$SPAWNED
    wait_port "$sim_port" "$sim_pid" sms-sim "$WORK/sms-sim.err"
    start_smsguard split "http://127.0.0.1:$sim_port" 1000
    say "sms-sim: pid $sim_pid :$sim_port (CPU $LOAD_CPU); smsguard: pid ${KPID[split]} :${KPORT[split]} (CPU $PROXY_CPU)"

    # a 4-group request opens the upstream connection; the first 100-group one goes out
    # whole, gets TooMany (maxBatchSize 4), is split into 25 parts, and the size is learned
    r=$(split_post "$WORK/body-4.json" "$WORK/split.out")
    [[ $r == 200\ * ]] || die "split: warm-up 4-group request: $r $(head -c 300 "$WORK/split.out")"
    split_check "$WORK/split.out" plain
    r=$(split_post "$WORK/body-100.json" "$WORK/split.out")
    [[ $r == 200\ * ]] || { show_log "${KLOG[split]}"; die "split: first 100-group request: $r $(head -c 300 "$WORK/split.out")"; }
    split_check "$WORK/split.out" composite
    read -r _ tt ta <<<"$r"
    first="$tt $ta"
    calls=$(sim_calls)
    [[ $calls == "4:26 100:1" ]] ||
        die "split: after the learning request sms-sim got calls (groups:calls) '$calls', expected '4:26 100:1'"
    say "  first 100-group request (learns 4): ${tt}s total; sms-sim got one call of 100 (TooMany), then 25 of 4"

    for ((i = 0; i < SPLIT_RUNS; i++)); do
        r=$(split_post "$WORK/body-4.json" "$WORK/split.out")
        [[ $r == 200\ * ]] || die "split: 4-group request: $r $(head -c 300 "$WORK/split.out")"
        split_check "$WORK/split.out" plain
        read -r _ tt ta <<<"$r"
        t4+=("$tt") a4+=("$ta")
        r=$(split_post "$WORK/body-100.json" "$WORK/split.out")
        [[ $r == 200\ * ]] || die "split: 100-group request: $r $(head -c 300 "$WORK/split.out")"
        split_check "$WORK/split.out" composite
        read -r _ tt ta <<<"$r"
        t100+=("$tt") a100+=("$ta")
    done
    calls=$(sim_calls)
    want="4:$((26 + SPLIT_RUNS * 26)) 100:1"
    [[ $calls == "$want" ]] ||
        die "split: sms-sim got calls (groups:calls) '$calls', expected '$want' (each 100-group request: 25 calls of 4)"
    "$PY" - "$SPLIT_TSV" "$first" "${t4[*]}" "${a4[*]}" "${t100[*]}" "${a100[*]}" <<'PY'
import statistics, sys
out, first, t4, a4, t100, a100 = sys.argv[1:7]
f = lambda s: [float(x) for x in s.split()]
def row(label, groups, calls, t, a):
    after = [x - y for x, y in zip(t, a)]
    return "%s\t%d\t%d\t%d\t%.3f\t%.3f\n" % (label, groups, calls, len(t),
           statistics.median(t) * 1000, statistics.median(after) * 1000)
ft, fa = f(first)
with open(out, "a") as o:
    o.write(row("4 groups", 4, 1, f(t4), f(a4)))
    o.write(row("100 groups", 100, 25, f(t100), f(a100)))
    o.write(row("100 groups, first (learns 4 from TooMany)", 100, 26, [ft], [fa]))
PY
    sed -e 's/^/  /' "$SPLIT_TSV"
    stop_pid "${KPID[split]}"
    stop_pid "$sim_pid"
}

# ---------------------------------------------------------------------------------------
# 7. Instructions per request (callgrind, or perf where the machine has the counters)

INSTR_TSV=""

# instr_tool: perf when `perf stat -e instructions` counts on this machine (not in most
# VMs), callgrind otherwise; BENCH_INSTR_TOOL forces one.
instr_tool() {
    case $INSTR_TOOL in
    perf | callgrind) echo "$INSTR_TOOL" ;;
    auto)
        if command -v perf >/dev/null 2>&1 &&
            perf stat -x, -e instructions -- true 2>&1 >/dev/null | grep -q '^[0-9][0-9]*,,*instructions'; then
            echo perf
        else
            echo callgrind
        fi
        ;;
    *) die "BENCH_INSTR_TOOL='$INSTR_TOOL': auto, perf or callgrind" ;;
    esac
}

# instr_run KIND PROTO N TOOL: one smsguard (workers = 1) under TOOL, N requests with
# h2load (4 connections; 4 streams each over h2), every one checked, SIGTERM; sets
# INSTR_COUNT to "instructions cycles" (cycles: - under callgrind). Not to be run in a
# subshell: it spawns a process the EXIT trap must know, and a failure must stop the run.
INSTR_COUNT=""
instr_run() {
    local kind=$1 proto=$2 n=$3 tool=$4 name conf lport aport out wrapper=() pid launcher
    local args=() up0 up1 ir cyc=-
    name=instr-$kind-$proto-$n
    conf=$WORK/$name.conf
    out=$WORK/$name.counts
    smsguard_conf "$conf" "http://127.0.0.1:$NGX_H1" 16 "$WORK/$name-audit.jsonl"
    read -r lport aport <"$conf.ports"
    KPORT[$name]=$lport KLOG[$name]=$WORK/$name.err KAUDIT[$name]=$WORK/$name-audit.jsonl
    if [[ $tool == callgrind ]]; then
        wrapper=(valgrind --tool=callgrind --callgrind-out-file="$out")
    else
        # shellcheck disable=SC2054  # -e takes one comma-separated list
        wrapper=(perf stat -x, -o "$out" -e instructions,cycles --)
    fi
    spawn "$PROXY_CPU" "smsguard under $tool ($name)" "${KLOG[$name]}" \
        "${wrapper[@]}" "$BUILD_DIR/smsguard" -c "$conf"
    launcher=$SPAWNED
    wait_port "$lport" "$launcher" "smsguard under $tool ($name)" "${KLOG[$name]}" 120
    wait_port "$aport" "$launcher" "smsguard under $tool ($name, admin)" "${KLOG[$name]}" 120
    # valgrind runs smsguard in its own process; perf stat forks it: SIGTERM goes to smsguard
    pid=$launcher
    [[ $tool == perf ]] && pid=$(pgrep -P "$launcher" | head -n 1)
    [[ -n $pid ]] || die "$name: no smsguard process under $tool"

    if [[ $proto == h2 ]]; then args=(-c 4 -m 4); else args=(--h1 -c 4); fi
    up0=$(upstream_requests)
    timeout 900 taskset -c "$LOAD_CPU" h2load "${args[@]}" -n "$n" -d "$WORK/body-2.json" \
        -H 'content-type: application/json' -H "authorization: Bearer $(token "$kind")" \
        "$(target "$kind" "$proto" "$lport")" >"$WORK/$name.h2load" 2>&1 || {
        cat "$WORK/$name.h2load" >&2
        show_log "${KLOG[$name]}"
        die "$name: h2load failed or timed out"
    }
    up1=$(upstream_requests)
    check_h2load "$name" "$WORK/$name.h2load" "$n"
    grep -q "^Application protocol: $([[ $proto == h2 ]] && echo h2 || echo http/1.1)\$" "$WORK/$name.h2load" ||
        die "$name: h2load says '$(grep '^Application protocol' "$WORK/$name.h2load")'"
    ((up1 - up0 - 1 >= n)) || die "$name: nginx saw $((up1 - up0 - 1)) requests for $n answered"
    case $kind in
    sg-full | sg-jwt) (($(wc -l <"${KAUDIT[$name]}") >= n)) || die "$name: fewer audit lines than the $n requests" ;;
    sg-fwd) [[ ! -s ${KAUDIT[$name]} ]] || die "$name wrote audit records: $FWD_PATH was taken for a guarded route" ;;
    esac

    # smsguard stops on SIGTERM; valgrind (or perf) writes its counts as it exits
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 120))
    while is_alive "$launcher" && ((SECONDS < deadline)); do sleep 0.1; done
    stop_pid "$launcher"
    if [[ $tool == callgrind ]]; then
        ir=$(awk '$1 == "summary:" || $1 == "totals:" { print $2; exit }' "$out" 2>/dev/null || true)
    else
        ir=$(awk -F, '$3 ~ /^instructions/ { print $1 }' "$out" 2>/dev/null || true)
        cyc=$(awk -F, '$3 ~ /^cycles/ { print $1 }' "$out" 2>/dev/null || true)
        [[ $cyc =~ ^[0-9]+$ ]] || cyc=-
    fi
    [[ $ir =~ ^[0-9]+$ ]] || {
        show_log "${KLOG[$name]}"
        show_log "$out"
        die "$name: no instruction count in $out (perf without hardware counters? BENCH_INSTR_TOOL=callgrind)"
    }
    INSTR_COUNT="$ir $cyc"
}

# instructions: INSTR_TSV rows "kind proto tool n1 count1 n2 count2 per_request
# cycles_per_request" (cycles: - under callgrind).
INSTR_USED=""
instructions() {
    local tool kind proto a b per cper
    tool=$(instr_tool)
    INSTR_USED=$tool
    ((INSTR_N2 > INSTR_N1 && INSTR_N1 >= 4)) || die "BENCH_INSTR_N2 ($INSTR_N2) must exceed BENCH_INSTR_N1 ($INSTR_N1), itself 4 or more"
    command -v "$([[ $tool == perf ]] && echo perf || echo valgrind)" >/dev/null 2>&1 ||
        die "$tool not found (run without --no-deps)"
    step "instructions per request: sg-full, sg-jwt and sg-fwd under $tool, $INSTR_N1 then $INSTR_N2 requests (h2: -c 4 -m 4, h1: --h1 -c 4)"
    for kind in sg-full sg-jwt sg-fwd; do
        for proto in h2 h1; do
            instr_run "$kind" "$proto" "$INSTR_N1" "$tool"
            read -r -a a <<<"$INSTR_COUNT"
            instr_run "$kind" "$proto" "$INSTR_N2" "$tool"
            read -r -a b <<<"$INSTR_COUNT"
            per=$(awk -v x="${a[0]}" -v y="${b[0]}" -v n1="$INSTR_N1" -v n2="$INSTR_N2" \
                'BEGIN { printf "%.0f", (y - x) / (n2 - n1) }')
            cper=-
            [[ ${a[1]} != - && ${b[1]} != - ]] && cper=$(awk -v x="${a[1]}" -v y="${b[1]}" \
                -v n1="$INSTR_N1" -v n2="$INSTR_N2" 'BEGIN { printf "%.0f", (y - x) / (n2 - n1) }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$proto" "$tool" "$INSTR_N1" "${a[0]}" \
                "$INSTR_N2" "${b[0]}" "$per" "$cper" >>"$INSTR_TSV"
            say "  $kind $proto: ${a[0]} instructions for $INSTR_N1 requests, ${b[0]} for $INSTR_N2: $per per request, cycles per request: $cper"
        done
    done
}

# ---------------------------------------------------------------------------------------
# 8. Report

# fixed_rate_text: the offered rates, for the report.
fixed_rate_text() {
    if ((RPS_H1 == RPS)); then
        echo "$RPS req/s in total (\`--rps $((RPS / CLIENTS))\` per client)"
    else
        echo "$RPS req/s in total over HTTP/2 and $RPS_H1 over HTTP/1.1 (\`--rps $((RPS / CLIENTS))\` and \`--rps $((RPS_H1 / CLIENTS))\` per client)"
    fi
}

report_header() {
    local mode=full commit cpu
    ((QUICK)) && mode="quick (--quick: small counts, a smoke test, not a result)"
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [[ -z $(git -C "$ROOT" status --porcelain -- . ':!bench' ':!docs' 2>/dev/null) ]] || commit+=" (with uncommitted changes)"
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    cat <<EOF
## smsguard benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')

- run: \`bench/run.sh${ARGS:+ $ARGS}\`, mode $mode; commit $commit
- machine: ${cpu:-unknown CPU}, $(nproc) CPUs, Linux $(uname -r); the proxy under test on CPU $PROXY_CPU, h2load and nginx on CPU $LOAD_CPU; load average at the start $LOAD_START (other work on the machine shows in the numbers); audit files (fdatasync) on $(stat -f -c %T "$WORK") ($(df --output=source "$WORK" | tail -n 1))
- versions: smsguard $("$BUILD_DIR/smsguard" --version 2>&1 | head -n 1 | awk '{print $2}'), $(nghttpx --version | head -n 1), $(haproxy -v | head -n 1 | awk '{print "HAProxy " $3}'), $(h2o --version | head -n 1 | sed -e 's/ version//'), $(nginx -v 2>&1 | sed -e 's/.*: //'), $(h2load --version | head -n 1), $(openssl version | awk '{print $1 " " $2}')
EOF
    if [[ -n ${PART[instructions]:-} ]]; then
        local tool="\`perf stat -e instructions,cycles\`"
        [[ $INSTR_USED == perf ]] || tool="\`valgrind --tool=callgrind\` ($(valgrind --version))"
        cat <<EOF
- instructions: smsguard from ${BUILD_DIR#"$ROOT"/}/ (workers = 1) under $tool, h2load HTTP/2 \`-c 4 -m 4\`, HTTP/1.1 \`--h1 -c 4\`, the same body; two runs of $INSTR_N1 and $INSTR_N2 requests, each with a fresh smsguard: per request = (count($INSTR_N2) - count($INSTR_N1)) / $((INSTR_N2 - INSTR_N1)), start-up, handshakes and shutdown cancelled; a count, not a time: other work on the machine does not change it
EOF
    fi
    [[ -n ${PART[throughput]:-} ]] || return 0
    cat <<EOF
- load: h2load, TLS 1.3, HTTP/2 \`-c $CLIENTS -m $STREAMS\` ($N_H2 requests saturated), HTTP/1.1 \`--h1 -c $CLIENTS\` ($N_H1 saturated); fixed rate $(fixed_rate_text) for $RATE_SECONDS s; $REPS repetition(s), kinds alternating; POST of a 2-group stop-test body ($(wc -c <"$WORK/body-2.json") bytes); smsguard \`audit.sync = "$AUDIT_SYNC"\`
- medians over the repetitions; latency in ms from h2load's per-request log; CPU = the proxy's utime + stime per request; RSS = peak (VmHWM); ×nghttpx = this row / nghttpx's row for the same protocol; others = the share of CPU $PROXY_CPU busy with anything but the proxy during a run (other processes, interrupts), the largest of the row's runs: above a few % the proxy did not have its CPU to itself
EOF
}

report() {
    local out stamp
    stamp=$(date -u +%Y%m%d-%H%M%S)
    mkdir -p "$BENCH_DIR/results"
    out=$BENCH_DIR/results/$stamp.md
    report_header >"$WORK/header.md"
    BENCH_AUDIT_SYNC=$AUDIT_SYNC "$PY" "$BENCH_DIR/report.py" table "$RUNS_TSV" "$AUDIT_TSV" "$IDLE_TSV" "$SPLIT_TSV" "$WORK/header.md" \
        "$INSTR_TSV" >"$out"
    step "report (also in ${out#"$ROOT"/})"
    cat "$out"
    say ""
    say "bench: done in $((SECONDS / 60)) min $((SECONDS % 60)) s"
}

# ---------------------------------------------------------------------------------------

main() {
    local c
    PATH=$PATH:/usr/sbin:/sbin
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/sg-bench.XXXXXX")
    RUNS_TSV=$WORK/runs.tsv IDLE_TSV=$WORK/idle.tsv SPLIT_TSV=$WORK/split.tsv AUDIT_TSV=$WORK/audit.tsv
    INSTR_TSV=$WORK/instructions.tsv
    : >"$INSTR_TSV"
    : >"$RUNS_TSV"
    : >"$AUDIT_TSV"
    : >"$IDLE_TSV"
    : >"$SPLIT_TSV"
    step "setup (work directory $WORK)"
    ((DEPS)) && install_deps
    for c in nginx nghttpx haproxy h2o h2load curl openssl taskset pgrep cmake; do
        command -v "$c" >/dev/null 2>&1 || die "$c not found (run without --no-deps)"
    done
    (($(nproc) >= 2)) || die "needs 2 CPUs (the proxy on one, h2load and nginx on the other)"
    ulimit -n 20000 2>/dev/null || true
    (($(ulimit -n) >= IDLE_CONNS + 1000)) ||
        die "open files limit $(ulimit -n) is below $((IDLE_CONNS + 1000)) (BENCH_IDLE_CONNS $IDLE_CONNS)"
    ((BUILD)) && build
    [[ -x $BUILD_DIR/smsguard ]] || die "no smsguard in $BUILD_DIR"
    [[ -z ${PART[split]:-} || -x $BUILD_DIR/sms-sim ]] || die "no sms-sim in $BUILD_DIR"
    CLK_TCK=$(getconf CLK_TCK)
    make_material
    start_nginx
    if [[ -n ${PART[throughput]:-} ]]; then
        throughput
        for c in "${KINDS[@]}"; do [[ -n ${KPID[$c]:-} ]] && stop_pid "${KPID[$c]}"; done
        audit_summary
    fi
    [[ -n ${PART[idle]:-} ]] && idle_memory
    [[ -n ${PART[split]:-} ]] && split_timing
    [[ -n ${PART[instructions]:-} ]] && instructions
    report
}
main; exit $?   # one line: bash has read all of it before it runs (safe to edit meanwhile)
