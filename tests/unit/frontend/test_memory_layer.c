/* test_memory_layer.c: the memory layer (Titans / TTT / TNT, docs/layers.md) in specs: the
 * ops and weights it expands into, its defaults, shared projections, and its errors, each
 * a change of fixtures/memory_layer.json checked for code, file:line:col, JSON path and
 * cause. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_test.h"

static int count_weights(const ir_module *m)
{
  int n = 0;
  for (int t = 0; t < m->n_tensors; t++)
    n += m->tensors[t].role == IR_WEIGHT;
  return n;
}

/* ------------------------------------------------------------------ expansion */

/* Two modules, the local one reading the global one's projections: the ops in order, the
 * weights and their shapes, the schedules. */
static void tnt_layer_expands(void **state)
{
  (void)state;
  ir_module *m = load_module_ok(fixture("memory_layer.json"));
  static const struct {
    const char *name;
    ir_opcode code;
  } ops[] = {
    {"mem.global.q_proj", IR_OP_LINEAR}, {"mem.global.q_silu", IR_OP_ACTIVATION},
    {"mem.global.q_l2", IR_OP_RMSNORM_HEADS}, {"mem.global.q", IR_OP_RESHAPE},
    {"mem.global.k_proj", IR_OP_LINEAR}, {"mem.global.k_silu", IR_OP_ACTIVATION},
    {"mem.global.k_l2", IR_OP_RMSNORM_HEADS}, {"mem.global.k", IR_OP_RESHAPE},
    {"mem.global.v_proj", IR_OP_LINEAR}, {"mem.global.v_silu", IR_OP_ACTIVATION},
    {"mem.global.v", IR_OP_RESHAPE}, {"mem.global.theta_pre", IR_OP_LINEAR},
    {"mem.global.theta", IR_OP_ACTIVATION}, {"mem.global.memory", IR_OP_MEMORY_SCAN},
    {"mem.local.memory", IR_OP_MEMORY_SCAN}, {"mem.local.add", IR_OP_BINARY},
    {"mem.heads", IR_OP_RESHAPE}, {"mem.norm", IR_OP_RMSNORM_HEADS}, {"mem.out", IR_OP_LINEAR},
  };
  assert_int_equal(m->n_ops, (int)(sizeof ops / sizeof ops[0]));
  for (int i = 0; i < m->n_ops; i++) {
    assert_string_equal(m->ops[i].name, ops[i].name);
    assert_int_equal(m->ops[i].code, ops[i].code);
  }
  int64_t w32[] = {32, 32}, b32[] = {32}, tw[] = {2, 32}, tb[] = {2}, wi[] = {2, 256},
          nw[] = {2, 16}, y[] = {2, 64, 32}, q[] = {2, 64, 2, 16};
  static const char *const qkv[] = {"q", "k", "v"};
  for (int i = 0; i < 3; i++) {
    char n[64];
    snprintf(n, sizeof n, "blk.global.%s.weight", qkv[i]);
    expect_tensor(m, n, IR_WEIGHT, 2, w32);
    snprintf(n, sizeof n, "blk.global.%s.bias", qkv[i]);
    expect_tensor(m, n, IR_WEIGHT, 1, b32);
  }
  expect_tensor(m, "blk.global.theta.weight", IR_WEIGHT, 2, tw);
  expect_tensor(m, "blk.global.theta.bias", IR_WEIGHT, 1, tb);
  expect_tensor(m, "blk.global.W_init", IR_WEIGHT, 2, wi);
  expect_tensor(m, "blk.local.W_init", IR_WEIGHT, 2, wi);
  expect_tensor(m, "blk.norm.weight", IR_WEIGHT, 2, nw);
  expect_tensor(m, "blk.out.weight", IR_WEIGHT, 2, w32);
  assert_int_equal(count_weights(m), 12); /* the local module has no projections */
  expect_tensor(m, "mem.global.q", IR_VALUE, 4, q);
  expect_tensor(m, "y", IR_VALUE, 3, y);
  assert_int_equal(ir_find_tensor(m, "blk.local.q.weight"), -1);

  const ir_op *g = find_op(m, "mem.global.memory"), *l = find_op(m, "mem.local.memory");
  for (int s = 0; s < 6; s++) /* q k v theta eta alpha: the same tensors */
    assert_int_equal(l->in[s], g->in[s]);
  assert_int_equal(g->attr.memory.chunk, 32);
  assert_int_equal(g->attr.memory.read, MEM_READ_CHUNK_START);
  assert_int_equal(l->attr.memory.chunk, 8);
  assert_int_equal(l->attr.memory.reset, 16);
  assert_int_equal(l->attr.memory.qkproj, MEM_QK_SHARD);
  const ir_op *th = find_op(m, "mem.global.theta");
  assert_int_equal(th->attr.act.kind, IR_ACT_SIGMOID_SCALED);
  assert_true(th->attr.act.p == 0.5);
  const ir_op *l2 = find_op(m, "mem.global.q_l2");
  assert_true(l2->attr.norm.l2 && l2->attr.norm.heads == 2 && l2->attr.norm.eps == 1e-12);
  const ir_op *nm = find_op(m, "mem.norm");
  assert_true(!nm->attr.norm.l2 && nm->attr.norm.eps == 1e-5);
  ir_module_free(m);
}

/* A Titans layer from its defaults: one head of dk = dv = dim, no q/k/v biases; momentum
 * and decay add their gates. */
static void titans_defaults(void **state)
{
  (void)state;
  const char *p = write_tmp(
    "ml_titans.json",
    "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"sequence\", \"length\": 16},\n"
    " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 8]}],\n"
    " \"layers\": [{\"op\": \"memory\", \"input\": \"x\", \"output\": \"y\",\n"
    "   \"modules\": [{\"name\": \"m\", \"schedule\": {\"momentum\": \"token\", "
    "\"decay\": \"token\", \"chunk\": 4}}]}],\n"
    " \"outputs\": [\"y\"]}\n");
  ir_module *m = load_module_ok(p);
  int64_t w[] = {8, 8}, g[] = {1, 8}, gb[] = {1}, wi[] = {1, 64}, nw[] = {1, 8};
  expect_tensor(m, "m.q.weight", IR_WEIGHT, 2, w);
  expect_tensor(m, "m.v.weight", IR_WEIGHT, 2, w);
  expect_tensor(m, "m.eta.weight", IR_WEIGHT, 2, g);
  expect_tensor(m, "m.eta.bias", IR_WEIGHT, 1, gb);
  expect_tensor(m, "m.alpha.weight", IR_WEIGHT, 2, g);
  expect_tensor(m, "m.W_init", IR_WEIGHT, 2, wi);
  expect_tensor(m, "norm.weight", IR_WEIGHT, 2, nw);
  expect_tensor(m, "out.weight", IR_WEIGHT, 2, w);
  assert_int_equal(ir_find_tensor(m, "m.q.bias"), -1);
  assert_int_equal(count_weights(m), 12); /* q k v, 3 gates x 2, W_init, norm, out */
  const ir_op *th = find_op(m, "memory0.m.theta"); /* lr_max 1: a plain sigmoid */
  assert_int_equal(th->attr.act.kind, IR_ACT_SIGMOID);
  assert_true(find_op(m, "memory0.m.memory")->in[4] >= 0);
  ir_module_free(m);
}

/* TTT-Linear: ln_residual, a biased memory, the learning-rate matrix; no norm, no SiLU or
 * l2 on q/k/v, no output projection (heads * dv = dim). */
static void ttt_layer(void **state)
{
  (void)state;
  const char *p = write_tmp(
    "ml_ttt.json",
    "{\"xylem\": 1, \"batch\": 2, \"graph\": {\"kind\": \"sequence\", \"length\": 16},\n"
    " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 32]}],\n"
    " \"layers\": [{\"op\": \"memory\", \"name\": \"mem\", \"input\": \"x\", \"output\": \"y\",\n"
    "   \"weights\": \"blk.\", \"heads\": 2, \"norm\": false, \"outprojection\": false,\n"
    "   \"qkv\": {\"silu\": false, \"l2norm\": false},\n"
    "   \"modules\": [{\"name\": \"ttt\", \"schedule\": {\"model\": {\"kind\": \"linear\", "
    "\"bias\": true}, \"wrap\": \"ln_residual\", \"loss\": {\"kind\": \"l2\", \"scale\": 0.5},\n"
    "     \"lr\": {\"kind\": \"ttt_matrix\", \"base\": 1, \"per_head_div\": \"dk\"}, "
    "\"chunk\": 16}}]}],\n"
    " \"outputs\": [\"y\"]}\n");
  ir_module *m = load_module_ok(p);
  int64_t wi[] = {2, 16 * 16 + 16}, ln[] = {2, 16}, off[] = {16};
  expect_tensor(m, "blk.ttt.W_init", IR_WEIGHT, 2, wi);
  expect_tensor(m, "blk.ttt.ln_gamma", IR_WEIGHT, 2, ln);
  expect_tensor(m, "blk.ttt.ln_beta", IR_WEIGHT, 2, ln);
  expect_tensor(m, "blk.ttt.ttt_offset", IR_WEIGHT, 1, off);
  assert_int_equal(ir_find_tensor(m, "blk.norm.weight"), -1);
  assert_int_equal(ir_find_tensor(m, "blk.out.weight"), -1);
  assert_int_equal(count_weights(m), 9); /* q k v, theta x 2, W_init, ln x 2, offset */
  for (int i = 0; i < m->n_ops; i++)
    assert_true(m->ops[i].code != IR_OP_ACTIVATION || strstr(m->ops[i].name, "theta"));
  const ir_op *last = &m->ops[m->n_ops - 1];
  assert_int_equal(last->code, IR_OP_RESHAPE); /* the heads flattened are the output */
  assert_int_equal(last->out[0], ir_find_tensor(m, "y"));
  const ir_op *mem = find_op(m, "mem.ttt.memory");
  assert_true(mem->attr.memory.ttt_lr && mem->attr.memory.ln_residual && mem->attr.memory.bias);
  assert_true(mem->attr.memory.ttt_div == 16);
  ir_module_free(m);
}

/* ------------------------------------------------------------------ errors */

static void option_errors(void **state)
{
  (void)state;
  const char *p;
  p = variant("memory_layer.json", "ml_key.json", "\"lr_max\": 0.5", "\"lr_maxx\": 0.5");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_key.json:12:7: layers[0].lr_maxx: unknown key 'lr_maxx'",
                            "expected one of: op, name, input, output, weights, heads, dk, dv, "
                            "qkv, lr_max, norm, outprojection, modules, combine"));
  p = variant("memory_layer.json", "ml_qkv.json", "{\"bias\": true}", "{\"bias\": true, \"gelu\": 1}");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_qkv.json:11:29: layers[0].qkv.gelu: unknown key 'gelu'",
                            "bias, silu, l2norm"));
  p = variant("memory_layer.json", "ml_lr.json", "\"lr_max\": 0.5", "\"lr_max\": 0");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_lr.json:12:17: layers[0].lr_max: must be positive"));
  p = variant("memory_layer.json", "ml_comb.json", "\"lr_max\": 0.5", "\"combine\": \"max\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_comb.json:12:18: layers[0].combine: 'max' is not one of 'sum'"));
  p = variant("memory_layer.json", "ml_norm.json", "\"lr_max\": 0.5",
              "\"norm\": {\"eps\": 1e-6, \"scale\": false}");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_norm.json", "layers[0].norm.scale: unknown key 'scale'"));
  p = variant("memory_layer.json", "ml_proj.json", "\"lr_max\": 0.5",
              "\"outprojection\": false, \"dv\": 8");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_proj.json:8:5: layers[0]: without an output projection, "
                            "heads*dv = 2*8 = 16 must equal dim 32"));
  p = variant("memory_layer.json", "ml_heads.json", "\"heads\": 2, \"dk\": 16",
              "\"heads\": 64");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_heads.json", "dim 32 is too small for 64 heads"));
  p = write_tmp("ml_graph.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"grid2d\", \"rows\": 4, \"cols\": 4},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"rows\", \"cols\", 8]}],\n"
                " \"layers\": [{\"op\": \"memory\", \"input\": \"x\", \"output\": \"y\"}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_graph.json:3:13: layers[0]: a memory layer runs over a "
                            "sequence graph, not this one"));
}

static void module_errors(void **state)
{
  (void)state;
  const char *p;
  p = write_tmp("ml_missing.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"sequence\", \"length\": 8},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 8]}],\n"
                " \"layers\": [{\"op\": \"memory\", \"input\": \"x\", \"output\": \"y\"}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_missing.json:3:13: layers[0]: missing required key 'modules'"));
  p = write_tmp("ml_empty.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"sequence\", \"length\": 8},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 8]}],\n"
                " \"layers\": [{\"op\": \"memory\", \"input\": \"x\", \"output\": \"y\", "
                "\"modules\": []}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_empty.json:3:70: layers[0].modules: the layer has no modules"));
  /* a module's unknown key, its name, its schedule's own errors at their paths */
  p = variant("memory_layer.json", "ml_mkey.json", "\"proj\": \"shared:global\"",
              "\"projection\": \"shared:global\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_mkey.json:16:10: layers[0].modules[1].projection: unknown key "
                            "'projection'", "expected one of: name, schedule, proj"));
  p = variant("memory_layer.json", "ml_mname.json", "{\"name\": \"local\"", "{\"name\": \"global\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_mname.json:15:18: layers[0].modules[1].name: duplicate module "
                            "name 'global' (also layers[0].modules[0])"));
  p = variant("memory_layer.json", "ml_mid.json", "{\"name\": \"local\"", "{\"name\": \"local-0\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_mid.json:15:18: layers[0].modules[1].name: 'local-0' is not a "
                            "valid module name"));
  p = variant("memory_layer.json", "ml_noname.json", "{\"name\": \"local\", ", "{");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_noname.json:15:9: layers[0].modules[1]: missing required key "
                            "'name'"));
  p = variant("memory_layer.json", "ml_sched.json", "\"reset\": 16", "\"reset\": 12");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_sched.json:15:78: layers[0].modules[1].schedule.reset: reset 12 "
                            "is not a multiple of chunk 8"));
  p = variant("memory_layer.json", "ml_nosched.json",
              "\"schedule\": {\"role\": \"global\", \"chunk\": 32, \"read\": \"chunk_start\"}",
              "\"proj\": \"own\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_nosched.json:14:9: layers[0].modules[0]: missing required key "
                            "'schedule'"));
  p = variant("memory_layer.json", "ml_chunk.json", "\"chunk\": 32, ", "");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_chunk.json:14:40: layers[0].modules[0].schedule: missing "
                            "required key 'chunk'"));
}

static void proj_errors(void **state)
{
  (void)state;
  const char *p;
  p = variant("memory_layer.json", "ml_ref.json", "\"shared:global\"", "\"shared:globl\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_ref.json:16:18: layers[0].modules[1].proj: unknown module "
                            "'globl'; expected one of the earlier modules: global"));
  p = variant("memory_layer.json", "ml_self.json", "\"shared:global\"", "\"shared:local\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_self.json:16:18: layers[0].modules[1].proj: module 'local' is "
                            "not an earlier module"));
  p = variant("memory_layer.json", "ml_later.json", "\"read\": \"chunk_start\"}",
              "\"read\": \"chunk_start\"}, \"proj\": \"shared:local\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_later.json", "layers[0].modules[0].proj: module 'local' is not "
                            "an earlier module"));
  p = variant("memory_layer.json", "ml_kind.json", "\"shared:global\"", "\"global\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_kind.json:16:18: layers[0].modules[1].proj: 'global' is not "
                            "\"own\" or \"shared:<module>\""));
  p = variant("memory_layer.json", "ml_gates.json", "\"qkproj\": \"shard\"",
              "\"qkproj\": \"shard\", \"decay\": \"token\"");
  expect_spec_error(p, NULL, 0, XY_E_SPEC,
                    NEEDLES("ml_gates.json:16:18: layers[0].modules[1].proj: module 'local' "
                            "shares the projections of 'global', but their schedules need "
                            "different gates: decay (alpha) is on in 'local' and off in "
                            "'global'"));
  /* the memory_scan's own shape rule, at the module */
  p = write_tmp("ml_ln.json",
                "{\"xylem\": 1, \"batch\": 1, \"graph\": {\"kind\": \"sequence\", \"length\": 8},\n"
                " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 8]}],\n"
                " \"layers\": [{\"op\": \"memory\", \"input\": \"x\", \"output\": \"y\", \"dk\": 4,\n"
                "   \"modules\": [{\"name\": \"m\", \"schedule\": {\"chunk\": 4, "
                "\"wrap\": \"ln_residual\"}}]}],\n"
                " \"outputs\": [\"y\"]}\n");
  expect_spec_error(p, NULL, 0, XY_E_SHAPE,
                    NEEDLES("ml_ln.json:4:16: layers[0].modules[0]: memory_scan "
                            "'memory0.m.memory'", "needs DK = DV, not 4 and 8"));
}

int run_memory_layer_tests(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(tnt_layer_expands),
    cmocka_unit_test(titans_defaults),
    cmocka_unit_test(ttt_layer),
    cmocka_unit_test(option_errors),
    cmocka_unit_test(module_errors),
    cmocka_unit_test(proj_errors),
  };
  return cmocka_run_group_tests_name("memory layer", tests, NULL, NULL);
}
