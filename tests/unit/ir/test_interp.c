/* test_interp.c: properties of the float64 interpreter that define pLSTM (spec plstm.md
 * §7.2.1, §7.2.2, §7.2.8, §7.2.9). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp.h"

typedef struct scan_case {
  ir_module *m;
  int q, k, v, S, T, M, D, C0, out, cfin;
  double **vals;
} scan_case;

static int add_input(ir_module *m, const char *name, int rank, const int64_t *d)
{
  ir_shape s = ir_shape_make(rank, d);
  int t = ir_add_tensor(m, name, &s, XY_F32, IR_INPUT);
  assert_true(t >= 0 && ir_mark_input(m, t));
  return t;
}

/* A plstm_scan over graph g with J = 1 and random inputs (gates in [0,1), T in [-1,1)). */
static void make_scan(scan_case *c, ir_module *m, int g, int64_t B, int64_t N, int64_t E,
                      int64_t A, int64_t DK, int64_t DV, bool with_states, unsigned seed)
{
  memset(c, 0, sizeof *c);
  c->m = m;
  m->batch = B;
  int64_t sq[] = {B, N, DK, 1}, sv[] = {B, N, DV, 1}, sS[] = {B, E, 1, 1, 1},
          sT[] = {B, A, 1, 1}, sD[] = {B, N, 1, 1, 1, 1}, sC[] = {B, DK, DV, 1};
  c->q = add_input(m, "q", 4, sq);
  c->k = add_input(m, "k", 4, sq);
  c->v = add_input(m, "v", 4, sv);
  c->S = add_input(m, "S", 5, sS);
  c->T = add_input(m, "T", 4, sT);
  c->M = add_input(m, "M", 5, sS);
  c->D = add_input(m, "D", 6, sD);
  c->C0 = with_states ? add_input(m, "C0", 4, sC) : -1;
  int oi = ir_add_op(m, IR_OP_PLSTM_SCAN, "scan");
  ir_op *op = &m->ops[oi];
  int ins[] = {c->q, c->k, c->v, c->S, c->T, c->M, c->D, c->C0};
  memcpy(op->in, ins, sizeof ins);
  op->graph = g;
  op->qk_scale = 0.5;
  ir_shape none = ir_shape_make(0, NULL);
  c->out = ir_add_tensor(m, "out", &none, XY_F32, IR_VALUE);
  m->tensors[c->out].producer = oi;
  m->ops[oi].out[0] = c->out;
  c->cfin = -1;
  if (with_states) {
    c->cfin = ir_add_tensor(m, "cfin", &none, XY_F32, IR_VALUE);
    m->tensors[c->cfin].producer = oi;
    m->ops[oi].out[1] = c->cfin;
  }
  xy_error err;
  assert_int_equal(ir_infer_shapes(m, &m->ops[oi], &err), XY_OK);
  assert_true(ir_mark_output(m, c->out));
  if (with_states)
    assert_true(ir_mark_output(m, c->cfin));
  c->vals = calloc((size_t)m->n_tensors, sizeof *c->vals);
  assert_non_null(c->vals);
  srand(seed);
  for (int i = 0; i < m->n_inputs; i++) {
    int t = m->inputs[i];
    size_t n = (size_t)ir_shape_count(&m->tensors[t].shape);
    c->vals[t] = malloc(n * sizeof(double));
    assert_non_null(c->vals[t]);
    for (size_t j = 0; j < n; j++) {
      double u = rand() / (double)RAND_MAX;
      c->vals[t][j] = t == c->T || t == c->q || t == c->k || t == c->v || t == c->C0 ? 2 * u - 1 : u;
    }
  }
}

static void run(scan_case *c)
{
  xy_error err;
  int rc = ir_interpret(c->m, c->vals, &err);
  if (rc)
    fail_msg("interpreter: %s", err.message);
}

static void free_case(scan_case *c)
{
  for (int t = 0; t < c->m->n_tensors; t++)
    free(c->vals[t]);
  free(c->vals);
  ir_module_free(c->m);
}

static size_t count_of(const scan_case *c, int t)
{
  return (size_t)ir_shape_count(&c->m->tensors[t].shape);
}

static void fill(scan_case *c, int t, double x)
{
  for (size_t j = 0; j < count_of(c, t); j++)
    c->vals[t][j] = x;
}

static scan_case sequence(int64_t L, bool states, unsigned seed)
{
  ir_module *m = ir_module_new("seq");
  int g = ir_add_graph(m, IR_GRAPH_SEQUENCE);
  m->graphs[g].length = L;
  scan_case c;
  make_scan(&c, m, g, 2, L, L, L, 3, 2, states, seed);
  return c;
}

/* out[b,t] = s * D_t (q_t . k_t) v_t, the direct term alone. */
static double direct(const scan_case *c, int64_t b, int64_t t, int64_t dv)
{
  int64_t L = c->m->graphs[0].length, DK = 3, DV = 2;
  double qk = 0;
  for (int64_t d = 0; d < DK; d++)
    qk += c->vals[c->q][(b * L + t) * DK + d] * c->vals[c->k][(b * L + t) * DK + d];
  return 0.5 * c->vals[c->D][b * L + t] * qk * c->vals[c->v][(b * L + t) * DV + dv];
}

/* §7.2.9: the first node sees only its direct term (no initial state). */
static void first_node_is_direct(void **state)
{
  (void)state;
  scan_case c = sequence(9, false, 1);
  run(&c);
  for (int64_t b = 0; b < 2; b++)
    for (int64_t dv = 0; dv < 2; dv++)
      assert_true(fabs(c.vals[c.out][(b * 9) * 2 + dv] - direct(&c, b, 0, dv)) < 1e-15);
  free_case(&c);
}

/* §7.2.9: with S = 0 (and no initial state) every output is exactly the direct term. */
static void no_source_means_direct_only(void **state)
{
  (void)state;
  scan_case c = sequence(17, false, 2);
  fill(&c, c.S, 0.0);
  run(&c);
  for (int64_t b = 0; b < 2; b++)
    for (int64_t t = 0; t < 17; t++)
      for (int64_t dv = 0; dv < 2; dv++)
        assert_true(c.vals[c.out][(b * 17 + t) * 2 + dv] == direct(&c, b, t, dv));
  free_case(&c);
}

/* §7.2.9: M = 0 and D = 0 give exactly zero. */
static void no_mark_no_direct_is_zero(void **state)
{
  (void)state;
  scan_case c = sequence(12, true, 3);
  fill(&c, c.M, 0.0);
  fill(&c, c.D, 0.0);
  run(&c);
  for (size_t j = 0; j < count_of(&c, c.out); j++)
    assert_true(c.vals[c.out][j] == 0.0);
  free_case(&c);
}

/* §7.2.9: a node never reads its own write: changing S_t or k_t's source does not change
 * h_t through the state (only later positions). */
static void own_write_is_not_read(void **state)
{
  (void)state;
  scan_case a = sequence(8, true, 4), b2 = sequence(8, true, 4);
  for (int64_t b = 0; b < 2; b++)
    b2.vals[b2.S][b * 8 + 5] += 0.25; /* S at t = 5 */
  run(&a);
  run(&b2);
  bool later_changed = false;
  for (int64_t b = 0; b < 2; b++)
    for (int64_t t = 0; t < 8; t++)
      for (int64_t dv = 0; dv < 2; dv++) {
        double x = a.vals[a.out][(b * 8 + t) * 2 + dv], y = b2.vals[b2.out][(b * 8 + t) * 2 + dv];
        if (t <= 5)
          assert_true(x == y);
        else
          later_changed |= x != y;
      }
  assert_true(later_changed);
  free_case(&a);
  free_case(&b2);
}

/* §7.2.2: T = M = f and S = D = i give GLA: C_t = f_t C_{t-1} + i_t k_t v_t^T and
 * h_t = C_t^T q_t (times the scale). */
static void gla_identity(void **state)
{
  (void)state;
  int64_t L = 11, DK = 3, DV = 2;
  scan_case c = sequence(L, false, 5);
  memcpy(c.vals[c.M], c.vals[c.T], sizeof(double) * count_of(&c, c.T));
  memcpy(c.vals[c.D], c.vals[c.S], sizeof(double) * count_of(&c, c.S));
  run(&c);
  for (int64_t b = 0; b < 2; b++) {
    double C[3][2] = {{0}};
    for (int64_t t = 0; t < L; t++) {
      double f = c.vals[c.T][b * L + t], in = c.vals[c.S][b * L + t];
      for (int64_t d = 0; d < DK; d++)
        for (int64_t v = 0; v < DV; v++)
          C[d][v] = f * C[d][v] + in * c.vals[c.k][(b * L + t) * DK + d] *
                                      c.vals[c.v][(b * L + t) * DV + v];
      for (int64_t v = 0; v < DV; v++) {
        double h = 0;
        for (int64_t d = 0; d < DK; d++)
          h += C[d][v] * c.vals[c.q][(b * L + t) * DK + d];
        assert_true(fabs(0.5 * h - c.vals[c.out][(b * L + t) * DV + v]) < 1e-13);
      }
    }
  }
  free_case(&c);
}

/* §7.2.8: a chain written as a DAG equals the 1D scan. The DAG's edge t -> t+1 carries the
 * source of t and the mark of t+1; its arc into edge t carries T_t. */
static void chain_dag_equals_sequence(void **state)
{
  (void)state;
  int64_t L = 10;
  scan_case s = sequence(L, false, 6);
  run(&s);

  ir_module *m = ir_module_new("chain");
  int g = ir_add_graph(m, IR_GRAPH_DAG);
  ir_dag *d = &m->graphs[g].dag;
  d->n_graphs = 1;
  d->n_nodes = L;
  d->n_edges = L - 1;
  d->n_arcs = L - 2;
  d->node_start = calloc(2, sizeof(int64_t));
  d->edge_start = calloc(2, sizeof(int64_t));
  d->arc_start = calloc(2, sizeof(int64_t));
  d->tail = calloc((size_t)L, sizeof(int64_t));
  d->head = calloc((size_t)L, sizeof(int64_t));
  d->arc_src = calloc((size_t)L, sizeof(int64_t));
  d->arc_dst = calloc((size_t)L, sizeof(int64_t));
  d->node_start[1] = L;
  d->edge_start[1] = L - 1;
  d->arc_start[1] = L - 2;
  for (int64_t e = 0; e < L - 1; e++) {
    d->tail[e] = e;
    d->head[e] = e + 1;
  }
  for (int64_t a = 0; a < L - 2; a++) {
    d->arc_src[a] = a;
    d->arc_dst[a] = a + 1;
  }
  scan_case c;
  make_scan(&c, m, g, 2, L, L - 1, L - 2, 3, 2, false, 7);
  int node_inputs[] = {c.q, c.k, c.v, c.D};
  int seq_inputs[] = {s.q, s.k, s.v, s.D};
  for (int i = 0; i < 4; i++)
    memcpy(c.vals[node_inputs[i]], s.vals[seq_inputs[i]],
           sizeof(double) * count_of(&c, node_inputs[i]));
  for (int64_t b = 0; b < 2; b++) {
    for (int64_t e = 0; e < L - 1; e++) {
      c.vals[c.S][b * (L - 1) + e] = s.vals[s.S][b * L + e];
      c.vals[c.M][b * (L - 1) + e] = s.vals[s.M][b * L + e + 1];
    }
    for (int64_t a = 0; a < L - 2; a++)
      c.vals[c.T][b * (L - 2) + a] = s.vals[s.T][b * L + a + 1];
  }
  run(&c);
  for (size_t j = 0; j < count_of(&c, c.out); j++)
    assert_true(fabs(c.vals[c.out][j] - s.vals[s.out][j]) < 1e-14);
  free_case(&c);
  free_case(&s);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(first_node_is_direct),
    cmocka_unit_test(no_source_means_direct_only),
    cmocka_unit_test(no_mark_no_direct_is_zero),
    cmocka_unit_test(own_write_is_not_read),
    cmocka_unit_test(gla_identity),
    cmocka_unit_test(chain_dag_equals_sequence),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
