/*
 * mfields: a reader for metadata.managedFields (FieldsV1), the server's record
 * of which field manager owns which field of an object.
 *
 * Each entry (manager, operation Apply|Update, apiVersion, subresource) becomes
 * a flat list of the paths it owns, spelled the way the API server spells
 * fields in a 409 Status, so both can be compared as plain strings:
 *
 *   f:spec/f:template/f:spec/f:containers/k:{"name":"nginx"}/f:resources/f:requests/f:cpu
 *     -> .spec.template.spec.containers[name="nginx"].resources.requests.cpu
 *   k:{"name":"nginx"} with "."  -> .spec.template.spec.containers[name="nginx"]
 *   v:"x" -> [="x"],  i:3 -> [3]
 *
 * A path is owned when its node is an empty object ({}) or carries ".".
 * Every path is also classified (pod-template resources, the container list
 * item and its key, optipod's annotations, anything else) and remembers the
 * container it lies in, so the questions the controller asks are cheap:
 * who owns a container's requests.cpu, does optipod own anything it must not,
 * does optipod pin a container's list item (kubernetes#128102: an Apply owner
 * of k:{"name":X} "." keeps X from being removed by the GitOps tool), which
 * containers optipod has entries for that the live spec no longer has.
 *
 * Ownership: an mfields owns everything it holds. mfields_init() allocates
 * nothing; mfields_release() frees the contents and leaves it re-usable.
 * Pointers returned by queries point into the mfields and stay valid until
 * mfields_release(). Input is untrusted: depth, path length, entry and path
 * counts are capped (-E2BIG past a cap).
 */
#ifndef OPTIPOD_APPLY_FIELDS_H
#define OPTIPOD_APPLY_FIELDS_H

#include <cJSON.h>
#include <stddef.h>

#include "util/err.h"

#define MFIELDS_MAX_ENTRIES 128  /* managers on one object */
#define MFIELDS_MAX_PATHS   8192 /* owned paths over all entries */
#define MFIELDS_MAX_DEPTH   48   /* nesting of fieldsV1 */
#define MFIELDS_PATH_MAX    1024 /* bytes of one rendered path */
#define MFIELDS_NAME_MAX    254  /* container name (a DNS label is 63) */

/* The field manager optipod writes as. */
#define MFIELDS_OPTIPOD "optipod"

enum mfields_op { MFIELDS_OP_OTHER, MFIELDS_OP_APPLY, MFIELDS_OP_UPDATE };

/* What a path is, judged from its position. */
enum mfields_class {
    MFIELDS_OTHER,     /* anything not below */
    MFIELDS_RESOURCES, /* spec.template.spec.(init)containers[name=X].resources[.requests|.limits[.R]]
                        */
    MFIELDS_ITEM,      /* the container list item itself (".") or its key field f:name */
    MFIELDS_ANNOTATION /* metadata.annotations (the map) or an "optipod.io/" key in it */
};

/* Which list a container path lies in. */
enum mfields_list { MFIELDS_NONE, MFIELDS_CONTAINERS, MFIELDS_INIT_CONTAINERS };

typedef struct mfields_path {
    char *path;             /* ".spec.template.spec.containers[name=\"x\"].resources" */
    char *container;        /* container name when inside a container item, else NULL */
    enum mfields_class cls; /* classification */
    enum mfields_list list; /* MFIELDS_NONE when container is NULL */
    const char *leaf;       /* resources only: "requests.cpu" etc. inside path, else NULL */
} mfields_path;

typedef struct mfields_entry {
    char *manager;
    enum mfields_op op;
    char *operation;   /* as sent ("Apply", "Update") */
    char *api_version; /* "apps/v1"; "" when absent */
    char *subresource; /* "status", ...; "" for the main resource */
    char *time;        /* "" when absent */
    mfields_path *paths;
    size_t npaths;
} mfields_entry;

typedef struct mfields {
    mfields_entry *entries;
    size_t nentries;
    size_t npaths; /* over all entries */
} mfields;

void mfields_init(mfields *m);
void mfields_release(mfields *m);

/* Read obj.metadata.managedFields of a live object. An object without
 * managedFields gives an empty model. Returns 0, -EINVAL (malformed entry:
 * not an object, unknown fieldsType, bad key), -E2BIG (a cap) or -ENOMEM;
 * on error m is left empty and err says what was wrong. */
int mfields_parse(mfields *m, const cJSON *obj, operr *err);
/* The same from JSON text of an object (at most `len` bytes, not NUL-terminated). */
int mfields_parse_json(mfields *m, const char *json, size_t len, operr *err);

/* Render the path of a container's resource field:
 * kind "requests"|"limits", resource "cpu"|"memory"|...; list selects
 * containers or initContainers. Returns the length, -E2BIG or -EINVAL. */
int mfields_path_resource(char *buf, size_t cap, enum mfields_list list, const char *container,
                          const char *kind, const char *resource);
/* The path of the container list item itself (what "." owns). */
int mfields_path_item(char *buf, size_t cap, enum mfields_list list, const char *container);

/* Does entry e own exactly `path`? */
int mfields_entry_owns(const mfields_entry *e, const char *path);
/* Entries owning `path`, in order; fills up to `max` and returns how many own it.
 * `except` (may be NULL) names a manager to leave out. */
size_t mfields_owners(const mfields *m, const char *path, const char *except,
                      const mfields_entry **out, size_t max);
/* Does any entry of `manager` own `path`? */
int mfields_manager_owns(const mfields *m, const char *manager, const char *path);

/* Flags for mfields_foreign(): what else, beyond pod-template resources and
 * the container items and keys that come with them, a manager may own. */
#define MFIELDS_ALLOW_ANNOTATIONS 1u /* the webhook strategy's optipod.io/ annotations */

/* Count the paths `manager` owns outside what optipod may own; *first (may be
 * NULL) gets the first such path. 0 means the manager keeps to its lane. */
size_t mfields_foreign(const mfields *m, const char *manager, unsigned allow, const char **first);

/* 1 when an Apply entry of `manager` owns the list item of `container` (the
 * "." that pins it, kubernetes#128102), else 0. */
int mfields_pins_item(const mfields *m, const char *manager, enum mfields_list list,
                      const char *container);
/* 1 when `manager` owns any path inside the container (item, key or field). */
int mfields_holds_container(const mfields *m, const char *manager, enum mfields_list list,
                            const char *container);
/* 1 when any manager other than `except` owns any path inside the container
 * (the item, its key or a field), i.e. omitting it from `except`'s apply
 * would not delete the container. */
int mfields_others_hold_container(const mfields *m, const char *except, enum mfields_list list,
                                  const char *container);

/* Containers `manager` has entries for, each once, in first-seen order
 * (pointers into m). Returns how many there are (fills up to max). */
size_t mfields_containers(const mfields *m, const char *manager, enum mfields_list list,
                          const char **out, size_t max);
/* Of those, the ones not in `live` (nlive names): entries left for containers
 * the live spec no longer has. Returns how many (fills up to max). */
size_t mfields_stale_containers(const mfields *m, const char *manager, enum mfields_list list,
                                const char *const *live, size_t nlive, const char **out,
                                size_t max);

#endif
