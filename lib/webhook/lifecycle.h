/*
 * whlife: the webhook's serving certificate over the controller's lifetime.
 *
 * Two modes, one callback (on_cert) that hands the pair to serve to whsrv:
 *  - mounted (cert_dir set, cert-manager): whcert_watch polls the directory and
 *    every valid new pair is delivered, so a renewed certificate is served
 *    without a restart.
 *  - self-managed: on start and every interval, GET the Secret <ns>/<secret>.
 *    whlife_decide() (pure) says what to do with what was read:
 *      USE      serve the Secret's pair; the leader also patches the CA into
 *               the MutatingWebhookConfiguration once per process (and after
 *               each rotation), so steady state writes nothing;
 *      CREATE   absent: generate a CA and a cert for <svc>.<ns>.svc (and the
 *               other spellings), POST the Secret;
 *      REPLACE  unreadable, expiring (< 1/3 validity left) or wrong SANs
 *               (whcert_decide): generate, PUT with the read resourceVersion
 *               as precondition;
 *      WAIT     a non-leader with nothing usable: poll again.
 *    Only the leader (is_leader, NULL = always) writes. A 409 on either write
 *    means another replica won: the Secret is read again at once and its pair
 *    used. After a write the caBundle gets the new CA and the previous one
 *    (whcert_ca_bundle), so replicas still serving the old pair until their
 *    next poll keep passing the API server's verification.
 *
 * The previous CA lives in the Secret, not in memory: a rotation writes the
 * old CA's certificate as ca-previous.crt with an until-time (the earlier of
 * now + overlap_s and the old CA's own expiry). Every read rebuilds the bundle
 * from the Secret (current CA, plus the previous one while before its
 * until-time and expiry), so a leader restarted during the overlap patches the
 * same bundle as the one that rotated, instead of dropping the old CA while
 * replicas still serve certificates it signed. Once the overlap is over the
 * bundle loses it at the next check, and the leader removes it from the
 * Secret (TIDY, an update with the resourceVersion precondition, same pair).
 * A malformed previous CA (not base64, not a certificate, bad until-time) is
 * logged, counted in prev_ignored, left out of the bundle and tidied away by
 * the leader; the current pair is served regardless.
 *
 * One request is in flight at a time; every failure is logged and retried
 * after retry_ms. The caBundle is written with a strategic merge patch (the
 * webhooks list merges by name, other webhooks untouched; a missing
 * configuration is a 404, never a half-made object) under field manager
 * "optipod".
 *
 * Ownership: whlife_start() allocates and copies its options (strings too);
 * the krest (self-managed) and the loop must outlive it. whlife_stop()
 * cancels the request in flight, closes the timer and frees from the loop,
 * then calls on_closed(ud).
 */
#ifndef OPTIPOD_WEBHOOK_LIFECYCLE_H
#define OPTIPOD_WEBHOOK_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "kube/rest.h"
#include "util/err.h"
#include "webhook/certs.h"

#define WHLIFE_DEFAULT_WEBHOOK     "pods.optipod.io"
#define WHLIFE_MAX_NAMES           8
#define WHLIFE_DEFAULT_DAYS        365
#define WHLIFE_DEFAULT_INTERVAL_MS 60000u
#define WHLIFE_DEFAULT_RETRY_MS    5000u
#define WHLIFE_DEFAULT_OVERLAP_S   86400u

typedef void (*whlife_cert_cb)(const char *cert_pem, const char *key_pem, void *ud);

typedef struct whlife_opts {
    const char *cert_dir; /* mounted mode when non-empty; the rest below is then unused */
    unsigned dir_poll_ms; /* mounted: 0 = whcert_watch's default */

    const char *service, *ns, *secret; /* self-managed: required */
    const char *config_name;           /* MutatingWebhookConfiguration; NULL/"" = no caBundle */
    const char *const *webhook_names;  /* NULL-terminated; NULL = {WHLIFE_DEFAULT_WEBHOOK} */
    const char *const *extra_sans;     /* NULL-terminated, may be NULL ("127.0.0.1", ...) */
    int days;                          /* validity of generated certs; 0 = default */
    unsigned interval_ms;              /* Secret check period; 0 = default */
    unsigned retry_ms;                 /* after a failure; 0 = default */
    unsigned overlap_s;                /* previous CA kept in the caBundle; 0 = default */
    int (*is_leader)(void *ud);        /* NULL = this process always writes */
    time_t (*now)(void *ud);           /* wall clock for the rotation rule; NULL = time() */

    whlife_cert_cb on_cert; /* required: serve this pair (called again on every change) */
    void *ud;
} whlife_opts;

/* ---- the pure core ---------------------------------------------------------------------- */

/* TIDY: USE, and the leader also rewrites the Secret without a previous CA that is over or
 * malformed. */
enum whlife_do { WHLIFE_USE = 0, WHLIFE_CREATE, WHLIFE_REPLACE, WHLIFE_WAIT, WHLIFE_TIDY };

enum whlife_prev {
    WHLIFE_PREV_NONE = 0, /* no ca-previous.crt */
    WHLIFE_PREV_LIVE,     /* kept in the caBundle */
    WHLIFE_PREV_OVER,     /* past its until-time or its own expiry, or the same as ca.crt */
    WHLIFE_PREV_BAD,      /* malformed: ignored (prev_why says why) */
};

typedef struct whlife_view {
    int leader;
    int found;    /* the Secret exists */
    int readable; /* tls.crt, tls.key and ca.crt decode, and key matches cert */
    int expired;  /* notAfter passed (or not yet valid) */
    enum whcert_action action;
    enum whlife_prev prev; /* only looked at when readable */
    char rv[64];           /* metadata.resourceVersion */
    char why[256];
    char prev_why[160];
} whlife_view;

enum whlife_do whlife_decide(const whlife_view *v);
const char *whlife_do_name(enum whlife_do d);

/* Fill *v (but v->leader) from a Secret body: pems gets the pair when readable (caller
 * releases), and prev_ca only when the previous CA is LIVE at `now`. found=0 when json is
 * NULL. Returns 0 or -ENOMEM. */
int whlife_examine(const char *json, size_t len, const char *const *want_sans, time_t now,
                   whlife_view *v, whcert_pems *pems);

/* ---- the glue --------------------------------------------------------------------------- */

typedef struct whlife whlife;

typedef struct whlife_stats {
    uint64_t checks;         /* Secret reads answered */
    uint64_t generated;      /* certificates generated */
    uint64_t secret_writes;  /* successful creates and updates */
    uint64_t conflicts;      /* 409 on a Secret write: another replica won */
    uint64_t bundle_patches; /* successful caBundle patches */
    uint64_t prev_ignored;   /* reads that found a malformed previous CA */
    uint64_t delivered;      /* on_cert calls */
    uint64_t errors;
} whlife_stats;

/* Mounted mode: fails (-ENOENT/-EINVAL, err says why) when the pair is absent or bad, and
 * has called on_cert once on success. Self-managed: the first check goes out at once.
 * rest may be NULL in mounted mode. */
int whlife_start(whlife **out, uv_loop_t *loop, krest *rest, const whlife_opts *o, operr *err);
/* Check the Secret now (e.g. on gaining leadership). */
void whlife_kick(whlife *l);
void whlife_stats_get(const whlife *l, whlife_stats *out);
/* PEM of the CA of the pair served now (self-managed), or NULL. */
const char *whlife_ca(const whlife *l);
void whlife_stop(whlife *l, void (*on_closed)(void *ud), void *ud);

#endif
