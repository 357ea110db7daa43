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
