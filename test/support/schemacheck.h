/*
 * tsch: test support for the CRD tests.
 *
 *   tsch_validate()      a small structural OpenAPI v3 validator for the subset
 *                        CRD schemas use: type, properties, required,
 *                        additionalProperties, items, enum, pattern (POSIX ERE),
 *                        minimum/maximum, minLength/maxLength, minItems/maxItems,
 *                        x-kubernetes-int-or-string, nullable. Fields a schema
 *                        does not declare are reported (the API server would
 *                        prune them silently; a test wants to know).
 *   tsch_regex_match()   does a string match an OpenAPI pattern?
 *
 * YAML inputs are read with util/yaml2json.h. tsch_validate appends one line per problem to
 * `errs`
 * ("spec.mode: \"Foo\" is not one of [Auto Recommend Disabled]") and returns
 * how many it found.
 */
#ifndef OPTIPOD_TEST_SCHEMACHECK_H
#define OPTIPOD_TEST_SCHEMACHECK_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

int tsch_validate(const cJSON *schema, const cJSON *value, const char *path, opbuf *errs);
/* 1 match, 0 no match, -1 the pattern does not compile. */
int tsch_regex_match(const char *pattern, const char *s);

#endif
