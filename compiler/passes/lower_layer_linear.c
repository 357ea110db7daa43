/*
 * lower_layer_linear.c: the linear op (ops.def) as a block GEMM.
 *
 * The output columns fall into segments that read one sub-head each: with subheads S = 1
 * the whole row of N = G*S*F columns is one segment (a dense GEMM, whatever G and F), else
 * segment (g, s) holds the F columns n = (g*S + s)*F + f and reads x[..., s*Cs : (s+1)*Cs].
 * A column tile never crosses a segment, so every item of work reads one slice of x.
 *
 *   linear_pack  W, in either order, to Wp[segment][c][column] times `scale`: contiguous
 *                along the output columns, so that weights load as vectors. Tiny.
 *   linear_gemm  group (row tile, column tile); each work-item keeps RB rows x VL columns
 *                in registers and sums x[p, c] * Wp[c, cols] over all c, reading both from
 *                global memory, where the group's tile stays cached.
 *                CPUs: 16 lanes, one work-item walking the group's items (PoCL vectorizes
 *                across work-items, which explicit vectors make counterproductive).
 *                GPUs and unknown devices: 256 work-items of 8 rows x 2 columns, x read
 *                4 inputs at a time; neighbouring work-items share rows or columns, so the
 *                loads coalesce and hit L1. (Tiles staged through local memory measured
 *                10-25% slower on an H200: the kernel IR keeps registers only within one
 *                parfor, so partial sums would wait in local memory between chunks.)
 *   linear_dot   CPUs, when the segments are too narrow for wide vectors along the
 *                columns: vectors along the inputs and a horizontal sum, W as it is.
 *   linear_fill  no weight: y = bias over every position.
 *
 * Ragged edges: VL divides the segment's width, so a vector never straddles a segment;
 * rows past the end read the last row and are not stored; column vectors past a segment's
 * end read clamped weights and are not stored.
 */
#include <string.h>

#include "lower_expr.h"
#include "lower_layers.h"

typedef struct lin_plan {
  int64_t P, C, Cs, N, S, F;  /* positions, inputs, inputs per sub-head, outputs */
  int64_t nseg, segF, tps;    /* segments, columns per segment, column tiles per segment */
  ir_weight_order order;
  double scale;
  bool has_b;
  bool gpu;                   /* a GPU or a device nobody named */
  int VL, RB, VK;             /* an item: RB rows x VL columns, x read VK inputs at a time */
  int64_t TM, TN, items_m, items_n;
  int wg;
} lin_plan;

static int clamp_knob(int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

/* Tile sizes from the shapes, the device and the --lanes/--rows/--wg knobs. */
static void plan_tiles(const lower_ctx *lc, lin_plan *p)
{
  const xy_compile_options *o = lc->opt;
  p->gpu = !o->device.is_cpu;
  /* measured on 8192 x 192 -> 192 and 576: on a 2-core AVX2 CPU 16 lanes with 6 rows under
   * PoCL and 4 under clang (C target; 6 spill there); on an H200 2 lanes x 8 rows in groups
   * of 8 x 32 items beat 4 x 4 and 4 x 8 by 10-40% */
  int lanes = o->lanes > 0 ? o->lanes : p->gpu ? 2 : 16;
  p->VL = layer_lanes(lanes, p->segF);
  int rows_auto = p->gpu ? 8 : o->target == XY_TARGET_OPENCL ? 6 : 4;
  p->RB = o->rows > 0 ? clamp_knob(o->rows, 1, 16) : rows_auto;
  if (p->RB > p->P)
    p->RB = (int)p->P;
  p->VK = p->gpu ? layer_lanes(4, p->Cs) : 1;
  int64_t cols = layer_ceil_div(p->segF, p->VL); /* column items a segment needs */
  int64_t rows = layer_ceil_div(p->P, p->RB);
  if (!p->gpu) {
    /* One column item per group: its weights (Cs x VL) stay in L1 while the group's items
     * walk the rows; narrow ops take more rows, to outweigh a group's fixed cost. */
    p->items_n = 1;
    int64_t m = layer_ceil_div(32768, (int64_t)p->RB * p->VL * p->Cs);
    m = m < 16 ? 16 : m > 4096 ? 4096 : m;
    p->items_m = rows < m ? rows : m;
  } else {
    p->items_n = cols < 32 ? cols : 32;
    int64_t m = 256 / p->items_n;
    p->items_m = rows < m ? rows : m;
  }
  p->TN = p->items_n * p->VL;
  p->TM = p->items_m * p->RB;
  p->tps = layer_ceil_div(p->segF, p->TN);
  int64_t items = p->items_m * p->items_n;
  p->wg = layer_wg(lc, p->gpu ? (int)(items < 256 ? items : 256) : 1);
}

/* ------------------------------------------------------------------ linear_pack */

static int emit_pack(lower_ctx *lc, const ir_op *op, const lin_plan *p, int bw, int bwp)
{
  int64_t n = p->N * p->Cs;
  int wg = layer_wg(lc, lower_wg(lc, n));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "pack"), wg, 1,
                      "linear, step 1 of 2: W(g, s, f, c) * scale to Wp[segment][c][column],\n"
                      "contiguous along the output columns.");
  int w = kb_global(b, "W", KT_FLOAT, n, true);
  int wp = kb_global(b, "Wp", KT_FLOAT, n, false);
  int lane = kb_parfor(b, "lane", I(wg));
  int e = kb_let(b, "e", KT_INT, MAD(GID(0), wg, V(lane)));
  kb_if(b, LT(V(e), I(n)));
  int col = kb_let(b, "n", KT_INT, DIV(V(e), I(p->Cs)));
  int c = kb_let(b, "c", KT_INT, REM(V(e), I(p->Cs)));
  kir_expr *src = V(e); /* n * Cs + c: the order gsfc, and gfsc when S or F is 1 */
  if (p->order == IR_W_GFSC && p->S > 1 && p->F > 1) {
    int g = kb_let(b, "g", KT_INT, DIV(V(col), I(p->S * p->F)));
    int s = kb_let(b, "s", KT_INT, REM(DIV(V(col), I(p->F)), I(p->S)));
    int f = kb_let(b, "f", KT_INT, REM(V(col), I(p->F)));
    src = MAD(MAD(MAD(V(g), p->F, V(f)), p->S, V(s)), p->Cs, V(c));
  }
  kir_expr *seg = p->nseg > 1 ? DIV(V(col), I(p->segF)) : I(0);
  kir_expr *j = p->nseg > 1 ? REM(V(col), I(p->segF)) : V(col);
  kb_store(b, wp, MAD(MAD(seg, p->Cs, V(c)), p->segF, j), MUL(LD(w, src), F(p->scale)));
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  kir_arg args[] = {{true, bw}, {true, bwp}};
  return layer_launch(lc, kid, layer_ceil_div(n, wg), 1, args, 2, (double)n, 8.0 * (double)n);
}

/* ------------------------------------------------------------------ linear_fill */

static int emit_fill(lower_ctx *lc, const ir_op *op, const lin_plan *p, int bbias, int by)
{
  int64_t n = p->P * p->N;
  int VL = layer_lanes(p->gpu ? 4 : 16, p->N);
  int64_t items = n / VL;
  int wg = layer_wg(lc, lower_wg(lc, items));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "fill"), wg, 1,
                      "linear without a weight: y = bias at every position.");
  int bias = bbias >= 0 ? kb_global(b, "bias", KT_FLOAT, p->N, true) : -1;
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int lane = kb_parfor(b, "lane", I(wg));
  int item = kb_let(b, "item", KT_INT, MAD(GID(0), wg, V(lane)));
  kb_if(b, LT(V(item), I(items)));
  int e = kb_let(b, "e", KT_INT, MUL(V(item), I(VL)));
  kir_expr *val = bias >= 0 ? kx_vload(b, bias, REM(V(e), I(p->N)), VL) : kx_splat(b, F(0), VL);
  kb_store(b, y, V(e), val);
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  kir_arg args[2];
  int na = 0;
  if (bias >= 0)
    args[na++] = (kir_arg){true, bbias};
  args[na++] = (kir_arg){true, by};
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, na, 0.0,
                      4.0 * ((double)n + (double)p->N));
}

/* ------------------------------------------------------------------ linear_gemm */

typedef struct gemm_vars {
  int x, wp, bias, y;           /* arrays */
  int seg, j0, p0, xoff, wrow0; /* group-level variables */
} gemm_vars;

/* y[p, seg*segF + j] = acc (+ bias) for the item's RB rows. */
static void emit_store(kir_builder *b, const lin_plan *p, const gemm_vars *g, int acc, int tm,
                       int tn)
{
  bool row_guard = p->P % p->TM != 0, col_guard = p->segF % p->TN != 0;
  int jj = kb_let(b, "jj", KT_INT, ADD(V(g->j0), MUL(V(tn), I(p->VL))));
  if (col_guard)
    kb_if(b, LT(V(jj), I(p->segF)));
  int n = kb_let(b, "n", KT_INT, MAD(V(g->seg), p->segF, V(jj)));
  int bv = g->bias >= 0 ? kb_let(b, "bv", KT_FLOAT, kx_vload(b, g->bias, V(n), p->VL)) : -1;
  for (int r = 0; r < p->RB; r++) {
    int row = kb_let(b, "p", KT_INT, ADD(V(g->p0), MAD(V(tm), p->RB, I(r))));
    if (row_guard)
      kb_if(b, LT(V(row), I(p->P)));
    kir_expr *val = LD(acc, I(r));
    kb_store(b, g->y, MAD(V(row), p->N, V(n)), bv >= 0 ? ADD(val, V(bv)) : val);
    if (row_guard)
      kb_end(b);
  }
  if (col_guard)
    kb_end(b);
}

/* One work-item: RB rows x VL columns in registers, x rows and Wp columns (clamped into the
 * segment) from global memory; with VK > 1, x is read VK inputs at a time. */
static void emit_gemm_body(kir_builder *b, const lin_plan *p, const gemm_vars *g)
{
  int it = kb_parfor(b, "it", I(p->items_m * p->items_n));
  int tm = kb_let(b, "tm", KT_INT, DIV(V(it), I(p->items_n)));
  int tn = kb_let(b, "tn", KT_INT, REM(V(it), I(p->items_n)));
  int acc = p->VL > 1 ? kb_private_vec(b, "acc", p->VL, p->RB) : kb_private(b, "acc", KT_FLOAT, p->RB);
  int xrow[16];
  for (int r = 0; r < p->RB; r++) {
    kb_store(b, acc, I(r), kx_splat(b, F(0), p->VL));
    kir_expr *row = MIN(ADD(V(g->p0), MAD(V(tm), p->RB, I(r))), I(p->P - 1));
    xrow[r] = kb_let(b, "xrow", KT_INT, MAD(row, p->C, V(g->xoff)));
  }
  kir_expr *jj = ADD(V(g->j0), MUL(V(tn), I(p->VL)));
  int wcol = kb_let(b, "wcol", KT_INT, ADD(V(g->wrow0), MIN(jj, I(p->segF - p->VL))));
  int VK = p->VK;
  int c = kb_for(b, "c", I(0), I(p->Cs / VK));
  int xv[16];
  for (int r = 0; VK > 1 && r < p->RB; r++)
    xv[r] = kb_let(b, "xv", KT_FLOAT, kx_vload(b, g->x, MAD(V(c), VK, V(xrow[r])), VK));
  for (int kk = 0; kk < VK; kk++) {
    kir_expr *ci = VK > 1 ? MAD(V(c), VK, I(kk)) : V(c);
    int wv = kb_let(b, "wv", KT_FLOAT, kx_vload(b, g->wp, MAD(ci, p->segF, V(wcol)), p->VL));
    for (int r = 0; r < p->RB; r++) {
      kir_expr *xs = VK > 1 ? kx_lane(b, V(xv[r]), kk) : LD(g->x, ADD(V(xrow[r]), V(c)));
      kb_store(b, acc, I(r), ADD(LD(acc, I(r)), MUL(xs, V(wv))));
    }
  }
  kb_end(b);
  emit_store(b, p, g, acc, tm, tn);
  kb_end(b);
}

static int emit_gemm(lower_ctx *lc, const ir_op *op, const lin_plan *p, int bwp)
{
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "gemm"), p->wg, 2,
                      "linear, step 2 of 2: group (row tile, column tile); RB rows x VL columns\n"
                      "per work-item in registers, x and Wp from global memory.");
  gemm_vars g;
  g.x = kb_global(b, "x", KT_FLOAT, p->P * p->C, true);
  g.wp = kb_global(b, "Wp", KT_FLOAT, p->N * p->Cs, true);
  g.bias = p->has_b ? kb_global(b, "bias", KT_FLOAT, p->N, true) : -1;
  g.y = kb_global(b, "y", KT_FLOAT, p->P * p->N, false);
  kir_expr *ct = GID(1);
  g.seg = kb_let(b, "seg", KT_INT, p->tps > 1 ? DIV(ct, I(p->tps)) : ct);
  g.j0 = kb_let(b, "j0", KT_INT, p->tps > 1 ? MUL(REM(GID(1), I(p->tps)), I(p->TN)) : I(0));
  g.p0 = kb_let(b, "p0", KT_INT, MUL(GID(0), I(p->TM)));
  g.xoff = kb_let(b, "xoff", KT_INT, p->S > 1 ? MUL(REM(V(g.seg), I(p->S)), I(p->Cs)) : I(0));
  g.wrow0 = kb_let(b, "wrow0", KT_INT, MUL(V(g.seg), I(p->Cs * p->segF)));
  emit_gemm_body(b, p, &g);
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  kir_arg args[4];
  int na = 0;
  args[na++] = (kir_arg){true, lower_in(lc, op, 0)};
  args[na++] = (kir_arg){true, bwp};
  if (p->has_b)
    args[na++] = (kir_arg){true, lower_in(lc, op, 2)};
  args[na++] = (kir_arg){true, lower_out(lc, op, 0)};
  double P = (double)p->P, N = (double)p->N;
  double flops = 2.0 * P * N * (double)p->Cs + (p->has_b ? P * N : 0.0);
  double bytes = 4.0 * (P * (double)p->C + N * (double)p->Cs + (p->has_b ? N : 0.0) + P * N);
  return layer_launch(lc, kid, layer_ceil_div(p->P, p->TM), p->nseg * p->tps, args, na, flops, bytes);
}

/* ------------------------------------------------------------------ linear_dot */

/* CPUs, narrow segments (gates with a sub-head per channel, the orientation gate): vectors
 * of VC lanes along the inputs instead, in W's own layout (contiguous along c), and one
 * horizontal sum per output. An item: RB rows of one output column; group axis 1 is the
 * column. */
static int emit_dot(lower_ctx *lc, const ir_op *op, const lin_plan *p, int VC)
{
  int RB = p->RB;
  int64_t rows = layer_ceil_div(p->P, RB);
  int64_t m = layer_ceil_div(32768, (int64_t)RB * p->Cs); /* items per group: outweigh its cost */
  m = m < 16 ? 16 : m > 4096 ? 4096 : m;
  int64_t items = rows < m ? rows : m, TM = items * RB;
  int wg = layer_wg(lc, 1);
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "dot"), wg, 2,
                      "linear on a CPU with narrow sub-head segments: group (row tile, output\n"
                      "column); RB rows per work-item, VC lanes along the inputs, then a sum.");
  int x = kb_global(b, "x", KT_FLOAT, p->P * p->C, true);
  int w = kb_global(b, "W", KT_FLOAT, p->N * p->Cs, true);
  int bias = p->has_b ? kb_global(b, "bias", KT_FLOAT, p->N, true) : -1;
  int y = kb_global(b, "y", KT_FLOAT, p->P * p->N, false);
  int n = kb_let(b, "n", KT_INT, GID(1));
  int p0 = kb_let(b, "p0", KT_INT, MUL(GID(0), I(TM)));
  kir_expr *xoff = I(0), *wbase = MUL(V(n), I(p->Cs)); /* gsfc, and gfsc when S or F is 1 */
  if (p->S > 1) {
    int s = kb_let(b, "s", KT_INT, REM(DIV(V(n), I(p->F)), I(p->S)));
    xoff = MUL(V(s), I(p->Cs));
    if (p->order == IR_W_GFSC && p->F > 1) {
      int g = kb_let(b, "g", KT_INT, DIV(V(n), I(p->S * p->F)));
      int f = kb_let(b, "f", KT_INT, REM(V(n), I(p->F)));
      wbase = MUL(MAD(MAD(V(g), p->F, V(f)), p->S, V(s)), I(p->Cs));
    }
  }
  int xo = kb_let(b, "xoff", KT_INT, xoff);
  int wb = kb_let(b, "wbase", KT_INT, wbase);
  int tm = kb_parfor(b, "tm", I(items));
  int acc = kb_private_vec(b, "acc", VC, RB);
  int xrow[16];
  for (int r = 0; r < RB; r++) {
    kb_store(b, acc, I(r), kx_splat(b, F(0), VC));
    kir_expr *row = MIN(ADD(V(p0), MAD(V(tm), RB, I(r))), I(p->P - 1));
    xrow[r] = kb_let(b, "xrow", KT_INT, MAD(row, p->C, V(xo)));
  }
  int cb = kb_for(b, "cb", I(0), I(p->Cs / VC));
  int wv = kb_let(b, "wv", KT_FLOAT, kx_vload(b, w, MAD(V(cb), VC, V(wb)), VC));
  for (int r = 0; r < RB; r++)
    kb_store(b, acc, I(r), ADD(LD(acc, I(r)), MUL(kx_vload(b, x, MAD(V(cb), VC, V(xrow[r])), VC), V(wv))));
  kb_end(b);
  bool row_guard = p->P % TM != 0;
  for (int r = 0; r < RB; r++) {
    int row = kb_let(b, "p", KT_INT, ADD(V(p0), MAD(V(tm), RB, I(r))));
    if (row_guard)
      kb_if(b, LT(V(row), I(p->P)));
    kir_expr *val = MUL(kx_hsum(b, LD(acc, I(r))), F(p->scale));
    if (bias >= 0)
      val = ADD(val, LD(bias, V(n)));
    kb_store(b, y, MAD(V(row), p->N, V(n)), val);
    if (row_guard)
      kb_end(b);
  }
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  kir_arg args[4];
  int na = 0;
  args[na++] = (kir_arg){true, lower_in(lc, op, 0)};
  args[na++] = (kir_arg){true, lower_in(lc, op, 1)};
  if (p->has_b)
    args[na++] = (kir_arg){true, lower_in(lc, op, 2)};
  args[na++] = (kir_arg){true, lower_out(lc, op, 0)};
  double P = (double)p->P, N = (double)p->N;
  double flops = 2.0 * P * N * (double)p->Cs + (p->has_b ? P * N : 0.0);
  double bytes = 4.0 * (P * (double)p->C + N * (double)p->Cs + (p->has_b ? N : 0.0) + P * N);
  return layer_launch(lc, kid, layer_ceil_div(p->P, TM), p->N, args, na, flops, bytes);
}

/* ------------------------------------------------------------------ the op */

int lower_linear(lower_ctx *lc, const ir_op *op)
{
  const ir_linear_attrs *a = &op->attr.linear;
  const ir_shape *xs = &lc->m->tensors[op->in[0]].shape;
  lin_plan p;
  memset(&p, 0, sizeof p);
  p.C = xs->d[xs->rank - 1];
  p.S = a->subheads;
  p.F = a->features;
  p.N = a->groups * a->subheads * a->features;
  p.Cs = p.C / p.S;
  p.P = 1;
  for (int i = 0; i + 1 < xs->rank; i++)
    p.P *= xs->d[i];
  p.order = a->order;
  p.scale = a->scale;
  p.has_b = op->in[2] >= 0;
  p.nseg = p.S > 1 ? a->groups * p.S : 1;
  p.segF = p.S > 1 ? p.F : p.N;
  p.gpu = !lc->opt->device.is_cpu;
  if (p.P == 0 || p.N == 0)
    return XY_OK;
  int by = lower_out(lc, op, 0);
  if (op->in[1] < 0 || p.Cs == 0) /* no weight, or nothing to sum */
    return emit_fill(lc, op, &p, p.has_b ? lower_in(lc, op, 2) : -1, by);
  plan_tiles(lc, &p);
  int VC = layer_lanes(lc->opt->lanes > 0 ? lc->opt->lanes : 16, p.Cs);
  if (!p.gpu && p.VL < 8 && VC >= 8) /* output vectors would be narrow: sum along c */
    return emit_dot(lc, op, &p, VC);
  int bwp = lower_temp(lc, lower_name(lc, op, "Wp"), p.N * p.Cs);
  if (bwp < 0)
    return lc->err->code;
  int rc = emit_pack(lc, op, &p, lower_in(lc, op, 1), bwp);
  return rc ? rc : emit_gemm(lc, op, &p, bwp);
}
