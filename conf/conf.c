/*
 * conf/conf.c - libconfig file -> immutable, refcounted sg_conf_t.
 *
 * This file owns reading and validating the configuration: the libconfig parse, the walk
 * of the tree against the key table (conf/keys.c), the checks of every file the
 * configuration names (certificates, keys, secrets, log directories), and the cross-key
 * checks (duplicates, references). It leaves the meaning of the values to their users:
 * proxy/ binds and connects, policy/ decides, filters/ audit and split. Nothing here keeps
 * a secret: files holding one are read to be checked, wiped and freed; the object keeps
 * their paths.
 *
 * Every error is one line, "file:line: reason" ("file: reason" when no line applies),
 * with the file as given to sg_conf_load() or as libconfig names an @include'd one.
 * Every relative path in the file is resolved against the directory of the
 * configuration file and stored absolute, so that a later chdir() or a reload from
 * another directory reads the same files.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "conf/conf.h"
#include "conf/keys.h"
#include "conf/pkey.h"

#define CK_FILE_MAX (16u << 20) /* no certificate bundle or secret is anywhere near this */
#define CK_PATH_MAX 256         /* dotted key paths; longer unknown names are cut */
#define CK_INCLUDE_DEPTH 10     /* libconfig's own @include limit */
#define CK_SECRET_MIN 32        /* HMAC-SHA256 keys: RFC 7518 3.2 wants >= 256 bits */

#define CK_AT(obj, off, T) ((T *)(void *)((char *)(obj) + (off)))

/* ---- arena: every string and array of one sg_conf_t, freed at once ---------------- */

#define ARENA_CHUNK 4096

typedef struct arena_chunk_s {
    struct arena_chunk_s *next;
    size_t size, used;
    max_align_t data[]; /* aligned for anything */
} arena_chunk_t;

typedef struct {
    arena_chunk_t *head;
} arena_t;

/* Zeroed, aligned memory that lives until arena_free(), or NULL. */
static void *arena_alloc(arena_t *a, size_t n)
{
    const size_t al = _Alignof(max_align_t);
    arena_chunk_t *ch = a->head, *nc;
    size_t size;

    if (n > SIZE_MAX / 2)
        return NULL;
    n = n == 0 ? al : (n + al - 1) & ~(al - 1);
    if (ch == NULL || ch->size - ch->used < n) {
        size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        nc = calloc(1, sizeof(*nc) + size);
        if (nc == NULL)
            return NULL;
        nc->size = size;
        if (ch != NULL && size == n) {
            /* A block that fills its own chunk goes behind the head, so the room left
             * in the head still serves the small strings that follow. */
            nc->used = n;
            nc->next = ch->next;
            ch->next = nc;
            return nc->data;
        }
        nc->next = ch;
        a->head = ch = nc;
    }
    ch->used += n;
    return (char *)ch->data + ch->used - n;
}

static void arena_free(arena_t *a)
{
    arena_chunk_t *ch, *next;

    if (a == NULL)
        return;
    for (ch = a->head; ch != NULL; ch = next) {
        next = ch->next;
        free(ch);
    }
    free(a);
}

static void conf_free(sg_conf_t *c)
{
    if (c == NULL)
        return;
    arena_free(c->arena);
    free(c);
}

/* ---- the loader's state and its one error format ---------------------------------- */

typedef struct {
    const char *file;            /* as given: every message names it */
    char *dir;                   /* absolute directory of file (malloc) */
    config_t *cf;                /* the parsed tree; settings give file and line */
    sg_conf_t *c;                /* being built; NULL once handed to the caller */
    const sg_conf_key_t **owner; /* per key row: its enclosing LIST row, NULL for root */
    char *err;
    size_t errlen;
} ck_t;

typedef int (*ck_fn)(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj);

__attribute__((format(printf, 4, 0))) static int ck_verr(ck_t *ck, const char *file, int line,
                                                         const char *fmt, va_list ap)
{
    int n;

    if (ck->errlen == 0)
        return -1;
    if (line > 0)
        n = snprintf(ck->err, ck->errlen, "%s:%d: ", file, line);
    else
        n = snprintf(ck->err, ck->errlen, "%s: ", file);
    if (n >= 0 && (size_t)n < ck->errlen)
        vsnprintf(ck->err + n, ck->errlen - (size_t)n, fmt, ap);
    /* One line, whatever a file name or a string value in the file holds. */
    for (char *q = ck->err; *q != '\0'; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = '?';
    return -1;
}

/* "file:line: reason" at an explicit place. Always returns -1. */
__attribute__((format(printf, 4, 5))) static int ck_errat(ck_t *ck, const char *file, int line,
                                                          const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ck_verr(ck, file, line, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * The name to show for FILE, a name libconfig gives (NULL: the main file). libconfig 1.5
 * names what comes from an @include'd file by the name written after @include, though
 * it opened include_dir/name: show the file it opened. BUF holds the result if needed.
 */
static const char *ck_file_name(const ck_t *ck, const char *file, char *buf, size_t size)
{
    if (file == NULL || strcmp(file, ck->file) == 0)
        return ck->file;
    if (file[0] != '/' && ck->dir != NULL &&
        (size_t)snprintf(buf, size, "%s/%s", ck->dir, file) < size)
        return buf;
    return file;
}

/* "file:line: reason" at setting S (NULL: the file itself). Always returns -1. */
__attribute__((format(printf, 3, 4))) static int ck_err(ck_t *ck, const config_setting_t *s,
                                                        const char *fmt, ...)
{
    char buf[PATH_MAX];
    const char *file =
        ck_file_name(ck, s != NULL ? config_setting_source_file(s) : NULL, buf, sizeof(buf));
    va_list ap;

    va_start(ap, fmt);
    ck_verr(ck, file, s != NULL ? config_setting_source_line(s) : 0, fmt, ap);
    va_end(ap);
    return -1;
}

static void *ck_alloc(ck_t *ck, size_t n)
{
    void *p = arena_alloc(ck->c->arena, n);

    if (p == NULL)
        ck_err(ck, NULL, "out of memory");
    return p;
}

static char *ck_strndup(ck_t *ck, const char *s, size_t n)
{
    char *p = ck_alloc(ck, n + 1);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static char *ck_strdup(ck_t *ck, const char *s)
{
    return ck_strndup(ck, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static char *ck_printf(ck_t *ck, const char *fmt, ...)
{
    va_list ap;
    char *p;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || (p = ck_alloc(ck, (size_t)n + 1)) == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Member NAME of group G for an error's position, else G itself. */
static const config_setting_t *ck_member(const config_setting_t *g, const char *name)
{
    const config_setting_t *m = g != NULL ? config_setting_get_member(g, name) : NULL;

    return m != NULL ? m : g;
}

/* Member NAME of element I of the list at PATH (for cross-element messages). */
static const config_setting_t *ck_elem(ck_t *ck, const char *path, size_t i, const char *name)
{
    const config_setting_t *l = config_lookup(ck->cf, path);
    const config_setting_t *e = l != NULL ? config_setting_get_elem(l, (unsigned)i) : NULL;

    return ck_member(e, name);
}

/* A relative PATH resolved against the configuration's directory, in the arena. */
static char *ck_path(ck_t *ck, const char *path)
{
    if (path[0] == '/')
        return ck_strdup(ck, path);
    return ck_printf(ck, "%s%s%s", ck->dir, strcmp(ck->dir, "/") == 0 ? "" : "/", path);
}

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

/* ---- @include'd files and 32-bit integer literals ------------------------------------ */

/*
 * libconfig 1.5 (Debian 12) silently wraps an integer literal that does not fit in 32
 * bits (5000000000 reads as 705032704, well inside most ranges). So the file's text is
 * scanned once after a successful parse, with libconfig's lexical rules (comments,
 * strings, names, @include), and any integer literal outside int32 without the 'L'
 * suffix is an error at its own line (ints = 1).
 *
 * The same scan runs once before the parse with ints = 0, only to check that every
 * @include'd file is a regular file we can read: libconfig fopen()s the name itself, and
 * when reading then fails (a directory: EISDIR) its flex scanner calls exit(2) ("input in
 * flex scanner failed"), which would end the whole process on a SIGHUP reload. A NUL byte
 * is refused first (ck_text): the scan stops at one, libconfig does not.
 */
static int ck_scan(ck_t *ck, const char *file, const char *p, int depth, int ints);

/* B, read from FILE, is text: no NUL byte. Returns 0, or -1 with the error at its line. */
static int ck_text(ck_t *ck, const char *file, const sg_file_t *b)
{
    const unsigned char *nul = memchr(b->data, '\0', b->len);
    int line = 1;

    if (nul == NULL)
        return 0;
    for (const unsigned char *q = b->data; q < nul; q++)
        line += *q == '\n';
    return ck_errat(ck, file, line, "NUL byte in the file");
}

static int ck_scan_include(ck_t *ck, const char *file, int line, const char *name, int depth,
                           int ints)
{
    sg_file_t b = {NULL, 0, 0};
    char *path = NULL;
    const char *why;
    int rc = -1;

    if (depth >= CK_INCLUDE_DEPTH)
        return ck_errat(ck, file, line, "@include nested too deeply");
    /* The same name libconfig opened (include_dir + "/" + name). */
    if (asprintf(&path, "%s/%s", ck->dir, name) < 0) {
        path = NULL;
        ck_err(ck, NULL, "out of memory");
        goto out;
    }
    if (sg_file_read(&b, path, CK_FILE_MAX, 0, &why) != SG_OK) {
        ck_errat(ck, file, line, "cannot read '%s': %s", path, why);
        goto out;
    }
    if (ck_text(ck, path, &b) != 0)
        goto out;
    rc = ck_scan(ck, path, (const char *)b.data, depth + 1, ints);
out:
    sg_file_dispose(&b);
    free(path);
    return rc;
}

static int ck_scan(ck_t *ck, const char *file, const char *p, int depth, int ints)
{
    char name[PATH_MAX];
    const char *q;
    long long v;
    size_t n;
    int line = 1, hex;

    while (*p != '\0') {
        if (*p == '\n') {
            line++;
            p++;
        } else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            for (p += 2; *p != '\0' && !(p[0] == '*' && p[1] == '/'); p++)
                line += *p == '\n';
            p += *p != '\0' ? 2 : 0;
        } else if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                line += *p == '\n';
            }
            p += *p != '\0';
        } else if (strncmp(p, "@include", 8) == 0) {
            for (p += 8; *p == ' ' || *p == '\t'; p++)
                ;
            if (*p != '"')
                continue; /* libconfig refuses it */
            /* Exactly the name libconfig will open, or refused: its escapes and line
             * breaks in a name are its own business, and the name must be the one
             * checked here. */
            for (p++, n = 0; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f)
                    return ck_errat(ck, file, line,
                                    "@include: a file name with '\\' or a control character");
                if (n + 1 >= sizeof(name))
                    return ck_errat(ck, file, line, "@include: file name too long");
                name[n++] = *p;
            }
            name[n] = '\0';
            if (*p != '"')
                continue; /* unterminated: libconfig refuses it */
            p++;
            if (ck_scan_include(ck, file, line, name, depth, ints) != 0)
                return -1;
        } else if (isalpha((unsigned char)*p) || *p == '*') {
            while (isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '*')
                p++;
        } else if (isdigit((unsigned char)*p) ||
                   ((*p == '-' || *p == '+') && isdigit((unsigned char)p[1]))) {
            q = p + (*p == '-' || *p == '+');
            hex = q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
            for (q += hex ? 2 : 0; hex ? isxdigit((unsigned char)*q) : isdigit((unsigned char)*q);)
                q++;
            if (!hex && (*q == '.' || *q == 'e' || *q == 'E')) {
                while (*q != '\0' && strchr("0123456789.eE+-", *q) != NULL)
                    q++; /* a float: not ours to check */
            } else if (*q == 'L') {
                q++; /* an explicit 64-bit integer: libconfig reads those right */
            } else {
                errno = 0;
                v = strtoll(p, NULL, hex ? 16 : 10);
                /* libconfig takes 0x80000000..0xFFFFFFFF as negative: refuse those too. */
                if (ints && (errno == ERANGE || v < INT_MIN || v > INT_MAX))
                    return ck_errat(ck, file, line, "integer '%.*s' is out of range",
                                    (int)(q - p > 40 ? 40 : q - p), p);
            }
            p = q;
        } else {
            p++;
        }
    }
    return 0;
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

    if (l->server_names.n > 0) {
        for (size_t i = 0; i < l->server_names.n; i++) {
            const char *v = l->server_names.v[i];

            if (strcmp(v, "*") == 0 ? l->server_names.n != 1 : !ck_server_name_entry(v))
                return ck_err(ck, ns,
                              "'listen.server_names': '%s' is not a host name, '*.suffix', "
                              "an IP address, or '*' alone",
                              v);
            if ((l->server_names.v[i] = ck_lowerdup(ck, v, strlen(v))) == NULL)
                return -1;
        }
        return 0;
    }
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

/* A listen element: its certificate, its private key, that they belong together, and the
 * names it answers for. */
static int ck_listen(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_listen_t *l = obj;
    const config_setting_t *tls = config_setting_get_member(s, "tls");
    const config_setting_t *cs = ck_member(tls, "certificate");
    const config_setting_t *ks = ck_member(tls, "private_key");
    X509 *x = NULL;
    EVP_PKEY *pkey = NULL;
    int rc = -1;

    if (ck_load_cert(ck, cs, "listen.tls.certificate", l->certificate, &x) != 0)
        goto out;
    if (ck_load_private_key(ck, ks, "listen.tls.private_key", l->private_key, &pkey) != 0)
        goto out;
    if (X509_check_private_key(x, pkey) != 1) {
        ck_err(ck, ks, "'listen.tls.private_key': '%s': does not match the certificate '%s'",
               l->private_key, l->certificate);
        goto out;
    }
    if (ck_server_names(ck, s, l, x) != 0)
        goto out;
    rc = 0;
out:
    X509_free(x);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
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

/* The upstream group: split the url, and settle the authority sent upstream. */
static int ck_upstream(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    sg_conf_t *c = obj;
    const char *why, *lb, *rb;
    ck_url_t u;

    if (ck_url_parse(c->upstream.url, &u, &why) != 0)
        return ck_err(ck, ck_member(s, "url"), "'upstream.url': %s", why);
    c->upstream.tls = u.tls;
    c->upstream.port = u.port;
    c->upstream.host = ck_strndup(ck, u.host, u.host_len);
    if (c->upstream.host == NULL)
        return -1;
    /* docs/design.md: Host/:authority is always the upstream's, never the client's. The port
     * is written only when it is not the scheme's default (RFC 9110 7.2). */
    lb = u.ipv6 ? "[" : "";
    rb = u.ipv6 ? "]" : "";
    if (c->upstream.server_name[0] != '\0')
        c->upstream.authority = ck_strdup(ck, c->upstream.server_name);
    else if (u.port_given && u.port != (u.tls ? 443 : 80))
        c->upstream.authority = ck_printf(ck, "%s%s%s:%d", lb, c->upstream.host, rb, u.port);
    else
        c->upstream.authority = ck_printf(ck, "%s%s%s", lb, c->upstream.host, rb);
    return c->upstream.authority != NULL ? 0 : -1;
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

static const ck_fn ck_checks[SG_CK__COUNT] = {
    [SG_CK_ADDRESS] = ck_address,         [SG_CK_CA_FILE] = ck_ca_file,
    [SG_CK_LISTEN] = ck_listen,           [SG_CK_UPSTREAM] = ck_upstream,
    [SG_CK_SHA256] = ck_sha256,           [SG_CK_JWT_KEY] = ck_jwt_key,
    [SG_CK_TASK_KEY] = ck_task_key,       [SG_CK_SIGNING_KEY] = ck_signing_key,
    [SG_CK_AUDIT_FILE] = ck_audit_file,   [SG_CK_LOG_ACCESS] = ck_log_access,
    [SG_CK_SERVER_NAME] = ck_server_name,     [SG_CK_DROP_HEADERS] = ck_drop_headers,
};

static int ck_run(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    if (k->check == SG_CK_NONE)
        return 0;
    if (k->check >= SG_CK__COUNT || ck_checks[k->check] == NULL)
        return ck_err(ck, s, "internal error: key '%s' has no check %d", k->path, k->check);
    return ck_checks[k->check](ck, s, k, obj);
}

/* ---- the walk ------------------------------------------------------------------------ */

/* The LIST row enclosing K (whose element struct K's offset is into), or NULL: sg_conf_t. */
static const sg_conf_key_t *ck_owner_of(const sg_conf_key_t *k)
{
    const sg_conf_key_t *best = NULL;
    size_t len, best_len = 0;

    for (size_t i = 0; i < sg__conf_nkeys; i++) {
        const sg_conf_key_t *l = &sg__conf_keys[i];

        len = strlen(l->path);
        if (l->type == SG_KT_LIST && len > best_len && strncmp(k->path, l->path, len) == 0 &&
            k->path[len] == '.') {
            best = l;
            best_len = len;
        }
    }
    return best;
}

/* Is the row PATH a direct member of the group GPATH (NULL: the root)? */
static int ck_is_member(const char *path, const char *gpath)
{
    size_t len;

    if (gpath == NULL)
        return strchr(path, '.') == NULL;
    len = strlen(gpath);
    return strncmp(path, gpath, len) == 0 && path[len] == '.' &&
           strchr(path + len + 1, '.') == NULL;
}

/* Defaults of every key stored in OBJ (sg_conf_t for OWNER NULL, else a list element). */
static int ck_defaults(ck_t *ck, const sg_conf_key_t *owner, void *obj)
{
    for (size_t i = 0; i < sg__conf_nkeys; i++) {
        const sg_conf_key_t *k = &sg__conf_keys[i];

        if (ck->owner[i] != owner || k->off == SG_KOFF_NONE)
            continue;
        switch (k->type) {
        case SG_KT_INT:
        case SG_KT_BOOL:
        case SG_KT_ENUM:
            *CK_AT(obj, k->off, int) = (int)k->def;
            break;
        case SG_KT_STR:
            if (k->def_str != NULL &&
                (*CK_AT(obj, k->off, char *) = ck_strdup(ck, k->def_str)) == NULL)
                return -1;
            break;
        default:
            break; /* group presence flags, lists and string lists start zeroed */
        }
    }
    return 0;
}

static int ck_group(ck_t *ck, const config_setting_t *g, const char *gpath, void *obj);

static int ck_list(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const config_setting_t *e;
    unsigned n = (unsigned)config_setting_length(s);
    char *arr = NULL;

    if (config_setting_type(s) != CONFIG_TYPE_LIST)
        return ck_err(ck, s, "'%s' must be a list ( { ... }, ... )", k->path);
    if (n < k->min)
        return ck_err(ck, s, "'%s' must have at least %lld %s", k->path, k->min,
                      k->min == 1 ? "entry" : "entries");
    if (n > k->max)
        return ck_err(ck, s, "'%s' must have at most %lld entries", k->path, k->max);
    if (n > 0 && (arr = ck_alloc(ck, n * k->elem_size)) == NULL)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        void *elem = arr + (size_t)i * k->elem_size;

        e = config_setting_get_elem(s, i);
        if (!config_setting_is_group(e))
            return ck_err(ck, e, "'%s' entries must be groups { ... }", k->path);
        if (ck_defaults(ck, k, elem) != 0 || ck_group(ck, e, k->path, elem) != 0 ||
            ck_run(ck, e, k, elem) != 0)
            return -1;
    }
    *CK_AT(obj, k->off, void *) = arr;
    *CK_AT(obj, k->off_n, size_t) = n;
    return 0;
}

static int ck_strv(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *what =
        k->flags & SG_K_SCALAR_OK ? "a string or a list of strings" : "a list of strings";
    sg_conf_strv_t *sv = CK_AT(obj, k->off, sg_conf_strv_t);
    int t = config_setting_type(s);
    const config_setting_t *e;
    unsigned n;

    if (t == CONFIG_TYPE_STRING && (k->flags & SG_K_SCALAR_OK))
        n = 1;
    else if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST)
        n = (unsigned)config_setting_length(s);
    else
        return ck_err(ck, s, "'%s' must be %s", k->path, what);
    if (n == 0 && (k->flags & SG_K_NONEMPTY))
        return ck_err(ck, s, "'%s' must not be empty", k->path);
    if (n > 0 && (sv->v = ck_alloc(ck, n * sizeof(char *))) == NULL)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        e = t == CONFIG_TYPE_STRING ? s : config_setting_get_elem(s, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING)
            return ck_err(ck, e, "'%s' must be %s", k->path, what);
        if (config_setting_get_string(e)[0] == '\0')
            return ck_err(ck, e, "'%s' must not contain empty strings", k->path);
        if ((sv->v[i] = ck_strdup(ck, config_setting_get_string(e))) == NULL)
            return -1;
    }
    sv->n = n;
    return 0;
}

static int ck_enum(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    char names[256];
    size_t len = 0;

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        for (const sg_conf_enum_t *e = k->enums; e->name != NULL; e++) {
            if (strcmp(e->name, config_setting_get_string(s)) == 0) {
                *CK_AT(obj, k->off, int) = e->value;
                return 0;
            }
        }
    }
    names[0] = '\0';
    for (const sg_conf_enum_t *e = k->enums; e->name != NULL && len < sizeof(names); e++)
        len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s", len ? ", " : "", e->name);
    return ck_err(ck, s, "'%s' must be one of %s", k->path, names);
}

static int ck_str(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    const char *v;
    char *copy;

    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return ck_err(ck, s, "'%s' must be a string", k->path);
    v = config_setting_get_string(s);
    if (v[0] == '\0' && (k->flags & SG_K_NONEMPTY))
        return ck_err(ck, s, "'%s' must not be empty", k->path);
    if (k->off == SG_KOFF_NONE)
        return 0;
    copy = (k->flags & SG_K_PATH) && v[0] != '\0' ? ck_path(ck, v) : ck_strdup(ck, v);
    if (copy == NULL)
        return -1;
    *CK_AT(obj, k->off, char *) = copy;
    return 0;
}

/* Setting S is key K: check its type and bounds, store it into OBJ, run K's check. */
static int ck_value(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj)
{
    int t = config_setting_type(s), rc;
    long long v;

    switch (k->type) {
    case SG_KT_GROUP:
        if (!config_setting_is_group(s))
            return ck_err(ck, s, "'%s' must be a group { ... }", k->path);
        if (k->off != SG_KOFF_NONE)
            *CK_AT(obj, k->off, int) = 1;
        rc = ck_group(ck, s, k->path, obj);
        break;
    case SG_KT_LIST:
        return ck_list(ck, s, k, obj); /* runs the check per element */
    case SG_KT_INT:
        if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
            return ck_err(ck, s, "'%s' must be an integer", k->path);
        v = config_setting_get_int64(s);
        if (v < k->min || v > k->max)
            return ck_err(ck, s, "'%s' must be between %lld and %lld", k->path, k->min, k->max);
        *CK_AT(obj, k->off, int) = (int)v;
        rc = 0;
        break;
    case SG_KT_BOOL:
        if (t != CONFIG_TYPE_BOOL)
            return ck_err(ck, s, "'%s' must be true or false", k->path);
        *CK_AT(obj, k->off, int) = config_setting_get_bool(s) != 0;
        rc = 0;
        break;
    case SG_KT_STR:
        rc = ck_str(ck, s, k, obj);
        break;
    case SG_KT_ENUM:
        rc = ck_enum(ck, s, k, obj);
        break;
    case SG_KT_STRV:
        rc = ck_strv(ck, s, k, obj);
        break;
    default:
        rc = ck_err(ck, s, "internal error: key '%s' has no type", k->path);
        break;
    }
    return rc != 0 ? rc : ck_run(ck, s, k, obj);
}

/*
 * Walk group G (key path GPATH, NULL for the root) into OBJ: every member must be a key
 * of the table, and every required member of the table must be present.
 */
static int ck_group(ck_t *ck, const config_setting_t *g, const char *gpath, void *obj)
{
    char path[CK_PATH_MAX];
    const config_setting_t *s;
    const sg_conf_key_t *k;
    const char *leaf;
    int n = config_setting_length(g);

    for (int i = 0; i < n; i++) {
        s = config_setting_get_elem(g, (unsigned)i);
        snprintf(path, sizeof(path), "%s%s%s", gpath ? gpath : "", gpath ? "." : "",
                 config_setting_name(s));
        k = sg__conf_key_find(path);
        if (k == NULL)
            return ck_err(ck, s, "unknown key '%s'", path);
        if (ck_value(ck, s, k, obj) != 0)
            return -1;
    }
    for (size_t i = 0; i < sg__conf_nkeys; i++) {
        k = &sg__conf_keys[i];
        if (!(k->flags & SG_K_REQUIRED) || !ck_is_member(k->path, gpath))
            continue;
        leaf = strrchr(k->path, '.');
        leaf = leaf != NULL ? leaf + 1 : k->path;
        if (config_setting_get_member(g, leaf) == NULL)
            return ck_err(ck, g, "missing required key '%s'", k->path);
    }
    return 0;
}

/* ---- checks across keys -------------------------------------------------------------- */

/* Names unique within a list: element I's member NAME (char * at OFF) against all before. */
static int ck_unique(ck_t *ck, const char *list, const char *member, const char *what,
                     const void *arr, size_t n, size_t size, size_t off)
{
    for (size_t i = 1; i < n; i++) {
        const char *a = *(char *const *)((const char *)arr + i * size + off);

        for (size_t j = 0; j < i; j++) {
            if (strcmp(a, *(char *const *)((const char *)arr + j * size + off)) == 0)
                return ck_err(ck, ck_elem(ck, list, i, member),
                              "duplicate %s '%s' (first at line %d)", what, a,
                              config_setting_source_line(ck_elem(ck, list, j, member)));
        }
    }
    return 0;
}

typedef struct {
    int af;
    unsigned char a[16];
    int port;
} ck_sockaddr_t;

static void ck_sockaddr(ck_sockaddr_t *sa, const char *addr, int port)
{
    memset(sa, 0, sizeof(*sa));
    sa->af = inet_pton(AF_INET, addr, sa->a) == 1 ? AF_INET : AF_INET6;
    if (sa->af == AF_INET6)
        inet_pton(AF_INET6, addr, sa->a); /* checked by ck_address */
    sa->port = port;
}

/* Two listeners on one address and port cannot both bind; nor can admin on a listener's. */
static int ck_listen_unique(ck_t *ck)
{
    const sg_conf_t *c = ck->c;
    ck_sockaddr_t a, b;

    for (size_t i = 0; i < c->nlisten; i++) {
        ck_sockaddr(&a, c->listen[i].address, c->listen[i].port);
        for (size_t j = 0; j < i; j++) {
            ck_sockaddr(&b, c->listen[j].address, c->listen[j].port);
            if (memcmp(&a, &b, sizeof(a)) == 0)
                return ck_err(ck, ck_elem(ck, "listen", i, "port"),
                              "duplicate listen address %s port %d (first at line %d)",
                              c->listen[i].address, a.port,
                              config_setting_source_line(ck_elem(ck, "listen", j, "port")));
        }
        if (c->admin.enabled) {
            ck_sockaddr(&b, c->admin.address, c->admin.port);
            if (memcmp(&a, &b, sizeof(a)) == 0)
                return ck_err(ck, ck_member(config_lookup(ck->cf, "admin"), "port"),
                              "'admin' address %s port %d is also a listen address (line %d)",
                              c->admin.address, b.port,
                              config_setting_source_line(ck_elem(ck, "listen", i, "port")));
        }
    }
    return 0;
}

/* Static tokens: one hash, one principal; their roles and tenant must exist. */
static int ck_tokens(ck_t *ck)
{
    const sg_conf_t *c = ck->c;
    const sg_conf_token_t *t;
    size_t i, j;

    for (i = 0; i < c->policy.ntokens; i++) {
        t = &c->policy.tokens[i];
        for (j = 0; j < i; j++)
            if (memcmp(t->sha256, c->policy.tokens[j].sha256, sizeof(t->sha256)) == 0)
                return ck_err(
                    ck, ck_elem(ck, "policy.tokens", i, "sha256"),
                    "duplicate token sha256 (first at line %d)",
                    config_setting_source_line(ck_elem(ck, "policy.tokens", j, "sha256")));
        for (j = 0; j < c->policy.ntenants; j++)
            if (strcmp(t->tenant, c->policy.tenants[j].name) == 0)
                break;
        if (j == c->policy.ntenants)
            return ck_err(ck, ck_elem(ck, "policy.tokens", i, "tenant"),
                          "'policy.tokens.tenant': unknown tenant '%s'", t->tenant);
        for (size_t r = 0; r < t->roles.n; r++) {
            for (j = 0; j < c->policy.nroles; j++)
                if (strcmp(t->roles.v[r], c->policy.roles[j].name) == 0)
                    break;
            if (j == c->policy.nroles)
                return ck_err(ck, ck_elem(ck, "policy.tokens", i, "roles"),
                              "'policy.tokens.roles': unknown role '%s'", t->roles.v[r]);
        }
    }
    return 0;
}

static int ck_final(ck_t *ck)
{
    sg_conf_t *c = ck->c;
    long ncpu;

    if (c->workers == 0) {
        ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = ncpu < 1 ? 1 : ncpu > 1024 ? 1024 : (int)ncpu;
    }
    if (ck_listen_unique(ck) != 0 ||
        ck_unique(ck, "policy.tokens", "id", "token id", c->policy.tokens, c->policy.ntokens,
                  sizeof(sg_conf_token_t), offsetof(sg_conf_token_t, id)) != 0 ||
        ck_unique(ck, "policy.jwt.keys", "kid", "jwt kid", c->policy.jwt.keys, c->policy.jwt.nkeys,
                  sizeof(sg_conf_jwt_key_t), offsetof(sg_conf_jwt_key_t, kid)) != 0 ||
        ck_unique(ck, "policy.roles", "name", "role name", c->policy.roles, c->policy.nroles,
                  sizeof(sg_conf_role_t), offsetof(sg_conf_role_t, name)) != 0 ||
        ck_unique(ck, "policy.tenants", "name", "tenant name", c->policy.tenants,
                  c->policy.ntenants, sizeof(sg_conf_tenant_t),
                  offsetof(sg_conf_tenant_t, name)) != 0 ||
        ck_unique(ck, "batch.providers", "moid", "batch provider moid", c->batch.providers,
                  c->batch.nproviders, sizeof(sg_conf_batch_provider_t),
                  offsetof(sg_conf_batch_provider_t, moid)) != 0)
        return -1;
    return ck_tokens(ck);
}

/* ---- reading the file ---------------------------------------------------------------- */

/* ck->dir: the absolute directory of the configuration file. */
static int ck_dir(ck_t *ck)
{
    char *copy = strdup(ck->file), *slash;
    const char *dir;
    int rc = -1;

    if (copy == NULL)
        return ck_err(ck, NULL, "out of memory");
    slash = strrchr(copy, '/');
    if (slash == NULL)
        dir = ".";
    else if (slash == copy)
        dir = "/";
    else {
        *slash = '\0';
        dir = copy;
    }
    ck->dir = realpath(dir, NULL);
    if (ck->dir == NULL) {
        ck_err(ck, NULL, "cannot resolve directory '%s': %s", dir, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

static int ck_read(ck_t *ck)
{
    char name[PATH_MAX];
    sg_file_t b = {NULL, 0, 0};
    const char *why;
    int rc = -1;

    /* Read it ourselves first: libconfig says only "file I/O error", without errno. */
    if (sg_file_read(&b, ck->file, CK_FILE_MAX, 0, &why) != SG_OK) {
        ck_err(ck, NULL, "cannot read: %s", why);
        goto out;
    }
    if (ck_dir(ck) != 0)
        goto out;
    config_set_include_dir(ck->cf, ck->dir); /* @include resolves like the file paths */
    if (ck_text(ck, ck->file, &b) != 0 || ck_scan(ck, ck->file, (const char *)b.data, 0, 0) != 0)
        goto out; /* an @include libconfig cannot read safely */
    if (config_read_file(ck->cf, ck->file) != CONFIG_TRUE) {
        ck_errat(ck, ck_file_name(ck, config_error_file(ck->cf), name, sizeof(name)),
                 config_error_line(ck->cf), "%s", config_error_text(ck->cf));
        goto out;
    }
    if (ck_scan(ck, ck->file, (const char *)b.data, 0, 1) != 0)
        goto out;
    rc = 0;
out:
    sg_file_dispose(&b);
    return rc;
}

/* ---- public -------------------------------------------------------------------------- */

int sg_conf_load(const char *file, sg_conf_t **out, char *err, size_t errlen)
{
    config_t cf;
    ck_t ck = {.file = file != NULL ? file : "(null)",
               .cf = &cf,
               .err = err,
               .errlen = err != NULL ? errlen : 0};
    int rc = -1;

    if (ck.errlen > 0)
        err[0] = '\0';
    if (out != NULL)
        *out = NULL;
    config_init(&cf);
    if (file == NULL || out == NULL) {
        ck_err(&ck, NULL, "no configuration file");
        goto out;
    }
    ck.c = calloc(1, sizeof(*ck.c));
    if (ck.c == NULL || (ck.c->arena = calloc(1, sizeof(arena_t))) == NULL) {
        ck_err(&ck, NULL, "out of memory");
        goto out;
    }
    ck.c->refcnt = 1;
    ck.owner = calloc(sg__conf_nkeys, sizeof(*ck.owner));
    if (ck.owner == NULL || (ck.c->file = ck_strdup(&ck, file)) == NULL) {
        ck_err(&ck, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < sg__conf_nkeys; i++)
        ck.owner[i] = ck_owner_of(&sg__conf_keys[i]);

    if (ck_read(&ck) != 0 || ck_defaults(&ck, NULL, ck.c) != 0 ||
        ck_group(&ck, config_root_setting(&cf), NULL, ck.c) != 0 || ck_final(&ck) != 0)
        goto out;
    *out = ck.c;
    ck.c = NULL;
    rc = 0;
out:
    config_destroy(&cf);
    conf_free(ck.c);
    free(ck.owner);
    free(ck.dir);
    ERR_clear_error(); /* leave no OpenSSL error behind for the caller's next SSL call */
    return rc;
}

sg_conf_t *sg_conf_ref(sg_conf_t *c)
{
    if (c != NULL)
        __atomic_add_fetch(&c->refcnt, 1, __ATOMIC_RELAXED);
    return c;
}

void sg_conf_unref(sg_conf_t *c)
{
    /* Release/acquire: the thread that frees must see every other thread's reads done. */
    if (c != NULL && __atomic_sub_fetch(&c->refcnt, 1, __ATOMIC_ACQ_REL) == 0)
        conf_free(c);
}
