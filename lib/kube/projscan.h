/*
 * kprojs: kproj projections straight from JSON bytes, with no cJSON tree.
 *
 * Parsing every list item and watch event into a cJSON DOM only to copy a few
 * fields out of it cost 2.5-3x the CPU of this (bench_projscan). Here the
 * bytes are tokenized once with jscan (validating the whole document and
 * noting where the wanted members are), then the small spans that matter
 * (labels, containers, statuses, ...) are walked twice: once to measure, once
 * to fill ONE malloc'd block (see kube/project.h).
 *
 * For the informer: a watch line goes through kprojs_event_project() (one
 * validating scan for the envelope and the object); a LIST body through
 * kprojs_list_parse() (validates it all) then kprojs_list_next() +
 * kprojs_from_valid() per item (no second validation). Measured by
 * test/bench/bench_projscan.c.
 *
 * This is the one projection of the project: kproj_from_json() prints a tree
 * and comes here. What it accepts is strict RFC 8259 (util/jscan.h); the
 * first occurrence of a duplicate member name counts, as cJSON's
 * GetObjectItemCaseSensitive() did; labels, annotations and requests keep
 * every duplicate, in order; a "\u0000" ends a string; metadata.generation
 * outside int64 reads as INT64_MIN; of two PodResizePending=True conditions
 * the first reason is kept. test/fuzz/kref.h keeps the cJSON walker this
 * replaced as the tests' oracle (its documented differences: sloppy JSON
 * cJSON accepts, `size` without padding).
 *
 * The kproj_extend_fn hook wants a cJSON object: kube/cache parses the
 * object's bytes for it (the caches that have one hold few objects).
 *
 * Ownership: projections are freed with kproj_free(). kprojs_list and
 * kprojs_event borrow the input bytes (spans and tokens point into them) and
 * own nothing: there is nothing to release.
 */
#ifndef OPTIPOD_KUBE_PROJSCAN_H
#define OPTIPOD_KUBE_PROJSCAN_H

#include <stddef.h>

#include "kube/project.h"
#include "kube/watch.h"
#include "util/jscan.h"

/* Project one object (a list item or a watch event's object). Returns 0,
 * -EINVAL (malformed JSON, not an object, no metadata.name string, unknown
 * kind, an array over 65535 entries) or -ENOMEM. */
int kprojs_from_bytes(const char *json, size_t len, enum kproj_kind kind, kproj_obj **out);

/* The same for bytes already validated by kprojs_list_parse() or
 * kprojs_event_parse(): a list item or an event's object. Skips the second
 * validation (about twice as fast). Any other input is still handled safely,
 * but malformed JSON may then project instead of failing. */
int kprojs_from_valid(const char *json, size_t len, enum kproj_kind kind, kproj_obj **out);

/* A LIST response body: {"metadata":{"resourceVersion","continue"},"items":[...]}. */
typedef struct kprojs_list {
    jscan_tok rv;    /* metadata.resourceVersion: JSCAN_STR, or JSCAN_NONE */
    jscan_tok cont;  /* metadata.continue: JSCAN_STR, or JSCAN_NONE */
    jscan_tok items; /* JSCAN_ARR spanning the array, or JSCAN_NONE (absent or null) */
    jscan it;        /* iterator state for kprojs_list_next() */
} kprojs_list;

/* Validate the whole body and find its parts. Accepts what kwatch_list_body()
 * accepts (an object whose metadata is an object and whose items is an array,
 * null or absent), strict JSON only. Returns 0 or -EINVAL. */
int kprojs_list_parse(const char *body, size_t len, kprojs_list *l);
/* The next element of items (any JSON value; kprojs_from_bytes() refuses the
 * non-objects; kprojs_from_valid() projects it): 1 with its bytes in *item and *len, 0 when there
 * are no more. */
int kprojs_list_next(kprojs_list *l, const char **item, size_t *len);

/* One line of a watch stream: {"type":..,"object":{..}}. */
typedef struct kprojs_event {
    enum kwatch_ev_type type;
    const char *object; /* the object's bytes, '{' to '}' */
    size_t object_len;
    jscan_tok rv;       /* object.metadata.resourceVersion: JSCAN_STR, or JSCAN_NONE */
    int code;           /* ERROR: object.code (0 when absent) */
    jscan_tok reason;   /* ERROR: object.reason: JSCAN_STR, or JSCAN_NONE */
    jscan_tok message;  /* ERROR: object.message: JSCAN_STR, or JSCAN_NONE */
    long retry_after_s; /* ERROR: object.details.retryAfterSeconds, -1 when absent */
} kprojs_event;

/* Same acceptance as kwatch_event_parse() (strict JSON; whitespace may follow).
 * Returns 0 or -EINVAL (then *ev is zeroed, retry_after_s -1). */
int kprojs_event_parse(const char *line, size_t len, kprojs_event *ev);

/* kprojs_event_parse() and, for ADDED/MODIFIED/DELETED, the object's
 * projection from the same single scan (the watch hot path). Returns the
 * event's code (0 or -EINVAL); *proj_rc gets the projection's (0, -EINVAL,
 * -ENOMEM; 0 with *out NULL for BOOKMARK and ERROR), and *out the projection. */
int kprojs_event_project(const char *line, size_t len, enum kproj_kind kind, kprojs_event *ev,
                         kproj_obj **out, int *proj_rc);

/* The C-string value of a JSCAN_STR token (up to a "\u0000") into buf,
 * NUL-terminated. Returns 0, -ENOENT when t is not a string (buf = "") or
 * -E2BIG when it does not fit (buf = ""). */
int kprojs_str(const jscan_tok *t, char *buf, size_t cap);

#endif
