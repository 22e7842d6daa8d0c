#!/usr/bin/env python3
"""bench/mkjwt.py - print an ES256 JWT for the bench policy (bench/smsguard.conf.in).

    mkjwt.py KEY.pem KID [LIFETIME_S]

Signs with `openssl dgst -sha256 -sign` (DER ECDSA signature, turned into the JWS r||s
form). Claims: iss https://idp.bench, aud smsguard, sub bench, tenant t1, roles
[dr-operator], iat now, exp now + LIFETIME_S (default one day).
"""
import base64
import json
import subprocess
import sys
import time


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_to_raw(der):
    # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r || s, 32 bytes each
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\x00").rjust(32, b"\x00")
        i += 2 + n
    return out


def main():
    key, kid = sys.argv[1], sys.argv[2]
    life = int(sys.argv[3]) if len(sys.argv) > 3 else 86400
    now = int(time.time())
    header = {"alg": "ES256", "typ": "JWT", "kid": kid}
    claims = {"iss": "https://idp.bench", "aud": "smsguard", "sub": "bench", "tenant": "t1",
              "roles": ["dr-operator"], "iat": now, "exp": now + life}
    signing_input = (b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64(json.dumps(claims, separators=(",", ":")).encode()))
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                         input=signing_input.encode(), capture_output=True, check=True).stdout
    print(signing_input + "." + b64(der_to_raw(der)))


if __name__ == "__main__":
    main()
