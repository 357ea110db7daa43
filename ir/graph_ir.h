/*
 * graph_ir.h: the graph IR. A module holds tensors (shape, dtype), graphs (the topologies
 * scans run over: sequences, 2D grids, DAGs) and ops from the op table (ops.def). Its
 * meaning is defined by the float64 interpreter (interp.h); every pass must preserve it.
 */
#ifndef XY_GRAPH_IR_H
#define XY_GRAPH_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "memory_oracle.h"
#include "util.h"

#define IR_MAX_RANK XY_MAX_RANK
#define IR_MAX_SLOTS 16 /* plstm_scan2d has 14 inputs */

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

/* Inputs whose values a DAG graph file carries (an input's "from_graph"). */
typedef enum ir_graph_data {
  IR_FROM_NONE,
  IR_FROM_NODE_FEATURES,   /* [batch, nodes, F] or [nodes, F]: the file's node_features */
  IR_FROM_EDGE_FEATURES,   /* [batch, edges, F] or [edges, F]: the file's edge_features */
} ir_graph_data;

typedef struct ir_tensor {
  char *name;
  ir_shape shape;
  xy_dtype dtype;
  ir_tensor_role role;
  bool is_output;
  double lo, hi;   /* inputs: the range `check` draws random values from */
  int producer;    /* op index for IR_VALUE, else -1 */
  ir_graph_data from_graph; /* inputs: values the graph file gives */
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
  /* Per edge, its position among its tail's out-edges and its head's in-edges in the
   * reference's networkx orders (the node-wise graph layer's slots); NULL until filled. */
  int64_t *out_slot, *in_slot;                  /* [n_edges] */
  /* Features a graph file carries: [n_nodes, node_feat_dim], [n_edges, edge_feat_dim]. */
  int64_t node_feat_dim, edge_feat_dim;
  double *node_feat, *edge_feat;
  /* The forward DAG's edges (the file's orientation after dagify, before any reversal) in
   * the order the reference's networkx DiGraph inserted them, graph by graph: what the
   * slots, reversal and pruning follow (compiler/frontend/dag_prepare.c). */
  int64_t *edge_order;                          /* [n_edges] */
  bool *arcs_given;                             /* [n_graphs]: the file listed its arcs */
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
  /* DAGs: how the file's graphs were prepared (docs/spec-format.md, "The graph"): edges
   * oriented by node id, reversed, line graph pruned to a multitree; origin is the module
   * graph the spec declared, of which this one is a variant (fe_dag_variant). */
  bool dagified, reversed, multitree;
  int origin;
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
  IR_FORM_TILED,      /* 2D: tiles of chunk x chunk cells, border states along tile diagonals */
  IR_FORM_SINGLE,     /* 2D: the whole grid one tile, applied like attention */
  IR_FORM_DENSE,      /* DAG: G = M (I-T)^-1 S + diag(D) per graph, applied like attention */
  IR_FORM_COUNT
} ir_form;

const char *ir_form_name(ir_form f);
ir_form ir_form_from_name(const char *name); /* IR_FORM_COUNT when unknown */

typedef struct ir_schedule {
  ir_form form;
  int64_t chunk;     /* chunkwise: positions per chunk; tiled: the tile side */
  int64_t wg;        /* work-items per group */
  int64_t lanes;     /* vector width along the value dimension (1: scalar) */
  int64_t rows;      /* rows each work-item keeps in registers (register blocking) */
} ir_schedule;

/* Attributes of the ordinary ops (ops.def says what each means). */
typedef enum ir_weight_order { IR_W_GFSC, IR_W_GSFC } ir_weight_order;

typedef struct ir_linear_attrs {
  int64_t groups, subheads, features;
  ir_weight_order order;
  double scale;
} ir_linear_attrs;

typedef enum ir_act_kind {
  IR_ACT_IDENTITY,
  IR_ACT_SIGMOID,      /* 1 / (1 + exp(-x)) */
  IR_ACT_SIGMOID_POW,  /* sigmoid(x)^p = exp(p logsigmoid(x)): the reference's "logsigmoid" */
  IR_ACT_TANH_GAIN,    /* tanh(p x): the reference's "tanh" eigenvalues (p = 5) */
  IR_ACT_TANH_SCALED,  /* p tanh(x / p): the reference's "tanh" gate activation */
  IR_ACT_EXPEXP,       /* exp(-p exp(-x)) */
  IR_ACT_ONE_MINUS,    /* 1 - x */
  IR_ACT_SILU,         /* x sigmoid(x) */
  IR_ACT_SIGMOID_SCALED, /* p sigmoid(x): a gate with a maximum (Titans' learning rate) */
  IR_ACT_COUNT
} ir_act_kind;

typedef struct ir_act_attrs {
  ir_act_kind kind;
  double p;
} ir_act_attrs;

typedef enum ir_binary_kind { IR_BIN_ADD, IR_BIN_SUB, IR_BIN_MUL, IR_BIN_COUNT } ir_binary_kind;

typedef struct ir_norm_attrs {
  int64_t heads;
  double eps;
  bool l2;              /* l2-normalise: x / sqrt(sum of x^2 + eps), not the mean */
} ir_norm_attrs;

typedef struct ir_conv_attrs {
  int64_t kernel;       /* K; the spatial rank comes from the shapes */
} ir_conv_attrs;

typedef struct ir_transpose_attrs {
  ir_shape view;
  int perm[IR_MAX_RANK];
} ir_transpose_attrs;

typedef struct ir_trans_exp_attrs {
  double factor;
  int64_t order;        /* terms of the series: 16 in the reference */
} ir_trans_exp_attrs;

/* memory_scan's schedule (spec tnt.md §5.1): part of the model, it changes results. */
typedef struct ir_memory_attrs {
  int64_t hidden;        /* 0: linear memory W x; else the MLP W2 act(W1 x) of this width */
  mem_act act;
  bool bias;
  bool ln_residual;      /* TTT's x + LN(f(x)) wrapper */
  double ln_eps;
  double loss_scale;     /* c in c |f(k) - v|^2 */
  bool ttt_lr;           /* TTT's learning-rate matrix, else per-token theta */
  double ttt_base, ttt_div;
  bool momentum, decay;
  int64_t chunk;         /* >= 1 */
  int64_t reset;         /* 0: never; else a multiple of chunk */
  mem_read read;
  mem_qkproj qkproj;
} ir_memory_attrs;

/* graph_gather's index maps (ops.def): which row (and slot) of x an output row reads, in
 * the op's DAG (op->graph). */
typedef enum ir_gather_map {
  IR_GATHER_EDGE_TAIL,        /* per edge e: node tail(e) */
  IR_GATHER_EDGE_HEAD,        /* per edge e: node head(e) */
  IR_GATHER_ARC_SRC,          /* per arc p->e: edge p */
  IR_GATHER_ARC_DST,          /* per arc p->e: edge e */
  IR_GATHER_ARC_SRC_TAIL,     /* per arc p->e: node tail(p) */
  IR_GATHER_SOURCE_SLOT,      /* per edge e: node tail(e), slot in_slot(e) */
  IR_GATHER_MARK_SLOT,        /* per edge e: node head(e), slot out_slot(e) */
  IR_GATHER_TRANSITION_SLOTS, /* per arc p->e: node tail(e), slots (out_slot(p), in_slot(e)) */
  IR_GATHER_COUNT
} ir_gather_map;

typedef struct ir_gather_attrs {
  ir_gather_map map;
  int64_t heads;         /* slot maps: x's last axis is [heads, slots (^2), features] */
  int64_t slots;         /* slot maps: slots per node (the layer's max_edges) */
} ir_gather_attrs;

/* graph_pnorm: the graph layers' P-mode transition normalisation (ops.def). */
typedef struct ir_pnorm_attrs {
  bool arcs;             /* by the arcs' outgoing edge; else a node's [slots x slots] rows */
  int64_t heads, slots;  /* node rows: x's last axis is [heads, slots, slots] */
  double alpha;          /* t / (alpha + sum |t|) */
} ir_pnorm_attrs;

typedef union ir_op_attrs {
  ir_linear_attrs linear;
  ir_act_attrs act;
  ir_binary_kind binary;
  ir_norm_attrs norm;
  ir_conv_attrs conv;
  ir_transpose_attrs transpose;
  ir_trans_exp_attrs trans_exp;
  ir_shape reshape;
  ir_memory_attrs memory;
  ir_gather_attrs gather;
  ir_pnorm_attrs pnorm;
} ir_op_attrs;

typedef struct ir_op {
  ir_opcode code;
  char *name;                 /* layer name in the spec */
  int in[IR_MAX_SLOTS];       /* tensor ids, -1 when an optional slot is empty */
  int out[IR_MAX_SLOTS];
  int graph;                  /* scans: index into module graphs */
  double qk_scale;            /* pLSTM scans */
  ir_op_attrs attr;           /* ordinary ops */
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
  char **weight_prefixes; /* each layer's prefix of weight names in a weights file */
  int n_weight_prefixes;
  size_t cap_weight_prefixes;
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
bool ir_add_weight_prefix(ir_module *m, const char *prefix);
int ir_find_tensor(const ir_module *m, const char *name);
bool ir_set_pos(ir_srcpos *pos, int line, int col, const char *json_path);

void ir_dag_free(ir_dag *d);
void ir_dag_prep_free(ir_dag_prep *p);

int64_t ir_shape_count(const ir_shape *s);   /* -1 on overflow */
void ir_shape_print(const ir_shape *s, xy_buf *out);
bool ir_shape_equal(const ir_shape *a, const ir_shape *b);
ir_shape ir_shape_make(int rank, const int64_t *d);
/* XY_OK when got is [want...], else the error "OPKIND 'NAME': SLOT has shape [..],
 * expected [..] (WHY)". */
int ir_shape_expect(const ir_op *op, const char *slot, const ir_shape *got, int rank,
                    const int64_t *want, const char *why, xy_error *err);
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

/* ------------------------------------------------------------------ per-op rules */

/* What each op contributes to the IR's common machinery, one row per op (op_rules.c).
 * shapes checks the inputs and attributes and computes every output's shape (outs has
 * IR_MAX_SLOTS entries; empty output slots are left alone); interp is the float64 meaning;
 * print_attrs appends " key=value" text for dumps (may be NULL). */
typedef struct ir_op_rules {
  int (*shapes)(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
  int (*interp)(const ir_module *m, const ir_op *op, double **vals, xy_error *err);
  void (*print_attrs)(const ir_op *op, xy_buf *out);
} ir_op_rules;

const ir_op_rules *ir_rules_of(ir_opcode code);

/* Shape rules, interpreters and attribute printers of the ops (one file per family). */
int plstm_scan_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int plstm_scan2d_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int plstm_scan2d_fused_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int linear_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int activation_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int binary_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int rmsnorm_heads_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int conv_causal_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int transpose_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int transition_exp_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
int reshape_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);

void print_qk_scale(const ir_op *op, xy_buf *out);
void print_reshape(const ir_op *op, xy_buf *out);
void layer_op_print_attrs(const ir_op *op, xy_buf *out);

/* 2D scan shapes, shared by the verifier, the interpreter and the lowering. */
typedef struct plstm2d_dims {
  int64_t B, X, Y;
  int64_t DK, DV, JQ, JK, JV, JT, JO;
  bool has_dl, has_ru;          /* the optional turn transitions are present */
  bool has_left, has_top;       /* initial border states */
  bool has_right, has_bottom;   /* final border states */
  bool fused;                   /* four orientations, gates with an orientation axis */
} plstm2d_dims;

int plstm2d_dims_of(const ir_module *m, const ir_op *op, plstm2d_dims *d, xy_error *err);

/* memory_scan's slots, in ops.def order. */
enum { MS_Q, MS_K, MS_V, MS_THETA, MS_ETA, MS_ALPHA, MS_WINIT, MS_GAMMA, MS_BETA, MS_OFFSET,
       MS_STATE };
enum { MS_Y, MS_STATE_OUT };

/* memory_scan shapes, and the oracle's description of one (batch, head) memory. */
typedef struct memory_dims {
  int64_t B, L, H, DK, DV;
  int64_t NW;                  /* doubles in one copy of the weights */
  mem_state_layout state;      /* NS = state.count */
} memory_dims;

int memory_dims_of(const ir_module *m, const ir_op *op, memory_dims *d, mem_desc *desc,
                   xy_error *err);
int memory_scan_shapes(const ir_module *m, const ir_op *op, ir_shape *outs, xy_error *err);
void memory_print_attrs(const ir_op *op, xy_buf *out);

#endif /* XY_GRAPH_IR_H */
