/*
 * lower_plstm2d_recurrent.c: the 2D scans as a wavefront over anti-diagonals (spec
 * plstm.md §2.2): the cells with x + y = dd depend only on diagonal dd - 1, so one kernel
 * walks the X + Y - 1 diagonals, its work-items taking the cells of a diagonal between
 * barriers. Value columns are independent (the recurrence never mixes them), so each
 * work-group owns VL of them for one batch element and keeps them apart from the others.
 *
 * The states live in two frontiers: Rf[y], the r-state entering row y's next cell (the
 * left initial state at first, the right final state at the end), and Df[x], the d-state
 * entering column x's next cell. Cell (x, y) of diagonal dd is the only one of its diagonal
 * to read and write Rf[y] and Df[x]. The fused op runs the kernel once per orientation o,
 * adding into out after the first.
 */
#include "lower_expr.h"
#include "lower_plstm2d.h"

/* Element (row, dk, dv, t) of a [rows][DK][DV][JT] border array. */
static kir_expr *border_at(kir_builder *b, const p2d_plan *p, kir_expr *row, kir_expr *dk,
                           kir_expr *dv, kir_expr *t)
{
  const plstm2d_dims *d = &p->d;
  return ADD(MUL(ADD(MUL(ADD(MUL(row, I(d->DK)), dk), I(d->DV)), dv), I(d->JT)), t);
}

/* The frontier's start for this group's columns: the initial states, or zero. */
static void init_frontier(kir_builder *b, const p2d_plan *p, int front, int init, int bi,
                          int dv, int64_t rows)
{
  const plstm2d_dims *d = &p->d;
  int e = kb_parfor(b, "e", I(rows * d->DK));
  int row = kb_let(b, "row", KT_INT, ADD(MUL(V(bi), I(rows)), DIV(V(e), I(d->DK))));
  int dk = kb_let(b, "dk", KT_INT, REM(V(e), I(d->DK)));
  kir_expr *t = jfor(b, "t", d->JT);
  kir_expr *at = border_at(b, p, V(row), V(dk), V(dv), t);
  kb_store(b, front, at, init >= 0 ? kx_vload(b, init, at, p->VL) : kx_splat(b, F(0), p->VL));
  jend(b, d->JT);
  kb_end(b);
}

/* The gates of one cell in private arrays (absent turns stay -1: zero). */
static void load_gates(const p2d_kern *kc, int grow, int *cache)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  static const char *const names[P2D_G_COUNT] = {"gsr", "gsd", "gtrl", "gtdu", "gtdl", "gtru",
                                                 "gml", "gmu"};
  for (int g = 0; g < P2D_G_COUNT; g++) {
    cache[g] = -1;
    if (kc->g[g] < 0)
      continue;
    int64_t n = g <= P2D_G_SD ? p->szS : g <= P2D_G_TRU ? p->szT : p->szM;
    cache[g] = kb_private(b, names[g], KT_FLOAT, n);
    kir_expr *e = jfor(b, "e", n);
    kb_store(b, cache[g], e, p2d_gate(kc, g, V(grow), e));
    jend(b, n);
  }
}

static kir_expr *cached(kir_builder *b, const int *cache, int g, kir_expr *idx)
{
  return cache[g] >= 0 ? LD(cache[g], idx) : F(0);
}

/* One cell: direct term, the two incoming states read through the marks, the two
 * outgoing states written; h[JO] then goes to out. */
static void emit_cell(const p2d_kern *kc, int front_r, int front_d, int out, int x, int y,
                      int dv)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  const plstm2d_dims *d = &p->d;
  int VL = p->VL;
  int64_t JT = d->JT, JO = d->JO;
  int row = kb_let(b, "row", KT_INT, p2d_cell_row(kc, V(x), V(y)));
  int grow = kb_let(b, "grow", KT_INT, p2d_gate_row(kc, V(x), V(y)));
  int h = VL > 1 ? kb_private_vec(b, "h", VL, JO) : kb_private(b, "h", KT_FLOAT, JO);
  kb_comment(b, "direct term: D (q.k) v%s", kc->o >= 0 ? ", in orientation 0 only" : "");
  if (kc->o >= 0) {
    kir_expr *o = jfor(b, "o", JO);
    kb_store(b, h, o, kx_splat(b, F(0), VL));
    jend(b, JO);
    kb_if(b, p2d_is_first_orientation(kc));
  }
  int qk = emit_qk(b, &p->pd, kc->q, kc->k, row, row, p->VD);
  emit_direct(b, &p->pd, kc->D, kc->v, qk, h, row, dv, VL);
  if (kc->o >= 0)
    kb_end(b);
  int cache[P2D_G_COUNT];
  load_gates(kc, grow, cache);
  int cl = VL > 1 ? kb_private_vec(b, "cl", VL, JT) : kb_private(b, "cl", KT_FLOAT, JT);
  int cu = VL > 1 ? kb_private_vec(b, "cu", VL, JT) : kb_private(b, "cu", KT_FLOAT, JT);
  kb_comment(b, "read the incoming states through the marks, write the outgoing ones");
  int dk = kb_for(b, "dk", I(0), I(d->DK));
  kir_expr *t = jfor(b, "t", JT);
  kb_store(b, cl, t, kx_vload(b, front_r, border_at(b, p, ADD(MUL(V(kc->bi), I(p->Y)), V(y)), V(dk), V(dv), t), VL));
  kb_store(b, cu, t, kx_vload(b, front_d, border_at(b, p, ADD(MUL(V(kc->bi), I(p->X)), V(x)), V(dk), V(dv), t), VL));
  jend(b, JT);
  kir_expr *aq = jfor(b, "aq", d->JQ);
  int qv = kb_let(b, "qv", KT_FLOAT, LD(kc->q, ADD(MAD(MAD(V(row), d->DK, V(dk)), d->JQ, I(0)), aq)));
  kir_expr *o = jfor(b, "o", JO);
  t = jfor(b, "t", JT);
  kir_expr *mi = MAD(MAD(o, d->JQ, aq), JT, t);
  kir_expr *read = ADD(MUL(cached(b, cache, P2D_G_ML, mi), LD(cl, t)),
                       MUL(cached(b, cache, P2D_G_MU, mi), LD(cu, t)));
  kb_store(b, h, o, ADD(LD(h, o), MUL(V(qv), read)));
  jend(b, JT);
  jend(b, JO);
  jend(b, d->JQ);
  kir_expr *ii = jfor(b, "ii", JT);
  int ar = kb_let(b, "ar", KT_FLOAT, kx_splat(b, F(0), VL));
  int ad = kb_let(b, "ad", KT_FLOAT, kx_splat(b, F(0), VL));
  t = jfor(b, "t", JT);
  kir_expr *ti = MAD(ii, JT, t);
  kb_set(b, ar, ADD(V(ar), ADD(MUL(cached(b, cache, P2D_G_TRL, ti), LD(cl, t)),
                               MUL(cached(b, cache, P2D_G_TRU, ti), LD(cu, t)))));
  kb_set(b, ad, ADD(V(ad), ADD(MUL(cached(b, cache, P2D_G_TDU, ti), LD(cu, t)),
                               MUL(cached(b, cache, P2D_G_TDL, ti), LD(cl, t)))));
  jend(b, JT);
  kir_expr *bk = jfor(b, "bk", d->JK);
  kir_expr *cv = jfor(b, "cv", d->JV);
  kir_expr *kval = LD(kc->k, ADD(MAD(MAD(V(row), d->DK, V(dk)), d->JK, I(0)), bk));
  kir_expr *vv = kx_vload(b, kc->v, ADD(MAD(MAD(V(row), d->DV, V(dv)), d->JV, I(0)), cv), VL);
  int kv = kb_let(b, "kv", KT_FLOAT, MUL(kval, vv));
  kir_expr *si = MAD(MAD(ii, d->JK, bk), d->JV, cv);
  kb_set(b, ar, ADD(V(ar), MUL(cached(b, cache, P2D_G_SR, si), V(kv))));
  kb_set(b, ad, ADD(V(ad), MUL(cached(b, cache, P2D_G_SD, si), V(kv))));
  jend(b, d->JV);
  jend(b, d->JK);
  kb_store(b, front_r, border_at(b, p, ADD(MUL(V(kc->bi), I(p->Y)), V(y)), V(dk), V(dv), ii), V(ar));
  kb_store(b, front_d, border_at(b, p, ADD(MUL(V(kc->bi), I(p->X)), V(x)), V(dk), V(dv), ii), V(ad));
  jend(b, JT);
  kb_end(b);

  o = jfor(b, "o", JO);
  kir_expr *at = ADD(MAD(MAD(V(row), d->DV, V(dv)), JO, I(0)), o);
  if (kc->o >= 0) {
    kb_if(b, p2d_is_first_orientation(kc));
    kb_store(b, out, at, MUL(LD(h, o), F(p->scale)));
    kb_else(b);
    at = ADD(MAD(MAD(V(row), d->DV, V(dv)), JO, I(0)), o);
    kb_store(b, out, at, ADD(kx_vload(b, out, at, VL), MUL(LD(h, o), F(p->scale))));
    kb_end(b);
  } else {
    kb_store(b, out, at, MUL(LD(h, o), F(p->scale)));
  }
  jend(b, JO);
}

int lower_plstm2d_recurrent(lower_ctx *lc, const ir_op *op, p2d_plan *p)
{
  const plstm2d_dims *d = &p->d;
  int bRf = lower_out(lc, op, P2D_CR), bDf = lower_out(lc, op, P2D_CB);
  const int64_t rf[] = {d->B, p->Y, p->szC}, df[] = {d->B, p->X, p->szC};
  if (bRf < 0 && (bRf = p2d_temp(lc, op, "R_front", 3, rf)) < 0)
    return lc->err->code;
  if (bDf < 0 && (bDf = p2d_temp(lc, op, "D_front", 3, df)) < 0)
    return lc->err->code;

  kir_builder kbb, *b = &kbb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "wavefront"), (int)p->wg, 2,
                      "pLSTM 2D wavefront: per VL value columns (group axis 0) and batch (axis 1),\n"
                      "the anti-diagonals in order, a diagonal's cells spread over the work-items;\n"
                      "states in the frontiers R_front[y] (entering row y) and D_front[x].");
  p2d_kern kc = {.b = b, .p = p};
  int64_t cells = d->B * p->P;
  p2d_args args = {.n = 0};
  kc.q = p2d_global(&kc, &args, "q", lower_in(lc, op, P2D_Q), cells * p->szQ, true);
  kc.k = p2d_global(&kc, &args, "k", lower_in(lc, op, P2D_K), cells * p->szK, true);
  kc.v = p2d_global(&kc, &args, "v", lower_in(lc, op, P2D_V), cells * p->szV, true);
  kc.D = p2d_global(&kc, &args, "D", lower_in(lc, op, P2D_D), cells * p->szD, true);
  p2d_declare_gates(lc, op, &kc, &args, true);
  int bCL = d->fused ? -1 : lower_in(lc, op, P2D_CL), bCT = d->fused ? -1 : lower_in(lc, op, P2D_CT);
  int CL = bCL >= 0 ? p2d_global(&kc, &args, "C_left", bCL, d->B * p->Y * p->szC, true) : -1;
  int CT = bCT >= 0 ? p2d_global(&kc, &args, "C_top", bCT, d->B * p->X * p->szC, true) : -1;
  int out = p2d_global(&kc, &args, "out", lower_out(lc, op, P2D_OUT), cells * p->szH, false);
  int Rf = p2d_global(&kc, &args, "R_front", bRf, d->B * p->Y * p->szC, false);
  int Df = p2d_global(&kc, &args, "D_front", bDf, d->B * p->X * p->szC, false);
  p2d_declare_orientation(&kc, &args, p->n_orient > 1);
  kc.bi = kb_let(b, "b", KT_INT, GID(1));
  int dv = kb_let(b, "dv", KT_INT, MUL(GID(0), I(p->VL)));
  init_frontier(b, p, Rf, CL, kc.bi, dv, p->Y);
  init_frontier(b, p, Df, CT, kc.bi, dv, p->X);
  int dd = kb_for(b, "dd", I(0), I(p->X + p->Y - 1));
  int xlo = kb_let(b, "xlo", KT_INT, kx_bin(b, KB_MAX, I(0), SUB(V(dd), I(p->Y - 1))));
  int xhi = kb_let(b, "xhi", KT_INT, MIN(V(dd), I(p->X - 1)));
  int c = kb_parfor(b, "c", ADD(SUB(V(xhi), V(xlo)), I(1)));
  int x = kb_let(b, "x", KT_INT, ADD(V(xlo), V(c)));
  int y = kb_let(b, "y", KT_INT, SUB(V(dd), V(x)));
  emit_cell(&kc, Rf, Df, out, x, y, dv);
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;

  double cd = (double)cells, szC = (double)p->szC;
  double flops = 2.0 * cd * (szC * (double)(2 * d->JT + d->JK * d->JV) * 2.0 +
                             szC * (double)(d->JQ * d->JO) * 2.0 + (double)(p->szQ * d->JK) +
                             (double)(p->szD * d->DV));
  double bytes = 4.0 * (cd * (double)(p->szQ + p->szK + p->szV + p->szD + 2 * p->szS +
                                      4 * p->szT + 2 * p->szM + p->szH) +
                        4.0 * cd * szC);
  for (int64_t o = 0; o < p->n_orient && !rc; o++)
    rc = p2d_launch(lc, kid, &args, d->DV / p->VL, d->B, o, 0, flops, bytes);
  return rc;
}
