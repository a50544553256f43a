/* libFuzzer target for promql_parse_matrix(), the backtest's range-query
 * answers. Any input must end in 0, -EPROTO or -EREMOTEIO (with a message
 * when not 0); every series handed out has finite values at strictly
 * increasing times. */
#include "metrics/promql.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static int check(const promql_series *s, void *ud)
{
    size_t *points = ud;
    if (!s->pod || !s->container || !s->stat)
        abort();
    for (size_t i = 0; i < s->n; i++) {
        if (!isfinite(s->v[i]) || (i > 0 && s->t[i] <= s->t[i - 1]))
            abort();
        (*points)++;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    operr err;
    err.msg[0] = '\0';
    size_t points = 0;
    int rc = promql_parse_matrix((const char *)data, size, check, &points, &err);
    if (rc != 0 && rc != -EPROTO && rc != -EREMOTEIO && rc != -ENOMEM)
        abort();
    if (rc != 0 && err.msg[0] == '\0')
        abort();
    return 0;
}
