/*
 * cli_conn: synchronous requests for a one-shot command. Each call runs the
 * caller's loop until its reply arrives; a guard timer wakes the loop often,
 * so a reply handled from a timer callback is noticed at once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_conn_open(cli_conn *c, uv_loop_t *loop, const char *kubeconfig, const char *context,
                  operr *err)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    kcfg_init(&c->cfg);
    int rc = kcfg_load(&c->cfg, kubeconfig, context, err);
    if (rc)
        return rc;
    rc = ophttp_client_new(&c->http, loop, NULL);
    if (rc != 0) {
        operr_set(err, rc, "http client: cannot create it");
        goto fail;
    }
    rc = krest_new(&c->rest, c->http, &c->cfg, err);
    if (rc != 0)
        goto fail;
    return 0;
fail:
    cli_conn_close(c);
    return rc;
}

static void on_http_closed(void *ud)
{
    *(int *)ud = 1;
}

void cli_conn_close(cli_conn *c)
{
    if (c->rest)
        krest_free(c->rest);
    c->rest = NULL;
    if (c->http) {
        int closed = 0;
        ophttp_client_close(c->http, on_http_closed, &closed);
        while (!closed && uv_run(c->loop, UV_RUN_ONCE))
            ;
        c->http = NULL;
    }
    kcfg_release(&c->cfg);
}

typedef struct call_state {
    cli_resp *r;
    int done;
} call_state;

static void on_reply(const krest_reply *rep, void *ud)
{
    call_state *st = ud;
    cli_resp *r = st->r;
    r->status = rep->http_status;
    /* checked by cli_call once the loop is done: a failed copy stays failed (util/buf.h) */
    (void)opbuf_append(&r->body, rep->body, rep->body_len);
    if (rep->status && rep->status->message[0])
        snprintf(r->msg, sizeof r->msg, "%s", rep->status->message);
    else if (rep->error_msg && rep->error_msg[0])
        snprintf(r->msg, sizeof r->msg, "%s", rep->error_msg);
    st->done = 1;
}

static void on_guard(uv_timer_t *t)
{
    (void)t;
}

static void on_guard_closed(uv_handle_t *h)
{
    *(int *)h->data = 1;
}

int cli_call(cli_conn *c, const char *method, const char *path, const char *ctype, const char *body,
             size_t len, cli_resp *r, operr *err)
{
    memset(r, 0, sizeof *r);
    opbuf_init(&r->body, CLI_MAX_BODY);
    call_state st = {r, 0};
    int rc = krest_call(c->rest, method, path, ctype, body, len, on_reply, &st, NULL);
    if (rc)
        return operr_set(err, rc, "%s %s: cannot start the request", method, path);
    uv_timer_t guard;
    int closed = 0;
    uv_timer_init(c->loop, &guard);
    guard.data = &closed;
    uv_timer_start(&guard, on_guard, 5, 5);
    while (!st.done)
        uv_run(c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&guard, on_guard_closed);
    while (!closed)
        uv_run(c->loop, UV_RUN_ONCE);
    if (r->status == 0)
        return operr_set(err, -EIO, "cannot reach %s: %s", krest_server(c->rest),
                         r->msg[0] ? r->msg : "no response");
    rc = opbuf_error(&r->body); /* the reply's copy (on_reply) */
    if (rc)
        return operr_set(err, rc, "%s %s: the reply is %s", method, path,
                         rc == -E2BIG ? "larger than the CLI reads" : "out of memory");
    return 0;
}

cJSON *cli_get_json(cli_conn *c, const char *path, operr *err)
{
    cli_resp r;
    cJSON *v = NULL;
    if (cli_call(c, "GET", path, NULL, NULL, 0, &r, err))
        goto out;
    if (r.status < 200 || r.status > 299) {
        operr_set(err, -EIO, "GET %s: HTTP %ld: %s", path, r.status, r.msg);
        goto out;
    }
    if (!(v = cJSON_ParseWithLength(opbuf_str(&r.body), r.body.len)))
        operr_set(err, -EINVAL, "GET %s: the reply is not JSON", path);
out:
    opbuf_release(&r.body);
    return v;
}
