/*
 * fakessa defaulting and validation: the parts of the API server's decode
 * (defaults, Go's always-present structs) and validation that the fixtures
 * show. See fakessa.h.
 */
#include "fakessa.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

static cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *get_str(const cJSON *o, const char *k)
{
    const cJSON *v = get(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int def_str(cJSON *o, const char *k, const char *v)
{
    if (!cJSON_IsObject(o) || get(o, k))
        return 0;
    return cJSON_AddStringToObject(o, k, v) ? 0 : -ENOMEM;
}

static int def_num(cJSON *o, const char *k, double v)
{
    if (!cJSON_IsObject(o) || get(o, k))
        return 0;
    return cJSON_AddNumberToObject(o, k, v) ? 0 : -ENOMEM;
}

static int def_null(cJSON *o, const char *k)
{
    if (!cJSON_IsObject(o) || get(o, k))
        return 0;
    return cJSON_AddNullToObject(o, k) ? 0 : -ENOMEM;
}

/* o[k] as an object, created ({}) when absent; NULL when o[k] is not one. */
static cJSON *def_obj(cJSON *o, const char *k, int *rc)
{
    if (!cJSON_IsObject(o))
        return NULL;
    cJSON *v = get(o, k);
    if (!v && !(v = cJSON_AddObjectToObject(o, k)))
        *rc = -ENOMEM;
    return cJSON_IsObject(v) ? v : NULL;
}

static int strequal(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/* The image's tag as the server's parser sees it: "latest" when untagged,
 * "" when pinned by digest. */
static const char *image_tag(const char *image)
{
    if (!image || !*image || strchr(image, '@'))
        return "";
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(slash ? slash : image, ':');
    return colon ? colon + 1 : "latest";
}

static int default_container(cJSON *c)
{
    int rc = 0;
    if (!cJSON_IsObject(c))
        return 0;
    def_obj(c, "resources", &rc); /* a non-pointer struct in Go: always serialised */
    if (rc == 0)
        rc = def_str(c, "terminationMessagePath", "/dev/termination-log");
    if (rc == 0)
        rc = def_str(c, "terminationMessagePolicy", "File");
    if (rc == 0)
        rc = def_str(c, "imagePullPolicy",
                     strcmp(image_tag(get_str(c, "image")), "latest") == 0 ? "Always"
                                                                           : "IfNotPresent");
    cJSON *ports = get(c, "ports");
    for (cJSON *p = cJSON_IsArray(ports) ? ports->child : NULL; p && rc == 0; p = p->next)
        rc = def_str(p, "protocol", "TCP");
    return rc;
}

static int default_podspec(cJSON *ps)
{
    int rc = 0;
    if (!cJSON_IsObject(ps))
        return 0;
    static const char *const lists[] = {"initContainers", "containers"};
    for (size_t i = 0; i < 2; i++) {
        cJSON *l = get(ps, lists[i]);
        for (cJSON *c = cJSON_IsArray(l) ? l->child : NULL; c && rc == 0; c = c->next)
            rc = default_container(c);
    }
    if (rc == 0)
        rc = def_str(ps, "restartPolicy", "Always");
    if (rc == 0)
        rc = def_num(ps, "terminationGracePeriodSeconds", 30);
    if (rc == 0)
        rc = def_str(ps, "dnsPolicy", "ClusterFirst");
    if (rc == 0)
        def_obj(ps, "securityContext", &rc);
    if (rc == 0)
        rc = def_str(ps, "schedulerName", "default-scheduler");
    return rc;
}

static int default_template(cJSON *tmpl)
{
    int rc = 0;
    cJSON *md = def_obj(tmpl, "metadata", &rc);
    if (rc == 0)
        rc = def_null(md, "creationTimestamp");
    if (rc == 0)
        rc = default_podspec(get(tmpl, "spec"));
    return rc;
}

/* Where the pod spec lives for this kind, as a dotted path; NULL if none. */
static const char *podspec_path(const cJSON *obj)
{
    const char *kind = get_str(obj, "kind"), *av = get_str(obj, "apiVersion");
    if (!kind || !av)
        return NULL;
    if (strcmp(av, "v1") == 0 && strcmp(kind, "Pod") == 0)
        return "spec";
    if (strcmp(av, "apps/v1") == 0 &&
        (strcmp(kind, "Deployment") == 0 || strcmp(kind, "ReplicaSet") == 0 ||
         strcmp(kind, "StatefulSet") == 0 || strcmp(kind, "DaemonSet") == 0))
        return "spec.template.spec";
    if (strcmp(av, "batch/v1") == 0 && strcmp(kind, "Job") == 0)
        return "spec.template.spec";
    if (strcmp(av, "batch/v1") == 0 && strcmp(kind, "CronJob") == 0)
        return "spec.jobTemplate.spec.template.spec";
    return NULL;
}

static cJSON *walk(const cJSON *obj, const char *dotted)
{
    char part[64];
    const cJSON *v = obj;
    while (v && *dotted) {
        size_t n = strcspn(dotted, ".");
        if (n >= sizeof(part))
            return NULL;
        memcpy(part, dotted, n);
        part[n] = '\0';
        v = get(v, part);
        dotted += n + (dotted[n] == '.');
    }
    return (cJSON *)v;
}

int fakessa_default(cJSON *obj)
{
    int rc = 0;
    const char *path = podspec_path(obj);
    if (!path)
        return 0;
    cJSON *spec = get(obj, "spec");
    if (strequal(get_str(obj, "kind"), "Deployment")) {
        rc = def_num(spec, "replicas", 1);
        cJSON *strategy = rc == 0 ? def_obj(spec, "strategy", &rc) : NULL;
        if (rc == 0)
            rc = def_str(strategy, "type", "RollingUpdate");
        if (rc == 0 && strequal(get_str(strategy, "type"), "RollingUpdate")) {
            cJSON *ru = def_obj(strategy, "rollingUpdate", &rc);
            if (rc == 0)
                rc = def_str(ru, "maxUnavailable", "25%");
            if (rc == 0)
                rc = def_str(ru, "maxSurge", "25%");
        }
        if (rc == 0)
            rc = def_num(spec, "revisionHistoryLimit", 10);
        if (rc == 0)
            rc = def_num(spec, "progressDeadlineSeconds", 600);
    } else if (strequal(get_str(obj, "kind"), "ReplicaSet") ||
               strequal(get_str(obj, "kind"), "StatefulSet")) {
        rc = def_num(spec, "replicas", 1);
    }
    if (rc < 0)
        return rc;
    if (strcmp(path, "spec") == 0)
        return default_podspec(spec);
    /* the template is the parent of the pod spec */
    char tmpl[64];
    snprintf(tmpl, sizeof(tmpl), "%.*s", (int)(strlen(path) - strlen(".spec")), path);
    return default_template(walk(obj, tmpl));
}

typedef struct verr {
    char field[256];
} verr;

static int check_containers(const cJSON *ps, const char *prefix, const char *list, int required,
                            verr *errs, int *n, int max)
{
    const cJSON *l = get(ps, list);
    if (required && (!cJSON_IsArray(l) || !l->child)) {
        if (*n < max)
            snprintf(errs[(*n)++].field, sizeof(errs->field), "%s.%s", prefix, list);
        return 0;
    }
    int i = 0;
    for (const cJSON *c = cJSON_IsArray(l) ? l->child : NULL; c; c = c->next, i++) {
        static const char *const need[] = {"name", "image"};
        for (size_t k = 0; k < 2; k++) {
            const char *v = get_str(c, need[k]);
            if ((!v || !*v) && *n < max)
                snprintf(errs[(*n)++].field, sizeof(errs->field), "%s.%s[%d].%s", prefix, list, i,
                         need[k]);
        }
    }
    return 0;
}

int fakessa_validate(const cJSON *obj, cJSON **status)
{
    verr errs[16];
    int n = 0, rc = -ENOMEM;
    opbuf msg;
    cJSON *st = NULL;
    *status = NULL;
    const char *path = podspec_path(obj);
    if (!path)
        return 0;
    const cJSON *ps = walk(obj, path);
    check_containers(ps, path, "initContainers", 0, errs, &n, 16);
    check_containers(ps, path, "containers", 1, errs, &n, 16);
    if (n == 0)
        return 0;

    const char *av = get_str(obj, "apiVersion"), *kind = get_str(obj, "kind");
    const char *slash = strchr(av, '/');
    char group[128] = "";
    if (slash)
        snprintf(group, sizeof(group), "%.*s", (int)(slash - av), av);
    const cJSON *md = get(obj, "metadata");
    const char *name = get_str(md, "name");
    opbuf_init(&msg, 64 * 1024);
    if (opbuf_printf(&msg, "%s%s%s \"%s\" is invalid: %s", kind, *group ? "." : "", group,
                     name ? name : "", n > 1 ? "[" : "") < 0)
        goto out;
    for (int i = 0; i < n; i++)
        if (opbuf_printf(&msg, "%s%s: Required value", i ? ", " : "", errs[i].field) < 0)
            goto out;
    if (n > 1 && opbuf_puts(&msg, "]") < 0)
        goto out;

    st = cJSON_CreateObject();
    cJSON *details = NULL, *causes = NULL;
    if (!st || !cJSON_AddStringToObject(st, "kind", "Status") ||
        !cJSON_AddStringToObject(st, "apiVersion", "v1") ||
        !cJSON_AddObjectToObject(st, "metadata") ||
        !cJSON_AddStringToObject(st, "status", "Failure") ||
        !cJSON_AddStringToObject(st, "message", opbuf_str(&msg)) ||
        !cJSON_AddStringToObject(st, "reason", "Invalid") ||
        !(details = cJSON_AddObjectToObject(st, "details")) ||
        !cJSON_AddStringToObject(details, "name", name ? name : "") ||
        (*group && !cJSON_AddStringToObject(details, "group", group)) ||
        !cJSON_AddStringToObject(details, "kind", kind) ||
        !(causes = cJSON_AddArrayToObject(details, "causes")))
        goto out;
    for (int i = 0; i < n; i++) {
        cJSON *c = cJSON_CreateObject();
        if (!c)
            goto out;
        cJSON_AddItemToArray(causes, c);
        if (!cJSON_AddStringToObject(c, "reason", "FieldValueRequired") ||
            !cJSON_AddStringToObject(c, "message", "Required value") ||
            !cJSON_AddStringToObject(c, "field", errs[i].field))
            goto out;
    }
    if (!cJSON_AddNumberToObject(st, "code", 422))
        goto out;
    *status = st;
    st = NULL;
    rc = 0;
out:
    cJSON_Delete(st);
    opbuf_release(&msg);
    return rc;
}

cJSON *fakessa_zero_object(const cJSON *obj)
{
    const char *kind = get_str(obj, "kind"), *av = get_str(obj, "apiVersion");
    const char *zero = "{\"metadata\":{\"creationTimestamp\":null}}";
    if (strequal(av, "apps/v1") && strequal(kind, "Deployment"))
        zero = "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"selector\":null,"
               "\"template\":{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"containers\":"
               "null}},\"strategy\":{}},\"status\":{}}";
    else if (podspec_path(obj) && strcmp(podspec_path(obj), "spec") == 0)
        zero = "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"containers\":null},"
               "\"status\":{}}";
    else if (podspec_path(obj))
        zero = "{\"metadata\":{\"creationTimestamp\":null},\"spec\":{\"template\":{\"metadata\":"
               "{\"creationTimestamp\":null},\"spec\":{\"containers\":null}}},\"status\":{}}";
    return cJSON_Parse(zero);
}
