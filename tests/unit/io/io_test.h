/* io_test.h: helpers shared by the io unit tests (npy, safetensors, rng). */
#ifndef IO_TEST_H
#define IO_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "xylem.h"

/* A file in the test's private temporary directory (caller frees). */
char *io_tmp_path(const char *name);
/* Writes bytes to a new temporary file and returns its path (caller frees). */
char *io_write_tmp(const char *name, const void *data, size_t len);
/* A committed fixture of this folder (caller frees). */
char *io_fixture(const char *name);
/* XYLEM_TEST_DATA. */
const char *io_data_dir(void);

/* Checks that a call failed with code and a message "PATH: ...fragment...". */
void io_check_error(int rc, const xy_error *err, int code, const char *path,
                    const char *fragment);

int io_run_npy(void);
int io_run_safetensors(void);
int io_run_rng(void);

#endif /* IO_TEST_H */
