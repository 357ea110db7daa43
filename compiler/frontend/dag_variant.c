/*
 * dag_variant.c: the prepared forms of a graph file's DAGs. A file is read in its forward
 * orientation (dag.c: the file's, or by node id once dagified); from it come the reversed
 * DAG (the reference's revert_dag, which the experiments alternate with the forward one)
 * and the line graph pruned to a multitree (D mode), through dag_prepare.c's simulation of
 * the reference's networkx steps. Node and edge ids never change: edge e of a reversed DAG
 * is edge e with tail and head swapped, and features stay as they are.
 */
#include <stdlib.h>
#include <string.h>

#include "dag_prepare.h"
#include "fe_internal.h"

typedef struct variant_ctx {
  dagp_work w;
  int64_t *ft, *fh, *ins, *rins; /* [largest m]: local forward tails, heads, insertion orders */
  int64_t *src, *dst;            /* [largest full line graph]: one graph's arcs */
  int64_t max_n, max_m, max_arcs;
} variant_ctx;

static int64_t *ids(int64_t n)
{
  size_t bytes;
  if (n < 0 || !xy_mul_size((size_t)n + 1, sizeof(int64_t), &bytes))
    return NULL;
  return malloc(bytes);
}

static void ctx_free(variant_ctx *v)
{
  dagp_work_free(&v->w);
  free(v->ft);
  free(v->fh);
  free(v->ins);
  free(v->rins);
  free(v->src);
  free(v->dst);
}

/* The largest graph's nodes, edges and full line graph (sum of in- x out-degrees). */
static int sizes(variant_ctx *v, const ir_dag *d, const char *file, xy_error *err)
{
  int64_t *deg_in = calloc((size_t)d->n_nodes + 1, sizeof *deg_in);
  int64_t *deg_out = calloc((size_t)d->n_nodes + 1, sizeof *deg_out);
  int rc = deg_in && deg_out ? XY_OK : xy_fail(err, XY_E_NOMEM, "%s: out of memory", file);
  for (int64_t e = 0; !rc && e < d->n_edges; e++) {
    deg_out[d->tail[e]]++;
    deg_in[d->head[e]]++;
  }
  for (int64_t g = 0; !rc && g < d->n_graphs; g++) {
    int64_t n = d->node_start[g + 1] - d->node_start[g];
    int64_t m = d->edge_start[g + 1] - d->edge_start[g], arcs = 0;
    for (int64_t x = d->node_start[g]; x < d->node_start[g + 1]; x++) {
      int64_t k;
      if (!xy_mul_i64(deg_in[x], deg_out[x], &k) || !xy_add_i64(arcs, k, &arcs)) {
        rc = xy_fail(err, XY_E_LIMIT, "%s: graph %lld: the line graph's arc count overflows",
                     file, (long long)g);
        break;
      }
    }
    v->max_n = n > v->max_n ? n : v->max_n;
    v->max_m = m > v->max_m ? m : v->max_m;
    v->max_arcs = arcs > v->max_arcs ? arcs : v->max_arcs;
  }
  free(deg_in);
  free(deg_out);
  return rc;
}

static int ctx_init(variant_ctx *v, const ir_dag *d, const char *file, xy_error *err)
{
  memset(v, 0, sizeof *v);
  int rc = sizes(v, d, file, err);
  if (rc)
    return rc;
  if (!dagp_work_init(&v->w, v->max_n, v->max_m, v->max_arcs) || !(v->ft = ids(v->max_m)) ||
      !(v->fh = ids(v->max_m)) || !(v->ins = ids(v->max_m)) || !(v->rins = ids(v->max_m)) ||
      !(v->src = ids(v->max_arcs)) || !(v->dst = ids(v->max_arcs)))
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory preparing its graphs", file);
  return XY_OK;
}

/* Graph g of d as the reference's DiGraph, in local ids. d is in its forward orientation
 * unless d_reversed; reversed asks for the reversed DiGraph. */
static void view_of(variant_ctx *v, const ir_dag *d, bool d_reversed, int64_t g, bool reversed,
                    dagp_graph *out)
{
  int64_t n0 = d->node_start[g], e0 = d->edge_start[g];
  int64_t n = d->node_start[g + 1] - n0, m = d->edge_start[g + 1] - e0;
  for (int64_t i = 0; i < m; i++) {
    int64_t t = d->tail[e0 + i], h = d->head[e0 + i];
    v->ft[i] = (d_reversed ? h : t) - n0;
    v->fh[i] = (d_reversed ? t : h) - n0;
    v->ins[i] = d->edge_order ? d->edge_order[e0 + i] - e0 : i;
  }
  *out = (dagp_graph){.n = n, .m = m, .tail = v->ft, .head = v->fh, .ins = v->ins};
  if (reversed) {
    dagp_revert(&v->w, n, m, v->ft, v->fh, v->ins, v->rins);
    *out = (dagp_graph){.n = n, .m = m, .tail = v->fh, .head = v->ft, .reversed = true,
                        .ins = v->rins};
  }
}

int fe_dag_slots(ir_dag *d, bool reversed, const char *file, xy_error *err)
{
  variant_ctx v;
  int rc = ctx_init(&v, d, file, err);
  free(d->out_slot);
  free(d->in_slot);
  d->out_slot = d->in_slot = NULL;
  if (!rc && (!(d->out_slot = ids(d->n_edges)) || !(d->in_slot = ids(d->n_edges))))
    rc = xy_fail(err, XY_E_NOMEM, "%s: out of memory", file);
  for (int64_t g = 0; !rc && g < d->n_graphs; g++) {
    dagp_graph dg;
    view_of(&v, d, reversed, g, reversed, &dg);
    dagp_slots(&v.w, &dg, d->out_slot + d->edge_start[g], d->in_slot + d->edge_start[g]);
  }
  ctx_free(&v);
  return rc;
}

/* ------------------------------------------------------------------ variants */

static bool dup_ids(int64_t **dst, const int64_t *src, int64_t n)
{
  *dst = NULL;
  if (!src)
    return true;
  if (!(*dst = ids(n)))
    return false;
  memcpy(*dst, src, sizeof(int64_t) * (size_t)n);
  return true;
}

static bool dup_doubles(double **dst, const double *src, int64_t n)
{
  size_t bytes;
  *dst = NULL;
  if (!src)
    return true;
  if (!xy_mul_size((size_t)n + 1, sizeof(double), &bytes) || !(*dst = malloc(bytes)))
    return false;
  memcpy(*dst, src, sizeof(double) * (size_t)n);
  return true;
}

/* What stays the same in every variant: counts, offsets, the forward edge order, which
 * graphs listed arcs, features. */
static bool copy_common(ir_dag *out, const ir_dag *d)
{
  out->n_graphs = d->n_graphs;
  out->n_nodes = d->n_nodes;
  out->n_edges = d->n_edges;
  out->node_feat_dim = d->node_feat_dim;
  out->edge_feat_dim = d->edge_feat_dim;
  if (d->arcs_given) {
    if (!(out->arcs_given = malloc(sizeof(bool) * (size_t)d->n_graphs)))
      return false;
    memcpy(out->arcs_given, d->arcs_given, sizeof(bool) * (size_t)d->n_graphs);
  }
  /* The feature counts were checked against the limits when the file was read. */
  return dup_ids(&out->node_start, d->node_start, d->n_graphs + 1) &&
         dup_ids(&out->edge_start, d->edge_start, d->n_graphs + 1) &&
         dup_ids(&out->edge_order, d->edge_order, d->n_edges) &&
         (out->arc_start = ids(d->n_graphs + 1)) && (out->tail = ids(d->n_edges)) &&
         (out->head = ids(d->n_edges)) &&
         dup_doubles(&out->node_feat, d->node_feat, d->n_nodes * d->node_feat_dim) &&
         dup_doubles(&out->edge_feat, d->edge_feat, d->n_edges * d->edge_feat_dim);
}

/* Appends n arcs to out (capacity *cap); false when memory runs out. */
static bool append_arcs(ir_dag *out, size_t *cap, const int64_t *src, const int64_t *dst,
                        int64_t n, int64_t offset, bool swap)
{
  /* At least one slot, so that a DAG without arcs still has arrays to point at. */
  size_t need = (size_t)out->n_arcs + (size_t)n + 1;
  size_t cap_dst = *cap; /* arc_dst has grown with arc_src so far */
  if (!xy_grow((void **)&out->arc_src, cap, need, sizeof(int64_t)) ||
      !xy_grow((void **)&out->arc_dst, &cap_dst, need, sizeof(int64_t)))
    return false;
  for (int64_t i = 0; i < n; i++) {
    out->arc_src[out->n_arcs + i] = (swap ? dst[i] : src[i]) + offset;
    out->arc_dst[out->n_arcs + i] = (swap ? src[i] : dst[i]) + offset;
  }
  out->n_arcs += n;
  return true;
}

/* Multitree pruning refuses graphs whose ancestor sets would pass the bound; the bitsets
 * are sized for the largest graph that needs them, by the heads the variant will have. */
static int size_bitsets(variant_ctx *v, const ir_dag *d, const int64_t *head, const char *file,
                        xy_error *err)
{
  int64_t most = 0;
  for (int64_t g = 0; g < d->n_graphs; g++) {
    int64_t n0 = d->node_start[g], e0 = d->edge_start[g];
    int64_t n = d->node_start[g + 1] - n0, m = d->edge_start[g + 1] - e0, words;
    for (int64_t i = 0; i < m; i++)
      v->fh[i] = head[e0 + i] - n0;
    bool ok = dagp_prune_words(n, m, v->fh, v->w.count, &words);
    if (!ok || words > DAGP_MAX_BITSET_BYTES / 8)
      return xy_fail(err, XY_E_LIMIT,
                     "%s: graph %lld: pruning the line graph of its %lld edges to a multitree "
                     "needs more than the %lld MiB allowed for its ancestor sets (m^2 bits "
                     "for m edges)", file, (long long)g, (long long)m,
                     (long long)(DAGP_MAX_BITSET_BYTES >> 20));
    most = words > most ? words : most;
  }
  if (!dagp_work_bits(&v->w, most))
    return xy_fail(err, XY_E_NOMEM, "%s: out of memory for the multitree pruning", file);
  return XY_OK;
}

int fe_dag_derive(const ir_dag *base, bool base_reversed, bool reverse, bool multitree,
                  const char *file, ir_dag *out, xy_error *err)
{
  memset(out, 0, sizeof *out);
  bool rev = base_reversed != reverse;
  for (int64_t g = 0; multitree && base->arcs_given && g < base->n_graphs; g++)
    if (base->arcs_given[g])
      return xy_fail(err, XY_E_GRAPH,
                     "%s: graph %lld lists its arcs, but a multitree line graph is pruned from "
                     "the full one: leave out either the file's 'arcs' or the multitree",
                     file, (long long)g);
  variant_ctx v;
  int rc = ctx_init(&v, base, file, err);
  size_t cap = 0;
  if (!rc && multitree)
    rc = size_bitsets(&v, base, reverse ? base->tail : base->head, file, err);
  if (!rc && (!copy_common(out, base) || !(out->out_slot = ids(base->n_edges)) ||
              !(out->in_slot = ids(base->n_edges))))
    rc = xy_fail(err, XY_E_NOMEM, "%s: out of memory", file);
  for (int64_t e = 0; !rc && e < base->n_edges; e++) {
    out->tail[e] = reverse ? base->head[e] : base->tail[e];
    out->head[e] = reverse ? base->tail[e] : base->head[e];
  }
  if (!rc && !append_arcs(out, &cap, NULL, NULL, 0, 0, false))
    rc = xy_fail(err, XY_E_NOMEM, "%s: out of memory", file);
  if (!rc)
    out->arc_start[0] = 0;
  for (int64_t g = 0; !rc && g < base->n_graphs; g++) {
    int64_t e0 = base->edge_start[g];
    dagp_graph dg;
    view_of(&v, base, base_reversed, g, rev, &dg);
    dagp_slots(&v.w, &dg, out->out_slot + e0, out->in_slot + e0);
    bool ok;
    if (base->arcs_given && base->arcs_given[g]) {
      /* Listed arcs keep their order; reversed, each runs the other way. */
      int64_t a0 = base->arc_start[g], na = base->arc_start[g + 1] - a0;
      ok = append_arcs(out, &cap, base->arc_src + a0, base->arc_dst + a0, na, 0, reverse);
    } else {
      dagp_full_arcs(&v.w, &dg);
      if (multitree) {
        dagp_line_graph(&v.w, &dg);
        dagp_topo_sort(&v.w, &dg);
        dagp_prune(&v.w, &dg);
      }
      int64_t na = dagp_arcs(&v.w, &dg, multitree, v.src, v.dst);
      ok = append_arcs(out, &cap, v.src, v.dst, na, e0, false);
    }
    if (!ok)
      rc = xy_fail(err, XY_E_NOMEM, "%s: out of memory", file);
    else
      out->arc_start[g + 1] = out->n_arcs;
  }
  ctx_free(&v);
  if (rc)
    ir_dag_free(out);
  return rc;
}

int fe_dag_variant(ir_module *m, int base, bool reverse, bool multitree, int *graph_out,
                   xy_error *err)
{
  if (base < 0 || base >= m->n_graphs || m->graphs[base].kind != IR_GRAPH_DAG)
    return xy_fail(err, XY_E_INTERNAL, "fe_dag_variant: graph %d is not a DAG", base);
  const ir_graph *b = &m->graphs[base];
  int origin = b->origin;
  bool want_rev = b->reversed != reverse, want_multi = b->multitree || multitree;
  for (int i = 0; i < m->n_graphs; i++) {
    const ir_graph *g = &m->graphs[i];
    if (g->kind == IR_GRAPH_DAG && g->origin == origin && g->reversed == want_rev &&
        g->multitree == want_multi) {
      *graph_out = i;
      return XY_OK;
    }
  }
  ir_dag d;
  const char *file = b->file ? b->file : "graph";
  int rc = fe_dag_derive(&b->dag, b->reversed, reverse, want_multi, file, &d, err);
  if (rc)
    return rc;
  char *file_copy = b->file ? xy_strdup(b->file) : NULL;
  bool dagified = b->dagified;
  int gi = (!b->file || file_copy) ? ir_add_graph(m, IR_GRAPH_DAG) : -1; /* b may move */
  if (gi < 0) {
    free(file_copy);
    ir_dag_free(&d);
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  }
  ir_graph *g = &m->graphs[gi];
  g->dag = d;
  g->file = file_copy;
  g->dagified = dagified;
  g->reversed = want_rev;
  g->multitree = want_multi;
  g->origin = origin;
  *graph_out = gi;
  return XY_OK;
}
