/*
 * lower_plstm_dag_dense.c: pLSTM on DAGs in the dense form (spec plstm.md §3.3), J = 1.
 *
 * Stack a graph's edge states: Tm[e, f] = T of the arc f -> e, Sm[e, n] = S_e when n is the
 * tail of e, Mm[n, e] = M_e when e enters n. Then the gating matrix over node pairs is
 *
 *   G = Mm (I - Tm)^-1 Sm + diag(D),   out_n = s Σ_m G[n, m] (q_n . k_m) v_m,
 *
 * linear attention with a mask made of graph paths. Tm is nilpotent: with L the most edges
 * on one path, Tm^L = 0, so (I - Tm)^-1 = Σ_{j<L} Tm^j = Π_{k<K} (I + Tm^(2^k)), K =
 * ceil(log2 L). The kernel builds X = (I - Tm)^-1 Sm as X <- X + P X, P <- P P, K times:
 * log depth in the path length, where the level forms walk every level.
 *
 * Edges and nodes are numbered within their graph by level (of the tail, for an edge), so
 * every arc goes from a lower edge number to a higher one: P and its powers are strictly
 * lower triangular and the products skip the zero half. One work-group takes one (graph,
 * batch) pair at a time and keeps its matrices in a global scratch slot of its own; a
 * fixed number of groups walk all pairs, so the scratch is the size of that many slots.
 */
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "lower_expr.h"
#include "passes.h"

/* Per-graph numbering: nodes and edges by level, then id. */
typedef struct dense_tables {
  int32_t *norder, *npos;   /* position -> node id, node id -> position within its graph */
  int32_t *eorder, *epos;   /* the same for edges, by their tail's level */
  int32_t *nstart, *estart; /* [n_graphs + 1] */
  int32_t *squarings;       /* [n_graphs] K */
} dense_tables;

static void free_dense_tables(dense_tables *t)
{
  free(t->norder);
  free(t->npos);
  free(t->eorder);
  free(t->epos);
  free(t->nstart);
  free(t->estart);
  free(t->squarings);
  memset(t, 0, sizeof *t);
}

static int32_t ceil_log2(int64_t n)
{
  int32_t k = 0;
  while (((int64_t)1 << k) < n)
    k++;
  return k;
}

static bool build_dense_tables(const ir_dag *dag, const ir_dag_prep *prep, dense_tables *t)
{
  memset(t, 0, sizeof *t);
  int64_t G = dag->n_graphs, N = dag->n_nodes, E = dag->n_edges;
  t->norder = malloc(sizeof(int32_t) * (size_t)(N + 1));
  t->npos = malloc(sizeof(int32_t) * (size_t)(N + 1));
  t->eorder = malloc(sizeof(int32_t) * (size_t)(E + 1));
  t->epos = malloc(sizeof(int32_t) * (size_t)(E + 1));
  t->nstart = malloc(sizeof(int32_t) * (size_t)(G + 1));
  t->estart = malloc(sizeof(int32_t) * (size_t)(G + 1));
  t->squarings = malloc(sizeof(int32_t) * (size_t)(G + 1));
  int64_t *fill = malloc(sizeof(int64_t) * (size_t)(G + 1));
  int64_t *graph_of = malloc(sizeof(int64_t) * (size_t)(N + 1));
  bool ok = t->norder && t->npos && t->eorder && t->epos && t->nstart && t->estart &&
            t->squarings && fill && graph_of;
  if (ok) {
    for (int64_t g = 0; g <= G; g++) {
      t->nstart[g] = (int32_t)dag->node_start[g];
      t->estart[g] = (int32_t)dag->edge_start[g];
    }
    for (int64_t g = 0; g < G; g++) {
      /* A path of a graph with l levels has at most l - 1 edges. */
      t->squarings[g] = ceil_log2(prep->graph_levels[g] - 1);
      for (int64_t v = dag->node_start[g]; v < dag->node_start[g + 1]; v++)
        graph_of[v] = g;
      fill[g] = dag->node_start[g];
    }
    /* prep->topo is sorted by (level, id) over all graphs: each graph's share of it is. */
    for (int64_t i = 0; i < N; i++) {
      int64_t v = prep->topo[i], g = graph_of[v];
      t->norder[fill[g]] = (int32_t)v;
      t->npos[v] = (int32_t)(fill[g] - dag->node_start[g]);
      fill[g]++;
    }
    /* Edges: walk the nodes in that order and take each one's out-edges. */
    for (int64_t g = 0; g < G; g++)
      fill[g] = dag->edge_start[g];
    for (int64_t i = 0; i < N; i++) {
      int64_t v = prep->topo[i], g = graph_of[v];
      for (int64_t j = prep->out_start[v]; j < prep->out_start[v + 1]; j++) {
        int64_t e = prep->out_edges[j];
        t->eorder[fill[g]] = (int32_t)e;
        t->epos[e] = (int32_t)(fill[g] - dag->edge_start[g]);
        fill[g]++;
      }
    }
  }
  free(fill);
  free(graph_of);
  if (!ok)
    free_dense_tables(t);
  return ok;
}

/* Floats of one group's scratch slot: P and its next power, X and its next value, the
 * scores. */
static bool slot_floats(int64_t max_n, int64_t max_e, int64_t *out)
{
  int64_t ee, en, nn;
  if (!xy_mul_i64(max_e, max_e, &ee) || !xy_mul_i64(max_e, max_n, &en) ||
      !xy_mul_i64(max_n, max_n, &nn) || !xy_mul_i64(ee + en, 2, out) ||
      !xy_add_i64(*out, nn, out))
    return false;
  if (*out < 1)
    *out = 1;
  return true;
}

int dense_scratch_plan(const xy_compile_options *opt, const ir_graph *g, int64_t batch,
                       int64_t *groups, int64_t *slot, xy_error *err, const char *op)
{
  const ir_dag *dag = &g->dag;
  int64_t max_n, max_e, big;
  dag_largest(dag, &max_n, &max_e, &big);
  if (!slot_floats(max_n, max_e, slot) || *slot > KIR_MAX_ELEMENTS / 4)
    return xy_fail(err, XY_E_DEVICE, "'%s': the dense form does not fit graph %lld (%lld "
                   "edges): its matrices need more than 2^29 floats; use --form graph or levels",
                   op, (long long)big, (long long)max_e);
  /* Enough groups to fill the device, within 2^28 floats (1 GiB) of scratch. */
  int64_t want = (int64_t)opt->device.compute_units * (opt->device.is_cpu ? 1 : 4);
  int64_t pairs = dag->n_graphs * batch, fit = ((int64_t)1 << 28) / *slot;
  if (want < 1)
    want = 1;
  if (want > pairs)
    want = pairs;
  if (want > fit)
    want = fit;
  *groups = want > 0 ? want : 1;
  return XY_OK;
}

enum {
  P_Q, P_K, P_V, P_S, P_T, P_M, P_D, P_OUT, P_SCRATCH, P_NORDER, P_NPOS, P_EORDER, P_EPOS,
  P_NSTART, P_ESTART, P_SQUARINGS, P_IN_START, P_IN_EDGES, P_ARC_START, P_ARCS, P_ARC_SRC,
  P_TAIL, P_COUNT
};

typedef struct dense_kernel {
  int a[P_COUNT];      /* kernel arrays, in parameter order */
  int64_t groups, slot, pairs, B, N, E, A;
} dense_kernel;

/* X <- X + P X over the (edge, node) entries; P strictly lower triangular. */
static void emit_apply(kir_builder *b, int sc, int ne, int nn, int p, int x, int xn)
{
  int i = kb_parfor(b, "i", MUL(V(ne), V(nn)));
  int e = kb_let(b, "e", KT_INT, DIV(V(i), V(nn)));
  int c = kb_let(b, "c", KT_INT, REM(V(i), V(nn)));
  int acc = kb_let(b, "acc", KT_FLOAT, LD(sc, ADD(V(x), V(i))));
  int f = kb_for(b, "f", I(0), V(e));
  kb_set(b, acc, ADD(V(acc), MUL(LD(sc, ADD(V(p), ADD(MUL(V(e), V(ne)), V(f)))),
                                 LD(sc, ADD(V(x), ADD(MUL(V(f), V(nn)), V(c)))))));
  kb_end(b);
  kb_store(b, sc, ADD(V(xn), V(i)), V(acc));
  kb_end(b);
}

/* P' = P P: entry (e, f) sums over f < h < e. */
static void emit_square(kir_builder *b, int sc, int ne, int p, int pn)
{
  int i = kb_parfor(b, "i", MUL(V(ne), V(ne)));
  int e = kb_let(b, "e", KT_INT, DIV(V(i), V(ne)));
  int f = kb_let(b, "f", KT_INT, REM(V(i), V(ne)));
  int acc = kb_let(b, "acc", KT_FLOAT, F(0));
  int h = kb_for(b, "h", ADD(V(f), I(1)), V(e));
  kb_set(b, acc, ADD(V(acc), MUL(LD(sc, ADD(V(p), ADD(MUL(V(e), V(ne)), V(h)))),
                                 LD(sc, ADD(V(p), ADD(MUL(V(h), V(ne)), V(f)))))));
  kb_end(b);
  kb_store(b, sc, ADD(V(pn), V(i)), V(acc));
  kb_end(b);
}

static void emit_body(kir_builder *b, const plstm_dims *d, const dense_kernel *k, double scale,
                      int VL, int VD)
{
  const int *a = k->a;
  int sc = a[P_SCRATCH];
  int64_t NB = d->DV / VL;
  int64_t rounds = (k->pairs + k->groups - 1) / k->groups;
  int r = kb_for(b, "r", I(0), I(rounds));
  int w = kb_let(b, "w", KT_INT, MAD(V(r), k->groups, GID(0)));
  kb_if(b, LT(V(w), I(k->pairs)));
  int g = kb_let(b, "g", KT_INT, DIV(V(w), I(k->B)));
  int bi = kb_let(b, "b", KT_INT, REM(V(w), I(k->B)));
  int n0 = kb_let(b, "n0", KT_INT, LD(a[P_NSTART], V(g)));
  int nn = kb_let(b, "nn", KT_INT, SUB(LD(a[P_NSTART], ADD(V(g), I(1))), V(n0)));
  int e0 = kb_let(b, "e0", KT_INT, LD(a[P_ESTART], V(g)));
  int ne = kb_let(b, "ne", KT_INT, SUB(LD(a[P_ESTART], ADD(V(g), I(1))), V(e0)));
  int base = kb_let(b, "base", KT_INT, MUL(GID(0), I(k->slot)));
  /* Slot layout for this graph: P, P', X, X', scores, each packed to its sizes. */
  int p = kb_let(b, "p", KT_INT, V(base));
  int pn = kb_let(b, "pn", KT_INT, ADD(V(p), MUL(V(ne), V(ne))));
  int x = kb_let(b, "x", KT_INT, ADD(V(pn), MUL(V(ne), V(ne))));
  int xn = kb_let(b, "xn", KT_INT, ADD(V(x), MUL(V(ne), V(nn))));
  int sco = kb_let(b, "sco", KT_INT, ADD(V(xn), MUL(V(ne), V(nn))));

  kb_comment(b, "P = Tm, X = Sm, in this graph's edge and node numbering.");
  int i = kb_parfor(b, "i", ADD(MUL(V(ne), V(ne)), MUL(V(ne), V(nn))));
  kb_store(b, sc, ADD(V(p), SEL(LT(V(i), MUL(V(ne), V(ne))), V(i),
                                ADD(V(i), MUL(V(ne), V(ne))))), F(0));
  kb_end(b);
  int e = kb_parfor(b, "e", V(ne));
  int eid = kb_let(b, "eid", KT_INT, LD(a[P_EORDER], ADD(V(e0), V(e))));
  int ai = kb_for(b, "ai", LD(a[P_ARC_START], V(eid)), LD(a[P_ARC_START], ADD(V(eid), I(1))));
  int arc = kb_let(b, "arc", KT_INT, LD(a[P_ARCS], V(ai)));
  int f = kb_let(b, "f", KT_INT, LD(a[P_EPOS], LD(a[P_ARC_SRC], V(arc))));
  kb_store(b, sc, ADD(V(p), ADD(MUL(V(e), V(ne)), V(f))),
           LD(a[P_T], MAD(V(bi), k->A, V(arc))));
  kb_end(b);
  kb_store(b, sc, ADD(V(x), ADD(MUL(V(e), V(nn)), LD(a[P_NPOS], LD(a[P_TAIL], V(eid))))),
           LD(a[P_S], MAD(V(bi), k->E, V(eid))));
  kb_end(b);

  kb_comment(b, "X = (I + P^(2^(K-1))) ... (I + P^2)(I + P) Sm, squaring P as it goes.");
  int sq = kb_let(b, "sq", KT_INT, LD(a[P_SQUARINGS], V(g)));
  int step = kb_for(b, "step", I(0), V(sq));
  emit_apply(b, sc, ne, nn, p, x, xn);
  kb_if(b, LT(ADD(V(step), I(1)), V(sq)));
  emit_square(b, sc, ne, p, pn);
  kb_end(b);
  int tmp = kb_let(b, "tmp", KT_INT, V(p));
  kb_set(b, p, V(pn));
  kb_set(b, pn, V(tmp));
  kb_set(b, tmp, V(x));
  kb_set(b, x, V(xn));
  kb_set(b, xn, V(tmp));
  kb_end(b);

  kb_comment(b, "Scores: G[n, m] (q_n . k_m) for m <= n (later nodes never reach n).");
  i = kb_parfor(b, "i", MUL(V(nn), V(nn)));
  int n = kb_let(b, "n", KT_INT, DIV(V(i), V(nn)));
  int m = kb_let(b, "m", KT_INT, REM(V(i), V(nn)));
  kb_if(b, kx_bin(b, KB_LE, V(m), V(n)));
  int node = kb_let(b, "node", KT_INT, LD(a[P_NORDER], ADD(V(n0), V(n))));
  int src = kb_let(b, "src", KT_INT, LD(a[P_NORDER], ADD(V(n0), V(m))));
  int gv = kb_let(b, "gv", KT_FLOAT,
                  SEL(kx_bin(b, KB_EQ, V(m), V(n)), LD(a[P_D], MAD(V(bi), k->N, V(node))), F(0)));
  int j = kb_for(b, "j", LD(a[P_IN_START], V(node)), LD(a[P_IN_START], ADD(V(node), I(1))));
  int ein = kb_let(b, "ein", KT_INT, LD(a[P_IN_EDGES], V(j)));
  kb_set(b, gv, ADD(V(gv), MUL(LD(a[P_M], MAD(V(bi), k->E, V(ein))),
                               LD(sc, ADD(V(x), ADD(MUL(LD(a[P_EPOS], V(ein)), V(nn)), V(m)))))));
  kb_end(b);
  int qrow = kb_let(b, "qrow", KT_INT, MAD(V(bi), k->N, V(node)));
  int krow = kb_let(b, "krow", KT_INT, MAD(V(bi), k->N, V(src)));
  int qk = emit_qk(b, d, a[P_Q], a[P_K], qrow, krow, VD);
  kb_store(b, sc, ADD(V(sco), V(i)), MUL(V(gv), LD(qk, I(0))));
  kb_end(b);
  kb_end(b);

  kb_comment(b, "out_n = s sum_{m <= n} score[n, m] v_m, VL value columns per item.");
  i = kb_parfor(b, "i", MUL(V(nn), I(NB)));
  n = kb_let(b, "n", KT_INT, DIV(V(i), I(NB)));
  int dv = kb_let(b, "dv", KT_INT, MUL(REM(V(i), I(NB)), I(VL)));
  int acc = kb_let(b, "acc", KT_FLOAT, kx_splat(b, F(0), VL));
  m = kb_for(b, "m", I(0), ADD(V(n), I(1)));
  int vrow = kb_let(b, "vrow", KT_INT, MAD(V(bi), k->N, LD(a[P_NORDER], ADD(V(n0), V(m)))));
  kb_set(b, acc, ADD(V(acc), MUL(LD(sc, ADD(V(sco), ADD(MUL(V(n), V(nn)), V(m)))),
                                 kx_vload(b, a[P_V], MAD(V(vrow), d->DV, V(dv)), VL))));
  kb_end(b);
  int orow = kb_let(b, "orow", KT_INT, MAD(V(bi), k->N, LD(a[P_NORDER], ADD(V(n0), V(n)))));
  kb_store(b, a[P_OUT], MAD(V(orow), d->DV, V(dv)), MUL(V(acc), F(scale)));
  kb_end(b);

  kb_end(b); /* if w < pairs */
  kb_end(b); /* rounds */
}

static int64_t nonzero(int64_t n)
{
  return n > 0 ? n : 1;
}

int lower_plstm_dag_dense(lower_ctx *lc, const ir_op *op)
{
  plstm_dims pd;
  int rc = plstm_scan_dims(lc->m, op, &pd, lc->err);
  if (rc)
    return rc;
  const plstm_dims *d = &pd;
  if (d->JQ != 1 || d->JK != 1 || d->JV != 1 || d->JT != 1 || d->JO != 1)
    return xy_fail(lc->err, XY_E_USAGE, "'%s': the dense form takes J = 1 only; use --form "
                   "graph or levels", op->name);
  const ir_graph *g = &lc->m->graphs[op->graph];
  const ir_dag *dag = &g->dag;
  const ir_dag_prep *prep = &g->prep;
  if (!g->prepared)
    return xy_fail(lc->err, XY_E_INTERNAL, "'%s': DAG not prepared", op->name);
  dense_kernel k = {.B = d->B, .N = d->N, .E = nonzero(d->E), .A = nonzero(d->A)};
  k.pairs = dag->n_graphs * d->B;
  if ((rc = dense_scratch_plan(lc->opt, g, d->B, &k.groups, &k.slot, lc->err, op->name)))
    return rc;
  dense_tables t;
  if (!build_dense_tables(dag, prep, &t))
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory building DAG tables");
  int32_t *tabs[6] = {0};
  const int64_t *src64[6] = {prep->in_start, prep->in_edges, prep->arc_in_start, prep->arcs_in,
                             dag->arc_src, dag->tail};
  int64_t lens[6] = {dag->n_nodes + 1, dag->n_edges, dag->n_edges + 1, dag->n_arcs,
                     dag->n_arcs, dag->n_edges};
  int bufs[P_COUNT];
  for (int s = 0; s < 6; s++)
    if (!(tabs[s] = lower_to_i32(src64[s], lens[s]))) {
      rc = xy_fail(lc->err, XY_E_NOMEM, "out of memory");
      goto done;
    }
  for (int s = 0; s < 7; s++)
    bufs[P_Q + s] = lower_in(lc, op, s);
  bufs[P_OUT] = lower_out(lc, op, 0);
  bufs[P_SCRATCH] = lower_temp(lc, lower_name(lc, op, "dense"), k.groups * k.slot);
  bufs[P_NORDER] = lower_const_ints(lc, op, "norder", t.norder, dag->n_nodes);
  bufs[P_NPOS] = lower_const_ints(lc, op, "npos", t.npos, dag->n_nodes);
  bufs[P_EORDER] = lower_const_ints(lc, op, "eorder", t.eorder, dag->n_edges);
  bufs[P_EPOS] = lower_const_ints(lc, op, "epos", t.epos, dag->n_edges);
  bufs[P_NSTART] = lower_const_ints(lc, op, "nstart", t.nstart, dag->n_graphs + 1);
  bufs[P_ESTART] = lower_const_ints(lc, op, "estart", t.estart, dag->n_graphs + 1);
  bufs[P_SQUARINGS] = lower_const_ints(lc, op, "squarings", t.squarings, dag->n_graphs);
  static const char *const tab_names[6] = {"in_start", "in_edges", "arc_start", "arcs",
                                           "arc_src", "tail"};
  for (int s = 0; s < 6; s++)
    bufs[P_IN_START + s] = lower_const_ints(lc, op, tab_names[s], tabs[s], lens[s]);
  for (int s = 0; s < P_COUNT; s++)
    if (bufs[s] < 0) {
      rc = lc->err->code ? lc->err->code : XY_E_NOMEM;
      goto done;
    }

  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int VL, VD;
  plstm_lanes(d, &op->sched, &VL, &VD);
  int kid = kb_kernel(b, lower_name(lc, op, "dag_dense"), (int)op->sched.wg, 1,
                      "pLSTM on DAGs, dense form: each work-group takes (graph, batch) pairs in\n"
                      "turn, builds X = (I - Tm)^-1 Sm by log-depth products in its scratch slot,\n"
                      "then applies G = Mm X + diag(D) like attention.");
  int64_t counts[P_COUNT] = {
    d->B * d->N * d->DK, d->B * d->N * d->DK, d->B * d->N * d->DV, k.B * k.E, k.B * k.A,
    k.B * k.E, d->B * d->N, d->B * d->N * d->DV, k.groups * k.slot, nonzero(dag->n_nodes),
    nonzero(dag->n_nodes), nonzero(dag->n_edges), nonzero(dag->n_edges), dag->n_graphs + 1,
    dag->n_graphs + 1, nonzero(dag->n_graphs), dag->n_nodes + 1, nonzero(dag->n_edges),
    dag->n_edges + 1, nonzero(dag->n_arcs), nonzero(dag->n_arcs), nonzero(dag->n_edges)};
  static const char *const names[P_COUNT] = {
    "q", "k", "v", "S", "T", "M", "D", "out", "scratch", "norder", "npos", "eorder", "epos",
    "nstart", "estart", "squarings", "in_start", "in_edges", "arc_start", "arcs", "arc_src",
    "tail"};
  for (int s = 0; s < P_COUNT; s++)
    k.a[s] = kb_global(b, names[s], s < P_NORDER ? KT_FLOAT : KT_INT, counts[s],
                       s != P_OUT && s != P_SCRATCH);
  emit_body(b, d, &k, op->qk_scale, VL, VD);
  if ((rc = kb_finish(b, lc->err)))
    goto done;

  /* Work: per (graph, batch), K (E^2 N / 2 + E^3 / 6) for the products, N^2 / 2 (DK + DV)
   * for the attention. */
  double flops = 0, bytes = 0;
  for (int64_t gi = 0; gi < dag->n_graphs; gi++) {
    double n = (double)(t.nstart[gi + 1] - t.nstart[gi]);
    double e = (double)(t.estart[gi + 1] - t.estart[gi]);
    flops += 2.0 * (t.squarings[gi] * (e * e * n / 2 + e * e * e / 6) +
                    n * n / 2 * (double)(d->DK + d->DV));
    bytes += 4.0 * (n * (double)(2 * d->DK + 2 * d->DV + 1) + 2 * e);
  }
  flops *= (double)d->B;
  bytes = bytes * (double)d->B + 4.0 * (double)(d->B * dag->n_arcs);
  kir_arg args[P_COUNT];
  for (int s = 0; s < P_COUNT; s++)
    args[s] = (kir_arg){true, bufs[s]};
  int64_t groups[3] = {k.groups, 1, 1};
  if (kir_add_launch(lc->k, kid, groups, args, P_COUNT, flops, bytes) < 0)
    rc = xy_fail(lc->err, XY_E_NOMEM, "out of memory");

done:
  for (int s = 0; s < 6; s++)
    free(tabs[s]);
  free_dense_tables(&t);
  return rc;
}
