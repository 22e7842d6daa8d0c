#!/usr/bin/env bash
# 55_audit_report: `smsguard-audit report` over a real audit log (docs/design.md "Audit log",
# man/smsguard-audit.1; issue 19 item 6). One smsguard with two tenants (t1 covers vasa-*, t2
# other-*), a token whose subject holds a newline, a quote, a backslash, a control character and
# invalid UTF-8, batch splitting at 2 groups and signed checkpoints every 4 records, in front of
# sms-sim. Requests allowed and denied (wrong tenant, no token, empty groupId), a 5-group batch
# split into 3 parts, then rotation (mv + SIGUSR1) and more requests in the new file, then
# SIGTERM. The report of both files is checked against what was sent and against the records
# read with python's json module alone:
#   - the table: one line per decision record (the hostile subject escaped, never a line
#     break), columns aligned under the header; the outcome column joins the outcome records
#     by request_id ("answered", "answered (3 parts)", "-" for a refused request)
#   - --csv: RFC 4180, CRLF, read back with python's csv module: every field equals the
#     record's (the hostile subject byte for byte)
#   - --json: each line json.loads, exactly the decision records and their outcome records as
#     written in the file
#   - --summary (table, CSV, JSON) counts per operation and decision
#   - every filter: --tenant, --principal, --upstream, --provider, --operation, --decision, a
#     combination, --from/--to (RFC 3339 taken from the records, with an offset, a date)
#   - one rotated file alone (a note: the chain starts later), the files in the wrong order
#     (exit 1), --key with the right and a wrong public key
#   - a tampered copy: exit 1 naming the edited line, and the rows before it are still printed
#   - usage errors exit 2
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"

AUDIT=$WORK/audit.log
OLD=$WORK/audit.log.1
VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
BOB_TOKEN=bob-token-$$-$RANDOM
WEIRD_TOKEN=weird-token-$$-$RANDOM
mkdir -p "$WORK/r"
head -c 32 /dev/urandom >"$WORK/task.key"
{
    openssl genpkey -algorithm ed25519 -out "$WORK/sign.key" &&
        openssl pkey -in "$WORK/sign.key" -pubout -out "$WORK/sign.pub" &&
        openssl genpkey -algorithm ed25519 -out "$WORK/other.key" &&
        openssl pkey -in "$WORK/other.key" -pubout -out "$WORK/other.pub"
} >"$WORK/openssl-keys.out" 2>&1 || { cat "$WORK/openssl-keys.out" >&2; fail "openssl could not make Ed25519 keys"; }

sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }

POLICY="policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(sha "$SG_TOKEN")\"; subject = \"tester\"; tenant = \"t1\";
               roles = [\"dr-operator\"]; },
             { id = \"bob\"; sha256 = \"$(sha "$BOB_TOKEN")\"; subject = \"bob\"; tenant = \"t2\";
               roles = [\"dr-operator\"]; },
             { id = \"weird\"; sha256 = \"$(sha "$WEIRD_TOKEN")\"; subject = \"m\\xffal\\\"l\\\\ory\\x01\\n\";
               tenant = \"t1\"; roles = [\"dr-operator\"]; } );
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"t1\"; providers = [\"vasa-*\"]; fault_domains = [\"*\"]; },
              { name = \"t2\"; providers = [\"other-*\"]; fault_domains = [\"*\"]; } );
};"
GUARD_SETTINGS=("policy=$POLICY"
    "extra=batch = { max_size = 2; max_parallel = 2; learn_from_toomany = true; max_parts = 64;
  task_key_file = \"$WORK/task.key\"; providers = ( ); };
audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true;
  signing_key = \"$WORK/sign.key\"; checkpoint_every = 4; };")
start_all

# send NAME PROTO MOID NGROUPS TOKEN EXPECT_CODE: a stop-test for MOID with NGROUPS groups
# (fd-1 / dg-MOID-i; 0 sends an empty groupId) and the given token ("-": none).
send() {
    local name=$1 proto=$2 moid=$3 n=$4 token=$5 want=$6 i sep="" body auth=()
    body='{"groupId":['
    for ((i = 0; i < n; i++)); do
        body+="$sep{\"faultDomainId\":{\"id\":\"fd-1\"},\"deviceGroupId\":{\"id\":\"dg-$moid-$i\"}}"
        sep=,
    done
    body+='],"force":false}'
    [[ $token == - ]] || auth=(-H "Authorization: Bearer $token")
    sg_post "$proto" "$VP/$moid/$M" "$WORK/r/$name" "${auth[@]+"${auth[@]}"}" \
        -H 'Content-Type: application/json' --data-binary "$body"
    assert_eq "$want" "$REQ_CODE" "$name: status; body $(head -c 300 "$WORK/r/$name.body")"
    echo "   $name: $REQ_CODE $(head -c 100 "$WORK/r/$name.body")"
}

check "requests into the first file: allowed, split, refused for the tenant and without a token"
send a1 http1.1 vasa-a1 1 "$SG_TOKEN" 200
send a2 http2 vasa-split 5 "$SG_TOKEN" 200
send d1 http1.1 vasa-d1 1 "$BOB_TOKEN" 500
send d2 http2 vasa-d2 1 - 500
send b1 http2 other-b1 2 "$BOB_TOKEN" 200
send w1 http1.1 vasa-w1 1 "$WEIRD_TOKEN" 200

check "rotation: mv, SIGUSR1, more requests go to a new file"
mv "$AUDIT" "$OLD"
kill -USR1 "$SG_PID"
wait_file "$AUDIT" "audit file"
send a3 http1.1 vasa-a3 1 "$SG_TOKEN" 200
send d3 http2 vasa-d3 0 "$SG_TOKEN" 500
send b2 http1.1 other-b2 1 "$BOB_TOKEN" 200

check "the simulator received the allowed requests only (the split one in 3 parts)"
sleep 0.2
python3 - "$SIM_RECORD" <<'PY' || fail "the simulator's record does not match"
import collections, json, sys
recs = [json.loads(l) for l in open(sys.argv[1], "rb") if l.strip()]
n = collections.Counter(r["path"].split("/")[-2] for r in recs
                        if r["path"].endswith("/TestFailoverReplicationGroupStop_Task"))
want = {"vasa-a1": 1, "vasa-split": 3, "other-b1": 1, "vasa-w1": 1, "vasa-a3": 1, "other-b2": 1}
print("   " + " ".join("%s:%d" % kv for kv in sorted(n.items())))
sys.exit(0 if n == want else 1)
PY

check "SIGTERM: the audit log is flushed"
stop_guard_term
audit_verify "$OLD" "$AUDIT" --key "$WORK/sign.pub"
assert_eq 0 "$AV_RC" "smsguard-audit verify OLD NEW ($AV_OUT)"
echo "   $(head -n 1 <<<"$AV_OUT")"

# ---------------------------------------------------------------------------------------
check "the report: table, CSV, JSON lines, summary, filters, time ranges, rotation, tampering"
python3 - "$SMSGUARD_AUDIT" "$WORK" <<'PY' || fail "smsguard-audit report is wrong (see above)"
import csv, datetime, io, json, re, subprocess, sys
TOOL, W = sys.argv[1:3]
OLD, NEW = W + "/audit.log.1", W + "/audit.log"
M = "TestFailoverReplicationGroupStop_Task"
COLS = ["time", "request_id", "tenant", "principal", "upstream", "provider", "operation",
        "groups", "force", "decision", "fault", "outcome", "reason"]
WEIRD = 'm\ufffdal"l\\ory\u0001\n'
errs = []

def run(*args, files=(OLD, NEW)):
    p = subprocess.run([TOOL, "report", *files, *args], capture_output=True)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

def records(*files):
    out = []
    for f in files:
        for i, l in enumerate(open(f, "rb").read().split(b"\n")[:-1], 1):
            out.append((f, i, l, json.loads(l)))
    return out

# The rows as python computes them from the records alone.
def expect(recs):
    rows, by_id = [], {}
    for f, i, raw, d in recs:
        if d["stage"] == "decision":
            p = d.get("principal") or {}
            g = d.get("groups")
            row = {"time": d["time"], "request_id": d["request_id"], "tenant": p.get("tenant"),
                   "principal": p.get("subject"), "upstream": d.get("upstream"),
                   "provider": d.get("provider"), "operation": d.get("operation", M),
                   "groups": None if g is None else " ".join(
                       "%s/%s" % (x["fault_domain"], x["device_group"]) for x in g),
                   "force": {True: "true", False: "false"}.get(d.get("force")),
                   "decision": d["decision"], "fault": d.get("fault"), "reason": d.get("reason"),
                   "_outs": [], "_raw": [raw]}
            rows.append(row)
            by_id[d["request_id"]] = row
        elif d["stage"] == "outcome" and d["request_id"] in by_id:
            by_id[d["request_id"]]["_outs"].append(d)
            by_id[d["request_id"]]["_raw"].append(raw)
    for r in rows:
        o = r["_outs"]
        if not o:
            r["outcome"] = "none" if r["decision"] == "allow" else None
        elif len(o) == 1 and "parts" not in o[0]:
            r["outcome"] = o[0]["reason"]
        else:
            reasons = [x["reason"] for x in o]
            uniq = list(dict.fromkeys(reasons))
            txt = ", ".join(x if reasons.count(x) == len(o) else "%s x%d" % (x, reasons.count(x))
                            for x in uniq)
            r["outcome"] = "%s (%d parts)" % (txt, o[0].get("parts", len(o)))
    return rows

ALL = records(OLD, NEW)
ROWS = expect(ALL)
by_prov = {r["provider"]: r for r in ROWS}

def csv_rows(out):
    rd = list(csv.reader(io.StringIO(out.decode("utf-8"), newline="")))
    if rd[0] != COLS:
        errs.append("CSV header %r" % rd[0])
    return [dict(zip(COLS, (v if v != "" else None for v in r))) for r in rd[1:]]

def same(got, want, what):
    for k in COLS:
        if got.get(k) != want.get(k):
            errs.append("%s: %s %r, expected %r" % (what, k, got.get(k), want.get(k)))

# -- what was sent, as the report must show it
print("   %d decision records, %d outcome records" % (
    len(ROWS), sum(1 for *_, d in ALL if d["stage"] == "outcome")))
want = {"vasa-a1": ("t1", "tester", "allow", None, "answered"),
        "vasa-split": ("t1", "tester", "allow", None, "answered (3 parts)"),
        "vasa-d1": ("t2", "bob", "deny", "NoPermission", None),
        "vasa-d2": (None, None, "deny", "NotAuthenticated", None),
        "other-b1": ("t2", "bob", "allow", None, "answered"),
        "vasa-w1": ("t1", WEIRD, "allow", None, "answered"),
        "vasa-a3": ("t1", "tester", "allow", None, "answered"),
        "vasa-d3": ("t1", "tester", "deny", "InvalidArgument", None),
        "other-b2": ("t2", "bob", "allow", None, "answered")}
if sorted(by_prov) != sorted(want) or len(ROWS) != len(want):
    errs.append("decision records for %s" % [r["provider"] for r in ROWS])

# -- CSV: every field as python reads the records
rc, out, err = run("--csv")
if rc != 0:
    errs.append("--csv: exit %d: %s" % (rc, err))
got = csv_rows(out)
# RFC 4180 byte for byte: CRLF after every record, a field quoted when it holds a comma, a quote,
# CR or LF (the hostile subject's newline stays inside its quoted field), quotes doubled
again = io.StringIO(newline="")
csv.writer(again, lineterminator="\r\n").writerows(
    [COLS] + [[g[k] if g[k] is not None else "" for k in COLS] for g in got])
if again.getvalue().encode("utf-8") != out:
    errs.append("--csv is not RFC 4180 with CRLF as python writes it: %r" % out[:300])
if len(got) != len(ROWS):
    errs.append("--csv: %d rows, expected %d" % (len(got), len(ROWS)))
for g, r in zip(got, ROWS):
    same(g, r, "--csv " + str(r["provider"]))
for g in got:
    w = want.get(g["provider"])
    if w and (g["tenant"], g["principal"], g["decision"], g["fault"], g["outcome"]) != w:
        errs.append("--csv %s: %r, sent as %r" % (g["provider"], (g["tenant"], g["principal"],
                    g["decision"], g["fault"], g["outcome"]), w))
    if g["upstream"] != "default" or g["operation"] != M:
        errs.append("--csv %s: upstream %r operation %r" % (g["provider"], g["upstream"], g["operation"]))
split = [g for g in got if g["provider"] == "vasa-split"]
if split and split[0]["groups"] != " ".join("fd-1/dg-vasa-split-%d" % i for i in range(5)):
    errs.append("--csv vasa-split groups %r" % split[0]["groups"])
print("   --csv: %d rows; vasa-split outcome %r; vasa-w1 principal %r" % (
    len(got), split[0]["outcome"] if split else None,
    [g["principal"] for g in got if g["provider"] == "vasa-w1"]))

# -- the table: one line per row, aligned, the hostile subject escaped
rc, out, err = run()
lines = out.decode("utf-8").split("\n")
if rc != 0 or lines[-1] != "" or len(lines) != len(ROWS) + 2:
    errs.append("table: exit %d, %d lines for %d rows: %s" % (rc, len(lines) - 1, len(ROWS), err))
lines = lines[:-1]
hdr = lines[0]
starts = [hdr.index(c.upper()) for c in COLS]
if hdr.split() != [c.upper() for c in COLS] or starts != sorted(starts):
    errs.append("table header %r" % hdr)
for line, r in zip(lines[1:], ROWS):
    cells = [line[a:b].rstrip() if b else line[a:] for a, b in zip(starts, starts[1:] + [None])]
    for k, a in zip(COLS, starts):
        if a > 0 and line[a - 2:a] != "  ":
            errs.append("table %s: column %s not aligned: %r" % (r["provider"], k, line))
            break
    for k, c in zip(COLS, cells):
        v = r[k]
        # the log escaper: '\\' doubled, control characters as \u00XX, the rest as it is
        v = "-" if v is None else v.replace("\\", "\\\\").replace("\u0001", "\\u0001") \
            .replace("\n", "\\u000a")
        if c != v:
            errs.append("table %s: %s %r, expected %r" % (r["provider"], k, c, v))
print("   table: %d rows under %s" % (len(lines) - 1, " ".join(hdr.split()[:4]) + " ..."))
print("   " + [l for l in lines if "vasa-w1" in l][0][:200])

# -- JSON lines: the records themselves, decision then its outcomes
rc, out, err = run("--json")
jl = out.split(b"\n")[:-1]
for l in jl:
    json.loads(l)
want_raw = [raw for r in ROWS for raw in r["_raw"]]
if rc != 0 or jl != want_raw:
    errs.append("--json: exit %d, %d lines, expected the %d records as written" % (rc, len(jl), len(want_raw)))
print("   --json: %d lines, the records as written" % len(jl))

# -- summary
rc, out, err = run("--summary")
if rc != 0 or out.decode().split("\n")[1:-1] != [
        "%s  allow     6" % M, "%s  deny      3" % M] or out.decode().split()[:3] != ["OPERATION", "DECISION", "COUNT"]:
    errs.append("--summary: exit %d:\n%s" % (rc, out.decode()))
rc, out, err = run("--summary", "--csv")
if list(csv.reader(io.StringIO(out.decode(), newline=""))) != [
        ["operation", "decision", "count"], [M, "allow", "6"], [M, "deny", "3"]]:
    errs.append("--summary --csv: %r" % out)
rc, out, err = run("--summary", "--json", "--tenant", "t2")
if [json.loads(l) for l in out.split(b"\n")[:-1]] != [
        {"operation": M, "decision": "allow", "count": 2},
        {"operation": M, "decision": "deny", "count": 1}]:
    errs.append("--summary --json --tenant t2: %r" % out)
print("   --summary: allow 6, deny 3 (table, CSV); t2: allow 2, deny 1 (JSON)")

# -- filters
def provs(*args, files=(OLD, NEW)):
    rc, out, err = run("--csv", *args, files=files)
    if rc != 0:
        errs.append("%s: exit %d: %s" % (" ".join(args), rc, err))
    return sorted(g["provider"] for g in csv_rows(out))

def check(args, want_provs):
    got = provs(*args)
    if got != sorted(want_provs):
        errs.append("%s: %s, expected %s" % (" ".join(args), got, sorted(want_provs)))
    print("   %-58s %d row(s)" % (" ".join(args)[:58], len(got)))

allp = list(want)
check(["--tenant", "t2"], ["vasa-d1", "other-b1", "other-b2"])
check(["--tenant", "t1"], ["vasa-a1", "vasa-split", "vasa-w1", "vasa-a3", "vasa-d3"])
check(["--principal", "bob"], ["vasa-d1", "other-b1", "other-b2"])
check(["--principal", WEIRD], ["vasa-w1"])
check(["--upstream", "default"], allp)
check(["--upstream", "vc-other"], [])
check(["--provider", "vasa-split"], ["vasa-split"])
check(["--operation", M], allp)
check(["--operation", "FailoverReplicationGroup_Task"], [])
check(["--decision", "deny"], ["vasa-d1", "vasa-d2", "vasa-d3"])
check(["--decision", "allow"], [p for p in allp if p not in ("vasa-d1", "vasa-d2", "vasa-d3")])
check(["--tenant", "t1", "--decision=deny"], ["vasa-d3"])

# -- time ranges: bounds taken from the records (microseconds), in UTC and with an offset
t = {r["provider"]: r["time"] for r in ROWS}
order = [r["provider"] for r in ROWS]
def between(a, b):
    return [p for p in order if t[a] <= t[p] <= t[b]]
check(["--from", t["vasa-a3"]], between("vasa-a3", "other-b2"))
check(["--to", t["vasa-d1"]], between("vasa-a1", "vasa-d1"))
check(["--from", t["vasa-split"], "--to", t["other-b1"]], between("vasa-split", "other-b1"))
dt = datetime.datetime.strptime(t["vasa-a3"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
plus2 = dt.astimezone(datetime.timezone(datetime.timedelta(hours=2))).isoformat()
check(["--from", plus2], between("vasa-a3", "other-b2"))
# one microsecond after a3's decision: a3 is out
later = (dt + datetime.timedelta(microseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
check(["--from", later], [p for p in between("vasa-a3", "other-b2") if t[p] > t["vasa-a3"]])
day = t["vasa-a1"][:10]
nextday = (dt + datetime.timedelta(days=2)).strftime("%Y-%m-%d")
if t["other-b2"][:10] == day:
    check(["--from", day, "--to", day], allp)
check(["--from", nextday], [])

# -- rotated files: the newer alone, the two in the wrong order
got = provs(files=(NEW,))
if got != sorted(["vasa-a3", "vasa-d3", "other-b2"]):
    errs.append("the new file alone: %s" % got)
rc, out, err = run(files=(NEW,))
if rc != 0 or "chain starts at seq" not in err:
    errs.append("the new file alone: exit %d, stderr %r (expected a note)" % (rc, err))
print("   the new file alone: %d rows, note: %s" % (len(got), err.strip().split("\n")[0][:100]))
rc, out, err = run("--csv", files=(NEW, OLD))
if rc != 1 or not re.search(r"audit\.log\.1:1: ", err):
    errs.append("wrong order: exit %d, stderr %r" % (rc, err))
print("   wrong order: exit %d: %s" % (rc, err.strip()[:120]))

# -- checkpoint signatures
rc, out, err = run("--key", W + "/sign.pub")
if rc != 0 or len(out.split(b"\n")) != len(ROWS) + 2:
    errs.append("--key sign.pub: exit %d: %s" % (rc, err))
rc, out, err = run("--csv", "--key", W + "/other.pub")
cps = [(f, i) for f, i, raw, d in ALL if d["stage"] == "checkpoint"]
if rc != 1 or "bad checkpoint signature" not in err or "%s:%d:" % cps[0] not in err:
    errs.append("--key other.pub: exit %d, stderr %r" % (rc, err))
first_cp = [(f, i) for f, i, raw, d in ALL].index(cps[0])
before = [d for f, i, raw, d in ALL[:first_cp] if d["stage"] == "decision"]
if len(csv_rows(out)) != len(before):
    errs.append("--key other.pub: %d rows, expected the %d before the first checkpoint" % (
        len(csv_rows(out)), len(before)))
print("   --key other.pub: exit %d, %d rows (before %s:%d): %s" % (
    rc, len(csv_rows(out)), cps[0][0].rsplit("/", 1)[1], cps[0][1], err.strip()[:80]))

# -- a tampered copy: d1's decision record says t1 instead of t2
lines = open(OLD, "rb").read().split(b"\n")
k = next(i for i, l in enumerate(lines) if b'"provider":"vasa-d1"' in l and b'"stage":"decision"' in l)
lines[k] = lines[k].replace(b'"tenant":"t2"', b'"tenant":"t1"')
open(W + "/tampered.log", "wb").write(b"\n".join(lines))
rc, out, err = run("--csv", files=(W + "/tampered.log", NEW))
got = [g["provider"] for g in csv_rows(out)]
want_before = [r["provider"] for r in ROWS if r["time"] < t["vasa-d1"]]
if rc != 1 or "tampered.log:%d: edited" % (k + 1) not in err or got != want_before:
    errs.append("tampered: exit %d, rows %s (expected %s), stderr %r" % (rc, got, want_before, err))
print("   tampered line %d: exit %d, rows %s, %s" % (k + 1, rc, got, err.strip()))

# -- usage
for args in (["--decision", "maybe"], ["--from", "yesterday"], ["--to", "2026-02-30"],
             ["--csv", "--json"], ["--tenant"], ["--tenant", "a", "--tenant", "b"],
             ["--from", "2026-01-02", "--to", "2026-01-01"], ["--nosuch"]):
    rc, out, err = run(*args)
    if rc != 2 or out:
        errs.append("%s: exit %d, expected 2 with nothing on stdout" % (args, rc))
rc, out, err = run(files=(W + "/nosuch.log",))
if rc != 2 or "nosuch.log" not in err:
    errs.append("a missing file: exit %d: %r" % (rc, err))
print("   usage errors and a missing file: exit 2")

for e in errs:
    print("   " + e)
sys.exit(1 if errs else 0)
PY

echo "PASS: $TEST_NAME"
