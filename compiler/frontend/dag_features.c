/*
 * dag_features.c: a graph file's node and edge features. Per graph, "node_features" is an
 * array holding a row of F numbers per node, or the name of a .npy file [nodes, F]
 * (float32 or float64, relative to the graph file); "edge_features" is the same per edge,
 * in the file's edge order. Every graph of a file has them or none does, all with the
 * same F. They are stored by global id: ir_dag node_feat [n_nodes * F], edge_feat.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"

typedef struct feat_ctx {
  const fe_src *src;
  const json_t *root, *graphs;
  const xy_limits *lim;
  xy_error *err;
  const char *key;        /* "node_features" or "edge_features" */
  const char *rows_name;  /* "nodes" or "edges" */
  const int64_t *start;   /* [n_graphs + 1]: the graphs' first rows */
  int64_t n_graphs, total;
  int64_t dim;            /* F; 0 until a row or a file tells it */
  char dim_at[FE_PATH_MAX]; /* where F was seen first, for messages */
  double *vals;           /* [total * dim] once dim is known */
} feat_ctx;

#define FAIL(c, code, path, ...) fe_fail_at((c)->err, code, (c)->src, path, __VA_ARGS__)

static const json_t *graph_json(const feat_ctx *c, int64_t g)
{
  return c->graphs ? json_array_get(c->graphs, (size_t)g) : c->root;
}

/* "graphs[g]" in a many-graph file, "" in a one-graph file. */
static void graph_path(const feat_ctx *c, int64_t g, char *out)
{
  if (c->graphs)
    fe_path_index(out, "graphs", g);
  else
    out[0] = '\0';
}

/* The first time F is known: check the size and allocate the values. */
static int set_dim(feat_ctx *c, int64_t dim, const char *path)
{
  int64_t count;
  if (!xy_mul_i64(c->total, dim, &count) || count > c->lim->max_elements)
    return FAIL(c, XY_E_LIMIT, path, "%lld %s x %lld features are more than the limit of %lld "
                "elements", (long long)c->total, c->rows_name, (long long)dim,
                (long long)c->lim->max_elements);
  c->vals = malloc(sizeof(double) * (size_t)(count > 0 ? count : 1));
  if (!c->vals)
    return xy_fail(c->err, XY_E_NOMEM, "%s: out of memory for %s", c->src->file, c->key);
  c->dim = dim;
  memcpy(c->dim_at, path, FE_PATH_MAX);
  return XY_OK;
}

/* A row's (or a file's) F against the file's. */
static int check_dim(feat_ctx *c, int64_t dim, const char *path, const char *what)
{
  if (c->dim == 0)
    return set_dim(c, dim, path);
  if (dim == c->dim)
    return XY_OK;
  return FAIL(c, XY_E_GRAPH, path, "%s %lld features; the file's %s have %lld (as at %s)", what,
              (long long)dim, c->key, (long long)c->dim, c->dim_at);
}

static int read_rows(feat_ctx *c, int64_t g, const json_t *v, const char *path)
{
  int64_t rows = c->start[g + 1] - c->start[g];
  if ((int64_t)json_array_size(v) != rows)
    return FAIL(c, XY_E_GRAPH, path, "%s has %zu rows; the graph has %lld %s", c->key,
                json_array_size(v), (long long)rows, c->rows_name);
  for (int64_t r = 0; r < rows; r++) {
    const json_t *row = json_array_get(v, (size_t)r);
    char rp[FE_PATH_MAX], xp[FE_PATH_MAX];
    size_t len = json_array_size(row);
    /* Paths are built only for messages (and the first row, which sets F). */
    if (!json_is_array(row) || len == 0 || c->dim == 0 || (int64_t)len != c->dim) {
      fe_path_index(rp, path, r);
      if (!json_is_array(row))
        return FAIL(c, XY_E_GRAPH, rp, "a feature row is an array of numbers, not %s",
                    fe_json_kind(row));
      if (len == 0)
        return FAIL(c, XY_E_GRAPH, rp, "an empty feature row: a row holds F >= 1 numbers");
      int rc = check_dim(c, (int64_t)len, rp, "the row has");
      if (rc)
        return rc;
    }
    double *out = c->vals + (c->start[g] + r) * c->dim;
    for (int64_t f = 0; f < c->dim; f++) {
      const json_t *x = json_array_get(row, (size_t)f);
      if (!json_is_number(x)) {
        fe_path_index(rp, path, r);
        fe_path_index(xp, rp, f);
        return FAIL(c, XY_E_GRAPH, xp, "a feature must be a number, not %s", fe_json_kind(x));
      }
      out[f] = json_number_value(x);
    }
  }
  return XY_OK;
}

/* name relative to the graph file's folder (absolute names stay). */
static char *relative_path(const char *file, const char *name)
{
  const char *slash = strrchr(file, '/');
  size_t dir = name[0] == '/' || !slash ? 0 : (size_t)(slash - file) + 1;
  size_t n = strlen(name);
  char *p = malloc(dir + n + 1);
  if (!p)
    return NULL;
  memcpy(p, file, dir);
  memcpy(p + dir, name, n + 1);
  return p;
}

static int check_npy(feat_ctx *c, const xy_array *a, int64_t rows, const char *npy,
                     const char *path)
{
  if (a->dtype != XY_F32 && a->dtype != XY_F64)
    return FAIL(c, XY_E_GRAPH, path, "%s: features are float32 or float64, not %s", npy,
                a->dtype == XY_F16 ? "float16" : "integers");
  if (a->rank != 2 || a->shape[0] != rows || a->shape[1] < 1) {
    char have[160];
    return FAIL(c, XY_E_GRAPH, path, "%s has shape %s; %s are [%s, F] = [%lld, F] with F >= 1",
                npy, xy_shape_string(a->shape, a->rank, have, sizeof have), c->key,
                c->rows_name, (long long)rows);
  }
  return XY_OK;
}

static int read_npy(feat_ctx *c, int64_t g, const char *name, const char *path)
{
  if (!name[0])
    return FAIL(c, XY_E_GRAPH, path, "the .npy file name is empty");
  char *npy = relative_path(c->src->file, name);
  if (!npy)
    return xy_fail(c->err, XY_E_NOMEM, "%s: out of memory", c->src->file);
  int64_t rows = c->start[g + 1] - c->start[g];
  xy_array a;
  xy_error e;
  int rc = xy_npy_read(npy, c->lim->max_file_bytes, &a, &e);
  if (rc) {
    rc = FAIL(c, rc, path, "%s", e.message);
    free(npy);
    return rc;
  }
  if (!(rc = check_npy(c, &a, rows, npy, path)) &&
      !(rc = check_dim(c, a.shape[1], path, "the file has"))) {
    double *out = c->vals + c->start[g] * c->dim;
    if ((rc = xy_array_to_f64(&a, out, a.count, &e)))
      rc = FAIL(c, rc, path, "%s", e.message);
    for (size_t i = 0; !rc && i < a.count; i++)
      if (!isfinite(out[i]))
        rc = FAIL(c, XY_E_GRAPH, path, "%s: the value at row %lld, column %lld is %g; "
                  "features must be finite", npy, (long long)(i / (size_t)c->dim),
                  (long long)(i % (size_t)c->dim), out[i]);
  }
  xy_array_free(&a);
  free(npy);
  return rc;
}

static int read_key(feat_ctx *c, int64_t *dim, double **vals)
{
  int64_t have = -1, lack = -1;
  for (int64_t g = 0; g < c->n_graphs; g++) {
    int64_t *first = json_object_get(graph_json(c, g), c->key) ? &have : &lack;
    if (*first < 0)
      *first = g;
  }
  if (have < 0)
    return XY_OK;
  char gp[FE_PATH_MAX], p[FE_PATH_MAX];
  if (lack >= 0) {
    graph_path(c, lack, gp);
    return FAIL(c, XY_E_GRAPH, gp, "this graph has no %s, but graphs[%lld] has: every graph of "
                "a file has them or none does", c->key, (long long)have);
  }
  int rc = XY_OK;
  for (int64_t g = 0; !rc && g < c->n_graphs; g++) {
    const json_t *v = json_object_get(graph_json(c, g), c->key);
    graph_path(c, g, gp);
    fe_path_key(p, gp, c->key);
    if (json_is_string(v))
      rc = read_npy(c, g, json_string_value(v), p);
    else if (json_is_array(v))
      rc = read_rows(c, g, v, p);
    else
      rc = FAIL(c, XY_E_GRAPH, p, "must be an array of rows of numbers or the name of a .npy "
                "file, not %s", fe_json_kind(v));
  }
  if (rc) {
    free(c->vals);
    return rc;
  }
  /* Graphs without rows (no edges) say nothing about F: with no rows at all there is none. */
  *dim = c->dim;
  *vals = c->vals;
  return XY_OK;
}

int fe_dag_read_features(const fe_src *src, const json_t *root, const json_t *graphs,
                         const xy_limits *limits, ir_dag *d, xy_error *err)
{
  feat_ctx c = {.src = src, .root = root, .graphs = graphs, .lim = limits, .err = err,
                .key = "node_features", .rows_name = "nodes", .start = d->node_start,
                .n_graphs = d->n_graphs, .total = d->n_nodes};
  int rc = read_key(&c, &d->node_feat_dim, &d->node_feat);
  if (rc)
    return rc;
  feat_ctx e = {.src = src, .root = root, .graphs = graphs, .lim = limits, .err = err,
                .key = "edge_features", .rows_name = "edges", .start = d->edge_start,
                .n_graphs = d->n_graphs, .total = d->n_edges};
  return read_key(&e, &d->edge_feat_dim, &d->edge_feat);
}
