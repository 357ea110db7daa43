/* test_memory.c: memory_scan (Titans, TTT, TNT; spec tnt.md) against its definitions.
 *
 * vectors: every case of tests/data/tnt (made with the spec's float64 token loop and
 * checked by an independent chunk-parallel evaluation). The oracle matches every output,
 * final state and combined TNT output within 1e-12 relative to the array's largest value;
 * the memory_scan op through the interpreter likewise; the compiled kernels, every form
 * that applies, on OpenCL (PoCL) and the C target, within 1e-5 (linear memories) or 1e-4
 * (MLP memories, TTT) in the manifests' measure, final states included.
 *
 * differential: hand-built memory_scan modules on fresh random inputs against the
 * interpreter: chunk sizes 1 to 256, ragged lengths, resets, each read mode and Q-K
 * projection scope, momentum and decay on and off, biases, MLP memories, TTT, init zero,
 * streaming states in and out, degenerate gates, both forms, both targets, and the
 * portable schedule as for a 132-unit GPU (state in global memory where local memory is
 * small, value rows split over work-groups).
 *
 * streaming and shard_locality: the properties of spec §7.5 on the compiled kernels. */
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "interp.h"
#include "ir_build.h"
#include "memory_oracle.h"
#include "program.h"

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

/* ------------------------------------------------------------------ memory_scan modules */

/* A memory_scan over B sequences of L tokens and H heads, its schedule, and which optional
 * slots it has (eta, alpha, ln_gamma/ln_beta and ttt_offset follow the schedule). */
typedef struct mspec {
  int64_t B, L, H, DK, DV;
  ir_memory_attrs a;
  bool zero_init, state_in, state_out;
} mspec;

static int64_t weights_of(const mspec *s)
{
  mem_desc d = {.dk = s->DK, .dv = s->DV, .dh = s->a.hidden, .bias = s->a.bias};
  return mem_weights_count(&d);
}

static int64_t state_of(const mspec *s, mem_state_layout *lay)
{
  mem_desc d = {.dk = s->DK, .dv = s->DV, .dh = s->a.hidden, .bias = s->a.bias,
                .momentum = s->a.momentum, .ttt_lr = s->a.ttt_lr, .qkproj = s->a.qkproj};
  mem_state_layout_of(&d, lay);
  return lay->count;
}

/* The module; slot_input[s] is the model input feeding slot s (-1 when empty). Inputs come
 * in slot order; outputs are y, then state_out. */
static ir_module *memory_module(const mspec *s, int *slot_input)
{
  ir_module *m = ir_module_new("mem");
  assert_non_null(m);
  m->batch = s->B;
  mem_state_layout lay;
  int64_t NW = weights_of(s), NS = state_of(s, &lay);
  int64_t qs[] = {s->B, s->L, s->H, s->DK}, vs[] = {s->B, s->L, s->H, s->DV};
  int64_t gs[] = {s->B, s->L, s->H}, ws[] = {s->H, NW}, ls[] = {s->H, s->DV};
  int64_t os[] = {s->a.chunk}, ss[] = {s->B, s->H, NS};
  struct { bool on; int rank; const int64_t *d; } slots[] = {
    {true, 4, qs}, {true, 4, qs}, {true, 4, vs}, {true, 3, gs}, {s->a.momentum, 3, gs},
    {s->a.decay, 3, gs}, {!s->zero_init, 2, ws}, {s->a.ln_residual, 2, ls},
    {s->a.ln_residual, 2, ls}, {s->a.ttt_lr, 1, os}, {s->state_in, 3, ss},
  };
  int oi = ir_add_op(m, IR_OP_MEMORY_SCAN, "mem");
  assert_true(oi >= 0);
  const ir_op_info *info = ir_op_info_of(IR_OP_MEMORY_SCAN);
  int n_in = 0;
  for (int i = 0; i < MS_STATE + 1; i++) {
    slot_input[i] = -1;
    m->ops[oi].in[i] = -1;
    if (!slots[i].on)
      continue;
    slot_input[i] = n_in++;
    m->ops[oi].in[i] = irb_input(m, info->in_names[i], slots[i].rank, slots[i].d);
  }
  m->ops[oi].attr.memory = s->a;
  m->ops[oi].graph = -1;
  const char *outs[] = {"y", "state_out"};
  for (int o = 0; o < (s->state_out ? 2 : 1); o++) {
    ir_shape none = ir_shape_make(0, NULL);
    int t = ir_add_tensor(m, outs[o], &none, XY_F32, IR_VALUE);
    assert_true(t >= 0);
    m->tensors[t].producer = oi;
    m->ops[oi].out[o] = t;
  }
  xy_error err;
  if (ir_infer_shapes(m, &m->ops[oi], &err))
    fail_msg("%s", err.message);
  for (int o = 0; o < (s->state_out ? 2 : 1); o++)
    assert_true(ir_mark_output(m, m->ops[oi].out[o]));
  return m;
}

/* Whether the chunked form takes the schedule (the rest runs the token loop). */
static bool chunked_applies(const mspec *s)
{
  bool chunk_start = s->a.read == MEM_READ_CHUNK_START && !s->a.ttt_lr;
  return !s->state_in && (s->a.chunk <= 64 || chunk_start);
}

/* Compiles the model in every form that applies, for OpenCL (the detected device, and the
 * portable schedule when asked) and C, runs it on in, and checks each output against
 * ref[o] with the manifests' scaled error. Returns the worst error. */
static double check_forms(const char *what, const mspec *s, const xy_model *model,
                          float *const *in, double *const *ref, double tol, bool portable)
{
  size_t n_out = xy_model_num_outputs(model);
  float *got[2] = {NULL, NULL};
  xy_tensor_info t;
  for (size_t o = 0; o < n_out; o++) {
    xy_model_output(model, o, &t);
    got[o] = malloc(sizeof(float) * (t.count + 1));
    assert_non_null(got[o]);
  }
  double worst = 0;
  static const char *forms[] = {"recurrent", "chunkwise"};
  for (int f = 0; f < 2; f++) {
    if (f == 1 && !chunked_applies(s))
      continue;
    for (int tg = 0; tg < 3; tg++) {
      if (tg == 1 && !portable)
        continue;
      /* the portable schedule as for a large GPU: value rows split over groups */
      harness_case c = {.target = tg == 2 ? XY_TARGET_C : XY_TARGET_OPENCL, .form = forms[f],
                        .portable = tg == 1, .compute_units = tg == 1 ? 132 : 0};
      char msg[8192], fl[256];
      if (harness_execute(&c, model, in, got, fl, sizeof fl, msg, sizeof msg))
        fail_msg("%s, %s form: %s", what, forms[f], msg);
      for (size_t o = 0; o < n_out; o++) {
        xy_model_output(model, o, &t);
        double e = harness_scaled_error_f32(got[o], ref[o], t.count);
        if (!(e <= tol))
          fail_msg("%s, %s form, %s%s: %s has error %.3g above %g", what, forms[f],
                   tg == 2 ? "C" : "OpenCL", tg == 1 ? " (portable)" : "", t.name, e, tol);
        worst = e > worst ? e : worst;
      }
    }
  }
  for (size_t o = 0; o < n_out; o++)
    free(got[o]);
  return worst;
}

/* ------------------------------------------------------------------ vectors */

/* The case's schedule as memory_scan attributes. */
static ir_memory_attrs attrs_of(const mem_desc *d)
{
  ir_memory_attrs a = {.hidden = d->dh, .act = d->act, .bias = d->bias,
                       .ln_residual = d->ln_residual, .ln_eps = d->ln_eps,
                       .loss_scale = d->loss_scale, .ttt_lr = d->ttt_lr,
                       .ttt_base = d->ttt_base, .ttt_div = d->ttt_div,
                       .momentum = d->momentum, .decay = d->decay, .chunk = d->chunk,
                       .reset = d->reset, .read = d->read, .qkproj = d->qkproj};
  return a;
}

/* [B,H,L,n] (the files) to [B,L,H,n] (the op), as float. */
static float *to_op_layout(const vcase *c, const double *x, int64_t n)
{
  float *out = malloc(sizeof(float) * (size_t)(c->B * c->H * c->L * n + 1));
  assert_non_null(out);
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t h = 0; h < c->H; h++)
      for (int64_t t = 0; t < c->L; t++)
        for (int64_t i = 0; i < n; i++)
          out[((b * c->L + t) * c->H + h) * n + i] = (float)x[((b * c->H + h) * c->L + t) * n + i];
  return out;
}

static float *to_float(const double *x, int64_t n)
{
  float *out = malloc(sizeof(float) * (size_t)(n + 1));
  assert_non_null(out);
  for (int64_t i = 0; i < n; i++)
    out[i] = (float)x[i];
  return out;
}

/* The module of one case through the interpreter (within TOL of the oracle) and compiled
 * (within 1e-5 for linear memories, 1e-4 for MLP memories and TTT): y [B,H,L,dv] and the
 * final states [B,H,NS], both from the oracle's runs. */
static void check_kernels(const vcase *c, const mem_desc *d, const char *prefix,
                          double *const *streams, const double *init, const double *offsets,
                          const double *y, const double *states)
{
  mspec s = {.B = c->B, .L = c->L, .H = c->H, .DK = c->dk, .DV = c->dv, .a = attrs_of(d),
             .state_out = true};
  int slot[MS_STATE + 1];
  ir_module *m = memory_module(&s, slot);
  xy_model model = {m};
  int64_t NW = weights_of(&s), rows = c->B * c->H * c->L;
  float *fin[MS_STATE + 1] = {NULL};
  double *din[MS_STATE + 1] = {NULL};
  int64_t widths[] = {c->dk, c->dk, c->dv, 1, 1, 1};
  for (int i = 0; i <= MS_ALPHA; i++)
    if (slot[i] >= 0)
      fin[slot[i]] = to_op_layout(c, streams[i], widths[i]);
  fin[slot[MS_WINIT]] = to_float(init, c->H * NW);
  if (slot[MS_GAMMA] >= 0) {
    fin[slot[MS_GAMMA]] = to_float(streams[6], c->H * c->dv);
    fin[slot[MS_BETA]] = to_float(streams[7], c->H * c->dv);
  }
  if (slot[MS_OFFSET] >= 0)
    fin[slot[MS_OFFSET]] = to_float(offsets, d->chunk);
  size_t n_in = xy_model_num_inputs(&model);
  xy_tensor_info t;
  for (size_t i = 0; i < n_in; i++) {
    xy_model_input(&model, i, &t);
    din[i] = malloc(sizeof(double) * (t.count + 1));
    assert_non_null(din[i]);
    for (size_t j = 0; j < t.count; j++)
      din[i][j] = fin[i][j];
  }
  /* the references in the op's layout */
  mem_state_layout lay;
  int64_t NS = state_of(&s, &lay);
  double *ry = malloc(sizeof(double) * (size_t)(rows * c->dv));
  assert_non_null(ry);
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t h = 0; h < c->H; h++)
      for (int64_t tk = 0; tk < c->L; tk++)
        memcpy(ry + ((b * c->L + tk) * c->H + h) * c->dv, y + ((b * c->H + h) * c->L + tk) * c->dv,
               sizeof(double) * (size_t)c->dv);
  double *ref[2] = {ry, (double *)states};
  /* the op through the interpreter, on the float32-rounded inputs, against the oracle
   * (on the same rounded values the spec76 cases differ by float32 rounding, so their
   * bound is that of the kernels) */
  double *iy = malloc(sizeof(double) * (size_t)(rows * c->dv));
  double *is = malloc(sizeof(double) * (size_t)(c->B * c->H * NS));
  double *iout[2] = {iy, is};
  assert_true(iy && is);
  xy_error err;
  if (xy_model_interpret(&model, (const double *const *)din, iout, &err))
    fail_msg("%s: interpreter: %s", c->dir, err.message);
  bool exact = strstr(c->dir, "spec76") == NULL;
  double lim = d->dh > 0 || d->ttt_lr ? 1e-4 : 1e-5;
  double ie = harness_scaled_error(iy, ry, (size_t)(rows * c->dv));
  double ise = harness_scaled_error(is, states, (size_t)(c->B * c->H * NS));
  if (!(ie <= (exact ? TOL : lim) && ise <= (exact ? TOL : lim)))
    fail_msg("%s %s: memory_scan's interpreter differs from the oracle by %.3g (y), %.3g (state)",
             c->dir, prefix, ie, ise);
  char what[1400];
  snprintf(what, sizeof what, "%s %s", strrchr(c->dir, '/') + 1, prefix);
  /* the reference cases on the detected device and C; the random schedules below also
   * run the portable one (it is what the suite's time allows under ASan) */
  double worst = check_forms(what, &s, &model, fin, ref, lim, false);
  print_message("  %-28s kernels (%s) worst error %.3g (bound %g)\n", what,
                chunked_applies(&s) ? "recurrent, chunkwise" : "recurrent", worst, lim);
  for (size_t i = 0; i < n_in; i++) {
    free(fin[i]);
    free(din[i]);
  }
  free(ry);
  free(iy);
  free(is);
  ir_module_free(m);
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
  double *states = malloc(sizeof(double) * (size_t)(runs * lay.count));
  assert_true(q && k && v && theta && y && wf && mf && pf && states);
  for (int64_t r = 0; r < runs; r++) {
    int64_t h = r % c->H;
    mem_streams st = {q + r * L * c->dk, k + r * L * c->dk, v + r * L * c->dv, theta + r * L,
                      eta ? eta + r * L : NULL, alpha ? alpha + r * L : NULL,
                      gamma ? gamma + h * c->dv : NULL, beta ? beta + h * c->dv : NULL};
    xy_error err;
    double *fin = states + r * lay.count;
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
  double *streams[] = {q, k, v, theta, eta, alpha, gamma, beta};
  check_kernels(c, &d, prefix[0] ? prefix : "(one module)", streams, init, offsets, y, states);
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
  free(states);
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


/* ------------------------------------------------------------------ differential */

typedef enum gates { GATES_RANDOM, GATES_ETA0, GATES_ALPHA0, GATES_ALPHA1 } gates;

/* Fresh inputs for a module: unit-norm keys and queries (as the layers feed them), gates
 * in their domains (or degenerate), small initial weights, and for state_in a random
 * state whose phase is a valid integer different per (batch, head). */
static void random_inputs(const mspec *s, const xy_model *model, const int *slot, gates g,
                          uint64_t seed, float **fin, double **din)
{
  xy_rng rng;
  xy_rng_seed(&rng, seed);
  size_t n_in = xy_model_num_inputs(model);
  xy_tensor_info t;
  for (int sl = 0; sl <= MS_STATE; sl++) {
    int i = slot[sl];
    if (i < 0)
      continue;
    xy_model_input(model, (size_t)i, &t);
    fin[i] = malloc(sizeof(float) * (t.count + 1));
    assert_non_null(fin[i]);
    double lo = -1, hi = 1;
    if (sl == MS_THETA)
      lo = 0.0, hi = s->a.ttt_lr ? 1.0 : 0.4;
    if (sl == MS_ETA)
      lo = 0.2, hi = 0.95;
    if (sl == MS_ALPHA)
      lo = 0.0, hi = 0.2;
    if (sl == MS_WINIT || sl == MS_STATE)
      lo = -0.3, hi = 0.3;
    if (sl == MS_GAMMA)
      lo = 0.6, hi = 1.4;
    if (sl == MS_BETA || sl == MS_OFFSET)
      lo = -0.3, hi = 0.3;
    for (size_t j = 0; j < t.count; j++)
      fin[i][j] = (float)xy_rng_uniform(&rng, lo, hi);
    if (sl == MS_ETA && g == GATES_ETA0)
      memset(fin[i], 0, sizeof(float) * t.count);
    if (sl == MS_ALPHA && (g == GATES_ALPHA0 || g == GATES_ALPHA1))
      for (size_t j = 0; j < t.count; j++)
        fin[i][j] = g == GATES_ALPHA0 ? 0.0f : 1.0f;
    if (sl == MS_Q || sl == MS_K) /* unit rows */
      for (size_t r = 0; r < t.count / (size_t)s->DK; r++) {
        double n = 0;
        for (int64_t c = 0; c < s->DK; c++)
          n += (double)fin[i][r * (size_t)s->DK + (size_t)c] * fin[i][r * (size_t)s->DK + (size_t)c];
        for (int64_t c = 0; c < s->DK; c++)
          fin[i][r * (size_t)s->DK + (size_t)c] /= (float)sqrt(n);
      }
    if (sl == MS_STATE) {
      mem_state_layout lay;
      int64_t NS = state_of(s, &lay), period = s->a.reset > 0 ? s->a.reset : s->a.chunk;
      for (int64_t r = 0; r < s->B * s->H; r++)
        fin[i][r * NS + lay.phase] = (float)((r * 5 + 3) % period);
    }
  }
  for (size_t i = 0; i < n_in; i++) {
    xy_model_input(model, i, &t);
    din[i] = malloc(sizeof(double) * (t.count + 1));
    assert_non_null(din[i]);
    for (size_t j = 0; j < t.count; j++)
      din[i][j] = fin[i][j];
  }
}

typedef struct dcase {
  const char *what;
  mspec s;
  gates g;
} dcase;

/* The interpreter's outputs for the inputs, then every form and target against them. */
static double run_differential(const dcase *c, uint64_t seed)
{
  int slot[MS_STATE + 1];
  ir_module *m = memory_module(&c->s, slot);
  xy_model model = {m};
  float *fin[MS_STATE + 1] = {NULL};
  double *din[MS_STATE + 1] = {NULL}, *ref[2] = {NULL, NULL};
  random_inputs(&c->s, &model, slot, c->g, seed, fin, din);
  size_t n_out = xy_model_num_outputs(&model), n_in = xy_model_num_inputs(&model);
  xy_tensor_info t;
  for (size_t o = 0; o < n_out; o++) {
    xy_model_output(&model, o, &t);
    ref[o] = malloc(sizeof(double) * (t.count + 1));
    assert_non_null(ref[o]);
  }
  xy_error err;
  if (xy_model_interpret(&model, (const double *const *)din, ref, &err))
    fail_msg("%s: interpreter: %s", c->what, err.message);
  double tol = c->s.a.hidden > 0 || c->s.a.ttt_lr ? 1e-4 : 1e-5;
  double worst = check_forms(c->what, &c->s, &model, fin, ref, tol, true);
  for (size_t i = 0; i < n_in; i++) {
    free(fin[i]);
    free(din[i]);
  }
  for (size_t o = 0; o < n_out; o++)
    free(ref[o]);
  ir_module_free(m);
  return worst;
}

static ir_memory_attrs titans(int64_t chunk)
{
  ir_memory_attrs a = {.loss_scale = 1.0, .chunk = chunk, .read = MEM_READ_INCLUSIVE,
                       .momentum = true, .decay = true, .ln_eps = 1e-6};
  return a;
}

static void differential(void **state)
{
  (void)state;
  dcase cases[40];
  int n = 0;
  static const int64_t chunks[] = {1, 2, 4, 8, 16, 64};
  for (size_t i = 0; i < XY_ARRAY_LEN(chunks); i++) /* L = 100 is ragged from chunk 8 */
    cases[n++] = (dcase){"titans, chunk sweep", {2, 100, 3, 8, 12, titans(chunks[i]), false, false, false}, GATES_RANDOM};
  for (int i = 0; i < n; i++) {
    static char names[6][48];
    snprintf(names[i], sizeof names[i], "titans chunk %lld L=100", (long long)chunks[i]);
    cases[i].what = names[i];
  }
  dcase more[] = {
    {"reset 16 chunk 8, qkproj shard, L=37", {2, 37, 2, 8, 8, titans(8), false, false, false}, GATES_RANDOM},
    {"qkproj chunk 4, exclusive, decay only", {1, 29, 2, 6, 5, titans(4), false, false, false}, GATES_RANDOM},
    {"chunk_start read, momentum only, chunk 16", {2, 50, 1, 8, 8, titans(16), false, false, false}, GATES_RANDOM},
    {"reset 8 chunk 8, qkproj shard, exclusive, plain GD", {1, 40, 2, 8, 8, titans(8), false, false, false}, GATES_RANDOM},
    {"bias, chunk 4", {2, 23, 2, 8, 4, titans(4), false, false, false}, GATES_RANDOM},
    {"TTT-linear: ln_residual, bias, lr matrix, chunk 16", {2, 45, 2, 8, 8, titans(16), false, false, false}, GATES_RANDOM},
    {"MLP hidden 16 gelu, chunk 4", {1, 30, 2, 8, 8, titans(4), false, false, false}, GATES_RANDOM},
    {"MLP silu bias ln_residual, reset 8, qkproj, exclusive", {1, 26, 2, 6, 6, titans(4), false, false, false}, GATES_RANDOM},
    {"init zero, chunk 2", {2, 19, 2, 4, 4, titans(2), false, false, false}, GATES_RANDOM},
    {"streaming state in and out, chunk 4 reset 12, qkproj chunk", {2, 33, 2, 8, 8, titans(4), false, false, false}, GATES_RANDOM},
    {"state out, chunked form, chunk 8 reset 16 qkproj shard", {2, 40, 2, 8, 8, titans(8), false, false, false}, GATES_RANDOM},
    {"DK=DV=64, chunk 64, L=200", {1, 200, 2, 64, 64, titans(64), false, false, false}, GATES_RANDOM},
    {"chunk_start read, chunk 128 (error tiles), L=300", {1, 300, 2, 16, 8, titans(128), false, false, true}, GATES_RANDOM},
    {"TNT global: chunk 256, chunk_start, plain GD, bias, L=600", {1, 600, 2, 8, 8, titans(256), false, false, false}, GATES_RANDOM},
    {"MLP hidden 32, chunk_start, chunk 128 (tiles), plain GD", {1, 300, 2, 8, 8, titans(128), false, false, true}, GATES_RANDOM},
    {"TTT-MLP: ln_residual, bias, lr matrix, hidden 16, chunk 8", {1, 37, 2, 8, 8, titans(8), false, false, false}, GATES_RANDOM},
    {"MLP DK=DV=64 hidden 256 (state in global memory), chunk 16", {1, 40, 2, 64, 64, titans(16), false, false, false}, GATES_RANDOM},
    {"value rows sliced (portable), state out, bias, reset 16 qkproj shard", {1, 40, 1, 16, 32, titans(8), false, false, true}, GATES_RANDOM},
    {"value rows sliced (portable), chunk_start chunk 128, state out", {1, 300, 1, 16, 32, titans(128), false, false, true}, GATES_RANDOM},
    {"degenerate: eta = 0 (decayed plain GD)", {1, 24, 2, 8, 8, titans(4), false, false, false}, GATES_ETA0},
    {"degenerate: alpha = 0 (pure momentum)", {1, 24, 2, 8, 8, titans(4), false, false, false}, GATES_ALPHA0},
    {"degenerate: alpha = 1 (wiped every token)", {1, 24, 2, 8, 8, titans(4), false, false, false}, GATES_ALPHA1},
  };
  int k = 0;
  more[k].s.a.reset = 16, more[k++].s.a.qkproj = MEM_QK_SHARD;
  more[k].s.a.qkproj = MEM_QK_CHUNK, more[k].s.a.read = MEM_READ_EXCLUSIVE, more[k++].s.a.momentum = false;
  more[k].s.a.read = MEM_READ_CHUNK_START, more[k++].s.a.decay = false;
  more[k].s.a.reset = 8, more[k].s.a.qkproj = MEM_QK_SHARD, more[k].s.a.read = MEM_READ_EXCLUSIVE;
  more[k].s.a.momentum = more[k].s.a.decay = false, k++;
  more[k++].s.a.bias = true;
  more[k].s.a.ln_residual = more[k].s.a.bias = more[k].s.a.ttt_lr = true;
  more[k].s.a.momentum = more[k].s.a.decay = false, more[k].s.a.loss_scale = 0.5;
  more[k].s.a.ttt_base = 1.0, more[k++].s.a.ttt_div = 8.0;
  more[k++].s.a.hidden = 16;
  more[k].s.a.hidden = 12, more[k].s.a.act = MEM_ACT_SILU, more[k].s.a.bias = true;
  more[k].s.a.ln_residual = true, more[k].s.a.reset = 8, more[k].s.a.qkproj = MEM_QK_SHARD;
  more[k++].s.a.read = MEM_READ_EXCLUSIVE;
  more[k++].s.zero_init = true;
  more[k].s.a.reset = 12, more[k].s.a.qkproj = MEM_QK_CHUNK;
  more[k].s.state_in = more[k].s.state_out = true, k++;
  more[k].s.a.reset = 16, more[k].s.a.qkproj = MEM_QK_SHARD, more[k++].s.state_out = true;
  k++; /* DK = DV = 64 */
  more[k++].s.a.read = MEM_READ_CHUNK_START;
  more[k].s.a.read = MEM_READ_CHUNK_START, more[k].s.a.bias = true;
  more[k].s.a.momentum = more[k].s.a.decay = false, k++;
  more[k].s.a.hidden = 32, more[k].s.a.read = MEM_READ_CHUNK_START;
  more[k].s.a.momentum = more[k].s.a.decay = false, k++;
  more[k].s.a.hidden = 16, more[k].s.a.ln_residual = more[k].s.a.bias = more[k].s.a.ttt_lr = true;
  more[k].s.a.momentum = more[k].s.a.decay = false, more[k].s.a.loss_scale = 0.5;
  more[k].s.a.ttt_base = 0.1, more[k++].s.a.ttt_div = 8.0;
  more[k++].s.a.hidden = 256;
  more[k].s.a.bias = true, more[k].s.a.reset = 16, more[k++].s.a.qkproj = MEM_QK_SHARD;
  more[k++].s.a.read = MEM_READ_CHUNK_START;
  for (size_t i = 0; i < XY_ARRAY_LEN(more); i++)
    cases[n++] = more[i];
  for (int i = 0; i < n; i++) { /* a fresh input set per case */
    double worst = run_differential(&cases[i], 1000 * (uint64_t)i + 1);
    print_message("  %-58s %-21s worst error %.3g\n", cases[i].what,
                  chunked_applies(&cases[i].s) ? "recurrent, chunkwise" : "recurrent", worst);
  }
}

/* §7.5.4 on the kernels: with resets, perturbing a token of one shard changes the outputs
 * of that shard from that token on and nothing else, bit for bit (each shard has its own
 * work-group), in both forms and on both targets. */
static void shard_locality(void **state)
{
  (void)state;
  mspec s = {1, 48, 2, 8, 8, titans(4), false, false, false};
  s.a.reset = 16;
  s.a.qkproj = MEM_QK_SHARD;
  int slot[MS_STATE + 1];
  ir_module *m = memory_module(&s, slot);
  xy_model model = {m};
  float *fin[MS_STATE + 1] = {NULL};
  double *din[MS_STATE + 1] = {NULL};
  random_inputs(&s, &model, slot, GATES_RANDOM, 99, fin, din);
  xy_tensor_info t;
  xy_model_output(&model, 0, &t);
  float *y0 = malloc(sizeof(float) * t.count), *y1 = malloc(sizeof(float) * t.count);
  assert_true(y0 && y1);
  int64_t row = s.H * s.DV; /* floats per token of y */
  static const char *forms[] = {"recurrent", "chunkwise"};
  for (int f = 0; f < 2; f++)
    for (int tg = 0; tg < 2; tg++) {
      harness_case c = {.target = tg ? XY_TARGET_C : XY_TARGET_OPENCL, .form = forms[f]};
      char msg[8192];
      float *o0[1] = {y0}, *o1[1] = {y1};
      if (harness_execute(&c, &model, fin, o0, NULL, 0, msg, sizeof msg))
        fail_msg("%s", msg);
      float saved = fin[slot[MS_V]][20 * s.H * s.DV]; /* a value of token 20, shard 1 */
      fin[slot[MS_V]][20 * s.H * s.DV] += 0.5f;
      int rc = harness_execute(&c, &model, fin, o1, NULL, 0, msg, sizeof msg);
      fin[slot[MS_V]][20 * s.H * s.DV] = saved;
      if (rc)
        fail_msg("%s", msg);
      for (int64_t tk = 0; tk < s.L; tk++) {
        bool same = memcmp(y0 + tk * row, y1 + tk * row, sizeof(float) * (size_t)row) == 0;
        if (same != (tk < 20 || tk >= 32)) /* changed: tokens 20..31 of shard 1 only */
          fail_msg("%s, %s: token %lld %s", forms[f], tg ? "C" : "OpenCL", (long long)tk,
                   same ? "did not change" : "changed outside the perturbed shard");
      }
    }
  print_message("  shard locality: a change in shard 1 reaches tokens 20-31 only, both forms\n");
  for (size_t i = 0; i < xy_model_num_inputs(&model); i++) {
    free(fin[i]);
    free(din[i]);
  }
  free(y0);
  free(y1);
  ir_module_free(m);
}

/* §7.5.7 on the kernels: a sequence in two calls, the state handed from the first to the
 * second, equals one call, for cuts inside a chunk and inside a shard. */
static void streaming(void **state)
{
  (void)state;
  mspec whole = {2, 40, 2, 8, 8, titans(4), false, false, true};
  whole.a.reset = 16;
  whole.a.qkproj = MEM_QK_SHARD;
  static const int64_t cuts[] = {13, 16, 21};
  for (size_t ci = 0; ci < XY_ARRAY_LEN(cuts); ci++) {
    int slot_w[MS_STATE + 1], slot_a[MS_STATE + 1], slot_b[MS_STATE + 1];
    mspec first = whole, second = whole;
    first.L = cuts[ci];
    second.L = whole.L - cuts[ci];
    second.state_in = true;
    ir_module *mw = memory_module(&whole, slot_w), *ma = memory_module(&first, slot_a);
    ir_module *mb = memory_module(&second, slot_b);
    xy_model w = {mw}, a = {ma}, bm = {mb};
    float *fin[MS_STATE + 1] = {NULL};
    double *din[MS_STATE + 1] = {NULL};
    random_inputs(&whole, &w, slot_w, GATES_RANDOM, 77 + ci, fin, din);
    /* the pieces' inputs: token ranges of the streams, the same weights */
    int64_t rowsz[] = {whole.DK, whole.DK, whole.DV, 1, 1, 1};
    float *pa[MS_STATE + 1] = {NULL}, *pb[MS_STATE + 1] = {NULL};
    for (int sl = 0; sl <= MS_STATE; sl++) {
      if (slot_w[sl] < 0)
        continue;
      if (sl <= MS_ALPHA) {
        int64_t per = whole.H * rowsz[sl];
        pa[slot_a[sl]] = malloc(sizeof(float) * (size_t)(whole.B * first.L * per));
        pb[slot_b[sl]] = malloc(sizeof(float) * (size_t)(whole.B * second.L * per));
        for (int64_t bb = 0; bb < whole.B; bb++) {
          memcpy(pa[slot_a[sl]] + bb * first.L * per, fin[slot_w[sl]] + bb * whole.L * per,
                 sizeof(float) * (size_t)(first.L * per));
          memcpy(pb[slot_b[sl]] + bb * second.L * per,
                 fin[slot_w[sl]] + (bb * whole.L + first.L) * per,
                 sizeof(float) * (size_t)(second.L * per));
        }
      } else {
        pa[slot_a[sl]] = fin[slot_w[sl]];
        pb[slot_b[sl]] = fin[slot_w[sl]];
      }
    }
    xy_tensor_info ty, ts;
    xy_model_output(&w, 0, &ty);
    xy_model_output(&w, 1, &ts);
    float *yw = malloc(sizeof(float) * ty.count), *sw = malloc(sizeof(float) * ts.count);
    float *ya = malloc(sizeof(float) * ty.count), *yb = malloc(sizeof(float) * ty.count);
    float *sa = malloc(sizeof(float) * ts.count), *sb = malloc(sizeof(float) * ts.count);
    assert_true(yw && sw && ya && yb && sa && sb);
    pb[slot_b[MS_STATE]] = sa; /* the first call's final state enters the second */
    for (int tg = 0; tg < 2; tg++) {
      harness_case c = {.target = tg ? XY_TARGET_C : XY_TARGET_OPENCL, .form = "recurrent"};
      char msg[8192];
      float *ow[2] = {yw, sw}, *oa[2] = {ya, sa}, *ob[2] = {yb, sb};
      if (harness_execute(&c, &w, fin, ow, NULL, 0, msg, sizeof msg) ||
          harness_execute(&c, &a, pa, oa, NULL, 0, msg, sizeof msg) ||
          harness_execute(&c, &bm, pb, ob, NULL, 0, msg, sizeof msg))
        fail_msg("streaming: %s", msg);
      double e = 0, big = 1;
      for (int64_t bb = 0; bb < whole.B; bb++)
        for (int64_t tk = 0; tk < whole.L; tk++)
          for (int64_t j = 0; j < whole.H * whole.DV; j++) {
            int64_t per = whole.H * whole.DV;
            float got = tk < first.L ? ya[(bb * first.L + tk) * per + j]
                                     : yb[(bb * second.L + tk - first.L) * per + j];
            float want = yw[(bb * whole.L + tk) * per + j];
            e = fmax(e, fabs((double)got - want));
            big = fmax(big, fabs((double)want));
          }
      for (size_t j = 0; j < ts.count; j++) {
        e = fmax(e, fabs((double)sb[j] - sw[j]));
        big = fmax(big, fabs((double)sw[j]));
      }
      if (!(e / big <= 1e-5))
        fail_msg("streaming, cut at %lld, %s: two calls differ from one by %.3g",
                 (long long)cuts[ci], tg ? "C" : "OpenCL", e / big);
    }
    print_message("  streaming: cut at %2lld of %lld (chunk 4, reset 16) equals one call\n",
                  (long long)cuts[ci], (long long)whole.L);
    for (int sl = 0; sl <= MS_ALPHA; sl++)
      if (slot_w[sl] >= 0) {
        free(pa[slot_a[sl]]);
        free(pb[slot_b[sl]]);
      }
    for (size_t i = 0; i < xy_model_num_inputs(&w); i++) {
      free(fin[i]);
      free(din[i]);
    }
    free(yw);
    free(sw);
    free(ya);
    free(yb);
    free(sa);
    free(sb);
    ir_module_free(mw);
    ir_module_free(ma);
    ir_module_free(mb);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(vectors),
    cmocka_unit_test(differential),
    cmocka_unit_test(streaming),
    cmocka_unit_test(shard_locality),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
