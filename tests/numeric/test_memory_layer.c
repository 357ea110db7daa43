/* test_memory_layer.c: whole memory layers (the spec's "memory" op, docs/layers.md) compiled
 * for OpenCL (PoCL) and the C target against the float64 interpreter, on random inputs and
 * random weights (each weight drawn from the range the layer gives it): a Titans layer
 * (linear memory, momentum and decay, chunk 16), a TTT-Linear layer (ln_residual, bias, the
 * learning-rate matrix, chunk 16, no norm), a TNT layer (a global module of chunk 32 read at
 * the chunk start, and local modules of chunk 8 and 4 with resets every 16 tokens and the
 * Q-K projection, one of them sharing the global module's projections) and the same TNT
 * layer with MLP memories. Each runs in the form the cost model picks and in the token loop
 * (recurrent), the portable schedule on OpenCL once. Bounds: 1e-5 for linear memories, 1e-4
 * for TTT and MLP memories (the manifests' float32 bounds of tests/data/tnt). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

/* A spec of one memory layer over x [2, L, 32], 2 heads of dk = dv = 16; body holds the
 * layer's keys after "weights". */
static char *layer_spec(const char *file, int L, const char *body)
{
  char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"memlayer\", \"batch\": 2,\n"
           " \"graph\": {\"kind\": \"sequence\", \"length\": %d},\n"
           " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"length\", 32]}],\n"
           " \"layers\": [{\"op\": \"memory\", \"name\": \"mem\", \"input\": \"x\", \"output\": \"y\",\n"
           "   \"weights\": \"blocks.0.mem.\", \"heads\": 2, \"dk\": 16, %s}],\n"
           " \"outputs\": [\"y\"]}\n",
           L, body);
  return harness_write(file, text);
}

/* The layer in the cost model's form and in the token loop, on OpenCL (and once with the
 * portable schedule) and on C. */
static void check_layer(const char *what, const char *file, int L, const char *body, double tol)
{
  char *spec = layer_spec(file, L, body);
  static const struct {
    xy_target target;
    const char *form;
    bool portable;
  } runs[] = {{XY_TARGET_OPENCL, NULL, false}, {XY_TARGET_OPENCL, "recurrent", true},
              {XY_TARGET_C, NULL, false}, {XY_TARGET_C, "recurrent", false}};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    harness_case c = {.spec = spec, .target = runs[i].target, .form = runs[i].form,
                      .portable = runs[i].portable, .seed = 11 + i};
    harness_result r;
    if (harness_run(&c, &r))
      fail_msg("%s: %s", what, r.message);
    print_message("  %-6s %-8s %-60s worst rel err %.3g\n",
                  c.target == XY_TARGET_C ? "C" : "OpenCL", c.portable ? "portable" : "",
                  r.forms, r.worst);
    if (!(r.worst <= tol))
      fail_msg("%s (%s, %s): relative error %.3g above %g", what,
               c.target == XY_TARGET_C ? "C" : "OpenCL", r.forms, r.worst, tol);
  }
  free(spec);
}

static void titans(void **state)
{
  (void)state;
  check_layer("titans", "titans.json", 48,
              "\"lr_max\": 0.5,\n"
              "   \"modules\": [{\"name\": \"lmm\", \"schedule\": {\"momentum\": \"token\", "
              "\"decay\": \"token\", \"chunk\": 16}}]",
              1e-5);
}

static void ttt_linear(void **state)
{
  (void)state;
  check_layer("ttt_linear", "ttt_linear.json", 40,
              "\"norm\": false, \"qkv\": {\"bias\": true},\n"
              "   \"modules\": [{\"name\": \"ttt\", \"schedule\": {\"model\": {\"kind\": "
              "\"linear\", \"bias\": true}, \"wrap\": \"ln_residual\", \"loss\": {\"kind\": "
              "\"l2\", \"scale\": 0.5}, \"lr\": {\"kind\": \"ttt_matrix\", \"base\": 1, "
              "\"per_head_div\": \"dk\"}, \"chunk\": 16}}]",
              1e-4);
}

#define TNT_MODULES(model)                                                                    \
  "   \"modules\": [\n"                                                                       \
  "    {\"name\": \"global\", \"schedule\": {\"role\": \"global\", \"model\": " model ", "     \
  "\"chunk\": 32, \"read\": \"chunk_start\"}},\n"                                             \
  "    {\"name\": \"local0\", \"schedule\": {\"role\": \"local\", \"model\": " model ", "     \
  "\"chunk\": 8, \"reset\": 16, \"qkproj\": \"shard\"}, \"proj\": \"shared:global\"},\n"      \
  "    {\"name\": \"local1\", \"schedule\": {\"role\": \"local\", \"model\": " model ", "     \
  "\"chunk\": 4, \"reset\": 16, \"qkproj\": \"shard\"}}]"

static void tnt(void **state)
{
  (void)state;
  check_layer("tnt", "tnt.json", 64, TNT_MODULES("\"linear\""), 1e-5);
}

static void tnt_mlp(void **state)
{
  (void)state;
  check_layer("tnt_mlp", "tnt_mlp.json", 40,
              TNT_MODULES("{\"kind\": \"mlp\", \"expand\": 2, \"act\": \"gelu\"}"), 1e-4);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(titans),
    cmocka_unit_test(ttt_linear),
    cmocka_unit_test(tnt),
    cmocka_unit_test(tnt_mlp),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
