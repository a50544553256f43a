/*
 * opb64: standard base64 (RFC 4648 section 4, padded), the one codec of the
 * project, over OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock.
 *
 * What Kubernetes writes for []byte (Secret data, kubeconfig *-data fields,
 * caBundle, an AdmissionReview patch) is Go's base64.StdEncoding: the standard
 * alphabet with '=' padding. opb64_decode() accepts exactly that, plus ASCII
 * white space anywhere (a kubeconfig may fold a long value over lines), and
 * refuses the rest with a sentence naming what and where: a byte outside the
 * alphabet, a length that is not whole groups of four, '=' before the end.
 * (EVP_DecodeBlock alone would read '=' anywhere as zero bits and keep the
 * padding's zero bytes; those checks are done here first.)
 *
 * Ownership: opb64_encode() appends to the caller's opbuf; opb64_decode()
 * hands back a malloc'd block the caller frees.
 */
#ifndef OPTIPOD_UTIL_B64_H
#define OPTIPOD_UTIL_B64_H

#include <stddef.h>

#include "util/buf.h"

/* Append the base64 of in[0..n) to out. Returns 0, -E2BIG (out's cap) or -ENOMEM. */
int opb64_encode(opbuf *out, const void *in, size_t n);

/* Decode s[0..len) into *out (malloc'd, NUL-terminated; the terminator is not
 * counted in *outlen; empty input gives an empty block). Returns 0, -ENOMEM or
 * -EINVAL with why (whycap bytes, may be 0) saying what was wrong:
 *   "invalid base64: character '*' at offset 4" */
int opb64_decode(const char *s, size_t len, char **out, size_t *outlen, char *why, size_t whycap);

#endif
