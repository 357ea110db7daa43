/* test_dag.c: DAG graph files: validation errors (with file, line:col, JSON path and
 * cause), limits, concatenation of many graphs, and the default line-graph arcs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_test.h"

static void load_ok(const char *path, const xy_limits *limits, ir_dag *d)
{
  xy_error err;
  int rc = fe_load_dag(path, limits, d, &err);
  if (rc)
    fail_msg("loading %s failed (%d):\n%s", path, rc, err.message);
}

static void expect_ids(const int64_t *got, const int64_t *want, int64_t n, const char *what)
{
  for (int64_t i = 0; i < n; i++)
    if (got[i] != want[i])
      fail_msg("%s[%lld] is %lld, expected %lld", what, (long long)i, (long long)got[i],
               (long long)want[i]);
}

/* ------------------------------------------------------------------ good files */

/* The default arcs are the full line graph ordered by (p, e): exactly the arcs of the
 * reference's graph_core test vector (vectors/plstm/graph_core/manifest.json, "arcs"), whose
 * "edges" fixtures/graph_core.graph.json copies. */
static void default_arcs_match_graph_core(void **state)
{
  (void)state;
  static const int64_t arcs[][2] = {
    {0, 4}, {0, 5}, {0, 6}, {4, 7}, {4, 8}, {4, 9}, {4, 10}, {4, 11},
    {4, 12}, {7, 13}, {8, 14}, {8, 15}, {8, 16}, {9, 17}, {9, 18}, {9, 19},
  };
  ir_dag d;
  load_ok(fixture("graph_core.graph.json"), NULL, &d);
  assert_int_equal(d.n_graphs, 1);
  assert_int_equal(d.n_nodes, 12);
  assert_int_equal(d.n_edges, 20);
  assert_int_equal(d.n_arcs, XY_ARRAY_LEN(arcs));
  for (size_t a = 0; a < XY_ARRAY_LEN(arcs); a++) {
    assert_int_equal(d.arc_src[a], arcs[a][0]);
    assert_int_equal(d.arc_dst[a], arcs[a][1]);
  }
  assert_int_equal(d.tail[19], 5);
  assert_int_equal(d.head[19], 7);
  assert_int_equal(d.arc_start[1], 16);
  ir_dag_free(&d);
}

static void many_graphs_concatenated(void **state)
{
  (void)state;
  ir_dag d;
  load_ok(fixture("many.graph.json"), NULL, &d);
  assert_int_equal(d.n_graphs, 5);
  assert_int_equal(d.n_nodes, 13);
  assert_int_equal(d.n_edges, 8);
  assert_int_equal(d.n_arcs, 3);
  expect_ids(d.node_start, (int64_t[]){0, 2, 3, 7, 10, 13}, 6, "node_start");
  expect_ids(d.edge_start, (int64_t[]){0, 1, 1, 4, 6, 8}, 6, "edge_start");
  expect_ids(d.arc_start, (int64_t[]){0, 0, 0, 2, 2, 3}, 6, "arc_start");
  expect_ids(d.tail, (int64_t[]){0, 5, 3, 4, 7, 8, 11, 10}, 8, "tail");
  expect_ids(d.head, (int64_t[]){1, 6, 5, 5, 8, 9, 12, 11}, 8, "head");
  /* graph 2: line graph (1,0), (2,0); graph 3: "arcs": [] ; graph 4: given [1, 0]. */
  expect_ids(d.arc_src, (int64_t[]){2, 3, 7}, 3, "arc_src");
  expect_ids(d.arc_dst, (int64_t[]){1, 1, 6}, 3, "arc_dst");
  ir_dag_free(&d);
}

/* A long chain: every pass is iterative, so size costs time, not stack. */
static void big_chain(void **state)
{
  (void)state;
  enum { N = 200000 };
  size_t cap = (size_t)N * 24 + 64;
  char *text = malloc(cap);
  assert_non_null(text);
  size_t len = (size_t)snprintf(text, cap, "{\"nodes\": %d, \"edges\": [", N);
  for (int i = 0; i + 1 < N; i++)
    len += (size_t)snprintf(text + len, cap - len, "%s[%d, %d]", i ? ", " : "", i, i + 1);
  snprintf(text + len, cap - len, "]}\n");
  ir_dag d;
  load_ok(write_tmp("chain.graph.json", text), NULL, &d);
  assert_int_equal(d.n_nodes, N);
  assert_int_equal(d.n_edges, N - 1);
  assert_int_equal(d.n_arcs, N - 2);
  assert_int_equal(d.arc_src[N - 3], N - 3);
  assert_int_equal(d.arc_dst[N - 3], N - 2);
  ir_dag_free(&d);
  /* Close it into one huge cycle: the message lists its start and end. */
  snprintf(text + len, cap - len, ", [%d, 0]]}\n", N - 1);
  expect_dag_error(write_tmp("ring.graph.json", text), NULL, XY_E_GRAPH,
                   NEEDLES("ring.graph.json:1:", "edges[199999]: cycle 0 -> 1 -> 2",
                           "(200000 nodes in all) -> 199995 -> 199996", "199999 -> 0\n"));
  free(text);
}

/* ------------------------------------------------------------------ bad files */

static void cycle(void **state)
{
  (void)state;
  const char *path = write_tmp("cyc.graph.json",
                               "{\"graphs\": [{\"nodes\": 2, \"edges\": [[0, 1]]},\n"
                               " {\"nodes\": 8, \"edges\": [[0, 2], [2, 5], [5, 7], [7, 2], "
                               "[1, 0]]}]}\n");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("cyc.graph.json:2:49: graphs[1].edges[3]: cycle 2 -> 5 -> 7 -> 2"));
}

static void node_id_out_of_range(void **state)
{
  (void)state;
  const char *path = write_tmp("range.graph.json", "{\"nodes\": 3,\n \"edges\": [[0, 1], [1, 3]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("range.graph.json:2:24: edges[1][1]: node id 3 is out of range: the "
                           "graph has 3 nodes (0 to 2)"));
}

static void node_id_negative_or_not_integer(void **state)
{
  (void)state;
  const char *path = write_tmp("neg.graph.json", "{\"nodes\": 3,\n \"edges\": [[0, 1], [-1, 2]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("neg.graph.json:2:21: edges[1][0]: node id -1 is negative"));
  path = write_tmp("str.graph.json", "{\"nodes\": 3,\n \"edges\": [[0, 1], [1, \"2\"]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("str.graph.json:2:24: edges[1][1]: node id must be an integer, not a "
                           "string"));
  path = write_tmp("real.graph.json", "{\"nodes\": 3,\n \"edges\": [[0, 1], [1.0, 2]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("real.graph.json:2:21: edges[1][0]: node id must be an integer, not a "
                           "real number"));
  path = write_tmp("pair.graph.json", "{\"nodes\": 3,\n \"edges\": [[0, 1], [1]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("pair.graph.json:2:20: edges[1]: must be a pair [tail, head]"));
  path = write_tmp("nodes.graph.json", "{\"nodes\": -2, \"edges\": []}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("nodes.graph.json:1:11: nodes: must be at least 1, not -2"));
}

static void self_loop(void **state)
{
  (void)state;
  const char *path = write_tmp("loop.graph.json", "{\"nodes\": 3,\n \"edges\": [[0, 1], [2, 2]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("loop.graph.json:2:20: edges[1]: self-loop: edge from node 2 to itself"));
}

static void duplicate_edge(void **state)
{
  (void)state;
  const char *path = write_tmp("dupe.graph.json",
                               "{\"nodes\": 3,\n \"edges\": [[0, 1], [1, 2], [0, 1]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("dupe.graph.json:2:28: edges[2]: duplicate edge 0 -> 1 (the same as "
                           "edges[0])"));
}

static void empty_graph(void **state)
{
  (void)state;
  const char *path = write_tmp("empty.graph.json",
                               "{\"graphs\": [{\"nodes\": 1, \"edges\": []},\n"
                               " {\"nodes\": 0, \"edges\": []}]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("empty.graph.json:2:12: graphs[1].nodes: empty graph"));
}

static void empty_graphs_list(void **state)
{
  (void)state;
  const char *path = write_tmp("none.graph.json", "{\"graphs\": []}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("none.graph.json:1:12: graphs: empty graphs list"));
}

static void bad_arcs(void **state)
{
  (void)state;
  const char *path = write_tmp("arc.graph.json",
                               "{\"nodes\": 4,\n \"edges\": [[0, 1], [2, 3]],\n \"arcs\": [[0, 1]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("arc.graph.json:3:11: arcs[0]: arc from edges[0] to edges[1]: the "
                           "edges do not meet (edge 0 ends at node 1, edge 1 starts at node 2)"));
  path = write_tmp("arc2.graph.json",
                   "{\"nodes\": 3,\n \"edges\": [[0, 1], [1, 2]],\n \"arcs\": [[0, 1], [0, 1]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("arc2.graph.json:3:19: arcs[1]: duplicate arc 0 -> 1 (the same as "
                           "arcs[0])"));
  path = write_tmp("arc3.graph.json",
                   "{\"nodes\": 3,\n \"edges\": [[0, 1], [1, 2]],\n \"arcs\": [[0, 5]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("arc3.graph.json:3:15: arcs[0][1]: edge index 5 is out of range: the "
                           "graph has 2 edges (0 to 1)"));
}

static void schema_errors(void **state)
{
  (void)state;
  const char *path = write_tmp("key.graph.json", "{\"nodes\": 2, \"edge\": [[0, 1]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("key.graph.json:1:14: edge: unknown key 'edge' at the top level; "
                           "expected one of: nodes, edges, arcs"));
  path = write_tmp("noedges.graph.json", "{\"nodes\": 2}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("noedges.graph.json:1:1: missing required key 'edges'"));
  path = write_tmp("array.graph.json", "[1]");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("array.graph.json:1:1: a graph file holds an object"));
  path = write_tmp("bad.graph.json", "{\"nodes\": 2,\n \"edges\": [[0, 1],]}");
  expect_dag_error(path, NULL, XY_E_PARSE,
                   NEEDLES("bad.graph.json:2:19: edges[1]: unexpected token near ']'"));
  expect_dag_error(FE_TMPDIR "/absent.graph.json", NULL, XY_E_IO,
                   NEEDLES("absent.graph.json: cannot open"));
}

static void limits_exceeded(void **state)
{
  (void)state;
  const char *many = fixture("many.graph.json");
  xy_limits lim;
  xy_limits_default(&lim);
  lim.max_graphs = 2;
  expect_dag_error(many, &lim, XY_E_LIMIT,
                   NEEDLES("many.graph.json:1:12: graphs: 5 graphs are more than the limit of 2"));
  xy_limits_default(&lim);
  lim.max_nodes = 6;
  expect_dag_error(many, &lim, XY_E_LIMIT,
                   NEEDLES("many.graph.json:4:13: graphs[2].nodes: this brings the file to 7 "
                           "nodes, more than the limit of 6"));
  xy_limits_default(&lim);
  lim.max_edges = 3;
  expect_dag_error(many, &lim, XY_E_LIMIT,
                   NEEDLES("many.graph.json:4:25: graphs[2].edges: this brings the file to 4 "
                           "edges, more than the limit of 3"));
  xy_limits_default(&lim);
  lim.max_arcs = 2;
  expect_dag_error(many, &lim, XY_E_LIMIT,
                   NEEDLES("many.graph.json:6:3: graphs[4]: with this graph's 1 arcs the file "
                           "has more than the limit of 2 arcs"));
  lim.max_arcs = 10;
  expect_dag_error(fixture("graph_core.graph.json"), &lim, XY_E_LIMIT,
                   NEEDLES("graph_core.graph.json:1:1: with this graph's 16 arcs"));
  /* Counted before parsing: 20 edge arrays cannot fit limits of 1 graph, 1 node, 4 edges
   * and 4 arcs (the feature rows of 1 node and 4 edges included). */
  xy_limits_default(&lim);
  lim.max_graphs = 1;
  lim.max_nodes = 1;
  lim.max_edges = 4;
  lim.max_arcs = 4;
  expect_dag_error(fixture("graph_core.graph.json"), &lim, XY_E_LIMIT,
                   NEEDLES("graph_core.graph.json: the file holds more than 17 arrays"));
  /* One graph bigger than the per-graph limit, though the file's total is within its own. */
  xy_limits_default(&lim);
  lim.max_graph_nodes = 3;
  expect_dag_error(many, &lim, XY_E_LIMIT,
                   NEEDLES("many.graph.json:4:13: graphs[2].nodes: the graph has 4 nodes, more "
                           "than the limit of 3 per graph"));
  xy_limits_default(&lim);
  lim.max_file_bytes = 16;
  expect_dag_error(many, &lim, XY_E_LIMIT,
                   NEEDLES("many.graph.json: file of", "larger than the limit of 16"));
}

/* The line graph's size is checked before it is built: a star whose hub has in- and
 * out-degree 2^14 has 2^28 arcs, one more than the limit set here. */
static void line_graph_counted_first(void **state)
{
  (void)state;
  enum { K = 1 << 14 };
  size_t cap = (size_t)K * 2 * 24 + 64;
  char *text = malloc(cap);
  assert_non_null(text);
  size_t len = (size_t)snprintf(text, cap, "{\"nodes\": %d, \"edges\": [", 2 * K + 1);
  for (int i = 0; i < K; i++)
    len += (size_t)snprintf(text + len, cap - len, "%s[%d, 0], [0, %d]", i ? ", " : "", i + 1,
                            K + i + 1);
  snprintf(text + len, cap - len, "]}\n");
  xy_limits lim;
  xy_limits_default(&lim);
  lim.max_arcs = (int64_t)K * K - 1;
  expect_dag_error(write_tmp("star.graph.json", text), &lim, XY_E_LIMIT,
                   NEEDLES("star.graph.json:1:1: with this graph's 268435456 arcs"));
  free(text);
}

/* "directed": false makes the edge list bonds, oriented by node id; a bond listed both ways
 * is a duplicate. */
static void undirected_graphs(void **state)
{
  (void)state;
  ir_dag d;
  load_ok(write_tmp("bonds.graph.json",
                    "{\"graphs\": [{\"nodes\": 3, \"edges\": [[2, 0], [1, 0]], \"directed\": false},\n"
                    " {\"nodes\": 2, \"edges\": [[1, 0]]}]}\n"),
          NULL, &d);
  expect_ids(d.tail, (int64_t[]){0, 0, 4}, 3, "tail");
  expect_ids(d.head, (int64_t[]){2, 1, 3}, 3, "head");
  ir_dag_free(&d);
  const char *path = write_tmp("bonds2.graph.json",
                               "{\"nodes\": 3, \"directed\": false,\n \"edges\": [[0, 1], [2, 1], "
                               "[1, 0]]}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("bonds2.graph.json:2:28: edges[2]: duplicate bond between nodes 0 and 1 "
                           "(the same as edges[0]; the graph is undirected)"));
  path = write_tmp("dir.graph.json", "{\"nodes\": 3, \"directed\": 0, \"edges\": []}");
  expect_dag_error(path, NULL, XY_E_GRAPH,
                   NEEDLES("dir.graph.json:1:26: directed: must be true or false, not an integer"));
}

/* Feature arrays that do not fit their graph, each reported where it goes wrong. */
static void bad_features(void **state)
{
  (void)state;
  static const struct {
    const char *text;
    const char *needle;
  } cases[] = {
    {"{\"nodes\": 3, \"edges\": [],\n \"node_features\": [[1], [2]]}",
     "feat.graph.json:2:19: node_features: node_features has 2 rows; the graph has 3 nodes"},
    {"{\"nodes\": 2, \"edges\": [],\n \"node_features\": [[1, 2], [3, 4, 5]]}",
     "feat.graph.json:2:28: node_features[1]: the row has 3 features; the file's node_features "
     "have 2 (as at node_features[0])"},
    {"{\"nodes\": 2, \"edges\": [],\n \"node_features\": [[1, 2], [3, null]]}",
     "feat.graph.json:2:32: node_features[1][1]: a feature must be a number, not null"},
    {"{\"nodes\": 2, \"edges\": [],\n \"node_features\": [[1, 2], []]}",
     "feat.graph.json:2:28: node_features[1]: an empty feature row"},
    {"{\"nodes\": 2, \"edges\": [],\n \"node_features\": [1, 2]}",
     "feat.graph.json:2:20: node_features[0]: a feature row is an array of numbers, not an "
     "integer"},
    {"{\"graphs\": [{\"nodes\": 1, \"edges\": [], \"node_features\": [[1, 2]]},\n"
     " {\"nodes\": 1, \"edges\": [], \"node_features\": [[1, 2, 3]]}]}",
     "feat.graph.json:2:46: graphs[1].node_features[0]: the row has 3 features; the file's "
     "node_features have 2 (as at graphs[0].node_features[0])"},
    {"{\"graphs\": [{\"nodes\": 2, \"edges\": [[0, 1]]},\n"
     " {\"nodes\": 2, \"edges\": [[0, 1]], \"edge_features\": [[1]]}]}",
     "feat.graph.json:1:13: graphs[0]: this graph has no edge_features, but graphs[1] has: every "
     "graph of a file has them or none does"},
  };
  for (size_t i = 0; i < XY_ARRAY_LEN(cases); i++)
    expect_dag_error(write_tmp("feat.graph.json", cases[i].text), NULL, XY_E_GRAPH,
                     NEEDLES(cases[i].needle));
  expect_dag_error(write_tmp("feat.graph.json", "{\"nodes\": 2, \"edges\": [[0, 1]],\n "
                             "\"edge_features\": \"absent.npy\"}"),
                   NULL, XY_E_IO, NEEDLES("feat.graph.json:2:19: edge_features: ",
                                          "absent.npy: cannot open"));
}

/* .npy features: float32 or float64 [rows, F], finite. */
static void bad_feature_files(void **state)
{
  (void)state;
  char path[512];
  xy_error err;
  double nan_vals[4] = {1, 2, NAN, 4};
  xy_array a = {.dtype = XY_F64, .rank = 2, .shape = {2, 2}, .count = 4, .data = nan_vals};
  snprintf(path, sizeof path, "%s/nan.npy", FE_TMPDIR);
  assert_int_equal(xy_npy_write(path, &a, &err), XY_OK);
  expect_dag_error(write_tmp("npy.graph.json",
                             "{\"nodes\": 2, \"edges\": [], \"node_features\": \"nan.npy\"}"),
                   NULL, XY_E_GRAPH,
                   NEEDLES("npy.graph.json:1:44: node_features: ", "nan.npy: the value at row 1, "
                           "column 0 is nan; features must be finite"));
  double ok_vals[3] = {1, 2, 3};
  xy_array b = {.dtype = XY_F64, .rank = 2, .shape = {3, 1}, .count = 3, .data = ok_vals};
  snprintf(path, sizeof path, "%s/three.npy", FE_TMPDIR);
  assert_int_equal(xy_npy_write(path, &b, &err), XY_OK);
  expect_dag_error(write_tmp("npy.graph.json",
                             "{\"nodes\": 2, \"edges\": [], \"node_features\": \"three.npy\"}"),
                   NULL, XY_E_GRAPH,
                   NEEDLES("three.npy has shape [3,1]; node_features are [nodes, F] = [2, F]"));
  int64_t ints[2] = {1, 2};
  xy_array c = {.dtype = XY_I64, .rank = 2, .shape = {2, 1}, .count = 2, .data = ints};
  snprintf(path, sizeof path, "%s/ints.npy", FE_TMPDIR);
  assert_int_equal(xy_npy_write(path, &c, &err), XY_OK);
  expect_dag_error(write_tmp("npy.graph.json",
                             "{\"nodes\": 2, \"edges\": [], \"node_features\": \"ints.npy\"}"),
                   NULL, XY_E_GRAPH,
                   NEEDLES("ints.npy: features are float32 or float64, not integers"));
}

/* Every prefix and some corrupted copies of a good file fail cleanly or load whole. */
static void never_crash(void **state)
{
  (void)state;
  FILE *f = fopen(fixture("many.graph.json"), "rb");
  assert_non_null(f);
  char text[1024], buf[1024];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  for (size_t len = 0; len < n; len++) {
    memcpy(buf, text, len);
    buf[len] = '\0';
    ir_dag d;
    xy_error err;
    int rc = fe_load_dag(write_tmp("prefix.graph.json", buf), NULL, &d, &err);
    if (len < n - 1)
      assert_int_not_equal(rc, XY_OK);
    ir_dag_free(&d);
  }
  uint64_t s = 99;
  for (int k = 0; k < 1000; k++) {
    memcpy(buf, text, n + 1);
    for (int j = 0; j < 2; j++) {
      s = s * 6364136223846793005u + 1442695040888963407u;
      static const char junk[] = "{}[],:\"0123456789-. \n";
      buf[(size_t)(s >> 33) % n] = junk[(s >> 20) % (sizeof junk - 1)];
    }
    ir_dag d;
    xy_error err;
    int rc = fe_load_dag(write_tmp("mutant.graph.json", buf), NULL, &d, &err);
    assert_true(rc != XY_OK || (d.n_graphs >= 1 && d.node_start[d.n_graphs] == d.n_nodes));
    ir_dag_free(&d);
  }
}

int run_dag_tests(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(default_arcs_match_graph_core),
    cmocka_unit_test(many_graphs_concatenated),
    cmocka_unit_test(big_chain),
    cmocka_unit_test(cycle),
    cmocka_unit_test(node_id_out_of_range),
    cmocka_unit_test(node_id_negative_or_not_integer),
    cmocka_unit_test(self_loop),
    cmocka_unit_test(duplicate_edge),
    cmocka_unit_test(empty_graph),
    cmocka_unit_test(empty_graphs_list),
    cmocka_unit_test(bad_arcs),
    cmocka_unit_test(schema_errors),
    cmocka_unit_test(limits_exceeded),
    cmocka_unit_test(line_graph_counted_first),
    cmocka_unit_test(undirected_graphs),
    cmocka_unit_test(bad_features),
    cmocka_unit_test(bad_feature_files),
    cmocka_unit_test(never_crash),
  };
  return cmocka_run_group_tests_name("frontend_dag", tests, NULL, NULL);
}
