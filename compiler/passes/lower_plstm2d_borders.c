/*
 * lower_plstm2d_borders.c: the border states of tiles (spec plstm.md §3.2, "inter-chunk
 * pass"), like the 1D chunkwise form's chunk_state and chunk_scan:
 *
 *   tile_state  per tile: the transfer Tbar from in- to out-edges (a path-sum program from
 *               each in-edge), and dC, the out-edge states the tile's own sources give: the
 *               recurrence run inside the tile from zero borders, per state element (the
 *               value columns are independent), VL lanes and RB key rows per work-item.
 *   tile_scan   per tile of one tile anti-diagonal (launched once per diagonal): entry
 *               states from the left and upper neighbours' out-states (the frontiers) or
 *               the initial states; out = Tbar in + dC; dC becomes the entry states.
 */
#include "lower_expr.h"
#include "lower_plstm2d.h"

/* Element (row, a, dk, dv, t) of a [rows][NB][DK][DV][JT] state array. */
static kir_expr *state_at(kir_builder *b, const p2d_plan *p, kir_expr *tile_row, kir_expr *a,
                          kir_expr *dk, kir_expr *dv, kir_expr *t)
{
  const plstm2d_dims *d = &p->d;
  kir_expr *e = ADD(MUL(tile_row, I(p->NB)), a);
  return ADD(MUL(ADD(MUL(ADD(MUL(e, I(d->DK)), dk), I(d->DV)), dv), I(d->JT)), t);
}

/* Element (row, dk, dv, t) of a [rows][DK][DV][JT] border array (frontiers, initial and
 * final states). */
static kir_expr *border_at(kir_builder *b, const p2d_plan *p, kir_expr *row, kir_expr *dk,
                           kir_expr *dv, kir_expr *t)
{
  const plstm2d_dims *d = &p->d;
  return ADD(MUL(ADD(MUL(ADD(MUL(row, I(d->DK)), dk), I(d->DV)), dv), I(d->JT)), t);
}

/* ------------------------------------------------------------------ tile_state */

typedef struct tbar_sink {
  int Tbar;
  int base;        /* variable: (b*NT + tile)*NB */
  int bidx;
} tbar_sink;

/* Tbar[a][bidx] = the weight w at off (zero when w is -1). */
static void tbar_store(const p2d_kern *kc, const tbar_sink *ts, kir_expr *a, int w, kir_expr *off)
{
  kir_builder *b = kc->b;
  int64_t szT = kc->p->szT, NB = kc->p->NB;
  kir_expr *e = jfor(b, "e", szT);
  kb_store(b, ts->Tbar, ADD(MUL(ADD(MUL(ADD(V(ts->base), a), I(NB)), V(ts->bidx)), I(szT)), e),
           w >= 0 ? LD(w, ADD(off, e)) : F(0));
  jend(b, szT);
}

static void tbar_bottom(const p2d_kern *kc, void *ctx, int i, int wd)
{
  kir_builder *b = kc->b;
  tbar_store(kc, ctx, ADD(I(kc->p->TY), V(i)), wd, I(0));
}

static void tbar_right(const p2d_kern *kc, void *ctx, int j, int wr, kir_expr *off)
{
  kir_builder *b = kc->b;
  tbar_store(kc, ctx, V(j), wr, off);
}

static void emit_transfer(p2d_kern *kc, const p2d_tile *t, int Tbar)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int bidx = kb_parfor(b, "bidx", I(p->NB));
  tbar_sink ts = {.Tbar = Tbar, .bidx = bidx};
  ts.base = kb_let(b, "base", KT_INT, MUL(ADD(MUL(V(kc->bi), I(p->NT)), V(t->tile)), I(p->NB)));
  kb_comment(b, "unreached out-edges (and padding) transfer nothing");
  int a = kb_for(b, "a", I(0), I(p->NB));
  tbar_store(kc, &ts, V(a), -1, NULL);
  kb_end(b);
  p2d_sinks sk = {.bottom = tbar_bottom, .right = tbar_right, .ctx = &ts};
  p2d_emit_edge_paths(kc, t, bidx, &sk);
  kb_end(b);
}

static void emit_sources(p2d_kern *kc, const p2d_tile *t, int dC)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  const plstm2d_dims *d = &p->d;
  int VL = p->VL, RB = p->RB;
  int64_t JT = d->JT, TY = p->TY, nvb = d->DV / VL;
  int e = kb_parfor(b, "e", I(d->DK / RB * nvb));
  int dk0 = kb_let(b, "dk0", KT_INT, MUL(DIV(V(e), I(nvb)), I(RB)));
  int dv0 = kb_let(b, "dv0", KT_INT, MUL(REM(V(e), I(nvb)), I(VL)));
  int trow = kb_let(b, "trow", KT_INT, ADD(MUL(V(kc->bi), I(p->NT)), V(t->tile)));
  int cr = kb_private_vec(b, "cr", VL, TY * RB * JT);
  int cd = kb_private_vec(b, "cd", VL, RB * JT);
  int nr = kb_private_vec(b, "nr", VL, JT);
  int nd = kb_private_vec(b, "nd", VL, JT);
  int z = kb_for(b, "z", I(0), I(TY * RB * JT));
  kb_store(b, cr, V(z), kx_splat(b, F(0), VL));
  kb_end(b);

  int i = kb_for(b, "i", I(0), V(t->nx));
  for (int k = 0; k < RB * JT; k++)
    kb_store(b, cd, I(k), kx_splat(b, F(0), VL));
  int j = kb_for(b, "j", I(0), V(t->ny));
  kir_expr *x = ADD(V(t->x0), V(i)), *y = ADD(V(t->y0), V(j));
  int grow = kb_let(b, "grow", KT_INT, p2d_gate_row(kc, x, y));
  int row = kb_let(b, "row", KT_INT, p2d_cell_row(kc, ADD(V(t->x0), V(i)), ADD(V(t->y0), V(j))));
  for (int r = 0; r < RB; r++) {
    kir_expr *ii = jfor(b, "ii", JT);
    int ar = kb_let(b, "ar", KT_FLOAT, kx_splat(b, F(0), VL));
    int ad = kb_let(b, "ad", KT_FLOAT, kx_splat(b, F(0), VL));
    kir_expr *tt = jfor(b, "t", JT);
    kir_expr *cl = LD(cr, ADD(ADD(MUL(V(j), I(RB * JT)), I(r * JT)), tt));
    kir_expr *cu = LD(cd, ADD(I(r * JT), tt));
    kir_expr *ti = MAD(ii, JT, tt);
    kb_set(b, ar, ADD(V(ar), ADD(MUL(p2d_gate(kc, P2D_G_TRL, V(grow), ti), cl),
                                 MUL(p2d_gate(kc, P2D_G_TRU, V(grow), ti), cu))));
    kb_set(b, ad, ADD(V(ad), ADD(MUL(p2d_gate(kc, P2D_G_TDU, V(grow), ti), cu),
                                 MUL(p2d_gate(kc, P2D_G_TDL, V(grow), ti), cl))));
    jend(b, JT);
    kir_expr *bk = jfor(b, "bk", d->JK);
    kir_expr *cv = jfor(b, "cv", d->JV);
    kir_expr *kval = LD(kc->k, ADD(MUL(ADD(MUL(V(row), I(d->DK)), ADD(V(dk0), I(r))), I(d->JK)), bk));
    kir_expr *vv = kx_vload(b, kc->v, ADD(MUL(ADD(MUL(V(row), I(d->DV)), V(dv0)), I(d->JV)), cv), VL);
    int kv = kb_let(b, "kv", KT_FLOAT, MUL(kval, vv));
    kir_expr *si = MAD(MAD(ii, d->JK, bk), d->JV, cv);
    kb_set(b, ar, ADD(V(ar), MUL(p2d_gate(kc, P2D_G_SR, V(grow), si), V(kv))));
    kb_set(b, ad, ADD(V(ad), MUL(p2d_gate(kc, P2D_G_SD, V(grow), si), V(kv))));
    jend(b, d->JV);
    jend(b, d->JK);
    kb_store(b, nr, ii, V(ar));
    kb_store(b, nd, ii, V(ad));
    jend(b, JT);
    ii = jfor(b, "ii", JT);
    kb_store(b, cr, ADD(ADD(MUL(V(j), I(RB * JT)), I(r * JT)), ii), LD(nr, ii));
    kb_store(b, cd, ADD(I(r * JT), ii), LD(nd, ii));
    jend(b, JT);
  }
  kb_end(b);
  kb_comment(b, "the d-states leaving the row: out-edge TY + i");
  for (int r = 0; r < RB; r++) {
    kir_expr *tt = jfor(b, "t", JT);
    kb_store(b, dC, state_at(b, p, V(trow), ADD(I(TY), V(i)), ADD(V(dk0), I(r)), V(dv0), tt),
             LD(cd, ADD(I(r * JT), tt)));
    jend(b, JT);
  }
  kb_end(b);
  kb_comment(b, "padding rows send nothing down; the r-states leave to the right");
  int ip = kb_for(b, "i", V(t->nx), I(p->TX));
  for (int r = 0; r < RB; r++) {
    kir_expr *tt = jfor(b, "t", JT);
    kb_store(b, dC, state_at(b, p, V(trow), ADD(I(TY), V(ip)), ADD(V(dk0), I(r)), V(dv0), tt),
             kx_splat(b, F(0), VL));
    jend(b, JT);
  }
  kb_end(b);
  int jr = kb_for(b, "j", I(0), I(TY));
  for (int r = 0; r < RB; r++) {
    kir_expr *tt = jfor(b, "t", JT);
    kb_store(b, dC, state_at(b, p, V(trow), V(jr), ADD(V(dk0), I(r)), V(dv0), tt),
             LD(cr, ADD(ADD(MUL(V(jr), I(RB * JT)), I(r * JT)), tt)));
    jend(b, JT);
  }
  kb_end(b);
  kb_end(b);
}

static int emit_tile_state(lower_ctx *lc, const ir_op *op, const p2d_plan *p, p2d_borders *bb)
{
  kir_builder kbb, *b = &kbb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "tile_state"), (int)p->wg, 2,
                      "pLSTM 2D tiles, step 1: per tile (group axis 0) and batch (axis 1), the\n"
                      "transfer Tbar from the tile's in-edges to its out-edges (a path-sum\n"
                      "program from each in-edge) and dC, the out-edge states of its own sources\n"
                      "(the recurrence inside the tile from zero borders).");
  p2d_kern kc = {.b = b, .p = p, .q = -1, .k = -1, .v = -1, .D = -1};
  const plstm2d_dims *d = &p->d;
  int64_t cells = d->B * p->P;
  bb->a_state.n = 0;
  kc.k = p2d_global(&kc, &bb->a_state, "k", lower_in(lc, op, P2D_K), cells * p->szK, true);
  kc.v = p2d_global(&kc, &bb->a_state, "v", lower_in(lc, op, P2D_V), cells * p->szV, true);
  p2d_declare_gates(lc, op, &kc, &bb->a_state, false);
  int Tbar = p2d_global(&kc, &bb->a_state, "Tbar", bb->Tbar, d->B * p->NT * p->NB * p->NB * p->szT, false);
  int dC = p2d_global(&kc, &bb->a_state, "dC", bb->dC, d->B * p->NT * p->NB * p->szC, false);
  p2d_declare_orientation(&kc, &bb->a_state, p->n_orient > 1);
  kc.bi = kb_let(b, "b", KT_INT, GID(1));
  p2d_tile t;
  p2d_tile_header(&kc, GID(0), &t);
  emit_transfer(&kc, &t, Tbar);
  emit_sources(&kc, &t, dC);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

/* ------------------------------------------------------------------ tile_scan */

/* inb[b] for the in-edges of one side: the neighbour's out-states through the frontier
 * when the tile's position along the side's axis (tpos) is past the first, or the initial
 * states at the grid's border (zero without them). */
static void load_side(kir_builder *b, const p2d_plan *p, int inb, int64_t first, int64_t n,
                      int n_valid, int tpos, int front, int init, int pos0, int bi,
                      int64_t rows, int dk, int dv0)
{
  int64_t JT = p->d.JT;
  int VL = p->VL;
  int j = kb_for(b, "j", I(0), I(n));
  kir_expr *tt = jfor(b, "t", JT);
  kir_expr *slot = MAD(ADD(I(first), V(j)), JT, tt);
  kb_store(b, inb, slot, kx_splat(b, F(0), VL));
  kb_if(b, LT(V(j), V(n_valid)));
  kir_expr *at = border_at(b, p, ADD(MUL(V(bi), I(rows)), ADD(V(pos0), V(j))), V(dk), V(dv0), tt);
  if (front >= 0) {
    kb_if(b, kx_bin(b, KB_GT, V(tpos), I(0)));
    kb_store(b, inb, MAD(ADD(I(first), V(j)), JT, tt), kx_vload(b, front, at, VL));
    if (init >= 0) {
      kb_else(b);
      kb_store(b, inb, MAD(ADD(I(first), V(j)), JT, tt),
               kx_vload(b, init, border_at(b, p, ADD(MUL(V(bi), I(rows)), ADD(V(pos0), V(j))),
                                           V(dk), V(dv0), tt), VL));
    }
    kb_end(b);
  } else if (init >= 0) {
    kb_store(b, inb, MAD(ADD(I(first), V(j)), JT, tt), kx_vload(b, init, at, VL));
  }
  kb_end(b);
  jend(b, JT);
  kb_end(b);
}

static int emit_tile_scan(lower_ctx *lc, const ir_op *op, const p2d_plan *p, p2d_borders *bb)
{
  kir_builder kbb, *b = &kbb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "tile_scan"), (int)p->wg, 2,
                      "pLSTM 2D tiles, step 2: the pass over tile anti-diagonals (one launch each,\n"
                      "parameter dd); per tile of the diagonal (group axis 0) and batch (axis 1),\n"
                      "per state element: out = Tbar in + dC, in from the neighbours' frontiers\n"
                      "or the initial states; dC becomes the tile's entry states.");
  p2d_kern kc = {.b = b, .p = p, .q = -1, .k = -1, .v = -1, .D = -1};
  const plstm2d_dims *d = &p->d;
  int64_t JT = d->JT, NB = p->NB, TY = p->TY;
  int VL = p->VL;
  bb->a_scan.n = 0;
  int Tbar = p2d_global(&kc, &bb->a_scan, "Tbar", bb->Tbar, d->B * p->NT * NB * NB * p->szT, true);
  int dC = p2d_global(&kc, &bb->a_scan, "dC", bb->dC, d->B * p->NT * NB * p->szC, false);
  int bCL = lower_in(lc, op, P2D_CL), bCT = lower_in(lc, op, P2D_CT);
  bool plain = !d->fused;
  int CL = plain && bCL >= 0 ? p2d_global(&kc, &bb->a_scan, "C_left", bCL, d->B * p->Y * p->szC, true) : -1;
  int CT = plain && bCT >= 0 ? p2d_global(&kc, &bb->a_scan, "C_top", bCT, d->B * p->X * p->szC, true) : -1;
  int Rf = bb->Rf >= 0 ? p2d_global(&kc, &bb->a_scan, "R_front", bb->Rf, d->B * p->Y * p->szC, false) : -1;
  int Df = bb->Df >= 0 ? p2d_global(&kc, &bb->a_scan, "D_front", bb->Df, d->B * p->X * p->szC, false) : -1;
  int dd = p2d_int_param(&kc, &bb->a_scan, "dd", P2D_ARG_DD);
  kc.o = -1; /* border states live in the flipped frame: no gate, no orientation */
  kc.bi = kb_let(b, "b", KT_INT, GID(1));
  int tx = kb_let(b, "txd", KT_INT, ADD(kx_bin(b, KB_MAX, I(0), SUB(V(dd), I(p->NY - 1))), GID(0)));
  p2d_tile t;
  p2d_tile_header(&kc, ADD(MUL(V(tx), I(p->NY)), SUB(V(dd), V(tx))), &t);
  int64_t nvb = d->DV / VL;

  int e = kb_parfor(b, "e", I(d->DK * nvb));
  int dk = kb_let(b, "dk", KT_INT, DIV(V(e), I(nvb)));
  int dv0 = kb_let(b, "dv0", KT_INT, MUL(REM(V(e), I(nvb)), I(VL)));
  int trow = kb_let(b, "trow", KT_INT, ADD(MUL(V(kc.bi), I(p->NT)), V(t.tile)));
  int inb = kb_private_vec(b, "inb", VL, NB * JT);
  kb_comment(b, "entry states: left edges (rows), then top edges (columns)");
  load_side(b, p, inb, 0, TY, t.ny, t.tx, Rf, CL, t.y0, kc.bi, p->Y, dk, dv0);
  load_side(b, p, inb, TY, p->TX, t.nx, t.ty, Df, CT, t.x0, kc.bi, p->X, dk, dv0);

  kb_comment(b, "out-states: the frontiers of the next diagonal (and the final states)");
  int a = kb_for(b, "a", I(0), I(NB));
  kir_expr *ii = jfor(b, "ii", JT);
  int acc = kb_let(b, "acc", KT_FLOAT, kx_vload(b, dC, state_at(b, p, V(trow), V(a), V(dk), V(dv0), ii), VL));
  int bx = kb_for(b, "bx", I(0), I(NB));
  kir_expr *tt = jfor(b, "t", JT);
  kir_expr *tb = ADD(MUL(ADD(MUL(ADD(MUL(V(trow), I(NB)), V(a)), I(NB)), V(bx)), I(p->szT)), MAD(ii, JT, tt));
  kb_set(b, acc, ADD(V(acc), MUL(LD(Tbar, tb), LD(inb, MAD(V(bx), JT, tt)))));
  jend(b, JT);
  kb_end(b);
  if (Rf >= 0) {
    kb_if(b, LT(V(a), V(t.ny)));
    kb_store(b, Rf, border_at(b, p, ADD(MUL(V(kc.bi), I(p->Y)), ADD(V(t.y0), V(a))), V(dk), V(dv0), ii), V(acc));
    kb_end(b);
  }
  if (Df >= 0) {
    kir_expr *col = SUB(V(a), I(TY));
    kb_if(b, kx_bin(b, KB_AND, kx_bin(b, KB_GE, V(a), I(TY)), LT(col, V(t.nx))));
    kb_store(b, Df, border_at(b, p, ADD(MUL(V(kc.bi), I(p->X)), ADD(V(t.x0), SUB(V(a), I(TY)))),
                              V(dk), V(dv0), ii), V(acc));
    kb_end(b);
  }
  jend(b, JT);
  kb_end(b);
  int bx2 = kb_for(b, "bx", I(0), I(NB));
  tt = jfor(b, "t", JT);
  kb_store(b, dC, state_at(b, p, V(trow), V(bx2), V(dk), V(dv0), tt), LD(inb, MAD(V(bx2), JT, tt)));
  jend(b, JT);
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

int p2d_border_kernels(lower_ctx *lc, const ir_op *op, const p2d_plan *p, p2d_borders *bb)
{
  bb->k_state = emit_tile_state(lc, op, p, bb);
  bb->k_scan = bb->k_state < 0 ? -1 : emit_tile_scan(lc, op, p, bb);
  return bb->k_scan < 0 ? (lc->err->code ? lc->err->code : XY_E_INTERNAL) : XY_OK;
}

int p2d_border_launches(lower_ctx *lc, const p2d_plan *p, const p2d_borders *bb, int64_t o)
{
  const plstm2d_dims *d = &p->d;
  double cells = (double)d->B * (double)p->P, NB = (double)p->NB, tiles = (double)(d->B * p->NT);
  double szC = (double)p->szC, JT = (double)d->JT;
  double f_state = 2.0 * cells * szC * (2.0 * JT + (double)p->KW) +
                   2.0 * tiles * NB * (double)p->PT * JT * JT * 4.0;
  double b_state = 4.0 * (cells * (double)(p->szK + p->szV + 2 * p->szS + 4 * p->szT) +
                          tiles * NB * (NB * (double)p->szT + szC));
  int rc = p2d_launch(lc, bb->k_state, &bb->a_state, p->NT, d->B, o, 0, f_state, b_state);
  for (int64_t dd = 0; !rc && dd < p->NX + p->NY - 1; dd++) {
    int64_t lo = dd - (p->NY - 1) > 0 ? dd - (p->NY - 1) : 0;
    int64_t hi = dd < p->NX - 1 ? dd : p->NX - 1;
    double n = (double)(d->B * (hi - lo + 1));
    double f = 2.0 * n * NB * NB * szC * JT;
    double by = 4.0 * n * NB * (NB * (double)p->szT + 3.0 * szC);
    rc = p2d_launch(lc, bb->k_scan, &bb->a_scan, hi - lo + 1, d->B, o, dd, f, by);
  }
  return rc;
}
