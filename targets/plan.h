/*
 * plan.h: the launch plan as the runtime reads it (xrt_plan_desc), built from kernel IR,
 * and its JSON form (NAME.plan.json). Both targets execute the same plan.
 */
#ifndef XY_PLAN_H
#define XY_PLAN_H

#include "kernel_ir.h"

typedef struct plan_storage {
  xrt_buffer_desc *buffers;
  xrt_step_desc *steps;
  xrt_arg_desc *args;
} plan_storage;

/* desc points into st and into k (names, constant data): both must outlive it. */
int plan_build(const kir_module *k, const char *source, const char *options,
               xrt_plan_desc *desc, plan_storage *st, xy_error *err);
void plan_storage_free(plan_storage *st);

void plan_json(const xrt_plan_desc *desc, const char *target, const char *forms, xy_buf *out);

/* Appends s as the body of a C string literal (escapes, line breaks kept readable). */
void c_string_literal(const char *s, xy_buf *out);

#endif /* XY_PLAN_H */
