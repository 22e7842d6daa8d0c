#!/usr/bin/env bash
# 50_audit_records: every stop-test request leaves the right audit records (docs/design.md "Audit
# log" and the record members under "Details"; issue 5). A mix of requests over HTTP/1.1 and
# HTTP/2 - allowed (two groups, force, the method name percent-encoded), refused without a
# token, refused for a tenant that does not cover the provider, invalid (empty groupId,
# malformed JSON, a body over max_body_bytes with and without Content-Length, an Expect
# other than 100-continue), refused by the route (the method named in another case, a query
# string, GET), and injection attempts (ids and subjects with quotes, backslashes,
# newlines, control characters, U+2028, invalid UTF-8) - then SIGTERM, and the file is
# checked with python's json module and sha256 alone:
#   - every line is one JSON object, valid UTF-8, starting {"seq":N,"prev":"H",; seq +1 from
#     1; prev the SHA-256 of the previous line's exact bytes (64 zeros first); sha256sum agrees
#   - exactly one decision record per request (matched by the provider moId, unique per
#     request; a request refused before the route matched has a record without one),
#     decision allow/deny as the client saw it, fault the _typeName the client got,
#     a non-empty reason, every group id of a validated body, the principal (subject,
#     tenant, token_id, auth) and never a token, client 127.0.0.1 over TLSv1.x, then the
#     vCenter's name ("upstream":"default", the one-vCenter form; null or "default" for a
#     request refused before the route matched)
#   - one outcome record per forwarded request (same request_id, later seq): upstream name
#     "default" first, status 200, task = the SmsTask value the client got, duration_ms a
#     number; none for refused
#   - the decision record was written before the simulator received the request
#   - smsguard-audit verify says ok.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"

AUDIT=$WORK/audit.log
OTHER_TOKEN=other-token-$$-$RANDOM
WEIRD_TOKEN=weird-token-$$-$RANDOM
mkdir -p "$WORK/b" "$WORK/r"
openssl rand -out "$WORK/hs.secret" 48

sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }

# ---------------------------------------------------------------------------------------
# Cases: written by python to $WORK/cases.json (expectations) and $WORK/cases.tsv (what to
# send: name, protocol, target, auth kind); bodies in $WORK/b/NAME.

python3 - "$WORK" <<'PY'
import base64, hashlib, hmac, json, sys, time
W = sys.argv[1]
VP = "/sdk/vim25/8.0.3.0/sms/VasaProvider"
M = "TestFailoverReplicationGroupStop_Task"
now = int(time.time())

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

# a JWT (HS256) whose subject carries everything a log injection would use
JWT_SUB = 'j"w\\t\n\r\u0001\u001f\u007f <b>\u00e9\u2028\u2029 {"stage":"allow"}'
hdr = {"alg": "HS256", "typ": "JWT", "kid": "hs"}
claims = {"iss": "https://idp.test", "aud": "smsguard", "sub": JWT_SUB, "tenant": "t1",
          "roles": ["dr-operator"], "iat": now, "exp": now + 900}
si = b64(json.dumps(hdr).encode()) + "." + b64(json.dumps(claims).encode())
sig = hmac.new(open(W + "/hs.secret", "rb").read(), si.encode(), hashlib.sha256).digest()
open(W + "/jwt", "w").write(si + "." + b64(sig))

def grp(fd, dg):
    return {"faultDomainId": {"id": fd}, "deviceGroupId": {"id": dg}}

cases = []
def case(name, tag, body, auth="token", expect="allow", fault=None, groups="body",
         target=None, principal=None, force=None, method="POST", noprov=False, hdr="X-Case: 1"):
    moid = "vasa-%s-%s" % (name, tag)
    c = {"name": "%s-%s" % (name, tag), "proto": "http2" if tag == "h2" else "http1.1",
         "moid": moid, "target": target or "%s/%s/%s" % (VP, moid, M), "auth": auth,
         "expect": expect, "fault": fault, "principal": principal, "method": method,
         "noprov": noprov, "hdr": hdr}
    if isinstance(body, (dict, list)):
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if groups == "body":
            groups = [{"fault_domain": g["faultDomainId"]["id"],
                       "device_group": g["deviceGroupId"]["id"]} for g in body["groupId"]]
        c["force"] = body.get("force")
    else:
        raw = body
        c["force"] = force
    c["groups"] = groups
    open("%s/b/%s" % (W, c["name"]), "wb").write(raw)
    cases.append(c)

for t in ("h1", "h2"):
    # allowed: two groups; force true
    case("allow", t, {"groupId": [grp("fd-1", "dg-allow-%s-0" % t), grp("fd-2", "dg-allow-%s-1" % t)],
                      "force": False})
    case("force", t, {"groupId": [grp("fd-9", "dg-force-%s" % t)], "force": True})
    # refused before the body is read: no token (the body is never parsed: no groups)
    case("notoken", t, {"groupId": [grp("fd-1", "dg-notoken-%s" % t)], "force": False},
         auth="none", expect="deny", fault="NotAuthenticated", groups=None)
    # refused by the tenant (t2 covers other-* only); the body was validated first
    case("tenant", t, {"groupId": [grp("fd-1", "dg-tenant-%s-0" % t), grp("fd-3", "dg-tenant-%s-1" % t)],
                       "force": False},
         auth="other", expect="deny", fault="NoPermission")
    # invalid: empty groupId, malformed JSON
    case("empty", t, {"groupId": [], "force": False}, expect="deny", fault="InvalidArgument",
         groups="none-or-empty")
    case("malformed", t, b'{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-m',
         expect="deny", fault="InvalidRequest", groups=None)
    # a body over max_body_bytes (1 MiB): 413, audited, whether its Content-Length said so
    # or it was streamed without one
    big = b'{"groupId":[],"force":false,"x":"' + b"a" * (1100 * 1024) + b'"}'
    case("big", t, big, expect="deny", fault="InvalidRequest", groups=None, principal="any",
         noprov="maybe")
    case("bigchunked", t, big, expect="deny", fault="InvalidRequest", groups=None, principal="any",
         hdr="Transfer-Encoding: chunked")
    # an Expect other than 100-continue over HTTP/1.1: 417, audited
    if t == "h1":
        case("expect", t, {"groupId": [grp("fd-1", "dg-expect-%s" % t)], "force": False},
             expect="deny", fault="InvalidRequest", groups="any", principal="any", noprov="maybe",
             hdr="Expect: teapot")
    # a target that names the method in another case: refused by the route, still audited
    case("case", t, {"groupId": [grp("fd-1", "dg-case-%s" % t)], "force": False},
         target="/sdk/vim25/8.0.3.0/sms/vasaprovider/vasa-case-%s/%s" % (t, M),
         expect="deny", fault="InvalidRequest", groups=None, principal="any", noprov=True)
    # a query string on the guarded route: refused, audited
    case("query", t, {"groupId": [grp("fd-1", "dg-query-%s" % t)], "force": False},
         target="%s/vasa-query-%s/%s?force=true" % (VP, t, M),
         expect="deny", fault="InvalidRequest", groups=None, principal="any", noprov=True)
    # another method on the guarded route: refused (405), audited
    case("get", t, {"groupId": [grp("fd-1", "dg-get-%s" % t)], "force": False}, method="GET",
         expect="deny", fault="InvalidRequest", groups=None, principal="any")
    # the method name spelled with a percent-encoded unreserved character: the same route,
    # allowed and audited like the canonical spelling
    case("pct", t, {"groupId": [grp("fd-1", "dg-pct-%s" % t)], "force": False},
         target="%s/vasa-pct-%s/%s" % (VP, t, M.replace("_Task", "%5FTask")))
    # injection, accepted: quotes, backslashes, a slash, non-ASCII, U+2028/2029, a fake
    # record; each id stays one string of one line
    case("inj", t, {"groupId": [
        grp('fd-"q"\\b/s', 'dg-inj-%s-"},{"stage":"allow","x":"\\' % t),
        grp("fd-\u00e9\u2713", "dg-inj-%s-\u2028\u2029\U0001F600</script>" % t)], "force": False})
    # injection, refused: newline, CR, control characters, DEL in ids (escaped in JSON)
    case("injbad", t, ('{"groupId":[{"faultDomainId":{"id":"fd-\\n{\\"seq\\":1}"},'
                       '"deviceGroupId":{"id":"dg-injbad-%s-\\r\\n\\u0001\\u001b[31m\\u007f"}}],'
                       '"force":false}' % t).encode(),
         expect="deny", fault="InvalidArgument|InvalidRequest", groups="any", force=False)
    # a subject with newlines, quotes and control characters (JWT)
    case("jwtsub", t, {"groupId": [grp("fd-1", "dg-jwtsub-%s" % t)], "force": False}, auth="jwt",
         principal={"subject": JWT_SUB, "tenant": "t1", "token_id": "hs", "auth": "jwt"})
    # a subject with a quote, a backslash, a control character and invalid UTF-8 (a static
    # token's subject from the configuration): the byte 0xff becomes U+FFFD
    case("weird", t, {"groupId": [grp("fd-1", "dg-weird-%s" % t)], "force": False}, auth="weird",
         principal={"subject": 'm\ufffdal"l\\ory\u0001\n', "tenant": "t1", "token_id": "weird",
                    "auth": "static"})

PRINC = {"token": {"subject": "tester", "tenant": "t1", "token_id": "test", "auth": "static"},
         "other": {"subject": "bob", "tenant": "t2", "token_id": "other", "auth": "static"},
         "none": None}
for c in cases:
    if c["principal"] is None:
        c["principal"] = PRINC.get(c["auth"])
json.dump(cases, open(W + "/cases.json", "w"), ensure_ascii=False, indent=1)
with open(W + "/cases.tsv", "w") as f:
    for c in cases:
        f.write("%s\t%s\t%s\t%s\t%s\t%s\t%s\n" % (c["name"], c["proto"], c["target"], c["auth"],
                                               c["expect"], c["method"], c["hdr"]))
PY

# ---------------------------------------------------------------------------------------
# Configuration: two tenants (t1 covers vasa-*, t2 only other-*), three static tokens, one
# JWT key; the audit log synced always, fail closed.

POLICY="policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(sha "$SG_TOKEN")\"; subject = \"tester\"; tenant = \"t1\";
               roles = [\"dr-operator\"]; },
             { id = \"other\"; sha256 = \"$(sha "$OTHER_TOKEN")\"; subject = \"bob\"; tenant = \"t2\";
               roles = [\"dr-operator\"]; },
             { id = \"weird\"; sha256 = \"$(sha "$WEIRD_TOKEN")\"; subject = \"m\\xffal\\\"l\\\\ory\\x01\\n\";
               tenant = \"t1\"; roles = [\"dr-operator\"]; } );
  jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\"; leeway_s = 60;
          keys = ( { kid = \"hs\"; alg = \"HS256\"; secret_file = \"$WORK/hs.secret\"; } );
          subject_claim = \"sub\"; tenant_claim = \"tenant\"; roles_claim = \"roles\"; };
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"t1\"; providers = [\"vasa-*\"]; fault_domains = [\"*\"]; },
              { name = \"t2\"; providers = [\"other-*\"]; fault_domains = [\"*\"]; } );
};"
GUARD_SETTINGS=("policy=$POLICY"
    "extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true; };")
start_all

# ---------------------------------------------------------------------------------------
check "send the mix over HTTP/1.1 and HTTP/2"
NALLOW=0
: >"$WORK/results.tsv"
while IFS=$'\t' read -r -u 3 name proto target auth expect method hdr; do
    case $auth in
    token) a=(-H "Authorization: Bearer $SG_TOKEN") ;;
    other) a=(-H "Authorization: Bearer $OTHER_TOKEN") ;;
    weird) a=(-H "Authorization: Bearer $WEIRD_TOKEN") ;;
    jwt) a=(-H "Authorization: Bearer $(cat "$WORK/jwt")") ;;
    none) a=() ;;
    esac
    sg_post "$proto" "$target" "$WORK/r/$name" -X "$method" "${a[@]+"${a[@]}"}" -H "$hdr" \
        -H 'Content-Type: application/json' --data-binary @"$WORK/b/$name"
    [[ $REQ_CODE != 000 ]] || fail "$name: no answer ($(head -c 300 "$WORK/r/$name.err"))"
    want=1.1
    [[ $proto == http2 ]] && want=2
    assert_eq "$want" "$REQ_VER" "$name: HTTP version of the answer"
    if [[ $expect == allow ]]; then
        assert_eq 200 "$REQ_CODE" "$name: status; body $(head -c 300 "$WORK/r/$name.body")"
        assert_eq "ManagedObjectReference SmsTask" \
            "$(json_eval "$WORK/r/$name.body" 'd["_typeName"] + " " + d["type"]')" "$name: answer"
        NALLOW=$((NALLOW + 1))
        echo "   $name: $REQ_CODE $(json_eval "$WORK/r/$name.body" 'd["value"]')"
    else
        [[ $REQ_CODE =~ ^(500|400|405|413|417)$ ]] || fail "$name: status $REQ_CODE, expected a 500, 400, 405, 413 or 417 fault"
        assert_vim_fault "$WORK/r/$name.body" "$WORK/r/$name.hdr" '[A-Za-z]+' "$name"
        echo "   $name: $REQ_CODE $FAULT_TYPE"
    fi
    printf '%s\t%s\n' "$name" "$REQ_CODE" >>"$WORK/results.tsv"
done 3<"$WORK/cases.tsv"

check "the simulator received exactly the $NALLOW allowed requests, each once"
sleep 0.2
python3 - "$WORK/cases.json" "$SIM_RECORD" <<'PY' || fail "the simulator's record does not match the allowed requests"
import json, sys
cases = json.load(open(sys.argv[1]))
recs = [json.loads(l) for l in open(sys.argv[2], "rb") if l.strip()]
stop = [r for r in recs if r["path"].endswith("/TestFailoverReplicationGroupStop_Task")]
bad = 0
for c in cases:
    n = sum(1 for r in stop if "/%s/" % c["moid"] in r["path"])
    want = 1 if c["expect"] == "allow" else 0
    if n != want:
        print("   %s: recorded %d time(s), expected %d" % (c["name"], n, want)); bad = 1
if len(stop) != sum(1 for c in cases if c["expect"] == "allow"):
    print("   %d stop-test requests recorded" % len(stop)); bad = 1
sys.exit(bad)
PY

# ---------------------------------------------------------------------------------------
# Every guarded request waits for the writer thread, so it asks for a better scheduling
# weight than the event loops (proxy/audit.c audit_priority); that needs CAP_SYS_NICE.
check "the audit writer runs at nice -10 when it may, and says which"
if grep -q "audit writer at nice -10" "$SG_LOG"; then
    # field 19 of /proc/PID/task/TID/stat is the thread's nice value
    nices=$(for f in /proc/"$SG_PID"/task/*/stat; do sed 's/^.*) //' "$f" | awk '{ print $17 }'; done | sort -n | uniq -c | tr '\n' ' ')
    grep -q -- '-10' <<<"$nices" || fail "the log says nice -10 but the threads' nice values are: $nices"
    [[ $(id -u) == 0 ]] || echo "   (not root, but allowed to raise priority: CAP_SYS_NICE)"
elif grep -q "audit writer at the process's priority" "$SG_LOG"; then
    [[ $(id -u) != 0 ]] || fail "running as root, yet the audit writer could not raise its priority: $(grep 'audit writer' "$SG_LOG")"
else
    fail "smsguard did not log the audit writer's priority"
fi

# ---------------------------------------------------------------------------------------
check "SIGTERM: smsguard flushes the audit log and exits 0"
kill -TERM "$SG_PID"
deadline=$((SECONDS + 10))
while is_alive "$SG_PID" && ((SECONDS < deadline)); do sleep 0.05; done
is_alive "$SG_PID" && fail "smsguard still runs 10 s after SIGTERM"
st=0
wait "$SG_PID" || st=$?
forget_pid "$SG_PID"
assert_eq 0 "$st" "smsguard's exit status after SIGTERM"
echo "   $(wc -l <"$AUDIT") line(s), $(stat -c %s "$AUDIT") bytes"

check "the chain: one JSON object a line, seq +1 from 1, prev = sha256 of the previous line"
python3 - "$AUDIT" <<'PY' || fail "the audit file's chain is broken (see above)"
import hashlib, json, re, sys
data = open(sys.argv[1], "rb").read()
if not data.endswith(b"\n"):
    print("   the file does not end with a newline"); sys.exit(1)
prev = "0" * 64
bad = 0
for i, raw in enumerate(data[:-1].split(b"\n"), 1):
    h = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8")  # strict: invalid UTF-8 fails
        d = json.loads(text)        # strict: raw control characters in strings fail
    except ValueError as e:
        print("   line %d is not one JSON object of valid UTF-8: %s: %r" % (i, e, raw[:300])); bad = 1
        prev = h
        continue
    if not isinstance(d, dict):
        print("   line %d is not an object" % i); bad = 1; continue
    m = re.match(r'\{"seq":([1-9][0-9]*),"prev":"([0-9a-f]{64})",', text)
    if not m:
        print("   line %d does not start with {\"seq\":N,\"prev\":\"H\",: %r" % (i, text[:100])); bad = 1
    if d.get("seq") != i:
        print("   line %d: seq %r, expected %d" % (i, d.get("seq"), i)); bad = 1
    if d.get("prev") != prev:
        print("   line %d: prev %r, expected %s" % (i, d.get("prev"), prev)); bad = 1
    if any(ord(ch) < 0x20 for ch in text):
        print("   line %d holds a raw control character" % i); bad = 1
    prev = h
print("   %d lines chained" % i)
sys.exit(bad)
PY
# the same with sha256sum alone, on one line: line 3's bytes hash to line 4's prev
spot=$(sed -n 3p "$AUDIT" | tr -d '\n' | sha256sum | cut -c1-64)
assert_eq "$spot" "$(sed -n 4p "$AUDIT" | python3 -c 'import json,sys; print(json.loads(sys.stdin.buffer.read())["prev"])')" \
    "sha256sum of line 3 against line 4's prev"

check "no token appears in the audit file"
for t in "$SG_TOKEN" "$OTHER_TOKEN" "$WEIRD_TOKEN" "$(cat "$WORK/jwt")" "$(cut -d. -f3 "$WORK/jwt")" Bearer; do
    ! grep -qF -- "$t" "$AUDIT" || fail "the audit file holds a token or credential: ${t:0:40}..."
done

check "one decision record per request, one outcome per forwarded one, with the right members"
python3 - "$WORK" "$AUDIT" "$SIM_RECORD" <<'PY' || fail "the audit records are wrong (see above)"
import json, re, sys
W, audit, simrec = sys.argv[1:4]
cases = json.load(open(W + "/cases.json"))
res = dict(l.rstrip("\n").split("\t") for l in open(W + "/results.tsv"))
recs = [json.loads(l) for l in open(audit, "rb")]
sims = [json.loads(l) for l in open(simrec, "rb") if l.strip()]
PRINC = {"subject": "tester", "tenant": "t1", "token_id": "test", "auth": "static"}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
errs = []
def err(c, msg):
    errs.append("%s: %s" % (c["name"] if c else "-", msg))

for r in recs:
    if r.get("stage") not in ("decision", "outcome"):
        err(None, "seq %s: stage %r (no signing key: decision or outcome only)" % (r.get("seq"), r.get("stage")))
    if not isinstance(r.get("time"), str) or not TIME.match(r["time"]):
        err(None, "seq %s: time %r is not RFC 3339 UTC with microseconds" % (r.get("seq"), r.get("time")))
    if not isinstance(r.get("request_id"), str) or not r["request_id"]:
        err(None, "seq %s: no request_id" % r.get("seq"))

matched = set()
noprov = []
rids = set()
for c in cases:
    body = json.load(open("%s/r/%s.body" % (W, c["name"]), "rb"))
    code = res[c["name"]]
    dec = [r for r in recs if r.get("provider") == c["moid"] and r.get("stage") == "decision"]
    if c["noprov"] is True or (c["noprov"] == "maybe" and not dec):
        # refused before the route was matched: no provider in the record; counted below
        if c["noprov"] == "maybe":
            print("   %s: no decision record names its provider; looked for among those "
                  "without one" % c["name"])
        noprov.append(c)
        continue
    out = [r for r in recs if r.get("provider") == c["moid"] and r.get("stage") == "outcome"]
    matched.update(r["seq"] for r in dec + out)
    if len(dec) != 1:
        err(c, "%d decision records, expected 1" % len(dec)); continue
    d = dec[0]
    if d["request_id"] in rids:
        err(c, "request_id %s used by another request" % d["request_id"])
    rids.add(d["request_id"])
    allowed = c["expect"] == "allow"
    if d.get("decision") != ("allow" if allowed else "deny"):
        err(c, "decision %r" % d.get("decision"))
    want_fault = None if allowed else body.get("_typeName")
    if d.get("fault") != want_fault:
        err(c, "fault %r, the client got %r" % (d.get("fault"), want_fault))
    if not allowed and not re.fullmatch(c["fault"], str(d.get("fault"))):
        err(c, "fault %r, expected %s" % (d.get("fault"), c["fault"]))
    if not isinstance(d.get("reason"), str) or not d["reason"]:
        err(c, "reason %r is not a non-empty string" % d.get("reason"))
    if c["principal"] == "any" and d.get("principal") not in (None, PRINC):
        err(c, "principal %r, expected null or the token's" % (d.get("principal"),))
    if d.get("release") != "8.0.3.0":
        err(c, "release %r" % d.get("release"))
    # the vCenter (one-vCenter form: "default"), right after who asked
    keys = list(d)
    if d.get("upstream") != "default" or "principal" not in keys or \
            keys[keys.index("principal") + 1:keys.index("principal") + 2] != ["upstream"]:
        err(c, "upstream %r at %s, expected \"default\" after principal" % (d.get("upstream"), keys))
    cl = d.get("client") or {}
    if cl.get("addr") != "127.0.0.1" or not re.fullmatch(r"TLSv1\.[23]", str(cl.get("tls"))) \
            or "cert_subject" not in cl or cl.get("cert_subject") is not None:
        err(c, "client %r" % (cl,))
    if c["principal"] != "any" and d.get("principal") != c["principal"]:
        err(c, "principal %r, expected %r" % (d.get("principal"), c["principal"]))
    g = c["groups"]
    if g == "none-or-empty":
        if d.get("groups") not in (None, []):
            err(c, "groups %r, expected null or []" % (d.get("groups"),))
    elif g == "any":
        if not (d.get("groups") is None or isinstance(d.get("groups"), list)):
            err(c, "groups %r" % (d.get("groups"),))
    elif d.get("groups") != g:
        err(c, "groups %r, expected %r" % (d.get("groups"), g))
    if c["groups"] not in (None, "any", "none-or-empty") and d.get("force") != c["force"]:
        err(c, "force %r, expected %r" % (d.get("force"), c["force"]))
    if allowed:
        if len(out) != 1:
            err(c, "%d outcome records, expected 1" % len(out)); continue
        o = out[0]
        if o.get("request_id") != d["request_id"]:
            err(c, "outcome request_id %r, decision's %r" % (o.get("request_id"), d["request_id"]))
        if not o["seq"] > d["seq"]:
            err(c, "outcome seq %d not after decision seq %d" % (o["seq"], d["seq"]))
        up = o.get("upstream") or {}
        if list(up)[:1] != ["name"] or up.get("name") != "default":
            err(c, "outcome upstream %r, expected {\"name\":\"default\",...}" % (up,))
        if up.get("status") != 200:
            err(c, "upstream.status %r" % up.get("status"))
        if up.get("task") != body.get("value"):
            err(c, "upstream.task %r, the client got %r" % (up.get("task"), body.get("value")))
        if not isinstance(up.get("duration_ms"), (int, float)) or isinstance(up.get("duration_ms"), bool) \
                or up["duration_ms"] < 0:
            err(c, "upstream.duration_ms %r" % up.get("duration_ms"))
        if o.get("fault") is not None:
            err(c, "outcome fault %r for a 200" % o.get("fault"))
        sim = [s for s in sims if "/%s/" % c["moid"] in s["path"]]
        if len(sim) == 1:
            if not d["time"] <= sim[0]["time"] <= o["time"]:
                err(c, "times: decision %s, simulator %s, outcome %s (decision must come first)"
                    % (d["time"], sim[0]["time"], o["time"]))
        else:
            err(c, "the simulator recorded it %d times" % len(sim))
    elif out:
        err(c, "%d outcome record(s) for a refused request" % len(out))

# refused targets: one deny decision each, with the fault the client got, no outcome
route = noprov
rest = [r for r in recs if r["seq"] not in matched]
for r in rest:
    if r.get("stage") != "decision" or r.get("decision") != "deny" or r.get("fault") != "InvalidRequest" \
            or not r.get("reason") or (r.get("client") or {}).get("addr") != "127.0.0.1" \
            or "upstream" not in r or r["upstream"] not in (None, "default"):
        err(None, "record seq %d matches no request: %s" % (r["seq"], json.dumps(r)[:400]))
if len(rest) != len(route):
    err(None, "%d records without a provider for the %d requests refused before the route "
        "matched (%s), expected one each" % (len(rest), len(route), ", ".join(c["name"] for c in route)))
for c in route:
    body = json.load(open("%s/r/%s.body" % (W, c["name"]), "rb"))
    if body.get("_typeName") != "InvalidRequest":
        err(c, "the client got %r" % body.get("_typeName"))
n_dec = sum(1 for r in recs if r.get("stage") == "decision")
n_out = sum(1 for r in recs if r.get("stage") == "outcome")
print("   %d decision records for %d requests, %d outcome records for %d forwarded" % (
    n_dec, len(cases), n_out, sum(1 for c in cases if c["expect"] == "allow")))
if n_dec != len(cases):
    errs.append("%d decision records for %d requests" % (n_dec, len(cases)))
for e in errs:
    print("   " + e)
sys.exit(1 if errs else 0)
PY

check "what the injection attempts left: each record one line, the strings intact"
python3 - "$AUDIT" <<'PY'
import json, sys
for l in open(sys.argv[1], "rb"):
    d = json.loads(l)
    p = d.get("provider") or ""
    if d.get("stage") == "decision" and any(k in p for k in ("-inj", "-jwtsub", "-weird")):
        print("   %-20s groups=%s principal.subject=%s" % (p, json.dumps(d.get("groups"))[:110],
              json.dumps((d.get("principal") or {}).get("subject"))))
PY

check "smsguard-audit verify says ok"
audit_verify "$AUDIT"
echo "   $AV_OUT"
assert_eq 0 "$AV_RC" "smsguard-audit verify exit status ($AV_OUT)"
assert_match '^ok' "$AV_OUT" "smsguard-audit verify output"

echo "PASS: $TEST_NAME"
