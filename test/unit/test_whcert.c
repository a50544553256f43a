#include "support/fakeapi_client.h"
#include "test.h"
#include "util/b64.h"
#include "support/fakeapi_int.h"
#include "util/yaml2json.h"
#include "webhook/certs.h"
#include "webhook/server.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const k_extra[] = {"127.0.0.1", NULL};

static void gen(ophttpd_cert *c, whcert_sans *s, int days)
{
    ASSERT_EQ_INT(whcert_sans_for_service(s, "optipod-webhook", "optipod-system", k_extra), 0);
    ASSERT_EQ_INT(whcert_generate(c, s, days), 0);
}

static void test_sans_for_service(void)
{
    whcert_sans s;
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "wh", "ops", k_extra), 0);
    ASSERT_EQ_INT(s.n, 5);
    ASSERT_STR_EQ(s.v[0], "wh");
    ASSERT_STR_EQ(s.v[1], "wh.ops");
    ASSERT_STR_EQ(s.v[2], "wh.ops.svc");
    ASSERT_STR_EQ(s.v[3], "wh.ops.svc.cluster.local");
    ASSERT_STR_EQ(s.v[4], "127.0.0.1");
    ASSERT_NULL(s.v[5]);
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "a.b", "ops", NULL), -EINVAL);
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "a", "", NULL), -EINVAL);
    const char *many[20];
    for (int i = 0; i < 19; i++)
        many[i] = "x";
    many[19] = NULL;
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "a", "b", many), -E2BIG);
}

/* The generated certificate carries exactly the wanted SANs and chains to the CA. */
static void test_generate_and_keep(void)
{
    ophttpd_cert c;
    whcert_sans s;
    gen(&c, &s, 90);
    time_t nb, na;
    ASSERT_EQ_INT(whcert_validity(c.cert_pem, &nb, &na), 0);
    ASSERT_EQ_INT(na - nb, 90 * 86400 + 3600);
    ASSERT_EQ_INT(whcert_check_pair(c.cert_pem, c.key_pem, NULL), 0);
    whcert_decision d;
    ASSERT_EQ_INT(whcert_decide(c.cert_pem, c.ca_pem, s.v, time(NULL), &d), 0);
    ASSERT_EQ_INT(d.action, WHCERT_KEEP);
    ASSERT_EQ_INT(d.renew_at, na - (na - nb) / 3);
    ophttpd_cert_release(&c);
}

/* The rotation decision table: time, SANs, CA, garbage. */
static void test_rotation_decision_table(void)
{
    ophttpd_cert c, other;
    whcert_sans s, s2;
    gen(&c, &s, 30);
    gen(&other, &s2, 30);
    time_t nb, na;
    ASSERT_EQ_INT(whcert_validity(c.cert_pem, &nb, &na), 0);
    time_t third = (na - nb) / 3;
    const char *const other_sans[] = {"optipod-webhook", "optipod-webhook.optipod-system",
                                      "optipod-webhook.optipod-system.svc",
                                      "optipod-webhook.optipod-system.svc.cluster.local", NULL};
    const char *const more_sans[] = {"optipod-webhook",
                                     "optipod-webhook.optipod-system",
                                     "optipod-webhook.optipod-system.svc",
                                     "optipod-webhook.optipod-system.svc.cluster.local",
                                     "127.0.0.1",
                                     "::1",
                                     NULL};
    struct row {
        const char *cert, *ca;
        const char *const *sans;
        time_t now;
        enum whcert_action want;
        const char *why;
    } rows[] = {
        {c.cert_pem, c.ca_pem, s.v, nb + 1, WHCERT_KEEP, ""},
        {c.cert_pem, c.ca_pem, s.v, na - third - 1, WHCERT_KEEP, ""},
        {c.cert_pem, c.ca_pem, s.v, na - third, WHCERT_RENEW_EXPIRING, "expires at"},
        {c.cert_pem, c.ca_pem, s.v, na + 10, WHCERT_RENEW_EXPIRING, "expired at"},
        {c.cert_pem, c.ca_pem, s.v, nb - 10, WHCERT_RENEW_INVALID, "not valid before"},
        {c.cert_pem, other.ca_pem, s.v, nb + 1, WHCERT_RENEW_INVALID, "not signed by the CA"},
        {c.cert_pem, NULL, s.v, nb + 1, WHCERT_KEEP, ""},
        {c.cert_pem, c.ca_pem, other_sans, nb + 1, WHCERT_RENEW_SANS,
         "SAN 127.0.0.1 is no longer wanted"},
        {c.cert_pem, c.ca_pem, more_sans, nb + 1, WHCERT_RENEW_SANS, "SAN ::1 is missing"},
        {c.cert_pem, c.ca_pem, NULL, nb + 1, WHCERT_KEEP, ""},
        {"not a pem", c.ca_pem, s.v, nb + 1, WHCERT_RENEW_INVALID, "no readable certificate"},
        {NULL, NULL, NULL, nb + 1, WHCERT_RENEW_INVALID, "no readable"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        whcert_decision d;
        ASSERT_EQ_INT(whcert_decide(rows[i].cert, rows[i].ca, rows[i].sans, rows[i].now, &d), 0);
        if ((int)d.action != (int)rows[i].want)
            fprintf(stderr, "row %zu: %s (%s)\n", i, whcert_action_name(d.action), d.why);
        ASSERT_EQ_INT(d.action, rows[i].want);
        ASSERT_STR_CONTAINS(d.why, rows[i].why);
    }
    ASSERT_STR_EQ(whcert_action_name(WHCERT_RENEW_SANS), "renew-sans");
    ophttpd_cert_release(&c);
    ophttpd_cert_release(&other);
}

static void test_secret_round_trip(void)
{
    ophttpd_cert c;
    whcert_sans s;
    gen(&c, &s, 30);
    opbuf b;
    opbuf_init(&b, 1 << 20);
    ASSERT_EQ_INT(whcert_secret_json(&b, "optipod-webhook-tls", "optipod-system", c.cert_pem,
                                     c.key_pem, c.ca_pem),
                  0);
    cJSON *j = cJSON_Parse(b.data);
    ASSERT_NOT_NULL(j);
    ASSERT_STR_EQ(cJSON_GetObjectItem(j, "apiVersion")->valuestring, "v1");
    ASSERT_STR_EQ(cJSON_GetObjectItem(j, "kind")->valuestring, "Secret");
    ASSERT_STR_EQ(cJSON_GetObjectItem(j, "type")->valuestring, "kubernetes.io/tls");
    cJSON *meta = cJSON_GetObjectItem(j, "metadata");
    ASSERT_STR_EQ(cJSON_GetObjectItem(meta, "name")->valuestring, "optipod-webhook-tls");
    ASSERT_STR_EQ(cJSON_GetObjectItem(meta, "namespace")->valuestring, "optipod-system");
    cJSON *data = cJSON_GetObjectItem(j, "data");
    ASSERT_EQ_INT(cJSON_GetArraySize(data), 3);
    opbuf want;
    opbuf_init(&want, 1 << 20);
    ASSERT_EQ_INT(opb64_encode(&want, c.ca_pem, strlen(c.ca_pem)), 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(data, "ca.crt")->valuestring, want.data);
    opbuf_release(&want);
    cJSON_Delete(j);

    whcert_pems p;
    operr err;
    ASSERT_EQ_INT(whcert_from_secret_json(b.data, b.len, &p, &err), 0);
    ASSERT_STR_EQ(p.cert, c.cert_pem);
    ASSERT_STR_EQ(p.key, c.key_pem);
    ASSERT_STR_EQ(p.ca, c.ca_pem);
    whcert_pems_release(&p);

    const char *nokey = "{\"metadata\":{\"name\":\"s\"},\"data\":{\"tls.crt\":\"QUJD\"}}";
    ASSERT_EQ_INT(whcert_from_secret_json(nokey, strlen(nokey), &p, &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "secret 's': data.tls.key is missing");
    ASSERT_NULL(p.cert);
    const char *bad = "{\"metadata\":{\"name\":\"s\"},\"data\":{\"tls.crt\":\"QU*D\","
                      "\"tls.key\":\"QUJD\"}}";
    ASSERT_EQ_INT(whcert_from_secret_json(bad, strlen(bad), &p, &err), -EINVAL);
    ASSERT_STR_EQ(err.msg, "secret 's': data.tls.crt is not base64");
    ASSERT_EQ_INT(whcert_from_secret_json("nope", 4, &p, &err), -EINVAL);
    /* no ca.crt is fine (cert-manager style secrets may omit it) */
    const char *noca = "{\"data\":{\"tls.crt\":\"QUJD\",\"tls.key\":\"eHl6\"}}";
    ASSERT_EQ_INT(whcert_from_secret_json(noca, strlen(noca), &p, &err), 0);
    ASSERT_STR_EQ(p.cert, "ABC");
    ASSERT_STR_EQ(p.key, "xyz");
    ASSERT_NULL(p.ca);
    whcert_pems_release(&p);
    opbuf_release(&b);
    ophttpd_cert_release(&c);
}

/* The previous CA and its until-time survive the Secret round trip; a broken one is reported
 * and dropped, never failing the read. */
static void test_secret_previous_ca(void)
{
    ophttpd_cert c, old;
    whcert_sans s;
    gen(&c, &s, 30);
    gen(&old, &s, 30);
    time_t until = 1795000000; /* 2026-11-18T11:06:40Z */

    whcert_pems in = {.cert = c.cert_pem,
                      .key = c.key_pem,
                      .ca = c.ca_pem,
                      .prev_ca = old.ca_pem,
                      .prev_until = until};
    opbuf b;
    opbuf_init(&b, 1 << 20);
    ASSERT_EQ_INT(whcert_secret_json_pems(&b, "t", "ns", &in), 0);
    cJSON *j = cJSON_Parse(b.data);
    cJSON *ann = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "annotations");
    ASSERT_STR_EQ(cJSON_GetObjectItem(ann, "optipod.io/ca-previous-until")->valuestring,
                  "2026-11-18T11:06:40Z");
    ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "data")), 4);
    ASSERT_NULL(strstr(b.data, old.ca_key_pem)); /* only the certificate */
    whcert_pems p;
    operr err = {{0}};
    ASSERT_EQ_INT(whcert_from_secret_json(b.data, b.len, &p, &err), 0);
    ASSERT_STR_EQ(p.prev_ca, old.ca_pem);
    ASSERT_EQ_INT(p.prev_until, until);
    time_t nb, na;
    ASSERT_EQ_INT(whcert_validity(old.ca_pem, &nb, &na), 0);
    ASSERT_EQ_INT(p.prev_not_after, na);
    ASSERT_STR_EQ(p.prev_err, "");
    whcert_pems_release(&p);

    /* Each way of being broken: the pair still reads, the previous CA is dropped. */
    static const struct {
        const char *data, *until, *why;
    } bad[] = {
        {"bm90IGEgY2VydA==", NULL, "data.ca-previous.crt is not a PEM certificate"},
        {"***", NULL, "data.ca-previous.crt is not base64"},
        {NULL, "soon", "annotation optipod.io/ca-previous-until is missing or not an RFC 3339"},
        {NULL, "2026-11-18T11:06:40+00:00", "annotation optipod.io/ca-previous-until is missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *k = cJSON_Duplicate(j, 1);
        if (bad[i].data)
            cJSON_SetValuestring(
                cJSON_GetObjectItem(cJSON_GetObjectItem(k, "data"), "ca-previous.crt"),
                bad[i].data);
        if (bad[i].until)
            cJSON_SetValuestring(
                cJSON_GetObjectItem(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(k, "metadata"), "annotations"),
                    "optipod.io/ca-previous-until"),
                bad[i].until);
        char *txt = cJSON_PrintUnformatted(k);
        ASSERT_EQ_INT(whcert_from_secret_json(txt, strlen(txt), &p, &err), 0);
        ASSERT_STR_EQ(p.cert, c.cert_pem);
        ASSERT_STR_EQ(p.ca, c.ca_pem);
        ASSERT_NULL(p.prev_ca);
        ASSERT_EQ_INT(p.prev_until, 0);
        ASSERT_STR_CONTAINS(p.prev_err, bad[i].why);
        whcert_pems_release(&p);
        cJSON_free(txt);
        cJSON_Delete(k);
    }
    /* No annotation at all. */
    cJSON *k = cJSON_Duplicate(j, 1);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(k, "metadata"), "annotations");
    char *txt = cJSON_PrintUnformatted(k);
    ASSERT_EQ_INT(whcert_from_secret_json(txt, strlen(txt), &p, &err), 0);
    ASSERT_NULL(p.prev_ca);
    ASSERT_STR_CONTAINS(p.prev_err, "is missing");
    whcert_pems_release(&p);
    cJSON_free(txt);
    cJSON_Delete(k);
    cJSON_Delete(j);
    opbuf_release(&b);
    ophttpd_cert_release(&c);
    ophttpd_cert_release(&old);
}

static void test_cabundle_patch(void)
{
    opbuf bundle, b;
    opbuf_init(&bundle, 1 << 16);
    opbuf_init(&b, 1 << 16);
    const char *newca = "-----BEGIN CERTIFICATE-----\nNEW\n-----END CERTIFICATE-----\n";
    const char *oldca = "-----BEGIN CERTIFICATE-----\nOLD\n-----END CERTIFICATE-----\n";
    ASSERT_EQ_INT(whcert_ca_bundle(&bundle, newca, oldca), 0);
    ASSERT_EQ_INT(bundle.len, strlen(newca) + strlen(oldca));
    ASSERT(strncmp(bundle.data, newca, strlen(newca)) == 0);
    opbuf_reset(&bundle);
    ASSERT_EQ_INT(whcert_ca_bundle(&bundle, newca, newca), 0);
    ASSERT_STR_EQ(bundle.data, newca);

    const char *names[] = {"pods.optipod.io"};
    ASSERT_EQ_INT(whcert_cabundle_patch(&b, names, 1, newca), 0);
    opbuf enc;
    opbuf_init(&enc, 1 << 16);
    ASSERT_EQ_INT(opb64_encode(&enc, newca, strlen(newca)), 0);
    char want[1024];
    snprintf(
        want, sizeof want,
        "{\"webhooks\":[{\"name\":\"pods.optipod.io\",\"clientConfig\":{\"caBundle\":\"%s\"}}]}",
        enc.data);
    ASSERT_STR_EQ(b.data, want);
    ASSERT_STR_EQ(WHCERT_CABUNDLE_PATCH_TYPE, "application/strategic-merge-patch+json");
    ASSERT_EQ_INT(whcert_cabundle_patch(&b, names, 0, newca), -EINVAL);
    opbuf_reset(&b);
    const char *two[] = {"pods.optipod.io", "pods2.optipod.io"};
    ASSERT_EQ_INT(whcert_cabundle_apply(&b, "optipod-webhook", two, 2, newca), 0);
    snprintf(want, sizeof want,
             "{\"apiVersion\":\"admissionregistration.k8s.io/v1\",\"kind\":"
             "\"MutatingWebhookConfiguration\",\"metadata\":{\"name\":\"optipod-webhook\"},"
             "\"webhooks\":[{\"name\":\"pods.optipod.io\",\"clientConfig\":{\"caBundle\":\"%s\"}},"
             "{\"name\":\"pods2.optipod.io\",\"clientConfig\":{\"caBundle\":\"%s\"}}]}",
             enc.data, enc.data);
    ASSERT_STR_EQ(b.data, want);
    opbuf_release(&enc);
    opbuf_release(&bundle);
    opbuf_release(&b);
}

/* The strategic-merge patch, applied as the API server merges `webhooks` (by
 * name), sets only caBundle and keeps the rest of the fixture's webhook. */
static void test_cabundle_patch_merges_into_fixture(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/mutating-webhook-config.yaml", test_fixture_dir());
    size_t len;
    char *yaml = test_read_file(path, &len);
    cJSON *cfg = NULL;
    operr err = {{0}};
    ASSERT_EQ_INT(yaml2json_parse(yaml, len, &cfg, &err), 0);
    free(yaml);
    cJSON *hooks = cJSON_GetObjectItemCaseSensitive(cfg, "webhooks");
    ASSERT_EQ_INT(cJSON_GetArraySize(hooks), 1);
    const char *name =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(hooks, 0), "name")->valuestring;
    opbuf b;
    opbuf_init(&b, 1 << 16);
    const char *names[] = {name};
    ASSERT_EQ_INT(whcert_cabundle_patch(&b, names, 1, "-----BEGIN CERTIFICATE-----\nX\n"), 0);
    cJSON *patch = cJSON_Parse(b.data);
    cJSON *merged = fakeapi_strategic_patch(cfg, patch);
    ASSERT_NOT_NULL(merged);
    cJSON *mh = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(merged, "webhooks"), 0);
    ASSERT_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(merged, "webhooks")), 1);
    cJSON *cc = cJSON_GetObjectItemCaseSensitive(mh, "clientConfig");
    ASSERT_STR_EQ(
        cJSON_GetObjectItemCaseSensitive(cc, "caBundle")->valuestring,
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(patch->child, 0), "clientConfig"),
            "caBundle")
            ->valuestring);
    /* Everything else of the webhook survived the merge. */
    ASSERT_NOT_NULL(cJSON_GetObjectItemCaseSensitive(cc, "url"));
    ASSERT_NOT_NULL(cJSON_GetObjectItemCaseSensitive(mh, "namespaceSelector"));
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(mh, "failurePolicy")->valuestring, "Ignore");
    cJSON_Delete(merged);
    cJSON_Delete(patch);
    cJSON_Delete(cfg);
    opbuf_release(&b);
}

/* The fixture's caBundle is a base64 PEM our reader understands. */
static void test_fixture_cabundle_readable(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/mutating-webhook-config.yaml", test_fixture_dir());
    char *y = test_read_file(path, NULL);
    char *p = strstr(y, "caBundle: \"");
    ASSERT_NOT_NULL(p);
    p += strlen("caBundle: \"");
    char *e = strchr(p, '"');
    ASSERT_NOT_NULL(e);
    *e = 0;
    char secret[8192];
    snprintf(secret, sizeof secret, "{\"data\":{\"tls.crt\":\"%s\",\"tls.key\":\"%s\"}}", p, p);
    whcert_pems pems;
    ASSERT_EQ_INT(whcert_from_secret_json(secret, strlen(secret), &pems, NULL), 0);
    time_t nb, na;
    ASSERT_EQ_INT(whcert_validity(pems.cert, &nb, &na), 0);
    ASSERT_EQ_INT(na - nb, 30 * 86400); /* test-ca: 2026-11-22 → 2026-12-22 */
    whcert_decision d;
    ASSERT_EQ_INT(whcert_decide(pems.cert, pems.cert, NULL, nb + 86400, &d), 0);
    ASSERT_EQ_INT(d.action, WHCERT_KEEP);
    ASSERT_EQ_INT(whcert_decide(pems.cert, pems.cert, NULL, nb + 21 * 86400, &d), 0);
    ASSERT_EQ_INT(d.action, WHCERT_RENEW_EXPIRING);
    whcert_pems_release(&pems);
    free(y);
}

/* ---- mounted files ----------------------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const char *s)
{
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ASSERT_NOT_NULL(f);
    fputs(s, f);
    fclose(f);
    ASSERT_EQ_INT(rename(tmp, path), 0); /* a new inode, like the kubelet's swap */
}

typedef struct seen {
    int calls;
    char cert[8192];
    char key[4096];
} seen;

static void on_change(const char *cert, const char *key, void *ud)
{
    seen *s = ud;
    s->calls++;
    snprintf(s->cert, sizeof s->cert, "%s", cert);
    snprintf(s->key, sizeof s->key, "%s", key);
}

static void test_mounted_files_reload(void)
{
    char dir[] = "/tmp/test_whcert_XXXXXX";
    ASSERT_NOT_NULL(mkdtemp(dir));
    ophttpd_cert a, b;
    whcert_sans s;
    gen(&a, &s, 30);
    gen(&b, &s, 30);
    uv_loop_t loop;
    uv_loop_init(&loop);
    whcert_watch *w;
    operr err;
    ASSERT_EQ_INT(whcert_watch_start(&w, &loop, dir, 20, on_change, NULL, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, dir);
    ASSERT_NULL(w);

    write_file(dir, "tls.crt", a.cert_pem);
    write_file(dir, "tls.key", b.key_pem); /* mismatched pair */
    ASSERT_EQ_INT(whcert_watch_start(&w, &loop, dir, 20, on_change, NULL, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "the key does not match the certificate");

    write_file(dir, "tls.key", a.key_pem);
    seen sn = {0};
    ASSERT_EQ_INT(whcert_watch_start(&w, &loop, dir, 20, on_change, &sn, &err), 0);
    ASSERT_EQ_INT(sn.calls, 1);
    ASSERT_STR_EQ(sn.cert, a.cert_pem);
    whcert_stamp st;
    whcert_pems p;
    ASSERT_EQ_INT(whcert_load_dir(dir, &p, &st, &err), 0);
    ASSERT_EQ_INT(whcert_dir_changed(dir, &st), 0);
    whcert_pems_release(&p);

    /* Half an update (new cert, old key): skipped, old pair kept. */
    write_file(dir, "tls.crt", b.cert_pem);
    ASSERT_EQ_INT(whcert_dir_changed(dir, &st), 1);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    while (whcert_watch_errors(w) == 0 && uv_now(&loop) - t0 < 2000)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_CMP_INT(whcert_watch_errors(w), >=, 1);
    ASSERT_EQ_INT(sn.calls, 1);
    /* The key follows: the new pair is delivered. */
    write_file(dir, "tls.key", b.key_pem);
    t0 = uv_now(&loop);
    while (sn.calls < 2 && uv_now(&loop) - t0 < 2000)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(sn.calls, 2);
    ASSERT_STR_EQ(sn.cert, b.cert_pem);
    ASSERT_STR_EQ(sn.key, b.key_pem);
    ASSERT_EQ_INT(whcert_watch_reloads(w), 2);

    whcert_watch_stop(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/tls.crt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tls.key", dir);
    unlink(path);
    rmdir(dir);
    ophttpd_cert_release(&a);
    ophttpd_cert_release(&b);
}

/* The watcher feeds whsrv: a client trusting only the new CA connects after the swap. */
static void set_tls_cb(const char *cert, const char *key, void *ud)
{
    whsrv **srv = ud;
    if (*srv)
        ASSERT_EQ_INT(whsrv_set_tls(*srv, cert, key), 0);
}

static void srv_closed(void *ud)
{
    *(int *)ud = 1;
}

static void test_mounted_files_feed_server(void)
{
    char dir[] = "/tmp/test_whcert_XXXXXX";
    ASSERT_NOT_NULL(mkdtemp(dir));
    ophttpd_cert a, b;
    whcert_sans s;
    gen(&a, &s, 30);
    gen(&b, &s, 30);
    write_file(dir, "tls.crt", a.cert_pem);
    write_file(dir, "tls.key", a.key_pem);
    uv_loop_t loop;
    uv_loop_init(&loop);
    whsrv *srv = NULL;
    whcert_watch *w;
    ASSERT_EQ_INT(whcert_watch_start(&w, &loop, dir, 20, set_tls_cb, &srv, NULL), 0);
    whcert_pems p;
    whcert_stamp st;
    ASSERT_EQ_INT(whcert_load_dir(dir, &p, &st, NULL), 0);
    whsrv_opts o = {.bind = "127.0.0.1", .cert_pem = p.cert, .key_pem = p.key};
    ASSERT_EQ_INT(whsrv_start(&srv, &loop, &o, NULL), 0);
    whcert_pems_release(&p);
    const char *req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli_result r;
    ASSERT_EQ_INT(fakeapi_cli_run(&loop, whsrv_port(srv), a.ca_pem, 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.status, 200);
    fakeapi_cli_result_release(&r);

    write_file(dir, "tls.key", b.key_pem);
    write_file(dir, "tls.crt", b.cert_pem);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    while (whcert_watch_reloads(w) < 2 && uv_now(&loop) - t0 < 2000)
        uv_run(&loop, UV_RUN_ONCE);
    ASSERT_EQ_INT(whcert_watch_reloads(w), 2);
    ASSERT_EQ_INT(fakeapi_cli_run(&loop, whsrv_port(srv), b.ca_pem, 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.status, 200);
    fakeapi_cli_result_release(&r);
    ASSERT_EQ_INT(fakeapi_cli_run(&loop, whsrv_port(srv), a.ca_pem, 1, req, strlen(req), 0, &r), 0);
    ASSERT_EQ_INT(r.error, -EPROTO);
    fakeapi_cli_result_release(&r);

    int closed = 0;
    whcert_watch_stop(w);
    whsrv_stop(srv, srv_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/tls.crt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tls.key", dir);
    unlink(path);
    rmdir(dir);
    ophttpd_cert_release(&a);
    ophttpd_cert_release(&b);
}

int main(void)
{
    TEST_RUN(test_sans_for_service);
    TEST_RUN(test_generate_and_keep);
    TEST_RUN(test_rotation_decision_table);
    TEST_RUN(test_secret_round_trip);
    TEST_RUN(test_secret_previous_ca);
    TEST_RUN(test_cabundle_patch);
    TEST_RUN(test_cabundle_patch_merges_into_fixture);
    TEST_RUN(test_fixture_cabundle_readable);
    TEST_RUN(test_mounted_files_reload);
    TEST_RUN(test_mounted_files_feed_server);
    return test_summary();
}
