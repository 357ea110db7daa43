/* test_npy.c: .npy reading and writing, conversions, and the plstm test vectors. */
#include "io_test.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LIMIT ((int64_t)1 << 30)

/* A .npy file from its parts: the header text as given, then data. */
static char *write_npy_raw(const char *name, int major, const char *header, const void *data,
                           size_t n)
{
  size_t hl = strlen(header), pre = major == 1 ? 10 : 12;
  unsigned char *buf = malloc(pre + hl + n + 1);
  assert_non_null(buf);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  for (size_t i = 8; i < pre; i++)
    buf[i] = (unsigned char)(hl >> (8 * (i - 8)));
  memcpy(buf + pre, header, hl);
  if (n)
    memcpy(buf + pre + hl, data, n);
  char *path = io_write_tmp(name, buf, pre + hl + n);
  free(buf);
  return path;
}

static void check_shape(const xy_array *a, xy_dtype dtype, int rank, const int64_t *shape,
                        size_t count)
{
  assert_int_equal(a->dtype, dtype);
  assert_int_equal(a->rank, rank);
  for (int d = 0; d < rank; d++)
    assert_int_equal(a->shape[d], shape[d]);
  assert_int_equal(a->count, count);
}

/* Reads a file expected to be refused; the array must come back empty. */
static void expect_read_error(const char *path, int64_t max, int code, const char *fragment)
{
  xy_array a;
  xy_error err;
  int rc = xy_npy_read(path, max, &a, &err);
  io_check_error(rc, &err, code, path, fragment);
  assert_null(a.data);
  assert_int_equal(a.count, 0);
}

static void expect_header_error(const char *header, int code, const char *fragment)
{
  static const float data[6];
  char *path = write_npy_raw("bad.npy", 1, header, data, sizeof data);
  expect_read_error(path, LIMIT, code, fragment);
  free(path);
}

/* ------------------------------------------------------------------ files numpy wrote */

static void test_numpy_f4(void **state)
{
  (void)state;
  char *path = io_fixture("f4_2x3.npy");
  xy_array a;
  xy_error err;
  assert_int_equal(xy_npy_read(path, LIMIT, &a, &err), XY_OK);
  check_shape(&a, XY_F32, 2, (const int64_t[]){2, 3}, 6);
  const float *v = a.data;
  for (int i = 0; i < 6; i++)
    assert_true(v[i] == (float)i * 0.5f - 1.0f);
  xy_array_free(&a);
  assert_null(a.data);
  free(path);
}

static void test_numpy_f8(void **state)
{
  (void)state;
  char *path = io_fixture("f8_4.npy");
  xy_array a;
  xy_error err;
  assert_int_equal(xy_npy_read(path, LIMIT, &a, &err), XY_OK);
  check_shape(&a, XY_F64, 1, (const int64_t[]){4}, 4);
  const double *v = a.data;
  assert_true(v[0] == 1.5 && v[1] == -2.25 && v[2] == 1e300 && v[3] == 0.0);
  xy_array_free(&a);
  free(path);
}

static void test_numpy_i4(void **state)
{
  (void)state;
  char *path = io_fixture("i4_2x2x2.npy");
  xy_array a;
  xy_error err;
  assert_int_equal(xy_npy_read(path, LIMIT, &a, &err), XY_OK);
  check_shape(&a, XY_I32, 3, (const int64_t[]){2, 2, 2}, 8);
  const int32_t *v = a.data;
  for (int i = 0; i < 8; i++)
    assert_int_equal(v[i], i - 4);
  xy_array_free(&a);
  free(path);
}

static void test_numpy_scalar(void **state)
{
  (void)state;
  char *path = io_fixture("i8_scalar.npy");
  xy_array a;
  xy_error err;
  assert_int_equal(xy_npy_read(path, LIMIT, &a, &err), XY_OK);
  check_shape(&a, XY_I64, 0, NULL, 1);
  assert_true(*(const int64_t *)a.data == -((int64_t)1 << 40) - 7);
  xy_array_free(&a);
  free(path);
}

static void test_numpy_empty(void **state)
{
  (void)state;
  char *path = io_fixture("f8_0x3.npy");
  xy_array a;
  xy_error err;
  assert_int_equal(xy_npy_read(path, LIMIT, &a, &err), XY_OK);
  check_shape(&a, XY_F64, 2, (const int64_t[]){0, 3}, 0);
  xy_array_free(&a);
  free(path);
}

static void test_numpy_v2_v3(void **state)
{
  (void)state;
  char *p2 = io_fixture("v2_f4_3.npy"), *p3 = io_fixture("v3_i8_2x1.npy");
  xy_array a;
  xy_error err;
  assert_int_equal(xy_npy_read(p2, LIMIT, &a, &err), XY_OK);
  check_shape(&a, XY_F32, 1, (const int64_t[]){3}, 3);
  assert_true(((const float *)a.data)[2] == 3.0f);
  xy_array_free(&a);
  assert_int_equal(xy_npy_read(p3, LIMIT, &a, &err), XY_OK);
  check_shape(&a, XY_I64, 2, (const int64_t[]){2, 1}, 2);
  assert_true(((const int64_t *)a.data)[1] == -6);
  xy_array_free(&a);
  free(p2);
  free(p3);
}

/* ------------------------------------------------------------------ header forms */

static void test_header_forms(void **state)
{
  (void)state;
  static const struct {
    const char *header;
    xy_dtype dtype;
  } ok[] = {
      {"{'shape': (2,), 'fortran_order': False, 'descr': '<f8'}", XY_F64},
      {"{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (2,)}\n", XY_F64},
      {"{ 'descr' :'|i8' ,'fortran_order':False,'shape':( 2 , ) , }   \n", XY_I64},
      {"{'descr': '=f8', 'fortran_order': False, 'shape': (2L,), }\n", XY_F64},
      {"{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2, 2), }\t\n", XY_I32},
  };
  static const unsigned char data[16] = {0};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    char *path = write_npy_raw("form.npy", 1, ok[i].header, data, sizeof data);
    xy_array a;
    xy_error err;
    if (xy_npy_read(path, LIMIT, &a, &err))
      fail_msg("header %zu: %s", i, err.message);
    assert_int_equal(a.dtype, ok[i].dtype);
    assert_int_equal(a.count, ok[i].dtype == XY_I32 ? 4 : 2);
    xy_array_free(&a);
    free(path);
  }
}

/* ------------------------------------------------------------------ bad inputs */

static void test_bad_magic(void **state)
{
  (void)state;
  char *path = io_write_tmp("magic.npy", "\x93NUMPZ\x01\x00\x00\x00", 10);
  expect_read_error(path, LIMIT, XY_E_PARSE, "not a .npy file (bad magic)");
  free(path);
  path = io_write_tmp("tiny.npy", "\x93NU", 3);
  expect_read_error(path, LIMIT, XY_E_PARSE, "bad magic");
  free(path);
}

static void test_truncated_header(void **state)
{
  (void)state;
  /* Says 118 header bytes, has 20. */
  char *path = io_write_tmp("trunc.npy", "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'f", 30);
  expect_read_error(path, LIMIT, XY_E_PARSE, "truncated .npy header");
  free(path);
  path = io_write_tmp("trunc2.npy", "\x93NUMPY\x01\x00", 8);
  expect_read_error(path, LIMIT, XY_E_PARSE, "truncated .npy header");
  free(path);
}

static void test_bad_version(void **state)
{
  (void)state;
  char *path = io_write_tmp("ver.npy", "\x93NUMPY\x04\x00\x00\x00", 10);
  expect_read_error(path, LIMIT, XY_E_PARSE, "unsupported .npy format version 4.0");
  free(path);
}

static void test_bad_dict(void **state)
{
  (void)state;
  expect_header_error("{'descr': '<f4' 'fortran_order': False, 'shape': (6,), }",
                      XY_E_PARSE, "expected ',' or '}'");
  expect_header_error("'descr': '<f4'", XY_E_PARSE, "not a dict");
  expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}",
                      XY_E_PARSE, "unknown key 'x'");
  expect_header_error("{'descr': '<f4', 'descr': '<f4', 'shape': (6,)}", XY_E_PARSE,
                      "key 'descr' appears twice");
  expect_header_error("{'descr': '<f4', 'shape': (6,)}", XY_E_PARSE,
                      "missing key 'fortran_order'");
  expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)} x", XY_E_PARSE,
                      "text after the dict");
  expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}", XY_E_PARSE,
                      "'shape' is not a tuple");
  expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': [6]}", XY_E_PARSE,
                      "'shape' is not a tuple");
  expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (-6,)}", XY_E_PARSE,
                      "non-negative integers");
  expect_header_error("{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}", XY_E_PARSE,
                      "'fortran_order' is not True or False");
  expect_header_error("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (6,)}", XY_E_PARSE,
                      "'fortran_order' is not True or False");
  expect_header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (6,)",
                      XY_E_PARSE, "expected ',' or '}'");
  expect_header_error("{'descr': '<f4", XY_E_PARSE, "'descr' is not a string");
}

static void test_fortran_order(void **state)
{
  (void)state;
  expect_header_error("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                      XY_E_PARSE, "Fortran-order arrays are not supported");
}

static void test_unknown_dtype(void **state)
{
  (void)state;
  expect_header_error("{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }",
                      XY_E_PARSE, "unsupported dtype '<c8'");
  expect_header_error("{'descr': '<u4', 'fortran_order': False, 'shape': (6,), }",
                      XY_E_PARSE, "unsupported dtype '<u4'");
  expect_header_error("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6,), }",
                      XY_E_PARSE, "'descr' is not a string");
}

static void test_big_endian(void **state)
{
  (void)state;
  expect_header_error("{'descr': '>f4', 'fortran_order': False, 'shape': (6,), }",
                      XY_E_PARSE, "big-endian data ('>f4') is not supported");
}

static void test_short_data(void **state)
{
  (void)state;
  static const float data[6];
  char *path = write_npy_raw("short.npy", 1,
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n",
                             data, 20);
  expect_read_error(path, LIMIT, XY_E_PARSE, "file has 20 bytes of data, shape [2,3] needs 24");
  free(path);
  /* Trailing bytes are refused too: the data section must match exactly. */
  path = write_npy_raw("long.npy", 1,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }\n", data, 24);
  expect_read_error(path, LIMIT, XY_E_PARSE, "file has 24 bytes of data, shape [5] needs 20");
  free(path);
}

static void test_too_large_for_limit(void **state)
{
  (void)state;
  char *path = io_fixture("f4_2x3.npy");
  expect_read_error(path, 100, XY_E_LIMIT, "larger than the limit of 100");
  free(path);
}

static void test_shape_overflow(void **state)
{
  (void)state;
  expect_header_error(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }",
      XY_E_LIMIT, "shape [4294967296,4294967296,4] is too large");
  expect_header_error(
      "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }",
      XY_E_PARSE, "fit in 64 bits");
}

static void test_rank_too_high(void **state)
{
  (void)state;
  expect_header_error(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 6), }",
      XY_E_LIMIT, "more than 8 dimensions");
}

static void test_missing_file(void **state)
{
  (void)state;
  char *path = io_tmp_path("does-not-exist.npy");
  expect_read_error(path, LIMIT, XY_E_IO, "cannot open");
  free(path);
}

/* ------------------------------------------------------------------ writing */

static void round_trip(xy_dtype dtype, int rank, const int64_t *shape)
{
  xy_array a = {.dtype = dtype, .rank = rank, .count = 1};
  for (int d = 0; d < rank; d++) {
    a.shape[d] = shape[d];
    a.count *= (size_t)shape[d];
  }
  size_t bytes = a.count * xy_dtype_size(dtype);
  unsigned char *data = malloc(bytes + 1);
  assert_non_null(data);
  for (size_t i = 0; i < bytes; i++)
    data[i] = (unsigned char)(i * 37 + 11);
  a.data = data;
  char *path = io_tmp_path("rt.npy");
  xy_error err;
  if (xy_npy_write(path, &a, &err))
    fail_msg("%s", err.message);

  /* Format 1.0, data on a 64-byte boundary, header ends with a newline. */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char pre[10];
  assert_int_equal(fread(pre, 1, 10, f), 10);
  assert_int_equal(fclose(f), 0);
  assert_memory_equal(pre, "\x93NUMPY\x01\x00", 8);
  size_t hl = pre[8] | (size_t)pre[9] << 8;
  assert_int_equal((10 + hl) % 64, 0);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal((size_t)st.st_size, 10 + hl + bytes);

  xy_array b;
  if (xy_npy_read(path, LIMIT, &b, &err))
    fail_msg("%s", err.message);
  check_shape(&b, dtype, rank, shape, a.count);
  if (bytes)
    assert_memory_equal(b.data, data, bytes);
  xy_array_free(&b);
  free(data);
  free(path);
}

static void test_round_trip(void **state)
{
  (void)state;
  static const int64_t s1[] = {5}, s2[] = {2, 3}, s0[] = {0, 4};
  static const int64_t s8[] = {1, 2, 1, 2, 1, 1, 2, 3};
  static const int64_t big[] = {9223372036854775807, 0};
  for (xy_dtype t = XY_F32; t <= XY_I64; t++) {
    round_trip(t, 0, NULL);
    round_trip(t, 1, s1);
    round_trip(t, 2, s2);
    round_trip(t, 2, s0);
    round_trip(t, 8, s8);
    round_trip(t, 2, big);
  }
  round_trip(XY_F16, 2, s2); /* '<f2' */
}

static void test_write_header_text(void **state)
{
  (void)state;
  float v[5] = {1, 2, 3, 4, 5};
  xy_array a = {.dtype = XY_F32, .rank = 1, .shape = {5}, .count = 5, .data = v};
  char *path = io_tmp_path("text.npy");
  xy_error err;
  assert_int_equal(xy_npy_write(path, &a, &err), XY_OK);
  char buf[256];
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fread(buf, 1, sizeof buf, f), 128 + sizeof v);
  assert_int_equal(fclose(f), 0);
  static const char want[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }";
  assert_memory_equal(buf + 10, want, sizeof want - 1);
  assert_int_equal(buf[127], '\n');
  assert_memory_equal(buf + 128, v, sizeof v);
  free(path);
}

static unsigned char *slurp(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  unsigned char *buf = malloc(4096);
  assert_non_null(buf);
  *len = fread(buf, 1, 4096, f);
  assert_true(feof(f));
  assert_int_equal(fclose(f), 0);
  return buf;
}

/* What xylem writes is byte for byte what numpy writes for the same array. */
static void test_write_matches_numpy(void **state)
{
  (void)state;
  static const char *const names[] = {"f4_2x3.npy", "f8_4.npy", "i4_2x2x2.npy",
                                      "i8_scalar.npy", "f8_0x3.npy"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char *src = io_fixture(names[i]), *dst = io_tmp_path(names[i]);
    xy_array a;
    xy_error err;
    if (xy_npy_read(src, LIMIT, &a, &err) || xy_npy_write(dst, &a, &err))
      fail_msg("%s", err.message);
    xy_array_free(&a);
    size_t n1, n2;
    unsigned char *b1 = slurp(src, &n1), *b2 = slurp(dst, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1);
    free(b2);
    free(src);
    free(dst);
  }
}

static void test_write_errors(void **state)
{
  (void)state;
  float v[6] = {0};
  char *path = io_tmp_path("werr.npy");
  xy_error err;
  /* count disagrees with the shape: nothing is written. */
  xy_array a = {.dtype = XY_F32, .rank = 2, .shape = {2, 3}, .count = 5, .data = v};
  io_check_error(xy_npy_write(path, &a, &err), &err, XY_E_SHAPE, path,
                 "shape [2,3] has 6 elements but the array holds 5");
  struct stat st;
  assert_int_not_equal(stat(path, &st), 0);
  a.count = 6;
  a.rank = 9;
  io_check_error(xy_npy_write(path, &a, &err), &err, XY_E_USAGE, path, "bad rank 9");
  a.rank = 2;
  a.dtype = XY_BF16;
  io_check_error(xy_npy_write(path, &a, &err), &err, XY_E_USAGE, path, "has no .npy form");
  a.dtype = XY_F32;
  a.shape[1] = -3;
  io_check_error(xy_npy_write(path, &a, &err), &err, XY_E_LIMIT, path, "too large or negative");
  free(path);
  /* A folder that does not exist. */
  a.shape[1] = 3;
  path = io_tmp_path("no-such-dir/x.npy");
  io_check_error(xy_npy_write(path, &a, &err), &err, XY_E_IO, path, "cannot create");
  free(path);
}

/* ------------------------------------------------------------------ conversions */

static void test_convert(void **state)
{
  (void)state;
  float f4[3] = {1.5f, -2.0f, 0.25f};
  double f8[3] = {1.5, -2.0, 1e-300};
  int32_t i4[3] = {7, -8, 2147483647};
  int64_t i8[3] = {7, -8, (int64_t)1 << 50};
  void *data[4] = {f4, f8, i4, i8};
  static const double want64[4][3] = {{1.5, -2.0, 0.25},
                                      {1.5, -2.0, 1e-300},
                                      {7, -8, 2147483647.0},
                                      {7, -8, 1125899906842624.0}};
  for (int t = 0; t < 4; t++) {
    xy_array a = {.dtype = (xy_dtype)t, .rank = 1, .shape = {3}, .count = 3, .data = data[t]};
    double d[3];
    float f[3];
    xy_error err;
    assert_int_equal(xy_array_to_f64(&a, d, 3, &err), XY_OK);
    assert_int_equal(xy_array_to_f32(&a, f, 3, &err), XY_OK);
    for (int i = 0; i < 3; i++) {
      assert_true(d[i] == want64[t][i]);
      assert_true(f[i] == (float)want64[t][i]);
    }
    assert_int_equal(xy_array_to_f64(&a, d, 2, &err), XY_E_SHAPE);
    assert_non_null(strstr(err.message, "array has 3 values, 2 expected"));
    assert_int_equal(xy_array_to_f32(&a, f, 4, &err), XY_E_SHAPE);
    assert_non_null(strstr(err.message, "array has 3 values, 4 expected"));
  }
}

/* ------------------------------------------------------------------ test vectors */

static xy_dtype manifest_dtype(const char *s)
{
  if (strcmp(s, "float32") == 0)
    return XY_F32;
  if (strcmp(s, "float64") == 0)
    return XY_F64;
  if (strcmp(s, "int32") == 0)
    return XY_I32;
  if (strcmp(s, "int64") == 0)
    return XY_I64;
  fail_msg("manifest dtype '%s'", s);
  return XY_F32;
}

/* Every .npy of a case folder has a manifest entry, and its shape and dtype match. */
static size_t check_case(const char *dir)
{
  char path[1400];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  json_error_t jerr;
  json_t *m = json_load_file(path, 0, &jerr);
  if (!m)
    fail_msg("%s: %s", path, jerr.text);
  json_t *arrays = json_object_get(m, "arrays");
  assert_true(json_is_object(arrays));
  DIR *d = opendir(dir);
  assert_non_null(d);
  size_t seen = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".npy") != 0)
      continue;
    json_t *entry = json_object_get(arrays, e->d_name);
    if (!entry)
      fail_msg("%s/%s: not in the manifest", dir, e->d_name);
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    xy_array a;
    xy_error err;
    if (xy_npy_read(path, LIMIT, &a, &err))
      fail_msg("%s", err.message);
    json_t *shape = json_object_get(entry, "shape");
    assert_int_equal(a.rank, json_array_size(shape));
    size_t count = 1;
    for (int k = 0; k < a.rank; k++) {
      assert_int_equal(a.shape[k], json_integer_value(json_array_get(shape, (size_t)k)));
      count *= (size_t)a.shape[k];
    }
    assert_int_equal(a.count, count);
    assert_int_equal(a.dtype, manifest_dtype(json_string_value(json_object_get(entry, "dtype"))));
    /* The values convert (and are finite: these are real inputs and references). */
    double *v = malloc(sizeof *v * (count ? count : 1));
    assert_non_null(v);
    assert_int_equal(xy_array_to_f64(&a, v, count, &err), XY_OK);
    for (size_t i = 0; i < count; i++)
      assert_true(v[i] - v[i] == 0.0);
    free(v);
    xy_array_free(&a);
    seen++;
  }
  closedir(d);
  assert_int_equal(seen, json_object_size(arrays));
  json_decref(m);
  return seen;
}

static void test_plstm_vectors(void **state)
{
  (void)state;
  static const char *const cases[] = {"core1d_j1", "core1d_j4", "graph_core", "fused2d_p"};
  size_t total = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char dir[1100];
    snprintf(dir, sizeof dir, "%s/plstm/%s", io_data_dir(), cases[i]);
    total += check_case(dir);
  }
  assert_true(total >= 40);
}

/* The graph case's int64 edge list: known first rows. */
static void test_plstm_edges(void **state)
{
  (void)state;
  char path[1024];
  snprintf(path, sizeof path, "%s/plstm/graph_core/edges.npy", io_data_dir());
  xy_array a;
  xy_error err;
  if (xy_npy_read(path, LIMIT, &a, &err))
    fail_msg("%s", err.message);
  check_shape(&a, XY_I64, 2, (const int64_t[]){20, 2}, 40);
  const int64_t *e = a.data;
  for (size_t i = 0; i < 20; i++)
    assert_true(e[2 * i] >= 0 && e[2 * i] < e[2 * i + 1] && e[2 * i + 1] < 12);
  xy_array_free(&a);
}

int io_run_npy(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_numpy_f4),
      cmocka_unit_test(test_numpy_f8),
      cmocka_unit_test(test_numpy_i4),
      cmocka_unit_test(test_numpy_scalar),
      cmocka_unit_test(test_numpy_empty),
      cmocka_unit_test(test_numpy_v2_v3),
      cmocka_unit_test(test_header_forms),
      cmocka_unit_test(test_bad_magic),
      cmocka_unit_test(test_truncated_header),
      cmocka_unit_test(test_bad_version),
      cmocka_unit_test(test_bad_dict),
      cmocka_unit_test(test_fortran_order),
      cmocka_unit_test(test_unknown_dtype),
      cmocka_unit_test(test_big_endian),
      cmocka_unit_test(test_short_data),
      cmocka_unit_test(test_too_large_for_limit),
      cmocka_unit_test(test_shape_overflow),
      cmocka_unit_test(test_rank_too_high),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_write_header_text),
      cmocka_unit_test(test_write_matches_numpy),
      cmocka_unit_test(test_write_errors),
      cmocka_unit_test(test_convert),
      cmocka_unit_test(test_plstm_vectors),
      cmocka_unit_test(test_plstm_edges),
  };
  return cmocka_run_group_tests_name("npy", tests, NULL, NULL);
}
