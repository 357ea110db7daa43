/*
 * graph_ir.h: the graph IR. A module holds tensors (shape, dtype), graphs (the topologies
 * scans run over: sequences, 2D grids, DAGs) and ops from the op table (ops.def). Its
 * meaning is defined by the float64 interpreter (interp.h); every pass must preserve it.
 */
#ifndef XY_GRAPH_IR_H
#define XY_GRAPH_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

#define IR_MAX_RANK XY_MAX_RANK
#define IR_MAX_SLOTS 12

/* Where a thing was declared in the spec, for messages. line/col are 1-based; 0 if unknown. */
typedef struct ir_srcpos {
  int line, col;
  char *json_path; /* "layers[0].inputs.q" */
} ir_srcpos;

typedef struct ir_shape {
  int rank;
  int64_t d[IR_MAX_RANK];
} ir_shape;

typedef enum ir_tensor_role {
  IR_INPUT,  /* given by the caller at run time */
  IR_WEIGHT, /* given by the caller, from a weights file */
  IR_VALUE,  /* produced by an op */
} ir_tensor_role;

typedef struct ir_tensor {
  char *name;
  ir_shape shape;
  xy_dtype dtype;
  ir_tensor_role role;
  bool is_output;
  double lo, hi;   /* inputs: the range `check` draws random values from */
  int producer;    /* op index for IR_VALUE, else -1 */
  ir_srcpos pos;
} ir_tensor;

/* ------------------------------------------------------------------ graphs */

typedef enum ir_graph_kind { IR_GRAPH_SEQUENCE, IR_GRAPH_GRID2D, IR_GRAPH_DAG } ir_graph_kind;

/* One or many DAGs as a disjoint union: graph g owns nodes [node_start[g], node_start[g+1]),
 * likewise edges and arcs. Node, edge and arc ids are global (over all graphs). Edge e runs
 * tail[e] -> head[e]; arc a carries state from edge arc_src[a] into edge arc_dst[a] through
 * node head(arc_src[a]) == tail(arc_dst[a]). Within a graph, edges keep their file order
 * and arcs are ordered by (src, dst) unless given explicitly. */
typedef struct ir_dag {
  int64_t n_graphs, n_nodes, n_edges, n_arcs;
  int64_t *node_start, *edge_start, *arc_start; /* [n_graphs + 1] */
  int64_t *tail, *head;                         /* [n_edges] */
  int64_t *arc_src, *arc_dst;                   /* [n_arcs] */
} ir_dag;

/* What the prepare_graphs pass derives from a DAG. Level of a node: 0 with no incoming
 * edge, else 1 + the largest level of its predecessors; all edges leaving a node of level l
 * have line-graph depth l, so a level is a set of nodes whose outputs and outgoing states
 * can be computed together. */
typedef struct ir_dag_prep {
  int64_t *level;          /* [n_nodes] */
  int64_t *graph_levels;   /* [n_graphs] levels of each graph */
  int64_t max_levels;      /* over all graphs */
  int64_t *topo;           /* [n_nodes] nodes sorted by (level, id): a topological order */
  int64_t *level_start;    /* [max_levels + 1] offsets into topo */
  int64_t *in_start, *in_edges;  /* CSR, edges entering each node, by edge id */
  int64_t *out_start, *out_edges;/* CSR, edges leaving each node, by edge id */
  int64_t *arc_in_start, *arcs_in; /* CSR, arcs entering each edge, by arc id */
} ir_dag_prep;

typedef struct ir_graph {
  ir_graph_kind kind;
  int64_t length;      /* sequence */
  int64_t rows, cols;  /* grid2d */
  ir_dag dag;          /* dag */
  bool prepared;
  ir_dag_prep prep;
  char *file;          /* where a DAG came from */
} ir_graph;

/* ------------------------------------------------------------------ ops */

enum { IR_OPF_SCAN = 1u << 0 };

typedef enum ir_opcode {
#define X(id, name, ins, outs, flags) IR_OP_##id,
#include "ops.def"
#undef X
  IR_OP_COUNT
} ir_opcode;

typedef struct ir_op_info {
  const char *name;
  int n_in, n_out;
  const char *in_names[IR_MAX_SLOTS];
  const char *out_names[IR_MAX_SLOTS];
  bool in_optional[IR_MAX_SLOTS], out_optional[IR_MAX_SLOTS];
  unsigned flags;
} ir_op_info;

const ir_op_info *ir_op_info_of(ir_opcode code);
/* Slot index of an input/output name of an op, or -1. */
int ir_op_in_slot(ir_opcode code, const char *name);
int ir_op_out_slot(ir_opcode code, const char *name);

/* The parallel forms a scan can be lowered to. */
typedef enum ir_form {
  IR_FORM_AUTO,
  IR_FORM_RECURRENT,  /* sequential over positions (nodes in topological order) */
  IR_FORM_CHUNKWISE,  /* 1D: in-chunk tree build, sequential pass over chunks */
  IR_FORM_LEVELS,     /* DAG: one launch per level over all graphs */
  IR_FORM_GRAPH,      /* DAG: one work-group per graph walks its levels */
  IR_FORM_COUNT
} ir_form;

const char *ir_form_name(ir_form f);
ir_form ir_form_from_name(const char *name); /* IR_FORM_COUNT when unknown */

typedef struct ir_schedule {
  ir_form form;
  int64_t chunk;     /* chunkwise: positions per chunk */
  int64_t wg;        /* work-items per group */
  int64_t lanes;     /* vector width along the value dimension (1: scalar) */
  int64_t rows;      /* rows each work-item keeps in registers (register blocking) */
} ir_schedule;

typedef struct ir_op {
  ir_opcode code;
  char *name;                 /* layer name in the spec */
  int in[IR_MAX_SLOTS];       /* tensor ids, -1 when an optional slot is empty */
  int out[IR_MAX_SLOTS];
  int graph;                  /* scans: index into module graphs */
  double qk_scale;            /* plstm_scan */
  ir_schedule sched;          /* set by parallelize_scans */
  ir_srcpos pos;
} ir_op;

/* ------------------------------------------------------------------ module */

typedef struct ir_module {
  char *name;
  char *spec_path;
  int64_t batch;
  ir_tensor *tensors;
  int n_tensors;
  size_t cap_tensors;
  ir_op *ops;
  int n_ops;
  size_t cap_ops;
  ir_graph *graphs;
  int n_graphs;
  size_t cap_graphs;
  int *inputs;   /* tensor ids of IR_INPUT/IR_WEIGHT tensors, in declaration order */
  int n_inputs;
  size_t cap_inputs;
  int *outputs;  /* tensor ids of model outputs, in declaration order */
  int n_outputs;
  size_t cap_outputs;
} ir_module;

ir_module *ir_module_new(const char *name);
void ir_module_free(ir_module *m);
/* A deep copy: the pipeline works on a clone, so a model can be compiled many times. */
ir_module *ir_module_clone(const ir_module *m);

/* Builders return the new index, or -1 when memory runs out. Strings are copied. */
int ir_add_tensor(ir_module *m, const char *name, const ir_shape *shape, xy_dtype dtype,
                  ir_tensor_role role);
int ir_add_graph(ir_module *m, ir_graph_kind kind);
int ir_add_op(ir_module *m, ir_opcode code, const char *name);
bool ir_mark_input(ir_module *m, int tensor);
bool ir_mark_output(ir_module *m, int tensor);
int ir_find_tensor(const ir_module *m, const char *name);
bool ir_set_pos(ir_srcpos *pos, int line, int col, const char *json_path);

void ir_dag_free(ir_dag *d);
void ir_dag_prep_free(ir_dag_prep *p);

int64_t ir_shape_count(const ir_shape *s);   /* -1 on overflow */
void ir_shape_print(const ir_shape *s, xy_buf *out);
bool ir_shape_equal(const ir_shape *a, const ir_shape *b);
ir_shape ir_shape_make(int rank, const int64_t *d);
const char *ir_dtype_name(xy_dtype t);

/* Stable text form of the module: one line per tensor, graph and op. */
void ir_print(const ir_module *m, xy_buf *out);

/* Structural and per-op checks; run after every pass. */
int ir_verify(const ir_module *m, xy_error *err);

/* Shapes of a plstm_scan (from its operands, checked against each other). */
typedef struct plstm_dims {
  int64_t B;      /* batch (heads folded in) */
  int64_t N;      /* nodes (sequence: length) */
  int64_t E;      /* edges carrying gates (sequence: length; S and M are per position) */
  int64_t A;      /* arcs carrying transitions (sequence: length) */
  int64_t DK, DV, JQ, JK, JV, JT, JO;
  bool has_initial, has_final;
  ir_graph_kind graph_kind;
} plstm_dims;

int plstm_scan_dims(const ir_module *m, const ir_op *op, plstm_dims *d, xy_error *err);

/* Fills in the shapes of op's outputs from its inputs (front end calls it for each layer). */
int ir_infer_shapes(ir_module *m, ir_op *op, xy_error *err);

#endif /* XY_GRAPH_IR_H */
