#!/usr/bin/env bash
# 10_config_check: `smsguard -t -c FILE` accepts a good configuration (exit 0) and refuses
# every kind of bad one with exit 1 and "FILE:LINE: reason" on stderr; --version works.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

setup_certs
GOOD=$WORK/good.conf
guard_conf "$GOOD" upstream_url=http://127.0.0.1:9
N=0

# line_of FILE TEXT: the number of the first line of FILE containing TEXT.
line_of() {
    grep -nF -- "$2" "$1" | head -n 1 | cut -d: -f1
}

# variant SED_EXPR...: a copy of the good configuration edited by sed; its path in F.
variant() {
    N=$((N + 1))
    F=$WORK/bad-$N.conf
    cp "$GOOD" "$F"
    local e
    for e in "$@"; do sed -i -e "$e" "$F"; done
    cmp -s "$GOOD" "$F" && fail "variant $N: the edit $* changed nothing"
    return 0
}

# expect_bad WHAT FILE [LINE|LINE_REGEX]: -t -c FILE exits 1 and stderr starts a line with
# "FILE:LINE: " (any line number when no LINE is given).
expect_bad() {
    local what=$1 f=$2 line=${3:-[0-9]+} rc=0 err
    check "refused: $what"
    "$SMSGUARD" -t -c "$f" >"$WORK/t.out" 2>"$WORK/t.err" </dev/null || rc=$?
    err=$(cat "$WORK/t.err")
    echo "   stderr: $(head -n 1 "$WORK/t.err")"
    if [[ $rc -ne 1 ]]; then
        echo "----- $f -----" >&2
        cat -n "$f" >&2
        fail "$what: exit status $rc (expected 1); stderr: $err"
    fi
    local fre
    fre=$(printf '%s' "$f" | sed -e 's/[][\.*^$+?(){}|/]/\\&/g')
    if ! grep -qE "^$fre:($line): ." "$WORK/t.err"; then
        echo "----- $f -----" >&2
        cat -n "$f" >&2
        fail "$what: stderr has no line starting with '$f:$line: '; it was: $err"
    fi
}

check "a good configuration passes -t"
rc=0
"$SMSGUARD" -t -c "$GOOD" >"$WORK/t.out" 2>"$WORK/t.err" </dev/null || rc=$?
[[ $rc -eq 0 ]] || { cat -n "$GOOD" >&2; fail "good configuration: exit $rc, stderr: $(cat "$WORK/t.err")"; }

check "--version prints a version"
ver=$("$SMSGUARD" --version 2>&1 </dev/null) || fail "--version exited non-zero: $ver"
assert_match '[0-9]+\.[0-9]+(\.[0-9]+)?' "$ver" "--version output"
echo "   $ver"

# 1. syntax error: a setting without a value
variant 's/^workers = 2;/workers = ;/'
f=$F
expect_bad "syntax error" "$f" "$(line_of "$f" 'workers = ;')"

# 2. syntax error: unterminated group (libconfig reports some line; any is fine)
variant 's/^admin = {/admin = {{/'
f=$F
expect_bad "syntax error (stray brace)" "$f"

# 3. unknown key, inside a group and at top level
variant 's/^  max_idle = 32;/  max_idle = 32;\n  bogus_key = 1;/'
f=$F
expect_bad "unknown key upstream.bogus_key" "$f" "$(line_of "$f" 'bogus_key')"
variant 's/^workers = 2;/workers = 2;\nfrobnicate = true;/'
f=$F
expect_bad "unknown top-level key" "$f" "$(line_of "$f" 'frobnicate')"

# 4. wrong type
variant 's/^workers = 2;/workers = "two";/'
f=$F
expect_bad "wrong type (workers is a string)" "$f" "$(line_of "$f" 'workers = "two"')"
variant 's/^  response_timeout_ms = 10000;/  response_timeout_ms = "soon";/'
f=$F
expect_bad "wrong type (response_timeout_ms)" "$f" "$(line_of "$f" 'response_timeout_ms')"

# 5. out-of-range values
variant 's/^    port = [0-9]*;/    port = 70000;/'
f=$F
expect_bad "out of range (listen port 70000)" "$f" "$(line_of "$f" 'port = 70000')"
variant 's/^workers = 2;/workers = -3;/'
f=$F
expect_bad "out of range (workers = -3)" "$f" "$(line_of "$f" 'workers = -3')"
variant 's/^  max_body_bytes = 1048576;/  max_body_bytes = -1;/'
f=$F
expect_bad "out of range (max_body_bytes = -1)" "$f" "$(line_of "$f" 'max_body_bytes')"

# 6. missing required key: the listener's certificate
variant '/^      certificate = /d'
f=$F
expect_bad "missing required key (listen.tls.certificate)" "$f"

# 7. unreadable / not a certificate
variant "s|^      certificate = .*|      certificate = \"$WORK/no-such-file.crt\";|"
f=$F
expect_bad "certificate file missing" "$f" "$(line_of "$f" 'no-such-file.crt')"
echo "this is not a PEM certificate" >"$WORK/garbage.crt"
variant "s|^      certificate = .*|      certificate = \"$WORK/garbage.crt\";|"
f=$F
expect_bad "certificate file not a certificate" "$f" "$(line_of "$f" 'garbage.crt')"
variant "s|^      private_key = .*|      private_key = \"$WORK/no-such-file.key\";|"
f=$F
expect_bad "private key file missing" "$f" "$(line_of "$f" 'no-such-file.key')"

# 8. key that does not match the certificate (report on either the key or the certificate)
gen_cert ca other
variant "s|^      private_key = .*|      private_key = \"$WORK/other.key\";|"
f=$F
expect_bad "private key not matching the certificate" "$f" \
    "$(line_of "$f" 'other.key')|$(line_of "$f" 'certificate = ')"

# 9. bad upstream URLs
variant 's|^  url = .*|  url = "ftp://127.0.0.1:21";|'
f=$F
expect_bad "upstream url with unsupported scheme" "$f" "$(line_of "$f" 'ftp://')"
variant 's|^  url = .*|  url = "not a url";|'
f=$F
expect_bad "upstream url that is not a URL" "$f" "$(line_of "$f" 'not a url')"
variant 's|^  url = .*|  url = "http://127.0.0.1:99999";|'
f=$F
expect_bad "upstream url with port out of range" "$f" "$(line_of "$f" '99999')"

# 10. an upstream ca_file that does not exist
variant "s|^  ca_file = .*|  ca_file = \"$WORK/no-such-ca.crt\";|"
f=$F
expect_bad "upstream ca_file missing" "$f" "$(line_of "$f" 'no-such-ca.crt')"

# 11. the documented example parses once its certificate files exist where it names them
EXAMPLE=$SG_SOURCE_DIR/conf/smsguard.conf
if [[ -f $EXAMPLE ]]; then
    check "conf/smsguard.conf passes -t with development certificates beside it"
    mkdir -p "$WORK/ex/conf" "$WORK/ex/.dev"
    cp "$EXAMPLE" "$WORK/ex/conf/smsguard.conf"
    cp "$WORK/server.crt" "$WORK/ex/.dev/server.crt"
    cp "$WORK/server.key" "$WORK/ex/.dev/server.key"
    cp "$WORK/ca.crt" "$WORK/ex/.dev/ca.crt"
    rc=0
    (cd "$WORK/ex" && "$SMSGUARD" -t -c conf/smsguard.conf) >"$WORK/t.out" 2>"$WORK/t.err" </dev/null || rc=$?
    [[ $rc -eq 0 ]] || fail "conf/smsguard.conf: exit $rc, stderr: $(cat "$WORK/t.err")"
fi

echo "PASS: $TEST_NAME"
