/*
 * obs: a small metrics registry and its Prometheus text exposition (format 0.0.4).
 *
 * Families are counters, gauges or histograms, each with a fixed list of label
 * names; a series is one combination of label values. Hooks record through a
 * family pointer, and every call accepts a NULL family (a module built without
 * a registry records nothing, at no cost):
 *
 *   obs_reg *r = obs_reg_new("optipod", 10000);
 *   static const char *const lbl[] = {"verb", "code", NULL};
 *   obs_fam *errs = obs_counter(r, "optipod_api_request_errors_total", "...", lbl);
 *   const char *v[] = {"PATCH", "409"};
 *   obs_add(errs, v, 1);
 *   obs_reg_write(r, &out);   // # HELP / # TYPE / samples, families sorted by name
 *
 * Bounds: a family holds at most max_series series; a new series past that, or
 * one with a label value longer than OBS_VALUE_MAX, is dropped and counted in
 * <prefix>_metrics_series_dropped_total{family}, which the registry exports
 * itself. Defining a family twice with the same type, labels and buckets
 * returns the first (modules may define what they use without coordination);
 * any other reuse of a name is an error (NULL).
 *
 * Collectors run at the start of every obs_reg_write() to set values read at
 * scrape time (cache sizes, /proc/self).
 *
 * Ownership: the registry owns its families and series; obs_reg_free() frees
 * them all, so family pointers must not be used after it. Single-threaded:
 * call from the loop thread only.
 */
#ifndef OPTIPOD_OBS_OBS_H
#define OPTIPOD_OBS_OBS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define OBS_MAX_LABELS  8
#define OBS_MAX_BUCKETS 32
#define OBS_VALUE_MAX   512 /* bytes of one label value */
#define OBS_NAME_MAX    128

typedef enum obs_type { OBS_COUNTER, OBS_GAUGE, OBS_HISTOGRAM } obs_type;

typedef struct obs_reg obs_reg;
typedef struct obs_fam obs_fam;

/* prefix names the registry's own family (e.g. "optipod" →
 * optipod_metrics_series_dropped_total); max_series caps each family (0 = 10000).
 * NULL when out of memory or the prefix is not a valid metric name. */
obs_reg *obs_reg_new(const char *prefix, size_t max_series);
void obs_reg_free(obs_reg *r);

/* Define or find a family. labels is NULL-terminated (NULL = no labels). Names follow
 * Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*, labels [a-zA-Z_][a-zA-Z0-9_]* not starting
 * with "__"; a counter's name ends in _total; a histogram has no label "le" and 1 to
 * OBS_MAX_BUCKETS strictly increasing finite bounds (+Inf is implied). NULL on a bad
 * definition or a clash (err says which), or out of memory. */
obs_fam *obs_counter(obs_reg *r, const char *name, const char *help, const char *const *labels,
                     operr *err);
obs_fam *obs_gauge(obs_reg *r, const char *name, const char *help, const char *const *labels,
                   operr *err);
obs_fam *obs_histogram(obs_reg *r, const char *name, const char *help, const char *const *labels,
                       const double *bounds, size_t nbounds, operr *err);
/* The family defined under name, or NULL. */
obs_fam *obs_find(obs_reg *r, const char *name);

/* lv: one value per label name, in the family's order (NULL for a family without labels).
 * Counter: add v >= 0 (a negative or NaN v is ignored). Gauge: add v (may be negative). */
void obs_add(obs_fam *f, const char *const *lv, double v);
/* Gauge: set. Counter: set an absolute total kept elsewhere (it must not decrease; a
 * smaller value is ignored). */
void obs_set(obs_fam *f, const char *const *lv, double v);
/* Histogram: one observation. */
void obs_observe(obs_fam *f, const char *const *lv, double v);
/* Remove one series; returns 1 when it existed. */
int obs_remove(obs_fam *f, const char *const *lv);
/* Remove every series whose first n label values equal lv[0..n); returns how many. */
size_t obs_remove_prefix(obs_fam *f, const char *const *lv, size_t n);
/* Remove every series of the family. */
void obs_clear(obs_fam *f);
size_t obs_series(const obs_fam *f);
/* The current value of a counter or gauge series, or of a histogram's count; NaN when
 * the series does not exist (for tests). */
double obs_value(const obs_fam *f, const char *const *lv);
/* Series dropped so far by the caps, over all families. */
uint64_t obs_dropped(const obs_reg *r);

/* Run fn(ud) at the start of every write. Returns 0 or -ENOMEM. */
int obs_reg_collector(obs_reg *r, void (*fn)(void *ud), void *ud);

/* Append the exposition of every family (sorted by name; series sorted by label values):
 * HELP (escaped), TYPE, samples with escaped label values; histograms as cumulative
 * _bucket{le} lines, _sum and _count. Returns 0 or -E2BIG/-ENOMEM from the buffer. */
int obs_reg_write(obs_reg *r, opbuf *out);

/* Format v as the exposition does: shortest text that reads back as v, "NaN", "+Inf",
 * "-Inf". out needs 32 bytes. */
void obs_format_value(double v, char *out, size_t cap);
/* Append s with \, " and newline escaped as in a label value. */
int obs_escape_label(opbuf *out, const char *s);

#endif
