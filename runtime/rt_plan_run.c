/*
 * rt_plan_run.c: running a plan: upload, execute (poison, launches, timing, guard check),
 * download.
 */
#include "rt_error.h"
#include "rt_plan.h"

#include <string.h>

int xrt_plan_upload(xrt_plan *plan, const void *const *inputs, xrt_error *err) {
  rt_error_clear(err);
  if (!plan)
    return rt_error(err, XRT_E_ARG, "xrt_plan_upload: plan must not be NULL");
  const xrt_plan_desc *d = plan->desc;
  if (d->n_inputs && !inputs)
    return rt_error(err, XRT_E_ARG, "plan '%s': %u inputs expected, got NULL",
                    d->name ? d->name : "", d->n_inputs);
  for (uint32_t i = 0; i < d->n_inputs; i++) {
    uint32_t b = plan->input_buffer[i];
    if (plan->buffers[b].bytes == 0)
      continue;
    if (!inputs[i]) {
      clFinish(plan->ctx->queue);
      return rt_error(err, XRT_E_ARG, "plan '%s': input %u ('%s') is NULL",
                      d->name ? d->name : "", i, rt_buffer_name(d, b));
    }
    /* Not blocking: the writes overlap, and the clFinish below keeps the caller's memory
     * in use only until this function returns. */
    cl_int st = clEnqueueWriteBuffer(plan->ctx->queue, plan->buffers[b].mem, CL_FALSE, 0,
                                     plan->buffers[b].bytes, inputs[i], 0, NULL, NULL);
    if (st != CL_SUCCESS) {
      clFinish(plan->ctx->queue);
      return rt_cl_error(err, st, "plan '%s': uploading input %u ('%s')",
                         d->name ? d->name : "", i, rt_buffer_name(d, b));
    }
  }
  cl_int st = clFinish(plan->ctx->queue);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "plan '%s': clFinish after upload", d->name ? d->name : "");
  return XRT_OK;
}

int xrt_plan_download(xrt_plan *plan, void *const *outputs, xrt_error *err) {
  rt_error_clear(err);
  if (!plan)
    return rt_error(err, XRT_E_ARG, "xrt_plan_download: plan must not be NULL");
  const xrt_plan_desc *d = plan->desc;
  if (d->n_outputs && !outputs)
    return rt_error(err, XRT_E_ARG, "plan '%s': %u outputs expected, got NULL",
                    d->name ? d->name : "", d->n_outputs);
  for (uint32_t i = 0; i < d->n_outputs; i++) {
    uint32_t b = plan->output_buffer[i];
    if (plan->buffers[b].bytes == 0)
      continue;
    if (!outputs[i]) {
      clFinish(plan->ctx->queue);
      return rt_error(err, XRT_E_ARG, "plan '%s': output %u ('%s') is NULL",
                      d->name ? d->name : "", i, rt_buffer_name(d, b));
    }
    cl_int st = clEnqueueReadBuffer(plan->ctx->queue, plan->buffers[b].mem, CL_FALSE, 0,
                                    plan->buffers[b].bytes, outputs[i], 0, NULL, NULL);
    if (st != CL_SUCCESS) {
      clFinish(plan->ctx->queue);
      return rt_cl_error(err, st, "plan '%s': downloading output %u ('%s')",
                         d->name ? d->name : "", i, rt_buffer_name(d, b));
    }
  }
  cl_int st = clFinish(plan->ctx->queue);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "plan '%s': clFinish after download", d->name ? d->name : "");
  return XRT_OK;
}

/* A quiet float NaN, as bytes in memory order (little-endian hosts and devices). */
static const unsigned char nan_bytes[4] = {0x00, 0x00, 0xc0, 0x7f};

/* Fills outputs and temporaries with NaN, so that an element no kernel writes shows up. */
static int poison(xrt_plan *plan, xrt_error *err) {
  const xrt_plan_desc *d = plan->desc;
  for (uint32_t i = 0; i < d->n_buffers; i++) {
    if (d->buffers[i].role != XRT_BUF_OUTPUT && d->buffers[i].role != XRT_BUF_TEMP)
      continue;
    rt_buffer *b = &plan->buffers[i];
    size_t whole = b->alloc / 4 * 4, tail = b->alloc - whole;
    cl_int st = clEnqueueFillBuffer(plan->ctx->queue, b->mem, nan_bytes, sizeof nan_bytes, 0,
                                    whole, 0, NULL, NULL);
    /* Fill needs a size that is a multiple of the pattern; the last 1-3 bytes are written
     * from the host (static data, so a non-blocking write is safe). */
    if (st == CL_SUCCESS && tail)
      st = clEnqueueWriteBuffer(plan->ctx->queue, b->mem, CL_FALSE, whole, tail, nan_bytes, 0,
                                NULL, NULL);
    if (st != CL_SUCCESS)
      return rt_cl_error(err, st, "plan '%s': poisoning buffer %u '%s'",
                         d->name ? d->name : "", i, rt_buffer_name(d, i));
  }
  return XRT_OK;
}

/* Reads back one canary region; returns the offset of the first changed byte, or -1. */
static long changed_at(xrt_plan *plan, uint32_t i, size_t offset, cl_int *st) {
  *st = clEnqueueReadBuffer(plan->ctx->queue, plan->buffers[i].parent, CL_TRUE, offset,
                            plan->canary, plan->canary_check, 0, NULL, NULL);
  if (*st != CL_SUCCESS)
    return -1;
  for (size_t j = 0; j < plan->canary; j++)
    if (plan->canary_check[j] != RT_CANARY_BYTE)
      return (long)j;
  return -1;
}

/* Checks every guarded buffer; reports the first hit and re-arms every hit canary, so that
 * the next run reports only its own overruns. */
static int check_guards(xrt_plan *plan, xrt_error *err) {
  const xrt_plan_desc *d = plan->desc;
  int hit = 0;
  for (uint32_t i = 0; i < d->n_buffers; i++) {
    rt_buffer *b = &plan->buffers[i];
    if (!b->parent)
      continue;
    cl_int st;
    long before = changed_at(plan, i, 0, &st);
    if (st != CL_SUCCESS)
      return rt_cl_error(err, st, "reading the canaries of buffer %u '%s'", i,
                         rt_buffer_name(d, i));
    long after = changed_at(plan, i, plan->canary + b->alloc, &st);
    if (st != CL_SUCCESS)
      return rt_cl_error(err, st, "reading the canaries of buffer %u '%s'", i,
                         rt_buffer_name(d, i));
    if (before < 0 && after < 0)
      continue;
    if (!hit && before >= 0)
      rt_error(err, XRT_E_GUARD,
               "plan '%s': buffer %u '%s' (%zu bytes): the canary before it was overwritten, "
               "%zu bytes before its start",
               d->name ? d->name : "", i, rt_buffer_name(d, i), b->bytes,
               plan->canary - (size_t)before);
    else if (!hit)
      rt_error(err, XRT_E_GUARD,
               "plan '%s': buffer %u '%s' (%zu bytes): the canary after it was overwritten, "
               "at byte %zu past its end",
               d->name ? d->name : "", i, rt_buffer_name(d, i), b->bytes,
               (size_t)after + (b->alloc - b->bytes));
    hit = 1;
    int rc = rt_plan_arm_canaries(plan, i, err);
    if (rc)
      return rc;
  }
  return hit ? XRT_E_GUARD : XRT_OK;
}

static void release_events(xrt_plan *plan) {
  for (uint32_t s = 0; s < plan->desc->n_steps; s++)
    if (plan->events[s]) {
      clReleaseEvent(plan->events[s]);
      plan->events[s] = NULL;
    }
}

static int read_times(xrt_plan *plan, xrt_error *err) {
  for (uint32_t s = 0; s < plan->desc->n_steps; s++) {
    cl_ulong t0 = 0, t1 = 0;
    cl_int st = clGetEventProfilingInfo(plan->events[s], CL_PROFILING_COMMAND_START,
                                        sizeof t0, &t0, NULL);
    if (st == CL_SUCCESS)
      st = clGetEventProfilingInfo(plan->events[s], CL_PROFILING_COMMAND_END, sizeof t1, &t1,
                                   NULL);
    if (st != CL_SUCCESS)
      return rt_cl_error(err, st, "step %u (kernel '%s'): clGetEventProfilingInfo", s,
                         plan->desc->steps[s].kernel);
    plan->step_ms[s] = t1 > t0 ? (double)(t1 - t0) * 1e-6 : 0.0;
  }
  plan->have_times = 1;
  return XRT_OK;
}

static int launch(xrt_plan *plan, uint32_t s, xrt_error *err) {
  const xrt_step_desc *sd = &plan->desc->steps[s];
  int rc = rt_plan_set_args(plan, s, err);
  if (rc)
    return rc;
  /* Sizes were checked to fit size_t at creation. */
  size_t global[3] = {(size_t)sd->groups[0] * sd->local_size, (size_t)sd->groups[1],
                      (size_t)sd->groups[2]};
  size_t local[3] = {sd->local_size, 1, 1};
  cl_uint dims = sd->groups[2] > 1 ? 3 : sd->groups[1] > 1 ? 2 : 1;
  cl_int st = clEnqueueNDRangeKernel(plan->ctx->queue, plan->kernels[plan->step_kernel[s]],
                                     dims, NULL, global, local, 0, NULL,
                                     plan->opt.profile ? &plan->events[s] : NULL);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st,
                       "plan '%s': step %u (kernel '%s', global %zu x %zu x %zu, local %zu): "
                       "clEnqueueNDRangeKernel",
                       plan->desc->name ? plan->desc->name : "", s, sd->kernel, global[0],
                       global[1], global[2], local[0]);
  return XRT_OK;
}

int xrt_plan_execute(xrt_plan *plan, xrt_error *err) {
  rt_error_clear(err);
  if (!plan)
    return rt_error(err, XRT_E_ARG, "xrt_plan_execute: plan must not be NULL");
  plan->have_times = 0;
  int rc = plan->opt.poison ? poison(plan, err) : XRT_OK;
  for (uint32_t s = 0; !rc && s < plan->desc->n_steps; s++)
    rc = launch(plan, s, err);
  /* Wait even after a failed enqueue, so that nothing is in flight when we return. */
  cl_int st = clFinish(plan->ctx->queue);
  if (!rc && st != CL_SUCCESS)
    rc = rt_cl_error(err, st, "plan '%s': clFinish after execute",
                     plan->desc->name ? plan->desc->name : "");
  if (!rc && plan->opt.profile)
    rc = read_times(plan, err);
  release_events(plan);
  if (!rc && plan->opt.guard)
    rc = check_guards(plan, err);
  return rc;
}

int xrt_plan_run(xrt_plan *plan, const void *const *inputs, void *const *outputs,
                 xrt_error *err) {
  int rc = xrt_plan_upload(plan, inputs, err);
  if (!rc)
    rc = xrt_plan_execute(plan, err);
  if (!rc)
    rc = xrt_plan_download(plan, outputs, err);
  return rc;
}

int xrt_plan_step_times(const xrt_plan *plan, double *ms, xrt_error *err) {
  rt_error_clear(err);
  if (!plan || (!ms && plan->desc->n_steps))
    return rt_error(err, XRT_E_ARG, "xrt_plan_step_times: plan and ms must not be NULL");
  if (!plan->opt.profile)
    return rt_error(err, XRT_E_ARG, "plan '%s' was created without the profile option",
                    plan->desc->name ? plan->desc->name : "");
  if (!plan->have_times)
    return rt_error(err, XRT_E_ARG, "plan '%s' has no completed execute to time",
                    plan->desc->name ? plan->desc->name : "");
  if (plan->desc->n_steps)
    memcpy(ms, plan->step_ms, plan->desc->n_steps * sizeof *ms);
  return XRT_OK;
}
