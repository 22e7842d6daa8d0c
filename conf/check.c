/*
 * conf/check.c - the per-key checks (SG_CK_* in conf/keys.h), run by the walk once a
 * key's value is stored.
 *
 * This file owns what a key's type cannot say: addresses, host and server names, the
 * upstream URL, token hashes, header names, and every file the configuration names
 * (certificates and their private keys, CA bundles, JWT public keys, secrets, files
 * smsguard will write). Files are read through base/'s bounded reader as secrets, checked
 * and wiped; no key or secret outlives its check, and none is ever quoted in an error.
 * It leaves the walk to walk.c and the checks across keys to conf.c.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf-int.h"
#include "conf/conf.h"
#include "conf/keys.h"
#include "conf/pkey.h"

#define CK_SECRET_MIN 32 /* HMAC-SHA256 keys: RFC 7518 3.2 wants >= 256 bits */

typedef int (*ck_fn)(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj);

/* ---- files ------------------------------------------------------------------------- */

/* The file of key WHAT, with the error at setting S. Read as a secret: it may hold a key. */
static int ck_load(ck_t *ck, const config_setting_t *s, const char *what, const char *path,
                   sg_file_t *b)
{
    const char *why;

    if (sg_file_read(b, path, CK_FILE_MAX, SG_FILE_SECRET, &why) != SG_OK)
        return ck_err(ck, s, "'%s': cannot read '%s': %s", what, path, why);
    return 0;
}

/*
 * PEM pass phrase callback: never prompt (OpenSSL's default reads the terminal, which a
 * daemon at reload must never do); note that a pass phrase was wanted.
 */
static int ck_no_pass(char *buf, int size, int rwflag, void *u)
{
    if (u != NULL)
        *(int *)u = 1;
    return -1;
}

static int ck_load_cert(ck_t *ck, const config_setting_t *s, const char *what, const char *path,
                        X509 **out)
{
    sg_file_t b;
    BIO *bio = NULL;
    int rc = -1;

    *out = NULL;
    if (ck_load(ck, s, what, path, &b) != 0)
        goto out;
    bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio == NULL) {
        ck_err(ck, NULL, "out of memory");
        goto out;
    }
    *out = PEM_read_bio_X509(bio, NULL, ck_no_pass, NULL);
    if (*out == NULL) {
        ck_err(ck, s, "'%s': '%s': not a PEM certificate", what, path);
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    sg_file_dispose(&b);
    ERR_clear_error();
    return rc;
}

static int ck_load_private_key(ck_t *ck, const config_setting_t *s, const char *what,
                               const char *path, EVP_PKEY **out)
{
    sg_file_t b;
    BIO *bio = NULL;
    int rc = -1, encrypted = 0;

    *out = NULL;
    if (ck_load(ck, s, what, path, &b) != 0)
        goto out;
    bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio == NULL) {
        ck_err(ck, NULL, "out of memory");
        goto out;
    }
    *out = PEM_read_bio_PrivateKey(bio, NULL, ck_no_pass, &encrypted);
    if (*out == NULL) {
        ck_err(ck, s,
               encrypted ? "'%s': '%s': encrypted private keys are not supported"
                         : "'%s': '%s': not a PEM private key",
               what, path);
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    sg_file_dispose(&b);
    ERR_clear_error();
    return rc;
}

/* A raw secret of at least MIN bytes (HS256 key, task handle key). Contents never shown. */
static int ck_secret(ck_t *ck, const config_setting_t *s, const char *what, const char *path,
                     size_t min)
{
    sg_file_t b;
    int rc = -1;

    if (ck_load(ck, s, what, path, &b) != 0)
        goto out;
    if (b.len == 0) {
        ck_err(ck, s, "'%s': '%s': empty", what, path);
        goto out;
    }
    if (b.len < min) {
        ck_err(ck, s, "'%s': '%s': shorter than %zu bytes", what, path, min);
        goto out;
    }
    rc = 0;
out:
    sg_file_dispose(&b);
    return rc;
}

/*
 * A file smsguard will create or append to: if it exists it must be a writable regular
 * file, else its directory must exist and be writable. Checked now so that a typo is a
 * start-up error rather than a refused first request (audit fail_closed).
 */
static int ck_writable(ck_t *ck, const config_setting_t *s, const char *what, const char *path)
{
    struct stat st;
    char *dir = NULL, *slash;
    int rc = -1, e = 0;

    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            ck_err(ck, s, "'%s': '%s': %s", what, path, strerror(EISDIR));
            goto out;
        }
        if (access(path, W_OK) != 0) {
            ck_err(ck, s, "'%s': cannot write '%s': %s", what, path, strerror(errno));
            goto out;
        }
        rc = 0;
        goto out;
    }
    if (errno != ENOENT && errno != ENOTDIR) {
        ck_err(ck, s, "'%s': cannot write '%s': %s", what, path, strerror(errno));
        goto out;
    }
    dir = strdup(path);
    if (dir == NULL) {
        ck_err(ck, NULL, "out of memory");
        goto out;
    }
    slash = strrchr(dir, '/'); /* path is absolute: there is one */
    if (slash == dir)
        slash[1] = '\0';
    else if (slash != NULL)
        *slash = '\0';
    if (stat(dir, &st) != 0)
        e = errno;
    else if (!S_ISDIR(st.st_mode))
        e = ENOTDIR;
    else if (access(dir, W_OK | X_OK) != 0)
        e = errno;
    if (e != 0) {
        ck_err(ck, s, "'%s': directory '%s': %s", what, dir, strerror(e));
        goto out;
    }
    rc = 0;
out:
    free(dir);
    return rc;
}

/* ---- per-key checks (SG_CK_*) ------------------------------------------------------- */

static int ck_address(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    unsigned char a[16];
    const char *v = *CK_AT(obj, k->off, char *);

    if (inet_pton(AF_INET, v, a) != 1 && inet_pton(AF_INET6, v, a) != 1)
        return ck_err(ck, s, "'%s' must be a numeric IPv4 or IPv6 address", k->path);
    return 0;
}

static int ck_ca_file(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *path = *CK_AT(obj, k->off, char *);
    sg_file_t b = {NULL, 0, 0};
    BIO *bio = NULL;
    X509 *x;
    int rc = -1, n = 0;

    if (path[0] == '\0')
        return 0; /* "": no client certificates / the system store */
    if (ck_load(ck, s, k->path, path, &b) != 0)
        goto out;
    bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio == NULL) {
        ck_err(ck, NULL, "out of memory");
        goto out;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, ck_no_pass, NULL)) != NULL) {
        X509_free(x);
        n++;
    }
    if (n == 0) {
        ck_err(ck, s, "'%s': '%s': no PEM certificate found", k->path, path);
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    sg_file_dispose(&b);
    ERR_clear_error();
    return rc;
}

static int ck_hostname_ok(const char *p, size_t n);

/* NAME (length N) into the arena, lower-cased (host names compare case-insensitively,
 * RFC 4343; reqcheck.c compares the request's lower-cased host byte for byte). */
static char *ck_lowerdup(ck_t *ck, const char *name, size_t n)
{
    char *p = ck_strndup(ck, name, n);

    for (size_t i = 0; p != NULL && i < n; i++)
        p[i] = (char)tolower((unsigned char)p[i]);
    return p;
}

/* One listen.server_names entry: "*" alone, "*.suffix", a host name or an IP literal
 * (IPv6 without brackets). */
static int ck_server_name_entry(const char *v)
{
    unsigned char a[16];

    if (v[0] == '*' && v[1] == '.')
        v += 2;
    return ck_hostname_ok(v, strlen(v)) || inet_pton(AF_INET6, v, a) == 1;
}

/* Configured server names (setting NS, key PATH): valid entries, lower-cased in place.
 * STAR: "*" alone may turn the check off. */
static int ck_names(ck_t *ck, const config_setting_t *ns, const char *path, sg_conf_strv_t *names,
                    int star)
{
    for (size_t i = 0; i < names->n; i++) {
        const char *v = names->v[i];

        if (strcmp(v, "*") == 0 ? !star || names->n != 1 : !ck_server_name_entry(v))
            return ck_err(ck, ns, "'%s': '%s' is not a host name, '*.suffix'%s an IP address%s",
                          path, v, star ? "," : " or", star ? ", or '*' alone" : "");
        if ((names->v[i] = ck_lowerdup(ck, v, strlen(v))) == NULL)
            return -1;
    }
    return 0;
}

/*
 * listen.server_names: check what is configured, or take the certificate's names: its
 * subjectAltName DNS and IP entries, else its subject CN (what a client verifying the
 * certificate accepts, RFC 6125 6.4). A certificate that names nothing usable would
 * misdirect every request: that is a configuration error, not a surprise at run time.
 */
static int ck_server_names(ck_t *ck, const config_setting_t *s, sg_conf_listen_t *l, X509 *x)
{
    const config_setting_t *ns = ck_member(s, "server_names");
    const config_setting_t *cs = ck_member(config_setting_get_member(s, "tls"), "certificate");
    GENERAL_NAMES *gens;
    char buf[256];
    int n;

    if (l->server_names.n > 0)
        return ck_names(ck, ns, "listen.server_names", &l->server_names, 1);
    gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    n = gens != NULL ? sk_GENERAL_NAME_num(gens) : 0;
    l->server_names.v = ck_alloc(ck, (size_t)(n > 0 ? n : 1) * sizeof(char *));
    for (int i = 0; l->server_names.v != NULL && i < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        const unsigned char *d;
        int len;

        if (g->type == GEN_DNS) {
            d = ASN1_STRING_get0_data(g->d.dNSName);
            len = ASN1_STRING_length(g->d.dNSName);
            if (len <= 0 || memchr(d, '\0', (size_t)len) != NULL)
                continue;
            snprintf(buf, sizeof(buf), "%.*s", len, (const char *)d);
        } else if (g->type == GEN_IPADD) {
            d = ASN1_STRING_get0_data(g->d.iPAddress);
            len = ASN1_STRING_length(g->d.iPAddress);
            if (inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf, sizeof(buf)) == NULL ||
                (len != 4 && len != 16))
                continue;
        } else {
            continue;
        }
        if (!ck_server_name_entry(buf))
            continue;
        if ((l->server_names.v[l->server_names.n] = ck_lowerdup(ck, buf, strlen(buf))) == NULL)
            break;
        l->server_names.n++;
    }
    GENERAL_NAMES_free(gens);
    if (l->server_names.v == NULL)
        return -1;
    if (n == 0 &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, sizeof(buf)) > 0 &&
        ck_server_name_entry(buf)) {
        if ((l->server_names.v[0] = ck_lowerdup(ck, buf, strlen(buf))) == NULL)
            return -1;
        l->server_names.n = 1;
    }
    if (l->server_names.n == 0)
        return ck_err(ck, cs,
                      "'listen.tls.certificate': '%s' names no host name or address: set "
                      "'listen.server_names'",
                      l->certificate);
    return 0;
}

/* A certificate and its private key (keys GROUP.certificate and GROUP.private_key, settings
 * CS and KS): both readable, and belonging together. The certificate into *out (the caller
 * frees it) when out is not NULL. */
static int ck_cert_pair(ck_t *ck, const config_setting_t *cs, const config_setting_t *ks,
                        const char *group, const char *cert, const char *key, X509 **out)
{
    char ckey[64], kkey[64];
    X509 *x = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    snprintf(ckey, sizeof(ckey), "%s.certificate", group);
    snprintf(kkey, sizeof(kkey), "%s.private_key", group);
    if (ck_load_cert(ck, cs, ckey, cert, &x) != 0 ||
        ck_load_private_key(ck, ks, kkey, key, &pkey) != 0)
        goto out;
    if (X509_check_private_key(x, pkey) != 1) {
        ck_err(ck, ks, "'%s': '%s': does not match the certificate '%s'", kkey, key, cert);
        goto out;
    }
    rc = 0;
out:
    if (rc == 0 && out != NULL)
        *out = x;
    else
        X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

/* A listen element: its certificate, its private key, that they belong together, and the
 * names it answers for. */
static int ck_listen(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_listen_t *l = obj;
    const config_setting_t *tls = config_setting_get_member(s, "tls");
    const config_setting_t *cs = ck_member(tls, "certificate");
    const config_setting_t *ks = ck_member(tls, "private_key");
    X509 *x = NULL;
    int rc;

    rc = ck_cert_pair(ck, cs, ks, "listen.tls", l->certificate, l->private_key, &x);
    if (rc == 0)
        rc = ck_server_names(ck, s, l, x);
    X509_free(x);
    return rc;
}

/* A vhost element: its names, and its own certificate and key (both or neither) that
 * belong together. Its upstream is resolved by conf.c, once every upstream is known. */
static int ck_vhost(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_vhost_t *v = obj;
    const config_setting_t *cs = ck_member(s, "certificate"), *ks = ck_member(s, "private_key");
    int rc;

    (void)k;
    if (ck_names(ck, ck_member(s, "server_names"), "listen.vhosts.server_names",
                 &v->server_names, 0) != 0)
        return -1;
    if ((v->certificate == NULL) != (v->private_key == NULL))
        return ck_err(ck, v->certificate == NULL ? s : cs,
                      "'listen.vhosts': 'certificate' and 'private_key' go together");
    if (v->certificate == NULL)
        return 0;
    rc = ck_cert_pair(ck, cs, ks, "listen.vhosts", v->certificate, v->private_key, NULL);
    return rc;
}

/*
 * A host name as it may appear in a URL, SNI and a Host header: letters, digits, '-',
 * '.', '_' only. Anything else (spaces, CR/LF, '@', '%') could smuggle a second header or
 * another authority upstream.
 */
static int ck_hostname_ok(const char *p, size_t n)
{
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '.' && p[i] != '_')
            return 0;
    return 1;
}

static int ck_server_name(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *v = *CK_AT(obj, k->off, char *);

    if (v[0] != '\0' && !ck_hostname_ok(v, strlen(v)))
        return ck_err(ck, s, "'%s' must be a host name", k->path);
    return 0;
}

typedef struct {
    int tls;          /* https */
    const char *host; /* into the url; IPv6 without brackets */
    size_t host_len;
    int ipv6;
    int port;       /* explicit or the scheme's */
    int port_given; /* written in the url */
} ck_url_t;

/*
 * Parse "http[s]://host[:port][/]". The upstream is a single origin: user info, another
 * path, a query or a fragment would be ignored or misread by someone, so they are
 * refused. Returns 0, or -1 with *why (static). The url itself is never echoed: a
 * user:password in it must not reach a log.
 */
static int ck_url_parse(const char *url, ck_url_t *u, const char **why)
{
    char buf[INET6_ADDRSTRLEN];
    unsigned char a[16];
    const char *p, *end, *q, *rb;
    long port = 0;

    memset(u, 0, sizeof(*u));
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        u->tls = 1;
    } else {
        *why = "scheme must be http:// or https://";
        return -1;
    }
    u->port = u->tls ? 443 : 80;
    if (strpbrk(p, "?#") != NULL) {
        *why = "a query or fragment is not allowed";
        return -1;
    }
    end = p + strcspn(p, "/");
    if (memchr(p, '@', (size_t)(end - p)) != NULL) {
        *why = "user info is not allowed";
        return -1;
    }
    if (*p == '[') {
        rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL || (size_t)(rb - p - 1) >= sizeof(buf)) {
            *why = "bad IPv6 address";
            return -1;
        }
        memcpy(buf, p + 1, (size_t)(rb - p - 1));
        buf[rb - p - 1] = '\0';
        if (inet_pton(AF_INET6, buf, a) != 1) {
            *why = "bad IPv6 address";
            return -1;
        }
        u->host = p + 1;
        u->host_len = (size_t)(rb - p - 1);
        u->ipv6 = 1;
        q = rb + 1;
    } else {
        for (q = p; q < end && *q != ':'; q++)
            ;
        if (!ck_hostname_ok(p, (size_t)(q - p))) {
            *why = q == p ? "missing host" : "bad host name";
            return -1;
        }
        u->host = p;
        u->host_len = (size_t)(q - p);
    }
    if (q < end) {
        if (*q++ != ':' || q == end || end - q > 5) {
            *why = "bad port (1-65535)";
            return -1;
        }
        for (; q < end; q++) {
            if (!isdigit((unsigned char)*q)) {
                *why = "bad port (1-65535)";
                return -1;
            }
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535) {
            *why = "bad port (1-65535)";
            return -1;
        }
        u->port = (int)port;
        u->port_given = 1;
    }
    if (*end != '\0' && strcmp(end, "/") != 0) {
        *why = "a path other than \"/\" is not allowed";
        return -1;
    }
    return 0;
}

/* An upstream (a list element, or the one-vCenter group stored in legacy_upstream): split
 * the url, and settle the authority sent upstream. */
static int ck_upstream(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_upstream_t *up =
        k->type == SG_KT_LIST ? obj : &((sg_conf_t *)obj)->legacy_upstream;
    const char *why, *lb, *rb;
    ck_url_t u;

    if (ck_url_parse(up->url, &u, &why) != 0)
        return ck_err(ck, ck_member(s, "url"), "'%s.url': %s", k->path, why);
    up->tls = u.tls;
    up->port = u.port;
    up->host = ck_strndup(ck, u.host, u.host_len);
    if (up->host == NULL)
        return -1;
    /* docs/design.md: Host/:authority is always the upstream's, never the client's. The port
     * is written only when it is not the scheme's default (RFC 9110 7.2). */
    lb = u.ipv6 ? "[" : "";
    rb = u.ipv6 ? "]" : "";
    if (up->server_name[0] != '\0')
        up->authority = ck_strdup(ck, up->server_name);
    else if (u.port_given && u.port != (u.tls ? 443 : 80))
        up->authority = ck_printf(ck, "%s%s%s:%d", lb, up->host, rb, u.port);
    else
        up->authority = ck_printf(ck, "%s%s%s", lb, up->host, rb);
    return up->authority != NULL ? 0 : -1;
}

/* A name other parts print unquoted: a metrics label value, an access log field, a task
 * handle's member. Letters, digits, '_', '-', '.' keep every one of them simple. */
static int ck_name(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *v = *CK_AT(obj, k->off, char *);
    size_t n = strlen(v);

    if (n > SG_CONF_NAME_MAX || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789_-.") != n)
        return ck_err(ck, s, "'%s': '%.*s' must be at most %d letters, digits, '_', '-' or '.'",
                      k->path, (int)(n > 80 ? 80 : n), v, SG_CONF_NAME_MAX);
    return 0;
}

/*
 * audit.syslog.address: "unix:PATH" (a datagram socket such as /dev/log), "udp:HOST:PORT" or
 * "tcp:HOST:PORT" (HOST a name or address, an IPv6 one in brackets).
 */
int sg_conf_syslog_address(const char *v, sg_syslog_addr_t *out, const char **why)
{
    const char *p, *host, *port;
    size_t hlen;
    unsigned char a[16];
    char *end;
    long n;

    memset(out, 0, sizeof(*out));
    if (strncmp(v, "unix:", 5) == 0) {
        /* sun_path is 108 bytes with its NUL (unix(7)). */
        if (v[5] != '/' || strlen(v + 5) > 107) {
            *why = "a unix socket needs an absolute path of at most 107 bytes";
            return -1;
        }
        out->transport = SG_SYSLOG_UNIX;
        snprintf(out->host, sizeof(out->host), "%s", v + 5);
        return 0;
    }
    if (strncmp(v, "udp:", 4) == 0) {
        out->transport = SG_SYSLOG_UDP;
    } else if (strncmp(v, "tcp:", 4) == 0) {
        out->transport = SG_SYSLOG_TCP;
    } else {
        *why = "must be \"unix:PATH\", \"udp:HOST:PORT\" or \"tcp:HOST:PORT\"";
        return -1;
    }
    p = v + 4;
    if (*p == '[') {
        const char *rb = strchr(p, ']');

        host = p + 1;
        hlen = rb != NULL ? (size_t)(rb - host) : 0;
        if (rb == NULL || hlen >= sizeof(out->host) || rb[1] != ':') {
            *why = "bad IPv6 address";
            return -1;
        }
        memcpy(out->host, host, hlen);
        if (inet_pton(AF_INET6, out->host, a) != 1) {
            *why = "bad IPv6 address";
            return -1;
        }
        port = rb + 2;
    } else {
        host = p;
        port = strrchr(p, ':');
        hlen = port != NULL ? (size_t)(port - p) : 0;
        if (port == NULL || !ck_hostname_ok(host, hlen)) {
            *why = port == NULL ? "missing :PORT" : "bad host name";
            return -1;
        }
        memcpy(out->host, host, hlen); /* ck_hostname_ok: at most 253 bytes */
        port++;
    }
    n = strtol(port, &end, 10);
    if (!isdigit((unsigned char)*port) || *end != '\0' || n < 1 || n > 65535) {
        *why = "bad port (1-65535)";
        return -1;
    }
    snprintf(out->port, sizeof(out->port), "%ld", n);
    return 0;
}

static int ck_syslog_address(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k,
                             void *obj)
{
    sg_syslog_addr_t a;
    const char *why;

    if (sg_conf_syslog_address(*CK_AT(obj, k->off, char *), &a, &why) != 0)
        return ck_err(ck, s, "'%s': %s", k->path, why);
    return 0;
}

/* RFC 5424 APP-NAME = 1*48PRINTUSASCII (%d33-126): it goes into every header unescaped. */
static int ck_app_name(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *v = *CK_AT(obj, k->off, char *);
    size_t n = strlen(v);

    for (size_t i = 0; i < n; i++)
        if (v[i] < 33 || v[i] > 126)
            n = 0;
    if (n == 0 || n > 48)
        return ck_err(ck, s, "'%s' must be 1 to 48 printable ASCII characters without spaces",
                      k->path);
    return 0;
}

static int ck_unhex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Token hash: 64 hex digits (either case) into the token's uint8_t[32]. */
static int ck_sha256(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_token_t *t = obj;
    const char *v = config_setting_get_string(s);
    int hi, lo;

    if (strlen(v) != 2 * sizeof(t->sha256))
        goto bad;
    for (size_t i = 0; i < sizeof(t->sha256); i++) {
        hi = ck_unhex(v[2 * i]);
        lo = ck_unhex(v[2 * i + 1]);
        if (hi < 0 || lo < 0)
            goto bad;
        t->sha256[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
bad:
    return ck_err(ck, s, "'%s' must be 64 hex digits (the SHA-256 of the token)", k->path);
}

/* A JWT verification key of the type ALG needs (RFC 7518 3.3-3.4, RFC 8037). */
static int ck_public_key(ck_t *ck, const config_setting_t *s, const char *path, sg_jwt_alg_t alg)
{
    const char *what = "policy.jwt.keys.public_key", *why;
    sg_file_t b;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    if (ck_load(ck, s, what, path, &b) != 0)
        goto out;
    bio = BIO_new_mem_buf(b.data, (int)b.len);
    if (bio == NULL) {
        ck_err(ck, NULL, "out of memory");
        goto out;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, ck_no_pass, NULL);
    if (pkey == NULL) {
        ck_err(ck, s, "'%s': '%s': not a PEM public key", what, path);
        goto out;
    }
    if ((why = sg_conf_jwt_key_why(pkey, alg)) != NULL) {
        ck_err(ck, s, "'%s': '%s': %s", what, path, why);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    sg_file_dispose(&b);
    ERR_clear_error();
    return rc;
}

/*
 * A jwt key element: an asymmetric alg verifies with public_key only, HS256 with
 * secret_file only. Holding both would let a token choose which one is used
 * (RFC 8725 2.1, algorithm confusion), so that is refused rather than ignored.
 */
static int ck_jwt_key(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const sg_conf_jwt_key_t *key = obj;
    const char *alg = config_setting_get_string(config_setting_get_member(s, "alg"));

    if (key->alg == SG_JWT_HS256) {
        if (key->public_key != NULL)
            return ck_err(ck, ck_member(s, "public_key"),
                          "'policy.jwt.keys.public_key' is not allowed with alg %s", alg);
        if (key->secret_file == NULL)
            return ck_err(ck, s, "missing required key 'policy.jwt.keys.secret_file' (alg %s)",
                          alg);
        return ck_secret(ck, ck_member(s, "secret_file"), "policy.jwt.keys.secret_file",
                         key->secret_file, CK_SECRET_MIN);
    }
    if (key->secret_file != NULL)
        return ck_err(ck, ck_member(s, "secret_file"),
                      "'policy.jwt.keys.secret_file' is not allowed with alg %s", alg);
    if (key->public_key == NULL)
        return ck_err(ck, s, "missing required key 'policy.jwt.keys.public_key' (alg %s)", alg);
    return ck_public_key(ck, ck_member(s, "public_key"), key->public_key, key->alg);
}

static int ck_task_key(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *path = *CK_AT(obj, k->off, char *);

    if (path[0] == '\0')
        return 0;
    return ck_secret(ck, s, k->path, path, CK_SECRET_MIN);
}

static int ck_signing_key(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *path = *CK_AT(obj, k->off, char *);
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    if (path[0] == '\0')
        return 0;
    if (ck_load_private_key(ck, s, k->path, path, &pkey) != 0)
        goto out;
    if (!EVP_PKEY_is_a(pkey, "ED25519")) {
        ck_err(ck, s, "'%s': '%s': not an Ed25519 private key", k->path, path);
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    return rc;
}

static int ck_audit_file(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *path = *CK_AT(obj, k->off, char *);

    return path[0] == '\0' ? 0 : ck_writable(ck, s, k->path, path);
}

/*
 * routes.drop_headers (proxy/headers.c applies it): each entry a header name (RFC 9110
 * 5.1: token characters) or "prefix*" ('*' only at the end). Refused: "*" alone (it would
 * drop every header), an entry that would drop Content-Type or vmware-api-session-id
 * (guarded routes cannot work without them), and more than CK_DROP_HEADERS_MAX entries
 * (every client header is matched against the list on the request path).
 */
#define CK_DROP_HEADERS_MAX 64

static int ck_drop_headers(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    static const char *const needed[] = {"content-type", "vmware-api-session-id"};
    const sg_conf_strv_t *sv = CK_AT(obj, k->off, sg_conf_strv_t);

    if (sv->n > CK_DROP_HEADERS_MAX)
        return ck_err(ck, s, "'%s' must have at most %d entries", k->path, CK_DROP_HEADERS_MAX);
    /* Errors name the key's line, which is exact: libconfig dates an array element by its
     * parser's lookahead, so the last one of a list spread over lines gets the line of the
     * closing bracket. The message quotes the entry. */
    for (size_t i = 0; i < sv->n; i++) {
        const char *v = sv->v[i];
        size_t len = strlen(v), plen = len;

        if (v[len - 1] == '*')
            plen--; /* a prefix */
        if (plen == 0)
            return ck_err(ck, s, "'%s': '*' alone would drop every header", k->path);
        for (size_t j = 0; j < plen; j++)
            if (!isalnum((unsigned char)v[j]) && strchr("!#$%&'+-.^_`|~", v[j]) == NULL)
                return ck_err(ck, s, "'%s': '%.64s' is not a header name or 'prefix*'", k->path,
                              v);
        for (size_t j = 0; j < sizeof(needed) / sizeof(needed[0]); j++)
            if (plen < len ? strncasecmp(needed[j], v, plen) == 0
                           : strcasecmp(needed[j], v) == 0)
                return ck_err(ck, s, "'%s': '%.64s' would drop %s, which guarded routes need",
                              k->path, v, needed[j]);
    }
    return 0;
}

/* log.access: "off", "stderr" or a path (resolved here, as SG_K_PATH would). */
static int ck_log_access(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    char **v = CK_AT(obj, k->off, char *);

    if (strcmp(*v, "off") == 0 || strcmp(*v, "stderr") == 0)
        return 0;
    if ((*v)[0] == '\0')
        return ck_err(ck, s, "'%s' must be \"off\", \"stderr\" or a file path", k->path);
    if ((*v = ck_path(ck, *v)) == NULL)
        return -1;
    return ck_writable(ck, s, k->path, *v);
}

/* ---- change control: where each entry is, and its ticket pattern compiled now ---- */

static int ck_window(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_window_t *w = obj;

    (void)k;
    return (w->at = ck_where(ck, s)) == NULL ? -1 : 0;
}

static int ck_approver(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_approver_t *a = obj;

    (void)k;
    return (a->at = ck_where(ck, s)) == NULL ? -1 : 0;
}

static int ck_ticket(ck_t *ck, const config_setting_t *s, const char *what, const char *ticket,
                     void **re)
{
    if (ticket[0] == '\0')
        return 0;
    return (*re = ck_regcomp(ck, ck_member(s, "ticket"), what, ticket)) == NULL ? -1 : 0;
}

static int ck_operation(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_operation_t *o = obj;
    const char *h = o->ticket_header;

    (void)k;
    for (size_t i = 0; h[i] != '\0'; i++)
        if (!isalnum((unsigned char)h[i]) && strchr("!#$%&'+-.^`|~", h[i]) == NULL)
            return ck_err(ck, ck_member(s, "ticket_header"),
                          "'operations.ticket_header': '%.64s' is not a header name", h);
    if (ck_ticket(ck, s, "operations.ticket", o->ticket, &o->ticket_re) != 0)
        return -1;
    return (o->at = ck_where(ck, s)) == NULL ? -1 : 0;
}

static int ck_tenant(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_tenant_t *t = obj;

    (void)k;
    if (ck_ticket(ck, s, "policy.tenants.ticket", t->ticket, &t->ticket_re) != 0)
        return -1;
    return (t->at = ck_where(ck, s)) == NULL ? -1 : 0;
}

static const ck_fn ck_checks[SG_CK__COUNT] = {
    [SG_CK_ADDRESS] = ck_address,         [SG_CK_CA_FILE] = ck_ca_file,
    [SG_CK_LISTEN] = ck_listen,           [SG_CK_UPSTREAM] = ck_upstream,
    [SG_CK_SHA256] = ck_sha256,           [SG_CK_JWT_KEY] = ck_jwt_key,
    [SG_CK_TASK_KEY] = ck_task_key,       [SG_CK_SIGNING_KEY] = ck_signing_key,
    [SG_CK_AUDIT_FILE] = ck_audit_file,   [SG_CK_LOG_ACCESS] = ck_log_access,
    [SG_CK_SERVER_NAME] = ck_server_name,     [SG_CK_DROP_HEADERS] = ck_drop_headers,
    [SG_CK_NAME] = ck_name,               [SG_CK_VHOST] = ck_vhost,
    [SG_CK_SYSLOG_ADDRESS] = ck_syslog_address, [SG_CK_APP_NAME] = ck_app_name,
    [SG_CK_WINDOW] = ck_window,           [SG_CK_OPERATION] = ck_operation,
    [SG_CK_TENANT] = ck_tenant,           [SG_CK_APPROVER] = ck_approver,
};

int ck_run(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    if (k->check == SG_CK_NONE)
        return 0;
    if (k->check >= SG_CK__COUNT || ck_checks[k->check] == NULL)
        return ck_err(ck, s, "internal error: key '%s' has no check %d", k->path, k->check);
    return ck_checks[k->check](ck, s, k, obj);
}
