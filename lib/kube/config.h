/*
 * kcfg: where the API server is and how to authenticate to it.
 *
 * Sources, in the order kcfg_load() tries them (client-go's order):
 *   1. an explicit path (--kubeconfig);
 *   2. $KUBECONFIG (the first file of a ':'-separated list that exists);
 *   3. in-cluster: $KUBERNETES_SERVICE_HOST/PORT and the service account files;
 *   4. ~/.kube/config.
 * A kubeconfig is parsed with libyaml: current-context (or an explicit context),
 * its cluster (server, certificate-authority[-data], insecure-skip-tls-verify)
 * and user (client-certificate[-data], client-key[-data], token, tokenFile).
 * Relative file paths resolve against the kubeconfig's directory.
 *
 * Errors name the file, the key and what was wrong, e.g.
 *   kubeconfig '/tmp/k': contexts[1].context.cluster: no cluster named "prod"
 *
 * Ownership: kcfg owns every string and blob; kcfg_release() frees them.
 */
#ifndef OPTIPOD_KUBE_CONFIG_H
#define OPTIPOD_KUBE_CONFIG_H

#include <stddef.h>
#include <time.h>

#include "util/err.h"

#define KCFG_INCLUSTER_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

typedef struct kcfg {
    char *source;        /* the kubeconfig path, or "in-cluster" */
    char *context;       /* the context used ("" in-cluster) */
    char *server;        /* "https://host:port", no trailing slash */
    char *ns;            /* default namespace: context's, service account's, or "default" */
    char *ca_file;       /* PEM path, or NULL */
    char *ca_data;       /* decoded PEM bytes (from base64), or NULL */
    size_t ca_data_len;
    char *cert_file, *key_file;
    char *cert_data, *key_data; /* decoded PEM */
    size_t cert_data_len, key_data_len;
    char *token;         /* static bearer token, or NULL */
    char *token_file;    /* re-read when it changes (service-account rotation) */
    int insecure;        /* insecure-skip-tls-verify: true */
    /* token_file cache, owned by kcfg_bearer() */
    char *token_cached;
    time_t token_mtime;
    time_t token_read_at;
} kcfg;

void kcfg_init(kcfg *c);
void kcfg_release(kcfg *c);

/* Parse one kubeconfig file; context NULL = current-context. */
int kcfg_load_file(kcfg *c, const char *path, const char *context, operr *err);
/* In-cluster config; dir NULL = KCFG_INCLUSTER_DIR (tests pass their own). Reads
 * KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT from the environment. */
int kcfg_load_incluster(kcfg *c, const char *dir, operr *err);
/* The whole search order above; explicit_path and context may be NULL. */
int kcfg_load(kcfg *c, const char *explicit_path, const char *context, operr *err);

/* The bearer token to send now, or NULL when none. A token file is re-read when
 * its mtime changes or a minute has passed (kubelet rotates it in place). The
 * returned pointer stays valid until the next kcfg_bearer() or kcfg_release(). */
const char *kcfg_bearer(kcfg *c, operr *err);

#endif
