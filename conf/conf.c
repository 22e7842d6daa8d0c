/*
 * conf/conf.c - libconfig file -> immutable, refcounted sg_conf_t.
 *
 * This file owns the object and the loader's frame: sg_conf_load() and its state, the
 * arena every string and array of one sg_conf_t lives in, the one error format, and the
 * checks across keys (duplicates, references) once the walk is done. The rest of the
 * loader is split by job (conf/conf-int.h): lcfg.c reads the file with libconfig and
 * patches its gaps, walk.c walks the tree against the key table (conf/keys.c), check.c
 * checks single keys and the files they name (certificates, keys, secrets, log
 * directories). It leaves the meaning of the values to their users: proxy/ binds and
 * connects, policy/ decides, filters/ audit and split. Nothing here keeps a secret:
 * files holding one are read to be checked, wiped and freed; the object keeps their
 * paths.
 *
 * Every error is one line, "file:line: reason" ("file: reason" when no line applies),
 * with the file as given to sg_conf_load() or as libconfig names an @include'd one.
 * Every relative path in the file is resolved against the directory of the
 * configuration file and stored absolute, so that a later chdir() or a reload from
 * another directory reads the same files.
 */
#include <arpa/inet.h>
#include <libconfig.h>
#include <limits.h>
#include <openssl/err.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf/conf-int.h"
#include "conf/conf.h"
#include "conf/keys.h"

/* ---- arena: every string and array of one sg_conf_t, freed at once ---------------- */

#define ARENA_CHUNK 4096

typedef struct arena_chunk_s {
    struct arena_chunk_s *next;
    size_t size, used;
    max_align_t data[]; /* aligned for anything */
} arena_chunk_t;

/* A compiled regular expression: its internals are the C library's, freed by regfree. */
typedef struct arena_re_s {
    struct arena_re_s *next;
    regex_t re;
} arena_re_t;

typedef struct {
    arena_chunk_t *head;
    arena_re_t *res; /* every regex compiled for the object, freed with it */
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
    arena_re_t *re;

    if (a == NULL)
        return;
    for (re = a->res; re != NULL; re = re->next)
        regfree(&re->re);
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

/* ---- the one error format, and strings in the arena --------------------------------- */

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
int ck_errat(ck_t *ck, const char *file, int line, const char *fmt, ...)
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
const char *ck_file_name(const ck_t *ck, const char *file, char *buf, size_t size)
{
    if (file == NULL || strcmp(file, ck->file) == 0)
        return ck->file;
    if (file[0] != '/' && ck->dir != NULL &&
        (size_t)snprintf(buf, size, "%s/%s", ck->dir, file) < size)
        return buf;
    return file;
}

/* "file:line: reason" at setting S (NULL: the file itself). Always returns -1. */
int ck_err(ck_t *ck, const config_setting_t *s, const char *fmt, ...)
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

void *ck_alloc(ck_t *ck, size_t n)
{
    void *p = arena_alloc(ck->c->arena, n);

    if (p == NULL)
        ck_err(ck, NULL, "out of memory");
    return p;
}

void *ck_regcomp(ck_t *ck, const config_setting_t *s, const char *what, const char *pattern)
{
    arena_t *a = ck->c->arena;
    arena_re_t *r = ck_alloc(ck, sizeof(*r));
    char why[128];
    int rc;

    if (r == NULL)
        return NULL;
    /* REG_NOSUB: only "does it match" is asked, which lets the library skip the captures. */
    if ((rc = regcomp(&r->re, pattern, REG_EXTENDED | REG_NOSUB)) != 0) {
        regerror(rc, &r->re, why, sizeof(why));
        ck_err(ck, s, "'%s': '%.64s' is not a POSIX extended regular expression: %s", what,
               pattern, why);
        return NULL;
    }
    r->next = a->res;
    a->res = r;
    return &r->re;
}

char *ck_strndup(ck_t *ck, const char *s, size_t n)
{
    char *p = ck_alloc(ck, n + 1);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

char *ck_strdup(ck_t *ck, const char *s)
{
    return ck_strndup(ck, s, strlen(s));
}

char *ck_printf(ck_t *ck, const char *fmt, ...)
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
const config_setting_t *ck_member(const config_setting_t *g, const char *name)
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

char *ck_where(ck_t *ck, const config_setting_t *s)
{
    char buf[PATH_MAX];

    return ck_printf(ck, "%s:%d",
                     ck_file_name(ck, config_setting_source_file(s), buf, sizeof(buf)),
                     config_setting_source_line(s));
}

/* A relative PATH resolved against the configuration's directory, in the arena. */
char *ck_path(ck_t *ck, const char *path)
{
    if (path[0] == '/')
        return ck_strdup(ck, path);
    return ck_printf(ck, "%s%s%s", ck->dir, strcmp(ck->dir, "/") == 0 ? "" : "/", path);
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

/* Member NAME of element I of list LIST inside group G (NULL: the root), for messages
 * about nested lists ("listen.[i].vhosts.[j].upstream"). */
static const config_setting_t *ck_sub(ck_t *ck, const config_setting_t *g, const char *list,
                                      size_t i, const char *name)
{
    const config_setting_t *l =
        g != NULL ? config_setting_get_member(g, list) : config_lookup(ck->cf, list);
    const config_setting_t *e = l != NULL ? config_setting_get_elem(l, (unsigned)i) : NULL;

    return name != NULL ? ck_member(e != NULL ? e : g, name) : e;
}

/* NAME's index in c->upstreams into *up, or an error at S naming KEY. */
static int ck_upstream_ref(ck_t *ck, const config_setting_t *s, const char *key, const char *name,
                           size_t *up)
{
    const sg_conf_t *c = ck->c;

    for (size_t i = 0; i < c->nupstreams; i++) {
        if (strcmp(c->upstreams[i].name, name) == 0) {
            *up = i;
            return 0;
        }
    }
    return ck_err(ck, s, "'%s': unknown upstream '%s'", key, name);
}

/* Exactly one of `upstream` (named "default") and `upstreams`; names unique. */
static int ck_upstreams(ck_t *ck)
{
    sg_conf_t *c = ck->c;

    if (c->legacy_upstream_set && c->nupstreams > 0)
        return ck_err(ck, config_lookup(ck->cf, "upstream"),
                      "'upstream' and 'upstreams' exclude each other: list every vCenter in "
                      "'upstreams'");
    if (c->legacy_upstream_set) {
        if ((c->upstreams = ck_alloc(ck, sizeof(*c->upstreams))) == NULL)
            return -1;
        c->upstreams[0] = c->legacy_upstream;
        if ((c->upstreams[0].name = ck_strdup(ck, "default")) == NULL)
            return -1;
        c->nupstreams = 1;
    }
    if (c->nupstreams == 0)
        return ck_err(ck, NULL, "missing required key 'upstream'");
    return ck_unique(ck, "upstreams", "name", "upstream name", c->upstreams, c->nupstreams,
                     sizeof(sg_conf_upstream_t), offsetof(sg_conf_upstream_t, name));
}

/* Each listener's and vhost's upstream; a listener without vhosts and without one goes to
 * the first upstream, as the one-vCenter gateway always did. */
static int ck_vhosts(ck_t *ck)
{
    sg_conf_t *c = ck->c;

    for (size_t i = 0; i < c->nlisten; i++) {
        sg_conf_listen_t *l = &c->listen[i];
        const config_setting_t *ls = ck_sub(ck, NULL, "listen", i, NULL);

        if (l->upstream[0] != '\0') {
            if (ck_upstream_ref(ck, ck_member(ls, "upstream"), "listen.upstream", l->upstream,
                                &l->up) != 0)
                return -1;
            l->has_up = 1;
        } else if (l->nvhosts == 0) {
            l->up = 0;
            l->has_up = 1;
        }
        for (size_t j = 0; j < l->nvhosts; j++)
            if (ck_upstream_ref(ck, ck_sub(ck, ls, "vhosts", j, "upstream"),
                                "listen.vhosts.upstream", l->vhosts[j].upstream,
                                &l->vhosts[j].up) != 0)
                return -1;
    }
    return 0;
}

/* Tenant scopes: each names a known upstream, at most once per tenant; the tenant-level
 * providers/fault_domains become one more scope, on the upstream "default". */
static int ck_scopes(ck_t *ck)
{
    sg_conf_t *c = ck->c;

    for (size_t i = 0; i < c->policy.ntenants; i++) {
        sg_conf_tenant_t *t = &c->policy.tenants[i];
        const config_setting_t *ts = ck_sub(ck, NULL, "policy.tenants", i, NULL);
        sg_conf_scope_t *v;
        const config_setting_t *ls; /* where the tenant-level lists are, for errors */

        for (size_t j = 0; j < t->nscopes; j++) {
            const config_setting_t *ss = ck_sub(ck, ts, "scopes", j, "upstream");

            if (ck_upstream_ref(ck, ss, "policy.tenants.scopes.upstream", t->scopes[j].upstream,
                                &t->scopes[j].up) != 0)
                return -1;
            for (size_t k = 0; k < j; k++)
                if (t->scopes[k].up == t->scopes[j].up)
                    return ck_err(ck, ss, "tenant '%s' has two scopes on upstream '%s'", t->name,
                                  t->scopes[j].upstream);
        }
        if (t->providers.n == 0 && t->fault_domains.n == 0)
            continue;
        if ((v = ck_alloc(ck, (t->nscopes + 1) * sizeof(*v))) == NULL)
            return -1;
        if (t->nscopes > 0)
            memcpy(v, t->scopes, t->nscopes * sizeof(*v));
        v[t->nscopes] = (sg_conf_scope_t){.upstream = "default",
                                          .providers = t->providers,
                                          .fault_domains = t->fault_domains};
        ls = ck_member(ts, t->providers.n ? "providers" : "fault_domains");
        if (ck_upstream_ref(ck, ls, "policy.tenants.providers", "default",
                            &v[t->nscopes].up) != 0)
            return -1;
        for (size_t k = 0; k < t->nscopes; k++)
            if (v[k].up == v[t->nscopes].up)
                return ck_err(ck, ls,
                              "tenant '%s': 'providers'/'fault_domains' are its scope on "
                              "upstream 'default', which 'scopes' names too",
                              t->name);
        t->scopes = v;
        t->nscopes++;
    }
    return 0;
}

/* batch.providers: an upstream named must exist; (upstream, moid) unique. */
static int ck_batch_providers(ck_t *ck)
{
    sg_conf_t *c = ck->c;

    for (size_t i = 0; i < c->batch.nproviders; i++) {
        sg_conf_batch_provider_t *b = &c->batch.providers[i];

        if (b->upstream[0] != '\0' &&
            ck_upstream_ref(ck, ck_elem(ck, "batch.providers", i, "upstream"),
                            "batch.providers.upstream", b->upstream, &b->up) != 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(b->moid, c->batch.providers[j].moid) == 0 &&
                strcmp(b->upstream, c->batch.providers[j].upstream) == 0)
                return ck_err(ck, ck_elem(ck, "batch.providers", i, "moid"),
                              "duplicate batch provider moid '%s'%s%s%s (first at line %d)",
                              b->moid, b->upstream[0] ? " on upstream '" : "", b->upstream,
                              b->upstream[0] ? "'" : "",
                              config_setting_source_line(
                                  ck_elem(ck, "batch.providers", j, "moid")));
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

/* Every window a list names is one of change_windows. */
static int ck_window_refs(ck_t *ck, const config_setting_t *s, const char *what,
                          const sg_conf_strv_t *names)
{
    const sg_conf_t *c = ck->c;
    size_t j;

    for (size_t i = 0; i < names->n; i++) {
        for (j = 0; j < c->nchange_windows; j++)
            if (strcmp(names->v[i], c->change_windows[j].name) == 0)
                break;
        if (j == c->nchange_windows)
            return ck_err(ck, s, "'%s': unknown change window '%s'", what, names->v[i]);
    }
    return 0;
}

/*
 * Change control: windows named exist; each operation overridden once. A ticket header
 * other than the built-in X-Change-Ticket joins routes.drop_headers, so that it never
 * crosses upstream on any route, as the built-in one does not (proxy/headers.c).
 */
static int ck_change(ck_t *ck)
{
    sg_conf_t *c = ck->c;
    sg_conf_strv_t *d = &c->routes.drop_headers;

    for (size_t i = 0; i < c->noperations; i++) {
        const sg_conf_operation_t *o = &c->operations[i];
        size_t j;
        char **v;

        if (ck_window_refs(ck, ck_elem(ck, "operations", i, "windows"), "operations.windows",
                           &o->windows) != 0)
            return -1;
        for (j = 0; j < d->n; j++)
            if (strcasecmp(d->v[j], o->ticket_header) == 0)
                break;
        if (j < d->n || strcasecmp(o->ticket_header, "X-Change-Ticket") == 0)
            continue;
        if ((v = ck_alloc(ck, (d->n + 1) * sizeof(*v))) == NULL)
            return -1;
        if (d->n > 0)
            memcpy(v, d->v, d->n * sizeof(*v));
        v[d->n] = o->ticket_header;
        d->v = v;
        d->n++;
    }
    for (size_t i = 0; i < c->policy.ntenants; i++)
        if (ck_window_refs(ck, ck_elem(ck, "policy.tenants", i, "windows"),
                           "policy.tenants.windows", &c->policy.tenants[i].windows) != 0)
            return -1;
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
        ck_upstreams(ck) != 0 || ck_vhosts(ck) != 0 || ck_scopes(ck) != 0 ||
        ck_batch_providers(ck) != 0 ||
        ck_unique(ck, "change_windows", "name", "change window name", c->change_windows,
                  c->nchange_windows, sizeof(sg_conf_window_t),
                  offsetof(sg_conf_window_t, name)) != 0 ||
        ck_unique(ck, "operations", "method", "operation", c->operations, c->noperations,
                  sizeof(sg_conf_operation_t), offsetof(sg_conf_operation_t, method)) != 0 ||
        ck_unique(ck, "policy.approvers", "name", "approver name", c->policy.approvers,
                  c->policy.napprovers, sizeof(sg_conf_approver_t),
                  offsetof(sg_conf_approver_t, name)) != 0 ||
        ck_change(ck) != 0)
        return -1;
    return ck_tokens(ck);
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
