/*
 * lower_plstm_dag.c: pLSTM on DAGs (spec plstm.md §1.2, §3.3), level-synchronous.
 *
 * A level is a set of nodes whose incoming states are all known: each of its nodes reads
 * them into its output, and each edge leaving it gets its state C_e = sum over arcs p->e of
 * T C_p + S_e (k v). Items of a level (node outputs and edge states, each split over the
 * value columns) are independent. Edge states live in a global buffer.
 *
 * Forms:
 *   levels     one launch per level over every graph of the batch (big graphs). Graphs
 *              are cut into parts whose edge states fit a budget; the parts run one after
 *              the other, reusing the state buffer;
 *   graph      work-groups take (graph, batch) pairs in turn and walk each graph's levels
 *              with barriers (many small graphs in one launch). A group keeps its graph's
 *              states in local memory when the largest graph's fit, else in a global slot
 *              of its own, so memory grows with the device, not with the batch;
 *   recurrent  the graph form with one node per level, in topological order.
 * The index tables (node and edge orders, level offsets, CSR of in-edges and in-arcs) are
 * constant buffers computed here, once, at compile time.
 */
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "lower_expr.h"

typedef struct dag_tables {
  int32_t *order, *eorder;   /* nodes / edges in processing order */
  int32_t *lstart, *estart;  /* per (graph, level) offsets into order / eorder */
  int32_t *gbase;            /* [n_graphs + 1] first lstart entry of each graph */
  int64_t n_lstart;
  int64_t max_level_items;   /* largest (nodes + edges) of any level */
} dag_tables;

static void free_tables(dag_tables *t)
{
  free(t->order);
  free(t->eorder);
  free(t->lstart);
  free(t->estart);
  free(t->gbase);
  memset(t, 0, sizeof *t);
}

/* Orders nodes and edges of each part by key (a node's key; an edge's is its tail's),
 * ties by id. parts: [n_parts + 1] node and edge ranges; n_keys[p] keys in part p. */
static int build_tables(const ir_dag *dag, const int64_t *key, int64_t n_parts,
                        const int64_t *node_start, const int64_t *edge_start,
                        const int64_t *n_keys, dag_tables *t)
{
  memset(t, 0, sizeof *t);
  int64_t total = 0;
  for (int64_t g = 0; g < n_parts; g++)
    total += n_keys[g] + 1;
  t->n_lstart = total;
  t->order = malloc(sizeof(int32_t) * (size_t)(dag->n_nodes + 1));
  t->eorder = malloc(sizeof(int32_t) * (size_t)(dag->n_edges + 1));
  t->lstart = calloc((size_t)total + 1, sizeof(int32_t));
  t->estart = calloc((size_t)total + 1, sizeof(int32_t));
  t->gbase = malloc(sizeof(int32_t) * (size_t)(n_parts + 1));
  if (!t->order || !t->eorder || !t->lstart || !t->estart || !t->gbase) {
    free_tables(t);
    return XY_E_NOMEM;
  }
  int64_t base = 0;
  for (int64_t g = 0; g < n_parts; g++) {
    t->gbase[g] = (int32_t)base;
    int32_t *ls = t->lstart + base, *es = t->estart + base;
    int64_t K = n_keys[g];
    for (int64_t n = node_start[g]; n < node_start[g + 1]; n++)
      ls[key[n] + 1]++;
    for (int64_t e = edge_start[g]; e < edge_start[g + 1]; e++)
      es[key[dag->tail[e]] + 1]++;
    ls[0] = (int32_t)node_start[g];
    es[0] = (int32_t)edge_start[g];
    for (int64_t k = 0; k < K; k++) {
      ls[k + 1] += ls[k];
      es[k + 1] += es[k];
    }
    /* Fill by walking ids in order, using the next free slot of each key. */
    int32_t *nfill = malloc(sizeof(int32_t) * (size_t)(K + 1));
    int32_t *efill = malloc(sizeof(int32_t) * (size_t)(K + 1));
    if (!nfill || !efill) {
      free(nfill);
      free(efill);
      free_tables(t);
      return XY_E_NOMEM;
    }
    memcpy(nfill, ls, sizeof(int32_t) * (size_t)K);
    memcpy(efill, es, sizeof(int32_t) * (size_t)K);
    for (int64_t n = node_start[g]; n < node_start[g + 1]; n++)
      t->order[nfill[key[n]]++] = (int32_t)n;
    for (int64_t e = edge_start[g]; e < edge_start[g + 1]; e++)
      t->eorder[efill[key[dag->tail[e]]]++] = (int32_t)e;
    for (int64_t k = 0; k < K; k++) {
      int64_t items = (ls[k + 1] - ls[k]) + (es[k + 1] - es[k]);
      if (items > t->max_level_items)
        t->max_level_items = items;
    }
    free(nfill);
    free(efill);
    base += K + 1;
  }
  t->gbase[n_parts] = (int32_t)base;
  return XY_OK;
}

/* Parameters every level kernel takes, in this order. */
typedef struct dag_params {
  int q, k, v, S, T, M, D, out, Cst;
  int order, eorder, lstart, estart, in_start, in_edges, arc_start, arcs, arc_src, tail, gbase;
} dag_params;

/* Graphs without edges have empty edge tensors; their parameters still need one element. */
static int64_t at_least_1(int64_t n)
{
  return n > 0 ? n : 1;
}

static void declare_params(kir_builder *b, const plstm_dims *d, const dag_tables *t,
                           int64_t n_gbase, int64_t state_floats, bool local_states,
                           dag_params *p)
{
  int64_t B = d->B, N = d->N, E = at_least_1(d->E), A = at_least_1(d->A);
  p->q = kb_global(b, "q", KT_FLOAT, B * N * d->DK * d->JQ, true);
  p->k = kb_global(b, "k", KT_FLOAT, B * N * d->DK * d->JK, true);
  p->v = kb_global(b, "v", KT_FLOAT, B * N * d->DV * d->JV, true);
  p->S = kb_global(b, "S", KT_FLOAT, at_least_1(B * d->E * d->JT * d->JK * d->JV), true);
  p->T = kb_global(b, "T", KT_FLOAT, at_least_1(B * d->A * d->JT * d->JT), true);
  p->M = kb_global(b, "M", KT_FLOAT, at_least_1(B * d->E * d->JO * d->JQ * d->JT), true);
  p->D = kb_global(b, "D", KT_FLOAT, B * N * d->JO * d->JQ * d->JK * d->JV, true);
  p->out = kb_global(b, "out", KT_FLOAT, B * N * d->DV * d->JO, false);
  p->Cst = local_states ? kb_local(b, "C_edge", KT_FLOAT, state_floats)
                        : kb_global(b, "C_edge", KT_FLOAT, state_floats, false);
  p->order = kb_global(b, "order", KT_INT, N, true);
  p->eorder = kb_global(b, "eorder", KT_INT, E, true);
  p->lstart = kb_global(b, "lstart", KT_INT, t->n_lstart, true);
  p->estart = kb_global(b, "estart", KT_INT, t->n_lstart, true);
  p->in_start = kb_global(b, "in_start", KT_INT, N + 1, true);
  p->in_edges = kb_global(b, "in_edges", KT_INT, E, true);
  p->arc_start = kb_global(b, "arc_start", KT_INT, d->E + 1, true);
  p->arcs = kb_global(b, "arcs", KT_INT, A, true);
  p->arc_src = kb_global(b, "arc_src", KT_INT, A, true);
  p->tail = kb_global(b, "tail", KT_INT, E, true);
  p->gbase = n_gbase > 0 ? kb_global(b, "gbase", KT_INT, n_gbase, true) : -1;
}

/* Node output: h = s (Dir + sum over incoming edges of R(q, M_e, C_e)), for VL value
 * columns from dv0. */
static void emit_node_item(kir_builder *b, const plstm_dims *d, const dag_params *p, int bi,
                           int sb, kir_expr *node_expr, kir_expr *dv_expr, double scale, int VL,
                           int VD)
{
  int64_t N = d->N, E = d->E;
  int64_t szM = d->JO * d->JQ * d->JT;
  int node = kb_let(b, "node", KT_INT, node_expr);
  int dv = kb_let(b, "dv", KT_INT, dv_expr);
  int row = kb_let(b, "row", KT_INT, MAD(V(bi), N, V(node)));
  int h = VL > 1 ? kb_private_vec(b, "h", VL, d->JO) : kb_private(b, "h", KT_FLOAT, d->JO);
  int qk = emit_qk(b, d, p->q, p->k, row, row, VD);
  emit_direct(b, d, p->D, p->v, qk, h, row, dv, VL);
  int j = kb_for(b, "j", LD(p->in_start, V(node)), LD(p->in_start, ADD(V(node), I(1))));
  int e = kb_let(b, "e", KT_INT, LD(p->in_edges, V(j)));
  int erow = kb_let(b, "erow", KT_INT, MAD(V(bi), E, V(e)));
  int srow = kb_let(b, "srow", KT_INT, ADD(V(sb), V(e)));
  int dk2 = kb_for(b, "dk", I(0), I(d->DK));
  kir_expr *t = jfor(b, "t", d->JT);
  int cval = kb_let(b, "cval", KT_FLOAT,
                    kx_vload(b, p->Cst, ADD(MAD(MAD(MAD(V(srow), d->DK, V(dk2)), d->DV, V(dv)), d->JT, I(0)), t), VL));
  kir_expr *aq = jfor(b, "aq", d->JQ);
  int qv = kb_let(b, "qv", KT_FLOAT, LD(p->q, ADD(MAD(MAD(V(row), d->DK, V(dk2)), d->JQ, I(0)), aq)));
  kir_expr *o = jfor(b, "o", d->JO);
  kb_store(b, h, o, ADD(LD(h, o), MUL(MUL(V(qv), LD(p->M, MAD(V(erow), szM, MAD(MAD(o, d->JQ, aq), d->JT, t)))),
                                      V(cval))));
  jend(b, d->JO);
  jend(b, d->JQ);
  jend(b, d->JT);
  kb_end(b);
  kb_end(b);
  o = jfor(b, "o", d->JO);
  kb_store(b, p->out, ADD(MAD(MAD(V(row), d->DV, V(dv)), d->JO, I(0)), o),
           MUL(LD(h, o), F(scale)));
  jend(b, d->JO);
}

/* Edge state: C_e = sum over arcs p->e of T_a C_p + S_e (k v) of its tail, for VL value
 * columns from dv0. */
static void emit_edge_item(kir_builder *b, const plstm_dims *d, const dag_params *p, int bi,
                           int sb, kir_expr *edge_expr, kir_expr *dv_expr, int VL)
{
  int64_t N = d->N, E = d->E, A = d->A;
  int64_t szS = d->JT * d->JK * d->JV;
  int e = kb_let(b, "e", KT_INT, edge_expr);
  int dv = kb_let(b, "dv", KT_INT, dv_expr);
  int erow = kb_let(b, "erow", KT_INT, MAD(V(bi), E, V(e)));
  int nrow = kb_let(b, "nrow", KT_INT, MAD(V(bi), N, LD(p->tail, V(e))));
  int a0 = kb_let(b, "a0", KT_INT, LD(p->arc_start, V(e)));
  int a1 = kb_let(b, "a1", KT_INT, LD(p->arc_start, ADD(V(e), I(1))));
  int dk = kb_for(b, "dk", I(0), I(d->DK));
  kir_expr *i = jfor(b, "i", d->JT);
  int acc = kb_let(b, "acc", KT_FLOAT, kx_splat(b, F(0), VL));
  int ai = kb_for(b, "ai", V(a0), V(a1));
  int arc = kb_let(b, "arc", KT_INT, LD(p->arcs, V(ai)));
  int prow = kb_let(b, "prow", KT_INT, ADD(V(sb), LD(p->arc_src, V(arc))));
  kir_expr *j = jfor(b, "j", d->JT);
  kb_set(b, acc, ADD(V(acc), MUL(
           LD(p->T, ADD(MAD(MAD(V(bi), A, V(arc)), d->JT * d->JT, I(0)), MAD(i, d->JT, j))),
           kx_vload(b, p->Cst, ADD(MAD(MAD(MAD(V(prow), d->DK, V(dk)), d->DV, V(dv)), d->JT, I(0)), j), VL))));
  jend(b, d->JT);
  kb_end(b);
  kir_expr *bk = jfor(b, "bk", d->JK);
  kir_expr *cv = jfor(b, "cv", d->JV);
  kir_expr *sk = MUL(LD(p->S, MAD(V(erow), szS, MAD(MAD(i, d->JK, bk), d->JV, cv))),
                     LD(p->k, ADD(MAD(MAD(V(nrow), d->DK, V(dk)), d->JK, I(0)), bk)));
  kb_set(b, acc, ADD(V(acc), MUL(sk, kx_vload(b, p->v, ADD(MAD(MAD(V(nrow), d->DV, V(dv)), d->JV, I(0)), cv), VL))));
  jend(b, d->JV);
  jend(b, d->JK);
  kb_store(b, p->Cst, ADD(MAD(MAD(MAD(ADD(V(sb), V(e)), d->DK, V(dk)), d->DV, V(dv)), d->JT, I(0)), i),
           V(acc));
  jend(b, d->JT);
  kb_end(b);
}

/* Item x of a level: x < nn*NB are node outputs, the next ne*NB edge states, NB = DV/VL
 * blocks of value columns each. */
static void emit_level_item(kir_builder *b, const plstm_dims *d, const dag_params *p, int bi,
                            int sb, int x, int s0, int nn, int e0, int ne, double scale, int VL,
                            int VD)
{
  int64_t NB = d->DV / VL;
  kb_if(b, LT(V(x), MUL(V(nn), I(NB))));
  emit_node_item(b, d, p, bi, sb, LD(p->order, ADD(V(s0), DIV(V(x), I(NB)))),
                 MUL(REM(V(x), I(NB)), I(VL)), scale, VL, VD);
  kb_else(b);
  int y = kb_let(b, "y", KT_INT, SUB(V(x), MUL(V(nn), I(NB))));
  kb_if(b, LT(V(y), MUL(V(ne), I(NB))));
  emit_edge_item(b, d, p, bi, sb, LD(p->eorder, ADD(V(e0), DIV(V(y), I(NB)))),
                 MUL(REM(V(y), I(NB)), I(VL)), VL);
  kb_end(b);
  kb_end(b);
}

void dag_largest(const ir_dag *dag, int64_t *nodes, int64_t *edges, int64_t *edge_graph)
{
  *nodes = *edges = *edge_graph = 0;
  for (int64_t g = 0; g < dag->n_graphs; g++) {
    int64_t n = dag->node_start[g + 1] - dag->node_start[g];
    int64_t e = dag->edge_start[g + 1] - dag->edge_start[g];
    if (n > *nodes)
      *nodes = n;
    if (e > *edges) {
      *edges = e;
      *edge_graph = g;
    }
  }
}

/* Levels form: consecutive graphs whose edge states (over the batch) fit `budget` floats
 * make a part; returns the number of parts and fills part_graph [parts + 1] (first graph of
 * each part) and the largest part's edge count. */
static int64_t cut_parts(const ir_dag *dag, int64_t floats_per_edge, int64_t budget,
                         int64_t *part_graph, int64_t *max_edges)
{
  int64_t parts = 0, first = 0;
  *max_edges = 0;
  part_graph[0] = 0;
  for (int64_t g = 0; g < dag->n_graphs; g++) {
    int64_t edges = dag->edge_start[g + 1] - dag->edge_start[first];
    if (g > first && edges * floats_per_edge > budget) {
      part_graph[++parts] = g;
      first = g;
    }
  }
  part_graph[++parts] = dag->n_graphs;
  for (int64_t p = 0; p < parts; p++) {
    int64_t e = dag->edge_start[part_graph[p + 1]] - dag->edge_start[part_graph[p]];
    if (e > *max_edges)
      *max_edges = e;
  }
  return parts;
}

int lower_plstm_dag(lower_ctx *lc, const ir_op *op)
{
  plstm_dims pd;
  int rc = plstm_scan_dims(lc->m, op, &pd, lc->err);
  if (rc)
    return rc;
  const plstm_dims *d = &pd;
  const ir_graph *g = &lc->m->graphs[op->graph];
  const ir_dag *dag = &g->dag;
  const ir_dag_prep *prep = &g->prep;
  if (!g->prepared)
    return xy_fail(lc->err, XY_E_INTERNAL, "'%s': DAG not prepared", op->name);
  ir_form form = op->sched.form;
  int64_t per_edge = d->DK * d->DV * d->JT;

  /* Keys: levels form = level (parts of graphs); graph form = level within the graph;
   * recurrent = position in the graph's topological order. */
  int64_t *key = malloc(sizeof(int64_t) * (size_t)(dag->n_nodes + 1));
  int64_t *n_keys = malloc(sizeof(int64_t) * (size_t)(dag->n_graphs + 1));
  int64_t *part_graph = malloc(sizeof(int64_t) * (size_t)(dag->n_graphs + 2));
  int64_t *part_nodes = malloc(sizeof(int64_t) * (size_t)(dag->n_graphs + 2));
  int64_t *part_edges = malloc(sizeof(int64_t) * (size_t)(dag->n_graphs + 2));
  if (!key || !n_keys || !part_graph || !part_nodes || !part_edges) {
    free(key);
    free(n_keys);
    free(part_graph);
    free(part_nodes);
    free(part_edges);
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  }
  int64_t parts = dag->n_graphs, part_max_edges = 0;
  if (form == IR_FORM_LEVELS) {
    /* Edge states of a part over the batch: within the device's largest buffer and 1 GiB. */
    uint64_t cap = lc->opt->device.max_alloc_bytes / 4;
    int64_t budget = (int64_t)(cap > 0 && cap < ((uint64_t)1 << 28) ? cap : ((uint64_t)1 << 28));
    parts = cut_parts(dag, d->B * per_edge, budget, part_graph, &part_max_edges);
    for (int64_t p = 0; p <= parts; p++) {
      part_nodes[p] = dag->node_start[part_graph[p]];
      part_edges[p] = dag->edge_start[part_graph[p]];
    }
    for (int64_t p = 0; p < parts; p++) {
      n_keys[p] = 0;
      for (int64_t gi = part_graph[p]; gi < part_graph[p + 1]; gi++)
        if (prep->graph_levels[gi] > n_keys[p])
          n_keys[p] = prep->graph_levels[gi];
    }
    for (int64_t n = 0; n < dag->n_nodes; n++)
      key[n] = prep->level[n];
  } else if (form == IR_FORM_RECURRENT) {
    for (int64_t gi = 0; gi < dag->n_graphs; gi++)
      n_keys[gi] = dag->node_start[gi + 1] - dag->node_start[gi];
    /* prep->topo is sorted by (level, id): a topological order of every graph at once. */
    int64_t *next = calloc((size_t)dag->n_graphs + 1, sizeof *next);
    int64_t *graph_of = malloc(sizeof(int64_t) * (size_t)(dag->n_nodes + 1));
    if (!next || !graph_of) {
      free(next);
      free(graph_of);
      free(key);
      free(n_keys);
      free(part_graph);
      free(part_nodes);
      free(part_edges);
      return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
    }
    for (int64_t gi = 0; gi < dag->n_graphs; gi++)
      for (int64_t n = dag->node_start[gi]; n < dag->node_start[gi + 1]; n++)
        graph_of[n] = gi;
    for (int64_t i = 0; i < dag->n_nodes; i++) {
      int64_t n = prep->topo[i];
      key[n] = next[graph_of[n]]++;
    }
    free(next);
    free(graph_of);
  } else {
    for (int64_t n = 0; n < dag->n_nodes; n++)
      key[n] = prep->level[n];
    for (int64_t gi = 0; gi < dag->n_graphs; gi++)
      n_keys[gi] = prep->graph_levels[gi];
  }
  dag_tables t;
  rc = build_tables(dag, key, parts, form == IR_FORM_LEVELS ? part_nodes : dag->node_start,
                    form == IR_FORM_LEVELS ? part_edges : dag->edge_start, n_keys, &t);
  free(key);
  free(n_keys);
  free(part_nodes);
  if (rc) {
    free(part_graph);
    free(part_edges);
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory building DAG tables");
  }

  /* Graph and recurrent forms: a fixed number of groups, each with room for the largest
   * graph's states, local when it fits. */
  int64_t max_graph_nodes, max_graph_edges, biggest;
  dag_largest(dag, &max_graph_nodes, &max_graph_edges, &biggest);
  max_graph_edges = at_least_1(max_graph_edges);
  int64_t pairs = dag->n_graphs * d->B, groups = 1, state_floats;
  bool local_states = false;
  if (form == IR_FORM_LEVELS) {
    state_floats = d->B * at_least_1(part_max_edges) * per_edge;
  } else {
    state_floats = max_graph_edges * per_edge;
    local_states = (uint64_t)state_floats * 4 <= local_budget(lc->opt);
    int64_t want = (int64_t)lc->opt->device.compute_units * (lc->opt->device.is_cpu ? 2 : 8);
    int64_t fit = local_states ? pairs : ((int64_t)1 << 28) / state_floats;
    groups = want < pairs ? want : pairs;
    groups = groups < fit ? groups : fit;
    if (groups < 1)
      groups = 1;
    if (!local_states)
      state_floats *= groups;
  }

  int32_t *in_start = lower_to_i32(prep->in_start, dag->n_nodes + 1);
  int32_t *in_edges = lower_to_i32(prep->in_edges, dag->n_edges);
  int32_t *arc_start = lower_to_i32(prep->arc_in_start, dag->n_edges + 1);
  int32_t *arcs = lower_to_i32(prep->arcs_in, dag->n_arcs);
  int32_t *arc_src = lower_to_i32(dag->arc_src, dag->n_arcs);
  int32_t *tail = lower_to_i32(dag->tail, dag->n_edges);
  int bufs[21];
  int n_bufs = 0;
  if (!in_start || !in_edges || !arc_start || !arcs || !arc_src || !tail) {
    rc = xy_fail(lc->err, XY_E_NOMEM, "out of memory");
    goto done;
  }
  for (int s = 0; s < 7; s++)
    bufs[n_bufs++] = lower_in(lc, op, s);
  bufs[n_bufs++] = lower_out(lc, op, 0);
  if (!local_states)
    bufs[n_bufs++] = lower_temp(lc, lower_name(lc, op, "C_edge"), state_floats);
  bufs[n_bufs++] = lower_const_ints(lc, op, "order", t.order, dag->n_nodes);
  bufs[n_bufs++] = lower_const_ints(lc, op, "eorder", t.eorder, dag->n_edges);
  bufs[n_bufs++] = lower_const_ints(lc, op, "lstart", t.lstart, t.n_lstart);
  bufs[n_bufs++] = lower_const_ints(lc, op, "estart", t.estart, t.n_lstart);
  bufs[n_bufs++] = lower_const_ints(lc, op, "in_start", in_start, dag->n_nodes + 1);
  bufs[n_bufs++] = lower_const_ints(lc, op, "in_edges", in_edges, dag->n_edges);
  bufs[n_bufs++] = lower_const_ints(lc, op, "arc_start", arc_start, dag->n_edges + 1);
  bufs[n_bufs++] = lower_const_ints(lc, op, "arcs", arcs, dag->n_arcs);
  bufs[n_bufs++] = lower_const_ints(lc, op, "arc_src", arc_src, dag->n_arcs);
  bufs[n_bufs++] = lower_const_ints(lc, op, "tail", tail, dag->n_edges);
  if (form != IR_FORM_LEVELS)
    bufs[n_bufs++] = lower_const_ints(lc, op, "gbase", t.gbase, dag->n_graphs + 1);
  for (int i = 0; i < n_bufs; i++)
    if (bufs[i] < 0) {
      rc = lc->err->code ? lc->err->code : XY_E_NOMEM;
      goto done;
    }

  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int wg = (int)op->sched.wg;
  int VL, VD;
  plstm_lanes(d, &op->sched, &VL, &VD);
  int64_t NB = d->DV / VL;
  dag_params p;
  double items_flops = 2.0 * (double)d->B *
      ((double)dag->n_nodes * (double)(d->DK * d->JQ * d->JK + d->JO * d->JQ * d->JK * d->JV * d->DV) +
       (double)dag->n_edges * (double)(d->DK * d->DV * d->JT * (d->JQ * d->JO + d->JK * d->JV)) +
       (double)dag->n_arcs * (double)(d->DK * d->DV * d->JT * d->JT));
  double items_bytes = 4.0 * (double)d->B *
      ((double)dag->n_nodes * (double)(d->DK * (d->JQ + d->JK) + d->DV * (d->JV + d->JO) +
                                       d->JO * d->JQ * d->JK * d->JV) +
       (double)dag->n_edges * (double)(d->JT * d->JK * d->JV + d->JO * d->JQ * d->JT) +
       (double)dag->n_arcs * (double)(d->JT * d->JT));
  int kid;
  if (form == IR_FORM_LEVELS) {
    kid = kb_kernel(b, lower_name(lc, op, "dag_level"), wg, 2,
                    "pLSTM on DAGs, levels form: one launch per level of a part of the graphs\n"
                    "(the int arguments: the level's table row, the part's first edge);\n"
                    "work-items split node outputs and edge states by value column (group\n"
                    "axis 0); batch on axis 1.");
    declare_params(b, d, &t, 0, state_floats, false, &p);
    int lvl = kb_int_param(b, "level");
    int ebase = kb_int_param(b, "ebase");
    int bi = kb_let(b, "b", KT_INT, GID(1));
    int sb = kb_let(b, "sb", KT_INT, SUB(MUL(V(bi), I(at_least_1(part_max_edges))), V(ebase)));
    int s0 = kb_let(b, "s0", KT_INT, LD(p.lstart, V(lvl)));
    int nn = kb_let(b, "nn", KT_INT, SUB(LD(p.lstart, ADD(V(lvl), I(1))), V(s0)));
    int e0 = kb_let(b, "e0", KT_INT, LD(p.estart, V(lvl)));
    int ne = kb_let(b, "ne", KT_INT, SUB(LD(p.estart, ADD(V(lvl), I(1))), V(e0)));
    int lane = kb_parfor(b, "lane", I(wg));
    int x = kb_let(b, "x", KT_INT, MAD(GID(0), wg, V(lane)));
    emit_level_item(b, d, &p, bi, sb, x, s0, nn, e0, ne, op->qk_scale, VL, VD);
    kb_end(b);
  } else {
    kid = kb_kernel(b, lower_name(lc, op, form == IR_FORM_GRAPH ? "dag_graph" : "dag_recurrent"),
                    wg, 1,
                    form == IR_FORM_GRAPH
                        ? "pLSTM on DAGs, graph form: each work-group takes (graph, batch) pairs\n"
                          "in turn and walks the graph's levels, its edge states in a slot of its\n"
                          "own; within a level, work-items split node outputs and edge states by\n"
                          "value column."
                        : "pLSTM on DAGs, recurrent form: each work-group takes (graph, batch)\n"
                          "pairs in turn and walks the graph's nodes in topological order.");
    declare_params(b, d, &t, dag->n_graphs + 1, state_floats, local_states, &p);
    int r = kb_for(b, "r", I(0), I((pairs + groups - 1) / groups));
    int w = kb_let(b, "w", KT_INT, MAD(V(r), groups, GID(0)));
    kb_if(b, LT(V(w), I(pairs)));
    int gi = kb_let(b, "g", KT_INT, DIV(V(w), I(d->B)));
    int bi = kb_let(b, "b", KT_INT, REM(V(w), I(d->B)));
    int base = kb_let(b, "base", KT_INT, LD(p.gbase, V(gi)));
    /* State row of edge e: the group's slot, numbered from the graph's first edge. */
    kir_expr *slot = local_states ? I(0) : MUL(GID(0), I(max_graph_edges));
    int sb = kb_let(b, "sb", KT_INT, SUB(slot, LD(p.estart, V(base))));
    int nlev = kb_let(b, "nlev", KT_INT, SUB(SUB(LD(p.gbase, ADD(V(gi), I(1))), V(base)), I(1)));
    int l = kb_for(b, "l", I(0), V(nlev));
    int s0 = kb_let(b, "s0", KT_INT, LD(p.lstart, ADD(V(base), V(l))));
    int nn = kb_let(b, "nn", KT_INT, SUB(LD(p.lstart, ADD(ADD(V(base), V(l)), I(1))), V(s0)));
    int e0 = kb_let(b, "e0", KT_INT, LD(p.estart, ADD(V(base), V(l))));
    int ne = kb_let(b, "ne", KT_INT, SUB(LD(p.estart, ADD(ADD(V(base), V(l)), I(1))), V(e0)));
    int x = kb_parfor(b, "x", MUL(ADD(V(nn), V(ne)), I(NB)));
    emit_level_item(b, d, &p, bi, sb, x, s0, nn, e0, ne, op->qk_scale, VL, VD);
    kb_end(b);
    kb_end(b);
    kb_end(b);
    kb_end(b);
  }
  if ((rc = kb_finish(b, lc->err)))
    goto done;

  kir_arg args[23];
  for (int i = 0; i < n_bufs; i++)
    args[i] = (kir_arg){true, bufs[i]};
  if (form == IR_FORM_LEVELS) {
    for (int64_t pi = 0; pi < parts; pi++)
      for (int64_t l = 0; l + 1 < t.gbase[pi + 1] - t.gbase[pi]; l++) {
        int64_t row = t.gbase[pi] + l;
        int64_t items = (int64_t)(t.lstart[row + 1] - t.lstart[row]) +
                        (t.estart[row + 1] - t.estart[row]);
        if (items == 0)
          continue;
        int64_t grid[3] = {(items * NB + wg - 1) / wg, d->B, 1};
        args[n_bufs] = (kir_arg){false, row};
        args[n_bufs + 1] = (kir_arg){false, part_edges[pi]};
        double share = (double)items / (double)(dag->n_nodes + dag->n_edges);
        if (kir_add_launch(lc->k, kid, grid, args, n_bufs + 2, items_flops * share,
                           items_bytes * share) < 0) {
          rc = xy_fail(lc->err, XY_E_NOMEM, "out of memory");
          goto done;
        }
      }
  } else {
    int64_t grid[3] = {groups, 1, 1};
    if (kir_add_launch(lc->k, kid, grid, args, n_bufs, items_flops, items_bytes) < 0)
      rc = xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  }

done:
  free(in_start);
  free(in_edges);
  free(arc_start);
  free(arcs);
  free(arc_src);
  free(tail);
  free(part_graph);
  free(part_edges);
  free_tables(&t);
  return rc;
}
