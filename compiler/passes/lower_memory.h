/*
 * lower_memory.h: what the lowerings of memory_scan share (spec tnt.md; ops.def).
 */
#ifndef XY_LOWER_MEMORY_H
#define XY_LOWER_MEMORY_H

#include "lower.h"

/* The token loop of spec §7.1-§7.2 as a kernel: one work-group per (head, batch element). */
int lower_memory_recurrent(lower_ctx *lc, const ir_op *op);
/* The chunked form of spec §2.3 / §5.4: gate coefficients for every chunk up front, then
 * one sequential loop over chunks per (head, batch element, shard). */
int lower_memory_chunked(lower_ctx *lc, const ir_op *op);

/* NULL when the chunked form can run op, else why not ("needs a linear memory"). */
const char *memory_chunked_unsupported(const xy_compile_options *opt, const ir_op *op,
                                       const memory_dims *d);

/* The memory's activation and its derivative at z (a float expression, used twice). */
kir_expr *memory_act(kir_builder *b, mem_act act, kir_expr *z);
kir_expr *memory_act_grad(kir_builder *b, mem_act act, kir_expr *z);

/* Adds a kernel parameter for every present input slot of a memory_scan, in slot order,
 * and the matching launch arguments; ids[slot] is the kernel array or -1. Returns the
 * number of arguments written to args. */
int memory_inputs(kir_builder *b, lower_ctx *lc, const ir_op *op, const memory_dims *d,
                  int *ids, kir_arg *args);

/* ------------------------------------------------------------------ chunked form internals */

enum {
  MEMORY_QT = 16, /* query rows per block of the read */
  MEMORY_ET = 64, /* tokens per error tile when reads do not look inside the chunk */
};

/* Whether a token's read depends on the other tokens of its chunk: every read but the
 * chunk-start one (TTT reads inclusively). Without it no [C][C] matrix is needed, the
 * chunk is taken a tile at a time, and any chunk size runs (TNT's global 2048). */
bool memory_reads_within_chunk(const ir_memory_attrs *a);
/* Tokens whose errors stay in local memory at once: the chunk, or a tile of it. */
int64_t memory_error_rows(const ir_memory_attrs *a);

/* Offsets in a chunk's coefficient block (-1: absent): RG [C][C], rb, rf [C] only when
 * reads look inside the chunk; ge, se [C]; then b_end, f_end, m_end. */
typedef struct coef_layout {
  int64_t rg, rb, rf, ge, se, end, count;
} coef_layout;

typedef struct geometry {
  int64_t B, L, H, DK, DV, C, NW;
  int64_t shards, shard_len, chunks;  /* chunks: over the whole sequence */
  coef_layout co;
  int64_t NCO;
} geometry;

/* The group's shard: its first token s0 and end send (vars), from the shard index s. */
void memory_shard_range(kir_builder *b, const geometry *g, int s, int *s0, int *send);
/* Opens the loop over the shard's chunks; returns the var of the chunk's first token. */
int memory_chunk_loop(kir_builder *b, const geometry *g, int s0, int send);
/* The sequential kernels: linear memories (lower_memory_chunks.c), MLP memories
 * (lower_memory_mlp.c). */
int memory_chunks_kernel(lower_ctx *lc, const ir_op *op, const geometry *g,
                         const memory_dims *d, int coef, int xbuf);
int memory_mlp_chunks_kernel(lower_ctx *lc, const ir_op *op, const geometry *g,
                             const memory_dims *d, int coef, int xbuf);

#endif /* XY_LOWER_MEMORY_H */
