/*
 * lower_plstm2d_paths.c: path sums inside a tile (spec plstm.md §1.3, §3.2), by a dynamic
 * program from one source instead of the reference's hierarchical quadrant merge: both give
 * the same sums over monotone paths, the program in O(cells) per source and exactly.
 *
 * From a source, the weight w(e) of every edge the source reaches is the sum over paths of
 * the products of transitions along them, the source's S first: visiting cells in row-major
 * order (all of a row's cells before the next row's), the r-edge weights of the previous row
 * are a frontier wr[j], the d-edge weight of the cell to the left a carry wd:
 *
 *   mark at (i, j)   M_l wr[j] + M_u wd        (what reaches the cell)
 *   wr[j] <- T_rl wr[j] + T_ru wd (+ S_r at the source)
 *   wd    <- T_du wd + T_dl wr[j] (+ S_d at the source)
 *
 * A cell source starts with zero weights and injects its S; an in-edge source starts with
 * the identity on its edge, so its sums are the transfer from that border edge.
 */
#include "lower_expr.h"
#include "lower_plstm2d.h"

typedef struct dp {
  const p2d_kern *kc;
  const p2d_tile *t;
  int64_t W;                 /* columns of a weight: KW (cell source) or JT (edge source) */
  int wr, wd, nr, nd, mk;    /* private arrays */
} dp;

/* 1 where the identity's row t equals its column w (the constant 1 when JT = 1). */
static kir_expr *identity_at(kir_builder *b, kir_expr *cond, kir_expr *t, kir_expr *w,
                             int64_t JT)
{
  if (JT > 1)
    cond = kx_bin(b, KB_AND, cond, kx_bin(b, KB_EQ, t, w));
  return SEL(cond, F(1), F(0));
}

/* The mark at (i, j): mk[r][w] = sum_t M_l[r,t] wr[j][t][w] + M_u[r,t] wd[t][w]. */
static void emit_mark(const dp *s, int grow, int j)
{
  const p2d_kern *kc = s->kc;
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int64_t JT = p->d.JT, W = s->W;
  kir_expr *r = jfor(b, "r", p->MR);
  kir_expr *w = jfor(b, "w", W);
  int acc = kb_let(b, "m", KT_FLOAT, F(0));
  kir_expr *t = jfor(b, "t", JT);
  kir_expr *cl = LD(s->wr, ADD(MUL(V(j), I(JT * W)), MAD(t, W, w)));
  kir_expr *cu = LD(s->wd, MAD(t, W, w));
  kb_set(b, acc, ADD(V(acc), ADD(MUL(p2d_gate(kc, P2D_G_ML, V(grow), MAD(r, JT, t)), cl),
                                 MUL(p2d_gate(kc, P2D_G_MU, V(grow), MAD(r, JT, t)), cu))));
  jend(b, JT);
  kb_store(b, s->mk, MAD(r, W, w), V(acc));
  jend(b, W);
  jend(b, p->MR);
}

/* The weights leaving (i, j); is_src (a variable, or -1) adds the cell's own sources. */
static void emit_step(const dp *s, int grow, int j, int is_src)
{
  const p2d_kern *kc = s->kc;
  kir_builder *b = kc->b;
  int64_t JT = kc->p->d.JT, W = s->W;
  kir_expr *ii = jfor(b, "ii", JT);
  kir_expr *w = jfor(b, "w", W);
  int r = kb_let(b, "nr", KT_FLOAT, F(0));
  int d = kb_let(b, "nd", KT_FLOAT, F(0));
  kir_expr *t = jfor(b, "t", JT);
  kir_expr *cl = LD(s->wr, ADD(MUL(V(j), I(JT * W)), MAD(t, W, w)));
  kir_expr *cu = LD(s->wd, MAD(t, W, w));
  kir_expr *tt = MAD(ii, JT, t);
  kb_set(b, r, ADD(V(r), ADD(MUL(p2d_gate(kc, P2D_G_TRL, V(grow), tt), cl),
                             MUL(p2d_gate(kc, P2D_G_TRU, V(grow), tt), cu))));
  kb_set(b, d, ADD(V(d), ADD(MUL(p2d_gate(kc, P2D_G_TDU, V(grow), tt), cu),
                             MUL(p2d_gate(kc, P2D_G_TDL, V(grow), tt), cl))));
  jend(b, JT);
  if (is_src >= 0) {
    kir_expr *si = MAD(ii, W, w);
    kb_set(b, r, ADD(V(r), SEL(V(is_src), p2d_gate(kc, P2D_G_SR, V(grow), si), F(0))));
    kb_set(b, d, ADD(V(d), SEL(V(is_src), p2d_gate(kc, P2D_G_SD, V(grow), si), F(0))));
  }
  kb_store(b, s->nr, MAD(ii, W, w), V(r));
  kb_store(b, s->nd, MAD(ii, W, w), V(d));
  jend(b, W);
  jend(b, JT);
  kir_expr *e = jfor(b, "e", JT * W);
  kb_store(b, s->wr, ADD(MUL(V(j), I(JT * W)), e), LD(s->nr, e));
  kb_store(b, s->wd, e, LD(s->nd, e));
  jend(b, JT * W);
}

/* The program over rows i_lo..nx-1 and columns j_lo..ny-1. Cell sources pass si, sj
 * (bidx = -1); edge sources pass bidx (si = sj = -1). */
static void emit_dp(const p2d_kern *kc, const p2d_tile *t, int64_t W, kir_expr *i_lo,
                    kir_expr *j_lo, int si, int sj, int bidx, const p2d_sinks *sk)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int64_t JT = p->d.JT, TY = p->TY;
  dp s = {.kc = kc, .t = t, .W = W, .mk = -1};
  s.wr = kb_private(b, "wr", KT_FLOAT, TY * JT * W);
  s.wd = kb_private(b, "wd", KT_FLOAT, JT * W);
  s.nr = kb_private(b, "nr", KT_FLOAT, JT * W);
  s.nd = kb_private(b, "nd", KT_FLOAT, JT * W);
  if (sk->mark)
    s.mk = kb_private(b, "mk", KT_FLOAT, p->MR * W);

  /* An edge source on the left starts as the identity on its row's r-weight. */
  int j = kb_for(b, "j", I(0), I(TY));
  kir_expr *tt = jfor(b, "t", JT);
  kir_expr *w = jfor(b, "w", W);
  kir_expr *init = bidx >= 0 ? identity_at(b, kx_bin(b, KB_EQ, V(bidx), V(j)), tt, w, JT) : F(0);
  kb_store(b, s.wr, ADD(MUL(V(j), I(JT * W)), MAD(tt, W, w)), init);
  jend(b, W);
  jend(b, JT);
  kb_end(b);

  int i = kb_for(b, "i", i_lo, V(t->nx));
  /* ... one on the top enters its column's row as the d-weight. */
  tt = jfor(b, "t", JT);
  w = jfor(b, "w", W);
  init = bidx >= 0 ? identity_at(b, kx_bin(b, KB_EQ, SUB(V(bidx), I(TY)), V(i)), tt, w, JT) : F(0);
  kb_store(b, s.wd, MAD(tt, W, w), init);
  jend(b, W);
  jend(b, JT);
  int jj = kb_for(b, "j", j_lo, V(t->ny));
  int grow = kb_let(b, "grow", KT_INT, p2d_gate_row(kc, ADD(V(t->x0), V(i)), ADD(V(t->y0), V(jj))));
  int is_src = -1;
  if (si >= 0)
    is_src = kb_let(b, "is_src", KT_BOOL,
                    kx_bin(b, KB_AND, kx_bin(b, KB_EQ, V(i), V(si)), kx_bin(b, KB_EQ, V(jj), V(sj))));
  if (sk->mark) {
    emit_mark(&s, grow, jj);
    sk->mark(kc, sk->ctx, i, jj, s.mk);
  }
  emit_step(&s, grow, jj, is_src);
  kb_end(b);
  if (sk->bottom)
    sk->bottom(kc, sk->ctx, i, s.wd);
  kb_end(b);

  if (sk->right) {
    int jr = kb_for(b, "j", I(0), V(t->ny));
    sk->right(kc, sk->ctx, jr, s.wr, MUL(V(jr), I(JT * W)));
    kb_end(b);
  }
}

void p2d_emit_cell_paths(const p2d_kern *kc, const p2d_tile *t, int si, int sj,
                         const p2d_sinks *s)
{
  kir_builder *b = kc->b;
  emit_dp(kc, t, kc->p->KW, V(si), V(sj), si, sj, -1, s);
}

void p2d_emit_edge_paths(const p2d_kern *kc, const p2d_tile *t, int bidx, const p2d_sinks *s)
{
  kir_builder *b = kc->b;
  int64_t TY = kc->p->TY;
  kir_expr *top = kx_bin(b, KB_GE, V(bidx), I(TY));
  kir_expr *i_lo = SEL(top, SUB(V(bidx), I(TY)), I(0));
  kir_expr *j_lo = SEL(kx_bin(b, KB_GE, V(bidx), I(TY)), I(0), V(bidx));
  emit_dp(kc, t, kc->p->d.JT, i_lo, j_lo, -1, -1, bidx, s);
}
