/*
 * graph_gen.c: random DAG graph files (xylem graphs). Molecule-like benchmark graphs: a
 * random tree (node i > 0 hangs under a node drawn from 0 .. i-1) with a few more edges per
 * node back to other earlier nodes (rings), and one-hot feature rows (atom and bond
 * types). Everything comes from one xy_rng stream, so a seed gives the same file on every
 * host; the file is checked against the default limits before it is written, so xylem
 * can always read what it generated.
 */
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Uniform in [lo, hi] (hi - lo is small: the modulo's bias does not matter here). */
static int64_t pick(xy_rng *rng, int64_t lo, int64_t hi)
{
  return lo + (int64_t)(xy_rng_next(rng) % (uint64_t)(hi - lo + 1));
}

static int check_options(const xy_graph_gen *gen, xy_error *err)
{
  if (gen->count < 1)
    return xy_fail(err, XY_E_USAGE, "the graph count must be at least 1, not %lld",
                   (long long)gen->count);
  if (gen->nodes_min < 1 || gen->nodes_max < gen->nodes_min)
    return xy_fail(err, XY_E_USAGE, "nodes %lld:%lld: need 1 <= MIN <= MAX",
                   (long long)gen->nodes_min, (long long)gen->nodes_max);
  if (gen->extra_min < 0 || gen->extra_max < gen->extra_min)
    return xy_fail(err, XY_E_USAGE, "extra %lld:%lld: need 0 <= MIN <= MAX",
                   (long long)gen->extra_min, (long long)gen->extra_max);
  if (gen->node_features < 0 || gen->edge_features < 0)
    return xy_fail(err, XY_E_USAGE, "feature counts must not be negative");
  /* What the file could hold at most, against what xylem reads by default. */
  xy_limits lim;
  xy_limits_default(&lim);
  int64_t nodes, per_node, edges, rows;
  if (gen->count > lim.max_graphs || gen->nodes_max > lim.max_graph_nodes ||
      !xy_mul_i64(gen->count, gen->nodes_max, &nodes) || nodes > lim.max_nodes ||
      !xy_add_i64(gen->extra_max, 1, &per_node) || !xy_mul_i64(nodes, per_node, &edges) ||
      edges > lim.max_edges)
    return xy_fail(err, XY_E_LIMIT, "%lld graphs of up to %lld nodes and %lld extra edges per "
                   "node could pass the graph file limits (%lld graphs, %lld nodes per graph, "
                   "%lld nodes, %lld edges)", (long long)gen->count, (long long)gen->nodes_max,
                   (long long)gen->extra_max, (long long)lim.max_graphs,
                   (long long)lim.max_graph_nodes, (long long)lim.max_nodes,
                   (long long)lim.max_edges);
  if (gen->node_features > 4096 || gen->edge_features > 4096 ||
      !xy_mul_i64(nodes, gen->node_features, &rows) || rows > lim.max_elements ||
      !xy_mul_i64(edges, gen->edge_features, &rows) || rows > lim.max_elements)
    return xy_fail(err, XY_E_LIMIT, "feature counts %lld and %lld are too many (at most 4096 "
                   "classes, %lld values)", (long long)gen->node_features,
                   (long long)gen->edge_features, (long long)lim.max_elements);
  return XY_OK;
}

/* A one-hot row of f classes, class drawn at random. */
static void one_hot(xy_buf *b, xy_rng *rng, int64_t f)
{
  int64_t hot = pick(rng, 0, f - 1);
  xy_buf_putc(b, '[');
  for (int64_t k = 0; k < f; k++)
    xy_buf_puts(b, k == 0 ? (hot == k ? "1" : "0") : (hot == k ? ", 1" : ", 0"));
  xy_buf_putc(b, ']');
}

/* One graph: its edges into tail/head (room for n * (extra_max + 1)), returns the count. */
static int64_t make_graph(const xy_graph_gen *gen, xy_rng *rng, int64_t n, int64_t *tail,
                          int64_t *head, int64_t *stamp)
{
  int64_t m = 0;
  for (int64_t v = 0; v < n; v++)
    stamp[v] = -1;
  for (int64_t i = 1; i < n; i++) {
    int64_t parent = pick(rng, 0, i - 1);
    tail[m] = parent;
    head[m++] = i;
    stamp[parent] = i;
    /* Distinct earlier nodes besides the parent, as many as there are. */
    int64_t extra = pick(rng, gen->extra_min, gen->extra_max);
    if (extra > i - 1)
      extra = i - 1;
    for (int64_t k = 0; k < extra;) {
      int64_t to = pick(rng, 0, i - 1);
      if (stamp[to] == i)
        continue;
      stamp[to] = i;
      tail[m] = to;
      head[m++] = i;
      k++;
    }
  }
  /* Bonds have no direction: write each pair either way round. */
  for (int64_t e = 0; gen->undirected && e < m; e++)
    if (xy_rng_next(rng) >> 63) {
      int64_t t = tail[e];
      tail[e] = head[e];
      head[e] = t;
    }
  return m;
}

static void write_graph(const xy_graph_gen *gen, xy_rng *rng, xy_buf *b, int64_t n,
                        const int64_t *tail, const int64_t *head, int64_t m)
{
  xy_buf_printf(b, "  {\"nodes\": %lld, ", (long long)n);
  if (gen->undirected)
    xy_buf_puts(b, "\"directed\": false, ");
  xy_buf_puts(b, "\"edges\": [");
  for (int64_t e = 0; e < m; e++)
    xy_buf_printf(b, "%s[%lld, %lld]", e ? ", " : "", (long long)tail[e], (long long)head[e]);
  xy_buf_putc(b, ']');
  if (gen->node_features) {
    xy_buf_puts(b, ",\n   \"node_features\": [");
    for (int64_t v = 0; v < n; v++) {
      xy_buf_puts(b, v ? ", " : "");
      one_hot(b, rng, gen->node_features);
    }
    xy_buf_putc(b, ']');
  }
  if (gen->edge_features) {
    xy_buf_puts(b, ",\n   \"edge_features\": [");
    for (int64_t e = 0; e < m; e++) {
      xy_buf_puts(b, e ? ", " : "");
      one_hot(b, rng, gen->edge_features);
    }
    xy_buf_putc(b, ']');
  }
  xy_buf_putc(b, '}');
}

int xy_graphs_write(const xy_graph_gen *gen, const char *path, xy_error *err)
{
  int rc = check_options(gen, err);
  if (rc)
    return rc;
  size_t cap = (size_t)gen->nodes_max * (size_t)(gen->extra_max + 1) + 1;
  int64_t *tail = malloc(sizeof(int64_t) * cap), *head = malloc(sizeof(int64_t) * cap);
  int64_t *stamp = malloc(sizeof(int64_t) * ((size_t)gen->nodes_max + 1));
  xy_buf b;
  xy_buf_init(&b);
  if (!tail || !head || !stamp) {
    rc = xy_fail(err, XY_E_NOMEM, "out of memory");
    goto done;
  }
  xy_rng rng;
  xy_rng_seed(&rng, gen->seed);
  xy_buf_puts(&b, "{\"graphs\": [\n");
  for (int64_t g = 0; g < gen->count; g++) {
    int64_t n = pick(&rng, gen->nodes_min, gen->nodes_max);
    int64_t m = make_graph(gen, &rng, n, tail, head, stamp);
    write_graph(gen, &rng, &b, n, tail, head, m);
    xy_buf_puts(&b, g + 1 < gen->count ? ",\n" : "\n");
  }
  xy_buf_puts(&b, "]}\n");
  xy_limits lim;
  xy_limits_default(&lim);
  if (b.failed)
    rc = xy_fail(err, XY_E_NOMEM, "out of memory for the graph file");
  else if ((uint64_t)b.len > (uint64_t)lim.max_file_bytes)
    rc = xy_fail(err, XY_E_LIMIT, "%s: the file would hold %zu bytes, more than the limit of "
                 "%lld", path, b.len, (long long)lim.max_file_bytes);
  else
    rc = xy_write_file_atomic(path, b.data, b.len, err);
done:
  xy_buf_free(&b);
  free(tail);
  free(head);
  free(stamp);
  return rc;
}
