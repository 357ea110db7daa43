/* scan_topology.c: the edge-state view of sequences, grids and DAGs (see scan_topology.h). */
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

/* Slots start at 0: the one tensor of a sequence or DAG. */
static int *new_slots(int64_t n)
{
  if (n < 0)
    return NULL;
  return calloc((size_t)n + 1, sizeof(int));
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
  free(t->s_slot);
  free(t->m_slot);
  free(t->t_slot);
  free(t->init_row);
  free(t->init_slot);
  free(t->fin_row);
  free(t->fin_slot);
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
  t->s_slot = new_slots(edges);
  t->m_slot = new_slots(edges);
  t->t_slot = new_slots(arcs);
  t->init_row = new_ids(edges);
  t->init_slot = new_slots(edges);
  t->fin_row = new_ids(edges);
  t->fin_slot = new_slots(edges);
  t->topo = new_ids(nodes);
  if (!(t->tail && t->head && t->s_row && t->m_row && t->arc_src && t->arc_dst && t->t_row &&
        t->s_slot && t->m_slot && t->t_slot && t->init_row && t->init_slot && t->fin_row &&
        t->fin_slot && t->topo))
    return false;
  for (int64_t e = 0; e < edges; e++)
    t->init_row[e] = t->fin_row[e] = -1;
  return true;
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
  t->init_row[0] = 0;
  t->fin_row[L] = 0;
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
  return true;
}

/* Grid in orientation o: position (x', y') along the reversed grid is the cell
 * (fx(x'), fy(y')). Cell n has edges 2n (r: towards x'+1) and 2n+1 (d: towards y'+1); the
 * left border edge of row y' is 2P + y', the top border edge of column x' is 2P + Y + x'.
 * The arcs of cell n are 4n + {l->r, u->d, l->d, u->r}. */
static bool build_grid2d(int64_t X, int64_t Y, int o, bool oriented_rows, scan_topology *t)
{
  int64_t P = X * Y, E = 2 * P + X + Y, base = oriented_rows ? o * P : 0;
  if (!alloc_topology(t, P, E, 4 * P))
    return false;
#define CELL(xp, yp) (((o & 1) ? X - 1 - (xp) : (xp)) * Y + ((o & 2) ? Y - 1 - (yp) : (yp)))
  for (int64_t xp = 0; xp < X; xp++)
    for (int64_t yp = 0; yp < Y; yp++) {
      int64_t n = CELL(xp, yp);
      t->topo[xp * Y + yp] = n;
      int64_t r = 2 * n, d = 2 * n + 1;
      t->tail[r] = t->tail[d] = n;
      t->head[r] = xp + 1 < X ? CELL(xp + 1, yp) : -1;
      t->head[d] = yp + 1 < Y ? CELL(xp, yp + 1) : -1;
      t->s_row[r] = t->s_row[d] = base + n;
      t->s_slot[r] = SCAN_S_R;
      t->s_slot[d] = SCAN_S_D;
      if (xp + 1 == X) {
        t->fin_row[r] = yp;
        t->fin_slot[r] = SCAN_RIGHT;
      }
      if (yp + 1 == Y) {
        t->fin_row[d] = xp;
        t->fin_slot[d] = SCAN_BOTTOM;
      }
      /* The edges entering n: the r-edge of the cell before it along x', or the border. */
      int64_t l = xp > 0 ? 2 * CELL(xp - 1, yp) : 2 * P + yp;
      int64_t u = yp > 0 ? 2 * CELL(xp, yp - 1) + 1 : 2 * P + Y + xp;
      t->m_row[l] = t->m_row[u] = base + n;
      t->m_slot[l] = SCAN_M_L;
      t->m_slot[u] = SCAN_M_U;
      static const int slots[4] = {SCAN_T_RL, SCAN_T_DU, SCAN_T_DL, SCAN_T_RU};
      const int64_t src[4] = {l, u, l, u}, dst[4] = {r, d, d, r};
      for (int k = 0; k < 4; k++) {
        t->arc_src[4 * n + k] = src[k];
        t->arc_dst[4 * n + k] = dst[k];
        t->t_row[4 * n + k] = base + n;
        t->t_slot[4 * n + k] = slots[k];
      }
    }
  for (int64_t yp = 0; yp < Y; yp++) {
    int64_t e = 2 * P + yp;
    t->tail[e] = -1;
    t->head[e] = CELL(0, yp);
    t->s_row[e] = -1;
    t->init_row[e] = yp;
    t->init_slot[e] = SCAN_LEFT;
  }
  for (int64_t xp = 0; xp < X; xp++) {
    int64_t e = 2 * P + Y + xp;
    t->tail[e] = -1;
    t->head[e] = CELL(xp, 0);
    t->s_row[e] = -1;
    t->init_row[e] = xp;
    t->init_slot[e] = SCAN_TOP;
  }
  /* Edges leaving the grid are read by no node. */
  for (int64_t e = 0; e < 2 * P; e++)
    if (t->head[e] < 0)
      t->m_row[e] = -1;
#undef CELL
  return true;
}

static int finish_topology(scan_topology *t, xy_error *err)
{
  if (build_csr(t->head, t->n_edges, t->n_nodes, &t->in_start, &t->in_edges) ||
      build_csr(t->tail, t->n_edges, t->n_nodes, &t->out_start, &t->out_edges) ||
      build_csr(t->arc_dst, t->n_arcs, t->n_edges, &t->arc_in_start, &t->arcs_in)) {
    scan_topology_free(t);
    return xy_fail(err, XY_E_NOMEM, "out of memory building the scan topology");
  }
  return XY_OK;
}

int scan_topology_grid2d(int64_t X, int64_t Y, int o, bool oriented_rows, scan_topology *t,
                         xy_error *err)
{
  memset(t, 0, sizeof *t);
  int64_t P, E;
  if (X < 1 || Y < 1 || o < 0 || o > 3 || !xy_mul_i64(X, Y, &P) || !xy_mul_i64(P, 4, &E) ||
      !xy_add_i64(E, X + Y, &E))
    return xy_fail(err, XY_E_LIMIT, "grid %lld x %lld is too large for the interpreter",
                   (long long)X, (long long)Y);
  if (!build_grid2d(X, Y, o, oriented_rows, t)) {
    scan_topology_free(t);
    return xy_fail(err, XY_E_NOMEM, "out of memory building the scan topology");
  }
  return finish_topology(t, err);
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
  case IR_GRAPH_GRID2D:
    return scan_topology_grid2d(g->rows, g->cols, 0, false, t, err);
  default:
    return xy_fail(err, XY_E_SPEC, "scans over this graph kind are not supported yet");
  }
  if (!ok) {
    scan_topology_free(t);
    return xy_fail(err, XY_E_NOMEM, "out of memory building the scan topology");
  }
  int rc = finish_topology(t, err);
  if (rc)
    return rc;
  if (g->kind == IR_GRAPH_DAG) {
    rc = dag_topo_order(&g->dag, t->in_start, t->in_edges, t->out_start, t->out_edges,
                            t->topo, err);
    if (rc) {
      scan_topology_free(t);
      return rc;
    }
  }
  return XY_OK;
}
