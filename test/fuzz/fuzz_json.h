/*
 * fuzz_json: the common start of the fuzz targets whose input is one JSON
 * document. Header-only.
 */
#ifndef OPTIPOD_TEST_FUZZ_JSON_H
#define OPTIPOD_TEST_FUZZ_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

/* The input as a document (the caller deletes it), or NULL when it is not
 * JSON or longer than 64 KiB (make fuzz's -max_len; a larger input only
 * repeats what a smaller one reaches, more slowly). */
static inline cJSON *fuzz_json(const uint8_t *data, size_t size)
{
    return size > 65536 ? NULL : cJSON_ParseWithLength((const char *)data, size);
}

#endif
