/* ir_print.c: the stable text form of the graph IR (what --dump-after shows). */
#include "graph_ir.h"

/* Lists of ids longer than this are elided in the middle: dumps of big graphs stay short. */
enum { LIST_HEAD = 16 };

static void print_list(xy_buf *out, const int64_t *v, int64_t n)
{
  xy_buf_putc(out, '[');
  for (int64_t i = 0; i < n; i++) {
    if (n > 2 * LIST_HEAD && i == LIST_HEAD) {
      xy_buf_printf(out, ", ... %lld more", (long long)(n - 2 * LIST_HEAD));
      i = n - LIST_HEAD - 1;
      continue;
    }
    xy_buf_printf(out, i ? ", %lld" : "%lld", (long long)v[i]);
  }
  xy_buf_putc(out, ']');
}

static void print_dag(const ir_graph *g, int index, xy_buf *out)
{
  const ir_dag *d = &g->dag;
  xy_buf_printf(out, " graphs=%lld nodes=%lld edges=%lld arcs=%lld",
                (long long)d->n_graphs, (long long)d->n_nodes, (long long)d->n_edges,
                (long long)d->n_arcs);
  if (g->file)
    xy_buf_printf(out, " file=\"%s\"", g->file);
  /* How the file's graphs were prepared, and what they carry. */
  if (g->dagified)
    xy_buf_puts(out, " dagified");
  if (g->reversed)
    xy_buf_puts(out, " reversed");
  if (g->multitree)
    xy_buf_puts(out, " multitree");
  if (g->origin != index)
    xy_buf_printf(out, " variant_of=g%d", g->origin);
  if (d->node_feat_dim)
    xy_buf_printf(out, " node_features=%lld", (long long)d->node_feat_dim);
  if (d->edge_feat_dim)
    xy_buf_printf(out, " edge_features=%lld", (long long)d->edge_feat_dim);
  xy_buf_putc(out, '\n');
  int64_t shown = d->n_edges < 2 * LIST_HEAD ? d->n_edges : LIST_HEAD;
  for (int64_t e = 0; e < shown; e++) {
    xy_buf_printf(out, "    edge %lld: %lld -> %lld", (long long)e, (long long)d->tail[e],
                  (long long)d->head[e]);
    if (d->out_slot && d->in_slot)
      xy_buf_printf(out, " slots out=%lld in=%lld", (long long)d->out_slot[e],
                    (long long)d->in_slot[e]);
    xy_buf_putc(out, '\n');
  }
  if (shown < d->n_edges)
    xy_buf_printf(out, "    ... %lld more edges\n", (long long)(d->n_edges - shown));
  shown = d->n_arcs < 2 * LIST_HEAD ? d->n_arcs : LIST_HEAD;
  for (int64_t a = 0; a < shown; a++)
    xy_buf_printf(out, "    arc %lld: %lld -> %lld\n", (long long)a, (long long)d->arc_src[a],
                  (long long)d->arc_dst[a]);
  if (shown < d->n_arcs)
    xy_buf_printf(out, "    ... %lld more arcs\n", (long long)(d->n_arcs - shown));
  if (!g->prepared)
    return;
  const ir_dag_prep *p = &g->prep;
  xy_buf_printf(out, "    levels=%lld graph_levels=", (long long)p->max_levels);
  print_list(out, p->graph_levels, d->n_graphs);
  xy_buf_putc(out, '\n');
  int64_t lv_shown = p->max_levels < 2 * LIST_HEAD ? p->max_levels : LIST_HEAD;
  for (int64_t l = 0; l < lv_shown; l++) {
    xy_buf_printf(out, "    level %lld nodes=", (long long)l);
    print_list(out, p->topo + p->level_start[l], p->level_start[l + 1] - p->level_start[l]);
    xy_buf_putc(out, '\n');
  }
  if (lv_shown < p->max_levels)
    xy_buf_printf(out, "    ... %lld more levels\n", (long long)(p->max_levels - lv_shown));
}

static void print_tensor_ref(const ir_module *m, int t, xy_buf *out)
{
  if (t < 0)
    xy_buf_puts(out, "_");
  else
    xy_buf_printf(out, "%%%s", m->tensors[t].name);
}

void ir_print(const ir_module *m, xy_buf *out)
{
  xy_buf_printf(out, "module %s batch=%lld\n", m->name, (long long)m->batch);
  for (int i = 0; i < m->n_graphs; i++) {
    const ir_graph *g = &m->graphs[i];
    switch (g->kind) {
    case IR_GRAPH_SEQUENCE:
      xy_buf_printf(out, "graph g%d sequence length=%lld\n", i, (long long)g->length);
      break;
    case IR_GRAPH_GRID2D:
      xy_buf_printf(out, "graph g%d grid2d rows=%lld cols=%lld\n", i, (long long)g->rows,
                    (long long)g->cols);
      break;
    case IR_GRAPH_DAG:
      xy_buf_printf(out, "graph g%d dag", i);
      print_dag(g, i, out);
      break;
    }
  }
  for (int i = 0; i < m->n_inputs; i++) {
    const ir_tensor *t = &m->tensors[m->inputs[i]];
    xy_buf_printf(out, "%s %%%s %s", t->role == IR_WEIGHT ? "weight" : "input", t->name,
                  ir_dtype_name(t->dtype));
    ir_shape_print(&t->shape, out);
    xy_buf_printf(out, " range=[%g,%g]\n", t->lo, t->hi);
  }
  for (int i = 0; i < m->n_ops; i++) {
    const ir_op *op = &m->ops[i];
    const ir_op_info *info = ir_op_info_of(op->code);
    int n_out = 0;
    for (int s = 0; s < info->n_out; s++) {
      if (op->out[s] < 0)
        continue;
      const ir_tensor *t = &m->tensors[op->out[s]];
      xy_buf_printf(out, "%s%%%s:%s", n_out++ ? ", " : "", t->name, ir_dtype_name(t->dtype));
      ir_shape_print(&t->shape, out);
    }
    xy_buf_printf(out, " = %s[%s]", info->name, op->name);
    if (op->graph >= 0)
      xy_buf_printf(out, " g%d", op->graph);
    xy_buf_puts(out, " (");
    for (int s = 0; s < info->n_in; s++) {
      if (s)
        xy_buf_puts(out, ", ");
      xy_buf_printf(out, "%s=", info->in_names[s]);
      print_tensor_ref(m, op->in[s], out);
    }
    xy_buf_puts(out, ")");
    const ir_op_rules *rules = ir_rules_of(op->code);
    if (rules->print_attrs)
      rules->print_attrs(op, out);
    if (op->sched.form != IR_FORM_AUTO) {
      xy_buf_printf(out, " form=%s", ir_form_name(op->sched.form));
      if (op->sched.form == IR_FORM_CHUNKWISE || op->sched.form == IR_FORM_TILED)
        xy_buf_printf(out, " chunk=%lld", (long long)op->sched.chunk);
      if (op->sched.wg)
        xy_buf_printf(out, " wg=%lld", (long long)op->sched.wg);
      if (op->sched.lanes > 1)
        xy_buf_printf(out, " lanes=%lld", (long long)op->sched.lanes);
      if (op->sched.rows > 1)
        xy_buf_printf(out, " rows=%lld", (long long)op->sched.rows);
    }
    xy_buf_putc(out, '\n');
  }
  xy_buf_puts(out, "outputs");
  for (int i = 0; i < m->n_outputs; i++) {
    xy_buf_putc(out, ' ');
    print_tensor_ref(m, m->outputs[i], out);
  }
  xy_buf_putc(out, '\n');
}
