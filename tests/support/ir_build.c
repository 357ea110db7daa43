#include "ir_build.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp.h"

int irb_input(ir_module *m, const char *name, int rank, const int64_t *d)
{
  ir_shape s = ir_shape_make(rank, d);
  int t = ir_add_tensor(m, name, &s, XY_F32, IR_INPUT);
  assert_true(t >= 0 && ir_mark_input(m, t));
  return t;
}

int irb_op(ir_module *m, ir_opcode code, const char *name, int a, int b, int c,
           const ir_op_attrs *attr)
{
  return irb_graph_op(m, -1, code, name, a, b, c, attr);
}

int irb_graph_op(ir_module *m, int graph, ir_opcode code, const char *name, int a, int b, int c,
                 const ir_op_attrs *attr)
{
  int oi = irb_new_op(m, code, name, a, b, c);
  m->ops[oi].attr = *attr;
  m->ops[oi].graph = graph;
  char out[128];
  snprintf(out, sizeof out, "%s_y", name);
  return irb_finish_ok(m, oi, out);
}

int irb_new_op(ir_module *m, ir_opcode code, const char *name, int a, int b, int c)
{
  int oi = ir_add_op(m, code, name);
  assert_true(oi >= 0);
  m->ops[oi].in[0] = a;
  m->ops[oi].in[1] = b;
  m->ops[oi].in[2] = c;
  return oi;
}

int irb_finish_op(ir_module *m, int oi, const char *out, int *t, xy_error *err)
{
  ir_shape none = ir_shape_make(0, NULL);
  *t = ir_add_tensor(m, out, &none, XY_F32, IR_VALUE);
  assert_true(*t >= 0);
  m->tensors[*t].producer = oi;
  m->ops[oi].out[0] = *t;
  return ir_infer_shapes(m, &m->ops[oi], err);
}

int irb_finish_ok(ir_module *m, int oi, const char *out)
{
  xy_error err;
  int t;
  if (irb_finish_op(m, oi, out, &t, &err))
    fail_msg("%s", err.message);
  assert_true(ir_mark_output(m, t));
  return t;
}

void irb_expect_error(ir_module *m, int oi, const char *out, int code, const char *frag1,
                      const char *frag2)
{
  xy_error err;
  int t;
  int rc = irb_finish_op(m, oi, out, &t, &err);
  if (rc == XY_OK)
    fail_msg("op '%s' was accepted", m->ops[oi].name);
  if (rc != code)
    fail_msg("code %d, expected %d: %s", rc, code, err.message);
  if (!strstr(err.message, frag1) || (frag2 && !strstr(err.message, frag2)))
    fail_msg("message '%s' lacks '%s' / '%s'", err.message, frag1, frag2 ? frag2 : "");
}

void irb_expect_shape(const ir_module *m, int t, int rank, const int64_t *d)
{
  ir_shape want = ir_shape_make(rank, d);
  assert_true(ir_shape_equal(&m->tensors[t].shape, &want));
}

double **irb_interpret(ir_module *m, double (*fill)(void *ctx, int input, size_t j), void *ctx)
{
  double **vals = calloc((size_t)m->n_tensors, sizeof *vals);
  assert_non_null(vals);
  for (int i = 0; i < m->n_inputs; i++) {
    int t = m->inputs[i];
    size_t n = (size_t)ir_shape_count(&m->tensors[t].shape);
    vals[t] = malloc((n ? n : 1) * sizeof(double));
    assert_non_null(vals[t]);
    for (size_t j = 0; j < n; j++)
      vals[t][j] = fill(ctx, i, j);
  }
  xy_error err;
  if (ir_interpret(m, vals, &err))
    fail_msg("interpreter: %s", err.message);
  return vals;
}

void irb_release(ir_module *m, double **vals)
{
  for (int t = 0; t < m->n_tensors; t++)
    free(vals[t]);
  free(vals);
  ir_module_free(m);
}
