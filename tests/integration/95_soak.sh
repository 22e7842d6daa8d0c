#!/usr/bin/env bash
# 95_soak: a soak of ${SG_SOAK_SECONDS:-30} s (scripts/test.sh runs 300 s) with a bounded mix of
# valid and hostile traffic on loopback (tests/soak/traffic.py; issue 8): valid stop-tests
# over HTTP/1.1 and HTTP/2, each with its own deviceGroupId, unguarded requests, h2load
# bursts, and hostile traffic (malformed HTTP/1.1, smuggling attempts, wrong tokens, invalid
# JSON, HTTP/2 rapid reset, slow clients cut by timeouts, abrupt disconnects mid-request).
# Asserts:
#   - smsguard stayed alive throughout (VmRSS sampled every second) and exits 0 on SIGTERM,
#     its stderr without "LeakSanitizer" or "runtime error" (under SG_SANITIZE LeakSanitizer
#     runs at that clean exit)
#   - every valid request was answered 200 (h2load bursts all 2xx), every hostile one as
#     expected, every slow client cut
#   - every valid stop-test's deviceGroupId is in an allow decision record AND an outcome
#     record (same request_id) of the audit log, and was received by the simulator;
#     smsguard-audit verify passes
#   - the simulator never received a hostile request (nothing naming "soakhostile")
#   - RSS flat: the max of the last third of the samples is at most 10% + 2 MiB above the
#     max of the middle third (the first third is warm-up: pools, TLS caches, arenas).
#     Not in a sanitizer build: ASan's quarantine keeps up to 256 MiB of freed memory, so
#     its RSS grows with the traffic whatever smsguard does (LeakSanitizer checks there).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SOAK_S=${SG_SOAK_SECONDS:-30}
AUDIT=$WORK/audit.log
need h2load nghttp2-client

start_sim
# short header/body timeouts so slow clients are cut quickly; the drain is short too
guard_conf "$WORK/soak.conf" \
    "limits=max_body_bytes = 65536; header_timeout_ms = 2000; body_timeout_ms = 2000;" \
    "extra=audit = { file = \"$AUDIT\"; sync = \"batch\"; fail_closed = true; };"
start_guard "$WORK/soak.conf"

check "soak: $SOAK_S s of mixed valid and hostile traffic"
# timeout runs a program, not lib.sh's python3 function: $PYBIN
timeout $((SOAK_S + 100)) "$PYBIN" "$SG_SOURCE_DIR/tests/soak/traffic.py" --port "$SG_PORT" \
    --ca "$CA_CRT" --token "$SG_TOKEN" --pid "$SG_PID" --seconds "$SOAK_S" \
    --out "$WORK/summary.json" --groups "$WORK/groups.txt" >"$WORK/traffic.out" 2>"$WORK/traffic.err" ||
    { cat "$WORK/traffic.err" >&2; fail "the traffic generator failed"; }
[[ -s $WORK/summary.json ]] || { cat "$WORK/traffic.err" >&2; fail "no summary from the traffic generator"; }
is_alive "$SG_PID" || fail "smsguard died during the soak"

SANITIZED=0
sanitized_build && SANITIZED=1
python3 - "$WORK/summary.json" "$SANITIZED" <<'PY' || fail "soak traffic (see above)"
import json, sys
s = json.load(open(sys.argv[1]))
sanitized = sys.argv[2] == "1"
c = s["counts"]
ok = True
print("   %.0f s; requests by class:" % s["seconds"])
for k in sorted(c):
    if not k.startswith("failures."):
        print("     %-28s %d" % (k, c[k]))
print("   valid stop-tests answered 200: %d" % s["stop_valid_ok"])
for f in s["failures"]:
    print("   FAILURE %s at %s s: %s" % tuple(f))
if s["failures"] or not s["alive"] or s["stuck_threads"]:
    ok = False
if s["stuck_threads"]:
    print("   threads still running: %s" % s["stuck_threads"])
# the soak really did each kind of thing
for k in ("stop_valid", "echo_valid", "h2load_bursts", "hostile.malformed", "hostile.smuggling",
          "hostile.bad_token", "hostile.bad_json", "hostile.rapid_reset", "hostile.abrupt_h1",
          "hostile.abrupt_h2", "hostile.slow_headers_cut", "hostile.slow_body_cut"):
    if c.get(k, 0) < 1:
        print("   nothing done for %s" % k)
        ok = False
r = [kb for _, kb in s["rss_kb"]]
n = len(r)
print("   VmRSS samples: %d; first %d kB, middle %d kB, last %d kB" % (n, r[0], r[n // 2], r[-1]))
if n < 9:
    print("   too few RSS samples")
    sys.exit(1)
mid, last = max(r[n // 3:2 * n // 3]), max(r[2 * n // 3:])
limit = mid * 1.10 + 2048
print("   RSS max of the middle third %d kB, of the last third %d kB (limit %d kB)" % (mid, last, limit))
if sanitized:
    print("   a sanitizer build: RSS reported, not asserted (ASan's quarantine)")
elif last > limit:
    print("   RSS is not flat")
    ok = False
sys.exit(0 if ok else 1)
PY

check "smsguard stops on SIGTERM with exit 0, no sanitizer report"
stop_guard_term "$SG_PID" 20
if grep -E 'LeakSanitizer|AddressSanitizer|runtime error' "$SG_LOG" >/dev/null; then
    fail "sanitizer report in smsguard's stderr"
fi

check "every valid stop-test is in a decision and an outcome record, and reached the simulator"
python3 - "$AUDIT" "$WORK/groups.txt" "$SIM_RECORD" <<'PY' || fail "audit or simulator record"
import json, sys
audit, groups, record = sys.argv[1:4]
want = [l.strip() for l in open(groups) if l.strip()]
dec_by_dg, outcome_ids = {}, set()
with open(audit, encoding="utf-8") as f:
    for line in f:
        r = json.loads(line)
        if r.get("stage") == "decision" and r.get("decision") == "allow":
            for g in r.get("groups") or []:
                dec_by_dg.setdefault(g.get("device_group"), []).append(r["request_id"])
        elif r.get("stage") == "outcome":
            outcome_ids.add(r["request_id"])
sim_dg = set()
hostile = []
with open(record, encoding="utf-8") as f:
    for line in f:
        if "soakhostile" in line.lower():
            hostile.append(line[:200])
        try:
            body = json.loads(json.loads(line).get("body") or "null")
            for g in body["groupId"]:
                sim_dg.add(g["deviceGroupId"]["id"])
        except (ValueError, TypeError, KeyError):
            pass
no_dec = [g for g in want if len(dec_by_dg.get(g, [])) != 1]
no_out = [g for g in want if g not in no_dec and dec_by_dg[g][0] not in outcome_ids]
no_sim = [g for g in want if g not in sim_dg]
print("   %d valid stop-tests; without exactly one allow decision: %d; without an outcome: %d; "
      "not received by the simulator: %d" % (len(want), len(no_dec), len(no_out), len(no_sim)))
print("   hostile requests received by the simulator: %d" % len(hostile))
for what, l in (("no decision", no_dec), ("no outcome", no_out), ("not received", no_sim),
                ("hostile received", hostile)):
    for x in l[:5]:
        print("   %s: %s" % (what, x))
sys.exit(0 if want and not (no_dec or no_out or no_sim or hostile) else 1)
PY
audit_verify "$AUDIT"
assert_eq 0 "$AV_RC" "smsguard-audit verify: $AV_OUT"
echo "   $AV_OUT" | head -n 3

echo "PASS: $TEST_NAME"
