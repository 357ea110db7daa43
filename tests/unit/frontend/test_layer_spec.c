/* test_layer_spec.c: the plstm2d and plstm1d layers in specs (options, their errors) and
 * their weights files (names with a prefix; missing, extra, misshaped, wrongly typed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_test.h"

static xy_model *load_ok(const char *path)
{
  xy_model *model = NULL;
  xy_error err;
  if (xy_model_load(path, NULL, &model, &err))
    fail_msg("%s", err.message);
  return model;
}

/* The index of input `name`, or -1. */
static int input_index(const xy_model *model, const char *name)
{
  for (size_t i = 0; i < xy_model_num_inputs(model); i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    if (strcmp(t.name, name) == 0)
      return (int)i;
  }
  return -1;
}

/* ------------------------------------------------------------------ expansion */

static void layer2d_weights_named_as_the_reference(void **state)
{
  (void)state;
  xy_model *model = load_ok(fixture("layer2d.json"));
  static const struct {
    const char *name;
    int rank;
    int64_t shape[5];
  } want[] = {
    {"enc.0.query.weight", 5, {1, 12, 1, 2, 12}},
    {"enc.0.query.bias", 3, {2, 12, 1}},
    {"enc.0.key.weight", 5, {1, 12, 1, 2, 12}},
    {"enc.0.value_.weight", 5, {1, 12, 1, 2, 12}},
    {"enc.0.source.bias", 4, {8, 1, 1, 1}},
    {"enc.0.mark.bias", 4, {8, 1, 1, 1}},
    {"enc.0.direct.bias", 5, {2, 1, 1, 1, 1}},
    {"enc.0.transition.eigenvalues_weight", 4, {8, 1, 1, 24}},
    {"enc.0.transition.eigenvalues_bias", 2, {8, 1}},
    {"enc.0.orientation_weight", 3, {4, 2, 24}},
    {"enc.0.orientation_bias", 2, {4, 2}},
    {"enc.0.mhnorm.scale", 2, {2, 12}},
    {"enc.0.outprojection.weight", 2, {24, 24}},
  };
  size_t n_weights = 0;
  for (size_t i = 0; i < xy_model_num_inputs(model); i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    n_weights += t.is_weight != 0;
  }
  /* The 13 above plus key.bias and value_.bias. */
  assert_int_equal(n_weights, 15);
  for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
    int i = input_index(model, want[w].name);
    if (i < 0)
      fail_msg("no weight '%s'", want[w].name);
    xy_tensor_info t;
    xy_model_input(model, (size_t)i, &t);
    assert_true(t.is_weight);
    assert_int_equal(t.rank, want[w].rank);
    for (int d = 0; d < t.rank; d++)
      assert_int_equal(t.shape[d], want[w].shape[d]);
  }
  xy_tensor_info y;
  xy_model_output(model, 0, &y);
  assert_string_equal(y.name, "y");
  assert_int_equal(y.rank, 4);
  assert_int_equal(y.shape[3], 24);
  xy_model_free(model);
}

static void layer1d_defaults(void **state)
{
  (void)state;
  xy_model *model = load_ok(fixture("layer1d.json"));
  /* pLSTM1DLayer's defaults: JV = JT = 4, conv k = 4, passthrough, JT > 1 transitions. */
  static const struct {
    const char *name;
    int rank;
    int64_t shape[5];
  } want[] = {
    {"value_.weight", 5, {1, 2, 4, 2, 8}},
    {"conv._conv.weight", 3, {16, 1, 4}},
    {"conv._conv.bias", 1, {16}},
    {"passthrough.scale", 1, {16}},
    {"transition.inproj_weight", 5, {2, 1, 4, 4, 16}},
    {"transition.outproj_bias", 3, {2, 4, 4}},
    {"source.bias", 4, {2, 4, 1, 4}},
  };
  for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
    int i = input_index(model, want[w].name);
    if (i < 0)
      fail_msg("no weight '%s'", want[w].name);
    xy_tensor_info t;
    xy_model_input(model, (size_t)i, &t);
    assert_int_equal(t.rank, want[w].rank);
    for (int d = 0; d < t.rank; d++)
      assert_int_equal(t.shape[d], want[w].shape[d]);
  }
  xy_model_free(model);
}

/* ------------------------------------------------------------------ option errors */

static void option_errors(void **state)
{
  (void)state;
  const char *p;
  p = variant("layer2d.json", "l_key.json", "\"heads\": 2", "\"headz\": 2");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_key.json:16:7: layers[0].headz: unknown key 'headz'", "heads"));
  p = variant("layer2d.json", "l_mode.json", "\"mode\": \"P\"", "\"mode\": \"Q\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_mode.json:17:15: layers[0].mode: 'Q' is not one of 'P', 'D'"));
  p = variant("layer2d.json", "l_heads.json", "\"heads\": 2", "\"heads\": 0");
  expect_spec_error(p, NULL, 0, XY_E_SPEC, NEEDLES("l_heads.json:16:16: layers[0].heads: must be in 1.."));
  p = variant("layer2d.json", "l_qkv.json", "\"heads\": 2", "\"heads\": 5");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_qkv.json", "layers[0]", "qkv_sub_heads 5 does not divide dim 24"));
  p = variant("layer2d.json", "l_sub.json", "\"mode\": \"P\"",
              "\"mode\": \"P\", \"source\": {\"weight\": true, \"sub_heads\": 5}");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_sub.json", "source: sub_heads 5 does not divide 8 channels"));
  p = variant("layer2d.json", "l_act.json", "\"mode\": \"P\"",
              "\"mode\": \"P\", \"mark\": {\"activation\": \"relu\"}");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_act.json:17:43: layers[0].mark.activation: 'relu' is not one of"));
  p = variant("layer2d.json", "l_norm.json", "\"mode\": \"P\"", "\"mode\": \"P\", \"norm\": {\"eps\": -1}");
  expect_spec_error(p, NULL, 0, XY_E_SPEC, NEEDLES("l_norm.json", "layers[0].norm: eps must be positive"));
  p = variant("layer2d.json", "l_conv.json", "\"mode\": \"P\"", "\"mode\": \"P\", \"convolution\": 3");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_conv.json", "layers[0].convolution: must be true, false or"));
  p = variant("layer2d.json", "l_proj.json", "\"mode\": \"P\"",
              "\"mode\": \"P\", \"outprojection\": false, \"dv\": 4");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_proj.json", "without an output projection, heads*dv*jo = 8 must "
                            "equal dim 24"));
  p = variant("layer2d.json", "l_prefix.json", "\"weights\": \"enc.0.\"", "\"weights\": 3");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_prefix.json:15:18: layers[0].weights: must be a string"));
}

static void input_and_graph_errors(void **state)
{
  (void)state;
  const char *p;
  p = write_tmp("l_graph.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"sequence\", \"length\": 12},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 1, 8]}],\n"
                " \"layers\": [{\"op\": \"plstm2d\", \"input\": \"x\", \"output\": \"y\"}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_graph.json:3:13: layers[0]: a plstm2d layer runs over a grid2d "
                            "graph, not this one"));
  p = write_tmp("l_graph1.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"grid2d\", \"rows\": 5, \"cols\": 1},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"rows\", 8]}],\n"
                " \"layers\": [{\"op\": \"plstm1d\", \"input\": \"x\", \"output\": \"y\"}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_graph1.json:3:13: layers[0]: a plstm1d layer runs over a sequence "
                            "graph, not this one"));
  p = variant("layer2d.json", "l_rank.json", "[\"batch\", \"rows\", \"cols\", 24]",
              "[\"batch\", 12, 24]");
  expect_spec_error(p, NULL, 0, XY_E_SHAPE,
                    NEEDLES("l_rank.json:13:16: layers[0].input: plstm2d reads [batch, rows, "
                            "cols, dim], not a tensor of rank 3"));
  p = variant("layer2d.json", "l_grid.json", "[\"batch\", \"rows\", \"cols\", 24]",
              "[\"batch\", 4, 3, 24]");
  expect_spec_error(p, NULL, 0, XY_E_SHAPE,
                    NEEDLES("l_grid.json", "the input's positions do not match the graph"));
  p = variant("layer2d.json", "l_in.json", "\"input\": \"x\"", "\"input\": \"z\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_in.json:13:16: layers[0].input: unknown tensor 'z'"));
  p = variant("layer2d.json", "l_out.json", "\"output\": \"y\",", "");
  expect_spec_error(p, NULL, 0, XY_E_SPEC, NEEDLES("l_out.json", "plstm2d needs \"output\""));
  p = variant("layer2d.json", "l_small.json", "\"heads\": 2", "\"heads\": 25, \"qkv_sub_heads\": 1");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_small.json", "dim 24 is too small for 25 heads"));
}

/* Two layers under one prefix would read the same tensors: an error, not a silent share. */
static void weight_prefix_clash(void **state)
{
  (void)state;
  const char *p = variant("layer2d.json", "l_two.json", "  ],\n  \"outputs\": [\"y\"]",
                          "    ,{\"op\": \"plstm2d\", \"name\": \"block2\", \"input\": \"y\", "
                          "\"output\": \"y2\", \"weights\": \"enc.0.\", \"heads\": 2}\n  ],\n"
                          "  \"outputs\": [\"y2\"]");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("l_two.json", "layers[1]", "weight 'enc.0.query.weight' is already "
                            "used by another layer"));
  p = variant("layer2d.json", "l_two_ok.json", "  ],\n  \"outputs\": [\"y\"]",
              "    ,{\"op\": \"plstm2d\", \"name\": \"block2\", \"input\": \"y\", "
              "\"output\": \"y2\", \"weights\": \"enc.1.\", \"heads\": 2}\n  ],\n"
              "  \"outputs\": [\"y2\"]");
  xy_model *model = load_ok(p);
  assert_true(input_index(model, "enc.1.query.weight") >= 0);
  xy_model_free(model);
}

/* ------------------------------------------------------------------ weights files */

typedef struct weights_file {
  size_t n;
  char *names[64];
  xy_array arrays[64];
} weights_file;

/* The tensors of a safetensors file, copied. */
static void read_all(const char *path, weights_file *w)
{
  xy_safetensors *st;
  xy_error err;
  if (xy_safetensors_open(path, (int64_t)1 << 30, &st, &err))
    fail_msg("%s", err.message);
  w->n = xy_safetensors_count(st);
  assert_true(w->n <= 64);
  for (size_t i = 0; i < w->n; i++) {
    xy_array v;
    assert_int_equal(xy_safetensors_get(st, xy_safetensors_name(st, i), &v, &err), XY_OK);
    w->names[i] = strdup(xy_safetensors_name(st, i));
    w->arrays[i] = v;
    size_t bytes = v.count * xy_dtype_size(v.dtype);
    w->arrays[i].data = malloc(bytes ? bytes : 1);
    assert_non_null(w->names[i]);
    assert_non_null(w->arrays[i].data);
    memcpy(w->arrays[i].data, v.data, bytes);
  }
  xy_safetensors_close(st);
}

static void free_all(weights_file *w)
{
  for (size_t i = 0; i < w->n; i++) {
    free(w->names[i]);
    free(w->arrays[i].data);
  }
}

static const char *write_all(const weights_file *w, const char *name)
{
  const char *path = write_tmp(name, "");
  xy_error err;
  if (xy_safetensors_write(path, (const char *const *)w->names, w->arrays, w->n, &err))
    fail_msg("%s", err.message);
  return path;
}

static size_t find(const weights_file *w, const char *name)
{
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->names[i], name) == 0)
      return i;
  fail_msg("no tensor '%s'", name);
  return 0;
}

/* Reads weights into freshly allocated inputs; returns the status. */
static int read_weights(const xy_model *model, const char *path, xy_error *err, float ***out)
{
  size_t n = xy_model_num_inputs(model);
  float **in = calloc(n, sizeof *in);
  assert_non_null(in);
  for (size_t i = 0; i < n; i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    in[i] = calloc(t.count ? t.count : 1, sizeof(float));
    assert_non_null(in[i]);
  }
  int rc = xy_model_read_weights(model, path, in, err);
  *out = in;
  return rc;
}

static void free_inputs(const xy_model *model, float **in)
{
  for (size_t i = 0; i < xy_model_num_inputs(model); i++)
    free(in[i]);
  free(in);
}

static void expect_weights_error(const xy_model *model, const char *path, int code,
                                 const char *const *needles)
{
  xy_error err;
  float **in;
  int rc = read_weights(model, path, &err, &in);
  expect_error(rc, &err, code, needles);
  free_inputs(model, in);
}

static void weights_round_trip_and_errors(void **state)
{
  (void)state;
  xy_model *model = load_ok(fixture("layer2d.json"));
  const char *good = write_tmp("w_good.safetensors", "");
  xy_error err;
  if (xy_model_write_random_weights(model, good, 7, &err))
    fail_msg("%s", err.message);
  float **in;
  if (read_weights(model, good, &err, &in))
    fail_msg("%s", err.message);
  weights_file w;
  read_all(good, &w);
  assert_int_equal(w.n, 15);
  int qi = input_index(model, "enc.0.query.weight");
  size_t qw = find(&w, "enc.0.query.weight");
  assert_memory_equal(in[qi], w.arrays[qw].data, w.arrays[qw].count * sizeof(float));
  free_inputs(model, in);

  /* Tensors outside every layer's prefix belong to other parts of a model: ignored. */
  weights_file more = w;
  more.names[more.n] = "head.weight";
  more.arrays[more.n++] = w.arrays[qw];
  const char *path = write_all(&more, "w_other.safetensors");
  if (read_weights(model, path, &err, &in))
    fail_msg("%s", err.message);
  free_inputs(model, in);

  /* An extra tensor under the prefix is a misnamed weight. */
  more.names[more.n - 1] = "enc.0.query.weigth";
  path = write_all(&more, "w_extra.safetensors");
  expect_weights_error(model, path, XY_E_SPEC,
                       NEEDLES("w_extra.safetensors: tensor 'enc.0.query.weigth' is not a "
                               "weight of any layer"));

  /* Missing. */
  weights_file fewer = w;
  fewer.names[qw] = w.names[w.n - 1];
  fewer.arrays[qw] = w.arrays[w.n - 1];
  fewer.n--;
  path = write_all(&fewer, "w_missing.safetensors");
  expect_weights_error(model, path, XY_E_SPEC,
                       NEEDLES("w_missing.safetensors: no tensor named 'enc.0.query.weight'"));

  /* Misshaped: the same values as [12, 1, 1, 2, 12]. */
  weights_file bent = w;
  bent.arrays[qw].shape[0] = 12;
  bent.arrays[qw].shape[1] = 1;
  path = write_all(&bent, "w_shape.safetensors");
  expect_weights_error(model, path, XY_E_SHAPE,
                       NEEDLES("w_shape.safetensors: tensor 'enc.0.query.weight' has shape "
                               "[12,1,1,2,12], the layer needs [1,12,1,2,12]"));

  /* Integers are not weights. */
  weights_file ints = w;
  ints.arrays[qw].dtype = XY_I32;
  path = write_all(&ints, "w_int.safetensors");
  expect_weights_error(model, path, XY_E_SHAPE,
                       NEEDLES("w_int.safetensors: tensor 'enc.0.query.weight' is I32; weights "
                               "are floating point"));

  /* F64 rounds to the nearest float. */
  weights_file wide = w;
  size_t cnt = w.arrays[qw].count;
  double *d = malloc(cnt * sizeof *d);
  assert_non_null(d);
  for (size_t i = 0; i < cnt; i++)
    d[i] = ((const float *)w.arrays[qw].data)[i] * (1.0 + 1e-12);
  wide.arrays[qw].dtype = XY_F64;
  wide.arrays[qw].data = d;
  path = write_all(&wide, "w_f64.safetensors");
  if (read_weights(model, path, &err, &in))
    fail_msg("%s", err.message);
  assert_memory_equal(in[qi], w.arrays[qw].data, cnt * sizeof(float));
  free_inputs(model, in);
  free(d);

  free_all(&w);
  xy_model_free(model);
}

int run_layer_tests(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(layer2d_weights_named_as_the_reference),
    cmocka_unit_test(layer1d_defaults),
    cmocka_unit_test(option_errors),
    cmocka_unit_test(input_and_graph_errors),
    cmocka_unit_test(weight_prefix_clash),
    cmocka_unit_test(weights_round_trip_and_errors),
  };
  return cmocka_run_group_tests_name("layers", tests, NULL, NULL);
}
