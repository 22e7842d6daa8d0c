#!/usr/bin/env bash
# 57_approve_tool: smsguard-approve(1) signs four-eyes approvals that an outside
# implementation accepts (policy/approval.h, issue 19 item 4). With an Ed25519 and a P-256
# key made by openssl: the statement is a compact JWS whose header and payload are the
# documented ones, whose signature verifies with Python's cryptography and with the openssl
# command line (both when cryptography is installed; openssl alone otherwise), and whose
# "dig" is the digest --digest prints. That digest, and the text --canonical prints, are
# compared with a Python reimplementation of the canonical form documented in approval.h
# and smsguard-approve(1): the body's escapes resolved, repeated groups once, sorted; ids
# holding "/" kept apart by the lengths. Each bound part (group set, force, ticket,
# upstream, method) changes the digest. Other rows of the operation table (a failover with
# its groups inside failoverParam, a sync with pitName) are read with their own schema and
# give the same form, force false. Requests the gateway would refuse (a body that is not
# the operation's, a path that is no operation of the table, a refused spelling) exit 1
# and print nothing; usage errors and keys of the wrong type exit 2.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APPROVE=${SMSGUARD_APPROVE:-$SG_SOURCE_DIR/build/smsguard-approve}
[[ -x $APPROVE ]] || fail "SMSGUARD_APPROVE=$APPROVE is not an executable"

{
    openssl genpkey -algorithm ed25519 -out "$WORK/ed.key" &&
        openssl pkey -in "$WORK/ed.key" -pubout -out "$WORK/ed.pub" &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ec.key" &&
        openssl pkey -in "$WORK/ec.key" -pubout -out "$WORK/ec.pub" &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$WORK/p384.key" &&
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$WORK/rsa.key"
} >"$WORK/keys.out" 2>&1 || { cat "$WORK/keys.out" >&2; fail "openssl could not make the keys"; }

P=/sdk/vim25/8.0.1.0/sms/VasaProvider/vasa-1/TestFailoverReplicationGroupStop_Task
# Escapes (\u002f is "/", \u00e9 is e-acute), a repeat, and ids that differ only in where
# the "/" is: ("a/b", "c") and ("a", "b/c").
cat >"$WORK/body.json" <<'JSON'
{"groupId":[{"faultDomainId":{"id":"fd-2"},"deviceGroupId":{"id":"dg\u002f1"}},
 {"_typeName":"ReplicationGroupId","faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-\u00e9"}},
 {"faultDomainId":{"id":"fd-2"},"deviceGroupId":{"id":"dg/1"}},
 {"faultDomainId":{"id":"a/b"},"deviceGroupId":{"id":"c"}},
 {"faultDomainId":{"id":"a"},"deviceGroupId":{"id":"b/c"}}],
 "force":true}
JSON

# The reimplementation: what a person following the documentation would write.
cat >"$WORK/approval.py" <<'PY'
import base64, hashlib, json, subprocess, sys

def canonical(upstream, path, body, ticket):
    parts = path.split("/")
    assert parts[:3] == ["", "sdk", "vim25"] and parts[4:6] == ["sms", "VasaProvider"], path
    release, moid, method = parts[3], parts[6], parts[7]
    b = json.loads(body)
    # Where each operation's body names its groups (smsguard-approve(1), filters/ops.c).
    if method == "FailoverReplicationGroup_Task":
        groups = [d["groupId"] for d in b["failoverParam"]["replicationGroupsToFailover"]]
    else:
        groups = b["groupId"]
    pairs = sorted(set((g["faultDomainId"]["id"].encode(), g["deviceGroupId"]["id"].encode())
                       for g in groups))
    def f(k, v):
        v = v.encode() if isinstance(v, str) else v
        return k.encode() + b":" + str(len(v)).encode() + b":" + v + b"\n"
    t = b"smsguard-approval-v1\n" + f("upstream", upstream) + f("release", release)
    t += f("provider", moid) + f("method", method)
    # Only the stop call has a force; for the others it is false.
    t += b"force:" + (b"true" if b.get("force") else b"false") + b"\n" + f("ticket", ticket or "")
    t += b"groups:" + str(len(pairs)).encode() + b"\n"
    for fd, dg in pairs:
        t += b"group:" + str(len(fd)).encode() + b":" + fd + b"/" + str(len(dg)).encode() + b":" + dg + b"\n"
    return t

def b64d(s):
    assert "=" not in s and "+" not in s and "/" not in s, s
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b

def verify_openssl(alg, pub, signing_input, sig, work):
    with open(work + "/input", "wb") as fh:
        fh.write(signing_input)
    if alg == "EdDSA":
        with open(work + "/sig", "wb") as fh:
            fh.write(sig)
        cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
               "-in", work + "/input", "-sigfile", work + "/sig"]
    else:  # R || S to the DER openssl reads
        body = der_int(sig[:32]) + der_int(sig[32:])
        with open(work + "/sig", "wb") as fh:
            fh.write(b"\x30" + bytes([len(body)]) + body)
        cmd = ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", work + "/sig",
               work + "/input"]
    r = subprocess.run(cmd, capture_output=True)
    return r.returncode == 0

def verify_cryptography(alg, pub, signing_input, sig):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    with open(pub, "rb") as fh:
        key = serialization.load_pem_public_key(fh.read())
    try:
        if alg == "EdDSA":
            key.verify(sig, signing_input)
        else:
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False

def main():
    cmd = sys.argv[1]
    if cmd == "canonical":  # upstream path bodyfile ticket -> the text on stdout
        with open(sys.argv[4], "rb") as fh:
            sys.stdout.buffer.write(canonical(sys.argv[2], sys.argv[3], fh.read(), sys.argv[5]))
    elif cmd == "digest":
        with open(sys.argv[4], "rb") as fh:
            print(hashlib.sha256(canonical(sys.argv[2], sys.argv[3], fh.read(), sys.argv[5])).hexdigest())
    elif cmd == "check":  # jws alg name pubkey digest_hex expires_in jti work
        jws, alg, name, pub, dig, expires, jti, work = sys.argv[2:10]
        h, p, s = jws.split(".")
        hdr, pay, sig = json.loads(b64d(h)), json.loads(b64d(p)), b64d(s)
        assert hdr == {"alg": alg, "kid": name, "typ": "smsguard-approval+jwt"}, hdr
        assert sorted(pay) == ["dig", "exp", "iat", "jti", "sub"], pay
        assert b64d(pay["dig"]).hex() == dig, (pay["dig"], dig)
        assert pay["exp"] - pay["iat"] == int(expires), pay
        assert pay["sub"] == name and (jti == "-" or pay["jti"] == jti), pay
        assert len(sig) == 64, len(sig)
        signing = (h + "." + p).encode()
        ways = []
        assert verify_openssl(alg, pub, signing, sig, work), "openssl: bad signature"
        ways.append("openssl")
        try:
            import cryptography  # noqa: F401
        except ImportError:
            pass
        else:
            assert verify_cryptography(alg, pub, signing, sig), "cryptography: bad signature"
            ways.append("cryptography")
        # A changed signing input fails both ways: the verifiers do verify.
        bad = signing[:-1] + (b"A" if signing[-1:] != b"A" else b"B")
        assert not verify_openssl(alg, pub, bad, sig, work), "openssl accepted a changed payload"
        if "cryptography" in ways:
            assert not verify_cryptography(alg, pub, bad, sig), "cryptography accepted it"
        print(" and ".join(ways))
main()
PY

approve() { "$APPROVE" "$@"; }

check "--canonical and --digest are the documented form (Python reimplementation)"
approve --canonical --upstream vc-east --ticket CHG-1 "$P" "$WORK/body.json" >"$WORK/canon.c" ||
    fail "--canonical exited $?"
python3 "$WORK/approval.py" canonical vc-east "$P" "$WORK/body.json" CHG-1 >"$WORK/canon.py"
cmp "$WORK/canon.c" "$WORK/canon.py" || { diff "$WORK/canon.c" "$WORK/canon.py" >&2; fail "canonical texts differ"; }
sed 's/^/   /' "$WORK/canon.c"
assert_eq 4 "$(grep -c '^group:' "$WORK/canon.c")" "group lines (the repeat once)"
DIG=$(approve --digest --upstream vc-east --ticket CHG-1 "$P" "$WORK/body.json")
assert_match '^[0-9a-f]{64}$' "$DIG" "--digest"
assert_eq "$(python3 "$WORK/approval.py" digest vc-east "$P" "$WORK/body.json" CHG-1)" "$DIG" \
    "digest against Python"
assert_eq "$DIG" "$(sha256sum "$WORK/canon.c" | cut -d' ' -f1)" "digest = sha256sum of the text"
assert_eq "$DIG" "$(approve --digest --upstream vc-east --ticket CHG-1 "$P" - <"$WORK/body.json")" \
    "digest of the body on standard input"
echo "   $DIG"

check "each bound part changes the digest"
sed 's/"force":true/"force":false/' "$WORK/body.json" >"$WORK/noforce.json"
sed 's/{"id":"c"}/{"id":"d"}/' "$WORK/body.json" >"$WORK/othergroups.json"
for v in "--ticket CHG-2 $P $WORK/body.json" "$P $WORK/body.json" \
    "--ticket CHG-1 $P $WORK/noforce.json" "--ticket CHG-1 $P $WORK/othergroups.json"; do
    # shellcheck disable=SC2086
    d=$(approve --digest --upstream vc-east $v)
    assert_ne "$DIG" "$d" "digest of: $v"
done
assert_ne "$DIG" "$(approve --digest --upstream vc-west --ticket CHG-1 "$P" "$WORK/body.json")" \
    "digest of another upstream"
assert_eq "$(python3 "$WORK/approval.py" digest vc-east "$P" "$WORK/noforce.json" "")" \
    "$(approve --digest --upstream vc-east "$P" "$WORK/noforce.json")" "no ticket, no force"

check "other operations of the table: their own body, the same canonical form"
V=/sdk/vim25/8.0.1.0/sms/VasaProvider/vasa-1
# A failover names its groups inside failoverParam (ReplicationGroupData.groupId), a sync at
# the root next to pitName; neither has a force.
cat >"$WORK/failover.json" <<'JSON'
{"_typeName":"FailoverReplicationGroupRequestType",
 "failoverParam":{"_typeName":"FailoverParam","isPlanned":true,"checkOnly":false,
  "replicationGroupsToFailover":[
   {"groupId":{"faultDomainId":{"id":"fd-9"},"deviceGroupId":{"id":"dg-2"}}},
   {"groupId":{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg\u002f3"}},
    "pitId":{"id":"pit-7"}},
   {"groupId":{"faultDomainId":{"id":"fd-9"},"deviceGroupId":{"id":"dg-2"}}}]}}
JSON
cat >"$WORK/sync.json" <<'JSON'
{"groupId":[{"faultDomainId":{"id":"fd-2"},"deviceGroupId":{"id":"dg-1"}},
 {"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}],"pitName":"before-upgrade"}
JSON
for c in "FailoverReplicationGroup_Task:failover.json:2" "SyncReplicationGroup_Task:sync.json:2"; do
    IFS=: read -r m f n <<<"$c"
    approve --canonical --upstream vc-east --ticket CHG-9 "$V/$m" "$WORK/$f" >"$WORK/canon.c" ||
        fail "--canonical for $m exited $?"
    python3 "$WORK/approval.py" canonical vc-east "$V/$m" "$WORK/$f" CHG-9 >"$WORK/canon.py"
    cmp "$WORK/canon.c" "$WORK/canon.py" || { diff "$WORK/canon.c" "$WORK/canon.py" >&2; fail "$m: canonical texts differ"; }
    assert_contains "$(cat "$WORK/canon.c")" "method:${#m}:$m" "$m: method line"
    assert_contains "$(cat "$WORK/canon.c")" "force:false" "$m: force line"
    assert_eq "$n" "$(grep -c '^group:' "$WORK/canon.c")" "$m: group lines"
    d=$(approve --digest --upstream vc-east --ticket CHG-9 "$V/$m" "$WORK/$f")
    assert_eq "$(python3 "$WORK/approval.py" digest vc-east "$V/$m" "$WORK/$f" CHG-9)" "$d" \
        "$m: digest against Python"
    echo "   $m $d"
    JWS=$(approve --key "$WORK/ed.key" --name alice --upstream vc-east --ticket CHG-9 \
        --jti "$m" "$V/$m" "$WORK/$f")
    python3 "$WORK/approval.py" check "$JWS" EdDSA alice "$WORK/ed.pub" "$d" 3600 "$m" "$WORK" \
        >/dev/null || fail "$m: the statement does not check out"
done
# The method is bound: the same groups under another method are another digest.
assert_ne "$(approve --digest --upstream vc-east "$V/SyncReplicationGroup_Task" "$WORK/sync.json")" \
    "$(approve --digest --upstream vc-east "$V/ReverseReplicateGroup_Task" - <<<'{"groupId":[{"faultDomainId":{"id":"fd-2"},"deviceGroupId":{"id":"dg-1"}},{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"dg-1"}}]}')" \
    "sync and reverse of the same groups"

check "an Ed25519 statement verifies outside smsguard"
JWS=$(approve --key "$WORK/ed.key" --name alice --upstream vc-east --ticket CHG-1 \
    --expires-in 1800 --jti change-42 "$P" "$WORK/body.json")
assert_match '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "$JWS" "compact JWS"
ways=$(python3 "$WORK/approval.py" check "$JWS" EdDSA alice "$WORK/ed.pub" "$DIG" 1800 change-42 "$WORK") ||
    fail "the Ed25519 statement does not check out"
echo "   verified with $ways"

check "an ES256 statement verifies outside smsguard (default expiry, random jti)"
JWS=$(approve --key "$WORK/ec.key" --name bob --upstream vc-east --ticket CHG-1 "$P" - <"$WORK/body.json")
ways=$(python3 "$WORK/approval.py" check "$JWS" ES256 bob "$WORK/ec.pub" "$DIG" 3600 - "$WORK") ||
    fail "the ES256 statement does not check out"
echo "   verified with $ways"
JWS2=$(approve --key "$WORK/ec.key" --name bob --upstream vc-east --ticket CHG-1 "$P" "$WORK/body.json")
jti() { python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p+"="*(-len(p)%4)))["jti"])' "$1"; }
assert_ne "$(jti "$JWS")" "$(jti "$JWS2")" "two random jtis"

check "requests the gateway would refuse: exit 1, nothing on stdout"
echo '{"groupId":[],"force":false}' >"$WORK/empty.json"
echo '{"groupId":[{"faultDomainId":{"id":"f"},"deviceGroupId":{"id":"d"}}],"force":false,"x":1}' >"$WORK/extra.json"
for c in "$P $WORK/empty.json:groupId" "$P $WORK/extra.json:x" \
    "/sdk/vim25/8.0.1.0/sms/VasaProvider/vasa-1/QueryReplicationGroup $WORK/body.json:force: Unknown member" \
    "/sdk/vim25/8.0.1.0/sms/VasaProvider/vasa-1/SyncReplicationGroup_Task $WORK/body.json:force: Unknown member" \
    "/sdk/vim25/8.0.1.0/sms/VasaProvider/vasa-1/FailoverReplicationGroup_Task $WORK/sync.json:groupId: Unknown member" \
    "/sdk/vim25/8.0.1.0/sms/SmsTask/task-1/QuerySmsTaskInfo $WORK/body.json:not an operation" \
    "/sdk/vim25/8.0.1.0/sms/VasaProvider/vasa-1/QueryProviderInfo $WORK/body.json:not an operation" \
    "/sdk/vim25/8.0.1.0/sms/VasaProvider/vasa-1/../x/TestFailoverReplicationGroupStop_Task $WORK/body.json:refused"; do
    rc=0
    # shellcheck disable=SC2086
    out=$(approve --key "$WORK/ed.key" --name alice --upstream vc-east ${c%%:*} 2>"$WORK/err") || rc=$?
    assert_eq 1 "$rc" "exit status for ${c%%:*}"
    assert_eq "" "$out" "stdout for ${c%%:*}"
    assert_contains "$(cat "$WORK/err")" "${c##*:}" "stderr for ${c%%:*}"
    echo "   $(cat "$WORK/err")"
done

check "usage errors and keys of the wrong type: exit 2"
for a in "--upstream vc-east $P $WORK/body.json" \
    "--key $WORK/ed.key --upstream vc-east $P $WORK/body.json" \
    "--digest --key $WORK/ed.key --upstream vc-east $P $WORK/body.json" \
    "--key $WORK/ed.key --name alice --upstream vc-east --expires-in 0 $P $WORK/body.json" \
    "--key $WORK/rsa.key --name alice --upstream vc-east $P $WORK/body.json" \
    "--key $WORK/p384.key --name alice --upstream vc-east $P $WORK/body.json" \
    "--key $WORK/ed.pub --name alice --upstream vc-east $P $WORK/body.json" \
    "--key $WORK/ed.key --name alice --upstream vc-east $P $WORK/missing.json"; do
    rc=0
    # shellcheck disable=SC2086
    out=$(approve $a 2>/dev/null) || rc=$?
    assert_eq 2 "$rc" "exit status for: $a"
    assert_eq "" "$out" "stdout for: $a"
done
assert_eq "smsguard-approve $(cut -d' ' -f2 <<<"$("$SMSGUARD" --version)")" "$(approve --version)" \
    "--version"

echo "PASS: $TEST_NAME"
