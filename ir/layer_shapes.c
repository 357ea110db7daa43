/* layer_shapes.c: the shape rules of the ordinary layer ops (ops.def). Each checks its
 * operands and attributes and computes the output's shape; messages name the op kind, the
 * op and the cause ("linear 'l0.query': ..."). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph_ir.h"

/* ------------------------------------------------------------------ helpers */

/* The shape of input slot `slot`, or NULL when the slot is empty or out of range. */
static const ir_shape *in_shape(const ir_module *m, const ir_op *op, int slot)
{
  int t = op->in[slot];
  return t >= 0 && t < m->n_tensors ? &m->tensors[t].shape : NULL;
}

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
  const ir_op_info *info = ir_op_info_of(op->code);
  return xy_fail(err, code, "%s '%s': %s", info ? info->name : "op", op->name, why);
}

/* "[2,3]" into buf. */
static const char *shape_str(const ir_shape *s, char *buf, size_t n)
{
  xy_buf b;
  xy_buf_init(&b);
  ir_shape_print(s, &b);
  snprintf(buf, n, "%s", b.data && !b.failed ? b.data : "[?]");
  xy_buf_free(&b);
  return buf;
}

/* A required input: present, with a valid shape. */
static int need(const ir_module *m, const ir_op *op, int slot, const ir_shape **s,
                xy_error *err)
{
  *s = in_shape(m, op, slot);
  if (!*s)
    return op_fail(err, XY_E_SPEC, op, "input %s is missing",
                   ir_op_info_of(op->code)->in_names[slot]);
  if ((*s)->rank < 0 || (*s)->rank > IR_MAX_RANK || ir_shape_count(*s) < 0)
    return op_fail(err, XY_E_SHAPE, op, "input %s has a bad shape",
                   ir_op_info_of(op->code)->in_names[slot]);
  return XY_OK;
}

/* An optional input: NULL when absent, else checked like a required one. */
static int maybe(const ir_module *m, const ir_op *op, int slot, const ir_shape **s,
                 xy_error *err)
{
  *s = in_shape(m, op, slot);
  return *s ? need(m, op, slot, s, err) : XY_OK;
}

static int finite_attr(const ir_op *op, const char *name, double v, xy_error *err)
{
  return isfinite(v) ? XY_OK : op_fail(err, XY_E_SPEC, op, "%s must be finite, not %g", name, v);
}

/* ------------------------------------------------------------------ linear */

int linear_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_linear_attrs *a = &op->attr.linear;
  const ir_shape *x, *w, *b;
  int rc;
  if ((rc = need(m, op, 0, &x, err)) || (rc = maybe(m, op, 1, &w, err)) ||
      (rc = maybe(m, op, 2, &b, err)))
    return rc;
  if (x->rank < 1)
    return op_fail(err, XY_E_SHAPE, op, "x must have at least one axis (the features)");
  if (a->groups < 1 || a->subheads < 1 || a->features < 1)
    return op_fail(err, XY_E_SPEC, op, "groups %lld, subheads %lld and features %lld must be "
                   "at least 1", (long long)a->groups, (long long)a->subheads,
                   (long long)a->features);
  if (a->order != IR_W_GFSC && a->order != IR_W_GSFC)
    return op_fail(err, XY_E_SPEC, op, "unknown weight order %d", (int)a->order);
  if ((rc = finite_attr(op, "scale", a->scale, err)))
    return rc;
  if (!w && !b)
    return op_fail(err, XY_E_SPEC, op, "needs a weight, a bias or both");
  int64_t N, C = x->d[x->rank - 1];
  if (!xy_mul_i64(a->groups, a->subheads, &N) || !xy_mul_i64(N, a->features, &N) ||
      N > INT32_MAX)
    return op_fail(err, XY_E_LIMIT, op, "groups x subheads x features overflows");
  char sb[160];
  if (w) {
    if (C % a->subheads != 0)
      return op_fail(err, XY_E_SHAPE, op, "x's last axis %lld is not divisible by subheads %lld",
                     (long long)C, (long long)a->subheads);
    int64_t want;
    if (!xy_mul_i64(N, C / a->subheads, &want))
      return op_fail(err, XY_E_LIMIT, op, "the weight's element count overflows");
    if (ir_shape_count(w) != want)
      return op_fail(err, XY_E_SHAPE, op, "weight %s has %lld elements, expected groups %lld x "
                     "features %lld x subheads %lld x %lld inputs each = %lld",
                     shape_str(w, sb, sizeof sb), (long long)ir_shape_count(w),
                     (long long)a->groups, (long long)a->features, (long long)a->subheads,
                     (long long)(C / a->subheads), (long long)want);
  }
  if (b && ir_shape_count(b) != N)
    return op_fail(err, XY_E_SHAPE, op, "bias %s has %lld elements, expected groups x subheads "
                   "x features = %lld", shape_str(b, sb, sizeof sb),
                   (long long)ir_shape_count(b), (long long)N);
  outs[0] = *x;
  outs[0].d[x->rank - 1] = N;
  if (ir_shape_count(&outs[0]) < 0)
    return op_fail(err, XY_E_LIMIT, op, "the output's element count overflows");
  return XY_OK;
}

/* ------------------------------------------------------------------ elementwise */

static const char *const act_names[IR_ACT_COUNT] = {
  [IR_ACT_IDENTITY] = "identity", [IR_ACT_SIGMOID] = "sigmoid",
  [IR_ACT_SIGMOID_POW] = "sigmoid_pow", [IR_ACT_TANH_GAIN] = "tanh_gain",
  [IR_ACT_TANH_SCALED] = "tanh_scaled", [IR_ACT_EXPEXP] = "expexp",
  [IR_ACT_ONE_MINUS] = "one_minus", [IR_ACT_SILU] = "silu",
  [IR_ACT_SIGMOID_SCALED] = "sigmoid_scaled",
};

static const char *const bin_names[IR_BIN_COUNT] = {
  [IR_BIN_ADD] = "add", [IR_BIN_SUB] = "sub", [IR_BIN_MUL] = "mul",
};

int activation_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_act_attrs *a = &op->attr.act;
  const ir_shape *x;
  int rc;
  if ((rc = need(m, op, 0, &x, err)))
    return rc;
  if ((int)a->kind < 0 || a->kind >= IR_ACT_COUNT)
    return op_fail(err, XY_E_SPEC, op, "unknown activation kind %d", (int)a->kind);
  if ((rc = finite_attr(op, "p", a->p, err)))
    return rc;
  if (a->kind == IR_ACT_TANH_SCALED && a->p == 0)
    return op_fail(err, XY_E_SPEC, op, "tanh_scaled needs p != 0 (it computes p tanh(x / p))");
  outs[0] = *x;
  return XY_OK;
}

int binary_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_shape *a, *b;
  int rc;
  if ((rc = need(m, op, 0, &a, err)) || (rc = need(m, op, 1, &b, err)))
    return rc;
  if ((int)op->attr.binary < 0 || op->attr.binary >= IR_BIN_COUNT)
    return op_fail(err, XY_E_SPEC, op, "unknown binary kind %d", (int)op->attr.binary);
  if (!ir_shape_equal(a, b)) {
    char sa[160], sb[160];
    return op_fail(err, XY_E_SHAPE, op, "a %s and b %s must have the same shape",
                   shape_str(a, sa, sizeof sa), shape_str(b, sb, sizeof sb));
  }
  outs[0] = *a;
  return XY_OK;
}

/* ------------------------------------------------------------------ rmsnorm_heads */

int rmsnorm_heads_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_norm_attrs *a = &op->attr.norm;
  const ir_shape *x, *scale;
  int rc;
  if ((rc = need(m, op, 0, &x, err)) || (rc = maybe(m, op, 1, &scale, err)))
    return rc;
  if (x->rank < 1)
    return op_fail(err, XY_E_SHAPE, op, "x must have at least one axis (the features)");
  if (a->heads < 1)
    return op_fail(err, XY_E_SPEC, op, "heads must be at least 1, not %lld", (long long)a->heads);
  if (!isfinite(a->eps) || a->eps < 0)
    return op_fail(err, XY_E_SPEC, op, "eps must be finite and not negative, not %g", a->eps);
  int64_t last = x->d[x->rank - 1];
  if (last % a->heads != 0)
    return op_fail(err, XY_E_SHAPE, op, "x's last axis %lld is not divisible by heads %lld",
                   (long long)last, (long long)a->heads);
  if (scale && ir_shape_count(scale) != last) {
    char sb[160];
    return op_fail(err, XY_E_SHAPE, op, "scale %s has %lld elements, expected heads %lld x "
                   "%lld features = %lld", shape_str(scale, sb, sizeof sb),
                   (long long)ir_shape_count(scale), (long long)a->heads,
                   (long long)(last / a->heads), (long long)last);
  }
  outs[0] = *x;
  return XY_OK;
}

/* ------------------------------------------------------------------ conv_causal */

int conv_causal_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  int64_t K = op->attr.conv.kernel;
  const ir_shape *x, *w, *b;
  int rc;
  if ((rc = need(m, op, 0, &x, err)) || (rc = need(m, op, 1, &w, err)) ||
      (rc = maybe(m, op, 2, &b, err)))
    return rc;
  if (x->rank != 3 && x->rank != 4)
    return op_fail(err, XY_E_SHAPE, op, "x must be [B,L,C] (1D) or [B,X,Y,C] (2D), not rank %d",
                   x->rank);
  if (K < 1)
    return op_fail(err, XY_E_SPEC, op, "kernel must be at least 1, not %lld", (long long)K);
  int spatial = x->rank - 2;
  int64_t C = x->d[x->rank - 1];
  char sw[160], want[160];
  int64_t wd[4] = {C, 1, K, K};
  ir_shape ws = ir_shape_make(2 + spatial, wd);
  if (!ir_shape_equal(w, &ws))
    return op_fail(err, XY_E_SHAPE, op, "weight %s must be %s (channels, 1, kernel%s)",
                   shape_str(w, sw, sizeof sw), shape_str(&ws, want, sizeof want),
                   spatial == 2 ? ", kernel" : "");
  if (b && (b->rank != 1 || b->d[0] != C))
    return op_fail(err, XY_E_SHAPE, op, "bias %s must be [%lld] (one per channel)",
                   shape_str(b, sw, sizeof sw), (long long)C);
  outs[0] = *x;
  return XY_OK;
}

/* ------------------------------------------------------------------ transpose */

int transpose_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_transpose_attrs *a = &op->attr.transpose;
  const ir_shape *x;
  int rc;
  if ((rc = need(m, op, 0, &x, err)))
    return rc;
  const ir_shape *v = &a->view;
  if (v->rank < 1 || v->rank > IR_MAX_RANK)
    return op_fail(err, XY_E_SPEC, op, "view rank %d is outside 1..%d", v->rank, IR_MAX_RANK);
  for (int i = 0; i < v->rank; i++)
    if (v->d[i] < 0)
      return op_fail(err, XY_E_SPEC, op, "view axis %d has negative size %lld", i,
                     (long long)v->d[i]);
  char sx[160], sv[160];
  if (ir_shape_count(v) < 0 || ir_shape_count(v) != ir_shape_count(x))
    return op_fail(err, XY_E_SHAPE, op, "view %s has another element count than x %s",
                   shape_str(v, sv, sizeof sv), shape_str(x, sx, sizeof sx));
  bool seen[IR_MAX_RANK] = {false};
  ir_shape y = {.rank = v->rank};
  for (int i = 0; i < v->rank; i++) {
    int p = a->perm[i];
    if (p < 0 || p >= v->rank || seen[p])
      return op_fail(err, XY_E_SPEC, op, "perm is not a permutation of the view's %d axes "
                     "(entry %d is %d)", v->rank, i, p);
    seen[p] = true;
    y.d[i] = v->d[p];
  }
  outs[0] = y;
  return XY_OK;
}

/* ------------------------------------------------------------------ transition_exp */

int transition_exp_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_trans_exp_attrs *a = &op->attr.trans_exp;
  const ir_shape *ain, *lam, *aout;
  int rc;
  if ((rc = need(m, op, 0, &ain, err)) || (rc = need(m, op, 1, &lam, err)) ||
      (rc = need(m, op, 2, &aout, err)))
    return rc;
  if ((rc = finite_attr(op, "factor", a->factor, err)))
    return rc;
  if (a->order < 1 || a->order > 64)
    return op_fail(err, XY_E_SPEC, op, "order (terms of the series) must be in 1..64, not %lld",
                   (long long)a->order);
  char s1[160], s2[160];
  if (ain->rank < 2 || ain->d[ain->rank - 1] != ain->d[ain->rank - 2])
    return op_fail(err, XY_E_SHAPE, op, "a_in %s must be [..., JT, JT]",
                   shape_str(ain, s1, sizeof s1));
  if (!ir_shape_equal(ain, aout))
    return op_fail(err, XY_E_SHAPE, op, "a_out %s must have a_in's shape %s",
                   shape_str(aout, s1, sizeof s1), shape_str(ain, s2, sizeof s2));
  bool ok = lam->rank == ain->rank - 1;
  for (int i = 0; ok && i < lam->rank; i++)
    ok = lam->d[i] == ain->d[i];
  if (!ok)
    return op_fail(err, XY_E_SHAPE, op, "lam %s must be a_in's shape %s without its last axis",
                   shape_str(lam, s1, sizeof s1), shape_str(ain, s2, sizeof s2));
  outs[0] = *ain;
  return XY_OK;
}

/* ------------------------------------------------------------------ printing */

void layer_op_print_attrs(const ir_op *op, xy_buf *out)
{
  switch (op->code) {
  case IR_OP_LINEAR: {
    const ir_linear_attrs *a = &op->attr.linear;
    xy_buf_printf(out, " groups=%lld subheads=%lld features=%lld order=%s scale=%.9g",
                  (long long)a->groups, (long long)a->subheads, (long long)a->features,
                  a->order == IR_W_GSFC ? "gsfc" : "gfsc", a->scale);
    break;
  }
  case IR_OP_ACTIVATION: {
    const ir_act_attrs *a = &op->attr.act;
    bool known = (int)a->kind >= 0 && a->kind < IR_ACT_COUNT;
    xy_buf_printf(out, " kind=%s", known ? act_names[a->kind] : "?");
    if (known && a->kind != IR_ACT_IDENTITY && a->kind != IR_ACT_SIGMOID &&
        a->kind != IR_ACT_ONE_MINUS && a->kind != IR_ACT_SILU)
      xy_buf_printf(out, " p=%.9g", a->p);
    break;
  }
  case IR_OP_BINARY: {
    bool known = (int)op->attr.binary >= 0 && op->attr.binary < IR_BIN_COUNT;
    xy_buf_printf(out, " kind=%s", known ? bin_names[op->attr.binary] : "?");
    break;
  }
  case IR_OP_RMSNORM_HEADS:
    xy_buf_printf(out, " heads=%lld eps=%.9g%s", (long long)op->attr.norm.heads,
                  op->attr.norm.eps, op->attr.norm.l2 ? " l2" : "");
    break;
  case IR_OP_CONV_CAUSAL:
    xy_buf_printf(out, " kernel=%lld", (long long)op->attr.conv.kernel);
    break;
  case IR_OP_TRANSPOSE: {
    const ir_transpose_attrs *a = &op->attr.transpose;
    xy_buf_puts(out, " view=");
    ir_shape_print(&a->view, out);
    xy_buf_puts(out, " perm=[");
    for (int i = 0; i < a->view.rank && i < IR_MAX_RANK; i++)
      xy_buf_printf(out, i ? ",%d" : "%d", a->perm[i]);
    xy_buf_putc(out, ']');
    break;
  }
  case IR_OP_TRANSITION_EXP:
    xy_buf_printf(out, " factor=%.9g order=%lld", op->attr.trans_exp.factor,
                  (long long)op->attr.trans_exp.order);
    break;
  default:
    break;
  }
}
