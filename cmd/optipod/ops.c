#include "ops.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <uv.h>

#include "controller/controller.h"
#include "obs/process.h"

obs_reg *ops_new(operr *err)
{
    obs_reg *r = obs_reg_new("optipod", 10000);
    if (!r) {
        operr_set(err, -ENOMEM, "metrics registry: out of memory");
        return NULL;
    }
    static const char *const lb[] = {"version", "libuv", "libcurl", "openssl", "cjson", NULL};
    static const char *const ll[] = {"lease", NULL};
    obs_fam *build =
        obs_gauge(r, "optipod_build_info",
                  "Always 1: the version of optipod and of the libraries it runs on.", lb, err);
    obs_fam *leader = obs_gauge(r, "optipod_is_leader",
                                "1 while this process holds the leader Lease and may write "
                                "(lease=\"none\": election off, always 1), else 0.",
                                ll, err);
    if (!build || !leader || obs_process_register(r, err) != 0 || ctl_metrics_define(r, err) != 0) {
        obs_reg_free(r);
        return NULL;
    }
    const char *lv[] = {OPTIPOD_VERSION, uv_version_string(),
                        curl_version_info(CURLVERSION_NOW)->version,
                        OpenSSL_version(OPENSSL_VERSION_STRING), cJSON_Version()};
    obs_set(build, lv, 1);
    return r;
}

void ops_set_leader(obs_reg *r, const char *lease, int leading)
{
    const char *lv[] = {lease && *lease ? lease : "none"};
    obs_set(obs_find(r, "optipod_is_leader"), lv, leading ? 1 : 0);
}

typedef struct ops_watched {
    obs_reg *r;
    uv_loop_t *loop;
    ctl *const *ctlp;
} ops_watched;

static void count_handle(uv_handle_t *h, void *arg)
{
    size_t *n = arg;
    n[uv_is_active(h) ? 0 : 1]++;
}

static void collect(void *ud)
{
    ops_watched *w = ud;
    size_t n[2] = {0, 0};
    uv_walk(w->loop, count_handle, n);
    obs_fam *hf = obs_find(w->r, "optipod_loop_handles");
    obs_set(hf, (const char *const[]){"active"}, (double)n[0]);
    obs_set(hf, (const char *const[]){"inactive"}, (double)n[1]);
    obs_fam *qf = obs_find(w->r, "optipod_queue_depth");
    if (!*w->ctlp) {
        obs_clear(qf);
        return;
    }
    ctl_queue_depth d;
    ctl_queue_depth_get(*w->ctlp, &d);
    obs_set(qf, (const char *const[]){"queued"}, (double)d.queued);
    obs_set(qf, (const char *const[]){"delayed"}, (double)d.delayed);
    obs_set(qf, (const char *const[]){"running"}, (double)d.running);
}

int ops_watch(obs_reg *r, uv_loop_t *loop, ctl *const *ctlp, operr *err)
{
    static const char *const ls[] = {"state", NULL};
    /* one per process: the registry lives as long as it */
    static ops_watched w;
    w = (ops_watched){r, loop, ctlp};
    if (!obs_gauge(r, "optipod_loop_handles",
                   "libuv handles the event loop holds (timers, sockets, signals, polls), "
                   "active (started) or inactive (stopped, or closing): a leak shows as growth.",
                   ls, err) ||
        !obs_gauge(r, "optipod_queue_depth",
                   "Workloads in the reconcile queue: queued (ready), delayed (waiting for "
                   "their time), running.",
                   ls, err))
        return -EINVAL;
    return obs_reg_collector(r, collect, &w);
}

typedef struct loop_fams {
    oploopmon *m;
    obs_fam *max, *cpu, *stalls;
} loop_fams;

static void collect_loop(void *ud)
{
    loop_fams *x = ud;
    uint64_t now = uv_hrtime();
    obs_set(x->max, NULL, (double)oploopmon_window_max_ns(x->m, now) / 1e9);
    obs_set(x->cpu, NULL, (double)oploopmon_window_cpu_max_ns(x->m, now) / 1e9);
    obs_set(x->stalls, (const char *[]){"0.005"}, (double)x->m->over_5ms);
    obs_set(x->stalls, (const char *[]){"0.1"}, (double)x->m->over_100ms);
}

int ops_loopmon(obs_reg *r, oploopmon *m, operr *err)
{
    static const char *const lo[] = {"over", NULL};
    static loop_fams x; /* one loop, one registry per process */
    x.m = m;
    x.max = obs_gauge(r, "optipod_loop_stall_max_seconds",
                      "Longest stretch the event loop ran callbacks without polling for I/O, "
                      "over the last 10 s.",
                      NULL, err);
    x.cpu = obs_gauge(
        r, "optipod_loop_stall_cpu_max_seconds",
        "Most CPU time the loop thread spent in one such stretch, over the last 10 s.", NULL, err);
    x.stalls = obs_counter(r, "optipod_loop_stalls_total",
                           "Stretches between two polls longer than `over` seconds.", lo, err);
    if (!x.max || !x.cpu || !x.stalls)
        return -EINVAL;
    if (obs_reg_collector(r, collect_loop, &x) != 0) {
        operr_set(err, -ENOMEM, "metrics registry: out of memory");
        return -ENOMEM;
    }
    return 0;
}

void ops_free(obs_reg *r)
{
    obs_reg_free(r);
}
