#include "ops.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <uv.h>

#include "controller/controller.h"
#include "obs/process.h"

obs_reg *ops_new(operr *err)
{
    obs_reg *r = obs_reg_new("optipod", 10000);
    if (!r) {
        operr_set(err, -ENOMEM, "metrics registry: out of memory");
        return NULL;
    }
    static const char *const lb[] = {"version", "libuv", "libcurl", "openssl", "cjson", NULL};
    static const char *const ll[] = {"lease", NULL};
    obs_fam *build =
        obs_gauge(r, "optipod_build_info",
                  "Always 1: the version of optipod and of the libraries it runs on.", lb, err);
    obs_fam *leader = obs_gauge(r, "optipod_is_leader",
                                "1 while this process holds the leader Lease and may write "
                                "(lease=\"none\": election off, always 1), else 0.",
                                ll, err);
    if (!build || !leader || obs_process_register(r, err) != 0 || ctl_metrics_define(r, err) != 0) {
        obs_reg_free(r);
        return NULL;
    }
    const char *lv[] = {OPTIPOD_VERSION, uv_version_string(),
                        curl_version_info(CURLVERSION_NOW)->version,
                        OpenSSL_version(OPENSSL_VERSION_STRING), cJSON_Version()};
    obs_set(build, lv, 1);
    return r;
}

void ops_set_leader(obs_reg *r, const char *lease, int leading)
{
    const char *lv[] = {lease && *lease ? lease : "none"};
    obs_set(obs_find(r, "optipod_is_leader"), lv, leading ? 1 : 0);
}

void ops_free(obs_reg *r)
{
    obs_reg_free(r);
}
