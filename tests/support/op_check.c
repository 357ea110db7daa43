#include "op_check.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "program.h"

const op_knobs OP_KNOBS[] = {{0, 0, 0}, {1, 1, 1}, {4, 2, 64}, {16, 4, 4}, {8, 8, 3}, {2, 3, 128}};
const size_t OP_N_KNOBS = sizeof OP_KNOBS / sizeof OP_KNOBS[0];

void op_io_free(op_io *x)
{
  for (size_t i = 0; i < x->n_in; i++) {
    free(x->fin[i]);
    free(x->din[i]);
  }
  for (size_t i = 0; i < x->n_out; i++) {
    free(x->got[i]);
    free(x->ref[i]);
  }
  free(x->fin);
  free(x->din);
  free(x->got);
  free(x->ref);
}

void op_io_make(const xy_model *model, uint64_t seed, double lo, double hi, bool extreme,
                op_io *x)
{
  x->n_in = xy_model_num_inputs(model);
  x->n_out = xy_model_num_outputs(model);
  x->fin = calloc(x->n_in + 1, sizeof *x->fin);
  x->din = calloc(x->n_in + 1, sizeof *x->din);
  x->got = calloc(x->n_out + 1, sizeof *x->got);
  x->ref = calloc(x->n_out + 1, sizeof *x->ref);
  assert_true(x->fin && x->din && x->got && x->ref);
  xy_rng rng;
  xy_rng_seed(&rng, seed);
  xy_tensor_info t;
  for (size_t i = 0; i < x->n_in; i++) {
    xy_model_input(model, i, &t);
    x->fin[i] = malloc(sizeof(float) * (t.count + 1));
    x->din[i] = malloc(sizeof(double) * (t.count + 1));
    assert_true(x->fin[i] && x->din[i]);
    for (size_t j = 0; j < t.count; j++) {
      x->fin[i][j] = (float)xy_rng_uniform(&rng, lo, hi);
      if (extreme && i == 0 && j < 4)
        x->fin[i][j] = (float)(j == 0 ? 100.0 : j == 1 ? -100.0 : j == 2 ? 30.0 : -30.0);
      x->din[i][j] = x->fin[i][j];
    }
  }
  for (size_t i = 0; i < x->n_out; i++) {
    xy_model_output(model, i, &t);
    x->got[i] = malloc(sizeof(float) * (t.count + 1));
    x->ref[i] = malloc(sizeof(double) * (t.count + 1));
    assert_true(x->got[i] && x->ref[i]);
  }
  xy_error err;
  if (xy_model_interpret(model, (const double *const *)x->din, x->ref, &err))
    fail_msg("interpreter: %s", err.message);
}

double op_io_worst(const xy_model *model, const op_io *x, const char **which)
{
  double worst = 0;
  xy_tensor_info t;
  *which = "-";
  for (size_t i = 0; i < x->n_out; i++) {
    xy_model_output(model, i, &t);
    xy_compare_stats st;
    xy_compare(x->ref[i], x->got[i], t.count, &st);
    if (st.rel > worst || isnan(st.rel)) {
      worst = st.rel;
      *which = t.name;
    }
  }
  return worst;
}

void op_check_module(ir_module *m, const char *what, uint64_t seed, double lo, double hi,
                     bool extreme, size_t n_knobs, double tol)
{
  xy_model model = {m};
  xy_error verr;
  if (ir_verify(m, &verr))
    fail_msg("%s: %s", what, verr.message);
  op_io x;
  memset(&x, 0, sizeof x);
  op_io_make(&model, seed, lo, hi, extreme, &x);
  char msg[8192], forms[256];
  const char *only = getenv("XYLEM_LAYER_TARGETS"); /* "opencl" or "c"; unset: both */
  for (int t = 0; t < 2; t++)
    for (size_t k = 0; k < n_knobs && k < OP_N_KNOBS; k++)
      for (int portable = 0; portable < 2; portable++) {
        if (only && strcmp(only, t ? "c" : "opencl") != 0)
          continue;
        harness_case c = {.target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                          .lanes = OP_KNOBS[k].lanes, .rows = OP_KNOBS[k].rows,
                          .wg = OP_KNOBS[k].wg, .portable = portable};
        if (harness_execute(&c, &model, x.fin, x.got, forms, sizeof forms, msg, sizeof msg))
          fail_msg("%s: %s", what, msg);
        const char *which;
        double worst = op_io_worst(&model, &x, &which);
        if (!(worst <= tol))
          fail_msg("%s (%s, %s, lanes=%d rows=%d wg=%d): output %s has relative error %.3g "
                   "above %g", what, t ? "C" : "OpenCL", portable ? "portable" : "detected",
                   c.lanes, c.rows, c.wg, which, worst, tol);
        if (k == 0 && !portable)
          print_message("  %-6s %-52s worst rel err %.3g\n", t ? "C" : "OpenCL", what, worst);
      }
  op_io_free(&x);
  ir_module_free(m);
}
