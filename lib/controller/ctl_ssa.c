/*
 * ctl ssa: how the recommendation itself is written to a workload's object
 * under fieldManager=optipod. The optipod.io/ annotations are a server-side
 * apply (Recommend, the webhook strategy, and their release when a workload
 * leaves its policy). The ssa strategy GETs the live object (recording what
 * would change, and whether another manager took back a value optipod
 * wrote), finds conflicts with an unforced dryRun=All apply, then writes
 * with a strategic-merge PATCH carrying the live uid and resourceVersion
 * (controller.h and docs/gitops.md say why). Whether to go on after each
 * answer is the step's (step.c). I/O layer: calls ctl_common.c only; answers
 * go back through j->resume. Separate because these are the writes of values
 * to the workload's spec and metadata, with the managedFields checks that
 * keep optipod to its lane.
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/fields.h"
#include "apply/ssa.h"
#include "util/log.h"

/* ---- annotations (Recommend, webhook strategy, release) ---------------------------------- */

int ctl__annotations_body(ctl_job *j, const kproj_obj *w, int release)
{
    operr err = {{0}};
    opbuf_release(&j->body);
    opbuf_init(&j->body, BODY_MAX);
    int rc = ctlrec_annotations_body(&j->out, w, release, &j->body, &err);
    if (rc) {
        ctl__answer_unsent(&j->ann, "%s", err.msg[0] ? err.msg : strerror(-rc));
        return rc;
    }
    j->ann_hash = opmap_hash(opbuf_str(&j->body));
    return 0;
}

static void on_annotations_done(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    j->req = NULL;
    ctl__answer(&j->ann, r);
    j->resume(j);
}

int ctl__send_annotations(ctl_job *j, int release)
{
    (void)release; /* the body built with the facts says it */
    opbuf p;
    opbuf_init(&p, sizeof j->patch_path);
    int rc = ctl__write_path(j->c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 1, 1, 0);
    if (!rc) {
        snprintf(j->patch_path, sizeof j->patch_path, "%s", opbuf_str(&p));
        rc = ctl__job_send(j, "PATCH", j->patch_path, "application/apply-patch+yaml", &j->body,
                           on_annotations_done);
    }
    opbuf_release(&p);
    if (rc) {
        ctl__answer_unsent(&j->ann, "%s", strerror(-rc));
        return rc;
    }
    j->c->st.writes++;
    return 0;
}

/* ---- the ssa strategy: GET, pre-check, write ------------------------------------------------ */

/* "container/field=value;" for each change (messages and Events). */
static void describe_changes(const ssa_change *ch, size_t n, char *buf, size_t cap)
{
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s/%s=%s;", ch[i].container, ch[i].field,
                 ch[i].to ? ch[i].to : "");
    }
}

/* The live value of container/field ("requests.cpu"), NULL when unset. */
static const char *live_value(const kproj_obj *o, const ctlstep_written *w)
{
    const kproj_container *cs = w->init ? o->init_containers : o->containers;
    size_t n = w->init ? o->ninit_containers : o->ncontainers;
    const char *dot = strchr(w->field, '.');
    if (!dot)
        return NULL;
    int req = strncmp(w->field, "requests.", 9) == 0;
    for (size_t i = 0; i < n; i++) {
        if (!cs[i].name || strcmp(cs[i].name, w->container) != 0)
            continue;
        const kproj_kv *kv = req ? cs[i].requests : cs[i].limits;
        size_t nkv = req ? cs[i].nrequests : cs[i].nlimits;
        for (size_t k = 0; k < nkv; k++)
            if (kv[k].key && strcmp(kv[k].key, dot + 1) == 0)
                return kv[k].value;
    }
    return NULL;
}

/* Of the fields this process last wrote, those the live object's
 * managedFields give to manager optipod, with their live values (the step
 * tells another process writing as optipod from them). */
static void read_ours(ctl_job *j)
{
    const ctl_wstate *ws = ctl__wstate(j->c, j->key, 0);
    if (!ws || !ws->nwritten || !(j->ours = calloc(ws->nwritten, sizeof *j->ours)))
        return;
    for (size_t i = 0; i < ws->nwritten; i++) {
        const ctlstep_written *w = &ws->written[i];
        char kind[16], path[400];
        const char *dot = strchr(w->field, '.');
        const char *v = live_value(j->live, w);
        if (!dot || !v || (size_t)(dot - w->field) >= sizeof kind)
            continue;
        snprintf(kind, sizeof kind, "%.*s", (int)(dot - w->field), w->field);
        if (mfields_path_resource(path, sizeof path,
                                  w->init ? MFIELDS_INIT_CONTAINERS : MFIELDS_CONTAINERS,
                                  w->container, kind, dot + 1) < 0 ||
            !mfields_manager_owns(&j->mf, MFIELDS_OPTIPOD, path))
            continue;
        ctlstep_written *o = &j->ours[j->nours++];
        *o = *w;
        snprintf(o->value, sizeof o->value, "%s", v);
    }
}

/* The live object: what would change, who else owns each of those fields
 * (the step tells a take-back from them), and what optipod's name holds. */
static void read_live(ctl_job *j, const krest_reply *r)
{
    cJSON *live = cJSON_ParseWithLength(r->body, r->body_len);
    operr err = {{0}};
    if (!live || kproj_from_json(live, j->kind, &j->live) != 0 ||
        mfields_parse(&j->mf, live, &err)) {
        snprintf(j->unreadable, sizeof j->unreadable, "%s", err.msg);
        kproj_free(j->live);
        j->live = NULL;
        cJSON_Delete(live);
        return;
    }
    cJSON_Delete(live);
    size_t max = j->out.nssa * 4 + 1; /* requests and limits, cpu and memory */
    j->ch = calloc(max, sizeof *j->ch);
    if (!j->ch) {
        snprintf(j->unreadable, sizeof j->unreadable, "out of memory");
        kproj_free(j->live);
        j->live = NULL;
        return;
    }
    ssa_request rq = {.live = j->live,
                      .containers = j->out.ssa,
                      .ncontainers = j->out.nssa,
                      .allow_limits = j->out.allow_limits};
    size_t n = ssa_changes(&rq, j->ch, max);
    j->nch = n > max ? max : n;
    describe_changes(j->ch, j->nch, j->changed, sizeof j->changed);
    j->owners = j->nch ? calloc(j->nch, sizeof *j->owners) : NULL;
    for (size_t i = 0; j->owners && i < j->nch; i++) {
        const mfields_entry *owners[4];
        if (mfields_owners(&j->mf, j->ch[i].path, MFIELDS_OPTIPOD, owners, 4) > 0)
            j->owners[i] = owners[0]->manager; /* j->mf lives as long as the job */
    }
    read_ours(j);
}

static void on_live(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    j->req = NULL;
    ctl__answer(&j->live_reply, r);
    if (ctl__ok2xx(r))
        read_live(j, r);
    j->resume(j);
}

int ctl__read_live(ctl_job *j)
{
    opbuf pb;
    opbuf_init(&pb, sizeof j->patch_path);
    int rc = kpath(&pb, ctl__res_for_kind(j->kind), j->ns, j->name, NULL);
    snprintf(j->patch_path, sizeof j->patch_path, "%s", opbuf_str(&pb));
    opbuf_release(&pb);
    if (!rc)
        rc = ctl__job_send(j, "GET", j->patch_path, NULL, NULL, on_live);
    if (rc)
        ctl__answer_unsent(&j->live_reply, "%s", strerror(-rc));
    return rc;
}

/* optipod's own Update entry conflicts with optipod's apply (a different
 * manager to the server); it is not someone else's claim. */
static void drop_self(conflict_set *cs)
{
    int k = 0;
    for (int i = 0; i < cs->n; i++)
        if (strcmp(cs->items[i].manager, MFIELDS_OPTIPOD) != 0)
            cs->items[k++] = cs->items[i];
    cs->n = k;
}

static void on_dry_run_done(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    j->req = NULL;
    ctl__answer(&j->dry, r);
    if (r->http_status == 409 && r->status && j->cs) {
        conflict_add_status(j->cs, r->status);
        drop_self(j->cs);
    } else if (!ctl__ok2xx(r)) {
        free(j->cs); /* no conflicts to read: the step says the error */
        j->cs = NULL;
    }
    j->resume(j);
}

/* The strategic-merge body: only the changed fields, with the live uid and
 * resourceVersion as preconditions. */
static int build_patch(const kproj_obj *live, const ssa_change *ch, size_t n, opbuf *out)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *md = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddStringToObject(md, "uid", live->uid ? live->uid : "");
    cJSON_AddStringToObject(md, "resourceVersion", live->rv ? live->rv : "");
    cJSON *pspec = cJSON_AddObjectToObject(
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(root, "spec"), "template"), "spec");
    for (size_t i = 0; pspec && i < n; i++) {
        const char *list = ch[i].init ? "initContainers" : "containers";
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(pspec, list);
        if (!arr)
            arr = cJSON_AddArrayToObject(pspec, list);
        cJSON *item = NULL, *it;
        cJSON_ArrayForEach(it, arr)
        {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            if (cJSON_IsString(nm) && strcmp(nm->valuestring, ch[i].container) == 0)
                item = it;
        }
        if (!item) {
            item = cJSON_CreateObject();
            cJSON_AddItemToArray(arr, item);
            cJSON_AddStringToObject(item, "name", ch[i].container);
        }
        cJSON *res = cJSON_GetObjectItemCaseSensitive(item, "resources");
        if (!res)
            res = cJSON_AddObjectToObject(item, "resources");
        char kind[16];
        const char *dot = strchr(ch[i].field, '.');
        if (!dot || (size_t)(dot - ch[i].field) >= sizeof kind)
            continue;
        snprintf(kind, sizeof kind, "%.*s", (int)(dot - ch[i].field), ch[i].field);
        cJSON *grp = cJSON_GetObjectItemCaseSensitive(res, kind);
        if (!grp)
            grp = cJSON_AddObjectToObject(res, kind);
        cJSON_AddStringToObject(grp, dot + 1, ch[i].to ? ch[i].to : "");
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s)
        return -ENOMEM;
    int rc = opbuf_puts(out, s);
    cJSON_free(s);
    return rc;
}

/* The pre-check: an unforced apply of only the changed resources, never
 * persisted. The fields' other owners in managedFields count as conflicts
 * too; a 409 adds the server's. The write's body is built with it. */
int ctl__send_dry_run(ctl_job *j)
{
    ctl *c = j->c;
    const char *targets[CTLREC_MAX_CONTAINERS * 4 + 1];
    for (size_t i = 0; i < j->nch; i++)
        targets[i] = j->ch[i].path;
    free(j->cs);
    j->cs = malloc(sizeof *j->cs);
    if (!j->cs) {
        ctl__answer_unsent(&j->dry, "apply: out of memory");
        return -ENOMEM;
    }
    conflict_set_init(j->cs);
    conflict_add_fields(j->cs, &j->mf, MFIELDS_OPTIPOD, targets, j->nch);
    operr err = {{0}};
    ssa_request rq = {.live = j->live,
                      .containers = j->out.ssa,
                      .ncontainers = j->out.nssa,
                      .allow_limits = j->out.allow_limits};
    opbuf dry, p;
    opbuf_init(&dry, BODY_MAX);
    opbuf_init(&p, sizeof j->patch_path);
    char dry_path[sizeof j->patch_path];
    int rc = ssa_build(&rq, &dry, NULL, &err);
    if (!rc)
        rc = ctl__write_path(c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 1, 0, 1);
    snprintf(dry_path, sizeof dry_path, "%s", opbuf_str(&p));
    if (!rc)
        rc = ctl__write_path(c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 0, 0, 0);
    snprintf(j->patch_path, sizeof j->patch_path, "%s", opbuf_str(&p));
    opbuf_release(&p);
    opbuf_release(&j->body);
    opbuf_init(&j->body, BODY_MAX);
    if (!rc)
        rc = build_patch(j->live, j->ch, j->nch, &j->body);
    if (!rc)
        rc = ctl__job_send(j, "PATCH", dry_path, "application/apply-patch+yaml", &dry,
                           on_dry_run_done);
    opbuf_release(&dry);
    if (rc) {
        ctl__answer_unsent(&j->dry, "%s", err.msg[0] ? err.msg : strerror(-rc));
        return rc;
    }
    c->st.dry_run_applies++;
    return 0;
}

static void on_write_done(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    ctl *c = j->c;
    j->req = NULL;
    ctl__answer(&j->write, r);
    if (ctl__ok2xx(r)) {
        /* Verify from the object returned that optipod keeps to its lane. */
        mfields mf;
        mfields_init(&mf);
        const char *first = NULL;
        if (mfields_parse_json(&mf, r->body, r->body_len, NULL) == 0 &&
            mfields_foreign(&mf, MFIELDS_OPTIPOD, MFIELDS_ALLOW_ANNOTATIONS, &first) > 0) {
            c->st.foreign_fields++;
            OPLOG_W("reconcile %s: optipod owns a field outside its lane: %s", j->key, first);
        }
        mfields_release(&mf);
        j->new_gen = ctl__answered_generation(r);
    }
    j->resume(j);
}

int ctl__send_write(ctl_job *j, int force)
{
    (void)force; /* the PATCH is an Update: forcing is the pre-check's verdict, said in Events */
    /* the strategic-merge body was built next to the dry-run body */
    int rc = ctl__job_send(j, "PATCH", j->patch_path, "application/strategic-merge-patch+json",
                           &j->body, on_write_done);
    if (rc) {
        ctl__answer_unsent(&j->write, "%s", strerror(-rc));
        return rc;
    }
    j->c->st.writes++;
    return 0;
}
