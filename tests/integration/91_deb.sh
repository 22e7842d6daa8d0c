#!/usr/bin/env bash
# 91_deb: `cpack -G DEB` in the build directory under test makes smsguard_<version>_<arch>.deb
# with the right control fields, files and conffiles; `dpkg -i` creates the user smsguard,
# its directories and a self-signed certificate, so that the shipped configuration passes
# `smsguard -t` (as root and as smsguard) and leaves the service disabled; the packaged
# binary, run as smsguard, serves and writes its audit log where the package says; `dpkg -r`
# removes the programs and keeps the configuration; `dpkg --purge` removes the rest, but
# keeps a /var/log/smsguard that holds audit records. docs/operations.md says why.
#
# It installs a package on this machine, so it runs only as root on a Debian system with
# dpkg, cpack and dpkg-shlibdeps (package dpkg-dev), and only when no smsguard package,
# user or directory is there already; otherwise it exits 77, which ctest reports as
# skipped. It is skipped in a sanitizer build too: the package is built from, and tested
# with, the plain build. Whatever happens, the EXIT trap purges the package and removes
# the user and directories it made.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(cd "$(dirname "$SMSGUARD")" && pwd)
[[ -f $BUILD/CPackConfig.cmake ]] ||
    fail "$BUILD (the directory of SMSGUARD) has no CPackConfig.cmake"
if sanitized_build; then
    skip "a sanitizer build; the package is built and tested from the plain build"
fi
[[ $(id -u) -eq 0 ]] || skip "installing a package needs root"
for c in dpkg dpkg-deb dpkg-shlibdeps cpack file; do
    command -v "$c" >/dev/null 2>&1 || skip "no $c here (dpkg-shlibdeps: package dpkg-dev; file: package file)"
done
if dpkg-query -W -f='${db:Status-Status}' smsguard 2>/dev/null | grep -qv '^not-installed$'; then
    skip "a smsguard package is on this machine already"
fi
getent passwd smsguard >/dev/null && skip "a user smsguard exists already"
getent group smsguard >/dev/null && skip "a group smsguard exists already"
for d in /etc/smsguard /var/log/smsguard; do
    [[ -e $d ]] && skip "$d exists already"
done

VERSION=$("$SMSGUARD" --version </dev/null | cut -d' ' -f2)
ARCH=$(dpkg --print-architecture)
DEB=$WORK/pkg/smsguard_${VERSION}_${ARCH}.deb

check "cpack -G DEB"
# cpack leaves the list of the files it staged in the build directory's install_manifest.txt,
# the record of the developer's own last `cmake --install`: keep that record as it was.
M=$BUILD/install_manifest.txt
[[ -f $M ]] && cp -p "$M" "$WORK/install_manifest.txt"
rc=0
(cd "$BUILD" && cpack -G DEB -B "$WORK/pkg") >"$WORK/cpack.log" 2>&1 || rc=$?
if [[ -f $WORK/install_manifest.txt ]]; then cp -p "$WORK/install_manifest.txt" "$M"; else rm -f "$M"; fi
((rc == 0)) || { cat "$WORK/cpack.log" >&2; fail "cpack -G DEB failed"; }
[[ -f $DEB ]] || { cat "$WORK/cpack.log" >&2; fail "cpack made no $(basename "$DEB")"; }
echo "   $(basename "$DEB"): $(stat -c %s "$DEB") bytes"

check "control fields"
assert_eq smsguard "$(dpkg-deb -f "$DEB" Package)" "Package"
assert_eq "$VERSION" "$(dpkg-deb -f "$DEB" Version)" "Version"
assert_eq "$ARCH" "$(dpkg-deb -f "$DEB" Architecture)" "Architecture"
depends=$(dpkg-deb -f "$DEB" Depends)
echo "   Depends: $depends"
for p in adduser openssl libc6 libssl3 libnghttp2-14 libconfig9 libev4 \
    libhttp-parser2.9; do
    [[ ", $depends," =~ ,\ ${p}[\ ,] ]] || fail "Depends lacks $p: $depends"
done
dpkg-deb -e "$DEB" "$WORK/control"
assert_eq "/etc/smsguard/smsguard.conf" "$(cat "$WORK/control/conffiles")" "conffiles"
for s in postinst prerm postrm; do
    [[ -x $WORK/control/$s ]] || fail "no executable $s in the package"
done

check "the package's files"
dpkg-deb -c "$DEB" | awk '{ print $6 }' | grep -v '/$' | sort >"$WORK/deb.files"
sed 's/^/   /' "$WORK/deb.files"
for f in ./usr/sbin/smsguard ./usr/bin/smsguard-audit ./usr/bin/smsguard-approve \
    ./etc/smsguard/smsguard.conf ./lib/systemd/system/smsguard.service \
    ./usr/share/man/man8/smsguard.8 ./usr/share/man/man5/smsguard.conf.5 \
    ./usr/share/man/man1/smsguard-audit.1 ./usr/share/man/man1/smsguard-approve.1 \
    ./usr/share/doc/smsguard/operations.md; do
    grep -qxF "$f" "$WORK/deb.files" || fail "the package has no $f"
done
assert_eq "" "$(grep -E '(sms-sim|/test_|/fuzz_|/replay_)' "$WORK/deb.files" || true)" \
    "simulator or test binaries in the package"

# From here on the machine changes: undo everything on the way out, pass or fail.
INSTALLED=0
deb__cleanup() {
    local rc=$? deadline
    set +e
    trap - ERR
    if ((INSTALLED)); then
        if [[ -n ${SG_PID:-} ]] && is_alive "$SG_PID"; then
            kill -TERM "$SG_PID"
            deadline=$((SECONDS + 10))
            while is_alive "$SG_PID" && ((SECONDS < deadline)); do sleep 0.05; done
            kill -KILL "$SG_PID" 2>/dev/null
        fi
        if dpkg-query -W smsguard >/dev/null 2>&1; then
            dpkg --purge smsguard >"$WORK/purge-cleanup.log" 2>&1 ||
                { cat "$WORK/purge-cleanup.log" >&2; rc=1; }
        fi
        # none of these existed before the test (checked above)
        rm -rf /etc/smsguard /var/log/smsguard
        getent passwd smsguard >/dev/null && userdel smsguard
        getent group smsguard >/dev/null && groupdel smsguard
    fi
    (exit "$rc")
    sg__cleanup
}
trap deb__cleanup EXIT

check "dpkg -i"
INSTALLED=1
dpkg -i "$DEB" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log" >&2; fail "dpkg -i failed"; }
sed 's/^/   /' "$WORK/install.log"
assert_eq "ii" "$(dpkg-query -W -f='${db:Status-Abbrev}' smsguard | tr -d ' ')" "package state"

check "the user, the group and the directories"
IFS=: read -r _ _ uid _ _ home shell < <(getent passwd smsguard) || fail "no user smsguard"
getent group smsguard >/dev/null || fail "no group smsguard"
assert_lt "$uid" 1000 "uid of smsguard (a system user)"
assert_eq /nonexistent "$home" "home of smsguard"
assert_eq /usr/sbin/nologin "$shell" "shell of smsguard"
assert_eq "smsguard adm 2750" "$(stat -c '%U %G %a' /var/log/smsguard)" "/var/log/smsguard"
assert_eq "root smsguard 750" "$(stat -c '%U %G %a' /etc/smsguard/tls)" "/etc/smsguard/tls"
assert_eq "root smsguard 640" "$(stat -c '%U %G %a' /etc/smsguard/tls/server.key)" "server.key"
openssl x509 -in /etc/smsguard/tls/server.crt -noout -checkend 86400 >/dev/null ||
    fail "the self-signed certificate is not valid for another day"

check "the unit is in place and not enabled"
U=/lib/systemd/system/smsguard.service
[[ -f $U ]] || fail "no $U"
grep -qxF "ExecStart=/usr/sbin/smsguard -c /etc/smsguard/smsguard.conf" "$U" ||
    fail "the unit's ExecStart: $(grep ExecStart= "$U")"
assert_eq "" "$(find /etc/systemd/system -name 'smsguard*' 2>/dev/null)" "links to the unit"
if command -v systemd-analyze >/dev/null 2>&1; then
    # with man installed, verify also finds the unit's Documentation= man pages
    man_opt=--man=yes
    command -v man >/dev/null 2>&1 || man_opt=--man=no
    out=$(systemd-analyze verify "$man_opt" "$U" 2>&1) || fail "systemd-analyze verify: $out"
    assert_eq "" "$out" "systemd-analyze verify output"
fi

check "the shipped configuration passes smsguard -t, as root and as smsguard"
[[ $(/usr/sbin/smsguard --version) == "smsguard $VERSION "* ]] || fail "the installed smsguard's version"
/usr/sbin/smsguard -t -c /etc/smsguard/smsguard.conf >"$WORK/t.out" 2>&1 ||
    fail "smsguard -t as root: $(cat "$WORK/t.out")"
AS_SMSGUARD=(setpriv --reuid=smsguard --regid=smsguard --init-groups --)
"${AS_SMSGUARD[@]}" /usr/sbin/smsguard -t -c /etc/smsguard/smsguard.conf >"$WORK/t.out" 2>&1 ||
    fail "smsguard -t as smsguard: $(cat "$WORK/t.out")"

check "the packaged smsguard serves as smsguard and writes /var/log/smsguard/audit.jsonl"
start_sim
free_port port
free_port admin_port
chmod 0711 "$WORK"
mkdir -m 0755 "$WORK/run"
sed -e "s|^    address = \"0.0.0.0\";|    address = \"127.0.0.1\";|" \
    -e "s|^    port = 8443;|    port = $port;|" -e "s|^  port = 9901;|  port = $admin_port;|" \
    -e "s|^  url = \".*\";|  url = \"http://127.0.0.1:$SIM_PORT\";|" -e 's|^workers = 0;|workers = 1;|' \
    /etc/smsguard/smsguard.conf >"$WORK/run/sg.conf"
chmod 0644 "$WORK/run/sg.conf"
echo "$port $admin_port" >"$WORK/run/sg.conf.ports"
printf '#!/bin/sh\nexec setpriv --reuid=smsguard --regid=smsguard --init-groups -- /usr/sbin/smsguard "$@"\n' \
    >"$WORK/as-smsguard"
chmod 0755 "$WORK/as-smsguard"
SMSGUARD=$WORK/as-smsguard start_guard "$WORK/run/sg.conf"
CA_CRT=/etc/smsguard/tls/server.crt
assert_eq smsguard "$(stat -c %U "/proc/$SG_PID")" "the user smsguard runs as"
assert_eq 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$SG_ADMIN_URL/healthz")" "/healthz"
stop_post http2 vasa-1 "$WORK/stop"
assert_eq 500 "$REQ_CODE" "an unauthenticated stop-test request (the shipped policy is empty)"
assert_vim_fault "$WORK/stop.body" "$WORK/stop.hdr" NotAuthenticated
record_none_of TestFailoverReplicationGroupStop_Task
stop_guard_term "$SG_PID"
A=/var/log/smsguard/audit.jsonl
assert_eq "smsguard adm 640" "$(stat -c '%U %G %a' "$A")" "the audit log's owner and mode"
out=$(/usr/bin/smsguard-audit verify "$A" 2>&1) || fail "smsguard-audit verify $A: $out"
echo "   $out"

check "dpkg -r: the programs go, the configuration and the user stay"
dpkg -r smsguard >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log" >&2; fail "dpkg -r failed"; }
for f in /usr/sbin/smsguard /usr/bin/smsguard-audit /usr/bin/smsguard-approve "$U"; do
    [[ -e $f ]] && fail "$f is still there after dpkg -r"
done
[[ -f /etc/smsguard/smsguard.conf ]] || fail "dpkg -r removed the configuration"
getent passwd smsguard >/dev/null || fail "dpkg -r removed the user"

check "dpkg --purge: the rest goes, except the audit records"
dpkg --purge smsguard >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; fail "dpkg --purge failed"; }
sed 's/^/   /' "$WORK/purge.log"
dpkg-query -W smsguard >/dev/null 2>&1 && fail "dpkg still knows smsguard after --purge"
[[ -e /etc/smsguard ]] && fail "/etc/smsguard is still there: $(find /etc/smsguard)"
getent passwd smsguard >/dev/null && fail "the user smsguard is still there"
getent group smsguard >/dev/null && fail "the group smsguard is still there"
assert_eq "" "$(find /etc/systemd /var/lib/systemd -name '*smsguard*' 2>/dev/null)" \
    "systemd links and deb-systemd-helper state left"
assert_contains "$(cat "$WORK/purge.log")" "kept /var/log/smsguard" "the purge's output"
assert_eq "root" "$(stat -c %U "$A")" "owner of the kept audit log"
rm -rf /var/log/smsguard

echo "PASS: $TEST_NAME"
