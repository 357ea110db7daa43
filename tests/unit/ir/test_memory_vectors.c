/* test_memory_vectors.c: the memory oracle against the reference vectors in tests/data/tnt
 * (made with the spec's float64 token loop and checked by an independent chunk-parallel
 * evaluation): every output, final state and the combined TNT output within 1e-12 relative
 * to the array's largest value. Each (batch, head) is one run of the oracle; initial states
 * and slow weights are per head. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memory_oracle.h"

static const double TOL = 1e-12;

typedef struct vcase {
  char dir[1024];
  json_t *manifest;
  int64_t B, H, L, dk, dv, hidden;
} vcase;

/* The array NAME of the case as float64, or NULL when the case has none; *count gets its
 * element count. */
static double *load(const vcase *c, const char *name, int64_t *count)
{
  json_t *a = json_object_get(json_object_get(c->manifest, "arrays"), name);
  if (!a)
    return NULL;
  char path[1200];
  snprintf(path, sizeof path, "%s/%s", c->dir, json_string_value(json_object_get(a, "file")));
  xy_array arr;
  xy_error err;
  if (xy_npy_read(path, 1 << 26, &arr, &err))
    fail_msg("%s", err.message);
  double *out = malloc(sizeof(double) * (size_t)(arr.count ? arr.count : 1));
  assert_non_null(out);
  for (size_t i = 0; i < arr.count; i++)
    out[i] = arr.dtype == XY_F64 ? ((const double *)arr.data)[i]
                                 : (double)((const float *)arr.data)[i];
  if (count)
    *count = (int64_t)arr.count;
  xy_array_free(&arr);
  return out;
}

/* prefix + name, else the unprefixed name (streams shared by every module). */
static double *load_own(const vcase *c, const char *prefix, const char *name, int64_t *count)
{
  char full[128];
  snprintf(full, sizeof full, "%s%s", prefix, name);
  double *x = load(c, full, count);
  return x ? x : load(c, name, count);
}

static void expect_close(const char *what, const double *got, const double *want, int64_t n)
{
  double e = 0, m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(got[i] - want[i]);
    e = d > e || isnan(d) ? d : e;
    m = fabs(want[i]) > m ? fabs(want[i]) : m;
  }
  if (!(e <= TOL * (m > 1 ? m : 1)))
    fail_msg("%s: max error %.3g (largest value %.3g)", what, e, m);
}

static int64_t shape_int(const vcase *c, const char *key)
{
  json_t *v = json_object_get(json_object_get(c->manifest, "shapes"), key);
  return v ? json_integer_value(v) : 0;
}

/* The module's schedule (spec §5.1 fields) as the oracle's description; offsets holds the
 * TTT learning-rate offsets. */
static void read_desc(const vcase *c, json_t *sched, mem_desc *d, double *offsets)
{
  json_t *model = json_object_get(sched, "model"), *qk = json_object_get(sched, "qkproj");
  json_t *wrap = json_object_get(sched, "wrap"), *lr = json_object_get(sched, "lr");
  memset(d, 0, sizeof *d);
  d->bias = json_is_true(json_object_get(model, "bias"));
  d->ln_residual = strcmp(json_string_value(json_object_get(wrap, "kind")), "ln_residual") == 0;
  d->ln_eps = json_number_value(json_object_get(wrap, "eps"));
  d->ttt_lr = strcmp(json_string_value(json_object_get(lr, "kind")), "ttt_matrix") == 0;
  if (d->ttt_lr) {
    d->ttt_base = json_number_value(json_object_get(lr, "base"));
    d->ttt_div = json_number_value(json_object_get(lr, "per_head_div"));
    json_t *off = json_object_get(lr, "token_offset");
    assert_true(json_array_size(off) <= 64);
    for (size_t i = 0; i < json_array_size(off); i++)
      offsets[i] = json_number_value(json_array_get(off, i));
    d->ttt_offset = offsets;
  }
  d->dk = c->dk;
  d->dv = c->dv;
  d->dh = strcmp(json_string_value(json_object_get(model, "kind")), "mlp") == 0 ? c->hidden : 0;
  d->act = MEM_ACT_GELU_TANH;
  d->loss_scale = json_number_value(json_object_get(json_object_get(sched, "loss"), "scale"));
  d->chunk = json_integer_value(json_object_get(sched, "chunk"));
  json_t *reset = json_object_get(sched, "reset");
  d->reset = json_is_integer(reset) ? json_integer_value(reset) : 0;
  const char *read = json_string_value(json_object_get(sched, "read"));
  d->read = strcmp(read, "inclusive") == 0     ? MEM_READ_INCLUSIVE
            : strcmp(read, "chunk_start") == 0 ? MEM_READ_CHUNK_START
                                               : MEM_READ_EXCLUSIVE;
  const char *qkk = json_string_value(json_object_get(qk, "kind"));
  d->qkproj = strcmp(qkk, "shard") == 0 ? MEM_QK_SHARD
              : strcmp(qkk, "chunk") == 0 ? MEM_QK_CHUNK
                                          : MEM_QK_NONE;
  d->momentum = strcmp(json_string_value(json_object_get(sched, "momentum")), "none") != 0;
  d->decay = strcmp(json_string_value(json_object_get(sched, "decay")), "none") != 0;
}

/* Initial weights of head h (W, or W1 then W2), [H, ...] in the file. */
static double *init_weights(const vcase *c, const char *prefix, const mem_desc *d)
{
  int64_t nw = mem_weights_count(d), n;
  double *w = malloc(sizeof(double) * (size_t)(nw * c->H));
  assert_non_null(w);
  if (d->dh == 0) {
    int64_t nm = d->dv * d->dk;
    double *x = load_own(c, prefix, "W_init", &n);
    double *b = d->bias ? load_own(c, prefix, "b_init", NULL) : NULL;
    assert_true(x && n == nm * c->H && (b || !d->bias));
    for (int64_t h = 0; h < c->H; h++) {
      memcpy(w + h * nw, x + h * nm, sizeof(double) * (size_t)nm);
      if (b)
        memcpy(w + h * nw + nm, b + h * d->dv, sizeof(double) * (size_t)d->dv);
    }
    free(x);
    free(b);
    return w;
  }
  assert_false(d->bias); /* no MLP case with biases yet */
  int64_t n1 = d->dh * d->dk, n2 = d->dv * d->dh;
  double *w1 = load_own(c, prefix, "W1_init", &n), *w2 = load_own(c, prefix, "W2_init", NULL);
  assert_true(w1 && w2 && n == n1 * c->H);
  for (int64_t h = 0; h < c->H; h++) {
    memcpy(w + h * nw, w1 + h * n1, sizeof(double) * (size_t)n1);
    memcpy(w + h * nw + n1, w2 + h * n2, sizeof(double) * (size_t)n2);
  }
  free(w1);
  free(w2);
  return w;
}

/* A final state array ([B, H, ...] per layer) laid out like the oracle's weights. */
static void check_final(const vcase *c, const char *prefix, const mem_desc *d, const char *lin,
                        const char *l1, const char *l2, const double *got, const char *what)
{
  int64_t nw = mem_weights_count(d), runs = c->B * c->H;
  double *want = malloc(sizeof(double) * (size_t)(nw * runs));
  assert_non_null(want);
  char name[128];
  if (d->dh == 0) {
    snprintf(name, sizeof name, "%s%s", prefix, lin);
    double *x = load(c, name, NULL);
    if (!x) {
      free(want);
      return;
    }
    int64_t nm = d->dv * d->dk;
    snprintf(name, sizeof name, "%sb_%s", prefix, strchr(lin, '_') + 1);
    double *b = d->bias ? load(c, name, NULL) : NULL;
    assert_true(b || !d->bias);
    for (int64_t r = 0; r < runs; r++) {
      memcpy(want + r * nw, x + r * nm, sizeof(double) * (size_t)nm);
      if (b)
        memcpy(want + r * nw + nm, b + r * d->dv, sizeof(double) * (size_t)d->dv);
    }
    free(x);
    free(b);
  } else {
    int64_t n1 = d->dh * d->dk, n2 = d->dv * d->dh;
    snprintf(name, sizeof name, "%s%s", prefix, l1);
    double *a = load(c, name, NULL);
    snprintf(name, sizeof name, "%s%s", prefix, l2);
    double *b = load(c, name, NULL);
    assert_true(a && b);
    for (int64_t r = 0; r < runs; r++) {
      memcpy(want + r * nw, a + r * n1, sizeof(double) * (size_t)n1);
      memcpy(want + r * nw + n1, b + r * n2, sizeof(double) * (size_t)n2);
    }
    free(a);
    free(b);
  }
  expect_close(what, got, want, nw * runs);
  free(want);
}

/* Runs one module over every (batch, head); adds its output into sum. */
static void run_module(const vcase *c, json_t *module, const char *prefix, double *sum)
{
  mem_desc d;
  double offsets[64];
  read_desc(c, json_object_get(module, "schedule"), &d, offsets);
  int64_t L = c->L, runs = c->B * c->H, nw = mem_weights_count(&d);
  double *q = load_own(c, prefix, "q", NULL), *k = load_own(c, prefix, "k", NULL);
  double *v = load_own(c, prefix, "v", NULL), *theta = load_own(c, prefix, "theta", NULL);
  if (!theta) /* TTT: the per-head learning-rate gate */
    theta = load_own(c, prefix, "ttt_gate", NULL);
  double *gamma = load_own(c, prefix, "ln_gamma", NULL), *beta = load_own(c, prefix, "ln_beta", NULL);
  double *eta = load_own(c, prefix, "eta", NULL), *alpha = load_own(c, prefix, "alpha", NULL);
  double *init = init_weights(c, prefix, &d);
  double *y = malloc(sizeof(double) * (size_t)(runs * L * c->dv));
  double *wf = malloc(sizeof(double) * (size_t)(runs * nw));
  double *mf = malloc(sizeof(double) * (size_t)(runs * nw));
  double *pf = malloc(sizeof(double) * (size_t)(runs * c->dk * c->dk));
  mem_state_layout lay;
  mem_state_layout_of(&d, &lay);
  double *fin = malloc(sizeof(double) * (size_t)lay.count);
  assert_true(q && k && v && theta && y && wf && mf && pf && fin);
  for (int64_t r = 0; r < runs; r++) {
    int64_t h = r % c->H;
    mem_streams st = {q + r * L * c->dk, k + r * L * c->dk, v + r * L * c->dv, theta + r * L,
                      eta ? eta + r * L : NULL, alpha ? alpha + r * L : NULL,
                      gamma ? gamma + h * c->dv : NULL, beta ? beta + h * c->dv : NULL};
    xy_error err;
    mem_state_init(&d, init + h * nw, fin);
    if (mem_oracle_run(&d, L, &st, init + h * nw, fin, y + r * L * c->dv, &err))
      fail_msg("%s", err.message);
    memcpy(wf + r * nw, fin + lay.w, sizeof(double) * (size_t)nw);
    if (lay.mom >= 0)
      memcpy(mf + r * nw, fin + lay.mom, sizeof(double) * (size_t)nw);
    if (lay.p >= 0)
      memcpy(pf + r * c->dk * c->dk, fin + lay.p, sizeof(double) * (size_t)(c->dk * c->dk));
  }
  char name[128], what[1400];
  snprintf(name, sizeof name, "%sy", prefix);
  double *want = load(c, name, NULL);
  assert_non_null(want);
  snprintf(what, sizeof what, "%s %s", c->dir, name);
  expect_close(what, y, want, runs * L * c->dv);
  free(want);
  snprintf(what, sizeof what, "%s %sW_final", c->dir, prefix);
  check_final(c, prefix, &d, "W_final", "W1_final", "W2_final", wf, what);
  if (d.momentum) {
    snprintf(what, sizeof what, "%s %sMom_final", c->dir, prefix);
    check_final(c, prefix, &d, "Mom_W_final", "Mom_W1_final", "Mom_W2_final", mf, what);
  }
  snprintf(name, sizeof name, "%sP_final", prefix);
  double *p = load(c, name, NULL);
  if (p) {
    snprintf(what, sizeof what, "%s %s", c->dir, name);
    expect_close(what, pf, p, runs * c->dk * c->dk);
    free(p);
  }
  for (int64_t i = 0; sum && i < runs * L * c->dv; i++)
    sum[i] += y[i];
  free(q);
  free(k);
  free(v);
  free(theta);
  free(eta);
  free(alpha);
  free(gamma);
  free(beta);
  free(init);
  free(y);
  free(wf);
  free(mf);
  free(pf);
  free(fin);
}

static void run_case(const char *name)
{
  vcase c;
  const char *data = getenv("XYLEM_TEST_DATA");
  assert_non_null(data);
  snprintf(c.dir, sizeof c.dir, "%s/tnt/%s", data, name);
  char path[1200];
  snprintf(path, sizeof path, "%s/manifest.json", c.dir);
  json_error_t je;
  c.manifest = json_load_file(path, 0, &je);
  if (!c.manifest)
    fail_msg("%s: %s", path, je.text);
  c.B = shape_int(&c, "B");
  c.H = shape_int(&c, "H");
  c.L = shape_int(&c, "L");
  c.dk = shape_int(&c, "dk");
  c.dv = shape_int(&c, "dv");
  c.hidden = shape_int(&c, "hidden");
  json_t *modules = json_object_get(c.manifest, "modules");
  size_t n = json_array_size(modules);
  int64_t ny = c.B * c.H * c.L * c.dv;
  double *sum = calloc((size_t)ny, sizeof(double));
  assert_non_null(sum);
  for (size_t i = 0; i < n; i++) {
    json_t *m = json_array_get(modules, i);
    char prefix[64] = "";
    if (n > 1)
      snprintf(prefix, sizeof prefix, "%s_", json_string_value(json_object_get(m, "name")));
    run_module(&c, m, prefix, sum);
  }
  if (n > 1) {
    double *want = load(&c, "y", NULL);
    assert_non_null(want);
    expect_close("combined y", sum, want, ny);
    free(want);
  }
  print_message("  %-20s %zu module(s) within %g\n", name, n, TOL);
  free(sum);
  json_decref(c.manifest);
}

static void vectors(void **state)
{
  (void)state;
  static const char *const cases[] = {
    "spec76_titans_c1", "spec76_titans_c2", "spec76_titans_c4", "spec76_titans_c8",
    "spec76_titans_c16", "spec76_plain_gd_c1", "spec76_tnt_toy", "titans_linear_c1",
    "titans_linear_c4", "titans_linear_c16", "titans_mlp_c8", "plain_gd_reset", "tnt_small",
    "ttt_linear_b16",
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    run_case(cases[i]);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(vectors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
