/*
 * lower_memory.h: what the lowerings of memory_scan share (spec tnt.md; ops.def).
 */
#ifndef XY_LOWER_MEMORY_H
#define XY_LOWER_MEMORY_H

#include "lower.h"

/* The token loop of spec §7.1-§7.2 as a kernel: one work-group per (head, batch element). */
int lower_memory_recurrent(lower_ctx *lc, const ir_op *op);
/* The chunked form of spec §2.3 / §5.4 for linear memories: gate coefficients for every
 * chunk up front, then one sequential loop over chunks per (head, batch element, shard). */
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

#endif /* XY_LOWER_MEMORY_H */
