/* op_rules.c: each op's shape rule, interpreter and attribute printer, in op-table order. */
#include "graph_ir.h"
#include "graph_layer_ops.h"
#include "interp.h"

static const ir_op_rules rules[IR_OP_COUNT] = {
  [IR_OP_PLSTM_SCAN] = {plstm_scan_shapes, interp_plstm_scan, print_qk_scale},
  [IR_OP_PLSTM_SCAN2D] = {plstm_scan2d_shapes, interp_plstm_scan2d, print_qk_scale},
  [IR_OP_PLSTM_SCAN2D_FUSED] = {plstm_scan2d_fused_shapes, interp_plstm_scan2d_fused, print_qk_scale},
  [IR_OP_LINEAR] = {linear_shapes, interp_linear, layer_op_print_attrs},
  [IR_OP_ACTIVATION] = {activation_shapes, interp_activation, layer_op_print_attrs},
  [IR_OP_BINARY] = {binary_shapes, interp_binary, layer_op_print_attrs},
  [IR_OP_RMSNORM_HEADS] = {rmsnorm_heads_shapes, interp_rmsnorm_heads, layer_op_print_attrs},
  [IR_OP_CONV_CAUSAL] = {conv_causal_shapes, interp_conv_causal, layer_op_print_attrs},
  [IR_OP_TRANSPOSE] = {transpose_shapes, interp_transpose, layer_op_print_attrs},
  [IR_OP_TRANSITION_EXP] = {transition_exp_shapes, interp_transition_exp, layer_op_print_attrs},
  [IR_OP_RESHAPE] = {reshape_shapes, interp_reshape, print_reshape},
  [IR_OP_MEMORY_SCAN] = {memory_scan_shapes, interp_memory_scan, memory_print_attrs},
  [IR_OP_GRAPH_GATHER] = {graph_gather_shapes, interp_graph_gather, graph_layer_print_attrs},
  [IR_OP_CONCAT] = {concat_shapes, interp_concat, NULL},
  [IR_OP_GRAPH_PNORM] = {graph_pnorm_shapes, interp_graph_pnorm, graph_layer_print_attrs},
};

const ir_op_rules *ir_rules_of(ir_opcode code)
{
  return (int)code >= 0 && code < IR_OP_COUNT ? &rules[code] : NULL;
}
