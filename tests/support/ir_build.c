#include "ir_build.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

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
  int oi = ir_add_op(m, code, name);
  assert_true(oi >= 0);
  ir_op *op = &m->ops[oi];
  op->in[0] = a;
  op->in[1] = b;
  op->in[2] = c;
  op->attr = *attr;
  op->graph = graph;
  char out[128];
  snprintf(out, sizeof out, "%s_y", name);
  ir_shape none = ir_shape_make(0, NULL);
  int t = ir_add_tensor(m, out, &none, XY_F32, IR_VALUE);
  assert_true(t >= 0);
  m->tensors[t].producer = oi;
  m->ops[oi].out[0] = t;
  xy_error err;
  if (ir_infer_shapes(m, &m->ops[oi], &err))
    fail_msg("%s", err.message);
  assert_true(ir_mark_output(m, t));
  return t;
}
