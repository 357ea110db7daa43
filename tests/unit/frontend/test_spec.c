/* test_spec.c: model specs. Each bad spec is fixtures/seq.json (or dag.json) with one
 * change, so the expected line:col can be read off the fixture; each test checks the
 * error code, the file, line:col, JSON path and cause. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_test.h"

static ir_module *load_ok(const char *path, const char *const *overrides, size_t n)
{
  xy_load_options opt;
  xy_load_options_default(&opt);
  opt.overrides = overrides;
  opt.n_overrides = n;
  ir_module *m = NULL;
  xy_error err;
  memset(&err, 0, sizeof err);
  int rc = fe_load_spec(path, &opt, &m, &err);
  if (rc)
    fail_msg("loading %s failed (%d):\n%s", path, rc, err.message);
  assert_non_null(m);
  return m;
}

static const ir_tensor *tensor(const ir_module *m, const char *name)
{
  int t = ir_find_tensor(m, name);
  if (t < 0)
    fail_msg("no tensor '%s'", name);
  return &m->tensors[t];
}

static void expect_shape(const ir_tensor *t, int rank, const int64_t *d)
{
  ir_shape want = ir_shape_make(rank, d);
  if (!ir_shape_equal(&t->shape, &want))
    fail_msg("tensor '%s' has rank %d, not the expected shape", t->name, t->shape.rank);
}

/* ------------------------------------------------------------------ good specs */

static void good_sequence(void **state)
{
  (void)state;
  const char *path = fixture("seq.json");
  ir_module *m = load_ok(path, NULL, 0);
  assert_string_equal(m->name, "seq");
  assert_string_equal(m->spec_path, path);
  assert_int_equal(m->batch, 2);
  assert_int_equal(m->n_graphs, 1);
  assert_int_equal(m->graphs[0].kind, IR_GRAPH_SEQUENCE);
  assert_int_equal(m->graphs[0].length, 16);
  assert_int_equal(m->n_tensors, 10);
  assert_int_equal(m->n_inputs, 8);
  static const char *const ins[] = {"q", "k", "v", "S", "T", "M", "D", "C0"};
  for (int i = 0; i < 8; i++) {
    const ir_tensor *t = &m->tensors[m->inputs[i]];
    assert_string_equal(t->name, ins[i]);
    assert_int_equal(t->role, IR_INPUT);
    assert_int_equal(t->dtype, XY_F32);
    assert_int_equal(t->pos.line, 8 + i);
    assert_int_equal(t->pos.col, 5);
  }
  expect_shape(tensor(m, "q"), 4, (int64_t[]){2, 16, 8, 1});
  expect_shape(tensor(m, "D"), 6, (int64_t[]){2, 16, 1, 1, 1, 1});
  expect_shape(tensor(m, "C0"), 4, (int64_t[]){2, 8, 4, 1});
  assert_true(tensor(m, "q")->lo == -1.0 && tensor(m, "q")->hi == 1.0);
  assert_true(tensor(m, "T")->lo == -0.5 && tensor(m, "T")->hi == 0.5);
  assert_int_equal(m->n_ops, 1);
  const ir_op *op = &m->ops[0];
  assert_int_equal(op->code, IR_OP_PLSTM_SCAN);
  assert_string_equal(op->name, "scan");
  assert_int_equal(op->graph, 0);
  assert_true(fabs(op->qk_scale - 1.0 / sqrt(8.0)) < 1e-15); /* DK^-1/2 on sequences */
  assert_int_equal(op->pos.line, 18);
  assert_string_equal(op->pos.json_path, "layers[0]");
  assert_int_equal(op->in[7], ir_find_tensor(m, "C0"));
  const ir_tensor *y = tensor(m, "y"), *c = tensor(m, "C_last");
  assert_int_equal(y->role, IR_VALUE);
  assert_int_equal(y->producer, 0);
  expect_shape(y, 4, (int64_t[]){2, 16, 4, 1});
  expect_shape(c, 4, (int64_t[]){2, 8, 4, 1});
  assert_int_equal(m->n_outputs, 2);
  assert_int_equal(m->outputs[0], ir_find_tensor(m, "y"));
  assert_int_equal(m->outputs[1], ir_find_tensor(m, "C_last"));
  assert_string_equal(y->pos.json_path, "layers[0].outputs.out");
  xy_error err;
  assert_int_equal(ir_verify(m, &err), XY_OK);
  ir_module_free(m);
}

static void good_dag(void **state)
{
  (void)state;
  ir_module *m = load_ok(fixture("dag.json"), NULL, 0);
  assert_string_equal(m->name, "dag"); /* from the file name */
  assert_int_equal(m->batch, 3);
  const ir_graph *g = &m->graphs[0];
  assert_int_equal(g->kind, IR_GRAPH_DAG);
  assert_non_null(strstr(g->file, "fixtures/dag.graph.json"));
  assert_int_equal(g->dag.n_graphs, 2);
  assert_int_equal(g->dag.n_nodes, 7);
  assert_int_equal(g->dag.n_edges, 6);
  assert_int_equal(g->dag.n_arcs, 2);
  expect_shape(tensor(m, "q"), 4, (int64_t[]){3, 7, 4, 1});
  expect_shape(tensor(m, "S"), 5, (int64_t[]){3, 6, 1, 1, 1});
  expect_shape(tensor(m, "T"), 4, (int64_t[]){3, 2, 1, 1});
  expect_shape(tensor(m, "y"), 4, (int64_t[]){3, 7, 2, 1});
  assert_string_equal(m->ops[0].name, "plstm_scan0");
  assert_true(m->ops[0].qk_scale == 1.0); /* no scaling on graphs */
  xy_error err;
  assert_int_equal(ir_verify(m, &err), XY_OK);
  ir_module_free(m);
}

static void chained_layers_and_explicit_scale(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "chain.json", "\"C_final\": \"C_last\"}\n    }",
    "\"C_final\": \"C_last\"}\n    },\n"
    "    {\"op\": \"plstm_scan\", \"qk_scale\": 2,\n"
    "     \"inputs\": {\"q\": \"y\", \"k\": \"y\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
    "                \"M\": \"M\", \"D\": \"D\"},\n"
    "     \"outputs\": {\"out\": \"z\"}}");
  ir_module *m = load_ok(path, NULL, 0);
  assert_int_equal(m->n_ops, 2);
  assert_string_equal(m->ops[1].name, "plstm_scan1");
  assert_true(m->ops[1].qk_scale == 2.0);
  assert_int_equal(m->ops[1].in[0], ir_find_tensor(m, "y"));
  expect_shape(tensor(m, "z"), 4, (int64_t[]){2, 16, 4, 1});
  assert_int_equal(tensor(m, "z")->producer, 1);
  ir_module_free(m);
}

static void default_name_from_file(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "my-model.v2.json", "  \"name\": \"seq\",\n", "");
  ir_module *m = load_ok(path, NULL, 0);
  assert_string_equal(m->name, "my_model_v2");
  ir_module_free(m);
  path = variant("seq.json", "2d.json", "  \"name\": \"seq\",\n", "");
  m = load_ok(path, NULL, 0);
  assert_string_equal(m->name, "_2d");
  ir_module_free(m);
}

/* ------------------------------------------------------------------ malformed JSON */

static void malformed_truncated(void **state)
{
  (void)state;
  expect_spec_error(fixture("truncated.json"), NULL, 0, XY_E_PARSE,
                    NEEDLES("truncated.json:4:32: graph: ", "expected near end of file",
                            "\n  \"graph\": {\"kind\": \"sequence\",\n", "^"));
}

static void malformed_trailing_comma(void **state)
{
  (void)state;
  expect_spec_error(fixture("trailing_comma.json"), NULL, 0, XY_E_PARSE,
                    NEEDLES("trailing_comma.json:4:24: outputs[2]: unexpected token near ']'",
                            "\n  \"outputs\": [\"y\", \"c\",]\n                       ^"));
}

static void duplicate_key(void **state)
{
  (void)state;
  expect_spec_error(fixture("duplicate_key.json"), NULL, 0, XY_E_PARSE,
                    NEEDLES("duplicate_key.json:3:46: graph.length: duplicate object key"));
}

static void unreadable_files(void **state)
{
  (void)state;
  expect_spec_error(FE_TMPDIR "/no-such-spec.json", NULL, 0, XY_E_IO,
                    NEEDLES("no-such-spec.json", "cannot open"));
  const char *path = variant("dag.json", "nograph.json", "dag.graph.json", "missing.graph.json");
  expect_spec_error(path, NULL, 0, XY_E_IO,
                    NEEDLES("nograph.json:4:36: graph.file: ", "missing.graph.json: cannot open"));
}

/* ------------------------------------------------------------------ header */

static void wrong_version(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "version.json", "\"xylem\": 1", "\"xylem\": 2");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("version.json:2:12: xylem: unsupported spec format version 2",
                            "reads version 1"));
  path = variant("seq.json", "noversion.json", "  \"xylem\": 1,\n", "");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("noversion.json:1:1: missing required key 'xylem'"));
}

static void unknown_keys(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "topkey.json", "\"dtype\"", "\"dtyp\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("topkey.json:5:3: dtyp: unknown key 'dtyp' at the top level; "
                            "expected one of: xylem, name, batch, dtype, graph, inputs, layers, "
                            "outputs"));
  path = variant("seq.json", "layerkey.json", "\"name\": \"scan\",", "\"name\": \"scan\", \"qk_scal\": 0.5,");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("layerkey.json:20:23: layers[0].qk_scal: unknown key 'qk_scal' in "
                            "layers[0]; expected one of: op, name, inputs, outputs, qk_scale"));
  path = variant("seq.json", "graphkey.json", "\"length\": 16", "\"length\": 16, \"rows\": 2");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("graphkey.json:6:47: graph.rows: unknown key 'rows' in graph; "
                            "expected one of: kind, length"));
}

static void wrong_types(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "type.json", "\"batch\": 2", "\"batch\": \"2\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("type.json:4:12: batch: must be an integer, not a string"));
  path = variant("seq.json", "type2.json", "\"length\": 16", "\"length\": 16.5");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("type2.json:6:43: graph.length: must be an integer, not a real number"));
  path = variant("seq.json", "type4.json", "\"dtype\": \"float32\"", "\"dtype\": \"float16\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("type4.json:5:12: dtype: unknown dtype 'float16'; expected one of: "
                            "float32"));
  path = variant("seq.json", "nograph.json", "  \"graph\": {\"kind\": \"sequence\", \"length\": 16},\n", "");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("nograph.json:1:1: missing required key 'graph'"));
  path = variant("seq.json", "kind.json", "\"sequence\"", "\"tree\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("kind.json:6:21: graph.kind: unknown graph kind 'tree'; expected one "
                            "of: sequence, grid2d, dag"));
  path = variant("seq.json", "scale.json", "\"name\": \"scan\",", "\"name\": \"scan\", \"qk_scale\": \"big\",");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("scale.json:20:35: layers[0].qk_scale: must be a finite number, not a "
                            "string"));
}

static void bad_identifiers(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "ident.json", "\"name\": \"seq\"", "\"name\": \"3seq\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("ident.json:3:11: name: '3seq' is not a valid model name"));
  path = variant("seq.json", "ident2.json", "{\"name\": \"C0\"", "{\"name\": \"C-0\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("ident2.json:15:14: inputs[7].name: 'C-0' is not a valid tensor name"));
  path = variant("seq.json", "ident3.json", "\"name\": \"scan\"", "\"name\": \"my scan\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("ident3.json:20:15: layers[0].name: 'my scan' is not a valid layer "
                            "name"));
}

/* ------------------------------------------------------------------ tensors and slots */

static void duplicate_tensor_name(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "dup.json", "{\"name\": \"v\"", "{\"name\": \"q\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("dup.json:10:14: inputs[2].name: duplicate tensor name 'q' (already "
                            "declared at 8:5, inputs[0])"));
  path = variant("seq.json", "dup2.json", "{\"out\": \"y\"", "{\"out\": \"k\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("dup2.json:23:26: layers[0].outputs.out: duplicate tensor name 'k'"));
}

static void duplicate_layer_name(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "duplayer.json", "\"C_final\": \"C_last\"}\n    }",
    "\"C_final\": \"C_last\"}\n    },\n"
    "    {\"op\": \"plstm_scan\", \"name\": \"scan\",\n"
    "     \"inputs\": {\"q\": \"y\", \"k\": \"y\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
    "                \"M\": \"M\", \"D\": \"D\"},\n"
    "     \"outputs\": {\"out\": \"z\"}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("duplayer.json:25:34: layers[1].name: duplicate layer name 'scan' "
                            "(already used by layers[0])"));
}

static void unknown_tensor(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "unknown.json", "\"k\": \"k\"", "\"k\": \"kk\"");
  xy_load_options opt;
  xy_load_options_default(&opt);
  ir_module *m = NULL;
  xy_error err;
  int rc = fe_load_spec(path, &opt, &m, &err);
  assert_int_equal(rc, XY_E_SPEC);
  assert_null(m);
  /* The whole message: location, path, cause, then the line and a caret under column 33. */
  char want[1024];
  snprintf(want, sizeof want,
           "%s:21:33: layers[0].inputs.k: unknown tensor 'kk' (not a model input or an output "
           "of an earlier layer)\n"
           "      \"inputs\": {\"q\": \"q\", \"k\": \"kk\", \"v\": \"v\", \"S\": \"S\", \"T\": "
           "\"T\", \"M\": \"M\", \"D\": \"D\",\n"
           "%32s^", path, "");
  assert_string_equal(err.message, want);
}

static void missing_required_slot(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "noslot.json", "\"k\": \"k\", ", "");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("noslot.json:21:17: layers[0].inputs: missing required input slot "
                            "'k' of plstm_scan"));
  path = variant("seq.json", "noout.json", "{\"out\": \"y\", ", "{");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("noout.json:23:18: layers[0].outputs: missing required output slot "
                            "'out' of plstm_scan"));
}

static void unknown_slot(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "slot.json", "\"k\": \"k\"", "\"kk\": \"k\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("slot.json:21:28: layers[0].inputs.kk: unknown input slot 'kk' of "
                            "plstm_scan; expected one of: q, k, v, S, T, M, D, C_initial "
                            "(optional)"));
}

static void unknown_op(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "op.json", "\"plstm_scan\"", "\"plstm_scam\"");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("op.json:19:13: layers[0].op: unknown op 'plstm_scam'; expected one "
                            "of: plstm_scan"));
}

/* ------------------------------------------------------------------ shapes */

static void symbol_invalid_for_graph_kind(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "sym.json", "[\"batch\", \"length\", 8, 1]",
                             "[\"batch\", \"nodes\", 8, 1]");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("sym.json:8:38: inputs[0].shape[1]: unknown shape symbol 'nodes' for "
                            "a sequence graph; expected one of: batch, length"));
  path = variant("dag.json", "dagsym.json", "[\"batch\", \"nodes\", 4, 1]",
                 "[\"batch\", \"length\", 4, 1]");
  write_tmp("dag.graph.json", "{\"nodes\": 2, \"edges\": [[0, 1]]}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("dagsym.json:6:38: inputs[0].shape[1]: unknown shape symbol 'length' "
                            "for a dag graph; expected one of: batch, nodes, edges, arcs"));
  static const char *const grid[] = {"graph={\"kind\": \"grid2d\", \"rows\": 4, \"cols\": 4}"};
  expect_spec_error(fixture("seq.json"), grid, 1, XY_E_SPEC,
                    NEEDLES("seq.json:8:38: inputs[0].shape[1]: unknown shape symbol 'length' "
                            "for a grid2d graph; expected one of: batch, rows, cols"));
}

/* grid2d graphs get through the front end; plstm_scan refuses them (for now). */
static void grid2d_reaches_the_op(void **state)
{
  (void)state;
  const char *path = write_tmp("grid.json",
    "{\"xylem\": 1, \"graph\": {\"kind\": \"grid2d\", \"rows\": 3, \"cols\": 5},\n"
    " \"inputs\": [{\"name\": \"a\", \"shape\": [\"batch\", \"rows\", \"cols\", 2]},\n"
    "            {\"name\": \"b\", \"shape\": [\"batch\", \"rows\", 1, 1, 1]},\n"
    "            {\"name\": \"c\", \"shape\": [\"batch\", \"cols\", 1, 1, 1, 1]}],\n"
    " \"layers\": [{\"op\": \"plstm_scan\",\n"
    "   \"inputs\": {\"q\": \"a\", \"k\": \"a\", \"v\": \"a\", \"S\": \"b\", \"T\": \"a\",\n"
    "              \"M\": \"b\", \"D\": \"c\"}, \"outputs\": {\"out\": \"y\"}}],\n"
    " \"outputs\": [\"y\"]}\n");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("grid.json:5:13: layers[0]: plstm_scan 'plstm_scan0': grid2d graphs "
                            "are not supported"));
}

static void shape_mismatch(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "mismatch.json", "{\"name\": \"k\", \"shape\": [\"batch\", \"length\", 8",
                             "{\"name\": \"k\", \"shape\": [\"batch\", \"length\", 6");
  expect_spec_error(path, NULL, 0, XY_E_SHAPE,
                    NEEDLES("mismatch.json:18:5: layers[0]: plstm_scan 'scan': k has shape "
                            "[2,16,6,1], expected [2,16,8,1]"));
}

static void overflowing_shape(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "overflow.json", "[\"batch\", 8, 4, 1]",
                             "[\"batch\", 1099511627776, 1099511627776, 1]");
  expect_spec_error(path, NULL, 0, XY_E_LIMIT,
                    NEEDLES("overflow.json:15:29: inputs[7].shape: the element count overflows"));
  /* No overflow, but more than max_elements. */
  xy_load_options opt;
  xy_load_options_default(&opt);
  opt.limits.max_elements = 100;
  ir_module *m = NULL;
  xy_error err;
  int rc = fe_load_spec(fixture("seq.json"), &opt, &m, &err);
  assert_null(m);
  expect_error(rc, &err, XY_E_LIMIT,
               NEEDLES("seq.json:8:28: inputs[0].shape: 256 elements are more than the limit of "
                       "100"));
  path = variant("seq.json", "rank.json", "[\"batch\", 8, 4, 1]", "[\"batch\", 8, 4, 1, 1, 1, 1, 1, 1]");
  expect_spec_error(path, NULL, 0, XY_E_SHAPE,
                    NEEDLES("rank.json:15:29: inputs[7].shape: rank 9 is more than the limit of 8"));
}

static void nonpositive_dims(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "zero.json", "[\"batch\", 8, 4, 1]", "[\"batch\", 8, 0, 1]");
  expect_spec_error(path, NULL, 0, XY_E_SHAPE,
                    NEEDLES("zero.json:15:42: inputs[7].shape[2]: dimension 0: dimensions must "
                            "be at least 1"));
  path = variant("seq.json", "neg.json", "[\"batch\", 8, 4, 1]", "[\"batch\", -8, 4, 1]");
  expect_spec_error(path, NULL, 0, XY_E_SHAPE,
                    NEEDLES("neg.json:15:39: inputs[7].shape[1]: dimension -8: dimensions must "
                            "be at least 1"));
  path = variant("seq.json", "batch0.json", "\"batch\": 2", "\"batch\": 0");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("batch0.json:4:12: batch: must be at least 1, not 0"));
}

static void bad_range(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "range.json", "\"range\": [0, 1]", "\"range\": [1, 0]");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("range.json:11:67: inputs[3].range: lo (1) must be less than hi (0)"));
  path = variant("seq.json", "range2.json", "\"range\": [0, 1]", "\"range\": [0]");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("range2.json:11:67: inputs[3].range: must be [lo, hi], two numbers"));
}

/* ------------------------------------------------------------------ outputs */

static void empty_outputs(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "noout2.json", "[\"y\", \"C_last\"]", "[]");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("noout2.json:26:14: outputs: the model has no outputs"));
}

static void output_not_produced(void **state)
{
  (void)state;
  const char *path = variant("seq.json", "outin.json", "[\"y\", \"C_last\"]", "[\"y\", \"q\"]");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("outin.json:26:20: outputs[1]: 'q' is a model input; outputs must be "
                            "produced by a layer"));
  path = variant("seq.json", "outzz.json", "[\"y\", \"C_last\"]", "[\"y\", \"zz\"]");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("outzz.json:26:20: outputs[1]: unknown tensor 'zz'"));
  path = variant("seq.json", "outdup.json", "[\"y\", \"C_last\"]", "[\"y\", \"y\"]");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("outdup.json:26:20: outputs[1]: 'y' is listed twice"));
}

/* ------------------------------------------------------------------ overrides */

static void overrides_applied(void **state)
{
  (void)state;
  static const char *const ov[] = {"graph.length=32", "layers[0].qk_scale=0.5",
                                   "inputs[2].range=[0, 2]", "name=\"other\"", "batch=3"};
  ir_module *m = load_ok(fixture("seq.json"), ov, XY_ARRAY_LEN(ov));
  assert_string_equal(m->name, "other");
  assert_int_equal(m->batch, 3);
  assert_int_equal(m->graphs[0].length, 32);
  assert_true(m->ops[0].qk_scale == 0.5); /* a key the file lacks: created */
  assert_true(tensor(m, "v")->lo == 0.0 && tensor(m, "v")->hi == 2.0);
  expect_shape(tensor(m, "y"), 4, (int64_t[]){3, 32, 4, 1});
  ir_module_free(m);
}

static void overrides_bad(void **state)
{
  (void)state;
  const char *path = fixture("seq.json");
  static const struct {
    const char *ov, *needle;
  } cases[] = {
    {"graph.x.y=1", "seq.json: override 'graph.x.y=1': graph has no key 'x'"},
    {"inputs[9].name=\"a\"", "override 'inputs[9].name=\"a\"': inputs has 8 elements; index 9 "
                             "is out of range"},
    {"inputs[8]=1", "inputs has 8 elements; index 8 is out of range"},
    {"batch.x=1", "override 'batch.x=1': batch is an integer, not an object"},
    {"graph[0]=1", "override 'graph[0]=1': graph is an object, not an array"},
    {"graph..length=1", "override 'graph..length=1': bad path"},
    {"=1", "override '=1' must have the form PATH=VALUE"},
    {"graph.length", "override 'graph.length' must have the form PATH=VALUE"},
    {"graph.length=abc", "override 'graph.length=abc': the value is not JSON"},
  };
  for (size_t i = 0; i < XY_ARRAY_LEN(cases); i++) {
    const char *ov[] = {"batch=1", cases[i].ov};
    expect_spec_error(path, ov, 2, XY_E_USAGE, NEEDLES(cases[i].needle));
  }
  /* A bad value set by an override is named as such, without a line. */
  static const char *const zero[] = {"graph.length=0"};
  expect_spec_error(path, zero, 1, XY_E_SPEC,
                    NEEDLES("seq.json: graph.length: must be at least 1, not 0 (the value comes "
                            "from override 'graph.length=0')"));
  static const char *const layer[] = {"layers[0]={\"op\": \"nope\"}"};
  expect_spec_error(path, layer, 1, XY_E_SPEC,
                    NEEDLES("seq.json: layers[0].op: unknown op 'nope'", "from override"));
}

/* ------------------------------------------------------------------ robustness */

/* A spec may not declare more tensors than the front end's cap. */
static void too_many_tensors(void **state)
{
  (void)state;
  enum { N = 16385 };
  size_t cap = (size_t)N * 48 + 512;
  char *text = malloc(cap);
  assert_non_null(text);
  size_t len = (size_t)snprintf(text, cap, "{\"xylem\": 1, \"graph\": {\"kind\": \"sequence\", "
                                "\"length\": 4},\n \"inputs\": [\n");
  for (int i = 0; i < N; i++)
    len += (size_t)snprintf(text + len, cap - len, "%s{\"name\": \"t%d\", \"shape\": [1]}",
                            i ? ",\n" : "", i);
  snprintf(text + len, cap - len, "],\n \"layers\": [], \"outputs\": []}\n");
  expect_spec_error(write_tmp("many.json", text), NULL, 0, XY_E_LIMIT,
                    NEEDLES("many.json:16387:10: inputs[16384].name: a spec may declare at most "
                            "16384 tensors"));
  free(text);
}

/* Every prefix of a good spec, and some corrupted copies, fail cleanly. */
static void never_crash(void **state)
{
  (void)state;
  FILE *f = fopen(fixture("seq.json"), "rb");
  assert_non_null(f);
  char text[4096];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  char buf[4096];
  for (size_t len = 0; len < n; len += 1) {
    memcpy(buf, text, len);
    buf[len] = '\0';
    const char *path = write_tmp("prefix.json", buf);
    xy_error err;
    ir_module *m = NULL;
    int rc = fe_load_spec(path, NULL, &m, &err);
    if (len < n - 1) /* everything but the last newline is needed */
      assert_true(rc != XY_OK && m == NULL);
    ir_module_free(m);
  }
  uint64_t s = 12345;
  for (int k = 0; k < 1500; k++) {
    memcpy(buf, text, n + 1);
    for (int j = 0; j < 3; j++) {
      s = s * 6364136223846793005u + 1442695040888963407u;
      size_t at = (size_t)(s >> 33) % n;
      static const char junk[] = "{}[],:\"\\0123-eE.x \n";
      buf[at] = junk[(s >> 20) % (sizeof junk - 1)];
    }
    const char *path = write_tmp("mutant.json", buf);
    xy_error err;
    ir_module *m = NULL;
    int rc = fe_load_spec(path, NULL, &m, &err);
    assert_true((rc == XY_OK) == (m != NULL));
    ir_module_free(m);
  }
}

int run_spec_tests(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(good_sequence),
    cmocka_unit_test(good_dag),
    cmocka_unit_test(chained_layers_and_explicit_scale),
    cmocka_unit_test(default_name_from_file),
    cmocka_unit_test(malformed_truncated),
    cmocka_unit_test(malformed_trailing_comma),
    cmocka_unit_test(duplicate_key),
    cmocka_unit_test(unreadable_files),
    cmocka_unit_test(wrong_version),
    cmocka_unit_test(unknown_keys),
    cmocka_unit_test(wrong_types),
    cmocka_unit_test(bad_identifiers),
    cmocka_unit_test(duplicate_tensor_name),
    cmocka_unit_test(duplicate_layer_name),
    cmocka_unit_test(unknown_tensor),
    cmocka_unit_test(missing_required_slot),
    cmocka_unit_test(unknown_slot),
    cmocka_unit_test(unknown_op),
    cmocka_unit_test(symbol_invalid_for_graph_kind),
    cmocka_unit_test(grid2d_reaches_the_op),
    cmocka_unit_test(shape_mismatch),
    cmocka_unit_test(overflowing_shape),
    cmocka_unit_test(nonpositive_dims),
    cmocka_unit_test(bad_range),
    cmocka_unit_test(empty_outputs),
    cmocka_unit_test(output_not_produced),
    cmocka_unit_test(overrides_applied),
    cmocka_unit_test(overrides_bad),
    cmocka_unit_test(too_many_tensors),
    cmocka_unit_test(never_crash),
  };
  return cmocka_run_group_tests_name("frontend_spec", tests, NULL, NULL);
}
