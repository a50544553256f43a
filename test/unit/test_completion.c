/*
 * Shell completion of both binaries (`optipod completion bash|zsh`,
 * `kubectl-optipod completion bash|zsh`, util/complete.h): the scripts parse
 * (bash -n, shellcheck, zsh -n), name every flag and command the binaries'
 * --help lists and only value words their usage names, and complete for real:
 * bash through the completion function with COMP_WORDS set, zsh through an
 * interactive zsh on a pseudo-terminal pressing Tab.
 */
#include "test.h"
#include "support/proc.h"
#include "util/buf.h"
#include "util/complete.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

static const char *optipod, *kubectl, *dir;

static void setup(void)
{
    optipod = test_built("optipod");
    kubectl = test_built("kubectl-optipod");
    dir = test_tmpdir();
}

static int sh(proc *p, const char *script)
{
    char *argv[] = {"/bin/bash", "-c", (char *)script, NULL};
    proc_start(p, argv);
    return proc_wait_exit(p, 30);
}

/* Write `bin completion shell` to a file in dir; its path goes to out. */
static void script(const char *bin, const char *shell, char *out, size_t cap)
{
    static proc p;
    char cmd[3 * PATH_MAX];
    snprintf(out, cap, "%s/%s.%s", dir, strrchr(bin, '/') + 1, shell);
    snprintf(cmd, sizeof cmd, "'%s' completion %s >'%s'", bin, shell, out);
    if (sh(&p, cmd) != 0)
        test_fail(__FILE__, __LINE__, "%s completion %s: %s", bin, shell, p.out);
}

static char *slurp(const char *path)
{
    size_t len;
    return test_read_file(path, &len);
}

static void test_scripts_parse(void)
{
    setup();
    static proc p;
    const char *bins[] = {optipod, kubectl};
    for (int i = 0; i < 2; i++) {
        char b[PATH_MAX + 64], z[PATH_MAX + 64], cmd[3 * PATH_MAX];
        script(bins[i], "bash", b, sizeof b);
        script(bins[i], "zsh", z, sizeof z);
        snprintf(cmd, sizeof cmd, "bash -n '%s'", b);
        if (sh(&p, cmd) != 0)
            test_fail(__FILE__, __LINE__, "bash -n %s: %s", b, p.out);
        if (system("command -v shellcheck >/dev/null 2>&1") == 0) {
            snprintf(cmd, sizeof cmd, "shellcheck -s bash '%s'", b);
            if (sh(&p, cmd) != 0)
                test_fail(__FILE__, __LINE__, "shellcheck %s:\n%s", b, p.out);
        }
        if (system("command -v zsh >/dev/null 2>&1") != 0)
            test_skip("zsh is not installed (make test installs it)");
        snprintf(cmd, sizeof cmd, "zsh -n '%s'", z);
        if (sh(&p, cmd) != 0)
            test_fail(__FILE__, __LINE__, "zsh -n %s: %s", z, p.out);
    }
}

/* Every "--name" and "-x" in `help` (a --help output) appears in the script. */
static void flags_appear(const char *help, const char *text, const char *what)
{
    int n = 0;
    for (const char *p = strstr(help, "\nFlags:\n"); p && (p = strstr(p, "\n  ")) != NULL;) {
        p += 3;
        const char *dash = p + strspn(p, " ");
        if (dash[0] != '-')
            continue;
        char shorty[8] = "", name[96];
        if (dash[1] != '-') { /* "-x, --name" */
            snprintf(shorty, sizeof shorty, " -%c", dash[1]);
            dash = strstr(dash, "--");
        }
        size_t len = strcspn(dash, " \n");
        snprintf(name, sizeof name, "%.*s", (int)len, dash);
        char braced[8]; /* zsh: {-x,--name} */
        snprintf(braced, sizeof braced, "{%s,", shorty + 1);
        if (shorty[0] && !strstr(text, shorty) && !strstr(text, braced))
            test_fail(__FILE__, __LINE__, "%s: %s is not completed", what, shorty);
        if (!strstr(text, name))
            test_fail(__FILE__, __LINE__, "%s: %s is not completed", what, name);
        n++;
    }
    ASSERT_CMP_INT(n, >=, 5);
}

static void test_every_flag_and_command_appears(void)
{
    setup();
    static proc p;
    char cmd[PATH_MAX + 32];
    const char *bins[] = {optipod, kubectl};
    for (int i = 0; i < 2; i++) {
        char b[PATH_MAX + 64], z[PATH_MAX + 64];
        script(bins[i], "bash", b, sizeof b);
        script(bins[i], "zsh", z, sizeof z);
        char *tb = slurp(b), *tz = slurp(z);
        snprintf(cmd, sizeof cmd, "'%s' --help", bins[i]);
        ASSERT_EQ_INT(sh(&p, cmd), 0);
        flags_appear(p.out, tb, b);
        flags_appear(p.out, tz, z);
        if (i == 0) {
            snprintf(cmd, sizeof cmd, "'%s' plan --help", optipod);
            ASSERT_EQ_INT(sh(&p, cmd), 0);
            flags_appear(p.out, tb, b);
            flags_appear(p.out, tz, z);
            snprintf(cmd, sizeof cmd, "'%s' backtest --help", optipod);
            ASSERT_EQ_INT(sh(&p, cmd), 0);
            flags_appear(p.out, tb, b);
            flags_appear(p.out, tz, z);
            ASSERT_STR_CONTAINS(tb, "compgen -W \"plan backtest completion\"");
            ASSERT_STR_CONTAINS(tz, "'plan:");
            ASSERT_STR_CONTAINS(tz, "'backtest:");
            ASSERT_STR_CONTAINS(tz, "'completion:");
        } else {
            /* the commands --help lists, each in both scripts */
            const char *c = strstr(p.out, "Commands:\n");
            ASSERT_NOT_NULL(c);
            int n = 0;
            for (c = strchr(c, '\n') + 1; !strncmp(c, "  ", 2); c = strchr(c, '\n') + 1) {
                char name[64], zname[80];
                snprintf(name, sizeof name, "%.*s", (int)strcspn(c + 2, " \n"), c + 2);
                snprintf(zname, sizeof zname, "'%s:", name);
                ASSERT_STR_CONTAINS(tb, name);
                ASSERT_STR_CONTAINS(tz, zname);
                n++;
            }
            ASSERT_CMP_INT(n, >=, 8);
        }
        free(tb);
        free(tz);
    }
}

/* A value word list (`--name)` then `compgen -W "..."` in the bash script) names only
 * values that the flag's usage line in --help names. */
static void values_in_usage(const char *text, const char *help)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, "--")) != NULL; p += 2) {
        size_t len = strcspn(p, ")| \n");
        if (p[len] != ')' || strncmp(p + len, ")\n        mapfile", 17))
            continue;
        const char *w = strstr(p, "compgen -W \"");
        ASSERT_NOT_NULL(w);
        w += strlen("compgen -W \"");
        char flag[96], line[512];
        snprintf(flag, sizeof flag, "%.*s ", (int)len, p);
        const char *h = strstr(help, flag);
        if (!h)
            continue; /* a flag of the other table (plan's): checked against its help */
        snprintf(line, sizeof line, "%.*s", (int)strcspn(h, "\n"), h);
        for (const char *v = w; *v != '"';) {
            size_t wl = strcspn(v, " \"");
            char word[64];
            snprintf(word, sizeof word, "%.*s", (int)wl, v);
            if (!strstr(line, word))
                test_fail(__FILE__, __LINE__, "%s completes '%s', its usage does not name it: %s",
                          flag, word, line);
            v += wl + (v[wl] == ' ');
            n++;
        }
    }
    ASSERT_CMP_INT(n, >=, 2);
}

static void test_value_words_are_documented(void)
{
    setup();
    static proc p;
    char b[PATH_MAX + 64], cmd[PATH_MAX + 32];
    script(kubectl, "bash", b, sizeof b);
    char *t = slurp(b);
    snprintf(cmd, sizeof cmd, "'%s' --help", kubectl);
    ASSERT_EQ_INT(sh(&p, cmd), 0);
    values_in_usage(t, p.out);
    free(t);
    script(optipod, "bash", b, sizeof b);
    t = slurp(b);
    snprintf(cmd, sizeof cmd, "'%s' plan --help", optipod);
    ASSERT_EQ_INT(sh(&p, cmd), 0);
    values_in_usage(t, p.out);
    free(t);
}

/* Completions bash offers for each line (words separated by blanks, the last the one
 * being completed, "" for an empty one), as "[line] -> words". */
static void bash_cases(const char *bin, const char *const *lines, int n, char *out, size_t cap)
{
    static proc p;
    char b[PATH_MAX + 64];
    script(bin, "bash", b, sizeof b);
    opbuf s;
    opbuf_init(&s, 1 << 16);
    opbuf_printf(&s,
                 "source '%s'\n"
                 "t() { COMP_WORDS=(\"$@\"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); "
                 "%s; echo \"[$*] -> ${COMPREPLY[*]}\"; }\n",
                 b, strstr(bin, "kubectl") ? "_kubectl_optipod" : "_optipod");
    for (int i = 0; i < n; i++)
        opbuf_printf(&s, "t %s\n", lines[i]);
    ASSERT_EQ_INT(sh(&p, opbuf_str(&s)), 0);
    opbuf_release(&s);
    snprintf(out, cap, "%s", p.out);
}

static void test_bash_completes(void)
{
    setup();
    char out[8192];
    const char *k[] = {
        "kubectl-optipod ''",
        "kubectl-optipod rec",
        "kubectl-optipod -n default gitops ''",
        "kubectl-optipod gitops argocd ''",
        "kubectl-optipod recs -o ''",
        "kubectl-optipod recs --output = j",
        "kubectl-optipod explain d",
        "kubectl-optipod savings --memory",
        "kubectl-optipod export --format ''",
        "kubectl-optipod completion ''",
        "kubectl-optipod -n ''",
    };
    bash_cases(kubectl, k, (int)(sizeof k / sizeof k[0]), out, sizeof out);
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod ] -> recommendations recs explain savings export "
                             "gitops release manage version completion\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod rec] -> recommendations recs\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod -n default gitops ] -> argocd flux\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod gitops argocd ] -> \n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod recs -o ] -> table json yaml csv\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod recs --output = j] -> json\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod explain d] -> deployment/ daemonset/\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod savings --memory] -> --memory-price\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod export --format ] -> kustomize patch helm-values\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod completion ] -> bash zsh\n");
    ASSERT_STR_CONTAINS(out, "[kubectl-optipod -n ] -> \n");

    const char *o[] = {
        "optipod ''",        "optipod --webhook-o", "optipod plan --u",
        "optipod plan -o t", "optipod -v 2 ''",     "optipod plan --format ''",
    };
    bash_cases(optipod, o, (int)(sizeof o / sizeof o[0]), out, sizeof out);
    ASSERT_STR_CONTAINS(out, "[optipod ] -> plan backtest completion\n");
    ASSERT_STR_CONTAINS(out, "[optipod --webhook-o] -> --webhook-only\n");
    ASSERT_STR_CONTAINS(out, "[optipod plan --u] -> --usage\n");
    ASSERT_STR_CONTAINS(out, "[optipod plan -o t] -> table\n");
    /* a command comes first: after the controller's flags, none is offered */
    ASSERT_STR_CONTAINS(out, "[optipod -v 2 ] -> \n");
    ASSERT_STR_CONTAINS(out, "[optipod plan --format ] -> kustomize helm-values\n");
}

/* What an interactive zsh lists (or completes the line to) on Tab after each of the lines,
 * with both programs' completion loaded: one "== LINE" header, then the screen, per line. */
static void zsh_tab(const char *const *lines, int n, char *out, size_t cap)
{
    static proc p;
    char zo[PATH_MAX + 64], zk[PATH_MAX + 64], cap_path[PATH_MAX + 32];
    script(optipod, "zsh", zo, sizeof zo);
    script(kubectl, "zsh", zk, sizeof zk);
    snprintf(cap_path, sizeof cap_path, "%s/tab.zsh", dir);
    FILE *f = fopen(cap_path, "w");
    ASSERT_NOT_NULL(f);
    /* Keys are handled in order, so each Tab's listing is printed before the marker is. */
    fputs("zmodload zsh/zpty\n"
          "zpty z 'zsh -f -i'\n"
          "zpty -w z \"PROMPT='READY> '; autoload -U compinit; compinit -u -D; source $1; "
          "source $2; setopt nobeep\"\n"
          "zpty -w z 'print MARK0'\n"
          "zpty -r z x '*MARK0*'\n"
          "zpty -r z x '*MARK0*'\n"
          "zpty -r z x '*READY> *'\n" /* zle is reading keys now, not the tty's line editor */
          "shift 2\n"
          "i=0\n"
          "for line; do\n"
          "  i=$((i + 1))\n"
          "  zpty -w -n z \"$line\"$'\\t'\n"
          "  zpty -w -n z $'\\C-u'\n"
          "  zpty -w z \"print MARK$i\"\n"
          "  zpty -r z out \"*MARK$i*\"\n"
          "  zpty -r z out2 \"*MARK$i*\"\n"
          "  zpty -r z x '*READY> *'\n"
          "  print -r -- \"== $line\"; print -r -- \"$out$out2\"\n"
          "done\n"
          "zpty -d z\n",
          f);
    ASSERT_EQ_INT(fclose(f), 0);
    char *argv[16] = {"/usr/bin/env", "zsh", "-f", cap_path, zo, zk};
    ASSERT(n <= 9);
    for (int i = 0; i < n; i++)
        argv[6 + i] = (char *)lines[i];
    argv[6 + n] = NULL;
    proc_start(&p, argv);
    ASSERT_EQ_INT(proc_wait_exit(&p, 60), 0);
    snprintf(out, cap, "%s", p.out);
}

/* The screen zsh showed for `line`. */
static const char *zsh_screen(const char *out, const char *line, char *buf, size_t cap)
{
    char head[256];
    snprintf(head, sizeof head, "== %s\n", line);
    const char *a = strstr(out, head);
    if (!a)
        test_fail(__FILE__, __LINE__, "no output for '%s' in:\n%s", line, out);
    a += strlen(head);
    const char *b = strstr(a, "\n== ");
    snprintf(buf, cap, "%.*s", (int)(b ? (size_t)(b - a) : strlen(a)), a);
    return buf;
}

static void test_zsh_completes(void)
{
    setup();
    if (system("command -v zsh >/dev/null 2>&1") != 0)
        test_skip("zsh is not installed (make test installs it)");
    static char out[60000];
    char buf[8192];
    const char *lines[] = {
        "kubectl-optipod gitops ",        "kubectl-optipod recs -o ", "kubectl-optipod ",
        "kubectl-optipod savings --memo", "optipod plan --fo",        "optipod completion ",
    };
    zsh_tab(lines, 6, out, sizeof out);
    const char *s = zsh_screen(out, lines[0], buf, sizeof buf);
    ASSERT_STR_CONTAINS(s, "argocd");
    ASSERT_STR_CONTAINS(s, "flux");
    s = zsh_screen(out, lines[1], buf, sizeof buf);
    ASSERT_STR_CONTAINS(s, "csv");
    ASSERT_STR_CONTAINS(s, "yaml");
    s = zsh_screen(out, lines[2], buf, sizeof buf);
    ASSERT_STR_CONTAINS(s, "why a workload got its recommendation");
    s = zsh_screen(out, lines[3], buf, sizeof buf);
    ASSERT_STR_CONTAINS(s, "--memory-price");
    s = zsh_screen(out, lines[4], buf, sizeof buf);
    ASSERT_STR_CONTAINS(s, "--format");
    s = zsh_screen(out, lines[5], buf, sizeof buf);
    ASSERT_STR_CONTAINS(s, "bash");
    ASSERT_STR_CONTAINS(s, "zsh");
}

static void test_bad_shell_is_a_usage_error(void)
{
    setup();
    static proc p;
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "'%s' completion fish", optipod);
    ASSERT_EQ_INT(sh(&p, cmd), 2);
    ASSERT_STR_CONTAINS(p.out, "completion takes bash or zsh");
    snprintf(cmd, sizeof cmd, "'%s' completion fish", kubectl);
    ASSERT_EQ_INT(sh(&p, cmd), 2);
    ASSERT_STR_CONTAINS(p.out, "completion 'fish': expected bash or zsh");
    snprintf(cmd, sizeof cmd, "'%s' completion", kubectl);
    ASSERT_EQ_INT(sh(&p, cmd), 2);
    ASSERT_STR_CONTAINS(p.out, "completion takes one argument");
}

/* Names a script would have to quote are refused, with the name. */
static void test_unsafe_names_are_refused(void)
{
    static int b;
    static const char *str;
    opflag ok[] = {{"out", 'o', OPFLAG_STRING, &str, "x"}, {"all", 'A', OPFLAG_BOOL, &b, "y"}};
    opflag bad[] = {{"out; rm", 0, OPFLAG_STRING, &str, "x"}};
    opcomp_cmd cmds[] = {{"run", NULL, "it's fine: [really]", "a b", NULL, 0}};
    opcomp_value vals[] = {{"out", OPCOMP_DIRS}};
    opcomp_spec s = {"prog", "1.0", ok, 2, 1, cmds, 1, vals, 1};
    opbuf out;
    opbuf_init(&out, 1 << 16);
    operr err = {{0}};
    ASSERT_EQ_INT(opcomp_script(&s, "zsh", &out, &err), 0);
    ASSERT_STR_CONTAINS(opbuf_str(&out), "'run:it'\\''s fine: [really]'");
    ASSERT_STR_CONTAINS(opbuf_str(&out), "'(-o --out)'{-o,--out}'=[x]:out:_files -/'");
    ASSERT_EQ_INT(opcomp_script(&s, "fish", &out, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "'fish'");
    s.flags = bad;
    s.nflags = 1;
    ASSERT_EQ_INT(opcomp_script(&s, "bash", &out, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "flag 'out; rm'");
    s.flags = ok;
    s.nflags = 2;
    cmds[0].words = "a $(b)";
    ASSERT_EQ_INT(opcomp_script(&s, "bash", &out, &err), -EINVAL);
    ASSERT_STR_CONTAINS(err.msg, "command 'run'");
    cmds[0].words = NULL;
    s.prog = "my prog";
    ASSERT_EQ_INT(opcomp_script(&s, "bash", &out, &err), -EINVAL);
    opbuf_release(&out);
}

int main(void)
{
    TEST_RUN(test_scripts_parse);
    TEST_RUN(test_every_flag_and_command_appears);
    TEST_RUN(test_value_words_are_documented);
    TEST_RUN(test_bash_completes);
    TEST_RUN(test_zsh_completes);
    TEST_RUN(test_bad_shell_is_a_usage_error);
    TEST_RUN(test_unsafe_names_are_refused);
    return test_summary();
}
