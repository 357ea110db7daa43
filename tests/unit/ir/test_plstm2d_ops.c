/* test_plstm2d_ops.c: the 2D scans' shape rules (every slot checked, messages that name
 * the slot, what it has and what it should have) and their float64 meaning: tiny grids
 * checked against values worked out by hand from spec plstm.md §2.2 and §2.3, and bigger
 * random ones against the recurrence written out again here as plainly as the spec states
 * it, J > 1 included; the fused op against four plain scans on flipped inputs (§2.3) and
 * flip equivariance (§7.2.6); the boundary rules of §7.2.9. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "interp.h"

/* Input slots (ops.def order) and outputs. */
enum { Q, K, V, SR, SD, TRL, TDU, TDL, TRU, ML, MU, DD, CL, CT, N_IN };
enum { OUT, CRIGHT, CBOTTOM, N_OUT };

/* Optional parts of a case. */
enum { HAS_DL = 1, HAS_RU = 2, HAS_LEFT = 4, HAS_TOP = 8, HAS_RIGHT = 16, HAS_BOTTOM = 32,
       ALL = 63 };

typedef struct dims2 {
  int64_t B, X, Y, DK, DV, JQ, JK, JV, JT, JO;
} dims2;

typedef struct case2 {
  dims2 z;
  bool fused;
  ir_module *m;
  int op;
  int in[N_IN], out[N_OUT];
  double **vals;
} case2;

/* ------------------------------------------------------------------ building */

static int add_input(ir_module *m, const char *name, const ir_shape *s)
{
  int t = ir_add_tensor(m, name, s, XY_F32, IR_INPUT);
  assert_true(t >= 0 && ir_mark_input(m, t));
  return t;
}

/* The shape ops.def gives slot s for dims z (gates with the orientation axis when fused). */
static ir_shape slot_shape(const dims2 *z, bool fused, int s)
{
  int64_t d[IR_MAX_RANK];
  int r = 0;
  d[r++] = z->B;
  if (fused && s >= SR && s <= MU)
    d[r++] = 4;
  if (s == CL) {
    int64_t c[] = {z->B, z->Y, z->DK, z->DV, z->JT};
    return ir_shape_make(5, c);
  }
  if (s == CT) {
    int64_t c[] = {z->B, z->X, z->DK, z->DV, z->JT};
    return ir_shape_make(5, c);
  }
  d[r++] = z->X;
  d[r++] = z->Y;
  switch (s) {
  case Q: d[r++] = z->DK; d[r++] = z->JQ; break;
  case K: d[r++] = z->DK; d[r++] = z->JK; break;
  case V: d[r++] = z->DV; d[r++] = z->JV; break;
  case SR: case SD: d[r++] = z->JT; d[r++] = z->JK; d[r++] = z->JV; break;
  case TRL: case TDU: case TDL: case TRU: d[r++] = z->JT; d[r++] = z->JT; break;
  case ML: case MU: d[r++] = z->JO; d[r++] = z->JQ; d[r++] = z->JT; break;
  case DD: d[r++] = z->JO; d[r++] = z->JQ; d[r++] = z->JK; d[r++] = z->JV; break;
  default: break;
  }
  return ir_shape_make(r, d);
}

static const char *const slot_names[N_IN] = {"q", "k", "v", "S_r", "S_d", "T_rl", "T_du",
                                             "T_dl", "T_ru", "M_l", "M_u", "D", "Cl0", "Ct0"};

/* A module with one 2D scan over an X x Y grid; `shapes` may replace slot shapes (NULL
 * entries keep ops.def's). Returns ir_infer_shapes' code, its message in err. */
static int build(case2 *c, const dims2 *z, bool fused, unsigned parts, const ir_shape *const *shapes,
                 ir_graph_kind kind, xy_error *err)
{
  memset(c, 0, sizeof *c);
  c->z = *z;
  c->fused = fused;
  c->m = ir_module_new("grid");
  assert_non_null(c->m);
  c->m->batch = 1; /* a scan takes its B from q: heads folded into the batch */
  int g = ir_add_graph(c->m, kind);
  assert_true(g >= 0);
  c->m->graphs[g].rows = z->X;
  c->m->graphs[g].cols = z->Y;
  c->m->graphs[g].length = z->X * z->Y;
  bool want[N_IN];
  for (int s = 0; s < N_IN; s++)
    want[s] = true;
  want[TDL] = parts & HAS_DL;
  want[TRU] = parts & HAS_RU;
  want[CL] = !fused && (parts & HAS_LEFT);
  want[CT] = !fused && (parts & HAS_TOP);
  c->op = ir_add_op(c->m, fused ? IR_OP_PLSTM_SCAN2D_FUSED : IR_OP_PLSTM_SCAN2D, "scan");
  assert_true(c->op >= 0);
  ir_op *op = &c->m->ops[c->op];
  for (int s = 0; s < N_IN; s++) {
    c->in[s] = -1;
    if (!want[s])
      continue;
    ir_shape sh = shapes && shapes[s] ? *shapes[s] : slot_shape(z, fused, s);
    c->in[s] = add_input(c->m, slot_names[s], &sh);
  }
  for (int s = 0; s < IR_MAX_SLOTS; s++)
    op->in[s] = op->out[s] = -1;
  for (int s = 0; s < (fused ? CL : N_IN); s++)
    op->in[s] = c->in[s];
  op->graph = g;
  op->qk_scale = 0.5;
  ir_shape none = ir_shape_make(0, NULL);
  static const char *const out_names[N_OUT] = {"out", "right", "bottom"};
  bool want_out[N_OUT] = {true, !fused && (parts & HAS_RIGHT), !fused && (parts & HAS_BOTTOM)};
  for (int s = 0; s < N_OUT; s++) {
    c->out[s] = -1;
    if (!want_out[s])
      continue;
    c->out[s] = ir_add_tensor(c->m, out_names[s], &none, XY_F32, IR_VALUE);
    assert_true(c->out[s] >= 0);
    c->m->tensors[c->out[s]].producer = c->op;
    c->m->ops[c->op].out[s] = c->out[s];
  }
  int rc = ir_infer_shapes(c->m, &c->m->ops[c->op], err);
  if (rc)
    return rc;
  for (int s = 0; s < N_OUT; s++)
    if (c->out[s] >= 0)
      assert_true(ir_mark_output(c->m, c->out[s]));
  c->vals = calloc((size_t)c->m->n_tensors, sizeof *c->vals);
  assert_non_null(c->vals);
  for (int i = 0; i < c->m->n_inputs; i++) {
    int t = c->m->inputs[i];
    size_t n = (size_t)ir_shape_count(&c->m->tensors[t].shape);
    c->vals[t] = calloc(n + 1, sizeof(double));
    assert_non_null(c->vals[t]);
  }
  return XY_OK;
}

static void make(case2 *c, const dims2 *z, bool fused, unsigned parts)
{
  xy_error err;
  if (build(c, z, fused, parts, NULL, IR_GRAPH_GRID2D, &err))
    fail_msg("%s", err.message);
}

static void free_case(case2 *c)
{
  for (int t = 0; c->vals && t < c->m->n_tensors; t++)
    free(c->vals[t]);
  free(c->vals);
  ir_module_free(c->m);
}

static size_t count(const case2 *c, int t)
{
  return (size_t)ir_shape_count(&c->m->tensors[t].shape);
}

static double *in(case2 *c, int slot)
{
  assert_true(c->in[slot] >= 0);
  return c->vals[c->in[slot]];
}

static const double *out(const case2 *c, int slot)
{
  assert_true(c->out[slot] >= 0);
  return c->vals[c->out[slot]];
}

static void run(case2 *c)
{
  xy_error err;
  if (ir_interpret(c->m, c->vals, &err))
    fail_msg("interpreter: %s", err.message);
}

/* Deterministic uniform numbers in [lo, hi). */
static double uniform(uint64_t *s, double lo, double hi)
{
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return lo + (hi - lo) * (double)(*s >> 11) / 9007199254740992.0;
}

/* Random inputs: q, k, v, states in [-1, 1); S, M, D in [0, 1); T in [-t, t). */
static void randomize(case2 *c, uint64_t seed, double t)
{
  for (int s = 0; s < N_IN; s++) {
    if (c->in[s] < 0)
      continue;
    bool gate = s == SR || s == SD || s == ML || s == MU || s == DD;
    bool trans = s >= TRL && s <= TRU;
    for (size_t j = 0; j < count(c, c->in[s]); j++)
      c->vals[c->in[s]][j] = uniform(&seed, gate ? 0.0 : trans ? -t : -1.0, gate ? 1.0 : trans ? t : 1.0);
  }
}

/* ------------------------------------------------------------------ shape rules */

static const dims2 small = {.B = 3, .X = 2, .Y = 5, .DK = 4, .DV = 3, .JQ = 1, .JK = 2, .JV = 1,
                            .JT = 3, .JO = 2};

static void shapes_of_outputs(void **state)
{
  (void)state;
  case2 c;
  make(&c, &small, false, ALL);
  int64_t o[] = {3, 2, 5, 3, 2}, r[] = {3, 5, 4, 3, 3}, b[] = {3, 2, 4, 3, 3};
  ir_shape wo = ir_shape_make(5, o), wr = ir_shape_make(5, r), wb = ir_shape_make(5, b);
  assert_true(ir_shape_equal(&c.m->tensors[c.out[OUT]].shape, &wo));
  assert_true(ir_shape_equal(&c.m->tensors[c.out[CRIGHT]].shape, &wr));
  assert_true(ir_shape_equal(&c.m->tensors[c.out[CBOTTOM]].shape, &wb));
  free_case(&c);
  make(&c, &small, true, 0);
  assert_true(ir_shape_equal(&c.m->tensors[c.out[OUT]].shape, &wo));
  free_case(&c);
}

/* One slot given a wrong shape must fail with a message naming it and both shapes. */
static void expect_shape_error(bool fused, unsigned parts, int slot, const ir_shape *bad,
                               const char *want_in_message)
{
  const ir_shape *shapes[N_IN] = {0};
  shapes[slot] = bad;
  case2 c;
  xy_error err;
  int rc = build(&c, &small, fused, parts, shapes, IR_GRAPH_GRID2D, &err);
  if (rc == XY_OK)
    fail_msg("slot %s: a wrong shape was accepted", slot_names[slot]);
  assert_int_equal(rc, XY_E_SHAPE);
  if (!strstr(err.message, want_in_message))
    fail_msg("slot %s: message '%s' lacks '%s'", slot_names[slot], err.message, want_in_message);
  free_case(&c);
}

static void shape_errors(void **state)
{
  (void)state;
  int64_t k_dk[] = {3, 2, 5, 5, 2};            /* DK 5, q says 4 */
  int64_t t_jt[] = {3, 2, 5, 2, 3};            /* a turn that is not JT x JT */
  int64_t m_rank[] = {3, 2, 5, 2, 1};          /* M_u without its JT axis */
  int64_t left_x[] = {3, 2, 4, 3, 3};          /* one state per column, not per row */
  int64_t top_b[] = {2, 2, 4, 3, 3};           /* another batch */
  int64_t d_jv[] = {3, 2, 5, 2, 1, 2, 2};      /* D with JV 2, v says 1 */
  int64_t v_grid[] = {3, 5, 2, 3, 1};          /* rows and columns swapped */
  int64_t s_plain[] = {3, 2, 5, 3, 2, 1};      /* a fused gate without its orientation axis */
  int64_t s_o3[] = {3, 3, 2, 5, 3, 2, 1};      /* three orientations */
  ir_shape s1 = ir_shape_make(5, k_dk), s2 = ir_shape_make(5, t_jt), s3 = ir_shape_make(5, m_rank),
           s4 = ir_shape_make(5, left_x), s5 = ir_shape_make(5, top_b), s6 = ir_shape_make(7, d_jv),
           s7 = ir_shape_make(5, v_grid), s8 = ir_shape_make(6, s_plain), s9 = ir_shape_make(7, s_o3);
  expect_shape_error(false, ALL, K, &s1, "k has shape [3,2,5,5,2], expected [3,2,5,4,2]");
  expect_shape_error(false, ALL, TDL, &s2, "T_dl has shape [3,2,5,2,3], expected [3,2,5,3,3]");
  expect_shape_error(false, ALL, MU, &s3, "M_u has shape [3,2,5,2,1], expected [3,2,5,2,1,3]");
  expect_shape_error(false, ALL, CL, &s4, "C_initial_left has shape [3,2,4,3,3], expected [3,5,4,3,3]");
  expect_shape_error(false, ALL, CT, &s5, "C_initial_top has shape [2,2,4,3,3], expected [3,2,4,3,3]");
  expect_shape_error(false, ALL, DD, &s6, "D has shape [3,2,5,2,1,2,2], expected [3,2,5,2,1,2,1]");
  expect_shape_error(false, ALL, V, &s7, "v has shape [3,5,2,3,1], expected [3,2,5,3,1]");
  expect_shape_error(true, HAS_RU, SD, &s8, "S_d has shape [3,2,5,3,2,1], expected [3,4,2,5,3,2,1]");
  expect_shape_error(true, 0, SR, &s9, "S_r has shape [3,3,2,5,3,2,1], expected [3,4,2,5,3,2,1]");
  /* the ranks the J dimensions are read from */
  int64_t q4[] = {3, 2, 5, 4}, t4[] = {3, 2, 5, 3};
  ir_shape r1 = ir_shape_make(4, q4), r2 = ir_shape_make(4, t4);
  expect_shape_error(false, 0, Q, &r1, "q must have rank 5");
  expect_shape_error(false, 0, TRL, &r2, "T_rl must have rank 5");
}

static void wrong_graph_is_an_error(void **state)
{
  (void)state;
  case2 c;
  xy_error err;
  int rc = build(&c, &small, false, 0, NULL, IR_GRAPH_SEQUENCE, &err);
  assert_int_equal(rc, XY_E_SPEC);
  assert_non_null(strstr(err.message, "grid2d"));
  free_case(&c);
}

static void missing_input_is_an_error(void **state)
{
  (void)state;
  case2 c;
  make(&c, &small, false, 0);
  c.m->ops[c.op].in[SD] = -1;
  xy_error err;
  assert_int_equal(ir_infer_shapes(c.m, &c.m->ops[c.op], &err), XY_E_SPEC);
  assert_non_null(strstr(err.message, "S_d is missing"));
  free_case(&c);
}

/* ------------------------------------------------------------------ by hand */

static const dims2 unit = {.B = 1, .X = 1, .Y = 1, .DK = 1, .DV = 1, .JQ = 1, .JK = 1, .JV = 1,
                           .JT = 1, .JO = 1};

/* 1 x 1, every slot, J = 1, s = 0.5:
 *   h   = s (M_l q Cl + M_u q Cu + D q k v) = 0.5 (0.5*2*1 + 2*2*(-2) + 0.125*2*3*5) = -1.625
 *   C_r = T_rl Cl + T_ru Cu + S_r k v = 0.5*1 + 0.25*(-2) + 0.5*15   = 7.5
 *   C_d = T_du Cu + T_dl Cl + S_d k v = 0.75*(-2) + 0.125*1 + 0.25*15 = 2.375 */
static void one_cell_by_hand(void **state)
{
  (void)state;
  case2 c;
  make(&c, &unit, false, ALL);
  const double v[N_IN] = {[Q] = 2, [K] = 3, [V] = 5, [SR] = 0.5, [SD] = 0.25, [TRL] = 0.5,
                          [TDU] = 0.75, [TDL] = 0.125, [TRU] = 0.25, [ML] = 0.5, [MU] = 2,
                          [DD] = 0.125, [CL] = 1, [CT] = -2};
  for (int s = 0; s < N_IN; s++)
    in(&c, s)[0] = v[s];
  run(&c);
  assert_true(out(&c, OUT)[0] == -1.625);
  assert_true(out(&c, CRIGHT)[0] == 7.5);
  assert_true(out(&c, CBOTTOM)[0] == 2.375);
  free_case(&c);
}

/* 1 x 2 (one row x, two columns y), no initial states, s = 0.5. Cell (0,0): q 1, k 2, v 3,
 * D 0.5, S_r 0.25, S_d 0.5; cell (0,1): q 2, k 1, v -1, D 0.25, M_u 0.5, T_du 0.5,
 * T_ru 0.25, S_r 1, S_d 2 (M_l, T_rl, T_dl see only zero borders: 7, 9, 9).
 *   h(0,0) = s D q k v = 0.5*0.5*6 = 1.5;  C_r(0,0) = 0.25*6 = 1.5;  C_d(0,0) = 0.5*6 = 3
 *   h(0,1) = s (M_u q C_d(0,0) + D q k v) = 0.5 (0.5*2*3 + 0.25*2*1*(-1)) = 1.25
 *   right[y=1] = T_ru C_d(0,0) + S_r k v = 0.75 - 1 = -0.25
 *   bottom[x=0] = T_du C_d(0,0) + S_d k v = 1.5 - 2 = -0.5 */
static void one_by_two_by_hand(void **state)
{
  (void)state;
  dims2 z = unit;
  z.Y = 2;
  case2 c;
  make(&c, &z, false, HAS_DL | HAS_RU | HAS_RIGHT | HAS_BOTTOM);
  const double cell0[N_IN] = {[Q] = 1, [K] = 2, [V] = 3, [DD] = 0.5, [SR] = 0.25, [SD] = 0.5,
                              [ML] = 3, [MU] = 3, [TRL] = 3, [TDU] = 3, [TDL] = 3, [TRU] = 3};
  const double cell1[N_IN] = {[Q] = 2, [K] = 1, [V] = -1, [DD] = 0.25, [MU] = 0.5, [TDU] = 0.5,
                              [TRU] = 0.25, [SR] = 1, [SD] = 2, [ML] = 7, [TRL] = 9, [TDL] = 9};
  for (int s = Q; s <= DD; s++) {
    in(&c, s)[0] = cell0[s];
    in(&c, s)[1] = cell1[s];
  }
  run(&c);
  assert_true(out(&c, OUT)[0] == 1.5);
  assert_true(out(&c, OUT)[1] == 1.25);
  assert_true(out(&c, CRIGHT)[0] == 1.5);
  assert_true(out(&c, CRIGHT)[1] == -0.25);
  assert_true(out(&c, CBOTTOM)[0] == -0.5);
  free_case(&c);
}

/* 2 x 2 with v = 1 at (0,0) only, q = k = 1, D = 0, s = 0.5: out(x,y) = s G[(x,y) <- (0,0)],
 * the sum over the two monotone paths (spec §1.3):
 *   G(1,0) = M_l(1,0) S_r(0,0) = 0.625*0.5 -> out 0.15625
 *   G(0,1) = M_u(0,1) S_d(0,0) = 0.875*0.25 -> out 0.109375
 *   G(1,1) = M_l(1,1) T_ru(0,1) S_d(0,0) + M_u(1,1) T_dl(1,0) S_r(0,0)
 *          = 0.5*0.75*0.25 + 0.25*0.375*0.5 = 0.140625 -> out 0.0703125 */
static void two_by_two_paths_by_hand(void **state)
{
  (void)state;
  dims2 z = unit;
  z.X = z.Y = 2;
  case2 c;
  make(&c, &z, false, HAS_DL | HAS_RU);
  for (int s = SR; s <= MU; s++)
    for (int n = 0; n < 4; n++)
      in(&c, s)[n] = 0.3; /* gates no path from (0,0) uses */
  for (int n = 0; n < 4; n++) {
    in(&c, Q)[n] = in(&c, K)[n] = 1;
    in(&c, V)[n] = n == 0 ? 1 : 0;
    in(&c, DD)[n] = 0;
  }
  enum { C00 = 0, C01 = 1, C10 = 2, C11 = 3 }; /* cell x*Y + y */
  in(&c, SR)[C00] = 0.5;
  in(&c, SD)[C00] = 0.25;
  in(&c, TRU)[C01] = 0.75;
  in(&c, TDL)[C10] = 0.375;
  in(&c, ML)[C11] = 0.5;
  in(&c, MU)[C11] = 0.25;
  in(&c, ML)[C10] = 0.625;
  in(&c, MU)[C01] = 0.875;
  run(&c);
  assert_true(out(&c, OUT)[C00] == 0);
  assert_true(out(&c, OUT)[C10] == 0.15625);
  assert_true(out(&c, OUT)[C01] == 0.109375);
  assert_true(out(&c, OUT)[C11] == 0.0703125);
  free_case(&c);
}

/* 1 x 1 with JT = JO = 2 (the carry and the read of state vectors), s = 1, q 1, k 2, v 1:
 *   Cl = [1, 2], Cu = [3, -1]
 *   C_r = T_rl Cl + T_ru Cu + S_r kv = [[1,2],[0,1]] [1,2] + [[0,1],[1,0]] [3,-1] + [0.5,1]*2
 *       = [5,2] + [-1,3] + [1,2] = [5, 7]
 *   C_d = T_du Cu + T_dl Cl + S_d kv = [[2,0],[0,0.5]] [3,-1] + [[1,1],[1,-1]] [1,2] + [0,-1]*2
 *       = [6,-0.5] + [3,-1] + [0,-2] = [9, -3.5]
 *   h[o] = sum_t M_l[o,t] Cl[t] + sum_t M_u[o,t] Cu[t] + D[o] q k v
 *        = [[1,0],[0.5,1]] [1,2] + [[0,1],[2,0]] [3,-1] + [0.5,-1]*2 = [1, 6.5] */
static void state_vectors_by_hand(void **state)
{
  (void)state;
  dims2 z = unit;
  z.JT = z.JO = 2;
  case2 c;
  make(&c, &z, false, ALL);
  c.m->ops[c.op].qk_scale = 1;
  in(&c, Q)[0] = 1;
  in(&c, K)[0] = 2;
  in(&c, V)[0] = 1;
  const double cl[] = {1, 2}, cu[] = {3, -1}, trl[] = {1, 2, 0, 1}, tru[] = {0, 1, 1, 0},
               tdu[] = {2, 0, 0, 0.5}, tdl[] = {1, 1, 1, -1}, sr[] = {0.5, 1}, sd[] = {0, -1},
               ml[] = {1, 0, 0.5, 1}, mu[] = {0, 1, 2, 0}, dd[] = {0.5, -1};
  memcpy(in(&c, CL), cl, sizeof cl);
  memcpy(in(&c, CT), cu, sizeof cu);
  memcpy(in(&c, TRL), trl, sizeof trl);
  memcpy(in(&c, TRU), tru, sizeof tru);
  memcpy(in(&c, TDU), tdu, sizeof tdu);
  memcpy(in(&c, TDL), tdl, sizeof tdl);
  memcpy(in(&c, SR), sr, sizeof sr);
  memcpy(in(&c, SD), sd, sizeof sd);
  memcpy(in(&c, ML), ml, sizeof ml);
  memcpy(in(&c, MU), mu, sizeof mu);
  memcpy(in(&c, DD), dd, sizeof dd);
  run(&c);
  assert_true(out(&c, OUT)[0] == 1 && out(&c, OUT)[1] == 6.5);
  assert_true(out(&c, CRIGHT)[0] == 5 && out(&c, CRIGHT)[1] == 7);
  assert_true(out(&c, CBOTTOM)[0] == 9 && out(&c, CBOTTOM)[1] == -3.5);
  free_case(&c);
}

/* 1 x 1 with JQ = JK = JV = 2 (the write, direct and read contractions), s = 1, a left
 * state only: q = [1, 2], k = [3, -1], v = [1, 2], Cl = 4.
 *   Dir = sum q[a] D[a,b,c] k[b] v[c], D = 1 at (0,0,0), 0.5 at (1,1,1), 0.25 at (0,1,0):
 *       = 1*3*1 + 0.5*2*(-1)*2 + 0.25*1*(-1)*1 = 0.75
 *   R_l = sum_a q[a] M_l[a] Cl = (1*1 + 2*0.5)*4 = 8       -> h = 8.75
 *   C_r = T_rl Cl + sum S_r[b,c] k[b] v[c] = 0.5*4 + (1*3*1 + 2*(-1)*2) = 2 - 1 = 1
 *   C_d = T_dl Cl + sum S_d[b,c] k[b] v[c] = 0.25*4 + (3*2 + (-1)*1)    = 1 + 5 = 6 */
static void contractions_by_hand(void **state)
{
  (void)state;
  dims2 z = unit;
  z.JQ = z.JK = z.JV = 2;
  case2 c;
  make(&c, &z, false, HAS_DL | HAS_LEFT | HAS_RIGHT | HAS_BOTTOM);
  c.m->ops[c.op].qk_scale = 1;
  const double q[] = {1, 2}, k[] = {3, -1}, v[] = {1, 2}, ml[] = {1, 0.5}, sr[] = {1, 0, 0, 2},
               sd[] = {0, 1, 1, 0};
  memcpy(in(&c, Q), q, sizeof q);
  memcpy(in(&c, K), k, sizeof k);
  memcpy(in(&c, V), v, sizeof v);
  memcpy(in(&c, ML), ml, sizeof ml);
  memcpy(in(&c, SR), sr, sizeof sr);
  memcpy(in(&c, SD), sd, sizeof sd);
  in(&c, DD)[0] = 1;      /* (a,b,c) = (0,0,0) */
  in(&c, DD)[7] = 0.5;    /* (1,1,1) */
  in(&c, DD)[2] = 0.25;   /* (0,1,0) */
  in(&c, CL)[0] = 4;
  in(&c, TRL)[0] = 0.5;
  in(&c, TDL)[0] = 0.25;
  in(&c, TDU)[0] = 3;     /* multiplies the zero top border */
  run(&c);
  assert_true(out(&c, OUT)[0] == 8.75);
  assert_true(out(&c, CRIGHT)[0] == 1);
  assert_true(out(&c, CBOTTOM)[0] == 6);
  free_case(&c);
}

/* The fused op on 1 x 2, s = 1: orientations 0 and 1 (x reversed: nothing changes with
 * one row) carry (0,0) into (0,1); 2 and 3 (y reversed) carry (0,1) into (0,0); each with
 * its own S_d and M_u; D once. q = [1, 2], k = [3, 1], v = [2, -1], D = [0.5, 0.25];
 * S_d^o of the first cell in orientation o: 0.5, 0.25 (cell 0), 0.75, 1 (cell 1);
 * M_u^o of the second: 0.5, 1 (cell 1), 0.25, 2 (cell 0).
 *   out(0,0) = D q k v + (0.25*0.75 + 2*1) q(0,0) k(0,1) v(0,1) = 3 - 2.1875  = 0.8125
 *   out(0,1) = D q k v + (0.5*0.5 + 1*0.25) q(0,1) k(0,0) v(0,0) = -0.5 + 6   = 5.5 */
static void fused_by_hand(void **state)
{
  (void)state;
  dims2 z = unit;
  z.Y = 2;
  case2 c;
  make(&c, &z, true, HAS_DL | HAS_RU);
  c.m->ops[c.op].qk_scale = 1;
  for (int s = SR; s <= MU; s++)
    for (int n = 0; n < 8; n++)
      in(&c, s)[n] = 0.3; /* on edges leaving the grid, or on zero borders */
  const double q[] = {1, 2}, k[] = {3, 1}, v[] = {2, -1}, d[] = {0.5, 0.25};
  memcpy(in(&c, Q), q, sizeof q);
  memcpy(in(&c, K), k, sizeof k);
  memcpy(in(&c, V), v, sizeof v);
  memcpy(in(&c, DD), d, sizeof d);
  /* gate row o*X*Y + cell */
  in(&c, SD)[0 * 2 + 0] = 0.5;
  in(&c, SD)[1 * 2 + 0] = 0.25;
  in(&c, SD)[2 * 2 + 1] = 0.75;
  in(&c, SD)[3 * 2 + 1] = 1;
  in(&c, MU)[0 * 2 + 1] = 0.5;
  in(&c, MU)[1 * 2 + 1] = 1;
  in(&c, MU)[2 * 2 + 0] = 0.25;
  in(&c, MU)[3 * 2 + 0] = 2;
  run(&c);
  assert_true(out(&c, OUT)[0] == 0.8125);
  assert_true(out(&c, OUT)[1] == 5.5);
  free_case(&c);
}

/* ------------------------------------------------------------------ the plain recurrence */

/* Spec §2.2, loop x then y, every J, written without the interpreter's edge view. */
static void naive2d(const case2 *c, double *h, double *right, double *bottom)
{
  const dims2 *z = &c->z;
  int64_t X = z->X, Y = z->Y, DK = z->DK, DV = z->DV, JQ = z->JQ, JK = z->JK, JV = z->JV;
  int64_t JT = z->JT, JO = z->JO, szC = DK * DV * JT;
  const double *q = c->vals[c->in[Q]], *k = c->vals[c->in[K]], *v = c->vals[c->in[V]];
  const double *G[N_IN];
  for (int s = 0; s < N_IN; s++)
    G[s] = c->in[s] >= 0 ? c->vals[c->in[s]] : NULL;
  double sc = c->m->ops[c->op].qk_scale;
  double *Cr = calloc((size_t)(X * Y * szC), sizeof(double));
  double *Cd = calloc((size_t)(X * Y * szC), sizeof(double));
  double *zero = calloc((size_t)szC, sizeof(double));
  assert_true(Cr && Cd && zero);
  for (int64_t b = 0; b < z->B; b++) {
    for (int64_t x = 0; x < X; x++)
      for (int64_t y = 0; y < Y; y++) {
        int64_t n = b * X * Y + x * Y + y;
        const double *Cl = x > 0 ? Cr + ((x - 1) * Y + y) * szC
                                 : G[CL] ? G[CL] + (b * Y + y) * szC : zero;
        const double *Cu = y > 0 ? Cd + (x * Y + y - 1) * szC
                                 : G[CT] ? G[CT] + (b * X + x) * szC : zero;
        const double *qn = q + n * DK * JQ, *kn = k + n * DK * JK, *vn = v + n * DV * JV;
        const double *ml = G[ML] + n * JO * JQ * JT, *mu = G[MU] + n * JO * JQ * JT;
        const double *D = G[DD] + n * JO * JQ * JK * JV;
        for (int64_t vi = 0; vi < DV; vi++)
          for (int64_t o = 0; o < JO; o++) {
            double acc = 0;
            for (int64_t d = 0; d < DK; d++)
              for (int64_t a = 0; a < JQ; a++) {
                for (int64_t t = 0; t < JT; t++)
                  acc += qn[d * JQ + a] * (ml[(o * JQ + a) * JT + t] * Cl[(d * DV + vi) * JT + t] +
                                           mu[(o * JQ + a) * JT + t] * Cu[(d * DV + vi) * JT + t]);
                for (int64_t bb = 0; bb < JK; bb++)
                  for (int64_t cc = 0; cc < JV; cc++)
                    acc += qn[d * JQ + a] * D[((o * JQ + a) * JK + bb) * JV + cc] *
                           kn[d * JK + bb] * vn[vi * JV + cc];
              }
            h[(n * DV + vi) * JO + o] = sc * acc;
          }
        double *crn = Cr + (x * Y + y) * szC, *cdn = Cd + (x * Y + y) * szC;
        const double *trl = G[TRL] + n * JT * JT, *tdu = G[TDU] + n * JT * JT;
        const double *tdl = G[TDL] ? G[TDL] + n * JT * JT : NULL;
        const double *tru = G[TRU] ? G[TRU] + n * JT * JT : NULL;
        const double *sr = G[SR] + n * JT * JK * JV, *sd = G[SD] + n * JT * JK * JV;
        for (int64_t d = 0; d < DK; d++)
          for (int64_t vi = 0; vi < DV; vi++)
            for (int64_t i = 0; i < JT; i++) {
              double r = 0, dn = 0;
              for (int64_t j = 0; j < JT; j++) {
                double l = Cl[(d * DV + vi) * JT + j], u = Cu[(d * DV + vi) * JT + j];
                r += trl[i * JT + j] * l + (tru ? tru[i * JT + j] * u : 0);
                dn += tdu[i * JT + j] * u + (tdl ? tdl[i * JT + j] * l : 0);
              }
              for (int64_t bb = 0; bb < JK; bb++)
                for (int64_t cc = 0; cc < JV; cc++) {
                  double kv = kn[d * JK + bb] * vn[vi * JV + cc];
                  r += sr[(i * JK + bb) * JV + cc] * kv;
                  dn += sd[(i * JK + bb) * JV + cc] * kv;
                }
              crn[(d * DV + vi) * JT + i] = r;
              cdn[(d * DV + vi) * JT + i] = dn;
            }
      }
    for (int64_t y = 0; right && y < Y; y++)
      memcpy(right + (b * Y + y) * szC, Cr + ((X - 1) * Y + y) * szC, sizeof(double) * (size_t)szC);
    for (int64_t x = 0; bottom && x < X; x++)
      memcpy(bottom + (b * X + x) * szC, Cd + (x * Y + Y - 1) * szC, sizeof(double) * (size_t)szC);
  }
  free(Cr);
  free(Cd);
  free(zero);
}

/* max |a - b| / max(1, max |b|) */
static double rel_err(const double *a, const double *b, size_t n)
{
  double e = 0, m = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    e = d > e || isnan(d) ? d : e;
    m = fabs(b[i]) > m ? fabs(b[i]) : m;
  }
  return e / m;
}

static void expect_naive(const dims2 *z, unsigned parts, uint64_t seed)
{
  case2 c;
  make(&c, z, false, parts);
  randomize(&c, seed, 0.7);
  run(&c);
  size_t nh = count(&c, c.out[OUT]);
  size_t nr = (size_t)(z->B * z->Y * z->DK * z->DV * z->JT);
  size_t nb = (size_t)(z->B * z->X * z->DK * z->DV * z->JT);
  double *h = malloc(nh * sizeof *h), *r = malloc(nr * sizeof *r), *bt = malloc(nb * sizeof *bt);
  assert_true(h && r && bt);
  naive2d(&c, h, r, bt);
  double e = rel_err(out(&c, OUT), h, nh);
  if (!(e < 1e-13))
    fail_msg("%lldx%lld parts %u: out differs from the plain recurrence by %.3g",
             (long long)z->X, (long long)z->Y, parts, e);
  if (parts & HAS_RIGHT)
    assert_true(rel_err(out(&c, CRIGHT), r, nr) < 1e-13);
  if (parts & HAS_BOTTOM)
    assert_true(rel_err(out(&c, CBOTTOM), bt, nb) < 1e-13);
  free(h);
  free(r);
  free(bt);
  free_case(&c);
}

static void equals_plain_recurrence(void **state)
{
  (void)state;
  const dims2 j1 = {.B = 2, .X = 5, .Y = 3, .DK = 3, .DV = 2, .JQ = 1, .JK = 1, .JV = 1, .JT = 1, .JO = 1};
  const dims2 jn = {.B = 2, .X = 3, .Y = 4, .DK = 2, .DV = 3, .JQ = 2, .JK = 1, .JV = 2, .JT = 3, .JO = 2};
  const dims2 line = {.B = 1, .X = 1, .Y = 7, .DK = 2, .DV = 2, .JQ = 1, .JK = 2, .JV = 1, .JT = 2, .JO = 1};
  expect_naive(&j1, ALL, 1);
  expect_naive(&j1, HAS_RU | HAS_RIGHT, 2);          /* D mode, L chirality */
  expect_naive(&j1, HAS_DL | HAS_TOP | HAS_BOTTOM, 3); /* D mode, R chirality */
  expect_naive(&jn, ALL, 4);
  expect_naive(&jn, HAS_LEFT | HAS_BOTTOM, 5);
  expect_naive(&line, ALL, 6);
}

/* ------------------------------------------------------------------ orientations */

/* Cell (x, y) of orientation o's reversed grid is the grid's (fx(x), fy(y)). */
static int64_t flip_cell(const dims2 *z, int o, int64_t n)
{
  int64_t x = n / z->Y, y = n % z->Y;
  if (o & 1)
    x = z->X - 1 - x;
  if (o & 2)
    y = z->Y - 1 - y;
  return x * z->Y + y;
}

/* dst[b, cell] = src[b, (o), flip_o(cell)] for per-cell blocks of `width` values;
 * src_orient: the source has the fused op's orientation axis. */
static void gather_flipped(const dims2 *z, int o, const double *src, bool src_orient, double *dst,
                           size_t width)
{
  int64_t P = z->X * z->Y;
  for (int64_t b = 0; b < z->B; b++)
    for (int64_t n = 0; n < P; n++) {
      int64_t from = src_orient ? (b * 4 + o) * P + flip_cell(z, o, n) : b * P + flip_cell(z, o, n);
      memcpy(dst + (size_t)(b * P + n) * width, src + (size_t)from * width, width * sizeof(double));
    }
}

/* §2.3: the fused op is the sum over o of plain scans on the flipped grid, unflipped, with
 * D in orientation 0 only. */
static void fused_is_sum_of_flipped_scans(void **state)
{
  (void)state;
  const dims2 z = {.B = 2, .X = 4, .Y = 3, .DK = 2, .DV = 3, .JQ = 1, .JK = 2, .JV = 1, .JT = 2, .JO = 1};
  for (unsigned parts = 0; parts < 4; parts++) { /* with and without each turn */
    case2 f, p;
    make(&f, &z, true, parts);
    make(&p, &z, false, parts);
    randomize(&f, 10 + parts, 0.7);
    run(&f);
    size_t nh = count(&f, f.out[OUT]), width = nh / (size_t)(z.B * z.X * z.Y);
    double *sum = calloc(nh, sizeof *sum);
    assert_non_null(sum);
    for (int o = 0; o < 4; o++) {
      for (int s = Q; s <= DD; s++) {
        if (p.in[s] < 0)
          continue;
        bool gate = s >= SR && s <= MU;
        size_t w = count(&p, p.in[s]) / (size_t)(z.B * z.X * z.Y);
        gather_flipped(&z, o, in(&f, s), gate, in(&p, s), w);
      }
      if (o > 0)
        memset(in(&p, DD), 0, count(&p, p.in[DD]) * sizeof(double));
      run(&p);
      /* out of the flipped run at cell n belongs to the grid's flip_o(n) */
      int64_t P = z.X * z.Y;
      for (int64_t b = 0; b < z.B; b++)
        for (int64_t n = 0; n < P; n++)
          for (size_t j = 0; j < width; j++)
            sum[(size_t)(b * P + flip_cell(&z, o, n)) * width + j] +=
                out(&p, OUT)[(size_t)(b * P + n) * width + j];
    }
    double e = rel_err(out(&f, OUT), sum, nh);
    if (!(e < 1e-13))
      fail_msg("turns %u: fused differs from four flipped scans by %.3g", parts, e);
    free(sum);
    free_case(&f);
    free_case(&p);
  }
}

/* §7.2.6: reversing the inputs along x (or y) and swapping the orientation slots 0 <-> 1,
 * 2 <-> 3 (or 0 <-> 2, 1 <-> 3) reverses the output. */
static void flip_equivariance(void **state)
{
  (void)state;
  const dims2 z = {.B = 2, .X = 5, .Y = 4, .DK = 2, .DV = 2, .JQ = 1, .JK = 1, .JV = 1, .JT = 1, .JO = 1};
  for (int axis = 1; axis <= 2; axis++) {
    case2 a, f;
    make(&a, &z, true, HAS_RU);
    make(&f, &z, true, HAS_RU);
    randomize(&a, 20 + (uint64_t)axis, 1.0);
    int64_t P = z.X * z.Y;
    for (int s = Q; s <= DD; s++) {
      if (a.in[s] < 0)
        continue;
      bool gate = s >= SR && s <= MU;
      size_t w = count(&a, a.in[s]) / (size_t)(z.B * P * (gate ? 4 : 1));
      for (int64_t b = 0; b < z.B; b++)
        for (int o = 0; o < (gate ? 4 : 1); o++)
          for (int64_t n = 0; n < P; n++) {
            int64_t from = gate ? (b * 4 + (o ^ axis)) * P + flip_cell(&z, axis, n)
                                : b * P + flip_cell(&z, axis, n);
            int64_t to = gate ? (b * 4 + o) * P + n : b * P + n;
            memcpy(in(&f, s) + (size_t)to * w, in(&a, s) + (size_t)from * w, w * sizeof(double));
          }
    }
    run(&a);
    run(&f);
    size_t w = (size_t)(z.DV * z.JO);
    for (int64_t b = 0; b < z.B; b++)
      for (int64_t n = 0; n < P; n++)
        for (size_t j = 0; j < w; j++) {
          double x = out(&f, OUT)[(size_t)(b * P + n) * w + j];
          double y = out(&a, OUT)[(size_t)(b * P + flip_cell(&z, axis, n)) * w + j];
          assert_true(fabs(x - y) <= 1e-13 * (1 + fabs(y)));
        }
    free_case(&a);
    free_case(&f);
  }
}

/* ------------------------------------------------------------------ boundaries (§7.2.9) */

/* With S = 0 and no initial state the output is exactly the direct term; with M = 0 and
 * D = 0 it is exactly zero. */
static void boundaries(void **state)
{
  (void)state;
  const dims2 z = {.B = 2, .X = 4, .Y = 6, .DK = 3, .DV = 2, .JQ = 1, .JK = 1, .JV = 1, .JT = 1, .JO = 1};
  for (int fused = 0; fused < 2; fused++) {
    case2 c;
    make(&c, &z, fused, HAS_DL | HAS_RU);
    randomize(&c, 30, 1.0);
    memset(in(&c, SR), 0, count(&c, c.in[SR]) * sizeof(double));
    memset(in(&c, SD), 0, count(&c, c.in[SD]) * sizeof(double));
    run(&c);
    for (int64_t n = 0; n < z.B * z.X * z.Y; n++) {
      double qk = 0;
      for (int64_t d = 0; d < z.DK; d++)
        qk += in(&c, Q)[n * z.DK + d] * in(&c, K)[n * z.DK + d];
      for (int64_t v = 0; v < z.DV; v++) {
        double direct = 0.5 * in(&c, DD)[n] * qk * in(&c, V)[n * z.DV + v];
        assert_true(fabs(out(&c, OUT)[n * z.DV + v] - direct) <= 1e-15 * (1 + fabs(direct)));
      }
    }
    free_case(&c);

    make(&c, &z, fused, fused ? HAS_RU : ALL);
    randomize(&c, 31, 1.0);
    memset(in(&c, ML), 0, count(&c, c.in[ML]) * sizeof(double));
    memset(in(&c, MU), 0, count(&c, c.in[MU]) * sizeof(double));
    memset(in(&c, DD), 0, count(&c, c.in[DD]) * sizeof(double));
    run(&c);
    for (size_t j = 0; j < count(&c, c.out[OUT]); j++)
      assert_true(out(&c, OUT)[j] == 0.0);
    free_case(&c);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(shapes_of_outputs),
    cmocka_unit_test(shape_errors),
    cmocka_unit_test(wrong_graph_is_an_error),
    cmocka_unit_test(missing_input_is_an_error),
    cmocka_unit_test(one_cell_by_hand),
    cmocka_unit_test(one_by_two_by_hand),
    cmocka_unit_test(two_by_two_paths_by_hand),
    cmocka_unit_test(state_vectors_by_hand),
    cmocka_unit_test(contractions_by_hand),
    cmocka_unit_test(fused_by_hand),
    cmocka_unit_test(equals_plain_recurrence),
    cmocka_unit_test(fused_is_sum_of_flipped_scans),
    cmocka_unit_test(flip_equivariance),
    cmocka_unit_test(boundaries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
