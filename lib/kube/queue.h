/*
 * kqueue: a work queue of string keys with client-go's workqueue semantics.
 *
 *  - add(key): dedup while queued (a "dirty" set); a key being processed is
 *    only marked dirty and re-queued by done(), so one key is never processed
 *    twice at once and a burst of adds collapses into one more pass;
 *  - get() hands out the oldest key and marks it processing; done(key) ends it;
 *  - add_rate_limited(key): re-add after max(per-key exponential backoff
 *    5 ms * 2^failures capped at 1000 s, an overall token bucket of 10 qps with
 *    a burst of 100) — client-go's DefaultControllerRateLimiter; forget(key)
 *    resets the key's failures;
 *  - add_after(key, delay): a delayed add (kept once per key, earliest wins);
 *  - shutdown(): adds are refused; get() drains what is queued, then reports
 *    -ESHUTDOWN.
 *
 * The core is pure: every timing call takes now_ms and tick() moves due
 * delayed keys into the queue. kqueue_bind() adds a thin libuv glue: one
 * uv_timer_t that runs tick() when the next delayed key is due and calls the
 * ready callback (from the loop, never from inside add) when keys have been
 * queued; bound callers pass kqueue_now(q) as now. The callback is told once
 * per batch: a consumer at its concurrency limit leaves keys queued and calls
 * get() again itself when a worker frees up.
 *
 * Ownership: kqueue_new() allocates the queue and copies every key; a key
 * returned by get() stays valid until done() for it. kqueue_free() frees it
 * at once when unbound; when bound the timer is closed first and the memory
 * is reclaimed in its close callback (run the loop once more).
 */
#ifndef OPTIPOD_KUBE_QUEUE_H
#define OPTIPOD_KUBE_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define KQUEUE_NEVER UINT64_MAX

typedef struct kqueue kqueue;

typedef struct kqueue_opts {
    uint64_t base_delay_ms; /* per-key first retry delay; 0 = 5 ms */
    uint64_t max_delay_ms;  /* per-key ceiling; 0 = 1000 s */
    double qps;             /* overall bucket refill rate; 0 = 10 */
    int burst;              /* overall bucket size; 0 = 100 */
} kqueue_opts;

typedef void (*kqueue_ready_cb)(kqueue *q, void *ud);

/* opts NULL = defaults. Returns 0 or -ENOMEM. */
int kqueue_new(kqueue **out, const kqueue_opts *opts);
void kqueue_free(kqueue *q);

/* Returns 0, -ESHUTDOWN or -ENOMEM. Adding a queued key is a no-op (0). */
int kqueue_add(kqueue *q, const char *key);
/* 0 with *key, -EAGAIN when nothing is queued, -ESHUTDOWN when shut down and drained. */
int kqueue_get(kqueue *q, const char **key);
/* The key returned by get() (or an equal string) is finished. */
void kqueue_done(kqueue *q, const char *key);
/* Keys queued (not counting processing or delayed ones). */
size_t kqueue_len(const kqueue *q);
size_t kqueue_processing(const kqueue *q);
size_t kqueue_delayed(const kqueue *q);

/* The rate limiter: how long to wait before retrying key (counts a failure). */
uint64_t kqueue_when(kqueue *q, const char *key, uint64_t now_ms);
int kqueue_add_rate_limited(kqueue *q, const char *key, uint64_t now_ms);
void kqueue_forget(kqueue *q, const char *key);
int kqueue_num_requeues(const kqueue *q, const char *key);

/* Add key after delay_ms (0 = now). Returns 0, -ESHUTDOWN or -ENOMEM. */
int kqueue_add_after(kqueue *q, const char *key, uint64_t delay_ms, uint64_t now_ms);
/* Move every delayed key due at now_ms into the queue; returns ms until the
 * next one is due, or KQUEUE_NEVER. */
uint64_t kqueue_tick(kqueue *q, uint64_t now_ms);

void kqueue_shutdown(kqueue *q);
int kqueue_shutting_down(const kqueue *q);

/* libuv glue: returns 0 or a negative errno; bind at most once. */
int kqueue_bind(kqueue *q, uv_loop_t *loop, kqueue_ready_cb ready, void *ud);
/* uv_now() of the bound loop (0 when unbound). */
uint64_t kqueue_now(const kqueue *q);

#endif
