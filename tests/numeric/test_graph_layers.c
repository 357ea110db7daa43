/* test_graph_layers.c: the graph layers (plstm_graph, plstm_graph_edge; docs/layers.md)
 * on random DAG files written here, with random weights written as safetensors and read
 * back by name, in both modes, forward and reversed:
 *   1. a straightforward float64 computation written here from the formulas (the
 *      reference's pLSTMGraphLayer / pLSTMGraphEdgeLayer: gates from the weights, the
 *      node-wise slots and the edge layer's concatenations, the P-mode normalisations,
 *      the recurrence node by node over the line graph as plstm_graph_nodewise and
 *      plstm_graph run it, per-head RMSNorm, the output projection) matches the
 *      interpreter to 1e-10. The slots and the full line graph, forward and reversed, are
 *      derived here too and compared with the module's; the multitree pruning of D mode
 *      (the front end's, tested with the graph files) is taken from the module;
 *   2. the compiled program on OpenCL (PoCL) and C matches the interpreter within 1e-5. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "interp.h"
#include "program.h"

typedef struct gcase {
  const char *name;
  bool edge, mode_d, reverse;
  int64_t H, DK, DV, D, EF, max_edges;
  const char *extra;     /* more layer keys, or "" */
  uint64_t seed;
  int graphs, max_nodes, max_deg;
  const char *form;      /* the scan's form on OpenCL (NULL: the cost model's) */
} gcase;

/* ------------------------------------------------------------------ the graph */

/* A file's DAGs with global ids: edges in file order (sorted by tail, tail < head). */
typedef struct gdag {
  int64_t N, E, A;
  int64_t *tail, *head;        /* as the layer sees them (reversed when the case is) */
  int64_t *out_slot, *in_slot; /* the reference's slots, derived here */
  int64_t *asrc, *adst;        /* arcs: the full line graph, or the module's pruned one */
  int64_t *gstart;             /* [graphs + 1] first node of each graph */
  int graphs;
} gdag;

static void gdag_free(gdag *g)
{
  free(g->tail);
  free(g->head);
  free(g->out_slot);
  free(g->in_slot);
  free(g->asrc);
  free(g->adst);
  free(g->gstart);
}

/* Random DAGs: graph 0 a lone node, the others 2..max_nodes nodes, edges u < v taken in
 * order (so sorted by tail), in- and out-degrees at most max_deg. Returns the file text. */
static char *random_graphs(const gcase *c, gdag *g)
{
  xy_rng rng;
  xy_rng_seed(&rng, c->seed);
  memset(g, 0, sizeof *g);
  g->graphs = c->graphs;
  int64_t cap = (int64_t)c->graphs * c->max_nodes * c->max_deg + 1;
  g->tail = calloc((size_t)cap, sizeof(int64_t));
  g->head = calloc((size_t)cap, sizeof(int64_t));
  g->gstart = calloc((size_t)c->graphs + 1, sizeof(int64_t));
  int64_t *indeg = calloc((size_t)(c->graphs * c->max_nodes) + 1, sizeof(int64_t));
  int64_t *outdeg = calloc((size_t)(c->graphs * c->max_nodes) + 1, sizeof(int64_t));
  size_t tcap = 64 + (size_t)cap * 24;
  char *text = malloc(tcap);
  assert_true(g->tail && g->head && g->gstart && indeg && outdeg && text);
  size_t len = (size_t)snprintf(text, tcap, "{\"graphs\": [");
  for (int k = 0; k < c->graphs; k++) {
    int64_t n = k == 0 ? 1 : 2 + (int64_t)xy_rng_uniform(&rng, 0, c->max_nodes - 1);
    int64_t n0 = g->N;
    g->N += n;
    len += (size_t)snprintf(text + len, tcap - len, "%s\n {\"nodes\": %lld, \"edges\": [",
                            k ? "," : "", (long long)n);
    bool first = true;
    for (int64_t u = 0; u < n; u++)
      for (int64_t v = u + 1; v < n; v++) {
        if (outdeg[n0 + u] >= c->max_deg || indeg[n0 + v] >= c->max_deg ||
            xy_rng_uniform(&rng, 0, 1) > 0.5)
          continue;
        g->tail[g->E] = n0 + u;
        g->head[g->E] = n0 + v;
        g->E++;
        outdeg[n0 + u]++;
        indeg[n0 + v]++;
        len += (size_t)snprintf(text + len, tcap - len, "%s[%lld,%lld]", first ? "" : ",",
                                (long long)u, (long long)v);
        first = false;
      }
    len += (size_t)snprintf(text + len, tcap - len, "]}");
    g->gstart[k + 1] = g->N;
  }
  snprintf(text + len, tcap - len, "\n]}\n");
  free(indeg);
  free(outdeg);
  return text;
}

/* The layer's orientation and the reference's slots: forward, an edge's position among its
 * tail's out-edges in file order and among its head's in-edges by tail; reversed
 * (revert_dag, then dagify), among the new tail's out-edges by descending new head and
 * among the new head's in-edges by descending new tail. */
static void orient_and_slot(gdag *g, bool reverse)
{
  g->out_slot = calloc((size_t)g->E + 1, sizeof(int64_t));
  g->in_slot = calloc((size_t)g->E + 1, sizeof(int64_t));
  assert_true(g->out_slot && g->in_slot);
  if (reverse)
    for (int64_t e = 0; e < g->E; e++) {
      int64_t t = g->tail[e];
      g->tail[e] = g->head[e];
      g->head[e] = t;
    }
  for (int64_t e = 0; e < g->E; e++)
    for (int64_t f = 0; f < g->E; f++) {
      if (f == e)
        continue;
      if (g->tail[f] == g->tail[e] && (reverse ? g->head[f] > g->head[e] : f < e))
        g->out_slot[e]++;
      if (g->head[f] == g->head[e] && (reverse ? g->tail[f] > g->tail[e] : g->tail[f] < g->tail[e]))
        g->in_slot[e]++;
    }
}

static void full_line_graph(gdag *g)
{
  g->A = 0;
  for (int64_t p = 0; p < g->E; p++)
    for (int64_t e = 0; e < g->E; e++)
      g->A += g->head[p] == g->tail[e];
  g->asrc = calloc((size_t)g->A + 1, sizeof(int64_t));
  g->adst = calloc((size_t)g->A + 1, sizeof(int64_t));
  assert_true(g->asrc && g->adst);
  int64_t a = 0;
  for (int64_t p = 0; p < g->E; p++)
    for (int64_t e = 0; e < g->E; e++)
      if (g->head[p] == g->tail[e]) {
        g->asrc[a] = p;
        g->adst[a++] = e;
      }
}

/* The scan's DAG in the module: same orientation and slots as derived here; the same arcs
 * as the full line graph, or (multitree) a subset of it, which then replaces ours. */
static void check_module_graph(const ir_module *m, gdag *g, bool multitree)
{
  int scan = -1;
  for (int i = 0; i < m->n_ops; i++)
    if (m->ops[i].code == IR_OP_PLSTM_SCAN)
      scan = i;
  assert_true(scan >= 0);
  const ir_dag *d = &m->graphs[m->ops[scan].graph].dag;
  assert_int_equal(d->n_nodes, g->N);
  assert_int_equal(d->n_edges, g->E);
  for (int64_t e = 0; e < g->E; e++) {
    if (d->tail[e] != g->tail[e] || d->head[e] != g->head[e])
      fail_msg("edge %lld runs %lld -> %lld in the module, %lld -> %lld here", (long long)e,
               (long long)d->tail[e], (long long)d->head[e], (long long)g->tail[e],
               (long long)g->head[e]);
    if (d->out_slot[e] != g->out_slot[e] || d->in_slot[e] != g->in_slot[e])
      fail_msg("edge %lld has slots (out %lld, in %lld) in the module, (%lld, %lld) here",
               (long long)e, (long long)d->out_slot[e], (long long)d->in_slot[e],
               (long long)g->out_slot[e], (long long)g->in_slot[e]);
  }
  /* every module arc is an arc of the full line graph, and none twice */
  for (int64_t a = 0; a < d->n_arcs; a++) {
    int64_t found = 0;
    for (int64_t b = 0; b < g->A; b++)
      found += g->asrc[b] == d->arc_src[a] && g->adst[b] == d->arc_dst[a];
    for (int64_t b = 0; b < a; b++)
      found += d->arc_src[b] == d->arc_src[a] && d->arc_dst[b] == d->arc_dst[a];
    if (found != 1)
      fail_msg("module arc %lld (%lld -> %lld) is not a line-graph arc, or repeats", (long long)a,
               (long long)d->arc_src[a], (long long)d->arc_dst[a]);
  }
  if (!multitree) {
    assert_int_equal(d->n_arcs, g->A);
    return;
  }
  assert_true(d->n_arcs <= g->A);
  g->A = d->n_arcs;
  memcpy(g->asrc, d->arc_src, sizeof(int64_t) * (size_t)g->A);
  memcpy(g->adst, d->arc_dst, sizeof(int64_t) * (size_t)g->A);
}

/* ------------------------------------------------------------------ the reference */

typedef struct weights {
  const xy_model *model;
  float *const *in;
  const char *prefix;
} weights;

/* A weight by its reference name, or NULL when the model has none of that name. */
static const float *wt(const weights *w, const char *ref)
{
  char name[256];
  snprintf(name, sizeof name, "%s%s", w->prefix, ref);
  for (size_t i = 0; i < xy_model_num_inputs(w->model); i++) {
    xy_tensor_info t;
    xy_model_input(w->model, i, &t);
    if (strcmp(t.name, name) == 0)
      return w->in[i];
  }
  return NULL;
}

static const float *wt_req(const weights *w, const char *ref)
{
  const float *p = wt(w, ref);
  if (!p)
    fail_msg("the model has no weight '%s%s'", w->prefix, ref);
  return p;
}

/* nn.Linear: bias[o] + sum_c W[o, c] in[c]. */
static double lin(const float *W, const float *bias, const double *in, int64_t n_in, int64_t o)
{
  double acc = bias ? bias[o] : 0.0;
  for (int64_t c = 0; c < n_in; c++)
    acc += (double)W[o * n_in + c] * in[c];
  return acc;
}

static double sigm(double z)
{
  return 1.0 / (1.0 + exp(-z));
}

/* The layer's output y [B, N, D] for inputs x [B, N, D] and e [B, E, EF], from the
 * reference's formulas. */
static void reference(const gcase *c, const gdag *g, const weights *w, const float *x,
                      const float *ef, int64_t B, double *y)
{
  int64_t N = g->N, E = g->E, A = g->A, H = c->H, DK = c->DK, DV = c->DV, D = c->D;
  int64_t S = c->max_edges, EF = c->EF;
  const float *Wq = wt_req(w, "query.weight"), *bq = wt(w, "query.bias");
  const float *Wk = wt_req(w, "key.weight"), *bk = wt(w, "key.bias");
  const float *Wv = wt_req(w, "value_.weight"), *bv = wt(w, "value_.bias");
  const float *Ws = wt_req(w, "source.weight"), *bs = wt_req(w, "source.bias");
  const float *Wm = wt_req(w, "mark.weight"), *bm = wt_req(w, "mark.bias");
  const float *Wt = wt_req(w, "transition.weight"), *bt = wt_req(w, "transition.bias");
  const float *Wd = wt_req(w, "direct.weight"), *bd = wt_req(w, "direct.bias");
  const float *scale = wt(w, "mhnorm.scale");
  const float *Wo = wt_req(w, "out.weight"), *bo = wt(w, "out.bias");
  int64_t in_w = D + 2 * EF; /* the widest concatenation */
  double *xin = calloc((size_t)in_w, sizeof *xin);
  double *q = calloc((size_t)(N * H * DK), sizeof *q), *k = calloc((size_t)(N * H * DK), sizeof *k);
  double *v = calloc((size_t)(N * H * DV), sizeof *v);
  double *sg = calloc((size_t)(E * H) + 1, sizeof *sg), *mg = calloc((size_t)(E * H) + 1, sizeof *mg);
  double *tg = calloc((size_t)(A * H) + 1, sizeof *tg), *dg = calloc((size_t)(N * H), sizeof *dg);
  double *C = calloc((size_t)(E * H * DK * DV) + 1, sizeof *C);
  double *h = calloc((size_t)(N * H * DV), sizeof *h);
  int64_t *indeg = calloc((size_t)N, sizeof *indeg), *order = calloc((size_t)N, sizeof *order);
  double *rowsum = calloc((size_t)(E * H) + 1, sizeof *rowsum);
  assert_true(xin && q && k && v && sg && mg && tg && dg && C && h && indeg && order && rowsum);
  for (int64_t e = 0; e < E; e++)
    indeg[g->head[e]]++;
  /* a topological order of the layer's DAG (Kahn) */
  {
    int64_t *deg = calloc((size_t)N, sizeof *deg), n_out = 0;
    assert_non_null(deg);
    memcpy(deg, indeg, sizeof *deg * (size_t)N);
    for (int64_t n = 0; n < N; n++)
      if (deg[n] == 0)
        order[n_out++] = n;
    for (int64_t i = 0; i < n_out; i++)
      for (int64_t e = 0; e < E; e++)
        if (g->tail[e] == order[i] && --deg[g->head[e]] == 0)
          order[n_out++] = g->head[e];
    assert_int_equal(n_out, N);
    free(deg);
  }
  for (int64_t b = 0; b < B; b++) {
    const float *xb = x + b * N * D;
    const float *eb = ef ? ef + b * E * EF : NULL;
    /* projections and gates */
    for (int64_t n = 0; n < N; n++) {
      for (int64_t c2 = 0; c2 < D; c2++)
        xin[c2] = xb[n * D + c2];
      for (int64_t o = 0; o < H * DK; o++) {
        q[n * H * DK + o] = lin(Wq, bq, xin, D, o);
        k[n * H * DK + o] = lin(Wk, bk, xin, D, o);
      }
      for (int64_t o = 0; o < H * DV; o++)
        v[n * H * DV + o] = lin(Wv, bv, xin, D, o);
      for (int64_t hh = 0; hh < H; hh++)
        dg[n * H + hh] = sigm(lin(Wd, bd, xin, D, hh));
    }
    if (!c->edge) {
      /* node-wise: s, m [N, H, S], t [N, H, S, S]; edge e = (u -> w): source s[u, in_slot],
       * mark m[w, out_slot], arc p -> e at node tail(e): t[., out_slot(p), in_slot(e)] */
      for (int64_t e = 0; e < E; e++)
        for (int64_t hh = 0; hh < H; hh++) {
          for (int64_t c2 = 0; c2 < D; c2++)
            xin[c2] = xb[g->tail[e] * D + c2];
          sg[e * H + hh] = sigm(lin(Ws, bs, xin, D, hh * S + g->in_slot[e]));
          for (int64_t c2 = 0; c2 < D; c2++)
            xin[c2] = xb[g->head[e] * D + c2];
          mg[e * H + hh] = sigm(lin(Wm, bm, xin, D, hh * S + g->out_slot[e]));
        }
      for (int64_t a = 0; a < A; a++) {
        int64_t p = g->asrc[a], e = g->adst[a], n = g->tail[e];
        for (int64_t c2 = 0; c2 < D; c2++)
          xin[c2] = xb[n * D + c2];
        for (int64_t hh = 0; hh < H; hh++) {
          int64_t i = g->out_slot[p], j = g->in_slot[e];
          double t = lin(Wt, bt, xin, D, (hh * S + i) * S + j);
          if (c->mode_d) {
            t = tanh(t);
          } else if (i >= indeg[n]) {
            t = 0; /* the row mask, by the row's index against the node's in-degree */
          } else {
            double sum = 0;
            for (int64_t jj = 0; jj < S; jj++)
              sum += fabs(lin(Wt, bt, xin, D, (hh * S + i) * S + jj));
            t /= 0.5 + sum;
          }
          tg[a * H + hh] = t;
        }
      }
    } else {
      /* edge layer: S from [x_tail; e], M from [x_head; e], T from [e_p; e_e; x_tail(p)] */
      for (int64_t e = 0; e < E; e++)
        for (int64_t hh = 0; hh < H; hh++) {
          for (int64_t c2 = 0; c2 < D; c2++)
            xin[c2] = xb[g->tail[e] * D + c2];
          for (int64_t c2 = 0; c2 < EF; c2++)
            xin[D + c2] = eb[e * EF + c2];
          sg[e * H + hh] = sigm(lin(Ws, bs, xin, D + EF, hh));
          for (int64_t c2 = 0; c2 < D; c2++)
            xin[c2] = xb[g->head[e] * D + c2];
          mg[e * H + hh] = sigm(lin(Wm, bm, xin, D + EF, hh));
        }
      memset(rowsum, 0, sizeof *rowsum * (size_t)(E * H));
      for (int64_t a = 0; a < A; a++) {
        int64_t p = g->asrc[a], e = g->adst[a];
        for (int64_t c2 = 0; c2 < EF; c2++) {
          xin[c2] = eb[p * EF + c2];
          xin[EF + c2] = eb[e * EF + c2];
        }
        for (int64_t c2 = 0; c2 < D; c2++)
          xin[2 * EF + c2] = xb[g->tail[p] * D + c2];
        for (int64_t hh = 0; hh < H; hh++) {
          tg[a * H + hh] = lin(Wt, bt, xin, 2 * EF + D, hh);
          rowsum[e * H + hh] += fabs(tg[a * H + hh]);
        }
      }
      for (int64_t a = 0; a < A; a++)
        for (int64_t hh = 0; hh < H; hh++)
          tg[a * H + hh] = c->mode_d ? tanh(tg[a * H + hh])
                                     : tg[a * H + hh] / (0.5 + rowsum[g->adst[a] * H + hh]);
    }
    /* the recurrence, node by node in topological order: a node reads its in-edges'
     * states, then writes its out-edges' (no q.k scale) */
    memset(C, 0, sizeof *C * (size_t)(E * H * DK * DV));
    memset(h, 0, sizeof *h * (size_t)(N * H * DV));
    for (int64_t i = 0; i < N; i++) {
      int64_t n = order[i];
      for (int64_t hh = 0; hh < H; hh++) {
        const double *qn = q + (n * H + hh) * DK, *kn = k + (n * H + hh) * DK;
        const double *vn = v + (n * H + hh) * DV;
        double *hn = h + (n * H + hh) * DV;
        double qk = 0;
        for (int64_t d = 0; d < DK; d++)
          qk += qn[d] * kn[d];
        for (int64_t dv = 0; dv < DV; dv++)
          hn[dv] = dg[n * H + hh] * qk * vn[dv];
        for (int64_t e = 0; e < E; e++) {
          if (g->head[e] != n)
            continue;
          const double *Ce = C + (e * H + hh) * DK * DV;
          for (int64_t dv = 0; dv < DV; dv++) {
            double acc = 0;
            for (int64_t d = 0; d < DK; d++)
              acc += qn[d] * Ce[d * DV + dv];
            hn[dv] += mg[e * H + hh] * acc;
          }
        }
        for (int64_t e = 0; e < E; e++) {
          if (g->tail[e] != n)
            continue;
          double *Ce = C + (e * H + hh) * DK * DV;
          for (int64_t a = 0; a < A; a++) {
            if (g->adst[a] != e)
              continue;
            const double *Cp = C + (g->asrc[a] * H + hh) * DK * DV;
            for (int64_t z = 0; z < DK * DV; z++)
              Ce[z] += tg[a * H + hh] * Cp[z];
          }
          for (int64_t d = 0; d < DK; d++)
            for (int64_t dv = 0; dv < DV; dv++)
              Ce[d * DV + dv] += sg[e * H + hh] * kn[d] * vn[dv];
        }
      }
    }
    /* per-head RMSNorm over DV, heads concatenated head-major, the output projection */
    double *cat = calloc((size_t)(H * DV), sizeof *cat);
    assert_non_null(cat);
    for (int64_t n = 0; n < N; n++) {
      for (int64_t hh = 0; hh < H; hh++) {
        const double *hn = h + (n * H + hh) * DV;
        double ss = 0;
        for (int64_t dv = 0; dv < DV; dv++)
          ss += hn[dv] * hn[dv];
        double inv = 1.0 / sqrt(ss / (double)DV + 1e-5);
        for (int64_t dv = 0; dv < DV; dv++)
          cat[hh * DV + dv] = hn[dv] * inv * (scale ? scale[hh * DV + dv] : 1.0);
      }
      for (int64_t o = 0; o < D; o++)
        y[(b * N + n) * D + o] = lin(Wo, bo, cat, H * DV, o);
    }
    free(cat);
  }
  free(xin);
  free(q);
  free(k);
  free(v);
  free(sg);
  free(mg);
  free(tg);
  free(dg);
  free(C);
  free(h);
  free(indeg);
  free(order);
  free(rowsum);
}

/* ------------------------------------------------------------------ a case */

static char *spec_text(const gcase *c, const char *graph_file)
{
  static char text[4096];
  char layer[1024];
  if (c->edge)
    snprintf(layer, sizeof layer,
             "{\"op\": \"plstm_graph_edge\", \"name\": \"layer\", \"input\": \"x\",\n"
             "   \"edge_input\": \"e\", \"output\": \"y\", \"weights\": \"blk.\",\n"
             "   \"heads\": %lld, \"qk_head_dim\": %lld, \"hv_head_dim\": %lld,\n"
             "   \"mode\": \"%s\", \"reverse\": %s%s}",
             (long long)c->H, (long long)c->DK, (long long)c->DV, c->mode_d ? "D" : "P",
             c->reverse ? "true" : "false", c->extra);
  else
    snprintf(layer, sizeof layer,
             "{\"op\": \"plstm_graph\", \"name\": \"layer\", \"input\": \"x\",\n"
             "   \"output\": \"y\", \"weights\": \"blk.\", \"max_edges\": %lld,\n"
             "   \"heads\": %lld, \"qk_head_dim\": %lld, \"hv_head_dim\": %lld,\n"
             "   \"mode\": \"%s\", \"reverse\": %s%s}",
             (long long)c->max_edges, (long long)c->H, (long long)c->DK, (long long)c->DV,
             c->mode_d ? "D" : "P", c->reverse ? "true" : "false", c->extra);
  char edge_in[128] = "";
  if (c->edge)
    snprintf(edge_in, sizeof edge_in, ",\n  {\"name\": \"e\", \"shape\": [\"batch\", \"edges\", %lld]}",
             (long long)c->EF);
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"%s\", \"batch\": 2,\n"
           " \"graph\": {\"kind\": \"dag\", \"file\": \"%s\"},\n"
           " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"nodes\", %lld]}%s],\n"
           " \"layers\": [%s],\n"
           " \"outputs\": [\"y\"]}\n",
           c->name, graph_file, (long long)c->D, edge_in, layer);
  return text;
}

static double max_scaled(const double *a, const double *ref, size_t n)
{
  double e = 0, m = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - ref[i]);
    e = d > e || isnan(d) ? d : e;
    m = fabs(ref[i]) > m ? fabs(ref[i]) : m;
  }
  return e / m;
}

static void run_case(const gcase *c)
{
  gdag g;
  char gname[128], sname[128], wname[128];
  snprintf(gname, sizeof gname, "%s.graph.json", c->name);
  snprintf(sname, sizeof sname, "%s.json", c->name);
  snprintf(wname, sizeof wname, "%s.safetensors", c->name);
  char *gtext = random_graphs(c, &g);
  char *gpath = harness_write(gname, gtext);
  char *spath = harness_write(sname, spec_text(c, gname));
  char *wpath = harness_write(wname, "");
  assert_true(gpath && spath && wpath);
  free(gtext);
  orient_and_slot(&g, c->reverse);
  full_line_graph(&g);

  xy_model *model = NULL;
  xy_error err;
  if (xy_model_load(spath, NULL, &model, &err))
    fail_msg("%s: %s", c->name, err.message);
  bool multitree = c->mode_d && !strstr(c->extra, "\"full\"");
  check_module_graph(model->m, &g, multitree);
  print_message("  %-22s %lld nodes, %lld edges, %lld arcs%s\n", c->name, (long long)g.N,
                (long long)g.E, (long long)g.A, multitree ? " (multitree)" : "");

  /* inputs: x and e random, the weights through a safetensors file */
  size_t n_in = xy_model_num_inputs(model);
  float **in = calloc(n_in, sizeof *in);
  double **din = calloc(n_in, sizeof *din);
  assert_true(in && din);
  if (xy_model_write_random_weights(model, wpath, c->seed + 1, &err))
    fail_msg("%s: %s", c->name, err.message);
  xy_rng rng;
  xy_rng_seed(&rng, c->seed + 2);
  const float *x = NULL, *ef = NULL;
  for (size_t i = 0; i < n_in; i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    in[i] = calloc(t.count + 1, sizeof(float));
    din[i] = calloc(t.count + 1, sizeof(double));
    assert_true(in[i] && din[i]);
    for (size_t j = 0; !t.is_weight && j < t.count; j++)
      in[i][j] = (float)xy_rng_uniform(&rng, -1, 1);
    if (strcmp(t.name, "x") == 0)
      x = in[i];
    if (strcmp(t.name, "e") == 0)
      ef = in[i];
  }
  if (xy_model_read_weights(model, wpath, in, &err))
    fail_msg("%s: %s", c->name, err.message);
  for (size_t i = 0; i < n_in; i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    for (size_t j = 0; j < t.count; j++)
      din[i][j] = in[i][j];
  }
  assert_non_null(x);

  xy_tensor_info yt;
  xy_model_output(model, 0, &yt);
  double *ref = calloc(yt.count, sizeof *ref), *interp = calloc(yt.count, sizeof *interp);
  float *got = calloc(yt.count, sizeof *got);
  assert_true(ref && interp && got);
  weights w = {model, in, "blk."};
  reference(c, &g, &w, x, ef, 2, ref);
  if (xy_model_interpret(model, (const double *const *)din, &interp, &err))
    fail_msg("%s: interpreter: %s", c->name, err.message);
  double ei = max_scaled(interp, ref, yt.count);
  print_message("  %-22s interpreter vs the formulas     error %.3g\n", c->name, ei);
  if (!(ei <= 1e-10))
    fail_msg("%s: the interpreter differs from the formulas by %.3g", c->name, ei);

  /* compiled, against the interpreter */
  for (int t = 0; t < 2; t++) {
    harness_case hc = {.target = t ? XY_TARGET_C : XY_TARGET_OPENCL, .form = t ? NULL : c->form,
                       .portable = t == 1};
    char msg[8192], forms[256];
    if (harness_execute(&hc, model, in, &got, forms, sizeof forms, msg, sizeof msg))
      fail_msg("%s %s: %s", c->name, t ? "C" : "OpenCL", msg);
    xy_compare_stats st;
    xy_compare(interp, got, yt.count, &st);
    print_message("  %-22s %-6s %-26s rel err %.3g\n", c->name, t ? "C" : "OpenCL", forms,
                  st.rel);
    if (!(st.rel <= 1e-5))
      fail_msg("%s %s (%s): relative error %.3g above 1e-5", c->name, t ? "C" : "OpenCL",
               forms, st.rel);
  }
  for (size_t i = 0; i < n_in; i++) {
    free(in[i]);
    free(din[i]);
  }
  free(in);
  free(din);
  free(ref);
  free(interp);
  free(got);
  free(gpath);
  free(spath);
  free(wpath);
  xy_model_free(model);
  gdag_free(&g);
}

/* ------------------------------------------------------------------ cases */

/* name, edge, D mode, reverse, H, DK, DV, D, EF, max_edges, extra keys, seed, graphs,
 * max nodes, max degree, OpenCL form */
static const gcase NODE_P = {"node_p", false, false, false, 2, 4, 6, 12, 0, 3, "", 101, 5, 12, 3, NULL};
static const gcase NODE_P_REV = {"node_p_rev", false, false, true, 3, 4, 4, 12, 0, 4,
                                 ", \"bias\": true", 102, 4, 14, 4, "recurrent"};
static const gcase NODE_D = {"node_d", false, true, false, 2, 5, 3, 10, 0, 3, "", 103, 5, 12, 3, "graph"};
static const gcase NODE_D_REV = {"node_d_rev", false, true, true, 1, 8, 8, 8, 0, 3,
                                 ", \"norm\": {\"eps\": 1e-5, \"scale\": false}", 104, 4, 12, 3, NULL};
static const gcase EDGE_P = {"edge_p", true, false, false, 2, 4, 6, 12, 5, 0, "", 105, 5, 12, 3, "levels"};
static const gcase EDGE_P_REV = {"edge_p_rev", true, false, true, 3, 4, 4, 12, 3, 0,
                                 ", \"bias\": false", 106, 4, 14, 4, NULL};
static const gcase EDGE_D = {"edge_d", true, true, false, 2, 3, 5, 10, 4, 0, "", 107, 5, 12, 3, "dense"};
static const gcase EDGE_D_REV = {"edge_d_rev", true, true, true, 2, 4, 4, 8, 2, 0,
                                 ", \"line_graph\": \"full\"", 108, 4, 12, 3, "recurrent"};

static void node_p(void **state) { (void)state; run_case(&NODE_P); }
static void node_p_rev(void **state) { (void)state; run_case(&NODE_P_REV); }
static void node_d(void **state) { (void)state; run_case(&NODE_D); }
static void node_d_rev(void **state) { (void)state; run_case(&NODE_D_REV); }
static void edge_p(void **state) { (void)state; run_case(&EDGE_P); }
static void edge_p_rev(void **state) { (void)state; run_case(&EDGE_P_REV); }
static void edge_d(void **state) { (void)state; run_case(&EDGE_D); }
static void edge_d_rev(void **state) { (void)state; run_case(&EDGE_D_REV); }

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(node_p),  cmocka_unit_test(node_p_rev), cmocka_unit_test(node_d),
    cmocka_unit_test(node_d_rev), cmocka_unit_test(edge_p), cmocka_unit_test(edge_p_rev),
    cmocka_unit_test(edge_d),  cmocka_unit_test(edge_d_rev),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
