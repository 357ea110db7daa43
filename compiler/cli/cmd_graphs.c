/* cmd_graphs.c: xylem graphs. Random DAG graph files (trees and molecule-like graphs with
 * one-hot features) for trying and benchmarking DAG models; xy_graphs_write makes them. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *const help =
  "usage: xylem graphs --count N --nodes MIN:MAX [options] -o FILE.json\n"
  "\n"
  "Writes a DAG graph file of N random graphs, each with a node count drawn from MIN..MAX:\n"
  "a random tree (node i > 0 hangs under a node drawn from 0..i-1), then a number of extra\n"
  "edges per node drawn from --extra, each to another earlier node. Edges run from the\n"
  "earlier node to the later one. The same options and seed give the same file.\n"
  "\n"
  "  --count N           graphs (at least 1)\n"
  "  --nodes MIN:MAX     nodes per graph (1 <= MIN <= MAX); N alone is N:N\n"
  "  --extra MIN:MAX     extra edges per node (default 0:0: trees); molecules: 1:3\n"
  "  --node-features F   one-hot node feature rows of F classes (like atom types)\n"
  "  --edge-features F   one-hot edge feature rows of F classes (like bond types)\n"
  "  --undirected        write bonds: \"directed\": false, each pair either way round\n"
  "  --seed S            random seed (default: from the clock; always printed)\n"
  "  -o FILE             where to write (whole or not at all)\n";

static bool parse_count(const char *s, int64_t *out)
{
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 0)
    return false;
  *out = v;
  return true;
}

/* "MIN:MAX" or "N" (N:N). */
static bool parse_range(const char *s, int64_t *lo, int64_t *hi)
{
  const char *colon = strchr(s, ':');
  if (!colon)
    return parse_count(s, lo) && parse_count(s, hi);
  char first[32];
  size_t n = (size_t)(colon - s);
  if (n == 0 || n >= sizeof first)
    return false;
  memcpy(first, s, n);
  first[n] = '\0';
  return parse_count(first, lo) && parse_count(colon + 1, hi);
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "xylem graphs: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, " (see xylem graphs --help)\n");
  va_end(ap);
  return EXIT_USAGE;
}

int cmd_graphs(int argc, char **argv)
{
  xy_graph_gen gen = {.count = 0, .nodes_min = 0, .nodes_max = 0};
  const char *out = NULL;
  bool seed_set = false, have_nodes = false;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(help, stdout);
      return EXIT_OK;
    }
    if (strcmp(a, "--undirected") == 0) {
      gen.undirected = 1;
      continue;
    }
    if (i + 1 >= argc)
      return usage("%s needs a value", a);
    const char *v = argv[++i];
    bool ok = true;
    if (strcmp(a, "--count") == 0)
      ok = parse_count(v, &gen.count);
    else if (strcmp(a, "--nodes") == 0)
      ok = have_nodes = parse_range(v, &gen.nodes_min, &gen.nodes_max);
    else if (strcmp(a, "--extra") == 0)
      ok = parse_range(v, &gen.extra_min, &gen.extra_max);
    else if (strcmp(a, "--node-features") == 0)
      ok = parse_count(v, &gen.node_features);
    else if (strcmp(a, "--edge-features") == 0)
      ok = parse_count(v, &gen.edge_features);
    else if (strcmp(a, "--seed") == 0) {
      char *end;
      errno = 0;
      gen.seed = strtoull(v, &end, 0);
      ok = seed_set = !errno && end != v && !*end && v[0] != '-';
    } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
      out = v;
    else
      return usage("unknown option '%s'", a);
    if (!ok)
      return usage("bad value '%s'", v);
  }
  if (!out)
    return usage("say where to write: -o FILE.json");
  if (gen.count == 0 || !have_nodes)
    return usage("give --count N and --nodes MIN:MAX");
  if (!seed_set)
    gen.seed = (uint64_t)time(NULL);
  xy_error err;
  if (xy_graphs_write(&gen, out, &err))
    return cli_report(&err);
  printf("wrote %s: %" PRId64 " graphs of %" PRId64 "..%" PRId64 " nodes, %" PRId64 "..%" PRId64
         " extra edges per node (seed %" PRIu64 ")\n", out, gen.count, gen.nodes_min,
         gen.nodes_max, gen.extra_min, gen.extra_max, gen.seed);
  return EXIT_OK;
}
