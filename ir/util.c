#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int xy_vfail(xy_error *err, int code, const char *fmt, va_list ap)
{
  if (err) {
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
  }
  return code;
}

int xy_fail(xy_error *err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  xy_vfail(err, code, fmt, ap);
  va_end(ap);
  return code;
}

void xy_error_prefix(xy_error *err, const char *fmt, ...)
{
  if (!err)
    return;
  char prefix[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  size_t np = strlen(prefix), cap = sizeof err->message;
  if (np + 2 >= cap)
    return;
  size_t nm = strnlen(err->message, cap - 1);
  if (np + 2 + nm >= cap)
    nm = cap - 1 - np - 2;
  memmove(err->message + np + 2, err->message, nm);
  memcpy(err->message, prefix, np);
  memcpy(err->message + np, ": ", 2);
  err->message[np + 2 + nm] = '\0';
}

bool xy_mul_i64(int64_t a, int64_t b, int64_t *out)
{
  if (a < 0 || b < 0)
    return false;
  return !__builtin_mul_overflow(a, b, out);
}

bool xy_add_i64(int64_t a, int64_t b, int64_t *out)
{
  if (a < 0 || b < 0)
    return false;
  return !__builtin_add_overflow(a, b, out);
}

bool xy_mul_size(size_t a, size_t b, size_t *out)
{
  return !__builtin_mul_overflow(a, b, out);
}

bool xy_add_size(size_t a, size_t b, size_t *out)
{
  return !__builtin_add_overflow(a, b, out);
}

bool xy_product_i64(const int64_t *v, int n, int64_t *out)
{
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    if (!xy_mul_i64(p, v[i], &p))
      return false;
  *out = p;
  return true;
}

/* ------------------------------------------------------------------ buffers */

void xy_buf_init(xy_buf *b)
{
  memset(b, 0, sizeof *b);
}

void xy_buf_free(xy_buf *b)
{
  free(b->data);
  memset(b, 0, sizeof *b);
}

static bool buf_reserve(xy_buf *b, size_t extra)
{
  if (b->failed)
    return false;
  size_t need;
  if (!xy_add_size(b->len, extra, &need) || !xy_add_size(need, 1, &need)) {
    b->failed = true;
    return false;
  }
  if (need <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need) {
    if (!xy_mul_size(cap, 2, &cap)) {
      b->failed = true;
      return false;
    }
  }
  char *p = realloc(b->data, cap);
  if (!p) {
    b->failed = true;
    return false;
  }
  b->data = p;
  b->cap = cap;
  return true;
}

void xy_buf_put(xy_buf *b, const void *p, size_t n)
{
  if (!buf_reserve(b, n))
    return;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void xy_buf_puts(xy_buf *b, const char *s)
{
  xy_buf_put(b, s, strlen(s));
}

void xy_buf_putc(xy_buf *b, char c)
{
  xy_buf_put(b, &c, 1);
}

void xy_buf_vprintf(xy_buf *b, const char *fmt, va_list ap)
{
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    b->failed = true;
    return;
  }
  if (!buf_reserve(b, (size_t)n))
    return;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void xy_buf_printf(xy_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  xy_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

char *xy_buf_take(xy_buf *b)
{
  if (b->failed) {
    xy_buf_free(b);
    return NULL;
  }
  if (!b->data) {
    if (!buf_reserve(b, 0))
      return NULL;
    b->data[0] = '\0';
  }
  char *p = b->data;
  memset(b, 0, sizeof *b);
  return p;
}

/* ------------------------------------------------------------------ arena */

struct xy_arena_block {
  xy_arena_block *next;
  size_t used, cap;
  max_align_t data[];
};

void *xy_arena_alloc(xy_arena *a, size_t size)
{
  const size_t align = sizeof(max_align_t);
  size_t rounded;
  if (!xy_add_size(size, align - 1, &rounded))
    return NULL;
  rounded -= rounded % align;
  xy_arena_block *blk = a->head;
  if (!blk || blk->cap - blk->used < rounded) {
    size_t cap = rounded > 65536 ? rounded : 65536;
    blk = malloc(sizeof *blk + cap);
    if (!blk)
      return NULL;
    blk->next = a->head;
    blk->used = 0;
    blk->cap = cap;
    a->head = blk;
  }
  void *p = (char *)blk->data + blk->used;
  blk->used += rounded;
  memset(p, 0, size);
  return p;
}

char *xy_arena_strdup(xy_arena *a, const char *s)
{
  size_t n = strlen(s) + 1;
  char *p = xy_arena_alloc(a, n);
  if (p)
    memcpy(p, s, n);
  return p;
}

void xy_arena_free(xy_arena *a)
{
  xy_arena_block *blk = a->head;
  while (blk) {
    xy_arena_block *next = blk->next;
    free(blk);
    blk = next;
  }
  a->head = NULL;
}

char *xy_strdup(const char *s)
{
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

bool xy_grow(void **arr, size_t *cap, size_t need, size_t elem_size)
{
  if (need <= *cap)
    return true;
  size_t n = *cap ? *cap : 8;
  while (n < need)
    if (!xy_mul_size(n, 2, &n))
      return false;
  size_t bytes;
  if (!xy_mul_size(n, elem_size, &bytes))
    return false;
  void *p = realloc(*arr, bytes);
  if (!p)
    return false;
  *arr = p;
  *cap = n;
  return true;
}

/* ------------------------------------------------------------------ files */

int xy_read_file(const char *path, int64_t max_bytes, char **data, size_t *len, xy_error *err)
{
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f)
    return xy_fail(err, XY_E_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return xy_fail(err, XY_E_IO, "%s: not a regular file", path);
  }
  if ((int64_t)st.st_size > max_bytes) {
    fclose(f);
    return xy_fail(err, XY_E_LIMIT, "%s: file of %lld bytes is larger than the limit of %lld",
                   path, (long long)st.st_size, (long long)max_bytes);
  }
  size_t n = (size_t)st.st_size;
  char *p = malloc(n + 1);
  if (!p) {
    fclose(f);
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory reading %zu bytes", path, n);
  }
  size_t got = fread(p, 1, n, f);
  int bad = ferror(f);
  fclose(f);
  if (got != n || bad) {
    free(p);
    return xy_fail(err, XY_E_IO, "%s: read error", path);
  }
  p[n] = '\0';
  *data = p;
  *len = n;
  return XY_OK;
}

int xy_write_file_atomic(const char *path, const void *data, size_t len, xy_error *err)
{
  size_t n = strlen(path);
  char *tmp = malloc(n + 16);
  if (!tmp)
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  memcpy(tmp, path, n);
  memcpy(tmp + n, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp);
  if (fd < 0) {
    int e = errno;
    free(tmp);
    return xy_fail(err, XY_E_IO, "%s: cannot create: %s", path, strerror(e));
  }
  const char *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      unlink(tmp);
      free(tmp);
      return xy_fail(err, XY_E_IO, "%s: write failed: %s", path, strerror(e));
    }
    p += w;
    left -= (size_t)w;
  }
  /* mkstemp makes 0600 files; packages are ordinary files. */
  if (fchmod(fd, 0644) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    free(tmp);
    return xy_fail(err, XY_E_IO, "%s: cannot write: %s", path, strerror(e));
  }
  free(tmp);
  return XY_OK;
}
