/*
 * cli export and gitops: the cluster's recommendations turned into the files
 * `optipod plan --out` writes (lib/plan's own writers, fed a plan built from
 * the annotations), and the GitOps coexistence snippets (lib/apply/remedy).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply/remedy.h"
#include "cli/cli.h"
#include "engine/quantity.h"
#include "plan/plan.h"

int cli_export_fmt_parse(const char *s)
{
    static const char *const names[] = {"kustomize", "patch", "helm-values"};
    for (int i = 0; i < 3; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

static void rl(const char *req, const char *lim, int cpu, eng_rl *out)
{
    memset(out, 0, sizeof *out);
    if (req)
        out->has_req = (cpu ? kq_parse_cpu_milli(req, &out->req, NULL)
                            : kq_parse_bytes(req, &out->req, NULL)) == 0;
    if (lim)
        out->has_lim = (cpu ? kq_parse_cpu_milli(lim, &out->lim, NULL)
                            : kq_parse_bytes(lim, &out->lim, NULL)) == 0;
}

/* The engine result the plan writers expect: APPLY where the recommendation
 * differs from the live value, UNCHANGED where it is already applied. */
static void res_of(const eng_rl *cur, const eng_rl *rec, eng_res *out)
{
    memset(out, 0, sizeof *out);
    if (!rec->has_req) {
        out->decision = ENG_SKIPPED;
        return;
    }
    out->req = rec->req;
    out->has_lim = rec->has_lim;
    out->lim = rec->lim;
    int same = cur->has_req && cur->req == rec->req &&
               (!rec->has_lim || (cur->has_lim && cur->lim == rec->lim));
    out->decision = same ? ENG_UNCHANGED : ENG_APPLY;
}

static char *sdup(const char *s)
{
    return strdup(s ? s : "");
}

static int to_plan(const cli_state *s, plan *p)
{
    p->wl = calloc(s->nwl + 1, sizeof *p->wl);
    if (!p->wl)
        return -ENOMEM;
    p->capwl = s->nwl + 1;
    for (size_t i = 0; i < s->nwl; i++) {
        const cli_workload *w = &s->wl[i];
        plan_workload *pw = &p->wl[p->nwl++];
        pw->kind = sdup(w->kind);
        pw->ns = sdup(w->proj->ns);
        pw->name = sdup(w->proj->name);
        pw->api_version = sdup(w->api_version);
        pw->file = sdup("cluster");
        pw->ctrs = calloc(w->nctrs + 1, sizeof *pw->ctrs);
        if (!pw->kind || !pw->ns || !pw->name || !pw->api_version || !pw->file || !pw->ctrs)
            return -ENOMEM;
        for (size_t j = 0; j < w->nctrs; j++) {
            const cli_ctr *c = &w->ctrs[j];
            plan_container *pc = &pw->ctrs[pw->nctrs++];
            if (!(pc->name = sdup(c->name)))
                return -ENOMEM;
            pc->init = c->init;
            pc->index = c->index;
            pc->c.name = pc->name;
            pc->c.init = c->init;
            rl(c->cur[CLI_CPU_REQ], c->cur[CLI_CPU_LIM], 1, &pc->c.cpu);
            rl(c->cur[CLI_MEM_REQ], c->cur[CLI_MEM_LIM], 0, &pc->c.mem);
            eng_rl rc, rm;
            rl(c->rec[CLI_CPU_REQ], c->rec[CLI_CPU_LIM], 1, &rc);
            rl(c->rec[CLI_MEM_REQ], c->rec[CLI_MEM_LIM], 0, &rm);
            res_of(&pc->c.cpu, &rc, &pc->res.cpu);
            res_of(&pc->c.mem, &rm, &pc->res.mem);
            pc->has_usage = c->has_rec;
            pc->res.decision =
                pc->res.cpu.decision == ENG_APPLY || pc->res.mem.decision == ENG_APPLY
                    ? ENG_APPLY
                    : ENG_UNCHANGED;
        }
    }
    p->ran = true;
    return 0;
}

int cli_export(const cli_state *s, enum cli_export_fmt fmt, const char *dir, size_t *written,
               operr *err)
{
    plan p;
    plan_init(&p);
    int rc = to_plan(s, &p);
    if (rc)
        operr_set(err, rc, "export: out of memory");
    else if (fmt == CLI_EXPORT_HELM)
        rc = plan_export_helm_with(
            &p, dir,
            &(plan_export_opts){.generator = "kubectl optipod export --format helm-values"},
            written, err);
    else if (fmt == CLI_EXPORT_PATCH)
        rc = plan_export_with(
            &p, dir,
            &(plan_export_opts){.generator = "kubectl optipod export --format patch",
                                .patch_only = true},
            written, err);
    else
        rc = plan_export_with(
            &p, dir, &(plan_export_opts){.generator = "kubectl optipod export --format kustomize"},
            written, err);
    plan_release(&p);
    return rc;
}

int cli_render_gitops(const cli_state *s, enum cli_gitops_tool tool, opbuf *out, operr *err)
{
    static const char *const fields[CLI_NV] = {"requests.cpu", "requests.memory", "limits.cpu",
                                               "limits.memory"};
    int rc = 0;
    size_t done = 0;
    if (tool == CLI_GITOPS_ARGOCD) {
        /* one Application spec: one merged ignoreDifferences list */
        for (size_t i = 0; !rc && i < s->nwl; i++) {
            const cli_workload *w = &s->wl[i];
            remedy_request rq = {.live = w->proj};
            if (!done)
                rc = opbuf_puts(out,
                                "# Argo CD Application: leave the fields optipod manages on the "
                                "workloads below out of the diff and out of syncs\n"
                                "# (keep the entries of the workloads each Application deploys)\n"
                                "spec:\n"
                                "  ignoreDifferences:\n");
            rc = rc
                     ?: opbuf_printf(out, "    # %s %s/%s\n", w->kind,
                                     w->proj->ns ? w->proj->ns : "", w->proj->name);
            rc = rc ?: remedy_argocd_entry(&rq, out);
            if (rc)
                operr_set(err, rc, "%s %s/%s: cannot render the snippet", w->kind,
                          w->proj->ns ? w->proj->ns : "", w->proj->name);
            done++;
        }
        if (!rc && done)
            rc = remedy_argocd_tail(out);
        if (!rc && done == 0)
            rc = opbuf_puts(out, "# No workloads managed by optipod in scope.\n");
        return rc;
    }
    for (size_t i = 0; !rc && i < s->nwl; i++) {
        const cli_workload *w = &s->wl[i];
        remedy_field f[4 * 64];
        size_t nf = 0;
        const char *reclaimer = NULL;
        char first[256] = "";
        for (size_t j = 0; j < w->nctrs; j++) {
            const cli_ctr *c = &w->ctrs[j];
            for (int v = 0; v < CLI_NV && nf < sizeof f / sizeof f[0]; v++)
                if (c->rec[v])
                    f[nf++] = (remedy_field){c->name, c->init, fields[v]};
            if (!reclaimer && c->conflicts[0]) {
                snprintf(first, sizeof first, "%s", c->conflicts);
                char *comma = strchr(first, ',');
                if (comma)
                    *comma = '\0';
                reclaimer = first;
            }
        }
        remedy_request rq = {.live = w->proj, .reclaimer = reclaimer, .fields = f, .nfields = nf};
        rc = opbuf_printf(out, "%s# %s %s/%s\n", done ? "---\n" : "", w->kind,
                          w->proj->ns ? w->proj->ns : "", w->proj->name);
        if (rc)
            break;
        rc = remedy_yaml(tool == CLI_GITOPS_ARGOCD ? REMEDY_ARGOCD : REMEDY_FLUX_KUSTOMIZE, &rq,
                         out);
        if (rc)
            operr_set(err, rc, "%s %s/%s: cannot render the snippet", w->kind,
                      w->proj->ns ? w->proj->ns : "", w->proj->name);
        done++;
    }
    if (!rc && done == 0)
        rc = opbuf_puts(out, "# No workloads managed by optipod in scope.\n");
    return rc;
}
