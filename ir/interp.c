/* interp.c: the float64 reference interpreter (see interp.h). Written for clarity: each
 * op is the formula of the spec, looped in the most direct order. */
#include "interp.h"

#include <stdlib.h>
#include <string.h>

#include "scan_topology.h"

int ir_interpret(const ir_module *m, double **vals, xy_error *err)
{
  int rc = ir_verify(m, err);
  if (rc)
    return rc;
  for (int i = 0; i < m->n_ops; i++) {
    const ir_op *op = &m->ops[i];
    const ir_op_info *info = ir_op_info_of(op->code);
    for (int s = 0; s < info->n_out; s++) {
      int t = op->out[s];
      if (t < 0)
        continue;
      size_t n = (size_t)ir_shape_count(&m->tensors[t].shape);
      free(vals[t]);
      vals[t] = calloc(n ? n : 1, sizeof(double));
      if (!vals[t])
        return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory for %s",
                       m->tensors[t].name);
    }
    const ir_op_rules *rules = ir_rules_of(op->code);
    if (!rules->interp)
      return xy_fail(err, XY_E_INTERNAL, "interpreter: no rule for %s", info->name);
    rc = rules->interp(m, op, vals, err);
    if (rc)
      return rc;
  }
  return XY_OK;
}

void ir_interp_release(const ir_module *m, double **vals)
{
  for (int t = 0; t < m->n_tensors; t++) {
    if (m->tensors[t].role == IR_VALUE) {
      free(vals[t]);
      vals[t] = NULL;
    }
  }
}

/* ------------------------------------------------------------------ plstm_scan */

typedef struct scan_ctx {
  const scan_tensors *x;
  const plstm_dims *d;
  int64_t b;       /* current batch element */
  size_t state;    /* DK*DV*JT */
} scan_ctx;

/* Element addresses, in the layouts of ops.def; gates by (slot, row). */
static const double *q_at(const scan_ctx *c, int64_t n)
{
  return c->x->q + ((size_t)(c->b * c->d->N + n)) * (size_t)(c->d->DK * c->d->JQ);
}
static const double *k_at(const scan_ctx *c, int64_t n)
{
  return c->x->k + ((size_t)(c->b * c->d->N + n)) * (size_t)(c->d->DK * c->d->JK);
}
static const double *v_at(const scan_ctx *c, int64_t n)
{
  return c->x->v + ((size_t)(c->b * c->d->N + n)) * (size_t)(c->d->DV * c->d->JV);
}
static const double *s_at(const scan_ctx *c, int slot, int64_t row)
{
  return c->x->S[slot] + ((size_t)(c->b * c->x->s_rows + row)) *
                             (size_t)(c->d->JT * c->d->JK * c->d->JV);
}
static const double *t_at(const scan_ctx *c, int slot, int64_t row)
{
  return c->x->T[slot] + ((size_t)(c->b * c->x->t_rows + row)) * (size_t)(c->d->JT * c->d->JT);
}
static const double *m_at(const scan_ctx *c, int slot, int64_t row)
{
  return c->x->M[slot] + ((size_t)(c->b * c->x->m_rows + row)) *
                             (size_t)(c->d->JO * c->d->JQ * c->d->JT);
}
static const double *d_at(const scan_ctx *c, int64_t n)
{
  return c->x->D + ((size_t)(c->b * c->d->N + n)) *
                       (size_t)(c->d->JO * c->d->JQ * c->d->JK * c->d->JV);
}

/* h[v,o] = sum_{d,a,b,c} q[d,a] D[o,a,b,c] k[d,b] v[v,c]; zero without D. */
static void direct_term(const scan_ctx *c, int64_t n, double *h)
{
  const plstm_dims *d = c->d;
  if (!c->x->D) {
    memset(h, 0, sizeof(double) * (size_t)(d->DV * d->JO));
    return;
  }
  const double *q = q_at(c, n), *k = k_at(c, n), *v = v_at(c, n), *D = d_at(c, n);
  for (int64_t vi = 0; vi < d->DV; vi++)
    for (int64_t o = 0; o < d->JO; o++) {
      double acc = 0;
      for (int64_t a = 0; a < d->JQ; a++)
        for (int64_t bb = 0; bb < d->JK; bb++) {
          double qk = 0;
          for (int64_t di = 0; di < d->DK; di++)
            qk += q[di * d->JQ + a] * k[di * d->JK + bb];
          for (int64_t cc = 0; cc < d->JV; cc++)
            acc += D[((o * d->JQ + a) * d->JK + bb) * d->JV + cc] * qk * v[vi * d->JV + cc];
        }
      h[vi * d->JO + o] = acc;
    }
}

/* h[v,o] += sum_{d,a,t} q[d,a] M[o,a,t] C[d,v,t] */
static void read_term(const scan_ctx *c, int64_t n, const double *M, const double *C,
                      double *h)
{
  const plstm_dims *d = c->d;
  const double *q = q_at(c, n);
  for (int64_t vi = 0; vi < d->DV; vi++)
    for (int64_t o = 0; o < d->JO; o++) {
      double acc = 0;
      for (int64_t di = 0; di < d->DK; di++)
        for (int64_t a = 0; a < d->JQ; a++)
          for (int64_t t = 0; t < d->JT; t++)
            acc += q[di * d->JQ + a] * M[(o * d->JQ + a) * d->JT + t] *
                   C[(di * d->DV + vi) * d->JT + t];
      h[vi * d->JO + o] += acc;
    }
}

/* C[d,v,i] += sum_j T[i,j] Cp[d,v,j] */
static void carry_term(const scan_ctx *c, const double *T, const double *Cp, double *C)
{
  const plstm_dims *d = c->d;
  for (int64_t x = 0; x < d->DK * d->DV; x++)
    for (int64_t i = 0; i < d->JT; i++) {
      double acc = 0;
      for (int64_t j = 0; j < d->JT; j++)
        acc += T[i * d->JT + j] * Cp[x * d->JT + j];
      C[x * d->JT + i] += acc;
    }
}

/* C[d,v,i] += sum_{b,c} S[i,b,c] k[d,b] v[v,c] */
static void write_term(const scan_ctx *c, int64_t n, const double *S, double *C)
{
  const plstm_dims *d = c->d;
  const double *k = k_at(c, n), *v = v_at(c, n);
  for (int64_t di = 0; di < d->DK; di++)
    for (int64_t vi = 0; vi < d->DV; vi++)
      for (int64_t i = 0; i < d->JT; i++) {
        double acc = 0;
        for (int64_t bb = 0; bb < d->JK; bb++)
          for (int64_t cc = 0; cc < d->JV; cc++)
            acc += S[(i * d->JK + bb) * d->JV + cc] * k[di * d->JK + bb] * v[vi * d->JV + cc];
        C[(di * d->DV + vi) * d->JT + i] += acc;
      }
}

/* One batch element: nodes in topological order; each node reads its incoming states,
 * then writes its outgoing ones; an incoming state dies after its head is done. Border
 * edges start with their initial state (zero when the op has none). */
static int scan_one(scan_ctx *c, const scan_topology *tp, double **state, xy_error *err)
{
  const plstm_dims *d = c->d;
  const scan_tensors *x = c->x;
  size_t hsize = (size_t)(d->DV * d->JO);
  for (int64_t e = 0; e < tp->n_edges; e++) {
    if (tp->init_row[e] < 0)
      continue;
    state[e] = calloc(c->state, sizeof(double));
    if (!state[e])
      return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
    int sl = tp->init_slot[e];
    if (x->C0[sl])
      memcpy(state[e], x->C0[sl] + (size_t)(c->b * x->c0_rows[sl] + tp->init_row[e]) * c->state,
             c->state * sizeof(double));
  }
  for (int64_t i = 0; i < tp->n_nodes; i++) {
    int64_t n = tp->topo[i];
    double *h = x->out + ((size_t)(c->b * d->N + n)) * hsize;
    direct_term(c, n, h);
    for (int64_t j = tp->in_start[n]; j < tp->in_start[n + 1]; j++) {
      int64_t e = tp->in_edges[j];
      if (tp->m_row[e] >= 0)
        read_term(c, n, m_at(c, tp->m_slot[e], tp->m_row[e]), state[e], h);
    }
    for (size_t k = 0; k < hsize; k++)
      h[k] *= x->scale;
    for (int64_t j = tp->out_start[n]; j < tp->out_start[n + 1]; j++) {
      int64_t e = tp->out_edges[j];
      double *C = calloc(c->state, sizeof(double));
      if (!C)
        return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
      state[e] = C;
      for (int64_t ai = tp->arc_in_start[e]; ai < tp->arc_in_start[e + 1]; ai++) {
        int64_t a = tp->arcs_in[ai];
        if (x->T[tp->t_slot[a]]) /* an absent transition is zero */
          carry_term(c, t_at(c, tp->t_slot[a], tp->t_row[a]), state[tp->arc_src[a]], C);
      }
      if (tp->s_row[e] >= 0)
        write_term(c, n, s_at(c, tp->s_slot[e], tp->s_row[e]), C);
    }
    for (int64_t j = tp->in_start[n]; j < tp->in_start[n + 1]; j++) {
      int64_t e = tp->in_edges[j];
      free(state[e]);
      state[e] = NULL;
    }
  }
  for (int64_t e = 0; e < tp->n_edges; e++) {
    int sl = tp->fin_slot[e];
    if (tp->fin_row[e] >= 0 && x->cfin[sl])
      memcpy(x->cfin[sl] + (size_t)(c->b * x->cfin_rows[sl] + tp->fin_row[e]) * c->state,
             state[e], c->state * sizeof(double));
  }
  return XY_OK;
}

int scan_run(const scan_tensors *x, const scan_topology *tp, xy_error *err)
{
  scan_ctx c = {.x = x, .d = &x->d};
  c.state = (size_t)(x->d.DK * x->d.DV * x->d.JT);
  double **state = calloc((size_t)tp->n_edges + 1, sizeof *state);
  if (!state)
    return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
  int rc = XY_OK;
  for (c.b = 0; c.b < x->d.B && !rc; c.b++) {
    rc = scan_one(&c, tp, state, err);
    for (int64_t e = 0; e < tp->n_edges; e++) {
      free(state[e]);
      state[e] = NULL;
    }
  }
  free(state);
  return rc;
}

int interp_plstm_scan(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  scan_tensors x;
  memset(&x, 0, sizeof x);
  int rc = plstm_scan_dims(m, op, &x.d, err);
  if (rc)
    return rc;
  x.q = vals[op->in[0]];
  x.k = vals[op->in[1]];
  x.v = vals[op->in[2]];
  x.S[0] = vals[op->in[3]];
  x.T[0] = vals[op->in[4]];
  x.M[0] = vals[op->in[5]];
  x.D = vals[op->in[6]];
  x.s_rows = x.m_rows = x.d.E;
  x.t_rows = x.d.A;
  x.C0[0] = op->in[7] >= 0 ? vals[op->in[7]] : NULL;
  x.c0_rows[0] = 1;
  x.out = vals[op->out[0]];
  x.cfin[0] = op->out[1] >= 0 ? vals[op->out[1]] : NULL;
  x.cfin_rows[0] = 1;
  x.scale = op->qk_scale;

  scan_topology tp;
  if ((rc = scan_topology_build(&m->graphs[op->graph], &tp, err)))
    return rc;
  rc = scan_run(&x, &tp, err);
  scan_topology_free(&tp);
  return rc;
}
