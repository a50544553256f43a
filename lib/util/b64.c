#include "util/b64.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

/* Input bytes per EVP_EncodeBlock call: whole groups, a small stack buffer. */
#define ENC_CHUNK (3 * 256)

int opb64_encode(opbuf *out, const void *in, size_t n)
{
    const unsigned char *p = in;
    unsigned char enc[ENC_CHUNK / 3 * 4 + 1];
    int rc = 0;
    while (n > 0 && !rc) {
        size_t k = n < ENC_CHUNK ? n : ENC_CHUNK;
        int m = EVP_EncodeBlock(enc, p, (int)k);
        rc = opbuf_append(out, enc, (size_t)m);
        p += k;
        n -= k;
    }
    return rc;
}

static int is_alpha64(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

static int is_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int fail(char *why, size_t whycap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t whycap, const char *fmt, ...)
{
    if (whycap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whycap, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int opb64_decode(const char *s, size_t len, char **out, size_t *outlen, char *why, size_t whycap)
{
    *out = NULL;
    *outlen = 0;
    if (len > INT_MAX)
        return fail(why, whycap, "invalid base64: %zu bytes is too long", len);
    /* The base64 characters without white space; every check before OpenSSL sees them. */
    unsigned char *clean = malloc(len + 1);
    if (!clean)
        return -ENOMEM;
    size_t n = 0, pad = 0;
    int rc = 0;
    for (size_t i = 0; i < len && !rc; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (is_space(ch))
            continue;
        if (ch == '=') {
            pad++;
        } else if (!is_alpha64(ch)) {
            rc = ch >= 0x20 && ch < 0x7f
                     ? fail(why, whycap, "invalid base64: character '%c' at offset %zu", ch, i)
                     : fail(why, whycap, "invalid base64: byte 0x%02x at offset %zu", ch, i);
        } else if (pad) {
            rc = fail(why, whycap, "invalid base64: padding before the end");
        }
        clean[n++] = ch;
    }
    if (!rc && pad > 2)
        rc = fail(why, whycap, "invalid base64: %zu '=' at the end (two at most)", pad);
    if (!rc && n % 4 != 0)
        rc = fail(why, whycap, "invalid base64: %zu characters is not a whole number of groups", n);
    char *dst = rc ? NULL : malloc(n / 4 * 3 + 1);
    if (!rc && !dst)
        rc = -ENOMEM;
    if (!rc) {
        /* Cannot fail on what was checked above; the '=' decode as zero bytes, dropped. */
        int m = n ? EVP_DecodeBlock((unsigned char *)dst, clean, (int)n) : 0;
        if (m < 0 || (size_t)m < pad) {
            rc = fail(why, whycap, "invalid base64");
        } else {
            *outlen = (size_t)m - pad;
            dst[*outlen] = '\0';
            *out = dst;
            dst = NULL;
        }
    }
    free(dst);
    free(clean);
    return rc;
}
