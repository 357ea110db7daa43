/* compare.c: random inputs and output comparison, shared by `xylem check` and the tests. */
#include <math.h>
#include <string.h>

#include "program.h"

void xy_model_random_inputs(const xy_model *model, uint64_t seed, float *const *inputs)
{
  xy_rng rng;
  xy_rng_seed(&rng, seed);
  for (size_t i = 0; i < xy_model_num_inputs(model); i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    for (size_t j = 0; j < t.count; j++)
      inputs[i][j] = (float)xy_rng_uniform(&rng, t.range_lo, t.range_hi);
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
