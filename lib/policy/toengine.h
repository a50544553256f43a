/*
 * pol_engine_policy: the engine's knobs from a parsed OptimizationPolicy.
 *
 * The policy (lib/policy) is what users write, with the CRD's defaults filled
 * in; the engine (lib/engine) is pure and knows nothing of CRDs. This is the
 * one place that maps one onto the other, so the defaults a user reads in the
 * CRD are the ones the engine applies (eng_policy_defaults() is the engine's
 * own standalone set, used by its unit tests only).
 */
#ifndef OPTIPOD_POLICY_TOENGINE_H
#define OPTIPOD_POLICY_TOENGINE_H

#include "engine/engine.h"
#include "policy/policy.h"

void pol_engine_policy(const pol_policy *p, eng_policy *out);

#endif
