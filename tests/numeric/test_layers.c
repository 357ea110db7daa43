/* test_layers.c: the full pLSTM layers (plstm1d, plstm2d) against the reference vectors
 * made with ml-jku/plstm: layer1d and fused2d_{p,d,p_vis,d_vis}. Each spec is written from
 * the case's manifest config, the weights are read from its weights.safetensors through
 * xy_model_read_weights (prefix ""), and
 *   1. the float64 interpreter matches out.npy to 1e-10 relative to max(1, max|ref|), and
 *      the scan's inputs and output inside the layer match the dbg_core_*.npy
 *      intermediates (heads folded into the batch) to the same bound; so do specs that
 *      give only heads and mode for the cases made with the library defaults;
 *   2. the compiled program, on OpenCL (PoCL) and the C target, matches out.npy within
 *      the manifest's float32 tolerance: each case on both targets with a pair of scan
 *      forms, or every form with XYLEM_LAYER_FULL=1. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "interp.h"
#include "program.h"

typedef struct layer_case {
  char name[64];
  char dir[1024];
  json_t *manifest, *config;
  xy_model *model;
  size_t n_in;
  float **in;          /* x and the weights, in model input order */
  double *ref;         /* out.npy */
  size_t out_count;
  double tol;          /* the manifest's float32 bound */
} layer_case;

/* ------------------------------------------------------------------ manifest */

static json_t *cfg(json_t *obj, const char *key)
{
  json_t *x = json_object_get(obj, key);
  if (!x)
    fail_msg("manifest config has no '%s'", key);
  return x;
}

static long long cfg_int(json_t *obj, const char *key)
{
  return (long long)json_integer_value(cfg(obj, key));
}

static double cfg_num(json_t *obj, const char *key)
{
  return json_number_value(cfg(obj, key));
}

static const char *cfg_bool(json_t *obj, const char *key)
{
  return json_is_true(cfg(obj, key)) ? "true" : "false";
}

/* The number after "<=" in tolerance_hint.float32_implementation. */
static double manifest_tolerance(json_t *manifest)
{
  json_t *hint = json_object_get(json_object_get(manifest, "tolerance_hint"),
                                 "float32_implementation");
  const char *s = json_string_value(hint), *le = s ? strstr(s, "<=") : NULL;
  double tol = 0;
  if (!le || sscanf(le + 2, "%lf", &tol) != 1 || !(tol > 0 && tol < 1e-3))
    fail_msg("manifest: unreadable float32 tolerance '%s'", s ? s : "(none)");
  return tol;
}

/* "{"weight": W, "sub_heads": S, "activation": A, "scale": P}" of a gate's config. */
static void gate_json(json_t *config, const char *key, char *buf, size_t n)
{
  json_t *g = cfg(config, key);
  json_t *scale = json_object_get(g, "activation_scale");
  snprintf(buf, n, "{\"weight\": %s, \"sub_heads\": %lld, \"activation\": \"%s\", \"scale\": %.17g}",
           cfg_bool(g, "weight"), cfg_int(g, "sub_heads"),
           json_string_value(cfg(g, "activation")), scale ? json_number_value(scale) : 1.0);
}

/* The transition's config; the 1D layer's orthogonalization settings when present. */
static void transition_json(json_t *config, char *buf, size_t n)
{
  json_t *t = cfg(config, "transition");
  int k = snprintf(buf, n, "{\"weight\": %s, \"sub_heads\": %lld, \"eigenvalue\": \"%s\", "
                   "\"factor\": %.17g", cfg_bool(t, "weight"), cfg_int(t, "sub_heads"),
                   json_string_value(cfg(t, "eigenvalue_representation")),
                   cfg_num(t, "eigenvalue_factor"));
  if (json_object_get(t, "orthogonalization_order"))
    k += snprintf(buf + k, n - (size_t)k, ", \"orthogonalization_factor\": %.17g, "
                  "\"orthogonalization_order\": %lld", cfg_num(t, "orthogonalization_factor"),
                  cfg_int(t, "orthogonalization_order"));
  snprintf(buf + k, n - (size_t)k, "}");
}

static void norm_json(json_t *config, char *buf, size_t n)
{
  json_t *nm = cfg(config, "mhnorm");
  assert_false(json_is_true(cfg(nm, "bias"))); /* the layers have no norm bias */
  snprintf(buf, n, "{\"eps\": %.17g, \"scale\": %s}", cfg_num(nm, "eps"), cfg_bool(nm, "scale"));
}

/* The plstm1d spec of a layer1d manifest. */
static char *spec_1d(json_t *c)
{
  assert_false(json_is_true(cfg(c, "outprojection_bias")));
  json_t *conv = cfg(c, "convolution");
  assert_true(json_is_true(cfg(conv, "causal")) && json_is_true(cfg(conv, "depthwise")));
  char src[256], mark[256], direct[256], trans[512], norm[128];
  gate_json(c, "source", src, sizeof src);
  gate_json(c, "mark", mark, sizeof mark);
  gate_json(c, "direct", direct, sizeof direct);
  transition_json(c, trans, sizeof trans);
  norm_json(c, norm, sizeof norm);
  static char text[8192];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"layer1d\", \"batch\": %lld,\n"
           " \"graph\": {\"kind\": \"sequence\", \"length\": %lld},\n"
           " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", %lld]}],\n"
           " \"layers\": [{\"op\": \"plstm1d\", \"name\": \"layer\", \"input\": \"x\",\n"
           "   \"output\": \"y\", \"weights\": \"\", \"heads\": %lld,\n"
           "   \"jq\": %lld, \"jk\": %lld, \"jv\": %lld, \"jt\": %lld, \"jo\": %lld,\n"
           "   \"dk\": %lld, \"dv\": %lld, \"qkv_sub_heads\": %lld, \"qkv_bias\": %s,\n"
           "   \"source\": %s,\n   \"mark\": %s,\n   \"direct\": %s,\n   \"transition\": %s,\n"
           "   \"norm\": %s, \"outprojection\": %s,\n"
           "   \"convolution\": {\"kernel\": %lld, \"bias\": %s}, \"passthrough\": %s}],\n"
           " \"outputs\": [\"y\"]}\n",
           cfg_int(c, "B"), cfg_int(c, "L"), cfg_int(c, "input_dim"), cfg_int(c, "num_heads"),
           cfg_int(c, "JQ"), cfg_int(c, "JK"), cfg_int(c, "JV"), cfg_int(c, "JT"),
           cfg_int(c, "JO"), cfg_int(c, "DK"), cfg_int(c, "DV"), cfg_int(c, "qkv_sub_heads"),
           cfg_bool(c, "qkv_bias"), src, mark, direct, trans, norm, cfg_bool(c, "outprojection"),
           json_is_true(cfg(conv, "enabled")) ? cfg_int(conv, "kernel_size") : 0LL,
           cfg_bool(conv, "bias"), cfg_bool(c, "passthrough"));
  return text;
}

/* The plstm2d spec of a fused2d manifest. */
static char *spec_2d(json_t *c)
{
  assert_false(json_is_true(cfg(c, "outprojection_bias")));
  assert_false(json_is_true(cfg(c, "tie_query_key")));
  assert_string_equal(json_string_value(cfg(c, "qkv_normalization")), "none");
  long long J[] = {cfg_int(c, "JQ"), cfg_int(c, "JK"), cfg_int(c, "JV"), cfg_int(c, "JT"),
                   cfg_int(c, "JO")};
  for (int i = 0; i < 5; i++)
    assert_int_equal(J[i], 1); /* the fused layer has no J options */
  char src[256], mark[256], direct[256], trans[512], norm[128];
  gate_json(c, "source", src, sizeof src);
  gate_json(c, "mark", mark, sizeof mark);
  gate_json(c, "direct", direct, sizeof direct);
  transition_json(c, trans, sizeof trans);
  norm_json(c, norm, sizeof norm);
  static char text[8192];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"fused2d\", \"batch\": %lld,\n"
           " \"graph\": {\"kind\": \"grid2d\", \"rows\": %lld, \"cols\": %lld},\n"
           " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"rows\", \"cols\", %lld]}],\n"
           " \"layers\": [{\"op\": \"plstm2d\", \"name\": \"layer\", \"input\": \"x\",\n"
           "   \"output\": \"y\", \"weights\": \"\", \"heads\": %lld,\n"
           "   \"mode\": \"%s\", \"chirality\": \"%s\", \"orientation_scale\": %.17g,\n"
           "   \"dk\": %lld, \"dv\": %lld, \"qkv_sub_heads\": %lld, \"qkv_bias\": %s,\n"
           "   \"source\": %s,\n   \"mark\": %s,\n   \"direct\": %s,\n   \"transition\": %s,\n"
           "   \"norm\": %s, \"outprojection\": %s,\n"
           "   \"convolution\": %s, \"passthrough\": %s}],\n"
           " \"outputs\": [\"y\"]}\n",
           cfg_int(c, "B"), cfg_int(c, "X"), cfg_int(c, "Y"), cfg_int(c, "input_dim"),
           cfg_int(c, "num_heads"), json_string_value(cfg(c, "mode")),
           json_string_value(cfg(c, "dmode_chirality")), cfg_num(c, "pmode_orientation_scale"),
           cfg_int(c, "DK"), cfg_int(c, "DV"), cfg_int(c, "qkv_sub_heads"),
           cfg_bool(c, "qkv_bias"), src, mark, direct, trans, norm,
           cfg_bool(c, "outprojection"), cfg_bool(c, "additional_convolution"),
           cfg_bool(c, "additional_passthrough"));
  return text;
}

/* The layer with nothing but its heads (and mode): the library defaults of plstm1d and
 * plstm2d must be the reference's, which layer1d, fused2d_p and fused2d_d were made with. */
static char *spec_defaults(json_t *c, bool grid)
{
  static char text[2048];
  if (grid)
    snprintf(text, sizeof text,
             "{\"xylem\": 1, \"name\": \"defaults2d\", \"batch\": %lld,\n"
             " \"graph\": {\"kind\": \"grid2d\", \"rows\": %lld, \"cols\": %lld},\n"
             " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"rows\", \"cols\", %lld]}],\n"
             " \"layers\": [{\"op\": \"plstm2d\", \"name\": \"layer\", \"input\": \"x\",\n"
             "   \"output\": \"y\", \"heads\": %lld, \"mode\": \"%s\"}],\n"
             " \"outputs\": [\"y\"]}\n",
             cfg_int(c, "B"), cfg_int(c, "X"), cfg_int(c, "Y"), cfg_int(c, "input_dim"),
             cfg_int(c, "num_heads"), json_string_value(cfg(c, "mode")));
  else
    snprintf(text, sizeof text,
             "{\"xylem\": 1, \"name\": \"defaults1d\", \"batch\": %lld,\n"
             " \"graph\": {\"kind\": \"sequence\", \"length\": %lld},\n"
             " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", %lld]}],\n"
             " \"layers\": [{\"op\": \"plstm1d\", \"name\": \"layer\", \"input\": \"x\",\n"
             "   \"output\": \"y\", \"heads\": %lld}],\n"
             " \"outputs\": [\"y\"]}\n",
             cfg_int(c, "B"), cfg_int(c, "L"), cfg_int(c, "input_dim"), cfg_int(c, "num_heads"));
  return text;
}

/* ------------------------------------------------------------------ loading */

static void read_npy(const layer_case *lc, const char *file, xy_array *a)
{
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", lc->dir, file);
  xy_error err;
  if (xy_npy_read(path, 1 << 28, a, &err))
    fail_msg("%s", err.message);
}

/* An .npy of the case as count doubles (freed by the caller). */
static double *read_f64(const layer_case *lc, const char *file, size_t count)
{
  xy_array a;
  read_npy(lc, file, &a);
  if (a.count != count)
    fail_msg("%s/%s: %zu values, the model has %zu", lc->name, file, a.count, count);
  double *d = malloc(sizeof(double) * (count ? count : 1));
  assert_non_null(d);
  xy_error err;
  if (xy_array_to_f64(&a, d, count, &err))
    fail_msg("%s", err.message);
  xy_array_free(&a);
  return d;
}

/* defaults: the spec of spec_defaults instead of the full config. */
static void open_case(layer_case *lc, const char *name, bool grid, bool defaults)
{
  memset(lc, 0, sizeof *lc);
  snprintf(lc->name, sizeof lc->name, "%s", name);
  snprintf(lc->dir, sizeof lc->dir, "%s/plstm/%s", harness_data_dir(), name);
  char path[1200];
  snprintf(path, sizeof path, "%s/manifest.json", lc->dir);
  json_error_t jerr;
  lc->manifest = json_load_file(path, 0, &jerr);
  if (!lc->manifest)
    fail_msg("%s: %s", path, jerr.text);
  lc->config = cfg(lc->manifest, "config");
  lc->tol = manifest_tolerance(lc->manifest);
  char spec_name[128];
  snprintf(spec_name, sizeof spec_name, "%s%s.json", name, defaults ? "_defaults" : "");
  char *spec = harness_write(spec_name, defaults ? spec_defaults(lc->config, grid)
                                        : grid ? spec_2d(lc->config) : spec_1d(lc->config));
  assert_non_null(spec);
  xy_error err;
  if (xy_model_load(spec, NULL, &lc->model, &err))
    fail_msg("%s: %s", name, err.message);
  free(spec);
  /* x from x.npy, every weight from the case's safetensors file */
  lc->n_in = xy_model_num_inputs(lc->model);
  lc->in = calloc(lc->n_in, sizeof *lc->in);
  assert_non_null(lc->in);
  int x_slot = -1;
  for (size_t i = 0; i < lc->n_in; i++) {
    xy_tensor_info t;
    xy_model_input(lc->model, i, &t);
    lc->in[i] = malloc(sizeof(float) * (t.count ? t.count : 1));
    assert_non_null(lc->in[i]);
    if (!t.is_weight) {
      assert_string_equal(t.name, "x");
      x_slot = (int)i;
    }
  }
  assert_true(x_slot >= 0);
  xy_tensor_info t;
  xy_model_input(lc->model, (size_t)x_slot, &t);
  xy_array a;
  read_npy(lc, "x.npy", &a);
  assert_int_equal(a.count, t.count);
  if (xy_array_to_f32(&a, lc->in[x_slot], t.count, &err))
    fail_msg("%s", err.message);
  xy_array_free(&a);
  snprintf(path, sizeof path, "%s/weights.safetensors", lc->dir);
  if (xy_model_read_weights(lc->model, path, lc->in, &err))
    fail_msg("%s: %s", name, err.message);
  assert_int_equal(xy_model_num_outputs(lc->model), 1);
  xy_model_output(lc->model, 0, &t);
  lc->out_count = t.count;
  lc->ref = read_f64(lc, "out.npy", t.count);
}

static void close_case(layer_case *lc)
{
  for (size_t i = 0; i < lc->n_in; i++)
    free(lc->in[i]);
  free(lc->in);
  free(lc->ref);
  xy_model_free(lc->model);
  json_decref(lc->manifest);
}

/* ------------------------------------------------------------------ interpreter */

/* Every tensor's float64 value: inputs from the case, the rest from the interpreter. */
static double **interpret_all(const layer_case *lc)
{
  const ir_module *m = lc->model->m;
  double **vals = calloc((size_t)m->n_tensors, sizeof *vals);
  assert_non_null(vals);
  for (size_t i = 0; i < lc->n_in; i++) {
    int t = m->inputs[i];
    size_t n = (size_t)ir_shape_count(&m->tensors[t].shape);
    vals[t] = malloc(sizeof(double) * (n ? n : 1));
    assert_non_null(vals[t]);
    for (size_t j = 0; j < n; j++)
      vals[t][j] = lc->in[i][j];
  }
  xy_error err;
  if (ir_interpret(m, vals, &err))
    fail_msg("%s: interpreter: %s", lc->name, err.message);
  return vals;
}

static void free_all(const layer_case *lc, double **vals)
{
  const ir_module *m = lc->model->m;
  ir_interp_release(m, vals);
  for (int i = 0; i < m->n_inputs; i++)
    free(vals[m->inputs[i]]);
  free(vals);
}

/* One tensor against dbg_core_<file>.npy; returns the error. */
static double check_debug(const layer_case *lc, double **vals, int t, const char *file)
{
  const ir_module *m = lc->model->m;
  size_t n = (size_t)ir_shape_count(&m->tensors[t].shape);
  char name[128];
  snprintf(name, sizeof name, "dbg_core_%s.npy", file);
  double *ref = read_f64(lc, name, n);
  double e = harness_scaled_error(vals[t], ref, n);
  free(ref);
  print_message("  %-14s interpreter %-22s error %.3g\n", lc->name, name, e);
  return e;
}

/* The interpreter vs out.npy, and the scan's operands vs the dbg_core intermediates. */
static void check_interpreter(const layer_case *lc)
{
  const ir_module *m = lc->model->m;
  double **vals = interpret_all(lc);
  int scan = -1;
  for (int i = 0; i < m->n_ops; i++)
    if (ir_op_info_of(m->ops[i].code)->flags & IR_OPF_SCAN)
      scan = i;
  assert_true(scan >= 0);
  const ir_op *op = &m->ops[scan];
  const ir_op_info *info = ir_op_info_of(op->code);
  double worst = 0;
  const char *which = "-";
  for (int s = 0; s < info->n_in; s++) {
    if (op->in[s] < 0)
      continue;
    char slot[32];
    snprintf(slot, sizeof slot, "%s", info->in_names[s]);
    slot[strcspn(slot, "?")] = 0;
    double e = check_debug(lc, vals, op->in[s], slot);
    if (!(e <= worst)) {
      worst = e;
      which = info->in_names[s];
    }
  }
  double e = check_debug(lc, vals, op->out[0], "out");
  if (!(e <= worst)) {
    worst = e;
    which = "out";
  }
  int y = m->outputs[0];
  double ey = harness_scaled_error(vals[y], lc->ref, lc->out_count);
  print_message("  %-14s interpreter out.npy                error %.3g\n", lc->name, ey);
  free_all(lc, vals);
  if (!(worst <= 1e-10))
    fail_msg("%s: the scan's %s differs from the reference's by %.3g (above 1e-10)", lc->name,
             which, worst);
  if (!(ey <= 1e-10))
    fail_msg("%s: interpreter output error %.3g above 1e-10", lc->name, ey);
}

/* ------------------------------------------------------------------ compiled */

typedef struct form_choice {
  const char *form;    /* NULL: the cost model's */
  int64_t chunk;
  bool portable;       /* the schedule for a device nobody named */
} form_choice;

static void check_compiled(const layer_case *lc, xy_target target, const form_choice *f)
{
  harness_case c = {.target = target, .form = f->form, .chunk = f->chunk,
                    .portable = f->portable};
  float *out = malloc(sizeof(float) * (lc->out_count ? lc->out_count : 1));
  assert_non_null(out);
  char msg[8192], forms[256];
  const char *tname = target == XY_TARGET_C ? "C" : "OpenCL";
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (harness_execute(&c, lc->model, lc->in, &out, forms, sizeof forms, msg, sizeof msg))
    fail_msg("%s %s %s: %s", lc->name, tname, f->form ? f->form : "auto", msg);
  double e = 0, m = 1;
  for (size_t i = 0; i < lc->out_count; i++) {
    double d = fabs((double)out[i] - lc->ref[i]);
    e = d > e || isnan(d) ? d : e;
    m = fabs(lc->ref[i]) > m ? fabs(lc->ref[i]) : m;
  }
  e /= m;
  free(out);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  print_message("  %-14s %-6s %-30s %-8s error %.3g (bound %g) %.1f s\n", lc->name, tname,
                forms, f->portable ? "portable" : "", e, lc->tol, secs);
  if (!(e <= lc->tol))
    fail_msg("%s %s %s: error %.3g above the manifest's %g", lc->name, tname, forms, e, lc->tol);
}

/* Every form on both targets when XYLEM_LAYER_FULL is set, else the case's own pair of
 * runs: each vector on OpenCL and on C, the forms and the portable schedule spread over
 * the cases (the scan forms themselves are checked in depth by test_vectors and
 * test_plstm2d, the portable schedule of each op by test_layer_ops; a whole layer's
 * program takes PoCL 10-20 s to build cold). */
static bool full_matrix(void)
{
  const char *on = getenv("XYLEM_LAYER_FULL");
  return on && on[0] && strcmp(on, "0") != 0;
}

static void run_case(const char *name, bool grid, const form_choice *opencl,
                     const form_choice *c)
{
  layer_case lc;
  open_case(&lc, name, grid, false);
  check_interpreter(&lc);
  static const form_choice forms1d[] = {{NULL, 0, false}, {"chunkwise", 8, false},
                                        {"chunkwise", 5, false}, {"recurrent", 0, false},
                                        {NULL, 0, true}};
  static const form_choice forms2d[] = {{NULL, 0, false}, {"tiled", 4, false},
                                        {"tiled", 3, false}, {"single", 0, false},
                                        {"recurrent", 0, false}, {NULL, 0, true}};
  if (full_matrix()) {
    const form_choice *f = grid ? forms2d : forms1d;
    size_t nf = grid ? sizeof forms2d / sizeof *forms2d : sizeof forms1d / sizeof *forms1d;
    for (int t = 0; t < 2; t++)
      for (size_t i = 0; i < nf; i++)
        check_compiled(&lc, t ? XY_TARGET_C : XY_TARGET_OPENCL, &f[i]);
  } else {
    check_compiled(&lc, XY_TARGET_OPENCL, opencl);
    check_compiled(&lc, XY_TARGET_C, c);
  }
  close_case(&lc);
}

static const form_choice AUTO = {NULL, 0, false}, PORTABLE = {NULL, 0, true};

static void layer1d(void **state)
{
  (void)state;
  run_case("layer1d", false, &AUTO, &PORTABLE);
}

static void fused2d_p(void **state)
{
  (void)state;
  static const form_choice tiled3 = {"tiled", 3, false};
  run_case("fused2d_p", true, &AUTO, &tiled3);
}

static void fused2d_d(void **state)
{
  (void)state;
  static const form_choice tiled4 = {"tiled", 4, false};
  run_case("fused2d_d", true, &tiled4, &AUTO);
}

static void fused2d_p_vis(void **state)
{
  (void)state;
  static const form_choice recurrent = {"recurrent", 0, false};
  run_case("fused2d_p_vis", true, &recurrent, &PORTABLE);
}

static void fused2d_d_vis(void **state)
{
  (void)state;
  static const form_choice tiled3 = {"tiled", 3, false}, recurrent = {"recurrent", 0, false};
  run_case("fused2d_d_vis", true, &tiled3, &recurrent);
}

/* layer1d, fused2d_p and fused2d_d from specs that give only heads and mode. */
static void library_defaults(void **state)
{
  (void)state;
  static const struct {
    const char *name;
    bool grid;
  } cases[] = {{"layer1d", false}, {"fused2d_p", true}, {"fused2d_d", true}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    layer_case lc;
    open_case(&lc, cases[i].name, cases[i].grid, true);
    check_interpreter(&lc);
    close_case(&lc);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(layer1d),
    cmocka_unit_test(fused2d_p),
    cmocka_unit_test(fused2d_d),
    cmocka_unit_test(fused2d_p_vis),
    cmocka_unit_test(fused2d_d_vis),
    cmocka_unit_test(library_defaults),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
