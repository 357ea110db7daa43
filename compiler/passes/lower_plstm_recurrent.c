/*
 * lower_plstm_recurrent.c: pLSTM on a sequence in the recurrent form (spec plstm.md §2.1):
 * one work-item per VL value columns and batch element walks all L positions, holding its
 * columns of the cell state C[:, v, :] in private memory:
 *   h_t = s (R(q_t, M_t, C) + Dir(q_t, D_t, k_t, v_t));  C = T_t C + S_t (k_t v_t).
 * It is the form with the longest dependency chain, kept for tests and benchmarks.
 */
#include <string.h>

#include "lower.h"
#include "lower_expr.h"

int lower_plstm_recurrent(lower_ctx *lc, const ir_op *op)
{
  plstm_dims pd;
  int rc = plstm_scan_dims(lc->m, op, &pd, lc->err);
  if (rc)
    return rc;
  const plstm_dims *d = &pd;
  int64_t B = d->B, L = d->N;
  int64_t szQ = d->DK * d->JQ, szK = d->DK * d->JK, szV = d->DV * d->JV;
  int64_t szS = d->JT * d->JK * d->JV, szT = d->JT * d->JT, szM = d->JO * d->JQ * d->JT;
  int64_t szD = d->JO * d->JQ * d->JK * d->JV, szC = d->DK * d->DV * d->JT;
  int64_t szH = d->DV * d->JO;
  int bC0 = lower_in(lc, op, 7), bCf = lower_out(lc, op, 1);
  int wg = (int)op->sched.wg;
  int VL, VD;
  plstm_lanes(d, &op->sched, &VL, &VD);
  int64_t columns = d->DV / VL;

  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "recurrent"), wg, 2,
                      "pLSTM recurrent form: one work-item per VL value columns (group axis 0)\n"
                      "and batch element (axis 1) walks every position, its state columns in\n"
                      "private memory: h_t = s (R(q_t, M_t, C) + Dir_t); C = T_t C + S_t (k_t v_t).");
  int q = kb_global(b, "q", KT_FLOAT, B * L * szQ, true);
  int k = kb_global(b, "k", KT_FLOAT, B * L * szK, true);
  int v = kb_global(b, "v", KT_FLOAT, B * L * szV, true);
  int S = kb_global(b, "S", KT_FLOAT, B * L * szS, true);
  int T = kb_global(b, "T", KT_FLOAT, B * L * szT, true);
  int M = kb_global(b, "M", KT_FLOAT, B * L * szM, true);
  int D = kb_global(b, "D", KT_FLOAT, B * L * szD, true);
  int C0 = bC0 >= 0 ? kb_global(b, "C_initial", KT_FLOAT, B * szC, true) : -1;
  int out = kb_global(b, "out", KT_FLOAT, B * L * szH, false);
  int Cf = bCf >= 0 ? kb_global(b, "C_final", KT_FLOAT, B * szC, false) : -1;

  int bi = kb_let(b, "b", KT_INT, GID(1));
  int lane = kb_parfor(b, "lane", I(wg));
  int col = kb_let(b, "col", KT_INT, MAD(GID(0), wg, V(lane)));
  kb_if(b, LT(V(col), I(columns)));
  int dv = kb_let(b, "dv", KT_INT, MUL(V(col), I(VL)));
  int C = VL > 1 ? kb_private_vec(b, "C", VL, d->DK * d->JT) : kb_private(b, "C", KT_FLOAT, d->DK * d->JT);
  int Cn = VL > 1 ? kb_private_vec(b, "Cn", VL, d->JT) : kb_private(b, "Cn", KT_FLOAT, d->JT);
  int h = VL > 1 ? kb_private_vec(b, "h", VL, d->JO) : kb_private(b, "h", KT_FLOAT, d->JO);
  int dk = kb_for(b, "dk", I(0), I(d->DK));
  kir_expr *i = jfor(b, "i", d->JT);
  kir_expr *cidx = ADD(MAD(MAD(MAD(V(bi), d->DK, V(dk)), d->DV, V(dv)), d->JT, I(0)), i);
  kb_store(b, C, MAD(V(dk), d->JT, i), C0 >= 0 ? kx_vload(b, C0, cidx, VL) : kx_splat(b, F(0), VL));
  jend(b, d->JT);
  kb_end(b);

  int t = kb_for(b, "t", I(0), I(L));
  int row = kb_let(b, "row", KT_INT, MAD(V(bi), L, V(t)));
  kb_comment(b, "direct term: D_t (q_t . k_t) v_t");
  int qk = emit_qk(b, d, q, k, row, row, VD);
  emit_direct(b, d, D, v, qk, h, row, dv, VL);
  kb_comment(b, "read the state through the mark: sum q M C");
  int dk3 = kb_for(b, "dk", I(0), I(d->DK));
  kir_expr *tt = jfor(b, "tt", d->JT);
  kir_expr *aq = jfor(b, "aq", d->JQ);
  int qv = kb_let(b, "qv", KT_FLOAT, LD(q, ADD(MAD(MAD(V(row), d->DK, V(dk3)), d->JQ, I(0)), aq)));
  kir_expr *o = jfor(b, "o", d->JO);
  kb_store(b, h, o, ADD(LD(h, o), MUL(MUL(V(qv), LD(M, MAD(V(row), szM, MAD(MAD(o, d->JQ, aq), d->JT, tt)))),
                                      LD(C, MAD(V(dk3), d->JT, tt)))));
  jend(b, d->JO);
  jend(b, d->JQ);
  jend(b, d->JT);
  kb_end(b);
  o = jfor(b, "o", d->JO);
  kb_store(b, out, ADD(MAD(MAD(V(row), d->DV, V(dv)), d->JO, I(0)), o),
           MUL(LD(h, o), F(op->qk_scale)));
  jend(b, d->JO);
  kb_comment(b, "update: C = T C + S (k v)");
  int dk4 = kb_for(b, "dk", I(0), I(d->DK));
  i = jfor(b, "i", d->JT);
  int cn = kb_let(b, "cn", KT_FLOAT, kx_splat(b, F(0), VL));
  kir_expr *j = jfor(b, "j", d->JT);
  kb_set(b, cn, ADD(V(cn), MUL(LD(T, MAD(V(row), szT, MAD(i, d->JT, j))), LD(C, MAD(V(dk4), d->JT, j)))));
  jend(b, d->JT);
  kir_expr *bk = jfor(b, "bk", d->JK);
  kir_expr *cv = jfor(b, "cv", d->JV);
  kir_expr *sk = MUL(LD(S, MAD(V(row), szS, MAD(MAD(i, d->JK, bk), d->JV, cv))),
                     LD(k, ADD(MAD(MAD(V(row), d->DK, V(dk4)), d->JK, I(0)), bk)));
  kb_set(b, cn, ADD(V(cn), MUL(sk, kx_vload(b, v, ADD(MAD(MAD(V(row), d->DV, V(dv)), d->JV, I(0)), cv), VL))));
  jend(b, d->JV);
  jend(b, d->JK);
  kb_store(b, Cn, i, V(cn));
  jend(b, d->JT);
  i = jfor(b, "i", d->JT);
  kb_store(b, C, MAD(V(dk4), d->JT, i), LD(Cn, i));
  jend(b, d->JT);
  kb_end(b);
  kb_end(b);

  if (Cf >= 0) {
    int dk5 = kb_for(b, "dk", I(0), I(d->DK));
    i = jfor(b, "i", d->JT);
    kb_store(b, Cf, ADD(MAD(MAD(MAD(V(bi), d->DK, V(dk5)), d->DV, V(dv)), d->JT, I(0)), i),
             LD(C, MAD(V(dk5), d->JT, i)));
    jend(b, d->JT);
    kb_end(b);
  }
  kb_end(b);
  kb_end(b);
  if ((rc = kb_finish(b, lc->err)))
    return rc;

  kir_arg args[11];
  int n = 0;
  for (int s = 0; s < 7; s++)
    args[n++] = (kir_arg){true, lower_in(lc, op, s)};
  if (bC0 >= 0)
    args[n++] = (kir_arg){true, bC0};
  args[n++] = (kir_arg){true, lower_out(lc, op, 0)};
  if (bCf >= 0)
    args[n++] = (kir_arg){true, bCf};
  double BL = (double)B * (double)L;
  double flops = 2.0 * BL * (double)(szC * (d->JT + d->JK * d->JV) + szC * d->JQ * d->JO +
                                     d->DK * d->JQ * d->JK + szD * d->DV);
  double bytes = 4.0 * BL * (double)(szQ + szK + szV + szS + szT + szM + szD + szH);
  int64_t groups[3] = {(columns + wg - 1) / wg, B, 1};
  if (kir_add_launch(lc->k, kid, groups, args, n, flops, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}
