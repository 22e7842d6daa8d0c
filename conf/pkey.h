/*
 * conf/pkey.h - the check that a JWT verification key is of the type its alg needs, shared
 * by the loader (conf/check.c, at sg_conf_load) and the policy (policy/keys.c, which reads the
 * file again when it builds, since it may have been replaced in between).
 */
#ifndef SG_CONF_PKEY_H
#define SG_CONF_PKEY_H

#include <openssl/types.h>

#include "conf/conf.h"

/* RFC 7518 section 3.3: an RSA key for RS256 has at least 2048 bits. */
#define SG_JWT_RSA_MIN_BITS 2048

/*
 * NULL when pkey can verify alg's signatures (RS256: RSA of at least SG_JWT_RSA_MIN_BITS;
 * ES256: EC on P-256; EdDSA: Ed25519), else a static reason such as "not an RSA public key
 * (alg RS256)". HS256 and unknown algs have no public key: "unsupported alg". A key of the
 * wrong type is how algorithm confusion starts (RFC 8725 section 2.1).
 */
const char *sg_conf_jwt_key_why(const EVP_PKEY *pkey, sg_jwt_alg_t alg);

#endif
