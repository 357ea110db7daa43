/* test_vectors.c: the shared reference vectors (made with the reference implementation,
 * ml-jku/plstm) against the interpreter (1e-10) and against every compiled form on both
 * targets (1e-5, relative to max(1, max|ref|) as each manifest suggests). */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "program.h"

typedef struct vec_case {
  char dir[1024];
  json_t *manifest;
  xy_model *model;
  size_t n_in, n_out;
  float **in;          /* float32 inputs in model order */
  double **ref;        /* reference outputs, float64 */
  size_t *out_count;
} vec_case;

static json_int_t cfg_int(const vec_case *v, const char *key)
{
  json_t *x = json_object_get(json_object_get(v->manifest, "config"), key);
  assert_non_null(x);
  return json_integer_value(x);
}

static double cfg_real(const vec_case *v, const char *key)
{
  json_t *x = json_object_get(json_object_get(v->manifest, "config"), key);
  assert_non_null(x);
  return json_number_value(x);
}

static void read_npy(const vec_case *v, const char *file, xy_array *a)
{
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", v->dir, file);
  xy_error err;
  if (xy_npy_read(path, 1 << 30, a, &err))
    fail_msg("%s", err.message);
}

static void open_case(vec_case *v, const char *name)
{
  memset(v, 0, sizeof *v);
  snprintf(v->dir, sizeof v->dir, "%s/plstm/%s", harness_data_dir(), name);
  char path[1200];
  snprintf(path, sizeof path, "%s/manifest.json", v->dir);
  json_error_t jerr;
  v->manifest = json_load_file(path, 0, &jerr);
  if (!v->manifest)
    fail_msg("%s: %s", path, jerr.text);
}

/* Loads the spec and binds input files (in the model's input order) and reference outputs. */
static void load_model(vec_case *v, const char *spec_name, const char *spec_text,
                       const char *const *in_files, const char *const *out_files)
{
  char *spec = harness_write(spec_name, spec_text);
  assert_non_null(spec);
  xy_error err;
  if (xy_model_load(spec, NULL, &v->model, &err))
    fail_msg("%s", err.message);
  free(spec);
  v->n_in = xy_model_num_inputs(v->model);
  v->n_out = xy_model_num_outputs(v->model);
  v->in = calloc(v->n_in, sizeof *v->in);
  v->ref = calloc(v->n_out, sizeof *v->ref);
  v->out_count = calloc(v->n_out, sizeof *v->out_count);
  assert_true(v->in && v->ref && v->out_count);
  for (size_t i = 0; i < v->n_in; i++) {
    xy_tensor_info t;
    xy_model_input(v->model, i, &t);
    xy_array a;
    read_npy(v, in_files[i], &a);
    assert_int_equal(a.count, t.count);
    v->in[i] = malloc(sizeof(float) * t.count);
    assert_int_equal(xy_array_to_f32(&a, v->in[i], t.count, &err), XY_OK);
    xy_array_free(&a);
  }
  for (size_t i = 0; i < v->n_out; i++) {
    xy_tensor_info t;
    xy_model_output(v->model, i, &t);
    xy_array a;
    read_npy(v, out_files[i], &a);
    assert_int_equal(a.count, t.count);
    v->out_count[i] = t.count;
    v->ref[i] = malloc(sizeof(double) * t.count);
    assert_int_equal(xy_array_to_f64(&a, v->ref[i], t.count, &err), XY_OK);
    xy_array_free(&a);
  }
}

static void close_case(vec_case *v)
{
  for (size_t i = 0; i < v->n_in; i++)
    free(v->in[i]);
  for (size_t i = 0; i < v->n_out; i++)
    free(v->ref[i]);
  free(v->in);
  free(v->ref);
  free(v->out_count);
  xy_model_free(v->model);
  json_decref(v->manifest);
}

static void check_interpreter(const vec_case *v)
{
  double **din = calloc(v->n_in, sizeof *din), **dout = calloc(v->n_out, sizeof *dout);
  assert_true(din && dout);
  for (size_t i = 0; i < v->n_in; i++) {
    xy_tensor_info t;
    xy_model_input(v->model, i, &t);
    din[i] = malloc(sizeof(double) * t.count);
    for (size_t j = 0; j < t.count; j++)
      din[i][j] = v->in[i][j];
  }
  for (size_t i = 0; i < v->n_out; i++)
    dout[i] = malloc(sizeof(double) * v->out_count[i]);
  xy_error err;
  if (xy_model_interpret(v->model, (const double *const *)din, dout, &err))
    fail_msg("%s", err.message);
  for (size_t i = 0; i < v->n_out; i++) {
    double e = harness_scaled_error(dout[i], v->ref[i], v->out_count[i]);
    if (!(e <= 1e-10))
      fail_msg("interpreter output %zu: error %.3g above 1e-10", i, e);
    free(dout[i]);
  }
  for (size_t i = 0; i < v->n_in; i++)
    free(din[i]);
  free(din);
  free(dout);
}

static void check_compiled(const vec_case *v, xy_target target, const char *form, int64_t chunk)
{
  harness_case c = {.target = target, .form = form, .chunk = chunk};
  float **out = calloc(v->n_out, sizeof *out);
  assert_non_null(out);
  for (size_t i = 0; i < v->n_out; i++)
    out[i] = malloc(sizeof(float) * v->out_count[i]);
  char msg[8192], forms[256];
  if (harness_execute(&c, v->model, v->in, out, forms, sizeof forms, msg, sizeof msg))
    fail_msg("%s", msg);
  for (size_t i = 0; i < v->n_out; i++) {
    double e = harness_scaled_error_f32(out[i], v->ref[i], v->out_count[i]);
    print_message("  %-6s %-34s output %zu: error %.3g\n", target == XY_TARGET_C ? "C" : "OpenCL",
                  forms, i, e);
    if (!(e <= 1e-5))
      fail_msg("%s %s output %zu: error %.3g above 1e-5",
               target == XY_TARGET_C ? "C" : "OpenCL", forms, i, e);
    free(out[i]);
  }
  free(out);
}

static char *seq_spec(const vec_case *v)
{
  long long B = cfg_int(v, "B"), L = cfg_int(v, "L"), DK = cfg_int(v, "DK"), DV = cfg_int(v, "DV");
  long long JQ = cfg_int(v, "JQ"), JK = cfg_int(v, "JK"), JV = cfg_int(v, "JV");
  long long JT = cfg_int(v, "JT"), JO = cfg_int(v, "JO");
  static char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"vec\", \"batch\": %lld,\n"
           " \"graph\": {\"kind\": \"sequence\", \"length\": %lld},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [%lld, %lld, %lld, %lld]},\n"
           "  {\"name\": \"k\", \"shape\": [%lld, %lld, %lld, %lld]},\n"
           "  {\"name\": \"v\", \"shape\": [%lld, %lld, %lld, %lld]},\n"
           "  {\"name\": \"S\", \"shape\": [%lld, %lld, %lld, %lld, %lld]},\n"
           "  {\"name\": \"T\", \"shape\": [%lld, %lld, %lld, %lld]},\n"
           "  {\"name\": \"M\", \"shape\": [%lld, %lld, %lld, %lld, %lld]},\n"
           "  {\"name\": \"D\", \"shape\": [%lld, %lld, %lld, %lld, %lld, %lld]},\n"
           "  {\"name\": \"C0\", \"shape\": [%lld, %lld, %lld, %lld]}],\n"
           " \"layers\": [{\"op\": \"plstm_scan\", \"name\": \"scan\", \"qk_scale\": %.17g,\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
           "              \"M\": \"M\", \"D\": \"D\", \"C_initial\": \"C0\"},\n"
           "   \"outputs\": {\"out\": \"y\", \"C_final\": \"C_last\"}}],\n"
           " \"outputs\": [\"y\", \"C_last\"]}\n",
           B, L, B, L, DK, JQ, B, L, DK, JK, B, L, DV, JV, B, L, JT, JK, JV, B, L, JT, JT,
           B, L, JO, JQ, JT, B, L, JO, JQ, JK, JV, B, DK, DV, JT, cfg_real(v, "QK_scale"));
  return text;
}

static void core1d(const char *name)
{
  static const char *const ins[] = {"q.npy", "k.npy", "v.npy", "S.npy", "T.npy",
                                    "M.npy", "D.npy", "C_initial.npy"};
  static const char *const outs[] = {"out.npy", "last_C.npy"};
  vec_case v;
  open_case(&v, name);
  load_model(&v, "vec.json", seq_spec(&v), ins, outs);
  check_interpreter(&v);
  int64_t ref_chunk = cfg_int(&v, "chunk_size");
  int64_t chunks[] = {ref_chunk, 1, 3, 16};
  for (int t = 0; t < 2; t++) {
    xy_target target = t ? XY_TARGET_C : XY_TARGET_OPENCL;
    for (size_t i = 0; i < sizeof chunks / sizeof *chunks; i++)
      check_compiled(&v, target, "chunkwise", chunks[i]);
    check_compiled(&v, target, "recurrent", 0);
  }
  close_case(&v);
}

static void core1d_j1(void **state)
{
  (void)state;
  core1d("core1d_j1");
}

static void core1d_j4(void **state)
{
  (void)state;
  core1d("core1d_j4");
}

/* plstm_graph on a 12-node DAG, edges in the reference's order. graph_core (mode P): the
 * full line graph's arcs in the order the front end builds them must be the reference's.
 * graph_core_d (mode D): the pruned line graph is given explicitly, in the reference's arc
 * order (the pruning itself is tested in test_dag_prepare). */
static void graph_case(const char *name, bool explicit_arcs)
{
  static const char *const ins[] = {"q.npy", "k.npy", "v.npy", "source.npy", "transition.npy",
                                    "mark.npy", "direct.npy"};
  static const char *const outs[] = {"out.npy"};
  vec_case v;
  open_case(&v, name);
  char *edges_text = json_dumps(json_object_get(v.manifest, "edges"), JSON_COMPACT);
  char *arcs_text = json_dumps(json_object_get(v.manifest, "arcs"), JSON_COMPACT);
  assert_true(edges_text && arcs_text);
  char graph[4096];
  snprintf(graph, sizeof graph, "{\"nodes\": %lld, \"edges\": %s%s%s}\n",
           (long long)cfg_int(&v, "N"), edges_text, explicit_arcs ? ", \"arcs\": " : "",
           explicit_arcs ? arcs_text : "");
  free(edges_text);
  free(arcs_text);
  char *gpath = harness_write("graph_core.graph.json", graph);
  assert_non_null(gpath);
  free(gpath);
  long long H = cfg_int(&v, "H"), K = cfg_int(&v, "K"), V = cfg_int(&v, "V");
  char spec[4096];
  snprintf(spec, sizeof spec,
           "{\"xylem\": 1, \"name\": \"graph_core\", \"batch\": %lld,\n"
           " \"graph\": {\"kind\": \"dag\", \"file\": \"graph_core.graph.json\"},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"nodes\", %lld, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"nodes\", %lld, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"nodes\", %lld, 1]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", \"edges\", 1, 1, 1]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", \"arcs\", 1, 1]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", \"edges\", 1, 1, 1]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"nodes\", 1, 1, 1, 1]}],\n"
           " \"layers\": [{\"op\": \"plstm_scan\", \"name\": \"scan\",\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
           "              \"M\": \"M\", \"D\": \"D\"},\n"
           "   \"outputs\": {\"out\": \"y\"}}],\n"
           " \"outputs\": [\"y\"]}\n", H, K, K, V);
  load_model(&v, "graph_core.json", spec, ins, outs);

  /* The arcs the front end built (or read) are the reference's, in the same order. */
  const ir_dag *dag = &v.model->m->graphs[0].dag;
  json_t *arcs = json_object_get(v.manifest, "arcs");
  assert_int_equal((size_t)dag->n_arcs, json_array_size(arcs));
  for (size_t a = 0; a < json_array_size(arcs); a++) {
    json_t *pair = json_array_get(arcs, a);
    assert_int_equal(dag->arc_src[a], json_integer_value(json_array_get(pair, 0)));
    assert_int_equal(dag->arc_dst[a], json_integer_value(json_array_get(pair, 1)));
  }
  check_interpreter(&v);
  const char *forms[] = {"levels", "graph", "recurrent", "dense"};
  for (int t = 0; t < 2; t++)
    for (size_t f = 0; f < 4; f++)
      check_compiled(&v, t ? XY_TARGET_C : XY_TARGET_OPENCL, forms[f], 0);
  close_case(&v);
}

static void graph_core(void **state)
{
  (void)state;
  graph_case("graph_core", false);
}

static void graph_core_d(void **state)
{
  (void)state;
  graph_case("graph_core_d", true);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(core1d_j1),
    cmocka_unit_test(core1d_j4),
    cmocka_unit_test(graph_core),
    cmocka_unit_test(graph_core_d),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
