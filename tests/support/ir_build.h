/* ir_build.h: graph-IR modules built by hand in tests, one op at a time. Failures end the
 * running CMocka test. */
#ifndef XY_TEST_IR_BUILD_H
#define XY_TEST_IR_BUILD_H

#include "graph_ir.h"

/* A float32 model input of the given shape; returns its tensor. */
int irb_input(ir_module *m, const char *name, int rank, const int64_t *d);

/* An op on up to three inputs (-1: an empty slot) with attributes attr; its one output,
 * "<name>_y", gets the shape the op infers and becomes a model output. Returns it. */
int irb_op(ir_module *m, ir_opcode code, const char *name, int a, int b, int c,
           const ir_op_attrs *attr);

/* irb_op on module graph `graph` (set before the shapes are inferred: graph ops read it). */
int irb_graph_op(ir_module *m, int graph, ir_opcode code, const char *name, int a, int b, int c,
                 const ir_op_attrs *attr);

#endif /* XY_TEST_IR_BUILD_H */
