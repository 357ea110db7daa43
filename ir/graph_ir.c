#include "graph_ir.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ op table */

typedef struct op_row {
  const char *name, *ins, *outs;
  unsigned flags;
} op_row;

static const op_row op_rows[IR_OP_COUNT] = {
#define X(id, name, ins, outs, flags) {name, ins, outs, flags},
#include "ops.def"
#undef X
};

static ir_op_info op_infos[IR_OP_COUNT];
static bool op_infos_ready;

/* Splits "a b? c" into slot names; the storage is static, built once. */
static int split_slots(const char *list, const char **names, bool *optional, char *store,
                       size_t store_len)
{
  int n = 0;
  size_t used = 0;
  const char *p = list;
  while (*p && n < IR_MAX_SLOTS) {
    while (*p == ' ')
      p++;
    if (!*p)
      break;
    const char *start = p;
    while (*p && *p != ' ')
      p++;
    size_t len = (size_t)(p - start);
    bool opt = len > 0 && start[len - 1] == '?';
    if (opt)
      len--;
    if (used + len + 1 > store_len)
      break;
    memcpy(store + used, start, len);
    store[used + len] = '\0';
    names[n] = store + used;
    optional[n] = opt;
    used += len + 1;
    n++;
  }
  return n;
}

static void build_op_infos(void)
{
  static char store[IR_OP_COUNT][2][256];
  for (int i = 0; i < IR_OP_COUNT; i++) {
    ir_op_info *info = &op_infos[i];
    info->name = op_rows[i].name;
    info->flags = op_rows[i].flags;
    info->n_in = split_slots(op_rows[i].ins, info->in_names, info->in_optional, store[i][0],
                             sizeof store[i][0]);
    info->n_out = split_slots(op_rows[i].outs, info->out_names, info->out_optional,
                              store[i][1], sizeof store[i][1]);
  }
  op_infos_ready = true;
}

const ir_op_info *ir_op_info_of(ir_opcode code)
{
  if (!op_infos_ready)
    build_op_infos();
  if ((int)code < 0 || code >= IR_OP_COUNT)
    return NULL;
  return &op_infos[code];
}

int ir_op_in_slot(ir_opcode code, const char *name)
{
  const ir_op_info *info = ir_op_info_of(code);
  for (int i = 0; info && i < info->n_in; i++)
    if (strcmp(info->in_names[i], name) == 0)
      return i;
  return -1;
}

int ir_op_out_slot(ir_opcode code, const char *name)
{
  const ir_op_info *info = ir_op_info_of(code);
  for (int i = 0; info && i < info->n_out; i++)
    if (strcmp(info->out_names[i], name) == 0)
      return i;
  return -1;
}

static const char *const form_names[IR_FORM_COUNT] = {
  [IR_FORM_AUTO] = "auto",
  [IR_FORM_RECURRENT] = "recurrent",
  [IR_FORM_CHUNKWISE] = "chunkwise",
  [IR_FORM_LEVELS] = "levels",
  [IR_FORM_GRAPH] = "graph",
  [IR_FORM_TILED] = "tiled",
  [IR_FORM_SINGLE] = "single",
  [IR_FORM_DENSE] = "dense",
};

const char *ir_form_name(ir_form f)
{
  return (int)f >= 0 && f < IR_FORM_COUNT ? form_names[f] : "?";
}

ir_form ir_form_from_name(const char *name)
{
  for (int i = 0; i < IR_FORM_COUNT; i++)
    if (strcmp(form_names[i], name) == 0)
      return (ir_form)i;
  return IR_FORM_COUNT;
}

/* ------------------------------------------------------------------ module */

ir_module *ir_module_new(const char *name)
{
  ir_module *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->name = xy_strdup(name ? name : "model");
  if (!m->name) {
    free(m);
    return NULL;
  }
  m->batch = 1;
  return m;
}

void ir_dag_free(ir_dag *d)
{
  free(d->node_start);
  free(d->edge_start);
  free(d->arc_start);
  free(d->tail);
  free(d->head);
  free(d->arc_src);
  free(d->arc_dst);
  free(d->out_slot);
  free(d->in_slot);
  free(d->node_feat);
  free(d->edge_feat);
  free(d->edge_order);
  free(d->arcs_given);
  memset(d, 0, sizeof *d);
}

void ir_dag_prep_free(ir_dag_prep *p)
{
  free(p->level);
  free(p->graph_levels);
  free(p->topo);
  free(p->level_start);
  free(p->in_start);
  free(p->in_edges);
  free(p->out_start);
  free(p->out_edges);
  free(p->arc_in_start);
  free(p->arcs_in);
  memset(p, 0, sizeof *p);
}

void ir_module_free(ir_module *m)
{
  if (!m)
    return;
  for (int i = 0; i < m->n_tensors; i++) {
    free(m->tensors[i].name);
    free(m->tensors[i].pos.json_path);
  }
  for (int i = 0; i < m->n_ops; i++) {
    free(m->ops[i].name);
    free(m->ops[i].pos.json_path);
  }
  for (int i = 0; i < m->n_graphs; i++) {
    ir_dag_free(&m->graphs[i].dag);
    ir_dag_prep_free(&m->graphs[i].prep);
    free(m->graphs[i].file);
  }
  for (int i = 0; i < m->n_weight_prefixes; i++)
    free(m->weight_prefixes[i]);
  free(m->weight_prefixes);
  free(m->tensors);
  free(m->ops);
  free(m->graphs);
  free(m->inputs);
  free(m->outputs);
  free(m->name);
  free(m->spec_path);
  free(m);
}

int ir_add_tensor(ir_module *m, const char *name, const ir_shape *shape, xy_dtype dtype,
                  ir_tensor_role role)
{
  if (!xy_grow((void **)&m->tensors, &m->cap_tensors, (size_t)m->n_tensors + 1,
               sizeof *m->tensors))
    return -1;
  ir_tensor *t = &m->tensors[m->n_tensors];
  memset(t, 0, sizeof *t);
  t->name = xy_strdup(name);
  if (!t->name)
    return -1;
  t->shape = *shape;
  t->dtype = dtype;
  t->role = role;
  t->lo = -1.0;
  t->hi = 1.0;
  t->producer = -1;
  return m->n_tensors++;
}

int ir_add_graph(ir_module *m, ir_graph_kind kind)
{
  if (!xy_grow((void **)&m->graphs, &m->cap_graphs, (size_t)m->n_graphs + 1,
               sizeof *m->graphs))
    return -1;
  ir_graph *g = &m->graphs[m->n_graphs];
  memset(g, 0, sizeof *g);
  g->kind = kind;
  g->origin = m->n_graphs; /* a graph of its own until a variant says otherwise */
  return m->n_graphs++;
}

int ir_add_op(ir_module *m, ir_opcode code, const char *name)
{
  if (!xy_grow((void **)&m->ops, &m->cap_ops, (size_t)m->n_ops + 1, sizeof *m->ops))
    return -1;
  ir_op *op = &m->ops[m->n_ops];
  memset(op, 0, sizeof *op);
  op->code = code;
  op->name = xy_strdup(name ? name : ir_op_info_of(code)->name);
  if (!op->name)
    return -1;
  for (int i = 0; i < IR_MAX_SLOTS; i++)
    op->in[i] = op->out[i] = -1;
  op->graph = -1;
  return m->n_ops++;
}

static bool push_id(int **arr, int *n, size_t *cap, int id)
{
  for (int i = 0; i < *n; i++)
    if ((*arr)[i] == id)
      return true;
  if (!xy_grow((void **)arr, cap, (size_t)*n + 1, sizeof **arr))
    return false;
  (*arr)[(*n)++] = id;
  return true;
}

bool ir_mark_input(ir_module *m, int tensor)
{
  return push_id(&m->inputs, &m->n_inputs, &m->cap_inputs, tensor);
}

bool ir_mark_output(ir_module *m, int tensor)
{
  m->tensors[tensor].is_output = true;
  return push_id(&m->outputs, &m->n_outputs, &m->cap_outputs, tensor);
}

bool ir_add_weight_prefix(ir_module *m, const char *prefix)
{
  if (!xy_grow((void **)&m->weight_prefixes, &m->cap_weight_prefixes,
               (size_t)m->n_weight_prefixes + 1, sizeof *m->weight_prefixes))
    return false;
  char *p = xy_strdup(prefix);
  if (!p)
    return false;
  m->weight_prefixes[m->n_weight_prefixes++] = p;
  return true;
}

int ir_find_tensor(const ir_module *m, const char *name)
{
  for (int i = 0; i < m->n_tensors; i++)
    if (strcmp(m->tensors[i].name, name) == 0)
      return i;
  return -1;
}

bool ir_set_pos(ir_srcpos *pos, int line, int col, const char *json_path)
{
  pos->line = line;
  pos->col = col;
  free(pos->json_path);
  pos->json_path = json_path ? xy_strdup(json_path) : NULL;
  return !json_path || pos->json_path;
}

/* ------------------------------------------------------------------ shapes */

int64_t ir_shape_count(const ir_shape *s)
{
  int64_t n;
  return xy_product_i64(s->d, s->rank, &n) ? n : -1;
}

void ir_shape_print(const ir_shape *s, xy_buf *out)
{
  xy_buf_putc(out, '[');
  for (int i = 0; i < s->rank; i++)
    xy_buf_printf(out, i ? ",%lld" : "%lld", (long long)s->d[i]);
  xy_buf_putc(out, ']');
}

int ir_shape_expect(const ir_op *op, const char *slot, const ir_shape *got, int rank,
                    const int64_t *want, const char *why, xy_error *err)
{
  ir_shape w = ir_shape_make(rank, want);
  if (ir_shape_equal(got, &w))
    return XY_OK;
  xy_buf b;
  xy_buf_init(&b);
  xy_buf_printf(&b, "has shape ");
  ir_shape_print(got, &b);
  xy_buf_printf(&b, ", expected ");
  ir_shape_print(&w, &b);
  char *txt = xy_buf_take(&b);
  int rc = xy_fail(err, XY_E_SHAPE, "%s '%s': %s %s (%s)", ir_op_info_of(op->code)->name,
                   op->name, slot, txt ? txt : "has the wrong shape", why);
  free(txt);
  return rc;
}

bool ir_shape_equal(const ir_shape *a, const ir_shape *b)
{
  if (a->rank != b->rank)
    return false;
  for (int i = 0; i < a->rank; i++)
    if (a->d[i] != b->d[i])
      return false;
  return true;
}

ir_shape ir_shape_make(int rank, const int64_t *d)
{
  ir_shape s;
  memset(&s, 0, sizeof s);
  s.rank = rank;
  for (int i = 0; i < rank; i++)
    s.d[i] = d[i];
  return s;
}

const char *ir_dtype_name(xy_dtype t)
{
  switch (t) {
  case XY_F32: return "f32";
  case XY_F64: return "f64";
  case XY_I32: return "i32";
  case XY_I64: return "i64";
  case XY_F16: return "f16";
  case XY_BF16: return "bf16";
  }
  return "?";
}

/* ------------------------------------------------------------------ clone */

static bool dup_ids(int64_t **dst, const int64_t *src, int64_t n)
{
  *dst = NULL;
  if (!src)
    return true;
  *dst = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  if (!*dst)
    return false;
  if (n > 0)
    memcpy(*dst, src, sizeof(int64_t) * (size_t)n);
  return true;
}

static bool dup_str(char **dst, const char *src)
{
  *dst = src ? xy_strdup(src) : NULL;
  return !src || *dst;
}

/* n doubles (NULL stays NULL); the counts were checked when the features were read. */
static bool dup_doubles(double **dst, const double *src, int64_t n)
{
  *dst = NULL;
  if (!src)
    return true;
  *dst = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  if (!*dst)
    return false;
  if (n > 0)
    memcpy(*dst, src, sizeof(double) * (size_t)n);
  return true;
}

/* n flags (NULL stays NULL). */
static bool dup_flags(bool **dst, const bool *src, int64_t n)
{
  *dst = NULL;
  if (!src)
    return true;
  *dst = malloc(sizeof(bool) * (size_t)(n > 0 ? n : 1));
  if (!*dst)
    return false;
  if (n > 0)
    memcpy(*dst, src, sizeof(bool) * (size_t)n);
  return true;
}

static bool clone_dag(ir_dag *dst, const ir_dag *src)
{
  memset(dst, 0, sizeof *dst);
  dst->n_graphs = src->n_graphs;
  dst->n_nodes = src->n_nodes;
  dst->n_edges = src->n_edges;
  dst->n_arcs = src->n_arcs;
  dst->node_feat_dim = src->node_feat_dim;
  dst->edge_feat_dim = src->edge_feat_dim;
  int64_t g = src->n_graphs + 1;
  return dup_ids(&dst->node_start, src->node_start, g) &&
         dup_ids(&dst->edge_start, src->edge_start, g) &&
         dup_ids(&dst->arc_start, src->arc_start, g) &&
         dup_ids(&dst->tail, src->tail, src->n_edges) &&
         dup_ids(&dst->head, src->head, src->n_edges) &&
         dup_ids(&dst->arc_src, src->arc_src, src->n_arcs) &&
         dup_ids(&dst->arc_dst, src->arc_dst, src->n_arcs) &&
         dup_ids(&dst->out_slot, src->out_slot, src->n_edges) &&
         dup_ids(&dst->in_slot, src->in_slot, src->n_edges) &&
         dup_doubles(&dst->node_feat, src->node_feat, src->n_nodes * src->node_feat_dim) &&
         dup_doubles(&dst->edge_feat, src->edge_feat, src->n_edges * src->edge_feat_dim) &&
         dup_ids(&dst->edge_order, src->edge_order, src->n_edges) &&
         dup_flags(&dst->arcs_given, src->arcs_given, src->n_graphs);
}

static bool clone_prep(ir_dag_prep *dst, const ir_dag_prep *src, const ir_dag *d)
{
  memset(dst, 0, sizeof *dst);
  dst->max_levels = src->max_levels;
  return dup_ids(&dst->level, src->level, d->n_nodes) &&
         dup_ids(&dst->graph_levels, src->graph_levels, d->n_graphs) &&
         dup_ids(&dst->topo, src->topo, d->n_nodes) &&
         dup_ids(&dst->level_start, src->level_start, src->max_levels + 1) &&
         dup_ids(&dst->in_start, src->in_start, d->n_nodes + 1) &&
         dup_ids(&dst->in_edges, src->in_edges, d->n_edges) &&
         dup_ids(&dst->out_start, src->out_start, d->n_nodes + 1) &&
         dup_ids(&dst->out_edges, src->out_edges, d->n_edges) &&
         dup_ids(&dst->arc_in_start, src->arc_in_start, d->n_edges + 1) &&
         dup_ids(&dst->arcs_in, src->arcs_in, d->n_arcs);
}

ir_module *ir_module_clone(const ir_module *m)
{
  ir_module *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->batch = m->batch;
  bool ok = dup_str(&c->name, m->name) && dup_str(&c->spec_path, m->spec_path);
  c->tensors = calloc((size_t)m->n_tensors + 1, sizeof *c->tensors);
  c->ops = calloc((size_t)m->n_ops + 1, sizeof *c->ops);
  c->graphs = calloc((size_t)m->n_graphs + 1, sizeof *c->graphs);
  c->inputs = calloc((size_t)m->n_inputs + 1, sizeof *c->inputs);
  c->outputs = calloc((size_t)m->n_outputs + 1, sizeof *c->outputs);
  if (!ok || !c->tensors || !c->ops || !c->graphs || !c->inputs || !c->outputs) {
    ir_module_free(c);
    return NULL;
  }
  c->cap_tensors = (size_t)m->n_tensors + 1;
  c->cap_ops = (size_t)m->n_ops + 1;
  c->cap_graphs = (size_t)m->n_graphs + 1;
  c->cap_inputs = (size_t)m->n_inputs + 1;
  c->cap_outputs = (size_t)m->n_outputs + 1;
  for (int i = 0; i < m->n_tensors; i++, c->n_tensors++) {
    c->tensors[i] = m->tensors[i];
    c->tensors[i].name = NULL;
    c->tensors[i].pos.json_path = NULL;
    if (!dup_str(&c->tensors[i].name, m->tensors[i].name) ||
        !dup_str(&c->tensors[i].pos.json_path, m->tensors[i].pos.json_path))
      ok = false;
  }
  for (int i = 0; i < m->n_ops; i++, c->n_ops++) {
    c->ops[i] = m->ops[i];
    c->ops[i].name = NULL;
    c->ops[i].pos.json_path = NULL;
    if (!dup_str(&c->ops[i].name, m->ops[i].name) ||
        !dup_str(&c->ops[i].pos.json_path, m->ops[i].pos.json_path))
      ok = false;
  }
  for (int i = 0; i < m->n_graphs; i++, c->n_graphs++) {
    const ir_graph *g = &m->graphs[i];
    ir_graph *h = &c->graphs[i];
    *h = *g;
    memset(&h->dag, 0, sizeof h->dag);
    memset(&h->prep, 0, sizeof h->prep);
    h->file = NULL;
    if (!dup_str(&h->file, g->file) || (g->kind == IR_GRAPH_DAG && !clone_dag(&h->dag, &g->dag)) ||
        (g->prepared && !clone_prep(&h->prep, &g->prep, &g->dag)))
      ok = false;
  }
  memcpy(c->inputs, m->inputs, sizeof *c->inputs * (size_t)m->n_inputs);
  c->n_inputs = m->n_inputs;
  memcpy(c->outputs, m->outputs, sizeof *c->outputs * (size_t)m->n_outputs);
  c->n_outputs = m->n_outputs;
  for (int i = 0; i < m->n_weight_prefixes; i++)
    if (!ir_add_weight_prefix(c, m->weight_prefixes[i]))
      ok = false;
  if (!ok) {
    ir_module_free(c);
    return NULL;
  }
  return c;
}
