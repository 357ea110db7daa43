/*
 * dag_prepare.c: the reference's graph preparation, one step per function, on one graph
 * in local ids (dag_prepare.h says what each step simulates). Everything is a counting
 * sort or a queue over the graph's own arrays, linear in its size, except the pruning's
 * ancestor bitsets (m^2 bits, bounded by DAGP_MAX_BITSET_BYTES).
 */
#include <stdlib.h>
#include <string.h>

#include "dag_prepare.h"

static int64_t *ids(int64_t n)
{
  size_t bytes;
  if (n < 0 || !xy_mul_size((size_t)n + 1, sizeof(int64_t), &bytes))
    return NULL;
  return malloc(bytes);
}

bool dagp_work_init(dagp_work *w, int64_t n, int64_t m, int64_t arcs)
{
  memset(w, 0, sizeof *w);
  w->n_cap = n;
  w->m_cap = m;
  w->arc_cap = arcs;
  w->kept = malloc((size_t)(arcs > 0 ? arcs : 1));
  return w->kept && (w->succ_start = ids(n + 1)) && (w->succ = ids(m)) &&
         (w->pred_start = ids(n + 1)) && (w->pred = ids(m)) && (w->lg_order = ids(m)) &&
         (w->topo = ids(m)) && (w->rank = ids(m)) && (w->count = ids(n > m ? n + 1 : m + 1)) &&
         (w->by_rank_start = ids(n + 1)) && (w->by_rank = ids(m)) &&
         (w->arc_off = ids(m + 1)) && (w->asc_pos = ids(m));
}

bool dagp_work_bits(dagp_work *w, int64_t words)
{
  if (words <= w->bits_cap)
    return true;
  size_t bytes;
  if (!xy_mul_size((size_t)words, sizeof(uint64_t), &bytes))
    return false;
  uint64_t *p = realloc(w->anc, bytes);
  if (!p)
    return false;
  w->anc = p;
  w->bits_cap = words;
  return true;
}

void dagp_work_free(dagp_work *w)
{
  free(w->succ_start);
  free(w->succ);
  free(w->pred_start);
  free(w->pred);
  free(w->lg_order);
  free(w->topo);
  free(w->rank);
  free(w->count);
  free(w->by_rank_start);
  free(w->by_rank);
  free(w->arc_off);
  free(w->asc_pos);
  free(w->kept);
  free(w->anc);
  memset(w, 0, sizeof *w);
}

bool dagp_prune_words(int64_t n, int64_t m, const int64_t *head, int64_t *count,
                      int64_t *words)
{
  memset(count, 0, sizeof(int64_t) * (size_t)(n + 1));
  bool merge = false;
  for (int64_t e = 0; e < m && !merge; e++)
    merge = ++count[head[e]] > 1;
  *words = 0;
  return !merge || xy_mul_i64(m, (m + 63) / 64, words);
}

/* Starts of the buckets of a counting sort by key[item] for items 0..m-1 over keys
 * 0..n-1: start[k] = items with a smaller key. */
static void bucket_starts(int64_t n, int64_t m, const int64_t *key, int64_t *start)
{
  memset(start, 0, sizeof(int64_t) * (size_t)(n + 1));
  for (int64_t e = 0; e < m; e++)
    start[key[e] + 1]++;
  for (int64_t k = 0; k < n; k++)
    start[k + 1] += start[k];
}

void dagp_dagify(int64_t n, int64_t m, int64_t *tail, int64_t *head, bool undirected,
                 int64_t *ins, int64_t *count)
{
  /* The edge view's order: a stable counting sort by the node the view meets each edge
   * at (the tail; for bonds the lower endpoint), file order within a node. */
  memset(count, 0, sizeof(int64_t) * (size_t)(n + 1));
  for (int64_t e = 0; e < m; e++) {
    int64_t key = undirected && head[e] < tail[e] ? head[e] : tail[e];
    count[key + 1]++;
  }
  for (int64_t k = 0; k < n; k++)
    count[k + 1] += count[k];
  for (int64_t e = 0; e < m; e++) {
    int64_t key = undirected && head[e] < tail[e] ? head[e] : tail[e];
    ins[count[key]++] = e;
  }
  for (int64_t e = 0; e < m; e++)
    if (tail[e] > head[e]) {
      int64_t t = tail[e];
      tail[e] = head[e];
      head[e] = t;
    }
}

void dagp_revert(dagp_work *w, int64_t n, int64_t m, const int64_t *tail, const int64_t *head,
                 const int64_t *ins, int64_t *rev_ins)
{
  int64_t *start = w->succ_start, *cur = w->count, *list = w->topo, *by_head = w->succ;
  /* list(dag.edges): nodes 0 .. n-1, each one's successors in insertion order. */
  bucket_starts(n, m, tail, start);
  memcpy(cur, start, sizeof(int64_t) * (size_t)n);
  for (int64_t i = 0; i < m; i++)
    list[cur[tail[ins[i]]]++] = ins[i];
  /* The reversed graph adds (head, tail) for that list reversed, so its successor lists
   * hold each forward head's edges in reversed list order; its edge view walks the nodes
   * in the order it added them, n-1 .. 0, and the new graph adds the edges so. */
  bucket_starts(n, m, head, start);
  memcpy(cur, start, sizeof(int64_t) * (size_t)n);
  for (int64_t i = m - 1; i >= 0; i--)
    by_head[cur[head[list[i]]]++] = list[i];
  int64_t k = 0;
  for (int64_t v = n - 1; v >= 0; v--)
    for (int64_t i = start[v]; i < start[v + 1]; i++)
      rev_ins[k++] = by_head[i];
}

/* A CSR list per node (key: tail or head) holding its edges in insertion order. */
static void lists_by(dagp_work *w, const dagp_graph *g, const int64_t *key, int64_t *start,
                     int64_t *items)
{
  bucket_starts(g->n, g->m, key, start);
  memcpy(w->count, start, sizeof(int64_t) * (size_t)g->n);
  for (int64_t i = 0; i < g->m; i++)
    items[w->count[key[g->ins[i]]]++] = g->ins[i];
}

void dagp_slots(dagp_work *w, const dagp_graph *g, int64_t *out_slot, int64_t *in_slot)
{
  lists_by(w, g, g->tail, w->succ_start, w->succ);
  lists_by(w, g, g->head, w->pred_start, w->pred);
  for (int64_t v = 0; v < g->n; v++) {
    for (int64_t i = w->succ_start[v]; out_slot && i < w->succ_start[v + 1]; i++)
      out_slot[w->succ[i]] = i - w->succ_start[v];
    for (int64_t i = w->pred_start[v]; in_slot && i < w->pred_start[v + 1]; i++)
      in_slot[w->pred[i]] = i - w->pred_start[v];
  }
}

int64_t dagp_full_arcs(dagp_work *w, const dagp_graph *g)
{
  memset(w->count, 0, sizeof(int64_t) * (size_t)g->n);
  for (int64_t e = 0; e < g->m; e++)
    w->asc_pos[e] = w->count[g->tail[e]]++;
  w->arc_off[0] = 0;
  for (int64_t p = 0; p < g->m; p++) {
    int64_t v = g->head[p];
    w->arc_off[p + 1] = w->arc_off[p] + (w->succ_start[v + 1] - w->succ_start[v]);
  }
  return w->arc_off[g->m];
}

void dagp_line_graph(dagp_work *w, const dagp_graph *g)
{
  int64_t *added = w->rank, k = 0; /* rank is free until the sort */
  memset(added, 0, sizeof(int64_t) * (size_t)g->m);
  for (int64_t i = 0; i < g->n; i++) {
    int64_t u = g->reversed ? g->n - 1 - i : i;
    for (int64_t j = w->succ_start[u]; j < w->succ_start[u + 1]; j++) {
      int64_t p = w->succ[j], v = g->head[p];
      if (!added[p]) {
        added[p] = 1;
        w->lg_order[k++] = p;
      }
      for (int64_t l = w->succ_start[v]; l < w->succ_start[v + 1]; l++)
        if (!added[w->succ[l]]) {
          added[w->succ[l]] = 1;
          w->lg_order[k++] = w->succ[l];
        }
    }
  }
}

void dagp_topo_sort(dagp_work *w, const dagp_graph *g)
{
  /* A FIFO queue lists Kahn's generations in networkx's order: a generation is queued
   * whole before the next one's first vertex. Vertex e's in-arcs come from the in-edges
   * of tail(e); its successors are the out-edges of head(e). */
  int64_t *indeg = w->count, qt = 0;
  for (int64_t e = 0; e < g->m; e++) {
    int64_t t = g->tail[e];
    indeg[e] = w->pred_start[t + 1] - w->pred_start[t];
  }
  for (int64_t i = 0; i < g->m; i++)
    if (indeg[w->lg_order[i]] == 0)
      w->topo[qt++] = w->lg_order[i];
  for (int64_t qh = 0; qh < qt; qh++) {
    int64_t v = g->head[w->topo[qh]];
    for (int64_t j = w->succ_start[v]; j < w->succ_start[v + 1]; j++)
      if (--indeg[w->succ[j]] == 0)
        w->topo[qt++] = w->succ[j];
  }
  for (int64_t i = 0; i < g->m; i++)
    w->rank[w->topo[i]] = i;
}

static bool meets(const uint64_t *a, const uint64_t *b, int64_t words)
{
  for (int64_t i = 0; i < words; i++)
    if (a[i] & b[i])
      return true;
  return false;
}

int64_t dagp_prune(dagp_work *w, const dagp_graph *g)
{
  int64_t n_arcs = w->arc_off[g->m], words = (g->m + 63) / 64, n_kept = 0;
  int64_t need;
  /* Nothing to prune without a node of two in-edges: every vertex has one predecessor. */
  if (!dagp_prune_words(g->n, g->m, g->head, w->count, &need) || need == 0) {
    memset(w->kept, 1, (size_t)n_arcs);
    return n_arcs;
  }
  memset(w->kept, 0, (size_t)n_arcs);
  /* Each node's in-edges by topological rank: the predecessors of every vertex leaving it,
   * sorted as the reference sorts them. */
  bucket_starts(g->n, g->m, g->head, w->by_rank_start);
  memcpy(w->count, w->by_rank_start, sizeof(int64_t) * (size_t)g->n);
  for (int64_t i = 0; i < g->m; i++)
    w->by_rank[w->count[g->head[w->topo[i]]]++] = w->topo[i];
  memset(w->anc, 0, sizeof(uint64_t) * (size_t)need);
  for (int64_t i = 0; i < g->m; i++) {
    int64_t c = w->topo[i], v = g->tail[c];
    uint64_t *mine = w->anc + c * words;
    for (int64_t j = w->by_rank_start[v]; j < w->by_rank_start[v + 1]; j++) {
      int64_t p = w->by_rank[j];
      const uint64_t *theirs = w->anc + p * words;
      /* c is already a descendant of one of p's ancestors exactly when those ancestors
       * meet the ancestors c has gathered so far. */
      if (meets(theirs, mine, words))
        continue;
      w->kept[w->arc_off[p] + w->asc_pos[c]] = 1;
      n_kept++;
      for (int64_t k = 0; k < words; k++)
        mine[k] |= theirs[k];
      mine[p / 64] |= UINT64_C(1) << (p % 64);
    }
  }
  return n_kept;
}

int64_t dagp_arcs(dagp_work *w, const dagp_graph *g, bool pruned, int64_t *src, int64_t *dst)
{
  /* Each node's out-edges by id (the order of e within an edge p's arcs); by_rank is free
   * once the pruning is done. */
  int64_t *start = w->by_rank_start, *out = w->by_rank, k = 0;
  bucket_starts(g->n, g->m, g->tail, start);
  memcpy(w->count, start, sizeof(int64_t) * (size_t)g->n);
  for (int64_t e = 0; e < g->m; e++)
    out[w->count[g->tail[e]]++] = e;
  for (int64_t p = 0; p < g->m; p++) {
    int64_t v = g->head[p];
    for (int64_t i = start[v]; i < start[v + 1]; i++)
      if (!pruned || w->kept[w->arc_off[p] + (i - start[v])]) {
        src[k] = p;
        dst[k++] = out[i];
      }
  }
  return k;
}
