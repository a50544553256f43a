/*
 * kq: Kubernetes resource quantities (resource.Quantity), parsed and printed
 * the way the API server does it.
 *
 *   <quantity> ::= <sign>? <digits> ( "." <digits>? )? <suffix>?  |  <sign>? "." <digits> <suffix>?
 *   <suffix>   ::= n u m k M G T P E  |  Ki Mi Gi Ti Pi Ei  |  (e|E) <sign>? <digits>
 *
 * The suffix decides the format a quantity is printed back in: binary SI
 * (Ki..Ei), decimal exponent (e3) or decimal SI (everything else), exactly as
 * resource.Quantity's CanonicalizeBytes does:
 *   "0.5" -> "500m", "1000m" -> "1", "1.5Gi" -> "1536Mi", "512Mi" -> "512Mi",
 *   "0.5Ki" -> "512" (binary below 1024 prints as decimal), "1.1Ki" -> "1126400m",
 *   "1e3" -> "1e3", "1E3" -> "1e3", "129e6" -> "129e6", "12000e-3" -> "12".
 * An exponent form stays an exponent form, as in Kubernetes (its String() of
 * 1e3 is "1e3", not "1k"); kq_format_si() gives the SI spelling. (The API
 * server also keeps an input's own bytes when they already look canonical,
 * e.g. "1E3"; compare values with kq_cmp, never strings.)
 *
 * Representation and precision: the value is exact, held as whole units plus
 * nanos (1e-9). Like Kubernetes, a value with digits below 1n is rounded UP in
 * magnitude to the next nano ("0.0000000001" is 1n) so that asking for some
 * resource never yields none. Unlike Kubernetes, whose inf.Dec path accepts
 * any magnitude (and silently caps binary values at 2^63-1), a quantity whose
 * magnitude does not fit in 2^63-1 whole units is an error (-EINVAL, "out of
 * range"), as is any input longer than KQ_INPUT_MAX bytes or an exponent
 * beyond +-2^31. Also stricter than ParseQuantity, and like
 * the API server's OpenAPI pattern: at least one digit is required ("." and
 * "-" are errors) and no blanks are allowed anywhere.
 *
 * Nothing is allocated; a kq is a plain value.
 */
#ifndef OPTIPOD_ENGINE_QUANTITY_H
#define OPTIPOD_ENGINE_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Longest input kq_parse accepts (real quantities are a dozen bytes). */
#define KQ_INPUT_MAX 256
/* Buffer size that always holds a formatted quantity plus its NUL. */
#define KQ_STR_MAX 48

#define KQ_KI ((int64_t)1 << 10)
#define KQ_MI ((int64_t)1 << 20)
#define KQ_GI ((int64_t)1 << 30)

typedef enum kq_fmt {
    KQ_DECIMAL_SI = 0,  /* 12M, 500m, 3 */
    KQ_BINARY_SI,       /* 12Mi */
    KQ_DECIMAL_EXPONENT /* 12e6 */
} kq_fmt;

typedef struct kq {
    int64_t units; /* whole units (cores, bytes), truncated toward zero */
    int32_t nanos; /* 1e-9 units, |nanos| < 1e9, same sign as units */
    kq_fmt fmt;    /* how kq_format prints it back */
} kq;

/* Parse `len` bytes of `s` (no NUL needed). Returns 0, or -EINVAL with a
 * message naming the input: quantity "1Qi": unknown suffix "Qi". */
int kq_parse(kq *q, const char *s, size_t len, operr *err);
/* Same on a NUL-terminated string. */
int kq_parse_str(kq *q, const char *s, operr *err);

/* Canonical Kubernetes spelling into buf (size >= KQ_STR_MAX is always
 * enough). Returns the length, or -ENOSPC when buf is too small. */
int kq_format(const kq *q, char *buf, size_t size);
/* The same value spelled in decimal SI whatever its format ("1e3" -> "1k"). */
int kq_format_si(const kq *q, char *buf, size_t size);

/* Constructors from exact integers. */
kq kq_from_int(int64_t units, kq_fmt fmt);
/* Milli-units (millicores); the result prints as decimal SI. */
kq kq_from_milli(int64_t milli);

/* Value in milli-units (millicores), rounded up in magnitude like
 * Quantity.MilliValue(). Returns 0 or -ERANGE when it does not fit int64. */
int kq_to_milli(const kq *q, int64_t *out);
/* Value in whole units (bytes), rounded up in magnitude like Quantity.Value(). */
int kq_to_int(const kq *q, int64_t *out);
/* -1, 0, 1 by value (format ignored). */
int kq_cmp(const kq *a, const kq *b);
int kq_is_zero(const kq *q);

/* Parse a resource amount straight to millicores / bytes (rounded up like
 * MilliValue()/Value()). Negative amounts and values beyond int64 are -EINVAL
 * with a message naming the input. */
int kq_parse_cpu_milli(const char *s, int64_t *milli, operr *err);
int kq_parse_bytes(const char *s, int64_t *bytes, operr *err);

/* Clean spellings for recommendations, both canonical so the API server
 * echoes them unchanged (no spurious diffs on the next read):
 *   CPU: "2" when whole cores, else "250m".
 *   Memory: "2Gi" / "1536Mi" / "3Ki" when exact, else plain bytes.
 * Return the length or -ENOSPC. */
int kq_fmt_cpu_milli(int64_t milli, char *buf, size_t size);
int kq_fmt_mem_bytes(int64_t bytes, char *buf, size_t size);

#endif
