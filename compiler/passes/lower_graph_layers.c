/*
 * lower_graph_layers.c: the ops the graph layers add around their scan (graph_gather,
 * concat, graph_pnorm; ops.def) to kernel IR. All are memory-bound; the graph's index maps
 * become constant int tables, computed here once, at compile time.
 *
 *   graph_gather   one work-item per (batch, output row, head) and VL features: the row's
 *                  offset in x (row * C + slot * F) from a table
 *   concat         one kernel per input, each copying its columns of every row on VL lanes
 *   graph_pnorm    node rows: one work-item per (batch, node, head, row i) on VL lanes of
 *                  j, the rows at or past the node's in-degree (a table) written as zeros;
 *                  arcs: one work-item per (batch, edge, VL channels), walking the arcs into
 *                  the edge twice (the sum of |t|, then the scaled values)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_layer_ops.h"
#include "lower_expr.h"
#include "lower_layers.h"

/* The vector width asked for (--lanes), else the device's (as the other layer ops). */
static int want_lanes(const lower_ctx *lc)
{
  if (lc->opt->lanes > 0)
    return lc->opt->lanes;
  return lc->opt->device.is_cpu ? 16 : 4;
}


/* An int32 array of n entries (at least one); NULL when memory runs out. */
static int32_t *new_i32(int64_t n)
{
  return calloc((size_t)(n > 0 ? n : 1), sizeof(int32_t));
}

/* ------------------------------------------------------------------ graph_gather */

static int lower_gather(lower_ctx *lc, const ir_op *op)
{
  gather_dims g;
  int rc = graph_gather_dims(lc->m, op, &g, lc->err);
  if (rc)
    return rc;
  int64_t n = layer_count_of(lc, op->out[0]), nx = layer_count_of(lc, op->in[0]);
  if (n == 0)
    return XY_OK;
  const ir_dag *d = &lc->m->graphs[op->graph].dag;
  /* off[k] = row * C + col * F: below x's element count, which is bounded for 32 bits */
  int64_t *row = malloc(sizeof *row * (size_t)g.K), *col = malloc(sizeof *col * (size_t)g.K);
  int32_t *off = new_i32(g.K);
  if (!row || !col || !off)
    rc = xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  else
    rc = ir_gather_index(d, &op->attr.gather, row, col, lc->err);
  for (int64_t k = 0; !rc && k < g.K; k++)
    off[k] = (int32_t)(row[k] * g.C + col[k] * g.F);
  int toff = rc ? -1 : lower_const_ints(lc, op, "off", off, g.K);
  free(row);
  free(col);
  free(off);
  if (rc || toff < 0)
    return rc ? rc : lc->err->code;
  int VL = layer_lanes(want_lanes(lc), g.F);
  int64_t FV = g.F / VL, items = n / VL;
  int wg = layer_wg(lc, lower_wg(lc, items));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "gather"), wg, 1,
                      "graph_gather: one work-item per (batch, row, head) and VL features;\n"
                      "the row's offset in x (row * C + slot * F) comes from the table off.");
  int x = kb_global(b, "x", KT_FLOAT, nx, true);
  int tab = kb_global(b, "off", KT_INT, g.K, true);
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, items);
  int rest = kb_let(b, "rest", KT_INT, DIV(V(item), I(FV)));
  int f0 = kb_let(b, "f0", KT_INT, MUL(REM(V(item), I(FV)), I(VL)));
  kir_expr *h = I(0);
  if (g.H > 1) {
    h = REM(V(rest), I(g.H));
    rest = kb_let(b, "bk", KT_INT, DIV(V(rest), I(g.H)));
  }
  int k = kb_let(b, "k", KT_INT, REM(V(rest), I(g.K)));
  int bi = kb_let(b, "b", KT_INT, DIV(V(rest), I(g.K)));
  kir_expr *src = ADD(MAD(V(bi), g.R * g.C, LD(tab, V(k))), MAD(h, g.W * g.F, V(f0)));
  kb_store(b, y, MUL(V(item), I(VL)), kx_vload(b, x, src, VL));
  layer_close_items(b);
  if ((rc = layer_finish(b, lc, kid)))
    return rc;
  kir_arg args[] = {{true, lower_in(lc, op, 0)}, {true, toff}, {true, lower_out(lc, op, 0)}};
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, 3, 0.0,
                      8.0 * (double)n + 4.0 * (double)g.K);
}

/* ------------------------------------------------------------------ concat */

static int64_t gcd64(int64_t a, int64_t b)
{
  while (b) {
    int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/* y[r, off + c] = x[r, c] for every row r and c < C. */
static int emit_concat_part(lower_ctx *lc, const ir_op *op, int slot, int64_t rows, int64_t C,
                            int64_t off, int64_t Cy)
{
  int64_t n = rows * C;
  if (n == 0)
    return XY_OK;
  /* vectors stay inside a row and start where a vector of y may: VL divides C, off, Cy */
  int VL = layer_lanes(want_lanes(lc), gcd64(gcd64(C, off), Cy));
  int64_t CV = C / VL, items = n / VL;
  int wg = layer_wg(lc, lower_wg(lc, items));
  char what[32];
  snprintf(what, sizeof what, "concat%d", slot);
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, what), wg, 1,
                      "concat: one input's columns [off, off + C) of every row of y, VL at a time.");
  int x = kb_global(b, "x", KT_FLOAT, n, true);
  int y = kb_global(b, "y", KT_FLOAT, rows * Cy, false);
  int item = layer_open_items(b, wg, items);
  int r = kb_let(b, "r", KT_INT, DIV(V(item), I(CV)));
  int c = kb_let(b, "c", KT_INT, MUL(REM(V(item), I(CV)), I(VL)));
  kb_store(b, y, MAD(V(r), Cy, ADD(V(c), I(off))), kx_vload(b, x, MUL(V(item), I(VL)), VL));
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[] = {{true, lower_in(lc, op, slot)}, {true, lower_out(lc, op, 0)}};
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, 2, 0.0, 8.0 * (double)n);
}

static int lower_concat(lower_ctx *lc, const ir_op *op)
{
  const ir_shape *ys = &lc->m->tensors[op->out[0]].shape;
  int64_t Cy = ys->d[ys->rank - 1];
  if (Cy == 0 || layer_count_of(lc, op->out[0]) == 0)
    return XY_OK;
  int64_t rows = layer_count_of(lc, op->out[0]) / Cy, off = 0;
  for (int i = 0; i < 3; i++) {
    if (op->in[i] < 0)
      continue;
    const ir_shape *xs = &lc->m->tensors[op->in[i]].shape;
    int64_t C = xs->d[xs->rank - 1];
    int rc = emit_concat_part(lc, op, i, rows, C, off, Cy);
    if (rc)
      return rc;
    off += C;
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ graph_pnorm */

/* Node rows: t[b, n, h, i, :] scaled by 1 / (alpha + sum_j |t|), zero for i >= indeg(n). */
static int lower_pnorm_slots(lower_ctx *lc, const ir_op *op, const ir_dag *d)
{
  const ir_pnorm_attrs *a = &op->attr.pnorm;
  int64_t n = layer_count_of(lc, op->in[0]), N = d->n_nodes, H = a->heads, E = a->slots;
  if (n == 0)
    return XY_OK;
  int64_t *deg = malloc(sizeof *deg * (size_t)(N + 1));
  int32_t *deg32 = new_i32(N);
  if (!deg || !deg32) {
    free(deg);
    free(deg32);
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  }
  ir_dag_in_degrees(d, deg);
  for (int64_t v = 0; v < N; v++)
    deg32[v] = (int32_t)deg[v];
  int tdeg = lower_const_ints(lc, op, "indeg", deg32, N);
  free(deg);
  free(deg32);
  if (tdeg < 0)
    return lc->err->code;
  int VL = layer_lanes(want_lanes(lc), E);
  int64_t rows = n / E, EV = E / VL;
  int wg = layer_wg(lc, lower_wg(lc, rows));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "pnorm_slots"), wg, 1,
                      "graph_pnorm, node rows: one work-item per row i of a node's [slots x slots]\n"
                      "transition: t / (alpha + sum_j |t|), or zeros when i >= indeg(node).");
  int x = kb_global(b, "x", KT_FLOAT, n, true);
  int tab = kb_global(b, "indeg", KT_INT, N, true);
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, rows);
  int base = kb_let(b, "base", KT_INT, MUL(V(item), I(E)));
  int i = kb_let(b, "i", KT_INT, REM(V(item), I(E)));
  int node = kb_let(b, "node", KT_INT, REM(DIV(V(item), I(H * E)), I(N)));
  kb_if(b, LT(V(i), LD(tab, V(node))));
  int acc = kb_let(b, "acc", KT_FLOAT, kx_splat(b, F(0), VL));
  int j = kb_for(b, "j", I(0), I(EV));
  kb_set(b, acc, ADD(V(acc), kx_call(b, KF_FABS, kx_vload(b, x, MAD(V(j), VL, V(base)), VL),
                                     NULL, NULL)));
  kb_end(b);
  int inv = kb_let(b, "inv", KT_FLOAT, DIV(F(1), ADD(F(a->alpha), kx_hsum(b, V(acc)))));
  j = kb_for(b, "j", I(0), I(EV));
  kb_store(b, y, MAD(V(j), VL, V(base)), MUL(kx_vload(b, x, MAD(V(j), VL, V(base)), VL), V(inv)));
  kb_end(b);
  kb_else(b);
  j = kb_for(b, "j", I(0), I(EV));
  kb_store(b, y, MAD(V(j), VL, V(base)), kx_splat(b, F(0), VL));
  kb_end(b);
  kb_end(b);
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[] = {{true, lower_in(lc, op, 0)}, {true, tdeg}, {true, lower_out(lc, op, 0)}};
  return layer_launch(lc, kid, layer_ceil_div(rows, wg), 1, args, 3, 3.0 * (double)n,
                      8.0 * (double)n + 4.0 * (double)N);
}

/* Arcs grouped by their outgoing edge: y = x / (alpha + sum over the group of |x|), per
 * channel. The groups are a CSR of arcs by arc_dst. */
static int lower_pnorm_arcs(lower_ctx *lc, const ir_op *op, const ir_dag *d)
{
  const ir_shape *xs = &lc->m->tensors[op->in[0]].shape;
  int64_t n = layer_count_of(lc, op->in[0]), B = xs->d[0], A = xs->d[1], C = xs->d[2];
  int64_t E = d->n_edges;
  if (n == 0)
    return XY_OK;
  int32_t *start = new_i32(E + 1), *arcs = new_i32(A), *fill = new_i32(E);
  if (!start || !arcs || !fill) {
    free(start);
    free(arcs);
    free(fill);
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  }
  for (int64_t a = 0; a < A; a++)
    start[d->arc_dst[a] + 1]++;
  for (int64_t e = 0; e < E; e++)
    start[e + 1] += start[e];
  for (int64_t a = 0; a < A; a++) {
    int64_t e = d->arc_dst[a];
    arcs[start[e] + fill[e]++] = (int32_t)a;
  }
  int tstart = lower_const_ints(lc, op, "arc_start", start, E + 1);
  int tarcs = tstart < 0 ? -1 : lower_const_ints(lc, op, "arcs", arcs, A);
  free(start);
  free(arcs);
  free(fill);
  if (tstart < 0 || tarcs < 0)
    return lc->err->code;
  int VL = layer_lanes(want_lanes(lc), C);
  int64_t CV = C / VL, items = B * E * CV;
  if (items == 0)
    return XY_OK;
  int wg = layer_wg(lc, lower_wg(lc, items));
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "pnorm_arcs"), wg, 1,
                      "graph_pnorm, arcs: one work-item per (batch, edge, VL channels) walks the\n"
                      "arcs into the edge: t / (alpha + sum of |t| over them).");
  int x = kb_global(b, "x", KT_FLOAT, n, true);
  int ts = kb_global(b, "arc_start", KT_INT, E + 1, true);
  int ta = kb_global(b, "arcs", KT_INT, A, true);
  int y = kb_global(b, "y", KT_FLOAT, n, false);
  int item = layer_open_items(b, wg, items);
  int c0 = kb_let(b, "c0", KT_INT, MUL(REM(V(item), I(CV)), I(VL)));
  int be = kb_let(b, "be", KT_INT, DIV(V(item), I(CV)));
  int e = kb_let(b, "e", KT_INT, REM(V(be), I(E)));
  int base = kb_let(b, "base", KT_INT, ADD(MUL(DIV(V(be), I(E)), I(A * C)), V(c0)));
  int acc = kb_let(b, "acc", KT_FLOAT, kx_splat(b, F(0), VL));
  int j = kb_for(b, "j", LD(ts, V(e)), LD(ts, ADD(V(e), I(1))));
  kir_expr *at = MAD(LD(ta, V(j)), C, V(base));
  kb_set(b, acc, ADD(V(acc), kx_call(b, KF_FABS, kx_vload(b, x, at, VL), NULL, NULL)));
  kb_end(b);
  int inv = kb_let(b, "inv", KT_FLOAT, DIV(F(1), ADD(F(op->attr.pnorm.alpha), V(acc))));
  j = kb_for(b, "j", LD(ts, V(e)), LD(ts, ADD(V(e), I(1))));
  int src = kb_let(b, "src", KT_INT, MAD(LD(ta, V(j)), C, V(base)));
  kb_store(b, y, V(src), MUL(kx_vload(b, x, V(src), VL), V(inv)));
  kb_end(b);
  layer_close_items(b);
  int rc = layer_finish(b, lc, kid);
  if (rc)
    return rc;
  kir_arg args[] = {{true, lower_in(lc, op, 0)}, {true, tstart}, {true, tarcs},
                    {true, lower_out(lc, op, 0)}};
  return layer_launch(lc, kid, layer_ceil_div(items, wg), 1, args, 4, 4.0 * (double)n,
                      12.0 * (double)n + 4.0 * (double)(E + 1 + A));
}

static int lower_pnorm(lower_ctx *lc, const ir_op *op)
{
  const ir_dag *d;
  int rc = ir_op_dag(lc->m, op, &d, lc->err);
  if (rc)
    return rc;
  return op->attr.pnorm.arcs ? lower_pnorm_arcs(lc, op, d) : lower_pnorm_slots(lc, op, d);
}

/* ------------------------------------------------------------------ entry */

int lower_graph_layer_op(lower_ctx *lc, const ir_op *op)
{
  switch (op->code) {
  case IR_OP_GRAPH_GATHER:
    return lower_gather(lc, op);
  case IR_OP_CONCAT:
    return lower_concat(lc, op);
  case IR_OP_GRAPH_PNORM:
    return lower_pnorm(lc, op);
  default:
    break;
  }
  return xy_fail(lc->err, XY_E_INTERNAL, "'%s': %s is not a graph layer op", op->name,
                 ir_op_info_of(op->code)->name);
}
