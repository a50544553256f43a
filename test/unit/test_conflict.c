/* conflict: the recorded 409, managedFields truth, the Event note, the force
 * decision and the reclaim-loop step function. */
#include "apply/conflict.h"
#include "test.h"

#include <errno.h>

#include <cJSON.h>

#define CPU    ".spec.template.spec.containers[name=\"nginx\"].resources.requests.cpu"
#define MEM    ".spec.template.spec.containers[name=\"nginx\"].resources.requests.memory"
#define MINUTE (60 * 1000LL)

static char *fixture(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", test_fixture_dir(), name);
    return test_read_file(path, len);
}

/* The state the 409 was answered from: argocd-controller owned the requests
 * (apply-force-200 says it lost them to the forced apply), optipod nothing. */
static void argocd_state(mfields *mf)
{
    size_t len;
    char *txt = fixture("apply-force-200.json", &len);
    cJSON *obj = cJSON_ParseWithLength(txt, len);
    free(txt);
    cJSON *arr = cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "metadata"), "managedFields");
    cJSON *argo = cJSON_GetArrayItem(arr, 0);
    ASSERT_STR_EQ(cJSON_GetObjectItem(argo, "manager")->valuestring, "argocd-controller");
    cJSON *item = cJSON_GetObjectItem(
        cJSON_GetObjectItem(
            cJSON_GetObjectItem(
                cJSON_GetObjectItem(
                    cJSON_GetObjectItem(cJSON_GetObjectItem(argo, "fieldsV1"), "f:spec"),
                    "f:template"),
                "f:spec"),
            "f:containers"),
        "k:{\"name\":\"nginx\"}");
    cJSON_AddItemToObject(item, "f:resources",
                          cJSON_Parse("{\"f:requests\":{\"f:cpu\":{},\"f:memory\":{}}}"));
    cJSON_DeleteItemFromArray(arr, 1); /* optipod's entry */
    ASSERT_EQ_INT(mfields_parse(mf, obj, NULL), 0);
    cJSON_Delete(obj);
}

static void test_recorded_409_merged_with_managed_fields(void)
{
    size_t len;
    char *body = fixture("apply-conflict-409.json", &len);
    kstatus st;
    ASSERT_EQ_INT(kstatus_parse(body, len, &st), 0);
    free(body);
    ASSERT_EQ_INT(st.code, 409);

    conflict_set c;
    conflict_set_init(&c);
    ASSERT_EQ_INT(conflict_add_status(&c, &st), 1); /* memory, listed twice, once */
    ASSERT_EQ_INT(conflict_add_status(&c, &st), 0);
    ASSERT_EQ_INT(c.n, 1);
    ASSERT_STR_EQ(c.items[0].manager, "argocd-controller");
    ASSERT_STR_EQ(c.items[0].operation, "Apply");
    ASSERT_STR_EQ(c.items[0].field, MEM);

    /* the server left cpu out; managedFields has it */
    mfields mf;
    argocd_state(&mf);
    const char *const targets[] = {CPU, MEM};
    ASSERT_EQ_INT(conflict_add_fields(&c, &mf, "optipod", targets, 2), 1);
    ASSERT_EQ_INT(c.n, 2);
    ASSERT_STR_EQ(c.items[1].field, CPU);
    ASSERT_EQ_INT(conflict_managers(&c), 1);
    mfields_release(&mf);

    ASSERT_EQ_INT(conflict_decide(&c, 1), CONFLICT_FORCE);
    ASSERT_EQ_INT(conflict_decide(&c, 0), CONFLICT_YIELD);
    ASSERT_STR_EQ(conflict_decision_name(CONFLICT_YIELD), "yield");
    conflict_set empty;
    conflict_set_init(&empty);
    ASSERT_EQ_INT(conflict_decide(&empty, 1), CONFLICT_APPLY);

    char note[CONFLICT_NOTE_MAX + 1];
    int n = conflict_note(&c, CONFLICT_FORCE, note, sizeof(note));
    ASSERT_STR_EQ(note,
                  "2 conflicting fields with 1 other manager: \"argocd-controller\" (Apply) "
                  "owns " MEM ", " CPU "; forcing the apply (updateStrategy.forceConflicts: true)");
    ASSERT_EQ_INT(n, strlen(note));
}

static void test_update_managers_and_other_causes(void)
{
    kstatus st;
    memset(&st, 0, sizeof(st));
    st.code = 409;
    st.ncauses = 3;
    snprintf(st.causes[0].reason, sizeof(st.causes[0].reason), "FieldManagerConflict");
    snprintf(st.causes[0].message, sizeof(st.causes[0].message),
             "conflict with \"kubectl-edit\" using apps/v1");
    snprintf(st.causes[0].field, sizeof(st.causes[0].field), CPU);
    snprintf(st.causes[1].reason, sizeof(st.causes[1].reason), "FieldValueRequired");
    snprintf(st.causes[1].field, sizeof(st.causes[1].field), "spec.x");
    snprintf(st.causes[2].reason, sizeof(st.causes[2].reason), "FieldManagerConflict");
    snprintf(st.causes[2].message, sizeof(st.causes[2].message), "conflict with \"we\\\"ird\"");
    snprintf(st.causes[2].field, sizeof(st.causes[2].field), MEM);
    conflict_set c;
    conflict_set_init(&c);
    ASSERT_EQ_INT(conflict_add_status(&c, &st), 2);
    ASSERT_STR_EQ(c.items[0].manager, "kubectl-edit");
    ASSERT_STR_EQ(c.items[0].operation, "Update");
    ASSERT_STR_EQ(c.items[0].api_version, "apps/v1");
    ASSERT_STR_EQ(c.items[1].manager, "we\"ird");
    ASSERT_EQ_INT(conflict_managers(&c), 2);

    /* managedFields of container-removal-after-update-operation: an Update owner */
    size_t len;
    char *txt = fixture("container-removal-after-update-operation-200.json", &len);
    mfields mf;
    ASSERT_EQ_INT(mfields_parse_json(&mf, txt, len, NULL), 0);
    free(txt);
    const char *const t[] = {".spec.template.spec.containers[name=\"app\"].resources.requests.cpu"};
    conflict_set u;
    conflict_set_init(&u);
    ASSERT_EQ_INT(conflict_add_fields(&u, &mf, "someone-else", t, 1), 1);
    ASSERT_STR_EQ(u.items[0].manager, "optipod");
    ASSERT_STR_EQ(u.items[0].operation, "Update");
    ASSERT_STR_EQ(u.items[0].api_version, "apps/v1");
    ASSERT_EQ_INT(conflict_add_fields(&u, &mf, "optipod", t, 1), 0);
    mfields_release(&mf);

    char note[CONFLICT_NOTE_MAX + 1];
    conflict_note(&u, CONFLICT_YIELD, note, sizeof(note));
    ASSERT_STR_EQ(note, "1 conflicting field with 1 other manager: \"optipod\" (Update apps/v1) "
                        "owns .spec.template.spec.containers[name=\"app\"].resources.requests.cpu"
                        "; not forcing (updateStrategy.forceConflicts: false): the fields stay "
                        "with their owners");
}

static void test_note_is_bounded(void)
{
    conflict_set c;
    conflict_set_init(&c);
    kstatus st;
    memset(&st, 0, sizeof(st));
    st.ncauses = KSTATUS_MAX_CAUSES;
    for (int i = 0; i < KSTATUS_MAX_CAUSES; i++) {
        snprintf(st.causes[i].reason, sizeof(st.causes[i].reason), "FieldManagerConflict");
        snprintf(st.causes[i].message, sizeof(st.causes[i].message), "conflict with \"mgr-%d\"",
                 i % 3);
        snprintf(st.causes[i].field, sizeof(st.causes[i].field),
                 ".spec.template.spec.containers[name=\"container-number-%d\"].resources."
                 "requests.memory",
                 i);
    }
    ASSERT_EQ_INT(conflict_add_status(&c, &st), 32);
    /* one more than fits is counted, not stored */
    snprintf(st.causes[0].field, sizeof(st.causes[0].field), ".spec.other");
    st.ncauses = 1;
    conflict_add_status(&c, &st);
    ASSERT_EQ_INT(c.dropped, 1);
    char note[CONFLICT_NOTE_MAX + 1];
    int n = conflict_note(&c, CONFLICT_FORCE, note, sizeof(note));
    ASSERT_CMP_INT(n, <=, CONFLICT_NOTE_MAX);
    ASSERT_EQ_INT(n, strlen(note));
    ASSERT_STR_CONTAINS(note,
                        "33 conflicting fields with 3 other managers: \"mgr-0\" (Apply) owns");
    ASSERT_STR_CONTAINS(note, " more; forcing the apply (updateStrategy.forceConflicts: true)");
    ASSERT_STR_CONTAINS(note, "; \"mgr-1\" (Apply) owns");
    /* fields are never cut in the middle */
    ASSERT_STR_CONTAINS(note, "requests.memory ... and ");
    /* a small buffer truncates safely */
    char small[16];
    ASSERT_EQ_INT(conflict_note(&c, CONFLICT_FORCE, small, sizeof(small)), 15);
}

static void test_loop_flux_reclaims_every_interval(void)
{
    conflict_loop_cfg cfg = {0};
    conflict_loop st;
    conflict_loop_out out;
    conflict_loop_init(&st);

    conflict_loop_step(&st, &cfg, 0, CONFLICT_EV_APPLIED, NULL, &out);
    ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE);
    conflict_loop_step(&st, &cfg, 10 * MINUTE, CONFLICT_EV_RECLAIMED, "kustomize-controller", &out);
    ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE);
    ASSERT_EQ_INT(out.reclaims, 1);
    conflict_loop_step(&st, &cfg, 11 * MINUTE, CONFLICT_EV_APPLIED, NULL, &out);
    conflict_loop_step(&st, &cfg, 20 * MINUTE, CONFLICT_EV_RECLAIMED, "kustomize-controller", &out);
    ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE);
    conflict_loop_step(&st, &cfg, 21 * MINUTE, CONFLICT_EV_APPLIED, NULL, &out);
    conflict_loop_step(&st, &cfg, 30 * MINUTE, CONFLICT_EV_RECLAIMED, "kustomize-controller", &out);
    ASSERT_EQ_INT(out.action, CONFLICT_STOP_LOOP);
    ASSERT_EQ_INT(out.entered, 1);
    ASSERT_EQ_INT(out.reclaims, 3);
    ASSERT_STR_EQ(out.manager, "kustomize-controller");
    ASSERT_EQ_INT(out.resume_at, 90 * MINUTE);

    /* still fighting while stopped: the quiet clock restarts, no second event */
    conflict_loop_step(&st, &cfg, 40 * MINUTE, CONFLICT_EV_RECLAIMED, "kustomize-controller", &out);
    ASSERT_EQ_INT(out.action, CONFLICT_STOP_LOOP);
    ASSERT_EQ_INT(out.entered, 0);
    ASSERT_EQ_INT(out.resume_at, 100 * MINUTE);
    conflict_loop_step(&st, &cfg, 99 * MINUTE, CONFLICT_EV_QUIET, NULL, &out);
    ASSERT_EQ_INT(out.action, CONFLICT_STOP_LOOP);
    ASSERT_EQ_INT(out.resumed, 0);

    /* quiet for the window: resume on probation */
    conflict_loop_step(&st, &cfg, 100 * MINUTE, CONFLICT_EV_QUIET, NULL, &out);
    ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE);
    ASSERT_EQ_INT(out.resumed, 1);
    ASSERT_EQ_INT(st.state, CONFLICT_LOOP_PROBATION);

    /* one reclaim on probation stops again, quiet window doubled */
    conflict_loop_step(&st, &cfg, 101 * MINUTE, CONFLICT_EV_APPLIED, NULL, &out);
    conflict_loop_step(&st, &cfg, 110 * MINUTE, CONFLICT_EV_RECLAIMED, "kustomize-controller",
                       &out);
    ASSERT_EQ_INT(out.action, CONFLICT_STOP_LOOP);
    ASSERT_EQ_INT(out.entered, 1);
    ASSERT_EQ_INT(out.resume_at, 230 * MINUTE);
    ASSERT_EQ_INT(st.strikes, 2);

    /* time going backwards is read as no time passing */
    conflict_loop_step(&st, &cfg, 0, CONFLICT_EV_QUIET, NULL, &out);
    ASSERT_EQ_INT(out.action, CONFLICT_STOP_LOOP);

    /* resume, then a full quiet window on probation: back to normal */
    conflict_loop_step(&st, &cfg, 230 * MINUTE, CONFLICT_EV_QUIET, NULL, &out);
    ASSERT_EQ_INT(out.resumed, 1);
    conflict_loop_step(&st, &cfg, 290 * MINUTE, CONFLICT_EV_QUIET, NULL, &out);
    ASSERT_EQ_INT(st.state, CONFLICT_LOOP_OK);
    ASSERT_EQ_INT(st.strikes, 0);
    ASSERT_EQ_INT(st.quiet_ms, 60 * MINUTE);
    conflict_loop_step(&st, &cfg, 300 * MINUTE, CONFLICT_EV_RECLAIMED, "argocd-controller", &out);
    ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE); /* one reclaim is not a loop */
}

static void test_loop_sparse_reclaims_never_stop(void)
{
    conflict_loop_cfg cfg = {.max_reclaims = 3, .window_ms = 60 * MINUTE};
    conflict_loop st;
    conflict_loop_out out;
    conflict_loop_init(&st);
    for (int i = 0; i < 20; i++) {
        conflict_loop_step(&st, &cfg, i * 40 * MINUTE, CONFLICT_EV_RECLAIMED, "argocd-controller",
                           &out);
        ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE);
        ASSERT_CMP_INT(out.reclaims, <=, 2);
    }
    /* N = 2, 5-minute window */
    cfg = (conflict_loop_cfg){.max_reclaims = 2, .window_ms = 5 * MINUTE, .quiet_ms = 10 * MINUTE};
    conflict_loop_init(&st);
    conflict_loop_step(&st, &cfg, 0, CONFLICT_EV_RECLAIMED, "a", &out);
    conflict_loop_step(&st, &cfg, 4 * MINUTE, CONFLICT_EV_RECLAIMED, "b", &out);
    ASSERT_EQ_INT(out.action, CONFLICT_STOP_LOOP);
    ASSERT_STR_EQ(out.manager, "b");
    ASSERT_EQ_INT(out.resume_at, 14 * MINUTE);
}

static void test_tracker_keys_are_independent(void)
{
    conflict_tracker t;
    conflict_loop_out out;
    conflict_tracker_init(&t, NULL);
    ASSERT_EQ_INT(t.cfg.max_reclaims, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ_INT(conflict_tracker_step(&t, "default/web-app", i * MINUTE,
                                            CONFLICT_EV_RECLAIMED, "kustomize-controller", &out),
                      0);
    ASSERT_EQ_INT(out.action, CONFLICT_STOP_LOOP);
    ASSERT_EQ_INT(conflict_tracker_step(&t, "default/other", 3 * MINUTE, CONFLICT_EV_RECLAIMED,
                                        "kustomize-controller", &out),
                  0);
    ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE);
    conflict_tracker_forget(&t, "default/web-app");
    conflict_tracker_step(&t, "default/web-app", 4 * MINUTE, CONFLICT_EV_QUIET, NULL, &out);
    ASSERT_EQ_INT(out.action, CONFLICT_CONTINUE);
    ASSERT_EQ_INT(out.reclaims, 0);
    conflict_tracker_forget(&t, "nope");
    conflict_tracker_release(&t);
}

int main(void)
{
    TEST_RUN(test_recorded_409_merged_with_managed_fields);
    TEST_RUN(test_update_managers_and_other_causes);
    TEST_RUN(test_note_is_bounded);
    TEST_RUN(test_loop_flux_reclaims_every_interval);
    TEST_RUN(test_loop_sparse_reclaims_never_stop);
    TEST_RUN(test_tracker_keys_are_independent);
    return test_summary();
}
