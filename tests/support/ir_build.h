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

/* An op on up to three inputs (-1: an empty slot), its output not yet given; returns the
 * op's index. */
int irb_new_op(ir_module *m, ir_opcode code, const char *name, int a, int b, int c);

/* Gives op oi the output tensor `out` (*t) and infers its shape: the rule's return code. */
int irb_finish_op(ir_module *m, int oi, const char *out, int *t, xy_error *err);

/* irb_finish_op that must succeed; the output becomes a model output. Returns it. */
int irb_finish_ok(ir_module *m, int oi, const char *out);

/* The shape rule of op oi must fail with code and a message holding frag1 (and frag2 when
 * not NULL). */
void irb_expect_error(ir_module *m, int oi, const char *out, int code, const char *frag1,
                      const char *frag2);

/* Tensor t has the given shape. */
void irb_expect_shape(const ir_module *m, int t, int rank, const int64_t *d);

/* Fills every input (value j of input i = fill(ctx, i, j), inputs in order), runs the
 * float64 interpreter and returns the values of every tensor; free with irb_release. */
double **irb_interpret(ir_module *m, double (*fill)(void *ctx, int input, size_t j), void *ctx);

/* Frees irb_interpret's values and the module. */
void irb_release(ir_module *m, double **vals);

#endif /* XY_TEST_IR_BUILD_H */
