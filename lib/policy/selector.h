/*
 * lsel: Kubernetes label selectors.
 *
 * Two spellings produce the same model, a list of requirements that must all
 * hold (AND):
 *   - the API object (metav1.LabelSelector): {"matchLabels": {"k": "v"},
 *     "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]};
 *   - the string form used by --selector flags and kubectl -l:
 *     "a=b,c!=d,e in (x,y),f notin (z),g,!h".
 * Semantics follow Kubernetes: NotIn and != also match objects that lack the
 * key; an empty selector matches everything. Keys and values are checked
 * against the Kubernetes label syntax (qualified names, 63-character values).
 *
 * Ownership: an lsel_selector owns its requirements and their strings.
 * lsel_init() allocates nothing; lsel_release() frees the contents and leaves
 * an empty (match-all) selector. Parse functions release `out` first, and on
 * failure leave it empty. Sizes are capped (LSEL_MAX_*), so hostile input
 * cannot make a selector grow without bound.
 */
#ifndef OPTIPOD_POLICY_SELECTOR_H
#define OPTIPOD_POLICY_SELECTOR_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

#define LSEL_MAX_REQS       64   /* requirements in one selector */
#define LSEL_MAX_VALUES     128  /* values of one In/NotIn requirement */
#define LSEL_MAX_STRING     8192 /* bytes of the string form */
#define LSEL_MAX_KEY_PREFIX 253  /* DNS subdomain before the '/' */
#define LSEL_MAX_NAME       63   /* name part of a key, and a value */

typedef enum lsel_op {
    LSEL_OP_IN,
    LSEL_OP_NOT_IN,
    LSEL_OP_EXISTS,
    LSEL_OP_DOES_NOT_EXIST,
} lsel_op;

typedef struct lsel_req {
    char *key;
    lsel_op op;
    char **values; /* In/NotIn: 1..LSEL_MAX_VALUES values; otherwise none */
    size_t nvalues;
    bool from_match_labels; /* came from matchLabels (printed back there) */
} lsel_req;

typedef struct lsel_selector {
    lsel_req *reqs;
    size_t nreqs;
} lsel_selector;

void lsel_init(lsel_selector *s);
void lsel_release(lsel_selector *s);

/* From a metav1.LabelSelector object. `path` names the object in errors
 * ("spec.selector.workloadSelector"), e.g.
 *   spec.selector.workloadSelector.matchExpressions[0].operator: unsupported value "Foo"
 * A NULL or JSON-null obj yields the empty selector. Returns 0, -EINVAL or -ENOMEM. */
int lsel_from_json(lsel_selector *out, const cJSON *obj, const char *path, operr *err);

/* From the string form (len bytes, need not be NUL-terminated). The empty
 * string is the empty selector. Returns 0, -EINVAL, -E2BIG or -ENOMEM. */
int lsel_parse(lsel_selector *out, const char *s, size_t len, operr *err);

/* Does a label set (a JSON object of string values; NULL = no labels) match? */
bool lsel_matches(const lsel_selector *s, const cJSON *labels);

/* The string form, appended to `out` ("" for the empty selector); parsing it
 * back gives an equivalent selector. Returns 0 or an opbuf error. */
int lsel_format(const lsel_selector *s, opbuf *out);

/* The API object form; returns a new cJSON object (caller deletes) or NULL on ENOMEM. */
cJSON *lsel_to_json(const lsel_selector *s);

/* Syntax checks, exposed for other fields that hold label keys or names. */
bool lsel_valid_key(const char *k);
bool lsel_valid_value(const char *v);

const char *lsel_op_name(lsel_op op); /* "In", "NotIn", "Exists", "DoesNotExist" */

#endif
