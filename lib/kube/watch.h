/*
 * kwatch: the list-then-watch protocol as a pure state machine (no I/O, no clock).
 *
 * In the manner of kube-rs's watcher: the caller feeds inputs (the start, a
 * list page, a list error, a watch event line, the end or failure of a watch
 * stream, a timer, stop) together with the current time, and the machine
 * answers through one emit callback with actions to perform (LIST, WATCH,
 * WAIT, CANCEL the current stream) and deliveries for the cache:
 *
 *   Empty --start--> Listing(page 1..n) --last page--> Watching
 *   Listing --410 on a continue token--> Listing (from scratch, REPLACE aborted)
 *   Watching --ERROR 410 / HTTP 410--> Listing (a full relist: REPLACE)
 *   Watching --closed normally--> Watching (re-watch from the last RV at once;
 *         a close within 1 s with no line at all counts as a failure, so a
 *         server that hangs up at once cannot make us spin)
 *   any --429/5xx/transport error--> Backoff --timer--> the same step again
 *         (a failed watch resumes from the last RV WITHOUT relisting)
 *   any --stop--> Stopped
 *
 * The initial list and every relist are delivered as one consistent set:
 * REPLACE_BEGIN, REPLACE_ITEM per object (pages arrive one by one),
 * REPLACE_END once the last page is in; REPLACE_ABORT when the list had to be
 * restarted (the cache drops the staged set). The cache computes deletions
 * for objects missing from the set at REPLACE_END. Watch events become
 * ADDED/MODIFIED/DELETED; BOOKMARK only moves the resourceVersion.
 *
 * Backoff is 0.8 s doubling to 30 s with 20% jitter (opbackoff), reset once a
 * watch has been healthy for 2 min; a Retry-After is waited at least. Random
 * numbers (jitter, watch timeoutSeconds in 300..600) come from a seeded PRNG
 * in the struct, so runs are reproducible.
 *
 * Ownership: the struct holds everything (RV and continue token are fixed
 * arrays); kwatch_init() allocates nothing and kwatch_release() only marks it
 * stopped. Pointers inside an
 * action (objects, tokens) are borrowed and valid only during the emit call.
 * Do not call into the machine from the emit callback; act after it returns
 * or, for I/O, from the loop.
 */
#ifndef OPTIPOD_KUBE_WATCH_H
#define OPTIPOD_KUBE_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include "util/backoff.h"

#define KWATCH_RV_MAX       64
#define KWATCH_CONTINUE_MAX 1024

enum kwatch_state {
    KWATCH_EMPTY,    /* not started */
    KWATCH_LISTING,  /* a LIST page is in flight */
    KWATCH_WATCHING, /* a WATCH stream is in flight */
    KWATCH_BACKOFF,  /* waiting for the timer before retrying */
    KWATCH_STOPPED,
};

enum kwatch_act {
    KWATCH_DO_LIST,       /* continue_token (NULL = first page), limit */
    KWATCH_DO_WATCH,      /* rv, timeout_s; allowWatchBookmarks=true */
    KWATCH_DO_WAIT,       /* wait_ms, then call kwatch_timer() */
    KWATCH_DO_CANCEL,     /* abandon the current watch stream (no more input from it) */
    KWATCH_REPLACE_BEGIN, /* a full set follows */
    KWATCH_REPLACE_ITEM,  /* raw */
    KWATCH_REPLACE_END,   /* the set is complete: objects not in it were deleted */
    KWATCH_REPLACE_ABORT, /* the set was abandoned: forget the staged items */
    KWATCH_ADDED,         /* raw */
    KWATCH_MODIFIED,      /* raw */
    KWATCH_DELETED,       /* raw (its last state) */
};

typedef struct kwatch_action {
    enum kwatch_act type;
    const char *continue_token; /* DO_LIST */
    int limit;                  /* DO_LIST */
    const char *rv;             /* DO_WATCH */
    int timeout_s;              /* DO_WATCH */
    uint64_t wait_ms;           /* DO_WAIT */
    /* REPLACE_ITEM, ADDED, MODIFIED, DELETED: the object's JSON bytes, validated by the
     * scan of its page or line (kube/projscan.h) */
    const char *raw;
    size_t raw_len;
} kwatch_action;

typedef void (*kwatch_emit_cb)(const kwatch_action *a, void *ud);

enum kwatch_ev_type {
    KWATCH_EV_ADDED,
    KWATCH_EV_MODIFIED,
    KWATCH_EV_DELETED,
    KWATCH_EV_BOOKMARK,
    KWATCH_EV_ERROR,
    KWATCH_EV_NTYPES,
};

/* One watch event line as kwatch_line() read it (kube/projscan.h), borrowed. */
typedef struct kwatch_event {
    enum kwatch_ev_type type;
    const char *rv;      /* object.metadata.resourceVersion, or NULL */
    int code;            /* ERROR: object.code (0 when absent) */
    const char *reason;  /* ERROR: object.reason, or "" */
    const char *message; /* ERROR: object.message, or "" */
    long retry_after_s;  /* ERROR: object.details.retryAfterSeconds, -1 when absent */
    const char *raw;     /* the object's bytes */
    size_t raw_len;
} kwatch_event;

const char *kwatch_ev_type_name(enum kwatch_ev_type t);

typedef struct kwatch_stats {
    uint64_t lists;      /* LIST requests issued (pages) */
    uint64_t relists;    /* full lists after the first (410s, failed lists) */
    uint64_t watches;    /* WATCH requests issued */
    uint64_t reconnects; /* watches resumed after a failure (no relist) */
    uint64_t rewatches;  /* watches resumed after a normal close */
    uint64_t failures;   /* list or watch failures that led to a backoff */
    uint64_t malformed;  /* event lines that did not parse */
    uint64_t events[KWATCH_EV_NTYPES];
} kwatch_stats;

typedef struct kwatch {
    enum kwatch_state state;
    enum kwatch_state after_wait;   /* LISTING or WATCHING: what the timer resumes */
    int limit;                      /* page size for LIST */
    int synced;                     /* the first full set was delivered */
    int replacing;                  /* REPLACE_BEGIN emitted, END/ABORT not yet */
    char rv[KWATCH_RV_MAX];         /* last resourceVersion seen ("" before the first list) */
    char cont[KWATCH_CONTINUE_MAX]; /* continue token of the next page ("" = first) */
    uint64_t watch_start_ms;        /* when the current watch was issued */
    uint64_t watch_lines;           /* lines received on the current watch */
    uint64_t healthy_reset_ms;      /* a watch this old resets the backoff (2 min) */
    uint64_t rng;                   /* xorshift64* state */
    opbackoff backoff;
    kwatch_stats stats;
    kwatch_emit_cb emit;
    void *ud;
} kwatch;

/* limit 0 = 500; seed 0 = a fixed default. */
void kwatch_init(kwatch *w, int limit, uint64_t seed, kwatch_emit_cb emit, void *ud);
void kwatch_release(kwatch *w);

/* Emits DO_LIST for the first page. Returns -EALREADY unless Empty. */
int kwatch_start(kwatch *w, uint64_t now_ms);
/* A LIST page arrived: the whole body, validated and split by kube/projscan.h
 * (no DOM); each object item goes out as REPLACE_ITEM with .raw/.raw_len. A
 * body that is not a list is treated as a failed list (backoff). Returns 0 or
 * -EINVAL. */
int kwatch_list_body(kwatch *w, uint64_t now_ms, const char *body, size_t len);
/* A LIST failed: http_status 0 for a transport error; retry_after_s < 0 when absent. */
void kwatch_list_error(kwatch *w, uint64_t now_ms, long http_status, long retry_after_s);
/* One line of the watch stream, read by kube/projscan.h (malformed lines are
 * counted and skipped); object events carry .raw/.raw_len. */
void kwatch_line(kwatch *w, uint64_t now_ms, const char *line, size_t len);
/* An already-parsed event (borrowed). */
void kwatch_event_in(kwatch *w, uint64_t now_ms, const kwatch_event *ev);
/* The watch stream closed cleanly (timeoutSeconds, server restart with a clean end). */
void kwatch_stream_ended(kwatch *w, uint64_t now_ms);
/* The watch failed: transport error (http_status 0) or a non-2xx answer. */
void kwatch_stream_failed(kwatch *w, uint64_t now_ms, long http_status, long retry_after_s);
/* The wait requested by DO_WAIT is over. */
void kwatch_timer(kwatch *w, uint64_t now_ms);
/* Stop: no more actions are emitted; pending inputs are ignored. */
void kwatch_stop(kwatch *w);

int kwatch_has_synced(const kwatch *w);
const char *kwatch_state_name(enum kwatch_state s);

#endif
