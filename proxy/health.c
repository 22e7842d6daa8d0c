/*
 * proxy/health.c - is an upstream reachable: one record per upstream name for the whole
 * process, written by every worker with atomics, read by /healthz.
 *
 * A failed TCP connect (refused, unreachable, timed out) marks the upstream down for a hold-down period (1 s,
 * doubling with each failure in a row, at most 30 s); while it lasts, requests for it get
 * ProviderUnavailable at once instead of each waiting out connect_timeout_ms against a
 * vCenter that is gone (a circuit breaker, as HAProxy's "observe layer4"). When the period
 * ends one request is let through as the probe, and the others wait out one more period;
 * the probe's connect either brings the upstream back or doubles the wait. Upstreams are
 * independent: one vCenter down leaves the others untouched.
 *
 * Records live as long as the process (gen.c looks them up by name on every load), so a
 * reload that keeps an upstream keeps what is known of it. Names are few (a configuration
 * has at most 256 upstreams); a process that has seen HEALTH_MAX names tracks no more.
 */
#include "proxy/proxy.h"

#include <string.h>

#define HEALTH_MAX 1024
#define HEALTH_HOLD_MS 1000u
#define HEALTH_HOLD_MAX_MS 30000u

struct sg_health_s {
    char name[SG_CONF_NAME_MAX + 1];
    uint64_t down_until; /* atomic: ms; 0 = up */
    uint64_t since;      /* atomic: when this outage began (ms), 0 = up */
    unsigned fails;      /* atomic: failures in a row */
    const char *why;     /* atomic: the last failure, a static string */
};

static sg_health_t health[HEALTH_MAX];
static size_t nhealth; /* main thread only */

sg_health_t *sg_health_get(const char *name)
{
    for (size_t i = 0; i < nhealth; i++)
        if (strcmp(health[i].name, name) == 0)
            return &health[i];
    if (nhealth == HEALTH_MAX || strlen(name) > SG_CONF_NAME_MAX)
        return NULL;
    strcpy(health[nhealth].name, name);
    return &health[nhealth++];
}

static uint64_t health_hold(unsigned fails)
{
    unsigned shift = fails > 1 ? fails - 1 : 0;

    return shift >= 5 ? HEALTH_HOLD_MAX_MS : SG_MIN(HEALTH_HOLD_MS << shift, HEALTH_HOLD_MAX_MS);
}

int sg_health_admit(sg_health_t *h, uint64_t now_ms)
{
    uint64_t until;

    if (h == NULL || (until = __atomic_load_n(&h->down_until, __ATOMIC_RELAXED)) == 0)
        return 1;
    if (now_ms < until)
        return 0;
    /* The hold-down is over: the one worker whose exchange wins sends the probe. */
    return __atomic_compare_exchange_n(
        &h->down_until, &until,
        now_ms + health_hold(__atomic_load_n(&h->fails, __ATOMIC_RELAXED)), 0, __ATOMIC_RELAXED,
        __ATOMIC_RELAXED);
}

void sg_health_failed(sg_health_t *h, uint64_t now_ms, const char *why)
{
    unsigned fails;
    uint64_t zero = 0;

    if (h == NULL)
        return;
    fails = __atomic_add_fetch(&h->fails, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->why, why, __ATOMIC_RELAXED);
    __atomic_compare_exchange_n(&h->since, &zero, now_ms, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    __atomic_store_n(&h->down_until, now_ms + health_hold(fails), __ATOMIC_RELAXED);
}

void sg_health_ok(sg_health_t *h)
{
    if (h == NULL || __atomic_load_n(&h->fails, __ATOMIC_RELAXED) == 0)
        return; /* the common case: one load, no store on a line every worker reads */
    __atomic_store_n(&h->fails, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&h->down_until, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&h->since, 0, __ATOMIC_RELAXED);
}

int sg_health_down(const sg_health_t *h, uint64_t *since_ms, const char **why)
{
    uint64_t since = h != NULL ? __atomic_load_n(&h->since, __ATOMIC_RELAXED) : 0;

    if (since_ms != NULL)
        *since_ms = since;
    if (why != NULL)
        *why = since != 0 ? __atomic_load_n(&h->why, __ATOMIC_RELAXED) : NULL;
    return since != 0;
}
