/*
 * clang_check.h: validates generated source with libclang, device-free. Every warning and
 * error is reported with the name of the kernel (function) it falls in.
 */
#ifndef XY_CLANG_CHECK_H
#define XY_CLANG_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Parses src as OpenCL C 1.2 (opencl) or as C99 and appends one line per diagnostic to
 * report ("kernel NAME: LINE:COL: warning: text"). A C source may include one header given
 * in memory (header_name, header_src) and headers from include_dir. Returns the number of
 * diagnostics of warning severity or worse, or -1 when libclang could not parse at all. */
int clang_check_source(const char *src, bool opencl, const char *header_name,
                       const char *header_src, const char *include_dir, char *report,
                       size_t report_len);

#endif /* XY_CLANG_CHECK_H */
