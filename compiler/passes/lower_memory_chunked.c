/*
 * lower_memory_chunked.c: memory_scan in the chunked form (spec tnt.md §2.3, §5.4) for
 * linear memories. Within a chunk every gradient is taken at the chunk's anchor, so the
 * state after token i is b_i W + f_i Mom - sum_{j<=i} G_ij u_j with rank-1 u_j = e_j k_j^T
 * and coefficients that depend on the gates only. Three kernels:
 *
 *   coeff   per (head, batch, chunk), all in parallel: the read coefficients rb_i, rf_i,
 *           RG_ij (the rows of b, f, G the read mode looks at) and the end-of-chunk ones
 *           ge_j = G_{n-1,j}, se_j = sigma_{n-1,j}, b_end, f_end, m_end; TTT's
 *           learning-rate matrix is the same shape with RG_ij = eta_ij.
 *   qkproj  (Q-K projection only) per (head, batch, shard): x_i = P_s q_i +
 *           sum_{j<=i} (khat_j . q_i) khat_j, P += Khat^T Khat per chunk: state-independent.
 *   chunks  per (head, batch, shard): the sequential loop over the shard's chunks with W
 *           (and Mom) in local memory when they fit: e_j = 2c (W k_j + b - v_j) at the
 *           anchor, y_i = rb_i W x_i + rf_i Mom x_i - sum_j RG_ij (x_i . k_j) e_j, then
 *           W = b_end W + f_end Mom - sum_j ge_j e_j k_j^T, Mom = m_end Mom - sum_j se_j ...
 *
 * Resets make shards independent, so shards are stacked on the group axis with the batch.
 * A bias is a weight column whose input is 1. The ln_residual wrapper (TTT) adds a
 * per-token LayerNorm to the error and to the read.
 */
#include <stdio.h>

#include "lower_expr.h"
#include "lower_memory.h"

enum { QT = 16 }; /* query rows per tile of the read */

enum { ET = 64 }; /* tokens per error tile when a chunk's reads do not couple its tokens */

/* Whether a token's read depends on the other tokens of its chunk: every read but the
 * chunk-start one (TTT reads inclusively). Without it no [C][C] matrix is needed, the
 * chunk is taken ET tokens at a time, and any chunk size runs (TNT's global 2048). */
static bool reads_within_chunk(const ir_memory_attrs *a)
{
  return a->ttt_lr || a->read != MEM_READ_CHUNK_START;
}

/* Offsets in a chunk's coefficient block (-1: absent): RG [C][C], rb, rf [C] only when
 * reads couple the chunk's tokens; ge, se [C]; then b_end, f_end, m_end. */
typedef struct coef_layout {
  int64_t rg, rb, rf, ge, se, end, count;
} coef_layout;

static coef_layout coef_layout_of(const ir_memory_attrs *a)
{
  int64_t C = a->chunk;
  coef_layout c = {-1, -1, -1, 0, C, 2 * C, 2 * C + 3};
  if (reads_within_chunk(a))
    c = (coef_layout){0, C * C, C * C + C, C * C + 2 * C, C * C + 3 * C, C * C + 4 * C,
                      C * C + 4 * C + 3};
  return c;
}

/* Tokens whose errors stay in local memory at once: the chunk, or a tile of it. */
static int64_t error_rows(const ir_memory_attrs *a)
{
  return reads_within_chunk(a) || a->chunk < ET ? a->chunk : ET;
}

static uint64_t tile_bytes(const ir_memory_attrs *a, const memory_dims *d)
{
  int64_t C = a->chunk, qt = C < QT ? C : QT;
  int64_t scores = reads_within_chunk(a) ? qt * C : 0;
  return 4u * (uint64_t)(error_rows(a) * d->DV + scores + (a->ln_residual ? qt * d->DV : 0));
}

const char *memory_chunked_unsupported(const xy_compile_options *opt, const ir_op *op,
                                       const memory_dims *d)
{
  const ir_memory_attrs *a = &op->attr.memory;
  if (a->hidden > 0)
    return "needs a linear memory (MLP memories run the token loop)";
  if (op->in[MS_STATE] >= 0)
    return "takes no state_in (a streaming call's chunks start at a phase known only at run "
           "time)";
  if (a->chunk > 64 && reads_within_chunk(a))
    return "needs chunk <= 64 unless it reads at chunk starts (a chunk's errors and scores "
           "stay in local memory)";
  if (tile_bytes(a, d) > local_budget(opt))
    return "needs more local memory for a chunk's errors and scores than the device has";
  return NULL;
}

typedef struct geometry {
  int64_t B, L, H, DK, DV, C, NW;
  int64_t shards, shard_len, chunks;  /* chunks: over the whole sequence */
  coef_layout co;
  int64_t NCO;
} geometry;

/* theta, eta or alpha of token t (a variable) in group (b, h). */
static kir_expr *gate_at(kir_builder *b, const geometry *g, int arr, int bi, int h, kir_expr *t)
{
  return LD(arr, MAD(MAD(V(bi), g->L, t), g->H, V(h)));
}

static int coeff_kernel(lower_ctx *lc, const ir_op *op, const geometry *g, int coef)
{
  const ir_memory_attrs *a = &op->attr.memory;
  int64_t C = g->C, NCO = g->NCO;
  bool intra = reads_within_chunk(a);
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
  int one = kb_parfor(b, "one", I(1));
  (void)one;
  int bv = kb_let(b, "bv", KT_FLOAT, F(1)), fv = kb_let(b, "fv", KT_FLOAT, F(0));
  int mv = kb_let(b, "mv", KT_FLOAT, F(1));
  int i = kb_for(b, "i", I(0), V(n));
  int t = kb_let(b, "t", KT_INT, ADD(V(t0), V(i)));
  if (!a->ttt_lr && a->read == MEM_READ_EXCLUSIVE) { /* the row before token i */
    kb_store(b, out, ADD(V(cb), ADD(I(RB), V(i))), V(bv));
    kb_store(b, out, ADD(V(cb), ADD(I(RF), V(i))), V(fv));
  }
  int kw = kb_let(b, "kw", KT_FLOAT, a->decay ? SUB(F(1), gate_at(b, g, alpha, bi, h, V(t))) : F(1));
  kb_set(b, mv, a->momentum ? MUL(gate_at(b, g, eta, bi, h, V(t)), V(mv)) : F(0));
  kb_set(b, bv, MUL(V(kw), V(bv)));
  kb_set(b, fv, ADD(MUL(V(kw), V(fv)), V(mv)));
  if (a->ttt_lr) {
    kb_store(b, out, ADD(V(cb), ADD(I(RB), V(i))), F(1));
    kb_store(b, out, ADD(V(cb), ADD(I(RF), V(i))), F(0));
  } else if (a->read == MEM_READ_INCLUSIVE) {
    kb_store(b, out, ADD(V(cb), ADD(I(RB), V(i))), V(bv));
    kb_store(b, out, ADD(V(cb), ADD(I(RF), V(i))), V(fv));
  }
  kb_end(b);
  kb_store(b, out, ADD(V(cb), I(END)), a->ttt_lr ? F(1) : V(bv));
  kb_store(b, out, ADD(V(cb), I(END + 1)), a->ttt_lr ? F(0) : V(fv));
  kb_store(b, out, ADD(V(cb), I(END + 2)), a->ttt_lr ? F(0) : V(mv));
  if (!intra) {
    /* Only the chunk's last row of G and sigma is needed: backwards, division-free,
     * G_{n-1,j} = theta_j X_j with X_j = P_j + eta_{j+1} X_{j+1}, P_j the product of
     * (1 - alpha) over j+1 .. n-1; sigma_{n-1,j} = theta_j S_j, S_j = eta_{j+1} S_{j+1}. */
    int xv = kb_let(b, "xv", KT_FLOAT, F(1)), sv = kb_let(b, "sv", KT_FLOAT, F(1));
    int pv = kb_let(b, "pv", KT_FLOAT, F(1));
    int jj = kb_for(b, "jj", I(0), V(n));
    int jb = kb_let(b, "jb", KT_INT, SUB(SUB(V(n), I(1)), V(jj)));
    kb_if(b, kx_bin(b, KB_GT, V(jj), I(0)));
    int tn = kb_let(b, "tn", KT_INT, ADD(ADD(V(t0), V(jb)), I(1))); /* token j + 1 */
    int en = kb_let(b, "en", KT_FLOAT, a->momentum ? gate_at(b, g, eta, bi, h, V(tn)) : F(0));
    kb_set(b, pv, MUL(V(pv), a->decay ? SUB(F(1), gate_at(b, g, alpha, bi, h, V(tn))) : F(1)));
    kb_set(b, xv, ADD(V(pv), MUL(V(en), V(xv))));
    kb_set(b, sv, MUL(V(en), V(sv)));
    kb_end(b);
    int thb = kb_let(b, "thb", KT_FLOAT, gate_at(b, g, theta, bi, h, ADD(V(t0), V(jb))));
    kb_store(b, out, ADD(V(cb), ADD(I(GE), V(jb))), MUL(V(thb), V(xv)));
    kb_store(b, out, ADD(V(cb), ADD(I(SE), V(jb))), MUL(V(thb), V(sv)));
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
      t = kb_let(b, "t", KT_INT, ADD(V(t0), V(i)));
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
  if (kir_add_launch(lc->k, kid, groups, args, n_args, 2.0 * (double)(g->B * g->H * g->L * C),
                     bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}

/* Token range of the group's shard: s0 (var) and its end se (var). */
static void shard_range(kir_builder *b, const geometry *g, int s, int *s0, int *send)
{
  *s0 = kb_let(b, "s0", KT_INT, MUL(V(s), I(g->shard_len)));
  *send = kb_let(b, "s_end", KT_INT, MIN(I(g->L), ADD(V(*s0), I(g->shard_len))));
}

/* Opens the loop over the shard's chunks (its bound is exact: barriers stay out of
 * conditionals, which PoCL 3.1 miscompiles inside loops); returns the var holding the
 * chunk's first token. Close with kb_end. */
static int chunk_loop(kir_builder *b, const geometry *g, int s0, int send)
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
  uint64_t need = 4u * (uint64_t)(DK * DK + C * DK + C * C);
  if (need > local_budget(lc->opt))
    return local_overflow(lc->err, lc->opt, op->name, "the Q-K projection", need, NULL);
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
  kir_arg args[4] = {{true, lower_in(lc, op, MS_Q)}, {true, lower_in(lc, op, MS_K)}, {true, xbuf}};
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
  int P = kb_local(b, "p", KT_FLOAT, DK * DK), KH = kb_local(b, "khat", KT_FLOAT, C * DK);
  int KQ = kb_local(b, "kq", KT_FLOAT, C * C);
  int h = kb_let(b, "h", KT_INT, GID(0));
  int bi = kb_let(b, "b", KT_INT, DIV(GID(1), I(g->shards)));
  int s = kb_let(b, "s", KT_INT, REM(GID(1), I(g->shards)));
  int s0, send;
  shard_range(b, g, s, &s0, &send);
  int t0 = chunk_loop(b, g, s0, send);
  int n = kb_let(b, "n", KT_INT, MIN(I(C), SUB(V(send), V(t0))));
  int e = kb_parfor(b, "e", I(DK * DK)); /* P = 0 at every chunk, or at the shard's first */
  if (a->qkproj == MEM_QK_SHARD)
    kb_if(b, kx_bin(b, KB_EQ, V(t0), V(s0)));
  kb_store(b, P, V(e), F(0));
  if (a->qkproj == MEM_QK_SHARD)
    kb_end(b);
  kb_end(b);
  int jc = kb_parfor(b, "jc", MUL(V(n), I(DK)));
  int j = kb_let(b, "j", KT_INT, DIV(V(jc), I(DK)));
  int row = kb_let(b, "row", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t0), V(j))), g->H, V(h)));
  int kk = kb_let(b, "kk", KT_FLOAT, F(0));
  int c = kb_for(b, "c", I(0), I(DK));
  kb_set(b, kk, ADD(V(kk), MUL(LD(k, MAD(V(row), DK, V(c))), LD(k, MAD(V(row), DK, V(c))))));
  kb_end(b);
  kir_expr *inv = SEL(kx_bin(b, KB_GT, V(kk), F(0)),
                      DIV(F(1), kx_call(b, KF_SQRT, V(kk), NULL, NULL)), F(0));
  kb_store(b, KH, V(jc), MUL(LD(k, MAD(V(row), DK, REM(V(jc), I(DK)))), inv));
  kb_end(b);
  int ij = kb_parfor(b, "ij", MUL(V(n), V(n)));
  int i = kb_let(b, "i", KT_INT, DIV(V(ij), V(n)));
  j = kb_let(b, "j", KT_INT, REM(V(ij), V(n)));
  int qrow = kb_let(b, "qrow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t0), V(i))), g->H, V(h)));
  int acc = kb_let(b, "acc", KT_FLOAT, F(0));
  c = kb_for(b, "c", I(0), I(DK));
  kb_set(b, acc, ADD(V(acc), MUL(LD(KH, MAD(V(j), DK, V(c))), LD(q, MAD(V(qrow), DK, V(c))))));
  kb_end(b);
  kb_store(b, KQ, MAD(V(i), C, V(j)), V(acc));
  kb_end(b);
  int ir = kb_parfor(b, "ir", MUL(V(n), I(DK)));
  i = kb_let(b, "i", KT_INT, DIV(V(ir), I(DK)));
  int r = kb_let(b, "r", KT_INT, REM(V(ir), I(DK)));
  qrow = kb_let(b, "qrow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t0), V(i))), g->H, V(h)));
  acc = kb_let(b, "acc", KT_FLOAT, F(0));
  c = kb_for(b, "c", I(0), I(DK));
  kb_set(b, acc, ADD(V(acc), MUL(LD(P, MAD(V(r), DK, V(c))), LD(q, MAD(V(qrow), DK, V(c))))));
  kb_end(b);
  j = kb_for(b, "j", I(0), ADD(V(i), I(1)));
  kb_set(b, acc, ADD(V(acc), MUL(LD(KQ, MAD(V(i), C, V(j))), LD(KH, MAD(V(j), DK, V(r))))));
  kb_end(b);
  kb_store(b, x, MAD(V(qrow), DK, V(r)), V(acc));
  kb_end(b);
  e = kb_parfor(b, "e", I(DK * DK));
  acc = kb_let(b, "acc", KT_FLOAT, LD(P, V(e)));
  j = kb_for(b, "j", I(0), V(n));
  kb_set(b, acc, ADD(V(acc), MUL(LD(KH, MAD(V(j), DK, DIV(V(e), I(DK)))),
                                 LD(KH, MAD(V(j), DK, REM(V(e), I(DK)))))));
  kb_end(b);
  kb_store(b, P, V(e), V(acc));
  kb_end(b);
  kb_end(b);
  if (sout >= 0) {
    kb_comment(b, "the last shard's P is the final state's");
    e = kb_parfor(b, "e", I(DK * DK));
    kb_if(b, kx_bin(b, KB_EQ, V(send), I(g->L)));
    kb_store(b, sout, ADD(MUL(MAD(V(bi), g->H, V(h)), I(lay->count)), ADD(I(lay->p), V(e))),
             LD(P, V(e)));
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

/* Where the chunk kernel keeps W and Mom: local memory when they fit beside the tiles. */
typedef struct placed {
  int arr;   /* kernel array */
  int base;  /* var: the group's first element */
} placed;

static int chunks_kernel(lower_ctx *lc, const ir_op *op, const geometry *g,
                         const memory_dims *d, int coef, int xbuf)
{
  const ir_memory_attrs *a = &op->attr.memory;
  const mem_state_layout *lay = &d->state;
  int64_t C = g->C, DK = g->DK, DV = g->DV, NW = g->NW, NCO = g->NCO, NS = lay->count;
  int64_t qt = C < QT ? C : QT, groups_n = g->H * g->B * g->shards;
  bool has_mom = lay->mom >= 0, bias = a->bias;
  int wg = (int)op->sched.wg;
  uint64_t budget = local_budget(lc->opt), used = tile_bytes(a, d);
  bool w_local = used + 4u * (uint64_t)NW <= budget;
  if (w_local)
    used += 4u * (uint64_t)NW;
  bool m_local = has_mom && used + 4u * (uint64_t)NW <= budget;
  if (m_local)
    used += 4u * (uint64_t)NW;
  /* tiled chunks accumulate the update in DW (and DM) */
  bool tiled = !reads_within_chunk(a);
  bool dw_local = tiled && used + 4u * (uint64_t)NW <= budget;
  if (dw_local)
    used += 4u * (uint64_t)NW;
  bool dm_local = tiled && has_mom && used + 4u * (uint64_t)NW <= budget;
  int dwbuf = -1, dmbuf = -1;
  if (tiled && !dw_local && (dwbuf = lower_temp(lc, lower_name(lc, op, "dw"), groups_n * NW)) < 0)
    return XY_E_LIMIT;
  if (tiled && has_mom && !dm_local &&
      (dmbuf = lower_temp(lc, lower_name(lc, op, "dm"), groups_n * NW)) < 0)
    return XY_E_LIMIT;
  int wbuf = -1, mbuf = -1;
  if (!w_local && (wbuf = lower_temp(lc, lower_name(lc, op, "w"), groups_n * NW)) < 0)
    return XY_E_LIMIT;
  if (has_mom && !m_local &&
      (mbuf = lower_temp(lc, lower_name(lc, op, "mom"), groups_n * NW)) < 0)
    return XY_E_LIMIT;

  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "chunks"), wg, 2,
                      "memory_scan chunked form: one head (group axis 0) and (batch, shard)\n"
                      "(axis 1) walks its chunks: errors at the anchor, the dual-form read, the\n"
                      "rank-n update of W (and Mom).");
  kir_arg args[20];
  int ids[IR_MAX_SLOTS];
  int n_args = memory_inputs(b, lc, op, d, ids, args);
  int cf = kb_global(b, "coef", KT_FLOAT, g->B * g->H * g->chunks * NCO, true);
  args[n_args++] = (kir_arg){true, coef};
  int xq = ids[MS_Q];
  if (xbuf >= 0) {
    xq = kb_global(b, "x", KT_FLOAT, g->B * g->L * g->H * DK, true);
    args[n_args++] = (kir_arg){true, xbuf};
  }
  int y = kb_global(b, "y", KT_FLOAT, g->B * g->L * g->H * DV, false);
  args[n_args++] = (kir_arg){true, lower_out(lc, op, MS_Y)};
  int sout = -1;
  if (lower_out(lc, op, MS_STATE_OUT) >= 0) {
    sout = kb_global(b, "state_out", KT_FLOAT, g->B * g->H * NS, false);
    args[n_args++] = (kir_arg){true, lower_out(lc, op, MS_STATE_OUT)};
  }
  placed W = {-1, -1}, M = {-1, -1};
  if (w_local) {
    W.arr = kb_local(b, "w", KT_FLOAT, NW);
  } else {
    W.arr = kb_global(b, "w", KT_FLOAT, groups_n * NW, false);
    args[n_args++] = (kir_arg){true, wbuf};
  }
  if (m_local) {
    M.arr = kb_local(b, "mom", KT_FLOAT, NW);
  } else if (has_mom) {
    M.arr = kb_global(b, "mom", KT_FLOAT, groups_n * NW, false);
    args[n_args++] = (kir_arg){true, mbuf};
  }
  placed DW = {-1, -1}, DM = {-1, -1};
  if (dw_local) {
    DW.arr = kb_local(b, "dw", KT_FLOAT, NW);
  } else if (tiled) {
    DW.arr = kb_global(b, "dw", KT_FLOAT, groups_n * NW, false);
    args[n_args++] = (kir_arg){true, dwbuf};
  }
  if (dm_local) {
    DM.arr = kb_local(b, "dm", KT_FLOAT, NW);
  } else if (tiled && has_mom) {
    DM.arr = kb_global(b, "dm", KT_FLOAT, groups_n * NW, false);
    args[n_args++] = (kir_arg){true, dmbuf};
  }
  int E = kb_local(b, "e", KT_FLOAT, error_rows(a) * DV);
  int SC = reads_within_chunk(a) ? kb_local(b, "sc", KT_FLOAT, qt * C) : -1;
  int OY = a->ln_residual ? kb_local(b, "oy", KT_FLOAT, qt * DV) : -1;

  int h = kb_let(b, "h", KT_INT, GID(0));
  int bi = kb_let(b, "b", KT_INT, DIV(GID(1), I(g->shards)));
  int s = kb_let(b, "s", KT_INT, REM(GID(1), I(g->shards)));
  int grp = kb_let(b, "grp", KT_INT, MAD(MAD(V(bi), g->H, V(h)), g->shards, V(s)));
  W.base = kb_let(b, "wb", KT_INT, w_local ? I(0) : MUL(V(grp), I(NW)));
  if (has_mom)
    M.base = kb_let(b, "mb", KT_INT, m_local ? I(0) : MUL(V(grp), I(NW)));
  if (tiled)
    DW.base = kb_let(b, "dwb", KT_INT, dw_local ? I(0) : MUL(V(grp), I(NW)));
  if (tiled && has_mom)
    DM.base = kb_let(b, "dmb", KT_INT, dm_local ? I(0) : MUL(V(grp), I(NW)));
  int s0, send;
  shard_range(b, g, s, &s0, &send);
  int last_shard = kb_let(b, "last", KT_BOOL, kx_bin(b, KB_EQ, V(send), I(g->L)));
  /* The weight count as a variable, so that the parfors over the weights render as strided
   * loops: as `if (lid < NW)` blocks in a larger group, PoCL 3.1 lost this kernel's state
   * update (DK = DV = 3, 16 work-items). */
  int nw = kb_let(b, "nw", KT_INT, I(NW));
  int winit = ids[MS_WINIT], gamma = ids[MS_GAMMA], beta = ids[MS_BETA];
  kir_expr *sbase = MUL(MAD(V(bi), g->H, V(h)), I(NS)); /* this (b, h)'s state_out row */

  kb_comment(b, "the shard starts from W_init, Mom = 0");
  int e = kb_parfor(b, "e", V(nw));
  kb_store(b, W.arr, ADD(V(W.base), V(e)), winit >= 0 ? LD(winit, MAD(V(h), NW, V(e))) : F(0));
  if (has_mom)
    kb_store(b, M.arr, ADD(V(M.base), V(e)), F(0));
  kb_end(b);

  int t0 = chunk_loop(b, g, s0, send);
  int n = kb_let(b, "n", KT_INT, MIN(I(C), SUB(V(send), V(t0))));
  int cb = kb_let(b, "cb", KT_INT, MUL(MAD(MAD(V(bi), g->H, V(h)), g->chunks, DIV(V(t0), I(C))),
                                       I(NCO)));
  int64_t RB = g->co.rb, RF = g->co.rf, GE = g->co.ge, SE = g->co.se, END = g->co.end;
  if (sout >= 0) {
    kb_comment(b, "the final state's anchor is the last chunk's starting W");
    e = kb_parfor(b, "e", V(nw));
    kb_if(b, kx_bin(b, KB_EQ, ADD(V(t0), V(n)), I(g->L)));
    kb_store(b, sout, ADD(sbase, ADD(I(lay->anchor), V(e))), LD(W.arr, ADD(V(W.base), V(e))));
    kb_end(b);
    kb_end(b);
  }

  bool intra = reads_within_chunk(a);
  int t1 = t0, m = n, jo = -1; /* the error tile: tokens [t1, t1 + m), jo into the chunk */
  if (!intra) {
    int64_t T = error_rows(a);
    kb_comment(b, "no read looks inside the chunk: its errors go ET tokens at a time, the update accumulates");
    e = kb_parfor(b, "e", V(nw));
    kb_store(b, DW.arr, ADD(V(DW.base), V(e)), F(0));
    if (has_mom)
      kb_store(b, DM.arr, ADD(V(DM.base), V(e)), F(0));
    kb_end(b);
    int tile = kb_for(b, "tile", I(0), DIV(ADD(V(n), I(T - 1)), I(T)));
    jo = kb_let(b, "jo", KT_INT, MUL(V(tile), I(T)));
    t1 = kb_let(b, "t1", KT_INT, ADD(V(t0), V(jo)));
    m = kb_let(b, "m", KT_INT, MIN(I(T), SUB(V(n), V(jo))));
  }
  kb_comment(b, "errors at the anchor: e_j = 2c (W k_j + b - v_j)");
  double two_c = 2.0 * a->loss_scale;
  int jr = kb_parfor(b, "jr", MUL(V(m), I(DV)));
  int j = kb_let(b, "j", KT_INT, DIV(V(jr), I(DV))), r = kb_let(b, "r", KT_INT, REM(V(jr), I(DV)));
  int row = kb_let(b, "row", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t1), V(j))), g->H, V(h)));
  int acc = kb_let(b, "acc", KT_FLOAT, bias ? LD(W.arr, ADD(V(W.base), ADD(I(DV * DK), V(r)))) : F(0));
  int c = kb_for(b, "c", I(0), I(DK));
  kb_set(b, acc, ADD(V(acc), MUL(LD(W.arr, ADD(V(W.base), MAD(V(r), DK, V(c)))),
                                 LD(ids[MS_K], MAD(V(row), DK, V(c))))));
  kb_end(b);
  kb_store(b, E, V(jr), a->ln_residual ? V(acc)
                                       : MUL(F(two_c), SUB(V(acc), LD(ids[MS_V], MAD(V(row), DV, V(r))))));
  kb_end(b);
  if (a->ln_residual) {
    /* through x + gamma LN(o) + beta (spec §1.1), one work-item per token */
    j = kb_parfor(b, "j", V(m));
    row = kb_let(b, "row", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t1), V(j))), g->H, V(h)));
    int mean = kb_let(b, "mean", KT_FLOAT, F(0)), var = kb_let(b, "var", KT_FLOAT, F(0));
    r = kb_for(b, "r", I(0), I(DV));
    kb_set(b, mean, ADD(V(mean), LD(E, MAD(V(j), DV, V(r)))));
    kb_end(b);
    kb_set(b, mean, DIV(V(mean), F(DV)));
    r = kb_for(b, "r", I(0), I(DV));
    int dl = kb_let(b, "dl", KT_FLOAT, SUB(LD(E, MAD(V(j), DV, V(r))), V(mean)));
    kb_set(b, var, ADD(V(var), MUL(V(dl), V(dl))));
    kb_end(b);
    int sd = kb_let(b, "sd", KT_FLOAT, kx_call(b, KF_SQRT, ADD(DIV(V(var), F(DV)), F(a->ln_eps)), NULL, NULL));
    int su = kb_let(b, "su", KT_FLOAT, F(0)), sux = kb_let(b, "sux", KT_FLOAT, F(0));
    for (int pass = 0; pass < 2; pass++) {
      r = kb_for(b, "r", I(0), I(DV));
      int xh = kb_let(b, "xh", KT_FLOAT, DIV(SUB(LD(E, MAD(V(j), DV, V(r))), V(mean)), V(sd)));
      int gm = kb_let(b, "gm", KT_FLOAT, LD(gamma, MAD(V(h), DV, V(r))));
      int u = kb_let(b, "u", KT_FLOAT,
                     MUL(MUL(F(two_c), SUB(ADD(ADD(LD(ids[MS_K], MAD(V(row), DK, V(r))),
                                                   MUL(V(gm), V(xh))),
                                               LD(beta, MAD(V(h), DV, V(r)))),
                                           LD(ids[MS_V], MAD(V(row), DV, V(r))))), V(gm)));
      if (pass == 0) {
        kb_set(b, su, ADD(V(su), V(u)));
        kb_set(b, sux, ADD(V(sux), MUL(V(u), V(xh))));
      } else {
        kb_store(b, E, MAD(V(j), DV, V(r)),
                 DIV(SUB(SUB(MUL(F(DV), V(u)), V(su)), MUL(V(xh), V(sux))), MUL(F(DV), V(sd))));
      }
      kb_end(b);
    }
    kb_end(b);
  }

  kb_comment(b, "the read, QT query rows at a time: y_i = rb_i W x_i + rf_i Mom x_i - sum_j RG_ij (x_i.k_j) e_j");
  int i0 = kb_for(b, "i0", I(0), DIV(ADD(V(m), I(qt - 1)), I(qt)));
  int ib = kb_let(b, "ib", KT_INT, MUL(V(i0), I(qt)));
  if (intra) {
    int ij = kb_parfor(b, "ij", I(qt * C));
    int ii = kb_let(b, "ii", KT_INT, DIV(V(ij), I(C)));
    int i = kb_let(b, "i", KT_INT, ADD(V(ib), V(ii)));
    j = kb_let(b, "j", KT_INT, REM(V(ij), I(C)));
    int val = kb_let(b, "val", KT_FLOAT, F(0));
    kb_if(b, kx_bin(b, KB_AND, LT(V(i), V(m)), kx_bin(b, KB_LE, V(j), V(i))));
    int qrow = kb_let(b, "qrow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t1), V(i))), g->H, V(h)));
    int krow = kb_let(b, "krow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t1), V(j))), g->H, V(h)));
    int dot = kb_let(b, "dot", KT_FLOAT, bias ? F(1) : F(0));
    c = kb_for(b, "c", I(0), I(DK));
    kb_set(b, dot, ADD(V(dot), MUL(LD(xq, MAD(V(qrow), DK, V(c))), LD(ids[MS_K], MAD(V(krow), DK, V(c))))));
    kb_end(b);
    kb_set(b, val, MUL(V(dot), LD(cf, ADD(V(cb), MAD(V(i), C, V(j))))));
    kb_end(b);
    kb_store(b, SC, V(ij), V(val));
    kb_end(b);
  }
  int ir = kb_parfor(b, "ir", I(qt * DV));
  int ii = kb_let(b, "ii", KT_INT, DIV(V(ir), I(DV)));
  int i = kb_let(b, "i", KT_INT, ADD(V(ib), V(ii)));
  r = kb_let(b, "r", KT_INT, REM(V(ir), I(DV)));
  kb_if(b, LT(V(i), V(m)));
  int qrow = kb_let(b, "qrow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t1), V(i))), g->H, V(h)));
  int wx = kb_let(b, "wx", KT_FLOAT, bias ? LD(W.arr, ADD(V(W.base), ADD(I(DV * DK), V(r)))) : F(0));
  int mx = has_mom && intra && !a->ttt_lr
               ? kb_let(b, "mx", KT_FLOAT, bias ? LD(M.arr, ADD(V(M.base), ADD(I(DV * DK), V(r)))) : F(0))
               : -1;
  c = kb_for(b, "c", I(0), I(DK));
  int xv = kb_let(b, "xv", KT_FLOAT, LD(xq, MAD(V(qrow), DK, V(c))));
  kb_set(b, wx, ADD(V(wx), MUL(LD(W.arr, ADD(V(W.base), MAD(V(r), DK, V(c)))), V(xv))));
  if (mx >= 0)
    kb_set(b, mx, ADD(V(mx), MUL(LD(M.arr, ADD(V(M.base), MAD(V(r), DK, V(c)))), V(xv))));
  kb_end(b);
  int yv = kb_let(b, "yv", KT_FLOAT, intra ? MUL(LD(cf, ADD(V(cb), ADD(I(RB), V(i)))), V(wx)) : V(wx));
  if (mx >= 0)
    kb_set(b, yv, ADD(V(yv), MUL(LD(cf, ADD(V(cb), ADD(I(RF), V(i)))), V(mx))));
  if (intra) {
    j = kb_for(b, "j", I(0), ADD(V(i), I(1)));
    kb_set(b, yv, SUB(V(yv), MUL(LD(SC, MAD(V(ii), C, V(j))), LD(E, MAD(V(j), DV, V(r))))));
    kb_end(b);
  }
  if (a->ln_residual)
    kb_store(b, OY, V(ir), V(yv));
  else
    kb_store(b, y, MAD(V(qrow), DV, V(r)), V(yv));
  kb_end(b);
  kb_end(b);
  if (a->ln_residual) {
    ii = kb_parfor(b, "ii", I(qt));
    i = kb_let(b, "i", KT_INT, ADD(V(ib), V(ii)));
    kb_if(b, LT(V(i), V(m)));
    qrow = kb_let(b, "qrow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t1), V(i))), g->H, V(h)));
    int mean = kb_let(b, "mean", KT_FLOAT, F(0)), var = kb_let(b, "var", KT_FLOAT, F(0));
    r = kb_for(b, "r", I(0), I(DV));
    kb_set(b, mean, ADD(V(mean), LD(OY, MAD(V(ii), DV, V(r)))));
    kb_end(b);
    kb_set(b, mean, DIV(V(mean), F(DV)));
    r = kb_for(b, "r", I(0), I(DV));
    int dl = kb_let(b, "dl", KT_FLOAT, SUB(LD(OY, MAD(V(ii), DV, V(r))), V(mean)));
    kb_set(b, var, ADD(V(var), MUL(V(dl), V(dl))));
    kb_end(b);
    int sd = kb_let(b, "sd", KT_FLOAT, kx_call(b, KF_SQRT, ADD(DIV(V(var), F(DV)), F(a->ln_eps)), NULL, NULL));
    r = kb_for(b, "r", I(0), I(DV));
    kir_expr *xh = DIV(SUB(LD(OY, MAD(V(ii), DV, V(r))), V(mean)), V(sd));
    kb_store(b, y, MAD(V(qrow), DV, V(r)),
             ADD(ADD(LD(xq, MAD(V(qrow), DK, V(r))), MUL(LD(gamma, MAD(V(h), DV, V(r))), xh)),
                 LD(beta, MAD(V(h), DV, V(r)))));
    kb_end(b);
    kb_end(b);
    kb_end(b);
  }
  kb_end(b);

  kb_comment(b, intra ? "the update: W = b_end W + f_end Mom - sum_j ge_j e_j k_j^T, Mom = m_end Mom - sum_j se_j e_j k_j^T"
                      : "the tile's share of the update: DW += sum_j ge_j e_j k_j^T, DM += sum_j se_j e_j k_j^T");
  e = kb_parfor(b, "e", V(nw));
  kir_expr *is_w = LT(V(e), I(DV * DK));
  r = kb_let(b, "r", KT_INT, SEL(is_w, DIV(V(e), I(DK)), SUB(V(e), I(DV * DK))));
  c = kb_let(b, "c", KT_INT, SEL(is_w, REM(V(e), I(DK)), I(0)));
  int sg = kb_let(b, "sg", KT_FLOAT, F(0));
  int ss = has_mom ? kb_let(b, "ss", KT_FLOAT, F(0)) : -1;
  j = kb_for(b, "j", I(0), V(m));
  int krow = kb_let(b, "krow", KT_INT, MAD(MAD(V(bi), g->L, ADD(V(t1), V(j))), g->H, V(h)));
  kir_expr *in = bias ? SEL(is_w, LD(ids[MS_K], MAD(V(krow), DK, V(c))), F(1))
                      : LD(ids[MS_K], MAD(V(krow), DK, V(c)));
  int ek = kb_let(b, "ek", KT_FLOAT, MUL(LD(E, MAD(V(j), DV, V(r))), in));
  kir_expr *jc = jo >= 0 ? ADD(V(jo), V(j)) : V(j); /* the token's place in its chunk */
  kb_set(b, sg, ADD(V(sg), MUL(LD(cf, ADD(V(cb), ADD(I(GE), jc))), V(ek))));
  if (ss >= 0)
    kb_set(b, ss, ADD(V(ss), MUL(LD(cf, ADD(V(cb), ADD(I(SE), jo >= 0 ? ADD(V(jo), V(j)) : V(j)))), V(ek))));
  kb_end(b);
  if (!intra) {
    kir_expr *di = ADD(V(DW.base), V(e));
    kb_store(b, DW.arr, di, ADD(LD(DW.arr, di), V(sg)));
    if (ss >= 0) {
      kir_expr *mi = ADD(V(DM.base), V(e));
      kb_store(b, DM.arr, mi, ADD(LD(DM.arr, mi), V(ss)));
    }
    kb_end(b);
    kb_end(b); /* the tile loop */
    kb_comment(b, "the update: W = b_end W + f_end Mom - DW, Mom = m_end Mom - DM");
    e = kb_parfor(b, "e", V(nw));
    sg = kb_let(b, "sg", KT_FLOAT, LD(DW.arr, ADD(V(DW.base), V(e))));
    if (ss >= 0)
      ss = kb_let(b, "ss", KT_FLOAT, LD(DM.arr, ADD(V(DM.base), V(e))));
  }
  kir_expr *widx = ADD(V(W.base), V(e));
  int wv = kb_let(b, "wv", KT_FLOAT, MUL(LD(cf, ADD(V(cb), I(END))), LD(W.arr, widx)));
  if (has_mom) {
    kir_expr *midx = ADD(V(M.base), V(e));
    int mv = kb_let(b, "mv", KT_FLOAT, LD(M.arr, midx));
    if (!a->ttt_lr)
      kb_set(b, wv, ADD(V(wv), MUL(LD(cf, ADD(V(cb), I(END + 1))), V(mv))));
    kb_store(b, M.arr, midx, SUB(MUL(LD(cf, ADD(V(cb), I(END + 2))), V(mv)), V(ss)));
  }
  kb_store(b, W.arr, widx, SUB(V(wv), V(sg)));
  kb_end(b);
  kb_end(b);

  if (sout >= 0) {
    kb_comment(b, "the final state: W, Mom and the phase (the anchor and P are written above)");
    e = kb_parfor(b, "e", V(nw));
    kb_if(b, V(last_shard));
    kb_store(b, sout, ADD(sbase, ADD(I(lay->w), V(e))), LD(W.arr, ADD(V(W.base), V(e))));
    if (has_mom)
      kb_store(b, sout, ADD(sbase, ADD(I(lay->mom), V(e))), LD(M.arr, ADD(V(M.base), V(e))));
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
  double flops = BHL * (double)(2 * DV * DK * (has_mom ? 3 : 2) + 2 * NW * (has_mom ? 2 : 1) +
                                (intra ? C * (DK + DV) : 0));
  double bytes = 4.0 * BHL * (double)(2 * DK + 2 * DV) + 4.0 * (double)(g->B * g->H * g->chunks * NCO);
  int64_t groups[3] = {g->H, g->B * g->shards, 1};
  if (kir_add_launch(lc->k, kid, groups, args, n_args, flops, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
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
  return chunks_kernel(lc, op, &g, &md, coef, xbuf);
}
