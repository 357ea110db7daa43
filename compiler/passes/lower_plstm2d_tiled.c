/*
 * lower_plstm2d_tiled.c: the tiled form of the 2D scans (spec plstm.md §3.2). The flipped
 * grid is cut into TX x TY tiles (the schedule's chunk; any size, ragged tiles at the end);
 * per orientation:
 *
 *   tile_state, tile_scan   the border states (lower_plstm2d_borders.c)
 *   tile_out                per tile, in local memory: the in-tile gating G[c <- c'] (a
 *                           path-sum program from each cell, D on the diagonal) and the
 *                           marks Mbar[c <- b] of the in-edges; W = G (q_c . k_c'); then per
 *                           block of RB cells and VL value lanes
 *                           h_c = s (sum_c' W[c,c'] v_c' + sum_b R(q_c, Mbar[c,b], C_entry[b])).
 *
 * The fused op runs the three for each orientation o (a kernel parameter), tile_out adding
 * into out after the first. With every J = 1 and vectors, q.k runs on VS source lanes
 * against the tile's keys transposed in local memory (as the 1D chunkwise form does).
 */
#include <stdio.h>

#include "lower_expr.h"
#include "lower_plstm2d.h"

/* Saturating: a size past every device's local memory stays past it. */
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Sources per vector lane group in the gating: the widest power of two up to lanes that
 * divides the tile's cell count. */
static int source_lanes(uint64_t PT, int lanes)
{
  int vs = 1;
  while (vs < lanes && PT % (uint64_t)(vs * 2) == 0)
    vs *= 2;
  return vs;
}

uint64_t p2d_tile_local_bytes(const plstm2d_dims *d, int64_t tx, int64_t ty, int lanes)
{
  uint64_t PT = sat_mul((uint64_t)tx, (uint64_t)ty), NB = (uint64_t)tx + (uint64_t)ty;
  uint64_t szD = (uint64_t)(d->JO * d->JQ * d->JK * d->JV), OV = (uint64_t)(d->JO * d->JV);
  uint64_t szM = (uint64_t)(d->JO * d->JQ * d->JT);
  uint64_t pairs = sat_mul(PT, PT);
  uint64_t w = d->JQ == 1 && d->JK == 1 ? 0 : sat_mul(pairs, OV);
  uint64_t kt = lanes > 1 && p2d_all_j_one(d) ? sat_mul(PT, (uint64_t)d->DK) : 0;
  uint64_t vs = kt ? source_lanes(PT, lanes) : 1; /* the lanes' identity, vs x vs */
  uint64_t n = sat_add(sat_add(sat_mul(pairs, szD), w), sat_add(sat_mul(sat_mul(PT, NB), szM), kt));
  return sat_mul(sat_add(n, vs > 1 ? vs * vs : 0), 4);
}

typedef struct out_arrays {
  int G, W, Mb, Kt, entry, out;
  int eye;         /* identity for the lanes' sources, or -1 */
  int trow;        /* variable: b*NT + tile */
  bool fast;
  bool lockstep;   /* every source run's program starts at the tile's first cell (GPUs) */
  int VS;
} out_arrays;

/* Cell c of the tile (local index i*TY + j) clamped into its valid part: rows of padding
 * cells read a real cell, whose weights there are zero. */
static kir_expr *clamped_row(const p2d_kern *kc, const p2d_tile *t, kir_expr *c)
{
  kir_builder *b = kc->b;
  int64_t TY = kc->p->TY;
  kir_expr *i = MIN(DIV(c, I(TY)), SUB(V(t->nx), I(1)));
  kir_expr *j = MIN(REM(c, I(TY)), SUB(V(t->ny), I(1)));
  return p2d_cell_row(kc, ADD(V(t->x0), i), ADD(V(t->y0), j));
}

/* ------------------------------------------------------------------ gating in local memory */

typedef struct g_sink {
  const out_arrays *oa;
  int src;         /* variable: source cell (local index) or in-edge */
} g_sink;

static void g_mark(const p2d_kern *kc, void *ctx, int i, int j, int mk)
{
  kir_builder *b = kc->b;
  const g_sink *gs = ctx;
  const p2d_plan *p = kc->p;
  kir_expr *c = ADD(MUL(V(i), I(p->TY)), V(j));
  kir_expr *e = jfor(b, "e", p->szD);
  kb_store(b, gs->oa->G, ADD(MUL(ADD(MUL(c, I(p->PT)), V(gs->src)), I(p->szD)), e), LD(mk, e));
  jend(b, p->szD);
}

static void mb_mark(const p2d_kern *kc, void *ctx, int i, int j, int mk)
{
  kir_builder *b = kc->b;
  const g_sink *gs = ctx;
  const p2d_plan *p = kc->p;
  kir_expr *c = ADD(MUL(V(i), I(p->TY)), V(j));
  kir_expr *e = jfor(b, "e", p->szM);
  kb_store(b, gs->oa->Mb, ADD(MUL(ADD(MUL(c, I(p->NB)), V(gs->src)), I(p->szM)), e), LD(mk, e));
  jend(b, p->szM);
}

static void zero_local(kir_builder *b, int arr, int64_t n)
{
  int z = kb_parfor(b, "z", I(n));
  kb_store(b, arr, V(z), F(0));
  kb_end(b);
}

typedef struct lane_sink {
  const out_arrays *oa;
  int n0;
} lane_sink;

static kir_expr *lane_number(const p2d_kern *kc, void *ctx, int i, int j)
{
  kir_builder *b = kc->b;
  (void)ctx;
  return ADD(MUL(V(i), I(kc->p->TY)), V(j));
}

static void lane_mark(const p2d_kern *kc, void *ctx, int i, int j, int mk)
{
  kir_builder *b = kc->b;
  const lane_sink *ls = ctx;
  kir_expr *c = ADD(MUL(V(i), I(kc->p->TY)), V(j));
  kb_store(b, ls->oa->G, ADD(MUL(c, I(kc->p->PT)), V(ls->n0)), V(mk));
}

/* Every J = 1: G[c <- s] for VS sources s at once, one per lane. */
static void emit_lane_gating(const p2d_kern *kc, const p2d_tile *t, const out_arrays *oa)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int VS = oa->VS;
  int64_t TY = p->TY;
  int x = kb_parfor(b, "x", I(p->PT / VS));
  lane_sink ls = {.oa = oa};
  ls.n0 = kb_let(b, "n0", KT_INT, MUL(V(x), I(VS)));
  p2d_lanes ln = {.VS = VS, .eye = oa->eye, .n0 = ls.n0, .number = lane_number,
                  .mark = lane_mark, .ctx = &ls, .i_lo = I(0), .j_lo = I(0)};
  if (!oa->lockstep) {
    int ia = kb_let(b, "ia", KT_INT, DIV(V(ls.n0), I(TY)));
    int ib = kb_let(b, "ib", KT_INT, DIV(ADD(V(ls.n0), I(VS - 1)), I(TY)));
    ln.i_lo = V(ia);
    ln.j_lo = SEL(kx_bin(b, KB_EQ, V(ia), V(ib)), REM(V(ls.n0), I(TY)), I(0));
  }
  p2d_emit_lane_paths(kc, t, &ln);
  if (kc->o >= 0) /* the fused op counts D once, in orientation 0 */
    kb_if(b, p2d_is_first_orientation(kc));
  for (int l = 0; l < VS; l++) {
    int s = kb_let(b, "s", KT_INT, ADD(V(ls.n0), I(l)));
    int si = kb_let(b, "si", KT_INT, DIV(V(s), I(TY)));
    int sj = kb_let(b, "sj", KT_INT, REM(V(s), I(TY)));
    kb_if(b, kx_bin(b, KB_AND, LT(V(si), V(t->nx)), LT(V(sj), V(t->ny))));
    kir_expr *drow = p2d_cell_row(kc, ADD(V(t->x0), V(si)), ADD(V(t->y0), V(sj)));
    kb_store(b, oa->G, ADD(MUL(V(s), I(p->PT)), V(s)), LD(kc->D, drow));
    kb_end(b);
  }
  if (kc->o >= 0)
    kb_end(b);
  kb_end(b);
}

/* Any J: G[c <- s] by one program per source cell s, D on the diagonal. */
static void emit_cell_gating(const p2d_kern *kc, const p2d_tile *t, const out_arrays *oa)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int s = kb_parfor(b, "s", I(p->PT));
  int si = kb_let(b, "si", KT_INT, DIV(V(s), I(p->TY)));
  int sj = kb_let(b, "sj", KT_INT, REM(V(s), I(p->TY)));
  kb_if(b, kx_bin(b, KB_AND, LT(V(si), V(t->nx)), LT(V(sj), V(t->ny))));
  g_sink gs = {.oa = oa, .src = s};
  p2d_sinks sk = {.mark = g_mark, .ctx = &gs};
  p2d_emit_cell_paths(kc, t, si, sj, &sk);
  if (kc->o >= 0) /* the fused op counts D once, in orientation 0 */
    kb_if(b, p2d_is_first_orientation(kc));
  int drow = kb_let(b, "drow", KT_INT, p2d_cell_row(kc, ADD(V(t->x0), V(si)), ADD(V(t->y0), V(sj))));
  kir_expr *e = jfor(b, "e", p->szD);
  kb_store(b, oa->G, ADD(MUL(ADD(MUL(V(s), I(p->PT)), V(s)), I(p->szD)), e),
           LD(kc->D, ADD(MUL(V(drow), I(p->szD)), e)));
  jend(b, p->szD);
  if (kc->o >= 0)
    kb_end(b);
  kb_end(b);
  kb_end(b);
}

static void emit_gating(const p2d_kern *kc, const p2d_tile *t, const out_arrays *oa)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  zero_local(b, oa->G, p->PT * p->PT * p->szD);
  if (oa->Mb >= 0)
    zero_local(b, oa->Mb, p->PT * p->NB * p->szM);

  kb_comment(b, "G[c <- s]: the paths from each cell s; the direct gate on the diagonal");
  if (oa->eye >= 0)
    emit_lane_gating(kc, t, oa);
  else
    emit_cell_gating(kc, t, oa);

  if (oa->Mb >= 0) {
    kb_comment(b, "Mbar[c <- b]: the paths from each in-edge");
    int bx = kb_parfor(b, "bidx", I(p->NB));
    g_sink ms = {.oa = oa, .src = bx};
    p2d_sinks mk = {.mark = mb_mark, .ctx = &ms};
    p2d_emit_edge_paths(kc, t, bx, &mk);
    kb_end(b);
  }
}

/* ------------------------------------------------------------------ pair weights */

/* Fast path: Kt[dk][s] = k of cell s; then W[c][s..s+VS] = G (q_c . k_s) on VS lanes. */
static void emit_fast_weights(const p2d_kern *kc, const p2d_tile *t, const out_arrays *oa)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int64_t DK = p->d.DK, PT = p->PT;
  int RB = p->RB, VS = oa->VS;
  int x = kb_parfor(b, "x", I(PT * DK));
  int s = kb_let(b, "s", KT_INT, DIV(V(x), I(DK)));
  int dk = kb_let(b, "dk", KT_INT, REM(V(x), I(DK)));
  kb_store(b, oa->Kt, MAD(V(dk), PT, V(s)), LD(kc->k, MAD(clamped_row(kc, t, V(s)), DK, V(dk))));
  kb_end(b);

  int64_t nsb = PT / VS;
  x = kb_parfor(b, "x", I(PT / RB * nsb));
  int c0 = kb_let(b, "c0", KT_INT, MUL(DIV(V(x), I(nsb)), I(RB)));
  int s0 = kb_let(b, "s0", KT_INT, MUL(REM(V(x), I(nsb)), I(VS)));
  /* Only where the test can fail: with one block (1 x 1 tiles) LLVM folds it, and PoCL
   * 3.1's work-group compiler then fails an assertion ("Incoming edges to non-entry
   * block"). */
  if (nsb > 1) {
    kb_comment(b, "sources past the block's cells (row-major) have no paths to them: G = 0");
    kb_if(b, LT(V(s0), ADD(V(c0), I(RB))));
  }
  int acc = VS > 1 ? kb_private_vec(b, "qk", VS, RB) : kb_private(b, "qk", KT_FLOAT, RB);
  int qrows[16];
  for (int r = 0; r < RB; r++) {
    kb_store(b, acc, I(r), kx_splat(b, F(0), VS));
    qrows[r] = kb_let(b, "qrow", KT_INT, clamped_row(kc, t, ADD(V(c0), I(r))));
  }
  dk = kb_for(b, "dk", I(0), I(DK));
  int kv = kb_let(b, "kv", KT_FLOAT, kx_vload(b, oa->Kt, MAD(V(dk), PT, V(s0)), VS));
  for (int r = 0; r < RB; r++)
    kb_store(b, acc, I(r), ADD(LD(acc, I(r)), MUL(LD(kc->q, MAD(V(qrows[r]), DK, V(dk))), V(kv))));
  kb_end(b);
  for (int r = 0; r < RB; r++) {
    kir_expr *at = ADD(MUL(ADD(V(c0), I(r)), I(PT)), V(s0));
    kb_store(b, oa->G, at, MUL(kx_vload(b, oa->G, at, VS), LD(acc, I(r))));
  }
  if (nsb > 1)
    kb_end(b);
  kb_end(b);
}

/* Any J: W[c,s][o,cv] = sum_{aq,bk} G[c,s][o,aq,bk,cv] (q_c . k_s)[aq,bk], one pair per
 * item (in place when JQ = JK = 1). */
static void emit_pair_weights(const p2d_kern *kc, const p2d_tile *t, const out_arrays *oa)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int x = kb_parfor(b, "x", I(p->PT * p->PT));
  int qrow = kb_let(b, "qrow", KT_INT, clamped_row(kc, t, DIV(V(x), I(p->PT))));
  int krow = kb_let(b, "krow", KT_INT, clamped_row(kc, t, REM(V(x), I(p->PT))));
  int qk = emit_qk(b, &p->pd, kc->q, kc->k, qrow, krow, p->VD);
  emit_gated_weights(b, &p->pd, oa->G, MUL(V(x), I(p->szD)), qk, oa->W, MUL(V(x), I(p->OV)));
  kb_end(b);
}

/* h[r] += sum over in-edges bx in [lo, hi) of R(q_r, Mbar[r, bx], C_entry[bx]): per edge
 * first acc[r][aq][t] = sum_dk q_r[dk][aq] C[bx][dk][dv..][t] (a matrix product over DK on
 * VL value lanes), then the marks. */
static void emit_entry_edges(const p2d_kern *kc, const out_arrays *oa, int h, int c0,
                             const int *qrows, int dv0, kir_expr *lo, kir_expr *hi)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  const plstm2d_dims *d = &p->d;
  int RB = p->RB, VL = p->VL;
  int64_t JT = d->JT, JQ = d->JQ, JO = d->JO, QT = JQ * JT;
  int acc = VL > 1 ? kb_private_vec(b, "acc", VL, RB * QT) : kb_private(b, "acc", KT_FLOAT, RB * QT);
  int bx = kb_for(b, "bx", lo, hi);
  int z = kb_for(b, "z", I(0), I(RB * QT));
  kb_store(b, acc, V(z), kx_splat(b, F(0), VL));
  kb_end(b);
  int cb = kb_let(b, "cb", KT_INT, MUL(ADD(MUL(V(oa->trow), I(p->NB)), V(bx)), I(d->DK)));
  int dk = kb_for(b, "dk", I(0), I(d->DK));
  kir_expr *tt = jfor(b, "t", JT);
  int cc = kb_let(b, "cc", KT_FLOAT,
                  kx_vload(b, oa->entry, ADD(MUL(ADD(MUL(ADD(V(cb), V(dk)), I(d->DV)), V(dv0)), I(JT)), tt), VL));
  kir_expr *aq = jfor(b, "aq", JQ);
  for (int r = 0; r < RB; r++) {
    kir_expr *slot = ADD(I(r * QT), MAD(aq, JT, tt));
    kir_expr *qv = LD(kc->q, ADD(MAD(MAD(V(qrows[r]), d->DK, V(dk)), JQ, I(0)), aq));
    kb_store(b, acc, slot, ADD(LD(acc, slot), MUL(qv, V(cc))));
  }
  jend(b, JQ);
  jend(b, JT);
  kb_end(b);
  for (int r = 0; r < RB; r++) {
    kir_expr *o = jfor(b, "o", JO);
    kir_expr *at = MAD(I(r), JO, o);
    kir_expr *e = jfor(b, "e", QT);
    kir_expr *mi = ADD(MUL(ADD(MUL(ADD(V(c0), I(r)), I(p->NB)), V(bx)),
                           I(p->szM)), MAD(o, QT, e));
    kb_store(b, h, at, ADD(LD(h, at), MUL(LD(oa->Mb, mi), LD(acc, ADD(I(r * QT), e)))));
    jend(b, QT);
    jend(b, JO);
  }
  kb_end(b);
}

/* ------------------------------------------------------------------ outputs */

static void emit_outputs(const p2d_kern *kc, const p2d_tile *t, const out_arrays *oa)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  const plstm2d_dims *d = &p->d;
  int RB = p->RB, VL = p->VL;
  int64_t nvb = d->DV / VL, PT = p->PT, JO = d->JO;
  int x = kb_parfor(b, "x", I(PT / RB * nvb));
  int c0 = kb_let(b, "c0", KT_INT, MUL(DIV(V(x), I(nvb)), I(RB)));
  int dv0 = kb_let(b, "dv0", KT_INT, MUL(REM(V(x), I(nvb)), I(VL)));
  int h = VL > 1 ? kb_private_vec(b, "h", VL, RB * JO) : kb_private(b, "h", KT_FLOAT, RB * JO);
  for (int r = 0; r < RB * JO; r++)
    kb_store(b, h, I(r), kx_splat(b, F(0), VL));
  kb_comment(b, "in-tile: sum of W v over the cells s <= c (row-major), the only ones with paths");
  /* A bound that folds to a constant trips PoCL 3.1 (emit_fast_weights): several blocks only. */
  int s = kb_for(b, "s", I(0), PT > RB ? MIN(I(PT), ADD(V(c0), I(RB))) : I(PT));
  int vrow = kb_let(b, "vrow", KT_INT, clamped_row(kc, t, V(s)));
  kir_expr *cv = jfor(b, "cv", d->JV);
  int vv = kb_let(b, "vv", KT_FLOAT,
                  kx_vload(b, kc->v, ADD(MAD(MAD(V(vrow), d->DV, V(dv0)), d->JV, I(0)), cv), VL));
  for (int r = 0; r < RB; r++) {
    kir_expr *o = jfor(b, "o", JO);
    kir_expr *wi = ADD(MUL(MAD(ADD(V(c0), I(r)), PT, V(s)), I(p->OV)), MAD(o, d->JV, cv));
    kir_expr *slot = MAD(I(r), JO, o);
    kb_store(b, h, slot, ADD(LD(h, slot), MUL(LD(oa->W, wi), V(vv))));
    jend(b, JO);
  }
  jend(b, d->JV);
  kb_end(b);
  if (oa->entry >= 0) {
    kb_comment(b, "entry states read through the in-edges' marks: the left edges of rows up to");
    kb_comment(b, "the block's last column and the top edges of columns up to its last row");
    int qrows[16];
    for (int r = 0; r < RB; r++)
      qrows[r] = kb_let(b, "qrow", KT_INT, clamped_row(kc, t, ADD(V(c0), I(r))));
    int ilast = kb_let(b, "ilast", KT_INT, DIV(ADD(V(c0), I(RB - 1)), I(p->TY)));
    kir_expr *one_row = kx_bin(b, KB_EQ, DIV(V(c0), I(p->TY)), V(ilast));
    int nleft = kb_let(b, "nleft", KT_INT,
                       SEL(one_row, ADD(REM(ADD(V(c0), I(RB - 1)), I(p->TY)), I(1)), I(p->TY)));
    emit_entry_edges(kc, oa, h, c0, qrows, dv0, I(0), V(nleft));
    emit_entry_edges(kc, oa, h, c0, qrows, dv0, I(p->TY), ADD(I(p->TY + 1), V(ilast)));
  }
  for (int r = 0; r < RB; r++) {
    int c = kb_let(b, "c", KT_INT, ADD(V(c0), I(r)));
    int ci = kb_let(b, "ci", KT_INT, DIV(V(c), I(p->TY)));
    int cj = kb_let(b, "cj", KT_INT, REM(V(c), I(p->TY)));
    kb_if(b, kx_bin(b, KB_AND, LT(V(ci), V(t->nx)), LT(V(cj), V(t->ny))));
    int orow = kb_let(b, "orow", KT_INT, p2d_cell_row(kc, ADD(V(t->x0), V(ci)), ADD(V(t->y0), V(cj))));
    kir_expr *o = jfor(b, "o", JO);
    kir_expr *at = ADD(MAD(MAD(V(orow), d->DV, V(dv0)), JO, I(0)), o);
    kir_expr *val = MUL(LD(h, MAD(I(r), JO, o)), F(p->scale));
    if (p->n_orient > 1) {
      kb_if(b, p2d_is_first_orientation(kc));
      kb_store(b, oa->out, at, val);
      kb_else(b);
      at = ADD(MAD(MAD(V(orow), d->DV, V(dv0)), JO, I(0)), o);
      kb_store(b, oa->out, at, ADD(kx_vload(b, oa->out, at, VL),
                                   MUL(LD(h, MAD(I(r), JO, o)), F(p->scale))));
      kb_end(b);
    } else {
      kb_store(b, oa->out, at, val);
    }
    jend(b, JO);
    kb_end(b);
  }
  kb_end(b);
}

static int emit_tile_out(lower_ctx *lc, const ir_op *op, const p2d_plan *p, int entry_buf,
                         p2d_args *args)
{
  kir_builder kbb, *b = &kbb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "tile_out"), (int)p->wg, 2,
                      "pLSTM 2D tiles, step 3: per tile (group axis 0) and batch (axis 1), the\n"
                      "in-tile gating G (paths from each cell, D on the diagonal) and the in-edges'\n"
                      "marks Mbar in local memory; W = G (q.k); per block of RB cells and VL value\n"
                      "lanes h = s (sum W v + sum_b R(q, Mbar_b, C_entry_b)).");
  p2d_kern kc = {.b = b, .p = p};
  const plstm2d_dims *d = &p->d;
  int64_t cells = d->B * p->P;
  args->n = 0;
  kc.q = p2d_global(&kc, args, "q", lower_in(lc, op, P2D_Q), cells * p->szQ, true);
  kc.k = p2d_global(&kc, args, "k", lower_in(lc, op, P2D_K), cells * p->szK, true);
  kc.v = p2d_global(&kc, args, "v", lower_in(lc, op, P2D_V), cells * p->szV, true);
  kc.D = p2d_global(&kc, args, "D", lower_in(lc, op, P2D_D), cells * p->szD, true);
  p2d_declare_gates(lc, op, &kc, args, true);
  /* As in the single form: a GPU's items move in lockstep over the tile's cells (the cells
   * before a source get zero marks, which are what G holds there). */
  out_arrays oa = {.Mb = -1, .Kt = -1, .entry = -1, .eye = -1,
                   .lockstep = !lc->opt->device.is_cpu};
  if (entry_buf >= 0)
    oa.entry = p2d_global(&kc, args, "C_entry", entry_buf, d->B * p->NT * p->NB * p->szC, true);
  oa.out = p2d_global(&kc, args, "out", lower_out(lc, op, P2D_OUT), cells * p->szH, false);
  p2d_declare_orientation(&kc, args, p->n_orient > 1);
  oa.fast = p->VL > 1 && p2d_all_j_one(d);
  oa.VS = oa.fast ? source_lanes((uint64_t)p->PT, p->VL) : 1;
  oa.G = kb_local(b, "G", KT_FLOAT, p->PT * p->PT * p->szD);
  oa.W = d->JQ == 1 && d->JK == 1 ? oa.G : kb_local(b, "W", KT_FLOAT, p->PT * p->PT * p->OV);
  if (entry_buf >= 0)
    oa.Mb = kb_local(b, "Mb", KT_FLOAT, p->PT * p->NB * p->szM);
  if (oa.fast)
    oa.Kt = kb_local(b, "Kt", KT_FLOAT, d->DK * p->PT);
  kc.bi = kb_let(b, "b", KT_INT, GID(1));
  p2d_tile t;
  p2d_tile_header(&kc, GID(0), &t);
  if (oa.fast && oa.VS > 1)
    oa.eye = p2d_lane_identity(b, oa.VS);
  if (entry_buf >= 0)
    oa.trow = kb_let(b, "trow", KT_INT, ADD(MUL(V(kc.bi), I(p->NT)), V(t.tile)));
  emit_gating(&kc, &t, &oa);
  if (oa.fast)
    emit_fast_weights(&kc, &t, &oa);
  else
    emit_pair_weights(&kc, &t, &oa);
  emit_outputs(&kc, &t, &oa);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

/* ------------------------------------------------------------------ the form */

static int temp_or_out(lower_ctx *lc, const ir_op *op, int slot, const char *what, int64_t B,
                       int64_t rows, int64_t state)
{
  int buf = lower_out(lc, op, slot);
  const int64_t n[] = {B, rows, state};
  return buf >= 0 ? buf : p2d_temp(lc, op, what, 3, n);
}

int lower_plstm2d_tiled(lower_ctx *lc, const ir_op *op, p2d_plan *p)
{
  const plstm2d_dims *d = &p->d;
  if (op->sched.chunk < 1)
    return xy_fail(lc->err, XY_E_INTERNAL, "'%s': tiled form without a tile size", op->name);
  p2d_plan_tiles(p, op->sched.chunk, op->sched.chunk);
  while (p->RB > 1 && (d->DK % p->RB != 0 || p->PT % p->RB != 0))
    p->RB /= 2;
  uint64_t need = p2d_tile_local_bytes(d, p->TX, p->TY, p->VL);
  if (need > local_budget(lc->opt)) {
    char what[64];
    snprintf(what, sizeof what, "a %lld x %lld tile", (long long)p->TX, (long long)p->TY);
    return local_overflow(lc->err, lc->opt, op->name, what, need, "choose a smaller --chunk");
  }
  bool borders = p->NT > 1 || d->has_left || d->has_top || d->has_right || d->has_bottom;
  bool entry = p->NT > 1 || d->has_left || d->has_top;
  p2d_borders bb = {.Tbar = -1, .dC = -1, .Rf = -1, .Df = -1};
  if (borders) {
    int64_t tiles = d->B * p->NT;
    const int64_t tb[] = {tiles, p->NB, p->NB, p->szT}, dc[] = {tiles, p->NB, p->szC};
    bb.Tbar = p2d_temp(lc, op, "Tbar", 4, tb);
    bb.dC = bb.Tbar < 0 ? -1 : p2d_temp(lc, op, "dC", 3, dc);
    bb.Rf = bb.dC < 0 ? -1 : temp_or_out(lc, op, P2D_CR, "R_front", d->B, p->Y, p->szC);
    bb.Df = bb.Rf < 0 ? -1 : temp_or_out(lc, op, P2D_CB, "D_front", d->B, p->X, p->szC);
    if (bb.Df < 0)
      return lc->err->code;
    int rc = p2d_border_kernels(lc, op, p, &bb);
    if (rc)
      return rc;
  }
  p2d_args a_out;
  int k_out = emit_tile_out(lc, op, p, entry ? bb.dC : -1, &a_out);
  if (k_out < 0)
    return lc->err->code ? lc->err->code : XY_E_INTERNAL;

  double cells = (double)d->B * (double)p->P, PT = (double)p->PT;
  double f_out = cells * PT * (2.0 * (double)(d->DK * d->JQ * d->JK) + 2.0 * (double)(p->szH * d->JV) +
                               8.0 * (double)(p->szD * d->JT)) +
                 (entry ? 2.0 * cells * (double)p->NB * (double)(p->szC * d->JQ * d->JO) : 0.0);
  double b_out = 4.0 * (cells * (double)(p->szQ + p->szK + p->szV + p->szD + 2 * p->szS +
                                         4 * p->szT + 2 * p->szM + p->szH) +
                        (entry ? (double)(d->B * p->NT * p->NB) * (double)p->szC : 0.0));
  for (int64_t o = 0; o < p->n_orient; o++) {
    int rc = borders ? p2d_border_launches(lc, p, &bb, o) : XY_OK;
    if (!rc)
      rc = p2d_launch(lc, k_out, &a_out, p->NT, d->B, o, 0, f_out, b_out);
    if (rc)
      return rc;
  }
  return XY_OK;
}
