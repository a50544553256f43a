#include "kube/queue.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/map.h"

#define KQUEUE_MARK ((void *)1) /* value for set-like maps */

typedef struct kq_wait {
    uint64_t at;
    size_t idx; /* position in the heap */
    char key[];
} kq_wait;

struct kqueue {
    /* FIFO of owned keys: items[head..tail) */
    char **items;
    size_t head, tail, cap;
    opmap dirty;      /* queued or re-added while processing */
    opmap processing; /* key → the string handed out by get() */
    opmap failures;   /* key → (uintptr_t)count */
    /* delayed adds: a min-heap on `at`, indexed by key */
    kq_wait **heap;
    size_t nheap, heapcap;
    opmap waiting; /* key → kq_wait* */
    /* limiter */
    uint64_t base_ms, max_ms;
    double qps, burst, tokens;
    uint64_t bucket_ms;
    int bucket_started;
    int shutting_down;
    /* uv glue */
    uv_loop_t *loop;
    uv_timer_t timer;
    kqueue_ready_cb ready;
    void *ud;
    int notify_pending;
    uint64_t pushes; /* keys ever queued: tells the timer whether the ready callback added any */
};

int kqueue_new(kqueue **out, const kqueue_opts *o)
{
    kqueue *q = calloc(1, sizeof *q);
    *out = NULL;
    if (!q)
        return -ENOMEM;
    opmap_init(&q->dirty);
    opmap_init(&q->processing);
    opmap_init(&q->failures);
    opmap_init(&q->waiting);
    q->base_ms = o && o->base_delay_ms ? o->base_delay_ms : 5;
    q->max_ms = o && o->max_delay_ms ? o->max_delay_ms : 1000 * 1000;
    q->qps = o && o->qps > 0 ? o->qps : 10;
    q->burst = o && o->burst > 0 ? o->burst : 100;
    *out = q;
    return 0;
}

static void kqueue_free_mem(kqueue *q)
{
    for (size_t i = q->head; i < q->tail; i++)
        free(q->items[i]);
    free(q->items);
    for (size_t i = 0; i < q->nheap; i++)
        free(q->heap[i]);
    free(q->heap);
    opmap_release(&q->dirty, NULL);
    opmap_release(&q->processing, free);
    opmap_release(&q->failures, NULL);
    opmap_release(&q->waiting, NULL);
    free(q);
}

static void kqueue_closed(uv_handle_t *h)
{
    kqueue_free_mem(h->data);
}

void kqueue_free(kqueue *q)
{
    if (!q)
        return;
    if (q->loop)
        uv_close((uv_handle_t *)&q->timer, kqueue_closed);
    else
        kqueue_free_mem(q);
}

/* ---- the FIFO ------------------------------------------------------------------------------ */

static int kqueue_push(kqueue *q, char *s)
{
    if (q->tail == q->cap) {
        if (q->head > q->cap / 2) {
            /* Mostly consumed: slide down instead of growing. */
            memmove(q->items, q->items + q->head, (q->tail - q->head) * sizeof *q->items);
            q->tail -= q->head;
            q->head = 0;
        } else {
            size_t ncap = q->cap ? q->cap * 2 : 16;
            char **n = realloc(q->items, ncap * sizeof *n);
            if (!n)
                return -ENOMEM;
            q->items = n;
            q->cap = ncap;
        }
    }
    q->items[q->tail++] = s;
    q->pushes++;
    return 0;
}

static void kqueue_schedule(kqueue *q);

int kqueue_add(kqueue *q, const char *key)
{
    if (q->shutting_down)
        return -ESHUTDOWN;
    if (opmap_get(&q->dirty, key))
        return 0;
    int rc = opmap_put(&q->dirty, key, KQUEUE_MARK, NULL);
    if (rc)
        return rc;
    if (opmap_get(&q->processing, key))
        return 0; /* done() re-queues it */
    char *s = strdup(key);
    if (!s || kqueue_push(q, s) != 0) {
        free(s);
        opmap_del(&q->dirty, key);
        return -ENOMEM;
    }
    kqueue_schedule(q);
    return 0;
}

int kqueue_get(kqueue *q, const char **key)
{
    *key = NULL;
    if (q->head == q->tail)
        return q->shutting_down ? -ESHUTDOWN : -EAGAIN;
    char *s = q->items[q->head];
    int rc = opmap_put(&q->processing, s, s, NULL);
    if (rc)
        return rc;
    q->head++;
    if (q->head == q->tail)
        q->head = q->tail = 0;
    opmap_del(&q->dirty, s);
    *key = s;
    return 0;
}

void kqueue_done(kqueue *q, const char *key)
{
    char *s = opmap_del(&q->processing, key);
    if (!s)
        return;
    /* Added again while it was processed: it goes back in line now. */
    if (opmap_get(&q->dirty, s) && kqueue_push(q, s) == 0) {
        kqueue_schedule(q);
        return;
    }
    if (opmap_get(&q->dirty, s))
        opmap_del(&q->dirty, s); /* could not re-queue (ENOMEM): forget the mark */
    free(s);
}

size_t kqueue_len(const kqueue *q)
{
    return q->tail - q->head;
}

size_t kqueue_processing(const kqueue *q)
{
    return opmap_count(&q->processing);
}

size_t kqueue_delayed(const kqueue *q)
{
    return q->nheap;
}

/* ---- the rate limiter ---------------------------------------------------------------------- */

uint64_t kqueue_when(kqueue *q, const char *key, uint64_t now_ms)
{
    /* Per key: base * 2^failures, capped. */
    uintptr_t fails = (uintptr_t)opmap_get(&q->failures, key);
    opmap_put(&q->failures, key, (void *)(fails + 1), NULL);
    uint64_t per = q->max_ms;
    if (fails < 63) {
        double d = (double)q->base_ms * ldexp(1.0, (int)fails);
        if (d < (double)q->max_ms)
            per = (uint64_t)d;
    }
    /* Overall: a token bucket; a reservation past the tokens waits its turn. */
    if (!q->bucket_started) {
        q->bucket_started = 1;
        q->tokens = q->burst;
        q->bucket_ms = now_ms;
    }
    if (now_ms > q->bucket_ms) {
        q->tokens += (double)(now_ms - q->bucket_ms) * q->qps / 1000.0;
        if (q->tokens > q->burst)
            q->tokens = q->burst;
        q->bucket_ms = now_ms;
    }
    q->tokens -= 1;
    uint64_t bucket = q->tokens >= 0 ? 0 : (uint64_t)ceil(-q->tokens * 1000.0 / q->qps);
    return per > bucket ? per : bucket;
}

int kqueue_add_rate_limited(kqueue *q, const char *key, uint64_t now_ms)
{
    if (q->shutting_down)
        return -ESHUTDOWN;
    return kqueue_add_after(q, key, kqueue_when(q, key, now_ms), now_ms);
}

void kqueue_forget(kqueue *q, const char *key)
{
    opmap_del(&q->failures, key);
}

int kqueue_num_requeues(const kqueue *q, const char *key)
{
    return (int)(uintptr_t)opmap_get(&q->failures, key);
}

/* ---- delayed adds -------------------------------------------------------------------------- */

static void heap_swap(kqueue *q, size_t a, size_t b)
{
    kq_wait *t = q->heap[a];
    q->heap[a] = q->heap[b];
    q->heap[b] = t;
    q->heap[a]->idx = a;
    q->heap[b]->idx = b;
}

static void heap_up(kqueue *q, size_t i)
{
    while (i > 0 && q->heap[(i - 1) / 2]->at > q->heap[i]->at) {
        heap_swap(q, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(kqueue *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->nheap && q->heap[l]->at < q->heap[m]->at)
            m = l;
        if (r < q->nheap && q->heap[r]->at < q->heap[m]->at)
            m = r;
        if (m == i)
            return;
        heap_swap(q, i, m);
        i = m;
    }
}

int kqueue_add_after(kqueue *q, const char *key, uint64_t delay_ms, uint64_t now_ms)
{
    if (q->shutting_down)
        return -ESHUTDOWN;
    if (delay_ms == 0)
        return kqueue_add(q, key);
    uint64_t at = now_ms + delay_ms < now_ms ? KQUEUE_NEVER - 1 : now_ms + delay_ms;
    kq_wait *w = opmap_get(&q->waiting, key);
    if (w) {
        /* Already waiting: keep the earlier time. */
        if (at < w->at) {
            w->at = at;
            heap_up(q, w->idx);
            kqueue_schedule(q);
        }
        return 0;
    }
    if (q->nheap == q->heapcap) {
        size_t ncap = q->heapcap ? q->heapcap * 2 : 16;
        kq_wait **n = realloc(q->heap, ncap * sizeof *n);
        if (!n)
            return -ENOMEM;
        q->heap = n;
        q->heapcap = ncap;
    }
    size_t klen = strlen(key);
    w = malloc(sizeof *w + klen + 1);
    if (!w)
        return -ENOMEM;
    memcpy(w->key, key, klen + 1);
    w->at = at;
    if (opmap_put(&q->waiting, key, w, NULL) != 0) {
        free(w);
        return -ENOMEM;
    }
    w->idx = q->nheap;
    q->heap[q->nheap++] = w;
    heap_up(q, w->idx);
    kqueue_schedule(q);
    return 0;
}

uint64_t kqueue_tick(kqueue *q, uint64_t now_ms)
{
    while (q->nheap && q->heap[0]->at <= now_ms) {
        kq_wait *w = q->heap[0];
        q->nheap--;
        if (q->nheap) {
            q->heap[0] = q->heap[q->nheap];
            q->heap[0]->idx = 0;
            heap_down(q, 0);
        }
        opmap_del(&q->waiting, w->key);
        kqueue_add(q, w->key);
        free(w);
    }
    return q->nheap ? q->heap[0]->at - now_ms : KQUEUE_NEVER;
}

void kqueue_shutdown(kqueue *q)
{
    q->shutting_down = 1;
    for (size_t i = 0; i < q->nheap; i++)
        free(q->heap[i]);
    q->nheap = 0;
    opmap_release(&q->waiting, NULL);
    if (q->loop)
        uv_timer_stop(&q->timer);
}

int kqueue_shutting_down(const kqueue *q)
{
    return q->shutting_down;
}

/* ---- libuv glue ---------------------------------------------------------------------------- */

uint64_t kqueue_now(const kqueue *q)
{
    return q->loop ? uv_now(q->loop) : 0;
}

static void kqueue_on_timer(uv_timer_t *t)
{
    kqueue *q = t->data;
    /* No re-arming from inside: the ready callback is told once per batch, so a
     * consumer that leaves keys queued (at its concurrency limit) is not spun. */
    q->notify_pending = 1;
    kqueue_tick(q, uv_now(q->loop));
    uint64_t pushes = q->pushes;
    if (kqueue_len(q) && q->ready)
        q->ready(q, q->ud);
    q->notify_pending = 0;
    if (q->shutting_down)
        return;
    if (q->pushes != pushes) {
        kqueue_schedule(q); /* keys queued during the callback */
    } else if (q->nheap) {
        uint64_t now = uv_now(q->loop);
        uint64_t d = q->heap[0]->at > now ? q->heap[0]->at - now : 0;
        uv_timer_start(&q->timer, kqueue_on_timer, d, 0);
    }
}

/* Arm the timer for "now" when keys are queued, else for the next delayed key. */
static void kqueue_schedule(kqueue *q)
{
    if (!q->loop || q->shutting_down || q->notify_pending)
        return;
    uint64_t d;
    if (kqueue_len(q)) {
        d = 0;
        q->notify_pending = 1;
    } else if (q->nheap) {
        uint64_t now = uv_now(q->loop);
        d = q->heap[0]->at > now ? q->heap[0]->at - now : 0;
    } else {
        return;
    }
    uv_timer_start(&q->timer, kqueue_on_timer, d, 0);
}

int kqueue_bind(kqueue *q, uv_loop_t *loop, kqueue_ready_cb ready, void *ud)
{
    if (q->loop)
        return -EALREADY;
    int rc = uv_timer_init(loop, &q->timer);
    if (rc)
        return rc;
    q->timer.data = q;
    q->loop = loop;
    q->ready = ready;
    q->ud = ud;
    kqueue_schedule(q);
    return 0;
}
