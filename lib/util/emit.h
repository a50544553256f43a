/*
 * opemit: the text outputs `optipod plan` and `kubectl optipod` share, so both
 * print the same shapes: a cJSON document as indented JSON or block YAML, a
 * column-aligned table, and CSV rows.
 *
 * YAML is block style, keys in tree order; a string is written plain only when
 * YAML 1.1 (util/yamldoc.h's reading, and kubectl's) gives back the same
 * string, else double-quoted (a JSON string is a valid YAML one).
 *
 * Ownership: opemit_doc() takes the document; the table copies its cells and
 * opemit_table_release() frees them. Output goes to the caller's opbuf.
 */
#ifndef OPTIPOD_UTIL_EMIT_H
#define OPTIPOD_UTIL_EMIT_H

#include <cJSON.h>
#include <stddef.h>

#include "util/buf.h"

/* s as a YAML string scalar: plain, or double-quoted. Returns 0 or an opbuf error. */
int opemit_yaml_str(opbuf *out, const char *s);
/* The output formats both commands take with -o: "table" 0, "json" 1, "yaml" 2, "csv" 3;
 * -1 for anything else (their enums follow this order). */
int opemit_fmt_parse(const char *s);
/* v as block YAML. Returns 0 or an opbuf error (-E2BIG, -ENOMEM). */
int opemit_yaml(const cJSON *v, opbuf *out);
/* doc as indented JSON and a newline (yaml 0) or as YAML (yaml 1); doc is deleted here.
 * A NULL doc (its building ran out of memory) gives -ENOMEM. */
int opemit_doc(cJSON *doc, int yaml, opbuf *out);

/* One CSV row of n fields and its newline; a field holding ',', '"' or a line break is
 * quoted (RFC 4180). */
int opemit_csv(opbuf *out, const char *const *fields, size_t n);

/* A table: a header and rows of ncols cells, printed with each column as wide as its
 * widest cell, `sep` between columns and nothing after the last. */
typedef struct opemit_table {
    size_t ncols;
    const char *sep;
    char **cells; /* nlines * ncols copies, the header first */
    size_t nlines, cap;
} opemit_table;

/* head: ncols column names. Returns 0 or -ENOMEM. */
int opemit_table_init(opemit_table *t, size_t ncols, const char *const *head, const char *sep);
/* Append a row of ncols cells (copied; NULL is written as ""). Returns 0 or -ENOMEM. */
int opemit_table_add(opemit_table *t, const char *const *cells);
int opemit_table_render(const opemit_table *t, opbuf *out);
void opemit_table_release(opemit_table *t);

#endif
