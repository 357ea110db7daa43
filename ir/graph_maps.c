/* graph_maps.c: the index maps of a DAG that graph_gather and graph_pnorm read (see
 * graph_layer_ops.h). One definition serves the shape rules, the interpreter and the
 * lowering's constant tables. */
#include <string.h>

#include "graph_layer_ops.h"

static const char *const map_names[IR_GATHER_COUNT] = {
  [IR_GATHER_EDGE_TAIL] = "edge_tail",
  [IR_GATHER_EDGE_HEAD] = "edge_head",
  [IR_GATHER_ARC_SRC] = "arc_src",
  [IR_GATHER_ARC_DST] = "arc_dst",
  [IR_GATHER_ARC_SRC_TAIL] = "arc_src_tail",
  [IR_GATHER_SOURCE_SLOT] = "source_slot",
  [IR_GATHER_MARK_SLOT] = "mark_slot",
  [IR_GATHER_TRANSITION_SLOTS] = "transition_slots",
};

const char *ir_gather_map_name(ir_gather_map map)
{
  return (int)map >= 0 && map < IR_GATHER_COUNT ? map_names[map] : "?";
}

ir_gather_map ir_gather_map_from_name(const char *name)
{
  for (int i = 0; i < IR_GATHER_COUNT; i++)
    if (strcmp(map_names[i], name) == 0)
      return (ir_gather_map)i;
  return IR_GATHER_COUNT;
}

bool ir_gather_is_slot_map(ir_gather_map map)
{
  return map == IR_GATHER_SOURCE_SLOT || map == IR_GATHER_MARK_SLOT ||
         map == IR_GATHER_TRANSITION_SLOTS;
}

int ir_op_dag(const ir_module *m, const ir_op *op, const ir_dag **d, xy_error *err)
{
  const ir_op_info *info = ir_op_info_of(op->code);
  if (op->graph < 0 || op->graph >= m->n_graphs)
    return xy_fail(err, XY_E_SPEC, "%s '%s': no graph", info->name, op->name);
  if (m->graphs[op->graph].kind != IR_GRAPH_DAG)
    return xy_fail(err, XY_E_SPEC, "%s '%s': graph g%d is not a DAG", info->name, op->name,
                   op->graph);
  *d = &m->graphs[op->graph].dag;
  return XY_OK;
}

void ir_dag_in_degrees(const ir_dag *d, int64_t *indeg)
{
  memset(indeg, 0, sizeof *indeg * (size_t)d->n_nodes);
  for (int64_t e = 0; e < d->n_edges; e++)
    indeg[d->head[e]]++;
}

int ir_gather_index(const ir_dag *d, const ir_gather_attrs *a, int64_t *row, int64_t *col,
                    xy_error *err)
{
  if (ir_gather_is_slot_map(a->map) && (!d->in_slot || !d->out_slot))
    return xy_fail(err, XY_E_GRAPH, "map %s: the graph has no edge slots (in_slot, "
                   "out_slot)", ir_gather_map_name(a->map));
  int64_t K = 0;
  switch (a->map) {
  case IR_GATHER_EDGE_TAIL:
  case IR_GATHER_EDGE_HEAD:
    K = d->n_edges;
    for (int64_t e = 0; e < K; e++) {
      row[e] = a->map == IR_GATHER_EDGE_TAIL ? d->tail[e] : d->head[e];
      col[e] = 0;
    }
    break;
  case IR_GATHER_ARC_SRC:
  case IR_GATHER_ARC_DST:
  case IR_GATHER_ARC_SRC_TAIL:
    K = d->n_arcs;
    for (int64_t i = 0; i < K; i++) {
      row[i] = a->map == IR_GATHER_ARC_SRC   ? d->arc_src[i]
               : a->map == IR_GATHER_ARC_DST ? d->arc_dst[i]
                                             : d->tail[d->arc_src[i]];
      col[i] = 0;
    }
    break;
  case IR_GATHER_SOURCE_SLOT:
  case IR_GATHER_MARK_SLOT:
    K = d->n_edges;
    for (int64_t e = 0; e < K; e++) {
      bool src = a->map == IR_GATHER_SOURCE_SLOT;
      row[e] = src ? d->tail[e] : d->head[e];
      col[e] = src ? d->in_slot[e] : d->out_slot[e];
      if (col[e] < 0 || col[e] >= a->slots)
        return xy_fail(err, XY_E_GRAPH, "map %s: edge %lld has slot %lld, outside "
                       "the %lld slots of a node", ir_gather_map_name(a->map), (long long)e,
                       (long long)col[e], (long long)a->slots);
    }
    break;
  case IR_GATHER_TRANSITION_SLOTS:
    K = d->n_arcs;
    for (int64_t i = 0; i < K; i++) {
      int64_t p = d->arc_src[i], e = d->arc_dst[i];
      int64_t o = d->out_slot[p], n = d->in_slot[e];
      if (o < 0 || o >= a->slots || n < 0 || n >= a->slots)
        return xy_fail(err, XY_E_GRAPH, "map %s: arc %lld has slots (%lld, %lld), "
                       "outside the %lld slots of a node", ir_gather_map_name(a->map),
                       (long long)i, (long long)o, (long long)n, (long long)a->slots);
      row[i] = d->tail[e];
      col[i] = o * a->slots + n;
    }
    break;
  case IR_GATHER_COUNT:
    return xy_fail(err, XY_E_INTERNAL, "graph_gather: unknown map %d", (int)a->map);
  }
  return XY_OK;
}
