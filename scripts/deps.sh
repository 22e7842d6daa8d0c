#!/usr/bin/env bash
# scripts/deps.sh - install the Debian 12 packages smsguard needs to build, test and run the
# demo. Idempotent: installs only what is missing (apt-get update at most once), uses sudo
# only when not root, never asks questions. Other systems: install the same packages by hand.
set -euo pipefail

PACKAGES=(
    build-essential cmake pkg-config
    libnghttp2-dev libssl-dev libcjson-dev libconfig-dev libev-dev libhttp-parser-dev
    libcmocka-dev
    curl nghttp2-client openssl python3 ca-certificates clang libclang-rt-14-dev
    dpkg-dev man-db python3-h2 haproxy testssl.sh
)

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
    echo "deps: all ${#PACKAGES[@]} packages are installed"
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

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
# Server packages (haproxy, for the two-instance test) must not start system
# services on install: the tests run their own instances on loopback.
rcd=/usr/sbin/policy-rc.d
own_rcd=0
if [[ ! -e $rcd ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$rcd" >/dev/null
    "${SUDO[@]}" chmod +x "$rcd"
    own_rcd=1
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
((own_rcd == 0)) || "${SUDO[@]}" rm -f "$rcd"
echo "deps: done"
