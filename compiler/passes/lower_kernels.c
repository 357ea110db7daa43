/* lower_kernels.c: the lowering pass. Every tensor gets a buffer (inputs and outputs keep
 * their position in the model's lists); each op is handed to the lowering of its form. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"
#include "lower_memory.h"
#include "passes.h"

int64_t pow2_ceil(int64_t n)
{
  int64_t p = 1;
  while (p < n)
    p *= 2;
  return p;
}

kir_expr *jfor(kir_builder *b, const char *name, int64_t n)
{
  if (n == 1)
    return kx_int(b, 0);
  return kx_var(b, kb_for(b, name, kx_int(b, 0), kx_int(b, n)));
}

void jend(kir_builder *b, int64_t n)
{
  if (n != 1)
    kb_end(b);
}

int lower_wg(const lower_ctx *lc, int64_t n)
{
  int64_t cap = lc->opt->device.is_cpu ? 64 : 256;
  if ((int64_t)lc->opt->device.max_work_group_size < cap)
    cap = (int64_t)lc->opt->device.max_work_group_size;
  int64_t wg = pow2_ceil(n < 1 ? 1 : n);
  return (int)(wg < cap ? wg : cap);
}

const char *lower_name(lower_ctx *lc, const ir_op *op, const char *what)
{
  char buf[256];
  snprintf(buf, sizeof buf, "%s_%s", op->name, what);
  /* a C identifier: the ops of a layer are named "<layer>.<part>" */
  for (char *p = buf; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_')
      *p = '_';
  if (isdigit((unsigned char)buf[0]))
    buf[0] = '_';
  const char *s = xy_arena_strdup(&lc->k->arena, buf);
  return s ? s : what;
}

int lower_temp(lower_ctx *lc, const char *name, int64_t count)
{
  if (count < 1 || count > KIR_MAX_ELEMENTS) {
    xy_fail(lc->err, XY_E_LIMIT,
            "temporary %s needs %lld elements; 32-bit indexing allows at most %d", name,
            (long long)count, KIR_MAX_ELEMENTS);
    return -1;
  }
  int id = kir_add_buffer(lc->k, name, KT_FLOAT, count, KIR_BUF_TEMP, -1, NULL);
  if (id < 0)
    xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return id;
}

int lower_const_ints(lower_ctx *lc, const ir_op *op, const char *what, const int32_t *data,
                     int64_t n)
{
  int id = kir_add_buffer(lc->k, lower_name(lc, op, what), KT_INT, n > 0 ? n : 1,
                          KIR_BUF_CONST, -1, data);
  if (id < 0)
    xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return id;
}

int32_t *lower_to_i32(const int64_t *v, int64_t n)
{
  int32_t *out = malloc(sizeof(int32_t) * (size_t)(n + 1));
  if (out)
    for (int64_t i = 0; i < n; i++)
      out[i] = (int32_t)v[i];
  return out;
}

int lower_in(lower_ctx *lc, const ir_op *op, int slot)
{
  return op->in[slot] >= 0 ? lc->tensor_buffer[op->in[slot]] : -1;
}

int lower_out(lower_ctx *lc, const ir_op *op, int slot)
{
  return op->out[slot] >= 0 ? lc->tensor_buffer[op->out[slot]] : -1;
}

/* A reshape's output shares its input's buffer: same elements, same order. Model outputs
 * keep buffers of their own (the caller reads them back). */
static int alias_of(const ir_module *m, int t)
{
  const ir_tensor *x = &m->tensors[t];
  if (x->role != IR_VALUE || x->is_output || m->ops[x->producer].code != IR_OP_RESHAPE)
    return -1;
  return m->ops[x->producer].in[0];
}

static int assign_buffers(lower_ctx *lc)
{
  const ir_module *m = lc->m;
  for (int t = 0; t < m->n_tensors; t++)
    lc->tensor_buffer[t] = -1;
  for (int i = 0; i < m->n_tensors; i++) {
    const ir_tensor *t = &m->tensors[i];
    int src = alias_of(m, i);
    if (src >= 0) { /* producers come first, so src already has its buffer */
      lc->tensor_buffer[i] = lc->tensor_buffer[src];
      continue;
    }
    int64_t n = ir_shape_count(&t->shape); /* 0 for an empty tensor: bound, never read */
    if (n < 0 || n > KIR_MAX_ELEMENTS)
      return xy_fail(lc->err, XY_E_LIMIT,
                     "tensor %s has %lld elements; 32-bit indexing allows at most %d", t->name,
                     (long long)n, KIR_MAX_ELEMENTS);
    kir_buf_role role = KIR_BUF_TEMP;
    int io = -1;
    for (int j = 0; j < m->n_inputs; j++)
      if (m->inputs[j] == i) {
        role = KIR_BUF_INPUT;
        io = j;
      }
    for (int j = 0; j < m->n_outputs; j++)
      if (m->outputs[j] == i) {
        role = KIR_BUF_OUTPUT;
        io = j;
      }
    int id = kir_add_buffer(lc->k, t->name, KT_FLOAT, n, role, io, NULL);
    if (id < 0)
      return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
    lc->tensor_buffer[i] = id;
  }
  return XY_OK;
}

/* Nothing to run, except when the reshape's output is a model output with its own buffer:
 * then a copy. */
static int lower_reshape(lower_ctx *lc, const ir_op *op)
{
  int from = lower_in(lc, op, 0), to = lower_out(lc, op, 0);
  if (from == to)
    return XY_OK;
  int64_t n = lc->k->buffers[to].count;
  kir_builder bb, *b = &bb;
  kb_init(b, lc->k);
  int wg = lower_wg(lc, n);
  int kid = kb_kernel(b, lower_name(lc, op, "copy"), wg, 1, "reshape: a copy into a model output.");
  int x = kb_global(b, "x", KT_FLOAT, n > 0 ? n : 1, true);
  int y = kb_global(b, "y", KT_FLOAT, n > 0 ? n : 1, false);
  int lane = kb_parfor(b, "lane", kx_int(b, wg));
  int i = kb_let(b, "i", KT_INT, kx_mad(b, kx_group(b, 0), wg, kx_var(b, lane)));
  kb_if(b, kx_lt(b, kx_var(b, i), kx_int(b, n)));
  kb_store(b, y, kx_var(b, i), kx_load(b, x, kx_var(b, i)));
  kb_end(b);
  kb_end(b);
  int rc = kb_finish(b, lc->err);
  if (rc)
    return rc;
  int64_t groups[3] = {(n + wg - 1) / wg > 0 ? (n + wg - 1) / wg : 1, 1, 1};
  kir_arg args[] = {{true, from}, {true, to}};
  if (kir_add_launch(lc->k, kid, groups, args, 2, 0.0, 8.0 * (double)n) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}

static int lower_op(lower_ctx *lc, const ir_op *op, xy_buf *forms)
{
  const ir_graph *g = op->graph >= 0 ? &lc->m->graphs[op->graph] : NULL;
  switch (op->code) {
  case IR_OP_PLSTM_SCAN:
    xy_buf_printf(forms, "%s%s: %s", forms->len ? ", " : "", op->name,
                  ir_form_name(op->sched.form));
    if (op->sched.form == IR_FORM_CHUNKWISE)
      xy_buf_printf(forms, "(chunk=%lld)", (long long)op->sched.chunk);
    if (g->kind == IR_GRAPH_DAG)
      return op->sched.form == IR_FORM_DENSE ? lower_plstm_dag_dense(lc, op)
                                             : lower_plstm_dag(lc, op);
    if (op->sched.form == IR_FORM_CHUNKWISE)
      return lower_plstm_chunkwise(lc, op);
    return lower_plstm_recurrent(lc, op);
  case IR_OP_PLSTM_SCAN2D:
  case IR_OP_PLSTM_SCAN2D_FUSED:
    xy_buf_printf(forms, "%s%s: %s", forms->len ? ", " : "", op->name,
                  ir_form_name(op->sched.form));
    if (op->sched.form == IR_FORM_TILED)
      xy_buf_printf(forms, "(tile=%lld)", (long long)op->sched.chunk);
    return lower_plstm2d(lc, op);
  case IR_OP_LINEAR:
  case IR_OP_ACTIVATION:
  case IR_OP_BINARY:
  case IR_OP_RMSNORM_HEADS:
  case IR_OP_CONV_CAUSAL:
  case IR_OP_TRANSPOSE:
  case IR_OP_TRANSITION_EXP:
  case IR_OP_GRAPH_GATHER:
  case IR_OP_CONCAT:
  case IR_OP_GRAPH_PNORM:
    return lower_layer_op(lc, op);
  case IR_OP_RESHAPE:
    return lower_reshape(lc, op);
  case IR_OP_MEMORY_SCAN:
    xy_buf_printf(forms, "%s%s: %s", forms->len ? ", " : "", op->name,
                  ir_form_name(op->sched.form));
    if (op->sched.form == IR_FORM_CHUNKWISE)
      return lower_memory_chunked(lc, op);
    return lower_memory_recurrent(lc, op);
  case IR_OP_COUNT:
    break;
  }
  return xy_fail(lc->err, XY_E_INTERNAL, "no lowering for op '%s'", op->name);
}

int pass_lower_kernels(pass_state *ps, xy_error *err)
{
  kir_module *k = kir_module_new(ps->name);
  int *tb = calloc((size_t)ps->m->n_tensors + 1, sizeof *tb);
  if (!k || !tb) {
    kir_module_free(k);
    free(tb);
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  }
  lower_ctx lc = {.m = ps->m, .k = k, .opt = ps->opt, .tensor_buffer = tb, .err = err};
  xy_buf forms;
  xy_buf_init(&forms);
  int rc = assign_buffers(&lc);
  for (int i = 0; !rc && i < ps->m->n_ops; i++)
    rc = lower_op(&lc, &ps->m->ops[i], &forms);
  free(tb);
  k->forms = xy_buf_take(&forms);
  if (!rc && !k->forms)
    rc = xy_fail(err, XY_E_NOMEM, "out of memory");
  if (rc) {
    kir_module_free(k);
    return rc;
  }
  kir_module_free(ps->k);
  ps->k = k;
  return XY_OK;
}
