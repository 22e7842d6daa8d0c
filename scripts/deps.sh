#!/usr/bin/env bash
# scripts/deps.sh - install the Debian 12 packages smsguard needs. Idempotent: installs only
# what is missing (apt-get update at most once), uses sudo only when not root, never asks
# questions. Other systems: `scripts/deps.sh --list` prints the packages to find there.
#
#   scripts/deps.sh --demo   what ./scripts/demo.sh needs: build smsguard and sms-sim, make
#                            the development certificates, send requests
#   scripts/deps.sh --test   the above plus what ./scripts/test.sh needs (the default)
#   scripts/deps.sh --list [--demo|--test]   print the package names, install nothing
#
# The lists assume nothing beyond a debootstrap "minbase" Debian 12 (essential and required
# packages: bash, coreutils, util-linux, mount, findutils, grep, sed, mawk, diffutils, gzip,
# tar, login, passwd, adduser, dpkg, apt). Every other command a script or a test runs is
# here, next to the package that provides it; a test that still cannot find one is reported
# as skipped (tests/integration/lib.sh `need`), never as passed.
set -euo pipefail

# The demo: the build, the certificates, the requests.
DEMO_PACKAGES=(
    build-essential      # gcc, make
    cmake pkg-config     # cmake, ctest, cpack; pkg-config finds the libraries
    libnghttp2-dev libssl-dev libcjson-dev libconfig-dev libev-dev libhttp-parser-dev
    openssl              # openssl: the development CA and certificates (and the .deb's postinst)
    curl                 # curl: the demo's and the tests' HTTP/1.1 and HTTP/2 client
    python3              # python3: JSON in the demo; the tests' helpers (tests/integration/lib/)
    ca-certificates
)

# The tests, on top of the demo's.
TEST_PACKAGES=(
    libcmocka-dev            # unit tests (tests/unit)
    clang libclang-rt-14-dev # libFuzzer targets (scripts/fuzz.sh)
    nghttp2-client           # nghttp (21, 30), h2load (24, 43, 45, 53, 60, 82, 92, 95)
    python3-hpack            # HPACK for the raw HTTP/2 client lib/h2raw.py (35, 36, 81-88)
    iproute2                 # ss: listening sockets (44)
    file                     # file: cpack's DEB generator runs it on the binaries (91)
    dpkg-dev                 # dpkg-shlibdeps: the .deb's Depends (91)
    man-db                   # man, groff: the man pages render (90, 91)
    systemd                  # systemd-analyze verify: the unit file (90, 91)
    haproxy                  # two instances behind HAProxy (92)
    rsyslog                  # rsyslogd: the audit log's syslog copy received over TCP (56)
    testssl.sh               # testssl: the TLS scan (85)
    tzdata                   # /usr/share/zoneinfo: change windows (tests/unit/policy/test_window.c)
)

mode="test" list=0
for a in "$@"; do
    case $a in
    --demo) mode="demo" ;;
    --test) mode="test" ;;
    --list) list=1 ;;
    -h | --help)
        sed -n '2,15p' "$0"
        exit 0
        ;;
    *)
        echo "deps: unknown option $a (try --help)" >&2
        exit 2
        ;;
    esac
done

PACKAGES=("${DEMO_PACKAGES[@]}")
[[ $mode == test ]] && PACKAGES+=("${TEST_PACKAGES[@]}")

if ((list)); then
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: not a Debian system (no dpkg/apt-get); make sure these are installed:" >&2
    echo "deps:   ${PACKAGES[*]}" >&2
    exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
    if [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true) != installed ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "deps: all ${#PACKAGES[@]} packages for the $mode are installed"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
        exit 1
    }
    SUDO=(sudo)
fi

echo "deps: installing for the $mode: ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
# Server packages (haproxy, rsyslog, systemd) must not start system services on install: the tests
# run their own instances on loopback.
rcd=/usr/sbin/policy-rc.d
own_rcd=0
if [[ ! -e $rcd ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$rcd" >/dev/null
    "${SUDO[@]}" chmod +x "$rcd"
    own_rcd=1
fi
rc=0
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
((own_rcd == 0)) || "${SUDO[@]}" rm -f "$rcd"
((rc == 0)) || { echo "deps: apt-get install failed (exit $rc)" >&2; exit "$rc"; }
echo "deps: done"
