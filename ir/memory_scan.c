/* memory_scan.c: the shape rule, the interpreter and the attribute printer of memory_scan
 * (ops.def). The interpreter hands each (batch, head) sequence to the token-loop oracle
 * (memory_oracle.c), which defines what the op computes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph_ir.h"
#include "interp.h"


static const char *kind = "memory_scan";

/* The schedule's own rules (spec tnt.md §5.2), before any shape is looked at. */
static int check_schedule(const ir_op *op, const ir_memory_attrs *a, xy_error *err)
{
  const char *n = op->name;
  if (a->chunk < 1)
    return xy_fail(err, XY_E_SPEC, "%s '%s': chunk must be at least 1, not %lld", kind, n,
                   (long long)a->chunk);
  if (a->reset < 0 || (a->reset > 0 && a->reset % a->chunk != 0))
    return xy_fail(err, XY_E_SPEC,
                   "%s '%s': reset %lld is not a multiple of chunk %lld (a chunk may not "
                   "straddle a reset)", kind, n, (long long)a->reset, (long long)a->chunk);
  if (a->hidden < 0)
    return xy_fail(err, XY_E_SPEC, "%s '%s': hidden must be 0 (linear) or at least 1", kind, n);
  if (a->qkproj == MEM_QK_SHARD && a->reset == 0)
    return xy_fail(err, XY_E_SPEC, "%s '%s': qkproj 'shard' needs a reset (the projection "
                   "accumulates keys since the shard began)", kind, n);
  if (a->ttt_lr && (a->momentum || a->decay))
    return xy_fail(err, XY_E_SPEC, "%s '%s': lr 'ttt_matrix' implies momentum and decay "
                   "'none' (TTT has neither)", kind, n);
  if (a->ttt_lr && (a->reset || a->qkproj != MEM_QK_NONE || a->read != MEM_READ_INCLUSIVE))
    return xy_fail(err, XY_E_SPEC, "%s '%s': lr 'ttt_matrix' takes no reset and no Q-K "
                   "projection, and reads inclusively", kind, n);
  if (!isfinite(a->loss_scale) || !isfinite(a->ln_eps) || a->ln_eps < 0 ||
      !isfinite(a->ttt_base) || !isfinite(a->ttt_div) || (a->ttt_lr && a->ttt_div == 0))
    return xy_fail(err, XY_E_SPEC, "%s '%s': loss scale, eps and the TTT base and divisor "
                   "must be finite (eps >= 0, divisor not 0)", kind, n);
  return XY_OK;
}

/* A slot that must be present exactly when the schedule reads it. */
static int expect_slot(const ir_module *m, const ir_op *op, int slot, bool wanted,
                       const char *because, int rank, const int64_t *want, const char *why,
                       xy_error *err)
{
  const char *name = ir_op_info_of(op->code)->in_names[slot];
  int t = op->in[slot];
  if (t < 0 && wanted)
    return xy_fail(err, XY_E_SPEC, "%s '%s': input %s is missing (%s)", kind, op->name, name,
                   because);
  if (t >= 0 && !wanted)
    return xy_fail(err, XY_E_SPEC, "%s '%s': input %s is given but not read (it needs %s)",
                   kind, op->name, name, because);
  if (t < 0)
    return XY_OK;
  return ir_shape_expect(op, name, &m->tensors[t].shape, rank, want, why, err);
}

int memory_dims_of(const ir_module *m, const ir_op *op, memory_dims *d, mem_desc *desc,
                   xy_error *err)
{
  memset(d, 0, sizeof *d);
  const ir_memory_attrs *a = &op->attr.memory;
  int rc = check_schedule(op, a, err);
  if (rc)
    return rc;
  int required[] = {MS_Q, MS_K, MS_V, MS_THETA};
  for (size_t i = 0; i < XY_ARRAY_LEN(required); i++)
    if (op->in[required[i]] < 0)
      return xy_fail(err, XY_E_SPEC, "%s '%s': input %s is missing", kind, op->name,
                     ir_op_info_of(op->code)->in_names[required[i]]);
  const ir_shape *q = &m->tensors[op->in[MS_Q]].shape, *v = &m->tensors[op->in[MS_V]].shape;
  if (q->rank != 4)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': q must have rank 4 [B,L,H,DK], not %d", kind,
                   op->name, q->rank);
  if (v->rank != 4)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': v must have rank 4 [B,L,H,DV], not %d", kind,
                   op->name, v->rank);
  d->B = q->d[0], d->L = q->d[1], d->H = q->d[2], d->DK = q->d[3], d->DV = v->d[3];
  if (d->B < 1 || d->L < 1 || d->H < 1 || d->DK < 1 || d->DV < 1)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': every dimension must be at least 1", kind,
                   op->name);
  if (a->ln_residual && d->DK != d->DV)
    return xy_fail(err, XY_E_SHAPE, "%s '%s': the ln_residual wrapper x + LN(f(x)) needs "
                   "DK = DV, not %lld and %lld", kind, op->name, (long long)d->DK,
                   (long long)d->DV);
  *desc = (mem_desc){.dk = d->DK, .dv = d->DV, .dh = a->hidden, .act = a->act,
                     .loss_scale = a->loss_scale, .chunk = a->chunk, .reset = a->reset,
                     .read = a->read, .qkproj = a->qkproj, .momentum = a->momentum,
                     .decay = a->decay, .bias = a->bias, .ln_residual = a->ln_residual,
                     .ln_eps = a->ln_eps, .ttt_lr = a->ttt_lr, .ttt_base = a->ttt_base,
                     .ttt_div = a->ttt_div};
  /* Weights and state are small (a few matrices per head); bound the dimensions so that
   * their products cannot overflow. */
  if (d->DK > (1 << 20) || d->DV > (1 << 20) || a->hidden > (1 << 20))
    return xy_fail(err, XY_E_LIMIT, "%s '%s': DK, DV and hidden are limited to 2^20", kind,
                   op->name);
  d->NW = mem_weights_count(desc);
  mem_state_layout_of(desc, &d->state);

  int64_t qs[] = {d->B, d->L, d->H, d->DK}, vs[] = {d->B, d->L, d->H, d->DV};
  int64_t gate[] = {d->B, d->L, d->H}, w[] = {d->H, d->NW}, ln[] = {d->H, d->DV};
  int64_t off[] = {a->chunk}, st[] = {d->B, d->H, d->state.count};
  if ((rc = ir_shape_expect(op, "k", &m->tensors[op->in[MS_K]].shape, 4, qs, "as q", err)) ||
      (rc = ir_shape_expect(op, "v", v, 4, vs, "B, L, H from q", err)) ||
      (rc = ir_shape_expect(op, "theta", &m->tensors[op->in[MS_THETA]].shape, 3, gate,
                            "one learning rate per token and head", err)) ||
      (rc = expect_slot(m, op, MS_ETA, a->momentum, "momentum", 3, gate,
                        "one momentum gate per token and head", err)) ||
      (rc = expect_slot(m, op, MS_ALPHA, a->decay, "decay", 3, gate,
                        "one decay gate per token and head", err)) ||
      (op->in[MS_WINIT] >= 0 &&
       (rc = ir_shape_expect(op, "W_init", &m->tensors[op->in[MS_WINIT]].shape, 2, w,
                             "per head, the memory's weights flat", err))) ||
      (rc = expect_slot(m, op, MS_GAMMA, a->ln_residual, "the ln_residual wrapper", 2, ln,
                        "per head", err)) ||
      (rc = expect_slot(m, op, MS_BETA, a->ln_residual, "the ln_residual wrapper", 2, ln,
                        "per head", err)) ||
      (rc = expect_slot(m, op, MS_OFFSET, a->ttt_lr, "lr 'ttt_matrix'", 1, off,
                        "one offset per position of a chunk", err)))
    return rc;
  if (op->in[MS_STATE] >= 0)
    return ir_shape_expect(op, "state_in", &m->tensors[op->in[MS_STATE]].shape, 3, st,
                           "the streaming state of each batch element and head", err);
  return XY_OK;
}

int memory_scan_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  memory_dims d;
  mem_desc desc;
  int rc = memory_dims_of(m, op, &d, &desc, err);
  if (rc)
    return rc;
  int64_t y[] = {d.B, d.L, d.H, d.DV}, st[] = {d.B, d.H, d.state.count};
  outs[MS_Y] = ir_shape_make(4, y);
  outs[MS_STATE_OUT] = ir_shape_make(3, st);
  return XY_OK;
}

void memory_print_attrs(const ir_op *op, xy_buf *out)
{
  const ir_memory_attrs *a = &op->attr.memory;
  static const char *reads[] = {"inclusive", "chunk_start", "exclusive"};
  static const char *qk[] = {"none", "shard", "chunk"};
  xy_buf_printf(out, " chunk=%lld reset=%lld read=%s qkproj=%s", (long long)a->chunk,
                (long long)a->reset, reads[a->read], qk[a->qkproj]);
  if (a->hidden > 0)
    xy_buf_printf(out, " mlp=%lld act=%s", (long long)a->hidden,
                  a->act == MEM_ACT_SILU ? "silu" : "gelu_tanh");
  xy_buf_printf(out, " loss_scale=%g", a->loss_scale);
  if (a->bias)
    xy_buf_printf(out, " bias");
  if (a->ln_residual)
    xy_buf_printf(out, " ln_residual(eps=%g)", a->ln_eps);
  if (a->ttt_lr)
    xy_buf_printf(out, " ttt_lr(base=%g div=%g)", a->ttt_base, a->ttt_div);
  if (a->momentum)
    xy_buf_printf(out, " momentum");
  if (a->decay)
    xy_buf_printf(out, " decay");
}

/* Gathers the strided [B,L,H,n] rows of (b, h) into a contiguous [L][n]. */
static void gather(const double *src, const memory_dims *d, int64_t b, int64_t h, int64_t n,
                   double *dst)
{
  for (int64_t t = 0; t < d->L; t++)
    memcpy(dst + t * n, src + ((b * d->L + t) * d->H + h) * n, (size_t)n * sizeof(double));
}

int interp_memory_scan(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  memory_dims d;
  mem_desc desc;
  int rc = memory_dims_of(m, op, &d, &desc, err);
  if (rc)
    return rc;
  const double *in[MS_STATE + 1];
  for (int s = 0; s <= MS_STATE; s++)
    in[s] = op->in[s] >= 0 ? vals[op->in[s]] : NULL;
  desc.ttt_offset = in[MS_OFFSET];
  int64_t L = d.L, NS = d.state.count;
  size_t sz = sizeof(double);
  double *q = malloc((size_t)(L * d.DK) * sz), *k = malloc((size_t)(L * d.DK) * sz);
  double *v = malloc((size_t)(L * d.DV) * sz), *y = malloc((size_t)(L * d.DV) * sz);
  double *gates = malloc((size_t)(3 * L) * sz), *state = malloc((size_t)NS * sz);
  double *zeros = in[MS_WINIT] ? NULL : calloc((size_t)d.NW, sz); /* init zero */
  if (!q || !k || !v || !y || !gates || !state || (!in[MS_WINIT] && !zeros)) {
    rc = xy_fail(err, XY_E_NOMEM, "interpreter: out of memory for %s", op->name);
    goto done;
  }
  double *yout = vals[op->out[MS_Y]];
  double *sout = op->out[MS_STATE_OUT] >= 0 ? vals[op->out[MS_STATE_OUT]] : NULL;
  for (int64_t b = 0; b < d.B && !rc; b++) {
    for (int64_t h = 0; h < d.H && !rc; h++) {
      gather(in[MS_Q], &d, b, h, d.DK, q);
      gather(in[MS_K], &d, b, h, d.DK, k);
      gather(in[MS_V], &d, b, h, d.DV, v);
      for (int g = 0; g < 3; g++) /* theta, eta, alpha */
        if (in[MS_THETA + g])
          gather(in[MS_THETA + g], &d, b, h, 1, gates + g * L);
      mem_streams st = {q, k, v, gates, in[MS_ETA] ? gates + L : NULL,
                        in[MS_ALPHA] ? gates + 2 * L : NULL,
                        in[MS_GAMMA] ? in[MS_GAMMA] + h * d.DV : NULL,
                        in[MS_BETA] ? in[MS_BETA] + h * d.DV : NULL};
      const double *w_init = in[MS_WINIT] ? in[MS_WINIT] + h * d.NW : zeros;
      if (in[MS_STATE])
        memcpy(state, in[MS_STATE] + (b * d.H + h) * NS, (size_t)NS * sz);
      else
        mem_state_init(&desc, w_init, state);
      rc = mem_oracle_run(&desc, L, &st, w_init, state, y, err);
      for (int64_t t = 0; t < L && !rc; t++)
        memcpy(yout + ((b * L + t) * d.H + h) * d.DV, y + t * d.DV, (size_t)d.DV * sz);
      if (sout && !rc)
        memcpy(sout + (b * d.H + h) * NS, state, (size_t)NS * sz);
    }
  }
done:
  free(q);
  free(k);
  free(v);
  free(y);
  free(gates);
  free(state);
  free(zeros);
  return rc;
}
