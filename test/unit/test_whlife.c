/* whlife against the fake API server: the Secret and caBundle a first start writes, reuse by
 * a second replica, rotation of an expiring certificate with both CAs in the caBundle, 409s
 * resolved by re-reading, non-leaders that only read, and mounted files served after a
 * change (TLS round trips with the CA a client would be given). */
#include "support/fakeapi.h"
#include "support/fakeapi_client.h"
#include "support/loop.h"
#include "test.h"
#include "util/b64.h"
#include "util/log.h"
#include "util/yaml2json.h"
#include "webhook/lifecycle.h"
#include "webhook/review.h"
#include "webhook/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS          "optipod-system"
#define SECRET      "optipod-webhook-tls"
#define CONFIG      "optipod-webhook"
#define SECRET_PATH "/api/v1/namespaces/" NS "/secrets/" SECRET
#define CONFIG_PATH "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" CONFIG

static const char *const k_extra[] = {"127.0.0.1", NULL};

static uv_loop_t loop;
static fakeapi *fa;
static kcfg cfg;
static ophttp_client *http;
static krest *rest;
static char kcpath[128];
static FILE *logsink; /* the module's log lines, for assertions */

/* Everything logged since the last call. */
static char *log_take(void)
{
    fflush(logsink);
    long n = ftell(logsink);
    char *s = calloc(1, (size_t)n + 1);
    rewind(logsink);
    ASSERT_EQ_INT(fread(s, 1, (size_t)n, logsink), (size_t)n);
    rewind(logsink);
    ASSERT_EQ_INT(ftruncate(fileno(logsink), 0), 0);
    return s;
}

/* One replica: its whlife and the webhook server it feeds. */
typedef struct replica {
    whlife *l;
    whsrv *srv;
    int leader;
    time_t skew;         /* added to the wall clock (days ahead makes a cert look old) */
    int real_after_cert; /* drop the skew at the first delivery (else every cert is due) */
    int closed, srv_closed;
    char *cert; /* last delivered */
} replica;

static void on_closed(void *ud)
{
    (*(int *)ud)++;
}

static void setup(void)
{
    operr err = {{0}};
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    ASSERT_EQ_INT(fakeapi_start(&fa, &loop, NULL), 0);
    snprintf(kcpath, sizeof kcpath, "/tmp/test_whlife.kc.%d", (int)getpid());
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(fa, kcpath, "tok"), 0);
    kcfg_init(&cfg);
    if (kcfg_load_file(&cfg, kcpath, NULL, &err))
        test_fail(__FILE__, __LINE__, "kcfg_load_file: %s", err.msg);
    ASSERT_EQ_INT(ophttp_client_new(&http, &loop, NULL), 0);
    ASSERT_EQ_INT(krest_new(&rest, http, &cfg, &err), 0);

    /* The configuration as installed (the fixture), plus a webhook that is not ours. */
    char path[512];
    snprintf(path, sizeof path, "%s/mutating-webhook-config.yaml", test_fixture_dir());
    size_t len;
    char *yaml = test_read_file(path, &len);
    cJSON *mwc = NULL;
    ASSERT_EQ_INT(yaml2json_parse(yaml, len, &mwc, &err), 0);
    free(yaml);
    cJSON *other = cJSON_Parse("{\"name\":\"other.example.com\",\"sideEffects\":\"None\","
                               "\"admissionReviewVersions\":[\"v1\"],\"clientConfig\":{"
                               "\"url\":\"https://10.0.0.1/x\",\"caBundle\":\"b3RoZXI=\"}}");
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(mwc, "webhooks"), other);
    ASSERT_EQ_INT(fakeapi_put(fa, mwc), 0);
    cJSON_Delete(mwc);
}

static void teardown(void)
{
    int closed = 0, fclosed = 0;
    krest_free(rest);
    ophttp_client_close(http, on_closed, &closed);
    fakeapi_stop(fa, on_closed, &fclosed);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(closed, 1);
    ASSERT_EQ_INT(fclosed, 1);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    kcfg_release(&cfg);
    unlink(kcpath);
}

static void rep_on_cert(const char *cert, const char *key, void *ud)
{
    replica *r = ud;
    free(r->cert);
    r->cert = strdup(cert);
    if (r->real_after_cert)
        r->skew = 0;
    if (r->srv) {
        ASSERT_EQ_INT(whsrv_set_tls(r->srv, cert, key), 0);
        return;
    }
    whsrv_opts o = {.bind = "127.0.0.1", .cert_pem = cert, .key_pem = key};
    operr err = {{0}};
    if (whsrv_start(&r->srv, &loop, &o, &err) != 0)
        test_fail(__FILE__, __LINE__, "whsrv_start: %s", err.msg);
}

static int rep_is_leader(void *ud)
{
    return ((replica *)ud)->leader;
}

static time_t rep_now(void *ud)
{
    return time(NULL) + ((replica *)ud)->skew;
}

static void rep_start(replica *r, int leader, time_t skew)
{
    memset(r, 0, sizeof *r);
    r->leader = leader;
    r->skew = skew;
    r->real_after_cert = leader && skew;
    whlife_opts o = {.service = "optipod-webhook",
                     .ns = NS,
                     .secret = SECRET,
                     .config_name = CONFIG,
                     .extra_sans = k_extra,
                     .days = 30,
                     .interval_ms = 50,
                     .retry_ms = 50,
                     .is_leader = rep_is_leader,
                     .now = rep_now,
                     .on_cert = rep_on_cert,
                     .ud = r};
    operr err = {{0}};
    if (whlife_start(&r->l, &loop, rest, &o, &err) != 0)
        test_fail(__FILE__, __LINE__, "whlife_start: %s", err.msg);
}

static void rep_stop(replica *r)
{
    whlife_stop(r->l, on_closed, &r->closed);
    r->l = NULL;
    if (r->srv)
        whsrv_stop(r->srv, on_closed, &r->srv_closed);
    ASSERT(tloop_until_flag(&loop, &r->closed, tloop_scaled(2000)));
    if (r->srv)
        ASSERT(tloop_until_flag(&loop, &r->srv_closed, tloop_scaled(2000)));
    r->srv = NULL;
    free(r->cert);
    r->cert = NULL;
}

typedef struct until_st {
    replica *r;
    uint64_t delivered, patches, checks;
} until_st;

static int stats_reached(void *ud)
{
    until_st *u = ud;
    whlife_stats st;
    whlife_stats_get(u->r->l, &st);
    return st.delivered >= u->delivered && st.bundle_patches >= u->patches &&
           st.checks >= u->checks;
}

static void wait_stats(replica *r, uint64_t delivered, uint64_t patches, uint64_t checks)
{
    until_st u = {r, delivered, patches, checks};
    if (!tloop_until(&loop, stats_reached, &u, tloop_scaled(5000))) {
        whlife_stats st;
        whlife_stats_get(r->l, &st);
        test_fail(__FILE__, __LINE__,
                  "timed out: delivered %llu patches %llu checks %llu errors %llu, want %llu "
                  "%llu %llu",
                  (unsigned long long)st.delivered, (unsigned long long)st.bundle_patches,
                  (unsigned long long)st.checks, (unsigned long long)st.errors,
                  (unsigned long long)delivered, (unsigned long long)patches,
                  (unsigned long long)checks);
    }
}

/* The stored Secret's PEMs. */
static void stored_secret(whcert_pems *p)
{
    char *json = fakeapi_get_json(fa, SECRET_PATH);
    ASSERT_NOT_NULL(json);
    operr err = {{0}};
    ASSERT_EQ_INT(whcert_from_secret_json(json, strlen(json), p, &err), 0);
    ASSERT_NOT_NULL(p->ca);
    free(json);
}

/* The stored caBundle of a webhook of the configuration. */
static const char *stored_bundle(const char *webhook)
{
    const cJSON *mwc = fakeapi_get(fa, CONFIG_PATH);
    ASSERT_NOT_NULL(mwc);
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(mwc, "webhooks"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(w, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, webhook) == 0) {
            const cJSON *cc = cJSON_GetObjectItemCaseSensitive(w, "clientConfig");
            ASSERT_NOT_NULL(cJSON_GetObjectItemCaseSensitive(cc, "url")); /* kept */
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(cc, "caBundle");
            return cJSON_IsString(b) ? b->valuestring : NULL;
        }
    }
    return NULL;
}

static void assert_bundle_is(const char *new_ca, const char *old_ca)
{
    opbuf pem, b64;
    opbuf_init(&pem, 1 << 16);
    opbuf_init(&b64, 1 << 17);
    ASSERT_EQ_INT(whcert_ca_bundle(&pem, new_ca, old_ca), 0);
    ASSERT_EQ_INT(opb64_encode(&b64, pem.data, pem.len), 0);
    ASSERT_STR_EQ(stored_bundle("pods.optipod.io"), opbuf_str(&b64));
    ASSERT_STR_EQ(stored_bundle("other.example.com"), "b3RoZXI="); /* untouched */
    opbuf_release(&pem);
    opbuf_release(&b64);
}

/* GET /healthz over TLS from the replica's server, trusting only ca_pem. */
static int served_with(replica *r, const char *ca_pem)
{
    const char *req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
    fakeapi_cli_result res;
    ASSERT_EQ_INT(fakeapi_cli_run(&loop, whsrv_port(r->srv), ca_pem, 1, req, strlen(req), 0, &res),
                  0);
    int ok = res.error == 0 && res.status == 200;
    fakeapi_cli_result_release(&res);
    return ok;
}

/* ---- the pure rule ----------------------------------------------------------------------- */

static void test_decide_table(void)
{
    static const struct {
        int leader, found, readable, expired;
        enum whcert_action action;
        enum whlife_do want;
    } rows[] = {
        {1, 0, 0, 0, WHCERT_RENEW_INVALID, WHLIFE_CREATE},
        {0, 0, 0, 0, WHCERT_RENEW_INVALID, WHLIFE_WAIT},
        {1, 1, 1, 0, WHCERT_KEEP, WHLIFE_USE},
        {0, 1, 1, 0, WHCERT_KEEP, WHLIFE_USE},
        {1, 1, 1, 0, WHCERT_RENEW_EXPIRING, WHLIFE_REPLACE},
        {0, 1, 1, 0, WHCERT_RENEW_EXPIRING, WHLIFE_USE},  /* still valid: serve it */
        {0, 1, 1, 1, WHCERT_RENEW_EXPIRING, WHLIFE_WAIT}, /* expired: nothing to serve */
        {1, 1, 1, 0, WHCERT_RENEW_SANS, WHLIFE_REPLACE},
        {1, 1, 0, 0, WHCERT_RENEW_INVALID, WHLIFE_REPLACE},
        {0, 1, 0, 0, WHCERT_RENEW_INVALID, WHLIFE_WAIT},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        whlife_view v = {.leader = rows[i].leader,
                         .found = rows[i].found,
                         .readable = rows[i].readable,
                         .expired = rows[i].expired,
                         .action = rows[i].action};
        if (whlife_decide(&v) != rows[i].want)
            test_fail(__FILE__, __LINE__, "row %zu: %s, want %s", i,
                      whlife_do_name(whlife_decide(&v)), whlife_do_name(rows[i].want));
    }
    /* The previous CA: a live one is simply used; one that is over or malformed is tidied
     * away by the leader only, and never stands in the way of a rotation. */
    static const struct {
        int leader;
        enum whlife_prev prev;
        enum whcert_action action;
        enum whlife_do want;
    } prows[] = {
        {1, WHLIFE_PREV_LIVE, WHCERT_KEEP, WHLIFE_USE},
        {1, WHLIFE_PREV_OVER, WHCERT_KEEP, WHLIFE_TIDY},
        {1, WHLIFE_PREV_BAD, WHCERT_KEEP, WHLIFE_TIDY},
        {0, WHLIFE_PREV_OVER, WHCERT_KEEP, WHLIFE_USE},
        {0, WHLIFE_PREV_BAD, WHCERT_KEEP, WHLIFE_USE},
        {1, WHLIFE_PREV_BAD, WHCERT_RENEW_EXPIRING, WHLIFE_REPLACE},
    };
    for (size_t i = 0; i < sizeof prows / sizeof prows[0]; i++) {
        whlife_view v = {.leader = prows[i].leader,
                         .found = 1,
                         .readable = 1,
                         .prev = prows[i].prev,
                         .action = prows[i].action};
        if (whlife_decide(&v) != prows[i].want)
            test_fail(__FILE__, __LINE__, "prev row %zu: %s, want %s", i,
                      whlife_do_name(whlife_decide(&v)), whlife_do_name(prows[i].want));
    }
    ASSERT_STR_EQ(whlife_do_name(WHLIFE_TIDY), "tidy");
}

static void test_examine(void)
{
    whcert_sans s;
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "optipod-webhook", NS, k_extra), 0);
    ophttpd_cert c;
    ASSERT_EQ_INT(whcert_generate(&c, &s, 30), 0);
    opbuf j;
    opbuf_init(&j, 1 << 17);
    ASSERT_EQ_INT(whcert_secret_json(&j, SECRET, NS, c.cert_pem, c.key_pem, c.ca_pem), 0);
    whlife_view v = {.leader = 1};
    whcert_pems p;
    time_t now = time(NULL);
    ASSERT_EQ_INT(whlife_examine(j.data, j.len, s.v, now, &v, &p), 0);
    ASSERT_EQ_INT(v.leader, 1);
    ASSERT(v.found && v.readable && !v.expired);
    ASSERT_EQ_INT(v.action, WHCERT_KEEP);
    ASSERT_STR_EQ(p.cert, c.cert_pem);
    whcert_pems_release(&p);
    /* 25 of 30 days gone: expiring, not expired. */
    ASSERT_EQ_INT(whlife_examine(j.data, j.len, s.v, now + 25 * 86400, &v, &p), 0);
    ASSERT_EQ_INT(v.action, WHCERT_RENEW_EXPIRING);
    ASSERT(v.readable && !v.expired);
    whcert_pems_release(&p);
    ASSERT_EQ_INT(whlife_examine(j.data, j.len, s.v, now + 40 * 86400, &v, &p), 0);
    ASSERT(v.expired);
    whcert_pems_release(&p);
    /* Another service's name: wrong SANs. */
    whcert_sans other;
    ASSERT_EQ_INT(whcert_sans_for_service(&other, "elsewhere", NS, NULL), 0);
    ASSERT_EQ_INT(whlife_examine(j.data, j.len, other.v, now, &v, &p), 0);
    ASSERT_EQ_INT(v.action, WHCERT_RENEW_SANS);
    whcert_pems_release(&p);
    /* No ca.crt: nothing for the caBundle, unreadable. */
    opbuf_reset(&j);
    ASSERT_EQ_INT(whcert_secret_json(&j, SECRET, NS, c.cert_pem, c.key_pem, NULL), 0);
    ASSERT_EQ_INT(whlife_examine(j.data, j.len, s.v, now, &v, &p), 0);
    ASSERT(v.found && !v.readable);
    ASSERT_STR_CONTAINS(v.why, "ca.crt");
    ASSERT_NULL(p.cert);
    /* Absent. */
    ASSERT_EQ_INT(whlife_examine(NULL, 0, s.v, now, &v, &p), 0);
    ASSERT(!v.found);
    opbuf_release(&j);
    ophttpd_cert_release(&c);
}

/* ---- against the fake API server --------------------------------------------------------- */

static void test_first_start_then_reuse(void)
{
    setup();
    replica a;
    rep_start(&a, 1, 0);
    wait_stats(&a, 1, 1, 1);
    whlife_stats st;
    whlife_stats_get(a.l, &st);
    ASSERT_EQ_INT(st.generated, 1);
    ASSERT_EQ_INT(st.secret_writes, 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "POST", "/secrets"), 1);
    const fakeapi_logged *post = fakeapi_log_last(fa, "POST", "/secrets");
    ASSERT_STR_CONTAINS(post->path, "fieldManager=optipod");
    const fakeapi_logged *patch = fakeapi_log_last(fa, "PATCH", "/mutatingwebhookconfigurations");
    ASSERT_NOT_NULL(patch);
    ASSERT_STR_EQ(patch->content_type, "application/strategic-merge-patch+json");

    /* The stored Secret is what is served; its CA alone is in the caBundle. */
    whcert_pems p;
    stored_secret(&p);
    ASSERT_STR_EQ(p.cert, a.cert);
    ASSERT_STR_EQ(whlife_ca(a.l), p.ca);
    /* Signed by the stored CA, for every in-cluster spelling of the Service. */
    const char *want[] = {"optipod-webhook",
                          "optipod-webhook.optipod-system",
                          "optipod-webhook.optipod-system.svc",
                          "optipod-webhook.optipod-system.svc.cluster.local",
                          "127.0.0.1",
                          NULL};
    whcert_decision d;
    ASSERT_EQ_INT(whcert_decide(p.cert, p.ca, want, time(NULL), &d), 0);
    ASSERT_EQ_INT(d.action, WHCERT_KEEP);
    char *log = log_take();
    ASSERT_STR_CONTAINS(log, "creating secret 'optipod-system/optipod-webhook-tls' (absent)");
    ASSERT_STR_CONTAINS(log, "caBundle of mutatingwebhookconfiguration 'optipod-webhook' updated");
    free(log);
    assert_bundle_is(p.ca, NULL);
    ASSERT(served_with(&a, p.ca));

    /* Steady state: more checks, no more writes. */
    wait_stats(&a, 1, 1, 4);
    ASSERT_EQ_INT(fakeapi_count(fa, "POST", NULL) + fakeapi_count(fa, "PUT", NULL), 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "PATCH", NULL), 1);

    /* A second controller finds the Secret and serves the same pair: no new certificate. */
    replica b;
    rep_start(&b, 1, 0);
    wait_stats(&b, 1, 0, 1);
    whlife_stats_get(b.l, &st);
    ASSERT_EQ_INT(st.generated, 0);
    ASSERT_EQ_INT(st.secret_writes, 0);
    ASSERT_STR_EQ(b.cert, p.cert);
    ASSERT(served_with(&b, p.ca));
    ASSERT_EQ_INT(fakeapi_count(fa, "POST", "/secrets") + fakeapi_count(fa, "PUT", "/secrets"), 1);
    assert_bundle_is(p.ca, NULL);

    rep_stop(&a);
    rep_stop(&b);
    whcert_pems_release(&p);
    teardown();
}

static void test_expiring_rotated(void)
{
    setup();
    /* Written by an earlier run, 30 days' validity. */
    replica a;
    rep_start(&a, 1, 0);
    wait_stats(&a, 1, 1, 1);
    whcert_pems old;
    stored_secret(&old);
    rep_stop(&a);
    const cJSON *sec = fakeapi_get(fa, SECRET_PATH);
    char rv[64];
    snprintf(rv, sizeof rv, "%s",
             cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sec, "metadata"),
                                              "resourceVersion")
                 ->valuestring);

    /* 25 days later a non-leader keeps serving it (it still verifies) and writes nothing. */
    replica follower;
    rep_start(&follower, 0, 25 * 86400);
    wait_stats(&follower, 1, 0, 2);
    ASSERT_STR_EQ(follower.cert, old.cert);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", "/secrets"), 0);

    /* The leader rotates it: PUT with the read resourceVersion, both CAs in the bundle. */
    replica leader;
    rep_start(&leader, 1, 25 * 86400);
    wait_stats(&leader, 1, 1, 1);
    whlife_stats st;
    whlife_stats_get(leader.l, &st);
    ASSERT_EQ_INT(st.generated, 1);
    ASSERT_EQ_INT(st.secret_writes, 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", SECRET_PATH), 1);
    const fakeapi_logged *put = fakeapi_log_last(fa, "PUT", SECRET_PATH);
    cJSON *body = cJSON_Parse(put->body);
    ASSERT_STR_EQ(cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(body, "metadata"), "resourceVersion")
                      ->valuestring,
                  rv);
    cJSON_Delete(body);
    whcert_pems cur;
    stored_secret(&cur);
    ASSERT(strcmp(cur.cert, old.cert) != 0);
    ASSERT(strcmp(cur.ca, old.ca) != 0);
    ASSERT_STR_EQ(leader.cert, cur.cert);
    assert_bundle_is(cur.ca, old.ca);
    ASSERT(served_with(&leader, cur.ca));
    ASSERT(!served_with(&leader, old.ca));

    /* The follower picks the new pair up at its next poll; the old CA is still trusted by the
     * API server meanwhile, through the bundle. */
    wait_stats(&follower, 2, 0, 0);
    ASSERT_STR_EQ(follower.cert, cur.cert);
    ASSERT(served_with(&follower, cur.ca));
    /* Nothing rotates again: the new one is fresh. */
    wait_stats(&leader, 1, 1, 4);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", "/secrets"), 1);

    rep_stop(&follower);
    rep_stop(&leader);
    whcert_pems_release(&old);
    whcert_pems_release(&cur);
    teardown();
}

/* Another replica's Secret lands just before ours is handled: the write gets a 409. */
typedef struct race {
    const char *method;
    int fired;
    char *secret_json; /* what the other replica writes */
} race;

static int race_hook(fakeapi *f, ophttpd_req *req, void *ud)
{
    race *r = ud;
    const char *m = ophttpd_method(req);
    if (!r->fired && strcmp(m, r->method) == 0 && strstr(ophttpd_path(req), "/secrets")) {
        r->fired = 1;
        ASSERT_EQ_INT(fakeapi_put_json(f, r->secret_json), 0);
    }
    return 0;
}

static char *other_secret(ophttpd_cert *c)
{
    whcert_sans s;
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "optipod-webhook", NS, k_extra), 0);
    ASSERT_EQ_INT(whcert_generate(c, &s, 30), 0);
    opbuf j;
    opbuf_init(&j, 1 << 17);
    ASSERT_EQ_INT(whcert_secret_json(&j, SECRET, NS, c->cert_pem, c->key_pem, c->ca_pem), 0);
    char *out = strdup(opbuf_str(&j));
    opbuf_release(&j);
    return out;
}

static void test_conflict_on_create_uses_winner(void)
{
    setup();
    ophttpd_cert other;
    race r = {.method = "POST", .secret_json = other_secret(&other)};
    fakeapi_set_hook(fa, race_hook, &r);
    replica a;
    rep_start(&a, 1, 0);
    wait_stats(&a, 1, 1, 2);
    whlife_stats st;
    whlife_stats_get(a.l, &st);
    ASSERT_EQ_INT(r.fired, 1);
    ASSERT_EQ_INT(st.conflicts, 1);
    ASSERT_EQ_INT(st.generated, 1);
    ASSERT_EQ_INT(st.secret_writes, 0);
    const fakeapi_logged *post = fakeapi_log_last(fa, "POST", "/secrets");
    ASSERT_EQ_INT(post->status, 409);
    /* The winner's pair is served and its CA patched in. */
    ASSERT_STR_EQ(a.cert, other.cert_pem);
    assert_bundle_is(other.ca_pem, NULL);
    ASSERT(served_with(&a, other.ca_pem));
    rep_stop(&a);
    fakeapi_set_hook(fa, NULL, NULL);
    free(r.secret_json);
    ophttpd_cert_release(&other);
    teardown();
}

static void test_conflict_on_rotation_uses_winner(void)
{
    setup();
    replica a;
    rep_start(&a, 1, 0);
    wait_stats(&a, 1, 1, 1);
    rep_stop(&a);
    whcert_pems old;
    stored_secret(&old);
    ophttpd_cert other;
    race r = {.method = "PUT", .secret_json = other_secret(&other)};
    fakeapi_set_hook(fa, race_hook, &r);
    /* 25 days on, ours is due; so is the winner's (also 30 days, made now). */
    replica b;
    rep_start(&b, 1, 25 * 86400);
    /* b replaces, loses (409), re-reads the winner's (also expiring at +25 d), replaces
     * again with the fresh resourceVersion and wins. */
    wait_stats(&b, 1, 1, 2);
    whlife_stats st;
    whlife_stats_get(b.l, &st);
    ASSERT_EQ_INT(r.fired, 1);
    ASSERT_EQ_INT(st.conflicts, 1);
    ASSERT_EQ_INT(st.secret_writes, 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", SECRET_PATH), 2);
    whcert_pems cur;
    stored_secret(&cur);
    ASSERT_STR_EQ(b.cert, cur.cert);
    /* The bundle keeps the CA it replaced: the winner's, not ours. */
    assert_bundle_is(cur.ca, other.ca_pem);
    rep_stop(&b);
    fakeapi_set_hook(fa, NULL, NULL);
    free(r.secret_json);
    ophttpd_cert_release(&other);
    whcert_pems_release(&old);
    whcert_pems_release(&cur);
    teardown();
}

static void test_non_leader_waits_then_leads(void)
{
    setup();
    replica a;
    rep_start(&a, 0, 0);
    wait_stats(&a, 0, 0, 3);
    ASSERT_NULL(a.cert);
    ASSERT_NULL(a.srv);
    ASSERT_EQ_INT(fakeapi_count(fa, "POST", NULL) + fakeapi_count(fa, "PUT", NULL) +
                      fakeapi_count(fa, "PATCH", NULL),
                  0);
    /* Leadership arrives: the next check writes. */
    a.leader = 1;
    whlife_kick(a.l);
    wait_stats(&a, 1, 1, 0);
    whcert_pems p;
    stored_secret(&p);
    ASSERT_STR_EQ(a.cert, p.cert);
    ASSERT(served_with(&a, p.ca));
    rep_stop(&a);
    whcert_pems_release(&p);
    teardown();
}

/* ---- the previous CA in the Secret ------------------------------------------------------- */

/* The stored caBundle of pods.optipod.io replaced by `pem` alone (what an earlier process left). */
static void clobber_bundle(const char *pem)
{
    cJSON *mwc = cJSON_Duplicate(fakeapi_get(fa, CONFIG_PATH), 1);
    ASSERT_NOT_NULL(mwc);
    opbuf b64;
    opbuf_init(&b64, 1 << 17);
    ASSERT_EQ_INT(opb64_encode(&b64, pem, strlen(pem)), 0);
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(mwc, "webhooks"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(w, "name");
        if (strcmp(n->valuestring, "pods.optipod.io") == 0)
            ASSERT_NOT_NULL(cJSON_SetValuestring(
                cJSON_GetObjectItemCaseSensitive(
                    cJSON_GetObjectItemCaseSensitive(w, "clientConfig"), "caBundle"),
                opbuf_str(&b64)));
    }
    ASSERT_EQ_INT(fakeapi_put(fa, mwc), 0);
    cJSON_Delete(mwc);
    opbuf_release(&b64);
}

/* A Secret with a fresh pair in `c` and, when prev_ca is set, a previous CA until `until`. */
static void put_secret_with_prev(ophttpd_cert *c, const char *prev_ca, time_t until)
{
    whcert_sans s;
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "optipod-webhook", NS, k_extra), 0);
    ASSERT_EQ_INT(whcert_generate(c, &s, 30), 0);
    whcert_pems p = {.cert = c->cert_pem,
                     .key = c->key_pem,
                     .ca = c->ca_pem,
                     .prev_ca = (char *)prev_ca,
                     .prev_until = until};
    opbuf j;
    opbuf_init(&j, 1 << 17);
    ASSERT_EQ_INT(whcert_secret_json_pems(&j, SECRET, NS, &p), 0);
    ASSERT_EQ_INT(fakeapi_put_json(fa, opbuf_str(&j)), 0);
    opbuf_release(&j);
}

static void test_restart_during_overlap_keeps_both(void)
{
    setup();
    replica a;
    rep_start(&a, 1, 0);
    wait_stats(&a, 1, 1, 1);
    whcert_pems old;
    stored_secret(&old);
    rep_stop(&a);
    /* 25 days on, a leader rotates: the old CA goes into the Secret as the previous one. */
    replica b;
    rep_start(&b, 1, 25 * 86400);
    time_t rotated_at = time(NULL) + 25 * 86400;
    wait_stats(&b, 1, 1, 1);
    whcert_pems cur;
    stored_secret(&cur);
    ASSERT(strcmp(cur.ca, old.ca) != 0);
    ASSERT_STR_EQ(cur.prev_ca, old.ca);
    ASSERT_STR_EQ(cur.prev_err, "");
    /* Until now + the default overlap (a day), before the old CA's own expiry (day 30). */
    ASSERT(cur.prev_until >= rotated_at + 86400 - 60 && cur.prev_until <= rotated_at + 86400 + 60);
    ASSERT(cur.prev_until < cur.prev_not_after);
    const fakeapi_logged *put = fakeapi_log_last(fa, "PUT", SECRET_PATH);
    ASSERT_STR_CONTAINS(put->body, "\"ca-previous.crt\":");
    ASSERT_STR_CONTAINS(put->body, "\"optipod.io/ca-previous-until\":\"");
    ASSERT_NULL(strstr(put->body, "BEGIN EC PRIVATE")); /* base64 anyway; never a CA key */
    assert_bundle_is(cur.ca, old.ca);
    /* The leader dies before (or after) its patch landed: the stored bundle holds the old CA
     * alone, as it did before the rotation. */
    rep_stop(&b);
    clobber_bundle(old.ca);
    /* A new leader (still inside the overlap) rebuilds the bundle from the Secret: both CAs,
     * so replicas still serving certificates of the old CA keep passing verification. */
    replica c;
    rep_start(&c, 1, 0); /* b's clock ran 25 days ahead: c is well inside b's overlap */
    wait_stats(&c, 1, 1, 1);
    whlife_stats st;
    whlife_stats_get(c.l, &st);
    ASSERT_EQ_INT(st.generated, 0);
    ASSERT_EQ_INT(st.secret_writes, 0);
    assert_bundle_is(cur.ca, old.ca);
    ASSERT_STR_EQ(c.cert, cur.cert);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", SECRET_PATH), 1);
    rep_stop(&c);
    whcert_pems_release(&old);
    whcert_pems_release(&cur);
    teardown();
}

static void test_after_overlap_old_ca_goes(void)
{
    setup();
    ophttpd_cert prev, cur;
    whcert_sans s;
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "optipod-webhook", NS, k_extra), 0);
    ASSERT_EQ_INT(whcert_generate(&prev, &s, 30), 0);
    time_t until = time(NULL) + 3600;
    put_secret_with_prev(&cur, prev.ca_pem, until);
    /* Inside the overlap: both in the bundle, the Secret left alone. */
    replica a;
    rep_start(&a, 1, 0);
    wait_stats(&a, 1, 1, 1);
    assert_bundle_is(cur.ca_pem, prev.ca_pem);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", NULL), 0);
    /* A follower past the overlap serves and writes nothing. */
    replica f;
    rep_start(&f, 0, 7200);
    wait_stats(&f, 1, 0, 2);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", NULL), 0);
    rep_stop(&f);
    /* The leader's clock passes the until-time: the next check drops the old CA from the
     * bundle and the Secret (same pair, one update). */
    a.skew = 7200;
    whlife_kick(a.l);
    wait_stats(&a, 1, 2, 0);
    assert_bundle_is(cur.ca_pem, NULL);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", SECRET_PATH), 1);
    whcert_pems st;
    stored_secret(&st);
    ASSERT_STR_EQ(st.cert, cur.cert_pem);
    ASSERT_NULL(st.prev_ca);
    ASSERT_STR_EQ(st.prev_err, "");
    ASSERT_STR_EQ(a.cert, cur.cert_pem);
    ASSERT(served_with(&a, cur.ca_pem));
    char *log = log_take();
    ASSERT_STR_CONTAINS(log, "removing the previous CA from secret "
                             "'optipod-system/optipod-webhook-tls' (its overlap is over)");
    free(log);
    /* Steady again: nothing more written. */
    whlife_stats stt;
    whlife_stats_get(a.l, &stt);
    wait_stats(&a, 1, 2, stt.checks + 3);
    ASSERT_EQ_INT(fakeapi_count(fa, "PUT", NULL), 1);
    ASSERT_EQ_INT(fakeapi_count(fa, "PATCH", NULL), 2);
    rep_stop(&a);
    whcert_pems_release(&st);
    ophttpd_cert_release(&prev);
    ophttpd_cert_release(&cur);
    teardown();
}

static void test_malformed_prev_ignored(void)
{
    setup();
    static const char *const bad[][2] = {
        {"bm90IGEgY2VydA==", "2099-01-01T00:00:00Z"}, /* "not a cert" */
        {"%%%", "2099-01-01T00:00:00Z"},              /* not base64 */
        {NULL, "tomorrow"},                           /* a good CA, a bad until */
    };
    static const char *const why[] = {"not a PEM certificate", "not base64",
                                      "not an RFC 3339 UTC time"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ophttpd_cert cur, other;
        whcert_sans s;
        ASSERT_EQ_INT(whcert_sans_for_service(&s, "optipod-webhook", NS, k_extra), 0);
        ASSERT_EQ_INT(whcert_generate(&other, &s, 30), 0);
        put_secret_with_prev(&cur, other.ca_pem, time(NULL) + 3600);
        cJSON *sec = cJSON_Duplicate(fakeapi_get(fa, SECRET_PATH), 1);
        cJSON *data = cJSON_GetObjectItemCaseSensitive(sec, "data");
        cJSON *ann = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(sec, "metadata"), "annotations");
        if (bad[i][0])
            cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(data, "ca-previous.crt"),
                                 bad[i][0]);
        cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(ann, "optipod.io/ca-previous-until"),
                             bad[i][1]);
        ASSERT_EQ_INT(fakeapi_put(fa, sec), 0);
        cJSON_Delete(sec);
        size_t puts = fakeapi_count(fa, "PUT", SECRET_PATH);

        /* A follower serves the pair and reports the previous CA, once. */
        replica f;
        rep_start(&f, 0, 0);
        wait_stats(&f, 1, 0, 3);
        whlife_stats st;
        whlife_stats_get(f.l, &st);
        ASSERT(st.prev_ignored >= 3);
        ASSERT_STR_EQ(f.cert, cur.cert_pem);
        ASSERT(served_with(&f, cur.ca_pem));
        ASSERT_EQ_INT(fakeapi_count(fa, "PUT", SECRET_PATH), puts);
        char *log = log_take();
        ASSERT_STR_CONTAINS(log, "previous CA ignored");
        ASSERT_STR_CONTAINS(log, why[i]);
        ASSERT_EQ_INT(strstr(strstr(log, "previous CA ignored") + 1, "previous CA ignored") == NULL,
                      1);
        free(log);
        rep_stop(&f);
        /* The leader serves it too, keeps it out of the bundle and tidies it away. */
        replica a;
        rep_start(&a, 1, 0);
        wait_stats(&a, 1, 1, 1);
        assert_bundle_is(cur.ca_pem, NULL);
        ASSERT_STR_EQ(a.cert, cur.cert_pem);
        ASSERT_EQ_INT(fakeapi_count(fa, "PUT", SECRET_PATH), puts + 1);
        whcert_pems p;
        stored_secret(&p);
        ASSERT_NULL(p.prev_ca);
        ASSERT_STR_EQ(p.prev_err, "");
        ASSERT_STR_EQ(p.cert, cur.cert_pem);
        whcert_pems_release(&p);
        rep_stop(&a);
        free(log_take());
        ophttpd_cert_release(&cur);
        ophttpd_cert_release(&other);
    }
    teardown();
}

static void test_bad_options(void)
{
    uv_loop_t l;
    ASSERT_EQ_INT(uv_loop_init(&l), 0);
    whlife *w;
    operr err = {{0}};
    replica r = {0};
    whlife_opts o = {.service = "s", .ns = NS, .secret = SECRET, .on_cert = rep_on_cert};
    ASSERT_EQ_INT(whlife_start(&w, &l, NULL, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "an API client is required");
    ASSERT_NULL(w);
    o.on_cert = NULL;
    ASSERT_EQ_INT(whlife_start(&w, &l, NULL, &o, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "on_cert");
    whlife_opts m = {.cert_dir = "/nonexistent/optipod", .on_cert = rep_on_cert, .ud = &r};
    ASSERT_EQ_INT(whlife_start(&w, &l, NULL, &m, &err), -ENOENT);
    ASSERT_STR_CONTAINS(err.msg, "/nonexistent/optipod");
    uv_run(&l, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&l), 0);
}

/* ---- mounted files ------------------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const char *s)
{
    char path[512], tmp[520];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    ASSERT_NOT_NULL(f);
    fputs(s, f);
    fclose(f);
    ASSERT_EQ_INT(rename(tmp, path), 0);
}

static int delivered_twice(void *ud)
{
    replica *r = ud;
    whlife_stats st;
    whlife_stats_get(r->l, &st);
    return st.delivered >= 2;
}

static void test_mounted_change_served(void)
{
    ASSERT_EQ_INT(uv_loop_init(&loop), 0);
    char dir[] = "/tmp/test_whlife_XXXXXX";
    ASSERT_NOT_NULL(mkdtemp(dir));
    whcert_sans s;
    ASSERT_EQ_INT(whcert_sans_for_service(&s, "optipod-webhook", NS, k_extra), 0);
    ophttpd_cert c1, c2;
    ASSERT_EQ_INT(whcert_generate(&c1, &s, 90), 0);
    ASSERT_EQ_INT(whcert_generate(&c2, &s, 90), 0);
    write_file(dir, "tls.crt", c1.cert_pem);
    write_file(dir, "tls.key", c1.key_pem);
    replica r = {0};
    whlife_opts o = {.cert_dir = dir, .dir_poll_ms = 20, .on_cert = rep_on_cert, .ud = &r};
    operr err = {{0}};
    if (whlife_start(&r.l, &loop, NULL, &o, &err) != 0)
        test_fail(__FILE__, __LINE__, "whlife_start: %s", err.msg);
    ASSERT_NOT_NULL(r.srv); /* delivered during start */
    ASSERT(served_with(&r, c1.ca_pem));

    /* cert-manager renews: the key first, then the cert (a half pair is skipped). */
    write_file(dir, "tls.key", c2.key_pem);
    write_file(dir, "tls.crt", c2.cert_pem);
    ASSERT(tloop_until(&loop, delivered_twice, &r, tloop_scaled(3000)));
    ASSERT_STR_EQ(r.cert, c2.cert_pem);
    ASSERT(served_with(&r, c2.ca_pem));
    ASSERT(!served_with(&r, c1.ca_pem));

    rep_stop(&r);
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(uv_loop_close(&loop), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/tls.crt", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tls.key", dir);
    unlink(path);
    rmdir(dir);
    ophttpd_cert_release(&c1);
    ophttpd_cert_release(&c2);
}

int main(void)
{
    logsink = tmpfile();
    oplog_set_sink(logsink);
    TEST_RUN(test_decide_table);
    TEST_RUN(test_examine);
    TEST_RUN(test_first_start_then_reuse);
    TEST_RUN(test_expiring_rotated);
    TEST_RUN(test_conflict_on_create_uses_winner);
    TEST_RUN(test_conflict_on_rotation_uses_winner);
    TEST_RUN(test_non_leader_waits_then_leads);
    TEST_RUN(test_restart_during_overlap_keeps_both);
    TEST_RUN(test_after_overlap_old_ca_goes);
    TEST_RUN(test_malformed_prev_ignored);
    TEST_RUN(test_bad_options);
    TEST_RUN(test_mounted_change_served);
    return test_summary();
}
