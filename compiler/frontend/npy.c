/*
 * npy.c: NumPy .npy files (format 1.0, 2.0 and 3.0; little-endian f4/f8/i4/i8, C order)
 * and the conversions of xy_array to float64/float32.
 *
 * The header is a Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * It is parsed by a small strict scanner instead of being evaluated: exactly the three keys,
 * in any order, each once; only the literal forms NumPy writes are accepted.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Raw data is copied as is, so the host must store numbers as the files do. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "xylem reads little-endian data");

static const char NPY_MAGIC[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

void xy_array_free(xy_array *a)
{
  if (!a)
    return;
  free(a->data);
  memset(a, 0, sizeof *a);
}

size_t xy_dtype_size(xy_dtype t)
{
  switch (t) {
  case XY_F16:
  case XY_BF16: return 2;
  case XY_F32:
  case XY_I32: return 4;
  case XY_F64:
  case XY_I64: return 8;
  }
  return 0;
}

/* The dtypes .npy files hold here (numpy has no bfloat16). */
static bool npy_dtype(xy_dtype t)
{
  return t == XY_F16 || t == XY_F32 || t == XY_F64 || t == XY_I32 || t == XY_I64;
}

static const char *dtype_descr(xy_dtype t)
{
  switch (t) {
  case XY_F16: return "<f2";
  case XY_F32: return "<f4";
  case XY_F64: return "<f8";
  case XY_I32: return "<i4";
  case XY_I64: return "<i8";
  case XY_BF16: break;
  }
  return "?";
}

/* ------------------------------------------------------------------ header scanner */

typedef struct hdr_scan {
  const char *p, *end;
} hdr_scan;

static void skip_space(hdr_scan *s)
{
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
    s->p++;
}

static bool eat(hdr_scan *s, char c)
{
  skip_space(s);
  if (s->p < s->end && *s->p == c) {
    s->p++;
    return true;
  }
  return false;
}

/* A quoted string without escapes ('...' or "..."); *out points into the header. */
static bool scan_string(hdr_scan *s, const char **out, size_t *len)
{
  skip_space(s);
  if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
    return false;
  char q = *s->p++;
  const char *start = s->p;
  while (s->p < s->end && *s->p != q) {
    if (*s->p == '\\' || *s->p == '\n')
      return false;
    s->p++;
  }
  if (s->p >= s->end)
    return false;
  *out = start;
  *len = (size_t)(s->p - start);
  s->p++;
  return true;
}

/* A Python identifier-like word (True, False). */
static bool scan_word(hdr_scan *s, const char *word)
{
  skip_space(s);
  size_t n = strlen(word);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
    return false;
  const char *after = s->p + n;
  if (after < s->end && (isalnum((unsigned char)*after) || *after == '_'))
    return false;
  s->p = after;
  return true;
}

static bool str_is(const char *p, size_t n, const char *lit)
{
  return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

typedef struct npy_header {
  xy_dtype dtype;
  int rank;
  int64_t shape[XY_MAX_RANK];
} npy_header;

static int parse_descr(hdr_scan *s, npy_header *h, const char *path, xy_error *err)
{
  const char *d;
  size_t n;
  if (!scan_string(s, &d, &n))
    return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: 'descr' is not a string", path);
  if (n == 3 && d[0] == '>')
    return xy_fail(err, XY_E_PARSE,
                   "%s: big-endian data ('%.*s') is not supported; save it little-endian",
                   path, (int)n, d);
  static const struct {
    char kind, size;
    xy_dtype dtype;
  } known[] = {{'f', '2', XY_F16}, {'f', '4', XY_F32}, {'f', '8', XY_F64},
               {'i', '4', XY_I32}, {'i', '8', XY_I64}};
  /* '|' (not applicable) and '=' (native) mean little-endian here: the host is. */
  if (n == 3 && (d[0] == '<' || d[0] == '|' || d[0] == '='))
    for (size_t i = 0; i < XY_ARRAY_LEN(known); i++)
      if (d[1] == known[i].kind && d[2] == known[i].size) {
        h->dtype = known[i].dtype;
        return XY_OK;
      }
  return xy_fail(err, XY_E_PARSE,
                 "%s: unsupported dtype '%.*s' (xylem reads <f4, <f8, <i4 and <i8)", path,
                 (int)(n > 64 ? 64 : n), d);
}

static int parse_fortran(hdr_scan *s, const char *path, xy_error *err)
{
  if (scan_word(s, "False"))
    return XY_OK;
  if (scan_word(s, "True"))
    return xy_fail(err, XY_E_PARSE,
                   "%s: Fortran-order arrays are not supported; save it in C order", path);
  return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: 'fortran_order' is not True or False",
                 path);
}

/* One non-negative dimension; Python 2 files may carry an 'L' suffix. */
static bool scan_dim(hdr_scan *s, int64_t *out)
{
  skip_space(s);
  if (s->p >= s->end || !isdigit((unsigned char)*s->p))
    return false;
  int64_t v = 0;
  while (s->p < s->end && isdigit((unsigned char)*s->p)) {
    if (!xy_mul_i64(v, 10, &v) || !xy_add_i64(v, *s->p - '0', &v))
      return false;
    s->p++;
  }
  if (s->p < s->end && *s->p == 'L')
    s->p++;
  *out = v;
  return true;
}

/* (), (n,), (a, b) or (a, b,): a one-element tuple needs its comma, as in Python. */
static int parse_shape(hdr_scan *s, npy_header *h, const char *path, xy_error *err)
{
  if (!eat(s, '('))
    return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: 'shape' is not a tuple", path);
  int rank = 0;
  bool comma = false;
  while (!eat(s, ')')) {
    int64_t v;
    if (!scan_dim(s, &v))
      return xy_fail(err, XY_E_PARSE,
                     "%s: bad .npy header: shape entries must be non-negative integers that "
                     "fit in 64 bits", path);
    if (rank == XY_MAX_RANK)
      return xy_fail(err, XY_E_LIMIT, "%s: array has more than %d dimensions", path,
                     XY_MAX_RANK);
    h->shape[rank++] = v;
    comma = eat(s, ',');
    if (!comma) {
      if (!eat(s, ')'))
        return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: bad shape tuple", path);
      break;
    }
  }
  if (rank == 1 && !comma)
    return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: 'shape' is not a tuple", path);
  h->rank = rank;
  return XY_OK;
}

static int parse_header(const char *text, size_t len, npy_header *h, const char *path,
                        xy_error *err)
{
  hdr_scan s = {text, text + len};
  bool have_descr = false, have_fortran = false, have_shape = false;
  if (!eat(&s, '{'))
    return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: not a dict", path);
  while (!eat(&s, '}')) {
    const char *key;
    size_t n;
    if (!scan_string(&s, &key, &n) || !eat(&s, ':'))
      return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: expected 'key': value", path);
    bool *seen;
    if (str_is(key, n, "descr"))
      seen = &have_descr;
    else if (str_is(key, n, "fortran_order"))
      seen = &have_fortran;
    else if (str_is(key, n, "shape"))
      seen = &have_shape;
    else
      return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: unknown key '%.*s'", path,
                     (int)(n > 64 ? 64 : n), key);
    if (*seen)
      return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: key '%.*s' appears twice", path,
                     (int)n, key);
    *seen = true;
    int rc;
    if (seen == &have_descr)
      rc = parse_descr(&s, h, path, err);
    else if (seen == &have_fortran)
      rc = parse_fortran(&s, path, err);
    else
      rc = parse_shape(&s, h, path, err);
    if (rc)
      return rc;
    if (!eat(&s, ',')) {
      if (!eat(&s, '}'))
        return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: expected ',' or '}'", path);
      break;
    }
  }
  skip_space(&s);
  if (s.p != s.end)
    return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: text after the dict", path);
  if (!have_descr || !have_fortran || !have_shape)
    return xy_fail(err, XY_E_PARSE, "%s: bad .npy header: missing key '%s'", path,
                   !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
  return XY_OK;
}

/* ------------------------------------------------------------------ reading */

/* Finds the header text and the data offset from the preamble. */
static int parse_preamble(const unsigned char *buf, size_t len, size_t *hdr_off,
                          size_t *hdr_len, const char *path, xy_error *err)
{
  if (len < sizeof NPY_MAGIC || memcmp(buf, NPY_MAGIC, sizeof NPY_MAGIC) != 0)
    return xy_fail(err, XY_E_PARSE, "%s: not a .npy file (bad magic)", path);
  if (len < 10)
    return xy_fail(err, XY_E_PARSE, "%s: truncated .npy header", path);
  unsigned major = buf[6], minor = buf[7];
  size_t n;
  if (major == 1 && minor == 0) {
    n = (size_t)buf[8] | (size_t)buf[9] << 8;
    *hdr_off = 10;
  } else if ((major == 2 || major == 3) && minor == 0) {
    if (len < 12)
      return xy_fail(err, XY_E_PARSE, "%s: truncated .npy header", path);
    n = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    *hdr_off = 12;
  } else {
    return xy_fail(err, XY_E_PARSE, "%s: unsupported .npy format version %u.%u", path, major,
                   minor);
  }
  if (n > len - *hdr_off)
    return xy_fail(err, XY_E_PARSE,
                   "%s: truncated .npy header: header of %zu bytes, file has %zu after the "
                   "preamble", path, n, len - *hdr_off);
  *hdr_len = n;
  return XY_OK;
}

int xy_npy_read(const char *path, int64_t max_bytes, xy_array *out, xy_error *err)
{
  memset(out, 0, sizeof *out);
  char *buf;
  size_t len;
  int rc = xy_read_file(path, max_bytes, &buf, &len, err);
  if (rc)
    return rc;
  size_t hdr_off = 0, hdr_len = 0;
  npy_header h;
  memset(&h, 0, sizeof h);
  rc = parse_preamble((const unsigned char *)buf, len, &hdr_off, &hdr_len, path, err);
  if (!rc)
    rc = parse_header(buf + hdr_off, hdr_len, &h, path, err);
  if (rc) {
    free(buf);
    return rc;
  }
  char shp[256];
  int64_t count;
  size_t bytes;
  if (!xy_product_i64(h.shape, h.rank, &count) || (uint64_t)count > SIZE_MAX ||
      !xy_mul_size((size_t)count, xy_dtype_size(h.dtype), &bytes)) {
    free(buf);
    return xy_fail(err, XY_E_LIMIT, "%s: shape %s is too large", path,
                   xy_shape_string(h.shape, h.rank, shp, sizeof shp));
  }
  size_t data_off = hdr_off + hdr_len, have = len - data_off;
  if (have != bytes) {
    free(buf);
    return xy_fail(err, XY_E_PARSE, "%s: file has %zu bytes of data, shape %s needs %zu", path,
                   have, xy_shape_string(h.shape, h.rank, shp, sizeof shp), bytes);
  }
  /* Move the data to the front of the (malloc-aligned) buffer and keep that buffer. */
  memmove(buf, buf + data_off, bytes);
  char *shrunk = realloc(buf, bytes ? bytes : 1);
  if (shrunk)
    buf = shrunk;
  out->data = buf;
  out->dtype = h.dtype;
  out->rank = h.rank;
  memcpy(out->shape, h.shape, sizeof h.shape);
  out->count = (size_t)count;
  return XY_OK;
}

/* ------------------------------------------------------------------ writing */

static int check_array(const xy_array *a, size_t *bytes, const char *what, xy_error *err)
{
  if (!npy_dtype(a->dtype))
    return xy_fail(err, XY_E_USAGE, "%s: dtype %d has no .npy form", what, (int)a->dtype);
  if (a->rank < 0 || a->rank > XY_MAX_RANK)
    return xy_fail(err, XY_E_USAGE, "%s: bad rank %d", what, a->rank);
  int64_t count;
  char shp[256];
  if (!xy_product_i64(a->shape, a->rank, &count) || (uint64_t)count > SIZE_MAX ||
      !xy_mul_size((size_t)count, xy_dtype_size(a->dtype), bytes))
    return xy_fail(err, XY_E_LIMIT, "%s: shape %s is too large or negative", what,
                   xy_shape_string(a->shape, a->rank, shp, sizeof shp));
  if ((size_t)count != a->count)
    return xy_fail(err, XY_E_SHAPE, "%s: shape %s has %" PRId64 " elements but the array holds %zu",
                   what, xy_shape_string(a->shape, a->rank, shp, sizeof shp), count, a->count);
  if (*bytes && !a->data)
    return xy_fail(err, XY_E_USAGE, "%s: array has no data", what);
  return XY_OK;
}

int xy_npy_write(const char *path, const xy_array *a, xy_error *err)
{
  size_t bytes;
  int rc = check_array(a, &bytes, path, err);
  if (rc)
    return rc;
  xy_buf hdr;
  xy_buf_init(&hdr);
  xy_buf_printf(&hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                dtype_descr(a->dtype));
  for (int d = 0; d < a->rank; d++)
    xy_buf_printf(&hdr, "%s%" PRId64, d ? ", " : "", a->shape[d]);
  xy_buf_puts(&hdr, a->rank == 1 ? ",), }" : "), }");
  /* Pad with spaces and a final newline so that the data starts on a 64-byte boundary. */
  size_t total = 10 + hdr.len + 1;
  size_t pad = (64 - total % 64) % 64;
  for (size_t i = 0; i < pad; i++)
    xy_buf_putc(&hdr, ' ');
  xy_buf_putc(&hdr, '\n');
  if (hdr.failed || hdr.len > 65535) {
    xy_buf_free(&hdr);
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory", path);
  }
  size_t file_len;
  char *file = NULL;
  if (xy_add_size(10 + hdr.len, bytes, &file_len))
    file = malloc(file_len);
  if (!file) {
    xy_buf_free(&hdr);
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory for %zu bytes", path, bytes);
  }
  memcpy(file, NPY_MAGIC, sizeof NPY_MAGIC);
  file[6] = 1;
  file[7] = 0;
  file[8] = (char)(hdr.len & 0xff);
  file[9] = (char)(hdr.len >> 8);
  memcpy(file + 10, hdr.data, hdr.len);
  if (bytes)
    memcpy(file + 10 + hdr.len, a->data, bytes);
  xy_buf_free(&hdr);
  rc = xy_write_file_atomic(path, file, file_len, err);
  free(file);
  return rc;
}

/* ------------------------------------------------------------------ conversions */

static int check_convert(const xy_array *a, size_t count, xy_error *err)
{
  if (xy_dtype_size(a->dtype) == 0)
    return xy_fail(err, XY_E_USAGE, "array has a bad dtype %d", (int)a->dtype);
  if (a->count != count)
    return xy_fail(err, XY_E_SHAPE, "array has %zu values, %zu expected", a->count, count);
  if (count && !a->data)
    return xy_fail(err, XY_E_USAGE, "array has no data");
  return XY_OK;
}

/* IEEE binary16 and bfloat16 widen exactly. */
static double half_value(uint16_t h)
{
  int e = (h >> 10) & 31, m = h & 1023;
  double sign = h & 0x8000 ? -1.0 : 1.0;
  if (e == 0)
    return sign * ldexp(m, -24);
  if (e == 31)
    return m ? NAN : sign * INFINITY;
  return sign * ldexp(m + 1024, e - 25);
}

static double bfloat16_value(uint16_t h)
{
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static double element(const xy_array *a, size_t i)
{
  switch (a->dtype) {
  case XY_F32: return ((const float *)a->data)[i];
  case XY_F64: return ((const double *)a->data)[i];
  case XY_I32: return ((const int32_t *)a->data)[i];
  case XY_I64: return (double)((const int64_t *)a->data)[i];
  case XY_F16: return half_value(((const uint16_t *)a->data)[i]);
  case XY_BF16: return bfloat16_value(((const uint16_t *)a->data)[i]);
  }
  return NAN;
}

int xy_array_to_f64(const xy_array *a, double *dst, size_t count, xy_error *err)
{
  int rc = check_convert(a, count, err);
  for (size_t i = 0; !rc && i < count; i++)
    dst[i] = element(a, i);
  return rc;
}

int xy_array_to_f32(const xy_array *a, float *dst, size_t count, xy_error *err)
{
  int rc = check_convert(a, count, err);
  if (!rc && a->dtype == XY_F32 && count)
    memcpy(dst, a->data, count * sizeof *dst);
  else
    for (size_t i = 0; !rc && i < count; i++)
      dst[i] = (float)element(a, i);
  return rc;
}
