/*
 * kevents: a best-effort recorder of events.k8s.io/v1 Events.
 *
 *   kevents_ref wl = {"apps/v1", "Deployment", "prod", "web", "2f1c..."};
 *   kevents_emit(rec, &wl, KEVENTS_WARNING, "SSAConflict", "Apply",
 *                "field %s is owned by %s", field, manager);
 *
 * Each event carries what the API validates: eventTime (micro-second RFC 3339),
 * reportingController ("optipod.io/controller"), reportingInstance (≤128 bytes),
 * action and reason (≤128), note (≤1024, cut on a UTF-8 boundary), type
 * Normal|Warning and regarding {apiVersion, kind, namespace, name, uid}. The
 * object is named "<regarding.name>.<hex nanoseconds>" (≤253) and lives in the
 * regarding object's namespace ("default" for cluster-scoped objects).
 *
 * Repeats: an emit whose (regarding uid, reason, action, note) matches an event
 * written within the series window (30 min) does not create another object; it
 * merge-patches the existing one's `series: {count, lastObservedTime}` (the
 * first repeat makes count 2, like client-go's EventSeries). A repeat that
 * arrives while that event's previous write is in flight is folded into one
 * follow-up patch carrying the latest count. A 404 on a series patch (the event
 * expired server-side) creates a fresh event instead.
 *
 * Limits, all bounded: a token bucket per regarding object (burst 25, one token
 * per 5 min, like client-go's spam filter) — a limited emit still counts toward
 * its series, so the next allowed patch carries the true count; at most
 * `max_inflight` writes at once (excess emits are dropped); LRUs of recent
 * event keys and of per-object buckets. A failed write is logged and dropped:
 * never retried, except the single 404 → create described above.
 *
 * The pure helpers (kevents_micro_time, kevents_format_*, kevents_utf8_cut,
 * kevents_object_name) build the exact bytes sent, for tests and for reuse.
 *
 * Ownership: kevents_new() allocates the recorder, copies its options and
 * borrows `rest` (which must outlive it). kevents_free() cancels in-flight
 * writes (their callbacks never run) and frees everything at once; it needs no
 * loop turn. Strings passed to kevents_emit() are copied. Loop thread only.
 */
#ifndef OPTIPOD_KUBE_EVENTS_H
#define OPTIPOD_KUBE_EVENTS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "kube/rest.h"
#include "util/buf.h"
#include "util/err.h"

#define KEVENTS_CONTROLLER     "optipod.io/controller"
#define KEVENTS_FIELD_MAX      128  /* action, reason, reportingInstance */
#define KEVENTS_NOTE_MAX       1024 /* note, in bytes */
#define KEVENTS_NAME_MAX       253  /* metadata.name */
#define KEVENTS_MICRO_TIME_LEN 27   /* "2026-11-22T02:02:40.123456Z" */

typedef enum kevents_type { KEVENTS_NORMAL = 0, KEVENTS_WARNING = 1 } kevents_type;

/* The object an event is about (regarding). All borrowed; namespace NULL or ""
 * for cluster-scoped objects; uid may be NULL (then kind/namespace/name key it). */
typedef struct kevents_ref {
    const char *api_version;
    const char *kind;
    const char *namespace;
    const char *name;
    const char *uid;
} kevents_ref;

typedef struct kevents_opts {
    const char *reporting_controller; /* NULL = KEVENTS_CONTROLLER */
    const char *reporting_instance;   /* NULL = $POD_NAME, else the host name */
    uint64_t series_window_ms;        /* repeats within this patch the series; 0 = 30 min */
    unsigned burst;                   /* per-object bucket size; 0 = 25 */
    uint64_t refill_ms;               /* one token per this; 0 = 5 min */
    unsigned max_inflight;            /* concurrent writes; 0 = 16 */
    size_t max_keys;                  /* remembered event keys (LRU); 0 = 4096 */
    size_t max_objects;               /* remembered per-object buckets (LRU); 0 = 4096 */
    /* Wall clock in ns since the epoch (eventTime, names, windows); NULL = the
     * real clock. Tests pass a fake one. */
    uint64_t (*clock_ns)(void *ud);
    void *clock_ud;
} kevents_opts;

/* What happened to emits so far (for metrics and tests). */
typedef struct kevents_stats {
    uint64_t emitted;          /* kevents_emit() calls accepted for processing */
    uint64_t created;          /* POSTs answered 2xx */
    uint64_t patched;          /* series PATCHes answered 2xx */
    uint64_t recreated;        /* series PATCH got 404, a new event was created instead */
    uint64_t rate_limited;     /* emits with no token (counted into a series when one exists) */
    uint64_t dropped_inflight; /* emits dropped because max_inflight writes were running */
    uint64_t failed;           /* writes that failed (logged, dropped) */
    unsigned inflight;         /* writes running now */
} kevents_stats;

typedef struct kevents kevents;

/* opts may be NULL. Returns 0, -EINVAL (bad options, message in err) or -ENOMEM. */
int kevents_new(kevents **out, krest *rest, const kevents_opts *opts, operr *err);
/* Cancels in-flight writes (no callbacks run afterwards) and frees. NULL is a no-op. */
void kevents_free(kevents *rec);

/*
 * Record an event. Returns 0 when a write was started, folded into a running
 * one or counted into a series; -EAGAIN when dropped (rate limit with nothing
 * to fold into, or too many writes in flight); -EINVAL for a missing
 * regarding name/kind/apiVersion, reason or action, or a bad type; -ENOMEM.
 * Callers normally ignore the result: events are best-effort.
 */
int kevents_emit(kevents *rec, const kevents_ref *regarding, kevents_type type, const char *reason,
                 const char *action, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
int kevents_vemit(kevents *rec, const kevents_ref *regarding, kevents_type type, const char *reason,
                  const char *action, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

void kevents_get_stats(const kevents *rec, kevents_stats *out);
/* The reportingInstance in use (after defaulting and truncation). */
const char *kevents_instance(const kevents *rec);

/* ---- pure helpers ----------------------------------------------------------------------- */

/* MicroTime, the ns form of util/optime: ns since the epoch as
 * "2026-11-22T02:02:40.123456Z" into out (size ≥ KEVENTS_MICRO_TIME_LEN + 1).
 * Returns 0 or -EINVAL. */
int kevents_micro_time(uint64_t ns, char *out, size_t size);
/* optime_parse() then optime_ns(): 0 with *ns, or -EINVAL (also for times
 * before 1970 or from 2554-07-21T23:34:33Z on, which ns cannot hold). */
int kevents_parse_time(const char *s, uint64_t *ns);
/* Longest prefix of s[0..len) that is ≤ max bytes and does not split a UTF-8
 * sequence. */
size_t kevents_utf8_cut(const char *s, size_t len, size_t max);
/* "<name>.<hex ns>" capped at KEVENTS_NAME_MAX (the name part is shortened,
 * and a trailing '.' or '-' of it dropped, when it would not fit). Returns 0,
 * -EINVAL or -E2BIG when out is too small. */
int kevents_object_name(const char *regarding_name, uint64_t ns, char *out, size_t size);

/* One event as sent. Strings are borrowed and must already be within limits
 * (kevents_emit truncates; the formatter truncates again defensively). */
typedef struct kevents_event {
    const char *name;      /* metadata.name */
    const char *namespace; /* metadata.namespace */
    uint64_t event_time_ns;
    const char *reporting_controller;
    const char *reporting_instance;
    const char *action;
    const char *reason;
    const char *note;
    kevents_type type;
    kevents_ref regarding;
    int series_count; /* ≥ 2 adds "series"; 0 = none */
    uint64_t series_last_ns;
} kevents_event;

/* The POST body: {"apiVersion":"events.k8s.io/v1","kind":"Event","metadata":
 * {"name","namespace"},"eventTime","series"?,"reportingController",
 * "reportingInstance","action","reason","regarding":{"apiVersion","kind",
 * "namespace"?,"name","uid"?},"note","type"} — compact, in this key order.
 * Appends to out; returns 0, -EINVAL or -E2BIG/-ENOMEM. */
int kevents_format_event(opbuf *out, const kevents_event *ev);
/* The series merge patch: {"series":{"count":N,"lastObservedTime":"..."}}. */
int kevents_format_series_patch(opbuf *out, int count, uint64_t last_ns);

#endif
