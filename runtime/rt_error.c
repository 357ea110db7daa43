/*
 * rt_error.c: error messages. The library never prints; every failure ends up here as text in
 * the caller's xrt_error.
 */
#include "rt_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void rt_error_clear(xrt_error *err) {
  if (err) {
    err->code = XRT_OK;
    err->message[0] = '\0';
  }
}

static void set_v(xrt_error *err, int code, const char *fmt, va_list ap) {
  if (!err)
    return;
  err->code = code;
  /* vsnprintf truncates and always terminates; a cut message is better than none. */
  if (vsnprintf(err->message, sizeof err->message, fmt, ap) < 0)
    err->message[0] = '\0';
}

int rt_error(xrt_error *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  set_v(err, code, fmt, ap);
  va_end(ap);
  return code;
}

size_t rt_error_append(xrt_error *err, const char *text, size_t len) {
  if (!err)
    return 0;
  size_t used = strnlen(err->message, sizeof err->message - 1);
  size_t room = sizeof err->message - 1 - used;
  size_t n = len < room ? len : room;
  memcpy(err->message + used, text, n);
  err->message[used + n] = '\0';
  return len - n;
}

int rt_cl_error(xrt_error *err, cl_int status, const char *fmt, ...) {
  if (!err)
    return XRT_E_DEVICE;
  va_list ap;
  va_start(ap, fmt);
  set_v(err, XRT_E_DEVICE, fmt, ap);
  va_end(ap);
  char tail[96];
  int n = snprintf(tail, sizeof tail, ": %s (%d)", rt_cl_name(status), (int)status);
  if (n > 0)
    rt_error_append(err, tail, strlen(tail));
  return XRT_E_DEVICE;
}

const char *rt_cl_name(cl_int status) {
  switch (status) {
#define NAME(c) \
  case c:       \
    return #c;
    NAME(CL_SUCCESS)
    NAME(CL_DEVICE_NOT_FOUND)
    NAME(CL_DEVICE_NOT_AVAILABLE)
    NAME(CL_COMPILER_NOT_AVAILABLE)
    NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    NAME(CL_OUT_OF_RESOURCES)
    NAME(CL_OUT_OF_HOST_MEMORY)
    NAME(CL_PROFILING_INFO_NOT_AVAILABLE)
    NAME(CL_MEM_COPY_OVERLAP)
    NAME(CL_IMAGE_FORMAT_MISMATCH)
    NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    NAME(CL_BUILD_PROGRAM_FAILURE)
    NAME(CL_MAP_FAILURE)
    NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    NAME(CL_COMPILE_PROGRAM_FAILURE)
    NAME(CL_LINKER_NOT_AVAILABLE)
    NAME(CL_LINK_PROGRAM_FAILURE)
    NAME(CL_DEVICE_PARTITION_FAILED)
    NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    NAME(CL_INVALID_VALUE)
    NAME(CL_INVALID_DEVICE_TYPE)
    NAME(CL_INVALID_PLATFORM)
    NAME(CL_INVALID_DEVICE)
    NAME(CL_INVALID_CONTEXT)
    NAME(CL_INVALID_QUEUE_PROPERTIES)
    NAME(CL_INVALID_COMMAND_QUEUE)
    NAME(CL_INVALID_HOST_PTR)
    NAME(CL_INVALID_MEM_OBJECT)
    NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    NAME(CL_INVALID_IMAGE_SIZE)
    NAME(CL_INVALID_SAMPLER)
    NAME(CL_INVALID_BINARY)
    NAME(CL_INVALID_BUILD_OPTIONS)
    NAME(CL_INVALID_PROGRAM)
    NAME(CL_INVALID_PROGRAM_EXECUTABLE)
    NAME(CL_INVALID_KERNEL_NAME)
    NAME(CL_INVALID_KERNEL_DEFINITION)
    NAME(CL_INVALID_KERNEL)
    NAME(CL_INVALID_ARG_INDEX)
    NAME(CL_INVALID_ARG_VALUE)
    NAME(CL_INVALID_ARG_SIZE)
    NAME(CL_INVALID_KERNEL_ARGS)
    NAME(CL_INVALID_WORK_DIMENSION)
    NAME(CL_INVALID_WORK_GROUP_SIZE)
    NAME(CL_INVALID_WORK_ITEM_SIZE)
    NAME(CL_INVALID_GLOBAL_OFFSET)
    NAME(CL_INVALID_EVENT_WAIT_LIST)
    NAME(CL_INVALID_EVENT)
    NAME(CL_INVALID_OPERATION)
    NAME(CL_INVALID_GL_OBJECT)
    NAME(CL_INVALID_BUFFER_SIZE)
    NAME(CL_INVALID_MIP_LEVEL)
    NAME(CL_INVALID_GLOBAL_WORK_SIZE)
    NAME(CL_INVALID_PROPERTY)
    NAME(CL_INVALID_IMAGE_DESCRIPTOR)
    NAME(CL_INVALID_COMPILER_OPTIONS)
    NAME(CL_INVALID_LINKER_OPTIONS)
    NAME(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef NAME
  case -1001: /* from cl_ext.h; spelled out so that header is not needed */
    return "CL_PLATFORM_NOT_FOUND_KHR";
  default:
    return "CL_UNKNOWN_ERROR";
  }
}
