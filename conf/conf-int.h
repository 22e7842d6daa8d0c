/*
 * conf/conf-int.h - what the loader's files share (private to conf/).
 *
 * sg_conf_load() (conf.c) reads the file with libconfig and its work-arounds (lcfg.c),
 * walks the tree against the key table (walk.c), runs the per-key checks on the way
 * (check.c), then the checks across keys (conf.c). They share one state, ck_t, and one
 * error format, "file:line: reason", which only conf.c writes: every other file reports
 * through ck_err() or ck_errat() and returns -1.
 */
#ifndef SG_CONF_INT_H
#define SG_CONF_INT_H

#include <libconfig.h>
#include <stddef.h>

#include "conf/conf.h"
#include "conf/keys.h"

#define CK_FILE_MAX (16u << 20) /* no certificate bundle or secret is anywhere near this */

/* The value of a key row at offset OFF of OBJ (sg_conf_t or a list element). */
#define CK_AT(obj, off, T) ((T *)(void *)((char *)(obj) + (off)))

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


/* ---- conf.c: errors and the arena ---------------------------------------------------- */

/* "file:line: reason" at setting S (NULL: the file itself). Always returns -1. */
__attribute__((format(printf, 3, 4))) int ck_err(ck_t *ck, const config_setting_t *s,
                                                 const char *fmt, ...);

/* "file:line: reason" at an explicit place. Always returns -1. */
__attribute__((format(printf, 4, 5))) int ck_errat(ck_t *ck, const char *file, int line,
                                                   const char *fmt, ...);

/* The name to show for FILE as libconfig gives it (NULL: the main file); BUF may hold it. */
const char *ck_file_name(const ck_t *ck, const char *file, char *buf, size_t size);

/* Zeroed memory, copies and formatted strings in the object's arena, or NULL after
 * reporting "out of memory". */
void *ck_alloc(ck_t *ck, size_t n);
char *ck_strndup(ck_t *ck, const char *s, size_t n);
char *ck_strdup(ck_t *ck, const char *s);
__attribute__((format(printf, 2, 3))) char *ck_printf(ck_t *ck, const char *fmt, ...);

/* Member NAME of group G for an error's position, else G itself. */
const config_setting_t *ck_member(const config_setting_t *g, const char *name);

/* PATTERN compiled (POSIX ERE, REG_NOSUB) into a regex_t that lives and dies with the
 * object, or NULL after reporting at S what is wrong with it. */
void *ck_regcomp(ck_t *ck, const config_setting_t *s, const char *what, const char *pattern);

/* "file:line" of S, in the arena (for errors found when a generation is built). */
char *ck_where(ck_t *ck, const config_setting_t *s);

/* A relative PATH resolved against the configuration's directory, in the arena. */
char *ck_path(ck_t *ck, const char *path);

/* ---- lcfg.c: reading the file ---------------------------------------------------------- */

/*
 * Read ck->file into ck->cf and set ck->dir, with the checks libconfig 1.5 lacks: every
 * @include'd file readable text before libconfig opens it, no integer literal outside
 * int32 silently wrapped. Returns 0 or -1 (reported).
 */
int ck_read(ck_t *ck);

/* ---- walk.c: the tree against the key table -------------------------------------------- */

/* The LIST row enclosing K (whose element struct K's offset is into), or NULL: sg_conf_t. */
const sg_conf_key_t *ck_owner_of(const sg_conf_key_t *k);

/* Defaults of every key stored in OBJ (sg_conf_t for OWNER NULL, else a list element). */
int ck_defaults(ck_t *ck, const sg_conf_key_t *owner, void *obj);

/*
 * Walk group G (key path GPATH, NULL for the root) into OBJ: every member must be a key
 * of the table, and every required member of the table must be present.
 */
int ck_group(ck_t *ck, const config_setting_t *g, const char *gpath, void *obj);

/* ---- check.c: the per-key checks ------------------------------------------------------- */

/* K's check (SG_CK_*) on setting S, whose value is stored in OBJ; 0 for SG_CK_NONE. */
int ck_run(ck_t *ck, const config_setting_t *s, const sg_conf_key_t *k, void *obj);

#endif
