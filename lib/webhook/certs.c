#include "webhook/certs.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util/b64.h"
#include "util/log.h"
#include "util/optime.h"

/* ---- SANs and generation --------------------------------------------------------------- */

static int sans_add(whcert_sans *s, size_t *used, const char *fmt, const char *a, const char *b)
{
    if (s->n >= WHCERT_MAX_SANS)
        return -E2BIG;
    int n = snprintf(s->store + *used, sizeof s->store - *used, fmt, a, b);
    if (n < 0 || (size_t)n >= sizeof s->store - *used)
        return -E2BIG;
    s->v[s->n++] = s->store + *used;
    s->v[s->n] = NULL;
    *used += (size_t)n + 1;
    return 0;
}

int whcert_sans_for_service(whcert_sans *s, const char *svc, const char *ns,
                            const char *const *extra)
{
    memset(s, 0, sizeof *s);
    if (!svc || !svc[0] || !ns || !ns[0] || strchr(svc, '.') || strchr(ns, '.'))
        return -EINVAL;
    size_t used = 0;
    int rc = sans_add(s, &used, "%s%s", svc, "");
    if (!rc)
        rc = sans_add(s, &used, "%s.%s", svc, ns);
    if (!rc)
        rc = sans_add(s, &used, "%s.%s.svc", svc, ns);
    if (!rc)
        rc = sans_add(s, &used, "%s.%s.svc.cluster.local", svc, ns);
    for (size_t i = 0; extra && extra[i] && !rc; i++)
        rc = extra[i][0] ? sans_add(s, &used, "%s%s", extra[i], "") : -EINVAL;
    return rc;
}

int whcert_generate(ophttpd_cert *out, const whcert_sans *s, int days)
{
    if (!s || s->n == 0 || days <= 0)
        return -EINVAL;
    return ophttpd_cert_generate(out, "optipod-webhook", s->v, days);
}

void whcert_pems_release(whcert_pems *p)
{
    if (!p)
        return;
    free(p->cert);
    free(p->key);
    free(p->ca);
    free(p->prev_ca);
    memset(p, 0, sizeof *p);
}

/* ---- Secret and caBundle bodies --------------------------------------------------------- */

static int add_b64(cJSON *obj, const char *key, const char *pem)
{
    opbuf b;
    opbuf_init(&b, WHCERT_MAX_PEM * 2);
    int rc = opb64_encode(&b, pem, strlen(pem));
    if (!rc && !cJSON_AddStringToObject(obj, key, opbuf_str(&b)))
        rc = -ENOMEM;
    opbuf_release(&b);
    return rc;
}

static int print_into(opbuf *out, const cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (!s)
        return -ENOMEM;
    int rc = opbuf_puts(out, s);
    cJSON_free(s);
    return rc;
}

int whcert_secret_json(opbuf *out, const char *name, const char *ns, const char *cert_pem,
                       const char *key_pem, const char *ca_pem)
{
    whcert_pems p = {.cert = (char *)cert_pem, .key = (char *)key_pem, .ca = (char *)ca_pem};
    return whcert_secret_json_pems(out, name, ns, &p);
}

int whcert_secret_json_pems(opbuf *out, const char *name, const char *ns, const whcert_pems *p)
{
    const char *cert_pem = p->cert, *key_pem = p->key, *ca_pem = p->ca;
    if (!name || !ns || !cert_pem || !key_pem)
        return -EINVAL;
    char until[OPTIME_STR_MAX];
    if (optime_format((optime){.sec = p->prev_until}, 0, until, sizeof until) < 0)
        snprintf(until, sizeof until, "1970-01-01T00:00:00Z");
    int rc = -ENOMEM;
    cJSON *j = cJSON_CreateObject();
    cJSON *meta = j ? cJSON_AddObjectToObject(j, "metadata") : NULL;
    cJSON *labels = meta ? cJSON_AddObjectToObject(meta, "labels") : NULL;
    cJSON *data = NULL;
    if (!labels || !cJSON_AddStringToObject(j, "apiVersion", "v1") ||
        !cJSON_AddStringToObject(j, "kind", "Secret") ||
        !cJSON_AddStringToObject(meta, "name", name) ||
        !cJSON_AddStringToObject(meta, "namespace", ns) ||
        !cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "optipod") ||
        (p->prev_ca && !cJSON_AddStringToObject(cJSON_AddObjectToObject(meta, "annotations"),
                                                WHCERT_PREV_UNTIL_ANN, until)) ||
        !cJSON_AddStringToObject(j, "type", "kubernetes.io/tls") ||
        !(data = cJSON_AddObjectToObject(j, "data")))
        goto out;
    rc = add_b64(data, "tls.crt", cert_pem);
    if (!rc)
        rc = add_b64(data, "tls.key", key_pem);
    if (!rc && ca_pem)
        rc = add_b64(data, "ca.crt", ca_pem);
    if (!rc && p->prev_ca)
        rc = add_b64(data, WHCERT_PREV_CA_KEY, p->prev_ca);
    if (!rc)
        rc = print_into(out, j);
out:
    cJSON_Delete(j);
    return rc;
}

/* A Secret's base64 value → malloc'd NUL-terminated PEM bytes; -EINVAL when it is not base64,
 * is too large for a PEM or holds a NUL byte (a PEM has none). */
static int pem_from_b64(const char *s, char **out)
{
    size_t n = strlen(s), len;
    if (n > WHCERT_MAX_PEM * 2)
        return -EINVAL;
    int rc = opb64_decode(s, n, out, &len, NULL, 0);
    if (!rc && memchr(*out, 0, len)) {
        free(*out);
        *out = NULL;
        rc = -EINVAL;
    }
    return rc;
}

/* The previous CA and its until-annotation: anything wrong is reported in prev_err and the
 * previous CA dropped, never an error of the whole Secret. Only -ENOMEM fails. */
static int read_prev(whcert_pems *out, const cJSON *meta, const cJSON *v)
{
    if (!v)
        return 0;
    const cJSON *ann = cJSON_GetObjectItemCaseSensitive(meta, "annotations");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(ann, WHCERT_PREV_UNTIL_ANN);
    time_t nb;
    optime until;
    int rc = cJSON_IsString(v) ? pem_from_b64(v->valuestring, &out->prev_ca) : -EINVAL;
    if (rc == -ENOMEM)
        return rc;
    if (rc)
        snprintf(out->prev_err, sizeof out->prev_err, "data.%s is not base64", WHCERT_PREV_CA_KEY);
    else if (whcert_validity(out->prev_ca, &nb, &out->prev_not_after) != 0)
        snprintf(out->prev_err, sizeof out->prev_err, "data.%s is not a PEM certificate",
                 WHCERT_PREV_CA_KEY);
    else if (!cJSON_IsString(u) || optime_parse(u->valuestring, OPTIME_UTC, &until) != 0)
        snprintf(out->prev_err, sizeof out->prev_err,
                 "annotation %s is missing or not an RFC 3339 UTC time", WHCERT_PREV_UNTIL_ANN);
    else
        out->prev_until = (time_t)until.sec;
    if (out->prev_err[0]) {
        free(out->prev_ca);
        out->prev_ca = NULL;
        out->prev_until = out->prev_not_after = 0;
    }
    return 0;
}

int whcert_from_secret_json(const char *json, size_t len, whcert_pems *out, operr *err)
{
    memset(out, 0, sizeof *out);
    if (len > WHCERT_MAX_PEM * 4)
        return operr_set(err, -E2BIG, "secret: %zu bytes is too big", len);
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (!j)
        return operr_set(err, -EINVAL, "secret: not JSON");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "metadata");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const char *name = cJSON_IsString(nm) ? nm->valuestring : "?";
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    const char *keys[3] = {"tls.crt", "tls.key", "ca.crt"};
    char **dst[3] = {&out->cert, &out->key, &out->ca};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, keys[i]);
        if (!cJSON_IsString(v)) {
            if (i < 2)
                rc = operr_set(err, -EINVAL, "secret '%s': data.%s is missing", name, keys[i]);
            continue;
        }
        rc = pem_from_b64(v->valuestring, dst[i]);
        if (rc == -EINVAL)
            operr_set(err, rc, "secret '%s': data.%s is not base64", name, keys[i]);
    }
    if (!rc)
        rc = read_prev(out, meta, cJSON_GetObjectItemCaseSensitive(data, WHCERT_PREV_CA_KEY));
    cJSON_Delete(j);
    if (rc)
        whcert_pems_release(out);
    return rc;
}

int whcert_ca_bundle(opbuf *out, const char *new_ca_pem, const char *old_ca_pem)
{
    int rc = opbuf_puts(out, new_ca_pem);
    if (!rc && old_ca_pem && old_ca_pem[0] && strcmp(old_ca_pem, new_ca_pem) != 0) {
        if (out->len && out->data[out->len - 1] != '\n')
            rc = opbuf_puts(out, "\n");
        if (!rc)
            rc = opbuf_puts(out, old_ca_pem);
    }
    return rc;
}

/* {"webhooks":[{"name":..,"clientConfig":{"caBundle":..}}...]} into j. */
static int add_webhooks(cJSON *j, const char *const *names, size_t n, const char *ca_bundle)
{
    cJSON *arr = cJSON_AddArrayToObject(j, "webhooks");
    if (!arr)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        cJSON *w = cJSON_CreateObject();
        if (!w)
            return -ENOMEM;
        if (!cJSON_AddItemToArray(arr, w)) {
            cJSON_Delete(w);
            return -ENOMEM;
        }
        cJSON *cc = NULL;
        if (!cJSON_AddStringToObject(w, "name", names[i]) ||
            !(cc = cJSON_AddObjectToObject(w, "clientConfig")))
            return -ENOMEM;
        int rc = add_b64(cc, "caBundle", ca_bundle);
        if (rc)
            return rc;
    }
    return 0;
}

int whcert_cabundle_patch(opbuf *out, const char *const *names, size_t n, const char *ca_bundle)
{
    if (!n || !ca_bundle)
        return -EINVAL;
    cJSON *j = cJSON_CreateObject();
    int rc = j ? add_webhooks(j, names, n, ca_bundle) : -ENOMEM;
    if (!rc)
        rc = print_into(out, j);
    cJSON_Delete(j);
    return rc;
}

int whcert_cabundle_apply(opbuf *out, const char *config_name, const char *const *names, size_t n,
                          const char *ca_bundle)
{
    if (!n || !ca_bundle || !config_name)
        return -EINVAL;
    int rc = -ENOMEM;
    cJSON *j = cJSON_CreateObject();
    cJSON *meta = NULL;
    if (!j || !cJSON_AddStringToObject(j, "apiVersion", "admissionregistration.k8s.io/v1") ||
        !cJSON_AddStringToObject(j, "kind", "MutatingWebhookConfiguration") ||
        !(meta = cJSON_AddObjectToObject(j, "metadata")) ||
        !cJSON_AddStringToObject(meta, "name", config_name))
        goto out;
    rc = add_webhooks(j, names, n, ca_bundle);
    if (!rc)
        rc = print_into(out, j);
out:
    cJSON_Delete(j);
    return rc;
}

/* ---- reading certificates --------------------------------------------------------------- */

static X509 *read_x509(const char *pem)
{
    if (!pem)
        return NULL;
    BIO *b = BIO_new_mem_buf(pem, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

static int asn1_to_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -EINVAL;
    *out = timegm(&tm);
    return 0;
}

int whcert_validity(const char *cert_pem, time_t *nb, time_t *na)
{
    X509 *x = read_x509(cert_pem);
    if (!x)
        return -EINVAL;
    int rc = asn1_to_time(X509_get0_notBefore(x), nb);
    if (!rc)
        rc = asn1_to_time(X509_get0_notAfter(x), na);
    X509_free(x);
    return rc;
}

int whcert_check_pair(const char *cert_pem, const char *key_pem, operr *err)
{
    X509 *x = read_x509(cert_pem);
    BIO *b = key_pem ? BIO_new_mem_buf(key_pem, -1) : NULL;
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    int rc = 0;
    if (!x)
        rc = operr_set(err, -EINVAL, "certificate: no PEM certificate found");
    else if (!k)
        rc = operr_set(err, -EINVAL, "certificate: no PEM private key found");
    else if (X509_check_private_key(x, k) != 1)
        rc = operr_set(err, -EINVAL, "certificate: the key does not match the certificate");
    EVP_PKEY_free(k);
    BIO_free(b);
    X509_free(x);
    return rc;
}

/* The certificate's DNS and IP SANs as one sorted-insensitive list compare. */
static int sans_equal(X509 *x, const char *const *want, char *why, size_t whycap)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int n = gens ? sk_GENERAL_NAME_num(gens) : 0;
    size_t nwant = 0;
    while (want[nwant])
        nwant++;
    int ok = 1;
    char have[64][256];
    int nhave = 0;
    for (int i = 0; i < n && nhave < 64; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            int l = ASN1_STRING_length(g->d.dNSName);
            snprintf(have[nhave++], sizeof have[0], "%.*s", l, (const char *)d);
        } else if (g->type == GEN_IPADD) {
            int l = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
            int af = l == 4 ? AF_INET : l == 16 ? AF_INET6 : 0;
            if (!af || !inet_ntop(af, d, have[nhave], sizeof have[0]))
                snprintf(have[nhave], sizeof have[0], "?");
            nhave++;
        }
    }
    GENERAL_NAMES_free(gens);
    for (size_t i = 0; i < nwant && ok; i++) {
        int found = 0;
        for (int k = 0; k < nhave && !found; k++)
            found = strcmp(have[k], want[i]) == 0;
        if (!found) {
            ok = 0;
            snprintf(why, whycap, "SAN %s is missing", want[i]);
        }
    }
    for (int k = 0; k < nhave && ok; k++) {
        int found = 0;
        for (size_t i = 0; i < nwant && !found; i++)
            found = strcmp(have[k], want[i]) == 0;
        if (!found) {
            ok = 0;
            snprintf(why, whycap, "SAN %s is no longer wanted", have[k]);
        }
    }
    return ok;
}

static int signed_by(X509 *x, const char *ca_pem)
{
    X509 *ca = read_x509(ca_pem);
    EVP_PKEY *pk = ca ? X509_get0_pubkey(ca) : NULL;
    int ok = pk && X509_verify(x, pk) == 1;
    X509_free(ca);
    return ok;
}

const char *whcert_action_name(enum whcert_action a)
{
    switch (a) {
    case WHCERT_KEEP:
        return "keep";
    case WHCERT_RENEW_EXPIRING:
        return "renew-expiring";
    case WHCERT_RENEW_SANS:
        return "renew-sans";
    case WHCERT_RENEW_INVALID:
        return "renew-invalid";
    }
    return "?";
}

int whcert_decide(const char *cert_pem, const char *ca_pem, const char *const *want_sans,
                  time_t now, whcert_decision *d)
{
    memset(d, 0, sizeof *d);
    X509 *x = read_x509(cert_pem);
    if (!x) {
        d->action = WHCERT_RENEW_INVALID;
        snprintf(d->why, sizeof d->why, "no readable certificate");
        return 0;
    }
    if (asn1_to_time(X509_get0_notBefore(x), &d->not_before) ||
        asn1_to_time(X509_get0_notAfter(x), &d->not_after) || d->not_after <= d->not_before) {
        d->action = WHCERT_RENEW_INVALID;
        snprintf(d->why, sizeof d->why, "unreadable validity period");
        goto out;
    }
    /* Renew with a third of the lifetime left, as cert-manager does by default. */
    d->renew_at = d->not_after - (d->not_after - d->not_before) / 3;
    if (now < d->not_before) {
        d->action = WHCERT_RENEW_INVALID;
        snprintf(d->why, sizeof d->why, "not valid before %lld (clock skew?)",
                 (long long)d->not_before);
    } else if (ca_pem && !signed_by(x, ca_pem)) {
        d->action = WHCERT_RENEW_INVALID;
        snprintf(d->why, sizeof d->why, "not signed by the CA in the bundle");
    } else if (want_sans && !sans_equal(x, want_sans, d->why, sizeof d->why)) {
        d->action = WHCERT_RENEW_SANS;
    } else if (now >= d->renew_at) {
        d->action = WHCERT_RENEW_EXPIRING;
        snprintf(d->why, sizeof d->why, "%s at %lld, less than 1/3 of its validity left",
                 now >= d->not_after ? "expired" : "expires", (long long)d->not_after);
    } else {
        d->action = WHCERT_KEEP;
    }
out:
    X509_free(x);
    return 0;
}

/* ---- mounted files --------------------------------------------------------------------- */

static const char *const k_files[2] = {"tls.crt", "tls.key"};

static int read_capped(const char *path, char **out, operr *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return operr_set(err, -errno, "certificate file '%s': %s", path, strerror(errno));
    opbuf b;
    opbuf_init(&b, WHCERT_MAX_PEM);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = opbuf_append(&b, chunk, n);
    if (!rc && ferror(f))
        rc = -EIO;
    fclose(f);
    if (rc) {
        opbuf_release(&b);
        return operr_set(err, rc, "certificate file '%s': %s", path,
                         rc == -E2BIG ? "too big" : "read error");
    }
    *out = opbuf_detach(&b, NULL);
    return 0;
}

static int stat_pair(const char *dir, whcert_stamp *st)
{
    memset(st, 0, sizeof *st);
    for (int i = 0; i < 2; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, k_files[i]);
        if (stat(path, &sb) < 0)
            return -errno;
        st->dev[i] = sb.st_dev;
        st->ino[i] = sb.st_ino;
        st->mtime_ns[i] = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
        st->size[i] = sb.st_size;
    }
    return 0;
}

int whcert_dir_changed(const char *dir, const whcert_stamp *st)
{
    whcert_stamp now;
    int rc = stat_pair(dir, &now);
    if (rc)
        return rc;
    for (int i = 0; i < 2; i++)
        if (now.dev[i] != st->dev[i] || now.ino[i] != st->ino[i] ||
            now.mtime_ns[i] != st->mtime_ns[i] || now.size[i] != st->size[i])
            return 1;
    return 0;
}

int whcert_load_dir(const char *dir, whcert_pems *out, whcert_stamp *st, operr *err)
{
    memset(out, 0, sizeof *out);
    whcert_stamp before;
    int rc = stat_pair(dir, &before);
    if (rc)
        return operr_set(err, rc, "certificate dir '%s': %s", dir, strerror(-rc));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, k_files[0]);
    rc = read_capped(path, &out->cert, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/%s", dir, k_files[1]);
        rc = read_capped(path, &out->key, err);
    }
    if (!rc) {
        rc = whcert_check_pair(out->cert, out->key, err);
        if (rc)
            operr_wrap(err, rc, "certificate dir '%s'", dir);
    }
    if (rc) {
        whcert_pems_release(out);
        return rc;
    }
    *st = before; /* the stamp from before reading: a write in between shows up next poll */
    return 0;
}

struct whcert_watch {
    uv_timer_t timer;
    char *dir;
    whcert_stamp st;
    whcert_change_cb cb;
    void *ud;
    uint64_t reloads, errors;
};

static void on_tick(uv_timer_t *t)
{
    whcert_watch *w = t->data;
    if (whcert_dir_changed(w->dir, &w->st) == 0)
        return;
    whcert_pems p;
    whcert_stamp st;
    operr err;
    if (whcert_load_dir(w->dir, &p, &st, &err) < 0) {
        /* a half-written pair: keep serving the old one and look again next tick */
        w->errors++;
        OPLOG_W("webhook: %s; keeping the current certificate", err.msg);
        return;
    }
    w->st = st;
    w->reloads++;
    OPLOG_I("webhook: serving certificate reloaded from '%s'", w->dir);
    w->cb(p.cert, p.key, w->ud);
    whcert_pems_release(&p);
}

int whcert_watch_start(whcert_watch **out, uv_loop_t *loop, const char *dir, unsigned interval_ms,
                       whcert_change_cb on_change, void *ud, operr *err)
{
    *out = NULL;
    whcert_watch *w = calloc(1, sizeof *w);
    if (!w || !(w->dir = strdup(dir))) {
        free(w);
        return -ENOMEM;
    }
    w->cb = on_change;
    w->ud = ud;
    whcert_pems p;
    int rc = whcert_load_dir(dir, &p, &w->st, err);
    if (rc) {
        free(w->dir);
        free(w);
        return rc;
    }
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    unsigned iv = interval_ms ? interval_ms : 10000;
    uv_timer_start(&w->timer, on_tick, iv, iv);
    w->reloads = 1;
    on_change(p.cert, p.key, ud);
    whcert_pems_release(&p);
    *out = w;
    return 0;
}

uint64_t whcert_watch_reloads(const whcert_watch *w)
{
    return w->reloads;
}

uint64_t whcert_watch_errors(const whcert_watch *w)
{
    return w->errors;
}

static void on_watch_closed(uv_handle_t *h)
{
    whcert_watch *w = h->data;
    free(w->dir);
    free(w);
}

void whcert_watch_stop(whcert_watch *w)
{
    if (w)
        uv_close((uv_handle_t *)&w->timer, on_watch_closed);
}
