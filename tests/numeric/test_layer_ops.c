/* test_layer_ops.c: the ordinary layer ops compiled for OpenCL (PoCL) and C against the
 * float64 interpreter, on hand-built modules with random inputs: ragged sizes, sub-heads,
 * both weight orders, optional operands, and several vector widths, register rows and
 * work-group sizes. Each case runs with the device the harness detects (the CPU schedule)
 * and as a package for an unknown device (the portable schedule, local-memory tiles), so
 * both lowerings of linear are checked on every machine.
 *
 * XYLEM_LAYER_TARGETS=opencl (or c) runs one target only. With XYLEM_LAYER_BENCH=1 (or
 * "only", which skips the checks) the last tests time linear on 8192 x 192 -> 576 and 192 (the
 * projections of a pLSTM layer: batch 32, 16 x 16 grid, dim 192) through the runtime's
 * profiling queue on the device XYLEM_DEVICE selects, and on the C target. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "op_check.h"
#include "ir_build.h"
#include "interp.h"
#include "program.h"

static const double TOL = 1e-5;

static xrt_context *own_ctx; /* the benchmark's profiling queue */

/* ------------------------------------------------------------------ running */

static int open_own_ctx(char *msg, size_t n)
{
  if (own_ctx)
    return 0;
  xrt_error *err = malloc(sizeof *err);
  assert_non_null(err);
  int rc = xrt_context_create(NULL, &own_ctx, err);
  if (rc)
    snprintf(msg, n, "no OpenCL device: %.4000s", err->message);
  free(err);
  return rc;
}

/* Every target, both schedules and the first n_knobs knob sets against the interpreter. */
static void check_model(ir_module *m, const char *what, double lo, double hi, bool extreme,
                        size_t n_knobs)
{
  const char *bench = getenv("XYLEM_LAYER_BENCH");
  if (bench && strcmp(bench, "only") == 0) { /* timing runs skip the checks */
    ir_module_free(m);
    return;
  }
  op_check_module(m, what, 1234, lo, hi, extreme, n_knobs, TOL);
}

static ir_module *module(const char *name)
{
  ir_module *m = ir_module_new(name);
  assert_non_null(m);
  m->batch = 1;
  return m;
}

/* ------------------------------------------------------------------ linear */

typedef struct lin_case {
  const char *what;
  int64_t P, C, G, S, F;
  ir_weight_order order;
  double scale;
  bool weight, bias;
} lin_case;

static void linear_cases(void **state)
{
  (void)state;
  static const lin_case cases[] = {
    {"linear dense 37x24->40 + bias", 37, 24, 1, 1, 40, IR_W_GFSC, 1.0, true, true},
    {"linear qkv gfsc G=2 S=3 F=6", 50, 24, 2, 3, 6, IR_W_GFSC, 1.0, true, true},
    {"linear gates gsfc G=2 S=4 F=2", 29, 16, 2, 4, 2, IR_W_GSFC, 0.5, true, true},
    {"linear gsfc S=12 F=1 (gate per channel)", 21, 48, 1, 12, 1, IR_W_GSFC, 1.0, true, true},
    {"linear orientation G=12 no bias", 33, 40, 12, 1, 1, IR_W_GFSC, 0.0125, true, false},
    {"linear passthrough S=C=24 F=1", 19, 24, 1, 24, 1, IR_W_GFSC, 1.0, true, false},
    {"linear outprojection G=20 F=1", 26, 20, 20, 1, 1, IR_W_GFSC, 1.0, true, false},
    {"linear long K=100 (chunks) -> 12", 70, 100, 1, 1, 12, IR_W_GFSC, 1.0, true, true},
    {"linear odd N=7", 9, 5, 1, 1, 7, IR_W_GFSC, 1.0, true, true},
    {"linear bias only", 33, 8, 2, 2, 3, IR_W_GFSC, 1.0, false, true},
    {"linear one row", 1, 16, 1, 2, 8, IR_W_GFSC, 2.0, true, true},
    {"linear narrow gfsc G=2 S=3 F=2 Cs=16 (dot)", 45, 48, 2, 3, 2, IR_W_GFSC, 0.75, true, true},
    {"linear narrow gsfc S=4 F=1 Cs=16 (dot)", 23, 64, 1, 4, 1, IR_W_GSFC, 1.0, true, false},
  };
  /* one module, one op per case: one compilation covers them all */
  ir_module *m = module("lin");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const lin_case *lc = &cases[i];
    int64_t xd[] = {lc->P, lc->C}, wd[] = {lc->G * lc->S * lc->F, lc->C / lc->S},
            bd[] = {lc->G * lc->S * lc->F};
    char name[32];
    snprintf(name, sizeof name, "x%zu", i);
    int x = irb_input(m, name, 2, xd);
    snprintf(name, sizeof name, "w%zu", i);
    int w = lc->weight ? irb_input(m, name, 2, wd) : -1;
    snprintf(name, sizeof name, "b%zu", i);
    int b = lc->bias ? irb_input(m, name, 1, bd) : -1;
    ir_op_attrs a = {.linear = {lc->G, lc->S, lc->F, lc->order, lc->scale}};
    snprintf(name, sizeof name, "lin%zu", i);
    irb_op(m, IR_OP_LINEAR, name, x, w, b, &a);
    print_message("  lin%zu_y: %s\n", i, lc->what);
  }
  /* a rank-4 input: leading dims fold into the positions */
  int64_t xd[] = {2, 3, 5, 32}, wd[] = {1, 16, 2, 16}, bd[] = {32};
  int x = irb_input(m, "xr", 4, xd), w = irb_input(m, "wr", 4, wd), b = irb_input(m, "br", 1, bd);
  ir_op_attrs a = {.linear = {1, 2, 16, IR_W_GFSC, 1.0}};
  irb_op(m, IR_OP_LINEAR, "lin_rank4", x, w, b, &a);
  check_model(m, "linear, 14 cases", -1, 1, false, OP_N_KNOBS);
}

/* ------------------------------------------------------------------ elementwise */

static void activation_cases(void **state)
{
  (void)state;
  static const struct {
    ir_act_kind kind;
    double p;
    const char *what;
  } kinds[] = {{IR_ACT_IDENTITY, 0, "identity"}, {IR_ACT_SIGMOID, 0, "sigmoid"},
               {IR_ACT_SIGMOID_POW, 1, "sigmoid_pow p=1"}, {IR_ACT_SIGMOID_POW, 5, "sigmoid_pow p=5"},
               {IR_ACT_TANH_GAIN, 5, "tanh_gain p=5"}, {IR_ACT_TANH_SCALED, 3, "tanh_scaled p=3"},
               {IR_ACT_EXPEXP, 5, "expexp p=5"}, {IR_ACT_ONE_MINUS, 0, "one_minus"},
               {IR_ACT_SILU, 0, "silu"}, {IR_ACT_SIGMOID_SCALED, 0.3, "sigmoid_scaled p=0.3"}};
  ir_module *m = module("act");
  int64_t xd[] = {5, 77};
  int x = irb_input(m, "x", 2, xd);
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    ir_op_attrs a = {.act = {kinds[k].kind, kinds[k].p}};
    char name[32];
    snprintf(name, sizeof name, "act%zu", k);
    irb_op(m, IR_OP_ACTIVATION, name, x, -1, -1, &a);
    print_message("  act%zu_y: %s\n", k, kinds[k].what);
  }
  check_model(m, "activation, every kind", -6, 6, true, 3);
}

static void binary_cases(void **state)
{
  (void)state;
  ir_module *m = module("bin");
  int64_t d[] = {3, 5, 7}, d2[] = {4, 16};
  int a = irb_input(m, "a", 3, d), b = irb_input(m, "b", 3, d);
  int c = irb_input(m, "c", 2, d2), e = irb_input(m, "e", 2, d2);
  for (int k = 0; k < IR_BIN_COUNT; k++) {
    ir_op_attrs at = {.binary = (ir_binary_kind)k};
    char name[32];
    snprintf(name, sizeof name, "bin%d", k);
    irb_op(m, IR_OP_BINARY, name, a, b, -1, &at);
    snprintf(name, sizeof name, "vec%d", k);
    irb_op(m, IR_OP_BINARY, name, c, e, -1, &at);
  }
  check_model(m, "binary add, sub, mul", -2, 2, false, 3);
}

/* ------------------------------------------------------------------ rmsnorm, conv */

static void rmsnorm_cases(void **state)
{
  (void)state;
  ir_module *m = module("norm");
  int64_t xd[] = {7, 72}, sd[] = {3, 24}, x2[] = {2, 5, 10};
  int x = irb_input(m, "x", 2, xd), s = irb_input(m, "s", 2, sd), y = irb_input(m, "z", 3, x2);
  ir_op_attrs a = {.norm = {3, 1e-5, false}}, a2 = {.norm = {2, 1e-5, false}};
  ir_op_attrs l2 = {.norm = {3, 1e-12, true}}, l2b = {.norm = {2, 1e-12, true}};
  irb_op(m, IR_OP_RMSNORM_HEADS, "norm", x, s, -1, &a);
  irb_op(m, IR_OP_RMSNORM_HEADS, "norm5", y, -1, -1, &a2);
  irb_op(m, IR_OP_RMSNORM_HEADS, "l2", x, -1, -1, &l2);
  irb_op(m, IR_OP_RMSNORM_HEADS, "l2s", x, s, -1, &l2);
  irb_op(m, IR_OP_RMSNORM_HEADS, "l2_5", y, -1, -1, &l2b);
  check_model(m, "rmsnorm_heads, and l2: F=24 scale, F=5 none", -2, 2, false, 3);
}

static void conv_cases(void **state)
{
  (void)state;
  ir_module *m = module("conv");
  int64_t x1[] = {2, 13, 24}, w1[] = {24, 1, 4}, b1[] = {24};
  int64_t x2[] = {2, 5, 7, 12}, w2[] = {12, 1, 3, 3};
  int64_t x3[] = {1, 4, 3, 5}, w3[] = {5, 1, 2, 2}, b3[] = {5};
  int xa = irb_input(m, "xa", 3, x1), wa = irb_input(m, "wa", 3, w1), ba = irb_input(m, "ba", 1, b1);
  int xb = irb_input(m, "xb", 4, x2), wb = irb_input(m, "wb", 4, w2);
  int xc = irb_input(m, "xc", 4, x3), wc = irb_input(m, "wc", 4, w3), bc = irb_input(m, "bc", 1, b3);
  ir_op_attrs k4 = {.conv = {4}}, k3 = {.conv = {3}}, k2 = {.conv = {2}};
  irb_op(m, IR_OP_CONV_CAUSAL, "c1", xa, wa, ba, &k4);
  irb_op(m, IR_OP_CONV_CAUSAL, "c2", xb, wb, -1, &k3);
  irb_op(m, IR_OP_CONV_CAUSAL, "c3", xc, wc, bc, &k2);
  check_model(m, "conv_causal 1D K=4, 2D K=3, 2D C=5", -1, 1, false, 4);
}

/* ------------------------------------------------------------------ transpose */

static void transpose_one(ir_module *m, const char *name, int x, int rank, const int64_t *view,
                          const int *perm)
{
  ir_op_attrs a;
  memset(&a, 0, sizeof a);
  a.transpose.view = ir_shape_make(rank, view);
  memcpy(a.transpose.perm, perm, sizeof(int) * (size_t)rank);
  irb_op(m, IR_OP_TRANSPOSE, name, x, -1, -1, &a);
}

static void transpose_cases(void **state)
{
  (void)state;
  ir_module *m = module("tr");
  int64_t xd[] = {2, 3, 4, 48}, gd[] = {2, 3, 4, 8}, hd[] = {6, 3, 4, 8}, rd[] = {2, 3, 4, 5};
  int x = irb_input(m, "x", 4, xd), g = irb_input(m, "g", 4, gd), h = irb_input(m, "h", 4, hd);
  int r = irb_input(m, "r", 4, rd);
  /* the front end's shapes: heads out of the features, orientation-major gates, heads back */
  int64_t v1[] = {2, 3, 4, 6, 8}, v2[] = {2, 3, 4, 2, 4, 1}, v3[] = {2, 3, 3, 4, 8};
  int p1[] = {0, 3, 1, 2, 4}, p2[] = {0, 3, 4, 1, 2, 5}, p3[] = {0, 2, 3, 1, 4};
  transpose_one(m, "to_heads", x, 5, v1, p1);
  transpose_one(m, "to_oriented", g, 6, v2, p2);
  transpose_one(m, "from_heads", h, 5, v3, p3);
  int p4[] = {3, 1, 0, 2}, p5[] = {0, 1, 2, 3};
  transpose_one(m, "general", r, 4, rd, p4);
  transpose_one(m, "copy", r, 4, rd, p5);
  check_model(m, "transpose heads, orientations, general, copy", -1, 1, false, 4);
}

/* ------------------------------------------------------------------ transition_exp */

static void transition_exp_cases(void **state)
{
  (void)state;
  ir_module *m = module("te");
  int64_t ad[] = {2, 5, 3, 4, 4}, ld[] = {2, 5, 3, 4};
  int64_t a1[] = {7, 1, 1}, l1[] = {7, 1}, a3[] = {6, 3, 3}, l3[] = {6, 3}, a6[] = {5, 6, 6},
          l6[] = {5, 6};
  int ain = irb_input(m, "ain", 5, ad), lam = irb_input(m, "lam", 4, ld), aout = irb_input(m, "aout", 5, ad);
  int bin = irb_input(m, "bin", 3, a1), blam = irb_input(m, "blam", 2, l1), bout = irb_input(m, "bout", 3, a1);
  int cin = irb_input(m, "cin", 3, a3), clam = irb_input(m, "clam", 2, l3), cout = irb_input(m, "cout", 3, a3);
  int din = irb_input(m, "din", 3, a6), dlam = irb_input(m, "dlam", 2, l6), dout = irb_input(m, "dout", 3, a6);
  ir_op_attrs e16 = {.trans_exp = {1.0, 16}}, e5 = {.trans_exp = {0.8, 5}};
  irb_op(m, IR_OP_TRANSITION_EXP, "T4", ain, lam, aout, &e16);
  irb_op(m, IR_OP_TRANSITION_EXP, "T1", bin, blam, bout, &e16);
  irb_op(m, IR_OP_TRANSITION_EXP, "T3", cin, clam, cout, &e5);
  irb_op(m, IR_OP_TRANSITION_EXP, "T6", din, dlam, dout, &e16); /* past the unrolled sizes */
  check_model(m, "transition_exp JT=4, 1, 3 (5 terms), 6", -0.6, 0.6, false, 3);
}

/* ------------------------------------------------------------------ benchmark */

static bool bench_on(void)
{
  const char *on = getenv("XYLEM_LAYER_BENCH");
  return on && on[0] && strcmp(on, "0") != 0;
}

/* Compiles model for the target (the detected device; knobs from XYLEM_LAYER_BENCH_KNOBS,
 * "lanes,rows,wg") and times each step: the best of `runs` after warm-ups, from profiling
 * events on OpenCL and wall time on C. Prints one line per step; returns the relative
 * error of the outputs. best[] receives each step's time (at most 16 steps). */
static double time_steps(const xy_model *model, op_io *xio, xy_target target, int runs,
                         double *best, int *n_steps)
{
  xy_compile_options co;
  xy_compile_options_default(&co);
  co.target = target;
  const char *kn = getenv("XYLEM_LAYER_BENCH_KNOBS");
  if (kn && sscanf(kn, "%d,%d,%d", &co.lanes, &co.rows, &co.wg) != 3)
    fail_msg("XYLEM_LAYER_BENCH_KNOBS must be lanes,rows,wg");
  char msg[8192];
  if (target == XY_TARGET_C) {
    xy_device_limits_host(&co.device);
  } else {
    if (open_own_ctx(msg, sizeof msg))
      fail_msg("%s", msg);
    xy_device_limits_of(xrt_context_device(own_ctx), &co.device);
  }
  xy_program *prog = NULL;
  xy_error err;
  if (xy_compile(model, &co, &prog, &err))
    fail_msg("%s", err.message);
  const kir_module *k = prog->k;
  *n_steps = k->n_launches;
  assert_true(k->n_launches <= 16);
  for (int s = 0; s < k->n_launches; s++)
    best[s] = 1e30;
  double ms[16];
  if (target == XY_TARGET_C) {
    xy_native *nat = NULL;
    if (xy_native_load(prog, &nat, &err))
      fail_msg("%s", err.message);
    for (int r = 0; r < runs + 1; r++) {
      if (xy_native_run(nat, (const void *const *)xio->fin, (void *const *)xio->got, 0, ms, &err))
        fail_msg("%s", err.message);
      for (int s = 0; r > 0 && s < k->n_launches; s++)
        best[s] = ms[s] < best[s] ? ms[s] : best[s];
    }
    xy_native_free(nat);
  } else {
    xrt_error *xe = malloc(sizeof *xe);
    assert_non_null(xe);
    xrt_plan *plan = NULL;
    xrt_plan_options po = {.profile = 1};
    if (xrt_plan_create(own_ctx, xy_program_plan(prog), &po, &plan, xe) ||
        xrt_plan_upload(plan, (const void *const *)xio->fin, xe))
      fail_msg("%s", xe->message);
    for (int r = 0; r < runs + 3; r++) {
      if (xrt_plan_execute(plan, xe) || xrt_plan_step_times(plan, ms, xe))
        fail_msg("%s", xe->message);
      for (int s = 0; r >= 3 && s < k->n_launches; s++)
        best[s] = ms[s] < best[s] ? ms[s] : best[s];
    }
    if (xrt_plan_download(plan, (void *const *)xio->got, xe))
      fail_msg("%s", xe->message);
    xrt_plan_release(plan);
    free(xe);
  }
  for (int s = 0; s < k->n_launches; s++) {
    const kir_launch *l = &k->launches[s];
    print_message("    %-6s %-22s %9.4f ms %8.1f GFLOP/s %7.1f GB/s\n",
                  target == XY_TARGET_C ? "C" : "OpenCL", k->kernels[l->kernel]->name, best[s],
                  l->flops / best[s] / 1e6, l->bytes / best[s] / 1e6);
  }
  xy_program_free(prog);
  const char *which;
  return op_io_worst(model, xio, &which);
}

static void bench_targets(const xy_model *model, op_io *xio, int runs, double *gemm_ms)
{
  const char *only = getenv("XYLEM_LAYER_TARGETS");
  for (int t = 0; t < 2; t++) {
    if (only && strcmp(only, t ? "c" : "opencl") != 0)
      continue;
    double best[16];
    int n = 0;
    double worst = time_steps(model, xio, t ? XY_TARGET_C : XY_TARGET_OPENCL, t ? 5 : runs, best, &n);
    if (gemm_ms)
      gemm_ms[t] = best[n - 1];
    print_message("    rel err %.2g\n", worst);
    assert_true(worst <= TOL);
  }
}

/* GFLOP/s of linear 8192 x 192 -> N (the projections of a pLSTM layer: batch 32, 16 x 16
 * grid, dim 192). Opt-in: XYLEM_LAYER_BENCH=1. */
static void bench_linear(void **state)
{
  (void)state;
  if (!bench_on()) {
    print_message("  (set XYLEM_LAYER_BENCH=1 to time linear)\n");
    return;
  }
  static const int64_t outs[] = {576, 192};
  for (int o = 0; o < 2; o++) {
    ir_module *m = module("bench");
    int64_t xd[] = {32, 16, 16, 192}, wd[] = {outs[o], 192}, bd[] = {outs[o]};
    int x = irb_input(m, "x", 4, xd), w = irb_input(m, "w", 2, wd), b = irb_input(m, "b", 1, bd);
    ir_op_attrs a = {.linear = {1, 1, outs[o], IR_W_GFSC, 1.0}};
    irb_op(m, IR_OP_LINEAR, "lin", x, w, b, &a);
    xy_model model = {m};
    op_io xio;
    memset(&xio, 0, sizeof xio);
    op_io_make(&model, 5, -1, 1, false, &xio);
    print_message("  linear 8192 x 192 -> %lld:\n", (long long)outs[o]);
    double gemm_ms[2] = {0, 0};
    bench_targets(&model, &xio, 20, gemm_ms);
    op_io_free(&xio);
    ir_module_free(m);
  }
}

/* The other ops at the 2D layer's sizes. Opt-in: XYLEM_LAYER_BENCH=1. */
static void bench_layer_ops(void **state)
{
  (void)state;
  if (!bench_on())
    return;
  ir_module *m = module("ops");
  int64_t xd[] = {32, 16, 16, 192}, wd[] = {192, 1, 3, 3}, bd[] = {192}, sd[] = {3, 64};
  int64_t gd[] = {32, 16, 16, 12}, gw[] = {1, 12, 1, 16};
  int x = irb_input(m, "x", 4, xd), w = irb_input(m, "w", 4, wd), b = irb_input(m, "b", 1, bd);
  int s = irb_input(m, "s", 2, sd), g = irb_input(m, "g", 4, gd), gwt = irb_input(m, "gw", 4, gw);
  int gb = irb_input(m, "gb", 1, (int64_t[]){12});
  ir_op_attrs conv = {.conv = {3}}, norm = {.norm = {3, 1e-5, false}};
  ir_op_attrs act = {.act = {IR_ACT_SIGMOID_POW, 1.0}}, mul = {.binary = IR_BIN_MUL};
  ir_op_attrs gate = {.linear = {1, 12, 1, IR_W_GSFC, 1.0}};
  irb_op(m, IR_OP_CONV_CAUSAL, "conv", x, w, b, &conv);
  irb_op(m, IR_OP_RMSNORM_HEADS, "norm", x, s, -1, &norm);
  irb_op(m, IR_OP_ACTIVATION, "gate_act", g, -1, -1, &act);
  irb_op(m, IR_OP_BINARY, "mul", x, x, -1, &mul);
  irb_op(m, IR_OP_LINEAR, "gate", x, gwt, gb, &gate);
  int64_t v1[] = {32, 16, 16, 3, 64}, v2[] = {32, 16, 16, 3, 4, 1};
  int p1[] = {0, 3, 1, 2, 4}, p2[] = {0, 3, 4, 1, 2, 5};
  transpose_one(m, "to_heads", x, 5, v1, p1);
  transpose_one(m, "to_oriented", g, 6, v2, p2);
  int64_t ad[] = {32, 256, 4, 4, 4}, ld[] = {32, 256, 4, 4};
  int ain = irb_input(m, "ain", 5, ad), lam = irb_input(m, "lam", 4, ld), aout = irb_input(m, "aout", 5, ad);
  ir_op_attrs te = {.trans_exp = {1.0, 16}};
  irb_op(m, IR_OP_TRANSITION_EXP, "T", ain, lam, aout, &te);
  xy_model model = {m};
  op_io xio;
  memset(&xio, 0, sizeof xio);
  op_io_make(&model, 6, -0.5, 0.5, false, &xio);
  print_message("  layer ops at batch 32, 16 x 16, dim 192 (transition_exp: 32 x 256 x 4 heads, JT=4):\n");
  bench_targets(&model, &xio, 10, NULL);
  op_io_free(&xio);
  ir_module_free(m);
}

static int teardown(void **state)
{
  xrt_context_release(own_ctx);
  own_ctx = NULL;
  return harness_group_teardown(state);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(linear_cases),
    cmocka_unit_test(activation_cases),
    cmocka_unit_test(binary_cases),
    cmocka_unit_test(rmsnorm_cases),
    cmocka_unit_test(conv_cases),
    cmocka_unit_test(transpose_cases),
    cmocka_unit_test(transition_exp_cases),
    cmocka_unit_test(bench_linear),
    cmocka_unit_test(bench_layer_ops),
  };
  return cmocka_run_group_tests(tests, NULL, teardown);
}
