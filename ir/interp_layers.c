/* interp_layers.c: the float64 meaning of the ordinary layer ops, each the formula of
 * ops.def looped in the most direct order. Shapes were checked by ir_verify. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"

static const ir_shape *shape_of(const ir_module *m, int t)
{
  return &m->tensors[t].shape;
}

static size_t count_of(const ir_module *m, int t)
{
  return (size_t)ir_shape_count(shape_of(m, t));
}

/* Product of all but the last axis: the positions a feature axis is repeated over. */
static size_t leading(const ir_shape *s)
{
  size_t n = 1;
  for (int i = 0; i + 1 < s->rank; i++)
    n *= (size_t)s->d[i];
  return n;
}

/* ------------------------------------------------------------------ linear */

/* Where W(g, s, f, c) lives for the two orders of ops.def. */
static size_t weight_index(const ir_linear_attrs *a, int64_t Cs, int64_t g, int64_t s,
                           int64_t f, int64_t c)
{
  int64_t G_F_S = a->order == IR_W_GFSC ? (g * a->features + f) * a->subheads + s
                                        : (g * a->subheads + s) * a->features + f;
  return (size_t)(G_F_S * Cs + c);
}

int interp_linear(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  const ir_linear_attrs *a = &op->attr.linear;
  const ir_shape *xs = shape_of(m, op->in[0]);
  const double *x = vals[op->in[0]];
  const double *w = op->in[1] >= 0 ? vals[op->in[1]] : NULL;
  const double *b = op->in[2] >= 0 ? vals[op->in[2]] : NULL;
  double *y = vals[op->out[0]];
  int64_t G = a->groups, S = a->subheads, F = a->features, N = G * S * F;
  int64_t C = xs->d[xs->rank - 1], Cs = C / S;
  size_t P = leading(xs);
  for (size_t p = 0; p < P; p++)
    for (int64_t g = 0; g < G; g++)
      for (int64_t s = 0; s < S; s++)
        for (int64_t f = 0; f < F; f++) {
          int64_t n = (g * S + s) * F + f;
          double acc = 0;
          for (int64_t c = 0; w && c < Cs; c++)
            acc += w[weight_index(a, Cs, g, s, f, c)] * x[p * (size_t)C + (size_t)(s * Cs + c)];
          y[p * (size_t)N + (size_t)n] = (b ? b[n] : 0.0) + a->scale * acc;
        }
  return XY_OK;
}

/* ------------------------------------------------------------------ elementwise */

/* log(sigmoid(x)) without overflow: -log1p(exp(-x)) for x >= 0, x - log1p(exp(x)) below. */
static double log_sigmoid(double x)
{
  return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

static double activate(ir_act_kind kind, double p, double x)
{
  switch (kind) {
  case IR_ACT_IDENTITY: return x;
  case IR_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
  case IR_ACT_SIGMOID_POW: return exp(p * log_sigmoid(x));
  case IR_ACT_TANH_GAIN: return tanh(p * x);
  case IR_ACT_TANH_SCALED: return p * tanh(x / p);
  case IR_ACT_EXPEXP: return exp(-p * exp(-x));
  case IR_ACT_ONE_MINUS: return 1.0 - x;
  case IR_ACT_SILU: return x / (1.0 + exp(-x));
  case IR_ACT_SIGMOID_SCALED: return p / (1.0 + exp(-x));
  case IR_ACT_COUNT: break;
  }
  return NAN;
}

int interp_activation(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  size_t n = count_of(m, op->in[0]);
  const double *x = vals[op->in[0]];
  double *y = vals[op->out[0]];
  for (size_t i = 0; i < n; i++)
    y[i] = activate(op->attr.act.kind, op->attr.act.p, x[i]);
  return XY_OK;
}

int interp_binary(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  size_t n = count_of(m, op->in[0]);
  const double *a = vals[op->in[0]], *b = vals[op->in[1]];
  double *y = vals[op->out[0]];
  for (size_t i = 0; i < n; i++) {
    switch (op->attr.binary) {
    case IR_BIN_ADD: y[i] = a[i] + b[i]; break;
    case IR_BIN_SUB: y[i] = a[i] - b[i]; break;
    case IR_BIN_MUL: y[i] = a[i] * b[i]; break;
    case IR_BIN_COUNT: y[i] = NAN; break;
    }
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ rmsnorm_heads */

int interp_rmsnorm_heads(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  const ir_shape *xs = shape_of(m, op->in[0]);
  const double *x = vals[op->in[0]];
  const double *scale = op->in[1] >= 0 ? vals[op->in[1]] : NULL;
  double *y = vals[op->out[0]];
  int64_t H = op->attr.norm.heads, last = xs->d[xs->rank - 1], F = last / H;
  size_t rows = leading(xs);
  for (size_t r = 0; r < rows; r++)
    for (int64_t h = 0; h < H; h++) {
      size_t base = r * (size_t)last + (size_t)(h * F);
      double ss = 0;
      for (int64_t f = 0; f < F; f++)
        ss += x[base + (size_t)f] * x[base + (size_t)f];
      double mean = op->attr.norm.l2 ? ss : ss / (double)F;
      double inv = 1.0 / sqrt(mean + op->attr.norm.eps);
      for (int64_t f = 0; f < F; f++)
        y[base + (size_t)f] = x[base + (size_t)f] * inv * (scale ? scale[h * F + f] : 1.0);
    }
  return XY_OK;
}

/* ------------------------------------------------------------------ conv_causal */

int interp_conv_causal(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  const ir_shape *xs = shape_of(m, op->in[0]);
  const double *x = vals[op->in[0]], *w = vals[op->in[1]];
  const double *bias = op->in[2] >= 0 ? vals[op->in[2]] : NULL;
  double *y = vals[op->out[0]];
  int64_t K = op->attr.conv.kernel, B = xs->d[0], C = xs->d[xs->rank - 1];
  bool two_d = xs->rank == 4;
  int64_t X = xs->d[1], Y = two_d ? xs->d[2] : 1, KY = two_d ? K : 1;
  for (int64_t b = 0; b < B; b++)
    for (int64_t px = 0; px < X; px++)
      for (int64_t py = 0; py < Y; py++)
        for (int64_t c = 0; c < C; c++) {
          double acc = bias ? bias[c] : 0.0;
          for (int64_t i = 0; i < K; i++)
            for (int64_t j = 0; j < KY; j++) {
              int64_t sx = px - K + 1 + i, sy = two_d ? py - K + 1 + j : py;
              if (sx < 0 || sy < 0)
                continue; /* zero before the start of each axis */
              acc += w[(c * K + i) * KY + j] * x[((b * X + sx) * Y + sy) * C + c];
            }
          y[((b * X + px) * Y + py) * C + c] = acc;
        }
  return XY_OK;
}

/* ------------------------------------------------------------------ transpose */

int interp_transpose(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  const ir_transpose_attrs *a = &op->attr.transpose;
  const ir_shape *ys = shape_of(m, op->out[0]);
  const double *x = vals[op->in[0]];
  double *y = vals[op->out[0]];
  int r = a->view.rank;
  int64_t vstride[IR_MAX_RANK];
  int64_t s = 1;
  for (int i = r - 1; i >= 0; i--) {
    vstride[i] = s;
    s *= a->view.d[i];
  }
  size_t n = count_of(m, op->out[0]);
  for (size_t o = 0; o < n; o++) {
    /* y[i_0, ..., i_{r-1}] = x_view[j] with j[perm[i]] = i_i */
    size_t rest = o, src = 0;
    for (int i = r - 1; i >= 0; i--) {
      size_t coord = rest % (size_t)ys->d[i];
      rest /= (size_t)ys->d[i];
      src += coord * (size_t)vstride[a->perm[i]];
    }
    y[o] = x[src];
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ transition_exp */

/* U = sum_{k < order} K^k / k! with K = factor (A - A^T): the truncated series, summed by
 * accumulating term_k = term_{k-1} K / k. */
static void truncated_exp(const double *A, int64_t J, const ir_trans_exp_attrs *a, double *K,
                          double *term, double *next, double *U)
{
  for (int64_t i = 0; i < J; i++)
    for (int64_t j = 0; j < J; j++) {
      K[i * J + j] = a->factor * (A[i * J + j] - A[j * J + i]);
      term[i * J + j] = U[i * J + j] = i == j ? 1.0 : 0.0;
    }
  for (int64_t k = 1; k < a->order; k++) {
    for (int64_t i = 0; i < J; i++)
      for (int64_t j = 0; j < J; j++) {
        double acc = 0;
        for (int64_t t = 0; t < J; t++)
          acc += term[i * J + t] * K[t * J + j];
        next[i * J + j] = acc / (double)k;
      }
    for (int64_t e = 0; e < J * J; e++) {
      term[e] = next[e];
      U[e] += term[e];
    }
  }
}

int interp_transition_exp(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  const ir_shape *as = shape_of(m, op->in[0]);
  int64_t J = as->d[as->rank - 1];
  size_t JJ = (size_t)(J * J), rows = count_of(m, op->in[1]) / (J > 0 ? (size_t)J : 1);
  const double *ain = vals[op->in[0]], *lam = vals[op->in[1]], *aout = vals[op->in[2]];
  double *T = vals[op->out[0]];
  if (J == 0)
    return XY_OK;
  double *work = malloc(5 * JJ * sizeof *work);
  if (!work)
    return xy_fail(err, XY_E_NOMEM, "interpreter: out of memory");
  double *K = work, *term = K + JJ, *next = term + JJ, *Uin = next + JJ, *Uout = Uin + JJ;
  for (size_t r = 0; r < rows; r++) {
    truncated_exp(ain + r * JJ, J, &op->attr.trans_exp, K, term, next, Uin);
    truncated_exp(aout + r * JJ, J, &op->attr.trans_exp, K, term, next, Uout);
    for (int64_t i = 0; i < J; i++)
      for (int64_t j = 0; j < J; j++) {
        double acc = 0;
        for (int64_t t = 0; t < J; t++)
          acc += Uout[i * J + t] * lam[r * (size_t)J + (size_t)t] * Uin[t * J + j];
        T[r * JJ + (size_t)(i * J + j)] = acc;
      }
  }
  free(work);
  return XY_OK;
}
