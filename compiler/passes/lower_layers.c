/*
 * lower_layers.c: the ordinary layer ops to kernel IR. linear (a block GEMM) lives in
 * lower_layer_linear.c; this file holds the dispatch and the memory-bound ops:
 *
 *   activation, binary  one work-item per VL consecutive elements (the math functions
 *                       apply lane by lane)
 *   rmsnorm_heads       one work-item per (position, head): sum of squares on VL lanes, then
 *                       the scaled row (divided by the root mean square, or with l2 by the
 *                       root of the sum)
 *   conv_causal         the weights transposed to [tap][channel] first (a tiny launch), then
 *                       one work-item per position and VL channels
 *   transpose           axes of size 1 dropped and axes that stay neighbours merged; when
 *                       the last axis stays last, rows copy on VL lanes, else one element per
 *                       work-item
 *   transition_exp      one work-item per JT x JT matrix, the truncated series in private
 *                       memory
 */
#include <stdio.h>
#include <string.h>

#include "lower_expr.h"
#include "lower_layers.h"

/* ------------------------------------------------------------------ shared helpers */

int layer_lanes(int want, int64_t n)
{
  int VL = want >= 16 ? 16 : want >= 8 ? 8 : want >= 4 ? 4 : want >= 2 ? 2 : 1;
  while (VL > 1 && n % VL != 0)
    VL /= 2;
  return VL;
}

int layer_launch(lower_ctx *lc, int kernel, int64_t g0, int64_t g1, const kir_arg *args,
                 int n_args, double flops, double bytes)
{
  int64_t groups[3] = {g0 > 0 ? g0 : 1, g1 > 0 ? g1 : 1, 1};
  if (kir_add_launch(lc->k, kernel, groups, args, n_args, flops, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}

int layer_wg(const lower_ctx *lc, int auto_wg)
{
  int64_t cap = (int64_t)lc->opt->device.max_work_group_size;
  int64_t wg = lc->opt->wg > 0 ? lc->opt->wg : auto_wg;
  if (wg > cap)
    wg = cap;
  return wg < 1 ? 1 : (int)wg;
}

/* The vector width asked for (--lanes), else the device's: wide on CPUs, where explicit
 * vectors are what makes PoCL fast, float4 elsewhere. */
static int want_lanes(const lower_ctx *lc)
{
  if (lc->opt->lanes > 0)
    return lc->opt->lanes;
  return lc->opt->device.is_cpu ? 16 : 4;
}

int64_t layer_ceil_div(int64_t a, int64_t b)
{
  return (a + b - 1) / b;
}

int64_t layer_count_of(const lower_ctx *lc, int t)
{
  return ir_shape_count(&lc->m->tensors[t].shape);
}

int layer_finish(kir_builder *b, lower_ctx *lc, int kid)
{
  int rc = kb_finish(b, lc->err);
  return rc ? rc : kid < 0 ? xy_fail(lc->err, XY_E_NOMEM, "out of memory") : XY_OK;
}

int layer_open_items(kir_builder *b, int wg, int64_t n)
{
  int lane = kb_parfor(b, "lane", I(wg));
  int item = kb_let(b, "item", KT_INT, MAD(GID(0), wg, V(lane)));
  kb_if(b, LT(V(item), I(n)));
  return item;
}

void layer_close_items(kir_builder *b)
{
  kb_end(b);
  kb_end(b);
}

/* ------------------------------------------------------------------ elementwise */

/* The activation of x (a variable, scalar or vector). */
static kir_expr *activation_expr(kir_builder *b, const ir_act_attrs *a, kir_expr *x)
{
  double p = a->p;
  kir_expr *neg = SUB(F(0), x);
  switch (a->kind) {
  case IR_ACT_IDENTITY:
    return x;
  case IR_ACT_SIGMOID:
    return DIV(F(1), ADD(F(1), kx_call(b, KF_EXP, neg, NULL, NULL)));
  case IR_ACT_SIGMOID_POW: {
    /* log sigmoid(x) = min(x, 0) - log(1 + exp(-|x|)): no overflow on either side; the
     * log(1 + e) of a tiny e loses only what float32 cannot hold anyway */
    kir_expr *e = kx_call(b, KF_EXP, SUB(F(0), kx_call(b, KF_FABS, x, NULL, NULL)), NULL, NULL);
    kir_expr *ls = SUB(MIN(x, F(0)), kx_call(b, KF_LOG, ADD(F(1), e), NULL, NULL));
    return kx_call(b, KF_EXP, MUL(F(p), ls), NULL, NULL);
  }
  case IR_ACT_TANH_GAIN:
    return kx_call(b, KF_TANH, MUL(F(p), x), NULL, NULL);
  case IR_ACT_TANH_SCALED:
    return MUL(F(p), kx_call(b, KF_TANH, DIV(x, F(p)), NULL, NULL));
  case IR_ACT_EXPEXP:
    return kx_call(b, KF_EXP, MUL(F(-p), kx_call(b, KF_EXP, neg, NULL, NULL)), NULL, NULL);
  case IR_ACT_ONE_MINUS:
    return SUB(F(1), x);
  case IR_ACT_SILU: /* x / (1 + e^-x): -0 where e^-x overflows, no inf * 0 */
    return DIV(x, ADD(F(1), kx_call(b, KF_EXP, neg, NULL, NULL)));
  case IR_ACT_SIGMOID_SCALED:
    return DIV(F(p), ADD(F(1), kx_call(b, KF_EXP, neg, NULL, NULL)));
  case IR_ACT_COUNT:
    break;
  }
  return NULL;
}

static double activation_flops(ir_act_kind k)
{
  switch (k) {
  case IR_ACT_IDENTITY: return 0;
  case IR_ACT_ONE_MINUS: return 1;
  case IR_ACT_TANH_GAIN: case IR_ACT_SIGMOID: return 3;
  case IR_ACT_SILU: case IR_ACT_SIGMOID_SCALED: return 4;
  default: return 5;
  }
}

/* y = f(x) or y = a op b over n elements, VL at a time. */
static int lower_elementwise(lower_ctx *lc, const ir_op *op)
{
  bool act = op->code == IR_OP_ACTIVATION;
  int64_t n = layer_count_of(lc, op->out[0]);
  if (n == 0)
    return XY_OK;
  int VL = layer_lanes(want_lanes(lc), n);
  int64_t items = n / VL;
  int wg = layer_wg(lc, lower_wg(lc, items));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, act ? "act" : "binary"), wg, 1,
                      act ? "activation: y = f(x), VL elements per work-item."
                          : "binary: y = a op b, VL elements per work-item.");
  int n_in = act ? 1 : 2;
  int in[2];
  static const char *const names[2] = {"a", "b"};
  for (int i = 0; i < n_in; i++)
    in[i] = kb_global(b, act ? "x" : names[i], KT_FLOAT, n, true);
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, items);
  int e = kb_let(b, "e", KT_INT, MUL(V(item), I(VL)));
  int xv[2];
  for (int i = 0; i < n_in; i++)
    xv[i] = kb_let(b, act ? "x_v" : i ? "b_v" : "a_v", KT_FLOAT, kx_vload(b, in[i], V(e), VL));
  kir_expr *val = NULL;
  if (act) {
    val = activation_expr(b, &op->attr.act, V(xv[0]));
  } else {
    static const kir_binop ops[IR_BIN_COUNT] = {[IR_BIN_ADD] = KB_ADD, [IR_BIN_SUB] = KB_SUB,
                                                [IR_BIN_MUL] = KB_MUL};
    val = kx_bin(b, ops[op->attr.binary], V(xv[0]), V(xv[1]));
  }
  kb_store(b, y, V(e), val);
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[3];
  for (int i = 0; i < n_in; i++)
    args[i] = (kir_arg){true, lower_in(lc, op, i)};
  args[n_in] = (kir_arg){true, lower_out(lc, op, 0)};
  double flops = (act ? activation_flops(op->attr.act.kind) : 1.0) * (double)n;
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, n_in + 1, flops,
                      4.0 * (double)n * (double)(n_in + 1));
}

/* ------------------------------------------------------------------ rmsnorm_heads */

static int lower_rmsnorm(lower_ctx *lc, const ir_op *op)
{
  const ir_shape *xs = &lc->m->tensors[op->in[0]].shape;
  int64_t n = layer_count_of(lc, op->in[0]);
  int64_t H = op->attr.norm.heads, last = xs->d[xs->rank - 1], Fh = last / H;
  if (n == 0 || Fh == 0)
    return XY_OK;
  int64_t items = n / Fh; /* (position, head) pairs */
  int VL = layer_lanes(want_lanes(lc), Fh);
  int64_t nv = Fh / VL;
  bool has_scale = op->in[1] >= 0;
  double mean_of = op->attr.norm.l2 ? 1.0 : 1.0 / (double)Fh; /* l2: the sum itself */
  int wg = layer_wg(lc, lower_wg(lc, items));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "rmsnorm"), wg, 1,
                      op->attr.norm.l2
                          ? "rmsnorm_heads, l2: one work-item per (position, head) row of F\n"
                            "features: y = x / sqrt(sum(x^2) + eps) * scale[h, :], on VL lanes."
                          : "rmsnorm_heads: one work-item per (position, head) row of F features:\n"
                            "y = x / sqrt(mean(x^2) + eps) * scale[h, :], on VL lanes.");
  int x = kb_global(b, "x", KT_FLOAT, n, true);
  int scale = has_scale ? kb_global(b, "scale", KT_FLOAT, last, true) : -1;
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, items);
  int base = kb_let(b, "base", KT_INT, MUL(V(item), I(Fh)));
  int acc = kb_let(b, "acc", KT_FLOAT, kx_splat(b, F(0), VL));
  int f = kb_for(b, "f", I(0), I(nv));
  int v = kb_let(b, "v", KT_FLOAT, kx_vload(b, x, MAD(V(f), VL, V(base)), VL));
  kb_set(b, acc, ADD(V(acc), MUL(V(v), V(v))));
  kb_end(b);
  int inv = kb_let(b, "inv", KT_FLOAT,
                   DIV(F(1), kx_call(b, KF_SQRT, ADD(MUL(kx_hsum(b, V(acc)), F(mean_of)),
                                                     F(op->attr.norm.eps)), NULL, NULL)));
  int h = has_scale ? kb_let(b, "h", KT_INT, REM(V(item), I(H))) : -1;
  f = kb_for(b, "f", I(0), I(nv));
  kir_expr *val = MUL(kx_vload(b, x, MAD(V(f), VL, V(base)), VL), V(inv));
  if (has_scale)
    val = MUL(val, kx_vload(b, scale, MAD(V(h), Fh, MUL(V(f), I(VL))), VL));
  kb_store(b, y, MAD(V(f), VL, V(base)), val);
  kb_end(b);
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[3];
  int na = 0;
  args[na++] = (kir_arg){true, lower_in(lc, op, 0)};
  if (has_scale)
    args[na++] = (kir_arg){true, lower_in(lc, op, 1)};
  args[na++] = (kir_arg){true, lower_out(lc, op, 0)};
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, na, 4.0 * (double)n,
                      4.0 * (2.0 * (double)n + (has_scale ? (double)last : 0.0)));
}

/* ------------------------------------------------------------------ conv_causal */

/* wt[tap][c] = w[c][0][tap]: the weights along the channels, for vector loads. */
static int emit_conv_weights(lower_ctx *lc, const ir_op *op, int64_t C, int64_t taps, int bw,
                             int bwt)
{
  int64_t n = C * taps;
  int wg = layer_wg(lc, lower_wg(lc, n));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "conv_w"), wg, 1,
                      "conv_causal, step 1 of 2: the weights [C][taps] transposed to [taps][C].");
  int w = kb_global(b, "w", KT_FLOAT, n, true);
  int wt = kb_global(b, "wt", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, n);
  int tap = kb_let(b, "tap", KT_INT, DIV(V(item), I(C)));
  int c = kb_let(b, "c", KT_INT, REM(V(item), I(C)));
  kb_store(b, wt, V(item), LD(w, MAD(V(c), taps, V(tap))));
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[] = {{true, bw}, {true, bwt}};
  return layer_launch(lc, kid, layer_ceil_div(n, wg), 1, args, 2, 0.0, 8.0 * (double)n);
}

static int lower_conv(lower_ctx *lc, const ir_op *op)
{
  const ir_shape *xs = &lc->m->tensors[op->in[0]].shape;
  int64_t n = layer_count_of(lc, op->in[0]);
  if (n == 0)
    return XY_OK;
  bool two_d = xs->rank == 4;
  int64_t K = op->attr.conv.kernel, Bn = xs->d[0], X = xs->d[1], Y = two_d ? xs->d[2] : 1;
  int64_t C = xs->d[xs->rank - 1], taps = two_d ? K * K : K;
  bool has_bias = op->in[2] >= 0;
  int bwt = lower_temp(lc, lower_name(lc, op, "wt"), C * taps);
  if (bwt < 0)
    return lc->err->code;
  int rc = emit_conv_weights(lc, op, C, taps, lower_in(lc, op, 1), bwt);
  if (rc)
    return rc;
  int VL = layer_lanes(want_lanes(lc), C);
  int64_t CV = C / VL, items = Bn * X * Y * CV;
  int wg = layer_wg(lc, lower_wg(lc, items));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "conv"), wg, 1,
                      "conv_causal, step 2 of 2: one work-item per position and VL channels;\n"
                      "taps before the start of an axis read zero and are skipped.");
  int x = kb_global(b, "x", KT_FLOAT, n, true);
  int wt = kb_global(b, "wt", KT_FLOAT, C * taps, true);
  int bias = has_bias ? kb_global(b, "bias", KT_FLOAT, C, true) : -1;
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, items);
  int c0 = kb_let(b, "c0", KT_INT, MUL(REM(V(item), I(CV)), I(VL)));
  int pos = kb_let(b, "pos", KT_INT, DIV(V(item), I(CV)));
  int py = kb_let(b, "py", KT_INT, REM(V(pos), I(Y)));
  int px = kb_let(b, "px", KT_INT, REM(DIV(V(pos), I(Y)), I(X)));
  int row0 = kb_let(b, "row0", KT_INT, SUB(V(pos), MAD(V(px), Y, V(py)))); /* (b, 0, 0) */
  int acc = kb_let(b, "acc", KT_FLOAT, has_bias ? kx_vload(b, bias, V(c0), VL) : kx_splat(b, F(0), VL));
  int i = kb_for(b, "i", kx_bin(b, KB_MAX, I(0), SUB(I(K - 1), V(px))), I(K));
  int sx = kb_let(b, "sx", KT_INT, ADD(V(px), SUB(V(i), I(K - 1))));
  if (two_d) {
    int j = kb_for(b, "j", kx_bin(b, KB_MAX, I(0), SUB(I(K - 1), V(py))), I(K));
    int sy = kb_let(b, "sy", KT_INT, ADD(V(py), SUB(V(j), I(K - 1))));
    kir_expr *src = MAD(ADD(V(row0), MAD(V(sx), Y, V(sy))), C, V(c0));
    kir_expr *wv = kx_vload(b, wt, MAD(MAD(V(i), K, V(j)), C, V(c0)), VL);
    kb_set(b, acc, ADD(V(acc), MUL(kx_vload(b, x, src, VL), wv)));
    kb_end(b);
  } else {
    kir_expr *src = MAD(ADD(V(row0), V(sx)), C, V(c0));
    kb_set(b, acc, ADD(V(acc), MUL(kx_vload(b, x, src, VL), kx_vload(b, wt, MAD(V(i), C, V(c0)), VL))));
  }
  kb_end(b);
  kb_store(b, y, MAD(V(pos), C, V(c0)), V(acc));
  layer_close_items(b);
  rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[4];
  int na = 0;
  args[na++] = (kir_arg){true, lower_in(lc, op, 0)};
  args[na++] = (kir_arg){true, bwt};
  if (has_bias)
    args[na++] = (kir_arg){true, lower_in(lc, op, 2)};
  args[na++] = (kir_arg){true, lower_out(lc, op, 0)};
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, na, 2.0 * (double)n * (double)taps,
                      4.0 * (2.0 * (double)n + (double)(C * taps) + (has_bias ? (double)C : 0.0)));
}

/* ------------------------------------------------------------------ transpose */

/* The permutation in its simplest form: R output axes of sizes od, each advancing the
 * source by sd elements. Axes of size 1 are dropped, and output axes that are neighbours
 * in the view too are merged. R >= 1. */
typedef struct perm_form {
  int R;
  int64_t od[IR_MAX_RANK], sd[IR_MAX_RANK];
} perm_form;

static void simplify_perm(const ir_transpose_attrs *a, perm_form *pf)
{
  int r = a->view.rank, kr = 0, map[IR_MAX_RANK], perm[IR_MAX_RANK];
  int64_t v[IR_MAX_RANK];
  for (int k = 0; k < r; k++) { /* drop view axes of size 1 */
    map[k] = a->view.d[k] == 1 ? -1 : kr;
    if (a->view.d[k] != 1)
      v[kr++] = a->view.d[k];
  }
  int pr = 0;
  for (int i = 0; i < r; i++)
    if (map[a->perm[i]] >= 0)
      perm[pr++] = map[a->perm[i]];
  /* groups of output axes that are consecutive view axes too */
  int gstart[IR_MAX_RANK], gend[IR_MAX_RANK], ng = 0;
  for (int i = 0; i < pr; i++) {
    if (ng > 0 && perm[i] == gend[ng - 1] + 1) {
      gend[ng - 1] = perm[i];
      continue;
    }
    gstart[ng] = gend[ng] = perm[i];
    ng++;
  }
  pf->R = ng;
  if (ng == 0) {
    pf->R = 1;
    pf->od[0] = 1;
    pf->sd[0] = 1;
    return;
  }
  /* the stride of a group is that of its last view axis */
  int64_t vstride[IR_MAX_RANK], s = 1;
  for (int k = kr - 1; k >= 0; k--) {
    vstride[k] = s;
    s *= v[k];
  }
  for (int g = 0; g < ng; g++) {
    int64_t d = 1;
    for (int k = gstart[g]; k <= gend[g]; k++)
      d *= v[k];
    pf->od[g] = d;
    pf->sd[g] = vstride[gend[g]];
  }
}

static int lower_transpose(lower_ctx *lc, const ir_op *op)
{
  int64_t n = layer_count_of(lc, op->out[0]);
  if (n == 0)
    return XY_OK;
  perm_form pf;
  simplify_perm(&op->attr.transpose, &pf);
  int R = pf.R;
  bool rows = pf.sd[R - 1] == 1; /* the last axis stays last: rows copy as vectors */
  int64_t run = rows ? pf.od[R - 1] : 1;
  int VL = rows ? layer_lanes(want_lanes(lc), run) : 1;
  int64_t per_row = run / VL, items = n / VL;
  int outer = rows ? R - 1 : R; /* axes decomposed per item */
  int wg = layer_wg(lc, lower_wg(lc, items));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "transpose"), wg, 1,
                      rows ? "transpose: rows that stay contiguous copy VL elements per work-item."
                           : "transpose: one element per work-item, gathered.");
  int x = kb_global(b, "x", KT_FLOAT, n, true);
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, items);
  kir_expr *src = rows ? MUL(REM(V(item), I(per_row)), I(VL)) : I(0);
  int rest = kb_let(b, "rest", KT_INT, rows ? DIV(V(item), I(per_row)) : V(item));
  for (int g = outer - 1; g >= 0; g--) {
    kir_expr *coord = g > 0 ? REM(V(rest), I(pf.od[g])) : V(rest);
    src = ADD(src, MUL(coord, I(pf.sd[g])));
    if (g > 0)
      rest = kb_let(b, "rest", KT_INT, DIV(V(rest), I(pf.od[g])));
  }
  int s = kb_let(b, "src", KT_INT, src);
  kb_store(b, y, MUL(V(item), I(VL)), kx_vload(b, x, V(s), VL));
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[] = {{true, lower_in(lc, op, 0)}, {true, lower_out(lc, op, 0)}};
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, 2, 0.0, 8.0 * (double)n);
}

/* ------------------------------------------------------------------ transition_exp */

/* Up to this JT the matrices are unrolled: private arrays with constant indices, which
 * compilers keep in registers (indexed by loop variables they go to memory). */
enum { TE_UNROLL = 4 };

/* sum_t X[i][t] Y[t][j] as one expression, for constant i and j (unrolled form). */
static kir_expr *dot_row_col(kir_builder *b, int X, int Y, int64_t J, int64_t i, int64_t j)
{
  kir_expr *acc = NULL;
  for (int64_t t = 0; t < J; t++) {
    kir_expr *prod = MUL(LD(X, I(i * J + t)), LD(Y, I(t * J + j)));
    acc = acc ? ADD(acc, prod) : prod;
  }
  return acc;
}

/* U = sum_{k < order} K^k / k!, K = factor (A - A^T), from the matrix of A at `base`. */
static void emit_series(kir_builder *b, const ir_trans_exp_attrs *a, int64_t J, int A, int base,
                        int K, int term, int next, int U)
{
  if (J <= TE_UNROLL) {
    for (int64_t i = 0; i < J; i++)
      for (int64_t j = 0; j < J; j++) {
        kir_expr *ij = I(i * J + j);
        kb_store(b, K, ij, MUL(F(a->factor), SUB(LD(A, ADD(V(base), I(i * J + j))),
                                                 LD(A, ADD(V(base), I(j * J + i))))));
        kb_store(b, U, ij, F(i == j));
        kb_store(b, term, ij, F(i == j));
      }
    int k = kb_for(b, "k", I(1), I(a->order));
    int inv = kb_let(b, "inv", KT_FLOAT, DIV(F(1), kx_un(b, KU_TO_FLOAT, V(k))));
    for (int64_t i = 0; i < J; i++)
      for (int64_t j = 0; j < J; j++)
        kb_store(b, next, I(i * J + j), MUL(dot_row_col(b, term, K, J, i, j), V(inv)));
    for (int64_t e = 0; e < J * J; e++) {
      kb_store(b, term, I(e), LD(next, I(e)));
      kb_store(b, U, I(e), ADD(LD(U, I(e)), LD(next, I(e))));
    }
    kb_end(b);
    return;
  }
  kir_expr *i = jfor(b, "i", J);
  kir_expr *j = jfor(b, "j", J);
  kir_expr *ij = MAD(i, J, j);
  kb_store(b, K, ij, MUL(F(a->factor), SUB(LD(A, ADD(V(base), ij)), LD(A, ADD(V(base), MAD(j, J, i))))));
  kir_expr *one = SEL(kx_bin(b, KB_EQ, i, j), F(1), F(0));
  kb_store(b, U, ij, one);
  kb_store(b, term, ij, one);
  jend(b, J);
  jend(b, J);
  int k = kb_for(b, "k", I(1), I(a->order));
  int inv = kb_let(b, "inv", KT_FLOAT, DIV(F(1), kx_un(b, KU_TO_FLOAT, V(k))));
  i = jfor(b, "i", J);
  j = jfor(b, "j", J);
  int acc = kb_let(b, "acc", KT_FLOAT, F(0));
  kir_expr *t = jfor(b, "t", J);
  kb_set(b, acc, ADD(V(acc), MUL(LD(term, MAD(i, J, t)), LD(K, MAD(t, J, j)))));
  jend(b, J);
  kb_store(b, next, MAD(i, J, j), MUL(V(acc), V(inv)));
  jend(b, J);
  jend(b, J);
  kir_expr *e = jfor(b, "e", J * J);
  kb_store(b, term, e, LD(next, e));
  kb_store(b, U, e, ADD(LD(U, e), LD(next, e)));
  jend(b, J * J);
  kb_end(b);
}

static int lower_transition_exp(lower_ctx *lc, const ir_op *op)
{
  const ir_shape *as = &lc->m->tensors[op->in[0]].shape;
  int64_t J = as->d[as->rank - 1], n = layer_count_of(lc, op->in[0]);
  if (n == 0)
    return XY_OK;
  int64_t JJ = J * J, rows = n / JJ;
  int wg = layer_wg(lc, lower_wg(lc, rows));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "trans_exp"), wg, 1,
                      "transition_exp: one work-item per JT x JT transition,\n"
                      "T = U_out diag(lam) U_in, U = sum_{k<order} K^k / k!, K = f (A - A^T).");
  int ain = kb_global(b, "a_in", KT_FLOAT, n, true);
  int lam = kb_global(b, "lam", KT_FLOAT, rows * J, true);
  int aout = kb_global(b, "a_out", KT_FLOAT, n, true);
  int T = kb_global(b, "T", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, rows);
  int base = kb_let(b, "base", KT_INT, MUL(V(item), I(JJ)));
  int K = kb_private(b, "K", KT_FLOAT, JJ);
  int term = kb_private(b, "term", KT_FLOAT, JJ);
  int next = kb_private(b, "next", KT_FLOAT, JJ);
  int Uin = kb_private(b, "U_in", KT_FLOAT, JJ);
  int Uout = kb_private(b, "U_out", KT_FLOAT, JJ);
  emit_series(b, &op->attr.trans_exp, J, ain, base, K, term, next, Uin);
  emit_series(b, &op->attr.trans_exp, J, aout, base, K, term, next, Uout);
  if (J <= TE_UNROLL) {
    /* T = (U_out diag(lam)) U_in: U_out's columns scaled in place first */
    for (int64_t t = 0; t < J; t++) {
      int l = kb_let(b, "l", KT_FLOAT, LD(lam, MAD(V(item), J, I(t))));
      for (int64_t i = 0; i < J; i++)
        kb_store(b, Uout, I(i * J + t), MUL(LD(Uout, I(i * J + t)), V(l)));
    }
    for (int64_t i = 0; i < J; i++)
      for (int64_t j = 0; j < J; j++)
        kb_store(b, T, ADD(V(base), I(i * J + j)), dot_row_col(b, Uout, Uin, J, i, j));
  } else {
    kir_expr *i = jfor(b, "i", J);
    kir_expr *j = jfor(b, "j", J);
    int acc = kb_let(b, "acc", KT_FLOAT, F(0));
    kir_expr *t = jfor(b, "t", J);
    kb_set(b, acc, ADD(V(acc), MUL(MUL(LD(Uout, MAD(i, J, t)), LD(lam, MAD(V(item), J, t))),
                                   LD(Uin, MAD(t, J, j)))));
    jend(b, J);
    kb_store(b, T, ADD(V(base), MAD(i, J, j)), V(acc));
    jend(b, J);
    jend(b, J);
  }
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[] = {{true, lower_in(lc, op, 0)}, {true, lower_in(lc, op, 1)},
                    {true, lower_in(lc, op, 2)}, {true, lower_out(lc, op, 0)}};
  double per = 2.0 * 2.0 * (double)(op->attr.trans_exp.order - 1) * (double)(JJ * J) +
               3.0 * (double)(JJ * J);
  return layer_launch(lc, kid, layer_ceil_div(rows, wg), 1, args, 4, per * (double)rows,
                      4.0 * (3.0 * (double)n + (double)(rows * J)));
}

/* ------------------------------------------------------------------ dispatch */

int lower_layer_op(lower_ctx *lc, const ir_op *op)
{
  switch (op->code) {
  case IR_OP_LINEAR:
    return lower_linear(lc, op);
  case IR_OP_ACTIVATION:
  case IR_OP_BINARY:
    return lower_elementwise(lc, op);
  case IR_OP_RMSNORM_HEADS:
    return lower_rmsnorm(lc, op);
  case IR_OP_CONV_CAUSAL:
    return lower_conv(lc, op);
  case IR_OP_TRANSPOSE:
    return lower_transpose(lc, op);
  case IR_OP_TRANSITION_EXP:
    return lower_transition_exp(lc, op);
  case IR_OP_GRAPH_GATHER:
  case IR_OP_CONCAT:
  case IR_OP_GRAPH_PNORM:
    return lower_graph_layer_op(lc, op);
  default:
    break;
  }
  return xy_fail(lc->err, XY_E_INTERNAL, "'%s': %s is not a layer op", op->name,
                 ir_op_info_of(op->code)->name);
}
