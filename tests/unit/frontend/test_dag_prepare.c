/* test_dag_prepare.c: the reference's graph preparation as xylem reproduces it
 * (compiler/frontend/dag_prepare.c, dag_variant.c): the diamond's full and multitree line
 * graphs, graph_core_d's pruned arcs from its undirected edge list, random trees and DAGs
 * against networkx (tests/data/graphs/prune_cases.json, from make_prune_cases.py),
 * slots, reversed graphs, the spec's graph options and fe_dag_variant, features from JSON
 * and .npy, and the time a file of 4096 molecule-sized graphs takes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "dag_prepare.h"
#include "fe_internal.h"

/* ------------------------------------------------------------------ helpers */

static char tmp_path[4096];

/* Writes text to FE_TMPDIR/name; the path stays valid until the next call. */
static const char *write_tmp(const char *name, const char *text)
{
  snprintf(tmp_path, sizeof tmp_path, "%s/%s", FE_TMPDIR, name);
  FILE *f = fopen(tmp_path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
  return tmp_path;
}

/* Reads a graph file's text, dagified or not. */
static void read_text(const char *name, const char *text, bool dagify, ir_dag *d)
{
  xy_limits lim;
  xy_limits_default(&lim);
  xy_error err;
  const char *path = write_tmp(name, text);
  int rc = fe_dag_read(path, text, strlen(text), &lim, dagify, d, &err);
  if (rc)
    fail_msg("reading %s failed (%d):\n%s", name, rc, err.message);
}

static void derive(const ir_dag *base, bool base_reversed, bool reverse, bool multitree,
                   ir_dag *out)
{
  xy_error err;
  int rc = fe_dag_derive(base, base_reversed, reverse, multitree, "test", out, &err);
  if (rc)
    fail_msg("fe_dag_derive failed (%d):\n%s", rc, err.message);
}

static void expect_arcs(const ir_dag *d, const int64_t (*arcs)[2], int64_t n, const char *what)
{
  if (d->n_arcs != n)
    fail_msg("%s: %lld arcs, expected %lld", what, (long long)d->n_arcs, (long long)n);
  for (int64_t a = 0; a < n; a++)
    if (d->arc_src[a] != arcs[a][0] || d->arc_dst[a] != arcs[a][1])
      fail_msg("%s: arc %lld is %lld -> %lld, expected %lld -> %lld", what, (long long)a,
               (long long)d->arc_src[a], (long long)d->arc_dst[a], (long long)arcs[a][0],
               (long long)arcs[a][1]);
}

static void expect_ids(const int64_t *got, const int64_t *want, int64_t n, const char *what)
{
  for (int64_t i = 0; i < n; i++)
    if (got[i] != want[i])
      fail_msg("%s[%lld] is %lld, expected %lld", what, (long long)i, (long long)got[i],
               (long long)want[i]);
}

/* ------------------------------------------------------------------ the diamond */

/* 0->1, 0->2, 1->3, 2->3, 3->4: the two paths into 3->4 start at different edges, so the
 * line graph is a multitree already; an edge into node 0 joins them at one edge, and the
 * pruning then drops the later of the two arcs into 3->4 (by topological rank). */
static void diamond(void **state)
{
  (void)state;
  static const int64_t full[][2] = {{0, 2}, {1, 3}, {2, 4}, {3, 4}};
  ir_dag d, t;
  read_text("diamond.graph.json",
            "{\"nodes\": 5, \"edges\": [[0, 1], [0, 2], [1, 3], [2, 3], [3, 4]]}", false, &d);
  expect_arcs(&d, full, 4, "diamond, full");
  expect_ids(d.out_slot, (int64_t[]){0, 1, 0, 0, 0}, 5, "out_slot");
  expect_ids(d.in_slot, (int64_t[]){0, 0, 0, 1, 0}, 5, "in_slot");
  derive(&d, false, false, true, &t);
  expect_arcs(&t, full, 4, "diamond, multitree");
  ir_dag_free(&t);
  /* Reversed: 4->3, 3->1, 3->2, 1->0, 2->0 (edge ids kept). Node 3 lists its successors
   * as the reversed edge list met them: 3->2 first (networkx orders, see
   * make_prune_cases.py); node 0 its predecessors 2, then 1. */
  static const int64_t rev[][2] = {{2, 0}, {3, 1}, {4, 2}, {4, 3}};
  derive(&d, false, true, true, &t);
  expect_ids(t.tail, (int64_t[]){1, 2, 3, 3, 4}, 5, "reversed tail");
  expect_ids(t.head, (int64_t[]){0, 0, 1, 2, 3}, 5, "reversed head");
  expect_arcs(&t, rev, 4, "reversed diamond, multitree");
  expect_ids(t.out_slot, (int64_t[]){0, 0, 1, 0, 0}, 5, "reversed out_slot");
  expect_ids(t.in_slot, (int64_t[]){1, 0, 0, 0, 0}, 5, "reversed in_slot");
  ir_dag r;
  derive(&t, true, true, false, &r); /* reversed back: the forward full line graph */
  expect_ids(r.tail, d.tail, 5, "tail");
  expect_ids(r.out_slot, d.out_slot, 5, "out_slot again");
  expect_arcs(&r, full, 4, "reversed twice");
  ir_dag_free(&r);
  ir_dag_free(&t);
  ir_dag_free(&d);

  static const int64_t fed_full[][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 5}};
  static const int64_t fed_tree[][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}};
  read_text("fed.graph.json",
            "{\"nodes\": 6, \"edges\": [[5, 0], [0, 1], [0, 2], [1, 3], [2, 3], [3, 4]]}",
            false, &d);
  expect_arcs(&d, fed_full, 6, "fed diamond, full");
  derive(&d, false, false, true, &t);
  expect_arcs(&t, fed_tree, 5, "fed diamond, multitree");
  ir_dag_free(&t);
  ir_dag_free(&d);
  /* Dagified, 5->0 turns into 0->5 and feeds nothing: nothing to prune. */
  read_text("fed.graph.json",
            "{\"nodes\": 6, \"edges\": [[5, 0], [0, 1], [0, 2], [1, 3], [2, 3], [3, 4]]}",
            true, &d);
  assert_int_equal(d.tail[0], 0);
  assert_int_equal(d.head[0], 5);
  derive(&d, false, false, true, &t);
  assert_int_equal(t.n_arcs, 4);
  ir_dag_free(&t);
  ir_dag_free(&d);
  /* Without arcs a variant still has arc arrays (later passes copy from them). */
  read_text("one.graph.json", "{\"nodes\": 2, \"edges\": [[0, 1]]}", false, &d);
  derive(&d, false, true, true, &t);
  assert_int_equal(t.n_arcs, 0);
  assert_non_null(t.arc_src);
  assert_non_null(t.arc_dst);
  ir_dag_free(&t);
  ir_dag_free(&d);
}

/* ------------------------------------------------------------------ graph_core_d */

/* The reference vector graph_core_d (vectors/plstm/graph_core_d/manifest.json): its
 * generated_edges, read as an undirected file, dagified, with the line graph pruned, give
 * exactly the arcs the reference used ("arcs", given over its "edges" list in the line
 * graph's topological order). */
static void graph_core_d(void **state)
{
  (void)state;
  static const int generated[20][2] = {
    {0, 1}, {0, 2}, {0, 3}, {2, 4}, {0, 5}, {4, 6}, {3, 7}, {2, 8}, {5, 9}, {8, 10},
    {8, 11}, {1, 7}, {5, 8}, {1, 2}, {2, 5}, {0, 8}, {0, 10}, {4, 7}, {4, 10}, {6, 7},
  };
  static const int manifest_edges[20][2] = {
    {0, 1}, {0, 2}, {0, 3}, {0, 5}, {0, 8}, {0, 10}, {1, 7}, {1, 2}, {3, 7}, {2, 4},
    {2, 8}, {2, 5}, {4, 6}, {4, 7}, {4, 10}, {8, 10}, {8, 11}, {5, 9}, {5, 8}, {6, 7},
  };
  static const int manifest_arcs[21][2] = {
    {0, 6}, {0, 7}, {7, 9}, {7, 10}, {7, 11}, {1, 9}, {1, 10}, {1, 11}, {9, 12}, {9, 13},
    {9, 14}, {10, 15}, {10, 16}, {11, 17}, {11, 18}, {2, 8}, {3, 17}, {3, 18}, {4, 15},
    {4, 16}, {12, 19},
  };
  char text[2048];
  size_t len = (size_t)snprintf(text, sizeof text,
                                "{\"nodes\": 12, \"directed\": false, \"edges\": [");
  for (int e = 0; e < 20; e++)
    len += (size_t)snprintf(text + len, sizeof text - len, "%s[%d, %d]", e ? ", " : "",
                            generated[e][0], generated[e][1]);
  snprintf(text + len, sizeof text - len, "]}");
  ir_dag d, t;
  read_text("graph_core_d.graph.json", text, false, &d);
  assert_int_equal(d.n_arcs, 23); /* the manifest's arcs_unpruned */
  derive(&d, false, false, true, &t);
  /* The manifest's arcs as pairs of our edge ids (the position in generated_edges). */
  int64_t want[21][2];
  int map[20];
  for (int i = 0; i < 20; i++)
    for (int e = 0; e < 20; e++)
      if (generated[e][0] == manifest_edges[i][0] && generated[e][1] == manifest_edges[i][1])
        map[i] = e;
  for (int a = 0; a < 21; a++) {
    want[a][0] = map[manifest_arcs[a][0]];
    want[a][1] = map[manifest_arcs[a][1]];
  }
  /* Ours are sorted by (p, e). */
  for (int a = 1; a < 21; a++)
    for (int b = a; b > 0 && (want[b][0] < want[b - 1][0] ||
                              (want[b][0] == want[b - 1][0] && want[b][1] < want[b - 1][1]));
         b--) {
      int64_t s0 = want[b][0], s1 = want[b][1];
      want[b][0] = want[b - 1][0];
      want[b][1] = want[b - 1][1];
      want[b - 1][0] = s0;
      want[b - 1][1] = s1;
    }
  expect_arcs(&t, (const int64_t(*)[2])want, 21, "graph_core_d, multitree");
  ir_dag_free(&t);
  ir_dag_free(&d);
}

/* ------------------------------------------------------------------ against networkx */

static int64_t int_at(const json_t *a, size_t i)
{
  const json_t *v = json_array_get(a, i);
  assert_true(json_is_integer(v));
  return (int64_t)json_integer_value(v);
}

/* One group of prune_cases.json: a file of many graphs read with its dagify option, then
 * (reversed when the group says) with the full and the pruned line graph; every graph's
 * arcs and slots must be networkx's. */
static void check_group(const json_t *group, int index)
{
  bool dagify = json_is_true(json_object_get(group, "dagify"));
  bool reverse = json_is_true(json_object_get(group, "reverse"));
  const json_t *graphs = json_object_get(group, "graphs");
  /* The cases carry more keys than a graph file takes: keep nodes, edges, directed. */
  json_t *list = json_array();
  assert_non_null(list);
  for (size_t g = 0; g < json_array_size(graphs); g++) {
    const json_t *c = json_array_get(graphs, g);
    json_t *clean = json_pack("{s:O,s:O,s:O}", "nodes", json_object_get(c, "nodes"), "edges",
                              json_object_get(c, "edges"), "directed",
                              json_object_get(c, "directed"));
    assert_non_null(clean);
    assert_int_equal(json_array_append_new(list, clean), 0);
  }
  json_t *file = json_pack("{s:o}", "graphs", list);
  assert_non_null(file);
  char *text = json_dumps(file, JSON_COMPACT);
  json_decref(file);
  assert_non_null(text);
  char name[64];
  snprintf(name, sizeof name, "group%d.graph.json", index);
  ir_dag fwd, full, tree;
  read_text(name, text, dagify, &fwd);
  free(text);
  derive(&fwd, false, reverse, false, &full);
  derive(&fwd, false, reverse, true, &tree);
  for (size_t g = 0; g < json_array_size(graphs); g++) {
    const json_t *c = json_array_get(graphs, g);
    const json_t *kept = json_object_get(c, "kept"), *out = json_object_get(c, "out_slot");
    const json_t *in = json_object_get(c, "in_slot");
    int64_t e0 = fwd.edge_start[g], m = fwd.edge_start[g + 1] - e0;
    int64_t n0 = fwd.node_start[g];
    char what[160];
    snprintf(what, sizeof what, "group %d (dagify %d, reverse %d), graph %zu", index, dagify,
             reverse, g);
    int64_t n_full = full.arc_start[g + 1] - full.arc_start[g];
    if (n_full != (int64_t)json_integer_value(json_object_get(c, "arcs")))
      fail_msg("%s: %lld full arcs, networkx has %lld", what, (long long)n_full,
               (long long)json_integer_value(json_object_get(c, "arcs")));
    int64_t n_kept = tree.arc_start[g + 1] - tree.arc_start[g];
    if (n_kept != (int64_t)json_array_size(kept))
      fail_msg("%s: %lld arcs kept, networkx keeps %zu", what, (long long)n_kept,
               json_array_size(kept));
    for (int64_t a = 0; a < n_kept; a++) {
      const json_t *pair = json_array_get(kept, (size_t)a);
      int64_t p = tree.arc_src[tree.arc_start[g] + a] - e0;
      int64_t e = tree.arc_dst[tree.arc_start[g] + a] - e0;
      if (p != int_at(pair, 0) || e != int_at(pair, 1))
        fail_msg("%s: kept arc %lld is %lld -> %lld, networkx keeps %lld -> %lld", what,
                 (long long)a, (long long)p, (long long)e, (long long)int_at(pair, 0),
                 (long long)int_at(pair, 1));
    }
    for (int64_t e = 0; e < m; e++) {
      if (tree.out_slot[e0 + e] != int_at(out, (size_t)e) ||
          tree.in_slot[e0 + e] != int_at(in, (size_t)e))
        fail_msg("%s: edge %lld has slots out %lld in %lld, networkx %lld and %lld", what,
                 (long long)e, (long long)tree.out_slot[e0 + e], (long long)tree.in_slot[e0 + e],
                 (long long)int_at(out, (size_t)e), (long long)int_at(in, (size_t)e));
      /* Ids stay: a reversed edge is the forward one turned around. */
      int64_t ft = fwd.tail[e0 + e], fh = fwd.head[e0 + e];
      assert_int_equal(tree.tail[e0 + e], reverse ? fh : ft);
      assert_int_equal(tree.head[e0 + e], reverse ? ft : fh);
      bool by_id = dagify || !json_is_true(json_object_get(c, "directed"));
      if (by_id && ft - n0 >= fh - n0)
        fail_msg("%s: edge %lld is not oriented by node id", what, (long long)e);
    }
  }
  ir_dag_free(&tree);
  ir_dag_free(&full);
  ir_dag_free(&fwd);
}

static void against_networkx(void **state)
{
  (void)state;
  const char *data = getenv("XYLEM_TEST_DATA");
  assert_non_null(data);
  char path[4096];
  snprintf(path, sizeof path, "%s/graphs/prune_cases.json", data);
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  if (!root)
    fail_msg("%s: %s", path, jerr.text);
  const json_t *groups = json_object_get(root, "groups");
  assert_int_equal(json_array_size(groups), 4);
  for (size_t i = 0; i < json_array_size(groups); i++)
    check_group(json_array_get(groups, i), (int)i);
  json_decref(root);
}

/* ------------------------------------------------------------------ spec and variants */

/* A DAG spec over graph file `file` (reversed, multitree), with the input x from the
 * file's node features when features. */
static const char *spec_text(const char *name, const char *file, bool features)
{
  static char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"batch\": 2,\n"
           " \"graph\": {\"kind\": \"dag\", \"file\": \"%s\", \"reverse\": true,\n"
           "           \"line_graph\": \"multitree\"},\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"nodes\", 4, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"nodes\", 4, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"nodes\", 2, 1]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", \"edges\", 1, 1, 1]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", \"arcs\", 1, 1]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", \"edges\", 1, 1, 1]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"nodes\", 1, 1, 1, 1]}%s],\n"
           " \"layers\": [{\"op\": \"plstm_scan\", \"inputs\": {\"q\": \"q\", \"k\": \"k\", "
           "\"v\": \"v\",\n"
           "   \"S\": \"S\", \"T\": \"T\", \"M\": \"M\", \"D\": \"D\"}, \"outputs\": "
           "{\"out\": \"y\"}}],\n"
           " \"outputs\": [\"y\"]}\n", file,
           features ? ",\n  {\"name\": \"x\", \"shape\": [\"batch\", \"nodes\", 3], "
                      "\"from_graph\": \"node_features\"}" : "");
  return write_tmp(name, text);
}

/* The fed diamond backwards: 4->3, 3->1, 3->2, 1->0, 2->0, 0->5. Its line graph joins
 * 4->3's two paths at 0->5, so a multitree drops one arc of the six. */
static void spec_options_and_variants(void **state)
{
  (void)state;
  write_tmp("fed.graph.json",
            "{\"nodes\": 6, \"edges\": [[5, 0], [0, 1], [0, 2], [1, 3], [2, 3], [3, 4]],\n"
            " \"node_features\": [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 1, 0], "
            "[0, 0, 1]]}\n");
  const char *spec = spec_text("variants.json", "fed.graph.json", true);
  ir_module *m = NULL;
  xy_error err;
  int rc = fe_load_spec(spec, NULL, &m, &err);
  if (rc)
    fail_msg("loading the spec failed (%d):\n%s", rc, err.message);
  const ir_graph *g = &m->graphs[0];
  assert_true(g->reversed && g->multitree && !g->dagified);
  assert_int_equal(g->dag.n_arcs, 5);
  assert_int_equal(m->tensors[ir_find_tensor(m, "T")].shape.d[1], 5);
  assert_int_equal(m->tensors[ir_find_tensor(m, "x")].from_graph, IR_FROM_NODE_FEATURES);
  assert_int_equal(g->dag.node_feat_dim, 3);
  /* Forward, full: a new graph, the same one when asked again. */
  int fwd, again, back, multi;
  assert_int_equal(fe_dag_variant(m, 0, true, false, &fwd, &err), XY_OK);
  assert_int_equal(fwd, 1);
  assert_int_equal(fe_dag_variant(m, 0, true, false, &again, &err), XY_OK);
  assert_int_equal(again, 1);
  g = &m->graphs[fwd];
  /* The spec's pruning stays: reversed back, the forward DAG's multitree. */
  assert_true(!g->reversed && g->multitree && g->origin == 0);
  assert_int_equal(g->dag.tail[0], 5);
  assert_int_equal(g->dag.n_arcs, 5);
  assert_int_equal(g->dag.node_feat_dim, 3);
  assert_true(g->dag.node_feat[1 * 3 + 1] == 1.0);
  assert_int_equal(fe_dag_variant(m, fwd, true, true, &back, &err), XY_OK);
  assert_int_equal(back, 0);
  assert_int_equal(fe_dag_variant(m, 0, false, true, &multi, &err), XY_OK);
  assert_int_equal(multi, 0);
  assert_int_equal(m->n_graphs, 2);
  /* Variants survive a clone (the pipeline compiles a clone). */
  ir_module *c = ir_module_clone(m);
  assert_non_null(c);
  assert_int_equal(c->graphs[1].dag.edge_order[3], m->graphs[1].dag.edge_order[3]);
  assert_int_equal(c->graphs[1].origin, 0);
  ir_module_free(c);
  ir_module_free(m);
}

/* The per-graph options in a file, and what the spec refuses. */
static void spec_option_errors(void **state)
{
  (void)state;
  write_tmp("listed.graph.json",
            "{\"nodes\": 3, \"edges\": [[0, 1], [1, 2]], \"arcs\": [[0, 1]]}\n");
  const char *spec = spec_text("listed.json", "listed.graph.json", false);
  ir_module *m = NULL;
  xy_error err;
  int rc = fe_load_spec(spec, NULL, &m, &err);
  assert_int_equal(rc, XY_E_GRAPH);
  assert_null(m);
  if (!strstr(err.message, "listed.json:3:26: graph.line_graph:") ||
      !strstr(err.message, "lists its arcs, but a multitree line graph is pruned"))
    fail_msg("unexpected message:\n%s", err.message);
  const char *ov[] = {"graph.line_graph=\"tree\""};
  xy_load_options opt;
  xy_load_options_default(&opt);
  opt.overrides = ov;
  opt.n_overrides = 1;
  rc = fe_load_spec(spec, &opt, &m, &err);
  assert_int_equal(rc, XY_E_SPEC);
  if (!strstr(err.message, "graph.line_graph: unknown line graph 'tree'; expected one of: "
                           "full, multitree"))
    fail_msg("unexpected message:\n%s", err.message);
  ov[0] = "graph.dagify=1";
  rc = fe_load_spec(spec, &opt, &m, &err);
  assert_int_equal(rc, XY_E_SPEC);
  if (!strstr(err.message, "graph.dagify: must be true or false, not an integer"))
    fail_msg("unexpected message:\n%s", err.message);
}

/* ------------------------------------------------------------------ features */

static void features_round_trip(void **state)
{
  (void)state;
  /* JSON rows; the second graph's features come from a .npy file (float64) next to it. */
  double vals[4 * 2] = {0.5, -1, 2, 3, 1e-3, 7, -0.25, 4};
  xy_array a = {.dtype = XY_F64, .rank = 2, .shape = {4, 2}, .count = 8, .data = vals};
  char npy[4096];
  snprintf(npy, sizeof npy, "%s/feat.npy", FE_TMPDIR);
  xy_error err;
  assert_int_equal(xy_npy_write(npy, &a, &err), XY_OK);
  float evals[3] = {1.5f, -2.0f, 0.125f};
  xy_array ea = {.dtype = XY_F32, .rank = 2, .shape = {3, 1}, .count = 3, .data = evals};
  snprintf(npy, sizeof npy, "%s/efeat.npy", FE_TMPDIR);
  assert_int_equal(xy_npy_write(npy, &ea, &err), XY_OK);
  ir_dag d;
  read_text("feat.graph.json",
            "{\"graphs\": [\n"
            " {\"nodes\": 2, \"edges\": [[0, 1]], \"node_features\": [[1, 2], [3.5, -4]],\n"
            "  \"edge_features\": [[9]]},\n"
            " {\"nodes\": 4, \"edges\": [[0, 1], [2, 1], [1, 3]], \"directed\": false,\n"
            "  \"node_features\": \"feat.npy\", \"edge_features\": \"efeat.npy\"}]}\n",
            false, &d);
  assert_int_equal(d.node_feat_dim, 2);
  assert_int_equal(d.edge_feat_dim, 1);
  static const double want[] = {1, 2, 3.5, -4, 0.5, -1, 2, 3, 1e-3, 7, -0.25, 4};
  for (int i = 0; i < 12; i++)
    assert_true(d.node_feat[i] == want[i]);
  static const double ewant[] = {9, 1.5, -2.0, 0.125};
  for (int i = 0; i < 4; i++)
    assert_true(d.edge_feat[i] == ewant[i]);
  /* Undirected: [2, 1] is stored as 1 -> 2 with its own features. */
  assert_int_equal(d.tail[2], 3);
  assert_int_equal(d.head[2], 4);
  ir_dag r;
  derive(&d, false, true, true, &r);
  assert_true(r.edge_feat[2] == -2.0 && r.node_feat[3] == -4);
  ir_dag_free(&r);
  ir_dag_free(&d);
  /* A graph without edges has no rows, so it says nothing about F. */
  read_text("feat0.graph.json",
            "{\"graphs\": [{\"nodes\": 1, \"edges\": [], \"edge_features\": []},\n"
            " {\"nodes\": 2, \"edges\": [[0, 1]], \"edge_features\": [[1, 2, 3]]}]}\n",
            false, &d);
  assert_int_equal(d.edge_feat_dim, 3);
  assert_int_equal(d.node_feat_dim, 0);
  assert_null(d.node_feat);
  ir_dag_free(&d);
}

/* ------------------------------------------------------------------ speed */

/* 4096 molecule-like graphs (60 nodes: a random tree plus up to 3 edges per node back to
 * earlier nodes, about 180 edges): read, dagified, and pruned to a multitree reversed. */
static void many_small_graphs(void **state)
{
  (void)state;
  enum { G = 4096, N = 60 };
  size_t cap = (size_t)G * N * 4 * 16 + 64, len = 0;
  char *text = malloc(cap);
  assert_non_null(text);
  len += (size_t)snprintf(text + len, cap - len, "{\"graphs\": [");
  uint64_t s = 7;
  int64_t edges = 0;
  for (int g = 0; g < G; g++) {
    len += (size_t)snprintf(text + len, cap - len, "%s{\"nodes\": %d, \"edges\": [",
                            g ? ",\n" : "", N);
    int k = 0;
    for (int i = 1; i < N; i++) {
      int seen[4] = {-1, -1, -1, -1};
      for (int j = 0; j < 4; j++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        int to = (int)((s >> 33) % (uint64_t)i);
        if (j > 0 && (s >> 20) % 4 == 0)
          continue;
        bool dup = false;
        for (int l = 0; l < j; l++)
          dup = dup || seen[l] == to;
        if (dup)
          continue;
        seen[j] = to;
        len += (size_t)snprintf(text + len, cap - len, "%s[%d, %d]", k++ ? ", " : "", to, i);
      }
    }
    edges += k;
    len += (size_t)snprintf(text + len, cap - len, "]}");
  }
  snprintf(text + len, cap - len, "]}\n");
  clock_t t0 = clock();
  ir_dag d, t;
  read_text("many.graph.json", text, true, &d);
  clock_t t1 = clock();
  derive(&d, false, true, true, &t);
  clock_t t2 = clock();
  print_message("%d graphs, %lld edges, %lld full arcs, %lld kept: read %.3f s, reversed and "
                "pruned %.3f s (sanitizers slow both)\n", G, (long long)edges,
                (long long)d.n_arcs, (long long)t.n_arcs, (double)(t1 - t0) / CLOCKS_PER_SEC,
                (double)(t2 - t1) / CLOCKS_PER_SEC);
  assert_true(t.n_arcs <= d.n_arcs && t.n_arcs > 0);
  ir_dag_free(&t);
  ir_dag_free(&d);
  free(text);
}

int main(void)
{
  if (mkdir(FE_TMPDIR, 0777) != 0 && errno != EEXIST) {
    perror(FE_TMPDIR);
    return 1;
  }
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(diamond),
    cmocka_unit_test(graph_core_d),
    cmocka_unit_test(against_networkx),
    cmocka_unit_test(spec_options_and_variants),
    cmocka_unit_test(spec_option_errors),
    cmocka_unit_test(features_round_trip),
    cmocka_unit_test(many_small_graphs),
  };
  return cmocka_run_group_tests_name("dag_prepare", tests, NULL, NULL);
}
