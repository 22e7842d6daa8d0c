#!/usr/bin/env bash
# 40_authn: who may call a guarded route at all (docs/design.md "The chain on guarded
# routes", authenticate). `Authorization: Bearer <token>` carries a static
# token (configured by SHA-256) or a compact JWS JWT (RS256, ES256, EdDSA, HS256, the key
# chosen by kid and its alg fixed by the configuration; exp, nbf with leeway, iss, aud).
# Anything else - no header, another scheme, an empty or unknown token, two headers, a
# token that is expired, not yet valid, for another issuer or audience, badly signed,
# unsigned, signed with an algorithm other than its key's, for an unknown kid or cut short -
# gets 500 NotAuthenticated (privilegeId "", object the VasaProvider) and nothing reaches
# the simulator. An accepted request arrives upstream without Authorization and with the
# client's vmware-api-session-id unchanged; with sms-sim --require-session a session from
# Login through smsguard is what authenticates the call upstream. A key or static token
# taken out of the policy by SIGHUP is refused at once, even for a JWT verified (and cached)
# before; a configuration that does not load leaves the running one in force.
# Every case over HTTP/1.1 and HTTP/2. smsguard runs with log level debug: each refusal's
# reason (policy/policy.h, filters/flt_authn.c) is checked too, so that a token is known to
# fail the check it was made for.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VP=/sdk/vim25/8.0.3.0/sms/VasaProvider
M=TestFailoverReplicationGroupStop_Task
LOGIN=/sdk/vim25/8.0.3.0/SessionManager/SessionManager/Login
PROTOS=(http1.1 http2)
declare -a REFUSED=()  # markers (moId and device group id) of requests never to be forwarded
ACCEPTED=0             # requests the simulator must have recorded
N=0                    # case counter for unique markers

tag() { [[ $1 == http2 ]] && echo h2 || echo h1; }

# ---------------------------------------------------------------------------------------
# Keys and tokens

K=$WORK/keys
mkdir -p "$K" "$WORK/tok"
{
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/rs.key" &&
        openssl pkey -in "$K/rs.key" -pubout -out "$K/rs.pub" &&
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/evil.key" &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/es.key" &&
        openssl pkey -in "$K/es.key" -pubout -out "$K/es.pub" &&
        openssl genpkey -algorithm ED25519 -out "$K/ed.key" &&
        openssl pkey -in "$K/ed.key" -pubout -out "$K/ed.pub" &&
        openssl rand -out "$K/hs.secret" 48
} >"$WORK/openssl-keys.out" 2>&1 || { cat "$WORK/openssl-keys.out" >&2; fail "openssl could not make the JWT keys"; }

# Every token this test uses, one file each in $WORK/tok, made now (times relative to now).
python3 - "$K" "$WORK/tok" <<'PY'
import base64, hashlib, hmac, json, os, subprocess, sys, time
K, OUT = sys.argv[1], sys.argv[2]
now = int(time.time())
ISS, AUD = "https://idp.test", "smsguard"

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def enc(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())

def der_to_raw(der):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s, 32 bytes each
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\x00")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out

def sign(how, data):
    if how == "rs":
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", K + "/rs.key"], input=data,
                              capture_output=True, check=True).stdout
    if how == "evil":
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", K + "/evil.key"], input=data,
                              capture_output=True, check=True).stdout
    if how in ("es", "es-der"):
        der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", K + "/es.key"], input=data,
                             capture_output=True, check=True).stdout
        return der if how == "es-der" else der_to_raw(der)
    if how == "ed":
        fn = OUT + "/.ed-input"
        open(fn, "wb").write(data)
        sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", K + "/ed.key", "-rawin",
                              "-in", fn], capture_output=True, check=True).stdout
        os.unlink(fn)
        return sig
    if how == "hs":
        return hmac.new(open(K + "/hs.secret", "rb").read(), data, hashlib.sha256).digest()
    if how == "hs-rsapub":  # algorithm confusion: the RSA public key PEM text as HMAC key
        return hmac.new(open(K + "/rs.pub", "rb").read(), data, hashlib.sha256).digest()
    if how == "empty":
        return b""
    raise ValueError(how)

ALG = {"rs": "RS256", "es": "ES256", "ed": "EdDSA", "hs": "HS256"}

def claims(**over):
    c = {"iss": ISS, "aud": AUD, "sub": "jwt-user", "tenant": "all", "roles": ["dr-operator"],
         "iat": now, "exp": now + 900}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c

def tok(name, kid, how, alg=None, hdr_extra=None, **over):
    h = {"alg": alg or ALG[kid], "typ": "JWT", "kid": kid}
    if kid is None:
        del h["kid"]
    h.update(hdr_extra or {})
    si = enc(h) + "." + enc(claims(**over))
    t = si + "." + b64(sign(how, si.encode()))
    open(OUT + "/" + name, "w").write(t)
    return t

# --- accepted
for k in ("rs", "es", "ed", "hs"):
    tok("ok-" + k, k, k, sub="jwt-" + k)
tok("ok-aud-array", "rs", "rs", aud=["other", "smsguard"])
tok("ok-roles-string", "es", "es", roles="dr-operator")
tok("ok-exp-in-leeway", "rs", "rs", exp=now - 20)
tok("ok-nbf-in-leeway", "ed", "ed", nbf=now + 20)
tok("ok-twice", "rs", "rs", sub="jwt-twice")
tok("ok-session", "rs", "rs", sub="jwt-session")
# --- refused
tok("expired", "rs", "rs", exp=now - 3600)
tok("expired-hs", "hs", "hs", exp=now - 120)
tok("nbf-future", "es", "es", nbf=now + 3600)
tok("no-exp", "rs", "rs", exp=None)
tok("wrong-iss", "rs", "rs", iss="https://evil.test")
tok("wrong-iss-slash", "ed", "ed", iss="https://idp.test/")
tok("no-iss", "hs", "hs", iss=None)
tok("wrong-aud", "rs", "rs", aud="other")
tok("wrong-aud-array", "es", "es", aud=["other", "smsguard2"])
tok("no-aud", "ed", "ed", aud=None)
tok("no-sub", "es", "es", sub=None)
tok("no-tenant", "ed", "ed", tenant=None)
tok("roles-not-strings", "hs", "hs", roles=[1, "dr-operator"])
tok("roles-object", "rs", "rs", roles={"dr-operator": True})
tok("exp-string", "rs", "rs", exp=str(now + 900))
tok("alg-none", "rs", "empty", alg="none")
tok("alg-none-nokid", None, "empty", alg="none")
tok("alg-None-case", "hs", "empty", alg="None")
tok("alg-none-signed", "rs", "rs", alg="none")
tok("confusion-kid-rs", "rs", "hs-rsapub", alg="HS256")
tok("confusion-kid-hs", "hs", "hs-rsapub", alg="HS256")
tok("alg-mismatch-rs-as-es", "es", "rs", alg="RS256")
tok("other-rsa-key", "rs", "evil")
tok("es-der-signature", "es", "es-der")
tok("unknown-kid", "nope", "rs", alg="RS256")
tok("kid-path", "../../etc/passwd", "rs", alg="RS256")
tok("no-kid", None, "rs", alg="RS256")
tok("crit", "rs", "rs", hdr_extra={"crit": ["exp"]})
tok("jwk-in-header", "rs", "evil",
    hdr_extra={"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}})
for k in ("rs", "es", "ed", "hs"):
    t = tok("base-" + k, k, k)
    h, p, s = t.split(".")
    sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
    sig[len(sig) // 2] ^= 0x01
    open(OUT + "/badsig-" + k, "w").write(h + "." + p + "." + b64(bytes(sig)))
    # the payload changed after signing (another tenant): the signature no longer covers it
    c = claims(tenant="evil")
    open(OUT + "/badpayload-" + k, "w").write(h + "." + enc(c) + "." + s)
    open(OUT + "/truncated-" + k, "w").write(t[:-12])
    open(OUT + "/two-segments-" + k, "w").write(h + "." + p)
    open(OUT + "/sig-padded-" + k, "w").write(t + "==")
PY

tokfile() { cat "$WORK/tok/$1"; }

# ---------------------------------------------------------------------------------------
# Configuration: the default static token $SG_TOKEN plus a JWT issuer with one key per alg.

POLICY="policy = {
  tokens = ( { id = \"test\"; sha256 = \"$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)\";
               subject = \"tester\"; tenant = \"all\"; roles = [\"dr-operator\"]; } );
  jwt = { issuer = \"https://idp.test\"; audience = \"smsguard\"; leeway_s = 60;
          keys = ( { kid = \"rs\"; alg = \"RS256\"; public_key = \"$K/rs.pub\"; },
                   { kid = \"es\"; alg = \"ES256\"; public_key = \"$K/es.pub\"; },
                   { kid = \"ed\"; alg = \"EdDSA\"; public_key = \"$K/ed.pub\"; },
                   { kid = \"hs\"; alg = \"HS256\"; secret_file = \"$K/hs.secret\"; } );
          subject_claim = \"sub\"; tenant_claim = \"tenant\"; roles_claim = \"roles\"; };
  roles = ( { name = \"dr-operator\"; privileges = [\"StorageViews.ConfigureService\"]; } );
  tenants = ( { name = \"all\"; providers = [\"*\"]; fault_domains = [\"*\"]; } );
};"
GUARD_SETTINGS=("policy=$POLICY" "log_level=debug")
start_all

# ---------------------------------------------------------------------------------------
# Requests and checks

# areq PROTO TARGET OUT [curl args...]: sg_post, and an answer in the protocol asked for
# is required; with H2_RESET_OK set, an HTTP/2 stream reset (PROTOCOL_ERROR) is accepted
# too (REQ_CODE 000).
areq() {
    local proto=$1 target=$2 out=$3 want=1.1
    sg_post "$@"
    if [[ $REQ_CODE == 000 && $proto == http2 && -n ${H2_RESET_OK:-} ]] &&
        grep -q 'PROTOCOL_ERROR' "$out.err"; then
        return 0
    fi
    [[ $REQ_CODE != 000 ]] || fail "POST $target over $proto: no answer ($(head -c 300 "$out.err"))"
    [[ $proto == http2 ]] && want=2
    assert_eq "$want" "$REQ_VER" "POST $target: HTTP version of the answer"
}

# stop_body MARKER [FORCE]: a valid stop-test body naming MARKER as the device group.
stop_body() {
    printf '{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"%s"}}],"force":%s}' \
        "$1" "${2:-false}"
}

# fault_is BODY HEADERS TYPE FAULTSTRING PRIVILEGE OBJTYPE OBJVALUE (assert_fault_ref)
fault_is() { assert_fault_ref "$@"; }

# log_reason: the reason of the last "not authenticated" line in smsguard's debug log.
log_reason() {
    grep -a 'not authenticated: ' "$SG_LOG" | tail -n 1 | sed -e 's/.*not authenticated: //' || true
}

# unauth NAME REASON [curl args...]: over both protocols a stop-test request with the curl
# args (the Authorization headers) gets 500 NotAuthenticated naming the provider, and is not
# forwarded. REASON: the reason smsguard's debug log must give ("-": any), an extended regex.
# BODY, when set, is sent instead of a valid body.
unauth() {
    local name=$1 reason=$2 proto mk why
    shift 2
    N=$((N + 1))
    for proto in "${PROTOS[@]}"; do
        mk=x$N-$name-$(tag "$proto")
        areq "$proto" "$VP/$mk/$M" "$WORK/$mk" -H 'Content-Type: application/json' \
            --data-binary "${BODY:-$(stop_body "$mk")}" "$@"
        REFUSED+=("$mk")
        if [[ $REQ_CODE == 000 ]]; then
            # H2_RESET_OK: a field value ending in a space is malformed in HTTP/2 (RFC 9113
            # 8.2.1); nghttp2 resets the stream, which refuses the request as well
            echo "   $(tag "$proto") stream reset (PROTOCOL_ERROR)  ($name)"
            assert_eq 0 "$(grep -cF -- "$mk" "$SIM_RECORD" || true)" "$name over $proto: requests forwarded"
            continue
        fi
        assert_eq 500 "$REQ_CODE" "$name over $proto: status (body $(head -c 300 "$WORK/$mk.body"))"
        fault_is "$WORK/$mk.body" "$WORK/$mk.hdr" NotAuthenticated "The session is not authenticated." \
            "" VasaProvider "$mk"
        why=$(log_reason)
        echo "   $(tag "$proto") $REQ_CODE NotAuthenticated  ($name: $why)"
        if [[ $reason != - ]]; then
            [[ $why =~ ^($reason)$ ]] || fail "$name over $proto: refused for '$why', expected /$reason/"
        fi
        assert_eq 0 "$(grep -cF -- "$mk" "$SIM_RECORD" || true)" "$name over $proto: requests forwarded"
    done
}

# unauth_jwt NAME REASON: unauth with `Authorization: Bearer <token NAME>`.
unauth_jwt() {
    unauth "$1" "$2" -H "Authorization: Bearer $(tokfile "$1")"
}

# allowed NAME [curl args...]: over both protocols a stop-test request with the curl args is
# forwarded once, reaches the simulator without Authorization, and its SmsTask comes back.
allowed() {
    local name=$1 proto mk
    shift
    N=$((N + 1))
    for proto in "${PROTOS[@]}"; do
        mk=a$N-$name-$(tag "$proto")
        allowed_one "$proto" "$mk" "$@"
        echo "   $(tag "$proto") $REQ_CODE forwarded  ($name)"
    done
}

# allowed_one PROTO MARKER [curl args...]: one allowed request (see allowed); the record of
# it is left in $WORK/MARKER.rec.
allowed_one() {
    local proto=$1 mk=$2
    shift 2
    areq "$proto" "$VP/$mk/$M" "$WORK/$mk" -H 'Content-Type: application/json' \
        --data-binary "$(stop_body "$mk")" "$@"
    assert_eq 200 "$REQ_CODE" "$mk: status (body $(head -c 400 "$WORK/$mk.body"); smsguard said: $(log_reason))"
    assert_eq "ManagedObjectReference SmsTask" \
        "$(json_eval "$WORK/$mk.body" 'd["_typeName"] + " " + d["type"]')" "$mk: answer"
    assert_eq "POST $VP/$mk/$M" "$(record_grep "$mk")" "$mk: what the simulator received"
    grep -F -- "$mk" "$SIM_RECORD" >"$WORK/$mk.rec"
    assert_eq 0 "$(echo_header_count "$WORK/$mk.rec" authorization)" "$mk: Authorization headers forwarded"
    ACCEPTED=$((ACCEPTED + 1))
}

# ---------------------------------------------------------------------------------------
check "static token: the right one is forwarded, without Authorization"
allowed static-token -H "Authorization: Bearer $SG_TOKEN"
# RFC 7235 2.1: the auth-scheme is case-insensitive
allowed static-token-scheme-case -H "Authorization: bearer $SG_TOKEN"

check "static token: anything else is NotAuthenticated and not forwarded"
unauth no-authorization 'no Authorization header'
unauth basic 'Authorization is not a Bearer token' -H 'Authorization: Basic dXNlcjpwYXNz'
unauth basic-with-token 'Authorization is not a Bearer token' -H "Authorization: Basic $SG_TOKEN"
unauth token-without-scheme 'Authorization is not a Bearer token' -H "Authorization: $SG_TOKEN"
H2_RESET_OK=1 unauth empty-bearer 'Authorization is not a Bearer token|empty Bearer token' -H 'Authorization: Bearer '
H2_RESET_OK=1 unauth spaces-bearer 'Authorization is not a Bearer token|empty Bearer token' -H 'Authorization: Bearer    '
unauth bearer-only 'Authorization is not a Bearer token|empty Bearer token' -H 'Authorization: Bearer'
unauth empty-authorization 'no Authorization header|Authorization is not a Bearer token' -H 'Authorization;'
unauth two-authorization-same 'more than one Authorization header' \
    -H "Authorization: Bearer $SG_TOKEN" -H "Authorization: Bearer $SG_TOKEN"
unauth two-authorization-bad-first 'more than one Authorization header' \
    -H 'Authorization: Bearer nope' -H "Authorization: Bearer $SG_TOKEN"
unauth unknown-static 'unknown static token' -H 'Authorization: Bearer not-a-token-we-know'
wrong=${SG_TOKEN%?}
last=${SG_TOKEN: -1}
[[ $last == 0 ]] && wrong+=1 || wrong+=0
unauth static-wrong-last-byte 'unknown static token' -H "Authorization: Bearer $wrong"
unauth static-wrong-first-byte 'unknown static token' -H "Authorization: Bearer X${SG_TOKEN#?}"
unauth static-prefix 'unknown static token' -H "Authorization: Bearer ${SG_TOKEN%?}"
unauth static-longer 'unknown static token' -H "Authorization: Bearer ${SG_TOKEN}x"
unauth static-token-as-basic 'Authorization is not a Bearer token' \
    -H "Authorization: Basic $(printf '%s' "$SG_TOKEN" | base64 -w0)"

check "JWT: a valid token for each algorithm is forwarded, without Authorization"
for k in rs es ed hs; do
    allowed "jwt-ok-$k" -H "Authorization: Bearer $(tokfile "ok-$k")"
done
allowed jwt-aud-array -H "Authorization: Bearer $(tokfile ok-aud-array)"
allowed jwt-roles-string -H "Authorization: Bearer $(tokfile ok-roles-string)"
allowed jwt-exp-within-leeway -H "Authorization: Bearer $(tokfile ok-exp-in-leeway)"
allowed jwt-nbf-within-leeway -H "Authorization: Bearer $(tokfile ok-nbf-in-leeway)"

check "JWT: the same valid token twice is accepted twice (the second from the cache)"
N=$((N + 1))
for proto in "${PROTOS[@]}"; do
    for i in 1 2; do
        allowed_one "$proto" "a$N-jwt-twice-$i-$(tag "$proto")" -H "Authorization: Bearer $(tokfile ok-twice)"
    done
    echo "   $(tag "$proto") the same RS256 token accepted twice"
done

check "JWT: expired, not yet valid, wrong issuer or audience, missing claims: NotAuthenticated"
unauth_jwt expired 'jwt expired'
unauth_jwt expired-hs 'jwt expired'
unauth_jwt nbf-future 'jwt not yet valid'
unauth_jwt no-exp 'jwt missing exp'
unauth_jwt wrong-iss 'jwt wrong issuer'
unauth_jwt wrong-iss-slash 'jwt wrong issuer'
unauth_jwt no-iss 'jwt missing issuer'
unauth_jwt wrong-aud 'jwt wrong audience'
unauth_jwt wrong-aud-array 'jwt wrong audience'
unauth_jwt no-aud 'jwt missing audience'
unauth_jwt no-sub 'jwt missing subject'
unauth_jwt no-tenant 'jwt missing tenant'
unauth_jwt roles-not-strings 'jwt bad roles claim'
unauth_jwt roles-object 'jwt bad roles claim'
unauth_jwt exp-string 'jwt bad exp'

check "JWT: bad signatures, unsigned tokens, algorithm confusion: NotAuthenticated"
for k in rs es ed hs; do
    unauth_jwt "badsig-$k" 'jwt bad signature'
    unauth_jwt "badpayload-$k" 'jwt bad signature'
done
# an empty signature may already be refused as malformed; with one, the alg itself is
unauth_jwt alg-none 'jwt alg none refused|jwt malformed'
unauth_jwt alg-none-nokid 'jwt alg none refused|jwt malformed'
unauth_jwt alg-None-case 'jwt alg none refused|jwt malformed'
unauth_jwt alg-none-signed 'jwt alg none refused'
unauth_jwt confusion-kid-rs 'jwt alg does not match key'
unauth_jwt confusion-kid-hs 'jwt bad signature'
unauth_jwt alg-mismatch-rs-as-es 'jwt alg does not match key'
unauth_jwt other-rsa-key 'jwt bad signature'
unauth_jwt es-der-signature 'jwt bad signature|jwt malformed'
unauth_jwt jwk-in-header 'jwt key in header refused'
unauth_jwt crit 'jwt crit header refused'

check "JWT: unknown kid, kid with path characters, no kid: NotAuthenticated"
unauth_jwt unknown-kid 'jwt unknown kid'
unauth_jwt kid-path 'jwt unknown kid'
unauth_jwt no-kid 'jwt missing kid'

check "JWT: truncated or mangled tokens: NotAuthenticated"
for k in rs es ed hs; do
    unauth_jwt "truncated-$k" 'jwt bad signature|jwt malformed'
    unauth_jwt "two-segments-$k" 'jwt malformed|unknown static token'
    unauth_jwt "sig-padded-$k" 'jwt malformed'
done
unauth dot-only 'jwt malformed|unknown static token' -H 'Authorization: Bearer .'
unauth three-empty-segments 'jwt malformed' -H 'Authorization: Bearer ..'
unauth too-large 'token too large' -H "Authorization: Bearer $(head -c 9000 /dev/zero | tr '\0' 'a').x.y"

check "an unauthenticated caller's body is never parsed: NotAuthenticated, not a body fault"
BODY='{"groupId":' unauth garbage-body-no-token 'no Authorization header'
BODY='{"groupId":[],"force":false}' unauth empty-groupid-bad-token 'unknown static token' \
    -H 'Authorization: Bearer nope'
BODY='{"groupId":[],"groupId":[],"force":"x"}' unauth invalid-body-expired-jwt 'jwt expired' \
    -H "Authorization: Bearer $(tokfile expired)"
# with a valid token the same bodies get the validation faults (authenticate, then validate)
N=$((N + 1))
for proto in "${PROTOS[@]}"; do
    mk=x$N-garbage-body-valid-token-$(tag "$proto")
    areq "$proto" "$VP/$mk/$M" "$WORK/$mk" -H "Authorization: Bearer $SG_TOKEN" \
        -H 'Content-Type: application/json' --data-binary '{"groupId":'
    assert_eq 500 "$REQ_CODE" "$mk: status"
    assert_vim_fault "$WORK/$mk.body" "$WORK/$mk.hdr" InvalidRequest "$mk"
    mk=x$N-empty-groupid-valid-token-$(tag "$proto")
    areq "$proto" "$VP/$mk/$M" "$WORK/$mk" -H "Authorization: Bearer $(tokfile ok-ed)" \
        -H 'Content-Type: application/json' --data-binary '{"groupId":[],"force":false}'
    assert_eq 500 "$REQ_CODE" "$mk: status"
    assert_vim_fault "$WORK/$mk.body" "$WORK/$mk.hdr" InvalidArgument "$mk"
    assert_eq groupId "$FAULT_PROP" "$mk: invalidProperty"
    REFUSED+=("x$N-garbage-body-valid-token-$(tag "$proto")" "$mk")
    echo "   $(tag "$proto") with a valid token: InvalidRequest, InvalidArgument groupId"
done

check "Authorization and Proxy-Authorization are not forwarded on other paths either"
for proto in "${PROTOS[@]}"; do
    out=$WORK/echo-$(tag "$proto")
    code=$(sg_curl "--$proto" -o "$out" -w '%{http_code}' -H "Authorization: Bearer $SG_TOKEN" \
        -H 'Proxy-Authorization: Basic dXNlcjpwYXNz' -H 'vmware-api-session-id: abc' \
        "$SG_URL/sim/echo/authz-$(tag "$proto")")
    assert_eq 200 "$code" "GET /sim/echo over $proto: status"
    assert_eq 0 "$(echo_header_count "$out" authorization)" "GET /sim/echo over $proto: Authorization forwarded"
    assert_eq 0 "$(echo_header_count "$out" proxy-authorization)" "GET /sim/echo over $proto: Proxy-Authorization forwarded"
    assert_eq abc "$(echo_header "$out" vmware-api-session-id)" "GET /sim/echo over $proto: vmware-api-session-id"
    ACCEPTED=$((ACCEPTED + 1))
    echo "   $(tag "$proto") GET /sim/echo: no Authorization, no Proxy-Authorization, session header kept"
done

check "the task query needs a token too: NotAuthenticated naming the SmsTask"
N=$((N + 1))
for proto in "${PROTOS[@]}"; do
    mk=x$N-task-$(tag "$proto")
    areq "$proto" "/sdk/vim25/8.0.3.0/sms/SmsTask/$mk/QuerySmsTaskInfo" "$WORK/$mk" \
        -H 'Content-Type: application/json' --data-binary '{}'
    assert_eq 500 "$REQ_CODE" "QuerySmsTaskInfo without a token over $proto: status"
    fault_is "$WORK/$mk.body" "$WORK/$mk.hdr" NotAuthenticated "The session is not authenticated." \
        "" SmsTask "$mk"
    echo "   $(tag "$proto") $REQ_CODE NotAuthenticated  (QuerySmsTaskInfo without a token)"
    REFUSED+=("$mk")
done

check "vmware-api-session-id from the client arrives upstream unchanged; Authorization never"
N=$((N + 1))
for proto in "${PROTOS[@]}"; do
    mk=a$N-session-header-$(tag "$proto")
    allowed_one "$proto" "$mk" -H "Authorization: Bearer $(tokfile ok-es)" -H 'vmware-api-session-id: abc'
    assert_eq abc "$(echo_header "$WORK/$mk.rec" vmware-api-session-id)" "$mk: forwarded vmware-api-session-id"
    echo "   $(tag "$proto") vmware-api-session-id: abc forwarded unchanged"
done

check "nothing refused reached the simulator; each accepted request arrived once"
sleep 0.2
record_none_of "${REFUSED[@]}"
echo "   ${#REFUSED[@]} refused, $ACCEPTED accepted"
assert_eq "$ACCEPTED" "$(record_count)" "requests recorded by the simulator"
assert_eq "" "$(record_grep "$SG_TOKEN")" "requests whose record holds the static token"
assert_eq "" "$(record_grep "$(tokfile ok-rs)")" "requests whose record holds a JWT"

# ---------------------------------------------------------------------------------------
check "SIGHUP: a key or static token taken out of the policy is refused at once, cached JWTs too"
# the token to revoke was verified (and cached) above; use it on a few more connections so
# that every worker has it cached
for i in 1 2 3; do
    for proto in "${PROTOS[@]}"; do
        allowed_one "$proto" "a$N-jwt-twice-more-$i-$(tag "$proto")" -H "Authorization: Bearer $(tokfile ok-twice)"
    done
done
read -r LPORT APORT <"$WORK/smsguard.conf.ports"
POLICY_NO_RS=${POLICY/\{ kid = \"rs\"; alg = \"RS256\"; public_key = \"$K\/rs.pub\"; \},/}
POLICY_NO_RS=${POLICY_NO_RS/sha256 = \"$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)\"/sha256 = \"$(printf '%s' "other-$SG_TOKEN" | sha256sum | cut -c1-64)\"}
[[ $POLICY_NO_RS != *'kid = "rs"'* && $POLICY_NO_RS != *"$(printf '%s' "$SG_TOKEN" | sha256sum | cut -c1-64)"* ]] ||
    fail "could not take the rs key and the static token out of the policy"
# reload SETTINGS...: rewrite smsguard.conf (same ports) and SIGHUP; wait for the log to say
# "reloaded" (or "reload refused" when the first setting is "refused")
NRELOAD=0
reload() {
    local want=reloaded before deadline=$((SECONDS + 10))
    [[ $1 == refused ]] && { want="reload refused"; shift; }
    before=$(grep -c -- "$want" "$SG_LOG" || true)
    guard_conf "$WORK/smsguard.conf" listen_port="$LPORT" admin_port="$APORT" log_level=debug "$@"
    kill -HUP "$SG_PID"
    while (($(grep -c -- "$want" "$SG_LOG" || true) == before)); do
        ((SECONDS < deadline)) || fail "smsguard did not log '$want' within 10 s of SIGHUP"
        sleep 0.05
    done
    NRELOAD=$((NRELOAD + 1))
}
revoked_still_refused() {
    unauth "revoked-jwt-$NRELOAD" 'jwt unknown kid' -H "Authorization: Bearer $(tokfile ok-twice)"
    unauth "revoked-jwt-again-$NRELOAD" 'jwt unknown kid' -H "Authorization: Bearer $(tokfile ok-twice)"
    unauth "revoked-static-$NRELOAD" 'unknown static token' -H "Authorization: Bearer $SG_TOKEN"
    allowed "kept-jwt-$NRELOAD" -H "Authorization: Bearer $(tokfile ok-es)"
}
reload "policy=$POLICY_NO_RS"
revoked_still_refused
# a configuration that does not load is refused and the running one (without rs) stays
reload refused "policy=${POLICY/$K\/es.pub/$K\/missing.pub}"
revoked_still_refused
# more generations: a new policy must never be mistaken for one a cached token was checked
# against (the cache is per policy)
for i in 1 2 3; do
    reload "policy=$POLICY_NO_RS"
    revoked_still_refused
done
# and the key back: the token is good again
reload "policy=$POLICY"
allowed "restored-jwt" -H "Authorization: Bearer $(tokfile ok-twice)"
allowed "restored-static" -H "Authorization: Bearer $SG_TOKEN"
sleep 0.2
record_none_of "${REFUSED[@]}"
assert_eq "$ACCEPTED" "$(record_count)" "requests recorded by the simulator"

# ---------------------------------------------------------------------------------------
check "sms-sim --require-session: a Login session through smsguard is what authenticates upstream"
SIM_RECORD=$WORK/sim-record-session.jsonl
start_sim --require-session
guard_conf "$WORK/smsguard-session.conf" "policy=$POLICY" "log_level=debug"
start_guard "$WORK/smsguard-session.conf"
N=$((N + 1))
for proto in "${PROTOS[@]}"; do
    t=$(tag "$proto")
    # Login is not a guarded path: no token needed; credentials travel in the body
    areq "$proto" "$LOGIN" "$WORK/login-$t" -H 'Content-Type: application/json' \
        --data-binary '{"userName":"u","password":"p"}'
    assert_eq 200 "$REQ_CODE" "Login over $proto: status (body $(head -c 300 "$WORK/login-$t.body"))"
    assert_eq UserSession "$(json_eval "$WORK/login-$t.body" 'd["_typeName"]')" "Login over $proto: answer"
    sid=$(hdr_value "$WORK/login-$t.hdr" vmware-api-session-id)
    assert_match '^[0-9a-f]{40}$' "$sid" "Login over $proto: vmware-api-session-id"
    echo "   $t Login: vmware-api-session-id $sid"

    # a valid token and the session: forwarded, the simulator accepts it
    mk=a$N-with-session-$t
    allowed_one "$proto" "$mk" -H "Authorization: Bearer $(tokfile ok-session)" \
        -H "vmware-api-session-id: $sid"
    assert_eq "$sid" "$(echo_header "$WORK/$mk.rec" vmware-api-session-id)" "$mk: forwarded session"
    task=$(json_eval "$WORK/$mk.body" 'd["value"]')
    echo "   $t stop-test with token and session: 200 $task"

    # the task query with the same session and token
    areq "$proto" "/sdk/vim25/8.0.3.0/sms/SmsTask/$task/QuerySmsTaskInfo" "$WORK/$mk-q" \
        -H "Authorization: Bearer $(tokfile ok-session)" -H "vmware-api-session-id: $sid" \
        -H 'Content-Type: application/json' --data-binary '{}'
    assert_eq 200 "$REQ_CODE" "QuerySmsTaskInfo over $proto: status (body $(head -c 300 "$WORK/$mk-q.body"))"
    assert_eq "SmsTaskInfo $mk" \
        "$(json_eval "$WORK/$mk-q.body" 'd["_typeName"] + " " + d["object"]["value"]')" "QuerySmsTaskInfo answer"
    ACCEPTED=$((ACCEPTED + 1))

    # a valid token without a session: forwarded, and the simulator does not know the caller
    # (smsguard passes no identity of its own upstream)
    mk=a$N-no-session-$t
    areq "$proto" "$VP/$mk/$M" "$WORK/$mk" -H "Authorization: Bearer $(tokfile ok-session)" \
        -H 'Content-Type: application/json' --data-binary "$(stop_body "$mk")"
    assert_eq 500 "$REQ_CODE" "$mk: status"
    fault_is "$WORK/$mk.body" "$WORK/$mk.hdr" NotAuthenticated - System.View VasaProvider "$mk"
    assert_eq "POST $VP/$mk/$M" "$(record_grep "$mk")" "$mk: what the simulator received"
    grep -F -- "$mk" "$SIM_RECORD" >"$WORK/$mk.rec"
    assert_eq 0 "$(echo_header_count "$WORK/$mk.rec" authorization)" "$mk: Authorization headers forwarded"
    assert_eq 0 "$(echo_header_count "$WORK/$mk.rec" vmware-api-session-id)" "$mk: session headers forwarded"
    ACCEPTED=$((ACCEPTED + 1))
    echo "   $t stop-test with token, no session: the simulator's NotAuthenticated (System.View)"

    # the session without a valid token: smsguard refuses, nothing forwarded
    mk=x$N-session-bad-token-$t
    areq "$proto" "$VP/$mk/$M" "$WORK/$mk" -H "Authorization: Bearer $(tokfile expired)" \
        -H "vmware-api-session-id: $sid" -H 'Content-Type: application/json' \
        --data-binary "$(stop_body "$mk")"
    assert_eq 500 "$REQ_CODE" "$mk: status"
    fault_is "$WORK/$mk.body" "$WORK/$mk.hdr" NotAuthenticated "The session is not authenticated." \
        "" VasaProvider "$mk"
    REFUSED+=("$mk")
    mk=x$N-session-no-token-$t
    areq "$proto" "$VP/$mk/$M" "$WORK/$mk" -H "vmware-api-session-id: $sid" \
        -H 'Content-Type: application/json' --data-binary "$(stop_body "$mk")"
    assert_eq 500 "$REQ_CODE" "$mk: status"
    fault_is "$WORK/$mk.body" "$WORK/$mk.hdr" NotAuthenticated "The session is not authenticated." \
        "" VasaProvider "$mk"
    REFUSED+=("$mk")
    echo "   $t a session without a valid token: NotAuthenticated from smsguard, not forwarded"
done
sleep 0.2
record_none_of "${REFUSED[@]}"
# two Logins and, per protocol, three forwarded sms calls
assert_eq 8 "$(record_count)" "requests recorded by the --require-session simulator"
assert_eq 0 "$(grep -ciF '"authorization"' "$SIM_RECORD" || true)" "recorded Authorization headers"

echo "PASS: $TEST_NAME"
