/* test_memory_oracle.c: the token-loop oracle of test-time memories against the numbers
 * printed in spec tnt.md §7.6 (Titans linear for several chunk sizes, plain online GD, the
 * TNT toy), the MLP gradient against finite differences, and the rules of the schedule. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "memory_oracle.h"

enum { L = 16, D = 3 };

typedef struct toy {
  double q[L][D], k[L][D], v[L][D], theta[L], eta[L], alpha[L];
} toy;

static void normalise(double *x)
{
  double n = 0;
  for (int i = 0; i < D; i++)
    n += x[i] * x[i];
  n = sqrt(n);
  for (int i = 0; i < D; i++)
    x[i] /= n;
}

/* §7.6's inputs. */
static void make_toy(toy *s)
{
  for (int t = 0; t < L; t++) {
    for (int i = 0; i < D; i++) {
      s->k[t][i] = sin(1.0 + 0.37 * t + 1.1 * i);
      s->q[t][i] = cos(0.5 + 0.23 * t + 0.7 * i);
      s->v[t][i] = sin(2.0 + 0.41 * t - 0.9 * i);
    }
    normalise(s->k[t]);
    normalise(s->q[t]);
    s->theta[t] = 0.1 + 0.05 * (1.0 + sin(0.3 * t));
    s->eta[t] = 0.5 + 0.4 * sin(0.2 * t + 0.1);
    s->alpha[t] = 0.05 + 0.04 * cos(0.15 * t);
  }
}

/* W0(s)[i][j] = s (((i - j) mod 3) - 1) + 0.2 [i = j]. */
static void w0(double s, double *w)
{
  for (int i = 0; i < D; i++)
    for (int j = 0; j < D; j++)
      w[i * D + j] = s * ((((i - j) % 3 + 3) % 3) - 1) + (i == j ? 0.2 : 0.0);
}

static mem_streams streams(const toy *s)
{
  mem_streams st = {.q = &s->q[0][0], .k = &s->k[0][0], .v = &s->v[0][0], .theta = s->theta,
                    .eta = s->eta, .alpha = s->alpha};
  return st;
}

static mem_desc linear(int64_t chunk, bool momentum_decay)
{
  mem_desc d = {.dk = D, .dv = D, .loss_scale = 1.0, .chunk = chunk,
                .read = MEM_READ_INCLUSIVE, .momentum = momentum_decay, .decay = momentum_decay};
  return d;
}

static void expect_row(const double *got, double a, double b, double c)
{
  const double want[3] = {a, b, c};
  for (int i = 0; i < 3; i++)
    if (!(fabs(got[i] - want[i]) <= 1e-11))
      fail_msg("component %d: %.12f, expected %.12f", i, got[i], want[i]);
}

static void titans_chunks(void **state)
{
  (void)state;
  toy s;
  make_toy(&s);
  assert_true(fabs(s.k[0][0] - 0.697215924165) < 1e-12 &&
              fabs(s.k[0][2] + 0.048366946801) < 1e-12);
  static const double want[5][3] = {
    {-0.360660487164, 0.293461314559, 0.517044803762},
    {-0.543801166631, 0.836357973728, 1.252732077395},
    {0.121711219148, 2.282428093837, 2.085518503601},
    {1.963343880793, 5.290812937775, 3.479745173530},
    {1.277261083733, -6.777002710102, -8.348388387826},
  };
  double init[D * D], y[L][D], fin[3 * D * D + 1], *wf = fin; /* W comes first */
  w0(0.1, init);
  mem_streams st = streams(&s);
  xy_error err;
  for (int c = 0; c < 5; c++) {
    mem_desc d = linear(1 << c, true);
    mem_state_init(&d, init, fin);
    assert_int_equal(mem_oracle_run(&d, L, &st, init, fin, &y[0][0], &err), XY_OK);
    expect_row(y[15], want[c][0], want[c][1], want[c][2]);
    if (c == 2) { /* the full C = 4 trace */
      expect_row(y[0], 0.316194797737, 0.222216155502, 0.085771763010);
      expect_row(y[3], 0.231579121001, 0.927117660509, 0.819555323799);
      expect_row(y[7], -2.245752501089, -1.339049684677, 0.663946789346);
      expect_row(y[11], -1.010956328127, 1.066079451426, 1.828277924666);
      expect_row(wf + 0, -0.000936756595, 0.226302241984, 0.209476088844);
      expect_row(wf + 3, -2.073239764399, -1.218424779909, 0.971133949349);
      expect_row(wf + 6, -1.946238176197, -1.336232345524, 0.803833708510);
    }
  }
  mem_desc gd = linear(1, false);
  assert_int_equal(mem_oracle_run(&gd, L, &st, init, NULL, &y[0][0], &err), XY_OK);
  expect_row(y[15], 0.216392137538, -0.564890705956, -0.925082022167);
}

/* §7.6 (b): a global module (C 8, chunk-start read) and two locals (C 2 and 4, reset 8,
 * Q-K projection per shard), plain GD, summed. */
static void tnt_toy(void **state)
{
  (void)state;
  toy s;
  make_toy(&s);
  mem_streams st = streams(&s);
  mem_desc global = linear(8, false), local2 = linear(2, false), local4 = linear(4, false);
  global.read = MEM_READ_CHUNK_START;
  local2.reset = local4.reset = 8;
  local2.qkproj = local4.qkproj = MEM_QK_SHARD;
  double ig[D * D], i2[D * D], i4[D * D], yg[L][D], y2[L][D], y4[L][D], sum[L][D];
  w0(0.05, ig);
  w0(0.2, i2);
  w0(-0.1, i4);
  xy_error err;
  assert_int_equal(mem_oracle_run(&global, L, &st, ig, NULL, &yg[0][0], &err), XY_OK);
  assert_int_equal(mem_oracle_run(&local2, L, &st, i2, NULL, &y2[0][0], &err), XY_OK);
  assert_int_equal(mem_oracle_run(&local4, L, &st, i4, NULL, &y4[0][0], &err), XY_OK);
  for (int t = 0; t < L; t++)
    for (int i = 0; i < D; i++)
      sum[t][i] = yg[t][i] + y2[t][i] + y4[t][i];
  expect_row(sum[0], 0.805316428287, 0.640577325844, 0.134943906082);
  expect_row(sum[7], -7.990629851861, -4.111832181237, 2.740996726153);
  expect_row(sum[8], -2.080385855026, -1.455757763652, 0.167478779480);
  expect_row(sum[15], 1.840116327108, -5.774136834981, -9.240161681166);
  expect_row(yg[8], -1.390099293466, -0.708194330432, 0.433045374540);
}

/* c |f(k; w) - v|^2 for the MLP (W1, W2, then b1, b2 with biases), computed here
 * independently of the oracle. */
static double mlp_loss(const mem_desc *d, const double *w, const double *k, const double *v)
{
  double h[16], loss = 0;
  const double *w1 = w, *w2 = w + d->dh * d->dk, *b = w2 + d->dv * d->dh;
  for (int64_t i = 0; i < d->dh; i++) {
    double z = d->bias ? b[i] : 0;
    for (int64_t j = 0; j < d->dk; j++)
      z += w1[i * d->dk + j] * k[j];
    h[i] = d->act == MEM_ACT_SILU
             ? z / (1 + exp(-z))
             : 0.5 * z * (1 + tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
  }
  for (int64_t i = 0; i < d->dv; i++) {
    double p = d->bias ? b[d->dh + i] : 0;
    for (int64_t j = 0; j < d->dh; j++)
      p += w2[i * d->dh + j] * h[j];
    loss += (p - v[i]) * (p - v[i]);
  }
  return d->loss_scale * loss;
}

/* One token of plain GD moves the weights by -theta g exactly: g against central
 * differences of the loss, for both activations, with and without biases. */
static void mlp_gradient(void **state)
{
  (void)state;
  for (int a = 0; a < 4; a++) {
    mem_desc d = {.dk = 3, .dv = 2, .dh = 5, .act = a % 2 ? MEM_ACT_SILU : MEM_ACT_GELU_TANH,
                  .loss_scale = 0.5, .chunk = 1, .read = MEM_READ_INCLUSIVE, .bias = a >= 2};
    int nw = (int)mem_weights_count(&d);
    assert_int_equal(nw, d.bias ? 32 : 25);
    double w[32], k[3] = {0.3, -0.8, 0.5}, v[2] = {0.7, -0.2}, q[3] = {1, 0, 0};
    double theta = 0.25, y[2], fin[3 * 32 + 1], *wf = fin;
    for (int i = 0; i < nw; i++)
      w[i] = sin(0.7 * i + 0.3);
    mem_streams st = {.q = q, .k = k, .v = v, .theta = &theta};
    xy_error err;
    mem_state_init(&d, w, fin);
    assert_int_equal(mem_oracle_run(&d, 1, &st, w, fin, y, &err), XY_OK);
    for (int i = 0; i < nw; i++) {
      double wp[32], wm[32], h = 1e-6;
      memcpy(wp, w, sizeof w);
      memcpy(wm, w, sizeof w);
      wp[i] += h;
      wm[i] -= h;
      double fd = (mlp_loss(&d, wp, k, v) - mlp_loss(&d, wm, k, v)) / (2 * h);
      double g = (w[i] - wf[i]) / theta;
      if (!(fabs(g - fd) <= 1e-8))
        fail_msg("case %d weight %d: gradient %.12g, finite difference %.12g", a, i, g, fd);
    }
  }
}

/* The properties of §7.4-7.5 the oracle must have by itself: a reset makes shards
 * independent; with a chunk as long as the sequence and a chunk-start read nothing is
 * learnt before the reads; exclusive reads lag inclusive ones by one token. */
static void schedule_properties(void **state)
{
  (void)state;
  toy s, t2;
  make_toy(&s);
  mem_streams st = streams(&s);
  double init[D * D], y[L][D], y2[L][D];
  w0(0.1, init);
  xy_error err;
  mem_desc d = linear(2, true);
  d.reset = 8;
  assert_int_equal(mem_oracle_run(&d, L, &st, init, NULL, &y[0][0], &err), XY_OK);
  t2 = s;
  for (int i = 0; i < D; i++) /* perturb the first shard */
    t2.v[3][i] += 0.5;
  mem_streams st2 = streams(&t2);
  assert_int_equal(mem_oracle_run(&d, L, &st2, init, NULL, &y2[0][0], &err), XY_OK);
  for (int t = 8; t < L; t++)
    for (int i = 0; i < D; i++)
      assert_true(y2[t][i] == y[t][i]);
  assert_true(y2[3][0] != y[3][0]);

  mem_desc once = linear(L, false);
  once.read = MEM_READ_CHUNK_START;
  assert_int_equal(mem_oracle_run(&once, L, &st, init, NULL, &y[0][0], &err), XY_OK);
  for (int t = 0; t < L; t++) /* every read sees W_init */
    for (int i = 0; i < D; i++) {
      double want = 0;
      for (int j = 0; j < D; j++)
        want += init[i * D + j] * s.q[t][j];
      assert_true(fabs(y[t][i] - want) < 1e-15);
    }

  mem_desc incl = linear(1, false), excl = linear(1, false);
  excl.read = MEM_READ_EXCLUSIVE;
  double fin[2 * D * D + 1], *wf = fin;
  mem_state_init(&incl, init, fin);
  assert_int_equal(mem_oracle_run(&incl, L - 1, &st, init, fin, &y[0][0], &err), XY_OK);
  assert_int_equal(mem_oracle_run(&excl, L, &st, init, NULL, &y2[0][0], &err), XY_OK);
  for (int i = 0; i < D; i++) { /* the exclusive read of token 15 is W[15] q_15 */
    double want = 0;
    for (int j = 0; j < D; j++)
      want += wf[i * D + j] * s.q[15][j];
    assert_true(fabs(y2[15][i] - want) < 1e-14);
  }
}

/* §7.5.7: a sequence processed in pieces, the state handed from one call to the next,
 * equals one call, output for output and in the final state, wherever the cut falls (mid
 * chunk, mid shard, on a boundary), for every kind of schedule. */
static void streaming_equals_one_call(void **state)
{
  (void)state;
  toy s;
  make_toy(&s);
  double init[D * D], gamma[D] = {1.1, 0.9, 1.0}, beta[D] = {0.1, -0.2, 0.05};
  double offsets[4] = {0.1, -0.2, 0.0, 0.3};
  w0(0.1, init);
  mem_desc ds[5] = {linear(4, true), linear(2, false), linear(8, false), linear(1, true),
                    linear(4, false)};
  ds[1].reset = 6;
  ds[1].qkproj = MEM_QK_SHARD;
  ds[2].read = MEM_READ_CHUNK_START;
  ds[2].qkproj = MEM_QK_CHUNK;
  ds[3].read = MEM_READ_EXCLUSIVE;
  ds[4].ttt_lr = ds[4].ln_residual = true;
  ds[4].ttt_base = 1.0;
  ds[4].ttt_div = 3.0;
  ds[4].ttt_offset = offsets;
  ds[4].ln_eps = 1e-6;
  const int cuts[] = {1, 3, 5, 6, 8, 11};
  for (int c = 0; c < 5; c++) {
    mem_state_layout lay;
    mem_state_layout_of(&ds[c], &lay);
    double one[L][D], parts[L][D], st_one[64], st_parts[64];
    assert_true(lay.count <= 64);
    mem_streams st = streams(&s);
    st.ln_gamma = gamma;
    st.ln_beta = beta;
    xy_error err;
    mem_state_init(&ds[c], init, st_one);
    assert_int_equal(mem_oracle_run(&ds[c], L, &st, init, st_one, &one[0][0], &err), XY_OK);
    mem_state_init(&ds[c], init, st_parts);
    int at = 0;
    for (int i = 0; i <= 6; i++) {
      int end = i < 6 ? cuts[i] : L;
      mem_streams piece = {&s.q[at][0], &s.k[at][0], &s.v[at][0], s.theta + at, s.eta + at,
                           s.alpha + at, gamma, beta};
      assert_int_equal(mem_oracle_run(&ds[c], end - at, &piece, init, st_parts, &parts[at][0],
                                      &err), XY_OK);
      at = end;
    }
    assert_memory_equal(one, parts, sizeof one);
    assert_memory_equal(st_one, st_parts, sizeof(double) * (size_t)lay.count);
  }
  /* a phase outside the period is refused */
  mem_desc d = linear(4, false);
  double st_bad[2 * D * D + 1];
  mem_state_init(&d, init, st_bad);
  st_bad[2 * D * D] = 4;
  double y[L][D];
  mem_streams st = streams(&s);
  xy_error err;
  assert_int_equal(mem_oracle_run(&d, L, &st, init, st_bad, &y[0][0], &err), XY_E_USAGE);
  assert_non_null(strstr(err.message, "phase"));
}

static void bad_schedules(void **state)
{
  (void)state;
  toy s;
  make_toy(&s);
  mem_streams st = streams(&s);
  double init[D * D], y[L][D];
  w0(0.1, init);
  xy_error err;
  mem_desc d = linear(4, true);
  d.reset = 6;
  assert_int_equal(mem_oracle_run(&d, L, &st, init, NULL, &y[0][0], &err), XY_E_USAGE);
  assert_non_null(strstr(err.message, "multiple of the chunk"));
  d = linear(0, false);
  assert_int_equal(mem_oracle_run(&d, L, &st, init, NULL, &y[0][0], &err), XY_E_USAGE);
  assert_non_null(strstr(err.message, "chunk"));
  double offsets[4] = {0};
  d = linear(4, true);
  d.ttt_lr = true;
  d.ttt_offset = offsets;
  assert_int_equal(mem_oracle_run(&d, L, &st, init, NULL, &y[0][0], &err), XY_E_USAGE);
  assert_non_null(strstr(err.message, "TTT"));
  d = linear(2, false);
  d.ln_residual = true;
  assert_int_equal(mem_oracle_run(&d, L, &st, init, NULL, &y[0][0], &err), XY_E_USAGE);
  assert_non_null(strstr(err.message, "missing")); /* no gamma, beta */
  d = linear(2, true);
  st.eta = NULL;
  assert_int_equal(mem_oracle_run(&d, L, &st, init, NULL, &y[0][0], &err), XY_E_USAGE);
  assert_non_null(strstr(err.message, "missing"));
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(titans_chunks),
    cmocka_unit_test(tnt_toy),
    cmocka_unit_test(mlp_gradient),
    cmocka_unit_test(schedule_properties),
    cmocka_unit_test(streaming_equals_one_call),
    cmocka_unit_test(bad_schedules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
