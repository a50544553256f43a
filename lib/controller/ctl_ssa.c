/*
 * ctl ssa: how the recommendation itself is written to a workload's object
 * under fieldManager=optipod. The optipod.io/ annotations are a server-side
 * apply (Recommend, the webhook strategy, and their release when a workload
 * leaves its policy); the restart that may follow them is ctl_rollout.c's.
 * The ssa strategy GETs the live object, stops when a manager keeps taking
 * the values back (GitOpsConflictLoop), finds conflicts with an unforced
 * dryRun=All apply, then writes with a strategic-merge PATCH carrying the
 * live uid and resourceVersion (controller.h and docs/gitops.md say why).
 * Separate because these are the writes of values to the workload's spec
 * and metadata, with the managedFields checks that keep optipod to its lane.
 */
#include "controller/ctl_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "apply/fields.h"
#include "apply/remedy.h"
#include "apply/ssa.h"
#include "util/log.h"

/* ---- annotations (Recommend, webhook strategy, release) ---------------------------------- */

static void on_annotations_done(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    j->req = NULL;
    if (!ctl__ok2xx(r)) {
        ctl__job_end(j, CTLREC_ERROR, "annotations apply: HTTP %ld: %s", r->http_status,
                     ctl__reply_msg(r));
        return;
    }
    ctl_wstate *ws = ctl__wstate(j->c, j->key, 1);
    if (!j->out.winner && !j->pkey[0]) {
        if (ws)
            snprintf(ws->released_rv, sizeof ws->released_rv, "%s", j->changes);
        ctl__job_end(j, CTLREC_SKIPPED, "%s; optipod.io/ annotations removed%s", j->out.reason,
                     j->c->o.dry_run ? " (dry run)" : "");
        return;
    }
    kevents_ref ref;
    ctl__workload_ref(j, NULL, &ref);
    ctl__event(j->c, &ref, KEVENTS_NORMAL, "RecommendationUpdated", "Recommend",
               "recommendation published to optipod.io/ annotations by policy %s%s", j->pkey,
               j->c->o.dry_run ? " (dry run)" : "");
    /* A dry run never sees its annotations land: show the restart that would follow now. */
    const kproj_obj *w =
        j->c->o.dry_run && j->restart && ws
            ? kcache_get(ctl__cache(j->c, ctl__inf_for_kind(j->kind)), j->ns, j->name)
            : NULL;
    if (w && ctl__maybe_restart(j, w, ws))
        return;
    ctl__job_end(j, CTLREC_APPLY, "recommendation published to annotations%s",
                 j->c->o.dry_run ? " (dry run)" : "");
}

void ctl__send_annotations(ctl_job *j, const kproj_obj *w, int release)
{
    operr err = {{0}};
    char path[2048];
    opbuf p;
    opbuf_init(&p, sizeof path);
    opbuf_init(&j->body, BODY_MAX);
    int rc = ctlrec_annotations_body(&j->out, w, release, &j->body, &err);
    ctl_wstate *ws = ctl__wstate(j->c, j->key, 1);
    uint64_t h = opmap_hash(opbuf_str(&j->body));
    if (!rc && ws && w->rv && ws->ann_hash == h && strcmp(ws->ann_base_rv, w->rv) == 0) {
        /* The same write over the same version: the cache has not seen our
         * last one yet (its watch event queues the workload again). */
        opbuf_release(&p);
        ctl__job_end(j, CTLREC_UNCHANGED, "annotations written, waiting for the watch to catch up");
        return;
    }
    if (!rc && ws) {
        ws->ann_hash = h;
        snprintf(ws->ann_base_rv, sizeof ws->ann_base_rv, "%s", w->rv ? w->rv : "");
    }
    if (!rc)
        rc = ctl__write_path(j->c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 1, 1, 0);
    if (!rc) {
        snprintf(path, sizeof path, "%s", opbuf_str(&p));
        snprintf(j->changes, sizeof j->changes, "%s", w->rv ? w->rv : "");
        rc = ctl__job_send(j, "PATCH", path, "application/apply-patch+yaml", &j->body,
                           on_annotations_done);
        if (!rc)
            j->c->st.writes++;
    }
    opbuf_release(&p);
    if (rc)
        ctl__job_end(j, CTLREC_ERROR, "annotations apply: %s",
                     err.msg[0] ? err.msg : strerror(-rc));
}

/* ---- the ssa strategy ---------------------------------------------------------------------- */

static void on_write_done(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    ctl *c = j->c;
    j->req = NULL;
    if (r->http_status == 409) {
        ctl__job_end(j, CTLREC_ERROR, "write: the workload changed meanwhile (%s); retrying",
                     ctl__reply_msg(r));
        return;
    }
    if (!ctl__ok2xx(r)) {
        ctl__job_end(j, CTLREC_ERROR, "write: HTTP %ld: %s", r->http_status, ctl__reply_msg(r));
        return;
    }
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
    ctl__slot_commit(j, r);
    ctl_wstate *ws = ctl__wstate(c, j->key, 1);
    if (ws && !c->o.dry_run) {
        snprintf(ws->written, sizeof ws->written, "%s", j->changes);
        ws->last_apply_ms = ctl__now(c);
    }
    conflict_loop_out lo;
    if (!c->o.dry_run)
        conflict_tracker_step(&c->tracker, j->key, ctl__wall_ms(c), CONFLICT_EV_APPLIED, NULL, &lo);
    kevents_ref ref;
    ctl__workload_ref(j, NULL, &ref);
    ctl__event(c, &ref, KEVENTS_NORMAL, "ResourcesApplied", "Apply", "%s %s (policy %s)",
               c->o.dry_run ? "would set" : "set", j->changes, j->pkey);
    ctl__job_end(j, CTLREC_APPLY, "%s%s%s", c->o.dry_run ? "dry run: would apply " : "applied ",
                 j->changes, j->forced ? " (forced over another manager)" : "");
}

static void send_write(ctl_job *j)
{
    /* the strategic-merge body was built next to the dry-run body */
    int rc = ctl__job_send(j, "PATCH", j->patch_path, "application/strategic-merge-patch+json",
                           &j->body, on_write_done);
    if (rc)
        ctl__job_end(j, CTLREC_ERROR, "write: %s", strerror(-rc));
    else
        j->c->st.writes++;
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
    ctl *c = j->c;
    j->req = NULL;
    if (r->http_status == 409 && r->status) {
        conflict_add_status(&j->cs, r->status);
        drop_self(&j->cs);
    } else if (!ctl__ok2xx(r)) {
        ctl__job_end(j, CTLREC_ERROR, "conflict pre-check: HTTP %ld: %s", r->http_status,
                     ctl__reply_msg(r));
        return;
    }
    if (j->cs.n > 0) {
        enum conflict_decision d = conflict_decide(&j->cs, j->force_conflicts);
        char note[CONFLICT_NOTE_MAX + 1];
        conflict_note(&j->cs, d, note, sizeof note);
        kevents_ref ref;
        ctl__workload_ref(j, NULL, &ref);
        ctl__event(c, &ref, KEVENTS_WARNING, "SSAConflict", "Apply", "%s", note);
        ctl_wstate *ws = ctl__wstate(c, j->key, 1);
        if (ws) {
            ws->conflict[0] = 0;
            for (int i = 0; i < j->cs.n; i++) {
                if (strstr(ws->conflict, j->cs.items[i].manager))
                    continue;
                size_t l = strlen(ws->conflict);
                snprintf(ws->conflict + l, sizeof ws->conflict - l, "%s%s", l ? ", " : "",
                         j->cs.items[i].manager);
            }
        }
        if (d == CONFLICT_YIELD) {
            ctl__job_end(j, CTLREC_CONFLICT,
                         "fields owned by %s; updateStrategy.forceConflicts is false: left to them",
                         ws ? ws->conflict : "another manager");
            return;
        }
        j->forced = 1;
    } else {
        ctl_wstate *ws = ctl__wstate(c, j->key, 0);
        if (ws && !ws->loop_stopped)
            ws->conflict[0] = 0; /* nobody else holds these fields any more */
    }
    send_write(j);
}

/* Append "container/field=value;" for each change. */
static void describe_changes(const ssa_change *ch, size_t n, char *buf, size_t cap)
{
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s/%s=%s;", ch[i].container, ch[i].field,
                 ch[i].to ? ch[i].to : "");
    }
}

/* The value we last wrote for container/field, from "c/f=v;..." (into val). */
static int written_value(const char *written, const char *container, const char *field, char *val,
                         size_t cap)
{
    char needle[512];
    snprintf(needle, sizeof needle, "%s/%s=", container, field);
    const char *p = written;
    while ((p = strstr(p, needle)) != NULL) {
        if (p == written || p[-1] == ';') {
            p += strlen(needle);
            size_t l = strcspn(p, ";");
            snprintf(val, cap, "%.*s", (int)(l < cap ? l : cap - 1), p);
            return 1;
        }
        p++;
    }
    return 0;
}

/* The strategic-merge body: only the changed fields, with the live uid and
 * resourceVersion as preconditions. */
static int build_patch(const ctl_job *j, const kproj_obj *live, const ssa_change *ch, size_t n,
                       opbuf *out)
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
    (void)j;
    if (!s)
        return -ENOMEM;
    int rc = opbuf_puts(out, s);
    cJSON_free(s);
    return rc;
}

static void loop_remedy(ctl_job *j, const kproj_obj *live, const ssa_change *ch, size_t n,
                        const char *reclaimer, char *note, size_t cap)
{
    remedy_field fields[16];
    size_t nf = 0;
    for (size_t i = 0; i < n && nf < 16; i++)
        fields[nf++] = (remedy_field){ch[i].container, ch[i].init, ch[i].field};
    remedy_request rq = {.live = live, .reclaimer = reclaimer, .fields = fields, .nfields = nf};
    if (remedy_note(remedy_tool_for_manager(reclaimer), &rq, note, cap) < 0)
        snprintf(note, cap,
                 "%s keeps taking back the resources optipod sets on %s/%s; exclude them from "
                 "its sync or set the policy to Recommend",
                 reclaimer, j->ns, j->name);
}

void ctl__on_live(const krest_reply *r, void *ud)
{
    ctl_job *j = ud;
    ctl *c = j->c;
    j->req = NULL;
    if (r->http_status == 404) {
        ctl__job_end(j, CTLREC_SKIPPED, "the workload is gone");
        return;
    }
    if (!ctl__ok2xx(r)) {
        ctl__job_end(j, CTLREC_ERROR, "GET: HTTP %ld: %s", r->http_status, ctl__reply_msg(r));
        return;
    }
    cJSON *live = cJSON_ParseWithLength(r->body, r->body_len);
    kproj_obj *lp = NULL;
    mfields mf;
    mfields_init(&mf);
    operr err = {{0}};
    enum ctlrec_outcome oc = CTLREC_ERROR;
    char why[CTLREC_REASON] = "";
    const char *targets[CTLREC_MAX_CONTAINERS * 4];
    ssa_change ch[CTLREC_MAX_CONTAINERS * 4];
    opbuf dry;
    opbuf_init(&dry, BODY_MAX);
    if (!live || kproj_from_json(live, j->kind, &lp) != 0 || mfields_parse(&mf, live, &err)) {
        snprintf(why, sizeof why, "GET: unreadable object %s", err.msg);
        goto out;
    }
    ssa_request rq = {.live = lp,
                      .containers = j->out.ssa,
                      .ncontainers = j->out.nssa,
                      .allow_limits = j->out.allow_limits};
    size_t n = ssa_changes(&rq, ch, sizeof ch / sizeof ch[0]);
    if (n > sizeof ch / sizeof ch[0])
        n = sizeof ch / sizeof ch[0];
    if (n == 0) {
        oc = CTLREC_UNCHANGED;
        snprintf(why, sizeof why, "the live object already has the recommended values");
        goto out;
    }
    /* Reclaim: a value we wrote was replaced, and another manager owns it now. */
    ctl_wstate *ws = ctl__wstate(c, j->key, 1);
    const char *reclaimer = NULL;
    for (size_t i = 0; ws && i < n && !reclaimer; i++) {
        char ours[CTLREC_QTY];
        const mfields_entry *owners[4];
        if (written_value(ws->written, ch[i].container, ch[i].field, ours, sizeof ours) &&
            (!ch[i].from || strcmp(ch[i].from, ours) != 0) &&
            mfields_owners(&mf, ch[i].path, MFIELDS_OPTIPOD, owners, 4) > 0)
            reclaimer = owners[0]->manager;
    }
    conflict_loop_out lo = {0};
    if (conflict_tracker_step(&c->tracker, j->key, ctl__wall_ms(c),
                              reclaimer ? CONFLICT_EV_RECLAIMED : CONFLICT_EV_QUIET, reclaimer,
                              &lo) == 0 &&
        lo.action == CONFLICT_STOP_LOOP) {
        if (ws)
            ws->loop_stopped = 1;
        if (lo.entered) {
            char note[REMEDY_NOTE_MAX + 1];
            loop_remedy(j, lp, ch, n, lo.manager, note, sizeof note);
            kevents_ref ref;
            ctl__workload_ref(j, lp->uid, &ref);
            ctl__event(c, &ref, KEVENTS_WARNING, "GitOpsConflictLoop", "Apply", "%s", note);
            c->st.loops_stopped++;
        }
        if (ws)
            snprintf(ws->conflict, sizeof ws->conflict, "%s (GitOpsConflictLoop)", lo.manager);
        oc = CTLREC_CONFLICT;
        snprintf(why, sizeof why,
                 "GitOpsConflictLoop: %s took the fields back %d times; not applying until it "
                 "stops",
                 lo.manager, lo.reclaims);
        goto out;
    }
    if (ws && lo.resumed)
        ws->loop_stopped = 0;
    if (ws && !lo.resumed && ws->loop_stopped == 0)
        ws->loop_stopped = 0;
    for (size_t i = 0; i < n; i++)
        targets[i] = ch[i].path;
    conflict_set_init(&j->cs);
    conflict_add_fields(&j->cs, &mf, MFIELDS_OPTIPOD, targets, n);
    describe_changes(ch, n, j->changes, sizeof j->changes);

    /* The pre-check: an unforced apply of only these resources, never persisted. */
    opbuf p;
    opbuf_init(&p, sizeof j->patch_path);
    int rc = ssa_build(&rq, &dry, NULL, &err);
    if (!rc)
        rc = ctl__write_path(c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 1, 0, 1);
    char dry_path[sizeof j->patch_path];
    snprintf(dry_path, sizeof dry_path, "%s", opbuf_str(&p));
    if (!rc)
        rc = ctl__write_path(c, &p, ctl__res_for_kind(j->kind), j->ns, j->name, NULL, 0, 0, 0);
    snprintf(j->patch_path, sizeof j->patch_path, "%s", opbuf_str(&p));
    opbuf_release(&p);
    opbuf_init(&j->body, BODY_MAX);
    if (!rc)
        rc = build_patch(j, lp, ch, n, &j->body);
    if (!rc)
        rc = krest_call(c->rest, "PATCH", dry_path, "application/apply-patch+yaml", dry.data,
                        dry.len, on_dry_run_done, j, &j->req);
    if (rc) {
        snprintf(why, sizeof why, "apply: %s", err.msg[0] ? err.msg : strerror(-rc));
        goto out;
    }
    c->st.dry_run_applies++;
    oc = (enum ctlrec_outcome) - 1; /* in flight */
out:
    opbuf_release(&dry);
    mfields_release(&mf);
    kproj_free(lp);
    cJSON_Delete(live);
    if ((int)oc >= 0)
        ctl__job_end(j, oc, "%s", why);
}
