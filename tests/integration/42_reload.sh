#!/usr/bin/env bash
# 42_reload: SIGHUP re-reads the configuration, keys and policy. New requests use the new
# policy, a request in flight finishes with the one it started with, and a configuration
# that fails to load is refused with file:line while the old one keeps serving; one that
# changes what needs a restart (workers, audit.file) is refused with the file and the key.
# Listen address changes are applied by a reload: 44_reload_listen.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOKEN_B=other-token-$$
policy_for() { # policy_for TOKEN PROVIDERS
    cat <<EOP
policy = {
  tokens = ( { id = "t"; sha256 = "$(printf '%s' "$1" | sha256sum | cut -c1-64)";
               subject = "tester"; tenant = "t1"; roles = ["op"]; } );
  roles = ( { name = "op"; privileges = ["StorageViews.ConfigureService"]; } );
  tenants = ( { name = "t1"; providers = [$2]; fault_domains = ["fd-*"]; } );
};
EOP
}
BODY='{"groupId":[{"faultDomainId":{"id":"fd-1"},"deviceGroupId":{"id":"rg-1"}}],"force":false}'
stop() { # stop TOKEN PROVIDER -> prints status and fault type
    local out
    out=$(sg_curl -H 'content-type: application/json' -H "authorization: Bearer $1" -d "$BODY" \
        -w ' %{http_code}' "$SG_URL/sdk/vim25/8.0.3.0/sms/VasaProvider/$2/TestFailoverReplicationGroupStop_Task")
    printf '%s %s' "${out##* }" "$(sed -n 's/^{"_typeName":"\([A-Za-z]*\)".*/\1/p' <<<"${out% *}")"
}
setup_certs
start_sim
guard_conf "$WORK/sg.conf" policy="$(policy_for "$SG_TOKEN" '"vasa-1"')"
start_guard "$WORK/sg.conf"

check "before the reload: the token works for vasa-1, not vasa-2"
assert_eq "200 ManagedObjectReference" "$(stop "$SG_TOKEN" vasa-1)" "vasa-1"
assert_eq "500 NoPermission" "$(stop "$SG_TOKEN" vasa-2)" "vasa-2"

check "a request in flight during the reload finishes"
sg_curl -o "$WORK/slow.out" -w '%{http_code}' -H 'x-sim-delay-ms: 1200' "$SG_URL/sim/echo/slow" \
    >"$WORK/slow.code" &
SLOW=$!
sleep 0.3

check "SIGHUP with a new token and tenant: new requests use them at once"
guard_conf "$WORK/sg.conf" listen_port="$SG_PORT" admin_port="$SG_ADMIN_PORT" \
    policy="$(policy_for "$TOKEN_B" '"vasa-2"')"
hup_and_wait "reloaded"
assert_eq "500 NotAuthenticated" "$(stop "$SG_TOKEN" vasa-1)" "the old token"
assert_eq "200 ManagedObjectReference" "$(stop "$TOKEN_B" vasa-2)" "the new token on vasa-2"
assert_eq "500 NoPermission" "$(stop "$TOKEN_B" vasa-1)" "the new token on vasa-1"
wait "$SLOW" || true
assert_eq 200 "$(cat "$WORK/slow.code")" "the request in flight during the reload"

check "a configuration with an error is refused with file:line; the old one keeps serving"
cp "$WORK/sg.conf" "$WORK/sg.good"
printf 'limits = { max_body_bytes = "big"; };\n' >>"$WORK/sg.conf"
hup_and_wait "reload refused"
assert_match "reload refused.*sg\.conf:[0-9]+: " "$(grep 'reload refused' "$SG_LOG" | tail -n 1)" \
    "the refusal in the log"
assert_eq "200 ManagedObjectReference" "$(stop "$TOKEN_B" vasa-2)" "the running policy"

check "a key file that cannot be read is refused the same way"
cp "$WORK/sg.good" "$WORK/sg.conf"
cat >>"$WORK/sg.conf" <<EOC
batch = { task_key_file = "$WORK/no-such-key"; };
EOC
hup_and_wait "reload refused"
assert_match "no-such-key" "$(grep 'reload refused' "$SG_LOG" | tail -n 1)" "the refusal names the file"
assert_eq "200 ManagedObjectReference" "$(stop "$TOKEN_B" vasa-2)" "the running policy"

check "changing the worker count needs a restart: refused as a whole, with the file and key"
guard_conf "$WORK/sg.conf" listen_port="$SG_PORT" admin_port="$SG_ADMIN_PORT" workers=3 \
    policy="$(policy_for "$SG_TOKEN" '"vasa-1"')"
hup_and_wait "reload refused"
assert_match "sg\.conf: 'workers' changed, needs a restart" \
    "$(grep 'reload refused' "$SG_LOG" | tail -n 1)" "the refusal"
assert_eq "200 ManagedObjectReference" "$(stop "$TOKEN_B" vasa-2)" "the running policy"
assert_eq "500 NotAuthenticated" "$(stop "$SG_TOKEN" vasa-1)" "the refused file's token"

check "changing the audit file needs a restart: refused the same way"
guard_conf "$WORK/sg.conf" listen_port="$SG_PORT" admin_port="$SG_ADMIN_PORT" \
    policy="$(policy_for "$SG_TOKEN" '"vasa-1"')" extra="audit = { file = \"$WORK/audit.jsonl\"; };"
hup_and_wait "reload refused"
assert_match "sg\.conf: 'audit\.file' changed, needs a restart" \
    "$(grep 'reload refused' "$SG_LOG" | tail -n 1)" "the refusal"
assert_eq "200 ManagedObjectReference" "$(stop "$TOKEN_B" vasa-2)" "the running policy"
[[ ! -e $WORK/audit.jsonl ]] || fail "the refused reload created the audit file"

check "after the refusals a good file is taken again"
guard_conf "$WORK/sg.conf" listen_port="$SG_PORT" admin_port="$SG_ADMIN_PORT" \
    policy="$(policy_for "$SG_TOKEN" '"vasa-1"')"
hup_and_wait "reloaded"
assert_eq "200 ManagedObjectReference" "$(stop "$SG_TOKEN" vasa-1)" "the token of the new file"

echo "PASS: $TEST_NAME"
