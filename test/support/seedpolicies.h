/*
 * The OptimizationPolicy examples of OptiPod's "GitOps Integration Guide" (the
 * product documentation optipod's API follows), re-indented as YAML and
 * otherwise verbatim. test_policy parses them; test_crd validates them
 * against the CRD schema. Static data: nothing to free.
 */
#ifndef OPTIPOD_TEST_SEEDPOLICIES_H
#define OPTIPOD_TEST_SEEDPOLICIES_H

#include <stddef.h>

typedef struct seed_policy {
    const char *what; /* where in the guide */
    const char *yaml;
} seed_policy;

extern const seed_policy seed_policies[];
extern const size_t seed_policies_n;

#endif
