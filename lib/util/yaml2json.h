/*
 * yaml2json: YAML (as Kubernetes writes and reads it) to cJSON.
 *
 * The stream is loaded by util/yamldoc (opyaml, the one loader: limits,
 * anchors and aliases expanded by copy, duplicate keys refused) and each
 * scalar means what opyaml_resolve() says (go-yaml v2's YAML 1.1 resolution,
 * as sigs.k8s.io/yaml applies it: `on`, `y` and `yes` are true). `<<` merge
 * keys are applied (explicit keys win, then earlier merges). Mapping keys
 * become strings as sigs.k8s.io/yaml makes them: a key that resolves to a
 * boolean is "true"/"false", to a number its decimal text ("0x10" → "16",
 * "1.0" → "1"); a null key is refused, as are two keys that become the same.
 *
 * Ownership: on success *out is a new cJSON tree the caller frees with
 * cJSON_Delete(); on failure *out is NULL and `err` (may be NULL) names the
 * problem with its line and column ("yaml: line 3 column 7: ..."). Nothing
 * else is allocated.
 */
#ifndef OPTIPOD_UTIL_YAML2JSON_H
#define OPTIPOD_UTIL_YAML2JSON_H

#include <cJSON.h>
#include <stddef.h>

#include "util/err.h"

/* Hard limits: input bytes (a manifest file's cap), nesting depth, nodes
 * created (alias expansion included) and documents. */
#define YAML2JSON_MAX_BYTES ((size_t)64 << 20)
#define YAML2JSON_MAX_DEPTH 64
#define YAML2JSON_MAX_NODES 1000000
#define YAML2JSON_MAX_DOCS  65536

/* The first document of buf[0..len) (an empty stream yields JSON null).
 * Returns 0, -EINVAL on a syntax or limit error, -ENOMEM. */
int yaml2json_parse(const char *buf, size_t len, cJSON **out, operr *err);
/* Every document of the stream, as a cJSON array (possibly empty). */
int yaml2json_parse_all(const char *buf, size_t len, cJSON **out, operr *err);

#endif
