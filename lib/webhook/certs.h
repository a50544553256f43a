/*
 * whcert: the webhook's serving certificate.
 *
 * Two modes:
 *  - self-managed: generate a self-signed CA and a serving certificate for
 *    <svc>.<ns>.svc (and the other in-cluster spellings) with OpenSSL
 *    (ophttpd_cert_generate), keep them in a kubernetes.io/tls Secret (with
 *    ca.crt) that the controller applies, and patch the CA into the
 *    MutatingWebhookConfiguration's caBundle. whcert_decide() is the pure
 *    rotation rule: renew when less than 1/3 of the validity remains, when the
 *    wanted SANs changed, or when the certificate is unreadable or not signed
 *    by the CA. On rotation the caBundle should carry the old and the new CA
 *    (whcert_ca_bundle) until every API server has seen the new one, so no
 *    handshake fails in between. The previous CA's certificate (never its key)
 *    is kept in the Secret too, as data ca-previous.crt with the time it stops
 *    being trusted in annotation optipod.io/ca-previous-until (RFC 3339, UTC),
 *    so a restarted leader rebuilds the same caBundle. A malformed previous CA
 *    is reported (whcert_pems.prev_err) and ignored: it never blocks serving.
 *  - mounted files (cert-manager): tls.crt/tls.key in a directory, re-read
 *    when they change (stat polling follows the kubelet's ..data symlink
 *    swap), validated as a matching pair before use; a half-updated pair is
 *    ignored until the next poll.
 *
 * Ownership: strings returned in whcert_pems are malloc'd (whcert_pems_release
 * frees them). whcert_watch_start() allocates; whcert_watch_stop() closes its
 * timer and frees it from the loop.
 */
#ifndef OPTIPOD_WEBHOOK_CERTS_H
#define OPTIPOD_WEBHOOK_CERTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "httpd/httpd.h"
#include "util/buf.h"
#include "util/err.h"

#define WHCERT_MAX_SANS 16
/* Cap on a PEM file or Secret read from disk or the API. */
#define WHCERT_MAX_PEM (256 * 1024)
/* Content type of whcert_cabundle_patch's body. */
#define WHCERT_CABUNDLE_PATCH_TYPE "application/strategic-merge-patch+json"
/* Where the Secret keeps the previous CA and until when it stays in the caBundle. */
#define WHCERT_PREV_CA_KEY    "ca-previous.crt"
#define WHCERT_PREV_UNTIL_ANN "optipod.io/ca-previous-until"

typedef struct whcert_sans {
    const char *v[WHCERT_MAX_SANS + 1]; /* NULL-terminated, points into store */
    size_t n;
    char store[2048];
} whcert_sans;

/* svc, svc.ns, svc.ns.svc, svc.ns.svc.cluster.local, then `extra` (NULL-terminated, may be
 * NULL: e.g. "127.0.0.1" for an out-of-cluster webhook). Returns 0, -EINVAL or -E2BIG. */
int whcert_sans_for_service(whcert_sans *s, const char *svc, const char *ns,
                            const char *const *extra);

/* A fresh CA and serving certificate for the SANs, valid for `days`. */
int whcert_generate(ophttpd_cert *out, const whcert_sans *s, int days);

typedef struct whcert_pems {
    char *cert, *key, *ca; /* malloc'd, NUL-terminated; ca may be NULL */
    /* The previous CA (certificate only) kept through a rotation's overlap, or NULL. */
    char *prev_ca;
    time_t prev_until;     /* drop it from the caBundle at this time */
    time_t prev_not_after; /* its own expiry (whcert_from_secret_json fills it) */
    char prev_err[160];    /* why a previous CA in the Secret was ignored, "" when not */
} whcert_pems;
void whcert_pems_release(whcert_pems *p);

/* The Secret (type kubernetes.io/tls, data tls.crt, tls.key, ca.crt) as JSON: a body for
 * create or for a server-side apply. ca_pem may be NULL. */
int whcert_secret_json(opbuf *out, const char *name, const char *ns, const char *cert_pem,
                       const char *key_pem, const char *ca_pem);
/* The same with p->cert/key/ca, plus ca-previous.crt and its until-annotation when
 * p->prev_ca is set. */
int whcert_secret_json_pems(opbuf *out, const char *name, const char *ns, const whcert_pems *p);
/* Read a Secret fetched from the API back into PEMs. -EINVAL (err says which key) when
 * tls.crt or tls.key is missing or not base64. A previous CA that is not base64, not a
 * certificate or without a valid until-annotation leaves prev_ca NULL and prev_err set
 * (the call still succeeds). */
int whcert_from_secret_json(const char *json, size_t len, whcert_pems *out, operr *err);

/* The caBundle for the configuration: new CA first, then the old one when different. */
int whcert_ca_bundle(opbuf *out, const char *new_ca_pem, const char *old_ca_pem);
/* Strategic merge patch for a MutatingWebhookConfiguration setting clientConfig.caBundle of
 * the named webhooks (merged by name, other webhooks untouched):
 *   {"webhooks":[{"name":"pods.optipod.io","clientConfig":{"caBundle":"<base64>"}}]} */
int whcert_cabundle_patch(opbuf *out, const char *const *webhook_names, size_t n,
                          const char *ca_bundle_pem);

/* The same change as a server-side apply body (application/apply-patch+yaml, JSON is YAML)
 * for MutatingWebhookConfiguration `config_name`: webhooks is a map keyed by name, so
 * field manager optipod comes to own only each webhook's clientConfig.caBundle. The
 * configuration must already exist (installed with the manifests). */
int whcert_cabundle_apply(opbuf *out, const char *config_name, const char *const *webhook_names,
                          size_t n, const char *ca_bundle_pem);

enum whcert_action {
    WHCERT_KEEP = 0,
    WHCERT_RENEW_EXPIRING, /* less than 1/3 of the validity left (or expired) */
    WHCERT_RENEW_SANS,     /* the SAN set differs from the wanted one */
    WHCERT_RENEW_INVALID,  /* unreadable, not yet valid, or not signed by the CA */
};

typedef struct whcert_decision {
    enum whcert_action action;
    time_t not_before, not_after; /* 0 when unreadable */
    time_t renew_at;              /* when KEEP turns into RENEW_EXPIRING */
    char why[200];
} whcert_decision;

/* Pure rotation rule. ca_pem NULL skips the signature check; want_sans NULL skips the SAN
 * check. Returns 0 (decision filled) or -ENOMEM. */
int whcert_decide(const char *cert_pem, const char *ca_pem, const char *const *want_sans,
                  time_t now, whcert_decision *d);
const char *whcert_action_name(enum whcert_action a);

/* notBefore/notAfter of the first certificate in a PEM; 0 or -EINVAL. */
int whcert_validity(const char *cert_pem, time_t *not_before, time_t *not_after);
/* 0 when key_pem is the private key of cert_pem, else -EINVAL (err says why). */
int whcert_check_pair(const char *cert_pem, const char *key_pem, operr *err);

/* ---- mounted files ------------------------------------------------------------------- */

typedef struct whcert_stamp {
    dev_t dev[2];
    ino_t ino[2];
    int64_t mtime_ns[2];
    off_t size[2];
} whcert_stamp;

/* Read dir/tls.crt and dir/tls.key, check they match, fill *st. -ENOENT/-EINVAL/-E2BIG
 * with err naming the file. */
int whcert_load_dir(const char *dir, whcert_pems *out, whcert_stamp *st, operr *err);
/* Stat both files; 1 when they differ from *st, 0 when not, negative errno on failure. */
int whcert_dir_changed(const char *dir, const whcert_stamp *st);

typedef void (*whcert_change_cb)(const char *cert_pem, const char *key_pem, void *ud);
typedef struct whcert_watch whcert_watch;

/* Load the pair now (failing start when it is absent or bad), call on_change with it, then
 * poll every interval_ms (0 = 10 s) and call on_change again after each valid change. */
int whcert_watch_start(whcert_watch **out, uv_loop_t *loop, const char *dir, unsigned interval_ms,
                       whcert_change_cb on_change, void *ud, operr *err);
/* Reloads done so far (including the first) and bad pairs skipped. */
uint64_t whcert_watch_reloads(const whcert_watch *w);
uint64_t whcert_watch_errors(const whcert_watch *w);
void whcert_watch_stop(whcert_watch *w);

#endif
