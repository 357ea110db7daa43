/*
 * rt_device.c: device discovery, the selector grammar, and xrt_context (context + queue).
 */
#include "rt_error.h"
#include "rt_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where a listed device lives; kept beside xrt_device_info so that selection can open it. */
typedef struct rt_device_ids {
  cl_platform_id platform;
  cl_device_id device;
  /* CL_PLATFORM_VENDOR is not in xrt_device_info, but selectors need it: PoCL's platform
   * is "Portable Computing Language", and only its vendor, "The pocl project", says pocl. */
  char platform_vendor[256];
} rt_device_ids;

/* Copies src into a 256-byte field, dropping the leading and trailing blanks some drivers
 * pad their names with. */
static void copy_trimmed(char dst[256], const char *src) {
  while (*src && isspace((unsigned char)*src))
    src++;
  size_t n = strlen(src);
  while (n > 0 && isspace((unsigned char)src[n - 1]))
    n--;
  if (n > 255)
    n = 255;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Strings are queried at their full length and then truncated: asking with a 256-byte buffer
 * directly fails with CL_INVALID_VALUE when the driver's string is longer. */
static int platform_string(cl_platform_id p, cl_platform_info what, char dst[256],
                           xrt_error *err) {
  size_t size = 0;
  cl_int st = clGetPlatformInfo(p, what, 0, NULL, &size);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "clGetPlatformInfo");
  char *buf = malloc(size + 1);
  if (!buf)
    return rt_error(err, XRT_E_NOMEM, "out of memory reading a platform string");
  st = clGetPlatformInfo(p, what, size, buf, NULL);
  if (st != CL_SUCCESS) {
    free(buf);
    return rt_cl_error(err, st, "clGetPlatformInfo");
  }
  buf[size] = '\0';
  copy_trimmed(dst, buf);
  free(buf);
  return XRT_OK;
}

static int device_string(cl_device_id d, cl_device_info what, char dst[256], xrt_error *err) {
  size_t size = 0;
  cl_int st = clGetDeviceInfo(d, what, 0, NULL, &size);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "clGetDeviceInfo");
  char *buf = malloc(size + 1);
  if (!buf)
    return rt_error(err, XRT_E_NOMEM, "out of memory reading a device string");
  st = clGetDeviceInfo(d, what, size, buf, NULL);
  if (st != CL_SUCCESS) {
    free(buf);
    return rt_cl_error(err, st, "clGetDeviceInfo");
  }
  buf[size] = '\0';
  copy_trimmed(dst, buf);
  free(buf);
  return XRT_OK;
}

static int device_value(cl_device_id d, cl_device_info what, void *dst, size_t size,
                        xrt_error *err) {
  cl_int st = clGetDeviceInfo(d, what, size, dst, NULL);
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "clGetDeviceInfo");
  return XRT_OK;
}

static int fill_info(cl_device_id d, xrt_device_info *info, xrt_error *err) {
  int rc;
  cl_device_type type = 0;
  cl_uint units = 0, align_bits = 0;
  cl_ulong local = 0, global = 0, max_alloc = 0;
  size_t max_wg = 0;
  cl_command_queue_properties qprops = 0;
  if ((rc = device_string(d, CL_DEVICE_NAME, info->name, err)) ||
      (rc = device_string(d, CL_DEVICE_VENDOR, info->vendor, err)) ||
      (rc = device_string(d, CL_DEVICE_VERSION, info->version, err)) ||
      (rc = device_string(d, CL_DRIVER_VERSION, info->driver, err)) ||
      (rc = device_value(d, CL_DEVICE_TYPE, &type, sizeof type, err)) ||
      (rc = device_value(d, CL_DEVICE_MAX_COMPUTE_UNITS, &units, sizeof units, err)) ||
      (rc = device_value(d, CL_DEVICE_MAX_WORK_GROUP_SIZE, &max_wg, sizeof max_wg, err)) ||
      (rc = device_value(d, CL_DEVICE_LOCAL_MEM_SIZE, &local, sizeof local, err)) ||
      (rc = device_value(d, CL_DEVICE_GLOBAL_MEM_SIZE, &global, sizeof global, err)) ||
      (rc = device_value(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, &max_alloc, sizeof max_alloc, err)) ||
      (rc = device_value(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, &align_bits, sizeof align_bits,
                         err)) ||
      (rc = device_value(d, CL_DEVICE_QUEUE_PROPERTIES, &qprops, sizeof qprops, err)))
    return rc;
  info->is_cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
  info->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  info->compute_units = units;
  info->max_work_group_size = max_wg;
  info->local_mem_bytes = local;
  info->global_mem_bytes = global;
  info->max_alloc_bytes = max_alloc;
  /* The value is in bits; a sub-buffer origin must be a multiple of it. Never report 0 so
   * that callers can round with it. */
  info->mem_base_align_bytes = align_bits >= 8 ? align_bits / 8 : 1;
  info->profiling = (qprops & CL_QUEUE_PROFILING_ENABLE) != 0;
  return XRT_OK;
}

/* Lists every device of every platform. ids may be NULL. */
static int enumerate(xrt_device_info **list_out, rt_device_ids **ids_out, size_t *count_out,
                     xrt_error *err) {
  *list_out = NULL;
  if (ids_out)
    *ids_out = NULL;
  *count_out = 0;

  cl_uint n_platforms = 0;
  cl_int st = clGetPlatformIDs(0, NULL, &n_platforms);
  if (st == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: the ICD loader found no platform */ ||
      (st == CL_SUCCESS && n_platforms == 0))
    return XRT_OK;
  if (st != CL_SUCCESS)
    return rt_cl_error(err, st, "clGetPlatformIDs");

  int rc = XRT_OK;
  xrt_device_info *list = NULL;
  rt_device_ids *ids = NULL;
  size_t count = 0, cap = 0;
  cl_device_id *devs = NULL;
  cl_platform_id *plats = calloc(n_platforms, sizeof *plats);
  if (!plats)
    return rt_error(err, XRT_E_NOMEM, "out of memory listing platforms");
  st = clGetPlatformIDs(n_platforms, plats, NULL);
  if (st != CL_SUCCESS) {
    rc = rt_cl_error(err, st, "clGetPlatformIDs");
    goto done;
  }

  for (cl_uint p = 0; p < n_platforms; p++) {
    cl_uint n_devs = 0;
    st = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n_devs);
    /* A platform without devices, or a broken one, must not hide the devices of the others. */
    if (st != CL_SUCCESS || n_devs == 0)
      continue;
    free(devs);
    devs = calloc(n_devs, sizeof *devs);
    if (!devs) {
      rc = rt_error(err, XRT_E_NOMEM, "out of memory listing devices");
      goto done;
    }
    if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, n_devs, devs, NULL) != CL_SUCCESS)
      continue;

    xrt_device_info pinfo;
    memset(&pinfo, 0, sizeof pinfo);
    char pvendor[256];
    if ((rc = platform_string(plats[p], CL_PLATFORM_NAME, pinfo.platform, err)) ||
        (rc = platform_string(plats[p], CL_PLATFORM_VERSION, pinfo.platform_version, err)) ||
        (rc = platform_string(plats[p], CL_PLATFORM_VENDOR, pvendor, err)))
      goto done;

    for (cl_uint d = 0; d < n_devs; d++) {
      if (count == cap) {
        size_t ncap = cap ? cap * 2 : 4;
        if (ncap > SIZE_MAX / sizeof *list || ncap > (size_t)INT32_MAX) {
          rc = rt_error(err, XRT_E_NOMEM, "too many devices");
          goto done;
        }
        xrt_device_info *nl = realloc(list, ncap * sizeof *list);
        if (!nl) {
          rc = rt_error(err, XRT_E_NOMEM, "out of memory listing devices");
          goto done;
        }
        list = nl;
        rt_device_ids *ni = realloc(ids, ncap * sizeof *ids);
        if (!ni) {
          rc = rt_error(err, XRT_E_NOMEM, "out of memory listing devices");
          goto done;
        }
        ids = ni;
        cap = ncap;
      }
      xrt_device_info *info = &list[count];
      *info = pinfo;
      info->index = (int)count;
      info->platform_index = (int)p;
      info->device_index = (int)d;
      if ((rc = fill_info(devs[d], info, err)))
        goto done;
      ids[count].platform = plats[p];
      ids[count].device = devs[d];
      memcpy(ids[count].platform_vendor, pvendor, sizeof pvendor);
      count++;
    }
  }

done:
  free(devs);
  free(plats);
  if (rc) {
    free(list);
    free(ids);
    return rc;
  }
  *list_out = list;
  *count_out = count;
  if (ids_out)
    *ids_out = ids;
  else
    free(ids);
  return XRT_OK;
}

int xrt_devices(xrt_device_info **list, size_t *count, xrt_error *err) {
  rt_error_clear(err);
  if (!list || !count)
    return rt_error(err, XRT_E_ARG, "xrt_devices: list and count must not be NULL");
  return enumerate(list, NULL, count, err);
}

void xrt_devices_free(xrt_device_info *list) { free(list); }

/* ------------------------------------------------------------------ selection */

/* Parses a whole decimal string of at most 9 digits (so it fits an int). */
static int parse_index(const char *s, size_t len, size_t *out) {
  if (len == 0 || len > 9)
    return 0;
  size_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    v = v * 10 + (size_t)(s[i] - '0');
  }
  *out = v;
  return 1;
}

static int contains_ci(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] &&
           tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
      i++;
    if (i == n)
      return 1;
  }
  return n == 0;
}

static const char *type_word(const xrt_device_info *d) {
  return d->is_cpu ? "cpu" : d->is_gpu ? "gpu" : "accelerator";
}

/* Returns the list position the selector names, or -1. */
static long select_device(const char *sel, const xrt_device_info *list,
                          const rt_device_ids *ids, size_t count) {
  size_t len = strlen(sel), a = 0, b = 0;
  if (parse_index(sel, len, &a))
    return a < count ? (long)a : -1;
  const char *colon = strchr(sel, ':');
  if (colon && parse_index(sel, (size_t)(colon - sel), &a) &&
      parse_index(colon + 1, strlen(colon + 1), &b)) {
    for (size_t i = 0; i < count; i++)
      if ((size_t)list[i].platform_index == a && (size_t)list[i].device_index == b)
        return (long)i;
    return -1;
  }
  for (size_t i = 0; i < count; i++) {
    char hay[5 * 256 + 32];
    snprintf(hay, sizeof hay, "%s / %s / %s / %s / %s", list[i].platform, list[i].name,
             list[i].vendor, ids[i].platform_vendor, type_word(&list[i]));
    if (contains_ci(hay, sel))
      return (long)i;
  }
  return -1;
}

static long default_device(const xrt_device_info *list, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (list[i].is_cpu)
      return (long)i;
  return count > 0 ? 0 : -1;
}

/* Appends "; devices: 0: platform / name; 1: ..." so the user sees what they could pick. */
static void append_device_list(xrt_error *err, const xrt_device_info *list, size_t count) {
  if (count == 0) {
    const char *none = "; no OpenCL devices found";
    rt_error_append(err, none, strlen(none));
    return;
  }
  for (size_t i = 0; i < count; i++) {
    char line[3 * 256 + 64];
    snprintf(line, sizeof line, "%s%d: %s / %s (%s)", i == 0 ? "; devices: " : "; ",
             list[i].index, list[i].platform, list[i].name, type_word(&list[i]));
    rt_error_append(err, line, strlen(line));
  }
}

int xrt_context_create(const char *selector, xrt_context **out, xrt_error *err) {
  rt_error_clear(err);
  if (!out)
    return rt_error(err, XRT_E_ARG, "xrt_context_create: out must not be NULL");
  *out = NULL;

  const char *from_env = "";
  if (!selector || !*selector) {
    selector = getenv("XYLEM_DEVICE");
    from_env = " (from XYLEM_DEVICE)";
  }

  xrt_device_info *list = NULL;
  rt_device_ids *ids = NULL;
  size_t count = 0;
  int rc = enumerate(&list, &ids, &count, err);
  if (rc)
    return rc;

  long pick;
  if (selector && *selector) {
    pick = select_device(selector, list, ids, count);
    if (pick < 0) {
      rt_error(err, XRT_E_DEVICE, "no device matches '%s'%s", selector, from_env);
      append_device_list(err, list, count);
      rc = XRT_E_DEVICE;
      goto done;
    }
  } else {
    pick = default_device(list, count);
    if (pick < 0) {
      rc = rt_error(err, XRT_E_DEVICE, "no OpenCL devices found");
      goto done;
    }
  }

  xrt_context *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    rc = rt_error(err, XRT_E_NOMEM, "out of memory creating a context");
    goto done;
  }
  ctx->info = list[pick];
  ctx->platform = ids[pick].platform;
  ctx->device = ids[pick].device;

  cl_uint dims = 0;
  cl_int st = clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, sizeof dims,
                              &dims, NULL);
  if (st == CL_SUCCESS && dims >= 1 && dims <= 64) {
    size_t sizes[64];
    st = clGetDeviceInfo(ctx->device, CL_DEVICE_MAX_WORK_ITEM_SIZES, dims * sizeof sizes[0],
                         sizes, NULL);
    ctx->max_work_item_size0 = st == CL_SUCCESS ? sizes[0] : ctx->info.max_work_group_size;
  } else {
    ctx->max_work_item_size0 = ctx->info.max_work_group_size;
  }

  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)ctx->platform,
                                   0};
  ctx->context = clCreateContext(props, 1, &ctx->device, NULL, NULL, &st);
  if (st != CL_SUCCESS || !ctx->context) {
    rc = rt_cl_error(err, st, "clCreateContext on '%s'", ctx->info.name);
    xrt_context_release(ctx);
    goto done;
  }
  /* In order: plan steps depend on each other and are enqueued without events between them. */
  cl_command_queue_properties qp = ctx->info.profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
  ctx->queue = clCreateCommandQueue(ctx->context, ctx->device, qp, &st);
  if (st != CL_SUCCESS || !ctx->queue) {
    rc = rt_cl_error(err, st, "clCreateCommandQueue on '%s'", ctx->info.name);
    xrt_context_release(ctx);
    goto done;
  }
  *out = ctx;

done:
  free(list);
  free(ids);
  return rc;
}

void xrt_context_release(xrt_context *ctx) {
  if (!ctx)
    return;
  if (ctx->queue) {
    clFinish(ctx->queue);
    clReleaseCommandQueue(ctx->queue);
  }
  if (ctx->context)
    clReleaseContext(ctx->context);
  free(ctx);
}

const xrt_device_info *xrt_context_device(const xrt_context *ctx) {
  return ctx ? &ctx->info : NULL;
}
