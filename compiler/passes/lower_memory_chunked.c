/*
 * lower_memory_chunked.c: memory_scan in the chunked form (spec tnt.md §2.3, §5.4). Within
 * a chunk every gradient is taken at the chunk's anchor, so the state after token i is
 * b_i W + f_i Mom - sum_{j<=i} G_ij u_j with rank-1 u_j (per layer) and coefficients that
 * depend on the gates only. Three kernels:
 *
 *   coeff   per (head, batch, chunk), all in parallel: the read coefficients rb_i, rf_i,
 *           RG_ij (the rows of b, f, G the read mode looks at) and the end-of-chunk ones
 *           ge_j = G_{n-1,j}, se_j = sigma_{n-1,j}, b_end, f_end, m_end; TTT's
 *           learning-rate matrix is the same shape with RG_ij = eta_ij.
 *   qkproj  (Q-K projection only) per (head, batch, shard): x_i = P_s q_i +
 *           sum_{j<=i} (khat_j . q_i) khat_j, P += Khat^T Khat per chunk: state-independent.
 *   chunks  per (head, batch, shard): the sequential loop over the shard's chunks, in
 *           lower_memory_chunks.c (linear memories) and lower_memory_mlp.c (MLP memories).
 *
 * This file holds the first two, the driver, and what the chunk kernels share. Resets
 * make shards independent, so shards are stacked on the group axis with the batch.
 */

#include "lower_expr.h"
#include "lower_memory.h"

bool memory_reads_within_chunk(const ir_memory_attrs *a)
{
  return a->ttt_lr || a->read != MEM_READ_CHUNK_START;
}

int64_t memory_error_rows(const ir_memory_attrs *a)
{
  return memory_reads_within_chunk(a) || a->chunk < MEMORY_ET ? a->chunk : MEMORY_ET;
}

static coef_layout coef_layout_of(const ir_memory_attrs *a)
{
  int64_t C = a->chunk;
  coef_layout c = {-1, -1, -1, 0, C, 2 * C, 2 * C + 3};
  if (memory_reads_within_chunk(a))
    c = (coef_layout){0, C * C, C * C + C, C * C + 2 * C, C * C + 3 * C, C * C + 4 * C,
                      C * C + 4 * C + 3};
  return c;
}

static uint64_t tile_bytes(const ir_memory_attrs *a, const memory_dims *d)
{
  int64_t C = a->chunk, qt = C < MEMORY_QT ? C : MEMORY_QT;
  int64_t scores = memory_reads_within_chunk(a) ? qt * C : 0;
  return 4u * (uint64_t)(memory_error_rows(a) * d->DV + scores + (a->ln_residual ? qt * d->DV : 0));
}

const char *memory_chunked_unsupported(const xy_compile_options *opt, const ir_op *op,
                                       const memory_dims *d)
{
  const ir_memory_attrs *a = &op->attr.memory;
  if (op->in[MS_STATE] >= 0)
    return "takes no state_in (a streaming call's chunks start at a phase known only at run "
           "time)";
  if (a->chunk > 64 && memory_reads_within_chunk(a))
    return "needs chunk <= 64 unless it reads at chunk starts (a chunk's errors and scores "
           "stay in local memory)";
  if (a->hidden == 0 && tile_bytes(a, d) > local_budget(opt))
    return "needs more local memory for a chunk's errors and scores than the device has";
  return NULL;
}

/* theta, eta or alpha of token t (a variable) in group (b, h). */
static kir_expr *gate_at(kir_builder *b, const geometry *g, int arr, int bi, int h, kir_expr *t)
{
  return LD(arr, MAD(MAD(V(bi), g->L, t), g->H, V(h)));
}

static int coeff_kernel(lower_ctx *lc, const ir_op *op, const geometry *g, int coef)
{
  const ir_memory_attrs *a = &op->attr.memory;
  int64_t C = g->C, NCO = g->NCO;
  bool intra = memory_reads_within_chunk(a);
  int wg = lower_wg(lc, intra ? C : 1);
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "coeff"), wg, 3,
                      "memory_scan chunked form: the gate coefficients of one chunk (group axis 2)\n"
                      "of one head (axis 0) and batch element (axis 1); they do not depend on the\n"
                      "state, so every chunk's are computed at once.");
  kir_arg args[8];
  int n_args = 0;
  int theta = kb_global(b, "theta", KT_FLOAT, g->B * g->L * g->H, true);
  args[n_args++] = (kir_arg){true, lower_in(lc, op, MS_THETA)};
  int eta = -1, alpha = -1, offset = -1;
  if (a->momentum) {
    eta = kb_global(b, "eta", KT_FLOAT, g->B * g->L * g->H, true);
    args[n_args++] = (kir_arg){true, lower_in(lc, op, MS_ETA)};
  }
  if (a->decay) {
    alpha = kb_global(b, "alpha", KT_FLOAT, g->B * g->L * g->H, true);
    args[n_args++] = (kir_arg){true, lower_in(lc, op, MS_ALPHA)};
  }
  if (a->ttt_lr) {
    offset = kb_global(b, "ttt_offset", KT_FLOAT, C, true);
    args[n_args++] = (kir_arg){true, lower_in(lc, op, MS_OFFSET)};
  }
  int out = kb_global(b, "coef", KT_FLOAT, g->B * g->H * g->chunks * NCO, false);
  args[n_args++] = (kir_arg){true, coef};

  int h = kb_let(b, "h", KT_INT, GID(0)), bi = kb_let(b, "b", KT_INT, GID(1));
  int ch = kb_let(b, "ch", KT_INT, GID(2));
  int t0 = kb_let(b, "t0", KT_INT, MUL(V(ch), I(C)));
  int n = kb_let(b, "n", KT_INT, MIN(I(C), SUB(I(g->L), V(t0))));
  int cb = kb_let(b, "cb", KT_INT, MUL(MAD(MAD(V(bi), g->H, V(h)), g->chunks, V(ch)), I(NCO)));
  int64_t RB = g->co.rb, RF = g->co.rf, GE = g->co.ge, SE = g->co.se, END = g->co.end;

  kb_comment(b, "b_i, f_i, m_i: b = (1 - alpha) b, m = eta m, f = (1 - alpha) f + m");
  int one = kb_parfor(b, "one", I(1)); /* 0: its work-item */
  int cb1 = kb_let(b, "cb1", KT_INT, ADD(V(cb), V(one)));
  int bv = kb_let(b, "bv", KT_FLOAT, F(1)), fv = kb_let(b, "fv", KT_FLOAT, F(0));
  int mv = kb_let(b, "mv", KT_FLOAT, F(1));
  int i = kb_for(b, "i", I(0), V(n));
  int t = a->decay || a->momentum ? kb_let(b, "t", KT_INT, ADD(V(t0), V(i))) : -1;
  if (!a->ttt_lr && a->read == MEM_READ_EXCLUSIVE) { /* the row before token i */
    kb_store(b, out, ADD(V(cb1), ADD(I(RB), V(i))), V(bv));
    kb_store(b, out, ADD(V(cb1), ADD(I(RF), V(i))), V(fv));
  }
  int kw = kb_let(b, "kw", KT_FLOAT, a->decay ? SUB(F(1), gate_at(b, g, alpha, bi, h, V(t))) : F(1));
  kb_set(b, mv, a->momentum ? MUL(gate_at(b, g, eta, bi, h, V(t)), V(mv)) : F(0));
  kb_set(b, bv, MUL(V(kw), V(bv)));
  kb_set(b, fv, ADD(MUL(V(kw), V(fv)), V(mv)));
  if (a->ttt_lr) {
    kb_store(b, out, ADD(V(cb1), ADD(I(RB), V(i))), F(1));
    kb_store(b, out, ADD(V(cb1), ADD(I(RF), V(i))), F(0));
  } else if (a->read == MEM_READ_INCLUSIVE) {
    kb_store(b, out, ADD(V(cb1), ADD(I(RB), V(i))), V(bv));
    kb_store(b, out, ADD(V(cb1), ADD(I(RF), V(i))), V(fv));
  }
  kb_end(b);
  kb_store(b, out, ADD(V(cb1), I(END)), a->ttt_lr ? F(1) : V(bv));
  kb_store(b, out, ADD(V(cb1), I(END + 1)), a->ttt_lr ? F(0) : V(fv));
  kb_store(b, out, ADD(V(cb1), I(END + 2)), a->ttt_lr ? F(0) : V(mv));
  if (!intra) {
    /* Only the chunk's last row of G and sigma is needed: backwards, division-free,
     * G_{n-1,j} = theta_j X_j with X_j = P_j + eta_{j+1} X_{j+1}, P_j the product of
     * (1 - alpha) over j+1 .. n-1; sigma_{n-1,j} = theta_j S_j, S_j = eta_{j+1} S_{j+1}. */
    int xv = kb_let(b, "xv", KT_FLOAT, F(1)), sv = kb_let(b, "sv", KT_FLOAT, F(1));
    int pv = kb_let(b, "pv", KT_FLOAT, F(1));
    int jj = kb_for(b, "jj", I(0), V(n));
    int jb = kb_let(b, "jb", KT_INT, SUB(SUB(V(n), I(1)), V(jj)));
    kb_if(b, kx_bin(b, KB_GT, V(jj), I(0)));
    int tn = a->momentum || a->decay ? kb_let(b, "tn", KT_INT, ADD(ADD(V(t0), V(jb)), I(1))) : -1;
    int en = kb_let(b, "en", KT_FLOAT, a->momentum ? gate_at(b, g, eta, bi, h, V(tn)) : F(0));
    kb_set(b, pv, MUL(V(pv), a->decay ? SUB(F(1), gate_at(b, g, alpha, bi, h, V(tn))) : F(1)));
    kb_set(b, xv, ADD(V(pv), MUL(V(en), V(xv))));
    kb_set(b, sv, MUL(V(en), V(sv)));
    kb_end(b);
    int thb = kb_let(b, "thb", KT_FLOAT, gate_at(b, g, theta, bi, h, ADD(V(t0), V(jb))));
    kb_store(b, out, ADD(V(cb1), ADD(I(GE), V(jb))), MUL(V(thb), V(xv)));
    kb_store(b, out, ADD(V(cb1), ADD(I(SE), V(jb))), MUL(V(thb), V(sv)));
    kb_end(b);
  }
  kb_end(b);

  if (intra) {
    kb_comment(b, a->ttt_lr ? "TTT: RG_ij = base max(0, 1/(i+1) + offset_i) theta_j / div"
                            : "column j of sigma and G: sigma = eta sigma, G = (1 - alpha) G + sigma");
    int j = kb_parfor(b, "j", I(C));
    kb_if(b, LT(V(j), V(n)));
    int th = kb_let(b, "th", KT_FLOAT, gate_at(b, g, theta, bi, h, ADD(V(t0), V(j))));
    if (a->ttt_lr) {
      int lr = kb_let(b, "lr", KT_FLOAT, F(0));
      i = kb_for(b, "i", V(j), V(n));
      kir_expr *fi = kx_un(b, KU_TO_FLOAT, ADD(V(i), I(1)));
      kb_set(b, lr, MUL(F(a->ttt_base / a->ttt_div),
                        kx_bin(b, KB_MAX, ADD(DIV(F(1), fi), LD(offset, V(i))), F(0))));
      kb_store(b, out, ADD(V(cb), MAD(V(i), C, V(j))), MUL(V(lr), V(th)));
      kb_end(b);
      kb_store(b, out, ADD(V(cb), ADD(I(GE), V(j))), MUL(V(lr), V(th)));
      kb_store(b, out, ADD(V(cb), ADD(I(SE), V(j))), kx_un(b, KU_NEG, V(th)));
    } else {
      int sg = kb_let(b, "sg", KT_FLOAT, V(th)), gg = kb_let(b, "gg", KT_FLOAT, V(th));
      if (a->read == MEM_READ_EXCLUSIVE) /* token j reads the state before its own step */
        kb_store(b, out, ADD(V(cb), MAD(V(j), C, V(j))), F(0));
      i = kb_for(b, "i", V(j), V(n));
      kb_if(b, kx_bin(b, KB_GT, V(i), V(j)));
      t = a->momentum || a->decay ? kb_let(b, "t", KT_INT, ADD(V(t0), V(i))) : -1;
      kb_set(b, sg, a->momentum ? MUL(gate_at(b, g, eta, bi, h, V(t)), V(sg)) : F(0));
      kb_set(b, gg, ADD(MUL(a->decay ? SUB(F(1), gate_at(b, g, alpha, bi, h, V(t))) : F(1), V(gg)),
                        V(sg)));
      kb_end(b);
      if (a->read == MEM_READ_INCLUSIVE) {
        kb_store(b, out, ADD(V(cb), MAD(V(i), C, V(j))), V(gg));
      } else if (a->read == MEM_READ_EXCLUSIVE) {
        kb_if(b, LT(ADD(V(i), I(1)), V(n)));
        kb_store(b, out, ADD(V(cb), MAD(ADD(V(i), I(1)), C, V(j))), V(gg));
        kb_end(b);
      }
      kb_end(b);
      kb_store(b, out, ADD(V(cb), ADD(I(GE), V(j))), V(gg));
      kb_store(b, out, ADD(V(cb), ADD(I(SE), V(j))), V(sg));
    }
    kb_end(b);
    kb_end(b);
  }
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  int64_t groups[3] = {g->H, g->B, g->chunks};
  double bytes = 4.0 * (double)(g->B * g->H) * (double)(g->chunks * NCO + 3 * g->L);
  double flops = 2.0 * (double)(g->B * g->H * g->L) * (double)(intra ? C : 3);
  if (kir_add_launch(lc->k, kid, groups, args, n_args, flops, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}

/* Token range of the group's shard: s0 (var) and its end se (var). */
void memory_shard_range(kir_builder *b, const geometry *g, int s, int *s0, int *send)
{
  *s0 = kb_let(b, "s0", KT_INT, MUL(V(s), I(g->shard_len)));
  *send = kb_let(b, "s_end", KT_INT, MIN(I(g->L), ADD(V(*s0), I(g->shard_len))));
}

/* Opens the loop over the shard's chunks (its bound is exact: barriers stay out of
 * conditionals, which PoCL 3.1 miscompiles inside loops); returns the var holding the
 * chunk's first token. Close with kb_end. */
int memory_chunk_loop(kir_builder *b, const geometry *g, int s0, int send)
{
  kir_expr *count = DIV(ADD(SUB(V(send), V(s0)), I(g->C - 1)), I(g->C));
  int ci = kb_for(b, "ci", I(0), count);
  return kb_let(b, "t0", KT_INT, MAD(V(ci), g->C, V(s0)));
}

static int qkproj_kernel(lower_ctx *lc, const ir_op *op, const geometry *g, int xbuf)
{
  const ir_memory_attrs *a = &op->attr.memory;
  const mem_state_layout *lay = NULL;
  int64_t C = g->C, DK = g->DK;
  int wg = lower_wg(lc, DK * DK);
  int64_t QB = C < MEMORY_QT ? C : MEMORY_QT;
  /* P and the scores in local memory; the normalised keys too when they fit, else in a
   * global scratch row per group (a 64-token chunk on a 32 KiB device) */
  uint64_t need = 4u * (uint64_t)(DK * (DK + 1) + QB * C + C);
  if (need > local_budget(lc->opt))
    return local_overflow(lc->err, lc->opt, op->name, "the Q-K projection", need, NULL);
  bool kh_local = need + 4u * (uint64_t)(C * (DK + 1)) <= local_budget(lc->opt);
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "qkproj"), wg, 2,
                      "memory_scan chunked form: the Q-K projection x = P q of one head (group\n"
                      "axis 0) and (batch, shard) (axis 1), chunk by chunk in its linear-attention\n"
                      "form: x_i = P q_i + sum_{j<=i} (khat_j . q_i) khat_j, then P += Khat^T Khat.");
  int64_t rows = g->B * g->L * g->H;
  int q = kb_global(b, "q", KT_FLOAT, rows * DK, true);
  int k = kb_global(b, "k", KT_FLOAT, rows * DK, true);
  int x = kb_global(b, "x", KT_FLOAT, rows * DK, false);
  kir_arg args[5] = {{true, lower_in(lc, op, MS_Q)}, {true, lower_in(lc, op, MS_K)}, {true, xbuf}};
  int n_args = 3;
  int sout = -1;
  memory_dims md;
  mem_desc desc;
  if (lower_out(lc, op, MS_STATE_OUT) >= 0) {
    int rc = memory_dims_of(lc->m, op, &md, &desc, lc->err);
    if (rc)
      return rc;
    lay = &md.state;
    sout = kb_global(b, "state_out", KT_FLOAT, g->B * g->H * lay->count, false);
    args[n_args++] = (kir_arg){true, lower_out(lc, op, MS_STATE_OUT)};
  }
  /* Rows of P and Khat padded by one on GPUs (work-items read different rows at the same
   * column), dot products on VC-lane vectors on CPUs. */
  int64_t VC = memory_vector_width(lc->opt, DK), KS = VC > 1 ? DK : DK + 1;
  int P = kb_local(b, "p", KT_FLOAT, DK * KS), KH;
  int64_t n_groups = g->H * g->B * g->shards;
  if (kh_local) {
    KH = kb_local(b, "khat", KT_FLOAT, C * KS);
  } else {
    int buf = lower_temp(lc, lower_name(lc, op, "khat"), n_groups * C * KS);
    if (buf < 0)
      return XY_E_LIMIT;
    KH = kb_global(b, "khat", KT_FLOAT, n_groups * C * KS, false);
    args[n_args++] = (kir_arg){true, buf};
  }
  int KQ = kb_local(b, "kq", KT_FLOAT, QB * C), NR = kb_local(b, "nrm", KT_FLOAT, C);
  chunk_io gr = {.g = g}; /* only the group's indices */
  memory_chunk_group(b, &gr, 1);
  int h = gr.h, bi = gr.bi, s = gr.s;
  int khb = kb_let(b, "khb", KT_INT, kh_local ? I(0) : MUL(MAD(V(h), g->B * g->shards, GID(1)), I(C * KS)));
  int s0, send;
  memory_shard_range(b, g, s, &s0, &send);
  int t0 = memory_chunk_loop(b, g, s0, send);
  int n = kb_let(b, "n", KT_INT, MIN(I(C), SUB(V(send), V(t0))));
  int dkk = kb_let(b, "dkk", KT_INT, I(DK * KS)); /* counts as variables: strided parfors */
  int e = kb_parfor(b, "e", V(dkk)); /* P = 0 at every chunk, or at the shard's first */
  if (a->qkproj == MEM_QK_SHARD)
    kb_if(b, kx_bin(b, KB_EQ, V(t0), V(s0)));
  kb_store(b, P, V(e), F(0));
  if (a->qkproj == MEM_QK_SHARD)
    kb_end(b);
  kb_end(b);
  kb_comment(b, "khat_j = k_j / |k_j| (a zero key stays zero)");
  int j = kb_parfor(b, "j", V(n));
  kir_expr *kbase = MUL(MAD(MAD(V(bi), g->L, ADD(V(t0), V(j))), g->H, V(h)), I(DK));
  int kk = kb_let(b, "kk", KT_FLOAT, memory_dot(b, VC, k, kbase, k, MUL(MAD(MAD(V(bi), g->L, ADD(V(t0), V(j))), g->H, V(h)), I(DK)), DK, "kk"));
  kb_store(b, NR, V(j), SEL(kx_bin(b, KB_GT, V(kk), F(0)),
                            DIV(F(1), kx_call(b, KF_SQRT, V(kk), NULL, NULL)), F(0)));
  kb_end(b);
  int jc = kb_parfor(b, "jc", MUL(V(n), I(DK)));
  j = kb_let(b, "j", KT_INT, DIV(V(jc), I(DK)));
  int c = kb_let(b, "c", KT_INT, REM(V(jc), I(DK)));
  int row = kb_let(b, "row", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t0), V(j))), g->H, V(h)));
  kb_store(b, KH, ADD(V(khb), MAD(V(j), KS, V(c))), MUL(LD(k, MAD(V(row), DK, V(c))), LD(NR, V(j))));
  kb_end(b);
  /* query rows a block of QB at a time: the scores khat_j . q_i stay [QB][C] */
  int i0 = kb_for(b, "i0", I(0), DIV(ADD(V(n), I(QB - 1)), I(QB)));
  int ib = kb_let(b, "ib", KT_INT, MUL(V(i0), I(QB)));
  int nq = kb_let(b, "nq", KT_INT, MIN(I(QB), SUB(V(n), V(ib))));
  int ij = kb_parfor(b, "ij", MUL(V(nq), V(n)));
  int ii = kb_let(b, "ii", KT_INT, DIV(V(ij), V(n)));
  j = kb_let(b, "j", KT_INT, REM(V(ij), V(n)));
  int qrow = kb_let(b, "qrow", KT_INT, MAD(MAD(V(bi), g->L, ADD(ADD(V(t0), V(ib)), V(ii))), g->H, V(h)));
  kb_store(b, KQ, MAD(V(ii), C, V(j)),
           memory_dot(b, VC, KH, ADD(V(khb), MUL(V(j), I(KS))), q, MUL(V(qrow), I(DK)), DK, "acc"));
  kb_end(b);
  int ir = kb_parfor(b, "ir", MUL(V(nq), I(DK)));
  ii = kb_let(b, "ii", KT_INT, DIV(V(ir), I(DK)));
  int i = kb_let(b, "i", KT_INT, ADD(V(ib), V(ii)));
  int r = kb_let(b, "r", KT_INT, REM(V(ir), I(DK)));
  qrow = kb_let(b, "qrow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t0), V(i))), g->H, V(h)));
  int acc = kb_let(b, "acc", KT_FLOAT,
                   memory_dot(b, VC, P, MUL(V(r), I(KS)), q, MUL(V(qrow), I(DK)), DK, "pq"));
  j = kb_for(b, "j", I(0), ADD(V(i), I(1)));
  kb_set(b, acc, ADD(V(acc), MUL(LD(KQ, MAD(V(ii), C, V(j))), LD(KH, ADD(V(khb), MAD(V(j), KS, V(r)))))));
  kb_end(b);
  kb_store(b, x, MAD(V(qrow), DK, V(r)), V(acc));
  kb_end(b);
  kb_end(b);
  kb_comment(b, "P += Khat^T Khat, VC columns per work-item");
  int dkv = kb_let(b, "dkv", KT_INT, I(DK * DK / VC));
  e = kb_parfor(b, "e", V(dkv));
  r = kb_let(b, "r", KT_INT, DIV(V(e), I(DK / VC)));
  c = kb_let(b, "c", KT_INT, MUL(REM(V(e), I(DK / VC)), I(VC)));
  kir_expr *pi = MAD(V(r), KS, V(c));
  acc = kb_let(b, "acc", KT_FLOAT, kx_vload(b, P, pi, (int)VC));
  j = kb_for(b, "j", I(0), V(n));
  kb_set(b, acc, ADD(V(acc), MUL(kx_splat(b, LD(KH, ADD(V(khb), MAD(V(j), KS, V(r)))), (int)VC),
                                 kx_vload(b, KH, ADD(V(khb), MAD(V(j), KS, V(c))), (int)VC))));
  kb_end(b);
  kb_store(b, P, MAD(V(r), KS, V(c)), V(acc));
  kb_end(b);
  kb_end(b);
  if (sout >= 0) {
    kb_comment(b, "the last shard's P is the final state's");
    e = kb_parfor(b, "e", I(DK * DK));
    kb_if(b, kx_bin(b, KB_EQ, V(send), I(g->L)));
    kb_store(b, sout, ADD(MUL(MAD(V(bi), g->H, V(h)), I(lay->count)), ADD(I(lay->p), V(e))),
             LD(P, MAD(DIV(V(e), I(DK)), KS, REM(V(e), I(DK)))));
    kb_end(b);
    kb_end(b);
  }
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  int64_t groups[3] = {g->H, g->B * g->shards, 1};
  double flops = 2.0 * (double)rows * (double)(2 * DK * DK + C * DK);
  if (kir_add_launch(lc->k, kid, groups, args, n_args, flops, 12.0 * (double)(rows * DK)) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}

int memory_chunk_io(kir_builder *b, lower_ctx *lc, const ir_op *op, const geometry *g,
                    const memory_dims *d, int coef, int xbuf, chunk_io *io, kir_arg *args)
{
  /* the gates and TTT's offsets reach the chunk kernels through the coefficients, and q
   * through the projection when there is one */
  unsigned skip = 1u << MS_THETA | 1u << MS_ETA | 1u << MS_ALPHA | 1u << MS_OFFSET |
                  (xbuf >= 0 ? 1u << MS_Q : 0u);
  int n = memory_inputs(b, lc, op, d, skip, io->ids, args);
  io->a = &op->attr.memory;
  io->g = g;
  io->cf = kb_global(b, "coef", KT_FLOAT, g->B * g->H * g->chunks * g->NCO, true);
  args[n++] = (kir_arg){true, coef};
  io->xq = io->ids[MS_Q];
  if (xbuf >= 0) {
    io->xq = kb_global(b, "x", KT_FLOAT, g->B * g->L * g->H * g->DK, true);
    args[n++] = (kir_arg){true, xbuf};
  }
  io->y = kb_global(b, "y", KT_FLOAT, g->B * g->L * g->H * g->DV, false);
  args[n++] = (kir_arg){true, lower_out(lc, op, MS_Y)};
  io->sout = -1;
  if (lower_out(lc, op, MS_STATE_OUT) >= 0) {
    io->sout = kb_global(b, "state_out", KT_FLOAT, g->B * g->H * d->state.count, false);
    args[n++] = (kir_arg){true, lower_out(lc, op, MS_STATE_OUT)};
  }
  return n;
}

void memory_chunk_group(kir_builder *b, chunk_io *io, int64_t slices)
{
  const geometry *g = io->g;
  io->h = kb_let(b, "h", KT_INT, DIV(GID(0), I(slices)));
  io->rs = slices > 1 ? kb_let(b, "rs", KT_INT, REM(GID(0), I(slices))) : -1;
  io->bi = kb_let(b, "b", KT_INT, DIV(GID(1), I(g->shards)));
  io->s = kb_let(b, "s", KT_INT, REM(GID(1), I(g->shards)));
  io->slices = slices;
  io->grp = -1;
}

int memory_group_index(kir_builder *b, chunk_io *io)
{
  const geometry *g = io->g;
  if (io->grp < 0)
    io->grp = kb_let(b, "grp", KT_INT, MAD(MAD(MAD(V(io->bi), g->H, V(io->h)), g->shards, V(io->s)),
                                            io->slices, io->rs >= 0 ? V(io->rs) : I(0)));
  return io->grp;
}

kir_expr *memory_row_at(kir_builder *b, const chunk_io *io, kir_expr *t, int64_t D, kir_expr *c)
{
  const geometry *g = io->g;
  return ADD(MUL(MAD(MAD(V(io->bi), g->L, t), g->H, V(io->h)), I(D)), c);
}

kir_expr *memory_dot(kir_builder *b, int64_t VC, int arr_a, kir_expr *base_a, int arr_b,
                     kir_expr *base_b, int64_t n, const char *name)
{
  int acc = kb_let(b, name, KT_FLOAT, kx_splat(b, F(0), (int)VC));
  int c = kb_for(b, "c", I(0), I(n / VC));
  kir_expr *c0 = MUL(V(c), I(VC));
  kb_set(b, acc, ADD(V(acc), MUL(kx_vload(b, arr_a, ADD(base_a, c0), (int)VC),
                                 kx_vload(b, arr_b, ADD(base_b, MUL(V(c), I(VC))), (int)VC))));
  kb_end(b);
  return VC > 1 ? kx_hsum(b, V(acc)) : V(acc);
}

int64_t memory_vector_width(const xy_compile_options *opt, int64_t n)
{
  int64_t VC = 1;
  if (opt->device.is_cpu)
    for (VC = opt->lanes > 0 ? opt->lanes : 16; VC > 1 && n % VC != 0; VC /= 2)
      ;
  return VC;
}

int memory_place(lower_ctx *lc, const ir_op *op, kir_builder *b, const char *name, int64_t count,
                 int64_t groups, bool local, kir_arg *args, int *n_args, int *arr)
{
  if (local) {
    *arr = kb_local(b, name, KT_FLOAT, count);
    return XY_OK;
  }
  int buf = lower_temp(lc, lower_name(lc, op, name), groups * count);
  if (buf < 0)
    return XY_E_LIMIT;
  *arr = kb_global(b, name, KT_FLOAT, groups * count, false);
  args[(*n_args)++] = (kir_arg){true, buf};
  return XY_OK;
}

/* Element i of array arr at its base var (-1: none). */
static kir_expr *elem(kir_builder *b, int base, kir_expr *i)
{
  return base >= 0 ? ADD(V(base), i) : i;
}

/* Mean and sd = sqrt(var + eps) of row j (a var) of O [rows][DV]: two vars. */
static void row_stats(kir_builder *b, const chunk_io *io, int O, int base, int j, int *mean, int *sd)
{
  int64_t DV = io->g->DV;
  *mean = kb_let(b, "mean", KT_FLOAT, F(0));
  int var = kb_let(b, "var", KT_FLOAT, F(0));
  int r = kb_for(b, "r", I(0), I(DV));
  kb_set(b, *mean, ADD(V(*mean), LD(O, elem(b, base, MAD(V(j), DV, V(r))))));
  kb_end(b);
  kb_set(b, *mean, DIV(V(*mean), F(DV)));
  r = kb_for(b, "r", I(0), I(DV));
  int dl = kb_let(b, "dl", KT_FLOAT, SUB(LD(O, elem(b, base, MAD(V(j), DV, V(r)))), V(*mean)));
  kb_set(b, var, ADD(V(var), MUL(V(dl), V(dl))));
  kb_end(b);
  *sd = kb_let(b, "sd", KT_FLOAT,
               kx_call(b, KF_SQRT, ADD(DIV(V(var), F(DV)), F(io->a->ln_eps)), NULL, NULL));
}

void memory_ln_backward(kir_builder *b, const chunk_io *io, int O, int base, kir_expr *rows,
                        int t1)
{
  int64_t DV = io->g->DV, DK = io->g->DK;
  double two_c = 2.0 * io->a->loss_scale;
  int gamma = io->ids[MS_GAMMA], beta = io->ids[MS_BETA];
  int j = kb_parfor(b, "j", rows), mean, sd;
  row_stats(b, io, O, base, j, &mean, &sd);
  int su = kb_let(b, "su", KT_FLOAT, F(0)), sux = kb_let(b, "sux", KT_FLOAT, F(0));
  for (int pass = 0; pass < 2; pass++) {
    int r = kb_for(b, "r", I(0), I(DV));
    kir_expr *oi = elem(b, base, MAD(V(j), DV, V(r)));
    int xh = kb_let(b, "xh", KT_FLOAT, DIV(SUB(LD(O, oi), V(mean)), V(sd)));
    int gm = kb_let(b, "gm", KT_FLOAT, LD(gamma, MAD(V(io->h), DV, V(r))));
    kir_expr *kv = LD(io->ids[MS_K], memory_row_at(b, io, ADD(V(t1), V(j)), DK, V(r)));
    kir_expr *vv = LD(io->ids[MS_V], memory_row_at(b, io, ADD(V(t1), V(j)), DV, V(r)));
    int u = kb_let(b, "u", KT_FLOAT,
                   MUL(MUL(F(two_c), SUB(ADD(ADD(kv, MUL(V(gm), V(xh))),
                                             LD(beta, MAD(V(io->h), DV, V(r)))), vv)), V(gm)));
    if (pass == 0) {
      kb_set(b, su, ADD(V(su), V(u)));
      kb_set(b, sux, ADD(V(sux), MUL(V(u), V(xh))));
    } else {
      kb_store(b, O, elem(b, base, MAD(V(j), DV, V(r))),
               DIV(SUB(SUB(MUL(F(DV), V(u)), V(su)), MUL(V(xh), V(sux))), MUL(F(DV), V(sd))));
    }
    kb_end(b);
  }
  kb_end(b);
}

void memory_ln_read(kir_builder *b, const chunk_io *io, int O, int base, kir_expr *rows, int tq)
{
  int64_t DV = io->g->DV, DK = io->g->DK;
  int gamma = io->ids[MS_GAMMA], beta = io->ids[MS_BETA];
  int i = kb_parfor(b, "i", rows), mean, sd;
  row_stats(b, io, O, base, i, &mean, &sd);
  int r = kb_for(b, "r", I(0), I(DV));
  kir_expr *xh = DIV(SUB(LD(O, elem(b, base, MAD(V(i), DV, V(r)))), V(mean)), V(sd));
  kir_expr *x = LD(io->xq, memory_row_at(b, io, ADD(V(tq), V(i)), DK, V(r)));
  kb_store(b, io->y, memory_row_at(b, io, ADD(V(tq), V(i)), DV, V(r)),
           ADD(ADD(x, MUL(LD(gamma, MAD(V(io->h), DV, V(r))), xh)), LD(beta, MAD(V(io->h), DV, V(r)))));
  kb_end(b);
  kb_end(b);
}

int lower_memory_chunked(lower_ctx *lc, const ir_op *op)
{
  memory_dims md;
  mem_desc desc;
  int rc = memory_dims_of(lc->m, op, &md, &desc, lc->err);
  if (rc)
    return rc;
  const char *why = memory_chunked_unsupported(lc->opt, op, &md);
  if (why)
    return xy_fail(lc->err, XY_E_USAGE, "memory_scan '%s': the chunkwise form %s", op->name, why);
  const ir_memory_attrs *a = &op->attr.memory;
  geometry g = {.B = md.B, .L = md.L, .H = md.H, .DK = md.DK, .DV = md.DV, .C = a->chunk,
                .NW = md.NW};
  g.shard_len = a->reset > 0 && a->reset < md.L ? a->reset : md.L;
  g.shards = (md.L + g.shard_len - 1) / g.shard_len;
  g.chunks = (md.L + g.C - 1) / g.C;
  g.co = coef_layout_of(a);
  g.NCO = g.co.count;
  int64_t ncoef;
  if (__builtin_mul_overflow(md.B * md.H * g.chunks, g.NCO, &ncoef))
    return xy_fail(lc->err, XY_E_LIMIT, "memory_scan '%s': coefficients overflow", op->name);
  int coef = lower_temp(lc, lower_name(lc, op, "coef"), ncoef);
  if (coef < 0)
    return XY_E_LIMIT;
  int xbuf = -1;
  if (a->qkproj != MEM_QK_NONE &&
      (xbuf = lower_temp(lc, lower_name(lc, op, "x"), md.B * md.L * md.H * md.DK)) < 0)
    return XY_E_LIMIT;
  if ((rc = coeff_kernel(lc, op, &g, coef)))
    return rc;
  if (xbuf >= 0 && (rc = qkproj_kernel(lc, op, &g, xbuf)))
    return rc;
  if (a->hidden > 0)
    return memory_mlp_chunks_kernel(lc, op, &g, &md, coef, xbuf);
  return memory_chunks_kernel(lc, op, &g, &md, coef, xbuf);
}
