/*
 * btnaive: the backtest replay the slow way, as a reference. See btnaive.h.
 */
#include "support/btnaive.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The replay the slow way: every step gathers its window and takes
 * eng_percentile, as plan_run does once. Only the end state and the counts
 * the engine drives are compared. */
void btnaive_replay(const eng_policy *p, const eng_container *today, const bt_series *s,
                    const bt_period *per, int64_t *changes, eng_rl *cpu_end, eng_rl *mem_end)
{
    eng_container c = *today;
    double *buf = malloc((s->ncpu + s->nmem + 1) * sizeof *buf);
    *changes = 0;
    for (int64_t t = per->from; t <= per->to; t += per->interval_s) {
        size_t n = 0;
        int64_t first = INT64_MAX, last = INT64_MIN;
        memset(&c.use, 0, sizeof c.use);
        for (size_t i = 0; i < s->ncpu; i++)
            if (s->cpu[i].t >= t - per->window_s && s->cpu[i].t <= t) {
                buf[n++] = s->cpu[i].v;
                first = s->cpu[i].t < first ? s->cpu[i].t : first;
                last = s->cpu[i].t > last ? s->cpu[i].t : last;
            }
        size_t ncpu = n;
        c.use.cpu_cores = n ? eng_percentile(buf, n, p->percentile) : NAN;
        n = 0;
        double peak = 0;
        for (size_t i = 0; i < s->nmem; i++)
            if (s->mem[i].t >= t - per->window_s && s->mem[i].t <= t) {
                buf[n++] = s->mem[i].v;
                peak = s->mem[i].v > peak ? s->mem[i].v : peak;
                first = s->mem[i].t < first ? s->mem[i].t : first;
                last = s->mem[i].t > last ? s->mem[i].t : last;
            }
        c.use.mem_bytes = n ? (int64_t)ceil(eng_percentile(buf, n, p->percentile)) : -1;
        c.use.mem_peak_bytes = n ? (int64_t)ceil(peak) : 0;
        c.use.samples = (int64_t)(ncpu < n ? ncpu : n);
        c.use.span_s = last >= first ? last - first : 0;
        for (size_t i = 0; i < s->noom; i++)
            if (s->oom[i] >= t - per->window_s && s->oom[i] <= t) {
                c.use.oom_count++;
                c.use.oom_last = s->oom[i];
                double m = 0;
                for (size_t k = 0; k < s->nmem && s->mem[k].t <= s->oom[i]; k++)
                    m = s->mem[k].v;
                c.use.oom_mem_bytes = (int64_t)m;
            }
        eng_facts f = {.now = t};
        eng_result r;
        eng_recommend(p, &f, &c, &r);
        int ch = 0;
        const eng_res *rs[2] = {&r.cpu, &r.mem};
        eng_rl *cur[2] = {&c.cpu, &c.mem};
        for (int k = 0; k < 2; k++) {
            if (rs[k]->decision != ENG_APPLY)
                continue;
            ch |= !cur[k]->has_req || cur[k]->req != rs[k]->req ||
                  (rs[k]->has_lim && (!cur[k]->has_lim || cur[k]->lim != rs[k]->lim));
            cur[k]->has_req = true;
            cur[k]->req = rs[k]->req;
            if (rs[k]->has_lim) {
                cur[k]->has_lim = true;
                cur[k]->lim = rs[k]->lim;
            }
        }
        *changes += ch;
    }
    *cpu_end = c.cpu;
    *mem_end = c.mem;
    free(buf);
}
