/*
 * rt_calibrate.c: the two ceilings kernels are reported against: copy bandwidth (a float4
 * copy) and FMA rate (independent float8 fma chains, so that CPU devices use their SIMD
 * units and GPUs have enough independent work per thread).
 */
#include "rt_error.h"
#include "rt_internal.h"

#include <stdlib.h>
#include <time.h>

/* Eight chains of eight lanes: 64 independent FMAs per iteration, enough to hide the FMA
 * latency on CPUs (2 units x ~4 cycles x 8 lanes) and GPUs alike. a and b come in as
 * arguments so nothing can be folded; a < 1 keeps every chain bounded (no inf, no denormals). */
static const char calib_source[] =
    "__kernel void xrt_copy4(__global const float4 *restrict src,\n"
    "                        __global float4 *restrict dst) {\n"
    "  size_t i = get_global_id(0);\n"
    "  dst[i] = src[i];\n"
    "}\n"
    "\n"
    "__kernel void xrt_fma8(__global float *out, float a, float b, int iters) {\n"
    "  float s = (float)get_global_id(0) * 1e-6f;\n"
    "  float8 m = (float8)(a), c = (float8)(b);\n"
    "  float8 x0 = (float8)(s) + (float8)(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f) * 1e-3f;\n"
    "  float8 x1 = x0 + 0.01f, x2 = x0 + 0.02f, x3 = x0 + 0.03f;\n"
    "  float8 x4 = x0 + 0.04f, x5 = x0 + 0.05f, x6 = x0 + 0.06f, x7 = x0 + 0.07f;\n"
    "  for (int k = 0; k < iters; k++) {\n"
    "    x0 = fma(x0, m, c); x1 = fma(x1, m, c); x2 = fma(x2, m, c); x3 = fma(x3, m, c);\n"
    "    x4 = fma(x4, m, c); x5 = fma(x5, m, c); x6 = fma(x6, m, c); x7 = fma(x7, m, c);\n"
    "  }\n"
    "  float8 t = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));\n"
    "  float4 u = t.lo + t.hi;\n"
    "  out[get_global_id(0)] = (u.x + u.y) + (u.z + u.w);\n"
    "}\n";

enum { FMA_CHAINS = 8, FMA_LANES = 8, FMA_ITERS = 1024, RUNS = 5 };

static const size_t MiB = (size_t)1 << 20;

typedef struct calib {
  xrt_context *ctx;
  xrt_program *prog;
  cl_kernel copy, fma;
  cl_mem src, dst, out;
} calib;

static void calib_release(calib *c) {
  if (c->ctx->queue)
    clFinish(c->ctx->queue);
  if (c->copy)
    clReleaseKernel(c->copy);
  if (c->fma)
    clReleaseKernel(c->fma);
  if (c->src)
    clReleaseMemObject(c->src);
  if (c->dst)
    clReleaseMemObject(c->dst);
  if (c->out)
    clReleaseMemObject(c->out);
  xrt_program_release(c->prog);
}

/* The largest power of two work-group size up to `want` that the kernel and device allow. */
static int pick_local(calib *c, cl_kernel k, size_t want, size_t *local, xrt_error *err) {
  size_t kwg = 0;
  cl_int st = clGetKernelWorkGroupInfo(k, c->ctx->device, CL_KERNEL_WORK_GROUP_SIZE,
                                       sizeof kwg, &kwg, NULL);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "calibration: clGetKernelWorkGroupInfo");
  size_t cap = want;
  if (cap > kwg)
    cap = kwg;
  if (cap > c->ctx->info.max_work_group_size)
    cap = c->ctx->info.max_work_group_size;
  if (cap > c->ctx->max_work_item_size0)
    cap = c->ctx->max_work_item_size0;
  size_t l = 1;
  while (l * 2 <= cap)
    l *= 2;
  *local = l;
  return XRT_OK;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Seconds of one launch: from profiling events, or the host clock where the device has no
 * profiling. */
static int time_launch(calib *c, cl_kernel k, size_t global, size_t local, double *sec,
                       xrt_error *err) {
  cl_event ev = NULL;
  int prof = c->ctx->info.profiling;
  double t0 = now_s();
  cl_int st = clEnqueueNDRangeKernel(c->ctx->queue, k, 1, NULL, &global, &local, 0, NULL,
                                     prof ? &ev : NULL);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "calibration: clEnqueueNDRangeKernel (global %zu, local %zu)",
                       global, local);
  st = clFinish(c->ctx->queue);
  double t1 = now_s();
  cl_ulong a = 0, b = 0;
  if (st == CL_SUCCESS && prof) {
    st = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof a, &a, NULL);
    if (st == CL_SUCCESS)
      st = clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof b, &b, NULL);
  }
  if (ev)
    clReleaseEvent(ev);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "calibration: timing a launch");
  *sec = prof ? (double)(b > a ? b - a : 0) * 1e-9 : t1 - t0;
  return XRT_OK;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One warm-up launch (first launches pay for compilation and page faults), then the median
 * of RUNS timed ones. */
static int median_time(calib *c, cl_kernel k, size_t global, size_t local, double *sec,
                       xrt_error *err) {
  double t[RUNS];
  int rc = time_launch(c, k, global, local, &t[0], err);
  for (int r = 0; !rc && r < RUNS; r++)
    rc = time_launch(c, k, global, local, &t[r], err);
  if (rc)
    return rc;
  qsort(t, RUNS, sizeof t[0], cmp_double);
  *sec = t[RUNS / 2];
  if (!(*sec > 0))
    return rt_error(err, XRT_E_DEVICE, "calibration: a launch took no measurable time");
  return XRT_OK;
}

static int measure_copy(calib *c, double *gbs, xrt_error *err) {
  const xrt_device_info *dev = &c->ctx->info;
  size_t local = 1;
  int rc = pick_local(c, c->copy, 256, &local, err);
  if (rc)
    return rc;
  /* Large enough to leave every cache behind, small enough to stay quick: 256 MiB, or
   * 64 MiB on a CPU, bounded by what the device may allocate. */
  uint64_t want = c->ctx->info.is_cpu ? 64 * (uint64_t)MiB : 256 * (uint64_t)MiB;
  if (want > dev->max_alloc_bytes / 2)
    want = dev->max_alloc_bytes / 2;
  if (want > dev->global_mem_bytes / 4)
    want = dev->global_mem_bytes / 4;
  size_t unit = 16 * local; /* one float4 per work-item */
  size_t bytes = (size_t)(want / unit * unit);
  if (bytes == 0)
    return rt_error(err, XRT_E_LIMIT, "calibration: the device cannot allocate %zu bytes",
                    unit);

  cl_int st;
  c->src = clCreateBuffer(c->ctx->context, CL_MEM_READ_ONLY, bytes, NULL, &st);
  if (st == CL_SUCCESS)
    c->dst = clCreateBuffer(c->ctx->context, CL_MEM_WRITE_ONLY, bytes, NULL, &st);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "calibration: clCreateBuffer(%zu bytes)", bytes);
  /* Touch both buffers first: untouched host pages would read as a shared zero page and make
   * a CPU device look faster than it is. */
  const float one = 1.0f;
  st = clEnqueueFillBuffer(c->ctx->queue, c->src, &one, sizeof one, 0, bytes, 0, NULL, NULL);
  if (st == CL_SUCCESS)
    st = clEnqueueFillBuffer(c->ctx->queue, c->dst, &one, sizeof one, 0, bytes, 0, NULL, NULL);
  if (st == CL_SUCCESS)
    st = clSetKernelArg(c->copy, 0, sizeof c->src, &c->src);
  if (st == CL_SUCCESS)
    st = clSetKernelArg(c->copy, 1, sizeof c->dst, &c->dst);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "calibration: preparing the copy kernel");
  double sec;
  if ((rc = median_time(c, c->copy, bytes / 16, local, &sec, err)))
    return rc;
  *gbs = 2.0 * (double)bytes / sec / 1e9;
  return XRT_OK;
}

static int measure_fma(calib *c, double *gflops, xrt_error *err) {
  const xrt_device_info *dev = &c->ctx->info;
  size_t local = 1;
  int rc = pick_local(c, c->fma, 256, &local, err);
  if (rc)
    return rc;
  /* Enough work-items to fill every compute unit many times over (a GPU needs thousands
   * in flight per unit), each doing FMA_ITERS x 64 FMAs. */
  size_t per_unit = dev->is_cpu ? 1024 : 2048, units = dev->compute_units ? dev->compute_units : 1;
  size_t global;
  if (!rt_mul_size(units, per_unit, &global) || !rt_round_up(global, local, &global))
    return rt_error(err, XRT_E_LIMIT, "calibration: %zu compute units is too many", units);
  size_t out_bytes;
  if (!rt_mul_size(global, sizeof(float), &out_bytes) || out_bytes > dev->max_alloc_bytes)
    return rt_error(err, XRT_E_LIMIT, "calibration: FMA output of %zu floats does not fit",
                    global);
  cl_int st;
  c->out = clCreateBuffer(c->ctx->context, CL_MEM_WRITE_ONLY, out_bytes, NULL, &st);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "calibration: clCreateBuffer(%zu bytes)", out_bytes);
  const float a = 0.999f, b = 0.001f;
  const cl_int iters = FMA_ITERS;
  st = clSetKernelArg(c->fma, 0, sizeof c->out, &c->out);
  if (st == CL_SUCCESS)
    st = clSetKernelArg(c->fma, 1, sizeof a, &a);
  if (st == CL_SUCCESS)
    st = clSetKernelArg(c->fma, 2, sizeof b, &b);
  if (st == CL_SUCCESS)
    st = clSetKernelArg(c->fma, 3, sizeof iters, &iters);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "calibration: preparing the FMA kernel");
  double sec;
  if ((rc = median_time(c, c->fma, global, local, &sec, err)))
    return rc;
  double flops = (double)global * FMA_ITERS * FMA_CHAINS * FMA_LANES * 2.0;
  *gflops = flops / sec / 1e9;
  return XRT_OK;
}

int xrt_calibrate(xrt_context *ctx, xrt_calibration *out, xrt_error *err) {
  rt_error_clear(err);
  if (!ctx || !out)
    return rt_error(err, XRT_E_ARG, "xrt_calibrate: context and out must not be NULL");
  calib c = {.ctx = ctx};
  int rc = xrt_program_build(ctx, calib_source, "", &c.prog, err);
  cl_int st = CL_SUCCESS;
  if (!rc) {
    c.copy = clCreateKernel(c.prog->program, "xrt_copy4", &st);
    if (st == CL_SUCCESS)
      c.fma = clCreateKernel(c.prog->program, "xrt_fma8", &st);
    if (st != CL_SUCCESS)
      rc = rt_cl_error(err, st, "calibration: clCreateKernel");
  }
  xrt_calibration r = {0, 0};
  if (!rc)
    rc = measure_copy(&c, &r.copy_gbs, err);
  if (!rc)
    rc = measure_fma(&c, &r.fma_gflops, err);
  calib_release(&c);
  if (!rc)
    *out = r;
  return rc;
}
