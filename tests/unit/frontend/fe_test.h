/* fe_test.h: helpers shared by the front end's tests: fixture paths, temporary files and
 * checks on error messages. */
#ifndef XY_FE_TEST_H
#define XY_FE_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "frontend.h"

/* Path of a fixture file; the string lives until the test process ends. */
const char *fixture(const char *name);

/* Writes text to a file of that name in the test's temporary folder; returns its path. */
const char *write_tmp(const char *name, const char *text);

/* A copy of fixture base, named name in the temporary folder, with the first occurrence
 * of from (which must occur) replaced by to. */
const char *variant(const char *base, const char *name, const char *from, const char *to);

/* Checks a failed load: rc and err->code are code, and the message holds every needle
 * (a NULL-terminated list). */
void expect_error(int rc, const xy_error *err, int code, const char *const *needles);

/* Loads a spec that must fail with code and a message holding the needles. */
void expect_spec_error(const char *path, const char *const *overrides, size_t n, int code,
                       const char *const *needles);

/* Loads a DAG file that must fail likewise (limits NULL: the defaults). */
void expect_dag_error(const char *path, const xy_limits *limits, int code,
                      const char *const *needles);

/* Loads a spec that must load, and verifies its module. */
ir_module *load_module_ok(const char *path);

/* Tensor name exists with this role and shape. */
void expect_tensor(const ir_module *m, const char *name, ir_tensor_role role, int rank,
                   const int64_t *d);

/* The op of this name (ends the test when there is none). */
const ir_op *find_op(const ir_module *m, const char *name);

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* The groups, each in its own file; they return the number of failed tests. */
int run_spec_tests(void);
int run_dag_tests(void);
int run_locate_tests(void);
int run_layer_tests(void);
int run_memory_tests(void);
int run_memory_layer_tests(void);
int run_graph_layer_tests(void);

#endif /* XY_FE_TEST_H */
