/*
 * rt_internal.h: the runtime's private structs and small helpers shared by its files.
 */
#ifndef XYLEM_RT_INTERNAL_H
#define XYLEM_RT_INTERNAL_H

#include "xylem-rt.h"

#include <CL/cl.h>
#include <stdint.h>

struct xrt_context {
  xrt_device_info info;
  cl_platform_id platform;
  cl_device_id device;
  cl_context context;
  cl_command_queue queue;
  size_t max_work_item_size0; /* CL_DEVICE_MAX_WORK_ITEM_SIZES[0] */
};

struct xrt_program {
  xrt_context *ctx;
  cl_program program;
  int from_cache;
};

/* Overflow-checked size arithmetic: return 0 and leave *out alone when the result does not
 * fit. */
static inline int rt_add_size(size_t a, size_t b, size_t *out) {
  if (a > SIZE_MAX - b)
    return 0;
  *out = a + b;
  return 1;
}

static inline int rt_mul_size(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a)
    return 0;
  *out = a * b;
  return 1;
}

/* Rounds a up to a multiple of m (m > 0). */
static inline int rt_round_up(size_t a, size_t m, size_t *out) {
  size_t r = a % m;
  if (r == 0) {
    *out = a;
    return 1;
  }
  return rt_add_size(a, m - r, out);
}

#endif /* XYLEM_RT_INTERNAL_H */
