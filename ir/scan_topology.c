/* scan_topology.c: the edge-state view of sequences and DAGs (see scan_topology.h). */
#include "scan_topology.h"

#include <stdlib.h>
#include <string.h>

static int64_t *new_ids(int64_t n)
{
  size_t bytes;
  if (n < 0 || !xy_mul_size((size_t)n + 1, sizeof(int64_t), &bytes))
    return NULL;
  return malloc(bytes);
}

int build_csr(const int64_t *key, int64_t n_items, int64_t n_keys, int64_t **start,
              int64_t **items)
{
  int64_t *s = calloc((size_t)n_keys + 1, sizeof *s);
  int64_t *it = new_ids(n_items);
  int64_t *fill = calloc((size_t)n_keys + 1, sizeof *fill);
  if (!s || !it || !fill) {
    free(s);
    free(it);
    free(fill);
    return XY_E_NOMEM;
  }
  for (int64_t i = 0; i < n_items; i++)
    if (key[i] >= 0)
      s[key[i] + 1]++;
  for (int64_t k = 0; k < n_keys; k++)
    s[k + 1] += s[k];
  for (int64_t i = 0; i < n_items; i++)
    if (key[i] >= 0)
      it[s[key[i]] + fill[key[i]]++] = i;
  free(fill);
  *start = s;
  *items = it;
  return XY_OK;
}

int dag_topo_order(const ir_dag *d, const int64_t *in_start, const int64_t *in_edges,
                   const int64_t *out_start, const int64_t *out_edges, int64_t *order,
                   xy_error *err)
{
  (void)in_edges;
  int64_t n = d->n_nodes;
  int64_t *indeg = new_ids(n);
  if (!indeg)
    return xy_fail(err, XY_E_NOMEM, "out of memory ordering %lld nodes", (long long)n);
  int64_t head = 0, tailpos = 0;
  for (int64_t v = 0; v < n; v++) {
    indeg[v] = in_start[v + 1] - in_start[v];
    if (indeg[v] == 0)
      order[tailpos++] = v;
  }
  /* order doubles as the queue: nodes enter it in id order within a wave. */
  while (head < tailpos) {
    int64_t v = order[head++];
    for (int64_t i = out_start[v]; i < out_start[v + 1]; i++) {
      int64_t w = d->head[out_edges[i]];
      if (--indeg[w] == 0)
        order[tailpos++] = w;
    }
  }
  free(indeg);
  if (tailpos != n)
    return xy_fail(err, XY_E_GRAPH, "the graph has a cycle");
  return XY_OK;
}

void scan_topology_free(scan_topology *t)
{
  free(t->tail);
  free(t->head);
  free(t->s_row);
  free(t->m_row);
  free(t->arc_src);
  free(t->arc_dst);
  free(t->t_row);
  free(t->topo);
  free(t->in_start);
  free(t->in_edges);
  free(t->out_start);
  free(t->out_edges);
  free(t->arc_in_start);
  free(t->arcs_in);
  memset(t, 0, sizeof *t);
}

static bool alloc_topology(scan_topology *t, int64_t nodes, int64_t edges, int64_t arcs)
{
  t->n_nodes = nodes;
  t->n_edges = edges;
  t->n_arcs = arcs;
  t->tail = new_ids(edges);
  t->head = new_ids(edges);
  t->s_row = new_ids(edges);
  t->m_row = new_ids(edges);
  t->arc_src = new_ids(arcs);
  t->arc_dst = new_ids(arcs);
  t->t_row = new_ids(arcs);
  t->topo = new_ids(nodes);
  return t->tail && t->head && t->s_row && t->m_row && t->arc_src && t->arc_dst && t->t_row &&
         t->topo;
}

/* Chain: edge 0 enters node 0 (it holds C_initial), edge t+1 leaves node t, and edge L
 * leaves the last node (it holds C_final). Arc t carries edge t into edge t+1 through
 * node t with T[t]. */
static bool build_sequence(const ir_graph *g, scan_topology *t)
{
  int64_t L = g->length;
  if (!alloc_topology(t, L, L + 1, L))
    return false;
  for (int64_t e = 0; e <= L; e++) {
    t->tail[e] = e - 1;
    t->head[e] = e < L ? e : -1;
    t->s_row[e] = e - 1;
    t->m_row[e] = e < L ? e : -1;
  }
  for (int64_t a = 0; a < L; a++) {
    t->arc_src[a] = a;
    t->arc_dst[a] = a + 1;
    t->t_row[a] = a;
  }
  for (int64_t n = 0; n < L; n++)
    t->topo[n] = n;
  t->initial_edge = 0;
  t->final_edge = L;
  return true;
}

static bool build_dag(const ir_graph *g, scan_topology *t)
{
  const ir_dag *d = &g->dag;
  if (!alloc_topology(t, d->n_nodes, d->n_edges, d->n_arcs))
    return false;
  for (int64_t e = 0; e < d->n_edges; e++) {
    t->tail[e] = d->tail[e];
    t->head[e] = d->head[e];
    t->s_row[e] = e;
    t->m_row[e] = e;
  }
  for (int64_t a = 0; a < d->n_arcs; a++) {
    t->arc_src[a] = d->arc_src[a];
    t->arc_dst[a] = d->arc_dst[a];
    t->t_row[a] = a;
  }
  t->initial_edge = t->final_edge = -1;
  return true;
}

int scan_topology_build(const ir_graph *g, scan_topology *t, xy_error *err)
{
  memset(t, 0, sizeof *t);
  bool ok;
  switch (g->kind) {
  case IR_GRAPH_SEQUENCE:
    ok = build_sequence(g, t);
    break;
  case IR_GRAPH_DAG:
    ok = build_dag(g, t);
    break;
  default:
    return xy_fail(err, XY_E_SPEC, "scans over this graph kind are not supported yet");
  }
  if (!ok) {
    scan_topology_free(t);
    return xy_fail(err, XY_E_NOMEM, "out of memory building the scan topology");
  }
  if (build_csr(t->head, t->n_edges, t->n_nodes, &t->in_start, &t->in_edges) ||
      build_csr(t->tail, t->n_edges, t->n_nodes, &t->out_start, &t->out_edges) ||
      build_csr(t->arc_dst, t->n_arcs, t->n_edges, &t->arc_in_start, &t->arcs_in)) {
    scan_topology_free(t);
    return xy_fail(err, XY_E_NOMEM, "out of memory building the scan topology");
  }
  if (g->kind == IR_GRAPH_DAG) {
    int rc = dag_topo_order(&g->dag, t->in_start, t->in_edges, t->out_start, t->out_edges,
                            t->topo, err);
    if (rc) {
      scan_topology_free(t);
      return rc;
    }
  }
  return XY_OK;
}
