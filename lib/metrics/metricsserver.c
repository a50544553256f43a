/*
 * mms: metrics-server sampling into decaying histograms. See metricsserver.h.
 */
#include "metrics/metricsserver.h"
#include "metrics/checkpoint.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/histogram.h"
#include "engine/quantity.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/map.h"
#include "util/optime.h"

/* Separates key parts; cannot appear in Kubernetes names. */
#define SEP "\x1f"

typedef struct mms_seriesv {
    ehist cpu, mem;
    double last_update_s;
} mms_seriesv;

/* The workload a pod belongs to, and when it was last named or listed. */
typedef struct owner {
    char *wkey; /* "kind\x1fname" */
    double seen_s;
} owner;

typedef struct nsmap {
    opmap pod_to_w; /* pod → owner */
    opmap last_ts;  /* "pod\x1fcontainer" → struct seen (malloc'd) */
    uint64_t gen;
} nsmap;

typedef struct seen {
    double ts;
    uint64_t gen;
} seen;

struct mms_store {
    mms_opts o;
    ehist_opts cpu_o, mem_o;
    opmap ns;     /* ns → nsmap */
    opmap series; /* "ns\x1fkind\x1fname\x1fcontainer" → mms_seriesv */
    int warned_full;
    /* The last stats answer. */
    mprov_workload_stats *wout;
    mprov_container_stats *cout;
};

static void free_series(void *p)
{
    mms_seriesv *v = p;
    ehist_release(&v->cpu);
    ehist_release(&v->mem);
    free(v);
}

static void free_owner(void *p)
{
    owner *o = p;
    if (o)
        free(o->wkey);
    free(o);
}

static void free_nsmap(void *p)
{
    nsmap *m = p;
    opmap_release(&m->pod_to_w, free_owner);
    opmap_release(&m->last_ts, free);
    free(m);
}

int mms_store_new(mms_store **out, const mms_opts *o)
{
    mms_store *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    if (o)
        s->o = *o;
    if (s->o.half_life_s <= 0)
        s->o.half_life_s = 86400;
    if (!s->o.max_series)
        s->o.max_series = 5000;
    if (!s->o.forget_after_s)
        s->o.forget_after_s = 8 * 86400;
    ehist_opts_cpu(&s->cpu_o);
    ehist_opts_memory(&s->mem_o);
    s->cpu_o.half_life_s = s->mem_o.half_life_s = s->o.half_life_s;
    opmap_init(&s->ns);
    opmap_init(&s->series);
    *out = s;
    return 0;
}

void mms_store_free(mms_store *s)
{
    if (!s)
        return;
    opmap_release(&s->ns, free_nsmap);
    opmap_release(&s->series, free_series);
    free(s->wout);
    free(s->cout);
    free(s);
}

size_t mms_store_series(const mms_store *s)
{
    return opmap_count(&s->series);
}

static nsmap *get_ns(mms_store *s, const char *ns, int create)
{
    nsmap *m = opmap_get(&s->ns, ns);
    if (m || !create)
        return m;
    m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    opmap_init(&m->pod_to_w);
    opmap_init(&m->last_ts);
    if (opmap_put(&s->ns, ns, m, NULL) != 0) {
        free_nsmap(m);
        return NULL;
    }
    return m;
}

int mms_store_map(mms_store *s, const mprov_request *req, double now_s)
{
    nsmap *m = get_ns(s, req->ns, 1);
    if (!m)
        return -ENOMEM;
    opbuf k;
    opbuf_init(&k, 2 * MPROV_NAME_MAX + 2);
    int rc = 0;
    /* Merged into what earlier requests mapped (a request may name only some of
     * the namespace's workloads). Walked backwards so that, within a request,
     * the first workload claiming a pod wins, as in the Prometheus provider. */
    for (size_t i = req->nworkloads; i-- > 0 && rc == 0;) {
        const mprov_workload *w = &req->workloads[i];
        opbuf_reset(&k);
        rc = opbuf_printf(&k, "%s" SEP "%s", w->kind ? w->kind : "", w->name ? w->name : "");
        for (size_t j = w->npods; j-- > 0 && rc == 0;) {
            if (!w->pods[j])
                continue;
            owner *o = calloc(1, sizeof *o);
            if (o)
                o->wkey = strdup(opbuf_str(&k));
            if (!o || !o->wkey) {
                free_owner(o);
                rc = -ENOMEM;
                break;
            }
            o->seen_s = now_s;
            void *old = NULL;
            rc = opmap_put(&m->pod_to_w, w->pods[j], o, &old);
            free_owner(rc == 0 ? old : o);
        }
    }
    opbuf_release(&k);
    return rc;
}

typedef struct usage {
    const char *pod, *container;
    double ts, cpu, mem;
} usage;

/* Walk a PodMetricsList; fn may be NULL (validation pass). */
static int walk(const cJSON *doc, int (*fn)(const usage *u, void *ud), void *ud, operr *err)
{
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
    if (!cJSON_IsObject(doc) || !cJSON_IsArray(items))
        return operr_set(err, -EPROTO, "not a PodMetricsList (no \"items\")");
    int i = 0, rc = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(it, "metadata");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "timestamp");
        const cJSON *cs = cJSON_GetObjectItemCaseSensitive(it, "containers");
        usage u = {0};
        optime at;
        if (!cJSON_IsString(name) || !cJSON_IsString(ts) || !cJSON_IsArray(cs) ||
            optime_parse(ts->valuestring, 0, &at) != 0)
            return operr_set(err, -EPROTO,
                             "items[%d]: want metadata.name, an RFC 3339 timestamp and containers",
                             i);
        u.ts = (double)at.sec + at.nsec / 1e9;
        u.pod = name->valuestring;
        int j = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, cs)
        {
            const cJSON *cn = cJSON_GetObjectItemCaseSensitive(c, "name");
            const cJSON *usage_o = cJSON_GetObjectItemCaseSensitive(c, "usage");
            const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(usage_o, "cpu");
            const cJSON *mem = cJSON_GetObjectItemCaseSensitive(usage_o, "memory");
            kq qc, qm;
            int64_t bytes;
            operr qe;
            if (!cJSON_IsString(cn) || !cJSON_IsString(cpu) || !cJSON_IsString(mem))
                return operr_set(err, -EPROTO,
                                 "pod '%s' containers[%d]: want name, usage.cpu, usage.memory",
                                 u.pod, j);
            if (kq_parse_str(&qc, cpu->valuestring, &qe) != 0 ||
                kq_parse_str(&qm, mem->valuestring, &qe) != 0 || kq_to_int(&qm, &bytes) != 0 ||
                qc.units < 0 || bytes < 0)
                return operr_set(err, -EPROTO, "pod '%s' container '%s': bad usage: %s", u.pod,
                                 cn->valuestring, qe.msg);
            u.container = cn->valuestring;
            u.cpu = (double)qc.units + (double)qc.nanos / 1e9;
            u.mem = (double)bytes;
            rc = fn ? fn(&u, ud) : 0;
            if (rc < 0)
                return rc;
            j++;
        }
        i++;
    }
    return 0;
}

typedef struct ingest_ctx {
    mms_store *s;
    const char *ns;
    nsmap *m;
    double now_s;
    int added;
    opbuf key;
} ingest_ctx;

static mms_seriesv *get_series(mms_store *s, const char *key)
{
    mms_seriesv *v = opmap_get(&s->series, key);
    if (v)
        return v;
    if (opmap_count(&s->series) >= s->o.max_series) {
        if (!s->warned_full)
            OPLOG_W("metrics-server: %zu series held, the cap: new containers are not sampled",
                    s->o.max_series);
        s->warned_full = 1;
        return NULL;
    }
    v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (ehist_init(&v->cpu, &s->cpu_o) != 0 || ehist_init(&v->mem, &s->mem_o) != 0 ||
        opmap_put(&s->series, key, v, NULL) != 0) {
        free_series(v);
        return NULL;
    }
    return v;
}

static int ingest_one(const usage *u, void *ud)
{
    ingest_ctx *c = ud;
    owner *o = opmap_get(&c->m->pod_to_w, u->pod);
    if (!o)
        return 0;
    o->seen_s = c->now_s;
    const char *w = o->wkey;
    /* Count a PodMetrics once: metrics-server repeats it until its next scrape. */
    opbuf_reset(&c->key);
    if (opbuf_printf(&c->key, "%s" SEP "%s", u->pod, u->container) != 0)
        return 0;
    seen *sn = opmap_get(&c->m->last_ts, opbuf_str(&c->key));
    if (sn && u->ts <= sn->ts) {
        sn->gen = c->m->gen;
        return 0;
    }
    if (!sn) {
        sn = calloc(1, sizeof *sn);
        if (!sn || opmap_put(&c->m->last_ts, opbuf_str(&c->key), sn, NULL) != 0) {
            free(sn);
            return -ENOMEM;
        }
    }
    sn->ts = u->ts;
    sn->gen = c->m->gen;
    opbuf_reset(&c->key);
    if (opbuf_printf(&c->key, "%s" SEP "%s" SEP "%s", c->ns, w, u->container) != 0)
        return 0;
    mms_seriesv *v = get_series(c->s, opbuf_str(&c->key));
    if (!v)
        return 0;
    ehist_add(&v->cpu, u->cpu, 1.0, u->ts);
    ehist_add(&v->mem, u->mem, 1.0, u->ts);
    v->last_update_s = c->now_s;
    c->added++;
    return 0;
}

int mms_store_ingest(mms_store *s, const char *ns, const char *body, size_t len, double now_s,
                     operr *err)
{
    int rc = 0;
    cJSON *doc = cJSON_ParseWithLength(body, len);
    if (!doc)
        return operr_set(err, -EPROTO, "response is not JSON");
    /* Validate everything first: a half-folded list would skew the histograms. */
    rc = walk(doc, NULL, NULL, err);
    if (rc != 0)
        goto out;
    nsmap *m = get_ns(s, ns, 1);
    if (!m) {
        rc = -ENOMEM;
        goto out;
    }
    m->gen++;
    ingest_ctx c = {.s = s, .ns = ns, .m = m, .now_s = now_s};
    opbuf_init(&c.key, 4 * MPROV_NAME_MAX);
    rc = walk(doc, ingest_one, &c, err);
    opbuf_release(&c.key);
    if (rc == 0)
        rc = c.added;
    /* Forget pods that left the list, and series nobody updated for long. */
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &m->last_ts);
    while ((e = opmap_next(&it)))
        if (((seen *)e->value)->gen != m->gen)
            free(opmap_del(&m->last_ts, e->key));
    opmap_iter_init(&it, &m->pod_to_w);
    while ((e = opmap_next(&it)))
        if (now_s - ((owner *)e->value)->seen_s > (double)s->o.forget_after_s)
            free_owner(opmap_del(&m->pod_to_w, e->key));
    opmap_iter_init(&it, &s->series);
    while ((e = opmap_next(&it)))
        if (now_s - ((mms_seriesv *)e->value)->last_update_s > (double)s->o.forget_after_s)
            free_series(opmap_del(&s->series, e->key));
out:
    cJSON_Delete(doc);
    return rc;
}

int mms_store_stats(mms_store *s, const mprov_request *req, double eval_s, mprov_result *out)
{
    free(s->wout);
    free(s->cout);
    s->wout = calloc(req->nworkloads ? req->nworkloads : 1, sizeof *s->wout);
    /* Containers per workload are unknown up front: count matching series. */
    size_t prefix_max = 4 * MPROV_NAME_MAX;
    char *prefix = malloc(prefix_max);
    size_t total = 0;
    opmap_iter it;
    opmap_entry *e;
    size_t cap = 0;
    s->cout = NULL;
    int rc = -ENOMEM;
    size_t *first = calloc(req->nworkloads ? req->nworkloads : 1, sizeof *first);
    if (!s->wout || !prefix || !first)
        goto out;
    for (size_t i = 0; i < req->nworkloads; i++) {
        const mprov_workload *w = &req->workloads[i];
        int pl = snprintf(prefix, prefix_max, "%s" SEP "%s" SEP "%s" SEP, req->ns,
                          w->kind ? w->kind : "", w->name ? w->name : "");
        s->wout[i].kind = w->kind ? w->kind : "";
        s->wout[i].name = w->name ? w->name : "";
        s->wout[i].ncontainers = 0;
        first[i] = total; /* pointers are set once the array stops moving */
        opmap_iter_init(&it, &s->series);
        while ((e = opmap_next(&it))) {
            if (strncmp(e->key, prefix, (size_t)pl) != 0)
                continue;
            if (total == cap) {
                cap = cap ? cap * 2 : 16;
                mprov_container_stats *n = realloc(s->cout, cap * sizeof *n);
                if (!n)
                    goto out;
                s->cout = n;
            }
            const mms_seriesv *v = e->value;
            mprov_container_stats *c = &s->cout[total++];
            memset(c, 0, sizeof *c);
            snprintf(c->container, sizeof c->container, "%s", e->key + pl);
            c->cpu_cores = ehist_percentile(&v->cpu, req->percentile);
            c->mem_bytes = ehist_percentile(&v->mem, req->percentile);
            c->mem_peak_bytes = v->mem.count ? v->mem.peak : 0;
            c->cpu_samples = v->cpu.count;
            c->mem_samples = v->mem.count;
            if (v->mem.count) {
                double h = eval_s - v->mem.first_t;
                c->history_s = h < 0 ? 0 : h > (double)req->window_s ? (double)req->window_s : h;
            }
            s->wout[i].ncontainers++;
        }
    }
    for (size_t i = 0; i < req->nworkloads; i++)
        s->wout[i].containers = s->cout ? s->cout + first[i] : NULL;
    out->ns = req->ns;
    out->nworkloads = req->nworkloads;
    out->workloads = s->wout;
    out->eval_time_s = (int64_t)eval_s;
    rc = 0;
out:
    free(prefix);
    free(first);
    return rc;
}

/* ---- checkpoints (metrics/checkpoint.h) -------------------------------------------------- */

int mms_store_checkpoint(const mms_store *s, const char *ns, double now_s, size_t max_bytes,
                         opbuf *out, size_t *kept, size_t *total)
{
    size_t n = 0, cap = 0, pl = strlen(ns);
    mckpt_series *v = NULL;
    char **keys = NULL; /* "kind\0name\0container" copies of the key parts */
    int rc = 0;
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &s->series);
    while ((e = opmap_next(&it))) {
        if (strncmp(e->key, ns, pl) != 0 || e->key[pl] != SEP[0])
            continue;
        const mms_seriesv *sv = e->value;
        char *k = strdup(e->key + pl + 1); /* kind SEP name SEP container */
        char *name = k ? strchr(k, SEP[0]) : NULL;
        char *ctr = name ? strchr(name + 1, SEP[0]) : NULL;
        if (!k || !name || !ctr) {
            free(k);
            if (!k) {
                rc = -ENOMEM;
                break;
            }
            continue;
        }
        *name++ = '\0';
        *ctr++ = '\0';
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            mckpt_series *nv = realloc(v, nc * sizeof *nv);
            char **nk = nv ? realloc(keys, nc * sizeof *nk) : NULL;
            if (nv)
                v = nv;
            if (!nk) {
                free(k);
                rc = -ENOMEM;
                break;
            }
            keys = nk;
            cap = nc;
        }
        keys[n] = k;
        v[n++] = (mckpt_series){k, name, ctr, sv->last_update_s, &sv->cpu, &sv->mem};
    }
    *total = n;
    if (rc == 0)
        rc = mckpt_encode(ns, now_s, v, n, max_bytes, out, kept);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(v);
    return rc;
}

typedef struct restore_ctx {
    mms_store *s;
    const char *ns;
    opbuf key;
} restore_ctx;

/* A restored series joins what is held (samples taken since the start add up). */
static int restore_one(const char *kind, const char *name, const char *container, double updated_s,
                       ehist *cpu, ehist *mem, void *ud)
{
    restore_ctx *c = ud;
    opbuf_reset(&c->key);
    int rc = opbuf_printf(&c->key, "%s" SEP "%s" SEP "%s" SEP "%s", c->ns, kind, name, container);
    mms_seriesv *v = rc == 0 ? get_series(c->s, opbuf_str(&c->key)) : NULL;
    if (v) {
        ehist_merge(&v->cpu, cpu);
        ehist_merge(&v->mem, mem);
        if (updated_s > v->last_update_s)
            v->last_update_s = updated_s;
    }
    ehist_release(cpu);
    ehist_release(mem);
    return rc == -ENOMEM ? rc : 0;
}

int mms_store_restore(mms_store *s, const char *ns, const char *json, size_t len, operr *err)
{
    restore_ctx c = {s, ns, {0}};
    opbuf_init(&c.key, 4 * MPROV_NAME_MAX);
    size_t skipped = 0;
    int rc = mckpt_decode(json, len, ns, &s->cpu_o, &s->mem_o, restore_one, &c, &skipped, err);
    opbuf_release(&c.key);
    if (rc >= 0 && skipped)
        OPLOG_W("metrics-server: checkpoint of namespace %s: %zu series skipped (damaged, or "
                "other histogram options)",
                ns, skipped);
    return rc;
}

/* ---- the provider ---------------------------------------------------------------------- */

typedef struct mms mms;

typedef struct nsreg {
    mms *p;
    char *ns;
    uint64_t last_ok_ms; /* loop time of the last good list; 0 = never */
    int fetched;
    ophttp_req *req;  /* in flight, or NULL */
    uint64_t sent_ns; /* ... since */
} nsreg;

typedef struct mjob {
    struct mjob *next;
    mprov_request rq; /* deep copy (pods dropped: the mapping is in the store) */
    mprov_workload *w;
    char *ns;
    mprov_cb cb;
    void *ud;
    int ready; /* answer at the next kick */
    int error;
    char msg[OPERR_MAX];
} mjob;

struct mms {
    mprov prov; /* first */
    uv_loop_t *loop;
    krest *rest;
    mms_opts o;
    mms_store *store;
    mprov_obs obs;
    opmap regs; /* ns → nsreg */
    mjob *jobs;
    uv_timer_t tick, kick;
    int open_handles;
    int closing;
};

static void job_free(mjob *j)
{
    for (size_t i = 0; i < j->rq.nworkloads; i++) {
        free((char *)j->w[i].kind);
        free((char *)j->w[i].name);
    }
    free(j->w);
    free(j->ns);
    free(j);
}

static void reg_free(void *p)
{
    nsreg *r = p;
    free(r->ns);
    free(r);
}

static void mms_free(mms *p)
{
    mjob *j = p->jobs;
    while (j) {
        mjob *n = j->next;
        job_free(j);
        j = n;
    }
    opmap_release(&p->regs, reg_free);
    mms_store_free(p->store);
    free(p);
}

static void handle_closed(uv_handle_t *h)
{
    mms *p = h->data;
    if (--p->open_handles == 0)
        mms_free(p);
}

/* Answer every ready job (from the loop, never inside request_stats). */
static void on_kick(uv_timer_t *t)
{
    mms *p = t->data;
    mjob **pp = &p->jobs;
    while (*pp && !p->closing) {
        mjob *j = *pp;
        if (!j->ready) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        mprov_result res = {.error = j->error, .error_msg = j->error ? j->msg : "", .ns = j->ns};
        if (!j->error) {
            double eval = j->rq.eval_time_s ? (double)j->rq.eval_time_s : (double)time(NULL);
            if (mms_store_stats(p->store, &j->rq, eval, &res) != 0)
                res = (mprov_result){
                    .error = -ENOMEM, .error_msg = "metrics-server: out of memory", .ns = j->ns};
        }
        res.queries = 0;
        j->cb(&res, j->ud);
        job_free(j);
        pp = &p->jobs; /* the callback may have added or answered jobs */
    }
}

static void kick(mms *p)
{
    if (!p->closing)
        uv_timer_start(&p->kick, on_kick, 0, 0);
}

static void mark_ns(mms *p, const char *ns, int error, const char *msg)
{
    for (mjob *j = p->jobs; j; j = j->next) {
        if (j->ready || strcmp(j->ns, ns) != 0)
            continue;
        j->ready = 1;
        j->error = error;
        snprintf(j->msg, sizeof j->msg, "%s", msg);
    }
    kick(p);
}

static void on_list(const krest_reply *r, void *ud)
{
    nsreg *g = ud;
    mms *p = g->p;
    operr e;
    operr_clear(&e);
    int rc = 0;
    g->req = NULL;
    if (p->closing)
        return;
    const char *why = NULL;
    if (r->error != 0) {
        why = "transport";
        rc = r->error == OPHTTP_ETIMEOUT   ? -ETIMEDOUT
             : r->error == OPHTTP_ECONNECT ? -ECONNREFUSED
                                           : -EIO;
        operr_set(&e, rc, "metrics-server: namespace '%s': %s", g->ns,
                  r->error_msg && *r->error_msg ? r->error_msg : "transport error");
    } else if (r->http_status < 200 || r->http_status > 299) {
        why = "http";
        rc = -EREMOTEIO;
        operr_set(&e, rc, "metrics-server: namespace '%s': HTTP %ld: %s", g->ns, r->http_status,
                  r->status && r->status->message[0] ? r->status->message : "(no Status)");
    } else {
        int n = mms_store_ingest(p->store, g->ns, r->body, r->body_len, (double)time(NULL), &e);
        if (n < 0) {
            why = "decode";
            rc = n;
            operr_wrap(&e, rc, "metrics-server: namespace '%s'", g->ns);
        } else {
            g->last_ok_ms = uv_now(p->loop);
            g->fetched = 1;
        }
    }
    mprov_obs_query(&p->obs, "metrics-server", g->sent_ns, why);
    if (rc != 0)
        OPLOG_W("%s", e.msg);
    mark_ns(p, g->ns, rc, e.msg);
}

static int fetch(mms *p, nsreg *g)
{
    if (g->req)
        return 0;
    opbuf path;
    opbuf_init(&path, 1024);
    int rc = kpath(&path, &KRES_POD_METRICS, g->ns, NULL, NULL);
    g->sent_ns = uv_hrtime();
    if (rc == 0)
        rc = krest_call(p->rest, "GET", opbuf_str(&path), NULL, NULL, 0, on_list, g, &g->req);
    opbuf_release(&path);
    return rc;
}

static int sample_all(mms *p)
{
    int first_rc = 0;
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &p->regs);
    while ((e = opmap_next(&it))) {
        nsreg *g = e->value;
        int rc = fetch(p, g);
        if (rc != 0) {
            operr err;
            operr_set(&err, rc, "metrics-server: namespace '%s': cannot start the list", g->ns);
            mark_ns(p, g->ns, rc, err.msg);
            if (first_rc == 0)
                first_rc = rc;
        }
    }
    return first_rc;
}

static void on_tick(uv_timer_t *t)
{
    sample_all(t->data);
}

int mms_sample_now(mprov *p)
{
    mms *m = p->state;
    return m->closing ? -EINVAL : sample_all(m);
}

static int copy_request(mjob *j, const mprov_request *rq)
{
    j->rq = *rq;
    j->ns = strdup(rq->ns);
    j->w = calloc(rq->nworkloads ? rq->nworkloads : 1, sizeof *j->w);
    j->rq.nworkloads = 0;
    if (!j->ns || !j->w)
        return -ENOMEM;
    j->rq.ns = j->ns;
    j->rq.workloads = j->w;
    for (size_t i = 0; i < rq->nworkloads; i++) {
        j->w[i].kind = strdup(rq->workloads[i].kind ? rq->workloads[i].kind : "");
        j->w[i].name = strdup(rq->workloads[i].name ? rq->workloads[i].name : "");
        j->rq.nworkloads = i + 1;
        if (!j->w[i].kind || !j->w[i].name)
            return -ENOMEM;
    }
    return 0;
}

static int mms_request_stats(void *state, const mprov_request *rq, mprov_cb cb, void *ud)
{
    mms *p = state;
    if (p->closing || !cb || !rq || !rq->ns || !*rq->ns || !(rq->percentile > 0) ||
        !(rq->percentile < 1) || rq->window_s == 0)
        return -EINVAL;
    mjob *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    int rc = copy_request(j, rq);
    if (rc == 0)
        rc = mms_store_map(p->store, rq, (double)time(NULL));
    nsreg *g = opmap_get(&p->regs, rq->ns);
    if (rc == 0 && !g) {
        g = calloc(1, sizeof *g);
        if (g)
            g->ns = strdup(rq->ns);
        if (!g || !g->ns || opmap_put(&p->regs, rq->ns, g, NULL) != 0) {
            if (g)
                reg_free(g);
            rc = -ENOMEM;
        } else {
            g->p = p;
        }
    }
    if (rc != 0) {
        job_free(j);
        return rc;
    }
    j->cb = cb;
    j->ud = ud;
    j->next = p->jobs;
    p->jobs = j;
    int fresh = g->fetched && !g->req && uv_now(p->loop) - g->last_ok_ms < p->o.interval_ms;
    if (fresh) {
        j->ready = 1;
        kick(p);
    } else {
        rc = fetch(p, g);
        if (rc != 0) {
            p->jobs = j->next;
            job_free(j);
            return rc;
        }
    }
    return 0;
}

static void mms_close(void *state)
{
    mms *p = state;
    p->closing = 1;
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &p->regs);
    while ((e = opmap_next(&it))) {
        nsreg *g = e->value;
        if (g->req)
            ophttp_cancel(g->req);
        g->req = NULL;
    }
    uv_close((uv_handle_t *)&p->tick, handle_closed);
    uv_close((uv_handle_t *)&p->kick, handle_closed);
}

static const mprov_ops mms_ops = {
    .name = "metrics-server",
    .request_stats = mms_request_stats,
    .close = mms_close,
};

int mms_new(mprov **out, uv_loop_t *loop, krest *rest, const mms_opts *o, operr *err)
{
    mms *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    if (o)
        p->o = *o;
    if (!p->o.interval_ms)
        p->o.interval_ms = 30000;
    int rc = mprov_obs_init(&p->obs, p->o.metrics, err);
    if (rc == 0)
        rc = mms_store_new(&p->store, &p->o);
    if (rc != 0) {
        free(p);
        return rc;
    }
    opmap_init(&p->regs);
    p->loop = loop;
    p->rest = rest;
    p->prov = (mprov){.ops = &mms_ops, .state = p};
    uv_timer_init(loop, &p->tick);
    uv_timer_init(loop, &p->kick);
    p->tick.data = p->kick.data = p;
    p->open_handles = 2;
    uv_timer_start(&p->tick, on_tick, p->o.interval_ms, p->o.interval_ms);
    *out = &p->prov;
    return 0;
}

int mms_checkpoint(mprov *p, const char *ns, size_t max_bytes, opbuf *out, size_t *kept,
                   size_t *total)
{
    if (!p || p->ops != &mms_ops)
        return -EINVAL;
    return mms_store_checkpoint(((mms *)p->state)->store, ns, (double)time(NULL), max_bytes, out,
                                kept, total);
}

int mms_restore(mprov *p, const char *ns, const char *json, size_t len, operr *err)
{
    if (!p || p->ops != &mms_ops)
        return operr_set(err, -EINVAL, "not the metrics-server provider");
    return mms_store_restore(((mms *)p->state)->store, ns, json, len, err);
}

int mms_is(const mprov *p)
{
    return p && p->ops == &mms_ops;
}

const char *mms_namespace_at(const mprov *p, size_t i)
{
    const mms *m = p->state;
    opmap_iter it;
    opmap_entry *e;
    opmap_iter_init(&it, &m->regs);
    for (size_t k = 0; (e = opmap_next(&it)); k++)
        if (k == i)
            return e->key;
    return NULL;
}

size_t mms_namespaces(const mprov *p)
{
    return opmap_count(&((const mms *)p->state)->regs);
}

size_t mms_series(const mprov *p)
{
    return mms_store_series(((const mms *)p->state)->store);
}
