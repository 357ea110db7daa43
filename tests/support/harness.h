/*
 * harness.h: differential testing. A case names a spec, a target, a form and a chunk; the
 * harness draws random inputs, runs the float64 interpreter and the compiled program (its
 * outputs poisoned with NaN and fenced with canaries), and reports the relative error of
 * every output.
 */
#ifndef XY_HARNESS_H
#define XY_HARNESS_H

#include <stdbool.h>

#include "xylem.h"

#define HARNESS_MAX_OUTPUTS 8

typedef struct harness_case {
  const char *spec;
  xy_target target;
  const char *form;          /* NULL: the cost model decides */
  int64_t chunk;             /* 0: the cost model decides */
  int lanes, rows, wg;       /* schedule knobs; 0: the cost model decides */
  bool portable;             /* compile for a device nobody named (the portable schedule:
                                GPU-like groups, local-memory tiles), run on this one */
  unsigned compute_units;    /* portable: the compute units to assume (0: the default) */
  uint64_t seed;
  const char *const *overrides;
  size_t n_overrides;
} harness_case;

typedef struct harness_result {
  int n_outputs;
  double rel[HARNESS_MAX_OUTPUTS];
  double worst;
  char forms[256];
  char message[8192];        /* why it failed, when it did */
} harness_result;

/* 0 when the case ran (then look at result->worst), else an error described in message. */
int harness_run(const harness_case *c, harness_result *result);

/* Compiles model for the case's target, form and chunk and runs it on the given inputs
 * (outputs poisoned with NaN and fenced with canaries, which are checked). out[i] must
 * have room for output i. */
int harness_execute(const harness_case *c, const xy_model *model, float *const *in,
                    float *const *out, char *forms, size_t forms_len, char *msg, size_t msg_len);

/* Compiles the case's spec for a target and returns its package, for inspection. */
int harness_compile(const harness_case *c, xy_program **prog, char *msg, size_t msg_len);

/* A file in the test's private temporary directory; returns its path (static storage per
 * call site is not assumed: the caller frees it). */
char *harness_write(const char *name, const char *text);

/* The test data directory (XYLEM_TEST_DATA). */
const char *harness_data_dir(void);

/* The error the reference vectors' manifests bound: max|x - ref| / max(1, max|ref|), NaN
 * when x holds a NaN; for float64 and float32 results. */
double harness_scaled_error(const double *x, const double *ref, size_t n);
double harness_scaled_error_f32(const float *x, const double *ref, size_t n);

/* Releases the shared OpenCL context. */
void harness_teardown(void);

/* harness_teardown as a CMocka group teardown. */
int harness_group_teardown(void **state);

#endif /* XY_HARNESS_H */
