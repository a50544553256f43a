/* libFuzzer target for mfields (managedFields from the network) and for the
 * conflict set and note built on top of it. Either the parse fails and leaves
 * an empty model, or every path is bounded, starts with '.' or '[', is owned
 * by its own entry, and is classified consistently: a resource or item path
 * names its container and list, a resource leaf is the tail of its path, and
 * an item path is exactly what mfields_path_item renders. The Event note
 * never exceeds its limit. */
#include "apply/conflict.h"
#include "apply/fields.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_path(const mfields *m, const mfields_entry *e, const mfields_path *p)
{
    size_t len = strlen(p->path);
    if (len == 0 || len > MFIELDS_PATH_MAX || (p->path[0] != '.' && p->path[0] != '['))
        abort();
    if (!mfields_entry_owns(e, p->path) || mfields_owners(m, p->path, NULL, NULL, 0) == 0)
        abort();
    if (!mfields_manager_owns(m, e->manager, p->path))
        abort();
    if ((p->cls == MFIELDS_RESOURCES || p->cls == MFIELDS_ITEM) &&
        (!p->container || p->list == MFIELDS_NONE))
        abort();
    if (!p->container != (p->list == MFIELDS_NONE))
        abort();
    if (p->leaf) {
        size_t ll = strlen(p->leaf);
        if (p->cls != MFIELDS_RESOURCES || ll > len || strcmp(p->path + len - ll, p->leaf))
            abort();
    }
    if (p->cls == MFIELDS_ITEM && p->path[len - 1] == ']') {
        char buf[MFIELDS_PATH_MAX + 64];
        int n = mfields_path_item(buf, sizeof(buf), p->list, p->container);
        if (n > 0 && strcmp(buf, p->path))
            abort();
        if (!mfields_holds_container(m, e->manager, p->list, p->container))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mfields m;
    operr err;
    int rc = mfields_parse_json(&m, (const char *)data, size, &err);
    if (rc != 0) {
        if ((rc != -EINVAL && rc != -E2BIG && rc != -ENOMEM) || m.nentries || m.entries)
            abort();
        return 0;
    }
    size_t total = 0;
    conflict_set cs;
    conflict_set_init(&cs);
    for (size_t i = 0; i < m.nentries; i++) {
        const mfields_entry *e = &m.entries[i];
        total += e->npaths;
        for (size_t j = 0; j < e->npaths; j++) {
            check_path(&m, e, &e->paths[j]);
            if (e->paths[j].cls == MFIELDS_RESOURCES) {
                const char *t = e->paths[j].path;
                conflict_add_fields(&cs, &m, MFIELDS_OPTIPOD, &t, 1);
            }
        }
        const char *names[8];
        size_t nc = mfields_containers(&m, e->manager, MFIELDS_CONTAINERS, names, 8);
        for (size_t k = 0; k < nc && k < 8; k++) {
            if (!mfields_holds_container(&m, e->manager, MFIELDS_CONTAINERS, names[k]))
                abort();
            (void)mfields_pins_item(&m, e->manager, MFIELDS_CONTAINERS, names[k]);
        }
        if (mfields_stale_containers(&m, e->manager, MFIELDS_CONTAINERS, names, nc < 8 ? nc : 8,
                                     NULL, 0) > (nc > 8 ? nc - 8 : 0))
            abort();
        const char *first;
        size_t nf = mfields_foreign(&m, e->manager, 0, &first);
        if ((nf == 0) != (first == NULL))
            abort();
    }
    if (total != m.npaths || total > MFIELDS_MAX_PATHS)
        abort();
    char note[CONFLICT_NOTE_MAX + 1];
    int n = conflict_note(&cs, conflict_decide(&cs, 1), note, sizeof(note));
    if (n < 0 || n > CONFLICT_NOTE_MAX || (size_t)n != strlen(note))
        abort();
    mfields_release(&m);
    return 0;
}
