/*
 * proxy/gen.c - a generation: one loaded configuration with everything built
 * from it (the filters' state through the chain, TLS contexts of listeners, vhosts
 * and upstreams, the upstreams' addresses), swapped as a whole on SIGHUP.
 *
 * The main thread builds a generation off the data path (file I/O, key loading,
 * DNS) and hands it to each worker through an ev_async; a worker swaps its
 * pointer between two events, so no lock is taken on the request path. Every
 * request holds a reference to the generation it started with (docs/design.md
 * "Command line", SIGHUP: a request keeps the configuration it started with).
 */
#include "proxy/proxy.h"
#include "filters/filter.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

static int gen_resolve(sg_gen_t *g, char *err, size_t errlen)
{
    const sg_conf_t *conf = g->conf;
    struct addrinfo hints, *ai = NULL;
    char port[16];
    int rv;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    /* Resolved here, once per generation: the data path never blocks on DNS. */
    for (size_t i = 0; i < g->nups; i++) {
        const sg_conf_upstream_t *u = &conf->upstreams[i];

        snprintf(port, sizeof(port), "%d", u->port);
        if ((rv = getaddrinfo(u->host, port, &hints, &ai)) != 0) {
            snprintf(err, errlen, "%s: upstream '%s': '%s': %s", conf->file, u->name, u->host,
                     gai_strerror(rv));
            return SG_ERR;
        }
        memcpy(&g->ups[i].addr, ai->ai_addr, ai->ai_addrlen);
        g->ups[i].addrlen = ai->ai_addrlen;
        freeaddrinfo(ai);
    }
    return SG_OK;
}

static int gen_tls(sg_gen_t *g, char *err, size_t errlen)
{
    const sg_conf_t *conf = g->conf;
    char why[SG_CONF_ERR_MAX];

    g->tls = calloc(conf->nlisten, sizeof(*g->tls));
    g->ups = calloc(conf->nupstreams, sizeof(*g->ups));
    if (g->tls == NULL || g->ups == NULL)
        return SG_ENOMEM;
    g->nlisten = conf->nlisten;
    g->nups = conf->nupstreams;
    for (size_t i = 0; i < conf->nlisten; i++) {
        const sg_conf_listen_t *l = &conf->listen[i];
        sg_gen_tls_t *t = &g->tls[i];

        t->l = l;
        if ((t->ctx = sg_tls_server_ctx(l, NULL, NULL, why, sizeof(why))) == NULL)
            goto fail;
        if (l->nvhosts == 0)
            continue;
        if ((t->vhost = calloc(l->nvhosts, sizeof(*t->vhost))) == NULL)
            return SG_ENOMEM;
        for (size_t j = 0; j < l->nvhosts; j++)
            if (l->vhosts[j].certificate != NULL &&
                (t->vhost[j] = sg_tls_server_ctx(l, l->vhosts[j].certificate,
                                                 l->vhosts[j].private_key, why, sizeof(why))) ==
                    NULL)
                goto fail;
        sg_tls_set_vhosts(t);
    }
    for (size_t i = 0; i < conf->nupstreams; i++) {
        if (conf->upstreams[i].tls &&
            (g->ups[i].ssl = sg_tls_client_ctx(&conf->upstreams[i], why, sizeof(why))) == NULL)
            goto fail;
        g->ups[i].health = sg_health_get(conf->upstreams[i].name);
        g->ups[i].mslot = sg_metrics_up_slot(conf->upstreams[i].name);
    }
    return SG_OK;
fail:
    snprintf(err, errlen, "%s: %s", conf->file, why);
    return SG_ERR;
}

int sg_gen_new(const char *file, int resolve, sg_gen_t **out, char *err, size_t errlen)
{
    sg_gen_t *g = calloc(1, sizeof(*g));

    *out = NULL;
    if (g == NULL) {
        snprintf(err, errlen, "%s: out of memory", file);
        return SG_ENOMEM;
    }
    static uint64_t next_id;

    g->refcnt = 1;
    g->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    if (sg_conf_load(file, &g->conf, err, errlen) != 0)
        goto fail;
    /* The filters build their own state (policy, keys, tables): filters/filter.h. */
    if (sg_chain_gen_init(g, err, errlen) != SG_OK || gen_tls(g, err, errlen) != SG_OK ||
        (resolve && gen_resolve(g, err, errlen) != SG_OK))
        goto fail;
    *out = g;
    return SG_OK;
fail:
    sg_gen_unref(g);
    return SG_ERR;
}

sg_gen_t *sg_gen_ref(sg_gen_t *g)
{
    __atomic_add_fetch(&g->refcnt, 1, __ATOMIC_RELAXED);
    return g;
}

void sg_gen_unref(sg_gen_t *g)
{
    if (g == NULL || __atomic_sub_fetch(&g->refcnt, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < g->nlisten; i++) {
        SSL_CTX_free(g->tls[i].ctx);
        for (size_t j = 0; g->tls[i].vhost != NULL && j < g->tls[i].l->nvhosts; j++)
            SSL_CTX_free(g->tls[i].vhost[j]);
        free(g->tls[i].vhost);
    }
    free(g->tls);
    for (size_t i = 0; i < g->nups; i++)
        SSL_CTX_free(g->ups[i].ssl);
    free(g->ups);
    sg_chain_gen_deinit(g);
    if (g->conf != NULL)
        sg_conf_unref(g->conf);
    free(g);
}

/* Keys a reload cannot change: the threads are started, and the audit writer owns its
 * open file, sync mode and signing key (its chain must not fork mid-file). Listen and
 * admin addresses are not here: a reload re-binds them (loop.c, admin.c). */
const char *sg_gen_restart_needed(const sg_gen_t *old, const sg_gen_t *g)
{
    const sg_conf_t *a = old->conf, *b = g->conf;

    if (a->workers != b->workers)
        return "workers";
    if (strcmp(a->audit.file, b->audit.file) != 0)
        return "audit.file";
    if (a->audit.sync != b->audit.sync)
        return "audit.sync";
    if (strcmp(a->audit.signing_key, b->audit.signing_key) != 0)
        return "audit.signing_key";
    return NULL;
}
