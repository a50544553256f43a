#include "obs/process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PROC_TEXT_MAX 8192

/* A decimal integer at *p (advanced past it and following blanks); negative only when
 * allowed (tpgid, priority and nice may be). */
static int take_number(const char **p, const char *end, int allow_neg, double *out)
{
    const char *s = *p;
    double v = 0, sign = 1;
    if (allow_neg && s < end && *s == '-') {
        sign = -1;
        s++;
    }
    if (s >= end || *s < '0' || *s > '9')
        return -EINVAL;
    while (s < end && *s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    if ((s < end && *s != ' ' && *s != '\n') || !isfinite(v))
        return -EINVAL;
    while (s < end && (*s == ' ' || *s == '\n'))
        s++;
    *p = s;
    *out = sign * v;
    return 0;
}

/* Skip one field of non-blank bytes and the blanks after it. */
static int skip_field(const char **p, const char *end)
{
    const char *s = *p;
    if (s >= end || *s == ' ' || *s == '\n')
        return -EINVAL;
    while (s < end && *s != ' ' && *s != '\n')
        s++;
    while (s < end && (*s == ' ' || *s == '\n'))
        s++;
    *p = s;
    return 0;
}

int obs_proc_parse_stat(const char *text, size_t len, obs_proc_stat *out)
{
    memset(out, 0, sizeof *out);
    const char *end = text + len, *close = NULL;
    for (const char *s = text; s < end; s++)
        if (*s == ')')
            close = s;
    if (!close || close + 2 > end || close[1] != ' ')
        return -EINVAL;
    const char *p = close + 2;
    /* Fields from 3 (state) on; we want 14, 15, 22, 23, 24. */
    double v;
    for (int field = 3; field <= 24; field++) {
        int used = field == 14 || field == 15 || field >= 22;
        if (field == 3 ? skip_field(&p, end) != 0 : take_number(&p, end, !used, &v) != 0)
            return -EINVAL;
        switch (field) {
        case 14:
            out->utime_ticks = v;
            break;
        case 15:
            out->stime_ticks = v;
            break;
        case 22:
            out->start_ticks = v;
            break;
        case 23:
            out->vsize_bytes = v;
            break;
        case 24:
            out->rss_pages = v;
            break;
        default:
            break;
        }
    }
    return 0;
}

int obs_proc_parse_btime(const char *text, size_t len, double *btime)
{
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        if (le - line > 6 && memcmp(line, "btime ", 6) == 0) {
            const char *p = line + 6;
            return take_number(&p, le, 0, btime) == 0 && p == le ? 0 : -EINVAL;
        }
        line = nl ? nl + 1 : end;
    }
    return -EINVAL;
}

/* ---- the collector ------------------------------------------------------------------------ */

static ssize_t read_text(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    close(fd);
    buf[n] = '\0';
    return (ssize_t)n;
}

#define F_CPU   "process_cpu_seconds_total"
#define F_RSS   "process_resident_memory_bytes"
#define F_VSIZE "process_virtual_memory_bytes"
#define F_OPEN  "process_open_fds"
#define F_MAX   "process_max_fds"
#define F_START "process_start_time_seconds"

/* ud is the registry: the families are found by name, so nothing outlives it. */
static void collect(void *ud)
{
    obs_reg *r = ud;
    static char buf[PROC_TEXT_MAX];
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    obs_proc_stat st;
    ssize_t n = read_text("/proc/self/stat", buf, sizeof buf);
    if (n > 0 && tck > 0 && page > 0 && obs_proc_parse_stat(buf, (size_t)n, &st) == 0) {
        obs_set(obs_find(r, F_CPU), NULL, (st.utime_ticks + st.stime_ticks) / (double)tck);
        obs_set(obs_find(r, F_RSS), NULL, st.rss_pages * (double)page);
        obs_set(obs_find(r, F_VSIZE), NULL, st.vsize_bytes);
        double btime;
        n = read_text("/proc/stat", buf, sizeof buf);
        if (n > 0 && obs_proc_parse_btime(buf, (size_t)n, &btime) == 0)
            obs_set(obs_find(r, F_START), NULL, btime + st.start_ticks / (double)tck);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        double fds = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        obs_set(obs_find(r, F_OPEN), NULL, fds - 1); /* not the directory's own descriptor */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        obs_set(obs_find(r, F_MAX), NULL,
                rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur);
}

int obs_process_register(obs_reg *r, operr *err)
{
    if (!obs_counter(r, F_CPU, "Total user and system CPU time spent in seconds.", NULL, err) ||
        !obs_gauge(r, F_RSS, "Resident memory size in bytes.", NULL, err) ||
        !obs_gauge(r, F_VSIZE, "Virtual memory size in bytes.", NULL, err) ||
        !obs_gauge(r, F_OPEN, "Number of open file descriptors.", NULL, err) ||
        !obs_gauge(r, F_MAX, "Maximum number of open file descriptors.", NULL, err) ||
        !obs_gauge(r, F_START, "Start time of the process since unix epoch in seconds.", NULL, err))
        return -EINVAL;
    return obs_reg_collector(r, collect, r);
}
