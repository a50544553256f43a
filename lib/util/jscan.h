/*
 * jscan: a strict, bounded, zero-allocation JSON pull tokenizer.
 *
 * The caller pulls one token at a time from a byte range (no NUL terminator
 * needed): begin/end of object and array, keys, strings, numbers, true, false,
 * null, then JSCAN_EOF once the single top-level value and any whitespace after
 * it are consumed. Strings and keys come back as spans into the input between
 * the quotes; when `esc` is set they contain backslash escapes and are read with
 * the decoding helpers below (\u escapes, surrogate pairs included, become UTF-8).
 * jscan_skip() jumps over a whole subtree and widens the token to its bytes, so
 * a caller can keep the span of an object and scan it again later.
 *
 * What is accepted is RFC 8259 with these bounds and choices:
 *  - nesting is capped at JSCAN_DEPTH_MAX (cJSON's limit);
 *  - a number is at most JSCAN_NUM_MAX characters, so a consumer can copy it
 *    into a fixed buffer for strtod();
 *  - lone surrogates (\uD800 without a low half, a stray \uDC00) are refused
 *    (cJSON refuses them too);
 *  - raw bytes >= 0x80 are passed through unchecked (UTF-8 is not validated);
 *  - no byte order mark; whitespace is only space, tab, CR and LF.
 * Compared with cJSON this is stricter on: raw control characters in strings,
 * bad \u hex digits, leading zeros and "1." / "-.5" numbers, other control bytes
 * as whitespace, a BOM, anything after the top-level value, and numbers longer
 * than JSCAN_NUM_MAX.
 *
 * Errors are sticky: once jscan_next() returned -EINVAL (malformed) or -E2BIG
 * (too deep), every later call returns the same. `jscan_offset()` tells where.
 *
 * Ownership: a jscan borrows the input, which must outlive it and its tokens;
 * jscan_init() allocates nothing and there is nothing to release.
 */
#ifndef OPTIPOD_UTIL_JSCAN_H
#define OPTIPOD_UTIL_JSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define JSCAN_DEPTH_MAX 1000 /* containers open at once (cJSON's CJSON_NESTING_LIMIT) */
#define JSCAN_NUM_MAX   255  /* characters in a number literal (fits a stack buffer for strtod) */

enum jscan_type {
    JSCAN_NONE, /* never returned by jscan_next(); marks "absent" in callers' tables */
    JSCAN_OBJ,  /* '{' (after jscan_skip(): the whole object) */
    JSCAN_OBJ_END,
    JSCAN_ARR, /* '[' (after jscan_skip(): the whole array) */
    JSCAN_ARR_END,
    JSCAN_KEY, /* a member name; its ':' is consumed with it */
    JSCAN_STR,
    JSCAN_NUM,
    JSCAN_TRUE,
    JSCAN_FALSE,
    JSCAN_NULL,
    JSCAN_EOF,
};

typedef struct jscan_tok {
    enum jscan_type type;
    const char *p; /* KEY/STR: after the opening quote; others: the first byte */
    size_t n;      /* KEY/STR: raw bytes before the closing quote; NUM/literals: the text */
    int esc;       /* KEY/STR: contains backslash escapes */
} jscan_tok;

typedef struct jscan {
    const char *start, *p, *end;
    int state;
    int depth;
    int err;
    int trusted; /* jscan_init_trusted(): the input was validated before */
    uint8_t objs[(JSCAN_DEPTH_MAX + 7) / 8]; /* bit set: the container at that depth is an object */
} jscan;

void jscan_init(jscan *s, const char *json, size_t len);
/* For bytes a validating scan already accepted (a span kept from it): strings
 * are not looked into and jscan_skip() only matches brackets, several times
 * faster. Still bounded and memory-safe on any input, but tokens from bytes
 * that are not valid JSON are unspecified (errors may be missed). */
void jscan_init_trusted(jscan *s, const char *json, size_t len);
/* The next token into *t. Returns 0 (JSCAN_EOF at the end, repeatedly), -EINVAL
 * for malformed input or -E2BIG past JSCAN_DEPTH_MAX. */
int jscan_next(jscan *s, jscan_tok *t);
/* After a JSCAN_OBJ or JSCAN_ARR token (just returned by jscan_next): consume
 * the rest of that value, validating it, and widen t to span it from its
 * opening to its closing bracket. Other tokens are left as they are. */
int jscan_skip(jscan *s, jscan_tok *t);
/* Containers currently open (0 at the top level). */
int jscan_depth(const jscan *s);
size_t jscan_offset(const jscan *s);

/* ---- string tokens (KEY/STR) from this scanner ------------------------------------------ */

/* Decode into dst (cap bytes, no terminator added) and return the decoded
 * length; U+0000 is written as a 0 byte. -E2BIG when cap is too small; a NULL dst
 * just measures. */
ssize_t jscan_unescape(const jscan_tok *t, char *dst, size_t cap);
/* What a C string holding the value would see (it ends at the first U+0000,
 * as cJSON's valuestring does): its length, a copy (dst needs strlen0 + 1
 * bytes; NUL-terminated), equality with s[0..n), prefix test, and equality of
 * two tokens' values. */
size_t jscan_strlen0(const jscan_tok *t);
size_t jscan_strcpy0(const jscan_tok *t, char *dst);
int jscan_streq(const jscan_tok *t, const char *s, size_t n);
int jscan_strprefix(const jscan_tok *t, const char *s, size_t n);
int jscan_streq_tok(const jscan_tok *a, const jscan_tok *b);

#endif
