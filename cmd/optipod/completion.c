/*
 * optipod completion: flags and wiring only; see util/complete.h.
 */
#include "completion.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backtest.h"
#include "plan.h"
#include "util/complete.h"

/* Values the flags complete from; each word also appears in the flag's usage (tested). */
static const opcomp_value values[] = {
    {"kubeconfig", OPCOMP_FILES},
    {"prometheus-token-file", OPCOMP_FILES},
    {"prometheus-bearer-token-file", OPCOMP_FILES},
    {"prometheus-basic-auth-file", OPCOMP_FILES},
    {"prometheus-ca-file", OPCOMP_FILES},
    {"webhook-cert-dir", OPCOMP_DIRS},
    {"filename", OPCOMP_FILES},
    {"usage", OPCOMP_FILES},
    {"policy", OPCOMP_FILES},
    {"out", OPCOMP_DIRS},
    {"format", "kustomize helm-values"},
    {"output", "table json yaml csv"},
};

int completion_main(int argc, char **argv, const opflag *flags, int nflags)
{
    if (argc != 2 || (strcmp(argv[1], "bash") && strcmp(argv[1], "zsh"))) {
        fprintf(stderr, "optipod: completion takes bash or zsh\n"
                        "Usage: optipod completion bash|zsh\n");
        return 2;
    }
    opcomp_cmd cmds[] = {
        {"plan", NULL, "right-size workload manifests offline", NULL, NULL, 0},
        {"backtest", NULL, "replay usage history through the engine, per policy", NULL, NULL, 0},
        {"completion", NULL, "print a shell completion script", "bash zsh", NULL, 0},
    };
    cmds[0].flags = plan_flags(&cmds[0].nflags);
    cmds[1].flags = backtest_flags(&cmds[1].nflags);
    opcomp_spec spec = {.prog = "optipod",
                        .version = OPTIPOD_VERSION,
                        .flags = flags,
                        .nflags = nflags,
                        .global_flags = 0,
                        .cmds = cmds,
                        .ncmds = (int)(sizeof cmds / sizeof cmds[0]),
                        .values = values,
                        .nvalues = (int)(sizeof values / sizeof values[0])};
    opbuf out;
    opbuf_init(&out, 1 << 20);
    operr err = {{0}};
    int rc = opcomp_script(&spec, argv[1], &out, &err);
    if (rc == 0) {
        fwrite(opbuf_str(&out), 1, out.len, stdout);
        rc = fflush(stdout) ? -EIO : 0;
        if (rc)
            snprintf(err.msg, sizeof err.msg, "stdout: write error");
    }
    if (rc)
        fprintf(stderr, "optipod: %s\n", err.msg);
    opbuf_release(&out);
    return rc ? 1 : 0;
}
