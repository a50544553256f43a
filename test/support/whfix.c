#include "support/whfix.h"

#include <stdio.h>

const char whfix_seed_json[] =
    "[{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
    "\"namespace\":\"shop\",\"uid\":\"d-uid\",\"annotations\":{"
    "\"optipod.io/cpu-request.app\":\"250m\",\"optipod.io/memory-request.app\":\"300Mi\","
    "\"optipod.io/strategy\":\"webhook\",\"optipod.io/webhook-enabled\":\"true\"}},"
    "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{"
    "\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
    "\"image\":\"registry.invalid/app:1\"}]}}}},"
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"web-5d8f\","
    "\"namespace\":\"shop\",\"uid\":\"rs-uid\",\"ownerReferences\":[{\"apiVersion\":\"apps/v1\","
    "\"kind\":\"Deployment\",\"name\":\"web\",\"uid\":\"d-uid\",\"controller\":true}]},"
    "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"web\"}},\"template\":{"
    "\"metadata\":{\"labels\":{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"app\","
    "\"image\":\"registry.invalid/app:1\"}]}}}}]";

static const char review_fmt[] =
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
    "\"uid\":\"%s\",\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"Pod\"},"
    "\"resource\":{\"group\":\"\",\"version\":\"v1\",\"resource\":\"pods\"},"
    "\"namespace\":\"shop\",\"operation\":\"CREATE\",\"object\":{\"apiVersion\":\"v1\","
    "\"kind\":\"Pod\",\"metadata\":{\"generateName\":\"web-5d8f-\",\"namespace\":\"shop\","
    "\"ownerReferences\":[{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":"
    "\"web-5d8f\",\"uid\":\"rs-uid\",\"controller\":true}]},\"spec\":{\"containers\":[{"
    "\"name\":\"app\",\"image\":\"registry.invalid/app:1\",\"resources\":{}}]}}}}";

int whfix_review(char *buf, size_t cap, const char *uid)
{
    return snprintf(buf, cap, review_fmt, uid);
}
