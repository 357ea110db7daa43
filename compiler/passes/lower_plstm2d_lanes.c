/*
 * lower_plstm2d_lanes.c: path sums from VS sources at once, one per vector lane, when
 * every J = 1 (the gating matrices of the single and tiled forms).
 *
 * It is the program of lower_plstm2d_paths.c with vectors for weights: the transitions and
 * marks of a cell are the same for every source, so each is loaded once and applied to VS
 * lanes, and a work-item fills VS consecutive source columns of G with vector stores. A
 * lane starts with zero weights and receives its sources S_r, S_d where the program passes
 * its own cell: the source's one-hot row of a VS x VS identity (in local memory) times S.
 */
#include "lower_expr.h"
#include "lower_plstm2d.h"

int p2d_lane_identity(kir_builder *b, int VS)
{
  int eye = kb_local(b, "eye", KT_FLOAT, (int64_t)VS * VS);
  int z = kb_parfor(b, "z", I(VS * VS));
  kb_store(b, eye, V(z), SEL(kx_bin(b, KB_EQ, DIV(V(z), I(VS)), REM(V(z), I(VS))), F(1), F(0)));
  kb_end(b);
  return eye;
}

void p2d_emit_lane_paths(const p2d_kern *kc, const p2d_tile *t, const p2d_lanes *ln)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  int VS = ln->VS;
  int wr = kb_private_vec(b, "wr", VS, p->TY);
  int j = kb_for(b, "j", I(0), I(p->TY));
  kb_store(b, wr, V(j), kx_splat(b, F(0), VS));
  kb_end(b);

  int i = kb_for(b, "i", ln->i_lo, V(t->nx));
  int wd = kb_let(b, "wd", KT_FLOAT, kx_splat(b, F(0), VS));
  j = kb_for(b, "j", ln->j_lo, V(t->ny));
  int grow = kb_let(b, "grow", KT_INT, p2d_gate_row(kc, ADD(V(t->x0), V(i)), ADD(V(t->y0), V(j))));
  int cl = kb_let(b, "cl", KT_FLOAT, LD(wr, V(j)));
  int cu = kb_let(b, "cu", KT_FLOAT, V(wd));
  if (ln->mark) {
    int mk = kb_let(b, "mk", KT_FLOAT, ADD(MUL(p2d_gate(kc, P2D_G_ML, V(grow), I(0)), V(cl)),
                                         MUL(p2d_gate(kc, P2D_G_MU, V(grow), I(0)), V(cu))));
    ln->mark(kc, ln->ctx, i, j, mk);
  }
  kb_comment(b, "lane l is the source of this cell when l = its number - n0");
  int l = kb_let(b, "l", KT_INT, SUB(ln->number(kc, ln->ctx, i, j), V(ln->n0)));
  kir_expr *in = kx_bin(b, KB_AND, kx_bin(b, KB_GE, V(l), I(0)), LT(V(l), I(VS)));
  kir_expr *row = kx_bin(b, KB_MAX, I(0), MIN(V(l), I(VS - 1)));
  int src = kb_let(b, "src", KT_FLOAT, MUL(kx_vload(b, ln->eye, MUL(row, I(VS)), VS), SEL(in, F(1), F(0))));
  kir_expr *r = ADD(MUL(p2d_gate(kc, P2D_G_TRL, V(grow), I(0)), V(cl)),
                    MUL(p2d_gate(kc, P2D_G_SR, V(grow), I(0)), V(src)));
  if (kc->g[P2D_G_TRU] >= 0)
    r = ADD(r, MUL(p2d_gate(kc, P2D_G_TRU, V(grow), I(0)), V(cu)));
  kir_expr *d = ADD(MUL(p2d_gate(kc, P2D_G_TDU, V(grow), I(0)), V(cu)),
                    MUL(p2d_gate(kc, P2D_G_SD, V(grow), I(0)), V(src)));
  if (kc->g[P2D_G_TDL] >= 0)
    d = ADD(d, MUL(p2d_gate(kc, P2D_G_TDL, V(grow), I(0)), V(cl)));
  kb_store(b, wr, V(j), r);
  kb_set(b, wd, d);
  kb_end(b);
  kb_end(b);
}
