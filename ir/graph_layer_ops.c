/* graph_layer_ops.c: the shape rules, float64 meanings and attribute dumps of graph_gather,
 * concat and graph_pnorm (ops.def), the ops the graph layers add around their scan. The
 * interpreters loop over the formulas in the most direct order. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_layer_ops.h"

/* xy_fail with "KIND 'NAME': " in front. */
static int op_fail(xy_error *err, int code, const ir_op *op, const char *fmt, ...)
  XY_PRINTF(4, 5);

static int op_fail(xy_error *err, int code, const ir_op *op, const char *fmt, ...)
{
  char why[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  return xy_fail(err, code, "%s '%s': %s", ir_op_info_of(op->code)->name, op->name, why);
}

/* Input slot's shape, checked to be a valid shape; NULL (with XY_OK) when an optional
 * slot is empty. */
static int in_shape(const ir_module *m, const ir_op *op, int slot, bool required,
                    const ir_shape **s, xy_error *err)
{
  int t = op->in[slot];
  *s = t >= 0 && t < m->n_tensors ? &m->tensors[t].shape : NULL;
  const char *name = ir_op_info_of(op->code)->in_names[slot];
  if (!*s)
    return required ? op_fail(err, XY_E_SPEC, op, "input %s is missing", name) : XY_OK;
  if ((*s)->rank < 0 || (*s)->rank > IR_MAX_RANK || ir_shape_count(*s) < 0)
    return op_fail(err, XY_E_SHAPE, op, "input %s has a bad shape", name);
  return XY_OK;
}

static const char *shape_str(const ir_shape *s, char *buf, size_t n)
{
  xy_buf b;
  xy_buf_init(&b);
  ir_shape_print(s, &b);
  snprintf(buf, n, "%s", b.data && !b.failed ? b.data : "[?]");
  xy_buf_free(&b);
  return buf;
}

/* ------------------------------------------------------------------ graph_gather */

/* Rows a map reads from (nodes or edges) and writes (edges or arcs). */
static bool reads_edges(ir_gather_map map)
{
  return map == IR_GATHER_ARC_SRC || map == IR_GATHER_ARC_DST;
}

static bool writes_arcs(ir_gather_map map)
{
  return map == IR_GATHER_ARC_SRC || map == IR_GATHER_ARC_DST ||
         map == IR_GATHER_ARC_SRC_TAIL || map == IR_GATHER_TRANSITION_SLOTS;
}

/* The dimensions from x's shape and the attributes, every rule checked; with check_slots
 * also every slot of the map (which reads the whole graph). */
static int gather_dims_of(const ir_module *m, const ir_op *op, bool check_slots,
                          gather_dims *g, xy_error *err)
{
  const ir_gather_attrs *a = &op->attr.gather;
  const ir_shape *x;
  const ir_dag *d;
  int rc;
  if ((rc = in_shape(m, op, 0, true, &x, err)) || (rc = ir_op_dag(m, op, &d, err)))
    return rc;
  if ((int)a->map < 0 || a->map >= IR_GATHER_COUNT)
    return op_fail(err, XY_E_SPEC, op, "unknown map %d", (int)a->map);
  char sx[160];
  if (x->rank != 3)
    return op_fail(err, XY_E_SHAPE, op, "x %s must have rank 3 [B, rows, features]",
                   shape_str(x, sx, sizeof sx));
  memset(g, 0, sizeof *g);
  bool slots = ir_gather_is_slot_map(a->map);
  g->H = slots ? a->heads : 1;
  g->W = 1;
  if (slots) {
    if (a->heads < 1 || a->slots < 1)
      return op_fail(err, XY_E_SPEC, op, "heads %lld and slots %lld must be at least 1",
                     (long long)a->heads, (long long)a->slots);
    g->W = a->slots;
    if (a->map == IR_GATHER_TRANSITION_SLOTS && !xy_mul_i64(a->slots, a->slots, &g->W))
      return op_fail(err, XY_E_LIMIT, op, "slots^2 overflows");
  }
  g->R = reads_edges(a->map) ? d->n_edges : d->n_nodes;
  g->K = writes_arcs(a->map) ? d->n_arcs : d->n_edges;
  g->C = x->d[2];
  if (x->d[1] != g->R)
    return op_fail(err, XY_E_SHAPE, op, "x %s must have one row per %s of the graph (%lld), "
                   "for map %s", shape_str(x, sx, sizeof sx),
                   reads_edges(a->map) ? "edge" : "node", (long long)g->R,
                   ir_gather_map_name(a->map));
  int64_t HW;
  if (!xy_mul_i64(g->H, g->W, &HW) || g->C % HW != 0)
    return op_fail(err, XY_E_SHAPE, op, "x's last axis %lld is not heads %lld x %lld slots x "
                   "features", (long long)g->C, (long long)g->H, (long long)g->W);
  g->F = g->C / HW;
  if (!check_slots || !slots || g->K == 0)
    return XY_OK;
  int64_t *row = malloc(sizeof *row * (size_t)g->K), *col = malloc(sizeof *col * (size_t)g->K);
  if (!row || !col)
    rc = xy_fail(err, XY_E_NOMEM, "out of memory");
  else if ((rc = ir_gather_index(d, a, row, col, err)))
    rc = op_fail(err, rc, op, "%s", err->message);
  free(row);
  free(col);
  return rc;
}

int graph_gather_dims(const ir_module *m, const ir_op *op, gather_dims *g, xy_error *err)
{
  return gather_dims_of(m, op, false, g, err);
}

int graph_gather_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  gather_dims g;
  int rc = gather_dims_of(m, op, true, &g, err);
  if (rc)
    return rc;
  const ir_shape *x = &m->tensors[op->in[0]].shape;
  int64_t d[] = {x->d[0], g.K, g.H * g.F};
  outs[0] = ir_shape_make(3, d);
  if (ir_shape_count(&outs[0]) < 0)
    return op_fail(err, XY_E_LIMIT, op, "the output's element count overflows");
  return XY_OK;
}

int interp_graph_gather(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  gather_dims g;
  int rc = graph_gather_dims(m, op, &g, err);
  if (rc)
    return rc;
  const ir_dag *d = &m->graphs[op->graph].dag;
  int64_t B = m->tensors[op->in[0]].shape.d[0];
  int64_t *row = malloc(sizeof *row * (size_t)(g.K + 1)), *col = malloc(sizeof *col * (size_t)(g.K + 1));
  if (!row || !col) {
    free(row);
    free(col);
    return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
  }
  rc = ir_gather_index(d, &op->attr.gather, row, col, err);
  const double *x = vals[op->in[0]];
  double *y = vals[op->out[0]];
  for (int64_t b = 0; !rc && b < B; b++)
    for (int64_t k = 0; k < g.K; k++)
      for (int64_t h = 0; h < g.H; h++)
        for (int64_t f = 0; f < g.F; f++)
          y[(b * g.K + k) * g.H * g.F + h * g.F + f] =
            x[(b * g.R + row[k]) * g.C + (h * g.W + col[k]) * g.F + f];
  free(row);
  free(col);
  return rc;
}

/* ------------------------------------------------------------------ concat */

int concat_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_shape *s[3];
  int rc;
  if ((rc = in_shape(m, op, 0, true, &s[0], err)) || (rc = in_shape(m, op, 1, true, &s[1], err)) ||
      (rc = in_shape(m, op, 2, false, &s[2], err)))
    return rc;
  if (s[0]->rank < 1)
    return op_fail(err, XY_E_SHAPE, op, "a must have at least one axis");
  int r = s[0]->rank;
  int64_t last = 0;
  static const char *const names[] = {"a", "b", "c"};
  for (int i = 0; i < 3 && s[i]; i++) {
    bool same = s[i]->rank == r;
    for (int k = 0; same && k + 1 < r; k++)
      same = s[i]->d[k] == s[0]->d[k];
    char s1[160], s2[160];
    if (!same)
      return op_fail(err, XY_E_SHAPE, op, "%s %s and a %s differ in an axis other than the last",
                     names[i], shape_str(s[i], s1, sizeof s1), shape_str(s[0], s2, sizeof s2));
    last += s[i]->d[r - 1];
  }
  outs[0] = *s[0];
  outs[0].d[r - 1] = last;
  if (ir_shape_count(&outs[0]) < 0)
    return op_fail(err, XY_E_LIMIT, op, "the output's element count overflows");
  return XY_OK;
}

int interp_concat(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  const ir_shape *ys = &m->tensors[op->out[0]].shape;
  int64_t Cy = ys->d[ys->rank - 1], rows = Cy > 0 ? ir_shape_count(ys) / Cy : 0, off = 0;
  double *y = vals[op->out[0]];
  for (int i = 0; i < 3; i++) {
    if (op->in[i] < 0)
      continue;
    const ir_shape *xs = &m->tensors[op->in[i]].shape;
    int64_t C = xs->d[xs->rank - 1];
    const double *x = vals[op->in[i]];
    for (int64_t r = 0; r < rows; r++)
      for (int64_t c = 0; c < C; c++)
        y[r * Cy + off + c] = x[r * C + c];
    off += C;
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ graph_pnorm */

int graph_pnorm_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_pnorm_attrs *a = &op->attr.pnorm;
  const ir_shape *x;
  const ir_dag *d;
  int rc;
  if ((rc = in_shape(m, op, 0, true, &x, err)) || (rc = ir_op_dag(m, op, &d, err)))
    return rc;
  char sx[160];
  if (x->rank != 3)
    return op_fail(err, XY_E_SHAPE, op, "x %s must have rank 3", shape_str(x, sx, sizeof sx));
  if (!isfinite(a->alpha) || !(a->alpha > 0))
    return op_fail(err, XY_E_SPEC, op, "alpha must be finite and positive, not %g", a->alpha);
  if (a->arcs) {
    if (x->d[1] != d->n_arcs)
      return op_fail(err, XY_E_SHAPE, op, "x %s must have one row per arc of the graph (%lld)",
                     shape_str(x, sx, sizeof sx), (long long)d->n_arcs);
  } else {
    int64_t EE, HEE;
    if (a->heads < 1 || a->slots < 1)
      return op_fail(err, XY_E_SPEC, op, "heads %lld and slots %lld must be at least 1",
                     (long long)a->heads, (long long)a->slots);
    if (!xy_mul_i64(a->slots, a->slots, &EE) || !xy_mul_i64(EE, a->heads, &HEE))
      return op_fail(err, XY_E_LIMIT, op, "heads x slots^2 overflows");
    if (x->d[1] != d->n_nodes || x->d[2] != HEE)
      return op_fail(err, XY_E_SHAPE, op, "x %s must be [B, nodes %lld, heads %lld x slots^2 "
                     "%lld]", shape_str(x, sx, sizeof sx), (long long)d->n_nodes,
                     (long long)a->heads, (long long)EE);
  }
  outs[0] = *x;
  return XY_OK;
}

/* y[b, a, c] = x / (alpha + sum over the arcs into arc_dst(a) of |x[b, ., c]|). */
static int pnorm_arcs(const ir_module *m, const ir_op *op, const ir_dag *d, double **vals,
                      xy_error *err)
{
  const ir_shape *xs = &m->tensors[op->in[0]].shape;
  int64_t B = xs->d[0], A = xs->d[1], C = xs->d[2], E = d->n_edges;
  const double *x = vals[op->in[0]];
  double *y = vals[op->out[0]];
  double *sum = calloc((size_t)(B * E * C) + 1, sizeof *sum);
  if (!sum)
    return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
  for (int64_t b = 0; b < B; b++)
    for (int64_t a = 0; a < A; a++)
      for (int64_t c = 0; c < C; c++)
        sum[(b * E + d->arc_dst[a]) * C + c] += fabs(x[(b * A + a) * C + c]);
  for (int64_t b = 0; b < B; b++)
    for (int64_t a = 0; a < A; a++)
      for (int64_t c = 0; c < C; c++)
        y[(b * A + a) * C + c] =
          x[(b * A + a) * C + c] / (op->attr.pnorm.alpha + sum[(b * E + d->arc_dst[a]) * C + c]);
  free(sum);
  return XY_OK;
}

/* Node rows: t[b, n, h, i, :] / (alpha + sum_j |t[b, n, h, i, j]|), 0 for i >= indeg(n). */
static int pnorm_slots(const ir_module *m, const ir_op *op, const ir_dag *d, double **vals,
                       xy_error *err)
{
  const ir_pnorm_attrs *a = &op->attr.pnorm;
  const ir_shape *xs = &m->tensors[op->in[0]].shape;
  int64_t B = xs->d[0], N = xs->d[1], H = a->heads, E = a->slots;
  const double *x = vals[op->in[0]];
  double *y = vals[op->out[0]];
  int64_t *indeg = malloc(sizeof *indeg * (size_t)(N + 1));
  if (!indeg)
    return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
  ir_dag_in_degrees(d, indeg);
  for (int64_t b = 0; b < B; b++)
    for (int64_t n = 0; n < N; n++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t i = 0; i < E; i++) {
          int64_t base = (((b * N + n) * H + h) * E + i) * E;
          double s = 0;
          for (int64_t j = 0; j < E; j++)
            s += fabs(x[base + j]);
          for (int64_t j = 0; j < E; j++)
            y[base + j] = i < indeg[n] ? x[base + j] / (a->alpha + s) : 0.0;
        }
  free(indeg);
  return XY_OK;
}

int interp_graph_pnorm(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  const ir_dag *d;
  int rc = ir_op_dag(m, op, &d, err);
  if (rc)
    return rc;
  return op->attr.pnorm.arcs ? pnorm_arcs(m, op, d, vals, err) : pnorm_slots(m, op, d, vals, err);
}

/* ------------------------------------------------------------------ printing */

void graph_layer_print_attrs(const ir_op *op, xy_buf *out)
{
  if (op->code == IR_OP_GRAPH_GATHER) {
    const ir_gather_attrs *a = &op->attr.gather;
    xy_buf_printf(out, " map=%s", ir_gather_map_name(a->map));
    if (ir_gather_is_slot_map(a->map))
      xy_buf_printf(out, " heads=%lld slots=%lld", (long long)a->heads, (long long)a->slots);
  } else if (op->code == IR_OP_GRAPH_PNORM) {
    const ir_pnorm_attrs *a = &op->attr.pnorm;
    if (a->arcs)
      xy_buf_printf(out, " by=arcs alpha=%.9g", a->alpha);
    else
      xy_buf_printf(out, " by=slots heads=%lld slots=%lld alpha=%.9g", (long long)a->heads,
                    (long long)a->slots, a->alpha);
  }
}
