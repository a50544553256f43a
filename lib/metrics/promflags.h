/*
 * mpromflags: the Prometheus backend flags, shared by the controller,
 * `optipod plan` and `optipod backtest`, so the three spell and check them
 * the same way:
 *
 *   --prometheus-url URL                 (plan/backtest: --prometheus too)
 *   --prometheus-bearer-token-file FILE  (--prometheus-token-file: the old name)
 *   --prometheus-basic-auth-file FILE    one line user:password, re-read per query
 *   --prometheus-ca-file FILE
 *   --prometheus-header 'Name: value'    repeatable, e.g. 'X-Scope-OrgID: team-a'
 *
 *   mpromflags pf; mpromflags_init(&pf);
 *   opflag flags[] = {MPROMFLAGS_OPFLAGS(&pf), ...};
 *   ... opflag_parse ...
 *   mprom_opts o = {.timeout_ms = ...};
 *   if (mpromflags_opts(&pf, &o, &err) != 0) { fprintf(stderr, "%s\n", err.msg); exit 2; }
 *
 * Ownership: the strings stay argv's; the mprom_opts filled borrows them
 * and the flags' header array (keep pf alive until mprom_new() returns).
 */
#ifndef OPTIPOD_METRICS_PROMFLAGS_H
#define OPTIPOD_METRICS_PROMFLAGS_H

#include "metrics/prometheus.h"
#include "util/err.h"
#include "util/flags.h"

typedef struct mpromflags {
    const char *url;
    const char *token_file;
    const char *basic_auth_file;
    const char *ca_file;
    const char *hdr_v[MPROM_MAX_HEADERS];
    opflag_list headers;
} mpromflags;

void mpromflags_init(mpromflags *f);

/* The flag table entries (five plus the old token-file spelling). */
#define MPROMFLAGS_OPFLAGS(pf)                                                                     \
    {"prometheus-url", 0, OPFLAG_STRING, &(pf)->url,                                               \
     "Prometheus-compatible base URL for usage (Prometheus, Thanos, Mimir, VictoriaMetrics)"},     \
        {"prometheus-bearer-token-file", 0, OPFLAG_STRING, &(pf)->token_file,                      \
         "bearer token file for --prometheus-url (re-read on every query)"},                       \
        {"prometheus-token-file", 0, OPFLAG_STRING, &(pf)->token_file,                             \
         "the old name of --prometheus-bearer-token-file"},                                        \
        {"prometheus-basic-auth-file", 0, OPFLAG_STRING, &(pf)->basic_auth_file,                   \
         "file with one line user:password for basic auth (re-read on every query)"},              \
        {"prometheus-ca-file", 0, OPFLAG_STRING, &(pf)->ca_file,                                   \
         "CA bundle for an https --prometheus-url"},                                               \
    {                                                                                              \
        "prometheus-header", 0, OPFLAG_LIST, &(pf)->headers,                                       \
            "extra header 'Name: value' for every query, e.g. 'X-Scope-OrgID: team-a' "            \
            "(repeatable)"                                                                         \
    }

/* Check the flags and fill o's url, auth, CA and headers (other fields are
 * left as the caller set them). Returns 0, 1 when no URL was given (nothing
 * filled; an auth flag without a URL is an error), or -EINVAL with err
 * naming the flag and the bad value:
 *   flag --prometheus-header: "X-Scope-OrgID team-a": want 'Name: value' (no colon) */
int mpromflags_opts(const mpromflags *f, mprom_opts *o, operr *err);

#endif
