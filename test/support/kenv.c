#include "support/kenv.h"

#include <stdio.h>
#include <stdlib.h>

#include "test.h"

static void kenv_closed(void *ud)
{
    (*(int *)ud)++;
}

void kenv_start(kenv *e, const char *name)
{
    ASSERT_EQ_INT(uv_loop_init(&e->loop), 0);
    ASSERT_EQ_INT(fakeapi_start(&e->fa, &e->loop, NULL), 0);
    snprintf(e->dir, sizeof e->dir, "/tmp/%s.XXXXXX", name);
    ASSERT_NOT_NULL(mkdtemp(e->dir));
    char path[128];
    snprintf(path, sizeof path, "%s/kubeconfig", e->dir);
    ASSERT_EQ_INT(fakeapi_write_kubeconfig(e->fa, path, "tok"), 0);
    operr err = {{0}};
    kcfg_init(&e->cfg);
    if (kcfg_load_file(&e->cfg, path, NULL, &err))
        test_fail(__FILE__, __LINE__, "kcfg_load_file: %s", err.msg);
    ASSERT_EQ_INT(ophttp_client_new(&e->http, &e->loop, NULL), 0);
    ASSERT_EQ_INT(krest_new(&e->rest, e->http, &e->cfg, &err), 0);
}

void kenv_stop(kenv *e)
{
    int hclosed = 0, fclosed = 0;
    krest_free(e->rest);
    ophttp_client_close(e->http, kenv_closed, &hclosed);
    fakeapi_stop(e->fa, kenv_closed, &fclosed);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    ASSERT_EQ_INT(hclosed, 1);
    ASSERT_EQ_INT(fclosed, 1);
    ASSERT_EQ_INT(uv_loop_close(&e->loop), 0);
    kcfg_release(&e->cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    ASSERT_EQ_INT(system(cmd), 0);
}
