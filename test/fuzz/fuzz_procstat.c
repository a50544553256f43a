/* libFuzzer target for the process_* collector's /proc parsers: any input is
 * either refused with -EINVAL or yields finite, non-negative numbers (the
 * fields the collector turns into metrics never go negative). */
#include "obs/process.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static void check_num(double v)
{
    if (!isfinite(v) || v < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    obs_proc_stat st;
    int rc = obs_proc_parse_stat((const char *)data, size, &st);
    if (rc != 0 && rc != -EINVAL)
        abort();
    if (rc == 0) {
        check_num(st.utime_ticks);
        check_num(st.stime_ticks);
        check_num(st.start_ticks);
        check_num(st.vsize_bytes);
        check_num(st.rss_pages);
    }
    double bt = -1;
    rc = obs_proc_parse_btime((const char *)data, size, &bt);
    if (rc != 0 && rc != -EINVAL)
        abort();
    if (rc == 0)
        check_num(bt);
    return 0;
}
