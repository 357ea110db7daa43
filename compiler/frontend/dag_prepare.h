/*
 * dag_prepare.h: the reference's graph preparation (ml-jku/plstm, src/plstm/graph.py, on
 * networkx 3), step by step, for one graph of a file in its local ids. xylem keeps its own
 * node and edge ids throughout; what networkx's orders decide is which line-graph arcs a
 * multitree keeps (the pruning's ties) and the slot numbers, so every step reproduces the
 * order in which networkx lists nodes, successors and predecessors.
 *
 * A networkx DiGraph lists its nodes in the order they were added and each node's
 * successors (and predecessors) in the order the edges were added; its edge view walks the
 * nodes in order and each node's successors in order. So a DiGraph is fixed by its edges'
 * orientation, its node order and its edges' insertion order: dagp_graph.
 */
#ifndef XY_DAG_PREPARE_H
#define XY_DAG_PREPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* One graph as the reference's DiGraph, local ids: nodes 0..n-1, edges 0..m-1. */
typedef struct dagp_graph {
  int64_t n, m;
  const int64_t *tail, *head;  /* [m] the orientation the DiGraph has */
  bool reversed;               /* nodes were added n-1 .. 0 (revert_dag); else 0 .. n-1 */
  const int64_t *ins;          /* [m] the edges in the order they were added */
} dagp_graph;

/* Scratch for one graph at a time, sized once for the largest graph of a file. */
typedef struct dagp_work {
  int64_t n_cap, m_cap, arc_cap, bits_cap; /* what the arrays below hold */
  int64_t *succ_start, *succ;  /* [n+1], [m]: each node's out-edges, DiGraph order */
  int64_t *pred_start, *pred;  /* [n+1], [m]: each node's in-edges, DiGraph order */
  int64_t *lg_order;           /* [m] the line graph's vertices in the order added */
  int64_t *topo, *rank;        /* [m] topological order of the line graph; rank in it */
  int64_t *count;              /* [m+1] scratch: in-degrees, bucket sizes */
  int64_t *by_rank_start, *by_rank; /* [n+1], [m]: each node's in-edges by topological rank */
  int64_t *arc_off;            /* [m+1] full line-graph arcs of edge p start at arc_off[p] */
  int64_t *asc_pos;            /* [m] e's position among its tail's out-edges by id */
  unsigned char *kept;         /* [arc_cap] per full line-graph arc (p, e) sorted */
  uint64_t *anc;               /* [bits_cap] ancestor bitsets, a row of words per edge */
} dagp_work;

/* Multitree pruning keeps an ancestor set per line-graph vertex: m * ceil(m / 64) words
 * for m edges. A graph that would need more than this many bytes is refused (trees need
 * none: with no node of in-degree 2 there is nothing to prune). */
#define DAGP_MAX_BITSET_BYTES (INT64_C(1) << 28)

/* Sizes w for graphs of up to n nodes, m edges and arcs full line-graph arcs (no bitsets
 * yet); false when memory runs out. dagp_work_free releases everything. */
bool dagp_work_init(dagp_work *w, int64_t n, int64_t m, int64_t arcs);
void dagp_work_free(dagp_work *w);

/* Bitset words multitree pruning needs for a graph of n nodes and m edges into *words: 0
 * when no node has two in-edges (nothing can be pruned), else m * ceil(m / 64). count is
 * [n + 1] scratch. False when the count overflows. */
bool dagp_prune_words(int64_t n, int64_t m, const int64_t *head, int64_t *count,
                      int64_t *words);

/* Grows w's bitsets to words; false when memory runs out. */
bool dagp_work_bits(dagp_work *w, int64_t words);

/* dagify(G): the DiGraph with every edge from the lower to the higher node id, edges added
 * in the order G's edge view lists them: by tail, each tail's edges in file order, for a
 * directed G; for an undirected G (a networkx Graph lists a bond at the endpoint it meets
 * first, from its adjacency in file order) by lower endpoint, then file order. Orients
 * tail/head in place and writes the insertion order to ins; count is [n + 1] scratch.
 * (A directed graph that is not dagified is its own DiGraph: edges added in file order.) */
void dagp_dagify(int64_t n, int64_t m, int64_t *tail, int64_t *head, bool undirected,
                 int64_t *ins, int64_t *count);

/* revert_dag(dag), then create() on it: the reversed DiGraph's nodes are added n-1 .. 0,
 * its edges (v, u) for (u, v) in reversed(list(dag.edges)); create() dagifies it again,
 * which keeps every orientation and re-adds the edges in the order the reversed graph's
 * edge view lists them. tail/head/ins describe the forward DiGraph (nodes 0 .. n-1);
 * rev_ins gets the reversed one's insertion order (its tail is head and vice versa). */
void dagp_revert(dagp_work *w, int64_t n, int64_t m, const int64_t *tail, const int64_t *head,
                 const int64_t *ins, int64_t *rev_ins);

/* The DiGraph's successor and predecessor lists (w->succ, w->pred), and from them the
 * reference's incidence maps: out_slot[e] = e's position among its tail's successors,
 * in_slot[e] = among its head's predecessors (either may be NULL). */
void dagp_slots(dagp_work *w, const dagp_graph *g, int64_t *out_slot, int64_t *in_slot);

/* nx.line_graph(dag): for each edge p in dag.edges order, p is added, then an arc to each
 * successor edge of head(p) in successor order (adding that edge if new): w->lg_order.
 * Needs dagp_slots' lists. */
void dagp_line_graph(dagp_work *w, const dagp_graph *g);

/* nx.topological_sort of the line graph (Kahn by generations: the vertices without
 * in-arcs in the order added, then each vertex's successors as they become free):
 * w->topo and w->rank. Needs dagp_line_graph. */
void dagp_topo_sort(dagp_work *w, const dagp_graph *g);

/* prune_dag_to_multitree: for each vertex c in topological order and each predecessor p
 * of c by topological rank, the arc p -> c is skipped when some ancestor a of p (kept so
 * far) already reaches c; else kept, and p and p's ancestors become c's ancestors. Marks
 * w->kept for the full line graph's arcs sorted by (p, e) and returns how many are kept.
 * Needs dagp_topo_sort, and dagp_prune_words(...) words in w. */
int64_t dagp_prune(dagp_work *w, const dagp_graph *g);

/* The full line graph of g sorted by (p, e) (arcs (p, e) with head(p) == tail(e)), and
 * the index of each one's first arc: fills w->arc_off and w->asc_pos; returns the count. */
int64_t dagp_full_arcs(dagp_work *w, const dagp_graph *g);

/* The arcs (p, e) of the full line graph sorted by (p, e), or only those dagp_prune kept
 * (pruned), as local edge ids into src and dst; returns their count. Needs dagp_full_arcs
 * (and dagp_prune). */
int64_t dagp_arcs(dagp_work *w, const dagp_graph *g, bool pruned, int64_t *src, int64_t *dst);

#endif /* XY_DAG_PREPARE_H */
