/* test_memory_spec.c: memory_scan layers and their schedules, and the spec's stages. Each
 * bad spec is fixtures/memory.json (or memory_full.json, memory_ttt.json) with one change,
 * so the expected line:col can be read off the fixture; each test checks the error code,
 * the file, line:col, JSON path and the rule broken. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_test.h"

/* The schedule of memory.json's layer, which the variants change. */
#define SCHED "\"schedule\": {\"chunk\": 4}"

static int load(const char *path, const char *stage, const char *const *ov, size_t n,
                ir_module **m, xy_error *err)
{
  xy_load_options opt;
  xy_load_options_default(&opt);
  opt.overrides = ov;
  opt.n_overrides = n;
  opt.stage = stage;
  *m = NULL;
  memset(err, 0, sizeof *err);
  return fe_load_spec(path, &opt, m, err);
}

static ir_module *load_ok(const char *path, const char *stage, const char *const *ov, size_t n)
{
  ir_module *m;
  xy_error err;
  int rc = load(path, stage, ov, n, &m, &err);
  if (rc)
    fail_msg("loading %s failed (%d):\n%s", path, rc, err.message);
  assert_non_null(m);
  xy_error verr;
  assert_int_equal(ir_verify(m, &verr), XY_OK);
  return m;
}

static void expect_stage_error(const char *path, const char *stage, const char *const *ov,
                               size_t n, int code, const char *const *needles)
{
  ir_module *m;
  xy_error err;
  int rc = load(path, stage, ov, n, &m, &err);
  assert_null(m);
  expect_error(rc, &err, code, needles);
}

/* memory.json with its schedule replaced by sched. */
static const char *with_schedule(const char *name, const char *sched)
{
  char to[1024];
  snprintf(to, sizeof to, "\"schedule\": %s", sched);
  return variant("memory.json", name, SCHED, to);
}

static const ir_memory_attrs *attrs(const ir_module *m)
{
  assert_int_equal(m->n_ops, 1);
  assert_int_equal(m->ops[0].code, IR_OP_MEMORY_SCAN);
  return &m->ops[0].attr.memory;
}

static void expect_shape(const ir_module *m, const char *name, int rank, const int64_t *d)
{
  int t = ir_find_tensor(m, name);
  assert_true(t >= 0);
  ir_shape want = ir_shape_make(rank, d);
  if (!ir_shape_equal(&m->tensors[t].shape, &want))
    fail_msg("tensor '%s' does not have the expected shape", name);
}

/* ------------------------------------------------------------------ good schedules */

static void defaults(void **state)
{
  (void)state;
  ir_module *m = load_ok(fixture("memory.json"), NULL, NULL, 0);
  const ir_op *op = &m->ops[0];
  const ir_memory_attrs *a = attrs(m);
  assert_string_equal(op->name, "mem");
  assert_int_equal(op->graph, 0);
  assert_string_equal(op->pos.json_path, "layers[0]");
  assert_int_equal(a->chunk, 4);
  assert_int_equal(a->reset, 0);
  assert_int_equal(a->hidden, 0); /* linear */
  assert_int_equal(a->act, MEM_ACT_GELU_TANH);
  assert_false(a->bias);
  assert_false(a->ln_residual);
  assert_true(a->ln_eps == 1e-6);
  assert_true(a->loss_scale == 1.0);
  assert_false(a->ttt_lr);
  assert_false(a->momentum);
  assert_false(a->decay);
  assert_int_equal(a->read, MEM_READ_INCLUSIVE);
  assert_int_equal(a->qkproj, MEM_QK_NONE);
  expect_shape(m, "y", 4, (int64_t[]){2, 64, 2, 8});
  assert_int_equal(m->tensors[ir_find_tensor(m, "y")].producer, 0);
  ir_module_free(m);
}

static void every_key(void **state)
{
  (void)state;
  ir_module *m = load_ok(fixture("memory_full.json"), NULL, NULL, 0);
  const ir_memory_attrs *a = attrs(m);
  assert_int_equal(a->hidden, 16); /* expand 2 x DK 8 */
  assert_int_equal(a->act, MEM_ACT_SILU);
  assert_true(a->bias);
  assert_true(a->ln_residual);
  assert_true(a->ln_eps == 1e-5);
  assert_true(a->loss_scale == 0.5);
  assert_false(a->ttt_lr);
  assert_true(a->momentum);
  assert_true(a->decay);
  assert_int_equal(a->chunk, 4);
  assert_int_equal(a->reset, 16);
  assert_int_equal(a->read, MEM_READ_EXCLUSIVE);
  assert_int_equal(a->qkproj, MEM_QK_SHARD);
  /* The state: W, anchor and momentum (280 each: W1 16x8, W2 8x16, b1 16, b2 8), P 8x8,
   * the phase. */
  expect_shape(m, "state", 3, (int64_t[]){2, 2, 3 * 280 + 64 + 1});
  ir_module_free(m);
}

static void short_forms(void **state)
{
  (void)state;
  const char *path = fixture("memory_full.json");
  static const char *const ov[] = {
    "layers[0].schedule.wrap=\"ln_residual\"", "layers[0].schedule.loss=\"l2\"",
    "layers[0].schedule.lr=\"token\"", "layers[0].schedule.qkproj=\"chunk\"",
    "layers[0].schedule.reset=\"none\"",
    "layers[0].schedule.model={\"kind\": \"mlp\", \"hidden\": 16, \"act\": \"gelu\"}",
    "inputs[6].shape=[2, 256]"};
  ir_module *m = load_ok(path, NULL, ov, XY_ARRAY_LEN(ov));
  const ir_memory_attrs *a = attrs(m);
  assert_true(a->ln_residual);
  assert_true(a->ln_eps == 1e-6);
  assert_true(a->loss_scale == 1.0);
  assert_int_equal(a->qkproj, MEM_QK_CHUNK);
  assert_int_equal(a->reset, 0);
  assert_int_equal(a->hidden, 16);
  assert_int_equal(a->act, MEM_ACT_GELU_TANH); /* gelu is the tanh approximation */
  assert_false(a->bias);
  ir_module_free(m);

  /* A global module may reset; "gelu_tanh" is gelu; the linear model's object form. */
  static const char *const glob[] = {
    "layers[0].schedule={\"role\": \"global\", \"chunk\": 4, \"reset\": 8, \"read\": "
    "\"chunk_start\", \"model\": {\"kind\": \"linear\", \"bias\": false}, \"init\": \"param\"}"};
  m = load_ok(fixture("memory.json"), NULL, glob, 1);
  a = attrs(m);
  assert_int_equal(a->reset, 8);
  assert_int_equal(a->read, MEM_READ_CHUNK_START);
  assert_int_equal(a->hidden, 0);
  ir_module_free(m);

  /* init zero: no W_init. */
  const char *zero = variant("memory.json", "init_zero.json",
                             ", \"W_init\": \"W_init\"}", "}");
  static const char *const zov[] = {"layers[0].schedule={\"chunk\": 4, \"init\": \"zero\"}"};
  m = load_ok(zero, NULL, zov, 1);
  assert_int_equal(m->ops[0].in[ir_op_in_slot(IR_OP_MEMORY_SCAN, "W_init")], -1);
  ir_module_free(m);
}

static void ttt_schedule(void **state)
{
  (void)state;
  const char *path = fixture("memory_ttt.json");
  ir_module *m = load_ok(path, NULL, NULL, 0);
  const ir_memory_attrs *a = attrs(m);
  assert_string_equal(m->ops[0].name, "memory_scan0");
  assert_true(a->ttt_lr);
  assert_true(a->ttt_base == 1.0);
  assert_true(a->ttt_div == 8.0); /* per_head_div "dk": q's last axis */
  assert_true(a->bias);
  assert_true(a->ln_residual);
  assert_true(a->loss_scale == 0.5);
  assert_int_equal(a->chunk, 16);
  ir_module_free(m);
  static const char *const ov[] = {
    "layers[0].schedule.lr={\"kind\": \"ttt_matrix\", \"base\": 0.1, \"per_head_div\": 4}"};
  m = load_ok(path, NULL, ov, 1);
  a = attrs(m);
  assert_true(a->ttt_base == 0.1);
  assert_true(a->ttt_div == 4.0);
  ir_module_free(m);
  static const char *const dk[] = {"layers[0].schedule.lr.per_head_div=\"dk\""};
  m = load_ok(path, NULL, dk, 1);
  assert_true(attrs(m)->ttt_div == 8.0);
  ir_module_free(m);
}

/* ------------------------------------------------------------------ the rules */

static void reset_not_multiple_of_chunk(void **state)
{
  (void)state;
  const char *path = with_schedule("reset6.json", "{\"chunk\": 4, \"reset\": 6}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("reset6.json:19:41: layers[0].schedule.reset: reset 6 is not a "
                            "multiple of chunk 4: a chunk may not straddle a reset"));
}

static void qkproj_rules(void **state)
{
  (void)state;
  const char *path = with_schedule("qknoreset.json",
                                   "{\"role\": \"local\", \"chunk\": 4, \"qkproj\": \"shard\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("qknoreset.json:19:59: layers[0].schedule.qkproj: qkproj 'shard' "
                            "needs a reset"));
  path = with_schedule("qkrole.json",
                       "{\"role\": \"global\", \"chunk\": 4, \"reset\": 8, \"qkproj\": \"shard\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("qkrole.json:19:72: layers[0].schedule.qkproj: qkproj 'shard' needs "
                            "role 'local'", "not role 'global'"));
  /* The default role is single. */
  path = with_schedule("qksingle.json", "{\"chunk\": 4, \"qkproj\": {\"kind\": \"chunk\"}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("qksingle.json:19:42: layers[0].schedule.qkproj: qkproj 'chunk' "
                            "needs role 'local'", "not role 'single'"));
  path = with_schedule("qknorm.json", "{\"role\": \"local\", \"chunk\": 4, \"qkproj\": "
                       "{\"kind\": \"chunk\", \"normalize\": false}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("qknorm.json:19:90: layers[0].schedule.qkproj.normalize: only "
                            "normalised keys are supported"));
}

static void ttt_rules(void **state)
{
  (void)state;
  static const struct {
    const char *to, *needle;
  } cases[] = {
    {"\"chunk\": 16, \"momentum\": \"token\"",
     "ttt_momentum.json:23:45: layers[0].schedule.momentum: momentum 'token' is not allowed "
     "with lr 'ttt_matrix': it implies momentum 'none' and decay 'none'"},
    {"\"chunk\": 16, \"decay\": \"token\"",
     "ttt_decay.json:23:42: layers[0].schedule.decay: decay 'token' is not allowed with lr "
     "'ttt_matrix'"},
    {"\"chunk\": 16, \"reset\": 32",
     "ttt_reset.json:23:42: layers[0].schedule.reset: lr 'ttt_matrix' takes no reset"},
    {"\"chunk\": 16, \"read\": \"chunk_start\"",
     "ttt_read.json:23:41: layers[0].schedule.read: lr 'ttt_matrix' reads inclusively"},
  };
  static const char *const names[] = {"ttt_momentum.json", "ttt_decay.json", "ttt_reset.json",
                                      "ttt_read.json"};
  for (size_t i = 0; i < XY_ARRAY_LEN(cases); i++) {
    const char *path = variant("memory_ttt.json", names[i], "\"chunk\": 16", cases[i].to);
    expect_spec_error(path, NULL, 0, XY_E_SPEC, NEEDLES(cases[i].needle));
  }
  const char *path = variant("memory_ttt.json", "ttt_div.json", "\"base\": 1",
                             "\"base\": 1, \"per_head_div\": 0");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("ttt_div.json:22:114: layers[0].schedule.lr.per_head_div: must be "
                            "greater than 0, not 0"));
}

static void unsupported_choices(void **state)
{
  (void)state;
  const char *path = with_schedule("depth3.json",
                                   "{\"chunk\": 4, \"model\": {\"kind\": \"mlp\", \"expand\": 4, "
                                   "\"depth\": 3}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("depth3.json:19:79: layers[0].schedule.model.depth: only depth 2 is "
                            "supported", "not 3"));
  path = with_schedule("lrchunk.json", "{\"chunk\": 4, \"lr\": \"chunk\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("lrchunk.json:19:38: layers[0].schedule.lr: lr 'chunk' is not "
                            "supported yet (use 'token')"));
  path = with_schedule("momchunk.json", "{\"chunk\": 4, \"momentum\": \"chunk\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("momchunk.json:19:44: layers[0].schedule.momentum: momentum 'chunk' "
                            "is not supported yet (use 'token')"));
  path = with_schedule("mlpwidth.json", "{\"chunk\": 4, \"model\": \"mlp\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("mlpwidth.json:19:41: layers[0].schedule.model: an mlp memory needs "
                            "its width"));
  path = with_schedule("expand.json", "{\"chunk\": 4, \"model\": {\"kind\": \"mlp\", "
                       "\"expand\": 262144}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("expand.json:19:67: layers[0].schedule.model.expand: hidden = expand x "
                            "DK = 262144 x 8 is more than 1048576"));
  path = with_schedule("mlpboth.json", "{\"chunk\": 4, \"model\": {\"kind\": \"mlp\", "
                       "\"hidden\": 8, \"expand\": 2}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("mlpboth.json:19:80: layers[0].schedule.model.expand: give 'hidden' "
                            "or 'expand', not both"));
}

static void unknown_keys_and_values(void **state)
{
  (void)state;
  const char *path = with_schedule("skey.json", "{\"chunk\": 4, \"chunks\": 4}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("skey.json:19:32: layers[0].schedule.chunks: unknown key 'chunks' in "
                            "layers[0].schedule; expected one of: role, model, wrap, loss, lr, "
                            "momentum, decay, chunk, reset, init, read, qkproj"));
  path = with_schedule("mkey.json", "{\"chunk\": 4, \"model\": {\"kind\": \"linear\", "
                       "\"expand\": 2}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("mkey.json:19:60: layers[0].schedule.model.expand: unknown key "
                            "'expand' in layers[0].schedule.model; expected one of: kind, bias"));
  path = with_schedule("wkey.json", "{\"chunk\": 4, \"wrap\": {\"kind\": \"none\", \"eps\": 1}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("wkey.json:19:57: layers[0].schedule.wrap.eps: unknown key 'eps' in "
                            "layers[0].schedule.wrap; expected one of: kind\n"));
  path = with_schedule("role.json", "{\"chunk\": 4, \"role\": \"regional\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("role.json:19:40: layers[0].schedule.role: unknown role 'regional'; "
                            "expected one of: single, global, local"));
  path = with_schedule("read.json", "{\"chunk\": 4, \"read\": \"after\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("read.json:19:40: layers[0].schedule.read: unknown read 'after'; "
                            "expected one of: inclusive, chunk_start, exclusive"));
  path = with_schedule("act.json", "{\"chunk\": 4, \"model\": {\"kind\": \"mlp\", \"hidden\": 4, "
                       "\"act\": \"relu\"}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("act.json:19:77: layers[0].schedule.model.act: unknown act 'relu'; "
                            "expected one of: gelu, gelu_tanh, silu"));
  path = with_schedule("nokind.json", "{\"chunk\": 4, \"lr\": {\"base\": 1}}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("nokind.json:19:38: layers[0].schedule.lr: missing required key "
                            "'kind'"));
  /* A plstm attribute is not a memory_scan one. */
  path = variant("memory.json", "qkscale.json", SCHED, SCHED ", \"qk_scale\": 1");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("qkscale.json:19:33: layers[0].qk_scale: unknown key 'qk_scale' in "
                            "layers[0]; expected one of: op, name, inputs, outputs, schedule"));
}

static void wrong_types(void **state)
{
  (void)state;
  static const struct {
    const char *name, *sched, *needle;
  } cases[] = {
    {"t_chunk.json", "{\"chunk\": \"4\"}",
     "t_chunk.json:19:29: layers[0].schedule.chunk: must be an integer, not a string"},
    {"t_chunkr.json", "{\"chunk\": 4.0}",
     "t_chunkr.json:19:29: layers[0].schedule.chunk: must be an integer, not a real number"},
    {"t_chunk0.json", "{\"chunk\": 0}",
     "t_chunk0.json:19:29: layers[0].schedule.chunk: must be at least 1, not 0"},
    {"t_reset.json", "{\"chunk\": 4, \"reset\": true}",
     "t_reset.json:19:41: layers[0].schedule.reset: must be \"none\" or an integer >= 1"},
    {"t_mom.json", "{\"chunk\": 4, \"momentum\": true}",
     "t_mom.json:19:44: layers[0].schedule.momentum: must be a string, not a boolean"},
    {"t_model.json", "{\"chunk\": 4, \"model\": 3}",
     "t_model.json:19:41: layers[0].schedule.model: must be a string or an object "
     "{\"kind\": ...}, not an integer"},
    {"t_bias.json", "{\"chunk\": 4, \"model\": {\"kind\": \"linear\", \"bias\": \"yes\"}}",
     "t_bias.json:19:68: layers[0].schedule.model.bias: must be true or false, not a string"},
    {"t_scale.json", "{\"chunk\": 4, \"loss\": {\"kind\": \"l2\", \"scale\": \"1\"}}",
     "t_scale.json:19:64: layers[0].schedule.loss.scale: must be a finite number, not a "
     "string"},
    {"t_eps.json", "{\"chunk\": 4, \"wrap\": {\"kind\": \"ln_residual\", \"eps\": -1}}",
     "t_eps.json:19:71: layers[0].schedule.wrap.eps: must be at least 0, not -1"},
    {"t_sched.json", "[4]",
     "t_sched.json:19:19: layers[0].schedule: a schedule is an object {\"chunk\": ..., ...}, "
     "not an array"},
  };
  for (size_t i = 0; i < XY_ARRAY_LEN(cases); i++)
    expect_spec_error(with_schedule(cases[i].name, cases[i].sched), NULL, 0, XY_E_SPEC,
                      NEEDLES(cases[i].needle));
}

static void missing_pieces(void **state)
{
  (void)state;
  const char *path = with_schedule("nochunk.json", "{\"reset\": 8}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("nochunk.json:19:19: layers[0].schedule: missing required key "
                            "'chunk' (the chunk size is part of the model"));
  path = variant("memory.json", "nosched.json", ",\n      " SCHED, "");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("nosched.json:14:5: layers[0]: missing required key 'schedule'"));
  /* init zero reads no W_init; init param (the default) needs one. */
  path = with_schedule("zero_w.json", "{\"chunk\": 4, \"init\": \"zero\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("zero_w.json:17:76: layers[0].inputs.W_init: W_init is given, but "
                            "the schedule's init is 'zero'"));
  path = variant("memory.json", "param_w.json", ", \"W_init\": \"W_init\"}", "}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("param_w.json:17:17: layers[0].inputs: missing input slot 'W_init': "
                            "the schedule's init is 'param'"));
  /* The op's own slot rules come back at the layer: momentum reads eta. */
  path = with_schedule("noeta.json", "{\"chunk\": 4, \"momentum\": \"token\"}");
  expect_spec_error(path, NULL, 0, XY_E_SPEC,
                    NEEDLES("noeta.json:14:5: layers[0]: memory_scan 'mem': input eta is "
                            "missing (momentum)"));
}

static void shapes_and_graph(void **state)
{
  (void)state;
  const char *path = fixture("memory.json");
  static const char *const batch[] = {"inputs[0].shape=[3, 64, 2, 8]",
                                      "inputs[1].shape=[3, 64, 2, 8]",
                                      "inputs[2].shape=[3, 64, 2, 8]",
                                      "inputs[3].shape=[3, 64, 2]"};
  expect_spec_error(path, batch, 4, XY_E_SHAPE,
                    NEEDLES("memory.json:14:5: layers[0]: memory_scan 'mem': q has batch 3, the "
                            "model's batch is 2"));
  static const char *const len[] = {"inputs[0].shape=[2, 32, 2, 8]",
                                    "inputs[1].shape=[2, 32, 2, 8]",
                                    "inputs[2].shape=[2, 32, 2, 8]",
                                    "inputs[3].shape=[2, 32, 2]"};
  expect_spec_error(path, len, 4, XY_E_SHAPE,
                    NEEDLES("memory.json:14:5: layers[0]: memory_scan 'mem': q has length 32 "
                            "(axis 1), the sequence's length is 64"));
  static const char *const rank[] = {"inputs[0].shape=[\"batch\", \"length\", 16]"};
  expect_spec_error(path, rank, 1, XY_E_SHAPE,
                    NEEDLES("memory.json:17:23: layers[0].inputs.q: memory_scan 'mem': q must "
                            "have rank 4 [B, L, H, DK], not 3"));
  static const char *const grid[] = {
    "graph={\"kind\": \"grid2d\", \"rows\": 8, \"cols\": 8}", "inputs[0].shape=[2, 64, 2, 8]",
    "inputs[1].shape=[2, 64, 2, 8]", "inputs[2].shape=[2, 64, 2, 8]",
    "inputs[3].shape=[2, 64, 2]"};
  expect_spec_error(path, grid, 5, XY_E_SPEC,
                    NEEDLES("memory.json:14:5: layers[0]: memory_scan 'mem' runs along a "
                            "sequence graph, not a grid2d graph"));
  /* k must match q (the op's shape rule, reported at the layer). */
  static const char *const k[] = {"inputs[1].shape=[\"batch\", \"length\", 2, 4]"};
  expect_spec_error(path, k, 1, XY_E_SHAPE,
                    NEEDLES("memory.json:14:5: layers[0]: memory_scan 'mem': k has shape "
                            "[2,64,2,4], expected [2,64,2,8]"));
}

/* ------------------------------------------------------------------ stages */

static void stages_applied(void **state)
{
  (void)state;
  const char *path = fixture("memory.json");
  ir_module *m = load_ok(path, "stage2", NULL, 0);
  assert_int_equal(attrs(m)->chunk, 2);
  ir_module_free(m);
  m = load_ok(path, "tiny", NULL, 0);
  assert_int_equal(attrs(m)->chunk, 1);
  assert_int_equal(m->graphs[0].length, 8);
  expect_shape(m, "y", 4, (int64_t[]){2, 8, 2, 8});
  ir_module_free(m);
  /* Overrides come after the stage. */
  static const char *const ov[] = {"layers[0].schedule.chunk=8"};
  m = load_ok(path, "stage2", ov, 1);
  assert_int_equal(attrs(m)->chunk, 8);
  ir_module_free(m);
  /* Without --stage the stages are checked, not applied. */
  m = load_ok(path, NULL, NULL, 0);
  assert_int_equal(attrs(m)->chunk, 4);
  ir_module_free(m);
}

static void stages_bad(void **state)
{
  (void)state;
  const char *path = fixture("memory.json");
  expect_stage_error(path, "stage3", NULL, 0, XY_E_USAGE,
                     NEEDLES("memory.json:22:13: stages: unknown stage 'stage3'; expected one "
                             "of: stage2, tiny"));
  expect_stage_error(fixture("seq.json"), "stage2", NULL, 0, XY_E_USAGE,
                     NEEDLES("seq.json: unknown stage 'stage2': the spec defines no stages"));
  /* A value a stage set is shown at the stage's entry. */
  const char *bad = variant("memory.json", "stage_val.json", "{\"layers[0].schedule.chunk\": 2}",
                            "{\"layers[0].schedule.chunk\": 2, \"layers[0].schedule.reset\": 3}");
  expect_stage_error(bad, "stage2", NULL, 0, XY_E_SPEC,
                     NEEDLES("stage_val.json:23:75: layers[0].schedule.reset: reset 3 is not a "
                             "multiple of chunk 2: a chunk may not straddle a reset (the value "
                             "comes from stage 'stage2', entry 'layers[0].schedule.reset')"));
  /* An entry that cannot be applied, a malformed one, and stages of the wrong form. */
  bad = variant("memory.json", "stage_path.json", "\"layers[0].schedule.chunk\": 2",
                "\"layers[3].schedule.chunk\": 2");
  expect_stage_error(bad, "stage2", NULL, 0, XY_E_SPEC,
                     NEEDLES("stage_path.json:23:16: stages.stage2: entry "
                             "'layers[3].schedule.chunk': layers has 1 elements; index 3 is out "
                             "of range"));
  bad = variant("memory.json", "stage_syntax.json", "\"layers[0].schedule.chunk\": 2",
                "\"layers[0]..chunk\": 2");
  expect_stage_error(bad, NULL, NULL, 0, XY_E_SPEC,
                     NEEDLES("stage_syntax.json:23:16: stages.stage2: entry 'layers[0]..chunk': "
                             "bad path"));
  bad = variant("memory.json", "stage_form.json", "{\"layers[0].schedule.chunk\": 2}", "2");
  expect_stage_error(bad, NULL, NULL, 0, XY_E_SPEC,
                     NEEDLES("stage_form.json:23:15: stages.stage2: a stage is an object of "
                             "override paths -> values"));
  bad = variant("memory.json", "stage_name.json", "\"stage2\":", "\"stage-2\":");
  expect_stage_error(bad, NULL, NULL, 0, XY_E_SPEC,
                     NEEDLES("stage_name.json:23:5: stages: 'stage-2' is not a valid stage name"));
  bad = variant("memory.json", "stage_self.json", "\"layers[0].schedule.chunk\": 2",
                "\"stages.tiny\": {}");
  expect_stage_error(bad, "stage2", NULL, 0, XY_E_SPEC,
                     NEEDLES("stage_self.json:23:16: stages.stage2: entry 'stages.tiny': a stage "
                             "may not change the stages"));
  static const char *const arr[] = {"stages=[1]"};
  expect_stage_error(path, NULL, arr, 1, XY_E_SPEC,
                     NEEDLES("memory.json: stages: must be an object of stages",
                             "from override 'stages=[1]'"));
}

/* Every prefix of the specs, and corrupted copies, fail cleanly or load; with a stage too. */
static void never_crash(void **state)
{
  (void)state;
  static const char *const bases[] = {"memory.json", "memory_full.json"};
  uint64_t s = 777;
  for (size_t b = 0; b < XY_ARRAY_LEN(bases); b++) {
    FILE *f = fopen(fixture(bases[b]), "rb");
    assert_non_null(f);
    char text[4096], buf[4096];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    for (size_t len = 0; len < n; len += 3) {
      memcpy(buf, text, len);
      buf[len] = '\0';
      ir_module *m;
      xy_error err;
      int rc = load(write_tmp("mprefix.json", buf), "stage2", NULL, 0, &m, &err);
      if (len < n - 1) /* everything but the last newline is needed */
        assert_true(rc != XY_OK && m == NULL);
      ir_module_free(m);
    }
    for (int k = 0; k < 600; k++) {
      memcpy(buf, text, n + 1);
      for (int j = 0; j < 3; j++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        size_t at = (size_t)(s >> 33) % n;
        static const char junk[] = "{}[],:\"\\0123-eE.x \n";
        buf[at] = junk[(s >> 20) % (sizeof junk - 1)];
      }
      ir_module *m;
      xy_error err;
      int rc = load(write_tmp("mmutant.json", buf), k % 2 ? "stage2" : NULL, NULL, 0, &m, &err);
      assert_true((rc == XY_OK) == (m != NULL));
      ir_module_free(m);
    }
  }
}

int run_memory_tests(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(defaults),
    cmocka_unit_test(every_key),
    cmocka_unit_test(short_forms),
    cmocka_unit_test(ttt_schedule),
    cmocka_unit_test(reset_not_multiple_of_chunk),
    cmocka_unit_test(qkproj_rules),
    cmocka_unit_test(ttt_rules),
    cmocka_unit_test(unsupported_choices),
    cmocka_unit_test(unknown_keys_and_values),
    cmocka_unit_test(wrong_types),
    cmocka_unit_test(missing_pieces),
    cmocka_unit_test(shapes_and_graph),
    cmocka_unit_test(stages_applied),
    cmocka_unit_test(stages_bad),
    cmocka_unit_test(never_crash),
  };
  return cmocka_run_group_tests_name("frontend_memory", tests, NULL, NULL);
}
