/* plstm2d_shapes.c: the shape rules of plstm_scan2d and plstm_scan2d_fused (ops.def),
 * shared by the verifier, shape inference, the interpreter and the lowering. */
#include <stdlib.h>
#include <string.h>

#include "graph_ir.h"

/* Input slots, in ops.def order (the fused op stops after D). */
enum { S_Q, S_K, S_V, S_SR, S_SD, S_TRL, S_TDU, S_TDL, S_TRU, S_ML, S_MU, S_D, S_CL, S_CT };
enum { O_OUT, O_CR, O_CB };

static const char *op_kind(const ir_op *op)
{
  return ir_op_info_of(op->code)->name;
}

static const ir_shape *slot_shape(const ir_module *m, const ir_op *op, int slot)
{
  int t = op->in[slot];
  return t >= 0 ? &m->tensors[t].shape : NULL;
}

/* "plstm_scan2d 's': k has shape [..], expected [..] (why)" */
static int expect(const ir_module *m, const ir_op *op, int slot, int rank, const int64_t *want,
                  const char *why, xy_error *err)
{
  const ir_shape *got = slot_shape(m, op, slot);
  if (!got)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': input %s is missing", op_kind(op), op->name,
                   ir_op_info_of(op->code)->in_names[slot]);
  return ir_shape_expect(op, ir_op_info_of(op->code)->in_names[slot], got, rank, want, why, err);
}

static int rank_error(const ir_op *op, int slot, const ir_shape *got, int rank, const char *axes,
                      xy_error *err)
{
  return xy_fail(err, XY_E_SHAPE, "%s '%s': %s must have rank %d %s, not %d", op_kind(op),
                 op->name, ir_op_info_of(op->code)->in_names[slot], rank, axes, got->rank);
}

/* The dimensions every operand is checked against: B, DK and JQ from q, X and Y from the
 * grid, JK from k, DV and JV from v, JT from T_rl, JO from M_l. */
static int read_dims(const ir_module *m, const ir_op *op, plstm2d_dims *d, xy_error *err)
{
  int o = d->fused ? 1 : 0; /* the orientation axis of the fused op's gates */
  const ir_shape *q = slot_shape(m, op, S_Q), *k = slot_shape(m, op, S_K);
  const ir_shape *v = slot_shape(m, op, S_V), *t = slot_shape(m, op, S_TRL);
  const ir_shape *mk = slot_shape(m, op, S_ML);
  if (q->rank != 5)
    return rank_error(op, S_Q, q, 5, "[B,X,Y,DK,JQ]", err);
  if (k->rank != 5)
    return rank_error(op, S_K, k, 5, "[B,X,Y,DK,JK]", err);
  if (v->rank != 5)
    return rank_error(op, S_V, v, 5, "[B,X,Y,DV,JV]", err);
  if (t->rank != 5 + o)
    return rank_error(op, S_TRL, t, 5 + o, o ? "[B,4,X,Y,JT,JT]" : "[B,X,Y,JT,JT]", err);
  if (mk->rank != 6 + o)
    return rank_error(op, S_ML, mk, 6 + o, o ? "[B,4,X,Y,JO,JQ,JT]" : "[B,X,Y,JO,JQ,JT]", err);
  /* B is q's own: the layers fold heads into the batch of the scans they expand into. */
  d->B = q->d[0];
  d->DK = q->d[3];
  d->JQ = q->d[4];
  d->JK = k->d[4];
  d->DV = v->d[3];
  d->JV = v->d[4];
  d->JT = t->d[3 + o];
  d->JO = mk->d[3 + o];
  int64_t dims[] = {d->B, d->DK, d->DV, d->JQ, d->JK, d->JV, d->JT, d->JO};
  for (size_t i = 0; i < XY_ARRAY_LEN(dims); i++)
    if (dims[i] < 1)
      return xy_fail(err, XY_E_SHAPE, "%s '%s': every dimension must be at least 1",
                     op_kind(op), op->name);
  return XY_OK;
}

/* Gates: [B,(4,)X,Y, per-cell dims...]. */
static int expect_gate(const plstm2d_dims *d, const ir_module *m, const ir_op *op, int slot,
                       const int64_t *cell, int cell_rank, const char *why, xy_error *err)
{
  int64_t want[IR_MAX_RANK];
  int r = 0;
  want[r++] = d->B;
  if (d->fused)
    want[r++] = 4;
  want[r++] = d->X;
  want[r++] = d->Y;
  for (int i = 0; i < cell_rank; i++)
    want[r++] = cell[i];
  return expect(m, op, slot, r, want, why, err);
}

int plstm2d_dims_of(const ir_module *m, const ir_op *op, plstm2d_dims *d, xy_error *err)
{
  memset(d, 0, sizeof *d);
  const ir_op_info *info = ir_op_info_of(op->code);
  if (op->code != IR_OP_PLSTM_SCAN2D && op->code != IR_OP_PLSTM_SCAN2D_FUSED)
    return xy_fail(err, XY_E_INTERNAL, "'%s' is not a 2D scan", op->name);
  d->fused = op->code == IR_OP_PLSTM_SCAN2D_FUSED;
  if (op->graph < 0 || op->graph >= m->n_graphs)
    return xy_fail(err, XY_E_SPEC, "%s '%s': no graph", info->name, op->name);
  const ir_graph *g = &m->graphs[op->graph];
  if (g->kind != IR_GRAPH_GRID2D)
    return xy_fail(err, XY_E_SPEC, "%s '%s': runs over a grid2d graph, not a %s", info->name,
                   op->name, g->kind == IR_GRAPH_SEQUENCE ? "sequence" : "DAG");
  for (int s = S_Q; s <= S_D; s++)
    if (op->in[s] < 0 && !info->in_optional[s])
      return xy_fail(err, XY_E_SPEC, "%s '%s': input %s is missing", info->name, op->name,
                     info->in_names[s]);
  d->X = g->rows;
  d->Y = g->cols;
  if (d->X < 1 || d->Y < 1)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': the grid is empty", info->name, op->name);
  int rc = read_dims(m, op, d, err);
  if (rc)
    return rc;

  const char *why = d->fused ? "B,DK,JQ from q, X,Y from the grid, 4 orientations"
                             : "B,DK,JQ from q, X,Y from the grid";
  int64_t wq[] = {d->B, d->X, d->Y, d->DK, d->JQ};
  int64_t wk[] = {d->B, d->X, d->Y, d->DK, d->JK};
  int64_t wv[] = {d->B, d->X, d->Y, d->DV, d->JV};
  int64_t wd[] = {d->B, d->X, d->Y, d->JO, d->JQ, d->JK, d->JV};
  int64_t cs[] = {d->JT, d->JK, d->JV}, ct[] = {d->JT, d->JT}, cm[] = {d->JO, d->JQ, d->JT};
  if ((rc = expect(m, op, S_Q, 5, wq, why, err)) ||
      (rc = expect(m, op, S_K, 5, wk, why, err)) ||
      (rc = expect(m, op, S_V, 5, wv, why, err)) ||
      (rc = expect(m, op, S_D, 7, wd, why, err)))
    return rc;
  static const int s_slots[] = {S_SR, S_SD}, t_slots[] = {S_TRL, S_TDU, S_TDL, S_TRU};
  static const int m_slots[] = {S_ML, S_MU};
  for (int i = 0; i < 2; i++)
    if ((rc = expect_gate(d, m, op, s_slots[i], cs, 3, why, err)))
      return rc;
  for (int i = 0; i < 4; i++) {
    const ir_shape *s = slot_shape(m, op, t_slots[i]);
    if (s && (rc = expect_gate(d, m, op, t_slots[i], ct, 2, why, err)))
      return rc;
  }
  for (int i = 0; i < 2; i++)
    if ((rc = expect_gate(d, m, op, m_slots[i], cm, 3, why, err)))
      return rc;
  d->has_dl = op->in[S_TDL] >= 0;
  d->has_ru = op->in[S_TRU] >= 0;
  if (d->fused)
    return XY_OK;

  /* Border states: the left one per row y, the top one per column x. */
  int64_t wl[] = {d->B, d->Y, d->DK, d->DV, d->JT}, wt[] = {d->B, d->X, d->DK, d->DV, d->JT};
  d->has_left = op->in[S_CL] >= 0;
  d->has_top = op->in[S_CT] >= 0;
  if (d->has_left && (rc = expect(m, op, S_CL, 5, wl,
                                  "[B,Y,DK,DV,JT]: one state per row y", err)))
    return rc;
  if (d->has_top && (rc = expect(m, op, S_CT, 5, wt,
                                 "[B,X,DK,DV,JT]: one state per column x", err)))
    return rc;
  d->has_right = op->out[O_CR] >= 0;
  d->has_bottom = op->out[O_CB] >= 0;
  return XY_OK;
}

static int shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  plstm2d_dims d;
  int rc = plstm2d_dims_of(m, op, &d, err);
  if (rc)
    return rc;
  if (!(op->qk_scale == op->qk_scale))
    return xy_fail(err, XY_E_SPEC, "%s '%s': qk_scale is not a number", op_kind(op), op->name);
  int64_t out[] = {d.B, d.X, d.Y, d.DV, d.JO};
  int64_t right[] = {d.B, d.Y, d.DK, d.DV, d.JT}, bottom[] = {d.B, d.X, d.DK, d.DV, d.JT};
  outs[O_OUT] = ir_shape_make(5, out);
  if (!d.fused) {
    outs[O_CR] = ir_shape_make(5, right);
    outs[O_CB] = ir_shape_make(5, bottom);
  }
  return XY_OK;
}

int plstm_scan2d_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  return shapes(m, op, outs, err);
}

int plstm_scan2d_fused_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  return shapes(m, op, outs, err);
}
