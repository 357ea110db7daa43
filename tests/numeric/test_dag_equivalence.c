/* test_dag_equivalence.c: spec plstm.md §7.2.8 on the compiled kernels. A chain written as
 * a DAG equals the 1D scan, and a grid written as a DAG equals the 2D scan: the sequence
 * and grid models' inputs are drawn at random, the float64 interpreter runs them, and
 * their gates are laid out on the DAG's edges and arcs for every DAG form on OpenCL and
 * C. The dense form is also compared with the levels form directly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static const char *const dag_forms[] = {"levels", "graph", "recurrent", "dense"};

typedef struct loaded {
  xy_model *model;
  size_t n_in;
  float **in;
  double **in64;
  size_t *count;
} loaded;

static void load(loaded *l, const char *spec_path)
{
  xy_load_options opt;
  xy_load_options_default(&opt);
  xy_error err;
  if (xy_model_load(spec_path, &opt, &l->model, &err))
    fail_msg("%s", err.message);
  l->n_in = xy_model_num_inputs(l->model);
  l->in = calloc(l->n_in, sizeof *l->in);
  l->in64 = calloc(l->n_in, sizeof *l->in64);
  l->count = calloc(l->n_in, sizeof *l->count);
  assert_true(l->in && l->in64 && l->count);
  for (size_t i = 0; i < l->n_in; i++) {
    xy_tensor_info info;
    xy_model_input(l->model, i, &info);
    l->count[i] = info.count;
    l->in[i] = calloc(info.count + 1, sizeof(float));
    l->in64[i] = calloc(info.count + 1, sizeof(double));
    assert_true(l->in[i] && l->in64[i]);
  }
}

static void unload(loaded *l)
{
  for (size_t i = 0; i < l->n_in; i++) {
    free(l->in[i]);
    free(l->in64[i]);
  }
  free(l->in);
  free(l->in64);
  free(l->count);
  xy_model_free(l->model);
}

/* The reference model's output on random inputs (its in[] keep the draws). */
static double *reference(loaded *ref, uint64_t seed, size_t *n_out)
{
  xy_model_random_inputs(ref->model, seed, ref->in);
  for (size_t i = 0; i < ref->n_in; i++)
    for (size_t j = 0; j < ref->count[i]; j++)
      ref->in64[i][j] = ref->in[i][j];
  xy_tensor_info out;
  xy_model_output(ref->model, 0, &out);
  double *y = malloc(sizeof(double) * (out.count + 1));
  assert_non_null(y);
  xy_error err;
  if (xy_model_interpret(ref->model, (const double *const *)ref->in64, &y, &err))
    fail_msg("%s", err.message);
  *n_out = out.count;
  return y;
}

/* Runs the DAG model (inputs already filled) in every form on both targets against y. */
static void every_form(const char *spec, const loaded *dag, const double *y, size_t n,
                       const char *what)
{
  float *out = malloc(sizeof(float) * (n + 1));
  double *levels = malloc(sizeof(double) * (n + 1));
  assert_true(out && levels);
  for (int t = 0; t < 2; t++)
    for (int f = 0; f < 4; f++) {
      harness_case c = {.spec = spec, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                        .form = dag_forms[f]};
      char forms[256], msg[8192];
      if (harness_execute(&c, dag->model, dag->in, &out, forms, sizeof forms, msg, sizeof msg))
        fail_msg("%s: %s", what, msg);
      double e = harness_scaled_error_f32(out, y, n);
      print_message("  %-6s %-24s %-22s error %.3g\n", t ? "C" : "OpenCL", forms, what, e);
      if (!(e <= 1e-5))
        fail_msg("%s (%s): error %.3g above 1e-5", what, forms, e);
      /* Dense equals level-synchronous, directly. */
      if (f == 0)
        for (size_t i = 0; i < n; i++)
          levels[i] = out[i];
      if (f == 3 && !(harness_scaled_error_f32(out, levels, n) <= 1e-5))
        fail_msg("%s: dense and levels differ by %.3g", what,
                 harness_scaled_error_f32(out, levels, n));
    }
  free(out);
  free(levels);
}

static char *scan_inputs(const char *shape_n, const char *shape_e, const char *shape_a,
                         int DK, int DV)
{
  static char text[2048];
  snprintf(text, sizeof text,
           "  {\"name\": \"q\", \"shape\": [\"batch\", %s, %d, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", %s, %d, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", %s, %d, 1]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", %s, 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", %s, 1, 1], \"range\": [-1, 1]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", %s, 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", %s, 1, 1, 1, 1], \"range\": [0, 1]}",
           shape_n, DK, shape_n, DK, shape_n, DV, shape_e, shape_a, shape_e, shape_n);
  return text;
}

static const char *scan_layer =
    " \"layers\": [{\"op\": \"plstm_scan\", \"name\": \"scan\", \"qk_scale\": 0.5,\n"
    "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
    "              \"M\": \"M\", \"D\": \"D\"},\n"
    "   \"outputs\": {\"out\": \"y\"}}],\n"
    " \"outputs\": [\"y\"]}\n";

/* §7.2.8: chain t -> t+1 of L nodes. Edge t carries the source of t and the mark of t+1;
 * the arc from edge t-1 into edge t is position t's transition. */
static void chain_equals_sequence(void **state)
{
  (void)state;
  enum { B = 3, L = 37, DK = 5, DV = 4 };
  char text[8192], graph[8192];
  int used = snprintf(graph, sizeof graph, "{\"nodes\": %d, \"edges\": [", L);
  for (int t = 0; t + 1 < L; t++)
    used += snprintf(graph + used, sizeof graph - (size_t)used, "%s[%d, %d]", t ? ", " : "", t,
                     t + 1);
  snprintf(graph + used, sizeof graph - (size_t)used, "]}\n");
  free(harness_write("chain.graph.json", graph));
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"seq\", \"batch\": %d,\n"
           " \"graph\": {\"kind\": \"sequence\", \"length\": %d},\n \"inputs\": [\n%s],\n%s",
           B, L, scan_inputs("\"length\"", "\"length\"", "\"length\"", DK, DV), scan_layer);
  char *seq_path = harness_write("seq.json", text);
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"chain\", \"batch\": %d,\n"
           " \"graph\": {\"kind\": \"dag\", \"file\": \"chain.graph.json\"},\n \"inputs\": [\n%s],\n%s",
           B, scan_inputs("\"nodes\"", "\"edges\"", "\"arcs\"", DK, DV), scan_layer);
  char *dag_path = harness_write("chain.json", text);
  loaded seq, dag;
  load(&seq, seq_path);
  load(&dag, dag_path);
  size_t n;
  double *y = reference(&seq, 11, &n);
  /* q k v D are per node in both; S, M per edge; T per arc. */
  for (int i = 0; i < 3; i++)
    memcpy(dag.in[i], seq.in[i], sizeof(float) * seq.count[i]);
  memcpy(dag.in[6], seq.in[6], sizeof(float) * seq.count[6]);
  for (int b = 0; b < B; b++) {
    for (int e = 0; e + 1 < L; e++) {
      dag.in[3][b * (L - 1) + e] = seq.in[3][b * L + e];
      dag.in[5][b * (L - 1) + e] = seq.in[5][b * L + e + 1];
    }
    for (int a = 0; a + 2 < L; a++)
      dag.in[4][b * (L - 2) + a] = seq.in[4][b * L + a + 1];
  }
  every_form(dag_path, &dag, y, n, "chain of 37 = 1D");
  free(y);
  unload(&seq);
  unload(&dag);
  free(seq_path);
  free(dag_path);
}

/* §7.2.8: an X x Y grid as a DAG. Cell (x, y) is node x Y + y; its r-edge goes to
 * (x+1, y), its d-edge to (x, y+1). At a cell the transitions are T_rl (l-edge in, r out),
 * T_ru (u in, r out), T_dl (l in, d out), T_du (u in, d out); M_l marks the edge from the
 * left, M_u the edge from above. */
static void grid_equals_2d(void **state)
{
  (void)state;
  enum { B = 2, X = 5, Y = 7, DK = 4, DV = 4 };
  int r_edge[X][Y], d_edge[X][Y], n_edges = 0;
  char graph[16384], text[8192];
  int used = snprintf(graph, sizeof graph, "{\"nodes\": %d, \"edges\": [", X * Y);
  for (int x = 0; x < X; x++)
    for (int y = 0; y < Y; y++) {
      r_edge[x][y] = d_edge[x][y] = -1;
      if (x + 1 < X) {
        used += snprintf(graph + used, sizeof graph - (size_t)used, "%s[%d, %d]",
                         n_edges ? ", " : "", x * Y + y, (x + 1) * Y + y);
        r_edge[x][y] = n_edges++;
      }
      if (y + 1 < Y) {
        used += snprintf(graph + used, sizeof graph - (size_t)used, "%s[%d, %d]",
                         n_edges ? ", " : "", x * Y + y, x * Y + y + 1);
        d_edge[x][y] = n_edges++;
      }
    }
  /* Arcs at each cell, listed with the 2D gate each one takes: 0 T_rl, 1 T_du, 2 T_dl,
   * 3 T_ru (the order of the 2D model's inputs). */
  int arc_cell[4 * X * Y], arc_kind[4 * X * Y], n_arcs = 0;
  used += snprintf(graph + used, sizeof graph - (size_t)used, "], \"arcs\": [");
  for (int x = 0; x < X; x++)
    for (int y = 0; y < Y; y++) {
      int in_l = x > 0 ? r_edge[x - 1][y] : -1, in_u = y > 0 ? d_edge[x][y - 1] : -1;
      int pairs[4][3] = {{in_l, r_edge[x][y], 0}, {in_u, d_edge[x][y], 1},
                         {in_l, d_edge[x][y], 2}, {in_u, r_edge[x][y], 3}};
      for (int k = 0; k < 4; k++)
        if (pairs[k][0] >= 0 && pairs[k][1] >= 0) {
          used += snprintf(graph + used, sizeof graph - (size_t)used, "%s[%d, %d]",
                           n_arcs ? ", " : "", pairs[k][0], pairs[k][1]);
          arc_cell[n_arcs] = x * Y + y;
          arc_kind[n_arcs++] = pairs[k][2];
        }
    }
  snprintf(graph + used, sizeof graph - (size_t)used, "]}\n");
  free(harness_write("grid.graph.json", graph));
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"grid\", \"batch\": %d,\n"
           " \"graph\": {\"kind\": \"grid2d\", \"rows\": %d, \"cols\": %d},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"rows\", \"cols\", %d, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"rows\", \"cols\", %d, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"rows\", \"cols\", %d, 1]},\n"
           "  {\"name\": \"S_r\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"S_d\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"T_rl\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1], \"range\": [-0.5, 0.5]},\n"
           "  {\"name\": \"T_du\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1], \"range\": [-0.5, 0.5]},\n"
           "  {\"name\": \"T_dl\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1], \"range\": [-0.5, 0.5]},\n"
           "  {\"name\": \"T_ru\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1], \"range\": [-0.5, 0.5]},\n"
           "  {\"name\": \"M_l\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"M_u\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"rows\", \"cols\", 1, 1, 1, 1], \"range\": [0, 1]}],\n"
           " \"layers\": [{\"op\": \"plstm_scan2d\", \"name\": \"scan\", \"qk_scale\": 0.5,\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S_r\": \"S_r\", \"S_d\": \"S_d\",\n"
           "              \"T_rl\": \"T_rl\", \"T_du\": \"T_du\", \"T_dl\": \"T_dl\", \"T_ru\": \"T_ru\",\n"
           "              \"M_l\": \"M_l\", \"M_u\": \"M_u\", \"D\": \"D\"},\n"
           "   \"outputs\": {\"out\": \"y\"}}],\n"
           " \"outputs\": [\"y\"]}\n", B, X, Y, DK, DK, DV);
  char *grid_path = harness_write("grid.json", text);
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"griddag\", \"batch\": %d,\n"
           " \"graph\": {\"kind\": \"dag\", \"file\": \"grid.graph.json\"},\n \"inputs\": [\n%s],\n%s",
           B, scan_inputs("\"nodes\"", "\"edges\"", "\"arcs\"", DK, DV), scan_layer);
  char *dag_path = harness_write("griddag.json", text);
  loaded grid, dag;
  load(&grid, grid_path);
  load(&dag, dag_path);
  size_t n;
  double *y = reference(&grid, 12, &n);
  enum { G_Q, G_K, G_V, G_SR, G_SD, G_TRL, G_TDU, G_TDL, G_TRU, G_ML, G_MU, G_D };
  for (int i = 0; i < 3; i++)
    memcpy(dag.in[i], grid.in[i], sizeof(float) * grid.count[i]);
  memcpy(dag.in[6], grid.in[G_D], sizeof(float) * grid.count[G_D]);
  for (int b = 0; b < B; b++) {
    for (int x = 0; x < X; x++)
      for (int y2 = 0; y2 < Y; y2++) {
        int cell = b * X * Y + x * Y + y2;
        if (r_edge[x][y2] >= 0) {
          dag.in[3][b * n_edges + r_edge[x][y2]] = grid.in[G_SR][cell];
          dag.in[5][b * n_edges + r_edge[x][y2]] = grid.in[G_ML][cell + Y]; /* read at x+1 */
        }
        if (d_edge[x][y2] >= 0) {
          dag.in[3][b * n_edges + d_edge[x][y2]] = grid.in[G_SD][cell];
          dag.in[5][b * n_edges + d_edge[x][y2]] = grid.in[G_MU][cell + 1]; /* read at y+1 */
        }
      }
    static const int kinds[4] = {G_TRL, G_TDU, G_TDL, G_TRU};
    for (int a = 0; a < n_arcs; a++)
      dag.in[4][b * n_arcs + a] = grid.in[kinds[arc_kind[a]]][b * X * Y + arc_cell[a]];
  }
  every_form(dag_path, &dag, y, n, "5x7 grid = 2D");
  free(y);
  unload(&grid);
  unload(&dag);
  free(grid_path);
  free(dag_path);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(chain_equals_sequence),
    cmocka_unit_test(grid_equals_2d),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
