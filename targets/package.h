/*
 * package.h: the files a compiled program is written as. Both targets describe their
 * inputs and outputs the same way in NAME.h.
 */
#ifndef XY_PACKAGE_H
#define XY_PACKAGE_H

#include "kernel_ir.h"

typedef struct pkg_tensor {
  const char *name;
  int64_t count;
  char shape[160];   /* "[2,64,8,1]" */
} pkg_tensor;

typedef struct pkg_info {
  const char *name;        /* C identifier prefix and file name */
  const char *spec_path;   /* for the "generated from" line */
  const pkg_tensor *inputs;
  int n_inputs;
  const pkg_tensor *outputs;
  int n_outputs;
} pkg_info;

/* OpenCL target: NAME.c and NAME.h calling xylem-rt, with the kernel source embedded. */
int emit_opencl_package(const pkg_info *pkg, const xrt_plan_desc *desc, xy_buf *c, xy_buf *h);

/* C target: NAME.c holding the kernels as C functions and NAME_run executing the plan. */
int emit_c_package(const pkg_info *pkg, const kir_module *k, const xrt_plan_desc *desc,
                   const char *kernels_c, xy_buf *c, xy_buf *h);

/* The plan's constant index tables as `static const int NAME_constI[]` arrays. */
void pkg_const_tables(const pkg_info *pkg, const xrt_plan_desc *desc, xy_buf *out);

/* The comment block listing inputs and outputs, shared by both headers. */
void pkg_io_comment(const pkg_info *pkg, xy_buf *out);

#endif /* XY_PACKAGE_H */
