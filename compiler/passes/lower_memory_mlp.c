/*
 * lower_memory_mlp.c: the sequential kernel of memory_scan's chunked form for two-layer
 * MLP memories f(x) = W2 act(W1 x + b1) + b2 (spec tnt.md §2.3, "dual form, 2-layer MLP
 * memory"). Every gradient of a chunk is taken at its anchor, and every layer's gradient is
 * rank-1 per token, so with the same coefficients as the linear memory:
 *
 *   at the anchor:  h_j = act(z_j), z_j = W1 k_j + b1;  e_j = 2c (W2 h_j + b2 - v_j);
 *                   d_j = (W2^T e_j) * act'(z_j)
 *   read:           zq_i = rb_i (W1 x_i + b1) + rf_i (S1 x_i + s1) - sum_j RG_ij (x_i.k_j + 1) d_j
 *                   hq_i = act(zq_i)
 *                   y_i  = rb_i (W2 hq_i + b2) + rf_i (S2 hq_i + s2) - sum_j RG_ij (hq_i.h_j + 1) e_j
 *   update:         W1 -= sum_j ge_j d_j k_j^T, W2 -= sum_j ge_j e_j h_j^T (b1, b2: d_j, e_j),
 *                   after W = b_end W + f_end Mom; Mom = m_end Mom - sum_j se_j (...)
 *
 * (the "+ 1" only with biases). The weights use the oracle's flat layout (W1, W2, b1, b2).
 * An MLP state does not fit local memory at the usual sizes (2 x 64 x 256 floats is 128 KB),
 * so each array lives in local memory only when it fits, in priority order, else in a
 * global scratch row of the group.
 */
#include "lower_expr.h"
#include "lower_memory.h"

typedef struct arr {
  int id;     /* kernel array */
  int base;   /* var: the group's first element */
} arr;

typedef struct mk {
  kir_builder *b;
  const xy_compile_options *opt;
  const chunk_io *io;
  const geometry *g;
  const ir_memory_attrs *a;
  int64_t DK, DV, DH, NW;
  int64_t w2, b1, b2;   /* offsets of W2, b1, b2 in the flat weights */
  int bi, h;
  int k_in, x_in, v_in;
} mk;

static kir_expr *el(mk *k, const arr *x, kir_expr *i)
{
  kir_builder *b = k->b;
  return ADD(V(x->base), i);
}

static kir_expr *ld(mk *k, const arr *x, kir_expr *i)
{
  return kx_load(k->b, x->id, el(k, x, i));
}

static kir_expr *row_at(mk *k, kir_expr *t, int64_t D, kir_expr *c)
{
  return memory_row_at(k->b, k->io, t, D, c);
}

/* sum_c W[wrow + c] x(c) for c < n, the weights at offset woff of array w; x(c) loads
 * from array xa at xbase + c. */
static kir_expr *matvec(mk *k, const arr *w, kir_expr *wrow, int64_t n, int xa, kir_expr *xbase,
                        const char *name)
{
  return memory_dot(k->b, memory_vector_width(k->opt, n), w->id, el(k, w, wrow), xa, xbase, n,
                    name);
}

int memory_mlp_chunks_kernel(lower_ctx *lc, const ir_op *op, const geometry *g,
                             const memory_dims *d, int coef, int xbuf)
{
  const ir_memory_attrs *a = &op->attr.memory;
  const mem_state_layout *lay = &d->state;
  int64_t C = g->C, DK = g->DK, DV = g->DV, DH = a->hidden, NW = g->NW, NCO = g->NCO;
  int64_t NS = lay->count, ER = memory_error_rows(a), groups_n = g->H * g->B * g->shards;
  bool has_mom = lay->mom >= 0, bias = a->bias, intra = memory_reads_within_chunk(a);
  bool tiled = !intra;
  const coef_layout *co = &g->co;

  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "chunks"), (int)op->sched.wg, 2,
                      "memory_scan chunked form, MLP memory: one head (group axis 0) and (batch,\n"
                      "shard) (axis 1) walks its chunks: the anchor's forward and backward on the\n"
                      "keys, the dual-form read layer by layer, the rank-n update.");
  kir_arg args[32];
  chunk_io io;
  int n_args = memory_chunk_io(b, lc, op, g, d, coef, xbuf, &io, args);
  const int *ids = io.ids;
  int cf = io.cf, xq = io.xq, y = io.y, sout = io.sout;

  /* Placement, most used first: the errors and scores, the read's rows, the anchor's
   * activations and backward errors, the weights, the momentum, the accumulators. */
  uint64_t left = local_budget(lc->opt);
  arr E = {-1, -1}, SC = {-1, -1}, OY = {-1, -1}, HQ = {-1, -1}, HK = {-1, -1}, GK = {-1, -1};
  arr W = {-1, -1}, M = {-1, -1}, DW = {-1, -1}, DM = {-1, -1};
  struct {
    const char *name;
    int64_t count;
    bool want;
    arr *x;
    bool local;
  } plan[] = {
    {"e", ER * DV, true, &E, false},       {"sc", C * C, intra, &SC, false},
    {"oy", ER * DV, a->ln_residual, &OY, false}, {"hq", ER * DH, true, &HQ, false},
    {"hk", ER * DH, true, &HK, false},     {"gk", ER * DH, true, &GK, false},
    {"w", NW, true, &W, false},            {"mom", NW, has_mom, &M, false},
    {"dw", NW, tiled, &DW, false},         {"dm", NW, tiled && has_mom, &DM, false},
  };
  for (size_t i = 0; i < XY_ARRAY_LEN(plan); i++) {
    if (!plan[i].want)
      continue;
    uint64_t need = 4u * (uint64_t)plan[i].count; /* local when it fits what is left */
    plan[i].local = need <= left;
    if (plan[i].local)
      left -= need;
    int rc = memory_place(lc, op, b, plan[i].name, plan[i].count, groups_n, plan[i].local, args,
                          &n_args, &plan[i].x->id);
    if (rc)
      return rc;
  }
  mk k = {.b = b, .opt = lc->opt, .g = g, .a = a, .DK = DK, .DV = DV, .DH = DH, .NW = NW, .w2 = DH * DK,
          .b1 = DH * DK + DV * DH, .b2 = DH * DK + DV * DH + DH, .k_in = ids[MS_K],
          .x_in = xq, .v_in = ids[MS_V]};
  memory_chunk_group(b, &io, 1);
  k.io = &io;
  k.h = io.h;
  k.bi = io.bi;
  int s = io.s;
  for (size_t i = 0; i < XY_ARRAY_LEN(plan); i++)
    if (plan[i].want)
      plan[i].x->base = kb_let(b, plan[i].name, KT_INT,
                               plan[i].local ? I(0)
                                             : MUL(V(memory_group_index(b, &io)), I(plan[i].count)));
  int s0, send;
  memory_shard_range(b, g, s, &s0, &send);
  int last_shard = sout >= 0 ? kb_let(b, "last", KT_BOOL, kx_bin(b, KB_EQ, V(send), I(g->L))) : -1;
  /* Counts as variables, so that parfors render as strided loops (see lower_memory_chunks.c). */
  int nw = kb_let(b, "nw", KT_INT, I(NW));
  int winit = ids[MS_WINIT];
  kir_expr *sbase = MUL(MAD(V(k.bi), g->H, V(k.h)), I(NS));
  double two_c = 2.0 * a->loss_scale;

  kb_comment(b, "the shard starts from W_init, Mom = 0");
  int e = kb_parfor(b, "e", V(nw));
  kb_store(b, W.id, el(&k, &W, V(e)), winit >= 0 ? LD(winit, MAD(V(k.h), NW, V(e))) : F(0));
  if (has_mom)
    kb_store(b, M.id, el(&k, &M, V(e)), F(0));
  kb_end(b);

  int t0 = memory_chunk_loop(b, g, s0, send);
  int n = kb_let(b, "n", KT_INT, MIN(I(C), SUB(V(send), V(t0))));
  int cb = kb_let(b, "cb", KT_INT, MUL(MAD(MAD(V(k.bi), g->H, V(k.h)), g->chunks, DIV(V(t0), I(C))),
                                       I(NCO)));
  if (sout >= 0) {
    kb_comment(b, "the final state's anchor is the last chunk's starting W");
    e = kb_parfor(b, "e", V(nw));
    kb_if(b, kx_bin(b, KB_EQ, ADD(V(t0), V(n)), I(g->L)));
    kb_store(b, sout, ADD(sbase, ADD(I(lay->anchor), V(e))), ld(&k, &W, V(e)));
    kb_end(b);
    kb_end(b);
  }
  int t1 = t0, m = n, jo = -1;
  if (tiled) {
    kb_comment(b, "no read looks inside the chunk: a tile of tokens at a time, the update accumulates");
    e = kb_parfor(b, "e", V(nw));
    kb_store(b, DW.id, el(&k, &DW, V(e)), F(0));
    if (has_mom)
      kb_store(b, DM.id, el(&k, &DM, V(e)), F(0));
    kb_end(b);
    int tile = kb_for(b, "tile", I(0), DIV(ADD(V(n), I(ER - 1)), I(ER)));
    jo = kb_let(b, "jo", KT_INT, MUL(V(tile), I(ER)));
    t1 = kb_let(b, "t1", KT_INT, ADD(V(t0), V(jo)));
    m = kb_let(b, "m", KT_INT, MIN(I(ER), SUB(V(n), V(jo))));
  }

  kb_comment(b, "the anchor on the keys: h_j = act(W1 k_j + b1), act'(z_j)");
  int ju = kb_parfor(b, "ju", MUL(V(m), I(DH)));
  int j = kb_let(b, "j", KT_INT, DIV(V(ju), I(DH))), u = kb_let(b, "u", KT_INT, REM(V(ju), I(DH)));
  kir_expr *z = matvec(&k, &W, MUL(V(u), I(DK)), DK, k.k_in, row_at(&k, ADD(V(t1), V(j)), DK, I(0)), "z");
  int zv = kb_let(b, "zv", KT_FLOAT, bias ? ADD(z, ld(&k, &W, ADD(I(k.b1), V(u)))) : z);
  kb_store(b, HK.id, el(&k, &HK, V(ju)), memory_act(b, a->act, V(zv)));
  kb_store(b, GK.id, el(&k, &GK, V(ju)), memory_act_grad(b, a->act, V(zv)));
  kb_end(b);
  kb_comment(b, "errors e_j = 2c (W2 h_j + b2 - v_j)");
  int jr = kb_parfor(b, "jr", MUL(V(m), I(DV)));
  j = kb_let(b, "j", KT_INT, DIV(V(jr), I(DV)));
  int r = kb_let(b, "r", KT_INT, REM(V(jr), I(DV)));
  kir_expr *p = matvec(&k, &W, ADD(I(k.w2), MUL(V(r), I(DH))), DH, HK.id, el(&k, &HK, MUL(V(j), I(DH))), "p");
  int pv = kb_let(b, "pv", KT_FLOAT, bias ? ADD(p, ld(&k, &W, ADD(I(k.b2), V(r)))) : p);
  kb_store(b, E.id, el(&k, &E, V(jr)),
           a->ln_residual ? V(pv)
                          : MUL(F(two_c), SUB(V(pv), LD(k.v_in, row_at(&k, ADD(V(t1), V(j)), DV, V(r))))));
  kb_end(b);
  if (a->ln_residual)
    memory_ln_backward(b, &io, E.id, E.base, V(m), t1);
  kb_comment(b, "backward errors d_j = (W2^T e_j) * act'(z_j), in place of act'");
  ju = kb_parfor(b, "ju", MUL(V(m), I(DH)));
  j = kb_let(b, "j", KT_INT, DIV(V(ju), I(DH)));
  u = kb_let(b, "u", KT_INT, REM(V(ju), I(DH)));
  int back = kb_let(b, "back", KT_FLOAT, F(0));
  r = kb_for(b, "r", I(0), I(DV));
  kb_set(b, back, ADD(V(back), MUL(ld(&k, &W, ADD(I(k.w2), MAD(V(r), DH, V(u)))),
                                   ld(&k, &E, MAD(V(j), DV, V(r))))));
  kb_end(b);
  kb_store(b, GK.id, el(&k, &GK, V(ju)), MUL(V(back), ld(&k, &GK, V(ju))));
  kb_end(b);

  kb_comment(b, "the read, layer by layer");
  if (intra) {
    int ij = kb_parfor(b, "ij", MUL(V(n), V(n)));
    int i = kb_let(b, "i", KT_INT, DIV(V(ij), V(n)));
    j = kb_let(b, "j", KT_INT, REM(V(ij), V(n)));
    int val = kb_let(b, "val", KT_FLOAT, F(0));
    kb_if(b, kx_bin(b, KB_LE, V(j), V(i)));
    kir_expr *qk = memory_dot(b, memory_vector_width(lc->opt, DK), xq,
                              row_at(&k, ADD(V(t0), V(i)), DK, I(0)), k.k_in,
                              row_at(&k, ADD(V(t0), V(j)), DK, I(0)), DK, "qk");
    kb_set(b, val, MUL(bias ? ADD(qk, F(1)) : qk, LD(cf, ADD(V(cb), MAD(V(i), C, V(j))))));
    kb_end(b);
    kb_store(b, SC.id, el(&k, &SC, MAD(V(i), C, V(j))), V(val));
    kb_end(b);
  }
  ju = kb_parfor(b, "iu", MUL(V(m), I(DH)));
  int i = kb_let(b, "i", KT_INT, DIV(V(ju), I(DH)));
  u = kb_let(b, "u", KT_INT, REM(V(ju), I(DH)));
  kir_expr *xrow = row_at(&k, ADD(V(t1), V(i)), DK, I(0));
  kir_expr *wz = matvec(&k, &W, MUL(V(u), I(DK)), DK, xq, xrow, "wz");
  int zq = kb_let(b, "zq", KT_FLOAT, bias ? ADD(wz, ld(&k, &W, ADD(I(k.b1), V(u)))) : wz);
  if (intra) {
    kb_set(b, zq, MUL(LD(cf, ADD(V(cb), ADD(I(co->rb), V(i)))), V(zq)));
    if (has_mom && !a->ttt_lr) {
      kir_expr *mz = matvec(&k, &M, MUL(V(u), I(DK)), DK, xq, row_at(&k, ADD(V(t1), V(i)), DK, I(0)), "mz");
      if (bias)
        mz = ADD(mz, ld(&k, &M, ADD(I(k.b1), V(u))));
      kb_set(b, zq, ADD(V(zq), MUL(LD(cf, ADD(V(cb), ADD(I(co->rf), V(i)))), mz)));
    }
    j = kb_for(b, "j", I(0), ADD(V(i), I(1)));
    kb_set(b, zq, SUB(V(zq), MUL(ld(&k, &SC, MAD(V(i), C, V(j))), ld(&k, &GK, MAD(V(j), DH, V(u))))));
    kb_end(b);
  }
  kb_store(b, HQ.id, el(&k, &HQ, V(ju)), memory_act(b, a->act, V(zq)));
  kb_end(b);
  if (intra) {
    int ij = kb_parfor(b, "ij", MUL(V(n), V(n)));
    i = kb_let(b, "i", KT_INT, DIV(V(ij), V(n)));
    j = kb_let(b, "j", KT_INT, REM(V(ij), V(n)));
    int val = kb_let(b, "val", KT_FLOAT, F(0));
    kb_if(b, kx_bin(b, KB_LE, V(j), V(i)));
    kir_expr *hh = memory_dot(b, memory_vector_width(lc->opt, DH), HQ.id,
                              el(&k, &HQ, MUL(V(i), I(DH))), HK.id, el(&k, &HK, MUL(V(j), I(DH))),
                              DH, "hh");
    kb_set(b, val, MUL(bias ? ADD(hh, F(1)) : hh, LD(cf, ADD(V(cb), MAD(V(i), C, V(j))))));
    kb_end(b);
    kb_store(b, SC.id, el(&k, &SC, MAD(V(i), C, V(j))), V(val));
    kb_end(b);
  }
  jr = kb_parfor(b, "ir", MUL(V(m), I(DV)));
  i = kb_let(b, "i", KT_INT, DIV(V(jr), I(DV)));
  r = kb_let(b, "r", KT_INT, REM(V(jr), I(DV)));
  kir_expr *wy = matvec(&k, &W, ADD(I(k.w2), MUL(V(r), I(DH))), DH, HQ.id, el(&k, &HQ, MUL(V(i), I(DH))), "wy");
  int yv = kb_let(b, "yv", KT_FLOAT, bias ? ADD(wy, ld(&k, &W, ADD(I(k.b2), V(r)))) : wy);
  if (intra) {
    kb_set(b, yv, MUL(LD(cf, ADD(V(cb), ADD(I(co->rb), V(i)))), V(yv)));
    if (has_mom && !a->ttt_lr) {
      kir_expr *my = matvec(&k, &M, ADD(I(k.w2), MUL(V(r), I(DH))), DH, HQ.id, el(&k, &HQ, MUL(V(i), I(DH))), "my");
      if (bias)
        my = ADD(my, ld(&k, &M, ADD(I(k.b2), V(r))));
      kb_set(b, yv, ADD(V(yv), MUL(LD(cf, ADD(V(cb), ADD(I(co->rf), V(i)))), my)));
    }
    j = kb_for(b, "j", I(0), ADD(V(i), I(1)));
    kb_set(b, yv, SUB(V(yv), MUL(ld(&k, &SC, MAD(V(i), C, V(j))), ld(&k, &E, MAD(V(j), DV, V(r))))));
    kb_end(b);
  }
  if (a->ln_residual)
    kb_store(b, OY.id, el(&k, &OY, V(jr)), V(yv));
  else
    kb_store(b, y, row_at(&k, ADD(V(t1), V(i)), DV, V(r)), V(yv));
  kb_end(b);
  if (a->ln_residual)
    memory_ln_read(b, &io, OY.id, OY.base, V(m), t1);

  kb_comment(b, "the update's sums: W1 by d_j k_j^T, W2 by e_j h_j^T, b1 by d_j, b2 by e_j");
  e = kb_parfor(b, "e", V(nw));
  {
    int64_t n1 = DH * DK, n2 = n1 + DV * DH, n3 = n2 + DH;
    kir_expr *in1 = LT(V(e), I(n1)), *in2 = LT(V(e), I(n2)), *in3 = LT(V(e), I(n3));
    /* the error row and input column of element e: (d, k), (e, h), (d, 1) or (e, 1) */
    int ro = kb_let(b, "ro", KT_INT, SEL(in1, DIV(V(e), I(DK)),
                                         SEL(in2, DIV(SUB(V(e), I(n1)), I(DH)),
                                             SEL(in3, SUB(V(e), I(n2)), SUB(V(e), I(n3))))));
    int co_ = kb_let(b, "col", KT_INT, SEL(in1, REM(V(e), I(DK)), SEL(in2, REM(SUB(V(e), I(n1)), I(DH)), I(0))));
    int kind = kb_let(b, "kind", KT_INT, SEL(in1, I(0), SEL(in2, I(1), SEL(in3, I(2), I(3)))));
    int sg = kb_let(b, "sg", KT_FLOAT, F(0));
    int ss = has_mom ? kb_let(b, "ss", KT_FLOAT, F(0)) : -1;
    j = kb_for(b, "j", I(0), V(m));
    kir_expr *is0 = kx_bin(b, KB_EQ, V(kind), I(0)), *is1 = kx_bin(b, KB_EQ, V(kind), I(1));
    kir_expr *is2 = kx_bin(b, KB_EQ, V(kind), I(2));
    kir_expr *errv = SEL(kx_bin(b, KB_OR, is0, is2),
                         ld(&k, &GK, MAD(V(j), DH, SEL(kx_bin(b, KB_OR, kx_bin(b, KB_EQ, V(kind), I(0)), kx_bin(b, KB_EQ, V(kind), I(2))), V(ro), I(0)))),
                         ld(&k, &E, MAD(V(j), DV, SEL(kx_bin(b, KB_OR, kx_bin(b, KB_EQ, V(kind), I(1)), kx_bin(b, KB_EQ, V(kind), I(3))), V(ro), I(0)))));
    kir_expr *inv = SEL(is1, ld(&k, &HK, MAD(V(j), DH, SEL(kx_bin(b, KB_EQ, V(kind), I(1)), V(co_), I(0)))),
                        SEL(kx_bin(b, KB_EQ, V(kind), I(0)),
                            LD(k.k_in, row_at(&k, ADD(V(t1), V(j)), DK, SEL(kx_bin(b, KB_EQ, V(kind), I(0)), V(co_), I(0)))),
                            F(1)));
    int ek = kb_let(b, "ek", KT_FLOAT, MUL(errv, inv));
    kir_expr *jc = jo >= 0 ? ADD(V(jo), V(j)) : V(j);
    kb_set(b, sg, ADD(V(sg), MUL(LD(cf, ADD(V(cb), ADD(I(co->ge), jc))), V(ek))));
    if (ss >= 0)
      kb_set(b, ss, ADD(V(ss), MUL(LD(cf, ADD(V(cb), ADD(I(co->se), jo >= 0 ? ADD(V(jo), V(j)) : V(j)))), V(ek))));
    kb_end(b);
    if (tiled) {
      kb_store(b, DW.id, el(&k, &DW, V(e)), ADD(ld(&k, &DW, V(e)), V(sg)));
      if (ss >= 0)
        kb_store(b, DM.id, el(&k, &DM, V(e)), ADD(ld(&k, &DM, V(e)), V(ss)));
    } else {
      int wv = kb_let(b, "wv", KT_FLOAT, MUL(LD(cf, ADD(V(cb), I(co->end))), ld(&k, &W, V(e))));
      if (has_mom) {
        int mv = kb_let(b, "mv", KT_FLOAT, ld(&k, &M, V(e)));
        if (!a->ttt_lr)
          kb_set(b, wv, ADD(V(wv), MUL(LD(cf, ADD(V(cb), I(co->end + 1))), V(mv))));
        kb_store(b, M.id, el(&k, &M, V(e)), SUB(MUL(LD(cf, ADD(V(cb), I(co->end + 2))), V(mv)), V(ss)));
      }
      kb_store(b, W.id, el(&k, &W, V(e)), SUB(V(wv), V(sg)));
    }
  }
  kb_end(b);
  if (tiled) {
    kb_end(b); /* the tile loop */
    kb_comment(b, "the update: W = b_end W + f_end Mom - DW, Mom = m_end Mom - DM");
    e = kb_parfor(b, "e", V(nw));
    int wv = kb_let(b, "wv", KT_FLOAT, MUL(LD(cf, ADD(V(cb), I(co->end))), ld(&k, &W, V(e))));
    if (has_mom) {
      int mv = kb_let(b, "mv", KT_FLOAT, ld(&k, &M, V(e)));
      kb_set(b, wv, ADD(V(wv), MUL(LD(cf, ADD(V(cb), I(co->end + 1))), V(mv))));
      kb_store(b, M.id, el(&k, &M, V(e)), SUB(MUL(LD(cf, ADD(V(cb), I(co->end + 2))), V(mv)), ld(&k, &DM, V(e))));
    }
    kb_store(b, W.id, el(&k, &W, V(e)), SUB(V(wv), ld(&k, &DW, V(e))));
    kb_end(b);
  }
  kb_end(b); /* the chunk loop */

  if (sout >= 0) {
    kb_comment(b, "the final state: W, Mom and the phase (the anchor and P are written above)");
    e = kb_parfor(b, "e", V(nw));
    kb_if(b, V(last_shard));
    kb_store(b, sout, ADD(sbase, ADD(I(lay->w), V(e))), ld(&k, &W, V(e)));
    if (has_mom)
      kb_store(b, sout, ADD(sbase, ADD(I(lay->mom), V(e))), ld(&k, &M, V(e)));
    kb_if(b, kx_bin(b, KB_EQ, V(e), I(0)));
    int64_t period = a->reset > 0 ? a->reset : a->chunk;
    kb_store(b, sout, ADD(sbase, I(lay->phase)), F((double)(g->L % period)));
    kb_end(b);
    kb_end(b);
    kb_end(b);
  }
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  double BHL = (double)(g->B * g->H * g->L);
  double per = 2.0 * (double)(DH * DK + DV * DH) * (intra && has_mom ? 4 : 3) + 2.0 * (double)NW * (has_mom ? 2 : 1) +
               (intra ? 2.0 * (double)C * (double)(DK + DH + DH + DV) : 0);
  double bytes = 4.0 * BHL * (double)(2 * DK + 2 * DV) + 4.0 * (double)(g->B * g->H * g->chunks * NCO);
  int64_t groups[3] = {g->H, g->B * g->shards, 1};
  if (kir_add_launch(lc->k, kid, groups, args, n_args, BHL * per, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}
