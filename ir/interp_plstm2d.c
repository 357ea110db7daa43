/* interp_plstm2d.c: the float64 meaning of plstm_scan2d and plstm_scan2d_fused: the
 * edge-state recurrence (spec plstm.md §1.2) on the grid's scan topology (§2.2); the fused
 * op sums it over the four orientations (§2.3), the direct term counted once. */
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "scan_topology.h"

/* Input slots, in ops.def order. */
enum { S_Q, S_K, S_V, S_SR, S_SD, S_TRL, S_TDU, S_TDL, S_TRU, S_ML, S_MU, S_D, S_CL, S_CT };

static const double *in_or_null(double **vals, const ir_op *op, int slot)
{
  return op->in[slot] >= 0 ? vals[op->in[slot]] : NULL;
}

/* The tensors of a 2D scan as the recurrence reads them; gates have rows_per_batch rows. */
static void bind(const plstm2d_dims *d, const ir_op *op, double **vals, scan_tensors *x)
{
  memset(x, 0, sizeof *x);
  x->d.B = d->B;
  x->d.N = d->X * d->Y;
  x->d.DK = d->DK;
  x->d.DV = d->DV;
  x->d.JQ = d->JQ;
  x->d.JK = d->JK;
  x->d.JV = d->JV;
  x->d.JT = d->JT;
  x->d.JO = d->JO;
  x->q = vals[op->in[S_Q]];
  x->k = vals[op->in[S_K]];
  x->v = vals[op->in[S_V]];
  x->D = vals[op->in[S_D]];
  x->S[SCAN_S_R] = vals[op->in[S_SR]];
  x->S[SCAN_S_D] = vals[op->in[S_SD]];
  x->T[SCAN_T_RL] = vals[op->in[S_TRL]];
  x->T[SCAN_T_DU] = vals[op->in[S_TDU]];
  x->T[SCAN_T_DL] = in_or_null(vals, op, S_TDL);
  x->T[SCAN_T_RU] = in_or_null(vals, op, S_TRU);
  x->M[SCAN_M_L] = vals[op->in[S_ML]];
  x->M[SCAN_M_U] = vals[op->in[S_MU]];
  x->s_rows = x->t_rows = x->m_rows = (d->fused ? 4 : 1) * x->d.N;
  x->scale = op->qk_scale;
}

int interp_plstm_scan2d(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  plstm2d_dims d;
  int rc = plstm2d_dims_of(m, op, &d, err);
  if (rc)
    return rc;
  scan_tensors x;
  bind(&d, op, vals, &x);
  x.C0[SCAN_LEFT] = in_or_null(vals, op, S_CL);
  x.C0[SCAN_TOP] = in_or_null(vals, op, S_CT);
  x.c0_rows[SCAN_LEFT] = x.cfin_rows[SCAN_RIGHT] = d.Y;
  x.c0_rows[SCAN_TOP] = x.cfin_rows[SCAN_BOTTOM] = d.X;
  x.out = vals[op->out[0]];
  x.cfin[SCAN_RIGHT] = op->out[1] >= 0 ? vals[op->out[1]] : NULL;
  x.cfin[SCAN_BOTTOM] = op->out[2] >= 0 ? vals[op->out[2]] : NULL;
  scan_topology tp;
  if ((rc = scan_topology_grid2d(d.X, d.Y, 0, false, &tp, err)))
    return rc;
  rc = scan_run(&x, &tp, err);
  scan_topology_free(&tp);
  return rc;
}

/* out = sum over o of the scan on the grid in orientation o, whose gates are the rows
 * o*X*Y + cell of the oriented gate tensors; D only in orientation 0. */
int interp_plstm_scan2d_fused(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  plstm2d_dims d;
  int rc = plstm2d_dims_of(m, op, &d, err);
  if (rc)
    return rc;
  scan_tensors x;
  bind(&d, op, vals, &x);
  size_t n = (size_t)(d.B * d.X * d.Y * d.DV * d.JO);
  double *out = vals[op->out[0]];
  double *part = calloc(n ? n : 1, sizeof *part);
  if (!part)
    return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
  memset(out, 0, n * sizeof *out);
  x.out = part;
  const double *D = x.D;
  for (int o = 0; o < 4 && !rc; o++) {
    scan_topology tp;
    if ((rc = scan_topology_grid2d(d.X, d.Y, o, true, &tp, err)))
      break;
    x.D = o == 0 ? D : NULL;
    rc = scan_run(&x, &tp, err);
    scan_topology_free(&tp);
    for (size_t i = 0; !rc && i < n; i++)
      out[i] += part[i];
  }
  free(part);
  return rc;
}
