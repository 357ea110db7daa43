/*
 * util.h: small pieces every part of the compiler uses: error reporting into xy_error,
 * overflow-checked size arithmetic, a growable string buffer, and an arena for IR nodes.
 */
#ifndef XY_UTIL_H
#define XY_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xylem.h"

#define XY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define XY_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fills err (when not NULL) and returns code, so that callers can `return xy_fail(...)`. */
int xy_fail(xy_error *err, int code, const char *fmt, ...) XY_PRINTF(3, 4);
int xy_vfail(xy_error *err, int code, const char *fmt, va_list ap);

/* Puts "prefix: " in front of the message already in err. */
void xy_error_prefix(xy_error *err, const char *fmt, ...) XY_PRINTF(2, 3);

/* Checked arithmetic: false on overflow (or a negative operand for the i64 forms, since
 * every size in xylem is a count). */
bool xy_mul_i64(int64_t a, int64_t b, int64_t *out);
bool xy_add_i64(int64_t a, int64_t b, int64_t *out);
bool xy_mul_size(size_t a, size_t b, size_t *out);
bool xy_add_size(size_t a, size_t b, size_t *out);

/* Product of n counts into *out; false on overflow. */
bool xy_product_i64(const int64_t *v, int n, int64_t *out);

/* Growable array of bytes; reallocation failure sets `failed` and later appends are no-ops,
 * so a writer checks once at the end. */
typedef struct xy_buf {
  char *data;
  size_t len, cap;
  bool failed;
} xy_buf;

void xy_buf_init(xy_buf *b);
void xy_buf_free(xy_buf *b);
void xy_buf_put(xy_buf *b, const void *p, size_t n);
void xy_buf_puts(xy_buf *b, const char *s);
void xy_buf_putc(xy_buf *b, char c);
void xy_buf_printf(xy_buf *b, const char *fmt, ...) XY_PRINTF(2, 3);
void xy_buf_vprintf(xy_buf *b, const char *fmt, va_list ap);
/* Returns the NUL-terminated contents (caller frees) and resets b; NULL on failure. */
char *xy_buf_take(xy_buf *b);

/* Bump allocator: IR nodes live as long as their module and are freed together. Returns
 * NULL when memory runs out. Memory is zeroed. */
typedef struct xy_arena_block xy_arena_block;
typedef struct xy_arena {
  xy_arena_block *head;
} xy_arena;

void *xy_arena_alloc(xy_arena *a, size_t size);
char *xy_arena_strdup(xy_arena *a, const char *s);
void xy_arena_free(xy_arena *a);

char *xy_strdup(const char *s);

/* Grows *arr (of *cap elements of elem_size bytes) to hold at least need elements. */
bool xy_grow(void **arr, size_t *cap, size_t need, size_t elem_size);

/* Reads a whole file (at most max_bytes) into a NUL-terminated buffer. */
int xy_read_file(const char *path, int64_t max_bytes, char **data, size_t *len, xy_error *err);

/* Writes data to path atomically: a temporary file in the same directory, then rename.
 * On failure nothing is left behind. */
int xy_write_file_atomic(const char *path, const void *data, size_t len, xy_error *err);

#endif /* XY_UTIL_H */
