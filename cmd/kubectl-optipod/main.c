/*
 * kubectl-optipod: the optipod CLI, as a kubectl plugin (`kubectl optipod CMD`)
 * or standalone. Flags and wiring only; the logic is in lib/cli. `version`
 * and `completion bash|zsh` (generated from the tables below, util/complete.h)
 * need no kubeconfig.
 *
 * Exit codes: 0 success, 1 a cluster or file error (one line on stderr
 * naming what failed), 2 a usage error (bad flag, command or argument).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli/cli.h"
#include "util/complete.h"
#include "util/flags.h"

static struct {
    const char *kubeconfig, *context, *ns, *selector, *output, *format, *out_dir, *container;
    const char *cpu_price, *mem_price;
    int all, dry_run, help;
} g = {.output = "table"};

static const opflag flags[] = {
    {"kubeconfig", 0, OPFLAG_STRING, &g.kubeconfig, "path to the kubeconfig file"},
    {"context", 0, OPFLAG_STRING, &g.context, "the kubeconfig context to use"},
    {"namespace", 'n', OPFLAG_STRING, &g.ns, "namespace (default: the context's)"},
    {"all-namespaces", 'A', OPFLAG_BOOL, &g.all, "every namespace"},
    {"selector", 'l', OPFLAG_STRING, &g.selector, "label selector on workloads"},
    {"output", 'o', OPFLAG_STRING, &g.output, "recommendations: table, json, yaml or csv"},
    {"format", 0, OPFLAG_STRING, &g.format, "export: kustomize, patch or helm-values"},
    {"out", 0, OPFLAG_STRING, &g.out_dir, "export: the directory to write"},
    {"container", 0, OPFLAG_STRING, &g.container, "release, manage: only this container"},
    {"dry-run", 0, OPFLAG_BOOL, &g.dry_run,
     "release, manage: write nothing, report what would change"},
    {"cpu-price", 0, OPFLAG_STRING, &g.cpu_price, "savings: $ per core-hour (default 0.031611)"},
    {"memory-price", 0, OPFLAG_STRING, &g.mem_price, "savings: $ per GiB-hour (default 0.004237)"},
    {"help", 'h', OPFLAG_BOOL, &g.help, "show this help"},
};
#define NFLAGS (int)(sizeof flags / sizeof flags[0])

static int emit(opbuf *b)
{
    fwrite(opbuf_str(b), 1, b->len, stdout);
    return fflush(stdout) ? 1 : 0;
}

/* The commands: usage, the argument count checks and shell completion read this table. */
typedef struct kcmd {
    const char *name, *alias;
    const char *synopsis; /* after the name, in usage */
    int nargs;            /* positional arguments after the command */
    const char *summary;  /* one line, for completion */
    const char *words;    /* what the argument may be, for completion (NULL: anything) */
} kcmd;

static const kcmd cmds[] = {
    {"recommendations", "recs", "[-n NS | -A] [-l SEL] [-o table|json|yaml|csv]", 0,
     "current vs recommended requests and limits", NULL},
    {"explain", NULL, "KIND/NAME [-n NS]", 1, "why a workload got its recommendation",
     "deployment/ statefulset/ daemonset/"},
    {"savings", NULL, "[-n NS | -A] [--cpu-price $] [--memory-price $]", 0,
     "requested vs recommended totals and monthly cost", NULL},
    {"export", NULL, "--format kustomize|patch|helm-values --out DIR [-n NS | -A]", 0,
     "the recommendations as patch files", NULL},
    {"gitops", NULL, "argocd|flux [-n NS | -A]", 1,
     "Argo CD or Flux settings for the workloads optipod manages", "argocd flux"},
    {"release", NULL, "KIND/NAME [--container C] [--dry-run] [-n NS]", 1,
     "stop managing a workload or container (until manage)", "deployment/ statefulset/ daemonset/"},
    {"manage", NULL, "KIND/NAME [--container C] [--dry-run] [-n NS]", 1,
     "undo a release: managed again from the next reconcile",
     "deployment/ statefulset/ daemonset/"},
    {"version", NULL, "", 0, "print the version", NULL},
    {"completion", NULL, "bash|zsh", 1, "print a shell completion script", "bash zsh"},
};
#define NCMDS (int)(sizeof cmds / sizeof cmds[0])

/* Values the flags complete from; each word also appears in the flag's usage (tested). */
static const opcomp_value values[] = {
    {"kubeconfig", OPCOMP_FILES},
    {"output", "table json yaml csv"},
    {"format", "kustomize patch helm-values"},
    {"out", OPCOMP_DIRS},
};

static int completion(const char *shell)
{
    opcomp_cmd cc[NCMDS];
    for (int i = 0; i < NCMDS; i++)
        cc[i] = (opcomp_cmd){cmds[i].name, cmds[i].alias, cmds[i].summary, cmds[i].words, NULL, 0};
    opcomp_spec spec = {.prog = "kubectl-optipod",
                        .version = OPTIPOD_VERSION,
                        .flags = flags,
                        .nflags = NFLAGS,
                        .global_flags = 1,
                        .cmds = cc,
                        .ncmds = NCMDS,
                        .values = values,
                        .nvalues = (int)(sizeof values / sizeof values[0])};
    opbuf out;
    opbuf_init(&out, 1 << 20);
    operr err = {{0}};
    int rc = opcomp_script(&spec, shell, &out, &err);
    if (rc == 0)
        rc = emit(&out);
    else
        fprintf(stderr, "error: %s\n", err.msg);
    opbuf_release(&out);
    return rc == -EINVAL ? 2 : rc ? 1 : 0;
}

static const kcmd *find_cmd(const char *name)
{
    for (int i = 0; i < NCMDS; i++)
        if (!strcmp(cmds[i].name, name) || (cmds[i].alias && !strcmp(cmds[i].alias, name)))
            return &cmds[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "kubectl-optipod: optipod's recommendations, from the cluster.\n\n"
               "Usage: kubectl optipod COMMAND [flags]\n\n"
               "Commands:\n");
    for (int i = 0; i < NCMDS; i++)
        fprintf(f, "  %s%s%s\n", cmds[i].name, *cmds[i].synopsis ? " " : "", cmds[i].synopsis);
    fputc('\n', f);
    opflag_usage(f, flags, NFLAGS);
}

/* Flags may come before and after the command and its arguments. */
static int parse(int argc, char **argv, char **pos, int *npos, operr *err)
{
    int i = 1;
    *npos = 0;
    while (i < argc) {
        int rest = 0;
        int rc = opflag_parse(flags, NFLAGS, argc - i + 1, argv + i - 1, &rest, err);
        if (rc)
            return rc;
        i += rest - 1;
        if (i >= argc)
            break;
        if (!strcmp(argv[i], "--")) {
            for (i++; i < argc && *npos < 4; i++)
                pos[(*npos)++] = argv[i];
            break;
        }
        if (*npos == 4)
            return operr_set(err, -EINVAL, "too many arguments: '%s'", argv[i]);
        pos[(*npos)++] = argv[i++];
    }
    return 0;
}

static int price(const char *s, double dflt, const char *flag, double *out)
{
    if (!s) {
        *out = dflt;
        return 0;
    }
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end || *out < 0) {
        fprintf(stderr, "error: --%s '%s': expected a non-negative number\n", flag, s);
        return -EINVAL;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char *pos[4];
    int npos;
    operr err = {{0}};
    if (parse(argc, argv, pos, &npos, &err)) {
        fprintf(stderr, "error: %s\nRun 'kubectl optipod --help' for usage.\n", err.msg);
        return 2;
    }
    if (g.help) {
        usage(stdout);
        return 0;
    }
    if (npos == 0) {
        usage(stderr);
        return 2;
    }
    const kcmd *kc = find_cmd(pos[0]);
    if (!kc) {
        fprintf(stderr, "error: unknown command '%s'\nRun 'kubectl optipod --help' for usage.\n",
                pos[0]);
        return 2;
    }
    const char *cmd = kc->name;
    if (npos != kc->nargs + 1) {
        fprintf(stderr, "error: %s takes %s\n", cmd, kc->nargs ? "one argument" : "no argument");
        return 2;
    }
    if (!strcmp(cmd, "completion"))
        return completion(pos[1]);
    if (!strcmp(cmd, "version")) {
        printf("kubectl-optipod %s\n", OPTIPOD_VERSION);
        return fflush(stdout) ? 1 : 0;
    }
    int fmt = cli_fmt_parse(g.output), efmt = -1;
    enum cli_gitops_tool tool = CLI_GITOPS_ARGOCD;
    double cp = 0, mp = 0;
    if (!strcmp(cmd, "recommendations")) {
        if (fmt < 0) {
            fprintf(stderr, "error: -o '%s': expected table, json, yaml or csv\n", g.output);
            return 2;
        }
    } else if (!strcmp(cmd, "savings")) {
        if (price(g.cpu_price, CLI_DEFAULT_CPU_PRICE, "cpu-price", &cp) ||
            price(g.mem_price, CLI_DEFAULT_MEM_PRICE, "memory-price", &mp))
            return 2;
    } else if (!strcmp(cmd, "export")) {
        efmt = cli_export_fmt_parse(g.format ? g.format : "kustomize");
        if (efmt < 0) {
            fprintf(stderr, "error: --format '%s': expected kustomize, patch or helm-values\n",
                    g.format);
            return 2;
        }
        if (!g.out_dir) {
            fprintf(stderr, "error: export needs --out DIR (the directory to write)\n");
            return 2;
        }
    } else if (!strcmp(cmd, "gitops")) {
        if (!strcmp(pos[1], "flux"))
            tool = CLI_GITOPS_FLUX;
        else if (strcmp(pos[1], "argocd")) {
            fprintf(stderr, "error: gitops '%s': expected argocd or flux\n", pos[1]);
            return 2;
        }
    }
    if (!strcmp(cmd, "explain") || !strcmp(cmd, "release") || !strcmp(cmd, "manage")) {
        const char *k, *n;
        const kres *r;
        if (cli_parse_ref(pos[1], &k, &r, &n)) {
            fprintf(stderr,
                    "error: '%s': expected deployment/NAME, statefulset/NAME or "
                    "daemonset/NAME\n",
                    pos[1]);
            return 2;
        }
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    cli_conn c;
    cli_state s;
    cli_state_init(&s);
    opbuf out;
    opbuf_init(&out, CLI_MAX_BODY);
    int status = 1;
    if (cli_conn_open(&c, &loop, g.kubeconfig, g.context, &err)) {
        fprintf(stderr, "error: %s\n", err.msg);
        goto done;
    }
    const char *ns = g.ns && *g.ns ? g.ns : c.cfg.ns;
    cli_scope sc = {.ns = ns, .all = g.all, .selector = g.selector};
    int rc;
    if (!strcmp(cmd, "release")) {
        cli_release_opts ro = {
            .ns = ns, .ref = pos[1], .container = g.container, .dry_run = g.dry_run};
        rc = cli_release(&c, &ro, &out, &err);
    } else if (!strcmp(cmd, "manage")) {
        cli_release_opts ro = {
            .ns = ns, .ref = pos[1], .container = g.container, .dry_run = g.dry_run};
        rc = cli_manage(&c, &ro, &out, &err);
    } else if ((rc = cli_fetch(&c, &sc, &s, &err)) == 0) {
        if (!strcmp(cmd, "explain")) {
            const cli_workload *w = cli_find(&s, pos[1], ns);
            rc = w ? cli_render_explain(w, &out, &err)
                   : operr_set(&err, -ENOENT,
                               "%s in namespace %s: not managed by optipod (no "
                               "OptimizationRecommendation record)",
                               pos[1], ns);
        } else if (!strcmp(cmd, "savings")) {
            rc = cli_render_savings(&s, cp, mp, &out);
        } else if (!strcmp(cmd, "export")) {
            size_t n = 0;
            rc = cli_export(&s, (enum cli_export_fmt)efmt, g.out_dir, &n, &err);
            if (!rc)
                rc = opbuf_printf(&out, "%zu workload file(s) in %s\n", n, g.out_dir);
        } else if (!strcmp(cmd, "gitops")) {
            rc = cli_render_gitops(&s, tool, &out, &err);
        } else {
            rc = cli_render_recommendations(&s, (enum cli_fmt)fmt, &out);
        }
    }
    if (out.len)
        emit(&out);
    if (rc) {
        fprintf(stderr, "error: %s\n", err.msg[0] ? err.msg : strerror(-rc));
        goto close;
    }
    status = 0;
close:
    cli_conn_close(&c);
done:
    cli_state_release(&s);
    opbuf_release(&out);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return status;
}
