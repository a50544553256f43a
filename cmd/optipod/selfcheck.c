/*
 * `optipod --self-check`: proves on this machine, without a cluster, that the
 * pieces the controller stands on work together: libcurl has TLS and HTTP/2,
 * the CA bundle libcurl trusts by default is there and holds certificates,
 * OpenSSL makes a CA and a serving certificate, the HTTPS server and the HTTP
 * client complete a verified TLS round trip over loopback through one libuv
 * loop, cJSON and libyaml parse, and the loop closes with no handle left.
 * Inside the container image it is what proves the image holds every shared
 * library and file the binary needs (make image-check).
 */
#include "selfcheck.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "http/http.h"
#include "httpd/httpd.h"
#include "kube/config.h"

typedef struct sc_state {
    ophttp_client *http;
    ophttpd *srv;
    long status;
    int error;
    char body[64];
    int closed;
} sc_state;

static int sc_report(const char *what, int ok, const char *detail)
{
    printf("  %-44s %s%s%s\n", what, ok ? "ok" : "FAILED", detail && *detail ? "  " : "",
           detail ? detail : "");
    return ok ? 0 : 1;
}

static void sc_on_request(ophttpd_req *req, void *ud)
{
    (void)ud;
    ophttpd_respond(req, 200, "text/plain", "self-check\n", 11, NULL);
}

static void sc_closed(void *ud)
{
    ((sc_state *)ud)->closed++;
}

static void sc_on_done(ophttp_req *req, const ophttp_response *res, void *ud)
{
    (void)req;
    sc_state *s = ud;
    s->status = res->status;
    s->error = res->error;
    snprintf(s->body, sizeof s->body, "%s", res->body);
    ophttp_client_close(s->http, sc_closed, s);
    ophttpd_close(s->srv, sc_closed, s);
}

static int sc_tls_roundtrip(char *detail, size_t cap)
{
    ophttpd_cert cert = {0};
    const char *sans[] = {"127.0.0.1", "localhost", NULL};
    if (ophttpd_cert_generate(&cert, "optipod-self-check", sans, 1) != 0) {
        snprintf(detail, cap, "certificate generation failed");
        return -1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    sc_state s = {0};
    int rc = -1;
    ophttpd_opts so = {.bind = "127.0.0.1",
                       .port = 0,
                       .cert_pem = cert.cert_pem,
                       .key_pem = cert.key_pem,
                       .on_request = sc_on_request};
    if (ophttpd_new(&s.srv, &loop, &so) != 0) {
        snprintf(detail, cap, "cannot listen on 127.0.0.1");
        goto out;
    }
    if (ophttp_client_new(&s.http, &loop, NULL) != 0) {
        snprintf(detail, cap, "cannot create the HTTP client");
        ophttpd_close(s.srv, sc_closed, &s);
        goto out;
    }
    char url[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", ophttpd_port(s.srv));
    ophttp_tls tls = {.ca_pem = cert.ca_pem, .ca_pem_len = strlen(cert.ca_pem)};
    ophttp_req_opts ro = {.method = "GET",
                          .url = url,
                          .timeout_ms = 5000,
                          .tls = &tls,
                          .on_done = sc_on_done,
                          .ud = &s};
    if (ophttp_request(s.http, &ro, NULL) != 0) {
        snprintf(detail, cap, "cannot start the request");
        ophttp_client_close(s.http, sc_closed, &s);
        ophttpd_close(s.srv, sc_closed, &s);
        goto out;
    }
    rc = 0;
out:
    uv_run(&loop, UV_RUN_DEFAULT);
    int close_rc = uv_loop_close(&loop);
    ophttpd_cert_release(&cert);
    if (rc == 0) {
        if (s.status != 200 || strcmp(s.body, "self-check\n") != 0) {
            snprintf(detail, cap, "status %ld, transport error %d", s.status, s.error);
            rc = -1;
        } else if (close_rc != 0) {
            snprintf(detail, cap, "uv_loop_close: %s (a handle leaked)", uv_strerror(close_rc));
            rc = -1;
        } else {
            snprintf(detail, cap, "verified TLS, HTTP 200, loop closed clean");
        }
    }
    return rc;
}

/* The CA bundle libcurl uses when a request names none (an https Prometheus without
 * --prometheus-ca-file): readable, and at least one certificate OpenSSL parses. */
static int sc_ca_bundle(char *detail, size_t cap)
{
    const char *path = NULL;
    CURL *e = curl_easy_init();
    if (!e || curl_easy_getinfo(e, CURLINFO_CAINFO, &path) != CURLE_OK || !path) {
        snprintf(detail, cap, "libcurl names no default CA bundle");
        if (e)
            curl_easy_cleanup(e);
        return -1;
    }
    int n = 0;
    BIO *bio = BIO_new_file(path, "r");
    if (!bio) {
        snprintf(detail, cap, "%s: cannot be read", path);
        curl_easy_cleanup(e);
        return -1;
    }
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_free(x);
        n++;
    }
    BIO_free(bio);
    snprintf(detail, cap, "%s: %d certificate%s", path, n, n == 1 ? "" : "s");
    curl_easy_cleanup(e);
    return n > 0 ? 0 : -1;
}

/* cJSON reads a small AdmissionReview-shaped document. */
static int sc_json(char *detail, size_t cap)
{
    static const char doc[] = "{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":"
                              "{\"uid\":\"a1\",\"object\":{\"spec\":{\"containers\":[]}}}}";
    cJSON *j = cJSON_Parse(doc);
    const cJSON *uid =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "request"), "uid");
    int ok = cJSON_IsString(uid) && strcmp(uid->valuestring, "a1") == 0;
    cJSON_Delete(j);
    snprintf(detail, cap, "cJSON %s", cJSON_Version());
    return ok ? 0 : -1;
}

static const char sc_kubeconfig[] = "apiVersion: v1\n"
                                    "kind: Config\n"
                                    "current-context: demo\n"
                                    "clusters:\n"
                                    "- name: demo\n"
                                    "  cluster:\n"
                                    "    server: https://127.0.0.1:6443/\n"
                                    "contexts:\n"
                                    "- name: demo\n"
                                    "  context: {cluster: demo, user: demo, namespace: apps}\n"
                                    "users:\n"
                                    "- name: demo\n"
                                    "  user: {token: abc}\n";

int selfcheck_run(void)
{
    int failed = 0;
    char detail[256];
    printf("optipod %s self-check\n", OPTIPOD_VERSION);

    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    snprintf(detail, sizeof detail, "libcurl %s, %s", cv->version,
             cv->ssl_version ? cv->ssl_version : "no TLS");
    failed += sc_report("libcurl has TLS", (cv->features & CURL_VERSION_SSL) != 0, detail);
    failed += sc_report("libcurl has HTTP/2", (cv->features & CURL_VERSION_HTTP2) != 0, "");
    failed += sc_report("default CA bundle", sc_ca_bundle(detail, sizeof detail) == 0, detail);
    /* The libssl loaded is the major version built against (a mismatched image fails). */
    snprintf(detail, sizeof detail, "%s (built against %d.x)", OpenSSL_version(OPENSSL_VERSION),
             OPENSSL_VERSION_MAJOR);
    failed += sc_report("OpenSSL", OPENSSL_version_major() == OPENSSL_VERSION_MAJOR, detail);
    snprintf(detail, sizeof detail, "libuv %s", uv_version_string());
    failed += sc_report("event loop", 1, detail);
    failed += sc_report("JSON parsing", sc_json(detail, sizeof detail) == 0, detail);

    failed += sc_report("TLS round trip on loopback", sc_tls_roundtrip(detail, sizeof detail) == 0,
                        detail);

    kcfg c;
    kcfg_init(&c);
    operr err = {{0}};
    int rc = kcfg_load_mem(&c, sc_kubeconfig, sizeof sc_kubeconfig - 1, "(embedded)", NULL, &err);
    int ok = rc == 0 && c.server && strcmp(c.server, "https://127.0.0.1:6443") == 0 && c.ns &&
             strcmp(c.ns, "apps") == 0;
    snprintf(detail, sizeof detail, "%s", rc == 0 ? "server, namespace and token read" : err.msg);
    failed += sc_report("kubeconfig parsing (YAML)", ok, detail);
    kcfg_release(&c);

    kcfg_init(&c);
    rc = kcfg_load_mem(&c, "clusters: 3\n", 12, "(embedded bad)", NULL, &err);
    failed += sc_report("bad kubeconfig is rejected with a reason", rc != 0, rc ? err.msg : "");
    kcfg_release(&c);

    printf("%s\n", failed ? "self-check FAILED" : "self-check passed");
    return failed ? 1 : 0;
}
