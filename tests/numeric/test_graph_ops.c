/* test_graph_ops.c: the graph layers' ops (graph_gather with every map, concat, graph_pnorm
 * by node rows and by arcs) compiled for OpenCL (PoCL) and C against the float64
 * interpreter, on hand-built modules over random DAGs: several components of ragged sizes
 * (a lone node, nodes of degree 0, a line graph with arcs left out as pruning leaves it),
 * feature widths that vectors divide and widths that they do not, and several vector
 * widths, register rows and work-group sizes; each with the detected device's schedule and
 * the portable one. Outputs are poisoned with NaN before every run (the harness).
 *
 * XYLEM_LAYER_TARGETS=opencl (or c) runs one target only. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph_layer_ops.h"
#include "harness.h"
#include "op_check.h"
#include "interp.h"
#include "ir_build.h"
#include "program.h"

static const double TOL = 1e-5;

/* ------------------------------------------------------------------ random DAGs */

/* A disjoint union of `graphs` random DAGs (edges run from lower to higher ids), in- and
 * out-degrees at most max_deg, each line-graph arc kept with probability keep; slots are
 * positions in file order among the tail's out-edges and the head's in-edges. */
static void random_dag(ir_dag *d, xy_rng *rng, int graphs, int max_nodes, int max_deg,
                       double keep)
{
  memset(d, 0, sizeof *d);
  d->n_graphs = graphs;
  d->node_start = calloc((size_t)graphs + 1, sizeof(int64_t));
  d->edge_start = calloc((size_t)graphs + 1, sizeof(int64_t));
  d->arc_start = calloc((size_t)graphs + 1, sizeof(int64_t));
  int64_t cap = (int64_t)graphs * max_nodes * max_deg + 1;
  d->tail = calloc((size_t)cap, sizeof(int64_t));
  d->head = calloc((size_t)cap, sizeof(int64_t));
  d->out_slot = calloc((size_t)cap, sizeof(int64_t));
  d->in_slot = calloc((size_t)cap, sizeof(int64_t));
  int64_t acap = cap * max_deg + 1;
  d->arc_src = calloc((size_t)acap, sizeof(int64_t));
  d->arc_dst = calloc((size_t)acap, sizeof(int64_t));
  int64_t *indeg = calloc((size_t)(graphs * max_nodes) + 1, sizeof(int64_t));
  int64_t *outdeg = calloc((size_t)(graphs * max_nodes) + 1, sizeof(int64_t));
  assert_true(d->node_start && d->edge_start && d->arc_start && d->tail && d->head &&
              d->out_slot && d->in_slot && d->arc_src && d->arc_dst && indeg && outdeg);
  for (int g = 0; g < graphs; g++) {
    /* the first component is a lone node: no edges, no arcs */
    int64_t n = g == 0 ? 1 : 2 + (int64_t)xy_rng_uniform(rng, 0, max_nodes - 1);
    int64_t n0 = d->n_nodes, e0 = d->n_edges;
    d->n_nodes += n;
    for (int64_t u = n0; u < n0 + n; u++)
      for (int64_t v = u + 1; v < n0 + n; v++) {
        if (outdeg[u] >= max_deg || indeg[v] >= max_deg || xy_rng_uniform(rng, 0, 1) > 0.45)
          continue;
        int64_t e = d->n_edges++;
        d->tail[e] = u;
        d->head[e] = v;
        d->out_slot[e] = outdeg[u]++;
        d->in_slot[e] = indeg[v]++;
      }
    for (int64_t p = e0; p < d->n_edges; p++)
      for (int64_t e = e0; e < d->n_edges; e++)
        if (d->head[p] == d->tail[e] && xy_rng_uniform(rng, 0, 1) < keep) {
          d->arc_src[d->n_arcs] = p;
          d->arc_dst[d->n_arcs] = e;
          d->n_arcs++;
        }
    d->node_start[g + 1] = d->n_nodes;
    d->edge_start[g + 1] = d->n_edges;
    d->arc_start[g + 1] = d->n_arcs;
  }
  free(indeg);
  free(outdeg);
}

static ir_module *module_with_dag(const char *name, uint64_t seed, int graphs, int max_nodes,
                                  int max_deg, double keep, int64_t batch)
{
  ir_module *m = ir_module_new(name);
  assert_non_null(m);
  m->batch = batch;
  int g = ir_add_graph(m, IR_GRAPH_DAG);
  assert_int_equal(g, 0);
  xy_rng rng;
  xy_rng_seed(&rng, seed);
  random_dag(&m->graphs[0].dag, &rng, graphs, max_nodes, max_deg, keep);
  return m;
}

/* An op on the module's DAG. */
static int graph_op(ir_module *m, ir_opcode code, const char *name, int a, int b, int c,
                    const ir_op_attrs *attr)
{
  return irb_graph_op(m, 0, code, name, a, b, c, attr);
}

/* ------------------------------------------------------------------ running */

/* Both targets, both schedules and the first five knob sets against the interpreter. */
static void check_model(ir_module *m, const char *what, double lo, double hi)
{
  op_check_module(m, what, 4321, lo, hi, false, 5, TOL);
}

/* ------------------------------------------------------------------ cases */

static void gather_cases(void **state)
{
  (void)state;
  ir_module *m = module_with_dag("gather", 11, 5, 9, 3, 0.8, 2);
  const ir_dag *d = &m->graphs[0].dag;
  int64_t B = m->batch, N = d->n_nodes, E = d->n_edges, H = 3, S = 3;
  print_message("  DAG: %lld nodes, %lld edges, %lld arcs in 5 components\n", (long long)N,
                (long long)E, (long long)d->n_arcs);
  int64_t xn7[] = {B, N, 7}, xn8[] = {B, N, 8}, xe5[] = {B, E, 5}, xe16[] = {B, E, 16};
  int64_t xs1[] = {B, N, H * S}, xs4[] = {B, N, H * S * 4}, xt[] = {B, N, H * S * S};
  int n7 = irb_input(m, "n7", 3, xn7), n8 = irb_input(m, "n8", 3, xn8);
  int e5 = irb_input(m, "e5", 3, xe5), e16 = irb_input(m, "e16", 3, xe16);
  int s1 = irb_input(m, "s1", 3, xs1), s4 = irb_input(m, "s4", 3, xs4), t = irb_input(m, "t", 3, xt);
  static const struct {
    ir_gather_map map;
    int which; /* 0: n7, 1: n8, 2: e5, 3: e16 */
  } rows[] = {{IR_GATHER_EDGE_TAIL, 0}, {IR_GATHER_EDGE_HEAD, 1}, {IR_GATHER_ARC_SRC_TAIL, 0},
              {IR_GATHER_ARC_SRC_TAIL, 1}, {IR_GATHER_ARC_SRC, 2}, {IR_GATHER_ARC_DST, 3},
              {IR_GATHER_ARC_DST, 2}, {IR_GATHER_EDGE_TAIL, 1}};
  int xs[] = {n7, n8, e5, e16};
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    ir_op_attrs a = {.gather = {rows[i].map, 1, 1}};
    char name[64];
    snprintf(name, sizeof name, "g%zu_%s", i, ir_gather_map_name(rows[i].map));
    graph_op(m, IR_OP_GRAPH_GATHER, name, xs[rows[i].which], -1, -1, &a);
  }
  ir_op_attrs src = {.gather = {IR_GATHER_SOURCE_SLOT, H, S}};
  ir_op_attrs mark = {.gather = {IR_GATHER_MARK_SLOT, H, S}};
  ir_op_attrs trans = {.gather = {IR_GATHER_TRANSITION_SLOTS, H, S}};
  graph_op(m, IR_OP_GRAPH_GATHER, "source_f1", s1, -1, -1, &src);
  graph_op(m, IR_OP_GRAPH_GATHER, "mark_f1", s1, -1, -1, &mark);
  graph_op(m, IR_OP_GRAPH_GATHER, "source_f4", s4, -1, -1, &src);
  graph_op(m, IR_OP_GRAPH_GATHER, "mark_f4", s4, -1, -1, &mark);
  graph_op(m, IR_OP_GRAPH_GATHER, "transition", t, -1, -1, &trans);
  check_model(m, "graph_gather: every map, F = 1, 4, 5, 7, 8, 16", -1, 1);
}

static void concat_cases(void **state)
{
  (void)state;
  ir_module *m = module_with_dag("concat", 12, 3, 6, 2, 1.0, 3);
  int64_t a6[] = {3, 7, 6}, b3[] = {3, 7, 3}, c8[] = {3, 7, 8}, a16[] = {2, 5, 16},
          b32[] = {2, 5, 32}, r1[] = {9, 1}, r4[] = {9, 4};
  int a = irb_input(m, "a", 3, a6), b = irb_input(m, "b", 3, b3), c = irb_input(m, "c", 3, c8);
  int p = irb_input(m, "p", 3, a16), q = irb_input(m, "q", 3, b32);
  int u = irb_input(m, "u", 2, r1), w = irb_input(m, "w", 2, r4);
  ir_op_attrs none;
  memset(&none, 0, sizeof none);
  graph_op(m, IR_OP_CONCAT, "abc", a, b, c, &none);
  graph_op(m, IR_OP_CONCAT, "ca", c, a, -1, &none);
  graph_op(m, IR_OP_CONCAT, "pq", p, q, -1, &none);
  graph_op(m, IR_OP_CONCAT, "uwu", u, w, u, &none);
  check_model(m, "concat: 6+3+8, 8+6, 16+32 (vectors), rank 2 1+4+1", -1, 1);
}

static void pnorm_cases(void **state)
{
  (void)state;
  ir_module *m = module_with_dag("pnorm", 13, 6, 8, 3, 0.7, 2);
  const ir_dag *d = &m->graphs[0].dag;
  int64_t B = m->batch, N = d->n_nodes, A = d->n_arcs;
  int64_t t3[] = {B, N, 2 * 3 * 3}, t4[] = {B, N, 4 * 4}, a3[] = {B, A, 3}, a8[] = {B, A, 8};
  int x3 = irb_input(m, "t3", 3, t3), x4 = irb_input(m, "t4", 3, t4);
  int y3 = irb_input(m, "a3", 3, a3), y8 = irb_input(m, "a8", 3, a8);
  ir_op_attrs s3 = {.pnorm = {false, 2, 3, 0.5}}, s4 = {.pnorm = {false, 1, 4, 0.25}};
  ir_op_attrs arcs = {.pnorm = {true, 0, 0, 0.5}};
  graph_op(m, IR_OP_GRAPH_PNORM, "slots_h2_e3", x3, -1, -1, &s3);
  graph_op(m, IR_OP_GRAPH_PNORM, "slots_h1_e4", x4, -1, -1, &s4);
  graph_op(m, IR_OP_GRAPH_PNORM, "arcs_c3", y3, -1, -1, &arcs);
  graph_op(m, IR_OP_GRAPH_PNORM, "arcs_c8", y8, -1, -1, &arcs);
  check_model(m, "graph_pnorm: node rows E = 3, 4; arcs C = 3, 8", -3, 3);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(gather_cases),
    cmocka_unit_test(concat_cases),
    cmocka_unit_test(pnorm_cases),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
