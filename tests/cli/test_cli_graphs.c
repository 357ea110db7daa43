/* test_cli_graphs.c: DAG graph files as users meet them on the command line: `xylem graphs`
 * (deterministic from its seed, written whole or not at all, its options checked), bad
 * graph files (a dangling edge, features of the wrong length, a graph over the per-graph
 * node limit: file:line:col and exit 1), and a spec whose graph is dagified, reversed and
 * pruned, with an input from the file's node features that run, check and compile take
 * from the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli_run.h"
#include "harness.h"

static void expect_status(result *r, int status, const char *const *needles)
{
  if (r->status != status)
    fail_msg("exit status %d, expected %d; stderr:\n%s", r->status, status, r->err);
  for (; *needles; needles++)
    if (!strstr(r->err, *needles) && !strstr(r->out, *needles))
      fail_msg("the output lacks '%s':\nstdout:\n%s\nstderr:\n%s", *needles, r->out, r->err);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A DAG spec over graph_file with the given graph options; x comes from the file's node
 * features [batch, nodes, F] when f > 0. */
static char *dag_spec(const char *name, const char *graph_file, const char *options, int f)
{
  char x[256] = "";
  if (f > 0)
    snprintf(x, sizeof x, ",\n  {\"name\": \"x\", \"shape\": [\"batch\", \"nodes\", %d], "
             "\"from_graph\": \"node_features\"}", f);
  char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"batch\": 2,\n"
           " \"graph\": {\"kind\": \"dag\", \"file\": \"%s\"%s},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"nodes\", 4, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"nodes\", 4, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"nodes\", 2, 1]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", \"edges\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", \"arcs\", 1, 1], \"range\": [-0.5, 0.5]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", \"edges\", 1, 1, 1], \"range\": [0, 1]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"nodes\", 1, 1, 1, 1], \"range\": [0, 1]}%s],\n"
           " \"layers\": [{\"op\": \"plstm_scan\", \"inputs\": {\"q\": \"q\", \"k\": \"k\", "
           "\"v\": \"v\",\n"
           "   \"S\": \"S\", \"T\": \"T\", \"M\": \"M\", \"D\": \"D\"}, \"outputs\": "
           "{\"out\": \"y\"}}],\n"
           " \"outputs\": [\"y\"]}\n",
           graph_file, options, x);
  return harness_write(name, text);
}

/* ------------------------------------------------------------------ xylem graphs */

static void generator(void **state)
{
  (void)state;
  char *a = harness_write("gen_a.json", ""), *b = harness_write("gen_b.json", "");
  char *c = harness_write("gen_c.json", "");
  result r = xylem("graphs", "--count", "50", "--nodes", "10:60", "--extra", "1:3", "--seed",
                   "5", "--node-features", "9", "--edge-features", "4", "-o", a, NULL);
  expect_status(&r, 0, NEEDLES("wrote", "50 graphs of 10..60 nodes", "(seed 5)"));
  done(&r);
  r = xylem("graphs", "--count", "50", "--nodes", "10:60", "--extra", "1:3", "--seed", "5",
            "--node-features", "9", "--edge-features", "4", "-o", b, NULL);
  expect_status(&r, 0, NEEDLES("wrote"));
  done(&r);
  r = xylem("graphs", "--count", "50", "--nodes", "10:60", "--extra", "1:3", "--seed", "6",
            "--node-features", "9", "--edge-features", "4", "-o", c, NULL);
  expect_status(&r, 0, NEEDLES("wrote"));
  done(&r);
  char *ta = slurp(a), *tb = slurp(b), *tc = slurp(c);
  assert_true(strlen(ta) > 1000);
  assert_string_equal(ta, tb);
  assert_true(strcmp(ta, tc) != 0);
  free(ta);
  free(tb);
  free(tc);
  /* xylem reads what it wrote: features F = 9 feed an input; trees have n - 1 edges. */
  char *spec = dag_spec("gen.json", "gen_a.json", "", 9);
  xy_model *model = NULL;
  xy_error err;
  if (xy_model_load(spec, NULL, &model, &err))
    fail_msg("%s", err.message);
  xy_tensor_info t;
  xy_model_input(model, 7, &t);
  assert_string_equal(t.from_graph, "node_features");
  float *x = malloc(sizeof(float) * t.count);
  assert_non_null(x);
  assert_int_equal(xy_model_graph_input(model, 7, x), 1);
  double ones = 0;
  for (size_t i = 0; i < t.count; i++)
    ones += x[i];
  assert_true(ones == (double)(t.count / 9)); /* one-hot rows */
  free(x);
  xy_model_free(model);
  free(spec);
  r = xylem("graphs", "--count", "20", "--nodes", "7", "--seed", "1", "--undirected", "-o", c,
            NULL);
  expect_status(&r, 0, NEEDLES("wrote"));
  done(&r);
  spec = dag_spec("trees.json", "gen_c.json", "", 0);
  assert_int_equal(xy_model_load(spec, NULL, &model, &err), XY_OK);
  xy_model_input(model, 3, &t); /* S [batch, edges, 1, 1, 1] */
  assert_int_equal(t.shape[1], 20 * 6);
  xy_model_free(model);
  free(spec);
  free(a);
  free(b);
  free(c);
}

static void generator_errors(void **state)
{
  (void)state;
  char *out = harness_write("gen_bad.json", "");
  unlink(out);
  result r = xylem("graphs", "--count", "3", "--nodes", "10:60", NULL);
  expect_status(&r, 2, NEEDLES("say where to write: -o FILE.json"));
  done(&r);
  r = xylem("graphs", "--count", "3", "--nodes", "9:4", "-o", out, NULL);
  expect_status(&r, 2, NEEDLES("nodes 9:4: need 1 <= MIN <= MAX"));
  done(&r);
  r = xylem("graphs", "--count", "3", "--nodes", "x:4", "-o", out, NULL);
  expect_status(&r, 2, NEEDLES("bad value 'x:4'"));
  done(&r);
  r = xylem("graphs", "--count", "3", "--nodes", "4", "--colour", "red", "-o", out, NULL);
  expect_status(&r, 2, NEEDLES("unknown option '--colour'"));
  done(&r);
  r = xylem("graphs", "--count", "2000000", "--nodes", "60", "-o", out, NULL);
  expect_status(&r, 1, NEEDLES("could pass the graph file limits"));
  done(&r);
  assert_int_not_equal(access(out, F_OK), 0);
  /* A folder that does not exist: nothing is left behind, the message names the file. */
  r = xylem("graphs", "--count", "3", "--nodes", "4", "-o", "/nonexistent-xylem/g.json", NULL);
  expect_status(&r, 1, NEEDLES("/nonexistent-xylem/g.json"));
  done(&r);
  r = xylem("graphs", "--help", NULL);
  expect_status(&r, 0, NEEDLES("--extra MIN:MAX"));
  done(&r);
  r = xylem("--help", NULL);
  expect_status(&r, 0, NEEDLES("graphs"));
  done(&r);
  free(out);
}

/* ------------------------------------------------------------------ bad graph files */

static void bad_graph_files(void **state)
{
  (void)state;
  struct {
    const char *graph;
    const char *const *needles;
  } cases[] = {
    {"{\"nodes\": 3,\n \"edges\": [[0, 1], [1, 3]]}\n",
     NEEDLES("bad.graph.json:2:24: edges[1][1]: node id 3 is out of range: the graph has 3 "
             "nodes (0 to 2)")},
    {"{\"graphs\": [{\"nodes\": 2, \"edges\": [[0, 1]], \"node_features\": [[1], [2]]},\n"
     " {\"nodes\": 3, \"edges\": [[0, 1]], \"node_features\": [[1], [2]]}]}\n",
     NEEDLES("bad.graph.json:2:51: graphs[1].node_features: node_features has 2 rows; the "
             "graph has 3 nodes")},
    {"{\"nodes\": 2, \"edges\": [[0, 1]],\n \"edge_features\": [[1, 2], [3]]}\n",
     NEEDLES("bad.graph.json:2:19: edge_features: edge_features has 2 rows; the graph has 1 "
             "edges")},
    {"{\"nodes\": 2, \"edges\": [[0, 1]],\n \"node_features\": [[1, 2], [3]]}\n",
     NEEDLES("bad.graph.json:2:28: node_features[1]: the row has 1 features; the file's "
             "node_features have 2 (as at node_features[0])")},
    {"{\"nodes\": 4194305, \"edges\": []}\n",
     NEEDLES("bad.graph.json:1:11: nodes: the graph has 4194305 nodes, more than the limit of "
             "4194304 per graph")},
    {"{\"nodes\": 3, \"directed\": false, \"edges\": [[0, 1], [1, 2], [2, 0], [1, 0]]}\n",
     NEEDLES("bad.graph.json:1:67: edges[3]: duplicate bond between nodes 0 and 1")},
  };
  char *spec = dag_spec("bad.json", "bad.graph.json", "", 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *graph = harness_write("bad.graph.json", cases[i].graph);
    result r = xylem("check", spec, "--target", "c", NULL);
    expect_status(&r, 1, cases[i].needles);
    done(&r);
    free(graph);
  }
  free(spec);
}

/* ------------------------------------------------------------------ from_graph inputs */

static void graph_options_and_features(void **state)
{
  (void)state;
  char *graph = harness_write("mol.graph.json", "");
  result r = xylem("graphs", "--count", "12", "--nodes", "3:9", "--extra", "1:2", "--seed", "3",
                   "--undirected", "--node-features", "5", "-o", graph, NULL);
  expect_status(&r, 0, NEEDLES("wrote"));
  done(&r);
  char *spec = dag_spec("mol.json", "mol.graph.json",
                        ", \"reverse\": true, \"line_graph\": \"multitree\"", 5);
  char *pkg = harness_write("mol_pkg", "");
  unlink(pkg);
  r = xylem("compile", spec, "--dump-after", "prepare_graphs", "--target", "c", "-o", pkg, NULL);
  expect_status(&r, 0, NEEDLES("reversed multitree node_features=5", "slots out=", "arc 0: "));
  done(&r);
  free(pkg);
  r = xylem("check", spec, "--target", "c", "--seed", "4", NULL);
  expect_status(&r, 0, NEEDLES("PASS"));
  done(&r);
  /* run: every input but x from files; x from the graph file. */
  char *dir = harness_write("mol_in", "");
  unlink(dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  xy_model *model = NULL;
  xy_error err;
  assert_int_equal(xy_model_load(spec, NULL, &model, &err), XY_OK);
  size_t n = xy_model_num_inputs(model);
  float *vals[16];
  xy_tensor_info t;
  for (size_t i = 0; i < n; i++) {
    xy_model_input(model, i, &t);
    vals[i] = malloc(sizeof(float) * (t.count ? t.count : 1));
  }
  xy_model_random_inputs(model, 3, vals);
  for (size_t i = 0; i < n; i++) {
    xy_model_input(model, i, &t);
    if (!t.from_graph) {
      xy_array a = {.dtype = XY_F32, .rank = t.rank, .count = t.count, .data = vals[i]};
      memcpy(a.shape, t.shape, sizeof a.shape);
      char path[1024];
      snprintf(path, sizeof path, "%s/%s.npy", dir, t.name);
      assert_int_equal(xy_npy_write(path, &a, &err), XY_OK);
    }
    free(vals[i]);
  }
  xy_model_free(model);
  char out[1100];
  snprintf(out, sizeof out, "%s/out", dir);
  r = xylem("run", spec, "--inputs", dir, "-o", out, "--target", "c", NULL);
  expect_status(&r, 0, NEEDLES("y: wrote"));
  done(&r);
  /* A from_graph input whose shape does not fit the file's features. */
  free(spec);
  spec = dag_spec("mol_bad.json", "mol.graph.json", "", 4);
  r = xylem("check", spec, NULL);
  expect_status(&r, 1, NEEDLES("mol_bad.json:", "inputs[7].shape: an input from the graph's "
                               "node_features has shape [\"batch\", \"nodes\", 5]"));
  done(&r);
  free(spec);
  free(graph);
  free(dir);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(generator),
    cmocka_unit_test(generator_errors),
    cmocka_unit_test(bad_graph_files),
    cmocka_unit_test(graph_options_and_features),
  };
  return cmocka_run_group_tests_name("cli_graphs", tests, NULL, NULL);
}
