/*
 * scan_topology.h: every graph a scan runs over, seen as what spec plstm.md §1.2 defines it
 * on: nodes, edges that each carry one cell state, and line-graph arcs that carry
 * transitions. A sequence is a chain whose first edge holds C_initial and whose last edge
 * holds C_final; a DAG is itself; a grid has an r- and a d-edge per cell plus virtual
 * border edges that hold the initial left/top states and the final right/bottom states.
 * The interpreter runs the edge-state recurrence on this view, so it is one oracle for
 * every graph kind.
 *
 * Gates are read by (slot, row): the slot says which of an op's gate tensors a row is in
 * (a sequence or DAG has one S, one T and one M: slot 0; a grid has S_r/S_d, M_l/M_u and
 * four T), the row which entry of it, per batch element.
 */
#ifndef XY_SCAN_TOPOLOGY_H
#define XY_SCAN_TOPOLOGY_H

#include "graph_ir.h"

/* Slots of a grid's gates and border states. */
enum { SCAN_S_R = 0, SCAN_S_D = 1 };
enum { SCAN_M_L = 0, SCAN_M_U = 1 };
enum { SCAN_T_RL = 0, SCAN_T_DU = 1, SCAN_T_DL = 2, SCAN_T_RU = 3 };
enum { SCAN_LEFT = 0, SCAN_TOP = 1 };     /* initial states */
enum { SCAN_RIGHT = 0, SCAN_BOTTOM = 1 }; /* final states */
#define SCAN_MAX_SLOTS 4

typedef struct scan_topology {
  int64_t n_nodes, n_edges, n_arcs;
  int64_t *tail, *head;      /* [n_edges]; -1 for the virtual end of a border edge */
  int64_t *s_row, *m_row;    /* [n_edges] row of S written by the tail / M read by the head;
                                -1 when there is none */
  int *s_slot, *m_slot;      /* [n_edges] the S / M tensor those rows are in */
  int64_t *arc_src, *arc_dst, *t_row; /* [n_arcs] */
  int *t_slot;               /* [n_arcs] the T tensor */
  int64_t *init_row;         /* [n_edges] row of the initial-state tensor init_slot that the
                                edge starts with, -1 for edges written by a node */
  int *init_slot;
  int64_t *fin_row;          /* [n_edges] row of the final-state tensor fin_slot the edge's
                                state is, or -1 */
  int *fin_slot;
  int64_t *topo;             /* [n_nodes] a topological order */
  int64_t *in_start, *in_edges;    /* CSR: edges entering each node */
  int64_t *out_start, *out_edges;  /* CSR: edges leaving each node */
  int64_t *arc_in_start, *arcs_in; /* CSR: arcs entering each edge */
} scan_topology;

int scan_topology_build(const ir_graph *g, scan_topology *t, xy_error *err);

/* A grid of X rows by Y columns (cell n = x*Y + y) in orientation o (spec §2.3): the
 * recurrence runs on the grid reversed along x when o & 1 and along y when o & 2. Node ids
 * stay the grid's own cells, so outputs and gates keep their layout; with oriented_rows
 * the gate rows are o*X*Y + n (gates with an orientation axis), else n. Border rows are
 * positions along the reversed grid's borders: left/right y', top/bottom x'. */
int scan_topology_grid2d(int64_t X, int64_t Y, int o, bool oriented_rows, scan_topology *t,
                         xy_error *err);

void scan_topology_free(scan_topology *t);

/* CSR helper shared with the graph passes: groups ids 0..n_items-1 by key[id] (0..n_keys-1)
 * into start[n_keys + 1] and items[n_items], keeping ids ascending within a key. */
int build_csr(const int64_t *key, int64_t n_items, int64_t n_keys, int64_t **start,
              int64_t **items);

/* Kahn's algorithm over the DAG's nodes; ties broken by node id. */
int dag_topo_order(const ir_dag *d, const int64_t *in_start, const int64_t *in_edges,
                   const int64_t *out_start, const int64_t *out_edges, int64_t *order,
                   xy_error *err);

/* ------------------------------------------------------------------ the recurrence */

/* The tensors one scan reads and writes (float64, layouts of ops.def), by slot; implemented
 * by the interpreter (interp.c). Each gate tensor holds *_rows rows per batch element; an
 * absent T slot (NULL) is zero; D NULL means no direct term; an absent initial state is
 * zero and an absent final state is not written. */
typedef struct scan_tensors {
  plstm_dims d;                 /* B, N, DK, DV and the J dimensions */
  const double *q, *k, *v, *D;
  const double *S[SCAN_MAX_SLOTS], *T[SCAN_MAX_SLOTS], *M[SCAN_MAX_SLOTS];
  int64_t s_rows, t_rows, m_rows;
  const double *C0[SCAN_MAX_SLOTS];
  int64_t c0_rows[SCAN_MAX_SLOTS];
  double *out;                  /* [B, N, DV, JO] */
  double *cfin[SCAN_MAX_SLOTS];
  int64_t cfin_rows[SCAN_MAX_SLOTS];
  double scale;
} scan_tensors;

int scan_run(const scan_tensors *x, const scan_topology *tp, xy_error *err);

#endif /* XY_SCAN_TOPOLOGY_H */
