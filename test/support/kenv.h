/*
 * kenv: the environment most client tests need — a loop, the fake API server
 * on it, a kubeconfig for it in a temp dir, and a krest client over ophttp —
 * started in one call and torn down in one call that asserts everything closed
 * (uv_loop_close() == 0) and removes the temp dir. Failures end the test.
 */
#ifndef OPTIPOD_TEST_KENV_H
#define OPTIPOD_TEST_KENV_H

#include <uv.h>

#include "http/http.h"
#include "kube/config.h"
#include "kube/rest.h"
#include "support/fakeapi.h"

typedef struct kenv {
    uv_loop_t loop;
    fakeapi *fa;
    kcfg cfg;
    ophttp_client *http;
    krest *rest;
    char dir[64];
} kenv;

/* `name` labels the temp dir (/tmp/<name>.XXXXXX). */
void kenv_start(kenv *e, const char *name);
void kenv_stop(kenv *e);

#endif
