/*
 * lower_memory_chunks.c: the sequential kernel of memory_scan's chunked form (spec tnt.md
 * §2.3): one work-group per (head, batch element, shard) walks the shard's chunks. For a
 * chunk of n tokens with anchor W (and momentum Mom):
 *
 *   e_j = 2c (W k_j + b - v_j)                                  errors at the anchor
 *   y_i = rb_i W x_i + rf_i Mom x_i - sum_{j<=i} RG_ij (x_i . k_j + [bias]) e_j
 *   W   = b_end W + f_end Mom - sum_j ge_j e_j k_j^T            (the bias: k_j -> 1)
 *   Mom = m_end Mom - sum_j se_j e_j k_j^T
 *
 * with the coefficients of lower_memory_chunked.c. Chunk-start reads (no RG) take the
 * chunk a tile of tokens at a time and accumulate the update in DW, DM.
 *
 * Layout, for speed: W, Mom and the tiles of keys and queries are [rows][KS] in local
 * memory when they fit (each in priority order, else in global scratch). On GPUs the
 * work-items of a warp read different rows at the same column, so KS = DK + 1 keeps the
 * rows in different banks; on CPUs the dot products run on VC-lane vectors along DK
 * (explicit vectors are what makes PoCL fast) and KS = DK. On GPUs with idle compute
 * units, a linear memory without the LayerNorm wrapper also splits its value rows over
 * work-groups (group axis 0 is head x row slice).
 */
#include "lower_expr.h"
#include "lower_memory.h"

/* An array the kernel reads as [rows][KS]: local, or a slice of a global scratch buffer. */
typedef struct placed {
  int arr;   /* kernel array, -1 when absent */
  int base;  /* var: the group's first element */
} placed;

typedef struct ck {
  kir_builder *b;
  const chunk_io *io;
  const geometry *g;
  const ir_memory_attrs *a;
  int64_t DK, DV, KS, VC;
  int bi, h;          /* vars */
  placed W, M;
  int KT, QT;         /* local tiles [rows][KS], or -1: read the inputs directly */
  int k_in, x_in;     /* the key and query (or projected query) inputs */
} ck;

/* Index of element (r, c) of a [rows][KS] placed array. */
static kir_expr *at(ck *k, const placed *p, kir_expr *r, kir_expr *c)
{
  kir_builder *b = k->b;
  return ADD(V(p->base), ADD(MUL(r, I(k->KS)), c));
}

/* The bias of row r, stored after the DV rows. */
static kir_expr *bias_at(ck *k, const placed *p, kir_expr *r)
{
  kir_builder *b = k->b;
  return ADD(V(p->base), ADD(I(k->DV * k->KS), r));
}

static kir_expr *row_at(ck *k, kir_expr *t, int64_t D, kir_expr *c)
{
  return memory_row_at(k->b, k->io, t, D, c);
}

/* Where row j of the keys (tile row, or the input at token t + j) and row ii of the
 * query block (tile row, or the input at token tq + ii) start. */
static kir_expr *key_base(ck *k, int t, kir_expr *j)
{
  kir_builder *b = k->b;
  return k->KT >= 0 ? MUL(j, I(k->KS)) : row_at(k, ADD(V(t), j), k->DK, I(0));
}

static kir_expr *query_base(ck *k, int tq, kir_expr *ii)
{
  kir_builder *b = k->b;
  return k->QT >= 0 ? MUL(ii, I(k->KS)) : row_at(k, ADD(V(tq), ii), k->DK, I(0));
}

/* Writes element e (a var) of the slice's weights p (rows r0.., [DV][DK] then the DV
 * biases) to its place in a state row at base: W [DVG][DK] then the DVG biases. */
static void state_row(ck *k, int e, int r0, int64_t DVG, int sout, kir_expr *base, const placed *p)
{
  kir_builder *b = k->b;
  int64_t DK = k->DK, DV = k->DV;
  kir_expr *in_w = LT(V(e), I(DV * DK));
  int r = kb_let(b, "r", KT_INT, SEL(in_w, DIV(V(e), I(DK)), SUB(V(e), I(DV * DK))));
  int c = kb_let(b, "c", KT_INT, SEL(LT(V(e), I(DV * DK)), REM(V(e), I(DK)), I(0)));
  kir_expr *dst = SEL(LT(V(e), I(DV * DK)), MAD(ADD(V(r0), V(r)), DK, V(c)),
                      ADD(I(DVG * DK), ADD(V(r0), V(r))));
  kir_expr *src = SEL(LT(V(e), I(DV * DK)), at(k, p, V(r), V(c)), bias_at(k, p, V(r)));
  kb_store(b, sout, ADD(base, dst), LD(p->arr, src));
}

/* Copies rows [t, t + count) of a [B,L,H,DK] input into a [rows][KS] tile. */
static void load_tile(ck *k, int tile, int input, int t, kir_expr *count)
{
  kir_builder *b = k->b;
  int jc = kb_parfor(b, "jc", MUL(count, I(k->DK)));
  int j = kb_let(b, "j", KT_INT, DIV(V(jc), I(k->DK))), c = kb_let(b, "c", KT_INT, REM(V(jc), I(k->DK)));
  kb_store(b, tile, MAD(V(j), k->KS, V(c)), LD(input, row_at(k, ADD(V(t), V(j)), k->DK, V(c))));
  kb_end(b);
}

int memory_chunks_kernel(lower_ctx *lc, const ir_op *op, const geometry *g,
                         const memory_dims *d, int coef, int xbuf)
{
  const ir_memory_attrs *a = &op->attr.memory;
  const mem_state_layout *lay = &d->state;
  int64_t C = g->C, DK = g->DK, DVG = g->DV, NW = g->NW, NCO = g->NCO, NS = lay->count;
  /* On GPUs, when the batch, heads and shards leave compute units idle, each group takes a
   * slice of the value rows: without the LayerNorm wrapper row r of W (and Mom) depends
   * only on column r of the errors. The scores are then computed once per slice. */
  int64_t RS = 1, groups_bhs = g->B * g->H * g->shards;
  int64_t min_rows = C >= 32 ? 16 : 8;
  if (!lc->opt->device.is_cpu && !a->ln_residual)
    while (DVG % (RS * 2) == 0 && DVG / (RS * 2) >= min_rows &&
           groups_bhs * RS < 2 * (int64_t)(lc->opt->device.compute_units ? lc->opt->device.compute_units : 64))
      RS *= 2;
  int64_t DV = DVG / RS; /* the group's value rows */
  int64_t qt = C < MEMORY_QT ? C : MEMORY_QT, ER = memory_error_rows(a);
  int64_t groups_n = g->H * g->B * g->shards * RS;
  bool has_mom = lay->mom >= 0, bias = a->bias, intra = memory_reads_within_chunk(a);
  bool tiled = !intra;
  int64_t VC = memory_vector_width(lc->opt, DK);
  int64_t KS = VC > 1 ? DK : DK + 1, NP = DV * KS + (bias ? DV : 0);

  /* Local memory: the error tile, scores and LayerNorm rows must fit; then W, the key
   * tile, the query tile, Mom, DW, DM in that order, each where it fits. */
  uint64_t budget = local_budget(lc->opt);
  uint64_t used = 4u * (uint64_t)(ER * DV + (intra ? qt * C : 0) + (a->ln_residual ? qt * DV : 0));
  if (used > budget)
    return local_overflow(lc->err, lc->opt, op->name, "the chunked form's error tile", used,
                          "use --form recurrent");
  bool fits[6];
  uint64_t want[6] = {4u * (uint64_t)NP, 4u * (uint64_t)(ER * KS), 4u * (uint64_t)(qt * KS),
                      has_mom ? 4u * (uint64_t)NP : 0, tiled ? 4u * (uint64_t)NP : 0,
                      tiled && has_mom ? 4u * (uint64_t)NP : 0};
  for (int i = 0; i < 6; i++) {
    fits[i] = want[i] > 0 && used + want[i] <= budget;
    if (fits[i])
      used += want[i];
  }

  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int kid = kb_kernel(b, lower_name(lc, op, "chunks"), (int)op->sched.wg, 2,
                      "memory_scan chunked form: one head (group axis 0) and (batch, shard)\n"
                      "(axis 1) walks its chunks: errors at the anchor, the dual-form read, the\n"
                      "rank-n update of W (and Mom).");
  kir_arg args[24];
  chunk_io io;
  int n_args = memory_chunk_io(b, lc, op, g, d, coef, xbuf, &io, args);
  const int *ids = io.ids;
  int cf = io.cf, xq = io.xq, y = io.y, sout = io.sout;
  ck k = {.b = b, .g = g, .a = a, .io = &io, .DK = DK, .DV = DV, .KS = KS, .VC = VC, .KT = -1, .QT = -1,
          .W = {-1, -1}, .M = {-1, -1}, .k_in = ids[MS_K], .x_in = xq};
  placed DW = {-1, -1}, DM = {-1, -1};
  int rc = memory_place(lc, op, b, "w", NP, groups_n, fits[0], args, &n_args, &k.W.arr);
  if (!rc && has_mom)
    rc = memory_place(lc, op, b, "mom", NP, groups_n, fits[3], args, &n_args, &k.M.arr);
  if (!rc && tiled)
    rc = memory_place(lc, op, b, "dw", NP, groups_n, fits[4], args, &n_args, &DW.arr);
  if (!rc && tiled && has_mom)
    rc = memory_place(lc, op, b, "dm", NP, groups_n, fits[5], args, &n_args, &DM.arr);
  if (rc)
    return rc;
  if (fits[1])
    k.KT = kb_local(b, "kt", KT_FLOAT, ER * KS);
  if (fits[2])
    k.QT = kb_local(b, "qt", KT_FLOAT, qt * KS);
  int E = kb_local(b, "e", KT_FLOAT, ER * DV);
  int SC = intra ? kb_local(b, "sc", KT_FLOAT, qt * C) : -1;
  int OY = a->ln_residual ? kb_local(b, "oy", KT_FLOAT, qt * DV) : -1;

  memory_chunk_group(b, &io, RS);
  int r0 = kb_let(b, "r0", KT_INT, io.rs >= 0 ? MUL(V(io.rs), I(DV)) : I(0)); /* the slice's first value row */
  k.h = io.h;
  k.bi = io.bi;
  int s = io.s;
  placed *all[4] = {&k.W, &k.M, &DW, &DM};
  bool loc[4] = {fits[0], fits[3], fits[4], fits[5]};
  static const char *bases[4] = {"wb", "mb", "dwb", "dmb"};
  for (int i = 0; i < 4; i++)
    if (all[i]->arr >= 0)
      all[i]->base = kb_let(b, bases[i], KT_INT,
                            loc[i] ? I(0) : MUL(V(memory_group_index(b, &io)), I(NP)));
  int s0, send;
  memory_shard_range(b, g, s, &s0, &send);
  int last_shard = sout >= 0 ? kb_let(b, "last", KT_BOOL, kx_bin(b, KB_EQ, V(send), I(g->L))) : -1;
  /* Counts as variables: parfors then render as strided loops; as `if (lid < n)` blocks in
   * a larger group, PoCL 3.1 lost this kernel's state update (DK = DV = 3, 16 items). */
  int np = kb_let(b, "np", KT_INT, I(NP)), dvk = kb_let(b, "dvk", KT_INT, I(DV * DK / VC));
  int dv = bias ? kb_let(b, "dv", KT_INT, I(DV)) : -1;
  int winit = ids[MS_WINIT];
  kir_expr *sbase = MUL(MAD(V(k.bi), g->H, V(k.h)), I(NS)); /* this (b, h)'s state_out row */

  /* Element e of the padded layout [DV][KS] + bias as (r, c); c >= DK is padding. */
  kb_comment(b, "the shard starts from W_init, Mom = 0");
  int e = kb_parfor(b, "e", V(np));
  {
    kir_expr *in_w = LT(V(e), I(DV * KS));
    int r = kb_let(b, "r", KT_INT, SEL(in_w, DIV(V(e), I(KS)), SUB(V(e), I(DV * KS))));
    int c = kb_let(b, "c", KT_INT, SEL(in_w, REM(V(e), I(KS)), I(0)));
    kir_expr *src = SEL(LT(V(e), I(DV * KS)), MAD(ADD(V(r0), V(r)), DK, V(c)),
                        ADD(I(DVG * DK), ADD(V(r0), V(r))));
    kir_expr *real = kx_bin(b, KB_OR, kx_bin(b, KB_GE, V(e), I(DV * KS)), LT(V(c), I(DK)));
    int w0 = kb_let(b, "w0", KT_FLOAT, F(0));
    if (winit >= 0) {
      kb_if(b, real);
      kb_set(b, w0, LD(winit, MAD(V(k.h), NW, src)));
      kb_end(b);
    }
    kb_store(b, k.W.arr, ADD(V(k.W.base), V(e)), V(w0));
    if (has_mom)
      kb_store(b, k.M.arr, ADD(V(k.M.base), V(e)), F(0));
  }
  kb_end(b);

  int t0 = memory_chunk_loop(b, g, s0, send);
  int n = kb_let(b, "n", KT_INT, MIN(I(C), SUB(V(send), V(t0))));
  int cb = kb_let(b, "cb", KT_INT, MUL(MAD(MAD(V(k.bi), g->H, V(k.h)), g->chunks, DIV(V(t0), I(C))),
                                       I(NCO)));
  const coef_layout *co = &g->co;
  if (sout >= 0) {
    kb_comment(b, "the final state's anchor is the last chunk's starting W");
    e = kb_parfor(b, "e", I(DV * DK + (bias ? DV : 0)));
    kb_if(b, kx_bin(b, KB_EQ, ADD(V(t0), V(n)), I(g->L)));
    state_row(&k, e, r0, DVG, sout, ADD(sbase, I(lay->anchor)), &k.W);
    kb_end(b);
    kb_end(b);
  }

  int t1 = t0, m = n, jo = -1; /* the error tile: tokens [t1, t1 + m), jo into the chunk */
  if (tiled) {
    kb_comment(b, "no read looks inside the chunk: its errors go a tile at a time, the update accumulates");
    e = kb_parfor(b, "e", V(np));
    kb_store(b, DW.arr, ADD(V(DW.base), V(e)), F(0));
    if (has_mom)
      kb_store(b, DM.arr, ADD(V(DM.base), V(e)), F(0));
    kb_end(b);
    int tile = kb_for(b, "tile", I(0), DIV(ADD(V(n), I(ER - 1)), I(ER)));
    jo = kb_let(b, "jo", KT_INT, MUL(V(tile), I(ER)));
    t1 = kb_let(b, "t1", KT_INT, ADD(V(t0), V(jo)));
    m = kb_let(b, "m", KT_INT, MIN(I(ER), SUB(V(n), V(jo))));
  }
  if (k.KT >= 0)
    load_tile(&k, k.KT, k.k_in, t1, V(m));

  kb_comment(b, "errors at the anchor: e_j = 2c (W k_j + b - v_j)");
  double two_c = 2.0 * a->loss_scale;
  int jr = kb_parfor(b, "jr", MUL(V(m), I(DV)));
  int j = kb_let(b, "j", KT_INT, DIV(V(jr), I(DV))), r = kb_let(b, "r", KT_INT, REM(V(jr), I(DV)));
  {
    kir_expr *dp = memory_dot(b, VC, k.W.arr, at(&k, &k.W, V(r), I(0)), k.KT >= 0 ? k.KT : k.k_in,
                              key_base(&k, t1, V(j)), DK, "acc");
    int o = kb_let(b, "o", KT_FLOAT, bias ? ADD(dp, LD(k.W.arr, bias_at(&k, &k.W, V(r)))) : dp);
    kb_store(b, E, V(jr), a->ln_residual ? V(o)
                                         : MUL(F(two_c), SUB(V(o), LD(ids[MS_V], row_at(&k, ADD(V(t1), V(j)), DVG, ADD(V(r0), V(r)))))));
  }
  kb_end(b);
  if (a->ln_residual)
    memory_ln_backward(b, &io, E, -1, V(m), t1);

  kb_comment(b, "the read, QT query rows at a time: y_i = rb_i W x_i + rf_i Mom x_i - sum_j RG_ij (x_i.k_j) e_j");
  int i0 = kb_for(b, "i0", I(0), DIV(ADD(V(m), I(qt - 1)), I(qt)));
  int ib = kb_let(b, "ib", KT_INT, MUL(V(i0), I(qt)));
  int nq = kb_let(b, "nq", KT_INT, MIN(I(qt), SUB(V(m), V(ib))));
  int tq = kb_let(b, "tq", KT_INT, ADD(V(t1), V(ib))); /* the block's first token */
  if (k.QT >= 0)
    load_tile(&k, k.QT, k.x_in, tq, V(nq));
  if (intra) {
    int ij = kb_parfor(b, "ij", MUL(V(nq), V(n)));
    int ii = kb_let(b, "ii", KT_INT, DIV(V(ij), V(n)));
    int i = kb_let(b, "i", KT_INT, ADD(V(ib), V(ii)));
    j = kb_let(b, "j", KT_INT, REM(V(ij), V(n)));
    int val = kb_let(b, "val", KT_FLOAT, F(0));
    kb_if(b, kx_bin(b, KB_LE, V(j), V(i)));
    {
      kir_expr *dp = memory_dot(b, VC, k.QT >= 0 ? k.QT : k.x_in, query_base(&k, tq, V(ii)),
                                k.KT >= 0 ? k.KT : k.k_in, key_base(&k, t1, V(j)), DK, "dp");
      kb_set(b, val, MUL(bias ? ADD(dp, F(1)) : dp, LD(cf, ADD(V(cb), MAD(V(i), C, V(j))))));
    }
    kb_end(b);
    kb_store(b, SC, MAD(V(ii), C, V(j)), V(val));
    kb_end(b);
  }
  int ir = kb_parfor(b, "ir", MUL(V(nq), I(DV)));
  int ii = kb_let(b, "ii", KT_INT, DIV(V(ir), I(DV)));
  int i = intra ? kb_let(b, "i", KT_INT, ADD(V(ib), V(ii))) : -1; /* the row in the chunk */
  r = kb_let(b, "r", KT_INT, REM(V(ir), I(DV)));
  int yv;
  {
    int qa = k.QT >= 0 ? k.QT : k.x_in;
    kir_expr *wx = memory_dot(b, VC, k.W.arr, at(&k, &k.W, V(r), I(0)), qa,
                              query_base(&k, tq, V(ii)), DK, "wx");
    if (bias)
      wx = ADD(wx, LD(k.W.arr, bias_at(&k, &k.W, V(r))));
    yv = kb_let(b, "yv", KT_FLOAT, intra ? MUL(LD(cf, ADD(V(cb), ADD(I(co->rb), V(i)))), wx) : wx);
    if (has_mom && intra && !a->ttt_lr) {
      kir_expr *mx = memory_dot(b, VC, k.M.arr, at(&k, &k.M, V(r), I(0)), qa,
                                query_base(&k, tq, V(ii)), DK, "mx");
      if (bias)
        mx = ADD(mx, LD(k.M.arr, bias_at(&k, &k.M, V(r))));
      kb_set(b, yv, ADD(V(yv), MUL(LD(cf, ADD(V(cb), ADD(I(co->rf), V(i)))), mx)));
    }
  }
  if (intra) {
    j = kb_for(b, "j", I(0), ADD(V(i), I(1)));
    kb_set(b, yv, SUB(V(yv), MUL(LD(SC, MAD(V(ii), C, V(j))), LD(E, MAD(V(j), DV, V(r))))));
    kb_end(b);
  }
  if (a->ln_residual)
    kb_store(b, OY, V(ir), V(yv));
  else
    kb_store(b, y, row_at(&k, ADD(V(tq), V(ii)), DVG, ADD(V(r0), V(r))), V(yv));
  kb_end(b);
  if (a->ln_residual)
    memory_ln_read(b, &io, OY, -1, V(nq), tq);
  kb_end(b); /* the query blocks */

  /* The rank-m update, VC features of one row per work-item; the bias rows after. Direct
   * when reads look inside the chunk (one tile), accumulated in DW, DM otherwise. */
  kb_comment(b, intra ? "the update: W = b_end W + f_end Mom - sum_j ge_j e_j k_j^T, Mom = m_end Mom - sum_j se_j e_j k_j^T"
                      : "the tile's share of the update: DW += sum_j ge_j e_j k_j^T, DM += sum_j se_j e_j k_j^T");
  for (int part = 0; part < (bias ? 2 : 1); part++) {
    bool is_bias = part == 1;
    int lanes = is_bias ? 1 : (int)VC;
    e = kb_parfor(b, "e", V(is_bias ? dv : dvk));
    r = kb_let(b, "r", KT_INT, is_bias ? V(e) : DIV(V(e), I(DK / VC)));
    int c = is_bias ? -1 : kb_let(b, "c", KT_INT, MUL(REM(V(e), I(DK / VC)), I(VC)));
    int sg = kb_let(b, "sg", KT_FLOAT, kx_splat(b, F(0), lanes));
    int ss = has_mom ? kb_let(b, "ss", KT_FLOAT, kx_splat(b, F(0), lanes)) : -1;
    j = kb_for(b, "j", I(0), V(m));
    kir_expr *in;
    if (is_bias)
      in = F(1);
    else if (k.KT >= 0)
      in = kx_vload(b, k.KT, MAD(V(j), KS, V(c)), lanes);
    else
      in = kx_vload(b, k.k_in, row_at(&k, ADD(V(t1), V(j)), DK, V(c)), lanes);
    int ek = kb_let(b, "ek", KT_FLOAT, MUL(kx_splat(b, LD(E, MAD(V(j), DV, V(r))), lanes), in));
    kir_expr *jc = jo >= 0 ? ADD(V(jo), V(j)) : V(j); /* the token's place in its chunk */
    kb_set(b, sg, ADD(V(sg), MUL(kx_splat(b, LD(cf, ADD(V(cb), ADD(I(co->ge), jc))), lanes), V(ek))));
    if (ss >= 0)
      kb_set(b, ss, ADD(V(ss), MUL(kx_splat(b, LD(cf, ADD(V(cb), ADD(I(co->se), jo >= 0 ? ADD(V(jo), V(j)) : V(j)))), lanes),
                                   V(ek))));
    kb_end(b);
    placed *pw = &k.W, *pm = &k.M;
    kir_expr *wi = is_bias ? bias_at(&k, &k.W, V(r)) : at(&k, &k.W, V(r), V(c));
    if (tiled) {
      kir_expr *di = is_bias ? bias_at(&k, &DW, V(r)) : at(&k, &DW, V(r), V(c));
      kb_store(b, DW.arr, di, ADD(kx_vload(b, DW.arr, di, lanes), V(sg)));
      if (ss >= 0) {
        kir_expr *mi = is_bias ? bias_at(&k, &DM, V(r)) : at(&k, &DM, V(r), V(c));
        kb_store(b, DM.arr, mi, ADD(kx_vload(b, DM.arr, mi, lanes), V(ss)));
      }
    } else {
      int wv = kb_let(b, "wv", KT_FLOAT, MUL(kx_splat(b, LD(cf, ADD(V(cb), I(co->end))), lanes),
                                               kx_vload(b, pw->arr, wi, lanes)));
      if (has_mom) {
        kir_expr *mi = is_bias ? bias_at(&k, pm, V(r)) : at(&k, pm, V(r), V(c));
        int mv = kb_let(b, "mv", KT_FLOAT, kx_vload(b, pm->arr, mi, lanes));
        if (!a->ttt_lr)
          kb_set(b, wv, ADD(V(wv), MUL(kx_splat(b, LD(cf, ADD(V(cb), I(co->end + 1))), lanes), V(mv))));
        kb_store(b, pm->arr, is_bias ? bias_at(&k, pm, V(r)) : at(&k, pm, V(r), V(c)),
                 SUB(MUL(kx_splat(b, LD(cf, ADD(V(cb), I(co->end + 2))), lanes), V(mv)), V(ss)));
      }
      kb_store(b, pw->arr, is_bias ? bias_at(&k, pw, V(r)) : at(&k, pw, V(r), V(c)), SUB(V(wv), V(sg)));
    }
    kb_end(b);
  }
  if (tiled) {
    kb_end(b); /* the tile loop */
    kb_comment(b, "the update: W = b_end W + f_end Mom - DW, Mom = m_end Mom - DM");
    e = kb_parfor(b, "e", V(np));
    kir_expr *wi = ADD(V(k.W.base), V(e));
    int wv = kb_let(b, "wv", KT_FLOAT, MUL(LD(cf, ADD(V(cb), I(co->end))), LD(k.W.arr, wi)));
    if (has_mom) {
      kir_expr *mi = ADD(V(k.M.base), V(e));
      int mv = kb_let(b, "mv", KT_FLOAT, LD(k.M.arr, mi));
      kb_set(b, wv, ADD(V(wv), MUL(LD(cf, ADD(V(cb), I(co->end + 1))), V(mv))));
      kb_store(b, k.M.arr, ADD(V(k.M.base), V(e)),
               SUB(MUL(LD(cf, ADD(V(cb), I(co->end + 2))), V(mv)), LD(DM.arr, ADD(V(DM.base), V(e)))));
    }
    kb_store(b, k.W.arr, ADD(V(k.W.base), V(e)), SUB(V(wv), LD(DW.arr, ADD(V(DW.base), V(e)))));
    kb_end(b);
  }
  kb_end(b); /* the chunk loop */

  if (sout >= 0) {
    kb_comment(b, "the final state: W, Mom and the phase (the anchor and P are written above)");
    e = kb_parfor(b, "e", I(DV * DK + (bias ? DV : 0)));
    kb_if(b, V(last_shard));
    state_row(&k, e, r0, DVG, sout, ADD(sbase, I(lay->w)), &k.W);
    if (has_mom)
      state_row(&k, e, r0, DVG, sout, ADD(sbase, I(lay->mom)), &k.M);
    kb_if(b, kx_bin(b, KB_AND, kx_bin(b, KB_EQ, V(e), I(0)), kx_bin(b, KB_EQ, V(r0), I(0))));
    int64_t period = a->reset > 0 ? a->reset : a->chunk;
    kb_store(b, sout, ADD(sbase, I(lay->phase)), F((double)(g->L % period)));
    kb_end(b);
    kb_end(b);
    kb_end(b);
  }
  if ((rc = kb_finish(b, lc->err)))
    return rc;
  double BHL = (double)(g->B * g->H * g->L);
  double flops = BHL * (double)(2 * DVG * DK * (has_mom && intra ? 3 : 2) + 2 * NW * (has_mom ? 2 : 1) +
                                (intra ? C * (DK + DVG) : 0));
  double bytes = 4.0 * BHL * (double)(2 * DK + 2 * DVG) + 4.0 * (double)(g->B * g->H * g->chunks * NCO);
  int64_t groups[3] = {g->H * RS, g->B * g->shards, 1};
  if (kir_add_launch(lc->k, kid, groups, args, n_args, flops, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}
