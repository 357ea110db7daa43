/*
 * layer_build.c: see layer_build.h. What layers.c (plstm2d, plstm1d) and layer_memory.c
 * (memory) share.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_build.h"

int lb_nomem(fe_lb *lb)
{
  return xy_fail(lb->fc->err, XY_E_NOMEM, "out of memory expanding layer '%s'", lb->name);
}

/* ------------------------------------------------------------------ reading options */

int lb_opt_member(fe_lb *lb, const json_t *obj, const char *path, const char *key, json_type t,
                  const char *kind, json_t **out, char *p)
{
  fe_path_key(p, path, key);
  *out = json_object_get(obj, key);
  if (!*out)
    return XY_OK;
  bool ok = json_typeof(*out) == t || (t == JSON_REAL && json_is_integer(*out)) ||
            (t == JSON_TRUE && json_is_boolean(*out));
  return ok ? XY_OK : LB_FAIL(lb, XY_E_SPEC, p, "must be %s, not %s", kind, fe_json_kind(*out));
}

int lb_opt_bool(fe_lb *lb, const json_t *obj, const char *path, const char *key, bool *out)
{
  json_t *v;
  char p[FE_PATH_MAX];
  int rc = lb_opt_member(lb, obj, path, key, JSON_TRUE, "true or false", &v, p);
  if (!rc && v)
    *out = json_is_true(v);
  return rc;
}

int lb_opt_int(fe_lb *lb, const json_t *obj, const char *path, const char *key, int64_t min,
               int64_t *out)
{
  json_t *v;
  char p[FE_PATH_MAX];
  int rc = lb_opt_member(lb, obj, path, key, JSON_INTEGER, "an integer", &v, p);
  if (rc || !v)
    return rc;
  if (json_integer_value(v) < min || json_integer_value(v) > (json_int_t)1 << 24)
    return LB_FAIL(lb, XY_E_SPEC, p, "must be in %lld..%d, not %lld", (long long)min, 1 << 24,
                   (long long)json_integer_value(v));
  *out = (int64_t)json_integer_value(v);
  return XY_OK;
}

int lb_opt_num(fe_lb *lb, const json_t *obj, const char *path, const char *key, double *out)
{
  json_t *v;
  char p[FE_PATH_MAX];
  int rc = lb_opt_member(lb, obj, path, key, JSON_REAL, "a number", &v, p);
  if (rc || !v)
    return rc;
  if (!isfinite(json_number_value(v)))
    return LB_FAIL(lb, XY_E_SPEC, p, "must be finite");
  *out = json_number_value(v);
  return XY_OK;
}

int lb_opt_enum(fe_lb *lb, const json_t *obj, const char *path, const char *key,
                const char *const *names, int n, int *out)
{
  json_t *v;
  char p[FE_PATH_MAX];
  int rc = lb_opt_member(lb, obj, path, key, JSON_STRING, "a string", &v, p);
  if (rc || !v)
    return rc;
  for (int i = 0; i < n; i++)
    if (strcmp(json_string_value(v), names[i]) == 0) {
      *out = i;
      return XY_OK;
    }
  char list[256] = "";
  for (int i = 0; i < n; i++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'", i ? ", " : "", names[i]);
  return LB_FAIL(lb, XY_E_SPEC, p, "'%.64s' is not one of %s", json_string_value(v), list);
}

int lb_read_norm(fe_lb *lb, bool with_scale, bool *on, double *eps, bool *scale)
{
  json_t *v = json_object_get(lb->l, "norm");
  char p[FE_PATH_MAX];
  fe_path_key(p, lb->lp, "norm");
  if (!v)
    return XY_OK;
  if (json_is_boolean(v)) {
    *on = json_is_true(v);
    return XY_OK;
  }
  if (!json_is_object(v))
    return LB_FAIL(lb, XY_E_SPEC, p, "must be true, false or {\"eps\": ...%s}",
                   with_scale ? ", \"scale\": ..." : "");
  static const char *const keys[] = {"eps", "scale"};
  int rc;
  if ((rc = fe_check_keys(lb->fc->err, XY_E_SPEC, lb->fc->src, v, p, keys, with_scale ? 2 : 1)) ||
      (rc = lb_opt_num(lb, v, p, "eps", eps)) ||
      (with_scale && (rc = lb_opt_bool(lb, v, p, "scale", scale))))
    return rc;
  if (!(*eps > 0))
    return LB_FAIL(lb, XY_E_SPEC, p, "eps must be positive");
  *on = true;
  return XY_OK;
}

/* ------------------------------------------------------------------ building ops */

static bool lb_set_pos(fe_lb *lb, ir_srcpos *pos)
{
  int line, col;
  fe_src_pos(lb->fc->src, lb->lp, &line, &col);
  return ir_set_pos(pos, line, col, lb->lp);
}

int lb_weight(fe_lb *lb, const char *ref, int rank, const int64_t *shape, double lo, double hi,
              int *id)
{
  char name[512];
  snprintf(name, sizeof name, "%s%s", lb->prefix, ref);
  if (ir_find_tensor(lb->fc->m, name) >= 0)
    return LB_FAIL(lb, XY_E_SPEC, lb->lp,
                   "weight '%s' is already used by another layer (give the layers different "
                   "\"weights\" prefixes)", name);
  ir_shape s = ir_shape_make(rank, shape);
  if (ir_shape_count(&s) < 0)
    return LB_FAIL(lb, XY_E_LIMIT, lb->lp, "weight '%s' has too many elements", name);
  int t = ir_add_tensor(lb->fc->m, name, &s, XY_F32, IR_WEIGHT);
  if (t < 0 || !ir_mark_input(lb->fc->m, t) || !lb_set_pos(lb, &lb->fc->m->tensors[t].pos))
    return lb_nomem(lb);
  lb->fc->m->tensors[t].lo = lo;
  lb->fc->m->tensors[t].hi = hi;
  *id = t;
  return XY_OK;
}

int lb_op_begin(fe_lb *lb, ir_opcode code, const char *what, const int *ins, int n, int *oi)
{
  char name[512];
  snprintf(name, sizeof name, "%s.%s", lb->name, what);
  int i = ir_add_op(lb->fc->m, code, name);
  if (i < 0 || !lb_set_pos(lb, &lb->fc->m->ops[i].pos))
    return lb_nomem(lb);
  for (int s = 0; s < n; s++)
    lb->fc->m->ops[i].in[s] = ins[s];
  lb->fc->m->ops[i].graph = 0;
  *oi = i;
  return XY_OK;
}

int lb_op_end(fe_lb *lb, int oi, const char *what, bool final, int *out)
{
  ir_module *m = lb->fc->m;
  int t = final ? lb->out_id : -1;
  if (t < 0) {
    char name[512];
    snprintf(name, sizeof name, "%s.%s", lb->name, what);
    ir_shape none = ir_shape_make(0, NULL);
    t = ir_add_tensor(m, name, &none, XY_F32, IR_VALUE);
    if (t < 0 || !lb_set_pos(lb, &m->tensors[t].pos))
      return lb_nomem(lb);
  }
  m->tensors[t].producer = oi;
  m->ops[oi].out[0] = t;
  xy_error e;
  int rc = ir_infer_shapes(m, &m->ops[oi], &e);
  if (rc)
    return LB_FAIL(lb, rc, lb->lp, "%s", e.message);
  *out = t;
  return XY_OK;
}

int lb_reshape(fe_lb *lb, const char *what, int x, int rank, const int64_t *dims, int *out)
{
  int oi, rc;
  if ((rc = lb_op_begin(lb, IR_OP_RESHAPE, what, &x, 1, &oi)))
    return rc;
  lb->fc->m->ops[oi].attr.reshape = ir_shape_make(rank, dims);
  return lb_op_end(lb, oi, what, false, out);
}

int lb_transpose(fe_lb *lb, const char *what, int x, int rank, const int64_t *view,
                 const int *perm, int *out)
{
  int oi, rc;
  if ((rc = lb_op_begin(lb, IR_OP_TRANSPOSE, what, &x, 1, &oi)))
    return rc;
  ir_transpose_attrs *a = &lb->fc->m->ops[oi].attr.transpose;
  a->view = ir_shape_make(rank, view);
  for (int i = 0; i < rank; i++)
    a->perm[i] = perm[i];
  return lb_op_end(lb, oi, what, false, out);
}

int lb_activation(fe_lb *lb, const char *what, int x, ir_act_kind kind, double p, int *out)
{
  int oi, rc;
  if ((rc = lb_op_begin(lb, IR_OP_ACTIVATION, what, &x, 1, &oi)))
    return rc;
  lb->fc->m->ops[oi].attr.act = (ir_act_attrs){kind, p};
  return lb_op_end(lb, oi, what, false, out);
}

int lb_binary(fe_lb *lb, const char *what, int a, int b, ir_binary_kind kind, bool final,
              int *out)
{
  int oi, rc;
  int ins[] = {a, b};
  if ((rc = lb_op_begin(lb, IR_OP_BINARY, what, ins, 2, &oi)))
    return rc;
  lb->fc->m->ops[oi].attr.binary = kind;
  return lb_op_end(lb, oi, what, final, out);
}

int lb_linear(fe_lb *lb, const char *what, int x, int w, int b, int64_t groups,
              int64_t subheads, int64_t features, ir_weight_order order, double scale,
              bool final, int *out)
{
  int oi, rc;
  int ins[] = {x, w, b};
  if ((rc = lb_op_begin(lb, IR_OP_LINEAR, what, ins, 3, &oi)))
    return rc;
  lb->fc->m->ops[oi].attr.linear = (ir_linear_attrs){groups, subheads, features, order, scale};
  return lb_op_end(lb, oi, what, final, out);
}

int lb_norm(fe_lb *lb, const char *what, int x, int scale, ir_norm_attrs a, bool final,
            int *out)
{
  int oi, rc;
  int ins[] = {x, scale};
  if ((rc = lb_op_begin(lb, IR_OP_RMSNORM_HEADS, what, ins, 2, &oi)))
    return rc;
  lb->fc->m->ops[oi].attr.norm = a;
  return lb_op_end(lb, oi, what, final, out);
}

/* ------------------------------------------------------------------ the layer's frame */

int lb_open(fe_lb *lb, fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
            const char *name, bool grid)
{
  return lb_open_kind(lb, fc, l, lp, op, name, grid ? IR_GRAPH_GRID2D : IR_GRAPH_SEQUENCE);
}

int lb_open_kind(fe_lb *lb, fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
                 const char *name, ir_graph_kind kind)
{
  static const char *const kinds[] = {"sequence", "grid2d", "dag"};
  static const char *const axes[] = {"length", "rows, cols", "nodes"};
  bool grid = kind == IR_GRAPH_GRID2D;
  *lb = (fe_lb){.fc = fc, .l = l, .lp = lp, .name = name, .prefix = "", .x = -1, .out_id = -1};
  char p[FE_PATH_MAX];
  ir_module *m = fc->m;
  size_t nl = strlen(name);
  for (int i = 0; i < m->n_ops; i++) /* ops of an earlier layer of this name: "name.q" */
    if (strncmp(m->ops[i].name, name, nl) == 0 && m->ops[i].name[nl] == '.')
      return LB_FAIL(lb, XY_E_SPEC, lp, "duplicate layer name '%s' (already used by %s)", name,
                     m->ops[i].pos.json_path ? m->ops[i].pos.json_path : "?");
  if (fc->kind != kind)
    return LB_FAIL(lb, XY_E_SPEC, lp, "a %s layer runs over a %s graph, not this one", op,
                   kinds[kind]);
  json_t *in = json_object_get(l, "input"), *out = json_object_get(l, "output");
  fe_path_key(p, lp, "input");
  if (!in || !json_is_string(in))
    return LB_FAIL(lb, XY_E_SPEC, in ? p : lp, "%s needs \"input\": the name of a tensor", op);
  lb->x = ir_find_tensor(m, json_string_value(in));
  if (lb->x < 0)
    return LB_FAIL(lb, XY_E_SPEC, p, "unknown tensor '%.64s'", json_string_value(in));
  const ir_shape *xs = &m->tensors[lb->x].shape;
  int want = grid ? 4 : 3;
  if (xs->rank != want || xs->d[0] != m->batch)
    return LB_FAIL(lb, XY_E_SHAPE, p, "%s reads [batch, %s, dim], not a tensor of rank %d", op,
                   axes[kind], xs->rank);
  const ir_graph *g = &m->graphs[0];
  int64_t positions = kind == IR_GRAPH_DAG ? g->dag.n_nodes : g->length;
  if ((grid && (xs->d[1] != g->rows || xs->d[2] != g->cols)) ||
      (!grid && xs->d[1] != positions))
    return LB_FAIL(lb, XY_E_SHAPE, p, "the input's positions do not match the graph");
  fe_path_key(p, lp, "output");
  if (!out || !json_is_string(out))
    return LB_FAIL(lb, XY_E_SPEC, out ? p : lp, "%s needs \"output\": a new tensor name", op);
  if (ir_find_tensor(m, json_string_value(out)) >= 0)
    return LB_FAIL(lb, XY_E_SPEC, p, "tensor '%.64s' already exists", json_string_value(out));
  ir_shape none = ir_shape_make(0, NULL);
  lb->out_id = ir_add_tensor(m, json_string_value(out), &none, XY_F32, IR_VALUE);
  if (lb->out_id < 0 || !lb_set_pos(lb, &m->tensors[lb->out_id].pos))
    return lb_nomem(lb);
  json_t *wp = json_object_get(l, "weights");
  fe_path_key(p, lp, "weights");
  if (wp && !json_is_string(wp))
    return LB_FAIL(lb, XY_E_SPEC, p, "must be a string: the prefix of the layer's weight names");
  if (wp)
    lb->prefix = json_string_value(wp);
  if (!ir_add_weight_prefix(m, lb->prefix))
    return lb_nomem(lb);
  return XY_OK;
}
