/* op_check.h: hand-built graph-IR modules compiled for OpenCL and C against the float64
 * interpreter, on random inputs, over schedule knobs (vector width, register rows,
 * work-group size) and both schedules (the detected device, and the portable one). */
#ifndef XY_TEST_OP_CHECK_H
#define XY_TEST_OP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "graph_ir.h"
#include "xylem.h"

/* A model's inputs (float, and the same values as double) and outputs (compiled, and the
 * interpreter's). */
typedef struct op_io {
  size_t n_in, n_out;
  float **fin, **got;
  double **din, **ref;
} op_io;

/* Random inputs in [lo, hi) and the interpreter's outputs. `extreme` puts +-100 and +-30 at
 * the start of the first input. */
void op_io_make(const xy_model *model, uint64_t seed, double lo, double hi, bool extreme,
                op_io *x);
void op_io_free(op_io *x);

/* The largest relative error of got against ref over the outputs; *which names that
 * output. */
double op_io_worst(const xy_model *model, const op_io *x, const char **which);

typedef struct op_knobs {
  int lanes, rows, wg;
} op_knobs;

/* The knob sets, the cost model's (all 0) first. */
extern const op_knobs OP_KNOBS[];
extern const size_t OP_N_KNOBS;

/* Verifies m, then runs it on both targets (XYLEM_LAYER_TARGETS=opencl or c picks one),
 * both schedules and the first n_knobs knob sets against the interpreter; every output's
 * relative error must be within tol. Frees m. */
void op_check_module(ir_module *m, const char *what, uint64_t seed, double lo, double hi,
                     bool extreme, size_t n_knobs, double tol);

#endif /* XY_TEST_OP_CHECK_H */
