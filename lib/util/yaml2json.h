/*
 * yaml2json: YAML (as Kubernetes writes and reads it) to cJSON, with libyaml.
 *
 * Plain scalars are resolved the way sigs.k8s.io/yaml (go-yaml v2, YAML 1.1)
 * does for the values that occur in manifests: null/~/empty → null,
 * true/false/yes/no/on/off (three casings) → bool, decimal and 0x integers and
 * decimal floats → number; everything else, and every quoted or block
 * scalar, is a string. Explicit !!str/!!int/!!float/!!bool/!!null tags are
 * honoured. Anchors and aliases are expanded (bounded), `<<` merge keys are
 * applied, duplicate mapping keys are an error. Mapping keys are always the
 * key's text.
 *
 * Ownership: on success *out is a new cJSON tree the caller frees with
 * cJSON_Delete(); on failure *out is NULL and `err` (may be NULL) names the
 * problem with its line and column. Nothing else is allocated.
 */
#ifndef OPTIPOD_UTIL_YAML2JSON_H
#define OPTIPOD_UTIL_YAML2JSON_H

#include <cJSON.h>
#include <stddef.h>

#include "util/err.h"

/* Hard limits: nesting depth, and nodes created (alias expansion included). */
#define YAML2JSON_MAX_DEPTH 64
#define YAML2JSON_MAX_NODES 1000000

/* The first document of buf[0..len) (an empty stream yields JSON null).
 * Returns 0, -EINVAL on a syntax or limit error, -ENOMEM. */
int yaml2json_parse(const char *buf, size_t len, cJSON **out, operr *err);
/* Every document of the stream, as a cJSON array (possibly empty). */
int yaml2json_parse_all(const char *buf, size_t len, cJSON **out, operr *err);

#endif
