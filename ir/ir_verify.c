/* ir_verify.c: checks that a graph-IR module is well formed. Runs after every pass; a
 * failure after the front end accepted a spec is a compiler bug (XY_E_INTERNAL), except for
 * the per-op rules, whose messages the front end reports as spec errors. */
#include <string.h>

#include "graph_ir.h"

static int verify_dag(const ir_module *m, int gi, xy_error *err)
{
  const ir_graph *g = &m->graphs[gi];
  const ir_dag *d = &g->dag;
  if (d->n_graphs < 1 || d->n_nodes < 1)
    return xy_fail(err, XY_E_INTERNAL, "graph g%d: empty DAG", gi);
  if (d->node_start[0] != 0 || d->node_start[d->n_graphs] != d->n_nodes ||
      d->edge_start[0] != 0 || d->edge_start[d->n_graphs] != d->n_edges ||
      d->arc_start[0] != 0 || d->arc_start[d->n_graphs] != d->n_arcs)
    return xy_fail(err, XY_E_INTERNAL, "graph g%d: component offsets do not cover the DAG", gi);
  for (int64_t c = 0; c < d->n_graphs; c++) {
    int64_t n0 = d->node_start[c], n1 = d->node_start[c + 1];
    if (n1 <= n0)
      return xy_fail(err, XY_E_INTERNAL, "graph g%d: component %lld has no nodes", gi,
                     (long long)c);
    for (int64_t e = d->edge_start[c]; e < d->edge_start[c + 1]; e++)
      if (d->tail[e] < n0 || d->tail[e] >= n1 || d->head[e] < n0 || d->head[e] >= n1 ||
          d->tail[e] == d->head[e])
        return xy_fail(err, XY_E_INTERNAL, "graph g%d: edge %lld leaves its component", gi,
                       (long long)e);
    for (int64_t a = d->arc_start[c]; a < d->arc_start[c + 1]; a++) {
      int64_t p = d->arc_src[a], e = d->arc_dst[a];
      if (p < d->edge_start[c] || p >= d->edge_start[c + 1] || e < d->edge_start[c] ||
          e >= d->edge_start[c + 1] || d->head[p] != d->tail[e])
        return xy_fail(err, XY_E_INTERNAL, "graph g%d: arc %lld does not join two edges", gi,
                       (long long)a);
    }
  }
  if (!g->prepared)
    return XY_OK;
  const ir_dag_prep *p = &g->prep;
  for (int64_t e = 0; e < d->n_edges; e++)
    if (p->level[d->tail[e]] >= p->level[d->head[e]])
      return xy_fail(err, XY_E_INTERNAL, "graph g%d: levels are not topological at edge %lld",
                     gi, (long long)e);
  if (p->level_start[0] != 0 || p->level_start[p->max_levels] != d->n_nodes)
    return xy_fail(err, XY_E_INTERNAL, "graph g%d: level offsets do not cover the nodes", gi);
  for (int64_t l = 0; l < p->max_levels; l++)
    for (int64_t i = p->level_start[l]; i < p->level_start[l + 1]; i++)
      if (p->level[p->topo[i]] != l)
        return xy_fail(err, XY_E_INTERNAL, "graph g%d: node %lld is filed under level %lld",
                       gi, (long long)p->topo[i], (long long)l);
  return XY_OK;
}

static int verify_schedule(const ir_module *m, const ir_op *op, xy_error *err)
{
  const ir_schedule *s = &op->sched;
  if (s->form == IR_FORM_AUTO)
    return XY_OK;
  ir_graph_kind kind = m->graphs[op->graph].kind;
  bool ok = s->form == IR_FORM_RECURRENT ||
            (s->form == IR_FORM_CHUNKWISE && kind == IR_GRAPH_SEQUENCE) ||
            ((s->form == IR_FORM_LEVELS || s->form == IR_FORM_GRAPH || s->form == IR_FORM_DENSE) &&
             kind == IR_GRAPH_DAG) ||
            ((s->form == IR_FORM_TILED || s->form == IR_FORM_SINGLE) && kind == IR_GRAPH_GRID2D);
  if (!ok)
    return xy_fail(err, XY_E_INTERNAL, "op '%s': form %s does not apply to this graph",
                   op->name, ir_form_name(s->form));
  if ((s->form == IR_FORM_CHUNKWISE || s->form == IR_FORM_TILED) && s->chunk < 1)
    return xy_fail(err, XY_E_INTERNAL, "op '%s': %s form without a chunk size", op->name,
                   ir_form_name(s->form));
  if (s->wg < 0)
    return xy_fail(err, XY_E_INTERNAL, "op '%s': negative work-group size", op->name);
  if (s->lanes != 0 && s->lanes != 1 && s->lanes != 2 && s->lanes != 4 && s->lanes != 8 &&
      s->lanes != 16)
    return xy_fail(err, XY_E_INTERNAL, "op '%s': %lld lanes", op->name, (long long)s->lanes);
  if (s->rows < 0 || s->rows > 16)
    return xy_fail(err, XY_E_INTERNAL, "op '%s': %lld register rows", op->name,
                   (long long)s->rows);
  return XY_OK;
}

static int verify_op(const ir_module *m, int oi, xy_error *err)
{
  const ir_op *op = &m->ops[oi];
  const ir_op_info *info = ir_op_info_of(op->code);
  if (!info)
    return xy_fail(err, XY_E_INTERNAL, "op %d: bad opcode %d", oi, (int)op->code);
  for (int s = 0; s < IR_MAX_SLOTS; s++) {
    int t = op->in[s];
    if (s >= info->n_in) {
      if (t >= 0)
        return xy_fail(err, XY_E_INTERNAL, "op '%s': input slot %d does not exist", op->name, s);
      continue;
    }
    if (t < 0) {
      if (!info->in_optional[s])
        return xy_fail(err, XY_E_SPEC, "%s '%s': input %s is missing", info->name, op->name,
                       info->in_names[s]);
      continue;
    }
    if (t >= m->n_tensors)
      return xy_fail(err, XY_E_INTERNAL, "op '%s': input %s is not a tensor", op->name,
                     info->in_names[s]);
    int prod = m->tensors[t].producer;
    if (m->tensors[t].role == IR_VALUE && (prod < 0 || prod >= oi))
      return xy_fail(err, XY_E_INTERNAL, "op '%s': input %s is produced later", op->name,
                     info->in_names[s]);
  }
  for (int s = 0; s < IR_MAX_SLOTS; s++) {
    int t = op->out[s];
    if (s >= info->n_out) {
      if (t >= 0)
        return xy_fail(err, XY_E_INTERNAL, "op '%s': output slot %d does not exist", op->name,
                       s);
      continue;
    }
    if (t < 0) {
      if (!info->out_optional[s])
        return xy_fail(err, XY_E_SPEC, "%s '%s': output %s is missing", info->name, op->name,
                       info->out_names[s]);
      continue;
    }
    if (t >= m->n_tensors || m->tensors[t].role != IR_VALUE || m->tensors[t].producer != oi)
      return xy_fail(err, XY_E_INTERNAL, "op '%s': output %s is not owned by it", op->name,
                     info->out_names[s]);
  }
  if (info->flags & IR_OPF_SCAN) {
    if (op->graph < 0 || op->graph >= m->n_graphs)
      return xy_fail(err, XY_E_INTERNAL, "op '%s': no graph", op->name);
    int rc = verify_schedule(m, op, err);
    if (rc)
      return rc;
  }
  const ir_op_rules *rules = ir_rules_of(op->code);
  ir_shape outs[IR_MAX_SLOTS];
  memset(outs, 0, sizeof outs);
  int rc = rules->shapes(m, op, outs, err);
  if (rc)
    return rc;
  for (int s = 0; s < info->n_out; s++)
    if (op->out[s] >= 0 && !ir_shape_equal(&m->tensors[op->out[s]].shape, &outs[s]))
      return xy_fail(err, XY_E_INTERNAL, "op '%s': output %s has a shape its inputs disagree with",
                     op->name, info->out_names[s]);
  return XY_OK;
}

int ir_verify(const ir_module *m, xy_error *err)
{
  if (m->batch < 1)
    return xy_fail(err, XY_E_INTERNAL, "module batch %lld < 1", (long long)m->batch);
  for (int i = 0; i < m->n_tensors; i++) {
    const ir_tensor *t = &m->tensors[i];
    if (!t->name || !t->name[0])
      return xy_fail(err, XY_E_INTERNAL, "tensor %d has no name", i);
    for (int j = 0; j < i; j++)
      if (strcmp(m->tensors[j].name, t->name) == 0)
        return xy_fail(err, XY_E_INTERNAL, "two tensors are named '%s'", t->name);
    if (t->shape.rank < 0 || t->shape.rank > IR_MAX_RANK)
      return xy_fail(err, XY_E_INTERNAL, "tensor '%s': rank %d", t->name, t->shape.rank);
    /* Zero is a size (a graph without edges has empty edge tensors); negative is not. */
    for (int k = 0; k < t->shape.rank; k++)
      if (t->shape.d[k] < 0)
        return xy_fail(err, XY_E_INTERNAL, "tensor '%s': dimension %d is %lld", t->name, k,
                       (long long)t->shape.d[k]);
    if (ir_shape_count(&t->shape) < 0)
      return xy_fail(err, XY_E_LIMIT, "tensor '%s': element count overflows", t->name);
    if ((t->role == IR_VALUE) != (t->producer >= 0))
      return xy_fail(err, XY_E_INTERNAL, "tensor '%s': role and producer disagree", t->name);
  }
  for (int i = 0; i < m->n_inputs; i++) {
    int t = m->inputs[i];
    if (t < 0 || t >= m->n_tensors || m->tensors[t].role == IR_VALUE)
      return xy_fail(err, XY_E_INTERNAL, "input %d is not an input tensor", i);
  }
  if (m->n_outputs < 1)
    return xy_fail(err, XY_E_SPEC, "the model has no outputs");
  for (int i = 0; i < m->n_outputs; i++) {
    int t = m->outputs[i];
    if (t < 0 || t >= m->n_tensors || !m->tensors[t].is_output)
      return xy_fail(err, XY_E_INTERNAL, "output %d is not marked as an output", i);
  }
  for (int i = 0; i < m->n_graphs; i++) {
    const ir_graph *g = &m->graphs[i];
    if (g->kind == IR_GRAPH_SEQUENCE && g->length < 1)
      return xy_fail(err, XY_E_INTERNAL, "graph g%d: sequence length %lld", i,
                     (long long)g->length);
    if (g->kind == IR_GRAPH_GRID2D && (g->rows < 1 || g->cols < 1))
      return xy_fail(err, XY_E_INTERNAL, "graph g%d: empty grid", i);
    if (g->kind == IR_GRAPH_DAG) {
      int rc = verify_dag(m, i, err);
      if (rc)
        return rc;
    }
  }
  for (int i = 0; i < m->n_ops; i++) {
    int rc = verify_op(m, i, err);
    if (rc)
      return rc;
  }
  return XY_OK;
}
