/* test_graph_layer.c: the graph layers (plstm_graph, plstm_graph_edge; docs/layers.md) in
 * specs: the ops and weights they expand into, their defaults and DAG variants, and their
 * errors (each a change of fixtures/graph_layer.json checked for code, file:line:col, JSON
 * path and cause), including weights files that do not fit the layers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_test.h"
#include "xylem.h"

static int count_weights(const ir_module *m, const char *prefix)
{
  int n = 0;
  for (int t = 0; t < m->n_tensors; t++)
    n += m->tensors[t].role == IR_WEIGHT && strncmp(m->tensors[t].name, prefix, strlen(prefix)) == 0;
  return n;
}

/* The fixture's graph file next to the variants a test writes (they name it relatively). */
static void copy_graph_file(void)
{
  FILE *f = fopen(fixture("graph_layer.graph.json"), "rb");
  assert_non_null(f);
  char text[4096];
  size_t n = fread(text, 1, sizeof text - 1, f);
  assert_true(n > 0 && n < sizeof text - 1);
  text[n] = '\0';
  fclose(f);
  write_tmp("graph_layer.graph.json", text);
}

/* ------------------------------------------------------------------ expansion */

static void layers_expand(void **state)
{
  (void)state;
  ir_module *m = load_module_ok(fixture("graph_layer.json"));
  /* the node layer: P mode on the file's DAG; no q, k, v or out biases by default */
  int64_t w12[] = {12, 12}, sw[] = {6, 12}, sb[] = {6}, tw[] = {18, 12}, tb[] = {18},
          dw[] = {2, 12}, db[] = {2}, ns[] = {2, 6};
  expect_tensor(m, "l0.query.weight", IR_WEIGHT, 2, w12);
  expect_tensor(m, "l0.key.weight", IR_WEIGHT, 2, w12);
  expect_tensor(m, "l0.value_.weight", IR_WEIGHT, 2, w12);
  expect_tensor(m, "l0.source.weight", IR_WEIGHT, 2, sw);
  expect_tensor(m, "l0.source.bias", IR_WEIGHT, 1, sb);
  expect_tensor(m, "l0.transition.weight", IR_WEIGHT, 2, tw);
  expect_tensor(m, "l0.transition.bias", IR_WEIGHT, 1, tb);
  expect_tensor(m, "l0.mark.weight", IR_WEIGHT, 2, sw);
  expect_tensor(m, "l0.mark.bias", IR_WEIGHT, 1, sb);
  expect_tensor(m, "l0.direct.weight", IR_WEIGHT, 2, dw);
  expect_tensor(m, "l0.direct.bias", IR_WEIGHT, 1, db);
  expect_tensor(m, "l0.mhnorm.scale", IR_WEIGHT, 2, ns);
  expect_tensor(m, "l0.out.weight", IR_WEIGHT, 2, w12);
  assert_int_equal(ir_find_tensor(m, "l0.query.bias"), -1);
  assert_int_equal(ir_find_tensor(m, "l0.out.bias"), -1);
  assert_int_equal(count_weights(m, "l0."), 13);
  const ir_op *src = find_op(m, "gn.source_edges"), *tr = find_op(m, "gn.transition_arcs");
  const ir_op *mk = find_op(m, "gn.mark_edges"), *pn = find_op(m, "gn.transition_norm");
  assert_int_equal(src->attr.gather.map, IR_GATHER_SOURCE_SLOT);
  assert_int_equal(mk->attr.gather.map, IR_GATHER_MARK_SLOT);
  assert_int_equal(tr->attr.gather.map, IR_GATHER_TRANSITION_SLOTS);
  assert_true(src->attr.gather.heads == 2 && src->attr.gather.slots == 3);
  assert_true(!pn->attr.pnorm.arcs && pn->attr.pnorm.slots == 3 && pn->attr.pnorm.alpha == 0.5);
  const ir_op *scan = find_op(m, "gn.scan");
  assert_int_equal(scan->graph, 0);
  assert_true(scan->qk_scale == 1.0);
  assert_int_equal(src->graph, 0);
  assert_true(find_op(m, "gn.norm")->attr.norm.eps == 1e-5);

  /* the edge layer: D mode, reversed, so its line graph is pruned; biases by default */
  int64_t b12[] = {12}, s17[] = {3, 17}, t22[] = {3, 22}, b3[] = {3}, d12[] = {3, 12},
          n4[] = {3, 4};
  expect_tensor(m, "l1.query.weight", IR_WEIGHT, 2, w12);
  expect_tensor(m, "l1.query.bias", IR_WEIGHT, 1, b12);
  expect_tensor(m, "l1.value_.bias", IR_WEIGHT, 1, b12);
  expect_tensor(m, "l1.source.weight", IR_WEIGHT, 2, s17);
  expect_tensor(m, "l1.source.bias", IR_WEIGHT, 1, b3);
  expect_tensor(m, "l1.mark.weight", IR_WEIGHT, 2, s17);
  expect_tensor(m, "l1.transition.weight", IR_WEIGHT, 2, t22);
  expect_tensor(m, "l1.transition.bias", IR_WEIGHT, 1, b3);
  expect_tensor(m, "l1.direct.weight", IR_WEIGHT, 2, d12);
  expect_tensor(m, "l1.mhnorm.scale", IR_WEIGHT, 2, n4);
  expect_tensor(m, "l1.out.bias", IR_WEIGHT, 1, b12);
  assert_int_equal(count_weights(m, "l1."), 17);
  const ir_op *escan = find_op(m, "ge.scan");
  assert_true(escan->graph > 0);
  const ir_graph *g = &m->graphs[escan->graph];
  assert_true(g->reversed && g->multitree && g->origin == 0);
  assert_int_equal(find_op(m, "ge.x_arc")->attr.gather.map, IR_GATHER_ARC_SRC_TAIL);
  assert_int_equal(find_op(m, "ge.x_arc")->graph, escan->graph);
  assert_int_equal(find_op(m, "ge.transition_tanh")->attr.act.kind, IR_ACT_TANH_GAIN);
  assert_int_equal(find_op(m, "ge.transition_in")->code, IR_OP_CONCAT);
  const ir_op *last = &m->ops[m->n_ops - 1];
  assert_string_equal(last->name, "ge.out");
  assert_int_equal(last->out[0], ir_find_tensor(m, "y"));
  ir_module_free(m);
}

/* Line graphs: P on the reversed DAG keeps the full line graph unless asked; D asked for
 * the full one gets it; two layers asking for the same variant share one graph. */
static void graph_variants(void **state)
{
  (void)state;
  copy_graph_file();
  const char *p = variant("graph_layer.json", "gl_variants.json",
                          "\"mode\": \"D\", \"reverse\": true",
                          "\"mode\": \"P\", \"reverse\": true");
  ir_module *m = load_module_ok(p);
  const ir_graph *g = &m->graphs[find_op(m, "ge.scan")->graph];
  assert_true(g->reversed && !g->multitree);
  assert_int_equal(g->dag.n_arcs, m->graphs[0].dag.n_arcs); /* a reversal keeps the count */
  assert_true(find_op(m, "ge.transition_norm")->attr.pnorm.arcs);
  ir_module_free(m);
  p = variant("graph_layer.json", "gl_full.json", "\"reverse\": true",
              "\"line_graph\": \"full\"");
  m = load_module_ok(p);
  assert_int_equal(find_op(m, "ge.scan")->graph, 0);
  ir_module_free(m);
  p = variant("graph_layer.json", "gl_same.json", "\"heads\": 2, \"max_edges\": 3",
              "\"heads\": 2, \"max_edges\": 3, \"mode\": \"D\", \"reverse\": true");
  m = load_module_ok(p);
  assert_int_equal(find_op(m, "gn.scan")->graph, find_op(m, "ge.scan")->graph);
  assert_int_equal(m->n_graphs, 2);
  ir_module_free(m);
}

/* ------------------------------------------------------------------ errors */

static void option_errors(void **state)
{
  (void)state;
  copy_graph_file();
  const char *p;
  p = variant("graph_layer.json", "gl_max.json", "\"max_edges\": 3", "\"max_edges\": 2");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_max.json:12:31: layers[0].max_edges: max_edges 2 is less than "
                            "the graph's largest degree: node 0 of graph 0 in ",
                            "graph_layer.graph.json has 3 out-edges (each edge takes a slot at "
                            "both of its nodes, so max_edges must be at least 3)"));
  p = variant("graph_layer.json", "gl_nomax.json", ", \"max_edges\": 3", "");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_nomax.json:11:5: layers[0]: plstm_graph needs \"max_edges\""));
  p = variant("graph_layer.json", "gl_edgemax.json", "\"mode\": \"D\"",
              "\"mode\": \"D\", \"max_edges\": 3");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_edgemax.json", "layers[1].max_edges: unknown key 'max_edges'",
                            "expected one of: op, name, input, output, weights, heads, mode, "
                            "qk_head_dim, hv_head_dim, edge_input, bias, norm, out, reverse, "
                            "line_graph"));
  p = variant("graph_layer.json", "gl_mode.json", "\"mode\": \"D\"", "\"mode\": \"Q\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_mode.json:14:44: layers[1].mode: 'Q' is not one of 'P', 'D'"));
  p = variant("graph_layer.json", "gl_line.json", "\"reverse\": true",
              "\"line_graph\": \"pruned\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_line.json", "layers[1].line_graph: 'pruned' is not one of "
                            "'full', 'multitree'"));
  p = variant("graph_layer.json", "gl_rev.json", "\"reverse\": true", "\"reverse\": 1");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_rev.json", "layers[1].reverse: must be true or false, not an "
                            "integer"));
  p = variant("graph_layer.json", "gl_out.json", "\"heads\": 2, \"max_edges\": 3",
              "\"heads\": 2, \"max_edges\": 3, \"out\": false, \"hv_head_dim\": 4");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_out.json:11:5: layers[0]: without the output projection, "
                            "heads*hv_head_dim = 2*4 = 8 must equal dim 12"));
  /* D mode prunes the line graph, which a file that lists its arcs does not allow */
  write_tmp("gl_arcs.graph.json",
            "{\"nodes\": 4, \"edges\": [[0, 1], [1, 2], [1, 3]], \"arcs\": [[0, 1]]}\n");
  p = write_tmp("gl_arcs.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"dag\", \"file\": "
                "\"gl_arcs.graph.json\"},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"nodes\", 8]}],\n"
                " \"layers\": [{\"op\": \"plstm_graph\", \"input\": \"x\", \"output\": \"y\", "
                "\"max_edges\": 2, \"mode\": \"D\"}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_GRAPH,
                    NEEDLES("gl_arcs.json:3:88: layers[0].mode: ", "graph 0 lists its arcs, but a "
                            "multitree line graph is pruned from the full one"));
  p = variant("graph_layer.json", "gl_heads.json", "\"heads\": 2, \"max_edges\": 3",
              "\"heads\": 13, \"max_edges\": 3");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_heads.json", "dim 12 is too small for 13 heads"));
}

static void input_errors(void **state)
{
  (void)state;
  copy_graph_file();
  const char *p;
  p = variant("graph_layer.json", "gl_noedge.json", "\"edge_input\": \"e\", ", "");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_noedge.json:13:5: layers[1]: plstm_graph_edge needs "
                            "\"edge_input\": the name of the edge features [batch, edges, "
                            "edge_dim]"));
  p = variant("graph_layer.json", "gl_edgename.json", "\"edge_input\": \"e\"",
              "\"edge_input\": \"f\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_edgename.json:13:74: layers[1].edge_input: unknown tensor 'f'"));
  p = variant("graph_layer.json", "gl_edgetype.json", "\"edge_input\": \"e\"",
              "\"edge_input\": [\"e\"]");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_edgetype.json", "layers[1].edge_input: must be a tensor name (a "
                            "string), not an array"));
  /* edge features of another count, or without a batch: they do not fit the graph */
  p = variant("graph_layer.json", "gl_edgeshape.json", "[\"batch\", \"edges\", 5]",
              "[\"batch\", 7, 5]");
  expect_spec_error(p, NULL, 0, XY_E_SHAPE,
                    NEEDLES("gl_edgeshape.json", "layers[1].edge_input: edge features 'e' have "
                            "shape [2,7,5]; the layer reads [batch 2, edges 8, edge_dim]"));
  p = variant("graph_layer.json", "gl_edgerank.json", "[\"batch\", \"edges\", 5]",
              "[\"edges\", 5]");
  expect_spec_error(p, NULL, 0, XY_E_SHAPE,
                    NEEDLES("gl_edgerank.json", "have shape [8,5]; the layer reads [batch 2, "
                            "edges 8, edge_dim]"));
  p = variant("graph_layer.json", "gl_x.json", "[\"batch\", \"nodes\", 12]",
              "[\"batch\", 7, 12]");
  expect_spec_error(p, NULL, 0, XY_E_SHAPE,
                    NEEDLES("gl_x.json", "layers[0].input: the input's positions do not match "
                            "the graph"));
  p = variant("graph_layer.json", "gl_xrank.json", "[\"batch\", \"nodes\", 12]",
              "[\"batch\", \"nodes\", 3, 4]");
  expect_spec_error(p, NULL, 0, XY_E_SHAPE,
                    NEEDLES("gl_xrank.json", "layers[0].input: plstm_graph reads [batch, nodes, "
                            "dim], not a tensor of rank 4"));
  p = write_tmp("gl_seq.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"sequence\", \"length\": 4},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 8]}],\n"
                " \"layers\": [{\"op\": \"plstm_graph\", \"input\": \"x\", \"output\": \"y\", "
                "\"max_edges\": 2}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("gl_seq.json:3:13: layers[0]: a plstm_graph layer runs over a dag "
                            "graph, not this one"));
}

/* ------------------------------------------------------------------ weights files */

static xy_model *model_of(const char *path)
{
  xy_model *model = NULL;
  xy_error err;
  if (xy_model_load(path, NULL, &model, &err))
    fail_msg("%s", err.message);
  return model;
}

static float **input_buffers(const xy_model *model)
{
  size_t n = xy_model_num_inputs(model);
  float **in = calloc(n, sizeof *in);
  assert_non_null(in);
  for (size_t i = 0; i < n; i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    in[i] = calloc(t.count + 1, sizeof(float));
    assert_non_null(in[i]);
  }
  return in;
}

static void free_buffers(const xy_model *model, float **in)
{
  for (size_t i = 0; i < xy_model_num_inputs(model); i++)
    free(in[i]);
  free(in);
}

/* The weights of `written` read for `reading`: XY_OK (needles NULL) or the error. */
static void read_as(const char *written, const char *reading, const char *file, int code,
                    const char *const *needles)
{
  xy_model *w = model_of(written), *r = model_of(reading);
  const char *path = write_tmp(file, "");
  xy_error err;
  if (xy_model_write_random_weights(w, path, 7, &err))
    fail_msg("%s", err.message);
  float **in = input_buffers(r);
  int rc = xy_model_read_weights(r, path, in, &err);
  if (!needles) {
    if (rc)
      fail_msg("%s", err.message);
  } else {
    expect_error(rc, &err, code, needles);
  }
  free_buffers(r, in);
  xy_model_free(w);
  xy_model_free(r);
}

static void weight_errors(void **state)
{
  (void)state;
  copy_graph_file();
  const char *base = fixture("graph_layer.json");
  read_as(base, base, "gl_w_same.safetensors", XY_OK, NULL);
  /* the node layer with biases reads a file without them: missing */
  const char *biased = variant("graph_layer.json", "gl_bias.json", "\"max_edges\": 3",
                               "\"max_edges\": 3, \"bias\": true");
  read_as(base, biased, "gl_w_missing.safetensors", XY_E_SPEC, NEEDLES("no tensor named 'l0.query.bias' (a weight the model needs)"));
  /* and the other way round: a tensor under the prefix the layer does not take */
  read_as(biased, base, "gl_w_extra.safetensors", XY_E_SPEC,
          NEEDLES("tensor 'l0.query.bias' is not a weight of any layer"));
  /* more slots: the node-wise gates change shape */
  const char *wide = variant("graph_layer.json", "gl_wide.json", "\"max_edges\": 3",
                             "\"max_edges\": 4");
  read_as(base, wide, "gl_w_shape.safetensors", XY_E_SHAPE, NEEDLES("tensor 'l0.source.weight' has shape [6,12], the layer needs [8,12]"));
  /* wider edge features: the edge layer's gate weights */
  const char *ef = variant("graph_layer.json", "gl_ef.json", "[\"batch\", \"edges\", 5]",
                           "[\"batch\", \"edges\", 6]");
  read_as(base, ef, "gl_w_ef.safetensors", XY_E_SHAPE, NEEDLES("tensor 'l1.source.weight' has shape [3,17], the layer needs [3,18]"));
}

int run_graph_layer_tests(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(layers_expand),
    cmocka_unit_test(graph_variants),
    cmocka_unit_test(option_errors),
    cmocka_unit_test(input_errors),
    cmocka_unit_test(weight_errors),
  };
  return cmocka_run_group_tests_name("graph_layer", tests, NULL, NULL);
}
