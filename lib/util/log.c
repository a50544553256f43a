#include "util/log.h"

#include <stdarg.h>
#include <sys/time.h>
#include <time.h>

static int log_verbosity;
static FILE *log_sink;

void oplog_set_verbosity(int v)
{
    log_verbosity = v;
}

int oplog_verbosity(void)
{
    return log_verbosity;
}

void oplog_set_sink(FILE *f)
{
    log_sink = f;
}

void oplog(int level, const char *fmt, ...)
{
    FILE *out = log_sink ? log_sink : stderr;
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    fprintf(out, "%c%02d%02d %02d:%02d:%02d.%06ld optipod] ", level, tm.tm_mon + 1, tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}
