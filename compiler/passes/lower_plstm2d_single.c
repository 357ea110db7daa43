/*
 * lower_plstm2d_single.c: the single form of the 2D scans (spec plstm.md §3.2, the
 * reference's pLSTM2D_parallel_fused): the whole grid is one tile and the scan is applied
 * like attention with a structured mask,
 *
 *   G_total = sum_o flip_o(G_o) + diag(D),   h = s ((Q K^T o G_total) V),
 *
 *   single_gate  per run of VS source cells (and per in-edge when there are initial
 *                states): the path-sum program over the grid in each orientation, one
 *                source per vector lane when every J = 1, accumulated into the sources'
 *                columns of G_total ([B, P target, Ps source]: as large as an attention
 *                matrix and made once; Ps is P rounded up to VS), and the keys transposed,
 *                Kt [B, DK, Ps], for the source lanes of q.k;
 *   single_out   per block of RT target cells and batch element: for each block of ST
 *                sources W = G_total o (q.k) in local memory (q.k on VS source lanes, when
 *                every J = 1), then H += W V on VL value lanes; finally the initial states
 *                read through the in-edges' marks.
 *
 * Final states, when asked for, come from the tiled form's border kernels with one tile.
 */
#include "lower_expr.h"
#include "lower_plstm2d.h"

uint64_t p2d_single_local_bytes(const plstm2d_dims *d, int64_t rt, int64_t st)
{
  uint64_t h = (uint64_t)(rt * d->DV * d->JO), w = (uint64_t)(rt * st * d->JO * d->JV);
  return 4u * (h + w);
}

typedef struct splan {
  bool fast;       /* every J = 1 and vectors: sources on lanes */
  int VS;          /* source lanes (1 unless fast) */
  bool lockstep;   /* every source's program starts at the first cell (GPUs, below) */
  int64_t Ps;      /* source columns of G_total: P rounded up to VS */
  int64_t RT, ST, NBLK;
} splan;

/* ------------------------------------------------------------------ single_gate */

/* Where a scalar path-sum program from one source writes: G_total ([B][P target][Ps
 * source]) or Mbar ([B][P target][NB in-edge]). */
typedef struct col_sink {
  int arr;         /* G or Mb */
  int src;         /* variable: source cell, or in-edge */
  int64_t stride;  /* Ps or NB */
  int64_t size;    /* szD or szM */
  bool add;        /* accumulate over orientations */
} col_sink;

static kir_expr *sink_at(kir_builder *b, const p2d_plan *p, int bi, const col_sink *cs,
                         kir_expr *target, kir_expr *e)
{
  kir_expr *cell = ADD(MUL(V(bi), I(p->P)), target);
  return ADD(MUL(ADD(MUL(cell, I(cs->stride)), V(cs->src)), I(cs->size)), e);
}

/* Cell (i, j) of the flipped frame as the grid's own cell number. */
static kir_expr *orig_cell(const p2d_kern *kc, int i, int j)
{
  kir_builder *b = kc->b;
  return ADD(MUL(p2d_orig_x(kc, V(i)), I(kc->p->Y)), p2d_orig_y(kc, V(j)));
}

static void col_mark(const p2d_kern *kc, void *ctx, int i, int j, int mk)
{
  kir_builder *b = kc->b;
  const col_sink *cs = ctx;
  kir_expr *e = jfor(b, "e", cs->size);
  kir_expr *at = sink_at(b, kc->p, kc->bi, cs, orig_cell(kc, i, j), e);
  kb_store(b, cs->arr, at, cs->add ? ADD(LD(cs->arr, at), LD(mk, e)) : LD(mk, e));
  jend(b, cs->size);
}

static void zero_column(kir_builder *b, const p2d_plan *p, int bi, const col_sink *cs)
{
  int c = kb_for(b, "c", I(0), I(p->P));
  kir_expr *e = jfor(b, "e", cs->size);
  kb_store(b, cs->arr, sink_at(b, p, bi, cs, V(c), e), F(0));
  jend(b, cs->size);
  kb_end(b);
}

/* One source cell id, any J: the program per orientation, then D on the diagonal. */
static void emit_gate_scalar(p2d_kern *kc, const p2d_tile *t, int G, int id)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  col_sink cs = {.arr = G, .src = id, .stride = p->P, .size = p->szD, .add = true};
  zero_column(b, p, kc->bi, &cs);
  int xs = kb_let(b, "xs", KT_INT, DIV(V(id), I(p->Y)));
  int ys = kb_let(b, "ys", KT_INT, REM(V(id), I(p->Y)));
  for (int o = 0; o < p->n_orient; o++) {
    kc->oc = o;
    kb_comment(b, "orientation %d: the source sits at the reversed grid's (si, sj)", o);
    int si = kb_let(b, "si", KT_INT, p2d_orig_x(kc, V(xs)));
    int sj = kb_let(b, "sj", KT_INT, p2d_orig_y(kc, V(ys)));
    p2d_sinks sk = {.mark = col_mark, .ctx = &cs};
    p2d_emit_cell_paths(kc, t, si, sj, &sk);
  }
  kc->oc = 0;
  kir_expr *e = jfor(b, "e", p->szD);
  kir_expr *at = sink_at(b, p, kc->bi, &cs, V(id), e);
  kb_store(b, G, at, ADD(LD(G, at), LD(kc->D, ADD(MUL(ADD(MUL(V(kc->bi), I(p->P)), V(id)), I(p->szD)), e))));
  jend(b, p->szD);
}

typedef struct lane_sink {
  int G;
  bool set_first;  /* orientation 0 visits every cell: it stores, the others add */
  int n0;
  int VS;
  int64_t Ps;
} lane_sink;

static kir_expr *lane_number(const p2d_kern *kc, void *ctx, int i, int j)
{
  (void)ctx;
  return orig_cell(kc, i, j);
}

static void lane_mark(const p2d_kern *kc, void *ctx, int i, int j, int mk)
{
  kir_builder *b = kc->b;
  const lane_sink *ls = ctx;
  const p2d_plan *p = kc->p;
  kir_expr *at = ADD(MUL(ADD(MUL(V(kc->bi), I(p->P)), orig_cell(kc, i, j)), I(ls->Ps)), V(ls->n0));
  if (ls->set_first && kc->oc == 0)
    kb_store(b, ls->G, at, V(mk));
  else
    kb_store(b, ls->G, at, ADD(kx_vload(b, ls->G, at, ls->VS), V(mk)));
}

/* The sources n0 .. n0 + VS - 1 (every J = 1), one per lane: in each orientation the
 * program starts at the first row and column (in the reversed grid) that holds one. */
static void emit_gate_lanes(p2d_kern *kc, const p2d_tile *t, const splan *sp, int G, int Kt,
                            int eye, int id)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int VS = sp->VS;
  int64_t Y = p->Y, DK = p->d.DK;
  lane_sink ls = {.G = G, .VS = VS, .Ps = sp->Ps};
  ls.n0 = kb_let(b, "n0", KT_INT, MUL(V(id), I(VS)));
  kb_comment(b, "the lanes' keys transposed (zero past the grid)");
  for (int l = 0; l < VS; l++) {
    int n = kb_let(b, "n", KT_INT, ADD(V(ls.n0), I(l)));
    int krow = kb_let(b, "krow", KT_INT, ADD(MUL(V(kc->bi), I(p->P)), MIN(V(n), I(p->P - 1))));
    int dk = kb_for(b, "dk", I(0), I(DK));
    kb_store(b, Kt, ADD(MUL(ADD(MUL(V(kc->bi), I(DK)), V(dk)), I(sp->Ps)), V(n)),
             SEL(LT(V(n), I(p->P)), LD(kc->k, MAD(V(krow), DK, V(dk))), F(0)));
    kb_end(b);
  }
  ls.set_first = sp->lockstep;
  if (!sp->lockstep) {
    int c = kb_for(b, "c", I(0), I(p->P));
    kb_store(b, G, ADD(MUL(ADD(MUL(V(kc->bi), I(p->P)), V(c)), I(sp->Ps)), V(ls.n0)),
             kx_splat(b, F(0), VS));
    kb_end(b);
  }
  int x0 = -1, x1 = -1, last = -1, one_row = -1;
  if (!sp->lockstep) {
    last = kb_let(b, "last", KT_INT, MIN(ADD(V(ls.n0), I(VS - 1)), I(p->P - 1)));
    x0 = kb_let(b, "xa", KT_INT, DIV(V(ls.n0), I(Y)));
    x1 = kb_let(b, "xb", KT_INT, DIV(V(last), I(Y)));
    one_row = kb_let(b, "one_row", KT_BOOL, kx_bin(b, KB_EQ, V(x0), V(x1)));
  }
  for (int o = 0; o < p->n_orient; o++) {
    kc->oc = o;
    kb_comment(b, "orientation %d, in the reversed grid", o);
    p2d_lanes ln = {.VS = VS, .eye = eye, .n0 = ls.n0, .number = lane_number,
                    .mark = lane_mark, .ctx = &ls, .i_lo = I(0), .j_lo = I(0)};
    if (!sp->lockstep) {
      kir_expr *ylo = p2d_orig_y(kc, SUB(V(ls.n0), MUL(V(x0), I(Y))));
      kir_expr *yhi = p2d_orig_y(kc, SUB(V(last), MUL(V(x0), I(Y))));
      ln.i_lo = MIN(p2d_orig_x(kc, V(x0)), p2d_orig_x(kc, V(x1)));
      ln.j_lo = SEL(V(one_row), MIN(ylo, yhi), I(0));
    }
    p2d_emit_lane_paths(kc, t, &ln);
  }
  kc->oc = 0;
  kb_comment(b, "D on the diagonal");
  for (int l = 0; l < VS; l++) {
    int n = kb_let(b, "n", KT_INT, ADD(V(ls.n0), I(l)));
    kb_if(b, LT(V(n), I(p->P)));
    kir_expr *at = ADD(MUL(ADD(MUL(V(kc->bi), I(p->P)), V(n)), I(sp->Ps)), V(n));
    kb_store(b, G, at, ADD(LD(G, at), LD(kc->D, ADD(MUL(V(kc->bi), I(p->P)), V(n)))));
    kb_end(b);
  }
}

static int emit_gate(lower_ctx *lc, const ir_op *op, const p2d_plan *p, const splan *sp, int bG,
                     int bKt, int bMb, int64_t per_group, p2d_args *args)
{
  kir_builder kbb, *b = &kbb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "single_gate"), (int)p->wg, 2,
                      "pLSTM 2D single tile, step 1: per run of source cells (group axis 0) and\n"
                      "batch (axis 1) their columns of G_total = sum over orientations of the\n"
                      "path sums from them, D on the diagonal; per in-edge its column of the\n"
                      "marks Mbar.");
  p2d_kern kc = {.b = b, .p = p, .q = -1, .k = -1, .v = -1};
  const plstm2d_dims *d = &p->d;
  int64_t cells = d->B * p->P, runs = sp->Ps / sp->VS;
  args->n = 0;
  kc.D = p2d_global(&kc, args, "D", lower_in(lc, op, P2D_D), cells * p->szD, true);
  if (sp->fast)
    kc.k = p2d_global(&kc, args, "k", lower_in(lc, op, P2D_K), cells * p->szK, true);
  p2d_declare_gates(lc, op, &kc, args, true);
  int G = p2d_global(&kc, args, "G", bG, cells * sp->Ps * p->szD, false);
  int Kt = sp->fast ? p2d_global(&kc, args, "Kt", bKt, d->B * d->DK * sp->Ps, false) : -1;
  int Mb = bMb >= 0 ? p2d_global(&kc, args, "Mb", bMb, cells * p->NB * p->szM, false) : -1;
  kc.o = -1;
  kc.bi = kb_let(b, "b", KT_INT, GID(1));
  p2d_tile t;
  t.tile = t.tx = t.ty = -1; /* one tile: the path sums use only its origin and size */
  t.x0 = t.y0 = kb_let(b, "origin", KT_INT, I(0));
  t.nx = kb_let(b, "nx", KT_INT, I(p->X));
  t.ny = kb_let(b, "ny", KT_INT, I(p->Y));
  int eye = sp->fast ? p2d_lane_identity(b, sp->VS) : -1;
  int s = kb_parfor(b, "s", I(per_group));
  int id = kb_let(b, "id", KT_INT, ADD(MUL(GID(0), I(per_group)), V(s)));
  kb_if(b, LT(V(id), I(runs)));
  if (sp->fast)
    emit_gate_lanes(&kc, &t, sp, G, Kt, eye, id);
  else
    emit_gate_scalar(&kc, &t, G, id);
  if (Mb >= 0) {
    kb_else(b);
    kb_if(b, LT(V(id), I(runs + p->NB)));
    int bx = kb_let(b, "bidx", KT_INT, SUB(V(id), I(runs)));
    col_sink ms = {.arr = Mb, .src = bx, .stride = p->NB, .size = p->szM, .add = false};
    zero_column(b, p, kc.bi, &ms);
    p2d_sinks sk = {.mark = col_mark, .ctx = &ms};
    p2d_emit_edge_paths(&kc, &t, bx, &sk);
    kb_end(b);
  }
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

/* ------------------------------------------------------------------ single_out */

typedef struct out_arrays {
  int G, Mb, CL, CT, out, H, W, Kt;
  int r0;          /* variable: first target cell of the group */
} out_arrays;

/* Row (batch-major cell index) of target r of the group, clamped into the grid. */
static kir_expr *target_row(const p2d_kern *kc, const out_arrays *oa, kir_expr *r)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  return ADD(MUL(V(kc->bi), I(p->P)), MIN(ADD(V(oa->r0), r), I(p->P - 1)));
}

/* Every J = 1: items of RB targets by VS sources, q.k accumulated over DK on source lanes
 * (the keys transposed by single_gate), times G_total's row segment. */
static void emit_fast_weights(const p2d_kern *kc, const splan *sp, const out_arrays *oa, int sb,
                              int nsp)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int64_t DK = p->d.DK, ST = sp->ST, nsv = ST / sp->VS;
  int RB = p->RB, VS = sp->VS;
  int x = kb_parfor(b, "x", I(sp->RT / RB * nsv));
  int rr0 = kb_let(b, "rr0", KT_INT, MUL(DIV(V(x), I(nsv)), I(RB)));
  int s0 = kb_let(b, "s0", KT_INT, MUL(REM(V(x), I(nsv)), I(VS)));
  kb_if(b, kx_bin(b, KB_AND, LT(V(s0), V(nsp)), LT(ADD(V(oa->r0), V(rr0)), I(p->P))));
  int acc = kb_private_vec(b, "qk", VS, RB);
  int rows[16];
  for (int r = 0; r < RB; r++) {
    kb_store(b, acc, I(r), kx_splat(b, F(0), VS));
    rows[r] = kb_let(b, "qrow", KT_INT, target_row(kc, oa, ADD(V(rr0), I(r))));
  }
  int kt0 = kb_let(b, "kt0", KT_INT, ADD(MUL(V(kc->bi), I(DK * sp->Ps)), ADD(V(sb), V(s0))));
  int dk = kb_for(b, "dk", I(0), I(DK));
  int kv = kb_let(b, "kv", KT_FLOAT, kx_vload(b, oa->Kt, MAD(V(dk), sp->Ps, V(kt0)), VS));
  for (int r = 0; r < RB; r++)
    kb_store(b, acc, I(r), ADD(LD(acc, I(r)), MUL(LD(kc->q, MAD(V(rows[r]), DK, V(dk))), V(kv))));
  kb_end(b);
  for (int r = 0; r < RB; r++) {
    kir_expr *g = kx_vload(b, oa->G, ADD(MUL(V(rows[r]), I(sp->Ps)), ADD(V(sb), V(s0))), VS);
    kb_store(b, oa->W, MAD(ADD(V(rr0), I(r)), ST, V(s0)), MUL(g, LD(acc, I(r))));
  }
  kb_end(b);
  kb_end(b);
}

/* Any J: W[r][s][o,cv] = sum_{aq,bk} G[r][s][o,aq,bk,cv] (q_r . k_s)[aq,bk], one pair per
 * item. */
static void emit_pair_weights(const p2d_kern *kc, const splan *sp, const out_arrays *oa, int sb,
                              int ns)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int x = kb_parfor(b, "x", I(sp->RT * sp->ST));
  int s = kb_let(b, "s", KT_INT, REM(V(x), I(sp->ST)));
  kb_if(b, LT(V(s), V(ns)));
  int qrow = kb_let(b, "qrow", KT_INT, target_row(kc, oa, DIV(V(x), I(sp->ST))));
  int krow = kb_let(b, "krow", KT_INT, ADD(MUL(V(kc->bi), I(p->P)), ADD(V(sb), V(s))));
  int qk = emit_qk(b, &p->pd, kc->q, kc->k, qrow, krow, p->VD);
  kir_expr *gbase = MUL(ADD(MUL(V(qrow), I(sp->Ps)), ADD(V(sb), V(s))), I(p->szD));
  emit_gated_weights(b, &p->pd, oa->G, gbase, qk, oa->W, MUL(V(x), I(p->OV)));
  kb_end(b);
  kb_end(b);
}

/* H[r][dv..][o] += sum over the block's sources of W[r][s] v_s. */
static void emit_block_apply(const p2d_kern *kc, const splan *sp, const out_arrays *oa, int sb,
                             int ns)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  const plstm2d_dims *d = &p->d;
  int RB = p->RB, VL = p->VL;
  int64_t nvb = d->DV / VL, JO = d->JO;
  int x = kb_parfor(b, "x", I(sp->RT / RB * nvb));
  int rr0 = kb_let(b, "rr0", KT_INT, MUL(DIV(V(x), I(nvb)), I(RB)));
  int dv0 = kb_let(b, "dv0", KT_INT, MUL(REM(V(x), I(nvb)), I(VL)));
  kb_if(b, LT(ADD(V(oa->r0), V(rr0)), I(p->P)));
  int h = VL > 1 ? kb_private_vec(b, "h", VL, RB * JO) : kb_private(b, "h", KT_FLOAT, RB * JO);
  for (int r = 0; r < RB; r++) {
    kir_expr *o = jfor(b, "o", JO);
    kb_store(b, h, MAD(I(r), JO, o),
             kx_vload(b, oa->H, ADD(MUL(ADD(MUL(ADD(V(rr0), I(r)), I(d->DV)), V(dv0)), I(JO)), o), VL));
    jend(b, JO);
  }
  int s = kb_for(b, "s", I(0), V(ns));
  int vrow = kb_let(b, "vrow", KT_INT, ADD(MUL(V(kc->bi), I(p->P)), ADD(V(sb), V(s))));
  kir_expr *cv = jfor(b, "cv", d->JV);
  int vv = kb_let(b, "vv", KT_FLOAT,
                  kx_vload(b, kc->v, ADD(MAD(MAD(V(vrow), d->DV, V(dv0)), d->JV, I(0)), cv), VL));
  for (int r = 0; r < RB; r++) {
    kir_expr *o = jfor(b, "o", JO);
    kir_expr *wi = ADD(MUL(MAD(ADD(V(rr0), I(r)), sp->ST, V(s)), I(p->OV)), MAD(o, d->JV, cv));
    kir_expr *slot = MAD(I(r), JO, o);
    kb_store(b, h, slot, ADD(LD(h, slot), MUL(LD(oa->W, wi), V(vv))));
    jend(b, JO);
  }
  jend(b, d->JV);
  kb_end(b);
  for (int r = 0; r < RB; r++) {
    kir_expr *o = jfor(b, "o", JO);
    kb_store(b, oa->H, ADD(MUL(ADD(MUL(ADD(V(rr0), I(r)), I(d->DV)), V(dv0)), I(JO)), o),
             LD(h, MAD(I(r), JO, o)));
    jend(b, JO);
  }
  kb_end(b);
  kb_end(b);
}

/* h += R(q, Mbar[c, b], C_initial[b]) over the in-edges of one side. */
static void emit_entry_side(const p2d_kern *kc, const out_arrays *oa, int init, int64_t first,
                            int64_t n, int h, const int *rows, int dv0)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  const plstm2d_dims *d = &p->d;
  int RB = p->RB;
  int64_t JT = d->JT, JO = d->JO;
  int dk = kb_for(b, "dk", I(0), I(d->DK));
  int j = kb_for(b, "j", I(0), I(n));
  kir_expr *tt = jfor(b, "t", JT);
  kir_expr *ci = ADD(MUL(ADD(MUL(ADD(MUL(ADD(MUL(V(kc->bi), I(n)), V(j)), I(d->DK)), V(dk)),
                                 I(d->DV)), V(dv0)), I(JT)), tt);
  int cc = kb_let(b, "cc", KT_FLOAT, kx_vload(b, init, ci, p->VL));
  kir_expr *aq = jfor(b, "aq", d->JQ);
  for (int r = 0; r < RB; r++) {
    int qv = kb_let(b, "qv", KT_FLOAT, LD(kc->q, ADD(MAD(MAD(V(rows[r]), d->DK, V(dk)), d->JQ, I(0)), aq)));
    kir_expr *o = jfor(b, "o", JO);
    kir_expr *mi = ADD(MUL(ADD(MUL(V(rows[r]), I(p->NB)), ADD(I(first), V(j))), I(p->szM)),
                       MAD(MAD(o, d->JQ, aq), JT, tt));
    kir_expr *slot = MAD(I(r), JO, o);
    kb_store(b, h, slot, ADD(LD(h, slot), MUL(MUL(V(qv), LD(oa->Mb, mi)), V(cc))));
    jend(b, JO);
  }
  jend(b, d->JQ);
  jend(b, JT);
  kb_end(b);
  kb_end(b);
}

static void emit_finish(const p2d_kern *kc, const splan *sp, const out_arrays *oa)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  const plstm2d_dims *d = &p->d;
  int RB = p->RB, VL = p->VL;
  int64_t nvb = d->DV / VL, JO = d->JO;
  int x = kb_parfor(b, "x", I(sp->RT / RB * nvb));
  int rr0 = kb_let(b, "rr0", KT_INT, MUL(DIV(V(x), I(nvb)), I(RB)));
  int dv0 = kb_let(b, "dv0", KT_INT, MUL(REM(V(x), I(nvb)), I(VL)));
  int h = VL > 1 ? kb_private_vec(b, "h", VL, RB * JO) : kb_private(b, "h", KT_FLOAT, RB * JO);
  int rows[16];
  for (int r = 0; r < RB; r++) {
    rows[r] = kb_let(b, "trow", KT_INT, target_row(kc, oa, ADD(V(rr0), I(r))));
    kir_expr *o = jfor(b, "o", JO);
    kb_store(b, h, MAD(I(r), JO, o),
             kx_vload(b, oa->H, ADD(MUL(ADD(MUL(ADD(V(rr0), I(r)), I(d->DV)), V(dv0)), I(JO)), o), VL));
    jend(b, JO);
  }
  if (oa->CL >= 0) {
    kb_comment(b, "the left initial states through the marks of the left in-edges");
    emit_entry_side(kc, oa, oa->CL, 0, p->Y, h, rows, dv0);
  }
  if (oa->CT >= 0) {
    kb_comment(b, "the top initial states through the marks of the top in-edges");
    emit_entry_side(kc, oa, oa->CT, p->TY, p->X, h, rows, dv0);
  }
  for (int r = 0; r < RB; r++) {
    kb_if(b, LT(ADD(V(oa->r0), ADD(V(rr0), I(r))), I(p->P)));
    kir_expr *o = jfor(b, "o", JO);
    kb_store(b, oa->out, ADD(MAD(MAD(V(rows[r]), d->DV, V(dv0)), JO, I(0)), o),
             MUL(LD(h, MAD(I(r), JO, o)), F(p->scale)));
    jend(b, JO);
    kb_end(b);
  }
  kb_end(b);
}

static int emit_out(lower_ctx *lc, const ir_op *op, const p2d_plan *p, const splan *sp,
                    int bG, int bKt, int bMb, p2d_args *args)
{
  kir_builder kbb, *b = &kbb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "single_out"), (int)p->wg, 2,
                      "pLSTM 2D single tile, step 2: per block of RT target cells (group axis 0)\n"
                      "and batch (axis 1), attention with the mask G_total: per block of ST\n"
                      "sources W = G_total (q.k), H += W v; then the initial states through the\n"
                      "in-edges' marks; out = s H.");
  p2d_kern kc = {.b = b, .p = p, .D = -1, .o = -1};
  const plstm2d_dims *d = &p->d;
  int64_t cells = d->B * p->P;
  args->n = 0;
  kc.q = p2d_global(&kc, args, "q", lower_in(lc, op, P2D_Q), cells * p->szQ, true);
  kc.k = sp->fast ? -1 /* the keys come transposed, Kt */
                  : p2d_global(&kc, args, "k", lower_in(lc, op, P2D_K), cells * p->szK, true);
  kc.v = p2d_global(&kc, args, "v", lower_in(lc, op, P2D_V), cells * p->szV, true);
  out_arrays oa = {.Mb = -1, .CL = -1, .CT = -1, .Kt = -1};
  oa.G = p2d_global(&kc, args, "G", bG, cells * sp->Ps * p->szD, true);
  if (sp->fast)
    oa.Kt = p2d_global(&kc, args, "Kt", bKt, d->B * d->DK * sp->Ps, true);
  if (bMb >= 0) {
    oa.Mb = p2d_global(&kc, args, "Mb", bMb, cells * p->NB * p->szM, true);
    int bCL = lower_in(lc, op, P2D_CL), bCT = lower_in(lc, op, P2D_CT);
    if (bCL >= 0)
      oa.CL = p2d_global(&kc, args, "C_left", bCL, d->B * p->Y * p->szC, true);
    if (bCT >= 0)
      oa.CT = p2d_global(&kc, args, "C_top", bCT, d->B * p->X * p->szC, true);
  }
  oa.out = p2d_global(&kc, args, "out", lower_out(lc, op, P2D_OUT), cells * p->szH, false);
  oa.H = kb_local(b, "H", KT_FLOAT, sp->RT * d->DV * d->JO);
  oa.W = kb_local(b, "W", KT_FLOAT, sp->RT * sp->ST * p->OV);
  kc.bi = kb_let(b, "b", KT_INT, GID(1));
  oa.r0 = kb_let(b, "r0", KT_INT, MUL(GID(0), I(sp->RT)));
  int z = kb_parfor(b, "z", I(sp->RT * d->DV * d->JO));
  kb_store(b, oa.H, V(z), F(0));
  kb_end(b);
  int blk = kb_for(b, "blk", I(0), I(sp->NBLK));
  int sb = kb_let(b, "sb", KT_INT, MUL(V(blk), I(sp->ST)));
  int ns = kb_let(b, "ns", KT_INT, MIN(I(sp->ST), SUB(I(p->P), V(sb))));
  if (sp->fast) {
    int nsp = kb_let(b, "nsp", KT_INT, MIN(I(sp->ST), SUB(I(sp->Ps), V(sb))));
    emit_fast_weights(&kc, sp, &oa, sb, nsp);
  } else {
    emit_pair_weights(&kc, sp, &oa, sb, ns);
  }
  emit_block_apply(&kc, sp, &oa, sb, ns);
  kb_end(b);
  emit_finish(&kc, sp, &oa);
  int rc = kb_finish(b, lc->err);
  return rc ? -1 : kid;
}

/* ------------------------------------------------------------------ the form */

/* Sources on lanes when every J = 1; 64 target rows per group (a multiple of the register
 * rows) and as many sources per block as local memory holds, up to the whole grid. */
static int plan_single(lower_ctx *lc, const ir_op *op, const p2d_plan *p, splan *sp)
{
  const plstm2d_dims *d = &p->d;
  sp->fast = p->VL > 1 && p2d_all_j_one(d);
  /* On a GPU the items of a warp hold consecutive sources: starting all of them at the
   * first cell (the cells before a source carry zero weights, exactly) makes them read one
   * cell's gates together and write G rows contiguously, for twice the steps. A CPU item
   * runs alone and skips those cells. */
  sp->lockstep = !lc->opt->device.is_cpu;
  sp->VS = sp->fast ? p->VL : 1;
  sp->Ps = (p->P + sp->VS - 1) / sp->VS * sp->VS;
  sp->RT = 64 / p->RB * p->RB;
  if (sp->RT < p->RB)
    sp->RT = p->RB;
  if (p->P < sp->RT)
    sp->RT = (p->P + p->RB - 1) / p->RB * p->RB;
  uint64_t have = local_budget(lc->opt);
  sp->ST = sp->Ps;
  while (sp->ST > sp->VS && p2d_single_local_bytes(d, sp->RT, sp->ST) > have)
    sp->ST = (sp->ST / sp->VS + 1) / 2 * sp->VS;
  while (sp->RT > p->RB && p2d_single_local_bytes(d, sp->RT, sp->ST) > have)
    sp->RT -= p->RB;
  uint64_t need = p2d_single_local_bytes(d, sp->RT, sp->ST);
  if (need > have)
    return local_overflow(lc->err, lc->opt, op->name, "the single form", need,
                          "choose another --form");
  sp->NBLK = (p->P + sp->ST - 1) / sp->ST;
  return XY_OK;
}

int lower_plstm2d_single(lower_ctx *lc, const ir_op *op, p2d_plan *p)
{
  const plstm2d_dims *d = &p->d;
  p2d_plan_tiles(p, p->X, p->Y);
  while (p->RB > 1 && d->DK % p->RB != 0)
    p->RB /= 2;
  splan sp = {0};
  int rc = plan_single(lc, op, p, &sp);
  if (rc)
    return rc;
  int64_t gcount;
  if (!xy_mul_i64(d->B * p->P, sp.Ps * p->szD, &gcount) ||
      (uint64_t)gcount > lc->opt->device.max_alloc_bytes / 4u)
    return xy_fail(lc->err, XY_E_DEVICE,
                   "'%s': the single form's gating matrix needs %lld x %lld x %lld floats, more "
                   "than the device allocates at once (use the tiled or recurrent form)",
                   op->name, (long long)d->B, (long long)p->P, (long long)sp.Ps);
  if (d->has_right || d->has_bottom) {
    p2d_borders bb = {.Rf = lower_out(lc, op, P2D_CR), .Df = lower_out(lc, op, P2D_CB)};
    const int64_t tb[] = {d->B, p->NB, p->NB, p->szT}, dc[] = {d->B, p->NB, p->szC};
    bb.Tbar = p2d_temp(lc, op, "Tbar", 4, tb);
    bb.dC = bb.Tbar < 0 ? -1 : p2d_temp(lc, op, "dC", 3, dc);
    if (bb.dC < 0)
      return lc->err->code;
    if ((rc = p2d_border_kernels(lc, op, p, &bb)) || (rc = p2d_border_launches(lc, p, &bb, 0)))
      return rc;
  }
  bool entry = d->has_left || d->has_top;
  const int64_t kt[] = {d->B, d->DK, sp.Ps}, mb[] = {d->B, p->P, p->NB, p->szM};
  int bG = lower_temp(lc, lower_name(lc, op, "G"), gcount);
  int bKt = bG >= 0 && sp.fast ? p2d_temp(lc, op, "Kt", 3, kt) : -1;
  int bMb = bG >= 0 && entry ? p2d_temp(lc, op, "Mb", 4, mb) : -1;
  if (bG < 0 || (sp.fast && bKt < 0) || (entry && bMb < 0))
    return lc->err->code;
  p2d_args a_gate, a_out;
  int64_t per = p->wg, items = sp.Ps / sp.VS + (entry ? p->NB : 0);
  int k_gate = emit_gate(lc, op, p, &sp, bG, bKt, bMb, per, &a_gate);
  int k_out = k_gate < 0 ? -1 : emit_out(lc, op, p, &sp, bG, bKt, bMb, &a_out);
  if (k_out < 0)
    return lc->err->code ? lc->err->code : XY_E_INTERNAL;

  double cells = (double)d->B * (double)p->P, P = (double)p->P;
  double f_gate = cells * P / 4.0 * (double)p->n_orient * 2.0 *
                  (double)(p->KW * d->JT * (4 * d->JT + 2 * p->MR));
  double b_gate = 4.0 * cells * ((double)sp.Ps * (double)p->szD +
                                 (double)(p->szD + 2 * p->szS + 4 * p->szT + 2 * p->szM));
  double f_out = 2.0 * cells * P * (double)(d->DK * d->JQ * d->JK + p->szD + p->szH * d->JV) +
                 (entry ? 2.0 * cells * (double)p->NB * (double)(p->szC * d->JQ * d->JO) : 0.0);
  double b_out = 4.0 * (cells * (double)sp.Ps * (double)p->szD + cells * (double)(p->szQ + p->szH) +
                        cells * (double)(sp.NBLK * (p->szK + p->szV)));
  if ((rc = p2d_launch(lc, k_gate, &a_gate, (items + per - 1) / per, d->B, 0, 0, f_gate, b_gate)))
    return rc;
  return p2d_launch(lc, k_out, &a_out, (p->P + sp.RT - 1) / sp.RT, d->B, 0, 0, f_out, b_out);
}
