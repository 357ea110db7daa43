/* test_layer_ops.c: the ordinary layer ops (linear, activation, binary, rmsnorm_heads,
 * conv_causal, transpose, transition_exp): shape rules and their messages, attribute dumps,
 * and interpreter values against numbers computed independently here. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp.h"
#include "ir_build.h"

/* ------------------------------------------------------------------ building modules */

/* Deterministic values in [lo, hi). */
static double uniform(unsigned *s, double lo, double hi)
{
  *s = *s * 1103515245u + 12345u;
  return lo + (hi - lo) * (double)((*s >> 8) & 0xffffff) / 16777216.0;
}

typedef struct uniform_fill {
  unsigned seed;
  double lo, hi;
} uniform_fill;

static double fill_uniform(void *ctx, int input, size_t j)
{
  uniform_fill *u = ctx;
  (void)input;
  (void)j;
  return uniform(&u->seed, u->lo, u->hi);
}

/* Random values for every input, runs the interpreter; the caller frees with irb_release. */
static double **interpret(ir_module *m, unsigned seed, double lo, double hi)
{
  m->batch = m->batch > 0 ? m->batch : 1;
  uniform_fill u = {seed, lo, hi};
  return irb_interpret(m, fill_uniform, &u);
}

static char *dump(const ir_module *m)
{
  xy_buf b;
  xy_buf_init(&b);
  ir_print(m, &b);
  return xy_buf_take(&b);
}

/* ------------------------------------------------------------------ shape rules */

static void linear_shapes_and_errors(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("lin");
  int64_t xd[] = {2, 3, 8}, wd[] = {2, 3, 2, 4}, bd[] = {12}, w2d[] = {5, 7};
  int x = irb_input(m, "x", 3, xd), w = irb_input(m, "w", 4, wd), b = irb_input(m, "b", 1, bd);
  int wbad = irb_input(m, "wbad", 2, w2d);
  ir_linear_attrs a = {.groups = 2, .subheads = 2, .features = 3, .order = IR_W_GFSC, .scale = 1};
  int oi = irb_new_op(m, IR_OP_LINEAR, "l0.query", x, w, b);
  m->ops[oi].attr.linear = a;
  int y = irb_finish_ok(m, oi, "y");
  int64_t yd[] = {2, 3, 12};
  irb_expect_shape(m, y, 3, yd);
  char *text = dump(m);
  assert_non_null(text);
  assert_non_null(strstr(text, " groups=2 subheads=2 features=3 order=gfsc scale=1"));
  free(text);

  oi = irb_new_op(m, IR_OP_LINEAR, "bias_only", x, -1, b); /* x gives the leading dims */
  m->ops[oi].attr.linear = a;
  irb_expect_shape(m, irb_finish_ok(m, oi, "y2"), 3, yd);

  oi = irb_new_op(m, IR_OP_LINEAR, "l0.none", x, -1, -1);
  m->ops[oi].attr.linear = a;
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "linear 'l0.none'", "needs a weight");
  oi = irb_new_op(m, IR_OP_LINEAR, "l0.wcount", x, wbad, -1);
  m->ops[oi].attr.linear = a;
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "linear 'l0.wcount': weight [5,7] has 35 elements", "= 48");
  oi = irb_new_op(m, IR_OP_LINEAR, "l0.sub", x, w, -1);
  m->ops[oi].attr.linear = a;
  m->ops[oi].attr.linear.subheads = 3;
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "not divisible by subheads 3", NULL);
  oi = irb_new_op(m, IR_OP_LINEAR, "l0.bias", x, -1, b);
  m->ops[oi].attr.linear = a;
  m->ops[oi].attr.linear.features = 4;
  m->ops[oi].attr.linear.groups = 1;
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "bias [12] has 12 elements, expected groups x subheads x features = 8", NULL);
  oi = irb_new_op(m, IR_OP_LINEAR, "l0.zero", x, w, b);
  m->ops[oi].attr.linear = a;
  m->ops[oi].attr.linear.groups = 0;
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "must be at least 1", NULL);
  oi = irb_new_op(m, IR_OP_LINEAR, "l0.order", x, w, b);
  m->ops[oi].attr.linear = a;
  m->ops[oi].attr.linear.order = (ir_weight_order)7;
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "unknown weight order", NULL);
  oi = irb_new_op(m, IR_OP_LINEAR, "l0.scale", x, w, b);
  m->ops[oi].attr.linear = a;
  m->ops[oi].attr.linear.scale = NAN;
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "scale must be finite", NULL);
  ir_module_free(m);
}

static void elementwise_and_norm_shapes(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("ew");
  int64_t xd[] = {4, 6}, zd[] = {4, 5}, sd[] = {2, 3}, s2[] = {7};
  int x = irb_input(m, "x", 2, xd), z = irb_input(m, "z", 2, zd), sc = irb_input(m, "sc", 2, sd);
  int sbad = irb_input(m, "sbad", 1, s2);
  int oi = irb_new_op(m, IR_OP_ACTIVATION, "act", x, -1, -1);
  m->ops[oi].attr.act = (ir_act_attrs){IR_ACT_SIGMOID_POW, 2.0};
  irb_expect_shape(m, irb_finish_ok(m, oi, "y"), 2, xd);
  oi = irb_new_op(m, IR_OP_ACTIVATION, "act0", x, -1, -1);
  m->ops[oi].attr.act = (ir_act_attrs){IR_ACT_TANH_SCALED, 0.0};
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "activation 'act0'", "p != 0");
  oi = irb_new_op(m, IR_OP_ACTIVATION, "act_lr", x, -1, -1);
  m->ops[oi].attr.act = (ir_act_attrs){IR_ACT_SIGMOID_SCALED, 0.5};
  irb_finish_ok(m, oi, "y_lr");
  oi = irb_new_op(m, IR_OP_ACTIVATION, "act_silu", x, -1, -1);
  m->ops[oi].attr.act = (ir_act_attrs){IR_ACT_SILU, 0.0};
  irb_finish_ok(m, oi, "y_silu");
  oi = irb_new_op(m, IR_OP_ACTIVATION, "actk", x, -1, -1);
  m->ops[oi].attr.act = (ir_act_attrs){IR_ACT_COUNT, 1.0};
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "unknown activation kind", NULL);
  oi = irb_new_op(m, IR_OP_BINARY, "bin", x, x, -1);
  m->ops[oi].attr.binary = IR_BIN_MUL;
  irb_expect_shape(m, irb_finish_ok(m, oi, "y2"), 2, xd);
  oi = irb_new_op(m, IR_OP_BINARY, "binbad", x, z, -1);
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "binary 'binbad': a [4,6] and b [4,5]", NULL);
  oi = irb_new_op(m, IR_OP_BINARY, "binmiss", x, -1, -1);
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "input b is missing", NULL);
  oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "norm", x, sc, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){2, 1e-5, false};
  irb_expect_shape(m, irb_finish_ok(m, oi, "y3"), 2, xd);
  oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "norm_l2", x, -1, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){3, 1e-12, true};
  irb_expect_shape(m, irb_finish_ok(m, oi, "y_l2"), 2, xd);
  oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "norm4", x, -1, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){4, 1e-5, false};
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "rmsnorm_heads 'norm4'", "not divisible by heads 4");
  oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "normsc", x, sbad, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){2, 1e-5, false};
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "scale [7] has 7 elements", NULL);
  oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "normeps", x, -1, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){2, -1, false};
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "eps must be", NULL);
  char *text = dump(m);
  assert_non_null(text);
  assert_non_null(strstr(text, " kind=sigmoid_pow p=2"));
  assert_non_null(strstr(text, " kind=mul"));
  assert_non_null(strstr(text, " heads=2 eps=1e-05\n"));
  assert_non_null(strstr(text, " heads=3 eps=1e-12 l2\n"));
  assert_non_null(strstr(text, " kind=sigmoid_scaled p=0.5"));
  assert_non_null(strstr(text, " kind=silu\n"));
  free(text);
  ir_module_free(m);
}

static void conv_transpose_trans_shapes(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("ct");
  int64_t x1[] = {2, 9, 5}, w1[] = {5, 1, 3}, x2[] = {2, 4, 6, 5}, w2[] = {5, 1, 3, 3}, bd[] = {5};
  int xa = irb_input(m, "xa", 3, x1), wa = irb_input(m, "wa", 3, w1), xb = irb_input(m, "xb", 4, x2);
  int wb = irb_input(m, "wb", 4, w2), b = irb_input(m, "b", 1, bd);
  int oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "conv1", xa, wa, b);
  m->ops[oi].attr.conv.kernel = 3;
  irb_expect_shape(m, irb_finish_ok(m, oi, "y1"), 3, x1);
  oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "conv2", xb, wb, -1);
  m->ops[oi].attr.conv.kernel = 3;
  irb_expect_shape(m, irb_finish_ok(m, oi, "y2"), 4, x2);
  oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "convk", xb, wb, -1);
  m->ops[oi].attr.conv.kernel = 4;
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "conv_causal 'convk': weight [5,1,3,3] must be [5,1,4,4]", NULL);
  oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "convw", xa, wb, -1);
  m->ops[oi].attr.conv.kernel = 3;
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "must be [5,1,3]", NULL);
  oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "convr", b, wa, -1);
  m->ops[oi].attr.conv.kernel = 3;
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "x must be [B,L,C]", NULL);
  oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "convb", xa, wa, xa);
  m->ops[oi].attr.conv.kernel = 3;
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "bias [2,9,5] must be [5]", NULL);

  /* [2,4,6,5] viewed as [2,24,5], permuted to [5,2,24] */
  oi = irb_new_op(m, IR_OP_TRANSPOSE, "tr", xb, -1, -1);
  int64_t view[] = {2, 24, 5}, yd[] = {5, 2, 24};
  m->ops[oi].attr.transpose.view = ir_shape_make(3, view);
  int perm[] = {2, 0, 1};
  memcpy(m->ops[oi].attr.transpose.perm, perm, sizeof perm);
  irb_expect_shape(m, irb_finish_ok(m, oi, "y3"), 3, yd);
  oi = irb_new_op(m, IR_OP_TRANSPOSE, "trperm", xb, -1, -1);
  m->ops[oi].attr.transpose.view = ir_shape_make(3, view);
  int dup[] = {2, 0, 2};
  memcpy(m->ops[oi].attr.transpose.perm, dup, sizeof dup);
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "transpose 'trperm': perm is not a permutation", NULL);
  oi = irb_new_op(m, IR_OP_TRANSPOSE, "trview", xb, -1, -1);
  int64_t v2[] = {2, 24, 4};
  m->ops[oi].attr.transpose.view = ir_shape_make(3, v2);
  memcpy(m->ops[oi].attr.transpose.perm, perm, sizeof perm);
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "view [2,24,4] has another element count than x [2,4,6,5]", NULL);

  int64_t ad[] = {3, 2, 4, 4}, ld[] = {3, 2, 4}, lbad[] = {3, 2, 3};
  int ain = irb_input(m, "ain", 4, ad), lam = irb_input(m, "lam", 3, ld), aout = irb_input(m, "aout", 4, ad);
  int lb = irb_input(m, "lb", 3, lbad);
  oi = irb_new_op(m, IR_OP_TRANSITION_EXP, "T", ain, lam, aout);
  m->ops[oi].attr.trans_exp = (ir_trans_exp_attrs){1.0, 16};
  irb_expect_shape(m, irb_finish_ok(m, oi, "y4"), 4, ad);
  oi = irb_new_op(m, IR_OP_TRANSITION_EXP, "Tl", ain, lb, aout);
  m->ops[oi].attr.trans_exp = (ir_trans_exp_attrs){1.0, 16};
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "transition_exp 'Tl': lam [3,2,3]", NULL);
  oi = irb_new_op(m, IR_OP_TRANSITION_EXP, "Ta", ain, lam, lam);
  m->ops[oi].attr.trans_exp = (ir_trans_exp_attrs){1.0, 16};
  irb_expect_error(m, oi, "bad", XY_E_SHAPE, "a_out [3,2,4] must have a_in's shape", NULL);
  oi = irb_new_op(m, IR_OP_TRANSITION_EXP, "To", ain, lam, aout);
  m->ops[oi].attr.trans_exp = (ir_trans_exp_attrs){1.0, 0};
  irb_expect_error(m, oi, "bad", XY_E_SPEC, "order", NULL);
  char *text = dump(m);
  assert_non_null(text);
  assert_non_null(strstr(text, " kernel=3"));
  assert_non_null(strstr(text, " view=[2,24,5] perm=[2,0,1]"));
  assert_non_null(strstr(text, " factor=1 order=16"));
  free(text);
  ir_module_free(m);
}

/* ------------------------------------------------------------------ interpreter values */

/* linear against a naive loop over the reference's weight layouts, both orders. */
static void linear_values(void **state)
{
  (void)state;
  for (int order = 0; order < 2; order++) {
    ir_module *m = ir_module_new("lin");
    int64_t G = 2, S = 3, F = 2, Cs = 4, C = S * Cs, P = 5;
    int64_t xd[] = {P, C}, wd[] = {G, F, S, Cs}, wd2[] = {G, S, F, Cs}, bd[] = {G * S * F};
    int x = irb_input(m, "x", 2, xd), w = irb_input(m, "w", 4, order ? wd2 : wd), b = irb_input(m, "b", 1, bd);
    int oi = irb_new_op(m, IR_OP_LINEAR, "lin", x, w, b);
    m->ops[oi].attr.linear = (ir_linear_attrs){G, S, F, order ? IR_W_GSFC : IR_W_GFSC, 0.5};
    int y = irb_finish_ok(m, oi, "y");
    int oi2 = irb_new_op(m, IR_OP_LINEAR, "bias_only", x, -1, b);
    m->ops[oi2].attr.linear = m->ops[oi].attr.linear;
    int y2 = irb_finish_ok(m, oi2, "y2");
    double **v = interpret(m, 3u + (unsigned)order, -1, 1);
    for (int64_t p = 0; p < P; p++)
      for (int64_t g = 0; g < G; g++)
        for (int64_t s = 0; s < S; s++)
          for (int64_t f = 0; f < F; f++) {
            double acc = 0;
            for (int64_t c = 0; c < Cs; c++) {
              int64_t wi = order ? ((g * S + s) * F + f) * Cs + c : ((g * F + f) * S + s) * Cs + c;
              acc += v[w][wi] * v[x][p * C + s * Cs + c];
            }
            int64_t n = (g * S + s) * F + f;
            assert_true(fabs(v[y][p * G * S * F + n] - (v[b][n] + 0.5 * acc)) < 1e-14);
            assert_true(v[y2][p * G * S * F + n] == v[b][n]);
          }
    irb_release(m, v);
  }
}

/* Every activation at a few points, sigmoid_pow finite and accurate at +-100. */
static void activation_values(void **state)
{
  (void)state;
  static const double xs[] = {-100, -3, -0.5, 0, 0.25, 2, 100};
  static const struct {
    ir_act_kind kind;
    double p;
  } kinds[] = {{IR_ACT_IDENTITY, 0}, {IR_ACT_SIGMOID, 0}, {IR_ACT_SIGMOID_POW, 1},
               {IR_ACT_SIGMOID_POW, 5}, {IR_ACT_TANH_GAIN, 5}, {IR_ACT_TANH_SCALED, 2},
               {IR_ACT_EXPEXP, 5}, {IR_ACT_ONE_MINUS, 0}, {IR_ACT_SILU, 0},
               {IR_ACT_SIGMOID_SCALED, 0.7}};
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    ir_module *m = ir_module_new("act");
    int64_t d[] = {7};
    int x = irb_input(m, "x", 1, d);
    int oi = irb_new_op(m, IR_OP_ACTIVATION, "act", x, -1, -1);
    m->ops[oi].attr.act = (ir_act_attrs){kinds[k].kind, kinds[k].p};
    int y = irb_finish_ok(m, oi, "y");
    double **v = interpret(m, 1, 0, 1);
    memcpy(v[x], xs, sizeof xs);
    xy_error err;
    assert_int_equal(ir_interpret(m, v, &err), XY_OK);
    for (int i = 0; i < 7; i++) {
      double t = xs[i], p = kinds[k].p, want = 0;
      switch (kinds[k].kind) {
      case IR_ACT_IDENTITY: want = t; break;
      case IR_ACT_SIGMOID: want = 1 / (1 + exp(-t)); break;
      case IR_ACT_SIGMOID_POW: want = pow(1 / (1 + exp(-t)), p); break;
      case IR_ACT_TANH_GAIN: want = tanh(p * t); break;
      case IR_ACT_TANH_SCALED: want = p * tanh(t / p); break;
      case IR_ACT_EXPEXP: want = exp(-p * exp(-t)); break;
      case IR_ACT_SILU: want = t * (1 / (1 + exp(-t))); break;
      case IR_ACT_SIGMOID_SCALED: want = p * (1 / (1 + exp(-t))); break;
      default: want = 1 - t; break;
      }
      double got = v[y][i];
      assert_true(isfinite(got));
      if (!(fabs(got - want) <= 1e-13 * fabs(want) + 1e-300))
        fail_msg("kind %d p %g at %g: %.17g, expected %.17g", (int)kinds[k].kind, p, t, got, want);
    }
    if (kinds[k].kind == IR_ACT_SIGMOID_POW) {
      /* at -100 the gate is e^(-100 p) (tiny, not 0 or NaN); at +100 it is 1 - p e^-100 */
      assert_true(v[y][0] > 0 && fabs(log(v[y][0]) + 100 * kinds[k].p) < 1e-9);
      assert_true(v[y][6] <= 1.0 && v[y][6] > 0.999999);
    }
    irb_release(m, v);
  }
}

static void binary_and_norm_values(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("bn");
  int64_t d[] = {3, 8}, sd[] = {2, 4};
  int a = irb_input(m, "a", 2, d), bb = irb_input(m, "b", 2, d), sc = irb_input(m, "sc", 2, sd);
  int ys[3];
  for (int k = 0; k < 3; k++) {
    int oi = irb_new_op(m, IR_OP_BINARY, k == 0 ? "add" : k == 1 ? "sub" : "mul", a, bb, -1);
    m->ops[oi].attr.binary = (ir_binary_kind)k;
    ys[k] = irb_finish_ok(m, oi, k == 0 ? "y_add" : k == 1 ? "y_sub" : "y_mul");
  }
  int oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "norm", a, sc, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){2, 1e-5, false};
  int yn = irb_finish_ok(m, oi, "y_norm");
  oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "norm1", a, -1, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){1, 0.0, false};
  int y1 = irb_finish_ok(m, oi, "y_norm1");
  oi = irb_new_op(m, IR_OP_RMSNORM_HEADS, "norm_l2", a, -1, -1);
  m->ops[oi].attr.norm = (ir_norm_attrs){2, 1e-12, true};
  int yl = irb_finish_ok(m, oi, "y_l2");
  double **v = interpret(m, 9, -2, 2);
  for (int i = 0; i < 24; i++) {
    assert_true(v[ys[0]][i] == v[a][i] + v[bb][i]);
    assert_true(v[ys[1]][i] == v[a][i] - v[bb][i]);
    assert_true(v[ys[2]][i] == v[a][i] * v[bb][i]);
  }
  for (int r = 0; r < 3; r++) {
    for (int h = 0; h < 2; h++) {
      double ss = 0;
      for (int f = 0; f < 4; f++)
        ss += v[a][r * 8 + h * 4 + f] * v[a][r * 8 + h * 4 + f];
      for (int f = 0; f < 4; f++) {
        double want = v[a][r * 8 + h * 4 + f] / sqrt(ss / 4 + 1e-5) * v[sc][h * 4 + f];
        assert_true(fabs(v[yn][r * 8 + h * 4 + f] - want) < 1e-14);
        want = v[a][r * 8 + h * 4 + f] / sqrt(ss + 1e-12); /* l2: the sum, not the mean */
        assert_true(fabs(v[yl][r * 8 + h * 4 + f] - want) < 1e-14);
      }
    }
    double rms = 0; /* one head, no eps, no scale: the row has mean square 1 */
    for (int f = 0; f < 8; f++)
      rms += v[y1][r * 8 + f] * v[y1][r * 8 + f];
    assert_true(fabs(rms / 8 - 1) < 1e-14);
  }
  irb_release(m, v);
}

static void conv_values(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("conv");
  int64_t x1[] = {2, 6, 3}, w1[] = {3, 1, 4}, x2[] = {1, 4, 5, 2}, w2[] = {2, 1, 3, 3};
  int64_t b1[] = {3};
  int xa = irb_input(m, "xa", 3, x1), wa = irb_input(m, "wa", 3, w1), ba = irb_input(m, "ba", 1, b1);
  int xb = irb_input(m, "xb", 4, x2), wb = irb_input(m, "wb", 4, w2);
  int oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "c1", xa, wa, ba);
  m->ops[oi].attr.conv.kernel = 4;
  int y1 = irb_finish_ok(m, oi, "y1");
  oi = irb_new_op(m, IR_OP_CONV_CAUSAL, "c2", xb, wb, -1);
  m->ops[oi].attr.conv.kernel = 3;
  int y2 = irb_finish_ok(m, oi, "y2");
  double **v = interpret(m, 5, -1, 1);
  for (int b = 0; b < 2; b++)
    for (int t = 0; t < 6; t++)
      for (int c = 0; c < 3; c++) {
        double want = v[ba][c];
        for (int i = 0; i < 4; i++) /* x[t - 3 + i], zero before t = 0 */
          if (t - 3 + i >= 0)
            want += v[wa][c * 4 + i] * v[xa][(b * 6 + t - 3 + i) * 3 + c];
        assert_true(fabs(v[y1][(b * 6 + t) * 3 + c] - want) < 1e-14);
      }
  /* 2D: the output at (x, y) sees x-2..x and y-2..y only; check one corner by hand */
  double corner = 0;
  for (int c = 0; c < 2; c++) {
    corner = v[wb][c * 9 + 8] * v[xb][0 * 2 + c]; /* (0,0): only tap (2,2) */
    assert_true(fabs(v[y2][c] - corner) < 1e-14);
  }
  for (int px = 0; px < 4; px++)
    for (int py = 0; py < 5; py++)
      for (int c = 0; c < 2; c++) {
        double want = 0;
        for (int i = 0; i < 3; i++)
          for (int j = 0; j < 3; j++) {
            int sx = px - 2 + i, sy = py - 2 + j;
            if (sx >= 0 && sy >= 0)
              want += v[wb][(c * 3 + i) * 3 + j] * v[xb][(sx * 5 + sy) * 2 + c];
          }
        assert_true(fabs(v[y2][(px * 5 + py) * 2 + c] - want) < 1e-14);
      }
  irb_release(m, v);
}

static void transpose_values(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("tr");
  int64_t xd[] = {2, 3, 4, 5};
  int x = irb_input(m, "x", 4, xd);
  /* view [2, 12, 5] -> perm (2, 0, 1) -> [5, 2, 12] */
  int oi = irb_new_op(m, IR_OP_TRANSPOSE, "tr", x, -1, -1);
  int64_t view[] = {2, 12, 5};
  int perm[] = {2, 0, 1};
  m->ops[oi].attr.transpose.view = ir_shape_make(3, view);
  memcpy(m->ops[oi].attr.transpose.perm, perm, sizeof perm);
  int y = irb_finish_ok(m, oi, "y");
  double **v = interpret(m, 2, -1, 1);
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 2; b++)
      for (int c = 0; c < 12; c++)
        assert_true(v[y][(a * 2 + b) * 12 + c] == v[x][(b * 12 + c) * 5 + a]);
  irb_release(m, v);
}

/* U for a 2x2 A: K = f (A - A^T) = [[0, k], [-k, 0]] with k = f (A01 - A10), and K^2 = -k^2 I,
 * so the 16-term series is c I + s [[0, 1], [-1, 0]] with c, s the truncated cosine and sine. */
static void series_2x2(const double *A, double f, double U[4])
{
  double k = f * (A[1] - A[2]), c = 0, s = 0, fact = 1;
  for (int n = 0; n < 16; n++) {
    if (n > 0)
      fact *= n;
    double t = pow(k, n) / fact;
    if (n % 2 == 0)
      c += (n / 2 % 2 ? -1 : 1) * t;
    else
      s += ((n - 1) / 2 % 2 ? -1 : 1) * t;
  }
  U[0] = c;
  U[1] = s;
  U[2] = -s;
  U[3] = c;
}

static void transition_exp_values(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("te");
  int64_t ad[] = {3, 2, 2}, ld[] = {3, 2};
  int ain = irb_input(m, "ain", 3, ad), lam = irb_input(m, "lam", 2, ld), aout = irb_input(m, "aout", 3, ad);
  int oi = irb_new_op(m, IR_OP_TRANSITION_EXP, "T", ain, lam, aout);
  m->ops[oi].attr.trans_exp = (ir_trans_exp_attrs){1.5, 16};
  int T = irb_finish_ok(m, oi, "T_out");
  /* a second op with order 3 against the plain sum I + K + K^2/2 of a 3x3 */
  int64_t a3[] = {1, 3, 3}, l3[] = {1, 3};
  int b_in = irb_input(m, "b_in", 3, a3), b_lam = irb_input(m, "b_lam", 2, l3), b_out = irb_input(m, "b_out", 3, a3);
  oi = irb_new_op(m, IR_OP_TRANSITION_EXP, "T3", b_in, b_lam, b_out);
  m->ops[oi].attr.trans_exp = (ir_trans_exp_attrs){0.7, 3};
  int T3 = irb_finish_ok(m, oi, "T3_out");
  double **v = interpret(m, 11, -1.5, 1.5);
  for (int r = 0; r < 3; r++) {
    double Ui[4], Uo[4];
    series_2x2(v[ain] + 4 * r, 1.5, Ui);
    series_2x2(v[aout] + 4 * r, 1.5, Uo);
    /* the truncation is visible: U is not exactly orthogonal for |k| this large */
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++) {
        double want = 0;
        for (int t = 0; t < 2; t++)
          want += Uo[i * 2 + t] * v[lam][r * 2 + t] * Ui[t * 2 + j];
        double got = v[T][r * 4 + i * 2 + j];
        if (!(fabs(got - want) < 1e-12))
          fail_msg("row %d (%d,%d): %.17g, expected %.17g", r, i, j, got, want);
      }
  }
  double U[2][9];
  for (int w = 0; w < 2; w++) {
    const double *A = v[w ? b_out : b_in];
    double K[9], K2[9];
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++)
        K[i * 3 + j] = 0.7 * (A[i * 3 + j] - A[j * 3 + i]);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) {
        K2[i * 3 + j] = 0;
        for (int t = 0; t < 3; t++)
          K2[i * 3 + j] += K[i * 3 + t] * K[t * 3 + j];
        U[w][i * 3 + j] = (i == j) + K[i * 3 + j] + K2[i * 3 + j] / 2;
      }
  }
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      double want = 0;
      for (int t = 0; t < 3; t++)
        want += U[1][i * 3 + t] * v[b_lam][t] * U[0][t * 3 + j];
      assert_true(fabs(v[T3][i * 3 + j] - want) < 1e-13);
    }
  irb_release(m, v);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(linear_shapes_and_errors),
    cmocka_unit_test(elementwise_and_norm_shapes),
    cmocka_unit_test(conv_transpose_trans_shapes),
    cmocka_unit_test(linear_values),
    cmocka_unit_test(activation_values),
    cmocka_unit_test(binary_and_norm_values),
    cmocka_unit_test(conv_values),
    cmocka_unit_test(transpose_values),
    cmocka_unit_test(transition_exp_values),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
