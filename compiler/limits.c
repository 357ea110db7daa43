/* limits.c: the default bounds on what a spec or graph file may ask for. They are high
 * enough for real models (millions of nodes) and low enough that a hostile file is refused
 * before it can make the compiler allocate gigabytes. */
#include <string.h>

#include "xylem.h"

void xy_limits_default(xy_limits *limits)
{
  limits->max_graphs = INT64_C(1) << 20;
  limits->max_nodes = INT64_C(1) << 24;
  limits->max_graph_nodes = INT64_C(1) << 22;
  limits->max_edges = INT64_C(1) << 26;
  limits->max_arcs = INT64_C(1) << 28;
  limits->max_elements = (INT64_C(1) << 31) - 1;
  limits->max_file_bytes = INT64_C(1) << 30;
}

void xy_load_options_default(xy_load_options *opt)
{
  memset(opt, 0, sizeof *opt);
  xy_limits_default(&opt->limits);
  opt->overrides = NULL;
  opt->n_overrides = 0;
}
