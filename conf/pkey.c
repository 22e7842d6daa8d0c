/*
 * conf/pkey.c - sg_conf_jwt_key_why: a JWT verification key against its alg (see pkey.h).
 */
#include "conf/pkey.h"

#include <openssl/evp.h>
#include <string.h>

const char *sg_conf_jwt_key_why(const EVP_PKEY *pkey, sg_jwt_alg_t alg)
{
    char group[64];

    switch (alg) {
    case SG_JWT_RS256:
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            return "not an RSA public key (alg RS256)";
        if (EVP_PKEY_get_bits(pkey) < SG_JWT_RSA_MIN_BITS)
            return "RSA key shorter than 2048 bits";
        return NULL;
    case SG_JWT_ES256:
        if (!EVP_PKEY_is_a(pkey, "EC") ||
            EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1 ||
            strcmp(group, "prime256v1") != 0)
            return "not an EC P-256 public key (alg ES256)";
        return NULL;
    case SG_JWT_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519"))
            return "not an Ed25519 public key (alg EdDSA)";
        return NULL;
    default:
        return "unsupported alg";
    }
}
