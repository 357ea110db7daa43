/* test_plstm2d.c: the 2D scans, plstm_scan2d and plstm_scan2d_fused (spec plstm.md §2.2,
 * §2.3, §7.2.3-6, §7.2.9):
 *
 * - the reference vectors core2d_p, core2d_d (and the fused layer's core arguments) against
 *   the interpreter (1e-10) and every form on both targets (1e-5);
 * - grids from 1x1 to 64x64 in P, D (T_dl absent, and T_ru absent) and general modes, every
 *   form and tile 1, 2, 4, 8, 16, with and without border states, J > 1, both ops, against
 *   the interpreter: the matrix is covered sparsely, each compiled program running several
 *   input sets (compiling is what takes the time);
 * - the closed forms of §2.4, flip-equivariance of the fused op, boundary semantics;
 * - the cost model: forced forms, tiles that do not fit, what it picks;
 * - with XYLEM_2D_FULL=1, the whole product of grids, modes, forms, tiles and targets.
 *
 * Each compiled program runs with its temporaries and outputs poisoned with NaN and its
 * outputs fenced with canaries. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static const double TOL = 1e-5;
#define MAX_SETS 10
#define MAX_IO 16
enum { GUARD = 64 };
static const float CANARY = 1234.5f;

/* ------------------------------------------------------------------ specs */

typedef struct gspec {
  const char *name;
  int B, X, Y, DK, DV, JQ, JK, JV, JT, JO;
  bool fused, dl, ru, borders;
  double t_range;  /* T drawn from [-t, t] */
  double qk;       /* 0: the default DK^-1/2 */
} gspec;

/* q k v S_r S_d T_rl T_du [T_dl] [T_ru] M_l M_u D [CL CT] -> y [cr cb] */
static char *write_spec(const gspec *g)
{
  char text[8192], lead[32], qk[64] = "";
  snprintf(lead, sizeof lead, g->fused ? "%d, 4, %d, %d" : "%d, %d, %d", g->B, g->X, g->Y);
  if (g->qk != 0)
    snprintf(qk, sizeof qk, ", \"qk_scale\": %.17g", g->qk);
  double t = g->t_range;
  int n = snprintf(text, sizeof text,
    "{\"xylem\": 1, \"name\": \"%s\", \"batch\": %d,\n"
    " \"graph\": {\"kind\": \"grid2d\", \"rows\": %d, \"cols\": %d},\n"
    " \"inputs\": [\n"
    "  {\"name\": \"q\", \"shape\": [%d, %d, %d, %d, %d]},\n"
    "  {\"name\": \"k\", \"shape\": [%d, %d, %d, %d, %d]},\n"
    "  {\"name\": \"v\", \"shape\": [%d, %d, %d, %d, %d]},\n"
    "  {\"name\": \"S_r\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"S_d\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"T_rl\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n"
    "  {\"name\": \"T_du\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n",
    g->name, g->B, g->X, g->Y, g->B, g->X, g->Y, g->DK, g->JQ, g->B, g->X, g->Y, g->DK, g->JK,
    g->B, g->X, g->Y, g->DV, g->JV, lead, g->JT, g->JK, g->JV, lead, g->JT, g->JK, g->JV,
    lead, g->JT, g->JT, -t, t, lead, g->JT, g->JT, -t, t);
  if (g->dl)
    n += snprintf(text + n, sizeof text - (size_t)n,
                  "  {\"name\": \"T_dl\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n",
                  lead, g->JT, g->JT, -t, t);
  if (g->ru)
    n += snprintf(text + n, sizeof text - (size_t)n,
                  "  {\"name\": \"T_ru\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n",
                  lead, g->JT, g->JT, -t, t);
  n += snprintf(text + n, sizeof text - (size_t)n,
    "  {\"name\": \"M_l\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"M_u\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"D\", \"shape\": [%d, %d, %d, %d, %d, %d, %d], \"range\": [0, 1]}",
    lead, g->JO, g->JQ, g->JT, lead, g->JO, g->JQ, g->JT, g->B, g->X, g->Y, g->JO, g->JQ,
    g->JK, g->JV);
  if (g->borders)
    n += snprintf(text + n, sizeof text - (size_t)n,
                  ",\n  {\"name\": \"CL\", \"shape\": [%d, %d, %d, %d, %d]},\n"
                  "  {\"name\": \"CT\", \"shape\": [%d, %d, %d, %d, %d]}",
                  g->B, g->Y, g->DK, g->DV, g->JT, g->B, g->X, g->DK, g->DV, g->JT);
  n += snprintf(text + n, sizeof text - (size_t)n,
    "],\n \"layers\": [{\"op\": \"%s\", \"name\": \"scan\"%s,\n"
    "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S_r\": \"S_r\", \"S_d\": \"S_d\",\n"
    "              \"T_rl\": \"T_rl\", \"T_du\": \"T_du\", %s%s\"M_l\": \"M_l\", \"M_u\": \"M_u\",\n"
    "              \"D\": \"D\"%s},\n"
    "   \"outputs\": {\"out\": \"y\"%s}}],\n"
    " \"outputs\": [\"y\"%s]}\n",
    g->fused ? "plstm_scan2d_fused" : "plstm_scan2d", qk, g->dl ? "\"T_dl\": \"T_dl\", " : "",
    g->ru ? "\"T_ru\": \"T_ru\", " : "",
    g->borders ? ", \"C_initial_left\": \"CL\", \"C_initial_top\": \"CT\"" : "",
    g->borders ? ", \"C_final_right\": \"cr\", \"C_final_bottom\": \"cb\"" : "",
    g->borders ? ", \"cr\", \"cb\"" : "");
  assert_true(n > 0 && (size_t)n < sizeof text);
  char file[96];
  snprintf(file, sizeof file, "%s.json", g->name);
  return harness_write(file, text);
}

/* ------------------------------------------------------------------ cases and input sets */

typedef enum { CHECK_NONE, CHECK_ZERO, CHECK_SELF } set_check;

typedef struct inset {
  char name[64];
  float *in[MAX_IO];
  double *ref[MAX_IO];
  set_check check;
  size_t self;       /* CHECK_SELF: index of the cell whose output must be zero */
  int flip_of;       /* index of the set this one is the x-flip of (fused), or -1 */
} inset;

typedef struct gcase {
  gspec g;
  xy_model *model;
  size_t n_in, n_out;
  xy_tensor_info ins[MAX_IO], outs[MAX_IO];
  inset sets[MAX_SETS];
  int n_sets;
  float *first[MAX_SETS][MAX_IO];  /* outputs of the first form, for tile independence */
} gcase;

static void case_open_spec(gcase *c, const char *spec_path)
{
  xy_error err;
  if (xy_model_load(spec_path, NULL, &c->model, &err))
    fail_msg("%s", err.message);
  c->n_in = xy_model_num_inputs(c->model);
  c->n_out = xy_model_num_outputs(c->model);
  assert_true(c->n_in <= MAX_IO && c->n_out <= MAX_IO);
  for (size_t i = 0; i < c->n_in; i++)
    xy_model_input(c->model, i, &c->ins[i]);
  for (size_t i = 0; i < c->n_out; i++)
    xy_model_output(c->model, i, &c->outs[i]);
}

static void case_open(gcase *c, const gspec *g)
{
  memset(c, 0, sizeof *c);
  c->g = *g;
  char *path = write_spec(g);
  assert_non_null(path);
  case_open_spec(c, path);
  free(path);
}

static void case_close(gcase *c)
{
  for (int s = 0; s < c->n_sets; s++) {
    for (size_t i = 0; i < c->n_in; i++)
      free(c->sets[s].in[i]);
    for (size_t i = 0; i < c->n_out; i++) {
      free(c->sets[s].ref[i]);
      free(c->first[s][i]);
    }
  }
  xy_model_free(c->model);
  memset(c, 0, sizeof *c);
}

static int input_index(const gcase *c, const char *name)
{
  for (size_t i = 0; i < c->n_in; i++)
    if (strcmp(c->ins[i].name, name) == 0)
      return (int)i;
  return -1;
}

static float *input_of(inset *s, const gcase *c, const char *name)
{
  int i = input_index(c, name);
  return i >= 0 ? s->in[i] : NULL;
}

static void fill(float *x, size_t n, float v)
{
  for (size_t i = 0; x && i < n; i++)
    x[i] = v;
}

static size_t count_of(const gcase *c, const char *name)
{
  int i = input_index(c, name);
  return i >= 0 ? c->ins[i].count : 0;
}

/* A new input set drawn from the spec's ranges. */
static inset *set_new(gcase *c, const char *name, uint64_t seed)
{
  assert_true(c->n_sets < MAX_SETS);
  inset *s = &c->sets[c->n_sets++];
  memset(s, 0, sizeof *s);
  snprintf(s->name, sizeof s->name, "%s", name);
  s->flip_of = -1;
  for (size_t i = 0; i < c->n_in; i++) {
    s->in[i] = malloc(sizeof(float) * (c->ins[i].count + 1));
    assert_non_null(s->in[i]);
  }
  xy_model_random_inputs(c->model, seed, s->in);
  return s;
}

/* P mode (§7.2.3): T_rl = T_ru = a, T_dl = T_du = 1 - a, a in (0.05, 0.95) per cell. */
static void make_p_mode(gcase *c, inset *s, uint64_t seed)
{
  assert_true(c->g.JT == 1 && c->g.dl && c->g.ru);
  xy_rng rng;
  xy_rng_seed(&rng, seed);
  float *rl = input_of(s, c, "T_rl"), *ru = input_of(s, c, "T_ru");
  float *dl = input_of(s, c, "T_dl"), *du = input_of(s, c, "T_du");
  for (size_t i = 0; i < count_of(c, "T_rl"); i++) {
    float a = (float)xy_rng_uniform(&rng, 0.05, 0.95);
    rl[i] = ru[i] = a;
    dl[i] = du[i] = 1.0f - a;
  }
}

/* The interpreter's outputs for a set. */
static void set_reference(gcase *c, inset *s)
{
  double *din[MAX_IO];
  for (size_t i = 0; i < c->n_in; i++) {
    din[i] = malloc(sizeof(double) * (c->ins[i].count + 1));
    assert_non_null(din[i]);
    for (size_t j = 0; j < c->ins[i].count; j++)
      din[i][j] = s->in[i][j];
  }
  for (size_t i = 0; i < c->n_out; i++) {
    free(s->ref[i]);
    s->ref[i] = malloc(sizeof(double) * (c->outs[i].count + 1));
    assert_non_null(s->ref[i]);
  }
  xy_error err;
  if (xy_model_interpret(c->model, (const double *const *)din, s->ref, &err))
    fail_msg("interpreter: %s", err.message);
  for (size_t i = 0; i < c->n_in; i++)
    free(din[i]);
}

static inset *random_set(gcase *c, const char *mode, uint64_t seed)
{
  inset *s = set_new(c, mode, seed);
  if (strcmp(mode, "P") == 0)
    make_p_mode(c, s, seed + 1);
  set_reference(c, s);
  return s;
}

/* ------------------------------------------------------------------ compiled programs */

static xrt_context *ctx;

static int ensure_ctx(void)
{
  if (ctx)
    return 0;
  xrt_error *err = malloc(sizeof *err);
  assert_non_null(err);
  int rc = xrt_context_create(NULL, &ctx, err);
  if (rc)
    print_error("no OpenCL device: %s\n", err->message);
  free(err);
  return rc;
}

static int group_teardown(void **state)
{
  (void)state;
  xrt_context_release(ctx);
  ctx = NULL;
  return harness_group_teardown(state);
}

typedef struct runner {
  xy_target target;
  xy_program *prog;
  xy_native *nat;
  xrt_plan *plan;
} runner;

static void options_for(xy_target t, xy_compile_options *co)
{
  xy_compile_options_default(co);
  co->target = t;
  if (t == XY_TARGET_C) {
    xy_device_limits_host(&co->device);
    return;
  }
  assert_int_equal(ensure_ctx(), 0);
  xy_device_limits_of(xrt_context_device(ctx), &co->device);
}

/* Schedule knobs of one compile; portable compiles for a device nobody named (GPU-like
 * groups, local-memory tiles within 32 KiB) and runs on this one. */
typedef struct knobs {
  int lanes, rows, wg;
  bool portable;
} knobs;

static void runner_open(runner *r, const gcase *c, xy_target t, const char *form, int64_t chunk,
                        const knobs *kn)
{
  memset(r, 0, sizeof *r);
  r->target = t;
  xy_compile_options co;
  options_for(t, &co);
  if (kn->portable) {
    memset(&co.device, 0, sizeof co.device);
    xy_device_limits_default(&co.device);
  }
  co.form = form;
  co.chunk = chunk;
  co.lanes = kn->lanes;
  co.rows = kn->rows;
  co.wg = kn->wg;
  xy_error err;
  if (xy_compile(c->model, &co, &r->prog, &err))
    fail_msg("%s: compile %s: %s", c->g.name, form ? form : "auto", err.message);
  if (t == XY_TARGET_C) {
    if (xy_native_load(r->prog, &r->nat, &err))
      fail_msg("%s: C target: %s", c->g.name, err.message);
    return;
  }
  xrt_error *xe = malloc(sizeof *xe);
  assert_non_null(xe);
  xrt_plan_options po = {.profile = 0, .poison = 1, .guard = 1};
  if (xrt_plan_create(ctx, xy_program_plan(r->prog), &po, &r->plan, xe))
    fail_msg("%s: OpenCL plan: %s", c->g.name, xe->message);
  free(xe);
}

static void runner_close(runner *r)
{
  xy_native_free(r->nat);
  xrt_plan_release(r->plan);
  xy_program_free(r->prog);
  memset(r, 0, sizeof *r);
}

/* Runs one input set; outputs come back in out[i] (NaN-poisoned and fenced first). */
static void runner_run(runner *r, const gcase *c, const inset *s, float **out)
{
  float *got[MAX_IO];
  void *outs[MAX_IO];
  for (size_t i = 0; i < c->n_out; i++) {
    size_t n = c->outs[i].count;
    got[i] = malloc(sizeof(float) * (n + 2 * GUARD));
    assert_non_null(got[i]);
    for (size_t j = 0; j < n + 2 * GUARD; j++)
      got[i][j] = j < GUARD || j >= n + GUARD ? CANARY : NAN;
    outs[i] = got[i] + GUARD;
  }
  if (r->target == XY_TARGET_C) {
    xy_error err;
    if (xy_native_run(r->nat, (const void *const *)s->in, outs, XY_RUN_POISON, NULL, &err))
      fail_msg("C target: %s", err.message);
  } else {
    xrt_error *xe = malloc(sizeof *xe);
    assert_non_null(xe);
    if (xrt_plan_run(r->plan, (const void *const *)s->in, outs, xe))
      fail_msg("OpenCL: %s", xe->message);
    free(xe);
  }
  for (size_t i = 0; i < c->n_out; i++) {
    size_t n = c->outs[i].count;
    for (size_t j = 0; j < GUARD; j++)
      if (got[i][j] != CANARY || got[i][n + GUARD + j] != CANARY)
        fail_msg("output %s: a canary was overwritten", c->outs[i].name);
    out[i] = malloc(sizeof(float) * (n + 1));
    assert_non_null(out[i]);
    memcpy(out[i], got[i] + GUARD, sizeof(float) * n);
    free(got[i]);
  }
}

/* x-flip of a [B, (4,) X, Y, ...] array whose cells hold `cell` values. */
static size_t flip_index(const gspec *g, size_t i, size_t cell, bool oriented)
{
  size_t per_x = (size_t)g->Y * cell, per_plane = (size_t)g->X * per_x;
  size_t plane = i / per_plane, rest = i % per_plane, x = rest / per_x;
  size_t out_plane = plane;
  if (oriented) /* slots 0<->1, 2<->3 */
    out_plane = plane / 4 * 4 + ((plane % 4) ^ 1u);
  return out_plane * per_plane + ((size_t)g->X - 1 - x) * per_x + rest % per_x;
}

static const char *target_name(xy_target t)
{
  return t == XY_TARGET_C ? "C" : "OpenCL";
}

/* Every set through one compiled program, each output within TOL of its reference; the
 * special checks of a set; with compare_first, within 2e-6 of the first form's outputs
 * (the tile never changes results beyond float reassociation). The single form sums each
 * output over all P cells at once, so its float32 rounding grows with P: beyond 1024 cells
 * (where the cost model never picks it) its bound grows in proportion. */
static void check_form(gcase *c, xy_target t, const char *form, int64_t chunk, const knobs *kn,
                       bool compare_first)
{
  runner r;
  runner_open(&r, c, t, form, chunk, kn);
  double cells = (double)c->g.X * c->g.Y;
  double move = form && strcmp(form, "single") == 0 && cells > 1024 ? 2e-6 * cells / 1024 : 2e-6;
  float *got[MAX_SETS][MAX_IO];
  double worst = 0;
  for (int si = 0; si < c->n_sets; si++) {
    inset *s = &c->sets[si];
    runner_run(&r, c, s, got[si]);
    for (size_t o = 0; o < c->n_out; o++) {
      double e = harness_scaled_error_f32(got[si][o], s->ref[o], c->outs[o].count);
      worst = e > worst || isnan(e) ? e : worst;
      if (!(e <= TOL))
        fail_msg("%s %s %s set %s output %s: error %.3g above %g", c->g.name, target_name(t),
                 xy_program_forms(r.prog), s->name, c->outs[o].name, e, TOL);
      if (compare_first && c->first[si][o]) {
        double d = 0, m = 0;
        for (size_t j = 0; j < c->outs[o].count; j++) {
          double x = fabs((double)got[si][o][j] - c->first[si][o][j]);
          d = x > d || isnan(x) ? x : d;
          m = fabs(c->first[si][o][j]) > m ? fabs(c->first[si][o][j]) : m;
        }
        if (!(d <= move * (m > 1 ? m : 1)))
          fail_msg("%s %s: set %s output %s moves by %.3g (max %.3g) between forms/tiles",
                   c->g.name, xy_program_forms(r.prog), s->name, c->outs[o].name, d, m);
      }
    }
    if (s->check == CHECK_ZERO)
      for (size_t j = 0; j < c->outs[0].count; j++)
        if (got[si][0][j] != 0.0f)
          fail_msg("%s %s: set %s: out[%zu] = %g, not exactly 0", c->g.name,
                   xy_program_forms(r.prog), s->name, j, (double)got[si][0][j]);
    if (s->check == CHECK_SELF) {
      size_t w = (size_t)(c->g.DV * c->g.JO);
      for (size_t j = 0; j < w; j++)
        if (!(fabs(got[si][0][s->self * w + j]) <= 1e-6))
          fail_msg("%s %s: set %s: the cell reads its own write (%g)", c->g.name,
                   xy_program_forms(r.prog), s->name, (double)got[si][0][s->self * w + j]);
    }
  }
  /* Flip-equivariance, as compiled: out(flip A) = flip out(A). */
  for (int si = 0; si < c->n_sets; si++) {
    int a = c->sets[si].flip_of;
    if (a < 0)
      continue;
    size_t n = c->outs[0].count, cell = (size_t)(c->g.DV * c->g.JO);
    double d = 0, m = 1;
    for (size_t j = 0; j < n; j++) {
      double x = fabs((double)got[si][0][flip_index(&c->g, j, cell, false)] - got[a][0][j]);
      d = x > d || isnan(x) ? x : d;
      m = fabs(got[a][0][j]) > m ? fabs(got[a][0][j]) : m;
    }
    if (!(d <= TOL * m))
      fail_msg("%s %s: flipping the input along x is not flipping the output (%.3g)",
               c->g.name, xy_program_forms(r.prog), d / m);
  }
  char what[64] = "";
  if (kn->portable || kn->lanes || kn->rows || kn->wg)
    snprintf(what, sizeof what, "%s l%d r%d w%d", kn->portable ? "portable" : "", kn->lanes,
             kn->rows, kn->wg);
  print_message("  %-7s %-22s %-20s %-18s %d sets, worst error %.3g\n", target_name(t), c->g.name,
                xy_program_forms(r.prog), what, c->n_sets, worst);
  for (int si = 0; si < c->n_sets; si++)
    for (size_t o = 0; o < c->n_out; o++) {
      if (compare_first && !c->first[si][o])
        c->first[si][o] = got[si][o];
      else
        free(got[si][o]);
    }
  runner_close(&r);
}

/* "r" recurrent, "s" single, "tN" tiled with tile N, "xN" tiled on one lane, "a" auto;
 * targets 'o' OpenCL, 'c' C, 'g' OpenCL with the portable (GPU-like) schedule. */
static void check_forms(gcase *c, const char *forms, bool compare_first)
{
  char tok[32];
  for (const char *p = forms; *p;) {
    size_t n = strcspn(p, " ");
    assert_true(n > 0 && n < sizeof tok);
    memcpy(tok, p, n);
    tok[n] = '\0';
    p += n + (p[n] == ' ');
    xy_target t = tok[0] == 'c' ? XY_TARGET_C : XY_TARGET_OPENCL;
    knobs kn = {.portable = tok[0] == 'g'};
    const char *f = tok + 1;
    if (f[0] == 'r')
      check_form(c, t, "recurrent", 0, &kn, compare_first);
    else if (f[0] == 's')
      check_form(c, t, "single", 0, &kn, compare_first);
    else if (f[0] == 'a')
      check_form(c, t, NULL, 0, &kn, compare_first);
    else {
      kn.lanes = f[0] == 'x' ? 1 : 0; /* scalar: one lane */
      check_form(c, t, "tiled", atoi(f + 1), &kn, compare_first);
    }
  }
}

/* ------------------------------------------------------------------ special input sets */

/* §7.2.9: no sources (and no initial states): out = s D (q.k) v exactly; the interpreter's
 * direct term alone is checked by hand. */
static void add_no_source(gcase *c, uint64_t seed)
{
  inset *s = set_new(c, "S=0", seed);
  fill(input_of(s, c, "S_r"), count_of(c, "S_r"), 0);
  fill(input_of(s, c, "S_d"), count_of(c, "S_d"), 0);
  fill(input_of(s, c, "CL"), count_of(c, "CL"), 0);
  fill(input_of(s, c, "CT"), count_of(c, "CT"), 0);
  set_reference(c, s);
  const gspec *g = &c->g;
  assert_true(g->JQ == 1 && g->JK == 1 && g->JV == 1 && g->JO == 1);
  double scale = g->qk != 0 ? g->qk : 1.0 / sqrt((double)g->DK);
  const float *q = input_of(s, c, "q"), *k = input_of(s, c, "k"), *v = input_of(s, c, "v");
  const float *D = input_of(s, c, "D");
  size_t cells = (size_t)g->B * (size_t)g->X * (size_t)g->Y;
  for (size_t n = 0; n < cells; n++) {
    double qk = 0;
    for (int d = 0; d < g->DK; d++)
      qk += (double)q[n * (size_t)g->DK + (size_t)d] * (double)k[n * (size_t)g->DK + (size_t)d];
    for (int d = 0; d < g->DV; d++) {
      double want = scale * (D[n] * qk * v[n * (size_t)g->DV + (size_t)d]);
      double got = s->ref[0][n * (size_t)g->DV + (size_t)d];
      if (!(fabs(got - want) <= 1e-14 * (1 + fabs(want))))
        fail_msg("%s: with S = 0 the interpreter gives %g, not s D (q.k) v = %g", g->name, got, want);
    }
  }
}

/* §7.2.9: M = 0 and D = 0: the output is exactly 0 (the interpreter and every form). */
static void add_no_mark_no_direct(gcase *c, uint64_t seed)
{
  inset *s = set_new(c, "M=D=0", seed);
  fill(input_of(s, c, "M_l"), count_of(c, "M_l"), 0);
  fill(input_of(s, c, "M_u"), count_of(c, "M_u"), 0);
  fill(input_of(s, c, "D"), count_of(c, "D"), 0);
  set_reference(c, s);
  for (size_t j = 0; j < c->outs[0].count; j++)
    if (s->ref[0][j] != 0.0)
      fail_msg("%s: with M = D = 0 the interpreter gives %g", c->g.name, s->ref[0][j]);
  s->check = CHECK_ZERO;
}

/* §7.2.9: a cell never reads its own write: the only source is one cell, D = 0 and no
 * initial states, so that cell's output is 0 while cells it reaches are not. */
static void add_own_write(gcase *c, uint64_t seed, int x, int y)
{
  const gspec *g = &c->g;
  inset *s = set_new(c, "own write", seed);
  fill(input_of(s, c, "D"), count_of(c, "D"), 0);
  fill(input_of(s, c, "CL"), count_of(c, "CL"), 0);
  fill(input_of(s, c, "CT"), count_of(c, "CT"), 0);
  size_t cell = (size_t)x * (size_t)g->Y + (size_t)y, per = (size_t)(g->JT * g->JK * g->JV);
  size_t planes = (size_t)g->B * (g->fused ? 4u : 1u), P = (size_t)g->X * (size_t)g->Y;
  float *sr = input_of(s, c, "S_r"), *sd = input_of(s, c, "S_d");
  for (size_t pl = 0; pl < planes; pl++)
    for (size_t n = 0; n < P; n++)
      if (n != cell)
        for (size_t e = 0; e < per; e++)
          sr[(pl * P + n) * per + e] = sd[(pl * P + n) * per + e] = 0;
  set_reference(c, s);
  size_t w = (size_t)(g->DV * g->JO);
  bool others = false;
  for (size_t j = 0; j < c->outs[0].count; j++) {
    bool mine = (j / w) % P == cell;
    if (mine && s->ref[0][j] != 0.0)
      fail_msg("%s: the interpreter's cell reads its own write", g->name);
    others |= !mine && s->ref[0][j] != 0.0;
  }
  assert_true(others);
  s->check = CHECK_SELF;
  s->self = cell; /* batch element 0 */
}

/* §7.2.6: the x-flip of set a with orientation slots 0<->1, 2<->3 swapped. */
static void add_flip(gcase *c, int a)
{
  const gspec *g = &c->g;
  assert_true(g->fused);
  inset *s = set_new(c, "x-flipped", 1);
  s->flip_of = a;
  for (size_t i = 0; i < c->n_in; i++) {
    const xy_tensor_info *t = &c->ins[i];
    bool oriented = t->name[0] == 'S' || t->name[0] == 'T' || t->name[0] == 'M';
    size_t per_plane = t->count / (size_t)(g->B * (oriented ? 4 : 1));
    size_t cell = per_plane / (size_t)(g->X * g->Y);
    for (size_t j = 0; j < t->count; j++)
      s->in[i][flip_index(g, j, cell, oriented)] = c->sets[a].in[i][j];
  }
  set_reference(c, s);
  size_t n = c->outs[0].count, cell = (size_t)(g->DV * g->JO);
  double out_flip_err = 0;
  for (size_t j = 0; j < n; j++) {
    double d = fabs(s->ref[0][flip_index(g, j, cell, false)] - c->sets[a].ref[0][j]);
    out_flip_err = d > out_flip_err ? d : out_flip_err;
  }
  if (!(out_flip_err <= 1e-12))
    fail_msg("%s: the interpreter is not flip-equivariant (%.3g)", g->name, out_flip_err);
}

/* §2.4: constant scalar gates, one source at (0,0) (k = q = e_0, v = e_0 there only):
 * h(x, y)[0] = s G((x,y) <- (0,0)), checked against the closed forms. */
static double binom(int n, int k)
{
  if (k < 0 || k > n || n < 0)
    return 0;
  double r = 1;
  for (int i = 1; i <= k; i++)
    r = r * (n - k + i) / i;
  return r;
}

typedef struct closed {
  bool pmode;
  double a;                /* P: alpha */
  double trl, tdu, tru;    /* D */
  double sr, sd, ml, mu, d;
} closed;

static double closed_g(const closed *k, int x, int y)
{
  if (x == 0 && y == 0)
    return k->d;
  if (k->pmode) {
    double a = k->a, b = 1 - a;
    if (y == 0)
      return k->sr * pow(a, x - 1) * k->ml;
    if (x == 0)
      return k->sd * pow(b, y - 1) * k->mu;
    int n = x + y - 2;
    return k->sr * pow(a, x - 1) * pow(b, y) * (k->ml * binom(n, x - 2) + k->mu * binom(n, x - 1)) +
           k->sd * pow(a, x) * pow(b, y - 1) * (k->ml * binom(n, x - 1) + k->mu * binom(n, x));
  }
  if (y == 0)
    return k->sr * pow(k->trl, x - 1) * k->ml;
  if (x == 0)
    return k->sd * pow(k->tdu, y - 1) * k->mu;
  return k->sd * pow(k->tdu, y - 1) * k->tru * pow(k->trl, x - 1) * k->ml;
}

static void add_closed_form(gcase *c, const closed *k, const char *name)
{
  const gspec *g = &c->g;
  assert_true(!g->fused && !g->borders && g->JT == 1 && g->dl && g->ru);
  inset *s = set_new(c, name, 3);
  size_t P = (size_t)(g->X * g->Y), cells = (size_t)g->B * P;
  float *q = input_of(s, c, "q"), *kk = input_of(s, c, "k"), *v = input_of(s, c, "v");
  fill(q, count_of(c, "q"), 0);
  fill(kk, count_of(c, "k"), 0);
  fill(v, count_of(c, "v"), 0);
  for (size_t n = 0; n < cells; n++) {
    q[n * (size_t)g->DK] = 1;
    kk[n * (size_t)g->DK] = 1;
    if (n % P == 0)
      v[n * (size_t)g->DV] = 1;
  }
  fill(input_of(s, c, "S_r"), cells, (float)k->sr);
  fill(input_of(s, c, "S_d"), cells, (float)k->sd);
  fill(input_of(s, c, "M_l"), cells, (float)k->ml);
  fill(input_of(s, c, "M_u"), cells, (float)k->mu);
  fill(input_of(s, c, "D"), cells, (float)k->d);
  fill(input_of(s, c, "T_rl"), cells, (float)(k->pmode ? k->a : k->trl));
  fill(input_of(s, c, "T_ru"), cells, (float)(k->pmode ? k->a : k->tru));
  fill(input_of(s, c, "T_du"), cells, (float)(k->pmode ? 1 - k->a : k->tdu));
  fill(input_of(s, c, "T_dl"), cells, (float)(k->pmode ? 1 - k->a : 0));
  set_reference(c, s);
  /* The gates are dyadic (exact in float32, and so is 1 - a): the formulas hold exactly. */
  const closed kf = *k;
  double scale = 1.0 / sqrt((double)g->DK), err = 0, big = 0;
  for (int x = 0; x < g->X; x++)
    for (int y = 0; y < g->Y; y++) {
      double want = scale * closed_g(&kf, x, y);
      double got = s->ref[0][((size_t)x * (size_t)g->Y + (size_t)y) * (size_t)g->DV];
      err = fabs(got - want) > err ? fabs(got - want) : err;
      big = fabs(want) > big ? fabs(want) : big;
    }
  print_message("  %s %dx%d closed form: interpreter within %.3g of the formula (max %.3g)\n",
                name, g->X, g->Y, err, big);
  if (!(err <= 1e-12 * (big > 1 ? big : 1)))
    fail_msg("%s %s: the interpreter is %.3g off the closed form", g->name, name, err);
}

/* ------------------------------------------------------------------ reference vectors */

typedef struct vec_case {
  char dir[1024];
  gcase c;
} vec_case;

static void read_npy_into(const char *dir, const char *file, size_t count, float *f32,
                          double *f64)
{
  char path[1300];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  xy_array a;
  xy_error err;
  if (xy_npy_read(path, 1 << 30, &a, &err))
    fail_msg("%s", err.message);
  assert_int_equal(a.count, count);
  if (f32)
    assert_int_equal(xy_array_to_f32(&a, f32, count, &err), XY_OK);
  if (f64)
    assert_int_equal(xy_array_to_f64(&a, f64, count, &err), XY_OK);
  xy_array_free(&a);
}

/* The set from the files: inputs by name (prefix + tensor name), references from outs. */
static inset *vector_set(gcase *c, const char *dir, const char *prefix, const char *const *names,
                         const char *const *outs)
{
  inset *s = set_new(c, "reference", 1);
  double *din[MAX_IO], *dout[MAX_IO];
  for (size_t i = 0; i < c->n_in; i++) {
    char file[128];
    snprintf(file, sizeof file, "%s%s.npy", prefix, names[i]);
    din[i] = malloc(sizeof(double) * (c->ins[i].count + 1));
    assert_non_null(din[i]);
    read_npy_into(dir, file, c->ins[i].count, s->in[i], din[i]);
  }
  for (size_t i = 0; i < c->n_out; i++) {
    s->ref[i] = malloc(sizeof(double) * (c->outs[i].count + 1));
    dout[i] = malloc(sizeof(double) * (c->outs[i].count + 1));
    assert_true(s->ref[i] && dout[i]);
    read_npy_into(dir, outs[i], c->outs[i].count, NULL, s->ref[i]);
  }
  /* The interpreter on the files' values (float64 for the layer's intermediates): within
   * 1e-10 of the reference. The compiled forms see the inputs in float32. */
  xy_error err;
  if (xy_model_interpret(c->model, (const double *const *)din, dout, &err))
    fail_msg("interpreter: %s", err.message);
  for (size_t i = 0; i < c->n_out; i++) {
    double e = harness_scaled_error(dout[i], s->ref[i], c->outs[i].count);
    print_message("  interpreter vs %s/%s: %.3g\n", dir + strlen(harness_data_dir()) + 1, outs[i], e);
    if (!(e <= 1e-10))
      fail_msg("interpreter output %s: error %.3g above 1e-10", c->outs[i].name, e);
    free(dout[i]);
  }
  for (size_t i = 0; i < c->n_in; i++)
    free(din[i]);
  return s;
}

static void core2d(const char *name, bool dl)
{
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/plstm/%s", harness_data_dir(), name);
  gspec g = {.name = name, .B = 2, .X = 8, .Y = 8, .DK = 4, .DV = 4, .JQ = 1, .JK = 1, .JV = 1,
             .JT = 1, .JO = 1, .dl = dl, .ru = true, .borders = true, .t_range = dl ? 0.5 : 1.0,
             .qk = 0.5};
  gcase c;
  case_open(&c, &g);
  static const char *const with_dl[] = {"q", "k", "v", "S_r", "S_d", "T_rl", "T_du", "T_dl",
                                        "T_ru", "M_l", "M_u", "D", "C_initial_left",
                                        "C_initial_top"};
  static const char *const no_dl[] = {"q", "k", "v", "S_r", "S_d", "T_rl", "T_du", "T_ru",
                                      "M_l", "M_u", "D", "C_initial_left", "C_initial_top"};
  static const char *const outs[] = {"out.npy", "last_C_right.npy", "last_C_bottom.npy"};
  vector_set(&c, dir, "", dl ? with_dl : no_dl, outs);
  /* Random sets ride on the same programs: the 8x8 differential cases. */
  if (dl) {
    random_set(&c, "P", 11);
    random_set(&c, "general", 12);
    add_no_source(&c, 13);
  } else {
    random_set(&c, "D (T_dl absent)", 14);
    add_own_write(&c, 15, 3, 2);
  }
  check_forms(&c, "or ot1 ot2 ot4 ot8 os cr ct1 ct2 ct4 ct8 cs", false);
  case_close(&c);
}

static void vectors_core2d_p(void **state)
{
  (void)state;
  core2d("core2d_p", true);
}

static void vectors_core2d_d(void **state)
{
  (void)state;
  core2d("core2d_d", false);
}

/* The fused layer's core function (pLSTM2D_parallel_fused_torch) on the arguments the
 * reference layer passed it (dbg_core_*): four orientations, D once. */
static void fused_core(const char *name, bool dl, const char *forms)
{
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/plstm/%s", harness_data_dir(), name);
  gspec g = {.name = name, .B = 4, .X = 8, .Y = 8, .DK = 16, .DV = 16, .JQ = 1, .JK = 1,
             .JV = 1, .JT = 1, .JO = 1, .fused = true, .dl = dl, .ru = true, .t_range = 1.0,
             .qk = 0.25};
  gcase c;
  case_open(&c, &g);
  static const char *const with_dl[] = {"q", "k", "v", "S_r", "S_d", "T_rl", "T_du", "T_dl",
                                        "T_ru", "M_l", "M_u", "D"};
  static const char *const no_dl[] = {"q", "k", "v", "S_r", "S_d", "T_rl", "T_du", "T_ru",
                                      "M_l", "M_u", "D"};
  static const char *const outs[] = {"dbg_core_out.npy"};
  vector_set(&c, dir, "dbg_core_", dl ? with_dl : no_dl, outs);
  random_set(&c, "random", 21);
  check_forms(&c, forms, false);
  case_close(&c);
}

static void vectors_fused(void **state)
{
  (void)state;
  fused_core("fused2d_p", true, "os ct2 cr gs");
  fused_core("fused2d_d_vis", false, "cs ot4");
}

/* ------------------------------------------------------------------ differential */

typedef struct dcase {
  int X, Y;
  bool fused, dl, ru, borders;
  int J[5];           /* JQ, JK, JV, JT, JO */
  int B, DK, DV;
  const char *forms;
} dcase;

static void run_dcase(const dcase *d, int index)
{
  char name[64];
  snprintf(name, sizeof name, "grid%d_%dx%d%s", index, d->X, d->Y, d->fused ? "_fused" : "");
  bool all_t = d->dl && d->ru;
  bool j1 = d->J[0] * d->J[1] * d->J[2] * d->J[3] * d->J[4] == 1;
  gspec g = {.name = name, .B = d->B, .X = d->X, .Y = d->Y, .DK = d->DK, .DV = d->DV,
             .JQ = d->J[0], .JK = d->J[1], .JV = d->J[2], .JT = d->J[3], .JO = d->J[4],
             .fused = d->fused, .dl = d->dl, .ru = d->ru, .borders = d->borders,
             .t_range = d->J[3] > 1 ? 0.5 / d->J[3] : all_t ? 0.5 : 0.99};
  gcase c;
  case_open(&c, &g);
  if (all_t && j1) {
    random_set(&c, "P", 100 + (uint64_t)index);
    random_set(&c, "general", 200 + (uint64_t)index);
  } else {
    random_set(&c, d->dl ? "D (T_ru absent)" : "D (T_dl absent)", 300 + (uint64_t)index);
  }
  if (d->fused)
    add_flip(&c, 0);
  if (j1 && !d->fused)
    add_no_mark_no_direct(&c, 400 + (uint64_t)index);
  check_forms(&c, d->forms, true);
  case_close(&c);
}

/* Every grid size, mode, form and tile appears; not every combination. */
static void differential(void **state)
{
  (void)state;
  static const dcase cases[] = {
    {1, 1, false, true, true, true, {1, 1, 1, 1, 1}, 2, 4, 4, "cr ct1 cs os"},
    {1, 7, false, false, true, true, {1, 1, 1, 1, 1}, 2, 4, 8, "cr ct2 cs ot4 ot8"},
    {2, 2, true, true, true, false, {1, 1, 1, 1, 1}, 2, 4, 4, "cr ct1 cs ot2"},
    {5, 3, false, true, false, false, {1, 2, 1, 2, 2}, 2, 3, 5, "cr ct2 ct4 cs or"},
    {4, 6, false, true, true, true, {2, 1, 2, 3, 2}, 1, 3, 4, "cr ct3 cs ot2"},
    {6, 5, true, false, true, false, {1, 2, 2, 2, 1}, 2, 4, 3, "ct2 cs or"},
    {14, 14, true, true, true, false, {1, 1, 1, 1, 1}, 2, 8, 16, "cs ct8 cr os"},
    {16, 16, true, false, true, false, {1, 1, 1, 1, 1}, 2, 8, 16, "os gs ot16 ct4"},
    {24, 24, false, true, false, true, {1, 1, 1, 1, 1}, 2, 4, 4, "ct8 cr or gs"},
    {33, 17, false, true, true, true, {1, 1, 1, 1, 1}, 1, 4, 8, "ct4 cx3 cs ot16 gt4"},
    {64, 64, false, true, true, false, {1, 1, 1, 1, 1}, 1, 2, 4, "cr ct8 ot16"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
    run_dcase(&cases[i], (int)i);
}

/* The whole product, with XYLEM_2D_FULL=1 (about 600 programs; too slow for every run):
 * each grid size in P/general (both turns), D (T_dl absent) and D (T_ru absent) modes and
 * the fused op, every form and tile 1, 2, 4, 8, 16, on both targets (tile 16 on the C
 * target where it fits). */
static void differential_full(void **state)
{
  (void)state;
  const char *on = getenv("XYLEM_2D_FULL");
  if (!on || strcmp(on, "1") != 0)
    skip();
  static const int sizes[][2] = {{1, 1}, {1, 7}, {2, 2}, {5, 3}, {8, 8}, {14, 14}, {16, 16},
                                 {24, 24}, {33, 17}, {64, 64}};
  int index = 100;
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    /* A full 16 x 16 tile's gating matrix alone is 256 KiB: more than the C target's stack
     * arrays allow (a clean device error, tested in cost_model); OpenCL on PoCL has room. */
    int tx = sizes[i][0] < 16 ? sizes[i][0] : 16, ty = sizes[i][1] < 16 ? sizes[i][1] : 16;
    bool c16 = tx * ty < 256;
    const char *forms = c16 ? "cr or cs os ct1 ot1 ct2 ot2 ct4 ot4 ct8 ot8 ct16 ot16"
                            : "cr or cs os ct1 ot1 ct2 ot2 ct4 ot4 ct8 ot8 ot16";
    const dcase variants[] = {
      {sizes[i][0], sizes[i][1], false, true, true, true, {1, 1, 1, 1, 1}, 2, 4, 8, forms},
      {sizes[i][0], sizes[i][1], false, false, true, true, {1, 1, 1, 1, 1}, 2, 4, 8, forms},
      {sizes[i][0], sizes[i][1], false, true, false, true, {1, 1, 1, 1, 1}, 2, 4, 8, forms},
      {sizes[i][0], sizes[i][1], true, true, true, false, {1, 1, 1, 1, 1}, 2, 4, 8, forms},
    };
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++)
      run_dcase(&variants[v], index++);
  }
}

/* Vector widths, register rows (also ones dividing nothing) and work-group sizes as a
 * CPU, a GPU and scalar code would get them: every schedule computes the same function. */
static void schedules(void **state)
{
  (void)state;
  gspec g = {.name = "sched_9x6", .B = 2, .X = 9, .Y = 6, .DK = 8, .DV = 16, .JQ = 1, .JK = 1,
             .JV = 1, .JT = 1, .JO = 1, .dl = true, .ru = true, .borders = true, .t_range = 0.5};
  gcase c;
  case_open(&c, &g);
  random_set(&c, "general", 31);
  random_set(&c, "P", 32);
  static const knobs ks[] = {{1, 1, 64, false}, {2, 1, 8, false}, {4, 2, 128, false},
                             {16, 4, 4, false}, {8, 3, 1, false}};
  static const struct { const char *form; int64_t chunk; } fs[] = {
    {"recurrent", 0}, {"tiled", 3}, {"single", 0}};
  for (size_t k = 0; k < sizeof ks / sizeof *ks; k++)
    for (size_t f = 0; f < 3; f++)
      check_form(&c, k % 2 ? XY_TARGET_OPENCL : XY_TARGET_C, fs[f].form, fs[f].chunk, &ks[k],
                 true);
  /* The portable schedule (what a package compiled for any device gets), on PoCL. */
  check_forms(&c, "ga gr gs gt4", true);
  case_close(&c);
  gspec v = {.name = "sched_vision", .B = 6, .X = 16, .Y = 16, .DK = 16, .DV = 16, .JQ = 1,
             .JK = 1, .JV = 1, .JT = 1, .JO = 1, .fused = true, .dl = true, .ru = true,
             .t_range = 0.5};
  case_open(&c, &v);
  random_set(&c, "P", 33);
  check_forms(&c, "ga gt8 ca", true);
  case_close(&c);
}

/* ------------------------------------------------------------------ closed forms */

static void closed_forms(void **state)
{
  (void)state;
  static const int sizes[] = {7, 64};
  for (int i = 0; i < 2; i++) {
    int n = sizes[i];
    char name[32];
    snprintf(name, sizeof name, "closed%d", n);
    gspec g = {.name = name, .B = 1, .X = n, .Y = n, .DK = 2, .DV = 2, .JQ = 1, .JK = 1, .JV = 1,
               .JT = 1, .JO = 1, .dl = true, .ru = true, .t_range = 0.5};
    gcase c;
    case_open(&c, &g);
    closed p = {.pmode = true, .a = 0.375, .sr = 0.25, .sd = 0.75, .ml = 0.5, .mu = 0.625, .d = 0.875};
    closed dm = {.pmode = false, .trl = 0.875, .tdu = -0.75, .tru = 0.5, .sr = 0.25, .sd = 0.75,
                 .ml = 0.5, .mu = 0.625, .d = 0.875};
    add_closed_form(&c, &p, "P-mode");
    add_closed_form(&c, &dm, "D-mode");
    check_forms(&c, n == 7 ? "cr ct2 cs or ot4 os" : "cr ct8 cs ot16", false);
    case_close(&c);
  }
}

/* ------------------------------------------------------------------ the cost model */

static int compile_with(const gspec *g, xy_compile_options *co, char *forms, size_t n,
                        xy_error *err)
{
  char *path = write_spec(g);
  assert_non_null(path);
  xy_model *m = NULL;
  if (xy_model_load(path, NULL, &m, err))
    fail_msg("%s", err->message);
  free(path);
  xy_program *prog = NULL;
  int rc = xy_compile(m, co, &prog, err);
  if (!rc)
    snprintf(forms, n, "%s", xy_program_forms(prog));
  xy_program_free(prog);
  xy_model_free(m);
  return rc;
}

static void cost_model(void **state)
{
  (void)state;
  gspec plain = {.name = "cm_plain", .B = 4, .X = 64, .Y = 64, .DK = 64, .DV = 64, .JQ = 1,
                 .JK = 1, .JV = 1, .JT = 1, .JO = 1, .dl = true, .ru = true, .borders = true,
                 .t_range = 0.5};
  gspec vision = {.name = "cm_vision", .B = 96, .X = 16, .Y = 16, .DK = 64, .DV = 64, .JQ = 1,
                  .JK = 1, .JV = 1, .JT = 1, .JO = 1, .fused = true, .dl = true, .ru = true,
                  .t_range = 0.5};
  xy_compile_options co;
  char forms[256];
  xy_error err;

  /* Forms of other graphs are usage errors that list the 2D forms. */
  static const char *const wrong[] = {"chunkwise", "levels", "graph"};
  for (int i = 0; i < 3; i++) {
    xy_compile_options_default(&co);
    co.form = wrong[i];
    assert_int_equal(compile_with(&plain, &co, forms, sizeof forms, &err), XY_E_USAGE);
    assert_non_null(strstr(err.message, "recurrent, tiled, single"));
  }
  /* A tile too large for local memory names the op, the bytes needed and available. */
  xy_compile_options_default(&co);
  co.form = "tiled";
  co.chunk = 64;
  assert_int_equal(compile_with(&plain, &co, forms, sizeof forms, &err), XY_E_DEVICE);
  assert_non_null(strstr(err.message, "'scan'"));
  assert_non_null(strstr(err.message, "bytes of local memory"));
  assert_non_null(strstr(err.message, "32768"));
  /* The vision layer's core is one attention-like pass everywhere. */
  xy_compile_options_default(&co);
  xy_device_limits_host(&co.device);
  co.device.max_alloc_bytes = 1ull << 30;
  assert_int_equal(compile_with(&vision, &co, forms, sizeof forms, &err), XY_OK);
  assert_non_null(strstr(forms, "single"));
  co.device.is_cpu = 0;
  co.device.is_gpu = 1;
  co.device.local_mem_bytes = 48u << 10;
  assert_int_equal(compile_with(&vision, &co, forms, sizeof forms, &err), XY_OK);
  assert_non_null(strstr(forms, "single"));
  /* A large plain grid: the wavefront on a CPU the columns keep busy; tiles that fit local
   * memory on a GPU and on a device nobody named; a tile asked for is a tile. */
  xy_compile_options_default(&co);
  xy_device_limits_host(&co.device);
  co.device.compute_units = 2;
  assert_int_equal(compile_with(&plain, &co, forms, sizeof forms, &err), XY_OK);
  assert_string_equal(forms, "scan: recurrent");
  co.device.is_cpu = 0;
  co.device.is_gpu = 1;
  co.device.local_mem_bytes = 48u << 10;
  assert_int_equal(compile_with(&plain, &co, forms, sizeof forms, &err), XY_OK);
  assert_non_null(strstr(forms, "tiled(tile="));
  xy_compile_options_default(&co);
  assert_int_equal(compile_with(&plain, &co, forms, sizeof forms, &err), XY_OK);
  assert_non_null(strstr(forms, "tiled(tile="));
  co.chunk = 5;
  assert_int_equal(compile_with(&plain, &co, forms, sizeof forms, &err), XY_OK);
  assert_string_equal(forms, "scan: tiled(tile=5)");
  print_message("  forced forms, tile limits and the automatic choices as expected\n");
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(cost_model),
    cmocka_unit_test(vectors_core2d_p),
    cmocka_unit_test(vectors_core2d_d),
    cmocka_unit_test(vectors_fused),
    cmocka_unit_test(closed_forms),
    cmocka_unit_test(differential),
    cmocka_unit_test(differential_full),
    cmocka_unit_test(schedules),
  };
  return cmocka_run_group_tests(tests, NULL, group_teardown);
}
