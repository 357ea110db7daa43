/*
 * rt_error.h: filling xrt_error and naming OpenCL error codes (private to the runtime).
 */
#ifndef XYLEM_RT_ERROR_H
#define XYLEM_RT_ERROR_H

#include "xylem-rt.h"

#include <CL/cl.h>

#if defined(__GNUC__) || defined(__clang__)
#define RT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RT_PRINTF(f, a)
#endif

/* Resets err (when not NULL) at the start of a public call, so a success leaves no stale text. */
void rt_error_clear(xrt_error *err);

/* Sets err->code and formats err->message (truncated to fit). Returns code, so that callers
 * can write `return rt_error(err, XRT_E_ARG, ...)`. err may be NULL. */
int rt_error(xrt_error *err, int code, const char *fmt, ...) RT_PRINTF(3, 4);

/* Appends to err->message what still fits; returns the number of bytes that did not fit. */
size_t rt_error_append(xrt_error *err, const char *text, size_t len);

/* Reports a failed OpenCL call: "<what>: CL_OUT_OF_RESOURCES (-5)" with code XRT_E_DEVICE. */
int rt_cl_error(xrt_error *err, cl_int status, const char *fmt, ...) RT_PRINTF(3, 4);

/* The symbolic name of an OpenCL status ("CL_OUT_OF_RESOURCES"), or "CL_UNKNOWN_ERROR". */
const char *rt_cl_name(cl_int status);

#endif /* XYLEM_RT_ERROR_H */
