/*
 * kdisc: what the API server supports, discovered rather than assumed.
 *
 * Three questions, each answered by one GET:
 *  - the version: GET /version → {"major":"1","minor":"24","gitVersion":"v1.24.17",...}
 *    (minor may carry a suffix on managed clusters: "27+" counts as 27);
 *  - in-place resize: GET /api/v1 → APIResourceList; supported when it lists
 *    "pods/resize" with the "patch" verb (the subresource exists from 1.32;
 *    1.27-1.31 took resizes through a plain pod PATCH, see apply/resize.h);
 *  - optional APIs: GET /apis/GROUP/VERSION → APIResourceList; a resource is
 *    present when listed (404 = the group/version is not served), for a
 *    feature that must be switched on only where its API exists.
 *
 * Parsers are pure and take a length (bodies come from the network; fuzzed in
 * test/fuzz/fuzz_discovery.c). The cache (kdisc) runs the GETs over krest,
 * remembers the answers and refreshes them when older than the refresh
 * interval. Time is passed in by the caller (now_ms), so no timer is owned.
 *
 * A failed GET keeps the previous answer for that question (a blip must not
 * turn a feature off); a question never answered stays KDISC_UNKNOWN.
 *
 * Ownership: kdisc_new() allocates; kdisc_free() cancels requests in flight
 * (their waiters' callbacks are NOT called, like ophttp_cancel) and frees.
 * The krest is borrowed and must outlive the kdisc. Everything runs on the
 * loop thread.
 */
#ifndef OPTIPOD_KUBE_DISCOVERY_H
#define OPTIPOD_KUBE_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

#include "kube/rest.h"
#include "util/err.h"

/* Verbs of an APIResource, as a bit set. */
enum kdisc_verb {
    KDISC_VERB_GET = 1u << 0,
    KDISC_VERB_LIST = 1u << 1,
    KDISC_VERB_WATCH = 1u << 2,
    KDISC_VERB_CREATE = 1u << 3,
    KDISC_VERB_UPDATE = 1u << 4,
    KDISC_VERB_PATCH = 1u << 5,
    KDISC_VERB_DELETE = 1u << 6,
    KDISC_VERB_DELETECOLLECTION = 1u << 7,
};

/* Tri-state answers. */
enum kdisc_tri { KDISC_UNKNOWN = -1, KDISC_NO = 0, KDISC_YES = 1 };

typedef struct kdisc_version {
    int major, minor;     /* 0 when unknown */
    char git_version[64]; /* "v1.24.17"; "" when absent */
    char platform[64];    /* "linux/amd64"; "" when absent */
} kdisc_version;

/* ---- pure parsers ------------------------------------------------------------------------ */

/* Parse a /version document. major and minor must be decimal (a trailing "+"
 * or other non-digits after the digits are ignored: "27+" → 27); when they are
 * missing, gitVersion "vMAJOR.MINOR..." is used. Returns 0 or -EINVAL (not a
 * JSON object, or no usable version) with a message. */
int kdisc_parse_version(const char *body, size_t len, kdisc_version *out, operr *err);

/* Look up resource `name` ("pods/resize", "applications") in an APIResourceList.
 * When group_version is non-NULL the list's groupVersion must equal it.
 * Returns 1 (found; *verbs gets its verbs, may be NULL), 0 (not listed) or
 * -EINVAL (not an APIResourceList, or another groupVersion) with a message. */
int kdisc_find_resource(const char *body, size_t len, const char *group_version, const char *name,
                        unsigned *verbs, operr *err);

/* Parse one verb name; 0 for verbs not in the set. */
unsigned kdisc_verb_bit(const char *verb);

/* Version order: negative, 0, positive as (major, minor) is below, equal to or
 * above (maj, min). An unknown version (major 0) is below everything. */
int kdisc_version_cmp(const kdisc_version *v, int maj, int min);

/* ---- the cache ---------------------------------------------------------------------------- */

typedef struct kdisc kdisc;

#define KDISC_MAX_APIS    16 /* optional group/version/resources watched for */
#define KDISC_MAX_WAITERS 16 /* callbacks queued on one refresh */

/* A snapshot of what is known. */
typedef struct kdisc_info {
    kdisc_version version;
    int have_version; /* version answered at least once */
    int pods_resize;  /* enum kdisc_tri: pods/resize with patch */
    unsigned resize_verbs;
    uint64_t refreshed_ms; /* now_ms of the last completed refresh; 0 = never */
} kdisc_info;

/* Called when a refresh completes (every GET answered or failed). `ok` is 1
 * when every GET got an answer (2xx, or 404 for an optional group/version). */
typedef void (*kdisc_cb)(kdisc *d, int ok, void *ud);

/* refresh_ms: how old answers may get before kdisc_refresh() asks again
 * (0 = 10 minutes). Returns 0, -EINVAL or -ENOMEM. */
int kdisc_new(kdisc **out, krest *rest, uint64_t refresh_ms);
void kdisc_free(kdisc *d);

/* Register an optional API to look for (before or between refreshes; asked
 * at the next refresh). Returns its index (>= 0), the existing index when it
 * was registered before, -ENOSPC past KDISC_MAX_APIS, -EINVAL. The strings
 * are copied. */
int kdisc_want(kdisc *d, const char *group_version, const char *resource);

/* Refresh when `force` or when the answers are older than the refresh
 * interval (or missing). Returns:
 *   1          the cache is fresh; nothing was asked; cb is NOT called;
 *   0          a refresh is running (started now or earlier); cb (may be NULL)
 *              is called once when it completes;
 *   -EBUSY     too many waiters; -ENOMEM; or krest's error starting a GET
 *              (then nothing was started and cb is never called). */
int kdisc_refresh(kdisc *d, uint64_t now_ms, int force, kdisc_cb cb, void *ud);

/* A refresh is in flight. */
int kdisc_busy(const kdisc *d);
/* The current answers (a copy). */
void kdisc_get(const kdisc *d, kdisc_info *out);
/* enum kdisc_tri for a group/version/resource registered with kdisc_want
 * (KDISC_UNKNOWN when never answered or not registered). */
int kdisc_has(const kdisc *d, const char *group_version, const char *resource);
/* Last error of a failed GET ("" when the last refresh was clean). */
const char *kdisc_last_error(const kdisc *d);

#endif
