#include "engine/quantity.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

/* Exact arithmetic is done on nanos in 128 bits: the largest accepted value,
 * (2^63-1) units plus 999999999n, needs 93 bits. */
typedef unsigned __int128 kq_u128;

#define NANO          1000000000LL
#define KQ_NANO_LIMIT ((kq_u128)INT64_MAX * NANO + (NANO - 1))
/* Digits of the mantissa: the input plus what six multiplications by 1024 add. */
#define KQ_DIGITS_MAX (KQ_INPUT_MAX + 24)

static const struct {
    char c;
    int exp10;
} dec_suffixes[] = {{'n', -9}, {'u', -6}, {'m', -3}, {'k', 3}, {'M', 6},
                    {'G', 9},  {'T', 12}, {'P', 15}, {'E', 18}};
static const char bin_letters[] = "KMGTPE"; /* Ki = 1024^1 ... Ei = 1024^6 */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parse the suffix `s[0..n)`; sets the decimal and binary exponents and the
 * format. Returns false for anything that is not a Kubernetes suffix. */
static bool parse_suffix(const char *s, size_t n, int64_t *exp10, int *exp1024, kq_fmt *fmt)
{
    *exp10 = 0;
    *exp1024 = 0;
    *fmt = KQ_DECIMAL_SI;
    if (n == 0)
        return true;
    if (n == 1) {
        for (size_t i = 0; i < sizeof dec_suffixes / sizeof dec_suffixes[0]; i++) {
            if (dec_suffixes[i].c == s[0]) {
                *exp10 = dec_suffixes[i].exp10;
                return true;
            }
        }
    }
    if (n == 2 && s[1] == 'i') {
        const char *p = s[0] ? strchr(bin_letters, s[0]) : NULL;
        if (p) {
            *exp1024 = (int)(p - bin_letters) + 1;
            *fmt = KQ_BINARY_SI;
            return true;
        }
        return false;
    }
    if (n >= 2 && (s[0] == 'e' || s[0] == 'E')) {
        size_t i = 1;
        bool neg = false;
        if (s[i] == '+' || s[i] == '-') {
            neg = s[i] == '-';
            i++;
        }
        if (i == n)
            return false;
        int64_t e = 0;
        for (; i < n; i++) {
            if (!is_digit(s[i]))
                return false;
            e = e * 10 + (s[i] - '0');
            if (e > INT32_MAX)
                return false; /* Kubernetes keeps 32 bits of exponent */
        }
        *exp10 = neg ? -e : e;
        *fmt = KQ_DECIMAL_EXPONENT;
        return true;
    }
    return false;
}

/* dig[0..*nd) *= 1024, most significant digit first. */
static void digits_mul1024(unsigned char *dig, size_t *nd)
{
    unsigned carry = 0;
    for (size_t i = *nd; i-- > 0;) {
        unsigned v = dig[i] * 1024u + carry;
        dig[i] = (unsigned char)(v % 10);
        carry = v / 10;
    }
    while (carry) {
        memmove(dig + 1, dig, *nd);
        dig[0] = (unsigned char)(carry % 10);
        carry /= 10;
        (*nd)++;
    }
}

int kq_parse(kq *q, const char *s, size_t len, operr *err)
{
    unsigned char dig[KQ_DIGITS_MAX];
    size_t nd = 0;     /* significant digits stored (leading zeros skipped) */
    int64_t nfrac = 0; /* digits after the point, stored or not */
    bool any_digit = false, neg = false;
    size_t i = 0;

    if (len == 0)
        return operr_set(err, -EINVAL, "quantity \"\": empty");
    if (len > KQ_INPUT_MAX)
        return operr_set(err, -EINVAL, "quantity \"%.24s...\": longer than %d bytes", s,
                         KQ_INPUT_MAX);
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i++;
    }
    for (; i < len && is_digit(s[i]); i++) {
        any_digit = true;
        if (nd > 0 || s[i] != '0')
            dig[nd++] = (unsigned char)(s[i] - '0');
    }
    if (i < len && s[i] == '.') {
        for (i++; i < len && is_digit(s[i]); i++) {
            any_digit = true;
            nfrac++;
            if (nd > 0 || s[i] != '0')
                dig[nd++] = (unsigned char)(s[i] - '0');
        }
    }
    if (!any_digit)
        return operr_set(err, -EINVAL, "quantity \"%.*s\": no digits", (int)len, s);

    int64_t exp10;
    int exp1024;
    kq_fmt fmt;
    if (!parse_suffix(s + i, len - i, &exp10, &exp1024, &fmt))
        return operr_set(err, -EINVAL, "quantity \"%.*s\": unknown suffix \"%.*s\"", (int)len, s,
                         (int)(len - i), s + i);
    for (int k = 0; k < exp1024 && nd > 0; k++)
        digits_mul1024(dig, &nd);

    /* value = dig * 10^(exp10 - nfrac); in nanos the last digit sits at
     * 10^shift. Below 1n the remainder rounds the magnitude up. */
    kq_u128 nano = 0;
    if (nd > 0) {
        int64_t shift = exp10 - nfrac + 9;
        int64_t keep = shift >= 0 ? (int64_t)nd : (int64_t)nd + shift;
        /* 10^28 nanos already exceeds KQ_NANO_LIMIT. */
        if (keep + (shift > 0 ? shift : 0) > 28)
            goto range;
        for (int64_t d = 0; d < keep; d++)
            nano = nano * 10 + dig[d];
        for (int64_t z = 0; z < shift; z++)
            nano *= 10;
        bool sticky = false;
        for (int64_t d = keep < 0 ? 0 : keep; d < (int64_t)nd; d++)
            sticky = sticky || dig[d] != 0;
        if (sticky)
            nano++;
        if (nano > KQ_NANO_LIMIT)
            goto range;
    }
    q->units = (int64_t)(nano / NANO);
    q->nanos = (int32_t)(nano % NANO);
    if (neg) {
        q->units = -q->units;
        q->nanos = -q->nanos;
    }
    q->fmt = fmt;
    return 0;
range:
    return operr_set(err, -EINVAL, "quantity \"%.*s\": out of range (more than 2^63-1 units)",
                     (int)len, s);
}

int kq_parse_str(kq *q, const char *s, operr *err)
{
    return kq_parse(q, s, strlen(s), err);
}

static kq_u128 abs_nanos(const kq *q, bool *neg)
{
    *neg = q->units < 0 || q->nanos < 0;
    kq_u128 u = q->units < 0 ? (kq_u128)(-(q->units + 1)) + 1 : (kq_u128)q->units;
    kq_u128 n = (kq_u128)(q->nanos < 0 ? -q->nanos : q->nanos);
    return u * NANO + n;
}

/* Append the decimal digits of v at buf[*off]. */
static int put_u128(char *buf, size_t size, size_t *off, kq_u128 v)
{
    char tmp[40];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    if (*off + n >= size)
        return -ENOSPC;
    while (n)
        buf[(*off)++] = tmp[--n];
    buf[*off] = '\0';
    return 0;
}

static int put_str(char *buf, size_t size, size_t *off, const char *s)
{
    size_t n = strlen(s);
    if (*off + n >= size)
        return -ENOSPC;
    memcpy(buf + *off, s, n + 1);
    *off += n;
    return 0;
}

/* The canonical spelling (Quantity.CanonicalizeBytes): binary SI only for
 * whole values of magnitude >= 1024, printed with the largest exact power
 * of 1024; otherwise the smallest mantissa whose exponent is a multiple of 3. */
static int format_as(const kq *q, kq_fmt fmt, char *buf, size_t size)
{
    bool neg;
    kq_u128 m = abs_nanos(q, &neg);
    size_t off = 0;
    int rc;

    if (size == 0)
        return -ENOSPC;
    buf[0] = '\0';
    if (m == 0)
        return put_str(buf, size, &off, "0") ? -ENOSPC : 1;
    rc = neg ? put_str(buf, size, &off, "-") : 0;
    if (rc != 0)
        return rc;
    if (fmt == KQ_BINARY_SI && m % NANO == 0 && m / NANO >= 1024) {
        static const char *const bsuf[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
        kq_u128 v = m / NANO;
        int k = 0;
        while (v >= 1024 && v % 1024 == 0 && k < 6) {
            v /= 1024;
            k++;
        }
        rc = put_u128(buf, size, &off, v);
        if (rc == 0)
            rc = put_str(buf, size, &off, bsuf[k]);
        return rc ? rc : (int)off;
    }
    int e = -9;
    while (m % 10 == 0) {
        m /= 10;
        e++;
    }
    while (e % 3 != 0) {
        m *= 10;
        e--;
    }
    rc = put_u128(buf, size, &off, m);
    if (rc != 0)
        return rc;
    if (fmt == KQ_DECIMAL_EXPONENT) {
        char ebuf[16];
        if (e != 0) {
            snprintf(ebuf, sizeof ebuf, "e%d", e);
            rc = put_str(buf, size, &off, ebuf);
            if (rc != 0)
                return rc;
        }
        return (int)off;
    }
    static const char *const dsuf[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
    rc = put_str(buf, size, &off, dsuf[(e + 9) / 3]);
    if (rc != 0)
        return rc;
    return (int)off;
}

int kq_format(const kq *q, char *buf, size_t size)
{
    return format_as(q, q->fmt, buf, size);
}

int kq_format_si(const kq *q, char *buf, size_t size)
{
    return format_as(q, KQ_DECIMAL_SI, buf, size);
}

kq kq_from_int(int64_t units, kq_fmt fmt)
{
    kq q = {.units = units, .nanos = 0, .fmt = fmt};
    return q;
}

kq kq_from_milli(int64_t milli)
{
    kq q = {
        .units = milli / 1000, .nanos = (int32_t)(milli % 1000) * 1000000, .fmt = KQ_DECIMAL_SI};
    return q;
}

/* |q| / 10^(9 - digits) rounded up, with the sign of q. */
static int scaled(const kq *q, kq_u128 div, int64_t *out)
{
    bool neg;
    kq_u128 m = abs_nanos(q, &neg);
    kq_u128 v = m / div + (m % div ? 1 : 0);
    if (v > (kq_u128)INT64_MAX)
        return -ERANGE;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int kq_to_milli(const kq *q, int64_t *out)
{
    return scaled(q, 1000000, out);
}

int kq_to_int(const kq *q, int64_t *out)
{
    return scaled(q, NANO, out);
}

int kq_cmp(const kq *a, const kq *b)
{
    if (a->units != b->units)
        return a->units < b->units ? -1 : 1;
    if (a->nanos != b->nanos)
        return a->nanos < b->nanos ? -1 : 1;
    return 0;
}

int kq_is_zero(const kq *q)
{
    return q->units == 0 && q->nanos == 0;
}

static int parse_resource(const char *s, int64_t *out, bool milli, operr *err)
{
    kq q;
    int rc = kq_parse_str(&q, s, err);
    if (rc != 0)
        return rc;
    if (q.units < 0 || q.nanos < 0)
        return operr_set(err, -EINVAL, "quantity \"%s\": negative", s);
    if ((milli ? kq_to_milli(&q, out) : kq_to_int(&q, out)) != 0)
        return operr_set(err, -EINVAL, "quantity \"%s\": too large in %s", s,
                         milli ? "millicores" : "bytes");
    return 0;
}

int kq_parse_cpu_milli(const char *s, int64_t *milli, operr *err)
{
    return parse_resource(s, milli, true, err);
}

int kq_parse_bytes(const char *s, int64_t *bytes, operr *err)
{
    return parse_resource(s, bytes, false, err);
}

int kq_fmt_cpu_milli(int64_t milli, char *buf, size_t size)
{
    kq q = kq_from_milli(milli);
    return kq_format(&q, buf, size);
}

int kq_fmt_mem_bytes(int64_t bytes, char *buf, size_t size)
{
    kq q = kq_from_int(bytes, bytes % 1024 == 0 ? KQ_BINARY_SI : KQ_DECIMAL_SI);
    return kq_format(&q, buf, size);
}
