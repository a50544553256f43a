/*
 * mpromflags: the Prometheus backend flags; see promflags.h.
 */
#include "metrics/promflags.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

void mpromflags_init(mpromflags *f)
{
    memset(f, 0, sizeof *f);
    f->headers = (opflag_list){f->hdr_v, 0, MPROM_MAX_HEADERS};
}

static int set(const char *s)
{
    return s && *s;
}

int mpromflags_opts(const mpromflags *f, mprom_opts *o, operr *err)
{
    if (!set(f->url)) {
        const char *orphan = set(f->token_file)        ? "--prometheus-bearer-token-file"
                             : set(f->basic_auth_file) ? "--prometheus-basic-auth-file"
                             : set(f->ca_file)         ? "--prometheus-ca-file"
                             : f->headers.n            ? "--prometheus-header"
                                                       : NULL;
        if (orphan)
            return operr_set(err, -EINVAL, "flag %s: needs --prometheus-url", orphan);
        return 1;
    }
    if (strncmp(f->url, "http://", 7) != 0 && strncmp(f->url, "https://", 8) != 0)
        return operr_set(err, -EINVAL,
                         "flag --prometheus-url: \"%.200s\": must start with http:// or https://",
                         f->url);
    if (set(f->token_file) && set(f->basic_auth_file))
        return operr_set(err, -EINVAL,
                         "flags --prometheus-bearer-token-file and --prometheus-basic-auth-file: "
                         "give one of them");
    for (int i = 0; i < f->headers.n; i++) {
        operr he;
        if (mprom_header_check(f->headers.v[i], &he) != 0)
            return operr_set(err, -EINVAL, "flag --prometheus-header: %s", he.msg);
        if ((set(f->token_file) || set(f->basic_auth_file)) &&
            strncasecmp(f->headers.v[i], "Authorization:", 14) == 0)
            return operr_set(err, -EINVAL,
                             "flag --prometheus-header: \"%.100s\": Authorization comes from the "
                             "token or basic auth file already",
                             f->headers.v[i]);
    }
    o->url = f->url;
    o->bearer_token_file = set(f->token_file) ? f->token_file : NULL;
    o->basic_auth_file = set(f->basic_auth_file) ? f->basic_auth_file : NULL;
    o->ca_file = set(f->ca_file) ? f->ca_file : NULL;
    o->headers = f->headers.v;
    o->nheaders = (size_t)f->headers.n;
    return 0;
}
