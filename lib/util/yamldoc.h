/*
 * opyaml: THE YAML loader of the project: a YAML stream loaded with libyaml into
 * a tree of maps, sequences and scalars, each node carrying the line and column
 * it started at. util/yaml2json turns such trees into cJSON.
 *
 * The tree is plain data: callers walk it with opyaml_get()/opyaml_at() and
 * interpret scalars through opyaml_resolve() (and opyaml_bool(), opyaml_int64(),
 * opyaml_is_null() on top of it), the one place that decides what a scalar
 * means. It follows what Kubernetes does with a manifest: sigs.k8s.io/yaml
 * converts YAML to JSON through go-yaml v2, which resolves plain scalars by
 * YAML 1.1, so
 *  - null: empty, ~, null, Null, NULL;
 *  - booleans: y Y yes Yes YES true True TRUE on On ON, and
 *              n N no No NO false False FALSE off Off OFF
 *    (`replicas: y` is true to kubectl too; quote it to mean the letter);
 *  - integers: decimal with an optional sign (past int64: a float), 0x hex;
 *  - floats: [-+]?(.digits|digits(.digits?)?)([eE][-+]?digits)?;
 *  - anything else, and every quoted or block scalar, is a string.
 * Where go-yaml v2 goes further we keep the text: "0123" (octal to YAML 1.1),
 * 0b/0o/underscored numbers, .inf/.nan and dates stay strings. Explicit tags
 * !!str, !!null, !!bool, !!int and !!float are honoured; another tag, or text
 * that does not fit its tag, does not resolve. Nothing in the input is trusted:
 * the size, the nesting depth and the number of nodes are capped, map keys must
 * be scalars and unique (compared as C strings), and aliases are expanded by copy against the same
 * node budget (so "billion laughs" documents stop at the cap instead of exhausting memory). An
 * alias may only name an anchor whose node is complete.
 *
 * Errors name the line and column, e.g.
 *   line 3 column 7: mapping values are not allowed in this context
 *
 * Ownership: the opyaml_doc owns every node and string. opyaml_init() allocates
 * nothing; opyaml_release() frees the whole tree and leaves the doc re-usable.
 * Node pointers stay valid until then.
 */
#ifndef OPTIPOD_UTIL_YAMLDOC_H
#define OPTIPOD_UTIL_YAMLDOC_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum opyaml_kind { OPYAML_SCALAR = 1, OPYAML_MAP, OPYAML_SEQ } opyaml_kind;

typedef struct opyaml_node opyaml_node;

typedef struct opyaml_pair {
    opyaml_node *key; /* always a scalar */
    opyaml_node *value;
} opyaml_pair;

struct opyaml_node {
    opyaml_kind kind;
    int line, column; /* 1-based start of the node in the input */
    /* scalars */
    char *str;  /* NUL-terminated; may hold NULs ("\0" escapes), see len */
    size_t len; /* bytes in str, excluding the terminator */
    int plain;  /* unquoted and untagged: only such scalars can be null, bool or int */
    char *tag;  /* explicit tag as written (e.g. "tag:yaml.org,2002:str"), or NULL */
    /* maps (pairs) and sequences (items) */
    size_t n;
    opyaml_pair *pairs;
    opyaml_node **items;
    size_t cap_; /* private: allocated slots */
};

typedef struct opyaml_limits {
    size_t max_bytes;   /* input size */
    unsigned max_depth; /* nested maps/sequences; a scalar root is depth 0 */
    size_t max_nodes;   /* across the whole stream, alias copies included */
    size_t max_docs;    /* documents in the stream */
} opyaml_limits;

#define OPYAML_MAX_BYTES ((size_t)4 << 20)
#define OPYAML_MAX_DEPTH 64u
#define OPYAML_MAX_NODES ((size_t)1 << 18)
#define OPYAML_MAX_DOCS  ((size_t)1024)

typedef struct opyaml_doc {
    opyaml_node **roots; /* one per document; a document with no content is a null scalar */
    size_t nroots;
    size_t nodes; /* nodes allocated */
} opyaml_doc;

void opyaml_init(opyaml_doc *d);
void opyaml_release(opyaml_doc *d);
/* Load every document of `data` (len bytes, need not be NUL-terminated). lim NULL
 * means the OPYAML_MAX_* defaults; a zero field also means its default. On error
 * the doc is left empty. Returns 0, -EINVAL (bad YAML, message in err), -E2BIG
 * (a limit was hit) or -ENOMEM. */
int opyaml_load(opyaml_doc *d, const char *data, size_t len, const opyaml_limits *lim, operr *err);
/* The first document's root, or NULL for an empty stream. */
const opyaml_node *opyaml_root(const opyaml_doc *d);

/* The value under `key` in a map; NULL when n is not a map or has no such key. */
const opyaml_node *opyaml_get(const opyaml_node *map, const char *key);
/* The pair holding `key` (to report the key's line), or NULL. */
const opyaml_pair *opyaml_get_pair(const opyaml_node *map, const char *key);
/* Item i of a sequence, or NULL. */
const opyaml_node *opyaml_at(const opyaml_node *seq, size_t i);

/* What a scalar means (the rules above). */
typedef enum opyaml_type {
    OPYAML_T_STR = 0,
    OPYAML_T_NULL,
    OPYAML_T_BOOL,
    OPYAML_T_INT,
    OPYAML_T_FLOAT,
} opyaml_type;

typedef struct opyaml_scalar {
    opyaml_type type;
    int b;     /* OPYAML_T_BOOL */
    int64_t i; /* OPYAML_T_INT */
    double f;  /* OPYAML_T_FLOAT, and OPYAML_T_INT's value as a double */
} opyaml_scalar;

/* Resolve a scalar node: 0 with *v, or -EINVAL for a NULL or non-scalar node, an
 * unknown tag or text that does not fit its tag (*v is then a string). */
int opyaml_resolve(const opyaml_node *n, opyaml_scalar *v);

/* The text of a non-null scalar, or NULL for anything else. */
const char *opyaml_str(const opyaml_node *n);
/* 1 for a NULL pointer or a scalar that resolves to null. */
int opyaml_is_null(const opyaml_node *n);
/* A scalar that resolves to a boolean; returns 0 or -EINVAL. */
int opyaml_bool(const opyaml_node *n, int *out);
/* A scalar that resolves to an integer within int64; returns 0 or -EINVAL. */
int opyaml_int64(const opyaml_node *n, int64_t *out);
/* "map", "sequence", "null" or "string", for error messages. */
const char *opyaml_kind_name(const opyaml_node *n);

#endif
