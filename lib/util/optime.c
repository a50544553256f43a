#include "util/optime.h"

#include <errno.h>
#include <stdio.h>

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar. Counts from
 * March 1st of a 400-year era so that the leap day falls last in its year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;
}

/* The inverse: the date of a day number. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* n decimal digits at s into *v, each within [lo, hi] after reading; -1 when not. */
static int field(const char *s, int n, int lo, int hi, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    if (x < lo || x > hi)
        return -1;
    *v = x;
    return 0;
}

int optime_parse(const char *s, int flags, optime *t)
{
    int Y, M, D, h, m, sec;
    /* Each check reads only up to the first byte that does not match, so a short
     * string fails at its NUL and nothing past it is read. */
    if (!s || field(s, 4, 0, 9999, &Y) || s[4] != '-' || field(s + 5, 2, 1, 12, &M) ||
        s[7] != '-' || field(s + 8, 2, 1, 31, &D) || D > month_days(Y, M) || s[10] != 'T' ||
        field(s + 11, 2, 0, 23, &h) || s[13] != ':' || field(s + 14, 2, 0, 59, &m) ||
        s[16] != ':' || field(s + 17, 2, 0, 59, &sec))
        return -EINVAL;
    const char *p = s + 19;
    int32_t nsec = 0;
    if (*p == '.') {
        int nd = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, nd++)
            if (nd < 9)
                nsec = nsec * 10 + (*p - '0');
        if (nd == 0)
            return -EINVAL;
        for (; nd < 9; nd++)
            nsec *= 10;
    }
    int off = 0;
    if (*p == 'Z') {
        p++;
    } else if ((*p == '+' || *p == '-') && !(flags & OPTIME_UTC)) {
        int oh, om;
        if (field(p + 1, 2, 0, 23, &oh) || p[3] != ':' || field(p + 4, 2, 0, 59, &om))
            return -EINVAL;
        off = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    t->sec = days_from_civil(Y, M, D) * 86400 + h * 3600 + m * 60 + sec - off;
    t->nsec = nsec;
    return 0;
}

int optime_format(optime t, int digits, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    /* 0000-01-01 and 9999-12-31 as day numbers bound what four digits write */
    if (digits < 0 || digits > 9 || t.nsec < 0 || t.nsec > 999999999 ||
        t.sec < days_from_civil(0, 1, 1) * 86400 || t.sec >= days_from_civil(10000, 1, 1) * 86400)
        return -EINVAL;
    int64_t days = t.sec / 86400, rem = t.sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    int mo, d;
    civil_from_days(days, &y, &mo, &d);
    char frac[11] = "";
    if (digits) {
        int32_t f = t.nsec;
        for (int i = digits; i < 9; i++)
            f /= 10;
        snprintf(frac, sizeof frac, ".%0*d", digits, (int)f);
    }
    int n = snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", (int)y, mo, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60), frac);
    if (n < 0 || (size_t)n >= cap) {
        if (cap)
            out[0] = '\0';
        return -EINVAL;
    }
    return n;
}

int optime_ns(optime t, uint64_t *ns)
{
    /* whole seconds below UINT64_MAX's, so any nsec fits */
    if (t.sec < 0 || (uint64_t)t.sec >= UINT64_MAX / 1000000000ULL)
        return -ERANGE;
    *ns = (uint64_t)t.sec * 1000000000ULL + (uint64_t)t.nsec;
    return 0;
}

optime optime_from_ns(uint64_t ns)
{
    return (optime){.sec = (int64_t)(ns / 1000000000ULL), .nsec = (int32_t)(ns % 1000000000ULL)};
}
