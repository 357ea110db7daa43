/*
 * rt_plan.h: the launch plan's private state, shared by plan creation (rt_plan.c) and
 * execution (rt_plan_run.c).
 */
#ifndef XYLEM_RT_PLAN_H
#define XYLEM_RT_PLAN_H

#include "rt_internal.h"

typedef struct rt_buffer {
  cl_mem mem;    /* what kernels see: the buffer itself, or the sub-buffer in guard mode */
  cl_mem parent; /* guard mode: the allocation holding canary + buffer + canary */
  size_t bytes;  /* as the plan asked */
  size_t alloc;  /* bytes of mem: at least 4, since OpenCL has no empty buffers */
} rt_buffer;

struct xrt_plan {
  xrt_context *ctx;
  const xrt_plan_desc *desc;
  xrt_plan_options opt;
  xrt_program *prog;

  uint32_t n_kernels;
  cl_kernel *kernels;      /* one per distinct kernel name */
  uint32_t *step_kernel;   /* steps -> kernels */
  int64_t *kernel_owner;   /* step whose arguments are currently set on each kernel, or -1 */

  rt_buffer *buffers;
  uint32_t *input_buffer;  /* io_index -> buffer index */
  uint32_t *output_buffer;

  size_t canary;                  /* bytes of each canary region; 0 without guard */
  unsigned char *canary_pattern;  /* canary bytes, what each region must still hold */
  unsigned char *canary_check;    /* read-back space for one region */

  cl_event *events;  /* one per step while executing with profile */
  double *step_ms;
  int have_times;
};

/* The buffer's name for messages (plans may leave names out). */
const char *rt_buffer_name(const xrt_plan_desc *desc, uint32_t i);

/* Sets the arguments of step s on its kernel unless they are already set. */
int rt_plan_set_args(xrt_plan *plan, uint32_t s, xrt_error *err);

/* Writes the canary pattern around buffer i (guard mode). */
int rt_plan_arm_canaries(xrt_plan *plan, uint32_t i, xrt_error *err);

/* The fixed canary byte: unlikely as float data (0xa5a5a5a5 is about -2.9e-16). */
enum { RT_CANARY_BYTE = 0xa5 };

#endif /* XYLEM_RT_PLAN_H */
