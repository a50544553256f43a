#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int operr_set(operr *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

int operr_wrap(operr *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char prefix[OPERR_MAX];
    char old[OPERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return code;
}

void operr_clear(operr *err)
{
    if (err)
        err->msg[0] = '\0';
}
