#include "util/complete.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

/* The script is written with opbuf_printf calls whose failures (only the cap or memory)
 * are collected here and reported once. */
typedef struct opcomp_w {
    const opcomp_spec *s;
    opbuf *out;
    int rc;
} opcomp_w;

static void opcomp_put(opcomp_w *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void opcomp_put(opcomp_w *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = opbuf_vprintf(w->out, fmt, ap);
    va_end(ap);
    if (rc && !w->rc)
        w->rc = rc;
}

/* Only these characters reach a script unquoted. */
static int opcomp_word_ok(const char *s, const char *extra)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || strchr(extra, *s)))
            return 0;
    return 1;
}

static int opcomp_words_ok(const char *s)
{
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, " ");
        char word[128];
        if (n >= sizeof word)
            return 0;
        memcpy(word, p, n);
        word[n] = '\0';
        if (n && !opcomp_word_ok(word, "./=:@"))
            return 0;
        p += n + strspn(p + n, " ");
    }
    return 1;
}

static int opcomp_check(const opcomp_spec *s, operr *err)
{
    if (!opcomp_word_ok(s->prog, "") || !opcomp_word_ok(s->version, ".+"))
        return operr_set(err, -EINVAL, "completion: program name or version '%s %s'",
                         s->prog ? s->prog : "", s->version ? s->version : "");
    for (int c = -1; c < s->ncmds; c++) {
        const opflag *f = c < 0 ? s->flags : s->cmds[c].flags;
        int n = c < 0 ? s->nflags : s->cmds[c].nflags;
        if (c >= 0 && (!opcomp_word_ok(s->cmds[c].name, ".") ||
                       (s->cmds[c].alias && !opcomp_word_ok(s->cmds[c].alias, ".")) ||
                       (s->cmds[c].words && !opcomp_words_ok(s->cmds[c].words))))
            return operr_set(err, -EINVAL,
                             "completion: command '%s': a name or word a shell "
                             "would need quoted",
                             s->cmds[c].name ? s->cmds[c].name : "");
        for (int i = 0; i < n; i++)
            if (!opcomp_word_ok(f[i].name, ".") ||
                (f[i].shorthand && !opcomp_word_ok((char[]){f[i].shorthand, 0}, "")))
                return operr_set(err, -EINVAL, "completion: flag '%s' cannot be completed",
                                 f[i].name ? f[i].name : "");
    }
    for (int i = 0; i < s->nvalues; i++)
        if (!opcomp_word_ok(s->values[i].flag, ".") || !opcomp_words_ok(s->values[i].words))
            return operr_set(err, -EINVAL, "completion: values of flag '%s'",
                             s->values[i].flag ? s->values[i].flag : "");
    return 0;
}

static const char *opcomp_values(const opcomp_spec *s, const char *flag)
{
    for (int i = 0; i < s->nvalues; i++)
        if (!strcmp(s->values[i].flag, flag))
            return s->values[i].words;
    return NULL;
}

/* " -x --name" for each flag of a table. */
static void opcomp_flag_words(opcomp_w *w, const opflag *f, int n)
{
    for (int i = 0; i < n; i++) {
        if (f[i].shorthand)
            opcomp_put(w, " -%c", f[i].shorthand);
        opcomp_put(w, " --%s", f[i].name);
    }
}

/* How a flag's value completes. */
enum opcomp_kind {
    OPCOMP_K_BOOL = 1,  /* no value */
    OPCOMP_K_NONE = 2,  /* a value, no candidates */
    OPCOMP_K_WORDS = 4, /* a value from its word list */
    OPCOMP_K_FILES = 8,
    OPCOMP_K_DIRS = 16,
};

static enum opcomp_kind opcomp_kind_of(const opcomp_spec *s, const opflag *f)
{
    if (f->type == OPFLAG_BOOL)
        return OPCOMP_K_BOOL;
    const char *v = opcomp_values(s, f->name);
    if (!v)
        return OPCOMP_K_NONE;
    if (!strcmp(v, OPCOMP_FILES))
        return OPCOMP_K_FILES;
    return !strcmp(v, OPCOMP_DIRS) ? OPCOMP_K_DIRS : OPCOMP_K_WORDS;
}

/* ---- bash ------------------------------------------------------------------------------ */

/* Has this long name been seen in an earlier table or place (its case is written)? */
static int opcomp_seen(const opcomp_spec *s, int c, int i)
{
    const char *name = (c < 0 ? s->flags : s->cmds[c].flags)[i].name;
    for (int cc = -1; cc <= c; cc++) {
        const opflag *f = cc < 0 ? s->flags : s->cmds[cc].flags;
        int n = cc < 0 ? s->nflags : s->cmds[cc].nflags;
        for (int j = 0; j < n && (cc < c || j < i); j++)
            if (!strcmp(f[j].name, name))
                return 1;
    }
    return 0;
}

/* The case pattern "-x | --name | ..." of every flag (each name once) whose kind is in
 * `mask`; returns how many. */
static int opcomp_bash_pattern(opcomp_w *w, int mask, const char *indent)
{
    const opcomp_spec *s = w->s;
    int count = 0;
    for (int c = -1; c < s->ncmds; c++) {
        const opflag *f = c < 0 ? s->flags : s->cmds[c].flags;
        int n = c < 0 ? s->nflags : s->cmds[c].nflags;
        for (int i = 0; i < n; i++) {
            if (!(opcomp_kind_of(s, &f[i]) & mask) || opcomp_seen(s, c, i))
                continue;
            opcomp_put(w, "%s", count ? " | " : indent);
            if (f[i].shorthand)
                opcomp_put(w, "-%c | ", f[i].shorthand);
            opcomp_put(w, "--%s", f[i].name);
            count++;
        }
    }
    return count;
}

static void opcomp_bash(opcomp_w *w, const char *fn)
{
    const opcomp_spec *s = w->s;
    opcomp_put(w,
               "# bash completion for %s %s, generated from its flag and command tables by\n"
               "# `%s completion bash`. Load it in this shell with\n"
               "#   source <(%s completion bash)\n"
               "# or save it as /usr/share/bash-completion/completions/%s.\n"
               "%s() {\n"
               "    local cur=${COMP_WORDS[COMP_CWORD]} prev=''\n"
               "    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
               "    # bash splits \"--flag=value\" at \"=\": complete the value of the flag\n"
               "    if [[ $cur == \"=\" ]]; then\n"
               "        cur=''\n"
               "    elif [[ $prev == \"=\" ]] && ((COMP_CWORD > 1)); then\n"
               "        prev=${COMP_WORDS[COMP_CWORD - 2]}\n"
               "    fi\n"
               "    # the command, and how many arguments after it, skipping flags and values\n"
               "    local i w cmd='' npos=0\n"
               "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
               "        w=${COMP_WORDS[i]}\n"
               "        case $w in\n",
               s->prog, s->version, s->prog, s->prog, s->prog, fn);
    if (opcomp_bash_pattern(w, OPCOMP_K_NONE | OPCOMP_K_WORDS | OPCOMP_K_FILES | OPCOMP_K_DIRS,
                            "        "))
        opcomp_put(w, ")\n"
                      "            [[ ${COMP_WORDS[i + 1]-} == \"=\" ]] && i=$((i + 1))\n"
                      "            i=$((i + 1))\n"
                      "            ;;\n");
    opcomp_put(w,
               "        -* | =) ;;\n"
               "        *)\n"
               "            if [[ -z $cmd ]]%s; then cmd=$w; else npos=$((npos + 1)); fi\n"
               "            ;;\n"
               "        esac\n"
               "    done\n"
               "    # the value of a flag\n"
               "    case $prev in\n",
               s->global_flags ? "" : " && ((i == 1))");
    /* flags with word lists: one case each (their lists differ) */
    for (int c = -1; c < s->ncmds; c++) {
        const opflag *f = c < 0 ? s->flags : s->cmds[c].flags;
        int n = c < 0 ? s->nflags : s->cmds[c].nflags;
        for (int i = 0; i < n; i++) {
            if (opcomp_kind_of(s, &f[i]) != OPCOMP_K_WORDS || opcomp_seen(s, c, i))
                continue;
            const char *v = opcomp_values(s, f[i].name);
            opcomp_put(w, "    ");
            if (f[i].shorthand)
                opcomp_put(w, "-%c | ", f[i].shorthand);
            opcomp_put(w,
                       "--%s)\n"
                       "        mapfile -t COMPREPLY < <(compgen -W \"%s\" -- \"$cur\")\n"
                       "        return\n"
                       "        ;;\n",
                       f[i].name, v);
        }
    }
    if (opcomp_bash_pattern(w, OPCOMP_K_FILES, "    "))
        opcomp_put(w, ")\n"
                      "        compopt -o filenames 2>/dev/null\n"
                      "        mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
                      "        return\n"
                      "        ;;\n");
    if (opcomp_bash_pattern(w, OPCOMP_K_DIRS, "    "))
        opcomp_put(w, ")\n"
                      "        compopt -o filenames 2>/dev/null\n"
                      "        mapfile -t COMPREPLY < <(compgen -d -- \"$cur\")\n"
                      "        return\n"
                      "        ;;\n");
    if (opcomp_bash_pattern(w, OPCOMP_K_NONE, "    "))
        opcomp_put(w, ")\n"
                      "        COMPREPLY=()\n"
                      "        return\n"
                      "        ;;\n");
    opcomp_put(w, "    esac\n"
                  "    # a flag\n"
                  "    if [[ $cur == -* ]]; then\n"
                  "        case $cmd in\n");
    if (!s->global_flags) {
        opcomp_put(w, "        \"\") w=\"");
        opcomp_flag_words(w, s->flags, s->nflags);
        opcomp_put(w, "\" ;;\n");
    }
    for (int c = 0; c < s->ncmds; c++) {
        const opcomp_cmd *k = &s->cmds[c];
        if (!k->nflags)
            continue; /* the default below */
        opcomp_put(w, "        %s%s%s) w=\"", k->name, k->alias ? " | " : "",
                   k->alias ? k->alias : "");
        if (s->global_flags)
            opcomp_flag_words(w, s->flags, s->nflags);
        opcomp_flag_words(w, k->flags, k->nflags);
        opcomp_put(w, "\" ;;\n");
    }
    opcomp_put(w, "        *) w=\"");
    if (s->global_flags)
        opcomp_flag_words(w, s->flags, s->nflags);
    opcomp_put(w,
               "\" ;;\n"
               "        esac\n"
               "        mapfile -t COMPREPLY < <(compgen -W \"$w\" -- \"$cur\")\n"
               "        return\n"
               "    fi\n"
               "    # the command, then its first argument\n"
               "    if [[ -z $cmd ]]; then\n"
               "        %smapfile -t COMPREPLY < <(compgen -W \"",
               s->global_flags ? "" : "((COMP_CWORD == 1)) && ");
    for (int c = 0; c < s->ncmds; c++)
        opcomp_put(w, "%s%s%s%s", c ? " " : "", s->cmds[c].name, s->cmds[c].alias ? " " : "",
                   s->cmds[c].alias ? s->cmds[c].alias : "");
    opcomp_put(w, "\" -- \"$cur\")\n"
                  "        return\n"
                  "    fi\n"
                  "    ((npos == 0)) || return 0\n"
                  "    case $cmd in\n");
    for (int c = 0; c < s->ncmds; c++) {
        const opcomp_cmd *k = &s->cmds[c];
        if (!k->words)
            continue;
        opcomp_put(w, "    %s%s%s)\n", k->name, k->alias ? " | " : "", k->alias ? k->alias : "");
        if (strchr(k->words, '/')) /* "deployment/" goes on into a name */
            opcomp_put(w, "        compopt -o nospace 2>/dev/null\n");
        opcomp_put(w,
                   "        mapfile -t COMPREPLY < <(compgen -W \"%s\" -- \"$cur\")\n"
                   "        ;;\n",
                   k->words);
    }
    opcomp_put(w,
               "    esac\n"
               "}\n"
               "complete -F %s %s\n",
               fn, s->prog);
}

/* ---- zsh ------------------------------------------------------------------------------- */

/* Text inside a single-quoted zsh word; with `brackets`, inside an _arguments
 * [description] too. (A _describe description may hold colons: only the first splits.) */
static void opcomp_zsh_text(opcomp_w *w, const char *t, int brackets)
{
    for (; *t; t++) {
        if (*t == '\'')
            opcomp_put(w, "'\\''");
        else if (brackets && (*t == '[' || *t == ']' || *t == '\\'))
            opcomp_put(w, "\\%c", *t);
        else
            opcomp_put(w, "%c", *t);
    }
}

/* One _arguments spec a line; `cont` ends each with a line continuation. */
static void opcomp_zsh_flags(opcomp_w *w, const opflag *f, int n, const char *indent, int cont)
{
    const opcomp_spec *s = w->s;
    for (int i = 0; i < n; i++) {
        int rep = f[i].type == OPFLAG_LIST, val = f[i].type != OPFLAG_BOOL;
        opcomp_put(w, "%s", indent);
        if (f[i].shorthand) {
            if (rep)
                opcomp_put(w, "'*'");
            else
                opcomp_put(w, "'(-%c --%s)'", f[i].shorthand, f[i].name);
            opcomp_put(w, "{-%c,--%s}'", f[i].shorthand, f[i].name);
        } else {
            opcomp_put(w, "'%s--%s", rep ? "*" : "", f[i].name);
        }
        opcomp_put(w, "%s[", val ? "=" : "");
        opcomp_zsh_text(w, f[i].usage ? f[i].usage : "", 1);
        opcomp_put(w, "]");
        if (val) {
            enum opcomp_kind k = opcomp_kind_of(s, &f[i]);
            opcomp_put(w, ":%s:", f[i].name);
            if (k == OPCOMP_K_FILES)
                opcomp_put(w, "_files");
            else if (k == OPCOMP_K_DIRS)
                opcomp_put(w, "_files -/");
            else if (k == OPCOMP_K_WORDS)
                opcomp_put(w, "(%s)", opcomp_values(s, f[i].name));
            else
                opcomp_put(w, " ");
        }
        opcomp_put(w, "'%s\n", cont ? " \\" : "");
    }
}

static void opcomp_zsh(opcomp_w *w, const char *fn)
{
    const opcomp_spec *s = w->s;
    opcomp_put(w,
               "#compdef %s\n"
               "# zsh completion for %s %s, generated from its flag and command tables by\n"
               "# `%s completion zsh`. Save it as _%s in a directory of $fpath (then run\n"
               "# compinit), or load it in this shell with: source <(%s completion zsh)\n"
               "%s() {\n"
               "    local curcontext=$curcontext state state_descr line ret=1\n"
               "    typeset -A opt_args\n"
               "    local -a top cmds\n"
               "    top=(\n",
               s->prog, s->prog, s->version, s->prog, s->prog, s->prog, fn);
    opcomp_zsh_flags(w, s->flags, s->nflags, "        ", 0);
    opcomp_put(w, "    )\n"
                  "    cmds=(\n");
    for (int c = 0; c < s->ncmds; c++)
        for (int a = 0; a < 2; a++) {
            const char *name = a ? s->cmds[c].alias : s->cmds[c].name;
            if (!name)
                continue;
            opcomp_put(w, "        '%s:", name);
            opcomp_zsh_text(w, s->cmds[c].summary ? s->cmds[c].summary : "", 0);
            opcomp_put(w, "'\n");
        }
    opcomp_put(w,
               "    )\n"
               "    _arguments -C -s : $top ': :->cmd' '*:: :->args' && ret=0\n"
               "    case $state in\n"
               "    cmd) _describe -t commands '%s command' cmds && ret=0 ;;\n"
               "    args)\n"
               "        curcontext=${curcontext%%:*:*}:%s-$words[1]:\n"
               "        case $words[1] in\n",
               s->prog, s->prog);
    for (int c = 0; c < s->ncmds; c++) {
        const opcomp_cmd *k = &s->cmds[c];
        opcomp_put(w, "        %s%s%s)\n            _arguments -s : %s\\\n", k->name,
                   k->alias ? "|" : "", k->alias ? k->alias : "", s->global_flags ? "$top " : "");
        opcomp_zsh_flags(w, k->flags, k->nflags, "                ", 1);
        if (k->words)
            opcomp_put(w, "                '1:argument:(%s)' \\\n", k->words);
        opcomp_put(w, "                && ret=0\n            ;;\n");
    }
    opcomp_put(w,
               "        esac\n"
               "        ;;\n"
               "    esac\n"
               "    return ret\n"
               "}\n"
               "if [ \"$funcstack[1]\" = \"%s\" ]; then\n"
               "    %s \"$@\"\n"
               "else\n"
               "    compdef %s %s\n"
               "fi\n",
               fn, fn, fn, s->prog);
}

int opcomp_script(const opcomp_spec *s, const char *shell, opbuf *out, operr *err)
{
    int rc = opcomp_check(s, err);
    if (rc)
        return rc;
    int bash = !strcmp(shell, "bash");
    if (!bash && strcmp(shell, "zsh"))
        return operr_set(err, -EINVAL, "completion '%s': expected bash or zsh", shell);
    char fn[128];
    /* bash: a function name from the program's ("_kubectl_optipod"); zsh: "_" + the
     * program's, the name compinit autoloads the file as */
    snprintf(fn, sizeof fn, "_%s", s->prog);
    for (char *p = fn; bash && *p; p++)
        if (*p == '-')
            *p = '_';
    opcomp_w w = {s, out, 0};
    if (bash)
        opcomp_bash(&w, fn);
    else
        opcomp_zsh(&w, fn);
    return w.rc ? operr_set(err, w.rc, "completion: the script is too large") : 0;
}
