/*
 * rt_plan.c: creating and releasing launch plans. Everything that can be known to fail is
 * checked here, before any launch: the description's consistency, the device's limits,
 * kernel names and argument counts.
 */
#include "rt_error.h"
#include "rt_plan.h"

#include <stdlib.h>
#include <string.h>

const char *rt_buffer_name(const xrt_plan_desc *desc, uint32_t i) {
  const char *n = desc->buffers[i].name;
  return n && *n ? n : "(unnamed)";
}

static const char *role_name(xrt_buffer_role r) {
  switch (r) {
  case XRT_BUF_INPUT:
    return "input";
  case XRT_BUF_OUTPUT:
    return "output";
  case XRT_BUF_TEMP:
    return "temp";
  case XRT_BUF_CONST:
    return "const";
  }
  return "?";
}

/* ------------------------------------------------------------------ description */

/* Every input and output index 0..n-1 must name exactly one buffer of that role, so that
 * inputs[i] and outputs[i] always have a home. Fills map[io_index] = buffer index. */
static int check_io(const xrt_plan_desc *d, xrt_buffer_role role, uint32_t n, uint32_t *map,
                    xrt_error *err) {
  for (uint32_t i = 0; i < n; i++)
    map[i] = UINT32_MAX;
  for (uint32_t b = 0; b < d->n_buffers; b++) {
    const xrt_buffer_desc *bd = &d->buffers[b];
    if (bd->role != role)
      continue;
    if (bd->io_index < 0 || (uint32_t)bd->io_index >= n)
      return rt_error(err, XRT_E_ARG,
                      "plan '%s': %s buffer %u '%s' has io_index %d, but the plan has %u %ss",
                      d->name ? d->name : "", role_name(role), b, rt_buffer_name(d, b),
                      bd->io_index, n, role_name(role));
    if (map[bd->io_index] != UINT32_MAX)
      return rt_error(err, XRT_E_ARG,
                      "plan '%s': %s buffers %u '%s' and %u '%s' share io_index %d",
                      d->name ? d->name : "", role_name(role), map[bd->io_index],
                      rt_buffer_name(d, map[bd->io_index]), b, rt_buffer_name(d, b),
                      bd->io_index);
    map[bd->io_index] = b;
  }
  for (uint32_t i = 0; i < n; i++)
    if (map[i] == UINT32_MAX)
      return rt_error(err, XRT_E_ARG, "plan '%s': no %s buffer has io_index %u",
                      d->name ? d->name : "", role_name(role), i);
  return XRT_OK;
}

static int check_desc(const xrt_plan_desc *d, xrt_error *err) {
  const char *pn = d->name ? d->name : "";
  if (!d->source)
    return rt_error(err, XRT_E_ARG, "plan '%s': no source", pn);
  if ((d->n_buffers && !d->buffers) || (d->n_steps && !d->steps))
    return rt_error(err, XRT_E_ARG, "plan '%s': NULL buffer or step list", pn);
  if (d->n_inputs > d->n_buffers || d->n_outputs > d->n_buffers)
    return rt_error(err, XRT_E_ARG, "plan '%s': %u inputs and %u outputs but %u buffers", pn,
                    d->n_inputs, d->n_outputs, d->n_buffers);
  for (uint32_t b = 0; b < d->n_buffers; b++) {
    const xrt_buffer_desc *bd = &d->buffers[b];
    if (bd->role != XRT_BUF_INPUT && bd->role != XRT_BUF_OUTPUT && bd->role != XRT_BUF_TEMP &&
        bd->role != XRT_BUF_CONST)
      return rt_error(err, XRT_E_ARG, "plan '%s': buffer %u '%s' has unknown role %d", pn, b,
                      rt_buffer_name(d, b), (int)bd->role);
    if (bd->role == XRT_BUF_CONST && bd->bytes > 0 && !bd->data)
      return rt_error(err, XRT_E_ARG, "plan '%s': const buffer %u '%s' has no data", pn, b,
                      rt_buffer_name(d, b));
  }
  for (uint32_t s = 0; s < d->n_steps; s++) {
    const xrt_step_desc *sd = &d->steps[s];
    if (!sd->kernel || !*sd->kernel)
      return rt_error(err, XRT_E_ARG, "plan '%s': step %u has no kernel name", pn, s);
    for (int a = 0; a < 3; a++)
      if (sd->groups[a] < 1)
        return rt_error(err, XRT_E_ARG, "plan '%s': step %u (kernel '%s') has groups[%d] = 0",
                        pn, s, sd->kernel, a);
    if (sd->local_size < 1)
      return rt_error(err, XRT_E_ARG, "plan '%s': step %u (kernel '%s') has local_size 0", pn,
                      s, sd->kernel);
    if (sd->n_args && !sd->args)
      return rt_error(err, XRT_E_ARG, "plan '%s': step %u (kernel '%s') has NULL args", pn, s,
                      sd->kernel);
    for (uint32_t a = 0; a < sd->n_args; a++) {
      const xrt_arg_desc *ad = &sd->args[a];
      if (ad->kind == XRT_ARG_BUFFER) {
        if (ad->value < 0 || ad->value >= (int64_t)d->n_buffers)
          return rt_error(err, XRT_E_ARG,
                          "plan '%s': step %u (kernel '%s') arg %u names buffer %lld of %u",
                          pn, s, sd->kernel, a, (long long)ad->value, d->n_buffers);
      } else if (ad->kind == XRT_ARG_INT) {
        if (ad->value < INT32_MIN || ad->value > INT32_MAX)
          return rt_error(err, XRT_E_ARG,
                          "plan '%s': step %u (kernel '%s') arg %u: %lld does not fit a cl_int",
                          pn, s, sd->kernel, a, (long long)ad->value);
      } else {
        return rt_error(err, XRT_E_ARG,
                        "plan '%s': step %u (kernel '%s') arg %u has unknown kind %d", pn, s,
                        sd->kernel, a, (int)ad->kind);
      }
    }
  }
  return XRT_OK;
}

/* ------------------------------------------------------------------ limits */

/* Buffer sizes against the device's largest allocation, with guard canaries included. */
static int check_buffer_limits(xrt_plan *plan, xrt_error *err) {
  const xrt_plan_desc *d = plan->desc;
  uint64_t max_alloc = plan->ctx->info.max_alloc_bytes;
  for (uint32_t b = 0; b < d->n_buffers; b++) {
    uint64_t bytes = d->buffers[b].bytes;
    if (bytes > max_alloc || bytes > SIZE_MAX)
      return rt_error(err, XRT_E_LIMIT,
                      "plan '%s': buffer %u '%s' needs %llu bytes, more than the device's "
                      "max allocation of %llu bytes",
                      d->name ? d->name : "", b, rt_buffer_name(d, b), (unsigned long long)bytes,
                      (unsigned long long)max_alloc);
    size_t alloc = bytes < 4 ? 4 : (size_t)bytes, total = alloc;
    if (plan->canary && d->buffers[b].role != XRT_BUF_CONST &&
        (!rt_add_size(alloc, 2 * plan->canary, &total) || total > max_alloc))
      return rt_error(err, XRT_E_LIMIT,
                      "plan '%s': buffer %u '%s' needs %llu bytes with its guard canaries, more "
                      "than the device's max allocation of %llu bytes",
                      d->name ? d->name : "", b, rt_buffer_name(d, b),
                      (unsigned long long)bytes + 2 * plan->canary,
                      (unsigned long long)max_alloc);
    plan->buffers[b].bytes = (size_t)bytes;
    plan->buffers[b].alloc = alloc;
  }
  return XRT_OK;
}

static int check_step_limits(xrt_plan *plan, uint32_t s, xrt_error *err) {
  const xrt_plan_desc *d = plan->desc;
  const xrt_step_desc *sd = &d->steps[s];
  const xrt_device_info *dev = &plan->ctx->info;
  const char *pn = d->name ? d->name : "";
  cl_kernel k = plan->kernels[plan->step_kernel[s]];

  if (sd->local_size > dev->max_work_group_size)
    return rt_error(err, XRT_E_LIMIT,
                    "plan '%s': step %u (kernel '%s'): local_size %u exceeds the device's max "
                    "work-group size %zu",
                    pn, s, sd->kernel, sd->local_size, dev->max_work_group_size);
  if (sd->local_size > plan->ctx->max_work_item_size0)
    return rt_error(err, XRT_E_LIMIT,
                    "plan '%s': step %u (kernel '%s'): local_size %u exceeds the device's max "
                    "work-items along axis 0, %zu",
                    pn, s, sd->kernel, sd->local_size, plan->ctx->max_work_item_size0);
  size_t kwg = 0;
  cl_int st = clGetKernelWorkGroupInfo(k, plan->ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof kwg, &kwg, NULL);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "clGetKernelWorkGroupInfo(kernel '%s')", sd->kernel);
  if (sd->local_size > kwg)
    return rt_error(err, XRT_E_LIMIT,
                    "plan '%s': step %u (kernel '%s'): local_size %u exceeds the kernel's max "
                    "work-group size %zu on this device",
                    pn, s, sd->kernel, sd->local_size, kwg);
  size_t g0;
  if (sd->groups[0] > SIZE_MAX || !rt_mul_size((size_t)sd->groups[0], sd->local_size, &g0) ||
      sd->groups[1] > SIZE_MAX || sd->groups[2] > SIZE_MAX)
    return rt_error(err, XRT_E_LIMIT,
                    "plan '%s': step %u (kernel '%s'): global size %llu x %u, %llu, %llu does "
                    "not fit size_t",
                    pn, s, sd->kernel, (unsigned long long)sd->groups[0], sd->local_size,
                    (unsigned long long)sd->groups[1], (unsigned long long)sd->groups[2]);
  return XRT_OK;
}

/* ------------------------------------------------------------------ kernels */

static int set_arg_error(xrt_error *err, cl_int st, const xrt_plan_desc *d, uint32_t s,
                         uint32_t a) {
  rt_cl_error(err, st, "plan '%s': step %u (kernel '%s'): clSetKernelArg(%u)",
              d->name ? d->name : "", s, d->steps[s].kernel, a);
  /* The description and the kernel disagree: the caller's mistake, not the device's. */
  if (err)
    err->code = XRT_E_ARG;
  return XRT_E_ARG;
}

int rt_plan_set_args(xrt_plan *plan, uint32_t s, xrt_error *err) {
  uint32_t ki = plan->step_kernel[s];
  if (plan->kernel_owner[ki] == (int64_t)s)
    return XRT_OK;
  const xrt_step_desc *sd = &plan->desc->steps[s];
  cl_kernel k = plan->kernels[ki];
  plan->kernel_owner[ki] = -1;
  for (uint32_t a = 0; a < sd->n_args; a++) {
    cl_int st;
    if (sd->args[a].kind == XRT_ARG_BUFFER) {
      cl_mem m = plan->buffers[sd->args[a].value].mem;
      st = clSetKernelArg(k, a, sizeof m, &m);
    } else {
      cl_int v = (cl_int)sd->args[a].value;
      st = clSetKernelArg(k, a, sizeof v, &v);
    }
    if (st != CL_SUCCESS)
      return set_arg_error(err, st, plan->desc, s, a);
  }
  plan->kernel_owner[ki] = (int64_t)s;
  return XRT_OK;
}

/* One cl_kernel per distinct name; checks argument counts and local memory. */
static int create_kernels(xrt_plan *plan, xrt_error *err) {
  const xrt_plan_desc *d = plan->desc;
  const char *pn = d->name ? d->name : "";
  for (uint32_t s = 0; s < d->n_steps; s++) {
    const char *name = d->steps[s].kernel;
    /* A name seen at an earlier step reuses that step's kernel. */
    uint32_t found = UINT32_MAX;
    for (uint32_t t = 0; t < s && found == UINT32_MAX; t++)
      if (strcmp(d->steps[t].kernel, name) == 0)
        found = plan->step_kernel[t];
    if (found != UINT32_MAX) {
      plan->step_kernel[s] = found;
      continue;
    }
    cl_int st;
    cl_kernel kern = clCreateKernel(plan->prog->program, name, &st);
    if (st != CL_SUCCESS || !kern) {
      int rc = rt_cl_error(err, st, "plan '%s': step %u: clCreateKernel('%s')", pn, s, name);
      if (st == CL_INVALID_KERNEL_NAME && err) {
        err->code = XRT_E_ARG;
        rc = XRT_E_ARG;
      }
      return rc;
    }
    plan->kernels[plan->n_kernels] = kern;
    plan->kernel_owner[plan->n_kernels] = -1;
    plan->step_kernel[s] = plan->n_kernels++;

    cl_ulong lmem = 0;
    st = clGetKernelWorkGroupInfo(kern, plan->ctx->device, CL_KERNEL_LOCAL_MEM_SIZE,
                                  sizeof lmem, &lmem, NULL);
    if (st != CL_SUCCESS)
      return rt_cl_error(err, st, "clGetKernelWorkGroupInfo(kernel '%s')", name);
    if (lmem > plan->ctx->info.local_mem_bytes)
      return rt_error(err, XRT_E_LIMIT,
                      "plan '%s': step %u (kernel '%s') uses %llu bytes of local memory, more "
                      "than the device's %llu bytes",
                      pn, s, name, (unsigned long long)lmem,
                      (unsigned long long)plan->ctx->info.local_mem_bytes);
  }
  /* Argument counts: every step using a kernel must pass all of its parameters. */
  for (uint32_t s = 0; s < d->n_steps; s++) {
    cl_uint nargs = 0;
    cl_int st = clGetKernelInfo(plan->kernels[plan->step_kernel[s]], CL_KERNEL_NUM_ARGS,
                                sizeof nargs, &nargs, NULL);
    if (st != CL_SUCCESS)
      return rt_cl_error(err, st, "clGetKernelInfo(kernel '%s')", d->steps[s].kernel);
    if (nargs != d->steps[s].n_args)
      return rt_error(err, XRT_E_ARG,
                      "plan '%s': step %u (kernel '%s') passes %u arguments; the kernel takes %u",
                      pn, s, d->steps[s].kernel, d->steps[s].n_args, nargs);
  }
  return XRT_OK;
}

/* ------------------------------------------------------------------ buffers */

int rt_plan_arm_canaries(xrt_plan *plan, uint32_t i, xrt_error *err) {
  rt_buffer *b = &plan->buffers[i];
  cl_command_queue q = plan->ctx->queue;
  /* Blocking: the pattern is plan-owned, but a finished write keeps the order obvious. */
  cl_int st = clEnqueueWriteBuffer(q, b->parent, CL_TRUE, 0, plan->canary,
                                   plan->canary_pattern, 0, NULL, NULL);
  if (st == CL_SUCCESS)
    st = clEnqueueWriteBuffer(q, b->parent, CL_TRUE, plan->canary + b->alloc, plan->canary,
                              plan->canary_pattern, 0, NULL, NULL);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "writing the canaries of buffer %u '%s'", i,
                       rt_buffer_name(plan->desc, i));
  return XRT_OK;
}

static int create_buffers(xrt_plan *plan, xrt_error *err) {
  const xrt_plan_desc *d = plan->desc;
  cl_context c = plan->ctx->context;
  for (uint32_t i = 0; i < d->n_buffers; i++) {
    rt_buffer *b = &plan->buffers[i];
    const xrt_buffer_desc *bd = &d->buffers[i];
    cl_int st;
    if (bd->role == XRT_BUF_CONST || !plan->canary) {
      cl_mem_flags fl = bd->role == XRT_BUF_CONST ? CL_MEM_READ_ONLY : CL_MEM_READ_WRITE;
      b->mem = clCreateBuffer(c, fl, b->alloc, NULL, &st);
      if (st != CL_SUCCESS || !b->mem)
        return rt_cl_error(err, st, "clCreateBuffer(%zu bytes) for buffer %u '%s'", b->alloc,
                           i, rt_buffer_name(d, i));
      if (bd->role == XRT_BUF_CONST && b->bytes > 0) {
        st = clEnqueueWriteBuffer(plan->ctx->queue, b->mem, CL_TRUE, 0, b->bytes, bd->data, 0,
                                  NULL, NULL);
        if (st != CL_SUCCESS)
          return rt_cl_error(err, st, "uploading const buffer %u '%s'", i,
                             rt_buffer_name(d, i));
      }
      continue;
    }
    /* Guard: canary | buffer | canary in one allocation. The sub-buffer starts at a multiple
     * of the base address alignment, as OpenCL requires; the trailing canary begins right
     * at the buffer's end so that an overrun of one element lands in it. */
    size_t total = b->alloc + 2 * plan->canary; /* checked in check_buffer_limits */
    b->parent = clCreateBuffer(c, CL_MEM_READ_WRITE, total, NULL, &st);
    if (st != CL_SUCCESS || !b->parent)
      return rt_cl_error(err, st, "clCreateBuffer(%zu bytes) for guarded buffer %u '%s'", total,
                         i, rt_buffer_name(d, i));
    cl_buffer_region region = {plan->canary, b->alloc};
    b->mem = clCreateSubBuffer(b->parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION,
                               &region, &st);
    if (st != CL_SUCCESS || !b->mem)
      return rt_cl_error(err, st, "clCreateSubBuffer for guarded buffer %u '%s'", i,
                         rt_buffer_name(d, i));
    int rc = rt_plan_arm_canaries(plan, i, err);
    if (rc)
      return rc;
  }
  return XRT_OK;
}

/* ------------------------------------------------------------------ create / release */

static int alloc_state(xrt_plan *plan) {
  const xrt_plan_desc *d = plan->desc;
  /* calloc checks count * size itself; +1 keeps zero counts from returning NULL. */
  plan->kernels = calloc((size_t)d->n_steps + 1, sizeof *plan->kernels);
  plan->step_kernel = calloc((size_t)d->n_steps + 1, sizeof *plan->step_kernel);
  plan->kernel_owner = calloc((size_t)d->n_steps + 1, sizeof *plan->kernel_owner);
  plan->buffers = calloc((size_t)d->n_buffers + 1, sizeof *plan->buffers);
  plan->input_buffer = calloc((size_t)d->n_inputs + 1, sizeof *plan->input_buffer);
  plan->output_buffer = calloc((size_t)d->n_outputs + 1, sizeof *plan->output_buffer);
  plan->events = calloc((size_t)d->n_steps + 1, sizeof *plan->events);
  plan->step_ms = calloc((size_t)d->n_steps + 1, sizeof *plan->step_ms);
  return plan->kernels && plan->step_kernel && plan->kernel_owner && plan->buffers &&
         plan->input_buffer && plan->output_buffer && plan->events && plan->step_ms;
}

int xrt_plan_create(xrt_context *ctx, const xrt_plan_desc *desc, const xrt_plan_options *opt,
                    xrt_plan **out, xrt_error *err) {
  rt_error_clear(err);
  if (!out)
    return rt_error(err, XRT_E_ARG, "xrt_plan_create: out must not be NULL");
  *out = NULL;
  if (!ctx || !desc)
    return rt_error(err, XRT_E_ARG, "xrt_plan_create: context and desc must not be NULL");
  int rc = check_desc(desc, err);
  if (rc)
    return rc;

  xrt_plan *plan = calloc(1, sizeof *plan);
  if (!plan)
    return rt_error(err, XRT_E_NOMEM, "out of memory creating plan '%s'",
                    desc->name ? desc->name : "");
  plan->ctx = ctx;
  plan->desc = desc;
  if (opt)
    plan->opt = *opt;
  if (!alloc_state(plan)) {
    rc = rt_error(err, XRT_E_NOMEM, "out of memory creating plan '%s'",
                  desc->name ? desc->name : "");
    goto fail;
  }
  if (plan->opt.profile && !ctx->info.profiling) {
    rc = rt_error(err, XRT_E_DEVICE, "plan '%s': device '%s' does not support profiling",
                  desc->name ? desc->name : "", ctx->info.name);
    goto fail;
  }
  if (plan->opt.guard) {
    /* At least 256 bytes, and a multiple of the alignment a sub-buffer origin needs. */
    if (!rt_round_up(256, ctx->info.mem_base_align_bytes, &plan->canary) ||
        !(plan->canary_pattern = malloc(plan->canary)) ||
        !(plan->canary_check = malloc(plan->canary))) {
      rc = rt_error(err, XRT_E_NOMEM, "out of memory creating guard canaries");
      goto fail;
    }
    memset(plan->canary_pattern, RT_CANARY_BYTE, plan->canary);
  }

  if ((rc = check_io(desc, XRT_BUF_INPUT, desc->n_inputs, plan->input_buffer, err)) ||
      (rc = check_io(desc, XRT_BUF_OUTPUT, desc->n_outputs, plan->output_buffer, err)) ||
      (rc = check_buffer_limits(plan, err)) ||
      (rc = xrt_program_build(ctx, desc->source, desc->build_options, &plan->prog, err)) ||
      (rc = create_kernels(plan, err)))
    goto fail;
  for (uint32_t s = 0; s < desc->n_steps; s++)
    if ((rc = check_step_limits(plan, s, err)))
      goto fail;
  if ((rc = create_buffers(plan, err)))
    goto fail;
  /* Setting every step's arguments once finds a description that disagrees with its kernels
   * now rather than at the first run. */
  for (uint32_t s = 0; s < desc->n_steps; s++)
    if ((rc = rt_plan_set_args(plan, s, err)))
      goto fail;
  *out = plan;
  return XRT_OK;

fail:
  xrt_plan_release(plan);
  return rc;
}

void xrt_plan_release(xrt_plan *plan) {
  if (!plan)
    return;
  if (plan->ctx && plan->ctx->queue)
    clFinish(plan->ctx->queue);
  const xrt_plan_desc *d = plan->desc;
  if (plan->events)
    for (uint32_t s = 0; s < d->n_steps; s++)
      if (plan->events[s])
        clReleaseEvent(plan->events[s]);
  if (plan->buffers)
    for (uint32_t i = 0; i < d->n_buffers; i++) {
      /* The sub-buffer goes first: it holds a reference on its parent. */
      if (plan->buffers[i].mem)
        clReleaseMemObject(plan->buffers[i].mem);
      if (plan->buffers[i].parent)
        clReleaseMemObject(plan->buffers[i].parent);
    }
  if (plan->kernels)
    for (uint32_t k = 0; k < plan->n_kernels; k++)
      clReleaseKernel(plan->kernels[k]);
  xrt_program_release(plan->prog);
  free(plan->kernels);
  free(plan->step_kernel);
  free(plan->kernel_owner);
  free(plan->buffers);
  free(plan->input_buffer);
  free(plan->output_buffer);
  free(plan->canary_pattern);
  free(plan->canary_check);
  free(plan->events);
  free(plan->step_ms);
  free(plan);
}
