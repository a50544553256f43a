/*
 * bench_projscan: projecting realistic Deployments (test/support/gen.h, ~4.6 KB
 * of JSON each, managedFields included) straight from bytes (kprojs) against
 * the DOM path (cJSON_ParseWithLength + kproj_from_json + cJSON_Delete) and
 * against the baseline bench_ingest uses (cJSON_Parse + cJSON_Delete of the
 * same bytes, no projection at all), all in the same run.
 *
 *   object: N separate objects (kprojs_from_bytes vs the DOM path);
 *   event:  N watch lines {"type":"MODIFIED","object":..} (kprojs_event_project,
 *           one scan, vs kwatch_event_parse + kproj_from_json);
 *   page:   the same N objects as LIST pages of 500 items (kprojs_list_parse +
 *           kprojs_list_next + kprojs_from_bytes vs one cJSON parse of the page
 *           + kproj_from_json per item; baseline: cJSON_Parse + Delete of it).
 * Figures are objects/s by CPU time (best of 3, runs interleaved) and their
 * ratios to the baseline (> 1 = faster than merely parsing with cJSON).
 * Not asserted: a measurement (make bench), not a test.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
        if (kproj_from_json(root, KPROJ_DEPLOYMENT, &o) == 0) {
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
        kwatch_event ev;
        kproj_obj *o;
        if (kwatch_event_parse(events[i], event_lens[i], &ev))
            continue;
        if (kproj_from_json(ev.object, KPROJ_DEPLOYMENT, &o) == 0) {
            sink += o->size;
            kproj_free(o);
        }
        kwatch_event_release(&ev);
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
            if (kproj_from_json(it, KPROJ_DEPLOYMENT, &o) == 0) {
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

static double best(void (*fn)(void), double *slot)
{
    double t0 = cpu_s();
    fn();
    double t = cpu_s() - t0;
    if (*slot == 0 || t < *slot)
        *slot = t;
    return t;
}

static void report(const char *what, void (*bytes)(void), void (*dom)(void), void (*base)(void))
{
    double tb = 0, td = 0, t0 = 0;
    for (int r = 0; r < RUNS; r++) {
        best(base, &t0);
        best(bytes, &tb);
        best(dom, &td);
    }
    printf("%-7s baseline cJSON_Parse+Delete %9.0f obj/s\n", what, N / t0);
    printf("%-7s kprojs (bytes)              %9.0f obj/s  ratio to baseline %.2f\n", what, N / tb,
           t0 / tb);
    printf("%-7s cJSON + kproj_from_json     %9.0f obj/s  ratio to baseline %.2f\n", what, N / td,
           t0 / td);
    printf("%-7s kprojs speed-up over the DOM path: %.2fx\n", what, td / tb);
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
    printf("bench_projscan: %d Deployments, %.0f bytes each on average, best of %d (CPU time)\n", N,
           (double)total / N, RUNS);
    report("object", run_bytes, run_dom, run_base);
    report("event", run_event_bytes, run_event_dom, run_event_base);
    report("page", run_page_bytes, run_page_dom, run_page_base);
    for (int i = 0; i < N; i++) {
        free(objs[i]);
        free(events[i]);
    }
    for (int p = 0; p < N / PAGE; p++)
        free(pages[p]);
    opbuf_release(&b);
    opbuf_release(&page);
    return 0;
}
