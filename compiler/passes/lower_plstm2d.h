/*
 * lower_plstm2d.h: what the lowerings of the 2D scans share (lower_plstm2d*.c).
 *
 * Orientation: the fused op runs the recurrence on the grid reversed along x (o & 1) and
 * y (o & 2). Kernels work in the reversed ("flipped") frame, positions (x, y), and index
 * the grid's own tensors at (fx(x), fy(y)): the flips cost no copies. The orientation is
 * either a kernel parameter (one kernel, four launches) or a constant of the kernel.
 *
 * Tiles: the flipped frame is cut into tiles of TX x TY cells (the last ones ragged: their
 * loops stop at the grid's end, which is what identity padding would give). A tile has NB =
 * TY + TX border edges on each side: in-edges b < TY enter from the left at row j = b, b >=
 * TY from the top at column i = b - TY; out-edges a < TY leave to the right, a >= TY to the
 * bottom, likewise.
 */
#ifndef XY_LOWER_PLSTM2D_H
#define XY_LOWER_PLSTM2D_H

#include "lower.h"

/* Input slots of both ops (ops.def order; the fused op stops after D) and output slots. */
enum { P2D_Q, P2D_K, P2D_V, P2D_SR, P2D_SD, P2D_TRL, P2D_TDU, P2D_TDL, P2D_TRU, P2D_ML, P2D_MU,
       P2D_D, P2D_CL, P2D_CT };
enum { P2D_OUT, P2D_CR, P2D_CB };

/* Gate tensors in the order kernels take them; index with P2D_G_*. */
enum { P2D_G_SR, P2D_G_SD, P2D_G_TRL, P2D_G_TDU, P2D_G_TDL, P2D_G_TRU, P2D_G_ML, P2D_G_MU,
       P2D_G_COUNT };

typedef struct p2d_plan {
  plstm2d_dims d;
  plstm_dims pd;        /* the same shapes as a sequence of X*Y cells (emit_qk, emit_direct) */
  int64_t X, Y, P;      /* P = X*Y cells */
  int64_t szQ, szK, szV, szS, szT, szM, szD, szC, szH;
  int64_t KW;           /* JK*JV: columns of a source's weight */
  int64_t MR;           /* JO*JQ: rows of a mark */
  int64_t OV;           /* JO*JV: one pair weight after q.k is folded in */
  int VL, VD, RB;       /* lanes along DV, lanes along DK for q.k, register rows */
  int n_orient;         /* 4 for the fused op, else 1 */
  double scale;
  /* tiles (tiled: chunk x chunk; single: the whole grid) */
  int64_t TX, TY, NX, NY, NT, NB, PT;
  int64_t wg;
} p2d_plan;

int p2d_plan_init(lower_ctx *lc, const ir_op *op, p2d_plan *p);
/* A temporary "<op>_<what>" of the product of n factors, overflow-checked; -1 on error. */
int p2d_temp(lower_ctx *lc, const ir_op *op, const char *what, int n, const int64_t *factors);
/* Every J dimension is 1: states are plain DK x DV matrices (the vector paths). */
bool p2d_all_j_one(const plstm2d_dims *d);
/* The grid as the sequence scans' dims (P = rows x cols cells), for the shared helpers:
 * emit_qk, pick_lanes, chunk_local_bytes. */
void p2d_sequence_dims(const plstm2d_dims *d, plstm_dims *pd);
/* Cuts the grid into tiles of tx x ty cells (clamped to the grid). */
void p2d_plan_tiles(p2d_plan *p, int64_t tx, int64_t ty);

/* A kernel being built: its arrays and group-level variables. */
typedef struct p2d_kern {
  kir_builder *b;
  const p2d_plan *p;
  int q, k, v, D;
  int g[P2D_G_COUNT];   /* gate arrays; -1 for an absent turn transition */
  int bi;               /* batch element */
  int o;                /* orientation variable, or -1 when it is the constant oc */
  int64_t oc;
} p2d_kern;

/* Launch arguments collected while a kernel declares its parameters; int parameters
 * hold a tag (P2D_ARG_*) that each launch replaces with its value. */
enum { P2D_ARG_O = -1, P2D_ARG_DD = -2 };
#define P2D_MAX_ARGS 32
typedef struct p2d_args {
  kir_arg a[P2D_MAX_ARGS];
  int n;
} p2d_args;

int p2d_global(p2d_kern *kc, p2d_args *args, const char *name, int buffer, int64_t count,
               bool read_only);
int p2d_int_param(p2d_kern *kc, p2d_args *args, const char *name, int tag);
/* Declares the gate inputs (and the orientation parameter of a fused op's kernels when
 * runtime_o); with_marks adds M_l, M_u. */
void p2d_declare_gates(lower_ctx *lc, const ir_op *op, p2d_kern *kc, p2d_args *args,
                       bool with_marks);
void p2d_declare_orientation(p2d_kern *kc, p2d_args *args, bool runtime_o);
/* Adds a launch with the tags replaced. */
int p2d_launch(lower_ctx *lc, int kernel, const p2d_args *args, int64_t g0, int64_t g1,
               int64_t o, int64_t dd, double flops, double bytes);

/* Positions: x in the flipped frame -> the grid's own x; rows of q, k, v, D, out and of the
 * gates (with the orientation axis of the fused op). */
kir_expr *p2d_orig_x(const p2d_kern *kc, kir_expr *x);
kir_expr *p2d_orig_y(const p2d_kern *kc, kir_expr *y);
kir_expr *p2d_cell_row(const p2d_kern *kc, kir_expr *x, kir_expr *y);
kir_expr *p2d_gate_row(const p2d_kern *kc, kir_expr *x, kir_expr *y);
/* Element idx of gate g at gate row grow; an absent transition reads as 0. */
kir_expr *p2d_gate(const p2d_kern *kc, int g, kir_expr *grow, kir_expr *idx);
/* A constant-false condition for kernels without runtime orientation. */
kir_expr *p2d_is_first_orientation(const p2d_kern *kc);

/* Per-tile group-level variables (group axis 0 = tile index tx*NY + ty). */
typedef struct p2d_tile {
  int tile, tx, ty, x0, y0, nx, ny;
} p2d_tile;
void p2d_tile_header(p2d_kern *kc, kir_expr *tile_index, p2d_tile *t);

/* ---------------------------------------------------------------- path sums */

/* The dynamic program over a tile from one source (a cell, or an in-edge carrying the
 * identity): the weight of every edge is the sum over paths from the source of the
 * products of transitions (spec §1.3). Weights are JT x W matrices (W = KW for a cell,
 * JT for an edge). Sinks receive them: */
typedef struct p2d_sinks {
  /* At each cell (i, j) the dynamic program reaches: mk[MR x W], the mark applied to
   * the weights entering it (what G[cell <- source] or Mbar[cell <- edge] is). */
  void (*mark)(const p2d_kern *kc, void *ctx, int i, int j, int mk);
  /* At the end of row i (if any cell of it is reached): the weight leaving it downwards,
   * wd[JT x W]; out-edge TY + i. */
  void (*bottom)(const p2d_kern *kc, void *ctx, int i, int wd);
  /* After the last row, for each row j < ny: the weight leaving it to the right, in wr at
   * element offset off; out-edge j. */
  void (*right)(const p2d_kern *kc, void *ctx, int j, int wr, kir_expr *off);
  void *ctx;
} p2d_sinks;

/* Cell source (si, sj) (tile-local variables) or in-edge source bidx (variable: left row
 * bidx < TY, else top column bidx - TY); the tile spans nx x ny valid cells from the
 * flipped position (x0, y0). Only cells the source can reach are visited. */
void p2d_emit_cell_paths(const p2d_kern *kc, const p2d_tile *t, int si, int sj,
                         const p2d_sinks *s);
void p2d_emit_edge_paths(const p2d_kern *kc, const p2d_tile *t, int bidx, const p2d_sinks *s);

/* The same from VS sources at once, one per lane, every J = 1 (lower_plstm2d_lanes.c).
 * The lanes' sources are the cells numbered n0 .. n0 + VS - 1 by number(); the program runs
 * over rows i_lo..nx-1 and columns j_lo..ny-1, which must hold them; mark receives mk, a
 * VS-lane variable: the marks of the lanes' paths into cell (i, j). */
typedef struct p2d_lanes {
  int VS;
  int eye;              /* local VS x VS identity (p2d_lane_identity) */
  int n0;               /* variable */
  kir_expr *i_lo, *j_lo;
  kir_expr *(*number)(const p2d_kern *kc, void *ctx, int i, int j);
  void (*mark)(const p2d_kern *kc, void *ctx, int i, int j, int mk);
  void *ctx;
} p2d_lanes;
/* Declares and fills the identity (a parfor: call it outside others). */
int p2d_lane_identity(kir_builder *b, int VS);
void p2d_emit_lane_paths(const p2d_kern *kc, const p2d_tile *t, const p2d_lanes *ln);

/* ---------------------------------------------------------------- forms */

int lower_plstm2d_recurrent(lower_ctx *lc, const ir_op *op, p2d_plan *p);
int lower_plstm2d_tiled(lower_ctx *lc, const ir_op *op, p2d_plan *p);
int lower_plstm2d_single(lower_ctx *lc, const ir_op *op, p2d_plan *p);

/* Border summaries and the pass over tile diagonals (lower_plstm2d_borders.c; the tiled
 * form, and the single form for final states). tile_state gives per tile the transfer
 * Tbar[tile][a][b] (JT x JT, out-edge a <- in-edge b) and dC[tile][a], the out-edge states
 * from the tile's own sources; tile_scan, once per tile diagonal, computes out = Tbar in +
 * dC from the entry states in (neighbours' out-states, or the initial states), writes the
 * frontiers Rf / Df ([B, Y | X, DK, DV, JT], -1 when not kept) and overwrites dC with the
 * entry states, which the output kernels read. */
typedef struct p2d_borders {
  int Tbar, dC, Rf, Df;       /* buffers */
  int k_state, k_scan;        /* kernels */
  p2d_args a_state, a_scan;
} p2d_borders;
int p2d_border_kernels(lower_ctx *lc, const ir_op *op, const p2d_plan *p, p2d_borders *bb);
/* The launches of orientation o (state, then one scan per tile diagonal). */
int p2d_border_launches(lower_ctx *lc, const p2d_plan *p, const p2d_borders *bb, int64_t o);

/* Local memory of one tile of the tiled form's output kernel. */
uint64_t p2d_tile_local_bytes(const plstm2d_dims *d, int64_t tx, int64_t ty, int lanes);
/* Local memory the single form's output kernel needs with rt target rows and st sources
 * per block (the form shrinks both until they fit, so any grid fits). */
uint64_t p2d_single_local_bytes(const plstm2d_dims *d, int64_t rt, int64_t st);

#endif /* XY_LOWER_PLSTM2D_H */
