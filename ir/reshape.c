/* reshape.c: the reshape op's rules. It moves no data: the lowering aliases buffers. */
#include <string.h>

#include "graph_ir.h"
#include "interp.h"

int reshape_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err)
{
  const ir_shape *in = &m->tensors[op->in[0]].shape, *to = &op->attr.reshape;
  if (to->rank < 0 || to->rank > IR_MAX_RANK)
    return xy_fail(err, XY_E_INTERNAL, "reshape '%s': rank %d", op->name, to->rank);
  if (ir_shape_count(in) != ir_shape_count(to) || ir_shape_count(to) < 0) {
    xy_buf b;
    xy_buf_init(&b);
    ir_shape_print(in, &b);
    xy_buf_puts(&b, " to ");
    ir_shape_print(to, &b);
    int rc = xy_fail(err, XY_E_SHAPE, "reshape '%s': %s changes the element count", op->name,
                     b.data ? b.data : "?");
    xy_buf_free(&b);
    return rc;
  }
  outs[0] = *to;
  return XY_OK;
}

int interp_reshape(const ir_module *m, const ir_op *op, double **vals, xy_error *err)
{
  (void)err;
  size_t n = (size_t)ir_shape_count(&m->tensors[op->in[0]].shape);
  memcpy(vals[op->out[0]], vals[op->in[0]], n * sizeof(double));
  return XY_OK;
}

void print_reshape(const ir_op *op, xy_buf *out)
{
  (void)op;
  (void)out;
}
