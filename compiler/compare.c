/* compare.c: describing, drawing and comparing tensors, for `xylem check`, `xylem run`,
 * the tensor readers and the tests. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "program.h"

const char *xy_shape_string(const int64_t *shape, int rank, char *buf, size_t n)
{
  size_t used = (size_t)snprintf(buf, n, "[");
  for (int d = 0; d < rank && used < n; d++)
    used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64, d ? "," : "", shape[d]);
  if (used < n)
    snprintf(buf + used, n - used, "]");
  return buf;
}

void xy_model_random_inputs(const xy_model *model, uint64_t seed, float *const *inputs)
{
  xy_rng rng;
  xy_rng_seed(&rng, seed);
  for (size_t i = 0; i < xy_model_num_inputs(model); i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    for (size_t j = 0; j < t.count; j++)
      inputs[i][j] = (float)xy_rng_uniform(&rng, t.range_lo, t.range_hi);
    xy_model_graph_input(model, i, inputs[i]);
  }
}

void xy_compare(const double *ref, const float *got, size_t n, xy_compare_stats *st)
{
  memset(st, 0, sizeof *st);
  st->min = INFINITY;
  st->max = -INFINITY;
  double sum = 0;
  for (size_t i = 0; i < n; i++) {
    double r = ref[i], x = got[i];
    if (isnan(x)) {
      st->nan_count++;
      continue;
    }
    st->min = x < st->min ? x : st->min;
    st->max = x > st->max ? x : st->max;
    sum += x;
    st->ref_max = fabs(r) > st->ref_max ? fabs(r) : st->ref_max;
    double e = fabs(x - r);
    st->err_max = e > st->err_max || isnan(e) ? e : st->err_max;
  }
  st->mean = n > st->nan_count ? sum / (double)(n - st->nan_count) : NAN;
  if (st->nan_count || isnan(st->err_max))
    st->err_max = INFINITY;
  st->rel = st->ref_max > 0 ? st->err_max / st->ref_max : st->err_max;
}
