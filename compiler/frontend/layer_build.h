/*
 * layer_build.h: what the whole-layer expansions share (layers.c: plstm2d, plstm1d;
 * layer_memory.c: memory): reading a layer's options, its input, output and weight prefix,
 * and adding its ops and weight tensors to the module. Every op is named
 * "<layer>.<what>", every weight "<prefix><ref>"; errors point at lb->lp.
 */
#ifndef XY_LAYER_BUILD_H
#define XY_LAYER_BUILD_H

#include "fe_internal.h"

typedef struct fe_lb {
  fe_layer_ctx *fc;
  const json_t *l;         /* the layer's object */
  const char *lp;          /* the JSON path errors and op positions point at */
  const char *name;        /* the layer's name */
  const char *prefix;      /* of its weights in a weights file */
  int x;                   /* the input tensor (named by "input") */
  int out_id;              /* the tensor the layer's output gets (named by "output") */
} fe_lb;

#define LB_FAIL(lb, code, path, ...) \
  fe_fail_at((lb)->fc->err, code, (lb)->fc->src, path, __VA_ARGS__)

int lb_nomem(fe_lb *lb);

/* Checks and reads what every layer has: its name is not taken by an earlier layer's ops,
 * the graph is a grid2d (grid) or a sequence (else), "input" names a tensor
 * [batch, rows, cols, dim] or [batch, length, dim] over the graph's positions, "output" a
 * new tensor, "weights" the prefix. Fills lb. */
int lb_open(fe_lb *lb, fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
            const char *name, bool grid);
/* The same for a layer over a graph of any kind: a dag layer reads [batch, nodes, dim]. */
int lb_open_kind(fe_lb *lb, fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
                 const char *name, ir_graph_kind kind);

/* Optional members of obj (at path): absent leaves *out as it is; a wrong type or value is
 * an error at path.key. lb_opt_member gets a member of JSON type t (JSON_REAL takes
 * integers, JSON_TRUE both booleans); p receives its path. */
int lb_opt_member(fe_lb *lb, const json_t *obj, const char *path, const char *key, json_type t,
                  const char *kind, json_t **out, char *p);
int lb_opt_bool(fe_lb *lb, const json_t *obj, const char *path, const char *key, bool *out);
int lb_opt_int(fe_lb *lb, const json_t *obj, const char *path, const char *key, int64_t min,
               int64_t *out);
int lb_opt_num(fe_lb *lb, const json_t *obj, const char *path, const char *key, double *out);
/* A string member that must be one of names[]; *out is its index. */
int lb_opt_enum(fe_lb *lb, const json_t *obj, const char *path, const char *key,
                const char *const *names, int n, int *out);

/* The layer's "norm": true | false | {"eps": e} (with_scale: also "scale": bool). An
 * object turns the norm on. */
int lb_read_norm(fe_lb *lb, bool with_scale, bool *on, double *eps, bool *scale);

/* A weight tensor "<prefix><ref>" of the given shape, drawn from [lo, hi) by check. */
int lb_weight(fe_lb *lb, const char *ref, int rank, const int64_t *shape, double lo, double hi,
              int *id);

/* Adds op "<layer>.<what>" with inputs ins[0..n) (-1: empty slot); lb_op_end gives it its
 * one output, the layer's output tensor when final, else a new value "<layer>.<what>", and
 * infers its shape. */
int lb_op_begin(fe_lb *lb, ir_opcode code, const char *what, const int *ins, int n, int *oi);
int lb_op_end(fe_lb *lb, int oi, const char *what, bool final, int *out);

/* One op each (ops.def says what they compute). */
int lb_reshape(fe_lb *lb, const char *what, int x, int rank, const int64_t *dims, int *out);
int lb_transpose(fe_lb *lb, const char *what, int x, int rank, const int64_t *view,
                 const int *perm, int *out);
int lb_activation(fe_lb *lb, const char *what, int x, ir_act_kind kind, double p, int *out);
int lb_binary(fe_lb *lb, const char *what, int a, int b, ir_binary_kind kind, bool final,
              int *out);
/* y = bias + scale W x over x's last axis, with linear's block structure. w or b may be -1. */
int lb_linear(fe_lb *lb, const char *what, int x, int w, int b, int64_t groups,
              int64_t subheads, int64_t features, ir_weight_order order, double scale,
              bool final, int *out);
/* rmsnorm_heads: heads groups of the last axis, scale [heads, F] or -1. */
int lb_norm(fe_lb *lb, const char *what, int x, int scale, ir_norm_attrs a, bool final,
            int *out);

/* The memory layer (layer_memory.c; docs/layers.md): a Titans / TTT / TNT layer of
 * memory_scan modules. */
int fe_expand_memory_layer(fe_layer_ctx *fc, const json_t *l, const char *lp,
                           const char *name);

/* The linear layer (layer_linear.c; docs/layers.md): y = x W^T + b. */
int fe_expand_linear_layer(fe_layer_ctx *fc, const json_t *l, const char *lp, const char *name);

/* The graph layers (layer_graph.c; docs/layers.md): the reference's pLSTMGraphLayer
 * (op "plstm_graph") and pLSTMGraphEdgeLayer ("plstm_graph_edge") over a DAG. */
int fe_expand_graph_layer(fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
                          const char *name);

#endif /* XY_LAYER_BUILD_H */
