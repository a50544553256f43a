/*
 * Self-signed CA and serving certificate generation (EC P-256, SHA-256).
 *
 * The webhook needs its own serving certificate when no cert-manager is around,
 * and the tests need a CA they can trust: both come from here as PEM strings.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "httpd/httpd.h"

static char *bio_string(BIO *b)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s) {
        memcpy(s, p, (size_t)n);
        s[n] = '\0';
    }
    return s;
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_X509(b, x) == 1)
        s = bio_string(b);
    BIO_free(b);
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *s = NULL;
    if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) == 1)
        s = bio_string(b);
    BIO_free(b);
    return s;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int days)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!x)
        return NULL;
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto fail;
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        goto fail;
    X509_set_version(x, 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
    if (X509_set_pubkey(x, key) != 1)
        goto fail;
    name = X509_NAME_new();
    if (!name ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(x, name) != 1)
        goto fail;
    if (X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1)
        goto fail;
    if (add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash") < 0)
        goto fail;
    if (add_ext(x, issuer ? issuer : x, NID_authority_key_identifier, "keyid:always") < 0)
        goto fail;
    X509_NAME_free(name);
    BN_free(bn);
    (void)issuer_key;
    return x;
fail:
    X509_NAME_free(name);
    BN_free(bn);
    X509_free(x);
    return NULL;
}

/* "DNS:a,IP:127.0.0.1,..." from the list; IPs are recognised by inet_pton. */
static char *san_string(const char *const *sans)
{
    size_t n = 1;
    for (size_t i = 0; sans && sans[i]; i++)
        n += strlen(sans[i]) + 5;
    char *s = malloc(n);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; sans && sans[i]; i++) {
        unsigned char tmp[16];
        int ip = inet_pton(AF_INET, sans[i], tmp) == 1 || inet_pton(AF_INET6, sans[i], tmp) == 1;
        if (s[0])
            strcat(s, ",");
        strcat(s, ip ? "IP:" : "DNS:");
        strcat(s, sans[i]);
    }
    return s;
}

int ophttpd_cert_generate(ophttpd_cert *out, const char *cn_prefix, const char *const *sans,
                          int days)
{
    int rc = -EIO;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    char *san = NULL, cn[256];
    memset(out, 0, sizeof(*out));
    if (!cn_prefix)
        cn_prefix = "optipod";
    if (days <= 0)
        days = 365;

    ca_key = EVP_EC_gen("P-256");
    key = EVP_EC_gen("P-256");
    if (!ca_key || !key)
        goto out;
    snprintf(cn, sizeof(cn), "%s-ca", cn_prefix);
    ca = make_cert(ca_key, cn, NULL, NULL, days);
    if (!ca || add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE") < 0 ||
        add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") < 0 ||
        X509_sign(ca, ca_key, EVP_sha256()) <= 0)
        goto out;

    leaf = make_cert(key, sans && sans[0] ? sans[0] : cn_prefix, ca, ca_key, days);
    san = san_string(sans);
    if (!leaf || !san || add_ext(leaf, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
        add_ext(leaf, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") < 0 ||
        add_ext(leaf, ca, NID_ext_key_usage, "serverAuth") < 0 ||
        (san[0] && add_ext(leaf, ca, NID_subject_alt_name, san) < 0) ||
        X509_sign(leaf, ca_key, EVP_sha256()) <= 0)
        goto out;

    out->ca_pem = cert_pem(ca);
    out->ca_key_pem = key_pem(ca_key);
    out->cert_pem = cert_pem(leaf);
    out->key_pem = key_pem(key);
    if (!out->ca_pem || !out->ca_key_pem || !out->cert_pem || !out->key_pem) {
        ophttpd_cert_release(out);
        rc = -ENOMEM;
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    free(san);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

void ophttpd_cert_release(ophttpd_cert *c)
{
    free(c->ca_pem);
    free(c->ca_key_pem);
    free(c->cert_pem);
    free(c->key_pem);
    memset(c, 0, sizeof(*c));
}
