/* test_differential.c: every form on both targets against the float64 interpreter, on fresh
 * random inputs: sequences of ragged lengths and every chunk size, J > 1, random DAGs of
 * 1-300 nodes and batches of many graphs. Chunk sizes must not change results beyond float
 * reassociation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static const double TOL = 1e-5;

static char *seq_spec(const char *file, int B, int L, int DK, int DV, int JQ, int JK, int JV,
                      int JT, int JO, double t_range)
{
  char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"seq\", \"batch\": %d,\n"
           " \"graph\": {\"kind\": \"sequence\", \"length\": %d},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"length\", %d, %d]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"length\", %d, %d]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"length\", %d, %d]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", \"length\", %d, %d, %d], \"range\": [0, 1]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", \"length\", %d, %d], \"range\": [%g, %g]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", \"length\", %d, %d, %d], \"range\": [0, 1]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"length\", %d, %d, %d, %d], \"range\": [0, 1]},\n"
           "  {\"name\": \"C0\", \"shape\": [\"batch\", %d, %d, %d]}],\n"
           " \"layers\": [{\"op\": \"plstm_scan\", \"name\": \"scan\",\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
           "              \"M\": \"M\", \"D\": \"D\", \"C_initial\": \"C0\"},\n"
           "   \"outputs\": {\"out\": \"y\", \"C_final\": \"C_last\"}}],\n"
           " \"outputs\": [\"y\", \"C_last\"]}\n",
           B, L, DK, JQ, DK, JK, DV, JV, JT, JK, JV, JT, JT, -t_range, t_range, JO, JQ, JT, JO,
           JQ, JK, JV, DK, DV, JT);
  return harness_write(file, text);
}

static void expect_close(const harness_case *c, const char *what)
{
  harness_result r;
  if (harness_run(c, &r))
    fail_msg("%s: %s", what, r.message);
  print_message("  %-8s %-34s %-26s worst rel err %.3g\n",
                c->target == XY_TARGET_C ? "C" : "OpenCL", r.forms, what, r.worst);
  if (!(r.worst <= TOL))
    fail_msg("%s (%s): relative error %.3g above %g", what, r.forms, r.worst, TOL);
}

/* Lengths 1, 7, 64, 1000 with chunk sizes 1, 2, 8, 64 and the recurrent form. */
static void sequences(void **state)
{
  (void)state;
  static const int lengths[] = {1, 7, 64, 1000};
  static const int64_t chunks[] = {1, 2, 8, 64};
  for (size_t l = 0; l < 4; l++) {
    char *spec = seq_spec("seq.json", 2, lengths[l], 8, 8, 1, 1, 1, 1, 1, 1.0);
    assert_non_null(spec);
    for (int t = 0; t < 2; t++) {
      harness_case c = {.spec = spec, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                        .seed = 100 + l};
      char what[64];
      for (size_t k = 0; k < 4; k++) {
        c.form = "chunkwise";
        c.chunk = chunks[k];
        snprintf(what, sizeof what, "L=%d chunk=%lld", lengths[l], (long long)chunks[k]);
        expect_close(&c, what);
      }
      c.form = "recurrent";
      c.chunk = 0;
      snprintf(what, sizeof what, "L=%d", lengths[l]);
      expect_close(&c, what);
      c.form = NULL;
      snprintf(what, sizeof what, "L=%d auto", lengths[l]);
      expect_close(&c, what);
    }
    free(spec);
  }
}

/* State-tracking dimensions (spec §7.2.1): (1,1,4,4,4) and (2,1,2,3,2), small T. */
static void state_tracking_dims(void **state)
{
  (void)state;
  static const int J[2][5] = {{1, 1, 4, 4, 4}, {2, 1, 2, 3, 2}};
  static const int lengths[] = {7, 33};
  static const int64_t chunks[] = {1, 4, 16};
  for (int j = 0; j < 2; j++)
    for (size_t l = 0; l < 2; l++) {
      char *spec = seq_spec("seqj.json", 2, lengths[l], 4, 6, J[j][0], J[j][1], J[j][2],
                            J[j][3], J[j][4], 0.4);
      assert_non_null(spec);
      for (int t = 0; t < 2; t++) {
        harness_case c = {.spec = spec, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                          .seed = 7 + (uint64_t)j};
        char what[96];
        for (size_t k = 0; k < 3; k++) {
          c.form = "chunkwise";
          c.chunk = chunks[k];
          snprintf(what, sizeof what, "J=(%d,%d,%d,%d,%d) L=%d chunk=%lld", J[j][0], J[j][1],
                   J[j][2], J[j][3], J[j][4], lengths[l], (long long)chunks[k]);
          expect_close(&c, what);
        }
        c.form = "recurrent";
        c.chunk = 0;
        snprintf(what, sizeof what, "J=(%d,%d,%d,%d,%d) L=%d", J[j][0], J[j][1], J[j][2],
                 J[j][3], J[j][4], lengths[l]);
        expect_close(&c, what);
      }
      free(spec);
    }
}

/* The chunk size is pure schedule: outputs of chunk 1, 8 and 64 agree to 2e-6. */
static void chunk_size_does_not_change_results(void **state)
{
  (void)state;
  char *spec = seq_spec("chunks.json", 2, 300, 16, 16, 1, 1, 1, 1, 1, 1.0);
  assert_non_null(spec);
  xy_model *model = NULL;
  xy_error err;
  if (xy_model_load(spec, NULL, &model, &err))
    fail_msg("%s", err.message);
  size_t n_in = xy_model_num_inputs(model);
  float *in[16], *out[3][2];
  xy_tensor_info t;
  for (size_t i = 0; i < n_in; i++) {
    xy_model_input(model, i, &t);
    in[i] = malloc(sizeof(float) * t.count);
  }
  xy_model_random_inputs(model, 42, in);
  static const int64_t chunks[] = {1, 8, 64};
  for (int k = 0; k < 3; k++) {
    for (size_t o = 0; o < 2; o++) {
      xy_model_output(model, o, &t);
      out[k][o] = malloc(sizeof(float) * t.count);
    }
    harness_case c = {.spec = spec, .target = XY_TARGET_OPENCL, .form = "chunkwise",
                      .chunk = chunks[k]};
    char msg[8192];
    if (harness_execute(&c, model, in, out[k], NULL, 0, msg, sizeof msg))
      fail_msg("%s", msg);
  }
  for (size_t o = 0; o < 2; o++) {
    xy_model_output(model, o, &t);
    double scale = 0, err_max = 0;
    for (size_t j = 0; j < t.count; j++)
      scale = fabs(out[0][o][j]) > scale ? fabs(out[0][o][j]) : scale;
    for (int k = 1; k < 3; k++)
      for (size_t j = 0; j < t.count; j++) {
        double d = fabs((double)out[k][o][j] - out[0][o][j]);
        err_max = d > err_max || isnan(d) ? d : err_max;
      }
    print_message("  output %zu: chunk 1 vs 8 vs 64 differ by %.3g relative\n", o, err_max / scale);
    assert_true(err_max <= 2e-6 * scale);
  }
  for (int k = 0; k < 3; k++)
    for (size_t o = 0; o < 2; o++)
      free(out[k][o]);
  for (size_t i = 0; i < n_in; i++)
    free(in[i]);
  xy_model_free(model);
  free(spec);
}

/* Schedules (vector width, register rows, work-group size) as a CPU and a GPU would get
 * them, and scalar: every one computes the same function. */
static void schedules(void **state)
{
  (void)state;
  static const int knobs[][3] = {{1, 1, 64}, {2, 1, 8}, {4, 2, 128}, {16, 4, 4}, {8, 8, 1}};
  char *spec = seq_spec("sched.json", 2, 77, 16, 16, 1, 1, 1, 1, 1, 1.0);
  assert_non_null(spec);
  for (int t = 0; t < 2; t++)
    for (size_t k = 0; k < sizeof knobs / sizeof knobs[0]; k++) {
      harness_case c = {.spec = spec, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                        .lanes = knobs[k][0], .rows = knobs[k][1], .wg = knobs[k][2],
                        .seed = 11};
      char what[96];
      for (int f = 0; f < 2; f++) {
        c.form = f ? "recurrent" : "chunkwise";
        c.chunk = f ? 0 : 16;
        snprintf(what, sizeof what, "lanes=%d rows=%d wg=%d", knobs[k][0], knobs[k][1], knobs[k][2]);
        expect_close(&c, what);
      }
    }
  free(spec);
}

/* ------------------------------------------------------------------ DAGs */

static uint64_t lcg(uint64_t *s)
{
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

/* n_graphs random DAGs of lo..hi nodes: a random tree plus 0-2 extra forward edges per
 * node, edges in random order. */
static char *dag_file(const char *name, int n_graphs, int lo, int hi, uint64_t seed)
{
  size_t cap = 1 << 20, used = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  used += (size_t)snprintf(text + used, cap - used, "{\"graphs\": [\n");
  for (int g = 0; g < n_graphs; g++) {
    int n = lo + (int)(lcg(&seed) % (uint64_t)(hi - lo + 1));
    used += (size_t)snprintf(text + used, cap - used, "%s{\"nodes\": %d, \"edges\": [", g ? ",\n" : "", n);
    int first = 1;
    for (int v = 1; v < n; v++) {
      int parents[3], np = 0;
      parents[np++] = (int)(lcg(&seed) % (uint64_t)v);
      int extra = (int)(lcg(&seed) % 3);
      for (int e = 0; e < extra; e++) {
        int u = (int)(lcg(&seed) % (uint64_t)v);
        bool dup = false;
        for (int i = 0; i < np; i++)
          dup |= parents[i] == u;
        if (!dup)
          parents[np++] = u;
      }
      for (int i = 0; i < np; i++) {
        used += (size_t)snprintf(text + used, cap - used, "%s[%d,%d]", first ? "" : ",", parents[i], v);
        first = 0;
      }
    }
    used += (size_t)snprintf(text + used, cap - used, "]}");
    assert_true(used < cap - 4096);
  }
  snprintf(text + used, cap - used, "\n]}\n");
  char *path = harness_write(name, text);
  free(text);
  return path;
}

static char *dag_spec(const char *file, const char *graph_file, int B, int DK, int DV)
{
  char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"dag\", \"batch\": %d,\n"
           " \"graph\": {\"kind\": \"dag\", \"file\": \"%s\"},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"nodes\", %d, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"nodes\", %d, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"nodes\", %d, 1]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", \"edges\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", \"arcs\", 1, 1], \"range\": [-0.3, 0.3]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", \"edges\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"nodes\", 1, 1, 1, 1], \"range\": [0, 1]}],\n"
           " \"layers\": [{\"op\": \"plstm_scan\", \"name\": \"scan\",\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
           "              \"M\": \"M\", \"D\": \"D\"},\n"
           "   \"outputs\": {\"out\": \"y\"}}],\n"
           " \"outputs\": [\"y\"]}\n", B, graph_file, DK, DK, DV);
  return harness_write(file, text);
}

static void dag_forms(const char *spec, const char *what, uint64_t seed)
{
  static const char *const forms[] = {"levels", "graph", "recurrent", "dense"};
  for (int t = 0; t < 2; t++)
    for (int f = 0; f < 4; f++) {
      harness_case c = {.spec = spec, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                        .form = forms[f], .seed = seed, .lanes = f == 1 ? 1 : 0};
      expect_close(&c, what);
    }
}

/* Single random DAGs of 1, 2, 17 and 300 nodes; the last again with DK = DV = 32, whose
 * edge states (~600 x 32 x 32 floats) exceed local memory on every device, so the graph
 * and recurrent forms keep them in global slots. */
static void random_dags(void **state)
{
  (void)state;
  static const int sizes[] = {1, 2, 17, 300, 300}, dims[] = {6, 6, 6, 6, 32};
  for (int i = 0; i < 5; i++) {
    char *g = dag_file("one.graph.json", 1, sizes[i], sizes[i], 1000 + (uint64_t)i);
    char *spec = dag_spec("one.json", "one.graph.json", 2, dims[i], dims[i] - 1 + (i < 4 ? 0 : 1));
    assert_true(g && spec);
    char what[64];
    snprintf(what, sizeof what, "DAG of %d nodes, DK %d", sizes[i], dims[i]);
    dag_forms(spec, what, 200 + (uint64_t)i);
    free(g);
    free(spec);
  }
}

/* A batch of 40 graphs of 1-30 nodes in one file, with batch (heads) 3. */
static void batches_of_graphs(void **state)
{
  (void)state;
  char *g = dag_file("many.graph.json", 40, 1, 30, 77);
  char *spec = dag_spec("many.json", "many.graph.json", 3, 8, 8);
  assert_true(g && spec);
  dag_forms(spec, "40 graphs of 1-30 nodes", 5);
  harness_case c = {.spec = spec, .target = XY_TARGET_OPENCL, .seed = 9};
  expect_close(&c, "40 graphs, auto form");
  free(g);
  free(spec);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sequences),
    cmocka_unit_test(state_tracking_dims),
    cmocka_unit_test(chunk_size_does_not_change_results),
    cmocka_unit_test(schedules),
    cmocka_unit_test(random_dags),
    cmocka_unit_test(batches_of_graphs),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
