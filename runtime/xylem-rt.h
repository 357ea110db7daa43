/*
 * xylem-rt.h: the xylem runtime, the only library a generated package needs besides the
 * OpenCL ICD loader. It finds and opens devices, builds programs (with an on-disk binary
 * cache), and executes launch plans: a fixed list of buffers and kernel launches that the
 * compiler wrote. It holds no compiler code.
 *
 * Every function that can fail returns 0 on success or an XRT_E_* code, and fills the
 * caller's xrt_error with a message. Nothing here aborts or prints.
 */
#ifndef XYLEM_RT_H
#define XYLEM_RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XRT_ERROR_MAX 16384

enum {
  XRT_OK = 0,
  XRT_E_ARG,     /* bad argument from the caller */
  XRT_E_NOMEM,   /* host allocation failed */
  XRT_E_DEVICE,  /* no such device, or an OpenCL call failed */
  XRT_E_BUILD,   /* program build failed; the message carries options and build log */
  XRT_E_LIMIT,   /* the plan does not fit the device (work-group size, allocation size, ...) */
  XRT_E_IO,      /* cache file trouble that could not be recovered from */
  XRT_E_GUARD,   /* a canary around a buffer was overwritten */
};

typedef struct xrt_error {
  int code;
  char message[XRT_ERROR_MAX];
} xrt_error;

/* ------------------------------------------------------------------ devices */

typedef struct xrt_device_info {
  int index;                 /* position in xrt_devices' list: what "--device N" means */
  int platform_index, device_index;
  char platform[256];        /* CL_PLATFORM_NAME */
  char platform_version[256];
  char name[256];            /* CL_DEVICE_NAME */
  char vendor[256];
  char version[256];         /* CL_DEVICE_VERSION */
  char driver[256];          /* CL_DRIVER_VERSION */
  int is_cpu, is_gpu;
  unsigned compute_units;
  size_t max_work_group_size;
  uint64_t local_mem_bytes;
  uint64_t global_mem_bytes;
  uint64_t max_alloc_bytes;
  uint32_t mem_base_align_bytes;
  int profiling;             /* queue profiling supported */
} xrt_device_info;

/* All OpenCL devices of all platforms, in a stable order (platform, then device).
 * Zero devices is not an error: *count is 0. Free the list with xrt_devices_free. */
int xrt_devices(xrt_device_info **list, size_t *count, xrt_error *err);
void xrt_devices_free(xrt_device_info *list);

typedef struct xrt_context xrt_context;

/* Opens one device with a context and an in-order profiling queue.
 * selector: NULL or "" means the XYLEM_DEVICE environment variable, and when that is unset
 * too, the default device: the first CPU device, else the first device.
 * A selector is a list index ("1"), "P:D" (platform and device index), or a case-insensitive
 * substring of "platform name / device name / vendor" such as "pocl", "nvidia", "cpu", "gpu". */
int xrt_context_create(const char *selector, xrt_context **out, xrt_error *err);
void xrt_context_release(xrt_context *ctx);
const xrt_device_info *xrt_context_device(const xrt_context *ctx);

/* ------------------------------------------------------------------ programs */

typedef struct xrt_program xrt_program;

/* Builds an OpenCL C program. The binary cache lives in XYLEM_CACHE_DIR, else
 * $XDG_CACHE_HOME/xylem, else $HOME/.cache/xylem; XYLEM_CACHE=off disables it. Entries are
 * keyed by a hash of (source, options, platform, device, driver version) and verified in
 * full on load; any mismatch or damage means a silent rebuild from source. Writes are
 * atomic (temporary file, then rename). A failed build's error names the options and
 * carries the build log. */
int xrt_program_build(xrt_context *ctx, const char *source, const char *options,
                      xrt_program **out, xrt_error *err);
int xrt_program_from_cache(const xrt_program *prog); /* 1 when loaded from the cache */
void xrt_program_release(xrt_program *prog);

/* ------------------------------------------------------------------ launch plans */

typedef enum xrt_buffer_role {
  XRT_BUF_INPUT,   /* filled from the caller's inputs[io_index] before each run */
  XRT_BUF_OUTPUT,  /* copied to the caller's outputs[io_index] after each run */
  XRT_BUF_TEMP,    /* scratch, device only */
  XRT_BUF_CONST,   /* uploaded once from data at plan creation (index tables) */
} xrt_buffer_role;

typedef struct xrt_buffer_desc {
  const char *name;
  uint64_t bytes;
  xrt_buffer_role role;
  int io_index;
  const void *data; /* XRT_BUF_CONST only */
} xrt_buffer_desc;

typedef enum xrt_arg_kind { XRT_ARG_BUFFER, XRT_ARG_INT } xrt_arg_kind;

typedef struct xrt_arg_desc {
  xrt_arg_kind kind;
  int64_t value; /* buffer index, or the value of an int (cl_int) argument */
} xrt_arg_desc;

typedef struct xrt_step_desc {
  const char *kernel;
  uint64_t groups[3];    /* work-groups along each axis; 1 for unused axes */
  uint32_t local_size;   /* work-items per group along axis 0; axes 1 and 2 have 1 */
  uint32_t n_args;
  const xrt_arg_desc *args;
  double flops;          /* arithmetic of this launch, for reports */
  double bytes;          /* fewest bytes it must move, for reports */
} xrt_step_desc;

typedef struct xrt_plan_desc {
  const char *name;
  const char *source;         /* OpenCL C of every kernel */
  const char *build_options;
  uint32_t n_buffers;
  const xrt_buffer_desc *buffers;
  uint32_t n_steps;
  const xrt_step_desc *steps;
  uint32_t n_inputs, n_outputs;
} xrt_plan_desc;

typedef struct xrt_plan_options {
  int profile;  /* time every step with events */
  int poison;   /* fill outputs and temporaries with NaN before each run */
  int guard;    /* surround buffers with canaries, checked after each run */
} xrt_plan_options;

typedef struct xrt_plan xrt_plan;

/* Builds the program, checks every step against the device limits (work-group size,
 * allocation size), allocates the buffers and uploads the constants. The plan keeps a
 * pointer to desc, which must outlive it. */
int xrt_plan_create(xrt_context *ctx, const xrt_plan_desc *desc,
                    const xrt_plan_options *opt, xrt_plan **out, xrt_error *err);
void xrt_plan_release(xrt_plan *plan);

/* upload + execute + download. inputs[i] holds the bytes of the buffer whose role is
 * XRT_BUF_INPUT and io_index i; outputs likewise. */
int xrt_plan_run(xrt_plan *plan, const void *const *inputs, void *const *outputs,
                 xrt_error *err);
int xrt_plan_upload(xrt_plan *plan, const void *const *inputs, xrt_error *err);
int xrt_plan_execute(xrt_plan *plan, xrt_error *err); /* enqueue every step, wait */
int xrt_plan_download(xrt_plan *plan, void *const *outputs, xrt_error *err);

/* Device time in milliseconds of each step of the last execute (profile option).
 * ms has desc->n_steps entries. */
int xrt_plan_step_times(const xrt_plan *plan, double *ms, xrt_error *err);

/* ------------------------------------------------------------------ calibration */

typedef struct xrt_calibration {
  double copy_gbs;     /* float4 copy kernel, bytes read + written per second / 1e9 */
  double fma_gflops;   /* independent fused multiply-adds, 2 flops each, / 1e9 */
} xrt_calibration;

/* Measures the device's copy bandwidth and FMA rate with two small kernels. */
int xrt_calibrate(xrt_context *ctx, xrt_calibration *out, xrt_error *err);

#ifdef __cplusplus
}
#endif

#endif /* XYLEM_RT_H */
