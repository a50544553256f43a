/*
 * bt: the backtest replay. See backtest.h.
 */
#include "backtest/backtest.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * The sliding windows. Each series is ranked once (a radix sort of its
 * values); the window is then a bit set over ranks with a count per 64-bit
 * word: a sample enters and leaves in O(1), and the k-th smallest is found
 * by walking word counts from the nearer end (for P90 a few words from the
 * top) and selecting within one word. No comparison of values per step.
 */
typedef struct rwin {
    uint32_t *rank; /* rank of each sample; NO_RANK for a non-finite value */
    double *val;    /* the values in rank order (ascending) */
    uint64_t *bits; /* ranks inside the window */
    uint32_t *cnt;  /* set bits per word */
    size_t cap, nwords, n;
    /* The percentile's lower rank, followed as samples come and go: a step
     * moves it by a bit or two, so it is rarely searched from scratch. */
    uint32_t qr;
    size_t qbelow; /* ranks inside below qr */
    int qvalid;
    /* The interpolation for a window of qn samples (0: none yet): the size
     * is the same from step to step once the window is full. */
    size_t qn, qlo;
    double qf;
    uint32_t top; /* the largest rank inside, when n > 0 */
} rwin;

#define NO_RANK UINT32_MAX

/* The ranking sorts 64-bit words: a value's top 32 bits (exponent and the
 * high mantissa, the sign being 0) above the sample's index, by the value
 * part only, in three passes of 11-bit digits. Values equal in those bits
 * are then ordered by their full bits, a short run at a time. */
enum { RDIG = 11, RPASS = 3, RSHORT = 32 };

struct bt_ws {
    rwin cpu, mem;
    uint64_t *key[2];
    size_t scap;
    uint32_t hist[RPASS][1 << RDIG];
};

static void rwin_free(rwin *w)
{
    free(w->rank);
    free(w->val);
    free(w->bits);
    free(w->cnt);
}

int bt_ws_new(bt_ws **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -ENOMEM;
}

void bt_ws_free(bt_ws *ws)
{
    if (!ws)
        return;
    rwin_free(&ws->cpu);
    rwin_free(&ws->mem);
    for (int i = 0; i < 2; i++)
        free(ws->key[i]);
    free(ws);
}

static int grow(void **p, size_t n, size_t size)
{
    void *q = realloc(*p, (n ? n : 1) * size);
    if (!q)
        return -ENOMEM;
    *p = q;
    return 0;
}

/* A finite sample as ranked: negatives (and -0.0) count as 0. */
static double clamp0(double v)
{
    return v > 0 ? v : 0;
}

/* The bits of a value >= 0: their order is the numbers' order. */
static uint64_t vbits(double v)
{
    uint64_t k;
    memcpy(&k, &v, sizeof k);
    return k;
}

/* Order by full value, then by index: the order a stable sort on the whole
 * value gives, so equal values keep their samples' order. */
static int cmp_full(const void *a, const void *b, void *arg)
{
    const bt_point *p = arg;
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    uint64_t vx = vbits(clamp0(p[(uint32_t)x].v)), vy = vbits(clamp0(p[(uint32_t)y].v));
    if (vx != vy)
        return vx < vy ? -1 : 1;
    return (uint32_t)x < (uint32_t)y ? -1 : (uint32_t)x > (uint32_t)y;
}

/* Order k[0..len), words whose top 32 bits are equal, by full value then
 * index (they are in index order now). Almost always a run of one or two, or
 * of repeats of one value (already in order); a long run of distinct values
 * (numbers a few units apart, high above 1) is sorted without a quadratic
 * cost. */
static void sort_run(uint64_t *k, size_t len, const bt_point *p)
{
    size_t i = 1;
    while (i < len && vbits(clamp0(p[(uint32_t)k[i - 1]].v)) <= vbits(clamp0(p[(uint32_t)k[i]].v)))
        i++;
    if (i == len)
        return;
    if (len > RSHORT) {
        qsort_r(k, len, sizeof *k, cmp_full, (void *)p);
        return;
    }
    for (; i < len; i++) { /* insertion: stable, so equal values keep index order */
        uint64_t x = k[i], vx = vbits(clamp0(p[(uint32_t)x].v));
        size_t j = i;
        for (; j > 0 && vbits(clamp0(p[(uint32_t)k[j - 1]].v)) > vx; j--)
            k[j] = k[j - 1];
        k[j] = x;
    }
}

/* Rank the n values of p into w. */
static int rwin_prepare(bt_ws *ws, rwin *w, const bt_point *p, size_t n)
{
    if (n >= NO_RANK)
        return -E2BIG;
    if (n > w->cap) {
        size_t words = (n + 63) / 64;
        if (grow((void **)&w->rank, n, sizeof *w->rank) ||
            grow((void **)&w->val, n, sizeof *w->val) ||
            grow((void **)&w->bits, words, sizeof *w->bits) ||
            grow((void **)&w->cnt, words, sizeof *w->cnt))
            return -ENOMEM;
        w->cap = n;
    }
    if (n > ws->scap) {
        for (int i = 0; i < 2; i++)
            if (grow((void **)&ws->key[i], n, sizeof *ws->key[i]))
                return -ENOMEM;
        ws->scap = n;
    }
    w->nwords = (n + 63) / 64;
    w->n = 0;
    w->qvalid = 0;
    w->qn = 0;
    if (w->nwords) { /* an empty series has nothing allocated yet */
        memset(w->bits, 0, w->nwords * sizeof *w->bits);
        memset(w->cnt, 0, w->nwords * sizeof *w->cnt);
    }
    const uint64_t dmask = (1u << RDIG) - 1;
    uint32_t(*hist)[1 << RDIG] = ws->hist;
    memset(ws->hist, 0, sizeof ws->hist);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        double v = p[i].v;
        if (!isfinite(v)) {
            w->rank[i] = NO_RANK;
            continue;
        }
        uint64_t k = (vbits(clamp0(v)) >> 32 << 32) | i;
        ws->key[0][m++] = k;
        for (int b = 0; b < RPASS; b++)
            hist[b][(k >> (32 + RDIG * b)) & dmask]++;
    }
    int cur = 0;
    for (int b = 0; b < RPASS; b++) {
        uint32_t *h = hist[b];
        int shift = 32 + RDIG * b;
        if (m == 0 || h[(ws->key[cur][0] >> shift) & dmask] == m)
            continue; /* every key has this digit: nothing moves */
        uint32_t sum = 0;
        for (size_t d = 0; d <= dmask; d++) {
            uint32_t c = h[d];
            h[d] = sum;
            sum += c;
        }
        const uint64_t *ks = ws->key[cur];
        uint64_t *kd = ws->key[!cur];
        for (size_t i = 0; i < m; i++)
            kd[h[(ks[i] >> shift) & dmask]++] = ks[i];
        cur = !cur;
    }
    uint64_t *k = ws->key[cur];
    for (size_t a = 0, e; a < m; a = e) {
        for (e = a + 1; e < m && k[e] >> 32 == k[a] >> 32; e++)
            ;
        if (e - a > 1)
            sort_run(k + a, e - a, p);
    }
    for (size_t r = 0; r < m; r++) {
        uint32_t i = (uint32_t)k[r];
        w->rank[i] = (uint32_t)r;
        w->val[r] = clamp0(p[i].v);
    }
    return 0;
}

/* The rank of the k-th smallest (0-based) value inside (k < n). */
static uint32_t rwin_kth(const rwin *w, size_t k)
{
    size_t acc = 0;
    if (k < w->n / 2) {
        size_t i = 0;
        while (acc + w->cnt[i] <= k)
            acc += w->cnt[i++];
        uint64_t x = w->bits[i];
        for (size_t j = acc; j < k; j++)
            x &= x - 1;
        return (uint32_t)(i * 64 + (size_t)__builtin_ctzll(x));
    }
    size_t kk = w->n - 1 - k, i = w->nwords - 1; /* the kk-th largest */
    while (acc + w->cnt[i] <= kk)
        acc += w->cnt[i--];
    uint64_t x = w->bits[i];
    for (size_t j = acc; j < kk; j++)
        x &= ~(1ull << (63 - __builtin_clzll(x)));
    return (uint32_t)(i * 64 + 63 - (size_t)__builtin_clzll(x));
}

/* The next rank inside after r, or NO_RANK. */
static uint32_t rwin_next(const rwin *w, uint32_t r)
{
    size_t i = (size_t)r >> 6;
    uint64_t x = (r & 63) == 63 ? 0 : w->bits[i] & (~0ull << ((r & 63) + 1));
    while (!x) {
        if (++i >= w->nwords)
            return NO_RANK;
        x = w->bits[i];
    }
    return (uint32_t)(i * 64 + (size_t)__builtin_ctzll(x));
}

/* The previous rank inside before r, or NO_RANK. */
static uint32_t rwin_prev(const rwin *w, uint32_t r)
{
    size_t i = (size_t)r >> 6;
    uint64_t x = w->bits[i] & ((1ull << (r & 63)) - 1);
    while (!x) {
        if (i-- == 0)
            return NO_RANK;
        x = w->bits[i];
    }
    return (uint32_t)(i * 64 + 63 - (size_t)__builtin_clzll(x));
}

static void rwin_add(rwin *w, uint32_t r)
{
    w->bits[r >> 6] |= 1ull << (r & 63);
    w->cnt[r >> 6]++;
    if (w->n == 0 || r > w->top)
        w->top = r;
    w->n++;
    if (w->qvalid && r < w->qr)
        w->qbelow++;
}

static void rwin_del(rwin *w, uint32_t r)
{
    w->bits[r >> 6] &= ~(1ull << (r & 63));
    w->cnt[r >> 6]--;
    w->n--;
    if (w->n && r == w->top)
        w->top = rwin_prev(w, r);
    if (!w->qvalid)
        return;
    if (r < w->qr)
        w->qbelow--;
    else if (r == w->qr && (w->qr = rwin_next(w, r)) == NO_RANK)
        w->qvalid = 0; /* it was the largest: found again when asked */
}

/* eng_percentile's interpolation (Prometheus' quantile_over_time). */
static double rwin_q(rwin *w, double q)
{
    if (w->n == 0)
        return NAN;
    if (w->qn != w->n) {
        double rank = q * (double)(w->n - 1);
        w->qlo = (size_t)floor(rank);
        w->qf = rank - (double)w->qlo;
        w->qn = w->n;
    }
    size_t lo = w->qlo;
    if (lo >= w->n - 1)
        return w->val[w->top];
    if (!w->qvalid) {
        w->qr = rwin_kth(w, lo);
        w->qbelow = lo;
        w->qvalid = 1;
    }
    for (; w->qbelow > lo; w->qbelow--)
        w->qr = rwin_prev(w, w->qr);
    for (; w->qbelow < lo; w->qbelow++)
        w->qr = rwin_next(w, w->qr);
    uint32_t r = w->qr;
    double f = w->qf;
    return f == 0 ? w->val[r] : w->val[r] * (1 - f) + w->val[rwin_next(w, r)] * f;
}

static int sorted(const bt_point *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (p[i].t < p[i - 1].t)
            return 0;
    return 1;
}

/* The sliding window over one series: [lo, hi) are the samples inside. */
typedef struct slide {
    const bt_point *p;
    size_t n, lo, hi;
    rwin *w;
} slide;

static void slide_to(slide *s, int64_t t, int64_t window_s)
{
    while (s->hi < s->n && s->p[s->hi].t <= t) {
        if (s->w->rank[s->hi] != NO_RANK)
            rwin_add(s->w, s->w->rank[s->hi]);
        s->hi++;
    }
    while (s->lo < s->hi && s->p[s->lo].t < t - window_s) {
        if (s->w->rank[s->lo] != NO_RANK)
            rwin_del(s->w, s->w->rank[s->lo]);
        s->lo++;
    }
}

/* The working set at (or just before) time t, 0 when none. */
static double mem_at(const bt_series *s, int64_t t)
{
    size_t lo = 0, hi = s->nmem;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->mem[mid].t <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? s->mem[lo - 1].v : 0;
}

static void apply(const eng_res *r, eng_rl *cur, int64_t *nchanges)
{
    if (r->decision != ENG_APPLY)
        return;
    int changed = !cur->has_req || cur->req != r->req;
    cur->has_req = true;
    cur->req = r->req;
    if (r->has_lim) {
        changed |= !cur->has_lim || cur->lim != r->lim;
        cur->has_lim = true;
        cur->lim = r->lim;
    }
    *nchanges += changed;
}

static int same_rl(const eng_rl *a, const eng_rl *b)
{
    return a->has_req == b->has_req && a->has_lim == b->has_lim && a->req == b->req &&
           a->lim == b->lim;
}

static int same_input(const eng_container *a, const eng_container *b)
{
    const eng_usage *x = &a->use, *y = &b->use;
    /* NaN (no CPU samples) equals NaN here: identical bits, identical answer */
    int cpu = x->cpu_cores == y->cpu_cores || (isnan(x->cpu_cores) && isnan(y->cpu_cores));
    return cpu && x->mem_bytes == y->mem_bytes && x->mem_peak_bytes == y->mem_peak_bytes &&
           x->samples == y->samples && x->span_s == y->span_s && x->oom_count == y->oom_count &&
           x->oom_last == y->oom_last && x->oom_mem_bytes == y->oom_mem_bytes &&
           same_rl(&a->cpu, &b->cpu) && same_rl(&a->mem, &b->mem);
}

int bt_replay(bt_ws *ws, const eng_policy *p, const eng_container *today, const bt_series *s,
              const bt_period *per, bt_result *out)
{
    memset(out, 0, sizeof *out);
    if (per->interval_s <= 0 || per->window_s <= 0 || per->to < per->from ||
        !sorted(s->cpu, s->ncpu) || !sorted(s->mem, s->nmem))
        return -EINVAL;
    for (size_t i = 1; i < s->noom; i++)
        if (s->oom[i] < s->oom[i - 1])
            return -EINVAL;
    int rc = rwin_prepare(ws, &ws->cpu, s->cpu, s->ncpu);
    if (rc == 0)
        rc = rwin_prepare(ws, &ws->mem, s->mem, s->nmem);
    if (rc != 0)
        return rc;
    slide cs = {s->cpu, s->ncpu, 0, 0, &ws->cpu}, ms = {s->mem, s->nmem, 0, 0, &ws->mem};
    eng_container c = *today;
    memset(&c.use, 0, sizeof c.use);
    out->cpu_today = c.cpu;
    out->mem_today = c.mem;
    /* Judge only what follows `from`: the samples before it are history. */
    size_t jc = 0, jm = 0, olo = 0, ohi = 0;
    while (jc < s->ncpu && s->cpu[jc].t <= per->from)
        jc++;
    while (jm < s->nmem && s->mem[jm].t <= per->from)
        jm++;
    double cpu_area = 0, mem_area = 0;
    eng_container prev = {0};
    eng_result r;
    int have = 0;
    int both = s->ncpu > 0 && s->nmem > 0;
    /* The CPU request in cores, recomputed when it changes, not per step. */
    double cores = c.cpu.has_req ? (double)c.cpu.req / 1000.0 : 0;
    for (int64_t t = per->from; t <= per->to; t += per->interval_s) {
        slide_to(&cs, t, per->window_s);
        slide_to(&ms, t, per->window_s);
        while (ohi < s->noom && s->oom[ohi] <= t)
            ohi++;
        while (olo < ohi && s->oom[olo] < t - per->window_s)
            olo++;
        eng_usage *u = &c.use;
        u->cpu_cores = rwin_q(&ws->cpu, p->percentile);
        u->mem_bytes = ws->mem.n ? (int64_t)ceil(rwin_q(&ws->mem, p->percentile)) : -1;
        u->mem_peak_bytes = ws->mem.n ? (int64_t)ceil(ws->mem.val[ws->mem.top]) : 0;
        int64_t nc = (int64_t)ws->cpu.n, nm = (int64_t)ws->mem.n;
        u->samples = both ? (nc < nm ? nc : nm) : (nc > nm ? nc : nm);
        int64_t first = INT64_MAX, last = INT64_MIN;
        if (cs.hi > cs.lo) {
            first = s->cpu[cs.lo].t;
            last = s->cpu[cs.hi - 1].t;
        }
        if (ms.hi > ms.lo) {
            first = s->mem[ms.lo].t < first ? s->mem[ms.lo].t : first;
            last = s->mem[ms.hi - 1].t > last ? s->mem[ms.hi - 1].t : last;
        }
        u->span_s = last >= first ? last - first : 0;
        u->oom_count = (int64_t)(ohi - olo);
        u->oom_last = ohi > olo ? s->oom[ohi - 1] : 0;
        u->oom_mem_bytes = ohi > olo ? (int64_t)mem_at(s, u->oom_last) : 0;
        /* The engine is a pure function of the container and, with an OOM in
         * the window, the time: the same inputs as the last step give the
         * same answer, so it is not asked again (most steps, once the window
         * is full: a percentile moves only when a sample crosses it). */
        if (!have || u->oom_count || !same_input(&prev, &c)) {
            eng_facts f = {.now = t};
            eng_recommend(p, &f, &c, &r);
            prev = c;
            have = 1;
        }
        out->steps++;
        int64_t cc = 0, mc = 0;
        apply(&r.cpu, &c.cpu, &cc);
        apply(&r.mem, &c.mem, &mc);
        if (cc)
            cores = c.cpu.has_req ? (double)c.cpu.req / 1000.0 : 0;
        out->cpu_changes += cc;
        out->mem_changes += mc;
        out->changes += cc || mc;
        out->last = r.decision;
        out->last_reason = r.reason;

        /* (t, next]: judged against what is in force now */
        int64_t next = t + per->interval_s < per->to ? t + per->interval_s : per->to;
        for (; jc < s->ncpu && s->cpu[jc].t <= next; jc++) {
            out->cpu_judged++;
            out->cpu_over += s->cpu[jc].v > cores;
        }
        for (; jm < s->nmem && s->mem[jm].t <= next; jm++) {
            double v = s->mem[jm].v;
            out->mem_judged++;
            out->mem_over_req += c.mem.has_req && v > (double)c.mem.req;
            out->mem_over_lim += c.mem.has_lim && v > (double)c.mem.lim;
            if (v > out->mem_peak || out->mem_judged == 1) {
                out->mem_peak = v;
                out->mem_at_peak = c.mem;
            }
        }
        cpu_area += (double)(next - t) * (c.cpu.has_req ? (double)c.cpu.req : 0);
        mem_area += (double)(next - t) * (c.mem.has_req ? (double)c.mem.req : 0);
        if (t > per->to - per->interval_s)
            break; /* the last step: no overflow past `to` */
    }
    double span = (double)(per->to - per->from);
    out->cpu_req_avg = span > 0 ? cpu_area / span : (c.cpu.has_req ? (double)c.cpu.req : 0);
    out->mem_req_avg = span > 0 ? mem_area / span : (c.mem.has_req ? (double)c.mem.req : 0);
    out->cpu_end = c.cpu;
    out->mem_end = c.mem;
    return 0;
}

void bt_total_add(bt_total *t, const bt_result *r)
{
    t->containers++;
    t->changes += r->changes;
    t->cpu_judged += r->cpu_judged;
    t->cpu_over += r->cpu_over;
    t->mem_judged += r->mem_judged;
    t->mem_over_req += r->mem_over_req;
    t->mem_over_lim += r->mem_over_lim;
    if (r->cpu_today.has_req) {
        t->cpu_today_m += (double)r->cpu_today.req;
        t->cpu_avg_m += r->cpu_req_avg;
    }
    if (r->mem_today.has_req) {
        t->mem_today += (double)r->mem_today.req;
        t->mem_avg += r->mem_req_avg;
    }
}
