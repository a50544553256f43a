/*
 * bench_projscan: the measurement that chose optipod's one JSON projection.
 * Realistic Deployments (test/support/gen.h, ~4.6 KB of JSON each,
 * managedFields included) projected straight from bytes (kprojs, what lib/
 * uses) against the DOM path it replaced (cJSON_ParseWithLength + the cJSON
 * walker kept in test/fuzz/kref.h + cJSON_Delete) and against the baseline
 * bench_ingest uses (cJSON_Parse + cJSON_Delete of the same bytes, no
 * projection at all), all in the same run.
 *
 *   object: N separate objects (kprojs_from_bytes vs the DOM path);
 *   event:  N watch lines {"type":"MODIFIED","object":..} (kprojs_event_project,
 *           one scan, vs kref_event_parse + kref_from_json);
 *   page:   the same N objects as LIST pages of 500 items (kprojs_list_parse +
 *           kprojs_list_next + kprojs_from_bytes vs one cJSON parse of the page
 *           + kref_from_json per item; baseline: cJSON_Parse + Delete of it);
 *   admrev: N AdmissionReviews of a pod made from each Deployment's template
 *           (admrev_parse: one jscan pass, only spec.containers as cJSON, vs
 *           the whole-body cJSON read of test/fuzz/admrev_oracle.h).
 * Figures are objects/s by CPU time (best of 3, runs interleaved) and their
 * ratios to the baseline (> 1 = faster than merely parsing with cJSON).
 * Not asserted: a measurement (make bench), not a test.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz/admrev_oracle.h"
#include "fuzz/kref.h"
#include "kube/projscan.h"
#include "support/gen.h"
#include "util/buf.h"

#define N    4000
#define PAGE 500
#define RUNS 3

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *objs[N];
static size_t lens[N];
static char *events[N];
static size_t event_lens[N];
static char *pages[N / PAGE];
static char *reviews[N];
static size_t review_lens[N];
static size_t page_lens[N / PAGE];
static volatile size_t sink;

static void run_bytes(void)
{
    for (int i = 0; i < N; i++) {
        kproj_obj *o;
        if (kprojs_from_bytes(objs[i], lens[i], KPROJ_DEPLOYMENT, &o) == 0) {
            sink += o->size;
            kproj_free(o);
        }
    }
}

static void run_dom(void)
{
    for (int i = 0; i < N; i++) {
        cJSON *root = cJSON_ParseWithLength(objs[i], lens[i]);
        kproj_obj *o;
        if (kref_from_json(root, KPROJ_DEPLOYMENT, &o) == 0) {
            sink += o->size;
            kproj_free(o);
        }
        cJSON_Delete(root);
    }
}

static void run_base(void)
{
    for (int i = 0; i < N; i++) {
        cJSON *root = cJSON_Parse(objs[i]);
        sink += root != NULL;
        cJSON_Delete(root);
    }
}

static void run_event_bytes(void)
{
    for (int i = 0; i < N; i++) {
        kprojs_event ev;
        kproj_obj *o;
        int prc;
        if (kprojs_event_project(events[i], event_lens[i], KPROJ_DEPLOYMENT, &ev, &o, &prc) == 0 &&
            prc == 0) {
            sink += o->size;
            kproj_free(o);
        }
    }
}

static void run_event_dom(void)
{
    for (int i = 0; i < N; i++) {
        kref_event ev;
        kproj_obj *o;
        if (kref_event_parse(events[i], event_lens[i], &ev))
            continue;
        if (kref_from_json(ev.object, KPROJ_DEPLOYMENT, &o) == 0) {
            sink += o->size;
            kproj_free(o);
        }
        kref_event_release(&ev);
    }
}

static void run_event_base(void)
{
    for (int i = 0; i < N; i++) {
        cJSON *root = cJSON_Parse(events[i]);
        sink += root != NULL;
        cJSON_Delete(root);
    }
}

static void run_page_bytes(void)
{
    for (int p = 0; p < N / PAGE; p++) {
        kprojs_list l;
        const char *item;
        size_t n;
        if (kprojs_list_parse(pages[p], page_lens[p], &l))
            continue;
        while (kprojs_list_next(&l, &item, &n)) {
            kproj_obj *o;
            if (kprojs_from_valid(item, n, KPROJ_DEPLOYMENT, &o) == 0) {
                sink += o->size;
                kproj_free(o);
            }
        }
    }
}

static void run_page_dom(void)
{
    for (int p = 0; p < N / PAGE; p++) {
        cJSON *root = cJSON_ParseWithLength(pages[p], page_lens[p]), *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "items"))
        {
            kproj_obj *o;
            if (kref_from_json(it, KPROJ_DEPLOYMENT, &o) == 0) {
                sink += o->size;
                kproj_free(o);
            }
        }
        cJSON_Delete(root);
    }
}

static void run_page_base(void)
{
    for (int p = 0; p < N / PAGE; p++) {
        cJSON *root = cJSON_Parse(pages[p]);
        sink += root != NULL;
        cJSON_Delete(root);
    }
}

static void run_admrev_bytes(void)
{
    for (int i = 0; i < N; i++) {
        admrev_req r;
        if (admrev_parse(&r, reviews[i], review_lens[i], NULL) == 0)
            sink += r.containers != NULL;
        admrev_release(&r);
    }
}

static void run_admrev_dom(void)
{
    for (int i = 0; i < N; i++) {
        admrev_ref r;
        if (aro_parse(&r, reviews[i], review_lens[i], NULL) == 0)
            sink += r.containers != NULL;
        cJSON_Delete(r.root);
    }
}

static void run_admrev_base(void)
{
    for (int i = 0; i < N; i++) {
        cJSON *root = cJSON_Parse(reviews[i]);
        sink += root != NULL;
        cJSON_Delete(root);
    }
}

/* A pod CREATE review for Deployment json: the template's metadata and spec, the
 * Deployment's managedFields (an applier's pod carries as many), a controller owner. */
static char *review_of(const char *json, size_t *len)
{
    cJSON *d = cJSON_Parse(json);
    cJSON *tpl = cJSON_GetObjectItem(cJSON_GetObjectItem(d, "spec"), "template");
    cJSON *md = cJSON_GetObjectItem(d, "metadata");
    cJSON *pod = cJSON_CreateObject();
    cJSON_AddStringToObject(pod, "apiVersion", "v1");
    cJSON_AddStringToObject(pod, "kind", "Pod");
    cJSON *pmd = cJSON_Duplicate(cJSON_GetObjectItem(tpl, "metadata"), 1);
    cJSON_AddStringToObject(pmd, "generateName", "web-5d8f7c9b6-");
    cJSON_AddStringToObject(pmd, "namespace", "team-a");
    cJSON_AddItemToObject(pmd, "managedFields",
                          cJSON_Duplicate(cJSON_GetObjectItem(md, "managedFields"), 1));
    cJSON *owners = cJSON_AddArrayToObject(pmd, "ownerReferences");
    cJSON *own = cJSON_CreateObject();
    cJSON_AddStringToObject(own, "apiVersion", "apps/v1");
    cJSON_AddStringToObject(own, "kind", "ReplicaSet");
    cJSON_AddStringToObject(own, "name", "web-5d8f7c9b6");
    cJSON_AddStringToObject(own, "uid", "0b6f2a4e-55d3-4a8e-9d3c-2f1e6a7b8c9d");
    cJSON_AddTrueToObject(own, "controller");
    cJSON_AddItemToArray(owners, own);
    cJSON_AddItemToObject(pod, "metadata", pmd);
    cJSON_AddItemToObject(pod, "spec", cJSON_Duplicate(cJSON_GetObjectItem(tpl, "spec"), 1));
    cJSON *rev = cJSON_CreateObject();
    cJSON_AddStringToObject(rev, "apiVersion", "admission.k8s.io/v1");
    cJSON_AddStringToObject(rev, "kind", "AdmissionReview");
    cJSON *req = cJSON_AddObjectToObject(rev, "request");
    cJSON_AddStringToObject(req, "uid", "705ab4f5-6393-11e8-b7cc-42010a800002");
    cJSON *k = cJSON_AddObjectToObject(req, "kind");
    cJSON_AddStringToObject(k, "group", "");
    cJSON_AddStringToObject(k, "version", "v1");
    cJSON_AddStringToObject(k, "kind", "Pod");
    cJSON_AddStringToObject(req, "namespace", "team-a");
    cJSON_AddStringToObject(req, "operation", "CREATE");
    cJSON_AddItemToObject(req, "object", pod);
    char *s = cJSON_PrintUnformatted(rev);
    *len = s ? strlen(s) : 0;
    cJSON_Delete(rev);
    cJSON_Delete(d);
    return s;
}

static double best(void (*fn)(void), double *slot)
{
    double t0 = cpu_s();
    fn();
    double t = cpu_s() - t0;
    if (*slot == 0 || t < *slot)
        *slot = t;
    return t;
}

static void report(const char *what, const char *bytes_name, const char *dom_name,
                   void (*bytes)(void), void (*dom)(void), void (*base)(void))
{
    double tb = 0, td = 0, t0 = 0;
    for (int r = 0; r < RUNS; r++) {
        best(base, &t0);
        best(bytes, &tb);
        best(dom, &td);
    }
    printf("%-7s baseline cJSON_Parse+Delete %9.0f obj/s\n", what, N / t0);
    printf("%-7s %-27s %9.0f obj/s  ratio to baseline %.2f\n", what, bytes_name, N / tb, t0 / tb);
    printf("%-7s %-27s %9.0f obj/s  ratio to baseline %.2f\n", what, dom_name, N / td, t0 / td);
    printf("%-7s byte scan speed-up over the DOM path: %.2fx\n", what, td / tb);
}

int main(void)
{
    opbuf b, page;
    opbuf_init(&b, 1 << 20);
    opbuf_init(&page, 64 << 20);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        opbuf_reset(&b);
        if (gen_deployment(&b, i % 4 ? "team-a" : "prod", (unsigned)i)) {
            fprintf(stderr, "gen_deployment failed\n");
            return 1;
        }
        objs[i] = strdup(b.data);
        lens[i] = b.len;
        total += b.len;
    }
    for (int i = 0; i < N; i++) {
        opbuf_reset(&page);
        opbuf_puts(&page, "{\"type\":\"MODIFIED\",\"object\":");
        opbuf_append(&page, objs[i], lens[i]);
        opbuf_puts(&page, "}");
        events[i] = strdup(page.data);
        event_lens[i] = page.len;
    }
    for (int p = 0; p < N / PAGE; p++) {
        opbuf_reset(&page);
        opbuf_printf(&page,
                     "{\"kind\":\"DeploymentList\",\"apiVersion\":\"apps/v1\",\"metadata\":"
                     "{\"resourceVersion\":\"%d\",\"continue\":\"tok%d\"},\"items\":[",
                     1000 + p, p);
        for (int i = 0; i < PAGE; i++) {
            if (i)
                opbuf_puts(&page, ",");
            opbuf_append(&page, objs[p * PAGE + i], lens[p * PAGE + i]);
        }
        opbuf_puts(&page, "]}");
        pages[p] = strdup(page.data);
        page_lens[p] = page.len;
    }
    size_t review_total = 0;
    for (int i = 0; i < N; i++) {
        reviews[i] = review_of(objs[i], &review_lens[i]);
        if (!reviews[i]) {
            fprintf(stderr, "cannot build an AdmissionReview\n");
            return 1;
        }
        review_total += review_lens[i];
    }
    printf("bench_projscan: %d Deployments, %.0f bytes each on average, best of %d (CPU time)\n", N,
           (double)total / N, RUNS);
    static const char kp[] = "kprojs (bytes)", dom[] = "cJSON DOM walk (replaced)";
    report("object", kp, dom, run_bytes, run_dom, run_base);
    report("event", kp, dom, run_event_bytes, run_event_dom, run_event_base);
    report("page", kp, dom, run_page_bytes, run_page_dom, run_page_base);
    printf("admrev: %d reviews, %.0f bytes each on average\n", N, (double)review_total / N);
    report("admrev", "admrev_parse (jscan)", "whole-body cJSON read", run_admrev_bytes,
           run_admrev_dom, run_admrev_base);
    for (int i = 0; i < N; i++) {
        free(objs[i]);
        free(events[i]);
        cJSON_free(reviews[i]);
    }
    for (int p = 0; p < N / PAGE; p++)
        free(pages[p]);
    opbuf_release(&b);
    opbuf_release(&page);
    return 0;
}
