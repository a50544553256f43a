/*
 * opyaml: a YAML stream loaded with libyaml into a tree of maps, sequences and
 * scalars, each node carrying the line and column it started at.
 *
 * The tree is plain data: callers walk it with opyaml_get()/opyaml_at() and
 * interpret scalars themselves (opyaml_bool(), opyaml_int64(), opyaml_is_null()
 * follow YAML 1.1 as Kubernetes tools read it). Nothing in the input is trusted:
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

/* The text of a non-null scalar, or NULL for anything else. */
const char *opyaml_str(const opyaml_node *n);
/* 1 for a NULL pointer or a plain "", "~", "null", "Null", "NULL" scalar. */
int opyaml_is_null(const opyaml_node *n);
/* YAML 1.1 booleans (true/false/yes/no/on/off in their three casings) when
 * plain; returns 0 or -EINVAL. */
int opyaml_bool(const opyaml_node *n, int *out);
/* A plain decimal integer (optional sign, no overflow); returns 0 or -EINVAL. */
int opyaml_int64(const opyaml_node *n, int64_t *out);
/* "map", "sequence", "null" or "string", for error messages. */
const char *opyaml_kind_name(const opyaml_node *n);

#endif
