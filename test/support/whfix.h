/*
 * whfix: the webhook's test fixture, shared by the tests of the real binary's webhook
 * (test_cli, test_whstress): a Deployment annotated for the webhook strategy in namespace
 * "shop", its ReplicaSet, and the AdmissionReview of a pod that ReplicaSet creates (the
 * webhook patches it with the Deployment's annotated requests).
 */
#ifndef OPTIPOD_TEST_WHFIX_H
#define OPTIPOD_TEST_WHFIX_H

#include <stddef.h>

/* The Deployment and ReplicaSet as a JSON array (fakeapi_server --seed). */
extern const char whfix_seed_json[];
/* The pod review with request.uid = uid, NUL-terminated in buf; returns its length. */
int whfix_review(char *buf, size_t cap, const char *uid);

#endif
