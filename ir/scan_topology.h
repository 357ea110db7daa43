/*
 * scan_topology.h: every graph a scan runs over, seen as what spec plstm.md §1.2 defines it
 * on: nodes, edges that each carry one cell state, and line-graph arcs that carry
 * transitions. A sequence is a chain whose first edge holds C_initial and whose last edge
 * holds C_final; a DAG is itself. The interpreter runs the edge-state recurrence on this
 * view, so it is one oracle for every graph kind.
 */
#ifndef XY_SCAN_TOPOLOGY_H
#define XY_SCAN_TOPOLOGY_H

#include "graph_ir.h"

typedef struct scan_topology {
  int64_t n_nodes, n_edges, n_arcs;
  int64_t *tail, *head;      /* [n_edges]; -1 for the virtual end of a border edge */
  int64_t *s_row, *m_row;    /* [n_edges] row of S written by the tail / M read by the head;
                                -1 when there is none */
  int64_t *arc_src, *arc_dst, *t_row; /* [n_arcs] */
  int64_t initial_edge;      /* edge whose state starts as C_initial, or -1 */
  int64_t final_edge;        /* edge whose state is C_final, or -1 */
  int64_t *topo;             /* [n_nodes] a topological order */
  int64_t *in_start, *in_edges;    /* CSR: edges entering each node */
  int64_t *out_start, *out_edges;  /* CSR: edges leaving each node */
  int64_t *arc_in_start, *arcs_in; /* CSR: arcs entering each edge */
} scan_topology;

int scan_topology_build(const ir_graph *g, scan_topology *t, xy_error *err);
void scan_topology_free(scan_topology *t);

/* CSR helper shared with the graph passes: groups ids 0..n_items-1 by key[id] (0..n_keys-1)
 * into start[n_keys + 1] and items[n_items], keeping ids ascending within a key. */
int build_csr(const int64_t *key, int64_t n_items, int64_t n_keys, int64_t **start,
              int64_t **items);

/* Kahn's algorithm over the DAG's nodes; ties broken by node id. */
int dag_topo_order(const ir_dag *d, const int64_t *in_start, const int64_t *in_edges,
                   const int64_t *out_start, const int64_t *out_edges, int64_t *order,
                   xy_error *err);

#endif /* XY_SCAN_TOPOLOGY_H */
