/* model.c: the public face of a loaded spec, and the interpreter entry point. */
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "interp.h"
#include "program.h"

int xy_model_load(const char *spec_path, const xy_load_options *opt, xy_model **out,
                  xy_error *err)
{
  *out = NULL;
  xy_load_options defaults;
  if (!opt) {
    xy_load_options_default(&defaults);
    opt = &defaults;
  }
  xy_model *model = calloc(1, sizeof *model);
  if (!model)
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  int rc = fe_load_spec(spec_path, opt, &model->m, err);
  if (rc) {
    free(model);
    return rc;
  }
  *out = model;
  return XY_OK;
}

void xy_model_free(xy_model *model)
{
  if (!model)
    return;
  ir_module_free(model->m);
  free(model);
}

const char *xy_model_name(const xy_model *model)
{
  return model->m->name;
}

int64_t xy_model_positions(const xy_model *model)
{
  const ir_module *m = model->m;
  if (m->n_graphs < 1)
    return 0;
  const ir_graph *g = &m->graphs[0];
  int64_t per = g->kind == IR_GRAPH_SEQUENCE ? g->length
                : g->kind == IR_GRAPH_GRID2D ? g->rows * g->cols
                                             : g->dag.n_nodes;
  return m->batch * per;
}

size_t xy_model_num_inputs(const xy_model *model)
{
  return (size_t)model->m->n_inputs;
}

size_t xy_model_num_outputs(const xy_model *model)
{
  return (size_t)model->m->n_outputs;
}

static void info_of(const ir_module *m, int t, xy_tensor_info *info)
{
  const ir_tensor *x = &m->tensors[t];
  memset(info, 0, sizeof *info);
  info->name = x->name;
  info->dtype = x->dtype;
  info->rank = x->shape.rank;
  for (int i = 0; i < x->shape.rank; i++)
    info->shape[i] = x->shape.d[i];
  info->count = (size_t)ir_shape_count(&x->shape);
  info->range_lo = x->lo;
  info->range_hi = x->hi;
  info->is_weight = x->role == IR_WEIGHT;
  info->from_graph = x->from_graph == IR_FROM_NODE_FEATURES   ? "node_features"
                     : x->from_graph == IR_FROM_EDGE_FEATURES ? "edge_features"
                                                              : NULL;
}

int xy_model_graph_input(const xy_model *model, size_t i, float *values)
{
  const ir_module *m = model->m;
  const ir_tensor *t = &m->tensors[m->inputs[i]];
  if (t->from_graph == IR_FROM_NONE || m->n_graphs < 1)
    return 0;
  /* The front end checked the shape: [batch, rows, F] or [rows, F] of graph 0's file. */
  const ir_dag *d = &m->graphs[0].dag;
  bool node = t->from_graph == IR_FROM_NODE_FEATURES;
  const double *src = node ? d->node_feat : d->edge_feat;
  size_t per = (size_t)(node ? d->n_nodes * d->node_feat_dim : d->n_edges * d->edge_feat_dim);
  size_t count = (size_t)ir_shape_count(&t->shape);
  for (size_t j = 0; per && j < count; j++)
    values[j] = (float)src[j % per];
  return 1;
}

void xy_model_input(const xy_model *model, size_t i, xy_tensor_info *info)
{
  info_of(model->m, model->m->inputs[i], info);
}

void xy_model_output(const xy_model *model, size_t i, xy_tensor_info *info)
{
  info_of(model->m, model->m->outputs[i], info);
}

int xy_model_interpret(const xy_model *model, const double *const *inputs,
                       double *const *outputs, xy_error *err)
{
  const ir_module *m = model->m;
  double **vals = calloc((size_t)m->n_tensors + 1, sizeof *vals);
  if (!vals)
    return xy_fail(err, XY_E_NOMEM, "out of memory");
  for (int i = 0; i < m->n_inputs; i++)
    vals[m->inputs[i]] = (double *)inputs[i];
  int rc = ir_interpret(m, vals, err);
  if (!rc)
    for (int i = 0; i < m->n_outputs; i++) {
      int t = m->outputs[i];
      memcpy(outputs[i], vals[t], sizeof(double) * (size_t)ir_shape_count(&m->tensors[t].shape));
    }
  ir_interp_release(m, vals);
  free(vals);
  return rc;
}

/* ------------------------------------------------------------------ weights */

static bool has_prefix(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

int xy_model_read_weights(const xy_model *model, const char *path, float *const *inputs,
                          xy_error *err)
{
  const ir_module *m = model->m;
  xy_limits lim;
  xy_limits_default(&lim);
  xy_safetensors *st;
  int rc = xy_safetensors_open(path, lim.max_file_bytes, &st, err);
  if (rc)
    return rc;
  for (int i = 0; i < m->n_inputs && !rc; i++) {
    const ir_tensor *t = &m->tensors[m->inputs[i]];
    if (t->role != IR_WEIGHT)
      continue;
    xy_array a;
    if (xy_safetensors_get(st, t->name, &a, err)) {
      rc = xy_fail(err, XY_E_SPEC, "%s: no tensor named '%s' (a weight the model needs)", path,
                   t->name);
      break;
    }
    char want[160], have[160];
    bool shape_ok = a.rank == t->shape.rank;
    for (int d = 0; shape_ok && d < a.rank; d++)
      shape_ok = a.shape[d] == t->shape.d[d];
    bool is_float = a.dtype == XY_F32 || a.dtype == XY_F64 || a.dtype == XY_F16 ||
                    a.dtype == XY_BF16;
    if (!is_float)
      rc = xy_fail(err, XY_E_SHAPE, "%s: tensor '%s' is %s; weights are floating point (F32, "
                   "F64, F16 or BF16)", path, t->name, a.dtype == XY_I32 ? "I32" : "I64");
    else if (!shape_ok)
      rc = xy_fail(err, XY_E_SHAPE, "%s: tensor '%s' has shape %s, the layer needs %s", path,
                   t->name, xy_shape_string(a.shape, a.rank, have, sizeof have),
                   xy_shape_string(t->shape.d, t->shape.rank, want, sizeof want));
    else /* F64 rounds to the kernels' F32; F16 and BF16 widen exactly */
      rc = xy_array_to_f32(&a, inputs[i], a.count, err);
  }
  /* A tensor under a layer's prefix that no layer takes is a misnamed weight. */
  for (size_t j = 0; j < xy_safetensors_count(st) && !rc; j++) {
    const char *name = xy_safetensors_name(st, j);
    bool under = false;
    for (int p = 0; p < m->n_weight_prefixes && !under; p++)
      under = has_prefix(name, m->weight_prefixes[p]);
    int t = under ? ir_find_tensor(m, name) : -1;
    if (under && (t < 0 || m->tensors[t].role != IR_WEIGHT))
      rc = xy_fail(err, XY_E_SPEC, "%s: tensor '%s' is not a weight of any layer (a misnamed or "
                   "extra tensor under a layer's prefix)", path, name);
  }
  xy_safetensors_close(st);
  return rc;
}

int xy_model_write_random_weights(const xy_model *model, const char *path, uint64_t seed,
                                  xy_error *err)
{
  const ir_module *m = model->m;
  size_t n_in = (size_t)m->n_inputs, n_w = 0;
  float **vals = calloc(n_in + 1, sizeof *vals);
  const char **names = calloc(n_in + 1, sizeof *names);
  xy_array *arrays = calloc(n_in + 1, sizeof *arrays);
  int rc = vals && names && arrays ? XY_OK : xy_fail(err, XY_E_NOMEM, "out of memory");
  for (size_t i = 0; !rc && i < n_in; i++) {
    size_t count = (size_t)ir_shape_count(&m->tensors[m->inputs[i]].shape);
    vals[i] = malloc(sizeof(float) * (count ? count : 1));
    if (!vals[i])
      rc = xy_fail(err, XY_E_NOMEM, "out of memory");
  }
  if (!rc)
    xy_model_random_inputs(model, seed, vals);
  for (size_t i = 0; !rc && i < n_in; i++) {
    const ir_tensor *t = &m->tensors[m->inputs[i]];
    if (t->role != IR_WEIGHT)
      continue;
    names[n_w] = t->name;
    xy_array *a = &arrays[n_w++];
    a->dtype = XY_F32;
    a->rank = t->shape.rank;
    memcpy(a->shape, t->shape.d, sizeof(int64_t) * (size_t)t->shape.rank);
    a->count = (size_t)ir_shape_count(&t->shape);
    a->data = vals[i];
  }
  if (!rc && n_w == 0)
    rc = xy_fail(err, XY_E_USAGE, "'%s' has no layer with weights", m->name);
  if (!rc)
    rc = xy_safetensors_write(path, names, arrays, n_w, err);
  for (size_t i = 0; vals && i < n_in; i++)
    free(vals[i]);
  free(vals);
  free(names);
  free(arrays);
  return rc;
}
