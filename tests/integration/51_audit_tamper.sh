#!/usr/bin/env bash
# 51_audit_tamper: the audit log is tamper-evident (docs/design.md "Audit log"; issue 5), and
# rotation keeps one chain. smsguard writes 20+ records with an Ed25519 signing key and a
# checkpoint every 5 records; the checkpoints are checked by hand (key id, signature with
# openssl). Then SIGUSR1 after mv (log rotation): the new file continues the chain (first prev
# = SHA-256 of the old file's last line, seq +1) and `smsguard-audit verify OLD NEW` passes.
# Copies of the good file, each changed one way, are given to `smsguard-audit verify`:
#   edit one byte, delete a line, swap two lines, insert a copy, insert a forged line, cut a
#   middle line short, join two lines, edit a checkpoint -> exit 1 naming the line and why;
#   a torn last line (crash) -> exit 0 with a note; a torn line in a file that is not the
#   last -> exit 1; the tail rewritten with recomputed hashes -> exit 0 without --key
#   (sha256 alone cannot see it) but exit 1 "bad checkpoint signature" with --key; the good
#   file with another key -> exit 1.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -x $SMSGUARD_AUDIT ]] || fail "SMSGUARD_AUDIT=$SMSGUARD_AUDIT is not an executable"

AUDIT=$WORK/audit.log
OLD=$WORK/audit.log.1
{
    openssl genpkey -algorithm ed25519 -out "$WORK/sign.key" &&
        openssl pkey -in "$WORK/sign.key" -pubout -out "$WORK/sign.pub" &&
        openssl genpkey -algorithm ed25519 -out "$WORK/other.key" &&
        openssl pkey -in "$WORK/other.key" -pubout -out "$WORK/other.pub"
} >"$WORK/openssl-keys.out" 2>&1 || { cat "$WORK/openssl-keys.out" >&2; fail "openssl could not make Ed25519 keys"; }

GUARD_SETTINGS=("extra=audit = { file = \"$AUDIT\"; sync = \"always\"; fail_closed = true;
  signing_key = \"$WORK/sign.key\"; checkpoint_every = 5; };")
start_all

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }
mkdir -p "$WORK/c"

# allowed PROTO MOID: one allowed stop-test request, answered 200 with an SmsTask.
allowed() {
    stop_post "$1" "$2" "$WORK/c/$2"
    assert_eq 200 "$REQ_CODE" "$2 over $1: status; body $(head -c 300 "$WORK/c/$2.body")"
}

check "12 allowed stop-test requests and 2 refused ones over both protocols"
for i in $(seq 1 6); do
    for proto in http1.1 http2; do
        allowed "$proto" "vasa-t$i-$(tag "$proto")"
    done
done
for proto in http1.1 http2; do
    sg_post "$proto" "/sdk/vim25/8.0.3.0/sms/VasaProvider/vasa-deny-$(tag "$proto")/TestFailoverReplicationGroupStop_Task" \
        "$WORK/c/deny" -H 'Content-Type: application/json' --data-binary '{"groupId":[],"force":false}'
    assert_eq 500 "$REQ_CODE" "refused request over $proto: status"
done
sleep 0.2
read -r n first last <<<"$(audit_chain_check "$AUDIT")"
echo "   $n lines, seq $first..$last"
assert_le 31 "$n" "lines in the audit file (26 records and 5 checkpoints)"

check "checkpoints: one after every 5 records, key id and Ed25519 signature over prev"
KEYID=$(openssl pkey -pubin -in "$WORK/sign.pub" -outform DER | sha256sum | cut -c1-16)
python3 - "$AUDIT" "$KEYID" "$WORK/cp" <<'PY' || fail "the checkpoints are not as docs/design.md says"
import base64, hashlib, json, re, sys
f, keyid, out = sys.argv[1:4]
lines = open(f, "rb").read().split(b"\n")[:-1]
since = 0
n = 0
bad = 0
for i, raw in enumerate(lines, 1):
    d = json.loads(raw)
    if d.get("stage") != "checkpoint":
        since += 1
        if since > 5:
            print("   line %d: %d records since the last checkpoint" % (i, since)); bad = 1
        continue
    n += 1
    if since != 5:
        print("   line %d: a checkpoint after %d records, expected 5" % (i, since)); bad = 1
    since = 0
    if d.get("prev") != hashlib.sha256(lines[i - 2]).hexdigest():
        print("   line %d: prev is not the hash of the line before" % i); bad = 1
    if d.get("key") != keyid:
        print("   line %d: key %r, expected %s" % (i, d.get("key"), keyid)); bad = 1
    sig = d.get("sig", "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{86}", sig):
        print("   line %d: sig %r is not 64 bytes base64url without padding" % (i, sig)); bad = 1
        continue
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", str(d.get("time"))):
        print("   line %d: time %r" % (i, d.get("time"))); bad = 1
    if n == 1:  # the first one is checked with openssl below
        open(out + ".msg", "wb").write(d["prev"].encode())
        open(out + ".sig", "wb").write(base64.urlsafe_b64decode(sig + "=="))
print("   %d checkpoints" % n)
if n < 5:
    print("   expected at least 5"); bad = 1
sys.exit(bad)
PY
openssl pkeyutl -verify -pubin -inkey "$WORK/sign.pub" -rawin -in "$WORK/cp.msg" \
    -sigfile "$WORK/cp.sig" >"$WORK/cp.out" 2>&1 || fail "openssl: the first checkpoint's signature does not verify: $(cat "$WORK/cp.out")"
echo "   openssl: $(head -n 1 "$WORK/cp.out")"

# ---------------------------------------------------------------------------------------
check "rotation: mv the file, SIGUSR1, more requests go to a new file that continues the chain"
mv "$AUDIT" "$OLD"
kill -USR1 "$SG_PID"
wait_file "$AUDIT" "audit file"
grep -q 'reopened' "$SG_LOG" || sleep 0.2
for proto in http1.1 http2; do
    allowed "$proto" "vasa-rot-$(tag "$proto")"
done
check "SIGTERM: exit 0, a last checkpoint"
stop_guard_term
read -r n1 first1 last1 <<<"$(audit_chain_check "$OLD")"
read -r n2 first2 last2 <<<"$(audit_chain_check "$AUDIT")"
echo "   old file: $n1 lines, seq $first1..$last1; new file: $n2 lines, seq $first2..$last2"
assert_eq $((last1 + 1)) "$first2" "the new file's first seq"
assert_eq "$(tail -n 1 "$OLD" | tr -d '\n' | sha256sum | cut -c1-64)" \
    "$(head -n 1 "$AUDIT" | python3 -c 'import json,sys; print(json.loads(sys.stdin.buffer.read())["prev"])')" \
    "the new file's first prev (sha256sum of the old file's last line)"
audit_chain_check "$OLD" "$AUDIT" >/dev/null
assert_eq 4 "$(python3 -c '
import json, sys
print(sum(1 for l in open(sys.argv[1], "rb") if json.loads(l).get("stage") in ("decision", "outcome")))' "$AUDIT")" \
    "records in the new file"
assert_eq checkpoint "$(tail -n 1 "$AUDIT" | python3 -c 'import json,sys; print(json.loads(sys.stdin.buffer.read())["stage"])')" \
    "the stage of the last line after a clean shutdown"

audit_verify "$OLD" "$AUDIT"
echo "   verify OLD NEW: $AV_RC: $(head -n 1 <<<"$AV_OUT")"
assert_eq 0 "$AV_RC" "verify OLD NEW ($AV_OUT)"
audit_verify "$OLD" "$AUDIT" --key "$WORK/sign.pub"
echo "   verify OLD NEW --key: $AV_RC: $(head -n 1 <<<"$AV_OUT")"
assert_eq 0 "$AV_RC" "verify OLD NEW --key ($AV_OUT)"
assert_contains "$AV_OUT" "signatures checked" "verify --key output"
audit_verify "$AUDIT" --key "$WORK/sign.pub"
echo "   verify NEW alone: $AV_RC: $(tr '\n' '|' <<<"$AV_OUT")"
assert_eq 0 "$AV_RC" "verify of the rotated-to file alone ($AV_OUT)"
audit_verify "$AUDIT" "$OLD"
echo "   verify NEW OLD (wrong order): $AV_RC: $(head -n 1 <<<"$AV_OUT")"
assert_eq 1 "$AV_RC" "verify of the files in the wrong order ($AV_OUT)"

# ---------------------------------------------------------------------------------------
check "tampering: copies of the old file, each changed one way"
GOOD=$OLD
mkdir -p "$WORK/t"
# python writes the copies and, in $WORK/t/cases, one line each: NAME EXPECTED_RC LINE WHY_REGEX
# (LINE a number or a|b alternatives, "-" for any; WHY a python regex)
python3 - "$GOOD" "$WORK/t" <<'PY'
import hashlib, json, sys
good, out = sys.argv[1:3]
data = open(good, "rb").read()
lines = data.split(b"\n")[:-1]
isc = [json.loads(l).get("stage") == "checkpoint" for l in lines]
H = lambda b: hashlib.sha256(b).hexdigest()
# L (1-based): a record in the middle with records on both sides (no checkpoint in L-1..L+2)
L = next(i for i in range(8, len(lines) - 8) if not any(isc[i - 2:i + 2]))
cases = []
def write(name, ls, rc, line, why, tail=b"\n"):
    open("%s/%s" % (out, name), "wb").write(b"\n".join(ls) + (tail if ls else b""))
    cases.append("%s %d %s %s" % (name, rc, line, why))

# edit one byte: a digit of the time (the line stays a valid record)
ls = list(lines)
t = ls[L - 1]
k = t.index(b'"time":"') + len(b'"time":"2026-01-01T00:00:0')
ls[L - 1] = t[:k] + bytes([((t[k] - 48 + 1) % 10) + 48]) + t[k + 1:]
assert len(ls[L - 1]) == len(t) and ls[L - 1] != t
write("edit-byte", ls, 1, L, "edited")
# edit one byte of the subject of a decision record after L (a letter)
D = next(i for i in range(L + 1, len(lines)) if b'"subject":"tester"' in lines[i - 1])
ls = list(lines)
t = ls[D - 1]
k = t.index(b'"tester"') + 3
ls[D - 1] = t[:k] + b"T" + t[k + 1:]
write("edit-subject", ls, 1, D, "edited")
# delete line L
write("delete", lines[:L - 1] + lines[L:], 1, L, "deleted")
# swap lines L and L+1
ls = list(lines)
ls[L - 1], ls[L] = ls[L], ls[L - 1]
write("swap", ls, 1, L, "reordered")
# insert a copy of line L after it
write("insert-copy", lines[:L] + [lines[L - 1]] + lines[L:], 1, L + 1, "inserted")
# insert a forged record that links to line L and has the next seq
d = json.loads(lines[L - 1])
forged = ('{"seq":%d,"prev":"%s","time":"%s","stage":"decision","request_id":"forged",'
          '"decision":"allow","fault":null,"reason":"allowed"}' % (d["seq"] + 1, H(lines[L - 1]), d["time"])).encode()
write("insert-forged", lines[:L] + [forged] + lines[L:], 1, "%d|%d" % (L + 1, L + 2), "inserted")
# cut a middle line short (its newline kept)
ls = list(lines)
ls[L - 1] = ls[L - 1][:len(ls[L - 1]) // 2]
write("cut-line", ls, 1, L, "not a record|truncated|edited")
# cut a middle line's tail and its newline: it runs into the next one
ls = list(lines)
ls[L - 1:L + 1] = [ls[L - 1][:len(ls[L - 1]) - 20] + ls[L]]
write("join-lines", ls, 1, L, "not a record|truncated|edited")
# a checkpoint line edited (a byte of its signature)
c = next(i for i in range(L, len(lines)) if isc[i - 1])
ls = list(lines)
t = ls[c - 1]
k = t.index(b'"sig":"') + 10
ls[c - 1] = t[:k] + (b"A" if t[k:k + 1] != b"A" else b"B") + t[k + 1:]
write("edit-checkpoint", ls, 1, "%d|%d" % (c - 1, c), "edited|bad checkpoint signature")
open(out + "/cp-line", "w").write(str(c))
# a torn last line: the newline and a few bytes gone (a crash while appending)
open(out + "/torn", "wb").write(data[:-12])
cases.append("torn 0 - -")
# rewrite the tail from line L, before the last checkpoint: another subject, every later
# prev recomputed (the checkpoints keep their old signatures: nobody else has the key)
last_cp = max(i for i in range(1, len(lines) + 1) if isc[i - 1])
assert D < last_cp
ls = list(lines)
ls[D - 1] = ls[D - 1].replace(b'"subject":"tester"', b'"subject":"mallory"')
assert ls[D - 1] != lines[D - 1]
for i in range(D, len(ls)):
    d = json.loads(ls[i])
    ls[i] = ls[i].replace(d["prev"].encode(), H(ls[i - 1]).encode(), 1)
write("rewrite-tail", ls, 0, "-", "-")
open(out + "/rewrite-cp", "w").write(str(next(i for i in range(D, len(lines) + 1) if isc[i - 1])))
open(out + "/cases", "w").write("\n".join(cases) + "\n")
open(out + "/L", "w").write(str(L))
PY
L=$(cat "$WORK/t/L")
echo "   the good file has $(wc -l <"$GOOD") lines; the middle line changed is line $L"
audit_verify "$GOOD" --key "$WORK/sign.pub"
assert_eq 0 "$AV_RC" "verify of the unchanged copy ($AV_OUT)"

while read -r -u 3 name rc line why; do
    f=$WORK/t/$name
    audit_verify "$f"
    first=$(head -n 1 <<<"$AV_OUT")
    echo "   $name: exit $AV_RC: ${first#"$WORK/t/"}"
    assert_eq "$rc" "$AV_RC" "verify of the '$name' copy: exit status ($AV_OUT)"
    if [[ $line != - ]]; then
        [[ $first =~ ^"$f":($line):\ .*($why) ]] ||
            fail "verify of the '$name' copy: expected '$f:<$line>: <$why>', got '$first'"
    fi
done 3<"$WORK/t/cases"

check "an edited checkpoint with the key: bad checkpoint signature at that line"
audit_verify "$WORK/t/edit-checkpoint" --key "$WORK/sign.pub"
first=$(head -n 1 <<<"$AV_OUT")
echo "   exit $AV_RC: ${first#"$WORK/t/"}"
assert_eq 1 "$AV_RC" "verify of the edited checkpoint with the key ($AV_OUT)"
assert_eq "$WORK/t/edit-checkpoint:$(cat "$WORK/t/cp-line"): bad checkpoint signature" "$first" \
    "verify of the edited checkpoint with the key"

check "a torn last line is reported as such"
audit_verify "$WORK/t/torn" --key "$WORK/sign.pub"
assert_eq 0 "$AV_RC" "verify of a file with a torn last line ($AV_OUT)"
assert_contains "$AV_OUT" "torn" "verify's note on a torn last line"
echo "   $(tr '\n' '|' <<<"${AV_OUT//"$WORK/t/"/}")"
audit_verify "$WORK/t/torn" "$AUDIT"
echo "   torn file followed by another: exit $AV_RC: $(head -n 1 <<<"${AV_OUT//"$WORK/"/}")"
assert_eq 1 "$AV_RC" "verify of a torn file that is not the last ($AV_OUT)"
assert_contains "$AV_OUT" "truncated in the middle" "verify of a torn file that is not the last"

check "the tail rewritten with recomputed hashes: sha256 alone cannot tell, the signatures can"
read -r n3 _ _ <<<"$(audit_chain_check "$WORK/t/rewrite-tail")"
echo "   python: the rewritten copy chains ($n3 lines)"
audit_verify "$WORK/t/rewrite-tail"
echo "   without --key: exit $AV_RC: $(head -n 1 <<<"$AV_OUT")"
assert_eq 0 "$AV_RC" "verify of the rewritten tail without a key ($AV_OUT)"
audit_verify "$WORK/t/rewrite-tail" --key "$WORK/sign.pub"
first=$(head -n 1 <<<"$AV_OUT")
echo "   with --key: exit $AV_RC: ${first#"$WORK/t/"}"
assert_eq 1 "$AV_RC" "verify of the rewritten tail with the key ($AV_OUT)"
assert_eq "$WORK/t/rewrite-tail:$(cat "$WORK/t/rewrite-cp"): bad checkpoint signature" "$first" "verify of the rewritten tail with the key"

check "the good file with another public key: bad checkpoint signature"
audit_verify "$GOOD" --key "$WORK/other.pub"
first=$(head -n 1 <<<"$AV_OUT")
echo "   exit $AV_RC: ${first#"$WORK/"}"
assert_eq 1 "$AV_RC" "verify with another key ($AV_OUT)"
assert_contains "$first" "bad checkpoint signature" "verify with another key"

echo "PASS: $TEST_NAME"
