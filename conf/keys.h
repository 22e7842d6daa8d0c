/*
 * conf/keys.h - the key table (private to conf/).
 *
 * Every configuration key smsguard knows is one row of sg__conf_keys[] (conf/keys.c):
 * its dotted path, type, bounds, default, where it is stored and whether SIGHUP may
 * change it (Redis' config table, nginx's directive table). conf/walk.c walks the
 * libconfig tree against this table and nothing else, so a key that is not in the table
 * cannot be set, and a key that is in it always has a default or is required.
 *
 * Paths name list elements without an index: "listen.tls.certificate" is the key
 * "certificate" of the group "tls" of any element of the list "listen".
 */
#ifndef SG_CONF_KEYS_H
#define SG_CONF_KEYS_H

#include <stddef.h>

typedef enum {
    SG_KT_GROUP, /* { ... }; off: int set to 1 when the group is present, or SG_KOFF_NONE */
    SG_KT_LIST,  /* ( { ... }, ... ): array of elem_size structs at off, count (size_t) at off_n */
    SG_KT_INT,   /* int at off, min..max */
    SG_KT_BOOL,  /* int (0/1) at off */
    SG_KT_STR,   /* char * at off (arena), or not stored when off is SG_KOFF_NONE */
    SG_KT_ENUM,  /* a string of enums[], stored as its int value at off */
    SG_KT_STRV,  /* [ "a", "b" ] (array or list) into the sg_conf_strv_t at off */
} sg_conf_ktype_t;

/* Row flags. */
#define SG_K_REQUIRED 0x01u   /* an error when the enclosing group is present without it */
#define SG_K_RELOADABLE 0x02u /* SIGHUP applies a change; other changes are warned about */
#define SG_K_PATH 0x04u       /* a file path: relative values resolve against the file's dir */
#define SG_K_NONEMPTY 0x08u   /* STR: not ""; STRV: at least one element */
#define SG_K_SCALAR_OK 0x10u  /* STRV: a single string is taken as a one-element list */

#define SG_KOFF_NONE ((size_t)-1)

/*
 * Checks that need more than the type: run by check.c after the value is stored (for a
 * GROUP after its members are walked, for a LIST once per element). An id, not a
 * function pointer, so that the checks stay static in check.c.
 */
typedef enum {
    SG_CK_NONE = 0,
    SG_CK_ADDRESS,     /* numeric IPv4/IPv6 address */
    SG_CK_CA_FILE,     /* "" or a file with at least one PEM certificate */
    SG_CK_LISTEN,      /* listen element: certificate, private key, and that they match */
    SG_CK_UPSTREAM,    /* upstream group: url parsing, server_name, authority */
    SG_CK_SHA256,      /* token hash: 64 hex digits decoded into the token */
    SG_CK_JWT_KEY,     /* jwt key element: alg against public_key/secret_file and their files */
    SG_CK_TASK_KEY,    /* "" or a file with at least 32 bytes of raw secret */
    SG_CK_SIGNING_KEY, /* "" or an Ed25519 private key PEM */
    SG_CK_AUDIT_FILE,  /* "" or a path whose directory exists and is writable */
    SG_CK_LOG_ACCESS,  /* "off", "stderr" or a path as for SG_CK_AUDIT_FILE */
    SG_CK_SERVER_NAME, /* "" or a host name (it becomes SNI and the Host header) */
    SG_CK_DROP_HEADERS, /* routes.drop_headers: header names or "prefix*" */
    SG_CK_NAME,        /* an upstream's name: [A-Za-z0-9_.-], at most SG_CONF_NAME_MAX */
    SG_CK_VHOST,       /* vhost element: server_names, certificate and key pair */
    SG_CK_SYSLOG_ADDRESS, /* "unix:PATH", "udp:HOST:PORT" or "tcp:HOST:PORT" */
    SG_CK_APP_NAME,    /* RFC 5424 APP-NAME: 1-48 printable ASCII characters, no space */
    SG_CK_WINDOW,      /* change_windows element: remembers where it is */
    SG_CK_OPERATION,   /* operations element: ticket regex, ticket_header */
    SG_CK_TENANT,      /* policy.tenants element: ticket regex */
    SG_CK_APPROVER,    /* policy.approvers element: remembers where it is */
    SG_CK__COUNT
} sg_conf_check_t;

typedef struct {
    const char *name; /* NULL ends the table */
    int value;
} sg_conf_enum_t;

typedef struct {
    const char *path;
    sg_conf_ktype_t type;
    unsigned flags;
    long long min, max;          /* INT: value bounds; LIST: element count bounds */
    long long def;               /* INT, BOOL, ENUM default */
    const char *def_str;         /* STR default; NULL leaves the pointer NULL */
    const sg_conf_enum_t *enums; /* ENUM: accepted names */
    sg_conf_check_t check;
    size_t off;       /* in sg_conf_t, or in the element struct of the nearest enclosing LIST */
    size_t off_n;     /* LIST: the size_t element count */
    size_t elem_size; /* LIST: sizeof one element */
} sg_conf_key_t;

extern const sg_conf_key_t sg__conf_keys[];
extern const size_t sg__conf_nkeys;

/* The row for PATH ("limits.max_body_bytes"), or NULL for an unknown key. */
const sg_conf_key_t *sg__conf_key_find(const char *path);

#endif
