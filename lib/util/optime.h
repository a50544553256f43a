/*
 * optime: RFC 3339 date-times, the one parser and formatter of the project.
 *
 * Read as Kubernetes reads them (Go's time.Parse with time.RFC3339, behind
 * metav1.Time and MicroTime), which is RFC 3339 section 5.6 with its range
 * rules and Go's choices where the RFC leaves one:
 *   YYYY-MM-DDThh:mm:ss[.fraction](Z|+hh:mm|-hh:mm)
 *  - every field has exactly its digits; month 01-12, day 01 to the month's
 *    length in that year (no February 30th), hour 00-23, minute 00-59,
 *    second 00-59 (Go refuses the leap second 60, and so POSIX time has none);
 *  - 'T' and 'Z' in upper case only, as Go writes and reads them;
 *  - a fraction is '.' and at least one digit, any number of them; digits
 *    past the ninth are dropped (truncated to the nanosecond, as Go does);
 *  - an offset is +hh:mm or -hh:mm with hh 00-23 and mm 00-59, applied to
 *    give UTC; OPTIME_UTC refuses it (only 'Z', what the API server writes);
 *  - nothing may follow.
 * Years 0000-9999 are read; callers that keep time in a narrower type (ns
 * since 1970 in 64 bits, optime_ns()) range-check there.
 *
 * Pure functions; nothing is allocated.
 */
#ifndef OPTIPOD_UTIL_OPTIME_H
#define OPTIPOD_UTIL_OPTIME_H

#include <stddef.h>
#include <stdint.h>

typedef struct optime {
    int64_t sec;  /* seconds since 1970-01-01T00:00:00Z, negative before */
    int32_t nsec; /* 0 to 999999999 */
} optime;

#define OPTIME_UTC 1 /* flag: only a 'Z' offset */

/* "9999-12-31T23:59:59.999999999Z" and its terminator. */
#define OPTIME_STR_MAX 31

/* Parse all of s. Returns 0, or -EINVAL when s is NULL or not such a time. */
int optime_parse(const char *s, int flags, optime *t);

/* Write t in UTC as "2006-01-02T15:04:05Z", with `digits` (0 to 9) fraction
 * digits (truncated) before the Z. Returns the length written (a terminator
 * follows), or -EINVAL when digits is out of range, t's year is outside
 * 0000-9999 or out has fewer than length + 1 bytes (out is "" then). */
int optime_format(optime t, int digits, char *out, size_t cap);

/* Nanoseconds since the epoch of t: 0, or -ERANGE when before 1970 or from
 * 2554-07-21T23:34:33Z on (64 bits of ns end 0.709551615 s later). */
int optime_ns(optime t, uint64_t *ns);
/* The optime of ns nanoseconds since the epoch. */
optime optime_from_ns(uint64_t ns);

#endif
