/* memory_oracle.c: the token loop of spec tnt.md §7.1, in float64. Per token t:
 *
 *   at a reset (t % S == 0):      W = W_init, Mom = 0, P = 0; the shard starts at t
 *   at a chunk start:             A = W (the anchor); P = 0 when the projection is per chunk
 *   g   = grad of c |f(k_t; A) - v_t|^2 at the anchor A, never at W
 *   Mom = (eta_t if momentum else 0) Mom - theta_t g
 *   W   = (1 - alpha_t if decay else 1) W + Mom
 *   x   = q_t, or P q_t after P += k_t k_t^T / (k_t . k_t)
 *   y_t = f(x; W), f(x; A) or f(x; W before the token), by the read mode.
 *
 * Gradients per memory family (§1.1): linear f = W x: e = 2c (W k - v), dW = e k^T.
 * MLP f = W2 act(W1 x): z = W1 k, h = act(z), e = 2c (W2 h - v), dW2 = e h^T,
 * delta = (W2^T e) * act'(z), dW1 = delta k^T. */
#include "memory_oracle.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t mem_weights_count(const mem_desc *d)
{
  int64_t w = d->dh > 0 ? d->dh * d->dk + d->dv * d->dh : d->dv * d->dk;
  return w + (d->bias ? d->dh + d->dv : 0);
}

/* Where the biases start: after every matrix. */
static int64_t bias_at(const mem_desc *d)
{
  return d->dh > 0 ? d->dh * d->dk + d->dv * d->dh : d->dv * d->dk;
}

static double act(mem_act a, double z)
{
  if (a == MEM_ACT_SILU)
    return z / (1.0 + exp(-z));
  const double c = 0.7978845608028654; /* sqrt(2 / pi) */
  return 0.5 * z * (1.0 + tanh(c * (z + 0.044715 * z * z * z)));
}

static double act_grad(mem_act a, double z)
{
  if (a == MEM_ACT_SILU) {
    double s = 1.0 / (1.0 + exp(-z));
    return s * (1.0 + z * (1.0 - s));
  }
  const double c = 0.7978845608028654;
  double u = c * (z + 0.044715 * z * z * z), th = tanh(u);
  return 0.5 * (1.0 + th) + 0.5 * z * (1.0 - th * th) * c * (1.0 + 3.0 * 0.044715 * z * z);
}

/* Scratch for one evaluation: the hidden pre-activations and activations (MLP only), the
 * output error, the hidden error and the normalised output (ln_residual). */
typedef struct scratch {
  double *z, *h, *e, *delta, *xhat;
} scratch;

/* out [dv] = f_res(x; w): the memory without the wrapper. */
static void forward_res(const mem_desc *d, const double *w, const double *x, double *out,
                        scratch *sc)
{
  const double *b = d->bias ? w + bias_at(d) : NULL;
  if (d->dh == 0) {
    for (int64_t i = 0; i < d->dv; i++) {
      double acc = b ? b[i] : 0;
      for (int64_t j = 0; j < d->dk; j++)
        acc += w[i * d->dk + j] * x[j];
      out[i] = acc;
    }
    return;
  }
  const double *w1 = w, *w2 = w + d->dh * d->dk;
  for (int64_t i = 0; i < d->dh; i++) {
    double acc = b ? b[i] : 0;
    for (int64_t j = 0; j < d->dk; j++)
      acc += w1[i * d->dk + j] * x[j];
    sc->z[i] = acc;
    sc->h[i] = act(d->act, acc);
  }
  for (int64_t i = 0; i < d->dv; i++) {
    double acc = b ? b[d->dh + i] : 0;
    for (int64_t j = 0; j < d->dh; j++)
      acc += w2[i * d->dh + j] * sc->h[j];
    out[i] = acc;
  }
}

/* xhat = (o - mean) / sqrt(var + eps) over the dv features; returns sqrt(var + eps). */
static double layer_norm(const mem_desc *d, const double *o, double *xhat)
{
  double mean = 0, var = 0;
  for (int64_t i = 0; i < d->dv; i++)
    mean += o[i];
  mean /= (double)d->dv;
  for (int64_t i = 0; i < d->dv; i++)
    var += (o[i] - mean) * (o[i] - mean);
  double sd = sqrt(var / (double)d->dv + d->ln_eps);
  for (int64_t i = 0; i < d->dv; i++)
    xhat[i] = (o[i] - mean) / sd;
  return sd;
}

/* out [dv] = f(x; w), the wrapper included. */
static void forward(const mem_desc *d, const mem_streams *s, const double *w, const double *x,
                    double *out, scratch *sc)
{
  forward_res(d, w, x, out, sc);
  if (!d->ln_residual)
    return;
  layer_norm(d, out, sc->xhat);
  for (int64_t i = 0; i < d->dv; i++)
    out[i] = x[i] + s->ln_gamma[i] * sc->xhat[i] + s->ln_beta[i];
}

/* g = the loss gradient at weights a for the pair (k, v), laid out like the weights. Through
 * the wrapper (spec §1.1): with u = 2c (k + gamma xhat + beta - v) gamma, the error of f_res
 * is (D u - sum u - xhat sum(u xhat)) / (D sd). */
static void gradient(const mem_desc *d, const mem_streams *s, const double *a, const double *k,
                     const double *v, double *g, scratch *sc)
{
  forward_res(d, a, k, sc->e, sc);
  if (d->ln_residual) {
    double sd = layer_norm(d, sc->e, sc->xhat), su = 0, sux = 0, n = (double)d->dv;
    for (int64_t i = 0; i < d->dv; i++) {
      double u = 2.0 * d->loss_scale *
                 (k[i] + s->ln_gamma[i] * sc->xhat[i] + s->ln_beta[i] - v[i]) * s->ln_gamma[i];
      sc->e[i] = u;
      su += u;
      sux += u * sc->xhat[i];
    }
    for (int64_t i = 0; i < d->dv; i++)
      sc->e[i] = (n * sc->e[i] - su - sc->xhat[i] * sux) / (n * sd);
  } else {
    for (int64_t i = 0; i < d->dv; i++)
      sc->e[i] = 2.0 * d->loss_scale * (sc->e[i] - v[i]);
  }
  double *gb = d->bias ? g + bias_at(d) : NULL;
  if (d->dh == 0) {
    for (int64_t i = 0; i < d->dv; i++) {
      for (int64_t j = 0; j < d->dk; j++)
        g[i * d->dk + j] = sc->e[i] * k[j];
      if (gb)
        gb[i] = sc->e[i];
    }
    return;
  }
  const double *w2 = a + d->dh * d->dk;
  double *g1 = g, *g2 = g + d->dh * d->dk;
  for (int64_t i = 0; i < d->dv; i++)
    for (int64_t j = 0; j < d->dh; j++)
      g2[i * d->dh + j] = sc->e[i] * sc->h[j];
  for (int64_t j = 0; j < d->dh; j++) {
    double back = 0;
    for (int64_t i = 0; i < d->dv; i++)
      back += w2[i * d->dh + j] * sc->e[i];
    sc->delta[j] = back * act_grad(d->act, sc->z[j]);
  }
  for (int64_t i = 0; i < d->dh; i++)
    for (int64_t j = 0; j < d->dk; j++)
      g1[i * d->dk + j] = sc->delta[i] * k[j];
  for (int64_t i = 0; gb && i < d->dh; i++)
    gb[i] = sc->delta[i];
  for (int64_t i = 0; gb && i < d->dv; i++)
    gb[d->dh + i] = sc->e[i];
}

static int check_desc(const mem_desc *d, int64_t L, const mem_streams *s, xy_error *err)
{
  if (d->dk < 1 || d->dv < 1 || d->dh < 0 || L < 0)
    return xy_fail(err, XY_E_USAGE, "memory: dk, dv must be at least 1, dh and L at least 0");
  if (d->chunk < 1)
    return xy_fail(err, XY_E_USAGE, "memory: chunk must be at least 1, not %lld",
                   (long long)d->chunk);
  if (d->reset < 0 || (d->reset > 0 && d->reset % d->chunk != 0))
    return xy_fail(err, XY_E_USAGE,
                   "memory: reset %lld must be 0 or a multiple of the chunk %lld (chunks never "
                   "straddle a reset)", (long long)d->reset, (long long)d->chunk);
  if (!s->q || !s->k || !s->v || !s->theta || (d->momentum && !s->eta) ||
      (d->decay && !s->alpha) || (d->ln_residual && (!s->ln_gamma || !s->ln_beta)) ||
      (d->ttt_lr && !d->ttt_offset))
    return xy_fail(err, XY_E_USAGE, "memory: a stream the schedule reads is missing");
  if (d->ln_residual && d->dk != d->dv)
    return xy_fail(err, XY_E_USAGE, "memory: the ln_residual wrapper needs dk = dv");
  if (d->ttt_lr && (d->momentum || d->decay || d->reset || d->qkproj != MEM_QK_NONE ||
                    d->read != MEM_READ_INCLUSIVE))
    return xy_fail(err, XY_E_USAGE, "memory: the TTT learning-rate matrix takes no momentum, "
                   "decay, reset or Q-K projection, and reads inclusively");
  return XY_OK;
}

void mem_state_layout_of(const mem_desc *d, mem_state_layout *lay)
{
  int64_t nw = mem_weights_count(d), at = 0;
  lay->w = at, at += nw;
  lay->anchor = at, at += nw;
  lay->mom = d->momentum || d->ttt_lr ? at : -1, at += lay->mom >= 0 ? nw : 0;
  lay->p = d->qkproj != MEM_QK_NONE ? at : -1, at += lay->p >= 0 ? d->dk * d->dk : 0;
  lay->phase = at++;
  lay->count = at;
}

void mem_state_init(const mem_desc *d, const double *w_init, double *state)
{
  mem_state_layout lay;
  mem_state_layout_of(d, &lay);
  int64_t nw = mem_weights_count(d);
  memset(state, 0, (size_t)lay.count * sizeof(double));
  memcpy(state + lay.w, w_init, (size_t)nw * sizeof(double));
  memcpy(state + lay.anchor, w_init, (size_t)nw * sizeof(double));
}

int mem_oracle_run(const mem_desc *d, int64_t L, const mem_streams *s, const double *w_init,
                   double *state, double *y, xy_error *err)
{
  int rc = check_desc(d, L, s, err);
  if (rc)
    return rc;
  mem_state_layout lay;
  mem_state_layout_of(d, &lay);
  int64_t nw = mem_weights_count(d), dk = d->dk, dv = d->dv, hid = d->dh > 0 ? d->dh : 1;
  int64_t period = d->reset > 0 ? d->reset : d->chunk;
  size_t bytes = sizeof(double);
  double *own = state ? NULL : malloc((size_t)lay.count * bytes);
  double *st = state ? state : own;
  double *prev = calloc((size_t)nw, bytes), *g = calloc((size_t)nw, bytes);
  double *spare_mom = calloc((size_t)nw, bytes), *spare_p = calloc((size_t)(dk * dk), bytes);
  double *x = calloc((size_t)dk, bytes);
  scratch sc = {calloc((size_t)hid, bytes), calloc((size_t)hid, bytes),
                calloc((size_t)dv, bytes), calloc((size_t)hid, bytes), calloc((size_t)dv, bytes)};
  if (!st || !prev || !g || !spare_mom || !spare_p || !x || !sc.z || !sc.h || !sc.e || !sc.delta || !sc.xhat) {
    rc = xy_fail(err, XY_E_NOMEM, "out of memory");
    goto done;
  }
  if (!state)
    mem_state_init(d, w_init, st);
  double ph = st[lay.phase];
  if (!(ph >= 0 && ph < (double)period && ph == floor(ph))) {
    rc = xy_fail(err, XY_E_USAGE, "memory: the state's phase %g is not an integer in [0, %lld)",
                 ph, (long long)period);
    goto done;
  }
  /* A schedule without momentum or Q-K projection keeps its Mom and P out of the state. */
  double *w = st + lay.w, *anchor = st + lay.anchor;
  double *mom = lay.mom >= 0 ? st + lay.mom : spare_mom, *p = lay.p >= 0 ? st + lay.p : spare_p;
  int64_t phase = (int64_t)ph;
  for (int64_t t = 0; t < L; t++, phase = (phase + 1) % period) {
    const double *kt = s->k + t * dk, *vt = s->v + t * dv, *qt = s->q + t * dk;
    if (d->reset > 0 && phase == 0) {
      memcpy(w, w_init, (size_t)nw * bytes);
      memset(mom, 0, (size_t)nw * bytes);
      memset(p, 0, (size_t)(dk * dk) * bytes);
    }
    int64_t i = phase % d->chunk; /* the token's place in its chunk */
    if (i == 0) {
      memcpy(anchor, w, (size_t)nw * bytes);
      if (d->qkproj == MEM_QK_CHUNK)
        memset(p, 0, (size_t)(dk * dk) * bytes);
      if (d->ttt_lr)
        memset(mom, 0, (size_t)nw * bytes);
    }
    gradient(d, s, anchor, kt, vt, g, &sc);
    if (d->ttt_lr) { /* W_i = A - row_i sum_{j<=i} theta_j g_j */
      double row = d->ttt_base * fmax(0.0, 1.0 / (double)(i + 1) + d->ttt_offset[i]) / d->ttt_div;
      for (int64_t e = 0; e < nw; e++) {
        mom[e] += s->theta[t] * g[e];
        w[e] = anchor[e] - row * mom[e];
      }
      forward(d, s, w, qt, y + t * dv, &sc);
      continue;
    }
    memcpy(prev, w, (size_t)nw * bytes);
    double keep_mom = d->momentum ? s->eta[t] : 0.0, keep_w = d->decay ? 1.0 - s->alpha[t] : 1.0;
    for (int64_t e = 0; e < nw; e++) {
      mom[e] = keep_mom * mom[e] - s->theta[t] * g[e];
      w[e] = keep_w * w[e] + mom[e];
    }
    if (d->qkproj == MEM_QK_NONE) {
      memcpy(x, qt, (size_t)dk * bytes);
    } else {
      double kk = 0;
      for (int64_t j = 0; j < dk; j++)
        kk += kt[j] * kt[j];
      for (int64_t r = 0; kk > 0 && r < dk; r++) /* a zero key adds nothing */
        for (int64_t j = 0; j < dk; j++)
          p[r * dk + j] += kt[r] * kt[j] / kk;
      for (int64_t r = 0; r < dk; r++) {
        double acc = 0;
        for (int64_t j = 0; j < dk; j++)
          acc += p[r * dk + j] * qt[j];
        x[r] = acc;
      }
    }
    const double *read = d->read == MEM_READ_INCLUSIVE     ? w
                         : d->read == MEM_READ_CHUNK_START ? anchor
                                                           : prev;
    forward(d, s, read, x, y + t * dv, &sc);
  }
  st[lay.phase] = (double)phase;
done:
  free(own);
  free(prev);
  free(g);
  free(spare_mom);
  free(spare_p);
  free(x);
  free(sc.z);
  free(sc.h);
  free(sc.e);
  free(sc.delta);
  free(sc.xhat);
  return rc;
}
