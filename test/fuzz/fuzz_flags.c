/*
 * libFuzzer target for opflag_parse(): command lines, split at NUL bytes,
 * against a table holding every flag type (bool, string, int, duration,
 * repeatable list; long names and shorthands). A command line parses or is
 * refused with a message naming what was wrong, never a crash; a duration
 * that parses prints back (Go syntax) to the same value.
 */
#include "util/flags.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "optipod";
    for (char *p = buf; p <= buf + size && argc < MAX_ARGS; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;

    int dry = 0;
    long port = 0, v = 0;
    const char *kc = NULL, *url = NULL;
    uint64_t resync = 0;
    const char *sans_v[4];
    opflag_list sans = {sans_v, 0, 4};
    const opflag table[] = {
        {"dry-run", 0, OPFLAG_BOOL, &dry, "bool"},
        {"kubeconfig", 0, OPFLAG_STRING, &kc, "string"},
        {"prometheus-url", 'p', OPFLAG_STRING, &url, "string"},
        {"webhook-port", 0, OPFLAG_INT, &port, "int"},
        {"v", 'v', OPFLAG_INT, &v, "int"},
        {"resync", 0, OPFLAG_DURATION, &resync, "duration"},
        {"webhook-extra-sans", 0, OPFLAG_LIST, &sans, "list"},
    };
    int rest = -1;
    operr err = {0};
    int rc = opflag_parse(table, (int)(sizeof table / sizeof table[0]), argc, argv, &rest, &err);
    if (rc != 0) {
        if (!err.msg[0])
            abort(); /* a refusal names what was wrong */
    } else {
        if (rest < 1 || rest > argc || sans.n < 0 || sans.n > sans.max)
            abort();
        for (int i = 0; i < sans.n; i++)
            if (!sans.v[i])
                abort();
    }
    /* durations on their own: what parses is whole milliseconds */
    uint64_t ms;
    if (opflag_parse_duration(argv[1] ? argv[1] : "", &ms) == 0) {
        char back[64];
        snprintf(back, sizeof back, "%llums", (unsigned long long)ms);
        uint64_t again;
        if (opflag_parse_duration(back, &again) != 0 || again != ms)
            abort();
    }
    free(buf);
    return 0;
}
