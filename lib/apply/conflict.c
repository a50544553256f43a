/*
 * conflict: 409 causes + managedFields → one de-duplicated list; the Event
 * note; the force decision; the reclaim-loop step function.
 */
#include "apply/conflict.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

void conflict_set_init(conflict_set *c)
{
    memset(c, 0, sizeof(*c));
}

static void copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Add (manager, field) unless present; a known operation replaces a guess. */
static int add(conflict_set *c, const char *manager, const char *op, const char *api,
               const char *field)
{
    for (int i = 0; i < c->n; i++) {
        conflict_item *it = &c->items[i];
        if (strcmp(it->manager, manager) || strcmp(it->field, field))
            continue;
        if (op && *op) {
            copy(it->operation, sizeof(it->operation), op);
            copy(it->api_version, sizeof(it->api_version), api);
        }
        return 0;
    }
    if (c->n >= CONFLICT_MAX) {
        c->dropped++;
        return 0;
    }
    conflict_item *it = &c->items[c->n++];
    copy(it->manager, sizeof(it->manager), manager);
    copy(it->operation, sizeof(it->operation), op && *op ? op : "Apply");
    copy(it->api_version, sizeof(it->api_version), api);
    copy(it->field, sizeof(it->field), field);
    return 1;
}

/* "conflict with \"NAME\"[ with subresource \"S\"][ using GV]": NAME unquoted
 * into `name`, GV into `api` ("" for an Apply manager). Returns 0 or -EINVAL. */
static int parse_cause(const char *msg, char *name, size_t ncap, char *api, size_t acap)
{
    static const char lead[] = "conflict with \"";
    const char *p = strstr(msg, lead);
    size_t n = 0;
    if (!p)
        return -EINVAL;
    for (p += sizeof(lead) - 1; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
            p++;
        if (n + 1 < ncap)
            name[n++] = *p;
    }
    name[n] = '\0';
    if (*p != '"' || n == 0)
        return -EINVAL;
    api[0] = '\0';
    const char *u = strstr(p, " using ");
    if (u) {
        u += 7;
        size_t k = strcspn(u, " \t\n");
        if (k >= acap)
            k = acap - 1;
        memcpy(api, u, k);
        api[k] = '\0';
    }
    return 0;
}

int conflict_add_status(conflict_set *c, const kstatus *st)
{
    int added = 0;
    if (!st)
        return 0;
    for (int i = 0; i < st->ncauses && i < KSTATUS_MAX_CAUSES; i++) {
        const kstatus_cause *k = &st->causes[i];
        char name[CONFLICT_MANAGER_MAX], api[64];
        if (strcmp(k->reason, "FieldManagerConflict") || !k->field[0])
            continue;
        if (parse_cause(k->message, name, sizeof(name), api, sizeof(api)) != 0)
            continue;
        /* a Status cannot tell Apply from a missing "using": only Update is sure */
        added += add(c, name, api[0] ? "Update" : NULL, api, k->field);
    }
    return added;
}

int conflict_add_fields(conflict_set *c, const mfields *mf, const char *self,
                        const char *const *targets, size_t ntargets)
{
    int added = 0;
    if (!mf)
        return 0;
    for (size_t t = 0; t < ntargets; t++) {
        if (!targets[t])
            continue;
        for (size_t i = 0; i < mf->nentries; i++) {
            const mfields_entry *e = &mf->entries[i];
            if ((self && !strcmp(e->manager, self)) || !mfields_entry_owns(e, targets[t]))
                continue;
            int update = e->op == MFIELDS_OP_UPDATE;
            added += add(c, e->manager, e->operation[0] ? e->operation : "Apply",
                         update ? e->api_version : "", targets[t]);
        }
    }
    return added;
}

int conflict_managers(const conflict_set *c)
{
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = !strcmp(c->items[i].manager, c->items[j].manager);
        n += !seen;
    }
    return n;
}

enum conflict_decision conflict_decide(const conflict_set *c, int force_conflicts)
{
    if (!c || (c->n == 0 && c->dropped == 0))
        return CONFLICT_APPLY;
    return force_conflicts ? CONFLICT_FORCE : CONFLICT_YIELD;
}

const char *conflict_decision_name(enum conflict_decision d)
{
    switch (d) {
    case CONFLICT_APPLY:
        return "apply";
    case CONFLICT_FORCE:
        return "force";
    case CONFLICT_YIELD:
        return "yield";
    }
    return "?";
}

static const char *decision_text(enum conflict_decision d)
{
    switch (d) {
    case CONFLICT_FORCE:
        return "; forcing the apply (updateStrategy.forceConflicts: true)";
    case CONFLICT_YIELD:
        return "; not forcing (updateStrategy.forceConflicts: false): the fields stay with "
               "their owners";
    default:
        return "";
    }
}

static int first_of_manager(const conflict_set *c, int i)
{
    for (int j = 0; j < i; j++) {
        if (!strcmp(c->items[j].manager, c->items[i].manager))
            return 0;
    }
    return 1;
}

static void manager_head(const conflict_set *c, int i, int lead, char *out, size_t cap)
{
    const conflict_item *m = &c->items[i];
    snprintf(out, cap, "%s \"%s\" (%s%s%s) owns ", lead ? ";" : "", m->manager, m->operation,
             m->api_version[0] ? " " : "", m->api_version);
}

int conflict_note(const conflict_set *c, enum conflict_decision d, char *buf, size_t cap)
{
    opbuf b;
    char more[48], head[CONFLICT_MANAGER_MAX + 112];
    const char *tail = decision_text(d);
    int selected[CONFLICT_MAX] = {0}, nsel = 0;
    int managers = conflict_managers(c), total = c->n + c->dropped;
    opbuf_init(&b, CONFLICT_NOTE_MAX);
    opbuf_printf(&b, "%d conflicting field%s with %d other manager%s:", total,
                 total == 1 ? "" : "s", managers, managers == 1 ? "" : "s");

    /* Choose fields round-robin over managers, so that every manager is named
     * before any gets a second field, within the room left for the tail. */
    size_t used = b.len, budget = CONFLICT_NOTE_MAX - strlen(tail) - sizeof(more);
    for (int round = 0, progress = 1; progress; round++) {
        progress = 0;
        for (int i = 0; i < c->n; i++) {
            if (!first_of_manager(c, i))
                continue;
            int k = -1; /* this manager's round-th field */
            for (int j = i, r = 0; j < c->n && k < 0; j++) {
                if (!strcmp(c->items[j].manager, c->items[i].manager) && r++ == round)
                    k = j;
            }
            if (k < 0)
                continue;
            progress = 1;
            manager_head(c, i, 1, head, sizeof(head));
            size_t cost = (round == 0 ? strlen(head) : 2) + strlen(c->items[k].field);
            if (used + cost <= budget) {
                selected[k] = 1;
                used += cost;
                nsel++;
            }
        }
    }
    for (int i = 0, named = 0; i < c->n; i++) {
        if (!first_of_manager(c, i))
            continue;
        int any = 0;
        for (int j = i; j < c->n; j++) {
            if (!selected[j] || strcmp(c->items[j].manager, c->items[i].manager))
                continue;
            if (!any) {
                manager_head(c, i, named, head, sizeof(head));
                opbuf_puts(&b, head);
            } else {
                opbuf_puts(&b, ", ");
            }
            opbuf_puts(&b, c->items[j].field);
            any = named = 1;
        }
    }
    if (total > nsel) {
        snprintf(more, sizeof(more), " ... and %d more", total - nsel);
        opbuf_puts(&b, more);
    }
    /* Appends are checked once, here: a failed buffer stays failed (util/buf.h). The budget
     * keeps the note within the cap, so only memory can fail: then the summary alone. */
    int len;
    if (opbuf_puts(&b, tail) == 0) {
        len = (int)b.len;
        copy(buf, cap, opbuf_str(&b));
    } else {
        len = snprintf(buf, cap, "%d conflicting field%s with %d other manager%s%s", total,
                       total == 1 ? "" : "s", managers, managers == 1 ? "" : "s", tail);
        len = len < 0 ? 0 : len;
    }
    opbuf_release(&b);
    return len < (int)cap ? len : (int)cap - 1;
}

/* --- loop detection ------------------------------------------------------------------- */

void conflict_loop_cfg_defaults(conflict_loop_cfg *cfg)
{
    if (cfg->max_reclaims <= 0)
        cfg->max_reclaims = 3;
    if (cfg->window_ms <= 0)
        cfg->window_ms = 3600 * 1000;
    if (cfg->quiet_ms <= 0)
        cfg->quiet_ms = 3600 * 1000;
    if (cfg->max_quiet_ms < cfg->quiet_ms)
        cfg->max_quiet_ms = cfg->quiet_ms > 24 * 3600 * 1000 ? cfg->quiet_ms : 24 * 3600 * 1000;
}

void conflict_loop_init(conflict_loop *st)
{
    memset(st, 0, sizeof(*st));
    st->last_reclaim = -1;
    st->since = -1;
    st->seen = INT64_MIN;
}

static void prune(conflict_loop *st, int64_t now, int64_t window)
{
    int keep = 0;
    for (int i = 0; i < st->nreclaims; i++) {
        if (now - st->reclaims[i] < window)
            st->reclaims[keep++] = st->reclaims[i];
    }
    st->nreclaims = keep;
}

void conflict_loop_step(conflict_loop *st, const conflict_loop_cfg *cfgin, int64_t now,
                        enum conflict_event ev, const char *manager, conflict_loop_out *out)
{
    conflict_loop_cfg cfg = *cfgin;
    conflict_loop_cfg_defaults(&cfg);
    memset(out, 0, sizeof(*out));
    if (now < st->seen)
        now = st->seen;
    st->seen = now;
    if (st->quiet_ms <= 0)
        st->quiet_ms = cfg.quiet_ms;
    prune(st, now, cfg.window_ms);

    if (ev == CONFLICT_EV_RECLAIMED) {
        if (st->nreclaims == CONFLICT_LOOP_HISTORY) {
            memmove(st->reclaims, st->reclaims + 1,
                    sizeof(st->reclaims[0]) * (size_t)(CONFLICT_LOOP_HISTORY - 1));
            st->nreclaims--;
        }
        st->reclaims[st->nreclaims++] = now;
        st->last_reclaim = now;
        copy(st->manager, sizeof(st->manager), manager);
        if (st->state == CONFLICT_LOOP_PROBATION ||
            (st->state == CONFLICT_LOOP_OK && st->nreclaims >= cfg.max_reclaims)) {
            if (st->state == CONFLICT_LOOP_PROBATION)
                st->quiet_ms =
                    st->quiet_ms * 2 > cfg.max_quiet_ms ? cfg.max_quiet_ms : st->quiet_ms * 2;
            st->state = CONFLICT_LOOP_STOPPED;
            st->since = now;
            st->strikes++;
            out->entered = 1;
        }
    } else if (st->state == CONFLICT_LOOP_STOPPED && now - st->last_reclaim >= st->quiet_ms) {
        /* the reclaimer has been quiet long enough: try again, on probation */
        st->state = CONFLICT_LOOP_PROBATION;
        st->since = now;
        st->nreclaims = 0;
        out->resumed = 1;
    } else if (st->state == CONFLICT_LOOP_PROBATION && now - st->since >= cfg.window_ms) {
        st->state = CONFLICT_LOOP_OK;
        st->since = now;
        st->strikes = 0;
        st->quiet_ms = cfg.quiet_ms;
    }

    out->reclaims = st->nreclaims;
    out->manager = st->manager;
    out->action = st->state == CONFLICT_LOOP_STOPPED ? CONFLICT_STOP_LOOP : CONFLICT_CONTINUE;
    if (out->action == CONFLICT_STOP_LOOP)
        out->resume_at = st->last_reclaim + st->quiet_ms;
}

void conflict_tracker_init(conflict_tracker *t, const conflict_loop_cfg *cfg)
{
    opmap_init(&t->states);
    memset(&t->cfg, 0, sizeof(t->cfg));
    if (cfg)
        t->cfg = *cfg;
    conflict_loop_cfg_defaults(&t->cfg);
}

void conflict_tracker_release(conflict_tracker *t)
{
    opmap_release(&t->states, free);
}

int conflict_tracker_step(conflict_tracker *t, const char *key, int64_t now_ms,
                          enum conflict_event ev, const char *manager, conflict_loop_out *out)
{
    conflict_loop *st = opmap_get(&t->states, key);
    if (!st) {
        st = malloc(sizeof(*st));
        if (!st)
            return -ENOMEM;
        conflict_loop_init(st);
        if (opmap_put(&t->states, key, st, NULL) != 0) {
            free(st);
            return -ENOMEM;
        }
    }
    conflict_loop_step(st, &t->cfg, now_ms, ev, manager, out);
    return 0;
}

void conflict_tracker_forget(conflict_tracker *t, const char *key)
{
    free(opmap_del(&t->states, key));
}
