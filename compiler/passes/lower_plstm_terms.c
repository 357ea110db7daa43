/* lower_plstm_terms.c: pieces of pLSTM every form emits the same way. */
#include "lower.h"
#include "lower_expr.h"

void plstm_lanes(const plstm_dims *d, const ir_schedule *s, int *VL, int *VD)
{
  bool contiguous = d->JV == 1 && d->JT == 1 && d->JO == 1;
  *VL = contiguous && s->lanes > 1 && d->DV % s->lanes == 0 ? (int)s->lanes : 1;
  *VD = 1;
  if (d->JQ == 1 && d->JK == 1)
    while (*VD < *VL && d->DK % (*VD * 2) == 0)
      *VD *= 2;
}

int emit_qk(kir_builder *b, const plstm_dims *d, int q, int k, int qrow, int krow, int VD)
{
  int qk = kb_private(b, "qk", KT_FLOAT, d->JQ * d->JK);
  kir_expr *aq = jfor(b, "aq", d->JQ);
  kir_expr *bk = jfor(b, "bk", d->JK);
  int dot = kb_let(b, "dot", KT_FLOAT, kx_splat(b, F(0), VD));
  int dk = kb_for(b, "dk", I(0), I(d->DK / VD));
  kir_expr *qi = ADD(MAD(MAD(V(qrow), d->DK, MUL(V(dk), I(VD))), d->JQ, I(0)), aq);
  kir_expr *ki = ADD(MAD(MAD(V(krow), d->DK, MUL(V(dk), I(VD))), d->JK, I(0)), bk);
  kb_set(b, dot, ADD(V(dot), MUL(kx_vload(b, q, qi, VD), kx_vload(b, k, ki, VD))));
  kb_end(b);
  kb_store(b, qk, MAD(aq, d->JK, bk), kx_hsum(b, V(dot)));
  jend(b, d->JK);
  jend(b, d->JQ);
  return qk;
}

void emit_gated_weights(kir_builder *b, const plstm_dims *d, int G, kir_expr *gbase, int qk,
                        int W, kir_expr *wbase)
{
  kir_expr *o = jfor(b, "o", d->JO);
  kir_expr *cv = jfor(b, "cv", d->JV);
  int w = kb_let(b, "w", KT_FLOAT, F(0));
  kir_expr *aq = jfor(b, "aq", d->JQ);
  kir_expr *bk = jfor(b, "bk", d->JK);
  kir_expr *gi = ADD(gbase, MAD(MAD(MAD(o, d->JQ, aq), d->JK, bk), d->JV, cv));
  kb_set(b, w, ADD(V(w), MUL(LD(G, gi), LD(qk, MAD(aq, d->JK, bk)))));
  jend(b, d->JK);
  jend(b, d->JQ);
  kb_store(b, W, ADD(wbase, MAD(o, d->JV, cv)), V(w));
  jend(b, d->JV);
  jend(b, d->JO);
}

void emit_direct(kir_builder *b, const plstm_dims *d, int D, int v, int qk, int h, int row,
                 int dv, int VL)
{
  int64_t szD = d->JO * d->JQ * d->JK * d->JV;
  kir_expr *o = jfor(b, "o", d->JO);
  kb_store(b, h, o, kx_splat(b, F(0), VL));
  kir_expr *aq = jfor(b, "aq", d->JQ);
  kir_expr *bk = jfor(b, "bk", d->JK);
  kir_expr *cv = jfor(b, "cv", d->JV);
  kir_expr *coef = MUL(LD(D, MAD(V(row), szD, MAD(MAD(MAD(o, d->JQ, aq), d->JK, bk), d->JV, cv))),
                       LD(qk, MAD(aq, d->JK, bk)));
  kir_expr *vv = kx_vload(b, v, ADD(MAD(MAD(V(row), d->DV, V(dv)), d->JV, I(0)), cv), VL);
  kb_store(b, h, o, ADD(LD(h, o), MUL(coef, vv)));
  jend(b, d->JV);
  jend(b, d->JK);
  jend(b, d->JQ);
  jend(b, d->JO);
}
