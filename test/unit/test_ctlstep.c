/* The reconcile's next step (lib/controller/step.h) as tables of facts ->
 * step: no sockets, no timers. Each row starts from one base (a Deployment
 * rolled out at generation 2, a decision to apply, nothing remembered) and
 * changes the facts its rule reads. */
#include <stdlib.h>
#include <string.h>

#include "controller/step.h"
#include "test.h"

#define NOW       1000000ULL
#define WALL      1700000000000LL
#define PERIOD    300000ULL
#define MIN_WRITE 30000ULL

static kproj_obj *web, *web_ann, *db_ondelete;
static pol_policy *ssa_next, *ssa_now, *ssa_force, *ssa_yield, *recommend, *hook_now, *hook_next,
    *rz_ssa_next, *rz_hook, *disabled;

static kproj_obj *project(const char *json, enum kproj_kind k)
{
    cJSON *o = cJSON_Parse(json);
    ASSERT_NOT_NULL(o);
    kproj_obj *p = NULL;
    ASSERT_EQ_INT(kproj_from_json(o, k, &p), 0);
    cJSON_Delete(o);
    return p;
}

static pol_policy *policy(const char *update)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"metadata\":{\"name\":\"p\",\"namespace\":\"shop\",\"uid\":\"pu\",\"generation\":1,"
             "\"creationTimestamp\":\"2024-01-01T00:00:00Z\"},\"spec\":{%s,\"selector\":{"
             "\"workloadSelector\":{\"matchLabels\":{\"app\":\"web\"}}}}}",
             update);
    cJSON *o = cJSON_Parse(json);
    ASSERT_NOT_NULL(o);
    pol_policy *p = malloc(sizeof *p);
    pol_init(p);
    pol_parse(o, p, NULL);
    cJSON_Delete(o);
    ASSERT(p->valid);
    return p;
}

#define DEPLOYMENT(ann)                                                                            \
    "{\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\",\"uid\":\"wu\",\"generation\":2,"      \
    "\"resourceVersion\":\"7\",\"labels\":{\"app\":\"web\"},\"annotations\":" ann "},"             \
    "\"spec\":{\"replicas\":2,\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":" \
    "{"                                                                                            \
    "\"containers\":[{\"name\":\"app\",\"image\":\"nginx\",\"resources\":{\"requests\":"           \
    "{\"cpu\":\"1\",\"memory\":\"1Gi\"}}}]}}},\"status\":{\"observedGeneration\":2,"               \
    "\"replicas\":2,\"updatedReplicas\":2,\"readyReplicas\":2,\"availableReplicas\":2}}"

static void setup(void)
{
    web = project(DEPLOYMENT("{}"), KPROJ_DEPLOYMENT);
    web_ann = project(DEPLOYMENT("{\"optipod.io/cpu-request.app\":\"500m\"}"), KPROJ_DEPLOYMENT);
    db_ondelete = project(
        "{\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\",\"uid\":\"du\",\"generation\":1},"
        "\"spec\":{\"replicas\":1,\"updateStrategy\":{\"type\":\"OnDelete\"},\"template\":{"
        "\"spec\":{\"containers\":[{\"name\":\"app\"}]}}}}",
        KPROJ_STATEFULSET);
    ssa_next = policy("\"mode\":\"Auto\"");
    ssa_now = policy("\"mode\":\"Auto\",\"updateStrategy\":{\"rolloutStrategy\":\"immediate\"}");
    ssa_force = policy("\"mode\":\"Auto\",\"updateStrategy\":{\"forceConflicts\":true}");
    ssa_yield = policy("\"mode\":\"Auto\",\"updateStrategy\":{\"forceConflicts\":false}");
    recommend = policy("\"mode\":\"Recommend\"");
    hook_now = policy("\"mode\":\"Auto\",\"updateStrategy\":{\"strategy\":\"webhook\","
                      "\"rolloutStrategy\":\"immediate\",\"allowRecreate\":true}");
    hook_next = policy("\"mode\":\"Auto\",\"updateStrategy\":{\"strategy\":\"webhook\"}");
    rz_ssa_next = policy("\"mode\":\"Auto\",\"updateStrategy\":{\"allowInPlaceResize\":true}");
    rz_hook = policy("\"mode\":\"Auto\",\"updateStrategy\":{\"strategy\":\"webhook\","
                     "\"allowInPlaceResize\":true}");
    disabled = policy("\"mode\":\"Disabled\"");
}

static void teardown(void)
{
    kproj_free(web);
    kproj_free(web_ann);
    kproj_free(db_ondelete);
    pol_policy *ps[] = {ssa_next, ssa_now,   ssa_force,   ssa_yield, recommend,
                        hook_now, hook_next, rz_ssa_next, rz_hook,   disabled};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        pol_release(ps[i]);
        free(ps[i]);
    }
}

/* ---- the fixture: one set of facts and what they point to ------------------------------------ */

typedef struct fixture {
    ctl_facts f;
    ctlstep_mem m;
    ctlrec_out rec;
    rollout_out gate;
    conflict_loop loop;
    conflict_set cs;
    ssa_change ch[1];
    const char *owners[1];
    ctlstep_written written[1];
    ctlstep_written ours[1];
} fixture;

static void decided(fixture *x, const pol_policy *p, enum ctlrec_outcome oc)
{
    x->rec.winner = p;
    x->rec.mode = p->mode;
    x->rec.outcome = oc;
    snprintf(x->rec.reason, sizeof x->rec.reason, "%s",
             oc == CTLREC_APPLY ? "recommendation differs" : "the decision's reason");
}

static void base(fixture *x)
{
    memset(x, 0, sizeof *x);
    decided(x, ssa_next, CTLREC_APPLY);
    x->f.key = "Deployment/shop/web";
    x->f.workload = web;
    x->f.now_ms = NOW;
    x->f.wall_ms = WALL;
    x->f.mem = &x->m;
    x->f.rec = &x->rec;
    x->f.decided = 1;
    x->f.pkey = "shop/p";
    x->f.period_ms = PERIOD;
    x->f.usage = CTLSTEP_USAGE_READY;
    conflict_loop_cfg_defaults(&x->f.loop_cfg);
    x->gate = (rollout_out){.verdict = ROLLOUT_GO};
    x->f.gate = &x->gate;
}

static ctlstep_reply answered(long status)
{
    return (ctlstep_reply){.done = 1, .sent = 1, .http_status = status, .msg = "the message"};
}

/* The live object read with one change to requests.cpu (1 -> 500m). */
static void live_read(fixture *x)
{
    x->f.live_reply = answered(200);
    snprintf(x->ch[0].container, sizeof x->ch[0].container, "app");
    snprintf(x->ch[0].field, sizeof x->ch[0].field, "requests.cpu");
    x->ch[0].from = "1";
    x->ch[0].to = "500m";
    x->f.live = (ctlstep_live){
        .obj = web, .changes = x->ch, .nchanges = 1, .changed = "app/requests.cpu=500m;"};
}

/* Loop detection's state after n counted reclaims by Flux, a minute apart. */
static void reclaimed(fixture *x, int n)
{
    conflict_loop_init(&x->loop);
    conflict_loop_out lo;
    for (int i = 0; i < n; i++)
        conflict_loop_step(&x->loop, &x->f.loop_cfg, WALL - (n - i) * 60000, CONFLICT_EV_RECLAIMED,
                           "kustomize-controller", &lo);
    x->m.loop = &x->loop;
}

static void conflicts(fixture *x, const char *manager)
{
    conflict_set_init(&x->cs);
    x->cs.n = 1;
    snprintf(x->cs.items[0].manager, sizeof x->cs.items[0].manager, "%s", manager);
    snprintf(x->cs.items[0].operation, sizeof x->cs.items[0].operation, "Apply");
    snprintf(x->cs.items[0].field, sizeof x->cs.items[0].field,
             ".spec.template.spec.containers[name=\"app\"].resources.requests.cpu");
    x->f.cs = &x->cs;
}

/* ---- the rows -------------------------------------------------------------------------------- */

#define F(name) static void name(fixture *x)

F(gone)
{
    x->f.workload = NULL;
}
F(policy_gone)
{
    x->f.policy_gone = 1;
    x->rec.winner = NULL;
}
F(no_policy_bare)
{
    x->rec.winner = NULL;
    x->rec.outcome = CTLREC_SKIPPED;
    snprintf(x->rec.reason, sizeof x->rec.reason, "no policy selects this workload");
}
F(no_policy_annotated)
{
    no_policy_bare(x);
    x->f.workload = web_ann;
    x->rec.release_annotations = 1;
    x->f.ann_hash = 42;
}
F(no_policy_released_here)
{
    no_policy_annotated(x);
    x->m.released_rv = "7";
}
F(no_policy_same_body)
{
    no_policy_annotated(x);
    x->m.ann_hash = 42;
    x->m.ann_base_rv = "7";
}
F(no_policy_release_done)
{
    no_policy_annotated(x);
    x->f.ann = answered(200);
}
F(no_policy_release_failed)
{
    no_policy_annotated(x);
    x->f.ann = answered(500);
}
F(usage_stale)
{
    x->f.decided = 0;
    x->f.usage = CTLSTEP_USAGE_STALE;
}
F(metrics_error)
{
    x->rec.outcome = CTLREC_ERROR;
    snprintf(x->rec.reason, sizeof x->rec.reason, "metrics unavailable: connection refused");
}
F(rec_differs)
{
    decided(x, recommend, CTLREC_APPLY);
    x->f.ann_differ = 1;
}
F(rec_current)
{
    decided(x, recommend, CTLREC_APPLY);
}
F(rec_insufficient)
{
    decided(x, recommend, CTLREC_SKIPPED);
    snprintf(x->rec.reason, sizeof x->rec.reason, "container app: insufficient data");
}
F(rec_published)
{
    rec_differs(x);
    x->f.ann = answered(200);
}
F(ssa_within_threshold)
{
    decided(x, ssa_next, CTLREC_UNCHANGED);
}
F(ssa_apply)
{
    decided(x, ssa_next, CTLREC_APPLY);
}
F(ssa_rolled_recently)
{
    x->m.last_apply_ms = NOW - 100000;
}
F(ssa_rolled_a_period_ago)
{
    x->m.last_apply_ms = NOW - PERIOD;
}
F(ssa_now_go)
{
    decided(x, ssa_now, CTLREC_APPLY);
}
F(ssa_now_wait)
{
    ssa_now_go(x);
    x->gate = (rollout_out){.verdict = ROLLOUT_WAIT, .retry_ms = 30000};
    snprintf(x->gate.reason, sizeof x->gate.reason,
             "PodDisruptionBudget shop/pdb allows no "
             "disruption");
}
F(ssa_now_holder_stuck)
{
    ssa_now_go(x);
    x->gate.release = ROLLOUT_STUCK;
    snprintf(x->gate.stuck, sizeof x->gate.stuck, "Deployment/shop/api took longer than 10m");
}
F(ssa_now_no_gate)
{
    ssa_now_go(x);
    x->f.gate = NULL;
}
F(ondelete_immediate)
{
    ssa_now_go(x);
    x->f.workload = db_ondelete;
    x->f.gate = NULL; /* never asked: a template change rolls nothing */
}
F(live_404)
{
    x->f.live_reply = answered(404);
}
F(live_500)
{
    x->f.live_reply = answered(500);
}
F(live_unsent)
{
    x->f.live_reply = (ctlstep_reply){.done = 1, .msg = "no route"};
}
F(live_unreadable)
{
    x->f.live_reply = answered(200);
    x->f.live.unreadable = "not JSON";
}
F(live_unchanged)
{
    live_read(x);
    x->f.live.nchanges = 0;
}
F(live_changes)
{
    live_read(x);
}
/* Another manager owns requests.cpu in managedFields. */
static void owned_by(fixture *x, const char *manager)
{
    x->owners[0] = manager;
    x->f.live.owners = x->owners;
}

/* optipod's last write set requests.cpu to value. */
static void we_wrote(fixture *x, const char *value)
{
    x->written[0] = (ctlstep_written){.container = "app", .field = "requests.cpu"};
    snprintf(x->written[0].value, sizeof x->written[0].value, "%s", value);
    x->m.written = x->written;
    x->m.nwritten = 1;
}

F(live_first_take_back)
{
    live_read(x);
    we_wrote(x, "500m"); /* live says 1 again */
    owned_by(x, "kustomize-controller");
}
F(live_owner_of_what_we_never_wrote)
{
    live_read(x);
    owned_by(x, "argocd-controller");
}
F(live_ours_still_there)
{
    live_read(x);
    we_wrote(x, "1");
    owned_by(x, "kustomize-controller");
}
F(live_ours_replaced_nobody_owns)
{
    live_read(x);
    we_wrote(x, "500m");
}
/* The miscount: Git's re-apply raced our write; the retries see the same
 * take-back again. Counted once already: no second count, no stop. */
F(live_same_take_back_again)
{
    live_first_take_back(x);
    reclaimed(x, 1);
    x->m.reclaim_counted = 1;
}
F(live_same_take_back_third_look)
{
    live_first_take_back(x);
    reclaimed(x, 2); /* two real take-backs before */
    x->m.reclaim_counted = 1;
}
F(live_third_take_back)
{
    live_first_take_back(x);
    reclaimed(x, 2);
}
F(live_stopped_quiet)
{
    live_changes(x);
    reclaimed(x, 3);
    x->m.loop_stopped = 1;
}
F(dry_conflict_yield)
{
    decided(x, ssa_yield, CTLREC_APPLY);
    live_read(x);
    x->f.dry = answered(409);
    conflicts(x, "argocd-controller");
}
F(dry_conflict_force)
{
    dry_conflict_yield(x);
    decided(x, ssa_force, CTLREC_APPLY);
}
/* forced over kubectl: the configured behaviour, not a conflict (issue 13) */
F(dry_takeover_kubectl)
{
    dry_conflict_force(x);
    conflicts(x, "kubectl-client-side-apply");
}
/* ... over Helm, or a manager listed in --gitops-managers: it takes them back */
F(dry_takeover_helm)
{
    dry_conflict_force(x);
    conflicts(x, "helm");
}
F(dry_takeover_listed)
{
    dry_conflict_force(x);
    conflicts(x, "my-sync");
    x->f.gitops_managers = "other,my-sync";
}
/* blocked by a manager that is not GitOps: still a Warning, with the remedy */
F(dry_yield_kubectl)
{
    dry_conflict_yield(x);
    conflicts(x, "kubectl-edit");
}
/* `kubectl optipod release`: nothing is written, not even the annotations' removal */
F(released)
{
    x->rec.released = 1;
    x->rec.outcome = CTLREC_SKIPPED;
    snprintf(x->rec.reason, sizeof x->rec.reason, "released (optipod.io/managed: \"false\")");
}
F(released_disabled_annotated)
{
    released(x);
    decided(x, disabled, CTLREC_SKIPPED);
    x->rec.released = 1;
    snprintf(x->rec.reason, sizeof x->rec.reason, "released (optipod.io/managed: \"false\")");
    x->f.workload = web_ann;
    x->rec.release_annotations = 1;
}
F(released_usage_stale)
{
    released(x);
    x->f.decided = 0;
    x->f.usage = CTLSTEP_USAGE_STALE;
}
F(dry_owner_without_409)
{
    dry_conflict_yield(x);
    x->f.dry = answered(200);
}
F(dry_clear)
{
    live_read(x);
    x->f.dry = answered(200);
    conflict_set_init(&x->cs);
    x->f.cs = &x->cs;
}
F(dry_clear_loop_stopped)
{
    dry_clear(x);
    x->m.loop_stopped = 1;
}
F(dry_409_no_status)
{
    live_read(x);
    x->f.dry = answered(409);
}
F(dry_500)
{
    live_read(x);
    x->f.dry = answered(500);
}
F(write_409)
{
    dry_clear(x);
    x->f.write = answered(409);
}
F(write_done)
{
    dry_clear(x);
    x->f.write = answered(200);
}
F(write_done_dry_run)
{
    write_done(x);
    x->f.dry_run = 1;
}
F(write_done_forced)
{
    dry_conflict_force(x);
    x->f.write = answered(200);
}
F(rz_following)
{
    decided(x, rz_hook, CTLREC_APPLY);
    x->f.rz = (ctlstep_resize){.mode_ok = 1,
                               .following = 1,
                               .follow_pod = "web-a",
                               .follow_state = "InProgress",
                               .follow_due_ms = 4000};
}
F(rz_pod)
{
    decided(x, rz_hook, CTLREC_APPLY);
    x->f.rz = (ctlstep_resize){.mode_ok = 1, .pod = "web-a", .npods = 2};
}
F(rz_probe_busy)
{
    rz_pod(x);
    x->f.rz.probe_busy = 1;
}
F(rz_no_mode)
{
    rz_pod(x);
    x->f.rz.mode_ok = 0;
    x->f.ann_differ = 1;
}
F(rz_all_done_ssa_next)
{
    decided(x, rz_ssa_next, CTLREC_APPLY);
    x->f.rz = (ctlstep_resize){.mode_ok = 1, .npods = 2, .ndone = 2};
}
F(rz_all_done_webhook)
{
    decided(x, rz_hook, CTLREC_APPLY);
    x->f.rz = (ctlstep_resize){.mode_ok = 1, .npods = 2, .ndone = 2};
    x->f.ann_differ = 1;
}
F(rz_accepted)
{
    rz_pod(x);
    x->f.rz.answered = 1;
    x->f.rz.action = RESIZE_ACT_WAIT;
    x->f.rz.follow_due_ms = 300001;
    x->f.rz.what = "app: requests.cpu=500m";
}
F(rz_accepted_dry_run)
{
    rz_accepted(x);
    x->f.dry_run = 1;
}
F(rz_unsupported)
{
    rz_pod(x);
    x->f.rz.answered = 1;
    x->f.rz.action = RESIZE_ACT_UNSUPPORTED;
}
F(rz_refused)
{
    rz_pod(x);
    x->f.rz.answered = 1;
    x->f.rz.action = RESIZE_ACT_FALLBACK;
    x->f.rz.detail = "Infeasible";
}
F(rz_retry)
{
    rz_pod(x);
    x->f.rz.answered = 1;
    x->f.rz.action = RESIZE_ACT_RETRY;
    x->f.rz.detail = "HTTP 503";
}
F(hook_pods_current)
{
    decided(x, hook_now, CTLREC_APPLY);
}
F(hook_pods_differ)
{
    decided(x, hook_now, CTLREC_APPLY);
    x->f.pods = (ctlstep_pods){.counted = 1, .npods = 2, .ndiffer = 2, .first = "web-a"};
}
F(hook_next_pods_differ)
{
    hook_pods_differ(x);
    decided(x, hook_next, CTLREC_APPLY);
}
F(hook_skipped_pods_differ)
{
    hook_pods_differ(x);
    decided(x, hook_now, CTLREC_SKIPPED);
}
F(hook_ondelete)
{
    hook_pods_differ(x);
    x->f.workload = db_ondelete;
}
F(hook_did_not_take)
{
    hook_pods_differ(x);
    x->f.pods.nuninjected = 2;
    x->m.restart_gen = 2; /* web is at generation 2, rolled out */
    x->f.webhook_hint = "namespace shop is not labelled optipod.io/webhook=enabled";
}
F(hook_did_not_take_told)
{
    hook_did_not_take(x);
    x->m.uninjected_warned = 2;
}
F(hook_spec_changed_since)
{
    hook_did_not_take(x);
    x->m.restart_gen = 1;
}
F(hook_rolled_recently)
{
    hook_pods_differ(x);
    x->m.last_apply_ms = NOW - 1000;
}
F(hook_gate_waits)
{
    hook_pods_differ(x);
    x->gate = (rollout_out){.verdict = ROLLOUT_WAIT, .retry_ms = 10000};
    snprintf(x->gate.reason, sizeof x->gate.reason, "rollout of Deployment/shop/api in progress");
}
F(hook_restart_409)
{
    hook_pods_differ(x);
    x->f.restart = answered(409);
}
F(hook_restarted)
{
    hook_pods_differ(x);
    x->f.restart = answered(200);
}
F(hook_published_dry_run)
{
    hook_pods_differ(x);
    x->f.dry_run = 1;
    x->f.ann = answered(200);
}

/* --min-write-interval: the workload was written 10 s ago. */
static void written_lately(fixture *x)
{
    x->f.min_write_ms = MIN_WRITE;
    x->m.last_write_ms = NOW - 10000;
}
F(ssa_written_lately)
{
    written_lately(x);
}
F(ssa_written_an_interval_ago)
{
    written_lately(x);
    x->m.last_write_ms = NOW - MIN_WRITE;
}
F(ssa_no_min_interval)
{
    x->m.last_write_ms = NOW - 10000; /* --min-write-interval=0 */
}
F(rec_written_lately)
{
    rec_differs(x);
    written_lately(x);
}
F(release_written_lately)
{
    no_policy_annotated(x);
    written_lately(x);
}
F(hook_written_lately)
{
    hook_pods_differ(x);
    written_lately(x);
}
F(rz_written_lately)
{
    rz_pod(x);
    written_lately(x);
}
F(rz_following_written_lately)
{
    rz_following(x);
    written_lately(x);
}
F(write_answer_written_lately) /* the write's answer is read whatever the interval */
{
    write_done(x);
    written_lately(x);
}

/* DuplicateController: managedFields give requests.cpu to optipod at 300m,
 * and this process last wrote 500m there. */
static void optipod_holds(fixture *x, const char *value)
{
    x->ours[0] = (ctlstep_written){.container = "app", .field = "requests.cpu"};
    snprintf(x->ours[0].value, sizeof x->ours[0].value, "%s", value);
    x->f.live.ours = x->ours;
    x->f.live.nours = 1;
}
F(live_duplicate)
{
    live_read(x);
    we_wrote(x, "500m");
    optipod_holds(x, "300m");
}
F(live_duplicate_nothing_to_change)
{
    live_duplicate(x);
    x->f.live.nchanges = 0;
}
F(live_ours_as_written)
{
    live_read(x);
    we_wrote(x, "500m");
    optipod_holds(x, "0.5"); /* the same quantity */
}
F(live_ours_never_written_here)
{
    live_read(x);
    optipod_holds(x, "300m"); /* a restarted optipod remembers no write */
}
F(duplicate_left_alone)
{
    x->m.duplicate_until_ms = NOW + 1000;
}
F(duplicate_left_alone_recommend)
{
    rec_differs(x);
    duplicate_left_alone(x);
}
F(duplicate_period_over)
{
    x->m.duplicate_until_ms = NOW;
}

typedef struct row {
    const char *name;
    void (*facts)(fixture *x);
    enum ctlstep_kind kind;
    enum ctlrec_outcome outcome; /* END only */
    const char *reason;          /* END: a part of it */
    uint64_t requeue_ms;
    unsigned fx, no_fx; /* side effects it must, and must not, carry */
    const char *event;  /* an Event it carries */
} row;

#define NO      CTLSTEP_NO_REQUEUE
#define END(oc) CTLSTEP_END, CTLREC_##oc
#define GO(k)   CTLSTEP_##k, CTLREC_APPLY

static const row rows[] = {
    /* the workload, the policy, the decision */
    {"workload gone", gone, END(SKIPPED), "the workload is gone", NO, 0, 0, NULL},
    {"policy gone mid-job", policy_gone, END(SKIPPED), "policy shop/p is gone", NO, 0,
     CTLSTEP_FX_RELEASED, NULL},
    {"released", released, END(SKIPPED), "released", NO, 0,
     CTLSTEP_FX_RELEASED | CTLSTEP_FX_REMEMBER_ANN | CTLSTEP_FX_SLOT_TAKE, NULL},
    {"released under a Disabled policy keeps its annotations", released_disabled_annotated,
     END(SKIPPED), "released", NO, 0, CTLSTEP_FX_RELEASED | CTLSTEP_FX_REMEMBER_ANN, NULL},
    {"released: no usage fetched", released_usage_stale, END(SKIPPED), "released", NO, 0, 0, NULL},
    {"no policy, no annotations", no_policy_bare, END(SKIPPED), "no policy selects", NO, 0, 0,
     NULL},
    {"no policy, annotations: release", no_policy_annotated, GO(ANNOTATE), NULL, NO,
     CTLSTEP_FX_REMEMBER_ANN, 0, NULL},
    {"released at this version", no_policy_released_here, END(SKIPPED), "no policy", NO, 0, 0,
     NULL},
    {"same body over the same version", no_policy_same_body, END(UNCHANGED),
     "waiting for the watch", NO, 0, 0, NULL},
    {"release answered", no_policy_release_done, END(SKIPPED), "annotations removed", NO,
     CTLSTEP_FX_RELEASED, 0, NULL},
    {"release failed", no_policy_release_failed, END(ERROR), "annotations apply: HTTP 500", NO, 0,
     CTLSTEP_FX_RELEASED, NULL},
    {"usage stale", usage_stale, GO(FETCH_USAGE), NULL, NO, 0, 0, NULL},
    {"metrics unavailable", metrics_error, END(ERROR), "metrics unavailable", NO, 0, 0, NULL},
    /* Recommend */
    {"recommend: publish", rec_differs, GO(ANNOTATE), NULL, NO, CTLSTEP_FX_REMEMBER_ANN, 0, NULL},
    {"recommend: published already", rec_current, END(UNCHANGED), "already published", NO, 0, 0,
     NULL},
    {"recommend: a skip keeps its reason", rec_insufficient, END(SKIPPED), "insufficient data", NO,
     0, 0, NULL},
    {"recommend: published", rec_published, END(APPLY), "published to annotations", NO, 0, 0,
     "RecommendationUpdated"},
    /* the ssa strategy */
    {"ssa: within the threshold", ssa_within_threshold, END(UNCHANGED), "the decision's reason", NO,
     0, 0, NULL},
    {"ssa: onNextRestart reads the live object, no gate", ssa_apply, GO(READ_LIVE), NULL, NO, 0,
     CTLSTEP_FX_SLOT_TAKE, NULL},
    {"ssa: once per period", ssa_rolled_recently, END(SKIPPED), "within this reconcile period",
     PERIOD - 100000, 0, 0, NULL},
    {"ssa: a period later", ssa_rolled_a_period_ago, GO(READ_LIVE), NULL, NO, 0, 0, NULL},
    {"ssa: immediate takes the slot", ssa_now_go, GO(READ_LIVE), NULL, NO, CTLSTEP_FX_SLOT_TAKE, 0,
     NULL},
    {"ssa: immediate waits at the gate", ssa_now_wait, END(SKIPPED),
     "rollout deferred: "
     "PodDisruptionBudget",
     30000, CTLSTEP_FX_DEFERRED, CTLSTEP_FX_SLOT_TAKE, "RolloutDeferred"},
    {"ssa: a stuck holder is released", ssa_now_holder_stuck, GO(READ_LIVE), NULL, NO,
     CTLSTEP_FX_SLOT_FREE | CTLSTEP_FX_SLOT_TAKE, 0, "RolloutStuck"},
    {"ssa: no gate answer", ssa_now_no_gate, END(ERROR), "rollout gate", NO, 0, 0, NULL},
    {"ssa: OnDelete is not gated", ondelete_immediate, GO(READ_LIVE), NULL, NO, 0,
     CTLSTEP_FX_SLOT_TAKE, NULL},
    {"live: 404", live_404, END(SKIPPED), "the workload is gone", NO, 0, 0, NULL},
    {"live: 500", live_500, END(ERROR), "GET: HTTP 500: the message", NO, 0, 0, NULL},
    {"live: not sent", live_unsent, END(ERROR), "GET: no route", NO, 0, 0, NULL},
    {"live: unreadable", live_unreadable, END(ERROR), "unreadable object not JSON", NO, 0, 0, NULL},
    {"live: already there", live_unchanged, END(UNCHANGED), "already has the recommended", NO, 0, 0,
     NULL},
    {"live: changes, nobody took anything back", live_changes, GO(DRY_RUN), NULL, NO,
     CTLSTEP_FX_LOOP, CTLSTEP_FX_RECLAIM_COUNTED, NULL},
    {"live: a take-back is counted once", live_first_take_back, GO(DRY_RUN), NULL, NO,
     CTLSTEP_FX_LOOP | CTLSTEP_FX_RECLAIM_COUNTED, 0, NULL},
    {"live: an owner of a value we never wrote took nothing back",
     live_owner_of_what_we_never_wrote, GO(DRY_RUN), NULL, NO, CTLSTEP_FX_LOOP,
     CTLSTEP_FX_RECLAIM_COUNTED, NULL},
    {"live: our value still there is no take-back", live_ours_still_there, GO(DRY_RUN), NULL, NO, 0,
     CTLSTEP_FX_RECLAIM_COUNTED, NULL},
    {"live: replaced with no other owner is no take-back", live_ours_replaced_nobody_owns,
     GO(DRY_RUN), NULL, NO, 0, CTLSTEP_FX_RECLAIM_COUNTED, NULL},
    {"live: the same take-back seen again (409 retry)", live_same_take_back_again, GO(DRY_RUN),
     NULL, NO, CTLSTEP_FX_LOOP, CTLSTEP_FX_RECLAIM_COUNTED | CTLSTEP_FX_LOOP_ENTERED, NULL},
    {"live: seen a third time, counted twice: no stop", live_same_take_back_third_look, GO(DRY_RUN),
     NULL, NO, 0, CTLSTEP_FX_LOOP_ENTERED, NULL},
    {"live: the third take-back stops", live_third_take_back, END(CONFLICT),
     "kustomize-controller took the fields back 3 times", NO,
     CTLSTEP_FX_LOOP | CTLSTEP_FX_LOOP_ENTERED | CTLSTEP_FX_CONFLICT, 0, "GitOpsConflictLoop"},
    {"live: stopped stays stopped", live_stopped_quiet, END(CONFLICT), "GitOpsConflictLoop", NO,
     CTLSTEP_FX_LOOP, CTLSTEP_FX_LOOP_ENTERED, NULL},
    {"dry run: conflict, not forced", dry_conflict_yield, END(CONFLICT),
     "fields owned by argocd-controller; updateStrategy.forceConflicts is false", NO,
     CTLSTEP_FX_CONFLICT, 0, "SSAConflict"},
    {"dry run: conflict, forced", dry_conflict_force, GO(WRITE), NULL, NO, CTLSTEP_FX_CONFLICT, 0,
     "SSAConflict"},
    {"dry run: forced over kubectl is a take-over", dry_takeover_kubectl, GO(WRITE), NULL, NO,
     CTLSTEP_FX_TAKEN_OVER, 0, "SSATakeover"},
    {"dry run: forced over Helm is a conflict", dry_takeover_helm, GO(WRITE), NULL, NO,
     CTLSTEP_FX_CONFLICT | CTLSTEP_FX_TAKEN_OVER, 0, "SSAConflict"},
    {"dry run: forced over a listed manager is a conflict", dry_takeover_listed, GO(WRITE), NULL,
     NO, CTLSTEP_FX_CONFLICT | CTLSTEP_FX_TAKEN_OVER, 0, "SSAConflict"},
    {"dry run: blocked by kubectl is a conflict", dry_yield_kubectl, END(CONFLICT), "kubectl-edit",
     NO, CTLSTEP_FX_CONFLICT, 0, "SSAConflict"},
    {"dry run: an owner in managedFields is a conflict", dry_owner_without_409, END(CONFLICT),
     "argocd-controller", NO, 0, 0, "SSAConflict"},
    {"dry run: clear", dry_clear, GO(WRITE), NULL, NO, CTLSTEP_FX_CONFLICT, 0, NULL},
    {"dry run: clear keeps a loop's conflict", dry_clear_loop_stopped, GO(WRITE), NULL, NO, 0,
     CTLSTEP_FX_CONFLICT, NULL},
    {"dry run: 409 without a Status", dry_409_no_status, END(ERROR), "conflict pre-check: HTTP 409",
     NO, 0, 0, NULL},
    {"dry run: 500", dry_500, END(ERROR), "conflict pre-check: HTTP 500", NO, 0, 0, NULL},
    {"write: 409 retried", write_409, END(ERROR), "changed meanwhile", NO, 0, CTLSTEP_FX_WRITTEN,
     NULL},
    {"write: applied", write_done, END(APPLY), "applied app/requests.cpu=500m;", NO,
     CTLSTEP_FX_WRITTEN | CTLSTEP_FX_LOOP, 0, "ResourcesApplied"},
    {"write: dry run remembers nothing", write_done_dry_run, END(APPLY), "dry run: would apply", NO,
     0, CTLSTEP_FX_WRITTEN | CTLSTEP_FX_LOOP, "ResourcesApplied"},
    {"write: forced says so", write_done_forced, END(APPLY), "(forced over another manager)", NO,
     CTLSTEP_FX_WRITTEN, 0, NULL},
    /* in-place resize, then the strategy */
    {"resize: one in flight", rz_following, END(SKIPPED), "waiting for pod web-a's resize", 4000, 0,
     0, NULL},
    {"resize: the next pod", rz_pod, GO(RESIZE), NULL, NO, 0, 0, NULL},
    {"resize: the first pod PATCH's answer first", rz_probe_busy, END(SKIPPED),
     "first answer to an in-place resize", CTLSTEP_PROBE_MS, 0, 0, NULL},
    {"resize: not served, the strategy", rz_no_mode, GO(ANNOTATE), NULL, NO, 0, 0, NULL},
    {"resize: done, onNextRestart leaves the template", rz_all_done_ssa_next, END(UNCHANGED),
     "left to the next rollout", NO, 0, 0, NULL},
    {"resize: done, the webhook's annotations follow", rz_all_done_webhook, GO(ANNOTATE), NULL, NO,
     0, 0, NULL},
    {"resize: accepted, followed", rz_accepted, END(APPLY), "accepted", 300001, 0, 0, NULL},
    {"resize: dry run, the strategy at once", rz_accepted_dry_run, END(APPLY),
     "dry run: would resize pod web-a", 0, 0, 0, "ResourcesResized"},
    {"resize: unsupported", rz_unsupported, END(SKIPPED), "not supported", 0, 0, 0, NULL},
    {"resize: refused", rz_refused, END(SKIPPED), "refused: Infeasible", 0, 0, 0, NULL},
    {"resize: retried", rz_retry, END(ERROR), "HTTP 503", NO, 0, 0, NULL},
    /* the webhook strategy's restart */
    {"restart: pods current", hook_pods_current, END(UNCHANGED), "already published", NO, 0, 0,
     NULL},
    {"restart: pods differ", hook_pods_differ, GO(RESTART), NULL, NO, CTLSTEP_FX_SLOT_TAKE, 0,
     NULL},
    {"restart: onNextRestart never", hook_next_pods_differ, END(UNCHANGED), "already published", NO,
     0, 0, NULL},
    {"restart: not on a skip", hook_skipped_pods_differ, END(SKIPPED), "the decision's reason", NO,
     0, 0, NULL},
    {"restart: OnDelete", hook_ondelete, END(SKIPPED), "2 of 2 pods (web-a, ...) run other values",
     NO, 0, CTLSTEP_FX_SLOT_TAKE, NULL},
    {"restart: the webhook did not inject", hook_did_not_take, END(SKIPPED),
     "did not inject the pods of optipod's last restart", NO, CTLSTEP_FX_WARNED, 0,
     "WebhookNotInjecting"},
    {"restart: told once", hook_did_not_take_told, END(SKIPPED), "not restarting again", NO, 0,
     CTLSTEP_FX_WARNED, NULL},
    {"restart: the spec changed since", hook_spec_changed_since, GO(RESTART), NULL, NO, 0, 0, NULL},
    {"restart: once per period", hook_rolled_recently, END(SKIPPED), "within this reconcile",
     PERIOD - 1000, 0, 0, NULL},
    {"restart: the gate waits", hook_gate_waits, END(SKIPPED), "rollout deferred", 10000,
     CTLSTEP_FX_DEFERRED, 0, "RolloutDeferred"},
    {"restart: 409", hook_restart_409, END(ERROR), "restart: the workload changed meanwhile", NO, 0,
     CTLSTEP_FX_RESTARTED, NULL},
    {"restart: rolled out", hook_restarted, END(APPLY), "rolled out: 2 of 2 pods", NO,
     CTLSTEP_FX_RESTARTED, 0, "RolloutTriggered"},
    {"restart: a dry run shows it after the annotations", hook_published_dry_run, GO(RESTART), NULL,
     NO, CTLSTEP_FX_SLOT_TAKE, 0, "RecommendationUpdated"},
    /* --min-write-interval: whatever the cause, one write per interval */
    {"write: a success is a write", write_done, END(APPLY), NULL, NO, CTLSTEP_FX_WROTE, 0, NULL},
    {"write: a dry run is none", write_done_dry_run, END(APPLY), NULL, NO, 0, CTLSTEP_FX_WROTE,
     NULL},
    {"write: a 409 is none", write_409, END(ERROR), NULL, NO, 0, CTLSTEP_FX_WROTE, NULL},
    {"annotations: published is a write", rec_published, END(APPLY), NULL, NO, CTLSTEP_FX_WROTE, 0,
     NULL},
    {"annotations: released is a write", no_policy_release_done, END(SKIPPED), NULL, NO,
     CTLSTEP_FX_WROTE, 0, NULL},
    {"annotations: a failed release is none", no_policy_release_failed, END(ERROR), NULL, NO, 0,
     CTLSTEP_FX_WROTE, NULL},
    {"restart: rolled out is a write", hook_restarted, END(APPLY), NULL, NO, CTLSTEP_FX_WROTE, 0,
     "RolloutTriggered"},
    {"resize: accepted is a write", rz_accepted, END(APPLY), NULL, 300001, CTLSTEP_FX_WROTE, 0,
     NULL},
    {"resize: a dry run is none", rz_accepted_dry_run, END(APPLY), NULL, 0, 0, CTLSTEP_FX_WROTE,
     "ResourcesResized"},
    {"ssa: written within the interval waits for its end", ssa_written_lately, END(SKIPPED),
     "--min-write-interval", MIN_WRITE - 10000, 0, CTLSTEP_FX_SLOT_TAKE, NULL},
    {"ssa: an interval later", ssa_written_an_interval_ago, GO(READ_LIVE), NULL, NO, 0, 0, NULL},
    {"ssa: no minimum", ssa_no_min_interval, GO(READ_LIVE), NULL, NO, 0, 0, NULL},
    {"recommend: the publish waits for the interval", rec_written_lately, END(SKIPPED),
     "the annotations apply waits", MIN_WRITE - 10000, 0, CTLSTEP_FX_REMEMBER_ANN, NULL},
    {"release: waits for the interval", release_written_lately, END(SKIPPED),
     "the annotations' release waits", MIN_WRITE - 10000, 0, CTLSTEP_FX_REMEMBER_ANN, NULL},
    {"restart: waits for the interval", hook_written_lately, END(SKIPPED), "the restart waits",
     MIN_WRITE - 10000, 0, CTLSTEP_FX_SLOT_TAKE, NULL},
    {"resize: waits for the interval", rz_written_lately, END(SKIPPED), "the in-place resize waits",
     MIN_WRITE - 10000, 0, 0, NULL},
    {"resize: a resize followed is still followed", rz_following_written_lately, END(SKIPPED),
     "waiting for pod web-a's resize", 4000, 0, 0, NULL},
    {"write: an answer is read whatever the interval", write_answer_written_lately, END(APPLY),
     NULL, NO, CTLSTEP_FX_WRITTEN, 0, "ResourcesApplied"},
    /* DuplicateController */
    {"live: our value rewritten under optipod's name", live_duplicate, END(CONFLICT),
     "DuplicateController: app/requests.cpu changed under field manager optipod", PERIOD,
     CTLSTEP_FX_DUPLICATE | CTLSTEP_FX_CONFLICT, CTLSTEP_FX_LOOP | CTLSTEP_FX_RECLAIM_COUNTED,
     "DuplicateController"},
    {"live: rewritten, nothing left to change, still told", live_duplicate_nothing_to_change,
     END(CONFLICT), "DuplicateController", PERIOD, CTLSTEP_FX_DUPLICATE, 0, "DuplicateController"},
    {"live: the same quantity is ours", live_ours_as_written, GO(DRY_RUN), NULL, NO, 0,
     CTLSTEP_FX_DUPLICATE, NULL},
    {"live: nothing written by this process, nothing to tell", live_ours_never_written_here,
     GO(DRY_RUN), NULL, NO, 0, CTLSTEP_FX_DUPLICATE, NULL},
    {"duplicate: left alone for the period", duplicate_left_alone, END(CONFLICT),
     "left alone until the reconcile period ends", 1000, 0, CTLSTEP_FX_DUPLICATE_OVER, NULL},
    {"duplicate: left alone whatever the strategy", duplicate_left_alone_recommend, END(CONFLICT),
     "DuplicateController", 1000, 0, CTLSTEP_FX_REMEMBER_ANN, NULL},
    {"duplicate: the period over, evaluated again", duplicate_period_over, GO(READ_LIVE), NULL, NO,
     CTLSTEP_FX_DUPLICATE_OVER | CTLSTEP_FX_CONFLICT, 0, NULL},
};

static int has_event(const ctl_step *s, const char *reason)
{
    for (int i = 0; i < s->nevents; i++)
        if (strcmp(s->events[i].reason, reason) == 0)
            return 1;
    return 0;
}

static void test_rows(void)
{
    int bad = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        fixture x;
        base(&x);
        r->facts(&x);
        ctl_step s;
        ctlstep_next(&x.f, &s);
        const char *why = NULL;
        if (s.kind != r->kind)
            why = ctlstep_kind_name(s.kind);
        else if (s.kind == CTLSTEP_END && s.outcome != r->outcome)
            why = ctlrec_outcome_name(s.outcome);
        else if (r->reason && !strstr(s.reason, r->reason))
            why = "reason";
        else if (s.kind == CTLSTEP_END && s.requeue_ms != r->requeue_ms)
            why = "requeue";
        else if ((s.fx & r->fx) != r->fx || (s.fx & r->no_fx))
            why = "side effects";
        else if (r->event && !has_event(&s, r->event))
            why = "event";
        else if (!r->event && s.nevents && strcmp(s.events[0].reason, "SSAConflict") != 0 &&
                 strcmp(s.events[0].reason, "RolloutStuck") != 0 &&
                 strcmp(s.events[0].reason, "RecommendationUpdated") != 0 &&
                 strcmp(s.events[0].reason, "ResourcesApplied") != 0)
            why = "an unexpected event";
        if (why) {
            fprintf(stderr, "row \"%s\": %s (got %s %s: \"%s\", requeue %llu, fx %#x, %d events)\n",
                    r->name, why, ctlstep_kind_name(s.kind), ctlrec_outcome_name(s.outcome),
                    s.reason, (unsigned long long)s.requeue_ms, s.fx, s.nevents);
            bad++;
        }
    }
    ASSERT_EQ_INT(bad, 0);
}

/* The miscount, as a sequence: our write lands, Git re-applies (one
 * take-back), and our next two writes meet 409s. Every retry reads the same
 * take-back: one reclaim in all, and the third write goes. */
static void test_a_raced_take_back_is_one_reclaim(void)
{
    fixture x;
    base(&x);
    conflict_loop loop;
    conflict_loop_init(&loop);
    int counted = 0, stopped = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        base(&x);
        live_first_take_back(&x);
        x.m.loop = &loop;
        x.m.reclaim_counted = counted;
        ctl_step s;
        ctlstep_next(&x.f, &s);
        ASSERT_EQ_INT(s.kind, CTLSTEP_DRY_RUN);
        if (s.fx & CTLSTEP_FX_RECLAIM_COUNTED)
            counted = 1;
        if (s.fx & CTLSTEP_FX_LOOP) {
            loop = s.loop;
            stopped |= s.loop_stopped;
        }
    }
    ASSERT_EQ_INT(counted, 1);
    ASSERT_EQ_INT(stopped, 0);
    ASSERT_EQ_INT(loop.nreclaims, 1);
}

/* Every step kind and outcome has a name (logs). */
/* A take-over from anyone but a GitOps manager is Normal, counted, and clears
 * the conflict; from a GitOps manager it is a Warning with the remedy. */
static void test_takeover_or_conflict(void)
{
    fixture x;
    ctl_step s;
    base(&x);
    dry_takeover_kubectl(&x);
    ctlstep_next(&x.f, &s);
    ASSERT_EQ_INT(s.nevents, 1);
    ASSERT_EQ_INT(s.events[0].type, KEVENTS_NORMAL);
    ASSERT_STR_CONTAINS(s.events[0].note, "kubectl-client-side-apply");
    ASSERT_EQ_INT(s.taken_over, 1);
    ASSERT(s.fx & CTLSTEP_FX_CONFLICT);
    ASSERT_STR_EQ(s.conflict, "");
    ASSERT_EQ_INT(s.force, 1);

    base(&x);
    dry_takeover_helm(&x);
    ctlstep_next(&x.f, &s);
    ASSERT_EQ_INT(s.nevents, 1);
    ASSERT_EQ_INT(s.events[0].type, KEVENTS_WARNING);
    ASSERT_STR_CONTAINS(s.events[0].note, "Remedy: exclude the resources from its sync");
    ASSERT_EQ_INT(s.taken_over, 0);
    ASSERT_STR_EQ(s.conflict, "helm");

    base(&x);
    dry_yield_kubectl(&x);
    ctlstep_next(&x.f, &s);
    ASSERT_EQ_INT(s.events[0].type, KEVENTS_WARNING);
    ASSERT_STR_CONTAINS(s.events[0].note, "Remedy: let optipod own the resources");
    ASSERT_EQ_INT(s.taken_over, 0);
}

static void test_names(void)
{
    for (int k = CTLSTEP_END; k <= CTLSTEP_RESTART; k++)
        ASSERT(strcmp(ctlstep_kind_name((enum ctlstep_kind)k), "?") != 0);
}

int main(void)
{
    setup();
    TEST_RUN(test_rows);
    TEST_RUN(test_a_raced_take_back_is_one_reclaim);
    TEST_RUN(test_takeover_or_conflict);
    TEST_RUN(test_names);
    teardown();
    return test_summary();
}
