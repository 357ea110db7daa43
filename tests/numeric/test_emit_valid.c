/* test_emit_valid.c: libclang reads every emitted source without a single warning: the
 * OpenCL kernels, the OpenCL package's host code (against xylem-rt.h) and the C package,
 * for every form, on sequences (J = 1 and J > 1) and DAGs. Device-free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clang_check.h"
#include "harness.h"
#include "ir_build.h"
#include "program.h"

#ifndef RUNTIME_INCLUDE_DIR
#error RUNTIME_INCLUDE_DIR must name the folder of xylem-rt.h
#endif

static int checked;

static void validate(const harness_case *c, const char *what)
{
  xy_program *prog = NULL;
  char msg[8192];
  if (harness_compile(c, &prog, msg, sizeof msg))
    fail_msg("%s: %s", what, msg);
  char header[300];
  snprintf(header, sizeof header, "%s.h", xy_program_name(prog));
  char report[16384] = "";
  int bad = 0;
  if (c->target == XY_TARGET_OPENCL)
    bad += clang_check_source(xy_program_kernel_source(prog), true, NULL, NULL, NULL, report,
                              sizeof report);
  bad += clang_check_source(prog->package_c, false, header, prog->package_h, RUNTIME_INCLUDE_DIR,
                            report, sizeof report);
  checked++;
  if (bad != 0)
    fail_msg("%s (%s, %s): libclang found %d problems:\n%s", what,
             c->target == XY_TARGET_C ? "C" : "OpenCL", xy_program_forms(prog), bad, report);
  xy_program_free(prog);
}

static char *spec(const char *name, const char *graph, int J)
{
  char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"%s\", \"batch\": 2, \"graph\": %s,\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"N\", 8, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"N\", 8, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"N\", 8, %d]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", \"E\", %d, 1, %d]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", \"A\", %d, %d]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", \"E\", %d, 1, %d]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"N\", %d, 1, 1, %d]}],\n"
           " \"layers\": [{\"op\": \"plstm_scan\",\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
           "              \"M\": \"M\", \"D\": \"D\"}, \"outputs\": {\"out\": \"y\"}}],\n"
           " \"outputs\": [\"y\"]}\n", name, graph, J, J, J, J, J, J, J, J, J);
  /* "N", "E", "A" stand for the graph's symbols: length, or nodes, edges and arcs. */
  bool seq = strstr(graph, "sequence") != NULL;
  char fixed[4096];
  size_t o = 0;
  for (const char *p = text; *p && o < sizeof fixed - 16; p++) {
    if (p[0] == '"' && p[2] == '"' && (p[1] == 'N' || p[1] == 'E' || p[1] == 'A')) {
      const char *sym = seq ? "\"length\"" : p[1] == 'N' ? "\"nodes\"" : p[1] == 'E' ? "\"edges\"" : "\"arcs\"";
      o += (size_t)snprintf(fixed + o, sizeof fixed - o, "%s", sym);
      p += 2;
      continue;
    }
    fixed[o++] = *p;
  }
  fixed[o] = '\0';
  char file[64];
  snprintf(file, sizeof file, "%s.json", name);
  return harness_write(file, fixed);
}

static void sequences(void **state)
{
  (void)state;
  for (int J = 1; J <= 4; J += 3) {
    char *path = spec("seq", "{\"kind\": \"sequence\", \"length\": 37}", J);
    assert_non_null(path);
    for (int t = 0; t < 2; t++) {
      harness_case c = {.spec = path, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL};
      c.form = "recurrent";
      validate(&c, "sequence, recurrent");
      c.form = "chunkwise";
      static const int64_t chunks[] = {1, 5, 16};
      for (int k = 0; k < 3; k++) {
        c.chunk = chunks[k];
        validate(&c, "sequence, chunkwise");
      }
    }
    free(path);
  }
}

static void dags(void **state)
{
  (void)state;
  char *g = harness_write("g.graph.json",
                          "{\"graphs\": [{\"nodes\": 4, \"edges\": [[0,1],[0,2],[1,3],[2,3]]},"
                          " {\"nodes\": 1, \"edges\": []}]}\n");
  char *path = spec("dag", "{\"kind\": \"dag\", \"file\": \"g.graph.json\"}", 1);
  assert_true(g && path);
  static const char *const forms[] = {"levels", "graph", "recurrent", "dense"};
  for (int t = 0; t < 2; t++)
    for (int f = 0; f < 4; f++) {
      harness_case c = {.spec = path, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                        .form = forms[f]};
      validate(&c, forms[f]);
    }
  free(g);
  free(path);
  print_message("  %d packages validated by libclang\n", checked);
}

/* 2D scans on a ragged 5 x 3 grid, plain (every optional slot) and fused, J = 1 and
 * (JQ, JK, JV, JT, JO) = (2, 1, 2, 3, 2), every form. */
static char *grid_spec(bool fused, int J)
{
  char text[4096], g[64];
  snprintf(g, sizeof g, fused ? "\"batch\", 4, \"rows\", \"cols\"" : "\"batch\", \"rows\", \"cols\"");
  int JQ = J, JK = 1, JV = J, JT = J == 1 ? 1 : 3, JO = J;
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"grid\", \"batch\": 2,\n"
           " \"graph\": {\"kind\": \"grid2d\", \"rows\": 5, \"cols\": 3},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"rows\", \"cols\", 8, %d]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"rows\", \"cols\", 8, %d]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"rows\", \"cols\", 8, %d]},\n"
           "  {\"name\": \"S\", \"shape\": [%s, %d, %d, %d]},\n"
           "  {\"name\": \"T\", \"shape\": [%s, %d, %d]},\n"
           "  {\"name\": \"M\", \"shape\": [%s, %d, %d, %d]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"rows\", \"cols\", %d, %d, %d, %d]},\n"
           "  {\"name\": \"CL\", \"shape\": [\"batch\", \"cols\", 8, 8, %d]},\n"
           "  {\"name\": \"CT\", \"shape\": [\"batch\", \"rows\", 8, 8, %d]}],\n"
           " \"layers\": [{\"op\": \"%s\",\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S_r\": \"S\", \"S_d\": \"S\",\n"
           "              \"T_rl\": \"T\", \"T_du\": \"T\", \"T_dl\": \"T\", \"T_ru\": \"T\",\n"
           "              \"M_l\": \"M\", \"M_u\": \"M\", \"D\": \"D\"%s},\n"
           "   \"outputs\": {\"out\": \"y\"%s}}],\n"
           " \"outputs\": [\"y\"%s]}\n",
           JQ, JK, JV, g, JT, JK, JV, g, JT, JT, g, JO, JQ, JT, JO, JQ, JK, JV, JT, JT,
           fused ? "plstm_scan2d_fused" : "plstm_scan2d",
           fused ? "" : ", \"C_initial_left\": \"CL\", \"C_initial_top\": \"CT\"",
           fused ? "" : ", \"C_final_right\": \"CR\", \"C_final_bottom\": \"CB\"",
           fused ? "" : ", \"CR\", \"CB\"");
  return harness_write(fused ? "grid_fused.json" : "grid.json", text);
}

static void grids(void **state)
{
  (void)state;
  static const char *const forms[] = {"recurrent", "tiled", "single"};
  for (int fused = 0; fused < 2; fused++)
    for (int J = 1; J <= 2; J++) {
      char *path = grid_spec(fused, J);
      assert_non_null(path);
      for (int t = 0; t < 2; t++)
        for (int f = 0; f < 3; f++) {
          harness_case c = {.spec = path, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                            .form = forms[f], .chunk = f == 1 ? 2 : 0};
          validate(&c, fused ? "grid, fused" : "grid");
        }
      free(path);
    }
}

/* The samples themselves, with the portable schedule, a CPU's (16 lanes, 4 rows) and a
 * scalar one. */
static void samples(void **state)
{
  (void)state;
  const char *dir = getenv("XYLEM_SAMPLES");
  assert_non_null(dir);
  static const int knobs[][2] = {{0, 0}, {16, 4}, {1, 1}};
  static const char *const names[] = {"scan1d.json", "scan_dag.json", "scan2d.json",
                                      "scan2d_fused.json", "titans_scan.json", "ttt_scan.json",
                                      "tnt_scan.json", "tnt_mlp_scan.json", "titans.json",
                                      "ttt_linear.json", "tnt.json", "tnt_mlp.json"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    for (int t = 0; t < 2; t++)
      for (int k = 0; k < 3; k++)
        for (int f = 0; f < 2; f++) {
          harness_case c = {.spec = path, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                            .lanes = knobs[k][0], .rows = knobs[k][1],
                            .form = f ? "recurrent" : NULL};
          validate(&c, names[i]);
        }
  }
}

/* The full layers: the 2D samples (modes P and D, the vision settings) and a ragged
 * plstm1d (J = 4, causal conv, passthrough), with the portable schedule, a CPU's and a
 * scalar one. */
static void layers(void **state)
{
  (void)state;
  const char *dir = getenv("XYLEM_SAMPLES");
  assert_non_null(dir);
  char *l1 = harness_write("layer1d.json",
    "{\"xylem\": 1, \"name\": \"layer1d\", \"batch\": 2,\n"
    " \"graph\": {\"kind\": \"sequence\", \"length\": 37},\n"
    " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 24]}],\n"
    " \"layers\": [{\"op\": \"plstm1d\", \"input\": \"x\", \"output\": \"y\", \"heads\": 2}],\n"
    " \"outputs\": [\"y\"]}\n");
  assert_non_null(l1);
  char p2[1024], d2[1024];
  snprintf(p2, sizeof p2, "%s/plstm2d_p.json", dir);
  snprintf(d2, sizeof d2, "%s/plstm2d_d.json", dir);
  const char *const paths[] = {l1, p2, d2};
  static const int knobs[][2] = {{0, 0}, {16, 4}, {1, 1}};
  for (size_t i = 0; i < 3; i++)
    for (int t = 0; t < 2; t++)
      for (int k = 0; k < 3; k++) {
        harness_case c = {.spec = paths[i], .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                          .lanes = knobs[k][0], .rows = knobs[k][1]};
        validate(&c, i ? (i == 1 ? "plstm2d_p.json" : "plstm2d_d.json") : "plstm1d layer");
      }
  free(l1);
}

/* ------------------------------------------------------------------ layer ops by hand */

/* Every kernel the layer ops lower to: linear's GEMM (wide and narrow columns, sub-heads,
 * both orders), dot and fill forms, every activation, binary, rmsnorm, 1D and 2D conv,
 * transposes that copy rows and that gather, transition_exp unrolled and looped. */
static ir_module *ops_module(void)
{
  ir_module *m = ir_module_new("layer_ops");
  assert_non_null(m);
  m->batch = 2;
  int64_t xd[] = {2, 5, 3, 48}, wd[] = {40, 48}, bd[] = {40}, gw[] = {2, 3, 2, 16}, gb[] = {12};
  int x = irb_input(m, "x", 4, xd), w = irb_input(m, "w", 2, wd), b = irb_input(m, "b", 1, bd);
  int g = irb_input(m, "g", 4, gw), gbias = irb_input(m, "gb", 1, gb);
  ir_op_attrs a = {.linear = {1, 1, 40, IR_W_GFSC, 1.0}};
  irb_op(m, IR_OP_LINEAR, "dense", x, w, b, &a);
  a.linear = (ir_linear_attrs){2, 3, 2, IR_W_GFSC, 0.5};
  irb_op(m, IR_OP_LINEAR, "narrow", x, g, gbias, &a);
  a.linear = (ir_linear_attrs){2, 3, 2, IR_W_GSFC, 1.0};
  irb_op(m, IR_OP_LINEAR, "bias_only", x, -1, gbias, &a);
  for (int k = 0; k < IR_ACT_COUNT; k++) {
    ir_op_attrs act = {.act = {(ir_act_kind)k, 2.0}};
    char name[32];
    snprintf(name, sizeof name, "act%d", k);
    irb_op(m, IR_OP_ACTIVATION, name, x, -1, -1, &act);
  }
  ir_op_attrs bin = {.binary = IR_BIN_MUL}, norm = {.norm = {3, 1e-5, false}};
  irb_op(m, IR_OP_BINARY, "mul", x, x, -1, &bin);
  irb_op(m, IR_OP_RMSNORM_HEADS, "norm", x, -1, -1, &norm);
  int64_t w2[] = {48, 1, 3, 3}, x1[] = {2, 7, 12}, w1[] = {12, 1, 4}, b1[] = {12};
  int cw = irb_input(m, "cw", 4, w2), cx = irb_input(m, "cx", 3, x1);
  int cw1 = irb_input(m, "cw1", 3, w1), cb1 = irb_input(m, "cb1", 1, b1);
  ir_op_attrs k3 = {.conv = {3}}, k4 = {.conv = {4}};
  irb_op(m, IR_OP_CONV_CAUSAL, "conv2", x, cw, -1, &k3);
  irb_op(m, IR_OP_CONV_CAUSAL, "conv1", cx, cw1, cb1, &k4);
  ir_op_attrs tr;
  memset(&tr, 0, sizeof tr);
  int64_t v1[] = {2, 5, 3, 3, 16};
  int p1[] = {0, 3, 1, 2, 4};
  tr.transpose.view = ir_shape_make(5, v1);
  memcpy(tr.transpose.perm, p1, sizeof p1);
  irb_op(m, IR_OP_TRANSPOSE, "rows", x, -1, -1, &tr);
  int64_t v2[] = {2, 15, 48};
  int p2[] = {2, 0, 1};
  tr.transpose.view = ir_shape_make(3, v2);
  memcpy(tr.transpose.perm, p2, sizeof p2);
  irb_op(m, IR_OP_TRANSPOSE, "gather", x, -1, -1, &tr);
  int64_t a4[] = {3, 4, 4}, l4[] = {3, 4}, a6[] = {2, 6, 6}, l6[] = {2, 6};
  int ai = irb_input(m, "ai", 3, a4), li = irb_input(m, "li", 2, l4);
  int a6i = irb_input(m, "a6", 3, a6), l6i = irb_input(m, "l6", 2, l6);
  ir_op_attrs te = {.trans_exp = {1.0, 16}};
  irb_op(m, IR_OP_TRANSITION_EXP, "T4", ai, li, ai, &te);
  irb_op(m, IR_OP_TRANSITION_EXP, "T6", a6i, l6i, a6i, &te);
  return m;
}

/* The hand-built module for a device nobody named, a CPU and a GPU, with the automatic
 * schedule and the knobs (16, 4), (1, 1) and (8, 3), on both targets. */
static void layer_ops(void **state)
{
  (void)state;
  ir_module *m = ops_module();
  xy_model model = {m};
  static const int knobs[][2] = {{0, 0}, {16, 4}, {1, 1}, {8, 3}};
  for (int dev = 0; dev < 3; dev++)
    for (int t = 0; t < 2; t++)
      for (int k = 0; k < 4; k++) {
        xy_compile_options co;
        xy_compile_options_default(&co);
        co.target = t ? XY_TARGET_C : XY_TARGET_OPENCL;
        co.lanes = knobs[k][0];
        co.rows = knobs[k][1];
        co.device.is_cpu = dev == 1;
        co.device.is_gpu = dev == 2;
        xy_program *prog = NULL;
        xy_error err;
        if (xy_compile(&model, &co, &prog, &err))
          fail_msg("layer ops: %s", err.message);
        char header[300], report[16384] = "";
        snprintf(header, sizeof header, "%s.h", xy_program_name(prog));
        int bad = 0;
        if (!t)
          bad += clang_check_source(xy_program_kernel_source(prog), true, NULL, NULL, NULL,
                                    report, sizeof report);
        bad += clang_check_source(prog->package_c, false, header, prog->package_h,
                                  RUNTIME_INCLUDE_DIR, report, sizeof report);
        checked++;
        if (bad != 0)
          fail_msg("layer ops (%s, device %d, lanes %d rows %d): libclang found %d problems:\n%s",
                   t ? "C" : "OpenCL", dev, knobs[k][0], knobs[k][1], bad, report);
        xy_program_free(prog);
      }
  ir_module_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sequences),
    cmocka_unit_test(dags),
    cmocka_unit_test(grids),
    cmocka_unit_test(samples),
    cmocka_unit_test(layers),
    cmocka_unit_test(layer_ops),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
