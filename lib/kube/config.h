/*
 * kcfg: where the API server is and how to authenticate to it.
 *
 * Sources, in the order kcfg_load() tries them (client-go's order):
 *   1. an explicit path (--kubeconfig);
 *   2. $KUBECONFIG, a ':'-separated list merged as client-go merges it: files
 *      that do not exist are skipped; the first definition of a cluster, user or
 *      context name wins; current-context comes from the first file that sets
 *      it; each entry's relative paths resolve against its own file's directory.
 *      When no listed file exists, the search goes on;
 *   3. in-cluster: $KUBERNETES_SERVICE_HOST/PORT set and the service account
 *      token present (CA and namespace optional; namespace from $POD_NAMESPACE,
 *      then the namespace file, then "default");
 *   4. ~/.kube/config.
 * A kubeconfig is parsed with libyaml: current-context (or an explicit context),
 * its cluster (server, certificate-authority[-data], insecure-skip-tls-verify)
 * and user (client-certificate[-data], client-key[-data], token, tokenFile).
 * Relative file paths resolve against the kubeconfig's directory. The used user
 * may not carry exec, auth-provider or username/password (unsupported); within
 * one file a name may not be defined twice. Files named by the used cluster and
 * user must be readable regular files at load time (a tokenFile is read then).
 * insecure-skip-tls-verify logs a warning.
 * Caps: a kubeconfig of 4 MiB, a token of 64 KiB, YAML nesting of 32 levels.
 *
 * Errors name the file, the key and what was wrong, e.g.
 *   kubeconfig '/tmp/k': contexts[1].context.cluster (line 9): no cluster named "prod"
 *
 * Ownership: kcfg owns every string and blob; kcfg_init() allocates nothing;
 * kcfg_release() frees them and leaves the kcfg re-usable. A failed load leaves
 * the kcfg released.
 *
 * When both are set, certificate-authority-data wins over certificate-authority
 * (client-go's rule) and tokenFile wins over token.
 */
#ifndef OPTIPOD_KUBE_CONFIG_H
#define OPTIPOD_KUBE_CONFIG_H

#include <stddef.h>
#include <time.h>

#include "util/err.h"

#define KCFG_INCLUSTER_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct kcfg {
    char *source;  /* the kubeconfig path, or "in-cluster" */
    char *context; /* the context used ("" in-cluster) */
    char *server;  /* "https://host:port", no trailing slash */
    char *ns;      /* default namespace: context's, service account's, or "default" */
    char *ca_file; /* PEM path, or NULL */
    char *ca_data; /* decoded PEM bytes (from base64), or NULL */
    size_t ca_data_len;
    char *cert_file, *key_file;
    char *cert_data, *key_data; /* decoded PEM */
    size_t cert_data_len, key_data_len;
    char *token;           /* static bearer token, or NULL */
    char *token_file;      /* re-read when it changes (service-account rotation) */
    int insecure;          /* insecure-skip-tls-verify: true */
    char *tls_server_name; /* SNI / verification name override, or NULL */
    /* token_file cache, owned by kcfg_bearer() */
    char *token_cached;
    time_t token_mtime;
    time_t token_read_at;
    long token_mtime_nsec; /* with token_mtime: catches rewrites within a second */
} kcfg;

#define KCFG_MAX_FILE  ((size_t)4 << 20)
#define KCFG_MAX_TOKEN ((size_t)64 << 10)

void kcfg_init(kcfg *c);
void kcfg_release(kcfg *c);

/* Parse one kubeconfig file; context NULL = current-context. */
int kcfg_load_file(kcfg *c, const char *path, const char *context, operr *err);
/* The same for a kubeconfig already in memory: `path` names it in errors and its
 * directory anchors relative paths. */
int kcfg_load_mem(kcfg *c, const char *data, size_t len, const char *path, const char *context,
                  operr *err);
/* In-cluster config; dir NULL = KCFG_INCLUSTER_DIR (tests pass their own). Reads
 * KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT from the environment. */
int kcfg_load_incluster(kcfg *c, const char *dir, operr *err);
/* The whole search order above; explicit_path and context may be NULL. */
int kcfg_load(kcfg *c, const char *explicit_path, const char *context, operr *err);
/* kcfg_load() with another service-account directory (tests). */
int kcfg_load_from(kcfg *c, const char *explicit_path, const char *context,
                   const char *incluster_dir, operr *err);

/* The bearer token to send now, or NULL when none. A token file is re-read when
 * its mtime changes or a minute has passed (kubelet rotates it in place). The
 * returned pointer stays valid until the next kcfg_bearer() or kcfg_release(). */
const char *kcfg_bearer(kcfg *c, operr *err);

#endif
