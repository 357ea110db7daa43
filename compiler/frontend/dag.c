/*
 * dag.c: DAG graph files. One graph {"nodes": N, "edges": [[tail, head], ...], "arcs": [...]}
 * or many {"graphs": [{...}, ...]}, concatenated into one ir_dag with global ids. Files may
 * hold millions of nodes and are hostile: counts are checked against the limits before
 * anything is allocated, and every algorithm is iterative and linear (CSR lists, stamps,
 * Kahn's algorithm), so no input can exhaust the stack.
 *
 * The DAG comes out in its forward orientation: the file's, or by node id where the graph
 * is undirected ("directed": false) or the caller dagifies (the reference always does),
 * with the networkx edge order the reference's preparation follows (dag_prepare.h), the
 * slots that order gives, and the features (dag_features.c).
 */
#include <stdlib.h>
#include <string.h>

#include "dag_prepare.h"
#include "fe_internal.h"

typedef struct dag_ctx {
  fe_src src;
  const xy_limits *lim;
  xy_error *err;
  ir_dag *d;
  json_t *list;        /* the "graphs" array, or NULL for a one-graph file */
  json_t *root;
  bool dagify;         /* orient directed graphs by node id too */
  bool *undirected;    /* [n_graphs]: "directed": false */
  /* Work arrays over global ids. */
  int64_t *out_start, *out_edges; /* CSR: edges leaving each node, ascending */
  int64_t *in_start, *in_edges;   /* CSR: edges entering each node, ascending */
  int64_t *mark, *mark_at;        /* stamps for duplicate checks; scratch for cycles */
} dag_ctx;

static json_t *graph_at(const dag_ctx *c, int64_t g)
{
  return c->list ? json_array_get(c->list, (size_t)g) : c->root;
}

/* "graphs[g]" in a many-graph file, "" (the root) in a one-graph file. */
static void graph_path(const dag_ctx *c, int64_t g, char *out)
{
  if (c->list)
    fe_path_index(out, "graphs", g);
  else
    out[0] = '\0';
}

static void sub_path(const dag_ctx *c, int64_t g, const char *key, int64_t i, char *out)
{
  char gp[FE_PATH_MAX], kp[FE_PATH_MAX];
  graph_path(c, g, gp);
  fe_path_key(kp, gp, key);
  if (i >= 0)
    fe_path_index(out, kp, i);
  else
    memcpy(out, kp, FE_PATH_MAX);
}

static int64_t *alloc_ids(int64_t n)
{
  size_t bytes;
  if (n < 0 || !xy_mul_size((size_t)n + 1, sizeof(int64_t), &bytes))
    return NULL;
  return malloc(bytes);
}

static int nomem(dag_ctx *c)
{
  return xy_fail(c->err, XY_E_NOMEM, "%s: out of memory", c->src.file);
}

/* The graph (component) a global id belongs to, given the [n_graphs + 1] offsets. */
static int64_t component_of(const int64_t *start, int64_t n_graphs, int64_t id)
{
  int64_t lo = 0, hi = n_graphs - 1;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo + 1) / 2;
    if (start[mid] <= id)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/* ------------------------------------------------------------------ counts */

static int list_graphs(dag_ctx *c)
{
  if (!json_is_object(c->root))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, "",
                      "a graph file holds an object: {\"nodes\": N, \"edges\": [...]} or "
                      "{\"graphs\": [...]}, not %s", fe_json_kind(c->root));
  c->list = json_object_get(c->root, "graphs");
  if (!c->list) {
    c->d->n_graphs = 1;
    return XY_OK;
  }
  static const char *const keys[] = {"graphs"};
  int rc = fe_check_keys(c->err, XY_E_GRAPH, &c->src, c->root, "", keys, 1);
  if (rc)
    return rc;
  if (!json_is_array(c->list))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, "graphs", "must be an array, not %s",
                      fe_json_kind(c->list));
  size_t n = json_array_size(c->list);
  if (n == 0)
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, "graphs",
                      "empty graphs list: a file needs at least one graph");
  if ((uint64_t)n > (uint64_t)c->lim->max_graphs)
    return fe_fail_at(c->err, XY_E_LIMIT, &c->src, "graphs",
                      "%zu graphs are more than the limit of %lld", n,
                      (long long)c->lim->max_graphs);
  c->d->n_graphs = (int64_t)n;
  return XY_OK;
}

/* Adds n to *total; fails when the sum passes limit. */
static int add_count(dag_ctx *c, int64_t *total, int64_t n, int64_t limit, const char *what,
                     const char *path)
{
  if (!xy_add_i64(*total, n, total))
    return fe_fail_at(c->err, XY_E_LIMIT, &c->src, path, "the file's count of %s overflows",
                      what);
  if (*total > limit)
    return fe_fail_at(c->err, XY_E_LIMIT, &c->src, path,
                      "this brings the file to %lld %s, more than the limit of %lld",
                      (long long)*total, what, (long long)limit);
  return XY_OK;
}

/* First pass: keys, node counts, array sizes and totals against the limits. */
static int count_graph(dag_ctx *c, int64_t g, int64_t *arcs_given)
{
  char gp[FE_PATH_MAX], p[FE_PATH_MAX];
  graph_path(c, g, gp);
  json_t *gj = graph_at(c, g);
  if (!json_is_object(gj))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, gp, "a graph must be an object, not %s",
                      fe_json_kind(gj));
  static const char *const keys[] = {"nodes", "edges", "arcs", "directed", "node_features",
                                     "edge_features"};
  int rc = fe_check_keys(c->err, XY_E_GRAPH, &c->src, gj, gp, keys, XY_ARRAY_LEN(keys));
  if (rc)
    return rc;
  json_t *directed = json_object_get(gj, "directed");
  fe_path_key(p, gp, "directed");
  if (directed && !json_is_boolean(directed))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "must be true or false, not %s",
                      fe_json_kind(directed));
  c->undirected[g] = directed && json_is_false(directed);
  json_t *nodes = json_object_get(gj, "nodes"), *edges = json_object_get(gj, "edges");
  json_t *arcs = json_object_get(gj, "arcs");
  if (!nodes || !edges)
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, gp, "missing required key '%s'",
                      nodes ? "edges" : "nodes");
  fe_path_key(p, gp, "nodes");
  if (!json_is_integer(nodes))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "must be an integer, not %s",
                      fe_json_kind(nodes));
  json_int_t n = json_integer_value(nodes);
  if (n == 0)
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "empty graph: a graph needs a node");
  if (n < 0)
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "must be at least 1, not %lld",
                      (long long)n);
  if (n > c->lim->max_graph_nodes)
    return fe_fail_at(c->err, XY_E_LIMIT, &c->src, p,
                      "the graph has %lld nodes, more than the limit of %lld per graph",
                      (long long)n, (long long)c->lim->max_graph_nodes);
  c->d->node_start[g + 1] = (int64_t)n;
  if ((rc = add_count(c, &c->d->n_nodes, (int64_t)n, c->lim->max_nodes, "nodes", p)))
    return rc;
  fe_path_key(p, gp, "edges");
  if (!json_is_array(edges))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "must be an array, not %s",
                      fe_json_kind(edges));
  c->d->edge_start[g + 1] = (int64_t)json_array_size(edges);
  if ((rc = add_count(c, &c->d->n_edges, (int64_t)json_array_size(edges), c->lim->max_edges,
                      "edges", p)))
    return rc;
  c->d->arc_start[g + 1] = -1; /* the full line graph, counted later */
  if (!arcs)
    return XY_OK;
  fe_path_key(p, gp, "arcs");
  if (!json_is_array(arcs))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "must be an array, not %s",
                      fe_json_kind(arcs));
  c->d->arc_start[g + 1] = (int64_t)json_array_size(arcs);
  return add_count(c, arcs_given, (int64_t)json_array_size(arcs), c->lim->max_arcs, "arcs", p);
}

static int count_all(dag_ctx *c)
{
  ir_dag *d = c->d;
  int64_t n = d->n_graphs, arcs_given = 0;
  if (!(d->node_start = alloc_ids(n + 1)) || !(d->edge_start = alloc_ids(n + 1)) ||
      !(d->arc_start = alloc_ids(n + 1)) ||
      !(c->undirected = calloc((size_t)n + 1, sizeof *c->undirected)) ||
      !(d->arcs_given = calloc((size_t)n + 1, sizeof *d->arcs_given)))
    return nomem(c);
  d->node_start[0] = d->edge_start[0] = d->arc_start[0] = 0;
  for (int64_t g = 0; g < n; g++) {
    int rc = count_graph(c, g, &arcs_given);
    if (rc)
      return rc;
  }
  /* Sizes into offsets; arc_start keeps sizes (-1: the line graph) until arcs are built. */
  for (int64_t g = 0; g < n; g++) {
    d->node_start[g + 1] += d->node_start[g];
    d->edge_start[g + 1] += d->edge_start[g];
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ edges */

/* An integer id in [0, n) at path; what names it ("node id", "edge index"). */
static int read_id(dag_ctx *c, const json_t *v, const char *path, const char *what,
                   int64_t n, const char *of, int64_t *out)
{
  if (!json_is_integer(v))
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, path, "%s must be an integer, not %s",
                      what, fe_json_kind(v));
  json_int_t x = json_integer_value(v);
  if (x < 0)
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, path, "%s %lld is negative", what,
                      (long long)x);
  if (x >= n)
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, path,
                      "%s %lld is out of range: the graph has %lld %s (0 to %lld)", what,
                      (long long)x, (long long)n, of, (long long)n - 1);
  *out = (int64_t)x;
  return XY_OK;
}

/* A [a, b] pair of ids in [0, n) at path. */
static int read_pair(dag_ctx *c, const json_t *v, const char *path, const char *pair,
                     const char *what, int64_t n, const char *of, int64_t *a, int64_t *b)
{
  if (!json_is_array(v) || json_array_size(v) != 2)
    return fe_fail_at(c->err, XY_E_GRAPH, &c->src, path, "must be a pair %s, not %s", pair,
                      json_is_array(v) ? "an array of another length" : fe_json_kind(v));
  char p[FE_PATH_MAX];
  int rc;
  fe_path_index(p, path, 0);
  if ((rc = read_id(c, json_array_get(v, 0), p, what, n, of, a)))
    return rc;
  fe_path_index(p, path, 1);
  return read_id(c, json_array_get(v, 1), p, what, n, of, b);
}

/* What read_pair accepts, checked without building a path for messages (the common case:
 * paths cost more than the rest of reading an edge). */
static bool pair_ok(const json_t *v, int64_t n, int64_t *a, int64_t *b)
{
  if (!json_is_array(v) || json_array_size(v) != 2)
    return false;
  const json_t *x = json_array_get(v, 0), *y = json_array_get(v, 1);
  if (!json_is_integer(x) || !json_is_integer(y))
    return false;
  json_int_t i = json_integer_value(x), j = json_integer_value(y);
  if (i < 0 || i >= n || j < 0 || j >= n)
    return false;
  *a = (int64_t)i;
  *b = (int64_t)j;
  return true;
}

static int read_edges(dag_ctx *c)
{
  ir_dag *d = c->d;
  if (!(d->tail = alloc_ids(d->n_edges)) || !(d->head = alloc_ids(d->n_edges)))
    return nomem(c);
  for (int64_t g = 0; g < d->n_graphs; g++) {
    json_t *edges = json_object_get(graph_at(c, g), "edges");
    int64_t n0 = d->node_start[g], nn = d->node_start[g + 1] - n0;
    for (int64_t i = 0, e = d->edge_start[g]; e < d->edge_start[g + 1]; i++, e++) {
      int64_t t = 0, h = 0;
      const json_t *v = json_array_get(edges, (size_t)i);
      if (!pair_ok(v, nn, &t, &h) || t == h) {
        char p[FE_PATH_MAX];
        sub_path(c, g, "edges", i, p);
        int rc = read_pair(c, v, p, "[tail, head]", "node id", nn, "nodes", &t, &h);
        if (rc)
          return rc;
        return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "self-loop: edge from node %lld to "
                          "itself", (long long)t);
      }
      d->tail[e] = n0 + t;
      d->head[e] = n0 + h;
    }
  }
  return XY_OK;
}

/* CSR lists of edges by key node (tail or head), each list in ascending edge order. */
static bool build_csr(int64_t n, int64_t m, const int64_t *key, int64_t **start,
                      int64_t **items)
{
  if (!(*start = alloc_ids(n + 1)) || !(*items = alloc_ids(m)))
    return false;
  memset(*start, 0, sizeof(int64_t) * (size_t)(n + 1));
  for (int64_t e = 0; e < m; e++)
    (*start)[key[e] + 1]++;
  for (int64_t v = 0; v < n; v++)
    (*start)[v + 1] += (*start)[v];
  int64_t *fill = *items; /* filled through a moving cursor per node: reuse start shifted */
  for (int64_t e = 0; e < m; e++)
    fill[(*start)[key[e]]++] = e;
  for (int64_t v = n; v > 0; v--) /* undo the cursor shift */
    (*start)[v] = (*start)[v - 1];
  (*start)[0] = 0;
  return true;
}

/* Two edges with the same tail and head: stamp each head with the tail seen last. */
static int check_duplicate_edges(dag_ctx *c)
{
  ir_dag *d = c->d;
  for (int64_t v = 0; v < d->n_nodes; v++)
    c->mark[v] = -1;
  for (int64_t u = 0; u < d->n_nodes; u++) {
    for (int64_t i = c->out_start[u]; i < c->out_start[u + 1]; i++) {
      int64_t e = c->out_edges[i], h = d->head[e];
      if (c->mark[h] != u) {
        c->mark[h] = u;
        c->mark_at[h] = e;
        continue;
      }
      int64_t g = component_of(d->edge_start, d->n_graphs, e);
      char p[FE_PATH_MAX];
      sub_path(c, g, "edges", e - d->edge_start[g], p);
      if (c->undirected[g])
        return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p,
                          "duplicate bond between nodes %lld and %lld (the same as edges[%lld]; "
                          "the graph is undirected)", (long long)(u - d->node_start[g]),
                          (long long)(h - d->node_start[g]),
                          (long long)(c->mark_at[h] - d->edge_start[g]));
      return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p,
                        "duplicate edge %lld -> %lld (the same as edges[%lld])",
                        (long long)(u - d->node_start[g]), (long long)(h - d->node_start[g]),
                        (long long)(c->mark_at[h] - d->edge_start[g]));
    }
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ cycles */

/* Reports a cycle among the nodes Kahn's algorithm left (rem[v] > 0). Every such node has
 * an entering edge from another such node, so walking entering edges backwards must come
 * back to a node already walked: that loop is a cycle. */
static int report_cycle(dag_ctx *c, const int64_t *rem, int64_t *walk)
{
  ir_dag *d = c->d;
  int64_t *pos = c->mark, *enter = c->mark_at;
  int64_t v = 0;
  while (rem[v] == 0)
    v++;
  for (int64_t i = 0; i < d->n_nodes; i++)
    pos[i] = -1;
  int64_t w = 0;
  while (pos[v] < 0) {
    pos[v] = w;
    walk[w] = v;
    int64_t i = c->in_start[v];
    while (rem[d->tail[c->in_edges[i]]] == 0)
      i++;
    enter[w] = c->in_edges[i];
    w++;
    v = d->tail[c->in_edges[i]];
  }
  /* walk[pos[v]..w) runs against the edges; forward it is walk[w-1], ..., walk[pos[v]].
   * Start the listing at the smallest node so the message does not depend on the walk. */
  int64_t first = pos[v], len = w - first, lo = first;
  for (int64_t i = first; i < w; i++)
    if (walk[i] < walk[lo])
      lo = i;
  int64_t g = component_of(d->node_start, d->n_graphs, walk[lo]), n0 = d->node_start[g];
  xy_buf b;
  xy_buf_init(&b);
  xy_buf_printf(&b, "cycle");
  for (int64_t k = 0; k <= len; k++) {
    /* k-th node forward from walk[lo]: going forward means going down the walk. */
    int64_t idx = first + ((lo - first) - k % len + len) % len;
    if (len > 24 && k == 12) {
      xy_buf_printf(&b, " -> ... (%lld nodes in all)", (long long)len);
      k = len - 6;
      continue;
    }
    xy_buf_printf(&b, "%s%lld", k ? " -> " : " ", (long long)(walk[idx] - n0));
  }
  char *msg = xy_buf_take(&b);
  char p[FE_PATH_MAX];
  int64_t closing = enter[lo]; /* the edge into the listed first node closes the cycle */
  sub_path(c, g, "edges", closing - d->edge_start[g], p);
  int rc = fe_fail_at(c->err, XY_E_GRAPH, &c->src, p, "%s", msg ? msg : "cycle");
  free(msg);
  return rc;
}

/* Kahn's algorithm over all graphs at once (they are disjoint). */
static int check_acyclic(dag_ctx *c)
{
  ir_dag *d = c->d;
  int64_t *rem = alloc_ids(d->n_nodes), *queue = alloc_ids(d->n_nodes);
  if (!rem || !queue) {
    free(rem);
    free(queue);
    return nomem(c);
  }
  int64_t qt = 0;
  for (int64_t v = 0; v < d->n_nodes; v++) {
    rem[v] = c->in_start[v + 1] - c->in_start[v];
    if (rem[v] == 0)
      queue[qt++] = v;
  }
  for (int64_t qh = 0; qh < qt; qh++) {
    int64_t u = queue[qh];
    for (int64_t i = c->out_start[u]; i < c->out_start[u + 1]; i++)
      if (--rem[d->head[c->out_edges[i]]] == 0)
        queue[qt++] = d->head[c->out_edges[i]];
  }
  int rc = qt == d->n_nodes ? XY_OK : report_cycle(c, rem, queue);
  free(rem);
  free(queue);
  return rc;
}

/* ------------------------------------------------------------------ arcs */

/* Arcs of the full line graph of graph g: sum over its nodes of indegree x outdegree. */
static bool line_graph_arcs(const dag_ctx *c, int64_t g, int64_t *n)
{
  *n = 0;
  for (int64_t v = c->d->node_start[g]; v < c->d->node_start[g + 1]; v++) {
    int64_t k;
    if (!xy_mul_i64(c->in_start[v + 1] - c->in_start[v], c->out_start[v + 1] - c->out_start[v],
                    &k) ||
        !xy_add_i64(*n, k, n))
      return false;
  }
  return true;
}

/* Turns arc_start from sizes (-1: the line graph) into offsets, within max_arcs. */
static int count_arcs(dag_ctx *c)
{
  ir_dag *d = c->d;
  int64_t total = 0;
  for (int64_t g = 0; g < d->n_graphs; g++) {
    int64_t n = d->arc_start[g + 1];
    char gp[FE_PATH_MAX];
    graph_path(c, g, gp);
    if (n < 0 && !line_graph_arcs(c, g, &n))
      return fe_fail_at(c->err, XY_E_LIMIT, &c->src, gp, "the line graph's arc count overflows");
    if (!xy_add_i64(total, n, &total) || total > c->lim->max_arcs)
      return fe_fail_at(c->err, XY_E_LIMIT, &c->src, gp,
                        "with this graph's %lld arcs the file has more than the limit of "
                        "%lld arcs", (long long)n, (long long)c->lim->max_arcs);
    d->arc_start[g + 1] = total;
  }
  d->n_arcs = total;
  return XY_OK;
}

/* Every (p, e) with head(p) == tail(e), ordered by p, then e. */
static void fill_line_graph(dag_ctx *c, int64_t g)
{
  ir_dag *d = c->d;
  int64_t a = d->arc_start[g];
  for (int64_t p = d->edge_start[g]; p < d->edge_start[g + 1]; p++) {
    int64_t v = d->head[p];
    for (int64_t i = c->out_start[v]; i < c->out_start[v + 1]; i++, a++) {
      d->arc_src[a] = p;
      d->arc_dst[a] = c->out_edges[i];
    }
  }
}

static int read_arcs(dag_ctx *c, int64_t g, const json_t *arcs)
{
  ir_dag *d = c->d;
  int64_t e0 = d->edge_start[g], ne = d->edge_start[g + 1] - e0;
  for (int64_t i = 0, a = d->arc_start[g]; a < d->arc_start[g + 1]; i++, a++) {
    char p[FE_PATH_MAX];
    sub_path(c, g, "arcs", i, p);
    int64_t from, to;
    int rc = read_pair(c, json_array_get(arcs, (size_t)i), p, "[p, e] of edge indices",
                       "edge index", ne, "edges", &from, &to);
    if (rc)
      return rc;
    if (d->head[e0 + from] != d->tail[e0 + to])
      return fe_fail_at(c->err, XY_E_GRAPH, &c->src, p,
                        "arc from edges[%lld] to edges[%lld]: the edges do not meet (edge %lld "
                        "ends at node %lld, edge %lld starts at node %lld)", (long long)from,
                        (long long)to, (long long)from,
                        (long long)(d->head[e0 + from] - d->node_start[g]), (long long)to,
                        (long long)(d->tail[e0 + to] - d->node_start[g]));
    d->arc_src[a] = e0 + from;
    d->arc_dst[a] = e0 + to;
  }
  return XY_OK;
}

/* Explicit arcs listed twice: group arcs by source edge, stamp destinations. */
static int check_duplicate_arcs(dag_ctx *c)
{
  ir_dag *d = c->d;
  int64_t *start = NULL, *items = NULL, *seen = NULL, *seen_at = NULL;
  int rc = XY_OK;
  if (!build_csr(d->n_edges, d->n_arcs, d->arc_src, &start, &items) ||
      !(seen = alloc_ids(d->n_edges)) || !(seen_at = alloc_ids(d->n_edges))) {
    rc = nomem(c);
    goto done;
  }
  for (int64_t e = 0; e < d->n_edges; e++)
    seen[e] = -1;
  for (int64_t p = 0; p < d->n_edges && !rc; p++) {
    for (int64_t i = start[p]; i < start[p + 1]; i++) {
      int64_t a = items[i], e = d->arc_dst[a];
      if (seen[e] != p) {
        seen[e] = p;
        seen_at[e] = a;
        continue;
      }
      int64_t g = component_of(d->arc_start, d->n_graphs, a), e0 = d->edge_start[g];
      char path[FE_PATH_MAX];
      sub_path(c, g, "arcs", a - d->arc_start[g], path);
      rc = fe_fail_at(c->err, XY_E_GRAPH, &c->src, path,
                      "duplicate arc %lld -> %lld (the same as arcs[%lld])", (long long)(p - e0),
                      (long long)(e - e0), (long long)(seen_at[e] - d->arc_start[g]));
      break;
    }
  }
done:
  free(start);
  free(items);
  free(seen);
  free(seen_at);
  return rc;
}

static int build_arcs(dag_ctx *c)
{
  ir_dag *d = c->d;
  int rc = count_arcs(c);
  if (rc)
    return rc;
  if (!(d->arc_src = alloc_ids(d->n_arcs)) || !(d->arc_dst = alloc_ids(d->n_arcs)))
    return nomem(c);
  bool given = false;
  for (int64_t g = 0; g < d->n_graphs; g++) {
    json_t *arcs = json_object_get(graph_at(c, g), "arcs");
    if (!arcs) {
      fill_line_graph(c, g);
      continue;
    }
    given = true;
    d->arcs_given[g] = true;
    if ((rc = read_arcs(c, g, arcs)))
      return rc;
  }
  /* A full line graph has no duplicates: only files that list arcs need the check. */
  return given ? check_duplicate_arcs(c) : XY_OK;
}

/* ------------------------------------------------------------------ orientation */

/* Orients the undirected graphs (undirected) or the directed ones by node id, as the
 * reference's dagify does, and records their networkx edge order; a directed graph left
 * as it is keeps the file's order. */
static int orient(dag_ctx *c, bool undirected)
{
  ir_dag *d = c->d;
  int64_t most = 0;
  for (int64_t g = 0; g < d->n_graphs; g++)
    if (d->node_start[g + 1] - d->node_start[g] > most)
      most = d->node_start[g + 1] - d->node_start[g];
  int64_t *count = alloc_ids(most + 1);
  if (!count)
    return nomem(c);
  for (int64_t g = 0; g < d->n_graphs; g++) {
    if (c->undirected[g] != undirected)
      continue;
    int64_t n0 = d->node_start[g], e0 = d->edge_start[g], m = d->edge_start[g + 1] - e0;
    int64_t *order = d->edge_order + e0;
    if (!undirected && !c->dagify) {
      for (int64_t i = 0; i < m; i++)
        order[i] = e0 + i;
      continue;
    }
    /* dagp_dagify works in local ids. */
    for (int64_t e = e0; e < e0 + m; e++) {
      d->tail[e] -= n0;
      d->head[e] -= n0;
    }
    dagp_dagify(d->node_start[g + 1] - n0, m, d->tail + e0, d->head + e0, undirected, order,
                count);
    for (int64_t i = 0; i < m; i++) {
      d->tail[e0 + i] += n0;
      d->head[e0 + i] += n0;
      order[i] += e0;
    }
  }
  free(count);
  return XY_OK;
}

static bool build_lists(dag_ctx *c)
{
  ir_dag *d = c->d;
  free(c->out_start);
  free(c->out_edges);
  free(c->in_start);
  free(c->in_edges);
  c->out_start = c->out_edges = c->in_start = c->in_edges = NULL;
  return build_csr(d->n_nodes, d->n_edges, d->tail, &c->out_start, &c->out_edges) &&
         build_csr(d->n_nodes, d->n_edges, d->head, &c->in_start, &c->in_edges);
}

/* ------------------------------------------------------------------ entry points */

static int build(dag_ctx *c)
{
  ir_dag *d = c->d;
  int rc;
  if ((rc = list_graphs(c)) || (rc = count_all(c)) || (rc = read_edges(c)))
    return rc;
  if (!(d->edge_order = alloc_ids(d->n_edges)))
    return nomem(c);
  /* Bonds are oriented first, so that a bond listed both ways is a duplicate; a directed
   * graph must be acyclic as the file gives it (the reference refuses cyclic DiGraphs)
   * before dagify may orient it. */
  if ((rc = orient(c, true)))
    return rc;
  if (!build_lists(c) || !(c->mark = alloc_ids(d->n_nodes)) ||
      !(c->mark_at = alloc_ids(d->n_nodes)))
    return nomem(c);
  if ((rc = check_duplicate_edges(c)) || (rc = check_acyclic(c)) || (rc = orient(c, false)))
    return rc;
  if (c->dagify && !build_lists(c))
    return nomem(c);
  if ((rc = build_arcs(c)) || (rc = fe_dag_slots(d, false, c->src.file, c->err)))
    return rc;
  return fe_dag_read_features(&c->src, c->root, c->list, c->lim, d, c->err);
}

/* jansson builds a tree of some hundred bytes per edge before any count can be checked.
 * Every edge, arc and feature row is an array, so the file's '[' count bounds what it can
 * hold: refuse files that must break the limits before parsing them. */
static int precheck_size(const char *file, const char *text, size_t len,
                         const xy_limits *limits, xy_error *err)
{
  int64_t most = 2, brackets = 0, g2;
  if (!xy_mul_i64(limits->max_graphs, 2, &g2) || !xy_add_i64(most, g2, &most) ||
      !xy_add_i64(most, limits->max_edges, &most) || !xy_add_i64(most, limits->max_arcs, &most) ||
      !xy_add_i64(most, limits->max_nodes, &most) || !xy_add_i64(most, limits->max_edges, &most))
    return XY_OK; /* limits too large to matter */
  for (const char *p = text; (p = memchr(p, '[', len - (size_t)(p - text))); p++)
    if (++brackets > most)
      return xy_fail(err, XY_E_LIMIT,
                     "%s: the file holds more than %lld arrays, more edges, arcs and feature "
                     "rows than the limits allow (%lld graphs, %lld nodes, %lld edges, %lld "
                     "arcs)", file, (long long)most, (long long)limits->max_graphs,
                     (long long)limits->max_nodes, (long long)limits->max_edges,
                     (long long)limits->max_arcs);
  return XY_OK;
}

int fe_dag_from_text(const char *file, const char *text, size_t len, const xy_limits *limits,
                     ir_dag *dag, xy_error *err)
{
  return fe_dag_read(file, text, len, limits, false, dag, err);
}

int fe_dag_read(const char *file, const char *text, size_t len, const xy_limits *limits,
                bool dagify, ir_dag *dag, xy_error *err)
{
  memset(dag, 0, sizeof *dag);
  int rc = precheck_size(file, text, len, limits, err);
  if (rc)
    return rc;
  dag_ctx c;
  memset(&c, 0, sizeof c);
  c.src.file = file;
  c.src.text = text;
  c.lim = limits;
  c.err = err;
  c.d = dag;
  c.dagify = dagify;
  rc = fe_parse_json(file, text, len, &c.root, err);
  if (rc)
    return rc;
  rc = build(&c);
  json_decref(c.root);
  free(c.out_start);
  free(c.out_edges);
  free(c.in_start);
  free(c.in_edges);
  free(c.mark);
  free(c.mark_at);
  free(c.undirected);
  if (rc)
    ir_dag_free(dag);
  return rc;
}

int fe_load_dag(const char *path, const xy_limits *limits, ir_dag *dag, xy_error *err)
{
  xy_limits defaults;
  if (!limits) {
    xy_limits_default(&defaults);
    limits = &defaults;
  }
  memset(dag, 0, sizeof *dag);
  char *text;
  size_t len;
  int rc = xy_read_file(path, limits->max_file_bytes, &text, &len, err);
  if (rc)
    return rc;
  rc = fe_dag_from_text(path, text, len, limits, dag, err);
  free(text);
  return rc;
}
