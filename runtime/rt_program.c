/*
 * rt_program.c: building OpenCL programs, through the binary cache when it is on.
 */
#include "rt_cache.h"
#include "rt_error.h"
#include "rt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fills err with XRT_E_BUILD: the device, the options, the status, then as much of the build
 * log as fits, saying so when it had to be cut. */
static int build_error(xrt_context *ctx, cl_program prog, const char *options, cl_int status,
                       xrt_error *err) {
  rt_error(err, XRT_E_BUILD,
           "program build failed on device '%s' (%s, driver %s) with options '%s': %s (%d)\n"
           "build log:\n",
           ctx->info.name, ctx->info.platform, ctx->info.driver, options, rt_cl_name(status),
           (int)status);
  if (!err)
    return XRT_E_BUILD;
  size_t size = 0;
  char *log = NULL;
  if (clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size) ==
          CL_SUCCESS &&
      size > 0 && size < SIZE_MAX && (log = malloc(size + 1)) != NULL &&
      clGetProgramBuildInfo(prog, ctx->device, CL_PROGRAM_BUILD_LOG, size, log, NULL) ==
          CL_SUCCESS) {
    log[size] = '\0';
    size_t len = strlen(log);
    /* Keep room for the truncation note so that it is never itself cut off. */
    char note[128];
    size_t used = strlen(err->message), reserve = sizeof note;
    size_t room = XRT_ERROR_MAX - 1 - used;
    if (len <= room) {
      rt_error_append(err, log, len);
    } else {
      size_t shown = room > reserve ? room - reserve : 0;
      rt_error_append(err, log, shown);
      snprintf(note, sizeof note, "\n[build log truncated: first %zu of %zu bytes shown]",
               shown, len);
      rt_error_append(err, note, strlen(note));
    }
  } else {
    const char *none = "(no build log available)";
    rt_error_append(err, none, strlen(none));
  }
  free(log);
  return XRT_E_BUILD;
}

/* Loads a cached binary; any failure means "not from the cache", never an error. */
static cl_program from_binary(xrt_context *ctx, const unsigned char *bin, size_t len,
                              const char *options) {
  cl_int st, bin_status = CL_SUCCESS;
  cl_program prog =
      clCreateProgramWithBinary(ctx->context, 1, &ctx->device, &len, &bin, &bin_status, &st);
  if (st != CL_SUCCESS || bin_status != CL_SUCCESS || !prog) {
    if (prog)
      clReleaseProgram(prog);
    return NULL;
  }
  /* A binary still has to be built: that finalizes it for the device (NVIDIA JITs its PTX
   * here). */
  if (clBuildProgram(prog, 1, &ctx->device, options, NULL, NULL) != CL_SUCCESS) {
    clReleaseProgram(prog);
    return NULL;
  }
  return prog;
}

/* Writes the program's binary into the cache; failures are ignored by design. */
static void store_binary(cl_program prog, const char *dir, const rt_cache_key *key) {
  size_t len = 0;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof len, &len, NULL) != CL_SUCCESS ||
      len == 0)
    return;
  unsigned char *bin = malloc(len);
  if (!bin)
    return;
  if (clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS)
    (void)rt_cache_store(dir, key, bin, len);
  free(bin);
}

int xrt_program_build(xrt_context *ctx, const char *source, const char *options,
                      xrt_program **out, xrt_error *err) {
  rt_error_clear(err);
  if (!out)
    return rt_error(err, XRT_E_ARG, "xrt_program_build: out must not be NULL");
  *out = NULL;
  if (!ctx || !source)
    return rt_error(err, XRT_E_ARG, "xrt_program_build: context and source must not be NULL");
  if (!options)
    options = "";

  xrt_program *p = calloc(1, sizeof *p);
  if (!p)
    return rt_error(err, XRT_E_NOMEM, "out of memory creating a program");
  p->ctx = ctx;

  rt_cache_key key;
  rt_cache_key_init(&key, source, options, ctx->info.platform, ctx->info.platform_version,
                    ctx->info.name, ctx->info.driver);
  char *dir = rt_cache_dir();
  if (dir) {
    unsigned char *bin = NULL;
    size_t len = 0;
    if (rt_cache_load(dir, &key, &bin, &len)) {
      p->program = from_binary(ctx, bin, len, options);
      p->from_cache = p->program != NULL;
    }
    free(bin);
  }

  if (!p->program) {
    cl_int st;
    size_t slen = strlen(source);
    p->program = clCreateProgramWithSource(ctx->context, 1, &source, &slen, &st);
    if (st != CL_SUCCESS || !p->program) {
      int rc = rt_cl_error(err, st, "clCreateProgramWithSource");
      free(dir);
      xrt_program_release(p);
      return rc;
    }
    st = clBuildProgram(p->program, 1, &ctx->device, options, NULL, NULL);
    if (st != CL_SUCCESS) {
      int rc = build_error(ctx, p->program, options, st, err);
      free(dir);
      xrt_program_release(p);
      return rc;
    }
    /* Written after every source build, so a damaged entry is repaired by the rebuild. */
    if (dir)
      store_binary(p->program, dir, &key);
  }
  free(dir);
  *out = p;
  return XRT_OK;
}

int xrt_program_from_cache(const xrt_program *prog) { return prog ? prog->from_cache : 0; }

void xrt_program_release(xrt_program *prog) {
  if (!prog)
    return;
  if (prog->program)
    clReleaseProgram(prog->program);
  free(prog);
}
