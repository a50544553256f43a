#include "metrics/provider.h"

#include <errno.h>
#include <string.h>
#include <uv.h>

int mprov_obs_init(mprov_obs *o, obs_reg *r, operr *err)
{
    /* From 10 ms (a small PromQL query) to 60 s (past the 30 s query timeout). */
    static const double b[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    static const char *const lp[] = {"provider", NULL}, *const lr[] = {"provider", "reason", NULL};
    memset(o, 0, sizeof *o);
    if (!r)
        return 0;
    o->seconds = obs_histogram(r, "optipod_usage_query_duration_seconds",
                               "Usage queries to Prometheus (one POST /api/v1/query) and "
                               "metrics-server (one list of pod metrics), failures included.",
                               lp, b, sizeof b / sizeof b[0], err);
    o->errors = obs_counter(r, "optipod_usage_query_errors_total",
                            "Failed usage queries: transport (no answer), http (an error "
                            "answer), decode (an answer that could not be used).",
                            lr, err);
    return o->seconds && o->errors ? 0 : -EINVAL;
}

void mprov_obs_query(const mprov_obs *o, const char *provider, uint64_t sent_ns, const char *reason)
{
    const char *lp[] = {provider}, *lr[] = {provider, reason};
    obs_observe(o->seconds, lp, (double)(uv_hrtime() - sent_ns) / 1e9);
    if (reason)
        obs_add(o->errors, lr, 1);
}
