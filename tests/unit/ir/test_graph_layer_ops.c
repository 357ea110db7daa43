/* test_graph_layer_ops.c: the graph layers' ops (graph_gather, concat, graph_pnorm): shape
 * rules and their messages, attribute dumps, and interpreter values against numbers
 * written out here by hand on a small DAG. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph_layer_ops.h"
#include "interp.h"
#include "ir_build.h"

/* ------------------------------------------------------------------ the DAG */

/* Nodes 0..4 (node 4 alone): edges e0 0->1, e1 0->2, e2 1->3, e3 2->3, e4 0->3; arcs
 * a0 e0->e2, a1 e1->e3. Slots: out_slot 0 1 0 0 2 (among the tail's out-edges), in_slot
 * 0 0 0 1 2 (among the head's in-edges). */
static const int64_t TAIL[] = {0, 0, 1, 2, 0}, HEAD[] = {1, 2, 3, 3, 3};
static const int64_t OUT_SLOT[] = {0, 1, 0, 0, 2}, IN_SLOT[] = {0, 0, 0, 1, 2};
static const int64_t ASRC[] = {0, 1}, ADST[] = {2, 3};

static int64_t *ids(const int64_t *v, int n)
{
  int64_t *p = malloc(sizeof *p * (size_t)(n + 1));
  assert_non_null(p);
  memcpy(p, v, sizeof *p * (size_t)n);
  return p;
}

static ir_module *dag_module(bool slots)
{
  ir_module *m = ir_module_new("g");
  assert_non_null(m);
  m->batch = 2;
  assert_int_equal(ir_add_graph(m, IR_GRAPH_DAG), 0);
  ir_dag *d = &m->graphs[0].dag;
  d->n_graphs = 2;
  d->n_nodes = 5;
  d->n_edges = 5;
  d->n_arcs = 2;
  d->node_start = ids((int64_t[]){0, 4, 5}, 3);
  d->edge_start = ids((int64_t[]){0, 5, 5}, 3);
  d->arc_start = ids((int64_t[]){0, 2, 2}, 3);
  d->tail = ids(TAIL, 5);
  d->head = ids(HEAD, 5);
  d->arc_src = ids(ASRC, 2);
  d->arc_dst = ids(ADST, 2);
  if (slots) {
    d->out_slot = ids(OUT_SLOT, 5);
    d->in_slot = ids(IN_SLOT, 5);
  }
  return m;
}

/* An op on the module's DAG (graph 0), its output not yet given. */
static int dag_op(ir_module *m, ir_opcode code, const char *name, int a, int b, int c)
{
  int oi = irb_new_op(m, code, name, a, b, c);
  m->ops[oi].graph = 0;
  return oi;
}

/* Input i's value j is 100 i + j / 8 - 3 (distinct and exact). */
static double fill_exact(void *ctx, int input, size_t j)
{
  (void)ctx;
  return 100.0 * input + (double)j / 8.0 - 3.0;
}

static double **interpret(ir_module *m)
{
  return irb_interpret(m, fill_exact, NULL);
}

/* ------------------------------------------------------------------ shapes */

static void gather_shapes_and_errors(void **state)
{
  (void)state;
  ir_module *m = dag_module(true);
  int64_t xn[] = {2, 5, 6}, xe[] = {2, 5, 3}, xs[] = {2, 5, 2 * 3 * 2}, xt[] = {2, 5, 2 * 9};
  int64_t bad_rows[] = {2, 4, 6}, rank2[] = {5, 6}, bad_c[] = {2, 5, 7};
  int n = irb_input(m, "n", 3, xn), e = irb_input(m, "e", 3, xe), s = irb_input(m, "s", 3, xs);
  int t = irb_input(m, "t", 3, xt), br = irb_input(m, "br", 3, bad_rows), r2 = irb_input(m, "r2", 2, rank2);
  int bc = irb_input(m, "bc", 3, bad_c);
  int oi = dag_op(m, IR_OP_GRAPH_GATHER, "tails", n, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_EDGE_TAIL, 1, 1};
  irb_expect_shape(m, irb_finish_ok(m, oi, "tails_y"), 3, (int64_t[]){2, 5, 6});
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "arc_dst", e, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_ARC_DST, 1, 1};
  irb_expect_shape(m, irb_finish_ok(m, oi, "arc_dst_y"), 3, (int64_t[]){2, 2, 3});
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "src", s, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_SOURCE_SLOT, 2, 3};
  irb_expect_shape(m, irb_finish_ok(m, oi, "src_y"), 3, (int64_t[]){2, 5, 4});
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "trans", t, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_TRANSITION_SLOTS, 2, 3};
  irb_expect_shape(m, irb_finish_ok(m, oi, "trans_y"), 3, (int64_t[]){2, 2, 2});

  oi = dag_op(m, IR_OP_GRAPH_GATHER, "rows", br, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_EDGE_HEAD, 1, 1};
  irb_expect_error(m, oi, "e1", XY_E_SHAPE, "graph_gather 'rows'", "one row per node of the graph (5)");
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "edges", n, -1, -1); /* arc_src reads edge rows: 5 too */
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_ARC_SRC, 1, 1};
  irb_expect_shape(m, irb_finish_ok(m, oi, "edges_y"), 3, (int64_t[]){2, 2, 6});
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "rank", r2, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_EDGE_TAIL, 1, 1};
  irb_expect_error(m, oi, "e2", XY_E_SHAPE, "must have rank 3", NULL);
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "width", bc, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_MARK_SLOT, 2, 3};
  irb_expect_error(m, oi, "e3", XY_E_SHAPE, "last axis 7 is not heads 2 x 3 slots", NULL);
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "few_slots", s, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_SOURCE_SLOT, 2, 2}; /* in_slot 2 */
  irb_expect_error(m, oi, "e4", XY_E_GRAPH, "edge 4 has slot 2, outside the 2 slots", NULL);
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "unknown", n, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_COUNT, 1, 1};
  irb_expect_error(m, oi, "e5", XY_E_SPEC, "unknown map", NULL);
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "nograph", n, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_EDGE_TAIL, 1, 1};
  m->ops[oi].graph = -1;
  irb_expect_error(m, oi, "e6", XY_E_SPEC, "no graph", NULL);

  char *text;
  xy_buf b;
  xy_buf_init(&b);
  ir_print(m, &b);
  text = xy_buf_take(&b);
  assert_non_null(text);
  assert_non_null(strstr(text, " map=edge_tail"));
  assert_non_null(strstr(text, " map=transition_slots heads=2 slots=3"));
  free(text);
  ir_module_free(m);

  m = dag_module(false); /* no slots: the slot maps cannot be read */
  s = irb_input(m, "s", 3, xs);
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "src", s, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_SOURCE_SLOT, 2, 3};
  irb_expect_error(m, oi, "e7", XY_E_GRAPH, "no edge slots", NULL);
  ir_module_free(m);
}

static void concat_and_pnorm_shapes(void **state)
{
  (void)state;
  ir_module *m = dag_module(true);
  int64_t a[] = {2, 5, 3}, b[] = {2, 5, 4}, c[] = {2, 4, 4}, t[] = {2, 5, 18}, arcs[] = {2, 2, 3};
  int xa = irb_input(m, "a", 3, a), xb = irb_input(m, "b", 3, b), xc = irb_input(m, "c", 3, c);
  int xt = irb_input(m, "t", 3, t), xr = irb_input(m, "r", 3, arcs);
  int oi = dag_op(m, IR_OP_CONCAT, "ab", xa, xb, -1);
  irb_expect_shape(m, irb_finish_ok(m, oi, "ab_y"), 3, (int64_t[]){2, 5, 7});
  oi = dag_op(m, IR_OP_CONCAT, "aba", xa, xb, xa);
  irb_expect_shape(m, irb_finish_ok(m, oi, "aba_y"), 3, (int64_t[]){2, 5, 10});
  oi = dag_op(m, IR_OP_CONCAT, "ac", xa, xc, -1);
  irb_expect_error(m, oi, "e1", XY_E_SHAPE, "b [2,4,4] and a [2,5,3] differ", NULL);
  oi = dag_op(m, IR_OP_CONCAT, "alone", xa, -1, -1);
  irb_expect_error(m, oi, "e2", XY_E_SPEC, "input b is missing", NULL);

  oi = dag_op(m, IR_OP_GRAPH_PNORM, "slots", xt, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){false, 2, 3, 0.5};
  irb_expect_shape(m, irb_finish_ok(m, oi, "slots_y"), 3, t);
  oi = dag_op(m, IR_OP_GRAPH_PNORM, "arcs", xr, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){true, 0, 0, 0.5};
  irb_expect_shape(m, irb_finish_ok(m, oi, "arcs_y"), 3, arcs);
  oi = dag_op(m, IR_OP_GRAPH_PNORM, "wide", xt, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){false, 2, 2, 0.5};
  irb_expect_error(m, oi, "e3", XY_E_SHAPE, "heads 2 x slots^2 4", NULL);
  oi = dag_op(m, IR_OP_GRAPH_PNORM, "notarcs", xt, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){true, 0, 0, 0.5};
  irb_expect_error(m, oi, "e4", XY_E_SHAPE, "one row per arc of the graph (2)", NULL);
  oi = dag_op(m, IR_OP_GRAPH_PNORM, "alpha", xr, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){true, 0, 0, 0.0};
  irb_expect_error(m, oi, "e5", XY_E_SPEC, "alpha must be finite and positive", NULL);
  xy_buf bf;
  xy_buf_init(&bf);
  ir_print(m, &bf);
  char *text = xy_buf_take(&bf);
  assert_non_null(text);
  assert_non_null(strstr(text, " by=slots heads=2 slots=3 alpha=0.5"));
  assert_non_null(strstr(text, " by=arcs alpha=0.5"));
  free(text);
  ir_module_free(m);
}

/* ------------------------------------------------------------------ values */

static void gather_values(void **state)
{
  (void)state;
  ir_module *m = dag_module(true);
  /* x[b, n, c] = 100 i + (index)/8 - 3 with i the input's position (see interpret) */
  int64_t xn[] = {2, 5, 2}, xe[] = {2, 5, 1}, xs[] = {2, 5, 2 * 3}, xt[] = {2, 5, 2 * 9};
  int n = irb_input(m, "n", 3, xn), e = irb_input(m, "e", 3, xe), s = irb_input(m, "s", 3, xs);
  int t = irb_input(m, "t", 3, xt);
  static const ir_gather_map maps[] = {IR_GATHER_EDGE_TAIL, IR_GATHER_EDGE_HEAD,
                                       IR_GATHER_ARC_SRC_TAIL, IR_GATHER_ARC_SRC,
                                       IR_GATHER_ARC_DST};
  int outs[8], k = 0;
  for (int i = 0; i < 5; i++) {
    int oi = dag_op(m, IR_OP_GRAPH_GATHER, ir_gather_map_name(maps[i]), i < 3 ? n : e, -1, -1);
    m->ops[oi].attr.gather = (ir_gather_attrs){maps[i], 1, 1};
    outs[k++] = irb_finish_ok(m, oi, ir_gather_map_name(maps[i]));
  }
  int oi = dag_op(m, IR_OP_GRAPH_GATHER, "src", s, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_SOURCE_SLOT, 2, 3};
  outs[k++] = irb_finish_ok(m, oi, "src_y");
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "mark", s, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_MARK_SLOT, 2, 3};
  outs[k++] = irb_finish_ok(m, oi, "mark_y");
  oi = dag_op(m, IR_OP_GRAPH_GATHER, "trans", t, -1, -1);
  m->ops[oi].attr.gather = (ir_gather_attrs){IR_GATHER_TRANSITION_SLOTS, 2, 3};
  outs[k++] = irb_finish_ok(m, oi, "trans_y");
  double **v = interpret(m);
  /* node rows: n[b, node, c] = (10 b + 2 node + c) / 8 - 3 */
#define NV(b, node, c) (((double)((b) * 10 + (node) * 2 + (c))) / 8.0 - 3.0)
  for (int b = 0; b < 2; b++)
    for (int ed = 0; ed < 5; ed++)
      for (int c = 0; c < 2; c++) {
        assert_true(v[outs[0]][(b * 5 + ed) * 2 + c] == NV(b, TAIL[ed], c));
        assert_true(v[outs[1]][(b * 5 + ed) * 2 + c] == NV(b, HEAD[ed], c));
      }
  /* arcs: a0 e0->e2 (tail(e0) = 0), a1 e1->e3 (tail(e1) = 0) */
  for (int b = 0; b < 2; b++)
    for (int a = 0; a < 2; a++) {
      for (int c = 0; c < 2; c++)
        assert_true(v[outs[2]][(b * 2 + a) * 2 + c] == NV(b, 0, c));
      /* e[b, edge] = 100 + (5 b + edge) / 8 - 3 */
      assert_true(v[outs[3]][b * 2 + a] == 100.0 + (5.0 * b + (double)ASRC[a]) / 8.0 - 3.0);
      assert_true(v[outs[4]][b * 2 + a] == 100.0 + (5.0 * b + (double)ADST[a]) / 8.0 - 3.0);
    }
  /* s[b, node, h, slot] = 200 + (6 (5 b + node) + 3 h + slot) / 8 - 3 */
#define SV(b, node, h, slot) (200.0 + (6.0 * (5 * (b) + (node)) + 3.0 * (h) + (slot)) / 8.0 - 3.0)
  for (int b = 0; b < 2; b++)
    for (int ed = 0; ed < 5; ed++)
      for (int h = 0; h < 2; h++) {
        assert_true(v[outs[5]][(b * 5 + ed) * 2 + h] == SV(b, TAIL[ed], h, IN_SLOT[ed]));
        assert_true(v[outs[6]][(b * 5 + ed) * 2 + h] == SV(b, HEAD[ed], h, OUT_SLOT[ed]));
      }
  /* t[b, node, h, i, j] = 300 + (18 (5 b + node) + 9 h + 3 i + j) / 8 - 3, node = tail(e) */
  for (int b = 0; b < 2; b++)
    for (int a = 0; a < 2; a++)
      for (int h = 0; h < 2; h++) {
        int64_t p = ASRC[a], ed = ADST[a];
        double want = 300.0 + (18.0 * (5 * b + TAIL[ed]) + 9.0 * h + 3.0 * OUT_SLOT[p] +
                               (double)IN_SLOT[ed]) / 8.0 - 3.0;
        assert_true(v[outs[7]][(b * 2 + a) * 2 + h] == want);
      }
#undef NV
#undef SV
  irb_release(m, v);
}

static void concat_values(void **state)
{
  (void)state;
  ir_module *m = dag_module(true);
  int64_t a[] = {2, 2}, b[] = {2, 1}, c[] = {2, 3};
  int xa = irb_input(m, "a", 2, a), xb = irb_input(m, "b", 2, b), xc = irb_input(m, "c", 2, c);
  int y = irb_finish_ok(m, dag_op(m, IR_OP_CONCAT, "abc", xa, xb, xc), "abc_y");
  double **v = interpret(m);
  /* row r: a[r, 0..1], b[r, 0], c[r, 0..2] */
  static const double want[] = {-3.0,    -2.875, 97.0,    197.0,   197.125, 197.25,
                                -2.75,   -2.625, 97.125,  197.375, 197.5,   197.625};
  for (int i = 0; i < 12; i++)
    assert_true(v[y][i] == want[i]);
  irb_release(m, v);
}

static void pnorm_values(void **state)
{
  (void)state;
  ir_module *m = dag_module(true);
  int64_t xt[] = {1, 5, 4}, xa[] = {2, 2, 2};
  m->batch = 1;
  int t = irb_input(m, "t", 3, xt), r = irb_input(m, "r", 3, xa);
  int oi = dag_op(m, IR_OP_GRAPH_PNORM, "slots", t, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){false, 1, 2, 0.5};
  int ys = irb_finish_ok(m, oi, "slots_y");
  oi = dag_op(m, IR_OP_GRAPH_PNORM, "arcs", r, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){true, 0, 0, 0.5};
  int ya = irb_finish_ok(m, oi, "arcs_y");
  double **v = interpret(m);
  /* in-degrees 0 1 1 3 0: node n keeps rows i < indeg(n) of its 2 x 2 block */
  static const int indeg[] = {0, 1, 1, 3, 0};
  for (int nd = 0; nd < 5; nd++)
    for (int i = 0; i < 2; i++) {
      double x0 = (double)(4 * nd + 2 * i) / 8.0 - 3.0, x1 = x0 + 0.125;
      double s = 0.5 + fabs(x0) + fabs(x1);
      double w0 = i < indeg[nd] ? x0 / s : 0.0, w1 = i < indeg[nd] ? x1 / s : 0.0;
      assert_true(fabs(v[ys][4 * nd + 2 * i] - w0) < 1e-15);
      assert_true(fabs(v[ys][4 * nd + 2 * i + 1] - w1) < 1e-15);
    }
  /* each arc goes into its own edge (e2, e3): y = x / (0.5 + |x|) */
  for (int i = 0; i < 8; i++) {
    double x = 100.0 + (double)i / 8.0 - 3.0;
    assert_true(fabs(v[ya][i] - x / (0.5 + fabs(x))) < 1e-15);
  }
  irb_release(m, v);
}

/* Two arcs into one edge share the sum: e0 0->1, e1 2->1 ... built by hand here. */
static void pnorm_groups(void **state)
{
  (void)state;
  ir_module *m = ir_module_new("groups");
  assert_non_null(m);
  assert_int_equal(ir_add_graph(m, IR_GRAPH_DAG), 0);
  ir_dag *d = &m->graphs[0].dag;
  /* e0 0->2, e1 1->2, e2 2->3: arcs e0->e2, e1->e2 */
  d->n_graphs = 1;
  d->n_nodes = 4;
  d->n_edges = 3;
  d->n_arcs = 2;
  d->node_start = ids((int64_t[]){0, 4}, 2);
  d->edge_start = ids((int64_t[]){0, 3}, 2);
  d->arc_start = ids((int64_t[]){0, 2}, 2);
  d->tail = ids((int64_t[]){0, 1, 2}, 3);
  d->head = ids((int64_t[]){2, 2, 3}, 3);
  d->arc_src = ids((int64_t[]){0, 1}, 2);
  d->arc_dst = ids((int64_t[]){2, 2}, 2);
  int64_t xa[] = {1, 2, 1};
  int r = irb_input(m, "r", 3, xa);
  int oi = dag_op(m, IR_OP_GRAPH_PNORM, "arcs", r, -1, -1);
  m->ops[oi].attr.pnorm = (ir_pnorm_attrs){true, 0, 0, 0.5};
  int ya = irb_finish_ok(m, oi, "arcs_y");
  double **v = interpret(m);
  /* x = -3, -2.875: both divided by 0.5 + 5.875 */
  assert_true(fabs(v[ya][0] - -3.0 / 6.375) < 1e-15);
  assert_true(fabs(v[ya][1] - -2.875 / 6.375) < 1e-15);
  irb_release(m, v);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(gather_shapes_and_errors),
    cmocka_unit_test(concat_and_pnorm_shapes),
    cmocka_unit_test(gather_values),
    cmocka_unit_test(concat_values),
    cmocka_unit_test(pnorm_values),
    cmocka_unit_test(pnorm_groups),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
