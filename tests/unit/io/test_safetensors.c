/* test_safetensors.c: safetensors reading, on a hand-written fixture, the plstm weights and
 * bad files. */
#include "io_test.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIMIT ((int64_t)1 << 30)

/* A safetensors file: the 8-byte length (header_len, or strlen(json) when negative), the
 * JSON text, then data_len bytes of data (value i is byte i). */
static char *write_st(const char *name, const char *json, int64_t header_len, size_t data_len)
{
  size_t jl = strlen(json);
  uint64_t n = header_len < 0 ? (uint64_t)jl : (uint64_t)header_len;
  unsigned char *buf = malloc(8 + jl + data_len + 1);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char)(n >> (8 * i));
  memcpy(buf + 8, json, jl);
  for (size_t i = 0; i < data_len; i++)
    buf[8 + jl + i] = (unsigned char)i;
  char *path = io_write_tmp(name, buf, 8 + jl + data_len);
  free(buf);
  return path;
}

static void expect_open_error(const char *path, int64_t max, int code, const char *fragment)
{
  static char dummy;
  xy_safetensors *st = (xy_safetensors *)(void *)&dummy; /* must come back NULL */
  xy_error err;
  int rc = xy_safetensors_open(path, max, &st, &err);
  io_check_error(rc, &err, code, path, fragment);
  assert_null(st);
}

static void expect_json_error(const char *json, size_t data_len, int code, const char *fragment)
{
  char *path = write_st("bad.safetensors", json, -1, data_len);
  expect_open_error(path, LIMIT, code, fragment);
  free(path);
}

static xy_safetensors *open_ok(const char *path)
{
  xy_safetensors *st;
  xy_error err;
  if (xy_safetensors_open(path, LIMIT, &st, &err))
    fail_msg("%s", err.message);
  return st;
}

/* ------------------------------------------------------------------ the fixture */

static void test_fixture_names(void **state)
{
  (void)state;
  char *path = io_fixture("small.safetensors");
  xy_safetensors *st = open_ok(path);
  static const char *const want[] = {"zeta", "alpha", "mid.idx", "big", "half", "f16", "flags"};
  assert_int_equal(xy_safetensors_count(st), 7);
  for (size_t i = 0; i < 7; i++)
    assert_string_equal(xy_safetensors_name(st, i), want[i]);
  assert_null(xy_safetensors_name(st, 7));
  xy_safetensors_close(st);
  free(path);
}

static void test_fixture_values(void **state)
{
  (void)state;
  char *path = io_fixture("small.safetensors");
  xy_safetensors *st = open_ok(path);
  xy_array v;
  xy_error err;

  assert_int_equal(xy_safetensors_get(st, "zeta", &v, &err), XY_OK);
  assert_int_equal(v.dtype, XY_F32);
  assert_int_equal(v.rank, 2);
  assert_int_equal(v.shape[0], 2);
  assert_int_equal(v.shape[1], 3);
  assert_int_equal(v.count, 6);
  for (int i = 0; i < 6; i++)
    assert_true(((const float *)v.data)[i] == (float)i + 0.25f);

  /* 8-byte tensors sit 4 bytes off alignment in the file: the view must be aligned. */
  assert_int_equal(xy_safetensors_get(st, "alpha", &v, &err), XY_OK);
  assert_int_equal(v.dtype, XY_F64);
  assert_int_equal((uintptr_t)v.data % 8, 0);
  const double *a = v.data;
  assert_true(a[0] == 0.5 && a[1] == -1.5 && a[2] == 2.5);
  double conv[3];
  assert_int_equal(xy_array_to_f64(&v, conv, 3, &err), XY_OK);
  assert_true(conv[2] == 2.5);

  assert_int_equal(xy_safetensors_get(st, "mid.idx", &v, &err), XY_OK);
  assert_int_equal(v.dtype, XY_I32);
  assert_true(((const int32_t *)v.data)[0] == 7 && ((const int32_t *)v.data)[1] == -8);

  assert_int_equal(xy_safetensors_get(st, "big", &v, &err), XY_OK);
  assert_int_equal(v.dtype, XY_I64);
  assert_int_equal(v.rank, 2);
  assert_int_equal((uintptr_t)v.data % 8, 0);
  assert_true(((const int64_t *)v.data)[0] == (int64_t)1 << 40);
  assert_true(((const int64_t *)v.data)[1] == -3);

  /* Half-width floats widen exactly. */
  float f[4];
  assert_int_equal(xy_safetensors_get(st, "half", &v, &err), XY_OK);
  assert_int_equal(v.dtype, XY_BF16);
  assert_int_equal(xy_array_to_f32(&v, f, 2, &err), XY_OK);
  assert_true(f[0] == 1.0f && f[1] == 2.0f);
  assert_int_equal(xy_safetensors_get(st, "f16", &v, &err), XY_OK);
  assert_int_equal(v.dtype, XY_F16);
  assert_int_equal(xy_array_to_f32(&v, f, 4, &err), XY_OK);
  assert_true(f[0] == 1.5f && f[1] == -2.0f && f[2] == ldexpf(1.0f, -24) && f[3] == 65504.0f);

  xy_safetensors_close(st);
  free(path);
}

static void test_unsupported_dtype(void **state)
{
  (void)state;
  char *path = io_fixture("small.safetensors");
  xy_safetensors *st = open_ok(path);
  xy_array v;
  xy_error err;
  io_check_error(xy_safetensors_get(st, "flags", &v, &err), &err, XY_E_PARSE, path,
                 "tensor 'flags' has dtype U8");
  assert_null(v.data);
  xy_safetensors_close(st);
  free(path);
}

static void test_missing_tensor(void **state)
{
  (void)state;
  char *path = io_fixture("small.safetensors");
  xy_safetensors *st = open_ok(path);
  xy_array v;
  xy_error err;
  io_check_error(xy_safetensors_get(st, "nope", &v, &err), &err, XY_E_SPEC, path,
                 "no tensor named 'nope'");
  io_check_error(xy_safetensors_get(st, "__metadata__", &v, &err), &err, XY_E_SPEC, path,
                 "no tensor named '__metadata__'");
  xy_safetensors_close(st);
  free(path);
}

static void test_empty_and_scalar(void **state)
{
  (void)state;
  char *path = write_st("edge.safetensors",
                        "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[4,4]},"
                        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
                        -1, 4);
  xy_safetensors *st = open_ok(path);
  xy_array v;
  xy_error err;
  assert_int_equal(xy_safetensors_get(st, "e", &v, &err), XY_OK);
  assert_int_equal(v.count, 0);
  assert_int_equal(v.rank, 2);
  assert_int_equal(xy_safetensors_get(st, "s", &v, &err), XY_OK);
  assert_int_equal(v.count, 1);
  assert_int_equal(v.rank, 0);
  xy_safetensors_close(st);
  free(path);
  /* No tensors at all. */
  path = write_st("none.safetensors", "{\"__metadata__\":{}}", -1, 0);
  st = open_ok(path);
  assert_int_equal(xy_safetensors_count(st), 0);
  xy_safetensors_close(st);
  free(path);
}

/* ------------------------------------------------------------------ the plstm weights */

static void test_plstm_weights(void **state)
{
  (void)state;
  char dir[1024], path[1200];
  snprintf(dir, sizeof dir, "%s/plstm/fused2d_p", io_data_dir());
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  json_error_t jerr;
  json_t *m = json_load_file(path, 0, &jerr);
  if (!m)
    fail_msg("%s: %s", path, jerr.text);
  json_t *tensors = json_object_get(m, "weight_tensors");
  assert_true(json_is_object(tensors));
  snprintf(path, sizeof path, "%s/%s", dir,
           json_string_value(json_object_get(m, "weights")));
  xy_safetensors *st = open_ok(path);
  assert_int_equal(xy_safetensors_count(st), json_object_size(tensors));

  /* Names in state_dict order, as the manifest lists them, with the manifest's shapes. */
  size_t i = 0;
  const char *name;
  json_t *shape;
  json_object_foreach(tensors, name, shape) {
    assert_string_equal(xy_safetensors_name(st, i), name);
    xy_array v;
    xy_error err;
    if (xy_safetensors_get(st, name, &v, &err))
      fail_msg("%s", err.message);
    assert_int_equal(v.dtype, XY_F32);
    assert_int_equal(v.rank, json_array_size(shape));
    for (int d = 0; d < v.rank; d++)
      assert_int_equal(v.shape[d], json_integer_value(json_array_get(shape, (size_t)d)));
    i++;
  }
  assert_int_equal(i, 15);

  /* Values checked against numpy (sum in float64 and the first element). */
  static const struct {
    const char *name;
    double sum;
    float first;
  } known[] = {
      {"orientation_bias", 2.407564813271165, -0.031727105379104614f},
      {"transition.eigenvalues_weight", 0.2873671494453447, 0.0032358632888644934f},
      {"mhnorm.scale", 31.847686052322388, 1.003901481628418f},
      {"outprojection.weight", -6.6163235586464, 0.09414302557706833f},
  };
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
    xy_array v;
    xy_error err;
    assert_int_equal(xy_safetensors_get(st, known[k].name, &v, &err), XY_OK);
    const float *f = v.data;
    double sum = 0;
    for (size_t j = 0; j < v.count; j++)
      sum += f[j];
    assert_true(fabs(sum - known[k].sum) < 1e-9);
    assert_true(f[0] == known[k].first);
  }
  xy_safetensors_close(st);
  json_decref(m);
}

/* ------------------------------------------------------------------ bad files */

static void test_header_beyond_file(void **state)
{
  (void)state;
  const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  char *path = write_st("len.safetensors", json, 1000, 4);
  expect_open_error(path, LIMIT, XY_E_PARSE, "header length 1000 is beyond the end of the file");
  free(path);
  /* A length near 2^64 must not wrap around. */
  path = write_st("len2.safetensors", json, INT64_MAX, 4);
  expect_open_error(path, LIMIT, XY_E_PARSE, "is beyond the end of the file");
  free(path);
  path = io_write_tmp("short.safetensors", "\x02\0\0\0", 4);
  expect_open_error(path, LIMIT, XY_E_PARSE, "file of 4 bytes is too short");
  free(path);
}

static void test_bad_json(void **state)
{
  (void)state;
  expect_json_error("{\"a\":{\"dtype\":\"F32\",", 0, XY_E_PARSE, "bad JSON header: line 1");
  expect_json_error("[1, 2]", 0, XY_E_PARSE, "JSON header is not an object");
  expect_json_error("{\"a\":1,\"a\":2}", 0, XY_E_PARSE, "bad JSON header");
  expect_json_error("{\"__metadata__\":[]}", 0, XY_E_PARSE, "'__metadata__' is not an object");
  expect_json_error("{\"a\":[]}", 0, XY_E_PARSE, "tensor 'a': entry is not an object");
  expect_json_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, XY_E_PARSE,
                    "tensor 'a': 'dtype' is not a string");
  expect_json_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                    XY_E_PARSE, "tensor 'a': shape entries must be non-negative integers");
  expect_json_error("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4,
                    XY_E_PARSE, "tensor 'a': 'shape' is not an array");
  expect_json_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                    XY_E_PARSE, "tensor 'a': 'data_offsets' must be [begin, end]");
  expect_json_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, XY_E_PARSE,
                    "tensor 'a': 'data_offsets' must be [begin, end]");
  expect_json_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                    "\"data_offsets\":[0,4]}}", 4, XY_E_LIMIT,
                    "tensor 'a' has 9 dimensions, at most 8");
  expect_json_error("", 0, XY_E_PARSE, "bad JSON header");
}

static void test_offsets_outside_data(void **state)
{
  (void)state;
  expect_json_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                    12, XY_E_PARSE,
                    "tensor 'b': data_offsets [8, 16] lie outside the data section of 12 bytes");
  /* The check applies to tensors of unsupported dtypes as well. */
  expect_json_error("{\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,40]}}", 4,
                    XY_E_PARSE, "tensor 'h': data_offsets [0, 40] lie outside");
}

static void test_size_mismatch(void **state)
{
  (void)state;
  expect_json_error("{\"a\":{\"dtype\":\"F64\",\"shape\":[2,3],\"data_offsets\":[0,40]}}", 48,
                    XY_E_PARSE,
                    "tensor 'a': data_offsets [0, 40] hold 40 bytes, shape [2,3] of F64 needs 48");
  expect_json_error("{\"a\":{\"dtype\":\"I32\",\"shape\":[4294967296,4294967296,2],"
                    "\"data_offsets\":[0,8]}}", 8, XY_E_LIMIT, "tensor 'a': shape");
}

static void test_too_large_for_limit(void **state)
{
  (void)state;
  char *path = io_fixture("small.safetensors");
  expect_open_error(path, 64, XY_E_LIMIT, "larger than the limit of 64");
  free(path);
}

static void test_missing_file(void **state)
{
  (void)state;
  char *path = io_tmp_path("nothing.safetensors");
  expect_open_error(path, LIMIT, XY_E_IO, "cannot open");
  free(path);
}

int io_run_safetensors(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fixture_names),
      cmocka_unit_test(test_fixture_values),
      cmocka_unit_test(test_unsupported_dtype),
      cmocka_unit_test(test_missing_tensor),
      cmocka_unit_test(test_empty_and_scalar),
      cmocka_unit_test(test_plstm_weights),
      cmocka_unit_test(test_header_beyond_file),
      cmocka_unit_test(test_bad_json),
      cmocka_unit_test(test_offsets_outside_data),
      cmocka_unit_test(test_size_mismatch),
      cmocka_unit_test(test_too_large_for_limit),
      cmocka_unit_test(test_missing_file),
  };
  return cmocka_run_group_tests_name("safetensors", tests, NULL, NULL);
}
