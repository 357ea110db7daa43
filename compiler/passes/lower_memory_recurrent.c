/*
 * lower_memory_recurrent.c: memory_scan in the recurrent form, the token loop of spec
 * tnt.md §7.1-§7.2 as one kernel. One work-group per (head, batch element, shard; a
 * streaming state in keeps the whole sequence one shard) walks the tokens; its work-items
 * split each step's rows: the gradient at the anchor, the Q-K
 * projection, the update of every weight, the read. The state (W, anchor, momentum, P)
 * lives in local memory when it fits and in a global scratch row per group otherwise
 * (MLP memories); the small per-token vectors always in local memory. It serves every
 * schedule, and streaming: the phase (the token's place in its shard or chunk) is read
 * from state_in and written back to state_out.
 */
#include "lower_expr.h"
#include "lower_memory.h"

kir_expr *memory_act(kir_builder *b, mem_act act, kir_expr *z)
{
  if (act == MEM_ACT_SILU)
    return DIV(z, ADD(F(1), kx_call(b, KF_EXP, kx_un(b, KU_NEG, z), NULL, NULL)));
  kir_expr *u = MUL(F(0.7978845608028654), ADD(z, MUL(F(0.044715), MUL(z, MUL(z, z)))));
  return MUL(MUL(F(0.5), z), ADD(F(1), kx_call(b, KF_TANH, u, NULL, NULL)));
}

kir_expr *memory_act_grad(kir_builder *b, mem_act act, kir_expr *z)
{
  if (act == MEM_ACT_SILU) {
    kir_expr *s = DIV(F(1), ADD(F(1), kx_call(b, KF_EXP, kx_un(b, KU_NEG, z), NULL, NULL)));
    return MUL(s, ADD(F(1), MUL(z, SUB(F(1), s))));
  }
  kir_expr *u = MUL(F(0.7978845608028654), ADD(z, MUL(F(0.044715), MUL(z, MUL(z, z)))));
  kir_expr *th = kx_call(b, KF_TANH, u, NULL, NULL);
  kir_expr *left = MUL(F(0.5), ADD(F(1), th));
  kir_expr *dth = SUB(F(1), MUL(th, th));
  kir_expr *du = MUL(F(0.7978845608028654), ADD(F(1), MUL(F(3.0 * 0.044715), MUL(z, z))));
  return ADD(left, MUL(MUL(F(0.5), z), MUL(dth, du)));
}

int memory_inputs(kir_builder *b, lower_ctx *lc, const ir_op *op, const memory_dims *d,
                  unsigned skip, int *ids, kir_arg *args)
{
  const ir_op_info *info = ir_op_info_of(op->code);
  int n = 0;
  for (int s = 0; s < info->n_in; s++) {
    ids[s] = -1;
    int buf = lower_in(lc, op, s);
    if (buf < 0 || (skip >> s & 1u))
      continue;
    int64_t count = lc->k->buffers[buf].count;
    ids[s] = kb_global(b, info->in_names[s], KT_FLOAT, count > 0 ? count : 1, true);
    args[n++] = (kir_arg){true, buf};
  }
  (void)d;
  return n;
}

/* The kernel being built, and where the state lives. */
typedef struct rec {
  kir_builder *b;
  const xy_compile_options *opt;
  const memory_dims *d;
  const ir_memory_attrs *a;
  int64_t DH, NW, bias_at;
  int st;        /* the state array: local [NS], or the global scratch [groups * NS] */
  int sb;        /* var: the group's first state element in st */
  int x_in;      /* local [DK]: the token's key */
  int Z, HH;     /* local [DH]: MLP pre-activations and activations */
  int O;         /* local [DV]: the memory's raw output f_res */
} rec;

/* A dense layer out[i] = bias[i] + sum_c w[i][c] in[c], i < rows, c < cols, reading the
 * weights at st[sb + w] and the biases at st[sb + bias] (bias < 0: none). */
static void dense(rec *r, int64_t w, int64_t bias, int64_t rows, int64_t cols, int in, int out,
                  int out_act)
{
  kir_builder *b = r->b;
  int i = kb_parfor(b, "i", I(rows));
  kir_expr *dot = memory_dot(b, memory_vector_width(r->opt, cols), r->st,
                             ADD(V(r->sb), ADD(I(w), MUL(V(i), I(cols)))), in, I(0), cols, "dot");
  int acc = kb_let(b, "acc", KT_FLOAT,
                   bias >= 0 ? ADD(LD(r->st, ADD(V(r->sb), ADD(I(bias), V(i)))), dot) : dot);
  kb_store(b, out, V(i), V(acc));
  if (out_act >= 0)
    kb_store(b, out_act, V(i), memory_act(b, r->a->act, V(acc)));
  kb_end(b);
}

/* O = f_res(in; the weights at st[sb + off]); an MLP's hidden layer goes to Z and HH. */
static void forward(rec *r, int64_t off, int in)
{
  int64_t DK = r->d->DK, DV = r->d->DV, DH = r->DH, bias = r->a->bias ? off + r->bias_at : -1;
  if (DH == 0) {
    dense(r, off, bias, DV, DK, in, r->O, -1);
    return;
  }
  dense(r, off, bias, DH, DK, in, r->Z, r->HH);
  dense(r, off + DH * DK, bias >= 0 ? bias + DH : -1, DV, DH, r->HH, r->O, -1);
}

/* One work-item normalises O over the DV features (mean, biased variance, eps) into XH
 * and leaves sd = sqrt(var + eps) in SD[0]: DV is small and the step is off the heavy
 * path. */
static void layer_norm(rec *r, int XH, int SD)
{
  kir_builder *b = r->b;
  int64_t DV = r->d->DV;
  int one = kb_parfor(b, "one", I(1)); /* 0: its work-item */
  int mean = kb_let(b, "mean", KT_FLOAT, F(0));
  int i = kb_for(b, "i", I(0), I(DV));
  kb_set(b, mean, ADD(V(mean), LD(r->O, V(i))));
  kb_end(b);
  kb_set(b, mean, DIV(V(mean), F(DV)));
  int var = kb_let(b, "var", KT_FLOAT, F(0));
  i = kb_for(b, "i", I(0), I(DV));
  int dlt = kb_let(b, "dlt", KT_FLOAT, SUB(LD(r->O, V(i)), V(mean)));
  kb_set(b, var, ADD(V(var), MUL(V(dlt), V(dlt))));
  kb_end(b);
  int sd = kb_let(b, "sd", KT_FLOAT,
                  kx_call(b, KF_SQRT, ADD(DIV(V(var), F(DV)), F(r->a->ln_eps)), NULL, NULL));
  i = kb_for(b, "i", I(0), I(DV));
  kb_store(b, XH, V(i), DIV(SUB(LD(r->O, V(i)), V(mean)), V(sd)));
  kb_end(b);
  kb_store(b, SD, V(one), V(sd));
  kb_end(b);
}

int lower_memory_recurrent(lower_ctx *lc, const ir_op *op)
{
  memory_dims md;
  mem_desc desc;
  int rc = memory_dims_of(lc->m, op, &md, &desc, lc->err);
  if (rc)
    return rc;
  const memory_dims *d = &md;
  const ir_memory_attrs *a = &op->attr.memory;
  const mem_state_layout *lay = &d->state;
  int64_t B = d->B, L = d->L, H = d->H, DK = d->DK, DV = d->DV, NS = lay->count;
  int64_t DH = a->hidden, NW = d->NW;
  int64_t period = a->reset > 0 ? a->reset : a->chunk;
  int wg = (int)op->sched.wg;
  uint64_t scratch = 4u * (uint64_t)(2 * DK + 4 * DV + 4 * (DH > 0 ? DH : 1) + 1);
  bool state_local = 4u * (uint64_t)NS + scratch <= local_budget(lc->opt);
  if (scratch > local_budget(lc->opt))
    return local_overflow(lc->err, lc->opt, op->name, "the recurrent form's vectors", scratch,
                          NULL);
  /* Resets make shards independent: without a streaming state coming in (whose phase
   * would move the shard grid) each shard gets a work-group of its own. */
  int64_t shard_len = a->reset > 0 && a->reset < L && lower_in(lc, op, MS_STATE) < 0 ? a->reset : L;
  int64_t shards = (L + shard_len - 1) / shard_len;
  int scratch_buf = -1;
  if (!state_local &&
      (scratch_buf = lower_temp(lc, lower_name(lc, op, "state"), B * H * shards * NS)) < 0)
    return XY_E_LIMIT;

  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "recurrent"), wg, 2,
                      "memory_scan, recurrent form: one work-group per head (axis 0) and batch\n"
                      "element (axis 1) walks the tokens: gradient at the anchor, update, read.");
  kir_arg args[16];
  int ids[IR_MAX_SLOTS];
  int n = memory_inputs(b, lc, op, d, 0, ids, args);
  int y = kb_global(b, "y", KT_FLOAT, B * L * H * DV, false);
  args[n++] = (kir_arg){true, lower_out(lc, op, MS_Y)};
  int sout = -1;
  if (lower_out(lc, op, MS_STATE_OUT) >= 0) {
    sout = kb_global(b, "state_out", KT_FLOAT, B * H * NS, false);
    args[n++] = (kir_arg){true, lower_out(lc, op, MS_STATE_OUT)};
  }
  rec r = {.b = b, .opt = lc->opt, .d = d, .a = a, .DH = DH, .NW = NW,
           .bias_at = DH > 0 ? DH * DK + DV * DH : DV * DK};
  if (state_local) {
    r.st = kb_local(b, "st", KT_FLOAT, NS);
  } else {
    r.st = kb_global(b, "st", KT_FLOAT, B * H * shards * NS, false);
    args[n++] = (kir_arg){true, scratch_buf};
  }
  r.x_in = kb_local(b, "x_in", KT_FLOAT, DK);
  int XQ = kb_local(b, "xq", KT_FLOAT, DK);
  r.Z = DH > 0 ? kb_local(b, "z", KT_FLOAT, DH) : -1;
  r.HH = DH > 0 ? kb_local(b, "hh", KT_FLOAT, DH) : -1;
  int DELTA = DH > 0 ? kb_local(b, "delta", KT_FLOAT, DH) : -1;
  int HG = DH > 0 ? kb_local(b, "hg", KT_FLOAT, DH) : -1; /* the gradient's activations */
  r.O = kb_local(b, "o", KT_FLOAT, DV);
  int E = kb_local(b, "e", KT_FLOAT, DV);
  int XH = a->ln_residual ? kb_local(b, "xhat", KT_FLOAT, DV) : -1;
  int SD = a->ln_residual ? kb_local(b, "sd", KT_FLOAT, 1) : -1;

  int h = kb_let(b, "h", KT_INT, GID(0));
  int bi = kb_let(b, "b", KT_INT, DIV(GID(1), I(shards)));
  int shard = kb_let(b, "shard", KT_INT, REM(GID(1), I(shards)));
  bool need_grp = !state_local || ids[MS_STATE] >= 0 || sout >= 0;
  int grp = need_grp ? kb_let(b, "grp", KT_INT, MAD(V(bi), H, V(h))) : -1; /* (b, h) */
  r.sb = kb_let(b, "sb", KT_INT, state_local ? I(0) : MUL(MAD(V(grp), shards, V(shard)), I(NS)));
  int winit = ids[MS_WINIT];

  kb_comment(b, "the entering state: state_in, or W = A = W_init and the rest zero");
  int e0 = kb_parfor(b, "e", I(NS));
  kir_expr *fresh = F(0);
  if (winit >= 0) {
    kir_expr *in_w = LT(V(e0), I(2 * NW));
    kir_expr *widx = MAD(V(h), NW, REM(V(e0), I(NW)));
    fresh = SEL(in_w, LD(winit, SEL(in_w, widx, I(0))), F(0));
  }
  kb_store(b, r.st, ADD(V(r.sb), V(e0)),
           ids[MS_STATE] >= 0 ? LD(ids[MS_STATE], MAD(V(grp), NS, V(e0))) : fresh);
  kb_end(b);
  int phase = kb_let(b, "phase", KT_INT, kx_un(b, KU_TO_INT, LD(r.st, ADD(V(r.sb), I(lay->phase)))));

  int t = kb_for(b, "t", MUL(V(shard), I(shard_len)), MIN(I(L), MAD(V(shard), shard_len, I(shard_len))));
  int row = kb_let(b, "row", KT_INT, MAD(MAD(V(bi), L, V(t)), H, V(h)));
  kir_expr *W = ADD(V(r.sb), I(lay->w));
  /* Barriers stay out of conditionals (PoCL 3.1 miscompiles a loop whose barriers sit
   * under a uniform if): the conditions go inside the parfors. */
  kir_expr *phase0 = kx_bin(b, KB_EQ, V(phase), I(0));
  if (a->reset > 0) {
    kb_comment(b, "a new shard: back to W_init, momentum and P zero");
    int e = kb_parfor(b, "e", I(NW));
    kb_if(b, phase0);
    kb_store(b, r.st, ADD(W, V(e)), winit >= 0 ? LD(winit, MAD(V(h), NW, V(e))) : F(0));
    if (lay->mom >= 0)
      kb_store(b, r.st, ADD(ADD(V(r.sb), I(lay->mom)), V(e)), F(0));
    kb_end(b);
    kb_end(b);
    if (lay->p >= 0) {
      e = kb_parfor(b, "e", I(DK * DK));
      kb_if(b, kx_bin(b, KB_EQ, V(phase), I(0)));
      kb_store(b, r.st, ADD(ADD(V(r.sb), I(lay->p)), V(e)), F(0));
      kb_end(b);
      kb_end(b);
    }
  }
  int ic = kb_let(b, "ic", KT_INT, REM(V(phase), I(a->chunk)));
  kb_comment(b, "a new chunk: the anchor is the current state");
  int e = kb_parfor(b, "e", I(NW));
  kb_if(b, kx_bin(b, KB_EQ, V(ic), I(0)));
  kb_store(b, r.st, ADD(ADD(V(r.sb), I(lay->anchor)), V(e)), LD(r.st, ADD(W, V(e))));
  if (a->ttt_lr)
    kb_store(b, r.st, ADD(ADD(V(r.sb), I(lay->mom)), V(e)), F(0));
  kb_end(b);
  kb_end(b);
  if (a->qkproj == MEM_QK_CHUNK) {
    e = kb_parfor(b, "e", I(DK * DK));
    kb_if(b, kx_bin(b, KB_EQ, V(ic), I(0)));
    kb_store(b, r.st, ADD(ADD(V(r.sb), I(lay->p)), V(e)), F(0));
    kb_end(b);
    kb_end(b);
  }

  kb_comment(b, "the loss gradient at the anchor: the error e of f_res at k_t");
  e = kb_parfor(b, "c", I(DK));
  kb_store(b, r.x_in, V(e), LD(ids[MS_K], MAD(V(row), DK, V(e))));
  kb_end(b);
  forward(&r, lay->anchor, r.x_in);
  int gamma = ids[MS_GAMMA], beta = ids[MS_BETA];
  double two_c = 2.0 * a->loss_scale;
  if (a->ln_residual) {
    /* through x + gamma LN(o) + beta (spec §1.1): u = 2c (k + gamma xhat + beta - v) gamma,
     * e = (D u - sum u - xhat sum(u xhat)) / (D sd) */
    layer_norm(&r, XH, SD);
    int one = kb_parfor(b, "one", I(1)); /* 0: its work-item */
    int su = kb_let(b, "su", KT_FLOAT, F(0)), sux = kb_let(b, "sux", KT_FLOAT, F(0));
    int i = kb_for(b, "i", V(one), I(DV));
    int g = kb_let(b, "g", KT_FLOAT, LD(gamma, MAD(V(h), DV, V(i))));
    int u = kb_let(b, "u", KT_FLOAT,
                   MUL(MUL(F(two_c), SUB(ADD(ADD(LD(r.x_in, V(i)), MUL(V(g), LD(XH, V(i)))),
                                             LD(beta, MAD(V(h), DV, V(i)))),
                                         LD(ids[MS_V], MAD(V(row), DV, V(i))))), V(g)));
    kb_store(b, E, V(i), V(u));
    kb_set(b, su, ADD(V(su), V(u)));
    kb_set(b, sux, ADD(V(sux), MUL(V(u), LD(XH, V(i)))));
    kb_end(b);
    i = kb_for(b, "i", I(0), I(DV));
    kb_store(b, E, V(i), DIV(SUB(SUB(MUL(F(DV), LD(E, V(i))), V(su)), MUL(LD(XH, V(i)), V(sux))),
                             MUL(F(DV), LD(SD, I(0)))));
    kb_end(b);
    kb_end(b);
  } else {
    int i = kb_parfor(b, "i", I(DV));
    kb_store(b, E, V(i), MUL(F(two_c), SUB(LD(r.O, V(i)), LD(ids[MS_V], MAD(V(row), DV, V(i))))));
    kb_end(b);
  }
  int64_t A2 = lay->anchor + DH * DK; /* the anchor's W2 */
  if (DH > 0) {
    int j = kb_parfor(b, "j", I(DH));
    int back = kb_let(b, "back", KT_FLOAT, F(0));
    int i = kb_for(b, "i", I(0), I(DV));
    kb_set(b, back, ADD(V(back), MUL(LD(r.st, ADD(V(r.sb), ADD(I(A2), MAD(V(i), DH, V(j))))),
                                     LD(E, V(i)))));
    kb_end(b);
    kb_store(b, DELTA, V(j), MUL(V(back), memory_act_grad(b, a->act, LD(r.Z, V(j)))));
    kb_store(b, HG, V(j), LD(r.HH, V(j)));
    kb_end(b);
  }

  kb_comment(b, "the query: q_t, or P q_t after P += k k^T / k.k");
  if (a->qkproj != MEM_QK_NONE) {
    int kk = kb_let(b, "kk", KT_FLOAT, F(0));
    int c = kb_for(b, "c", I(0), I(DK));
    kb_set(b, kk, ADD(V(kk), MUL(LD(r.x_in, V(c)), LD(r.x_in, V(c)))));
    kb_end(b);
    int inv = kb_let(b, "inv", KT_FLOAT, SEL(kx_bin(b, KB_GT, V(kk), F(0)), DIV(F(1), V(kk)), F(0)));
    int pe = kb_parfor(b, "e", I(DK * DK));
    kir_expr *pidx = ADD(ADD(V(r.sb), I(lay->p)), V(pe));
    kb_store(b, r.st, pidx, ADD(LD(r.st, pidx), MUL(MUL(LD(r.x_in, DIV(V(pe), I(DK))),
                                                        LD(r.x_in, REM(V(pe), I(DK)))), V(inv))));
    kb_end(b);
    int i = kb_parfor(b, "i", I(DK));
    int acc = kb_let(b, "acc", KT_FLOAT, F(0));
    c = kb_for(b, "c", I(0), I(DK));
    kb_set(b, acc, ADD(V(acc), MUL(LD(r.st, ADD(ADD(V(r.sb), I(lay->p)), MAD(V(i), DK, V(c)))),
                                   LD(ids[MS_Q], MAD(V(row), DK, V(c))))));
    kb_end(b);
    kb_store(b, XQ, V(i), V(acc));
    kb_end(b);
  } else {
    int i = kb_parfor(b, "i", I(DK));
    kb_store(b, XQ, V(i), LD(ids[MS_Q], MAD(V(row), DK, V(i))));
    kb_end(b);
  }

  /* The read: y_t = f(x; W after), f(x; A) or f(x; W before the update). */
  int64_t read_off = a->read == MEM_READ_CHUNK_START ? lay->anchor : lay->w;
  for (int pass = 0; pass < 2; pass++) {
    bool update = pass == (a->read == MEM_READ_EXCLUSIVE ? 1 : 0);
    if (update) {
      kb_comment(b, a->ttt_lr ? "TTT: G += theta g; W = A - row_i G"
                              : "update: Mom = eta Mom - theta g; W = (1 - alpha) W + Mom");
      int theta = kb_let(b, "theta", KT_FLOAT, LD(ids[MS_THETA], V(row)));
      int keep_m = !a->ttt_lr && lay->mom >= 0
                       ? kb_let(b, "keep_m", KT_FLOAT, a->momentum ? LD(ids[MS_ETA], V(row)) : F(0))
                       : -1;
      int keep_w = !a->ttt_lr ? kb_let(b, "keep_w", KT_FLOAT,
                                       a->decay ? SUB(F(1), LD(ids[MS_ALPHA], V(row))) : F(1))
                              : -1;
      int lr_row = -1;
      if (a->ttt_lr) {
        kir_expr *fi = kx_un(b, KU_TO_FLOAT, ADD(V(ic), I(1)));
        kir_expr *rowv = ADD(DIV(F(1), fi), LD(ids[MS_OFFSET], V(ic)));
        lr_row = kb_let(b, "lr_row", KT_FLOAT,
                        MUL(F(a->ttt_base / a->ttt_div), kx_bin(b, KB_MAX, rowv, F(0))));
      }
      int ue = kb_parfor(b, "e", I(NW));
      /* the gradient's element e: an outer product of an output error and an input */
      kir_expr *g;
      if (DH == 0) {
        kir_expr *is_w = LT(V(ue), I(DV * DK));
        kir_expr *wi = SEL(is_w, DIV(V(ue), I(DK)), SUB(V(ue), I(DV * DK)));
        kir_expr *in = SEL(is_w, LD(r.x_in, SEL(is_w, REM(V(ue), I(DK)), I(0))), F(1));
        g = MUL(LD(E, wi), in);
      } else {
        int64_t n1 = DH * DK, n2 = n1 + DV * DH, n3 = n2 + DH;
        kir_expr *in1 = LT(V(ue), I(n1)), *in2 = LT(V(ue), I(n2)), *in3 = LT(V(ue), I(n3));
        kir_expr *e2 = SUB(V(ue), I(n1));
        kir_expr *g1 = MUL(LD(DELTA, SEL(in1, DIV(V(ue), I(DK)), I(0))),
                           LD(r.x_in, SEL(in1, REM(V(ue), I(DK)), I(0))));
        kir_expr *g2 = MUL(LD(E, SEL(in2, DIV(e2, I(DH)), I(0))), LD(HG, SEL(in2, REM(e2, I(DH)), I(0))));
        kir_expr *gb1 = LD(DELTA, SEL(in3, SUB(V(ue), I(n2)), I(0)));
        kir_expr *gb2 = LD(E, SEL(in3, I(0), SUB(V(ue), I(n3))));
        g = SEL(in1, g1, SEL(in2, g2, SEL(in3, gb1, gb2)));
      }
      int gv = kb_let(b, "g", KT_FLOAT, g);
      kir_expr *widx = ADD(W, V(ue));
      if (a->ttt_lr) {
        kir_expr *midx = ADD(ADD(V(r.sb), I(lay->mom)), V(ue));
        int m = kb_let(b, "m", KT_FLOAT, ADD(LD(r.st, midx), MUL(V(theta), V(gv))));
        kb_store(b, r.st, midx, V(m));
        kb_store(b, r.st, widx, SUB(LD(r.st, ADD(ADD(V(r.sb), I(lay->anchor)), V(ue))),
                                    MUL(V(lr_row), V(m))));
      } else if (lay->mom >= 0) {
        kir_expr *midx = ADD(ADD(V(r.sb), I(lay->mom)), V(ue));
        int m = kb_let(b, "m", KT_FLOAT, SUB(MUL(V(keep_m), LD(r.st, midx)), MUL(V(theta), V(gv))));
        kb_store(b, r.st, midx, V(m));
        kb_store(b, r.st, widx, ADD(MUL(V(keep_w), LD(r.st, widx)), V(m)));
      } else {
        kb_store(b, r.st, widx, SUB(MUL(V(keep_w), LD(r.st, widx)), MUL(V(theta), V(gv))));
      }
      kb_end(b);
      continue;
    }
    kb_comment(b, "the read");
    forward(&r, read_off, XQ);
    int i;
    if (a->ln_residual) {
      layer_norm(&r, XH, SD);
      i = kb_parfor(b, "i", I(DV));
      kb_store(b, y, MAD(V(row), DV, V(i)),
               ADD(ADD(LD(XQ, V(i)), MUL(LD(gamma, MAD(V(h), DV, V(i))), LD(XH, V(i)))),
                   LD(beta, MAD(V(h), DV, V(i)))));
      kb_end(b);
    } else {
      i = kb_parfor(b, "i", I(DV));
      kb_store(b, y, MAD(V(row), DV, V(i)), LD(r.O, V(i)));
      kb_end(b);
    }
  }
  kb_set(b, phase, REM(ADD(V(phase), I(1)), I(period)));
  kb_end(b);

  if (sout >= 0) {
    kb_comment(b, "the state after the last token, the phase included");
    int se = kb_parfor(b, "e", I(NS));
    kb_if(b, kx_bin(b, KB_EQ, V(shard), I(shards - 1)));
    kb_store(b, sout, MAD(V(grp), NS, V(se)),
             SEL(kx_bin(b, KB_EQ, V(se), I(lay->phase)), kx_un(b, KU_TO_FLOAT, V(phase)),
                 LD(r.st, ADD(V(r.sb), V(se)))));
    kb_end(b);
    kb_end(b);
  }
  if ((rc = kb_finish(b, lc->err)))
    return rc;
  double per_token = (double)(NW * 8 + (DH > 0 ? 2 * (DH * DK + DV * DH) : 2 * DV * DK) * 2);
  double flops = (double)B * (double)H * (double)L * per_token;
  double bytes = 4.0 * (double)(B * L * H) * (double)(2 * DK + 2 * DV + 3);
  int64_t groups[3] = {H, B * shards, 1};
  if (kir_add_launch(lc->k, kid, groups, args, n, flops, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}
