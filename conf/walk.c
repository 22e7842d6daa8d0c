/*
 * conf/walk.c - the libconfig tree against the key table (conf/keys.c).
 *
 * This file owns the walk: every setting must be a row of the table, of the row's type
 * and within its bounds; groups recurse, lists become arrays of their element struct in
 * the arena, strings are copied (paths resolved), enums become their values, and every
 * key the tree lacks gets the table's default. After a value is stored its row's check
 * runs (check.c, ck_run). It leaves reading the file to lcfg.c and the checks across
 * keys to conf.c.
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf-int.h"
#include "conf/conf.h"
#include "conf/keys.h"

#define CK_PATH_MAX 256 /* dotted key paths; longer unknown names are cut */

/* ---- the walk ------------------------------------------------------------------------ */

/* The LIST row enclosing K (whose element struct K's offset is into), or NULL: sg_conf_t. */
const sg_conf_key_t *ck_owner_of(const sg_conf_key_t *k)
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
int ck_defaults(ck_t *ck, const sg_conf_key_t *owner, void *obj)
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
int ck_group(ck_t *ck, const config_setting_t *g, const char *gpath, void *obj)
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
