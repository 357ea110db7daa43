/*
 * lower_plstm_chunkwise.c: pLSTM on a sequence in the chunkwise form (spec plstm.md §2.1,
 * §3.1). The sequence is cut into chunks of BT positions; three kernels:
 *
 *   chunk_state  per chunk: build the in-chunk tree (block transfers, sources carried to
 *                the chunk end), write the chunk transfer Tbar and the chunk's state
 *                increment dC = sum_a Sbar_a (k_a v_a).
 *   chunk_scan   per state element: the one sequential pass over chunks,
 *                C_c = Tbar_c C_{c-1} + dC_c; dC_c is overwritten with the entry state C_{c-1}.
 *   chunk_out    per chunk: the tree again, now also marks carried from the chunk start and
 *                the intra-chunk gating G[a<-b] = Mbar_a Sbar_b, folded with q_a.k_b into W;
 *                h_a = s * (sum_{b<=a} W[a,b] v_b + R(q_a, Mbar_a, C_entry)).
 *
 * The tree has P = 2^levels leaves (P >= BT); positions past the chunk's end are padding
 * with T = I and S = M = 0, which multiply and add exactly, so ragged chunks and chunk sizes
 * that are not powers of two give the unpadded function.
 *
 * The matrix work runs on vectors of VL lanes along the value dimension (contiguous when
 * JV = JT = JO = 1) and keeps RB rows per work-item in registers; VL = RB = 1 is the plain
 * scalar form that also serves every J > 1.
 */
#include <stdio.h>
#include <string.h>

#include "lower.h"
#include "lower_expr.h"

typedef struct chunk_plan {
  plstm_dims d;
  int64_t L, BT, P, NT, levels;
  int64_t szQ, szK, szV, szS, szT, szM, szD, szC, szH, OV;
  int VL;          /* lanes along the value dimension */
  int VD;          /* lanes along the key dimension, for q.k */
  int RB;          /* register rows */
  bool w_in_g;     /* JQ = JK = 1: W overwrites G in place */
  bool fast;       /* every J = 1 and VL > 1: q.k as a vectorized product with k transposed */
  int VS;          /* lanes along the source position (fast path) */
  double scale;
} chunk_plan;

/* Arrays and group-level variables of a tree-building kernel; -1 where absent. */
typedef struct tree_arrays {
  int q, k, v, S, T, M, D;     /* global inputs */
  int Sacc, Macc, Tblk, G, W;  /* local */
  int Kt;                      /* local, fast path: k of the chunk transposed, [DK][P] */
  int bi, t0, n, chunk;        /* group-level variables */
} tree_arrays;

static kir_expr *row_of(kir_builder *b, const chunk_plan *p, const tree_arrays *ta,
                        kir_expr *pos)
{
  return ADD(MAD(V(ta->bi), p->L, V(ta->t0)), pos);
}

/* dst = A (rows x inner) . B (inner x cols), A and B at element offsets in their arrays. */
static void small_matmul(kir_builder *b, int dst, int A, kir_expr *a_off, int B,
                         kir_expr *b_off, int64_t rows, int64_t inner, int64_t cols)
{
  kir_expr *r = jfor(b, "r", rows);
  kir_expr *c = jfor(b, "cc", cols);
  kir_expr *out = MAD(r, cols, c);
  if (inner == 1) {
    kb_store(b, dst, out, MUL(LD(A, ADD(a_off, r)), LD(B, ADD(b_off, c))));
  } else {
    int acc = kb_let(b, "acc", KT_FLOAT, F(0));
    kir_expr *j = jfor(b, "j", inner);
    kb_set(b, acc, ADD(V(acc), MUL(LD(A, ADD(a_off, MAD(r, inner, j))),
                                   LD(B, ADD(b_off, MAD(j, cols, c))))));
    jend(b, inner);
    kb_store(b, dst, out, V(acc));
  }
  jend(b, cols);
  jend(b, rows);
}

static void copy_private(kir_builder *b, int dst, kir_expr *off, int src, int64_t n)
{
  kir_expr *x = jfor(b, "x", n);
  kb_store(b, dst, ADD(off, x), LD(src, x));
  jend(b, n);
}

/* ------------------------------------------------------------------ the tree */

/* Leaves: per-position gates, identity transitions on padding; with marks (chunk_out)
 * also the diagonal G[a,a] = D_a. */
static void emit_tree_init(kir_builder *b, const chunk_plan *p, const tree_arrays *ta)
{
  const plstm_dims *d = &p->d;
  int pos = kb_parfor(b, "p", I(p->P));
  kb_if(b, LT(V(pos), V(ta->n)));
  {
    int row = kb_let(b, "row", KT_INT, row_of(b, p, ta, V(pos)));
    kir_expr *x = jfor(b, "x", p->szS);
    kb_store(b, ta->Sacc, MAD(V(pos), p->szS, x), LD(ta->S, MAD(V(row), p->szS, x)));
    jend(b, p->szS);
    x = jfor(b, "x", p->szT);
    kb_store(b, ta->Tblk, MAD(V(pos), p->szT, x), LD(ta->T, MAD(V(row), p->szT, x)));
    jend(b, p->szT);
    if (ta->Macc >= 0) {
      x = jfor(b, "x", p->szM);
      kb_store(b, ta->Macc, MAD(V(pos), p->szM, x), LD(ta->M, MAD(V(row), p->szM, x)));
      jend(b, p->szM);
      x = jfor(b, "x", p->szD);
      kb_store(b, ta->G, ADD(MUL(MAD(V(pos), p->P, V(pos)), I(p->szD)), x),
               LD(ta->D, MAD(V(row), p->szD, x)));
      jend(b, p->szD);
    }
  }
  kb_else(b);
  {
    kir_expr *x = jfor(b, "x", p->szS);
    kb_store(b, ta->Sacc, MAD(V(pos), p->szS, x), F(0));
    jend(b, p->szS);
    kir_expr *i = jfor(b, "i", d->JT);
    kir_expr *j = jfor(b, "j", d->JT);
    kir_expr *one = d->JT == 1 ? F(1) : SEL(kx_bin(b, KB_EQ, i, j), F(1), F(0));
    kb_store(b, ta->Tblk, MAD(V(pos), p->szT, MAD(i, d->JT, j)), one);
    jend(b, d->JT);
    jend(b, d->JT);
    if (ta->Macc >= 0) {
      x = jfor(b, "x", p->szM);
      kb_store(b, ta->Macc, MAD(V(pos), p->szM, x), F(0));
      jend(b, p->szM);
    }
  }
  kb_end(b);
  kb_end(b);
}

/* Cross pairs of one level: targets a in right halves, sources in left halves (s = half
 * size): G[a,src] = Macc_a . Sacc_src, contracted over JT. */
static void emit_tree_pairs(kir_builder *b, const chunk_plan *p, const tree_arrays *ta, int s)
{
  const plstm_dims *d = &p->d;
  int x = kb_parfor(b, "x", MUL(I(p->P / 2), V(s)));
  int ss = kb_let(b, "ss", KT_INT, MUL(V(s), V(s)));
  int r = kb_let(b, "r", KT_INT, REM(V(x), V(ss)));
  int base = kb_let(b, "base", KT_INT, MUL(MUL(DIV(V(x), V(ss)), I(2)), V(s)));
  int a = kb_let(b, "a", KT_INT, ADD(ADD(V(base), V(s)), DIV(V(r), V(s))));
  int src = kb_let(b, "src", KT_INT, ADD(V(base), REM(V(r), V(s))));
  kb_if(b, LT(V(a), V(ta->n)));
  kir_expr *o = jfor(b, "o", d->JO);
  kir_expr *aq = jfor(b, "aq", d->JQ);
  kir_expr *bk = jfor(b, "bk", d->JK);
  kir_expr *cv = jfor(b, "cv", d->JV);
  int g = kb_let(b, "g", KT_FLOAT, F(0));
  kir_expr *t = jfor(b, "t", d->JT);
  kb_set(b, g, ADD(V(g), MUL(LD(ta->Macc, MAD(V(a), p->szM, MAD(MAD(o, d->JQ, aq), d->JT, t))),
                             LD(ta->Sacc, MAD(V(src), p->szS, MAD(MAD(t, d->JK, bk), d->JV, cv))))));
  jend(b, d->JT);
  kb_store(b, ta->G, ADD(MUL(MAD(V(a), p->P, V(src)), I(p->szD)),
                         MAD(MAD(MAD(o, d->JQ, aq), d->JK, bk), d->JV, cv)), V(g));
  jend(b, d->JV);
  jend(b, d->JK);
  jend(b, d->JQ);
  jend(b, d->JO);
  kb_end(b);
  kb_end(b);
}

/* One merge level: sources of left halves carried through the right half, marks of right
 * halves carried back through the left half, then block transfers merged. */
static void emit_tree_level(kir_builder *b, const chunk_plan *p, const tree_arrays *ta, int s)
{
  const plstm_dims *d = &p->d;
  int64_t SW = d->JK * d->JV, MR = d->JO * d->JQ;
  if (ta->G >= 0)
    emit_tree_pairs(b, p, ta, s);

  int y = kb_parfor(b, "y", I(p->P / 2));
  int lstart = kb_let(b, "lstart", KT_INT, MUL(MUL(DIV(V(y), V(s)), I(2)), V(s)));
  int rstart = kb_let(b, "rstart", KT_INT, ADD(V(lstart), V(s)));
  int left = kb_let(b, "left", KT_INT, ADD(V(lstart), REM(V(y), V(s))));
  int tmp = kb_private(b, "tmp", KT_FLOAT, p->szS > p->szM ? p->szS : p->szM);
  small_matmul(b, tmp, ta->Tblk, MUL(V(rstart), I(p->szT)), ta->Sacc, MUL(V(left), I(p->szS)),
               d->JT, d->JT, SW);
  copy_private(b, ta->Sacc, MUL(V(left), I(p->szS)), tmp, p->szS);
  if (ta->Macc >= 0) {
    int right = kb_let(b, "right", KT_INT, ADD(V(rstart), REM(V(y), V(s))));
    small_matmul(b, tmp, ta->Macc, MUL(V(right), I(p->szM)), ta->Tblk, MUL(V(lstart), I(p->szT)),
                 MR, d->JT, d->JT);
    copy_private(b, ta->Macc, MUL(V(right), I(p->szM)), tmp, p->szM);
  }
  kb_end(b);

  int z = kb_parfor(b, "z", DIV(I(p->P), MUL(I(2), V(s))));
  int st = kb_let(b, "st", KT_INT, MUL(MUL(V(z), I(2)), V(s)));
  int tt = kb_private(b, "tt", KT_FLOAT, p->szT);
  small_matmul(b, tt, ta->Tblk, MUL(ADD(V(st), V(s)), I(p->szT)), ta->Tblk, MUL(V(st), I(p->szT)),
               d->JT, d->JT, d->JT);
  copy_private(b, ta->Tblk, MUL(V(st), I(p->szT)), tt, p->szT);
  kb_end(b);
}

static void emit_tree(kir_builder *b, const chunk_plan *p, const tree_arrays *ta)
{
  emit_tree_init(b, p, ta);
  if (p->levels == 0)
    return;
  int s = kb_let(b, "s", KT_INT, I(1));
  kb_for(b, "level", I(0), I(p->levels));
  emit_tree_level(b, p, ta, s);
  kb_set(b, s, MUL(V(s), I(2)));
  kb_end(b);
}

static void chunk_header(kir_builder *b, const chunk_plan *p, tree_arrays *ta)
{
  ta->bi = kb_let(b, "b", KT_INT, GID(1));
  ta->t0 = kb_let(b, "t0", KT_INT, MUL(GID(0), I(p->BT)));
  ta->n = kb_let(b, "n", KT_INT, MIN(I(p->BT), SUB(I(p->L), V(ta->t0))));
  ta->chunk = kb_let(b, "chunk", KT_INT, ADD(MUL(V(ta->bi), I(p->NT)), GID(0)));
}

/* ------------------------------------------------------------------ chunk_state */

static int emit_chunk_state(lower_ctx *lc, const ir_op *op, const chunk_plan *p, int wg)
{
  const plstm_dims *d = &p->d;
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "chunk_state"), wg, 2,
                      "pLSTM chunkwise, step 1 of 3: per chunk (group axis 0) and batch (axis 1),\n"
                      "the in-chunk tree gives the chunk transfer Tbar and the chunk's state\n"
                      "increment dC = sum_a Sbar_a (k_a v_a).");
  tree_arrays ta;
  memset(&ta, -1, sizeof ta);
  int64_t B = d->B, L = p->L;
  ta.k = kb_global(b, "k", KT_FLOAT, B * L * p->szK, true);
  ta.v = kb_global(b, "v", KT_FLOAT, B * L * p->szV, true);
  ta.S = kb_global(b, "S", KT_FLOAT, B * L * p->szS, true);
  ta.T = kb_global(b, "T", KT_FLOAT, B * L * p->szT, true);
  int dC = kb_global(b, "dC", KT_FLOAT, B * p->NT * p->szC, false);
  int Tbar = kb_global(b, "Tbar", KT_FLOAT, B * p->NT * p->szT, false);
  ta.Sacc = kb_local(b, "Sacc", KT_FLOAT, p->P * p->szS);
  ta.Tblk = kb_local(b, "Tblk", KT_FLOAT, p->P * p->szT);
  chunk_header(b, p, &ta);
  emit_tree(b, p, &ta);

  int x = kb_parfor(b, "x", I(p->szT));
  kb_store(b, Tbar, MAD(V(ta.chunk), p->szT, V(x)), LD(ta.Tblk, V(x)));
  kb_end(b);

  /* dC[dk][dv][i] = sum_a sum_{bk,cv} Sbar_a[i,bk,cv] k_a[dk,bk] v_a[dv,cv]: RB rows of dk
   * by VL lanes of dv per item. */
  int RB = p->RB, VL = p->VL;
  int64_t nvb = d->DV / VL;
  int e = kb_parfor(b, "e", I(d->DK / RB * nvb));
  int dk0 = kb_let(b, "dk0", KT_INT, MUL(DIV(V(e), I(nvb)), I(RB)));
  int dv0 = kb_let(b, "dv0", KT_INT, MUL(REM(V(e), I(nvb)), I(VL)));
  int acc = VL > 1 ? kb_private_vec(b, "acc", VL, RB * d->JT) : kb_private(b, "acc", KT_FLOAT, RB * d->JT);
  for (int r = 0; r < RB * d->JT; r++)
    kb_store(b, acc, I(r), kx_splat(b, F(0), VL));
  int pos = kb_for(b, "p", I(0), V(ta.n));
  int row = kb_let(b, "row", KT_INT, row_of(b, p, &ta, V(pos)));
  kir_expr *cv = jfor(b, "cv", d->JV);
  int vv = kb_let(b, "vv", KT_FLOAT, kx_vload(b, ta.v, ADD(MAD(MAD(V(row), d->DV, V(dv0)), d->JV, I(0)), cv), VL));
  kir_expr *i = jfor(b, "i", d->JT);
  kir_expr *bk = jfor(b, "bk", d->JK);
  int sv = kb_let(b, "sv", KT_FLOAT, LD(ta.Sacc, MAD(V(pos), p->szS, MAD(MAD(i, d->JK, bk), d->JV, cv))));
  for (int r = 0; r < RB; r++) {
    kir_expr *kval = LD(ta.k, ADD(MAD(MAD(V(row), d->DK, ADD(V(dk0), I(r))), d->JK, I(0)), bk));
    kir_expr *slot = MAD(I(r), d->JT, i);
    kb_store(b, acc, slot, ADD(LD(acc, slot), MUL(MUL(kval, V(sv)), V(vv))));
  }
  jend(b, d->JK);
  jend(b, d->JT);
  jend(b, d->JV);
  kb_end(b);
  for (int r = 0; r < RB; r++) {
    i = jfor(b, "i", d->JT);
    kir_expr *at = ADD(MAD(MAD(MAD(V(ta.chunk), d->DK, ADD(V(dk0), I(r))), d->DV, V(dv0)), d->JT, I(0)), i);
    kb_store(b, dC, at, LD(acc, MAD(I(r), d->JT, i)));
    jend(b, d->JT);
  }
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

/* ------------------------------------------------------------------ chunk_scan */

static int emit_chunk_scan(lower_ctx *lc, const ir_op *op, const chunk_plan *p, int wg,
                           bool has_init, bool has_final)
{
  const plstm_dims *d = &p->d;
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "chunk_scan"), wg, 2,
                      "pLSTM chunkwise, step 2 of 3: the sequential pass over chunks, per\n"
                      "state element (group axis 0; VL elements per work-item) and batch (axis 1):\n"
                      "C_c = Tbar_c C_{c-1} + dC_c; dC_c becomes the entry state C_{c-1}.");
  int64_t B = d->B, SE = d->DK * d->DV;
  /* With JT = 1 the state is elementwise, so VL consecutive elements go together. */
  int VL = d->JT == 1 ? p->VL : 1;
  int Tbar = kb_global(b, "Tbar", KT_FLOAT, B * p->NT * p->szT, true);
  int dC = kb_global(b, "dC", KT_FLOAT, B * p->NT * p->szC, false);
  int C0 = has_init ? kb_global(b, "C_initial", KT_FLOAT, B * p->szC, true) : -1;
  int Cf = has_final ? kb_global(b, "C_final", KT_FLOAT, B * p->szC, false) : -1;
  int bi = kb_let(b, "b", KT_INT, GID(1));
  int lane = kb_parfor(b, "lane", I(wg));
  int e = kb_let(b, "e", KT_INT, MUL(MAD(GID(0), wg, V(lane)), I(VL)));
  kb_if(b, LT(V(e), I(SE)));
  int C = VL > 1 ? kb_private_vec(b, "C", VL, d->JT) : kb_private(b, "C", KT_FLOAT, d->JT);
  int Cn = VL > 1 ? kb_private_vec(b, "Cn", VL, d->JT) : kb_private(b, "Cn", KT_FLOAT, d->JT);
  kir_expr *i = jfor(b, "i", d->JT);
  kir_expr *cidx = ADD(MAD(MAD(V(bi), SE, V(e)), d->JT, I(0)), i);
  kb_store(b, C, i, has_init ? kx_vload(b, C0, cidx, VL) : kx_splat(b, F(0), VL));
  jend(b, d->JT);
  int c = kb_for(b, "c", I(0), I(p->NT));
  int chunk = kb_let(b, "chunk", KT_INT, MAD(V(bi), p->NT, V(c)));
  int base = kb_let(b, "base", KT_INT, MUL(MAD(V(chunk), SE, V(e)), I(d->JT)));
  i = jfor(b, "i", d->JT);
  int acc = kb_let(b, "acc", KT_FLOAT, kx_vload(b, dC, ADD(V(base), i), VL));
  kir_expr *j = jfor(b, "j", d->JT);
  kb_set(b, acc, ADD(V(acc), MUL(LD(Tbar, ADD(MUL(V(chunk), I(p->szT)), MAD(i, d->JT, j))),
                                 LD(C, j))));
  jend(b, d->JT);
  kb_store(b, Cn, i, V(acc));
  jend(b, d->JT);
  i = jfor(b, "i", d->JT);
  kb_store(b, dC, ADD(V(base), i), LD(C, i));
  kb_store(b, C, i, LD(Cn, i));
  jend(b, d->JT);
  kb_end(b);
  if (has_final) {
    i = jfor(b, "i", d->JT);
    kb_store(b, Cf, ADD(MAD(MAD(V(bi), SE, V(e)), d->JT, I(0)), i), LD(C, i));
    jend(b, d->JT);
  }
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

/* ------------------------------------------------------------------ chunk_out */

/* W[a,src] = sum_{aq,bk} G[a,src][o,aq,bk,cv] (q_a . k_src)[aq,bk] for src <= a < n, zero
 * elsewhere (the output phase runs row blocks past the diagonal). */
static void emit_pair_weights(kir_builder *b, const chunk_plan *p, const tree_arrays *ta)
{
  const plstm_dims *d = &p->d;
  int x = kb_parfor(b, "x", I(p->P * p->P));
  int a = kb_let(b, "a", KT_INT, DIV(V(x), I(p->P)));
  int src = kb_let(b, "src", KT_INT, REM(V(x), I(p->P)));
  kb_if(b, kx_bin(b, KB_AND, kx_bin(b, KB_LE, V(src), V(a)), LT(V(a), V(ta->n))));
  {
    int qrow = kb_let(b, "qrow", KT_INT, row_of(b, p, ta, V(a)));
    int krow = kb_let(b, "krow", KT_INT, row_of(b, p, ta, V(src)));
    int qk = emit_qk(b, d, ta->q, ta->k, qrow, krow, p->VD);
    emit_gated_weights(b, d, ta->G, MUL(V(x), I(p->szD)), qk, ta->W, MUL(V(x), I(p->OV)));
  }
  kb_else(b);
  {
    kir_expr *y = jfor(b, "y", p->OV);
    kb_store(b, ta->W, ADD(MUL(V(x), I(p->OV)), y), F(0));
    jend(b, p->OV);
  }
  kb_end(b);
  kb_end(b);
}

/* Fast path, before the tree: G starts at zero (entries above the diagonal and of padding
 * rows stay zero), and k of the chunk is transposed so that q.k runs on vectors along the
 * source position. Rows past the end read the last row; their G is zero. */
static void emit_fast_prologue(kir_builder *b, const chunk_plan *p, const tree_arrays *ta)
{
  const plstm_dims *d = &p->d;
  int z = kb_parfor(b, "z", I(p->P * p->P / p->VS));
  kb_store(b, ta->G, MUL(V(z), I(p->VS)), kx_splat(b, F(0), p->VS));
  kb_end(b);
  int x = kb_parfor(b, "x", I(p->P * d->DK));
  int src = kb_let(b, "src", KT_INT, DIV(V(x), I(d->DK)));
  int dk = kb_let(b, "dk", KT_INT, REM(V(x), I(d->DK)));
  int krow = kb_let(b, "krow", KT_INT, row_of(b, p, ta, MIN(V(src), SUB(V(ta->n), I(1)))));
  kb_store(b, ta->Kt, MAD(V(dk), p->P, V(src)), LD(ta->k, MAD(V(krow), d->DK, V(dk))));
  kb_end(b);
}

/* Fast path, after the tree: W[a, src] = G[a, src] (q_a . k_src) for RB rows and VS source
 * lanes per item, the products accumulated over the key dimension. */
static void emit_fast_weights(kir_builder *b, const chunk_plan *p, const tree_arrays *ta)
{
  const plstm_dims *d = &p->d;
  int RB = p->RB, VS = p->VS;
  int64_t nsb = p->P / VS;
  int x = kb_parfor(b, "x", I(p->P / RB * nsb));
  int a0 = kb_let(b, "a0", KT_INT, MUL(DIV(V(x), I(nsb)), I(RB)));
  int s0 = kb_let(b, "s0", KT_INT, MUL(REM(V(x), I(nsb)), I(VS)));
  int acc = VS > 1 ? kb_private_vec(b, "qk", VS, RB) : kb_private(b, "qk", KT_FLOAT, RB);
  int qrows[16];
  for (int r = 0; r < RB; r++) {
    kb_store(b, acc, I(r), kx_splat(b, F(0), VS));
    qrows[r] = kb_let(b, "qrow", KT_INT, row_of(b, p, ta, MIN(ADD(V(a0), I(r)), SUB(V(ta->n), I(1)))));
  }
  int dk = kb_for(b, "dk", I(0), I(d->DK));
  int kv = kb_let(b, "kv", KT_FLOAT, kx_vload(b, ta->Kt, MAD(V(dk), p->P, V(s0)), VS));
  for (int r = 0; r < RB; r++)
    kb_store(b, acc, I(r), ADD(LD(acc, I(r)), MUL(LD(ta->q, MAD(V(qrows[r]), d->DK, V(dk))), V(kv))));
  kb_end(b);
  for (int r = 0; r < RB; r++) {
    kir_expr *at = ADD(MUL(ADD(V(a0), I(r)), I(p->P)), V(s0));
    kb_store(b, ta->G, at, MUL(kx_vload(b, ta->G, at, VS), LD(acc, I(r))));
  }
  kb_end(b);
}

static int emit_chunk_out(lower_ctx *lc, const ir_op *op, const chunk_plan *p, int wg)
{
  const plstm_dims *d = &p->d;
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "chunk_out"), wg, 2,
                      "pLSTM chunkwise, step 3 of 3: per chunk (group axis 0) and batch (axis 1),\n"
                      "the in-chunk tree gives the gating G[a,b] = Mbar_a Sbar_b and the marks\n"
                      "Mbar_a; W[a,b] = G[a,b] (q_a.k_b), then per block of RB rows and VL value\n"
                      "lanes h_a = s (sum_{b<=a} W[a,b] v_b + R(q_a, Mbar_a, C_entry)).");
  tree_arrays ta;
  memset(&ta, -1, sizeof ta);
  int64_t B = d->B, L = p->L;
  ta.q = kb_global(b, "q", KT_FLOAT, B * L * p->szQ, true);
  ta.k = kb_global(b, "k", KT_FLOAT, B * L * p->szK, true);
  ta.v = kb_global(b, "v", KT_FLOAT, B * L * p->szV, true);
  ta.S = kb_global(b, "S", KT_FLOAT, B * L * p->szS, true);
  ta.T = kb_global(b, "T", KT_FLOAT, B * L * p->szT, true);
  ta.M = kb_global(b, "M", KT_FLOAT, B * L * p->szM, true);
  ta.D = kb_global(b, "D", KT_FLOAT, B * L * p->szD, true);
  int Cin = kb_global(b, "C_entry", KT_FLOAT, B * p->NT * p->szC, true);
  int out = kb_global(b, "out", KT_FLOAT, B * L * p->szH, false);
  ta.Sacc = kb_local(b, "Sacc", KT_FLOAT, p->P * p->szS);
  ta.Macc = kb_local(b, "Macc", KT_FLOAT, p->P * p->szM);
  ta.Tblk = kb_local(b, "Tblk", KT_FLOAT, p->P * p->szT);
  ta.G = kb_local(b, "G", KT_FLOAT, p->P * p->P * p->szD);
  ta.W = p->w_in_g ? ta.G : kb_local(b, "W", KT_FLOAT, p->P * p->P * p->OV);
  if (p->fast)
    ta.Kt = kb_local(b, "Kt", KT_FLOAT, d->DK * p->P);
  chunk_header(b, p, &ta);
  if (p->fast)
    emit_fast_prologue(b, p, &ta);
  emit_tree(b, p, &ta);
  if (p->fast)
    emit_fast_weights(b, p, &ta);
  else
    emit_pair_weights(b, p, &ta);

  /* Outputs: RB rows a0.. and VL lanes dv0.. per item; accumulators h[r][o]. */
  int RB = p->RB, VL = p->VL;
  int64_t nvb = d->DV / VL;
  int x = kb_parfor(b, "x", I(p->P / RB * nvb));
  int a0 = kb_let(b, "a0", KT_INT, MUL(DIV(V(x), I(nvb)), I(RB)));
  int dv0 = kb_let(b, "dv0", KT_INT, MUL(REM(V(x), I(nvb)), I(VL)));
  kb_if(b, LT(V(a0), V(ta.n)));
  int h = VL > 1 ? kb_private_vec(b, "h", VL, RB * d->JO) : kb_private(b, "h", KT_FLOAT, RB * d->JO);
  for (int r = 0; r < RB * d->JO; r++)
    kb_store(b, h, I(r), kx_splat(b, F(0), VL));
  kb_comment(b, "intra-chunk: W is zero above the diagonal, so whole row blocks share sources");
  int src = kb_for(b, "src", I(0), MIN(ADD(V(a0), I(RB)), V(ta.n)));
  int vrow = kb_let(b, "vrow", KT_INT, row_of(b, p, &ta, V(src)));
  kir_expr *cv = jfor(b, "cv", d->JV);
  int vv = kb_let(b, "vv", KT_FLOAT, kx_vload(b, ta.v, ADD(MAD(MAD(V(vrow), d->DV, V(dv0)), d->JV, I(0)), cv), VL));
  for (int r = 0; r < RB; r++) {
    kir_expr *o = jfor(b, "o", d->JO);
    kir_expr *wi = ADD(MUL(MAD(ADD(V(a0), I(r)), p->P, V(src)), I(p->OV)), MAD(o, d->JV, cv));
    kir_expr *slot = MAD(I(r), d->JO, o);
    kb_store(b, h, slot, ADD(LD(h, slot), MUL(LD(ta.W, wi), V(vv))));
    jend(b, d->JO);
  }
  jend(b, d->JV);
  kb_end(b);
  kb_comment(b, "inter-chunk: the state entering the chunk, read through Mbar_a");
  int qrows[16];
  for (int r = 0; r < RB; r++) /* rows past the end read the last row; Mbar is zero there */
    qrows[r] = kb_let(b, "qrow", KT_INT, row_of(b, p, &ta, MIN(ADD(V(a0), I(r)), SUB(V(ta.n), I(1)))));
  int marks[16];
  for (int r = 0; r < RB && p->szM == 1; r++) /* J = 1: the mark is one number per row */
    marks[r] = kb_let(b, "mark", KT_FLOAT, LD(ta.Macc, ADD(V(a0), I(r))));
  int dk = kb_for(b, "dk", I(0), I(d->DK));
  kir_expr *t = jfor(b, "t", d->JT);
  int cc = kb_let(b, "cc", KT_FLOAT,
                  kx_vload(b, Cin, ADD(MAD(MAD(MAD(V(ta.chunk), d->DK, V(dk)), d->DV, V(dv0)), d->JT, I(0)), t), VL));
  kir_expr *aq = jfor(b, "aq", d->JQ);
  for (int r = 0; r < RB; r++) {
    int qv = kb_let(b, "qv", KT_FLOAT, LD(ta.q, ADD(MAD(MAD(V(qrows[r]), d->DK, V(dk)), d->JQ, I(0)), aq)));
    kir_expr *o = jfor(b, "o", d->JO);
    kir_expr *mi = MAD(ADD(V(a0), I(r)), p->szM, MAD(MAD(o, d->JQ, aq), d->JT, t));
    kir_expr *mark = p->szM == 1 ? V(marks[r]) : LD(ta.Macc, mi);
    kir_expr *slot = MAD(I(r), d->JO, o);
    kb_store(b, h, slot, ADD(LD(h, slot), MUL(MUL(V(qv), mark), V(cc))));
    jend(b, d->JO);
  }
  jend(b, d->JQ);
  jend(b, d->JT);
  kb_end(b);
  for (int r = 0; r < RB; r++) {
    if (r > 0)
      kb_if(b, LT(ADD(V(a0), I(r)), V(ta.n)));
    kir_expr *o = jfor(b, "o", d->JO);
    kir_expr *at = ADD(MAD(MAD(row_of(b, p, &ta, ADD(V(a0), I(r))), d->DV, V(dv0)), d->JO, I(0)), o);
    kb_store(b, out, at, MUL(LD(h, MAD(I(r), d->JO, o)), F(p->scale)));
    jend(b, d->JO);
    if (r > 0)
      kb_end(b);
  }
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

/* ------------------------------------------------------------------ the form */

static bool all_j_one(const plstm_dims *d)
{
  return d->JQ == 1 && d->JK == 1 && d->JV == 1 && d->JT == 1 && d->JO == 1;
}

uint64_t chunk_local_bytes(const plstm_dims *d, int64_t chunk, int64_t lanes)
{
  uint64_t P = (uint64_t)pow2_ceil(chunk);
  uint64_t szD = (uint64_t)(d->JO * d->JQ * d->JK * d->JV), OV = (uint64_t)(d->JO * d->JV);
  uint64_t per = (uint64_t)(d->JT * d->JK * d->JV + d->JO * d->JQ * d->JT + d->JT * d->JT);
  uint64_t pair = szD + (d->JQ == 1 && d->JK == 1 ? 0 : OV);
  uint64_t kt = lanes > 1 && all_j_one(d) ? P * (uint64_t)d->DK : 0;
  return 4u * (P * per + P * P * pair + kt);
}

int lower_plstm_chunkwise(lower_ctx *lc, const ir_op *op)
{
  chunk_plan p;
  memset(&p, 0, sizeof p);
  int rc = plstm_scan_dims(lc->m, op, &p.d, lc->err);
  if (rc)
    return rc;
  const plstm_dims *d = &p.d;
  p.L = d->N;
  p.BT = op->sched.chunk;
  if (p.BT < 1)
    return xy_fail(lc->err, XY_E_INTERNAL, "'%s': chunkwise form without a chunk size", op->name);
  if (p.BT > p.L)
    p.BT = p.L;
  p.P = pow2_ceil(p.BT);
  for (int64_t s = 1; s < p.P; s *= 2)
    p.levels++;
  p.NT = (p.L + p.BT - 1) / p.BT;
  p.szQ = d->DK * d->JQ;
  p.szK = d->DK * d->JK;
  p.szV = d->DV * d->JV;
  p.szS = d->JT * d->JK * d->JV;
  p.szT = d->JT * d->JT;
  p.szM = d->JO * d->JQ * d->JT;
  p.szD = d->JO * d->JQ * d->JK * d->JV;
  p.szC = d->DK * d->DV * d->JT;
  p.szH = d->DV * d->JO;
  p.OV = d->JO * d->JV;
  p.w_in_g = d->JQ == 1 && d->JK == 1;
  p.scale = op->qk_scale;
  /* The schedule's vector width and register rows, where the shapes allow them. */
  plstm_lanes(d, &op->sched, &p.VL, &p.VD);
  p.RB = op->sched.rows > 1 ? (int)op->sched.rows : 1;
  while (p.RB > 1 && (d->DK % p.RB != 0 || p.P % p.RB != 0))
    p.RB /= 2;
  p.fast = p.VL > 1 && all_j_one(d);
  p.VS = p.VL < p.P ? p.VL : (int)p.P;
  uint64_t need = chunk_local_bytes(d, p.BT, p.VL);
  if (need > local_budget(lc->opt)) {
    char what[48];
    snprintf(what, sizeof what, "chunk %lld", (long long)op->sched.chunk);
    return local_overflow(lc->err, lc->opt, op->name, what, need, "choose a smaller --chunk");
  }

  int bq = lower_in(lc, op, 0), bk = lower_in(lc, op, 1), bv = lower_in(lc, op, 2);
  int bS = lower_in(lc, op, 3), bT = lower_in(lc, op, 4), bM = lower_in(lc, op, 5);
  int bD = lower_in(lc, op, 6), bC0 = lower_in(lc, op, 7);
  int bout = lower_out(lc, op, 0), bCf = lower_out(lc, op, 1);
  int64_t nchunks = d->B * p.NT;
  int bdC = lower_temp(lc, lower_name(lc, op, "dC"), nchunks * p.szC);
  int bTbar = lower_temp(lc, lower_name(lc, op, "Tbar"), nchunks * p.szT);
  if (bdC < 0 || bTbar < 0)
    return lc->err->code;

  int wg_tree = (int)op->sched.wg;
  int scan_items = (int)(d->JT == 1 ? d->DK * d->DV / p.VL : d->DK * d->DV);
  int wg_scan = lower_wg(lc, scan_items);
  int k_state = emit_chunk_state(lc, op, &p, wg_tree);
  int k_scan = k_state < 0 ? -1 : emit_chunk_scan(lc, op, &p, wg_scan, bC0 >= 0, bCf >= 0);
  int k_out = k_scan < 0 ? -1 : emit_chunk_out(lc, op, &p, wg_tree);
  if (k_out < 0)
    return lc->err->code ? lc->err->code : XY_E_INTERNAL;

  /* Costs for reports: flops of the useful arithmetic, bytes each kernel must move. */
  double Bd = (double)d->B, Ld = (double)p.L, NTd = (double)nchunks;
  double pairs = Ld * (double)(p.BT + 1) / 2.0 * Bd;
  double f_state = 2.0 * Bd * Ld * (double)(p.szC * d->JK * d->JV) +
                   2.0 * Bd * Ld * (double)p.levels * (double)(p.szT * (d->JT + p.szS));
  double b_state = 4.0 * (Bd * Ld * (double)(p.szK + p.szV + p.szS + p.szT) +
                          NTd * (double)(p.szC + p.szT));
  double f_scan = 2.0 * NTd * (double)(p.szC * d->JT);
  double b_scan = 4.0 * (2.0 * NTd * (double)p.szC + NTd * (double)p.szT);
  double f_out = pairs * 2.0 * (double)(d->DK * d->JQ * d->JK + p.szD * d->JT + d->DV * d->JO * d->JV) +
                 2.0 * Bd * Ld * (double)(p.szC * d->JQ * d->JO);
  double b_out = 4.0 * (Bd * Ld * (double)(p.szQ + p.szK + p.szV + p.szS + p.szT + p.szM + p.szD + p.szH) +
                        NTd * (double)p.szC);

  int64_t g_chunks[3] = {p.NT, d->B, 1};
  int64_t g_scan[3] = {(scan_items + wg_scan - 1) / wg_scan, d->B, 1};
  kir_arg a_state[] = {{true, bk}, {true, bv}, {true, bS}, {true, bT}, {true, bdC}, {true, bTbar}};
  kir_arg a_scan[4] = {{true, bTbar}, {true, bdC}};
  int n_scan = 2;
  if (bC0 >= 0)
    a_scan[n_scan++] = (kir_arg){true, bC0};
  if (bCf >= 0)
    a_scan[n_scan++] = (kir_arg){true, bCf};
  kir_arg a_out[] = {{true, bq}, {true, bk}, {true, bv}, {true, bS}, {true, bT},
                     {true, bM}, {true, bD}, {true, bdC}, {true, bout}};
  if (kir_add_launch(lc->k, k_state, g_chunks, a_state, 6, f_state, b_state) < 0 ||
      kir_add_launch(lc->k, k_scan, g_scan, a_scan, n_scan, f_scan, b_scan) < 0 ||
      kir_add_launch(lc->k, k_out, g_chunks, a_out, 9, f_out, b_out) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}
