/*
 * lower_memory.h: what the lowerings of memory_scan share (spec tnt.md; ops.def).
 */
#ifndef XY_LOWER_MEMORY_H
#define XY_LOWER_MEMORY_H

#include "lower.h"

/* The token loop of spec §7.1-§7.2 as a kernel: one work-group per (head, batch element,
 * shard). */
int lower_memory_recurrent(lower_ctx *lc, const ir_op *op);
/* The chunked form of spec §2.3 / §5.4: gate coefficients for every chunk up front, then
 * one sequential loop over chunks per (head, batch element, shard). */
int lower_memory_chunked(lower_ctx *lc, const ir_op *op);

/* NULL when the chunked form can run op, else why not ("takes no state_in ..."). */
const char *memory_chunked_unsupported(const xy_compile_options *opt, const ir_op *op,
                                       const memory_dims *d);

/* The memory's activation and its derivative at z (a float expression, used twice). */
kir_expr *memory_act(kir_builder *b, mem_act act, kir_expr *z);
kir_expr *memory_act_grad(kir_builder *b, mem_act act, kir_expr *z);

/* Adds a kernel parameter for every present input slot of a memory_scan that the bit mask
 * skip leaves in, in slot order, and the matching launch arguments; ids[slot] is the
 * kernel array or -1. Returns the number of arguments written to args. */
int memory_inputs(kir_builder *b, lower_ctx *lc, const ir_op *op, const memory_dims *d,
                  unsigned skip, int *ids, kir_arg *args);

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
/* sum_c a[base_a + c] b[base_b + c] over c < n (a multiple of VC), on VC-lane vectors when
 * VC > 1 (rows contiguous along c). */
kir_expr *memory_dot(kir_builder *b, int64_t VC, int arr_a, kir_expr *base_a, int arr_b,
                     kir_expr *base_b, int64_t n, const char *name);
/* Lanes for dot products along n features: wide vectors on CPUs (explicit vectors are what
 * makes PoCL fast), 1 elsewhere (GPU work-items read rows in parallel). */
int64_t memory_vector_width(const xy_compile_options *opt, int64_t n);

/* A count-float array of each group: local, or a row of a global scratch buffer of groups
 * rows (its launch argument appended to args). *arr gets the kernel array. */
int memory_place(lower_ctx *lc, const ir_op *op, kir_builder *b, const char *name, int64_t count,
                 int64_t groups, bool local, kir_arg *args, int *n_args, int *arr);

/* What both sequential kernels declare: the op's inputs, the coefficients, the queries
 * (projected or not), y and state_out; and their group's indices. */
typedef struct chunk_io {
  const geometry *g;
  const ir_memory_attrs *a;
  int ids[IR_MAX_SLOTS];   /* kernel arrays of the op's inputs (-1: absent) */
  int cf, xq, y, sout;     /* coefficients, queries, y, state_out (-1: absent) */
  int h, rs, bi, s;        /* vars: head, row slice (-1 with one slice), batch, shard */
  int64_t slices;
  int grp;                 /* var: the group's index (memory_group_index), -1 until asked */
} chunk_io;

/* Declares the kernel parameters and fills args; returns their number. */
int memory_chunk_io(kir_builder *b, lower_ctx *lc, const ir_op *op, const geometry *g,
                    const memory_dims *d, int coef, int xbuf, chunk_io *io, kir_arg *args);
/* The group's vars: group axis 0 is head x row slice (slices of the value rows, which a
 * linear memory without the LayerNorm wrapper updates independently), axis 1 batch
 * element x shard. */
void memory_chunk_group(kir_builder *b, chunk_io *io, int64_t slices);
/* The group's index among all (head, slice, batch, shard) groups, for its rows of global
 * scratch buffers; declared on first use (a kernel whose arrays are all local has none). */
int memory_group_index(kir_builder *b, chunk_io *io);
/* Element index of token t (an expression), feature c of a [B,L,H,D] input of the group. */
kir_expr *memory_row_at(kir_builder *b, const chunk_io *io, kir_expr *t, int64_t D, kir_expr *c);
/* TTT's wrapper x + gamma LN(o) + beta (spec §1.1), one work-item per row of O [rows][DV]
 * (array O at base var, -1: none): the backward in place (raw outputs of the keys of
 * tokens t1.. to errors), and the read into y for the queries of tokens tq... */
void memory_ln_backward(kir_builder *b, const chunk_io *io, int O, int base, kir_expr *rows,
                        int t1);
void memory_ln_read(kir_builder *b, const chunk_io *io, int O, int base, kir_expr *rows, int tq);

/* The sequential kernels: linear memories (lower_memory_chunks.c), MLP memories
 * (lower_memory_mlp.c). */
int memory_chunks_kernel(lower_ctx *lc, const ir_op *op, const geometry *g,
                         const memory_dims *d, int coef, int xbuf);
int memory_mlp_chunks_kernel(lower_ctx *lc, const ir_op *op, const geometry *g,
                             const memory_dims *d, int coef, int xbuf);

#endif /* XY_LOWER_MEMORY_H */
