#!/usr/bin/env bash
# 90_install: `cmake --install` of the build directory under test lays out what an operator
# gets (docs/operations.md "Files and directories"): smsguard in sbin, smsguard-audit and
# smsguard-approve in bin, the production configuration, the systemd unit with the install's
# paths, the four man pages and the documents; and nothing else (no sms-sim, no test
# binaries). The binaries run, the man pages render without a warning and name every
# command-line option and configuration key (conf/keys.c), the unit passes `systemd-analyze verify` (when
# systemd is installed), the installed configuration passes `smsguard -t` once its
# certificate and audit directory exist, a second install keeps a changed configuration,
# and a DESTDIR install with the prefix /usr gives the Debian layout.
#
# The build directory is the one holding $SMSGUARD. Nothing outside $WORK is written (but
# for the empty marker /run/systemd/systemd-units-load that systemd-analyze leaves).
# Works for the sanitizer build too: its binaries are installed and run like the others.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BUILD=$(cd "$(dirname "$SMSGUARD")" && pwd)
[[ -f $BUILD/cmake_install.cmake ]] ||
    fail "$BUILD (the directory of SMSGUARD) is not a CMake build directory"
SRC=$SG_SOURCE_DIR
ROOT=$WORK/root

# install_to PREFIX LOG [VAR=VALUE...]: cmake --install the build directory. Every install
# rule is in the default component; naming it makes CMake write its list of installed files
# to install_manifest_Unspecified.txt (removed here) rather than install_manifest.txt, which
# stays the record of the developer's own last install (docs/operations.md uninstalls with it).
install_to() {
    local prefix=$1 log=$2 rc=0
    shift 2
    env "$@" cmake --install "$BUILD" --prefix "$prefix" --component Unspecified >"$log" 2>&1 || rc=$?
    rm -f "$BUILD/install_manifest_Unspecified.txt"
    ((rc == 0)) || { cat "$log" >&2; fail "cmake --install --prefix $prefix failed"; }
}

check "cmake --install --prefix \$WORK/root"
install_to "$ROOT" "$WORK/install.log"
(cd "$ROOT" && find . \( -type f -o -type l \) | sort) >"$WORK/files"
sed 's/^/   /' "$WORK/files"
for f in sbin/smsguard bin/smsguard-audit bin/smsguard-approve etc/smsguard/smsguard.conf \
    lib/systemd/system/smsguard.service share/man/man8/smsguard.8 \
    share/man/man5/smsguard.conf.5 share/man/man1/smsguard-audit.1 \
    share/man/man1/smsguard-approve.1 \
    share/doc/smsguard/README.md share/doc/smsguard/design.md share/doc/smsguard/operations.md \
    share/doc/smsguard/examples/smsguard.conf; do
    [[ -f $ROOT/$f ]] || fail "not installed: $f"
done
[[ -x $ROOT/sbin/smsguard && -x $ROOT/bin/smsguard-audit && -x $ROOT/bin/smsguard-approve ]] ||
    fail "binaries not executable"
assert_eq 13 "$(wc -l <"$WORK/files")" "number of installed files"
assert_eq "" "$(grep -E '(sms-sim|/test_|/fuzz_|/replay_)' "$WORK/files" || true)" \
    "simulator or test binaries installed"

check "the installed binaries run"
ver=$("$ROOT/sbin/smsguard" --version </dev/null)
echo "   $ver"
assert_match '^smsguard [0-9]+\.[0-9]+\.[0-9]+ ' "$ver" "smsguard --version"
VERSION=$(cut -d' ' -f2 <<<"$ver")
help=$("$ROOT/sbin/smsguard" --help </dev/null)
assert_contains "$help" "-c, --config FILE" "smsguard --help"
assert_eq "smsguard-audit $VERSION" "$("$ROOT/bin/smsguard-audit" --version </dev/null)" \
    "smsguard-audit --version"
ahelp=$("$ROOT/bin/smsguard-audit" --help </dev/null)
assert_contains "$ahelp" "verify FILE" "smsguard-audit --help"
assert_eq "smsguard-approve $VERSION" "$("$ROOT/bin/smsguard-approve" --version </dev/null)" \
    "smsguard-approve --version"

check "the man pages render without a warning"
MANS=("$ROOT/share/man/man8/smsguard.8" "$ROOT/share/man/man5/smsguard.conf.5"
    "$ROOT/share/man/man1/smsguard-audit.1" "$ROOT/share/man/man1/smsguard-approve.1")
rendered=0
for m in "${MANS[@]}"; do
    name=$(basename "$m")
    if command -v groff >/dev/null 2>&1; then
        warn=$(groff -man -Tutf8 -ww -z "$m" 2>&1) || fail "groff failed on $name: $warn"
        assert_eq "" "$warn" "groff -ww warnings for $name"
        rendered=1
    fi
    if command -v mandoc >/dev/null 2>&1; then
        warn=$(mandoc -Tlint -Wwarning "$m" 2>&1) || true
        assert_eq "" "$warn" "mandoc -Tlint warnings for $name"
    fi
    if command -v man >/dev/null 2>&1; then
        out=$(MANWIDTH=80 man -l "$m" 2>"$WORK/man.err") || fail "man -l $name failed: $(cat "$WORK/man.err")"
        assert_eq "" "$(cat "$WORK/man.err")" "man -l $name on stderr"
        assert_contains "$out" "NAME" "man -l $name"
        assert_match "${name%.*} +- " "$out" "man -l $name (NAME section)"
        rendered=1
    fi
done
((rendered)) || skip "neither groff nor man is installed (Debian package man-db): the man pages were not rendered"

check "smsguard(8) names every option of smsguard --help"
opts=$(grep -oE -- '--[a-z]+' <<<"$help" | sort -u)
for o in $opts; do
    grep -qF -- "${o//-/\\-}" "$SRC/man/smsguard.8" || fail "smsguard.8 does not document $o"
done
echo "   $(tr '\n' ' ' <<<"$opts")"

check "smsguard-approve(1) names every option of smsguard-approve --help"
opts=$(grep -oE -- '--[a-z-]+[a-z]' <<<"$("$ROOT/bin/smsguard-approve" --help </dev/null)" | sort -u)
for o in $opts; do
    grep -qF -- "${o//-/\\-}" "$SRC/man/smsguard-approve.1" || fail "smsguard-approve.1 does not document $o"
done
echo "   $(tr '\n' ' ' <<<"$opts")"

check "smsguard.conf(5) documents exactly the keys of conf/keys.c"
sed -nE 's/^ *(GROUP|LIST|INT|BOOL|STR|ENUM|STRV|STRV_CK)\("([a-z0-9_.]+)".*/\2/p' "$SRC/conf/keys.c" |
    sort -u >"$WORK/keys.table"
# the tags of the .TP entries from the first key section to EXAMPLES
awk '/^\.SH TOP LEVEL/ { on = 1 } /^\.SH EXAMPLES/ { on = 0 }
     on && prev == ".TP" && $1 == ".B" { print $2 } { prev = $1 }' "$SRC/man/smsguard.conf.5" |
    sort -u >"$WORK/keys.man"
(($(wc -l <"$WORK/keys.table") > 50)) || fail "found only $(wc -l <"$WORK/keys.table") keys in conf/keys.c"
missing=$(comm -23 "$WORK/keys.table" "$WORK/keys.man" | tr '\n' ' ')
extra=$(comm -13 "$WORK/keys.table" "$WORK/keys.man" | tr '\n' ' ')
assert_eq "" "$missing" "keys of conf/keys.c missing from man/smsguard.conf.5"
assert_eq "" "$extra" "keys in man/smsguard.conf.5 that conf/keys.c does not know"
echo "   $(wc -l <"$WORK/keys.table") keys"

check "the unit carries the install's paths and the hardening"
UNIT=$ROOT/lib/systemd/system/smsguard.service
CONF=$ROOT/etc/smsguard/smsguard.conf
for line in "ExecStart=$ROOT/sbin/smsguard -c $CONF" "ExecStartPre=$ROOT/sbin/smsguard -t -c $CONF" \
    "ExecReload=/bin/kill -HUP \$MAINPID" "User=smsguard" "KillSignal=SIGTERM" \
    "Restart=on-failure" "NoNewPrivileges=yes" "CapabilityBoundingSet=" \
    "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "PrivateDevices=yes" \
    "ProtectKernelTunables=yes" "ProtectKernelModules=yes" "ProtectControlGroups=yes" \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "RestrictNamespaces=yes" \
    "LockPersonality=yes" "MemoryDenyWriteExecute=yes" "SystemCallArchitectures=native" \
    "SystemCallFilter=@system-service" "ReadWritePaths=/var/log/smsguard"; do
    grep -qxF -- "$line" "$UNIT" || fail "the unit has no line '$line'"
done
grep -qE '^AmbientCapabilities=' "$UNIT" && fail "the unit grants an ambient capability"
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$UNIT")
drain=$(sed -n 's/^ *drain_timeout_ms = \([0-9]*\);.*/\1/p' "$CONF")
[[ -n $stop && -n $drain ]] || fail "no TimeoutStopSec in the unit or drain_timeout_ms in the configuration"
assert_lt "$((drain / 1000))" "$stop" "drain_timeout_ms (s) below the unit's TimeoutStopSec"
if command -v systemd-analyze >/dev/null 2>&1; then
    out=$(systemd-analyze verify --man=no "$UNIT" 2>&1) || fail "systemd-analyze verify: $out"
    assert_eq "" "$out" "systemd-analyze verify output"
    echo "   systemd-analyze verify: clean"
fi

check "the installed configuration passes smsguard -t once its files exist"
assert_contains "$(cat "$CONF")" "certificate = \"$ROOT/etc/smsguard/tls/server.crt\";" \
    "the configuration's certificate path"
setup_certs
mkdir -p "$ROOT/etc/smsguard/tls" "$WORK/log"
cp "$SERVER_CRT" "$ROOT/etc/smsguard/tls/server.crt"
cp "$SERVER_KEY" "$ROOT/etc/smsguard/tls/server.key"
# the audit directory is the system's (/var/log/smsguard): point the copy at one of ours
sed "s|\"/var/log/smsguard/|\"$WORK/log/|" "$CONF" >"$WORK/check.conf"
cmp -s "$CONF" "$WORK/check.conf" && fail "the configuration names no /var/log/smsguard/ file"
rc=0
"$ROOT/sbin/smsguard" -t -c "$WORK/check.conf" >"$WORK/t.out" 2>"$WORK/t.err" </dev/null || rc=$?
assert_eq 0 "$rc" "smsguard -t on the installed configuration ($(cat "$WORK/t.err"))"

check "a second install keeps a changed configuration and writes smsguard.conf.dist"
cp "$CONF" "$WORK/conf.shipped"
echo "# changed by the operator" >>"$CONF"
install_to "$ROOT" "$WORK/install2.log"
assert_contains "$(tail -n 1 "$CONF")" "changed by the operator" "the kept configuration"
cmp -s "$WORK/conf.shipped" "$ROOT/etc/smsguard/smsguard.conf.dist" ||
    fail "smsguard.conf.dist is not the shipped configuration"
assert_contains "$(cat "$WORK/install2.log")" "smsguard.conf.dist" "the second install's output"

check "DESTDIR install with the prefix /usr: the Debian layout"
D=$WORK/dest
install_to /usr "$WORK/install3.log" DESTDIR="$D"
for f in usr/sbin/smsguard usr/bin/smsguard-audit etc/smsguard/smsguard.conf \
    lib/systemd/system/smsguard.service usr/share/man/man8/smsguard.8 \
    usr/share/doc/smsguard/operations.md; do
    [[ -f $D/$f ]] || fail "DESTDIR install: no $f"
done
grep -qxF "ExecStart=/usr/sbin/smsguard -c /etc/smsguard/smsguard.conf" \
    "$D/lib/systemd/system/smsguard.service" || fail "DESTDIR install: the unit's ExecStart"
grep -qF 'certificate = "/etc/smsguard/tls/server.crt";' "$D/etc/smsguard/smsguard.conf" ||
    fail "DESTDIR install: the configuration's certificate path"
outside=$(cd "$D" && find . -mindepth 1 -path ./usr -prune -o -path ./etc -prune -o -path ./lib -prune -o -print)
assert_eq "" "$outside" "DESTDIR install: files outside usr/, etc/ and lib/"

echo "PASS: $TEST_NAME"
