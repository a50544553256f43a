/* tprov: see tprov.h. */
#include "support/tprov.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static int tp_request(void *state, const mprov_request *rq, mprov_cb cb, void *ud)
{
    tprov *t = state;
    t->calls++;
    mprov_workload_stats ws[16];
    size_t n = rq->nworkloads < 16 ? rq->nworkloads : 16;
    for (size_t i = 0; i < n; i++)
        ws[i] =
            (mprov_workload_stats){rq->workloads[i].kind, rq->workloads[i].name, t->n, t->c, NULL};
    mprov_result r = {.error = t->fail ? -ECONNREFUSED : 0,
                      .error_msg = t->fail ? "test provider: connection refused" : "",
                      .ns = rq->ns,
                      .nworkloads = t->fail ? 0 : n,
                      .workloads = ws,
                      .queries = 1};
    cb(&r, ud);
    return 0;
}

static void tp_close(void *state)
{
    free(state);
}

tprov *tprov_new(const char *name, int fail, const mprov_container_stats *cs, size_t n)
{
    ASSERT(n <= TPROV_MAX_CONTAINERS);
    tprov *t = calloc(1, sizeof *t);
    ASSERT_NOT_NULL(t);
    t->ops = (mprov_ops){name, tp_request, tp_close};
    t->p.ops = &t->ops;
    t->p.state = t;
    t->fail = fail;
    t->n = n;
    memcpy(t->c, cs, n * sizeof *cs);
    return t;
}
