/*
 * chart: renders the optipod Helm chart (charts/optipod) without Helm.
 *
 * No Helm binary exists where the tests run, so the chart is written in a
 * small subset of Go template syntax that this renderer implements exactly
 * and Helm renders identically (charts/optipod/README.md documents it):
 *
 *   {{ .Values.a.b }}  {{ .Release.Name }}  {{ .Release.Namespace }}
 *   {{ .Chart.Version }}  {{ .Chart.AppVersion }}  {{ quote <any of those> }}
 *   {{ if .Values.flag }} ... {{ end }}           flag must be a boolean; no else
 *   {{ range .Values.list }} {{ . }} {{ quote . }} {{ end }}   a list of scalars
 *   {{ .Files.Get "dir/file" }}  {{ .Files.Get "dir/file" | indent N }}   a chart file
 *       (not templated: dashboards' and alerts' own {{ }} pass through), sprig's indent
 *   "{{- " and " -}}" trim the white space before / after the action.
 *
 * Anything else (helpers, include, toYaml, default, else, comments, other pipes,
 * `$`) is an error naming the file and line, and so is a value the template
 * names that values.yaml does not have, an `if` on a non-boolean, a `range`
 * over anything but a list of scalars, or printing a non-integral number (Go
 * and C format those differently). The renderer is stricter than Helm, never
 * more permissive, so whatever it accepts Helm renders the same way.
 *
 * The context is a cJSON object {"Values":{...},"Release":{"Name","Namespace"},
 * "Chart":{"Version","AppVersion"},"Files":{"path":"text",...}}: chart_context() builds it from
 * Chart.yaml and values.yaml (parsed with yaml2json), with `overrides` (may
 * be NULL) deep-merged over the values like `helm --set`/`-f`.
 *
 * Ownership: chart_context() and chart_render() return new cJSON trees the
 * caller frees with cJSON_Delete(); `text` is caller-owned (appended to).
 * On failure nothing is returned and `err` (may be NULL) says why.
 */
#ifndef OPTIPOD_TEST_SUPPORT_CHART_H
#define OPTIPOD_TEST_SUPPORT_CHART_H

#include <cJSON.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

/* Cap on one chart file (template, values, Chart.yaml) and on rendered text; on the files
 * .Files holds (the chart's top level and its directories but templates/), all together. */
#define CHART_MAX_FILE  (1024 * 1024)
#define CHART_MAX_FILES (8 * 1024 * 1024)

/* Render one template against ctx, appending to out. `name` labels errors.
 * Returns 0, -EINVAL (unsupported syntax or a bad value), -E2BIG, -ENOMEM. */
int chart_render_text(const char *name, const char *tmpl, size_t len, const cJSON *ctx, opbuf *out,
                      operr *err);

/* Helm's merge of -f/--set over values: objects merge key by key, anything else replaces
 * (src is copied). 0 or -ENOMEM. */
int chart_merge(cJSON *dst, const cJSON *src);

/* The rendering context of chart_dir for a release. */
int chart_context(const char *chart_dir, const char *release, const char *ns,
                  const cJSON *overrides, cJSON **ctx, operr *err);

/* Render every templates/ file (*.yaml only) and parse the result: *docs is an array of
 * the non-empty documents (objects with apiVersion, kind and metadata.name, checked), in
 * the order `helm template` prints them (Helm's install order of kinds, then file name
 * order). When text is not NULL it receives the manifest stream, each document trimmed and
 * after "---\n# Source: optipod/templates/<file>\n", ready for kubectl apply -f. */
int chart_render(const char *chart_dir, const char *release, const char *ns, const cJSON *overrides,
                 opbuf *text, cJSON **docs, operr *err);

enum {
    CHART_INCLUDE_CRDS = 1,     /* crds/ first, verbatim, like helm template --include-crds */
    CHART_CREATE_NAMESPACE = 2, /* the Namespace, before everything (--create-namespace) */
};

/* Everything an install creates, as one stream appended to text (nothing else is
 * written): with `flags`, the release Namespace and the chart's CRDs, then chart_render's
 * documents. */
int chart_manifest(const char *chart_dir, const char *release, const char *ns,
                   const cJSON *overrides, int flags, opbuf *text, operr *err);

/* The document of that kind and metadata.name in docs, or NULL. */
const cJSON *chart_find(const cJSON *docs, const char *kind, const char *name);
/* How many documents of that kind. */
int chart_count(const cJSON *docs, const char *kind);
/* Follow a dotted path of object keys ("spec.template.spec"); NULL when absent. */
const cJSON *chart_get(const cJSON *obj, const char *path);

#endif
