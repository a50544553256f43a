/* libFuzzer target for kstatus_parse (bodies from the network) and for kpath's
 * escaping. kstatus_parse either fails with -EINVAL and leaves a zeroed struct,
 * or fills bounded, NUL-terminated fields with distinct causes. kpath escapes
 * any name so that only unreserved characters and %XX remain, and decoding the
 * segment gives the name back. */
#include "kube/rest.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

static void check_status(const uint8_t *data, size_t size)
{
    kstatus st;
    int rc = kstatus_parse((const char *)data, size, &st);
    if (rc == -EINVAL) {
        static const kstatus zero;
        if (memcmp(&st, &zero, sizeof(st)) != 0)
            abort();
        return;
    }
    if (rc != 0 || st.code < 0 || st.code > 999 || st.retry_after_s < 0)
        abort();
    if (st.ncauses < 0 || st.ncauses > KSTATUS_MAX_CAUSES)
        abort();
    check_str(st.status, sizeof(st.status));
    check_str(st.reason, sizeof(st.reason));
    check_str(st.message, sizeof(st.message));
    check_str(st.continue_token, sizeof(st.continue_token));
    for (int i = 0; i < st.ncauses; i++) {
        const kstatus_cause *a = &st.causes[i];
        check_str(a->reason, sizeof(a->reason));
        check_str(a->message, sizeof(a->message));
        check_str(a->field, sizeof(a->field));
        for (int j = 0; j < i; j++) {
            const kstatus_cause *b = &st.causes[j];
            if (!strcmp(a->reason, b->reason) && !strcmp(a->message, b->message) &&
                !strcmp(a->field, b->field))
                abort();
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void check_escape(const uint8_t *data, size_t size)
{
    char name[512];
    size_t n = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    n = strlen(name);
    opbuf b;
    opbuf_init(&b, 0);
    if (kpath(&b, &KRES_PODS, "ns", name, NULL) != 0)
        abort();
    const char *prefix = "/api/v1/namespaces/ns/pods";
    if (strncmp(b.data, prefix, strlen(prefix)) != 0)
        abort();
    const char *seg = b.data + strlen(prefix);
    if (n == 0) {
        if (*seg)
            abort();
        opbuf_release(&b);
        return;
    }
    if (*seg++ != '/')
        abort();
    char back[512];
    size_t m = 0;
    for (; *seg; seg++) {
        char c = *seg;
        if (c == '%') {
            int hi = hexval(seg[1]), lo = hi < 0 ? -1 : hexval(seg[2]);
            if (lo < 0)
                abort();
            back[m++] = (char)(hi * 16 + lo);
            seg += 2;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~') {
            back[m++] = c;
        } else {
            abort();
        }
        if (m >= sizeof(back))
            abort();
    }
    if (m != n || memcmp(back, name, n) != 0)
        abort();
    opbuf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_status(data, size);
    check_escape(data, size);
    return 0;
}
