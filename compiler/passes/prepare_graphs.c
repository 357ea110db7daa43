/* prepare_graphs.c: derives what the DAG forms need from each DAG: a topological order,
 * node levels (longest path from a source), nodes grouped by level, and the CSR lists of
 * edges into and out of each node and of arcs into each edge. Done once, at compile time. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"
#include "scan_topology.h"

static int prepare_dag(ir_graph *g, xy_error *err)
{
  const ir_dag *d = &g->dag;
  ir_dag_prep *p = &g->prep;
  memset(p, 0, sizeof *p);
  int64_t n = d->n_nodes;
  int64_t *order = malloc(sizeof *order * (size_t)(n + 1));
  p->level = calloc((size_t)n + 1, sizeof *p->level);
  p->graph_levels = calloc((size_t)d->n_graphs + 1, sizeof *p->graph_levels);
  p->topo = malloc(sizeof *p->topo * (size_t)(n + 1));
  int rc = XY_OK;
  if (!order || !p->level || !p->graph_levels || !p->topo ||
      build_csr(d->head, d->n_edges, n, &p->in_start, &p->in_edges) ||
      build_csr(d->tail, d->n_edges, n, &p->out_start, &p->out_edges) ||
      build_csr(d->arc_dst, d->n_arcs, d->n_edges, &p->arc_in_start, &p->arcs_in)) {
    rc = xy_fail(err, XY_E_NOMEM, "out of memory preparing a DAG of %lld nodes", (long long)n);
    goto done;
  }
  if ((rc = dag_topo_order(d, p->in_start, p->in_edges, p->out_start, p->out_edges, order, err)))
    goto done;
  for (int64_t i = 0; i < n; i++) {
    int64_t v = order[i];
    for (int64_t j = p->in_start[v]; j < p->in_start[v + 1]; j++) {
      int64_t u = d->tail[p->in_edges[j]];
      if (p->level[u] + 1 > p->level[v])
        p->level[v] = p->level[u] + 1;
    }
  }
  for (int64_t c = 0; c < d->n_graphs; c++)
    for (int64_t v = d->node_start[c]; v < d->node_start[c + 1]; v++) {
      if (p->level[v] + 1 > p->graph_levels[c])
        p->graph_levels[c] = p->level[v] + 1;
      if (p->level[v] + 1 > p->max_levels)
        p->max_levels = p->level[v] + 1;
    }
  /* Nodes by (level, id): a counting sort keeps ids ascending within a level. */
  int64_t *ids;
  if (build_csr(p->level, n, p->max_levels, &p->level_start, &ids)) {
    rc = xy_fail(err, XY_E_NOMEM, "out of memory");
    goto done;
  }
  memcpy(p->topo, ids, sizeof *ids * (size_t)n);
  free(ids);
  g->prepared = true;
done:
  free(order);
  if (rc)
    ir_dag_prep_free(p);
  return rc;
}

int pass_prepare_graphs(pass_state *ps, xy_error *err)
{
  for (int i = 0; i < ps->m->n_graphs; i++) {
    ir_graph *g = &ps->m->graphs[i];
    if (g->kind != IR_GRAPH_DAG || g->prepared)
      continue;
    int rc = prepare_dag(g, err);
    if (rc)
      return rc;
  }
  return XY_OK;
}
