/*
 * spec.c: model specs (format version 1, documented in docs/spec-format.md) into a graph-IR
 * module. The JSON is parsed whole by jansson, overrides are applied, then the spec is read
 * top to bottom: graph, inputs, layers (each one's output shapes inferred as it is added),
 * outputs. Any rule broken is reported with the file, line, column and JSON path of the
 * value that broke it; the half-built module is freed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"

/* Model, layer and tensor names become C identifiers and file names. */
#define FE_NAME_MAX 128
/* Tensors and layers per spec: far above real models, low enough that the IR builder's
 * name lookups (linear in the tensor count) stay fast on hostile specs. */
#define FE_MAX_TENSORS 16384
#define FE_MAX_LAYERS 16384

typedef struct spec_ctx {
  fe_src src;
  const char *spec_path;
  const xy_limits *lim;
  xy_error *err;
  ir_module *m;
  ir_graph_kind kind;
} spec_ctx;

#define FAIL(c, code, path, ...) fe_fail_at((c)->err, code, &(c)->src, path, __VA_ARGS__)
#define FAIL_KEY(c, code, path, ...) fe_fail_key((c)->err, code, &(c)->src, path, __VA_ARGS__)

static int nomem(spec_ctx *c)
{
  return xy_fail(c->err, XY_E_NOMEM, "%s: out of memory", c->spec_path);
}

static const char *const kind_names[] = {
  [IR_GRAPH_SEQUENCE] = "sequence",
  [IR_GRAPH_GRID2D] = "grid2d",
  [IR_GRAPH_DAG] = "dag",
};

/* ------------------------------------------------------------------ members */

static int missing(spec_ctx *c, const char *path, const char *key)
{
  return FAIL(c, XY_E_SPEC, path, "missing required key '%s'", key);
}

/* Member key of obj (at path) of JSON type type; *out stays NULL when optional and absent. */
static int get_typed(spec_ctx *c, const json_t *obj, const char *path, const char *key,
                     bool required, json_type type, const char *type_name, json_t **out)
{
  *out = json_object_get(obj, key);
  if (!*out)
    return required ? missing(c, path, key) : XY_OK;
  if (json_typeof(*out) == type)
    return XY_OK;
  char p[FE_PATH_MAX];
  fe_path_key(p, path, key);
  return FAIL(c, XY_E_SPEC, p, "must be %s, not %s", type_name, fe_json_kind(*out));
}

static int get_string(spec_ctx *c, const json_t *obj, const char *path, const char *key,
                      bool required, const char **out)
{
  json_t *v;
  int rc = get_typed(c, obj, path, key, required, JSON_STRING, "a string", &v);
  *out = v && !rc ? json_string_value(v) : NULL;
  return rc;
}

/* Integer member >= min; dflt when optional and absent. */
static int get_int(spec_ctx *c, const json_t *obj, const char *path, const char *key,
                   bool required, int64_t dflt, int64_t min, int64_t *out)
{
  json_t *v;
  int rc = get_typed(c, obj, path, key, required, JSON_INTEGER, "an integer", &v);
  if (rc)
    return rc;
  *out = dflt;
  if (!v)
    return XY_OK;
  json_int_t x = json_integer_value(v);
  if (x < min) {
    char p[FE_PATH_MAX];
    fe_path_key(p, path, key);
    return FAIL(c, XY_E_SPEC, p, "must be at least %lld, not %lld", (long long)min,
                (long long)x);
  }
  *out = (int64_t)x;
  return XY_OK;
}

/* Boolean member; dflt when absent. */
static int get_bool(spec_ctx *c, const json_t *obj, const char *path, const char *key,
                    bool dflt, bool *out)
{
  json_t *v = json_object_get(obj, key);
  *out = v ? json_is_true(v) : dflt;
  if (!v || json_is_boolean(v))
    return XY_OK;
  char p[FE_PATH_MAX];
  fe_path_key(p, path, key);
  return FAIL(c, XY_E_SPEC, p, "must be true or false, not %s", fe_json_kind(v));
}

bool fe_is_ident(const char *s)
{
  for (size_t i = 0; s[i]; i++) {
    char ch = s[i];
    bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
    if (!alpha && !(i > 0 && ch >= '0' && ch <= '9'))
      return false;
  }
  return s[0] != '\0';
}

static int check_ident(spec_ctx *c, const char *s, const char *path, const char *what)
{
  if (!fe_is_ident(s))
    return FAIL(c, XY_E_SPEC, path,
                "'%.64s' is not a valid %s: use letters, digits and '_', not starting with a "
                "digit", s, what);
  if (strlen(s) > FE_NAME_MAX)
    return FAIL(c, XY_E_SPEC, path, "the %s is longer than %d characters", what, FE_NAME_MAX);
  return XY_OK;
}

/* "a, b, c" from a list of names; NULL when memory runs out. */
static char *join_names(const char *const *names, size_t n)
{
  xy_buf b;
  xy_buf_init(&b);
  xy_buf_put(&b, "", 0); /* terminated even when empty */
  for (size_t i = 0; i < n; i++)
    xy_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
  return xy_buf_take(&b);
}

/* ------------------------------------------------------------------ name */

/* The spec file's base name without its extension, made an identifier ("my-net.json" ->
 * "my_net"). */
static char *default_name(const char *path)
{
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
  if (n == 0)
    return xy_strdup("model");
  if (n > FE_NAME_MAX - 1)
    n = FE_NAME_MAX - 1;
  char *s = malloc(n + 2);
  if (!s)
    return NULL;
  size_t j = 0;
  if (base[0] >= '0' && base[0] <= '9')
    s[j++] = '_';
  for (size_t i = 0; i < n; i++) {
    char ch = base[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    s[j++] = ok ? ch : '_';
  }
  s[j] = '\0';
  return s;
}

static int read_header(spec_ctx *c, const json_t *root)
{
  json_t *v = json_object_get(root, "xylem");
  if (!v)
    return FAIL(c, XY_E_SPEC, "",
                "missing required key 'xylem' (the spec format version: \"xylem\": 1)");
  if (!json_is_integer(v))
    return FAIL(c, XY_E_SPEC, "xylem", "the spec format version must be the integer 1, not %s",
                fe_json_kind(v));
  if (json_integer_value(v) != 1)
    return FAIL(c, XY_E_SPEC, "xylem",
                "unsupported spec format version %lld; this xylem reads version 1",
                (long long)json_integer_value(v));
  static const char *const keys[] = {"xylem", "name", "batch", "dtype", "graph", "inputs",
                                     "layers", "outputs", "stages"};
  int rc = fe_check_keys(c->err, XY_E_SPEC, &c->src, root, "", keys, XY_ARRAY_LEN(keys));
  const char *name;
  /* Stages were applied already when one was chosen; either way their form is checked. */
  if (rc || (rc = fe_check_stages(&c->src, root, c->err)) ||
      (rc = get_string(c, root, "", "name", false, &name)))
    return rc;
  if (name && (rc = check_ident(c, name, "name", "model name")))
    return rc;
  char *dflt = name ? NULL : default_name(c->spec_path);
  if (!name && !dflt)
    return nomem(c);
  c->m = ir_module_new(name ? name : dflt);
  free(dflt);
  if (!c->m || !(c->m->spec_path = xy_strdup(c->spec_path)))
    return nomem(c);
  if ((rc = get_int(c, root, "", "batch", false, 1, 1, &c->m->batch)))
    return rc;
  const char *dtype;
  if ((rc = get_string(c, root, "", "dtype", false, &dtype)))
    return rc;
  if (dtype && strcmp(dtype, "float32") != 0)
    return FAIL(c, XY_E_SPEC, "dtype", "unknown dtype '%.64s'; expected one of: float32", dtype);
  return XY_OK;
}

/* ------------------------------------------------------------------ graph */

/* The graph file's path: relative ones are relative to the spec's folder. */
static char *graph_file_path(const char *spec_path, const char *file)
{
  const char *slash = strrchr(spec_path, '/');
  size_t dir = file[0] == '/' || !slash ? 0 : (size_t)(slash - spec_path) + 1;
  size_t n = strlen(file);
  char *p = malloc(dir + n + 1);
  if (!p)
    return NULL;
  memcpy(p, spec_path, dir);
  memcpy(p + dir, file, n + 1);
  return p;
}

/* The DAG file, prepared as the graph's options say: dagify (orient directed graphs by
 * node id, as the reference does), reverse, line_graph "full" or "multitree". */
static int read_dag(spec_ctx *c, const json_t *gj, ir_graph *g)
{
  const char *file, *line_graph;
  bool dagify, reverse, multitree;
  int rc = get_string(c, gj, "graph", "file", true, &file);
  if (rc || (rc = get_bool(c, gj, "graph", "dagify", false, &dagify)) ||
      (rc = get_bool(c, gj, "graph", "reverse", false, &reverse)) ||
      (rc = get_string(c, gj, "graph", "line_graph", false, &line_graph)))
    return rc;
  multitree = line_graph && strcmp(line_graph, "multitree") == 0;
  if (line_graph && !multitree && strcmp(line_graph, "full") != 0)
    return FAIL(c, XY_E_SPEC, "graph.line_graph",
                "unknown line graph '%.64s'; expected one of: full, multitree", line_graph);
  if (!file || !file[0])
    return FAIL(c, XY_E_SPEC, "graph.file", "the graph file name is empty");
  char *path = graph_file_path(c->spec_path, file);
  if (!path)
    return nomem(c);
  char *text;
  size_t len;
  xy_error read_err;
  rc = xy_read_file(path, c->lim->max_file_bytes, &text, &len, &read_err);
  if (rc) {
    free(path);
    return FAIL(c, rc, "graph.file", "%s", read_err.message);
  }
  g->file = path; /* owned by the module from here on, whatever happens */
  g->dagified = dagify;
  g->origin = (int)(g - c->m->graphs);
  rc = fe_dag_read(path, text, len, c->lim, dagify, &g->dag, c->err);
  free(text);
  if (rc || (!reverse && !multitree))
    return rc;
  ir_dag v;
  xy_error e;
  if ((rc = fe_dag_derive(&g->dag, false, reverse, multitree, path, &v, &e)))
    return FAIL(c, rc, multitree ? "graph.line_graph" : "graph.reverse", "%s", e.message);
  ir_dag_free(&g->dag);
  g->dag = v;
  g->reversed = reverse;
  g->multitree = multitree;
  return XY_OK;
}

static int read_graph(spec_ctx *c, const json_t *root)
{
  json_t *gj;
  const char *kind;
  int rc = get_typed(c, root, "", "graph", true, JSON_OBJECT, "an object", &gj);
  if (rc || (rc = get_string(c, gj, "graph", "kind", true, &kind)))
    return rc;
  int k = 0;
  while (k < 3 && strcmp(kind, kind_names[k]) != 0)
    k++;
  if (k == 3)
    return FAIL(c, XY_E_SPEC, "graph.kind",
                "unknown graph kind '%.64s'; expected one of: sequence, grid2d, dag", kind);
  c->kind = (ir_graph_kind)k;
  static const char *const seq_keys[] = {"kind", "length"};
  static const char *const grid_keys[] = {"kind", "rows", "cols"};
  static const char *const dag_keys[] = {"kind", "file", "dagify", "reverse", "line_graph"};
  static const char *const *const keys[] = {seq_keys, grid_keys, dag_keys};
  static const size_t n_keys[] = {2, 3, 5};
  if ((rc = fe_check_keys(c->err, XY_E_SPEC, &c->src, gj, "graph", keys[k], n_keys[k])))
    return rc;
  int gi = ir_add_graph(c->m, c->kind);
  if (gi < 0)
    return nomem(c);
  ir_graph *g = &c->m->graphs[gi];
  switch (c->kind) {
  case IR_GRAPH_SEQUENCE:
    return get_int(c, gj, "graph", "length", true, 0, 1, &g->length);
  case IR_GRAPH_GRID2D:
    if ((rc = get_int(c, gj, "graph", "rows", true, 0, 1, &g->rows)) ||
        (rc = get_int(c, gj, "graph", "cols", true, 0, 1, &g->cols)))
      return rc;
    int64_t cells;
    if (!xy_mul_i64(g->rows, g->cols, &cells))
      return FAIL(c, XY_E_LIMIT, "graph", "rows x cols overflows");
    return XY_OK;
  case IR_GRAPH_DAG:
    return read_dag(c, gj, g);
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ inputs */

enum { K_SEQ = 1u << IR_GRAPH_SEQUENCE, K_GRID = 1u << IR_GRAPH_GRID2D, K_DAG = 1u << IR_GRAPH_DAG };

static const struct shape_symbol {
  const char *name;
  unsigned kinds;
} symbols[] = {
  {"batch", K_SEQ | K_GRID | K_DAG},
  {"length", K_SEQ},
  {"rows", K_GRID},
  {"cols", K_GRID},
  {"nodes", K_DAG},
  {"edges", K_DAG},
  {"arcs", K_DAG},
};

static int64_t symbol_value(const spec_ctx *c, const char *name)
{
  const ir_graph *g = &c->m->graphs[0];
  if (strcmp(name, "batch") == 0)
    return c->m->batch;
  if (strcmp(name, "length") == 0)
    return g->length;
  if (strcmp(name, "rows") == 0)
    return g->rows;
  if (strcmp(name, "cols") == 0)
    return g->cols;
  if (strcmp(name, "nodes") == 0)
    return g->dag.n_nodes;
  if (strcmp(name, "edges") == 0)
    return g->dag.n_edges;
  return g->dag.n_arcs;
}

/* A symbol not defined for this graph kind: name the ones that are. */
static int bad_symbol(spec_ctx *c, const char *path, const char *name)
{
  const char *valid[XY_ARRAY_LEN(symbols)];
  size_t n = 0;
  for (size_t i = 0; i < XY_ARRAY_LEN(symbols); i++)
    if (symbols[i].kinds & (1u << c->kind))
      valid[n++] = symbols[i].name;
  char *list = join_names(valid, n);
  int rc = FAIL(c, XY_E_SPEC, path,
                "unknown shape symbol '%.64s' for a %s graph; expected one of: %s", name,
                kind_names[c->kind], list ? list : "?");
  free(list);
  return rc;
}

static int read_dim(spec_ctx *c, const json_t *v, const char *path, int64_t *d)
{
  if (json_is_integer(v)) {
    if (json_integer_value(v) < 1)
      return FAIL(c, XY_E_SHAPE, path, "dimension %lld: dimensions must be at least 1",
                  (long long)json_integer_value(v));
    *d = (int64_t)json_integer_value(v);
    return XY_OK;
  }
  if (!json_is_string(v))
    return FAIL(c, XY_E_SPEC, path, "a dimension is an integer or a shape symbol, not %s",
                fe_json_kind(v));
  const char *name = json_string_value(v);
  for (size_t i = 0; i < XY_ARRAY_LEN(symbols); i++)
    if (strcmp(name, symbols[i].name) == 0 && (symbols[i].kinds & (1u << c->kind))) {
      *d = symbol_value(c, name);
      return XY_OK;
    }
  return bad_symbol(c, path, name);
}

/* Fails when a tensor of this shape is too big. */
static int check_count(spec_ctx *c, const ir_shape *s, const char *path)
{
  int64_t n = ir_shape_count(s);
  if (n < 0)
    return FAIL(c, XY_E_LIMIT, path, "the element count overflows");
  if (n > c->lim->max_elements)
    return FAIL(c, XY_E_LIMIT, path, "%lld elements are more than the limit of %lld",
                (long long)n, (long long)c->lim->max_elements);
  return XY_OK;
}

static int read_shape(spec_ctx *c, const json_t *in, const char *path, ir_shape *s)
{
  json_t *sh;
  char sp[FE_PATH_MAX], dp[FE_PATH_MAX];
  int rc = get_typed(c, in, path, "shape", true, JSON_ARRAY, "an array", &sh);
  if (rc)
    return rc;
  fe_path_key(sp, path, "shape");
  size_t rank = json_array_size(sh);
  if (rank > IR_MAX_RANK)
    return FAIL(c, XY_E_SHAPE, sp, "rank %zu is more than the limit of %d", rank, IR_MAX_RANK);
  memset(s, 0, sizeof *s);
  s->rank = (int)rank;
  for (size_t i = 0; i < rank; i++) {
    fe_path_index(dp, sp, (int64_t)i);
    if ((rc = read_dim(c, json_array_get(sh, i), dp, &s->d[i])))
      return rc;
  }
  return check_count(c, s, sp);
}

static int read_range(spec_ctx *c, const json_t *in, const char *path, double *lo, double *hi)
{
  json_t *r = json_object_get(in, "range");
  *lo = -1.0;
  *hi = 1.0;
  if (!r)
    return XY_OK;
  char p[FE_PATH_MAX];
  fe_path_key(p, path, "range");
  if (!json_is_array(r) || json_array_size(r) != 2 || !json_is_number(json_array_get(r, 0)) ||
      !json_is_number(json_array_get(r, 1)))
    return FAIL(c, XY_E_SPEC, p, "must be [lo, hi], two numbers");
  double a = json_number_value(json_array_get(r, 0)), b = json_number_value(json_array_get(r, 1));
  if (!isfinite(a) || !isfinite(b))
    return FAIL(c, XY_E_SPEC, p, "the bounds must be finite");
  if (!(a < b))
    return FAIL(c, XY_E_SPEC, p, "lo (%g) must be less than hi (%g)", a, b);
  *lo = a;
  *hi = b;
  return XY_OK;
}

/* A new tensor's name: an identifier no tensor has yet. */
static int check_new_tensor(spec_ctx *c, const char *name, const char *path)
{
  int rc = check_ident(c, name, path, "tensor name");
  if (rc)
    return rc;
  if (c->m->n_tensors >= FE_MAX_TENSORS)
    return FAIL(c, XY_E_LIMIT, path, "a spec may declare at most %d tensors", FE_MAX_TENSORS);
  int t = ir_find_tensor(c->m, name);
  if (t < 0)
    return XY_OK;
  const ir_srcpos *pos = &c->m->tensors[t].pos;
  if (pos->line > 0)
    return FAIL(c, XY_E_SPEC, path, "duplicate tensor name '%s' (already declared at %d:%d, %s)",
                name, pos->line, pos->col, pos->json_path ? pos->json_path : "?");
  return FAIL(c, XY_E_SPEC, path, "duplicate tensor name '%s' (already declared at %s)", name,
              pos->json_path ? pos->json_path : "?");
}

static bool set_pos(spec_ctx *c, ir_srcpos *pos, const char *path)
{
  int line, col;
  fe_src_pos(&c->src, path, &line, &col);
  return ir_set_pos(pos, line, col, path);
}

/* "from_graph": the input's values are the DAG file's node or edge features, so its
 * shape is [batch, rows, F] or [rows, F]. */
static int read_from_graph(spec_ctx *c, const json_t *in, const char *path, const ir_shape *s,
                           ir_graph_data *out)
{
  const char *what;
  char p[FE_PATH_MAX];
  *out = IR_FROM_NONE;
  int rc = get_string(c, in, path, "from_graph", false, &what);
  if (rc || !what)
    return rc;
  fe_path_key(p, path, "from_graph");
  bool node = strcmp(what, "node_features") == 0;
  if (!node && strcmp(what, "edge_features") != 0)
    return FAIL(c, XY_E_SPEC, p, "unknown graph data '%.64s'; expected one of: node_features, "
                "edge_features", what);
  if (c->kind != IR_GRAPH_DAG)
    return FAIL(c, XY_E_SPEC, p, "'from_graph' takes a DAG file's features; this spec's graph is "
                "a %s", kind_names[c->kind]);
  const ir_graph *g = &c->m->graphs[0];
  int64_t rows = node ? g->dag.n_nodes : g->dag.n_edges;
  int64_t dim = node ? g->dag.node_feat_dim : g->dag.edge_feat_dim;
  if (dim == 0)
    return FAIL(c, XY_E_SPEC, p, "the graph file %s has no %s", g->file, what);
  const char *sym = node ? "nodes" : "edges";
  bool ok = (s->rank == 3 && s->d[0] == c->m->batch && s->d[1] == rows && s->d[2] == dim) ||
            (s->rank == 2 && s->d[0] == rows && s->d[1] == dim);
  if (!ok) {
    char sp[FE_PATH_MAX];
    xy_buf b;
    xy_buf_init(&b);
    ir_shape_print(s, &b);
    char *have = xy_buf_take(&b);
    fe_path_key(sp, path, "shape");
    rc = FAIL(c, XY_E_SHAPE, sp, "an input from the graph's %s has shape [\"batch\", \"%s\", "
              "%lld] or [\"%s\", %lld] (%lld %s, F = %lld), not %s", what, sym, (long long)dim,
              sym, (long long)dim, (long long)rows, sym, (long long)dim, have ? have : "?");
    free(have);
    return rc;
  }
  *out = node ? IR_FROM_NODE_FEATURES : IR_FROM_EDGE_FEATURES;
  return XY_OK;
}

static int read_input(spec_ctx *c, const json_t *in, const char *path)
{
  if (!json_is_object(in))
    return FAIL(c, XY_E_SPEC, path,
                "an input is an object {\"name\": ..., \"shape\": [...]}, not %s",
                fe_json_kind(in));
  static const char *const keys[] = {"name", "shape", "range", "from_graph"};
  const char *name;
  char np[FE_PATH_MAX];
  fe_path_key(np, path, "name");
  int rc = fe_check_keys(c->err, XY_E_SPEC, &c->src, in, path, keys, XY_ARRAY_LEN(keys));
  if (rc || (rc = get_string(c, in, path, "name", true, &name)) ||
      (rc = check_new_tensor(c, name, np)))
    return rc;
  ir_shape s;
  double lo, hi;
  ir_graph_data from;
  if ((rc = read_shape(c, in, path, &s)) || (rc = read_range(c, in, path, &lo, &hi)) ||
      (rc = read_from_graph(c, in, path, &s, &from)))
    return rc;
  int t = ir_add_tensor(c->m, name, &s, XY_F32, IR_INPUT);
  if (t < 0)
    return nomem(c);
  c->m->tensors[t].lo = lo;
  c->m->tensors[t].hi = hi;
  c->m->tensors[t].from_graph = from;
  if (!set_pos(c, &c->m->tensors[t].pos, path) || !ir_mark_input(c->m, t))
    return nomem(c);
  return XY_OK;
}

static int read_inputs(spec_ctx *c, const json_t *root)
{
  json_t *list;
  int rc = get_typed(c, root, "", "inputs", true, JSON_ARRAY, "an array", &list);
  for (size_t i = 0; !rc && i < json_array_size(list); i++) {
    char p[FE_PATH_MAX];
    fe_path_index(p, "inputs", (int64_t)i);
    rc = read_input(c, json_array_get(list, i), p);
  }
  return rc;
}

/* ------------------------------------------------------------------ layers */

/* Attributes each op takes besides its slots. */
static const char *const plstm_attrs[] = {"qk_scale"};
static const char *const memory_attrs[] = {"schedule"};

static const char *const *op_attrs(ir_opcode code, size_t *n)
{
  if (ir_op_info_of(code)->flags & IR_OPF_SCAN) {
    *n = XY_ARRAY_LEN(plstm_attrs);
    return plstm_attrs;
  }
  if (code == IR_OP_MEMORY_SCAN) {
    *n = XY_ARRAY_LEN(memory_attrs);
    return memory_attrs;
  }
  *n = 0;
  return NULL;
}

/* Layers name the scan ops and memory_scan directly; the other ordinary ops are what
 * layers expand into. */
static bool op_nameable(ir_opcode code)
{
  return (ir_op_info_of(code)->flags & IR_OPF_SCAN) || code == IR_OP_MEMORY_SCAN;
}

static int find_op(spec_ctx *c, const char *name, const char *path, ir_opcode *code)
{
  const char *names[IR_OP_COUNT + 5];
  int n = 0;
  for (int i = 0; i < IR_OP_COUNT; i++) {
    const ir_op_info *info = ir_op_info_of((ir_opcode)i);
    if (!op_nameable((ir_opcode)i))
      continue;
    names[n++] = info->name;
    if (strcmp(name, info->name) == 0) {
      *code = (ir_opcode)i;
      return XY_OK;
    }
  }
  names[n++] = "plstm1d";
  names[n++] = "plstm2d";
  names[n++] = "memory";
  names[n++] = "plstm_graph";
  names[n++] = "plstm_graph_edge";
  char *list = join_names(names, n);
  int rc = FAIL(c, XY_E_SPEC, path, "unknown op '%.64s'; expected one of: %s", name,
                list ? list : "?");
  free(list);
  return rc;
}

/* "q, k, ..., C_initial (optional)" */
static char *slot_list(const char *const *names, const bool *optional, int n)
{
  xy_buf b;
  xy_buf_init(&b);
  for (int i = 0; i < n; i++)
    xy_buf_printf(&b, "%s%s%s", i ? ", " : "", names[i], optional[i] ? " (optional)" : "");
  return xy_buf_take(&b);
}

static int slot_error(spec_ctx *c, const char *path, bool at_key, const char *fmt,
                      const char *slot, const char *dir, const ir_op_info *info)
{
  bool in = dir[0] == 'i';
  char *list = slot_list(in ? info->in_names : info->out_names,
                         in ? info->in_optional : info->out_optional, in ? info->n_in : info->n_out);
  int rc = at_key ? FAIL_KEY(c, XY_E_SPEC, path, fmt, dir, slot, info->name, list ? list : "?")
                  : FAIL(c, XY_E_SPEC, path, fmt, dir, slot, info->name, list ? list : "?");
  free(list);
  return rc;
}

static int read_layer_inputs(spec_ctx *c, const json_t *l, const char *lp, int oi)
{
  ir_opcode code = c->m->ops[oi].code;
  const ir_op_info *info = ir_op_info_of(code);
  json_t *ins;
  int rc = get_typed(c, l, lp, "inputs", true, JSON_OBJECT, "an object", &ins);
  if (rc)
    return rc;
  char ip[FE_PATH_MAX], kp[FE_PATH_MAX];
  fe_path_key(ip, lp, "inputs");
  const char *key;
  json_t *v;
  json_object_foreach(ins, key, v) {
    fe_path_key(kp, ip, key);
    int s = ir_op_in_slot(code, key);
    if (s < 0)
      return slot_error(c, kp, true, "unknown %s slot '%.64s' of %s; expected one of: %s", key,
                        "input", info);
    if (!json_is_string(v))
      return FAIL(c, XY_E_SPEC, kp, "must be a tensor name (a string), not %s", fe_json_kind(v));
    int t = ir_find_tensor(c->m, json_string_value(v));
    if (t < 0)
      return FAIL(c, XY_E_SPEC, kp,
                  "unknown tensor '%.64s' (not a model input or an output of an earlier layer)",
                  json_string_value(v));
    c->m->ops[oi].in[s] = t;
  }
  for (int s = 0; s < info->n_in; s++)
    if (!info->in_optional[s] && c->m->ops[oi].in[s] < 0)
      return slot_error(c, ip, false, "missing required %s slot '%s' of %s; its slots: %s",
                        info->in_names[s], "input", info);
  return XY_OK;
}

static int read_layer_outputs(spec_ctx *c, const json_t *l, const char *lp, int oi)
{
  ir_opcode code = c->m->ops[oi].code;
  const ir_op_info *info = ir_op_info_of(code);
  json_t *outs;
  int rc = get_typed(c, l, lp, "outputs", true, JSON_OBJECT, "an object", &outs);
  if (rc)
    return rc;
  char op[FE_PATH_MAX], kp[FE_PATH_MAX];
  fe_path_key(op, lp, "outputs");
  const char *key;
  json_t *v;
  json_object_foreach(outs, key, v) {
    fe_path_key(kp, op, key);
    int s = ir_op_out_slot(code, key);
    if (s < 0)
      return slot_error(c, kp, true, "unknown %s slot '%.64s' of %s; expected one of: %s", key,
                        "output", info);
    if (!json_is_string(v))
      return FAIL(c, XY_E_SPEC, kp, "must be a new tensor name (a string), not %s",
                  fe_json_kind(v));
    if ((rc = check_new_tensor(c, json_string_value(v), kp)))
      return rc;
    ir_shape none;
    memset(&none, 0, sizeof none); /* set by shape inference */
    int t = ir_add_tensor(c->m, json_string_value(v), &none, XY_F32, IR_VALUE);
    if (t < 0 || !set_pos(c, &c->m->tensors[t].pos, kp))
      return nomem(c);
    c->m->tensors[t].producer = oi;
    c->m->ops[oi].out[s] = t;
  }
  for (int s = 0; s < info->n_out; s++)
    if (!info->out_optional[s] && c->m->ops[oi].out[s] < 0)
      return slot_error(c, op, false, "missing required %s slot '%s' of %s; its slots: %s",
                        info->out_names[s], "output", info);
  return XY_OK;
}

/* The layer's name: given, or "<op><index>"; unique among layers. */
static int layer_name(spec_ctx *c, const json_t *l, const char *lp, const char *op, size_t i,
                      char *out, size_t cap)
{
  const char *name;
  char np[FE_PATH_MAX];
  fe_path_key(np, lp, "name");
  int rc = get_string(c, l, lp, "name", false, &name);
  if (rc || (name && (rc = check_ident(c, name, np, "layer name"))))
    return rc;
  if (name)
    snprintf(out, cap, "%s", name);
  else
    snprintf(out, cap, "%s%zu", op, i);
  for (int k = 0; k < c->m->n_ops; k++)
    if (strcmp(c->m->ops[k].name, out) == 0)
      return FAIL(c, XY_E_SPEC, name ? np : lp, "duplicate layer name '%s' (already used by %s)",
                  out, c->m->ops[k].pos.json_path ? c->m->ops[k].pos.json_path : "?");
  return XY_OK;
}

/* qk_scale: given, or NAN for the default that needs q's shape. */
static int read_qk_scale(spec_ctx *c, const json_t *l, const char *lp, double *scale)
{
  json_t *v = json_object_get(l, "qk_scale");
  *scale = NAN;
  if (!v)
    return XY_OK;
  char p[FE_PATH_MAX];
  fe_path_key(p, lp, "qk_scale");
  if (!json_is_number(v) || !isfinite(json_number_value(v)))
    return FAIL(c, XY_E_SPEC, p, "must be a finite number, not %s", fe_json_kind(v));
  *scale = json_number_value(v);
  return XY_OK;
}

/* Output shapes from ir_infer_shapes, then the defaults that depend on them. */
static int finish_layer(spec_ctx *c, const char *lp, int oi, double qk_scale)
{
  ir_op *op = &c->m->ops[oi];
  xy_error e;
  int rc = ir_infer_shapes(c->m, op, &e);
  if (rc)
    return FAIL(c, rc, lp, "%s", e.message);
  const ir_op_info *info = ir_op_info_of(op->code);
  for (int s = 0; s < info->n_out; s++) {
    char p[FE_PATH_MAX], kp[FE_PATH_MAX];
    fe_path_key(p, lp, "outputs");
    fe_path_key(kp, p, info->out_names[s]);
    if (op->out[s] >= 0 && (rc = check_count(c, &c->m->tensors[op->out[s]].shape, kp)))
      return rc;
  }
  bool scan = info->flags & IR_OPF_SCAN, memory = op->code == IR_OP_MEMORY_SCAN;
  if (scan || memory) {
    /* A scan or memory layer runs over the model's batch (layers fold heads into the batch
     * of the scans they expand into, so the op itself takes any B). */
    const ir_shape *q0 = &c->m->tensors[op->in[0]].shape;
    if (q0->rank < 1 || q0->d[0] != c->m->batch)
      return FAIL(c, XY_E_SHAPE, lp, "%s '%s': q has batch %lld, the model's batch is %lld",
                  info->name, op->name, q0->rank ? (long long)q0->d[0] : 0LL,
                  (long long)c->m->batch);
  }
  if (memory) {
    /* q is [B, L, H, DK] (checked by read_memory) and runs along the sequence. */
    const ir_shape *q0 = &c->m->tensors[op->in[0]].shape;
    int64_t len = c->m->graphs[0].length;
    if (q0->d[1] != len)
      return FAIL(c, XY_E_SHAPE, lp, "%s '%s': q has length %lld (axis 1), the sequence's "
                  "length is %lld", info->name, op->name, (long long)q0->d[1], (long long)len);
  }
  if (scan) {
    /* The 1D/2D reference scales q.k by DK^-1/2; its graph code does not scale (plstm.md
     * section 1.2). DK is q's next-to-last axis. */
    const ir_shape *qs = &c->m->tensors[op->in[0]].shape;
    double dk = (double)qs->d[qs->rank - 2];
    op->qk_scale = !isnan(qk_scale) ? qk_scale : c->kind == IR_GRAPH_DAG ? 1.0 : 1.0 / sqrt(dk);
  }
  return XY_OK;
}

/* memory_scan runs along the sequence graph: q [B, L, H, DK]. Its schedule (the key
 * "schedule") becomes the op's attributes; W_init is given exactly when the schedule's init
 * is 'param'. */
static int read_memory(spec_ctx *c, const json_t *l, const char *lp, int oi)
{
  ir_op *op = &c->m->ops[oi];
  char ip[FE_PATH_MAX], p[FE_PATH_MAX];
  fe_path_key(ip, lp, "inputs");
  if (c->kind != IR_GRAPH_SEQUENCE)
    return FAIL(c, XY_E_SPEC, lp, "memory_scan '%s' runs along a sequence graph, not a %s "
                "graph", op->name, kind_names[c->kind]);
  const ir_shape *q = &c->m->tensors[op->in[ir_op_in_slot(op->code, "q")]].shape;
  if (q->rank != 4) {
    fe_path_key(p, ip, "q");
    return FAIL(c, XY_E_SHAPE, p, "memory_scan '%s': q must have rank 4 [B, L, H, DK], not %d",
                op->name, q->rank);
  }
  const json_t *sched = json_object_get(l, "schedule");
  if (!sched)
    return FAIL(c, XY_E_SPEC, lp, "missing required key 'schedule' (the memory's schedule: "
                "at least {\"chunk\": N})");
  fe_path_key(p, lp, "schedule");
  fe_layer_ctx fc = {.src = &c->src, .err = c->err, .m = c->m, .kind = c->kind};
  fe_memory_info info;
  int rc = fe_read_memory_schedule(&fc, sched, p, q->d[3], &op->attr.memory, &info);
  if (rc)
    return rc;
  int w = ir_op_in_slot(op->code, "W_init");
  if (info.init_zero && op->in[w] >= 0) {
    fe_path_key(p, ip, "W_init");
    return FAIL(c, XY_E_SPEC, p, "W_init is given, but the schedule's init is 'zero' (the "
                "memory starts from zeros): leave W_init out, or set init 'param'");
  }
  if (!info.init_zero && op->in[w] < 0)
    return FAIL(c, XY_E_SPEC, ip, "missing input slot 'W_init': the schedule's init is 'param' "
                "(the default), so the initial weights [H, NW] are an input; or set init "
                "'zero'");
  return XY_OK;
}

static int read_layer(spec_ctx *c, const json_t *l, size_t i)
{
  char lp[FE_PATH_MAX], p[FE_PATH_MAX];
  fe_path_index(lp, "layers", (int64_t)i);
  if (!json_is_object(l))
    return FAIL(c, XY_E_SPEC, lp, "a layer is an object {\"op\": ..., ...}, not %s",
                fe_json_kind(l));
  const char *opname;
  ir_opcode code = IR_OP_COUNT;
  fe_path_key(p, lp, "op");
  int rc = get_string(c, l, lp, "op", true, &opname);
  if (rc)
    return rc;
  if (fe_is_layer(opname)) {
    char name[FE_NAME_MAX + 32];
    if ((rc = layer_name(c, l, lp, opname, i, name, sizeof name)))
      return rc;
    fe_layer_ctx fc = {.src = &c->src, .err = c->err, .m = c->m, .kind = c->kind};
    return fe_expand_layer(&fc, l, lp, opname, name);
  }
  if ((rc = find_op(c, opname, p, &code)))
    return rc;
  size_t n_attrs;
  const char *const *attrs = op_attrs(code, &n_attrs);
  const char *keys[4 + 8] = {"op", "name", "inputs", "outputs"};
  size_t n_keys = 4;
  for (size_t k = 0; k < n_attrs && n_keys < XY_ARRAY_LEN(keys); k++)
    keys[n_keys++] = attrs[k];
  if ((rc = fe_check_keys(c->err, XY_E_SPEC, &c->src, l, lp, keys, n_keys)))
    return rc;
  char name[FE_NAME_MAX + 32];
  if ((rc = layer_name(c, l, lp, opname, i, name, sizeof name)))
    return rc;
  double qk_scale = NAN;
  if ((ir_op_info_of(code)->flags & IR_OPF_SCAN) && (rc = read_qk_scale(c, l, lp, &qk_scale)))
    return rc;
  int oi = ir_add_op(c->m, code, name);
  if (oi < 0 || !set_pos(c, &c->m->ops[oi].pos, lp))
    return nomem(c);
  c->m->ops[oi].graph = 0;
  if ((rc = read_layer_inputs(c, l, lp, oi)) ||
      (code == IR_OP_MEMORY_SCAN && (rc = read_memory(c, l, lp, oi))) ||
      (rc = read_layer_outputs(c, l, lp, oi)))
    return rc;
  return finish_layer(c, lp, oi, qk_scale);
}

static int read_layers(spec_ctx *c, const json_t *root)
{
  json_t *list;
  int rc = get_typed(c, root, "", "layers", true, JSON_ARRAY, "an array", &list);
  if (rc)
    return rc;
  if (json_array_size(list) == 0)
    return FAIL(c, XY_E_SPEC, "layers", "the model has no layers");
  if (json_array_size(list) > FE_MAX_LAYERS)
    return FAIL(c, XY_E_LIMIT, "layers", "%zu layers are more than the limit of %d",
                json_array_size(list), FE_MAX_LAYERS);
  for (size_t i = 0; !rc && i < json_array_size(list); i++)
    rc = read_layer(c, json_array_get(list, i), i);
  return rc;
}

/* ------------------------------------------------------------------ outputs */

static int read_outputs(spec_ctx *c, const json_t *root)
{
  json_t *list;
  int rc = get_typed(c, root, "", "outputs", true, JSON_ARRAY, "an array", &list);
  if (rc)
    return rc;
  if (json_array_size(list) == 0)
    return FAIL(c, XY_E_SPEC, "outputs", "the model has no outputs; list at least one tensor");
  for (size_t i = 0; i < json_array_size(list); i++) {
    char p[FE_PATH_MAX];
    fe_path_index(p, "outputs", (int64_t)i);
    json_t *v = json_array_get(list, i);
    if (!json_is_string(v))
      return FAIL(c, XY_E_SPEC, p, "must be a tensor name (a string), not %s", fe_json_kind(v));
    const char *name = json_string_value(v);
    int t = ir_find_tensor(c->m, name);
    if (t < 0)
      return FAIL(c, XY_E_SPEC, p, "unknown tensor '%.64s'", name);
    if (c->m->tensors[t].role != IR_VALUE)
      return FAIL(c, XY_E_SPEC, p, "'%s' is a model input; outputs must be produced by a layer",
                  name);
    if (c->m->tensors[t].is_output)
      return FAIL(c, XY_E_SPEC, p, "'%s' is listed twice", name);
    if (!ir_mark_output(c->m, t))
      return nomem(c);
  }
  return XY_OK;
}

/* ir_verify's messages name the op ("plstm_scan 'scan': ...") or the tensor ("tensor 'S':
 * ...") they are about: point at its declaration. */
static int verify(spec_ctx *c)
{
  xy_error e;
  int rc = ir_verify(c->m, &e);
  if (!rc)
    return XY_OK;
  const char *where = "";
  char quoted[FE_NAME_MAX + 40];
  for (int i = 0; i < c->m->n_tensors; i++) {
    snprintf(quoted, sizeof quoted, "tensor '%s'", c->m->tensors[i].name);
    if (strstr(e.message, quoted) && c->m->tensors[i].pos.json_path)
      where = c->m->tensors[i].pos.json_path;
  }
  for (int i = 0; i < c->m->n_ops; i++) {
    snprintf(quoted, sizeof quoted, "'%s'", c->m->ops[i].name);
    if (strstr(e.message, quoted) && c->m->ops[i].pos.json_path)
      where = c->m->ops[i].pos.json_path;
  }
  return FAIL(c, rc, where, "%s", e.message);
}

static int build(spec_ctx *c, const json_t *root)
{
  if (!json_is_object(root))
    return FAIL(c, XY_E_SPEC, "", "a spec is a JSON object, not %s", fe_json_kind(root));
  int rc;
  if ((rc = read_header(c, root)) || (rc = read_graph(c, root)) || (rc = read_inputs(c, root)) ||
      (rc = read_layers(c, root)) || (rc = read_outputs(c, root)))
    return rc;
  return verify(c);
}

int fe_load_spec(const char *path, const xy_load_options *opt, ir_module **out, xy_error *err)
{
  *out = NULL;
  xy_load_options defaults;
  if (!opt) {
    xy_load_options_default(&defaults);
    opt = &defaults;
  }
  if (!path)
    return xy_fail(err, XY_E_USAGE, "no spec file given");
  if (opt->n_overrides && !opt->overrides)
    return xy_fail(err, XY_E_USAGE, "%s: overrides counted but not given", path);
  char *text;
  size_t len;
  int rc = xy_read_file(path, opt->limits.max_file_bytes, &text, &len, err);
  if (rc)
    return rc;
  json_t *root = NULL;
  fe_changes changes;
  memset(&changes, 0, sizeof changes);
  fe_pos_cache cache;
  memset(&cache, 0, sizeof cache);
  spec_ctx c = {
    .src = {.file = path, .text = text, .changes = &changes, .cache = &cache},
    .spec_path = path,
    .lim = &opt->limits,
    .err = err,
  };
  rc = fe_parse_json(path, text, len, &root, err);
  /* The stage first, so that --set can still change what it set. */
  if (!rc && opt->stage)
    rc = fe_apply_stage(root, &c.src, opt->stage, &changes, err);
  if (!rc)
    rc = fe_apply_overrides(root, path, opt->overrides, opt->n_overrides, &changes, err);
  if (!rc)
    rc = build(&c, root);
  json_decref(root);
  fe_changes_free(&changes);
  free(text);
  if (rc) {
    ir_module_free(c.m);
    return rc;
  }
  *out = c.m;
  return XY_OK;
}
