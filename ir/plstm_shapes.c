/* plstm_shapes.c: the shape rules of plstm_scan, shared by the verifier, shape inference,
 * the interpreter and the lowering passes. */
#include <stdlib.h>
#include <string.h>

#include "graph_ir.h"

enum { S_Q, S_K, S_V, S_S, S_T, S_M, S_D, S_C0 };
enum { O_OUT, O_CFIN };

static const ir_shape *slot_shape(const ir_module *m, const ir_op *op, int slot)
{
  int t = op->in[slot];
  return t >= 0 ? &m->tensors[t].shape : NULL;
}

int plstm_scan_dims(const ir_module *m, const ir_op *op, plstm_dims *d, xy_error *err)
{
  memset(d, 0, sizeof *d);
  const char *kind = ir_op_info_of(op->code)->name;
  if (op->graph < 0 || op->graph >= m->n_graphs)
    return xy_fail(err, XY_E_SPEC, "%s '%s': no graph", kind, op->name);
  const ir_graph *g = &m->graphs[op->graph];
  d->graph_kind = g->kind;
  for (int s = S_Q; s <= S_D; s++)
    if (op->in[s] < 0)
      return xy_fail(err, XY_E_SPEC, "%s '%s': input %s is missing", kind, op->name,
                     ir_op_info_of(op->code)->in_names[s]);

  const ir_shape *q = slot_shape(m, op, S_Q), *v = slot_shape(m, op, S_V);
  const ir_shape *t = slot_shape(m, op, S_T), *mk = slot_shape(m, op, S_M);
  const ir_shape *k = slot_shape(m, op, S_K);
  if (q->rank != 4)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': q must have rank 4 [B,N,DK,JQ], not %d", kind,
                   op->name, q->rank);
  if (k->rank != 4)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': k must have rank 4 [B,N,DK,JK], not %d", kind,
                   op->name, k->rank);
  if (v->rank != 4)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': v must have rank 4 [B,N,DV,JV], not %d", kind,
                   op->name, v->rank);
  if (t->rank != 4)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': T must have rank 4 [B,A,JT,JT], not %d", kind,
                   op->name, t->rank);
  if (mk->rank != 5)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': M must have rank 5 [B,E,JO,JQ,JT], not %d", kind,
                   op->name, mk->rank);
  d->B = q->d[0];
  d->DK = q->d[2];
  d->JQ = q->d[3];
  d->JK = k->d[3];
  d->DV = v->d[2];
  d->JV = v->d[3];
  d->JT = t->d[2];
  d->JO = mk->d[2];

  switch (g->kind) {
  case IR_GRAPH_SEQUENCE:
    d->N = d->E = d->A = g->length;
    break;
  case IR_GRAPH_DAG:
    d->N = g->dag.n_nodes;
    d->E = g->dag.n_edges;
    d->A = g->dag.n_arcs;
    if (op->in[S_C0] >= 0)
      return xy_fail(err, XY_E_SPEC,
                     "%s '%s': C_initial is not supported on DAGs (no edge enters a source)",
                     kind, op->name);
    if (op->out[O_CFIN] >= 0)
      return xy_fail(err, XY_E_SPEC,
                     "%s '%s': C_final is not supported on DAGs (no edge leaves a sink)", kind,
                     op->name);
    break;
  case IR_GRAPH_GRID2D:
    return xy_fail(err, XY_E_SPEC, "%s '%s': grid2d graphs are not supported by this op yet",
                   kind, op->name);
  }
  int64_t dims[] = {d->DK, d->DV, d->JQ, d->JK, d->JV, d->JT, d->JO, d->N};
  for (size_t i = 0; i < XY_ARRAY_LEN(dims); i++)
    if (dims[i] < 1)
      return xy_fail(err, XY_E_SHAPE, "%s '%s': every dimension must be at least 1", kind,
                     op->name);

  const char *why = g->kind == IR_GRAPH_SEQUENCE ? "B,DK,JQ from q, N=E=A=length"
                                                 : "B,DK,JQ from q, N,E,A from the graph";
  int64_t wq[] = {d->B, d->N, d->DK, d->JQ};
  int64_t wk[] = {d->B, d->N, d->DK, d->JK};
  int64_t wv[] = {d->B, d->N, d->DV, d->JV};
  int64_t ws[] = {d->B, d->E, d->JT, d->JK, d->JV};
  int64_t wt[] = {d->B, d->A, d->JT, d->JT};
  int64_t wm[] = {d->B, d->E, d->JO, d->JQ, d->JT};
  int64_t wd[] = {d->B, d->N, d->JO, d->JQ, d->JK, d->JV};
  int rc;
  if ((rc = ir_shape_expect(op, "q", q, 4, wq, why, err)) ||
      (rc = ir_shape_expect(op, "k", k, 4, wk, why, err)) ||
      (rc = ir_shape_expect(op, "v", v, 4, wv, why, err)) ||
      (rc = ir_shape_expect(op, "S", slot_shape(m, op, S_S), 5, ws, why, err)) ||
      (rc = ir_shape_expect(op, "T", t, 4, wt, why, err)) ||
      (rc = ir_shape_expect(op, "M", mk, 5, wm, why, err)) ||
      (rc = ir_shape_expect(op, "D", slot_shape(m, op, S_D), 6, wd, why, err)))
    return rc;
  int64_t wc[] = {d->B, d->DK, d->DV, d->JT};
  if (op->in[S_C0] >= 0) {
    d->has_initial = true;
    if ((rc = ir_shape_expect(op, "C_initial", slot_shape(m, op, S_C0), 4, wc, why, err)))
      return rc;
  }
  d->has_final = op->out[O_CFIN] >= 0;
  return XY_OK;
}

/* ------------------------------------------------------------------ rules */

int plstm_scan_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  plstm_dims d;
  int rc = plstm_scan_dims(m, op, &d, err);
  if (rc)
    return rc;
  if (!(op->qk_scale == op->qk_scale))
    return xy_fail(err, XY_E_SPEC, "plstm_scan '%s': qk_scale is not a number", op->name);
  int64_t out[] = {d.B, d.N, d.DV, d.JO};
  int64_t c[] = {d.B, d.DK, d.DV, d.JT};
  outs[0] = ir_shape_make(4, out);
  outs[1] = ir_shape_make(4, c);
  return XY_OK;
}

void print_qk_scale(const ir_op *op, xy_buf *out)
{
  xy_buf_printf(out, " qk_scale=%.9g", op->qk_scale);
}

int ir_infer_shapes(ir_module *m, ir_op *op, xy_error *err)
{
  const ir_op_rules *rules = ir_rules_of(op->code);
  if (!rules || !rules->shapes)
    return xy_fail(err, XY_E_INTERNAL, "no shape rule for op %d", (int)op->code);
  ir_shape outs[IR_MAX_SLOTS];
  memset(outs, 0, sizeof outs);
  int rc = rules->shapes(m, op, outs, err);
  if (rc)
    return rc;
  const ir_op_info *info = ir_op_info_of(op->code);
  for (int i = 0; i < info->n_out; i++) {
    if (op->out[i] < 0)
      continue;
    m->tensors[op->out[i]].shape = outs[i];
    if (ir_shape_count(&outs[i]) < 0)
      return xy_fail(err, XY_E_LIMIT, "%s '%s': output %s has too many elements", info->name,
                     op->name, info->out_names[i]);
  }
  return XY_OK;
}
