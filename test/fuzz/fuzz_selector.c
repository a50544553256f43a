/*
 * libFuzzer target for label selectors: the string form (lsel_parse) and the
 * object form (lsel_from_json). A parsed selector printed with lsel_format
 * must parse back to a selector that prints the same and matches the same
 * label sets.
 */
#include "policy/selector.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const label_sets[] = {
    "{}",
    "{\"a\":\"b\"}",
    "{\"app\":\"web\",\"tier\":\"front\",\"env\":\"\"}",
};

static void check_round_trip(const lsel_selector *s)
{
    opbuf b1, b2;
    lsel_selector s2;
    opbuf_init(&b1, 1 << 20);
    opbuf_init(&b2, 1 << 20);
    lsel_init(&s2);
    if (lsel_format(s, &b1) != 0)
        abort();
    if (lsel_parse(&s2, opbuf_str(&b1), b1.len, NULL) != 0)
        abort();
    if (lsel_format(&s2, &b2) != 0 || strcmp(opbuf_str(&b1), opbuf_str(&b2)) != 0)
        abort();
    for (size_t i = 0; i < sizeof label_sets / sizeof *label_sets; i++) {
        cJSON *l = cJSON_Parse(label_sets[i]);
        if (lsel_matches(s, l) != lsel_matches(&s2, l))
            abort();
        cJSON_Delete(l);
    }
    lsel_release(&s2);
    opbuf_release(&b1);
    opbuf_release(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lsel_selector s;
    operr err;
    lsel_init(&s);
    if (lsel_parse(&s, (const char *)data, size, &err) == 0)
        check_round_trip(&s);
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (j && lsel_from_json(&s, j, "selector", &err) == 0) {
        check_round_trip(&s);
        cJSON *back = lsel_to_json(&s);
        lsel_selector s3;
        lsel_init(&s3);
        if (!back || lsel_from_json(&s3, back, "selector", &err) != 0 || s3.nreqs != s.nreqs)
            abort();
        lsel_release(&s3);
        cJSON_Delete(back);
    }
    cJSON_Delete(j);
    lsel_release(&s);
    return 0;
}
