/* harness.c: see harness.h. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { GUARD = 64 };
static const float CANARY = 1234.5f;

static xrt_context *shared_ctx;
static char tmpdir[512];

const char *harness_data_dir(void)
{
  const char *d = getenv("XYLEM_TEST_DATA");
  return d && d[0] ? d : "tests/data";
}

char *harness_write(const char *name, const char *text)
{
  if (!tmpdir[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/xylem-test-XXXXXX", t && t[0] ? t : "/tmp");
    if (!mkdtemp(tmpdir))
      return NULL;
  }
  size_t n = strlen(tmpdir) + strlen(name) + 2;
  char *path = malloc(n);
  if (!path)
    return NULL;
  snprintf(path, n, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    free(path);
    return NULL;
  }
  return path;
}

void harness_teardown(void)
{
  xrt_context_release(shared_ctx);
  shared_ctx = NULL;
}

int harness_group_teardown(void **state)
{
  (void)state;
  harness_teardown();
  return 0;
}

static int open_ctx(char *msg, size_t n)
{
  if (shared_ctx)
    return 0;
  xrt_error *err = malloc(sizeof *err);
  if (!err)
    return -1;
  int rc = xrt_context_create(NULL, &shared_ctx, err);
  if (rc)
    snprintf(msg, n, "no OpenCL device: %s", err->message);
  free(err);
  return rc;
}

static int load(const harness_case *c, xy_model **model, char *msg, size_t n)
{
  xy_load_options lo;
  xy_load_options_default(&lo);
  lo.overrides = c->overrides;
  lo.n_overrides = c->n_overrides;
  xy_error err;
  if (xy_model_load(c->spec, &lo, model, &err)) {
    snprintf(msg, n, "load: %s", err.message);
    return -1;
  }
  return 0;
}

static int compile_model(const harness_case *c, const xy_model *model, xy_program **prog,
                         char *msg, size_t msg_len)
{
  xy_compile_options co;
  xy_compile_options_default(&co);
  co.target = c->target;
  co.form = c->form;
  co.chunk = c->chunk;
  co.lanes = c->lanes;
  co.rows = c->rows;
  co.wg = c->wg;
  if (c->target == XY_TARGET_C && !c->portable)
    xy_device_limits_host(&co.device);
  if (c->target == XY_TARGET_OPENCL && shared_ctx && !c->portable) {
    xy_device_limits_of(xrt_context_device(shared_ctx), &co.device);
  }
  if (c->portable && c->compute_units > 0)
    co.device.compute_units = c->compute_units;
  xy_error err;
  int rc = xy_compile(model, &co, prog, &err);
  if (rc)
    snprintf(msg, msg_len, "compile: %s", err.message);
  return rc ? -1 : 0;
}

int harness_compile(const harness_case *c, xy_program **prog, char *msg, size_t msg_len)
{
  xy_model *model = NULL;
  if (load(c, &model, msg, msg_len))
    return -1;
  int rc = compile_model(c, model, prog, msg, msg_len);
  xy_model_free(model);
  return rc;
}

/* Runs the program; outputs (with GUARD canaries on both sides) come back in got. */
static int run_target(const harness_case *c, xy_program *prog, float *const *in,
                      float **got, size_t n_out, char *msg, size_t n)
{
  void **outs = calloc(n_out + 1, sizeof *outs);
  if (!outs)
    return -1;
  for (size_t i = 0; i < n_out; i++)
    outs[i] = got[i] + GUARD;
  int rc = 0;
  if (c->target == XY_TARGET_C) {
    xy_native *nat = NULL;
    xy_error err;
    if (xy_native_load(prog, &nat, &err) ||
        xy_native_run(nat, (const void *const *)in, outs, XY_RUN_POISON, NULL, &err)) {
      snprintf(msg, n, "C target: %s", err.message);
      rc = -1;
    }
    xy_native_free(nat);
  } else {
    xrt_error *err = malloc(sizeof *err);
    xrt_plan *plan = NULL;
    xrt_plan_options po = {.profile = 0, .poison = 1, .guard = 1};
    if (!err || xrt_plan_create(shared_ctx, xy_program_plan(prog), &po, &plan, err) ||
        xrt_plan_run(plan, (const void *const *)in, outs, err)) {
      snprintf(msg, n, "OpenCL: %s", err ? err->message : "out of memory");
      rc = -1;
    }
    xrt_plan_release(plan);
    free(err);
  }
  free(outs);
  return rc;
}

int harness_execute(const harness_case *c, const xy_model *model, float *const *in,
                    float *const *out, char *forms, size_t forms_len, char *msg, size_t msg_len)
{
  if (c->target == XY_TARGET_OPENCL && open_ctx(msg, msg_len))
    return -1;
  xy_program *prog = NULL;
  if (compile_model(c, model, &prog, msg, msg_len))
    return -1;
  if (forms)
    snprintf(forms, forms_len, "%s", xy_program_forms(prog));
  size_t n_out = xy_model_num_outputs(model);
  float **got = calloc(n_out + 1, sizeof *got);
  int rc = got ? 0 : -1;
  xy_tensor_info t;
  for (size_t i = 0; !rc && i < n_out; i++) {
    xy_model_output(model, i, &t);
    got[i] = malloc(sizeof(float) * (t.count + 2 * GUARD));
    rc = got[i] ? 0 : -1;
    for (size_t j = 0; !rc && j < t.count + 2 * GUARD; j++)
      got[i][j] = j < GUARD || j >= t.count + GUARD ? CANARY : NAN;
  }
  if (rc)
    snprintf(msg, msg_len, "out of memory");
  if (!rc)
    rc = run_target(c, prog, in, got, n_out, msg, msg_len);
  for (size_t i = 0; !rc && i < n_out; i++) {
    xy_model_output(model, i, &t);
    for (size_t j = 0; j < GUARD && !rc; j++)
      if (got[i][j] != CANARY || got[i][t.count + GUARD + j] != CANARY) {
        snprintf(msg, msg_len, "output %s: canary %s the array overwritten", t.name,
                 got[i][j] != CANARY ? "before" : "after");
        rc = -1;
      }
    memcpy(out[i], got[i] + GUARD, sizeof(float) * t.count);
  }
  for (size_t i = 0; got && i < n_out; i++)
    free(got[i]);
  free(got);
  xy_program_free(prog);
  return rc;
}

int harness_run(const harness_case *c, harness_result *r)
{
  memset(r, 0, sizeof *r);
  xy_model *model = NULL;
  if (load(c, &model, r->message, sizeof r->message))
    return -1;
  size_t n_in = xy_model_num_inputs(model), n_out = xy_model_num_outputs(model);
  float **fin = calloc(n_in + 1, sizeof *fin);
  double **din = calloc(n_in + 1, sizeof *din);
  float **got = calloc(n_out + 1, sizeof *got);
  double **ref = calloc(n_out + 1, sizeof *ref);
  int rc = (!fin || !din || !got || !ref || n_out > HARNESS_MAX_OUTPUTS) ? -1 : 0;
  xy_tensor_info t;
  for (size_t i = 0; !rc && i < n_in; i++) {
    xy_model_input(model, i, &t);
    fin[i] = malloc(sizeof(float) * (t.count + 1));
    din[i] = malloc(sizeof(double) * (t.count + 1));
    rc = fin[i] && din[i] ? 0 : -1;
  }
  for (size_t i = 0; !rc && i < n_out; i++) {
    xy_model_output(model, i, &t);
    got[i] = malloc(sizeof(float) * (t.count + 1));
    ref[i] = malloc(sizeof(double) * (t.count + 1));
    rc = got[i] && ref[i] ? 0 : -1;
  }
  if (rc)
    snprintf(r->message, sizeof r->message, "out of memory");
  if (!rc) {
    xy_model_random_inputs(model, c->seed, fin);
    for (size_t i = 0; i < n_in; i++) {
      xy_model_input(model, i, &t);
      for (size_t j = 0; j < t.count; j++)
        din[i][j] = fin[i][j];
    }
    xy_error err;
    if (xy_model_interpret(model, (const double *const *)din, ref, &err)) {
      snprintf(r->message, sizeof r->message, "interpreter: %s", err.message);
      rc = -1;
    }
  }
  if (!rc)
    rc = harness_execute(c, model, fin, got, r->forms, sizeof r->forms, r->message,
                         sizeof r->message);
  for (size_t i = 0; !rc && i < n_out; i++) {
    xy_model_output(model, i, &t);
    xy_compare_stats st;
    xy_compare(ref[i], got[i], t.count, &st);
    r->rel[i] = st.rel;
    r->worst = st.rel > r->worst || isnan(st.rel) ? st.rel : r->worst;
    r->n_outputs++;
  }
  for (size_t i = 0; fin && din && i < n_in; i++) {
    free(fin[i]);
    free(din[i]);
  }
  for (size_t i = 0; got && ref && i < n_out; i++) {
    free(got[i]);
    free(ref[i]);
  }
  free(fin);
  free(din);
  free(got);
  free(ref);
  xy_model_free(model);
  return rc;
}

double harness_scaled_error(const double *x, const double *ref, size_t n)
{
  double e = 0, m = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(x[i] - ref[i]);
    e = d > e || isnan(d) ? d : e;
    m = fabs(ref[i]) > m ? fabs(ref[i]) : m;
  }
  return e / m;
}

double harness_scaled_error_f32(const float *x, const double *ref, size_t n)
{
  double e = 0, m = 1;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)x[i] - ref[i]);
    e = d > e || isnan(d) ? d : e;
    m = fabs(ref[i]) > m ? fabs(ref[i]) : m;
  }
  return e / m;
}
