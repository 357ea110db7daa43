/*
 * frontend.h: reading what users write: model specs (JSON, jansson) and DAG graph files,
 * into a graph-IR module. Everything read is treated as hostile: sizes are checked against
 * xy_limits before anything is allocated, and every error names the file, line, column and
 * JSON path of the cause.
 */
#ifndef XY_FRONTEND_H
#define XY_FRONTEND_H

#include "graph_ir.h"

/* Reads the spec at path (and the graph files it names, relative to the spec's folder),
 * applies opt->overrides, builds the module, infers op output shapes and verifies it. */
int fe_load_spec(const char *path, const xy_load_options *opt, ir_module **out, xy_error *err);

/* Reads a DAG graph file (one graph or many) into *dag and validates it: node ids in range,
 * no self-loops, no duplicate edges or arcs, no empty graph, no cycle (one is reported),
 * sizes within limits. Without explicit arcs the full line graph is built. */
int fe_load_dag(const char *path, const xy_limits *limits, ir_dag *dag, xy_error *err);

/* Line and column (1-based) of the value at json_path ("layers[0].inputs.q") in the JSON
 * text; false when the path is not found. Keys are matched after unescaping. */
bool fe_json_locate(const char *text, const char *json_path, int *line, int *col);

#endif /* XY_FRONTEND_H */
