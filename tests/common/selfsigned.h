/*
 * tests/common/selfsigned.h - the one-hour self-signed certificate the unit tests and
 * fuzz targets generate for their listeners and client certificates (nothing secret is
 * ever checked in).
 */
#ifndef SG_TEST_SELFSIGNED_H
#define SG_TEST_SELFSIGNED_H

#include <openssl/evp.h>
#include <openssl/x509.h>

/* A version 3 certificate for K with subject and issuer CN=cn, serial 1, valid from now
 * for an hour, signed by K with SHA-256. NULL on failure. */
static inline X509 *sg_test_self_signed(EVP_PKEY *k, const char *cn)
{
    X509 *x = X509_new();
    X509_NAME *n;

    if (x == NULL)
        return NULL;
    n = X509_get_subject_name(x);
    if (X509_set_version(x, 2) != 1 || ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, n) != 1 || X509_set_pubkey(x, k) != 1 ||
        X509_sign(x, k, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

#endif
