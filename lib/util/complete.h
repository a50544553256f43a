/*
 * opcomp: bash and zsh completion scripts generated from a program's own
 * flag and command tables (util/flags.h), so completion never offers a flag
 * the program refuses nor misses one it takes.
 *
 * A program has top-level flags and commands. With `global_flags` the
 * top-level flags are valid before and after any command (kubectl-optipod);
 * without, they belong to running the program with no command (optipod's
 * controller flags) and each command has only its own. A command may list
 * the words its first argument takes. A flag that takes a value completes
 * from its entry in `values` when it has one (a word list, or OPCOMP_FILES /
 * OPCOMP_DIRS for paths), else from nothing.
 *
 * Pure: the script is appended to `out`; nothing else is touched.
 */
#ifndef OPTIPOD_UTIL_COMPLETE_H
#define OPTIPOD_UTIL_COMPLETE_H

#include "util/buf.h"
#include "util/err.h"
#include "util/flags.h"

#define OPCOMP_FILES "@files"
#define OPCOMP_DIRS  "@dirs"

typedef struct opcomp_cmd {
    const char *name;
    const char *alias;   /* another name for it, or NULL */
    const char *summary; /* one line (zsh shows it) */
    const char *words;   /* first-argument candidates, space-separated, or NULL */
    const opflag *flags; /* flags only this command takes, or NULL */
    int nflags;
} opcomp_cmd;

typedef struct opcomp_value {
    const char *flag;  /* long name, without dashes */
    const char *words; /* space-separated candidates, OPCOMP_FILES or OPCOMP_DIRS */
} opcomp_value;

typedef struct opcomp_spec {
    const char *prog;    /* the command name completed: "optipod", "kubectl-optipod" */
    const char *version; /* named in the script's header */
    const opflag *flags;
    int nflags;
    int global_flags;
    const opcomp_cmd *cmds;
    int ncmds;
    const opcomp_value *values;
    int nvalues;
} opcomp_spec;

/* The completion script for `shell` ("bash" or "zsh"). Returns 0, -EINVAL for another
 * shell or a name that cannot appear in a script (err says which), -E2BIG/-ENOMEM. */
int opcomp_script(const opcomp_spec *s, const char *shell, opbuf *out, operr *err);

#endif
