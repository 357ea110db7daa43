/*
 * program.h: what xy_model and xy_program hold (the public types are opaque).
 */
#ifndef XY_PROGRAM_H
#define XY_PROGRAM_H

#include "graph_ir.h"
#include "kernel_ir.h"
#include "plan.h"

struct xy_model {
  ir_module *m;
};

struct xy_program {
  char *name;
  xy_target target;
  kir_module *k;
  char *kernel_source;   /* OpenCL C, or the C99 kernels */
  char *package_c;       /* NAME.c */
  char *package_h;       /* NAME.h */
  char *plan_json;       /* NAME.plan.json */
  char *build_options;
  xrt_plan_desc plan;
  plan_storage plan_store;
};

#endif /* XY_PROGRAM_H */
