/*
 * render.h: the one C-family renderer. Kernel IR becomes OpenCL C, C99, or the IR's own
 * text form; a dialect changes only a handful of strings and two switches.
 */
#ifndef XY_RENDER_H
#define XY_RENDER_H

#include <stdbool.h>

#include "kernel_ir.h"

typedef struct xy_dialect {
  const char *name;
  const char *prelude;            /* text before the first kernel */
  const char *kernel_qualifier;   /* "__kernel void" */
  const char *wg_attribute;       /* printf format with the work-group size, or NULL */
  const char *global_qualifier;   /* for global pointer parameters */
  const char *local_qualifier;    /* for local arrays */
  const char *restrict_kw;        /* "restrict", or "" */
  const char *group_id;           /* printf format with the axis */
  bool group_ids_as_params;       /* C: the group id arrives as parameters gid0.. */
  const char *local_id_decl;      /* declares `lid`, or NULL where parfors are plain loops */
  const char *parfor_keyword;     /* pseudo-code only: renders `parfor (v < n)` */
  const char *barrier;            /* statement after each parfor, or NULL */
  const char *funcs[KF_COUNT];    /* exp, tanh, ... (expf in C) */
  const char *int_min, *int_max, *flt_min, *flt_max;
  /* Vectors: type name, load, store and splat as printf formats with the lanes first. */
  const char *vec_type;           /* "float%d" */
  const char *vload;              /* "vload%d(0, " then array + index and ")" */
  const char *vstore;             /* "vstore%d(" then value ", 0, " array + index ")" */
  const char *splat;              /* "(float%d)(" then the scalar and ")" */
  bool vector_calls;              /* C: vector arithmetic through xy_add16(a, b) etc. */
  void (*vector_prelude)(unsigned lanes_used, xy_buf *out); /* helpers for used lanes */
} xy_dialect;

extern const xy_dialect xy_dialect_opencl;
extern const xy_dialect xy_dialect_c99;
extern const xy_dialect xy_dialect_ir;

/* Appends every kernel of m, rendered in dialect d. */
void xy_render_kernels(const kir_module *m, const xy_dialect *d, xy_buf *out);

/* The name a kernel's variable or array gets in rendered code (unique within the kernel). */
const char *xy_render_var_name(const kir_kernel *k, int var, char *buf, size_t n);

/* A float constant as a C float literal that reads back to the same float32. */
void xy_render_float(double v, xy_buf *out);

#endif /* XY_RENDER_H */
