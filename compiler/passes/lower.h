/*
 * lower.h: what the lowering of graph-IR ops to kernel IR shares. lower_kernels.c drives it:
 * it gives every tensor a buffer and calls one lowering per (op, form).
 */
#ifndef XY_LOWER_H
#define XY_LOWER_H

#include "graph_ir.h"
#include "kernel_ir.h"

typedef struct lower_ctx {
  const ir_module *m;
  kir_module *k;
  const xy_compile_options *opt;
  int *tensor_buffer;   /* [n_tensors]: buffer of each tensor, -1 when unused */
  xy_error *err;
} lower_ctx;

int lower_plstm_chunkwise(lower_ctx *lc, const ir_op *op);
int lower_plstm_recurrent(lower_ctx *lc, const ir_op *op);
int lower_plstm_dag(lower_ctx *lc, const ir_op *op);
int lower_plstm_dag_dense(lower_ctx *lc, const ir_op *op);
/* The most nodes and the most edges of any one graph of a DAG file, and the graph with the
 * most edges (the first such). */
void dag_largest(const ir_dag *dag, int64_t *nodes, int64_t *edges, int64_t *edge_graph);
/* The dense DAG form's work-groups and the floats of each one's scratch slot; an error when
 * the largest graph's matrices are too big. */
int dense_scratch_plan(const xy_compile_options *opt, const ir_graph *g, int64_t batch,
                       int64_t *groups, int64_t *slot, xy_error *err, const char *op);
int lower_plstm2d(lower_ctx *lc, const ir_op *op);     /* both 2D scan ops, every form */
int lower_layer_op(lower_ctx *lc, const ir_op *op);    /* linear, activation, ... */

/* Helpers the lowerings share. */

/* Opens `for name < n` and returns the index; for n == 1 opens nothing and returns 0, so
 * the J = 1 case renders without trivial loops. Close with jend. */
kir_expr *jfor(kir_builder *b, const char *name, int64_t n);
void jend(kir_builder *b, int64_t n);

/* A temporary buffer of count floats (count checked against 32-bit indexing). */
int lower_temp(lower_ctx *lc, const char *name, int64_t count);

/* A constant int buffer "<op>_<what>" holding data[0..n) (one entry when n is 0, so that
 * it can be bound; data must then have room for one); -1 with the error set when memory
 * runs out. The buffer keeps a copy of data. */
int lower_const_ints(lower_ctx *lc, const ir_op *op, const char *what, const int32_t *data,
                     int64_t n);

/* v[0..n) narrowed to int32 in a new array of n + 1 entries; NULL when memory runs out. */
int32_t *lower_to_i32(const int64_t *v, int64_t n);

/* Name "<op>_<what>" for kernels and temporaries, made a C identifier. */
const char *lower_name(lower_ctx *lc, const ir_op *op, const char *what);

/* The buffer bound to an op's input or output slot (-1 when the slot is empty). */
int lower_in(lower_ctx *lc, const ir_op *op, int slot);
int lower_out(lower_ctx *lc, const ir_op *op, int slot);

/* Vector widths of a scan: VL along the value dimension (contiguous only when JV = JT =
 * JO = 1, and dividing DV), VD along the key dimension for q.k (JQ = JK = 1). */
void plstm_lanes(const plstm_dims *d, const ir_schedule *s, int *VL, int *VD);

/* qk[aq][bk] = sum_d q[qrow][d][aq] k[krow][d][bk] on VD-lane vectors (qrow, krow are
 * variables); returns the private array. */
int emit_qk(kir_builder *b, const plstm_dims *d, int q, int k, int qrow, int krow, int VD);

/* The gating folded with q.k for one (target, source) pair: for every (o, cv)
 * W[wbase + o JV + cv] = sum_{aq,bk} G[gbase + ((o JQ + aq) JK + bk) JV + cv] qk[aq JK + bk]. */
void emit_gated_weights(kir_builder *b, const plstm_dims *d, int G, kir_expr *gbase, int qk,
                        int W, kir_expr *wbase);

/* The direct term into h: h[o] = sum D[row][o,aq,bk,cv] qk[aq,bk] v[row][dv..][cv], on VL
 * lanes from value column dv (row and dv are variables). */
void emit_direct(kir_builder *b, const plstm_dims *d, int D, int v, int qk, int h, int row,
                 int dv, int VL);

/* Local memory the chunkwise form's tree kernels need for a chunk size and vector width. */
uint64_t chunk_local_bytes(const plstm_dims *d, int64_t chunk, int64_t lanes);

/* Smallest power of two >= n (n >= 1). */
int64_t pow2_ceil(int64_t n);

/* Work-items per group for a parfor over about n items on this device. */
int lower_wg(const lower_ctx *lc, int64_t n);

/* The schedule knobs every scan's cost model picks the same way (parallelize_scans.c):
 * the vector width along the value dimension (the option, else 16 on CPUs and 4 elsewhere,
 * halved until it divides DV; 1 unless JV = JT = JO = 1), the register rows (the option,
 * else 4 on CPUs and 2 elsewhere) and the work-group size for about n items (the option
 * when the device allows it, else n rounded up to a power of two, capped). */
int64_t pick_lanes(const xy_compile_options *opt, const plstm_dims *d);
int64_t pick_rows(const xy_compile_options *opt);
int64_t cap_wg(const xy_compile_options *opt, int64_t n);
/* The local memory a kernel may declare: the device's, less a reserve for what the driver
 * adds of its own (NVIDIA's OpenCL adds a few bytes to a kernel that fills all 48 KiB). */
uint64_t local_budget(const xy_compile_options *opt);
/* The error for a kernel whose local memory does not fit: "'OP': WHAT needs N bytes of
 * local memory; the device has M, of which a kernel may use K (HINT)". Returns XY_E_DEVICE. */
int local_overflow(xy_error *err, const xy_compile_options *opt, const char *op,
                   const char *what, uint64_t need, const char *hint);

#endif /* XY_LOWER_H */
