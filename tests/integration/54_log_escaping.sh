#!/usr/bin/env bash
# 54_log_escaping: one escaper for every log string (issue 14 point 4). Strings a client or a
# token chose reach the audit file, the access log and the error log (stderr, log level
# debug) escaped the same way: C0 controls, DEL, C1 controls, U+2028, U+2029 and the bidi
# controls (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) as \uXXXX, bytes that
# are not UTF-8 as U+FFFD, so no line can be split, reordered or made to show something
# else. Sent: a JWT whose subject carries all of them (allowed, with group ids that carry
# the ones a group id may hold), the same subject refused for a fault domain outside its
# tenant and for having no role, a JWT whose tenant claim carries them, and targets over
# HTTP/1.1 and HTTP/2 with them as raw bytes (plus bytes that are not UTF-8). Checked, byte
# by byte: every line of the three logs is valid UTF-8 with none of those characters raw;
# each error log line starts with its timestamp; the escaped strings decode to exactly what
# was sent; the upstream got the same group ids (as JSON escapes); smsguard-audit verify
# says ok; and the same smsguard process still serves new connections.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AUDIT=$WORK/audit.log
ACCESS=$WORK/access.log
VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
openssl rand -out "$WORK/hs.secret" 48
mkdir -p "$WORK/tok" "$WORK/b" "$WORK/r"

# The strings, tokens and bodies, made by python (the exact characters are in one place).
python3 - "$WORK" <<'PY'
import base64, hashlib, hmac, json, sys, time
W = sys.argv[1]
now = int(time.time())
# Every character class the escaper exists for, as text (a JWT or a JSON body carries them).
UNSAFE = ("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c\u200e"
          "\u200f\u0080\u0085\u009b\u009f")
C0 = "\n\r\t\x1b[31m\x7f"   # not NUL: a JWT may not carry \u0000 (policy/jwt.c)
SUB = "sub-\u202eevil\u202c" + UNSAFE + C0 + '"}{\\-\u00e9-end'
TEN = "ten-" + UNSAFE + C0
GROUP = UNSAFE + "\u00e9\u2713"   # a group id may not hold C0 or DEL (refused with a fault)

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def jwt(name, sub, tenant, roles):
    hdr = {"alg": "HS256", "typ": "JWT", "kid": "hs"}
    claims = {"iss": "https://idp.test", "aud": "smsguard", "sub": sub, "tenant": tenant,
              "roles": roles, "iat": now, "exp": now + 900}
    si = b64(json.dumps(hdr).encode()) + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(open(W + "/hs.secret", "rb").read(), si.encode(), hashlib.sha256).digest()
    open("%s/tok/%s" % (W, name), "w").write(si + "." + b64(sig))

jwt("allow", SUB, "t1", ["dr-operator"])
jwt("notenant", SUB, TEN, ["dr-operator"])
jwt("norole", SUB, "t1", ["nobody"])

def body(name, fd, dg):
    b = {"groupId": [{"faultDomainId": {"id": fd}, "deviceGroupId": {"id": dg}}], "force": False}
    open("%s/b/%s" % (W, name), "wb").write(json.dumps(b, ensure_ascii=False).encode())

body("allow", "fd-" + GROUP, "dg-" + GROUP)
body("outside", "fdx-" + GROUP, "dg-outside")
body("notenant", "fd-1", "dg-notenant")
body("norole", "fd-1", "dg-norole")
# Targets with the characters as raw UTF-8 bytes, and two bytes that are not UTF-8.
raw = GROUP.encode() + b"\xff\xfe"
open(W + "/path-h1", "wb").write(b"/sim/echo/h1-" + raw)
open(W + "/path-h2", "wb").write(b"/sim/echo/h2-" + raw)
open(W + "/path-stop", "wb").write(("%s/vasa-" % "/sdk/vim25/8.0.3.0/sms/VasaProvider").encode()
                                    + raw + b"/TestFailoverReplicationGroupStop_Task")
json.dump({"sub": SUB, "tenant": TEN, "group": GROUP}, open(W + "/strings.json", "w"))
PY

POLICY="policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)\";
               subject = \"tester\"; tenant = \"t1\"; roles = [\"dr-operator\"]; } );
  jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\"; leeway_s = 60;
          keys = ( { kid = \"hs\"; alg = \"HS256\"; secret_file = \"$WORK/hs.secret\"; } );
          subject_claim = \"sub\"; tenant_claim = \"tenant\"; roles_claim = \"roles\"; };
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"t1\"; providers = [\"vasa-*\"]; fault_domains = [\"fd-*\"]; } );
};"
GUARD_SETTINGS=("policy=$POLICY" "log_level=debug" "access=$ACCESS"
    "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };")
start_all
PID0=$SG_PID

# ---------------------------------------------------------------------------------------
check "a JWT subject and group ids full of controls, separators and bidi controls: allowed"
stop() { # stop NAME PROTO TOKEN: POST body NAME for provider vasa-esc-NAME with the token
    sg_post "$2" "$VP/vasa-esc-$1/$M" "$WORK/r/$1" -H "Authorization: Bearer $3" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/b/$1"
}
stop allow http2 "$(cat "$WORK/tok/allow")"
assert_eq 200 "$REQ_CODE" "allowed stop-test; body $(head -c 300 "$WORK/r/allow.body")"

check "the same subject refused: a fault domain outside its tenant, then no role"
stop outside http1.1 "$(cat "$WORK/tok/allow")"
assert_eq 500 "$REQ_CODE" "fault domain outside the tenant"
assert_vim_fault "$WORK/r/outside.body" "$WORK/r/outside.hdr" NoPermission "outside"
stop norole http2 "$(cat "$WORK/tok/norole")"
assert_eq 500 "$REQ_CODE" "no role"
assert_vim_fault "$WORK/r/norole.body" "$WORK/r/norole.hdr" NoPermission "no role"

check "a tenant claim full of them: refused as an unknown tenant"
stop notenant http1.1 "$(cat "$WORK/tok/notenant")"
assert_eq 500 "$REQ_CODE" "unknown tenant"
assert_vim_fault "$WORK/r/notenant.body" "$WORK/r/notenant.hdr" NoPermission "unknown tenant"

check "targets with them as raw bytes, and bytes that are not UTF-8, over HTTP/1.1 and HTTP/2"
{
    printf 'GET '
    cat "$WORK/path-h1"
    printf ' HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n' "$SG_TOKEN"
} >"$WORK/raw1.in"
{
    printf 'POST '
    cat "$WORK/path-stop"
    printf ' HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n' "$SG_TOKEN"
    printf 'Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}'
} >"$WORK/raw2.in"
tls_raw "$SG_PORT" "$WORK/raw1.in" "$WORK/raw1.out" 5 >/dev/null
tls_raw "$SG_PORT" "$WORK/raw2.in" "$WORK/raw2.out" 5 >/dev/null
echo "   HTTP/1.1: $(head -n 1 "$WORK/raw1.out" | tr -d '\r'); $(head -n 1 "$WORK/raw2.out" | tr -d '\r')"
[[ -s $WORK/raw1.out && -s $WORK/raw2.out ]] || fail "no answer to a raw HTTP/1.1 request"
sg_req http2 GET "$(cat "$WORK/path-h2")" "$WORK/r/h2path" -H "Authorization: Bearer $SG_TOKEN"
echo "   HTTP/2: $REQ_CODE"
[[ $REQ_CODE != 000 ]] || fail "no answer over HTTP/2 ($(head -c 300 "$WORK/r/h2path.err"))"

# the access log is written every 100 ms: wait for the lines of these 7 requests
deadline=$((SECONDS + 5))
while (($( [[ -e $ACCESS ]] && wc -l <"$ACCESS" || echo 0) < 7)); do
    ((SECONDS < deadline)) || fail "the access log has $(wc -l <"$ACCESS" 2>/dev/null || echo 0) line(s), expected 7"
    sleep 0.05
done

check "the same smsguard process still serves new connections"
assert_serving "after the hostile strings"
assert_eq "$PID0" "$SG_PID" "smsguard's PID"

# ---------------------------------------------------------------------------------------
check "no line of the audit file, the access log or the error log holds one of them raw"
python3 - "$AUDIT" "$ACCESS" "$SG_LOG" <<'PY' || fail "a log holds a raw control, separator, bidi control or invalid UTF-8 (see above)"
import re, sys
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
bad = 0
for f in sys.argv[1:]:
    data = open(f, "rb").read()
    if not data.endswith(b"\n"):
        print("   %s does not end with a newline" % f); bad = 1
    for i, raw in enumerate(data[:-1].split(b"\n"), 1):
        try:
            text = raw.decode("utf-8")  # strict: any byte that is not UTF-8 fails
        except UnicodeDecodeError as e:
            print("   %s:%d: not UTF-8: %s" % (f, i, e)); bad = 1; continue
        m = UNSAFE.search(text)
        if m:
            print("   %s:%d: raw U+%04X at %d: %r" % (f, i, ord(m.group()), m.start(), text[:200])); bad = 1
    print("   %s: %d lines" % (f.rsplit("/", 1)[-1], data.count(b"\n")))
sys.exit(bad)
PY

check "every error log line starts with its own timestamp and level (no line was split)"
python3 - "$SG_LOG" <<'PY' || fail "the error log has a line that is not one of smsguard's (see above)"
import re, sys
bad = 0
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    if not re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[(error|warn|info|debug)\] ", line):
        print("   line %d: %r" % (i, line[:200])); bad = 1
sys.exit(bad)
PY

check "the audit records hold exactly what the token and the body said"
python3 - "$WORK/strings.json" "$AUDIT" <<'PY' || fail "the audit records are wrong (see above)"
import json, sys
S = json.load(open(sys.argv[1]))
recs = [json.loads(l) for l in open(sys.argv[2], "rb")]
dec = {r.get("provider"): r for r in recs if r.get("stage") == "decision"}
errs = []
a = dec.get("vasa-esc-allow") or {}
if a.get("decision") != "allow" or (a.get("principal") or {}).get("subject") != S["sub"]:
    errs.append("allowed: %r" % (a,))
if a.get("groups") != [{"fault_domain": "fd-" + S["group"], "device_group": "dg-" + S["group"]}]:
    errs.append("allowed: groups %r" % (a.get("groups"),))
o = dec.get("vasa-esc-outside") or {}
if o.get("decision") != "deny" or ("fdx-" + S["group"]) not in (o.get("reason") or ""):
    errs.append("outside: %r" % (o,))
n = dec.get("vasa-esc-norole") or {}
if n.get("decision") != "deny" or S["sub"] not in (n.get("reason") or ""):
    errs.append("no role: %r" % (n,))
t = dec.get("vasa-esc-notenant") or {}
if (t.get("principal") or {}).get("tenant") != S["tenant"] or S["tenant"] not in (t.get("reason") or ""):
    errs.append("unknown tenant: %r" % (t,))
for e in errs:
    print("   " + e[:600])
raw = open(sys.argv[2], "rb").read()
for esc in (b"\\u2028", b"\\u202e", b"\\u2066", b"\\u0085", b"\\u009b", b"\\u061c", b"\\u000a", b"\\u007f"):
    if esc not in raw:
        print("   no %s in the audit file" % esc.decode()); errs.append(esc)
sys.exit(1 if errs else 0)
PY

check "the access log holds the subject, the tenant and the targets, decoded exactly"
python3 - "$WORK" "$ACCESS" <<'PY' || fail "the access log is wrong (see above)"
import json, sys
W = sys.argv[1]
S = json.load(open(W + "/strings.json"))
lines = [json.loads(l) for l in open(sys.argv[2], "rb")]
paths = {l["path"] for l in lines}
subjects = {l.get("subject") for l in lines}
tenants = {l.get("tenant") for l in lines}
bad = 0
for name in ("path-h1", "path-h2", "path-stop"):
    want = open("%s/%s" % (W, name), "rb").read().decode("utf-8", errors="replace")
    if want not in paths:
        print("   no line with the path of %s (%r)" % (name, want)); bad = 1
if S["sub"] not in subjects:
    print("   no line with the JWT subject"); bad = 1
if S["tenant"] not in tenants:
    print("   no line with the JWT tenant claim"); bad = 1
sys.exit(bad)
PY

check "the error log quotes the refusals' reasons escaped"
for want in "denied: fault domain 'fdx-\\u2028\\u2029\\u202a" "denied: no role of 'sub-\\u202eevil\\u202c" \
    "denied: unknown tenant 'ten-\\u2028"; do
    grep -qF -- "$want" "$SG_LOG" || fail "no error log line with: $want"
done
grep -F -- "denied:" "$SG_LOG" | head -n 3 | cut -c1-160 | sed 's/^/   /'

check "the upstream received the group ids unchanged (escaped in its JSON, never raw)"
python3 - "$WORK/strings.json" "$SIM_RECORD" <<'PY' || fail "the forwarded body is wrong (see above)"
import json, sys
S = json.load(open(sys.argv[1]))
recs = [json.loads(l) for l in open(sys.argv[2], "rb") if l.strip()]
stop = [r for r in recs if "/vasa-esc-" in r["path"]]
if len(stop) != 1 or "/vasa-esc-allow/" not in stop[0]["path"]:
    print("   forwarded stop-test requests: %r" % [r["path"] for r in stop]); sys.exit(1)
body = stop[0]["body"]
ids = json.loads(body)["groupId"][0]
if ids != {"faultDomainId": {"id": "fd-" + S["group"]}, "deviceGroupId": {"id": "dg-" + S["group"]}}:
    print("   ids %r" % ids); sys.exit(1)
if "\u2028" in body or "\u202e" in body or "\\u2028" not in body or "\u00e9" not in body:
    print("   body %r: the separators and bidi controls are not escaped, or text is" % body); sys.exit(1)
print("   %s" % body.encode("unicode_escape").decode()[:150])
PY

check "smsguard-audit verify says ok"
audit_verify "$AUDIT"
echo "   $AV_OUT"
assert_eq 0 "$AV_RC" "smsguard-audit verify exit status ($AV_OUT)"
assert_match '^ok' "$AV_OUT" "smsguard-audit verify output"

check "the same smsguard process still serves new connections"
assert_serving "at the end"
assert_eq "$PID0" "$SG_PID" "smsguard's PID"

echo "PASS: $TEST_NAME"
