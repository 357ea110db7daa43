/*
 * layer_linear.c: the "linear" layer, y = x W^T + b over the last axis (torch.nn.Linear:
 * weights "<prefix>weight" [features, dim] and "<prefix>bias" [features]). Models use it to
 * embed input features, e.g. one-hot atom types, before the pLSTM layers.
 */
#include <math.h>

#include "layer_build.h"

int fe_expand_linear_layer(fe_layer_ctx *fc, const json_t *l, const char *lp, const char *name)
{
  static const char *const keys[] = {"op", "name", "input", "output", "weights", "features",
                                     "bias"};
  fe_lb lb;
  int rc = fe_check_keys(fc->err, XY_E_SPEC, fc->src, l, lp, keys, 7);
  if (rc || (rc = lb_open_kind(&lb, fc, l, lp, "linear", name, fc->kind)))
    return rc;
  int64_t features = 0;
  bool bias = true;
  if ((rc = lb_opt_int(&lb, l, lp, "features", 1, &features)) ||
      (rc = lb_opt_bool(&lb, l, lp, "bias", &bias)))
    return rc;
  if (features == 0)
    return LB_FAIL(&lb, XY_E_SPEC, lp, "linear needs \"features\": the output width");
  const ir_shape *xs = &fc->m->tensors[lb.x].shape;
  int64_t dim = xs->d[xs->rank - 1];
  int64_t wshape[2] = {features, dim};
  double bound = 1.0 / sqrt((double)dim); /* torch's default init range */
  int w, b = -1, y;
  if ((rc = lb_weight(&lb, "weight", 2, wshape, -bound, bound, &w)) ||
      (bias && (rc = lb_weight(&lb, "bias", 1, &features, -bound, bound, &b))))
    return rc;
  return lb_linear(&lb, "linear", lb.x, w, b, 1, 1, features, IR_W_GFSC, 1.0, true, &y);
}
