/*
 * tprov: a metrics provider with canned answers, for controller tests. Every
 * request is answered at once (from inside mprov_request_stats) with the same
 * container stats for every workload asked about, or with an error when
 * `fail` is set. `calls` counts requests.
 *
 * Ownership: the mprov is handed to the controller (ctl_opts.provider), which
 * frees it, tprov included, through mprov_close; keep the tprov pointer only
 * to read `calls` or flip `fail` while the controller lives.
 */
#ifndef OPTIPOD_TEST_TPROV_H
#define OPTIPOD_TEST_TPROV_H

#include "metrics/provider.h"

#define TPROV_MAX_CONTAINERS 4

typedef struct tprov {
    mprov p; /* &t->p is what the controller gets */
    mprov_ops ops;
    int fail;
    int calls;
    size_t n;
    mprov_container_stats c[TPROV_MAX_CONTAINERS];
} tprov;

/* `name` is what mprov_name() answers ("prometheus", "metrics-server", ...);
 * a string literal (kept, not copied). Fails the test on bad input. */
tprov *tprov_new(const char *name, int fail, const mprov_container_stats *cs, size_t n);

#endif
