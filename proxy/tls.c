/*
 * proxy/tls.c - SSL_CTX construction: the listeners' server contexts (ALPN h2
 * and http/1.1, TLS 1.2 minimum by default, 1.3 preferred, modern AEAD ciphers
 * only, optional client certificates) and the upstream client context
 * (certificate verification against upstream.ca_file, session resumption).
 *
 * Contexts are built once per generation (at start-up and on each SIGHUP, which so
 * reloads certificates, keys and client CAs) and shared by all workers; OpenSSL
 * makes SSL_new on a shared SSL_CTX thread-safe.
 */
#include "proxy/proxy.h"

#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

/* TLS 1.2 suites: ECDHE with AEAD only (forward secrecy, no CBC, no RSA kex): the
 * ECDHE part of Mozilla's "intermediate" profile; its DHE suites are left out so no
 * finite-field DH parameters (LOGJAM, weak groups) are ever offered. */
#define SG_TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                 \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* TLS 1.3 suites, named rather than left to the library's build-time default, which
 * could include CCM suites. */
#define SG_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* Key exchange groups of the "intermediate" profile: no secp521r1 or X448, which
 * only cost handshake CPU (a cheap amplification for a hostile client) for no gain. */
#define SG_TLS_GROUPS "X25519:P-256:P-384"

const char *sg_tls_errstr(char *buf, size_t len)
{
    unsigned long e, last = 0;

    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(last, buf, len);
    return buf;
}

/* ALPN (RFC 7301): the server's preference wins, h2 first. */
static int tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x02h2\x08http/1.1";
    unsigned char *sel;

    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* no common protocol: refuse (RFC 7301 3.2) */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* SG_ERR when this OpenSSL rejects one of the lists: refuse to run on its defaults. */
static int tls_common(SSL_CTX *ctx, int min_version)
{
    if (SSL_CTX_set_min_proto_version(ctx, min_version) != 1 ||
        SSL_CTX_set_cipher_list(ctx, SG_TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, SG_TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, SG_TLS_GROUPS) != 1)
        return SG_ERR;
    /* No compression (CRIME), no renegotiation at all (client-initiated renegotiation
     * is a CPU exhaustion vector; RFC 7540 9.2.1 forbids it under HTTP/2 anyway). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Buffers move as they grow; writes may be partial (conn.c retries the rest). */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Read whole socket buffers, not a record header then its body: one recv()
     * per readable event (conn.c's BIO knows when the socket is empty). */
    SSL_CTX_set_read_ahead(ctx, 1);
    return SG_OK;
}

SSL_CTX *sg_tls_server_ctx(const sg_conf_listen_t *l, const char *certificate,
                           const char *private_key, char *err, size_t errlen)
{
    char ebuf[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        goto fail;
    if (tls_common(ctx, l->min_version ? l->min_version : TLS1_2_VERSION) != SG_OK)
        goto fail;
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, NULL);
    /* Resumption mostly by stateless tickets (OpenSSL's default): no server memory per
     * client, and the ticket key is random per context, so each SIGHUP rotates it. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    if (certificate == NULL) {
        certificate = l->certificate;
        private_key = l->private_key;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, private_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    if (l->client_ca != NULL && l->client_ca[0] != '\0') {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(l->client_ca);

        if (names == NULL || SSL_CTX_load_verify_locations(ctx, l->client_ca, NULL) != 1)
            goto fail;
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    /* A session may only be resumed in the context that made it. Without an id context
     * OpenSSL fails every resumption attempt when client certificates are verified
     * (TLS 1.3 clients got an "internal error" alert on their second connection). */
    if (SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"smsguard", 8) != 1)
        goto fail;
    return ctx;
fail:
    snprintf(err, errlen, "TLS setup for %s:%d (%s): %s", l->address, l->port, certificate,
             sg_tls_errstr(ebuf, sizeof(ebuf)));
    SSL_CTX_free(ctx);
    return NULL;
}

int sg_tls_name_matches(const char *host, const char *name)
{
    const char *dot;

    if (name[0] == '*' && name[1] == '.') {
        dot = strchr(host, '.');
        return dot != NULL && dot > host && strcmp(dot + 1, name + 2) == 0;
    }
    return strcmp(host, name) == 0;
}

int sg_tls_names_match(const sg_conf_strv_t *names, const char *host)
{
    for (size_t i = 0; i < names->n; i++)
        if (sg_tls_name_matches(host, names->v[i]))
            return 1;
    return 0;
}

/*
 * The client named a server (RFC 6066 3): the first vhost whose names match gets the
 * connection, with its certificate when it has one. A name no vhost has, or none at all,
 * keeps the listener's certificate and handshake: which host a request may name is
 * sg_req_check's to decide (421), with the same names in the same order.
 */
static int tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
    const sg_gen_tls_t *t = arg;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char host[256];
    size_t n;

    (void)alert;
    if (sni == NULL || (n = strlen(sni)) == 0 || n >= sizeof(host))
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i <= n; i++)
        host[i] = (char)(sni[i] >= 'A' && sni[i] <= 'Z' ? sni[i] + 32 : sni[i]);
    if (n > 1 && host[n - 1] == '.')
        host[n - 1] = '\0';
    for (size_t j = 0; j < t->l->nvhosts; j++) {
        if (!sg_tls_names_match(&t->l->vhosts[j].server_names, host))
            continue;
        /* Same verify mode, client CAs and protocol settings: only the certificate differs
         * (sg_tls_server_ctx built both from the same listener). */
        if (t->vhost[j] != NULL && SSL_set_SSL_CTX(ssl, t->vhost[j]) == NULL)
            return SSL_TLSEXT_ERR_ALERT_FATAL;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_OK;
}

void sg_tls_set_vhosts(sg_gen_tls_t *t)
{
    SSL_CTX_set_tlsext_servername_callback(t->ctx, tls_sni_cb);
    SSL_CTX_set_tlsext_servername_arg(t->ctx, t);
}

SSL_CTX *sg_tls_client_ctx(const sg_conf_upstream_t *u, char *err, size_t errlen)
{
    char ebuf[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL)
        goto fail;
    if (tls_common(ctx, TLS1_2_VERSION) != SG_OK)
        goto fail;
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    if (u->ca_file[0] != '\0') {
        if (SSL_CTX_load_verify_locations(ctx, u->ca_file, NULL) != 1)
            goto fail;
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        goto fail;
    }
    SSL_CTX_set_verify(ctx, u->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return ctx;
fail:
    snprintf(err, errlen, "upstream '%s' TLS setup: %s", u->name,
             sg_tls_errstr(ebuf, sizeof(ebuf)));
    SSL_CTX_free(ctx);
    return NULL;
}
