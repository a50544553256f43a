/*
 * optipod plan: flags and wiring only; see lib/plan/plan.h.
 *
 *   optipod plan -f DIR_OR_FILE... (--usage FILE | --prometheus-url URL) [--policy FILE]
 *                [--out DIR] [--format kustomize|helm-values] [-o table|json|yaml|csv]
 *                [--now RFC3339] [--prometheus-bearer-token-file FILE] [--prometheus-header H]...
 *
 * --prometheus is the old spelling of --prometheus-url; the other
 * --prometheus-* flags are the controller's (metrics/promflags.h).
 *
 * The plan goes to stdout, one line per problem to stderr. Exit status: 0
 * when everything was planned, 1 when anything was skipped or wrong (the rest
 * is still planned and exported), 2 for bad flags or a -f path that does not
 * exist (one error, nothing planned).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics/promflags.h"
#include "plan.h"
#include "plan/plan.h"
#include "util/flags.h"
#include "util/optime.h"

#define PLAN_MAX_INPUTS 64

static void usage(FILE *f, const opflag *flags, int n)
{
    fprintf(f, "Usage: optipod plan -f DIR_OR_FILE... (--usage FILE | --prometheus-url URL)\n"
               "                    [--policy FILE] [--out DIR] [--format kustomize|helm-values]\n"
               "                    [-o table|json|yaml|csv] [--now RFC3339]\n\n"
               "Right-size workload manifests offline: reads Deployments, StatefulSets and\n"
               "DaemonSets, usage from a CSV or OpenMetrics file or Prometheus, runs the\n"
               "recommendation "
               "engine, prints the plan and writes kustomize patches.\n\n");
    opflag_usage(f, flags, n);
}

/* The flags' targets: one plan per process. */
static const char *inputs_v[PLAN_MAX_INPUTS];
static struct {
    opflag_list inputs;
    const char *usage_file, *policy, *out_dir, *output, *now_s, *format;
    int help;
} pf = {.inputs = {inputs_v, 0, PLAN_MAX_INPUTS}, .output = "table", .format = "kustomize"};
/* The Prometheus backend's flags, as the controller's (metrics/promflags.h). */
static mpromflags ppf = {.headers = {ppf.hdr_v, 0, MPROM_MAX_HEADERS}};

static const opflag flags[] = {
    {"filename", 'f', OPFLAG_LIST, &pf.inputs,
     "manifest file or directory (repeatable; a kustomization's resources are followed)"},
    {"usage", 0, OPFLAG_STRING, &pf.usage_file, "usage file: CSV or OpenMetrics text"},
    MPROMFLAGS_OPFLAGS(&ppf),
    {"prometheus", 0, OPFLAG_STRING, &ppf.url, "the old name of --prometheus-url"},
    {"policy", 0, OPFLAG_STRING, &pf.policy, "OptimizationPolicy YAML (default: the CRD defaults)"},
    {"out", 0, OPFLAG_STRING, &pf.out_dir, "write kustomize patches and kustomization.yaml here"},
    {"format", 0, OPFLAG_STRING, &pf.format,
     "what --out writes: kustomize (patches + kustomization.yaml) or helm-values"},
    {"output", 'o', OPFLAG_STRING, &pf.output, "table, json, yaml or csv (default table)"},
    {"now", 0, OPFLAG_STRING, &pf.now_s,
     "decision time, RFC 3339 (default: the newest usage sample)"},
    {"help", 'h', OPFLAG_BOOL, &pf.help, "show this help"},
};

const opflag *plan_flags(int *n)
{
    *n = (int)(sizeof flags / sizeof *flags);
    return flags;
}

int plan_main(int argc, char **argv)
{
    const int nflags = (int)(sizeof flags / sizeof *flags);
    int rest = 0;
    operr err;
    if (opflag_parse(flags, nflags, argc, argv, &rest, &err) < 0) {
        fprintf(stderr, "optipod plan: %s\n", err.msg);
        return 2;
    }
    if (pf.help) {
        usage(stdout, flags, nflags);
        return 0;
    }
    int fmt = plan_fmt_parse(pf.output);
    optime now = {0};
    const char *bad = NULL, *badv = NULL;
    mprom_opts po = {0};
    int prom = mpromflags_opts(&ppf, &po, &err);
    if (prom < 0) {
        fprintf(stderr, "optipod plan: %s\n", err.msg);
        return 2;
    }
    prom = prom == 0;
    if (rest < argc)
        bad = "unexpected argument";
    else if (pf.inputs.n == 0)
        bad = "-f is required";
    else if (!pf.usage_file == !prom)
        bad = "exactly one of --usage and --prometheus-url is required";
    else if (strcmp(pf.format, "kustomize") != 0 && strcmp(pf.format, "helm-values") != 0)
        bad = "--format '%s': expected kustomize or helm-values", badv = pf.format;
    else if (fmt < 0)
        bad = "-o '%s': expected table, json, yaml or csv", badv = pf.output;
    else if (pf.now_s && optime_parse(pf.now_s, 0, &now) < 0)
        bad = "--now must be an RFC 3339 time like 2026-01-02T15:04:05Z";
    /* a -f that names nothing is a bad argument: one error, no empty plan */
    for (int i = 0; !bad && i < pf.inputs.n; i++)
        if (access(pf.inputs.v[i], F_OK) != 0)
            bad = "-f '%s': no such file or directory", badv = pf.inputs.v[i];
    if (bad) {
        fprintf(stderr, "optipod plan: ");
        fprintf(stderr, bad, badv);
        fprintf(stderr, "\n");
        if (!badv)
            usage(stderr, flags, nflags);
        return 2;
    }

    int status = 0;
    plan p;
    opbuf out;
    plan_init(&p);
    plan_set_now(&p, now.sec); /* before the usage: what its window cannot use is not kept */
    opbuf_init(&out, OPBUF_DEFAULT_MAX);
    if (pf.policy && plan_load_policy(&p, pf.policy, &err) < 0) {
        fprintf(stderr, "optipod plan: policy %s\n", err.msg);
        status = 2;
        goto done;
    }
    for (int i = 0; i < pf.inputs.n; i++)
        if (plan_load_manifests(&p, pf.inputs.v[i], &err) < 0) {
            fprintf(stderr, "optipod plan: %s\n", err.msg);
            status = 1;
        }
    if (pf.usage_file && plan_load_usage(&p, pf.usage_file, &err) < 0) {
        fprintf(stderr, "optipod plan: usage %s\n", err.msg);
        status = 1;
    }
    if (prom && plan_usage_prometheus_opts(&p, &po, now.sec, &err) < 0) {
        fprintf(stderr, "optipod plan: %s\n", err.msg);
        status = 1;
    }
    if (plan_run(&p, now.sec) < 0 || plan_render(&p, (plan_fmt)fmt, &out) < 0) {
        fprintf(stderr, "optipod plan: out of memory\n");
        status = 1;
        goto done;
    }
    for (size_t i = 0; i < p.ndiags; i++)
        fprintf(stderr, "%s\n", p.diags[i]);
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    if (pf.out_dir) {
        size_t n = 0;
        bool helm = strcmp(pf.format, "helm-values") == 0;
        int rc = helm ? plan_export_helm(&p, pf.out_dir, &n, &err)
                      : plan_export(&p, pf.out_dir, &n, &err);
        if (rc < 0) {
            fprintf(stderr, "optipod plan: export: %s\n", err.msg);
            status = 1;
        } else if (fmt == PLAN_FMT_TABLE && helm) {
            printf("wrote values-optipod.yaml (%zu workloads) to %s\n", n, pf.out_dir);
        } else if (fmt == PLAN_FMT_TABLE) {
            printf("wrote %zu patches and kustomization.yaml to %s\n", n, pf.out_dir);
        }
    }
    if (p.problems)
        status = 1;
done:
    fflush(stdout);
    opbuf_release(&out);
    plan_release(&p);
    return status;
}
