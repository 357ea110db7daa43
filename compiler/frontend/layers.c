/*
 * layers.c: the full pLSTM layers of the reference implementation, expanded into graph-IR
 * ops (projections, gate activations, the scan, norm, output projection) with weight
 * tensors named as the reference's PyTorch state_dict names them, behind a prefix.
 *
 *   plstm2d  = pLSTM2DLayerFused (modes P and D), over a grid2d graph: x [B,X,Y,D]
 *   plstm1d  = pLSTM1DLayer, over a sequence graph: x [B,L,D]
 *
 * Every option defaults to the reference's library default (plstm.md §4.3); the vision
 * model's settings are options too. What each layer computes is in
 * vectors/plstm/README.md ("Fused 2D layer", "1D layer") and docs/spec-format.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_build.h"

/* ------------------------------------------------------------------ options */

typedef enum gate_act { GATE_LOGSIGMOID, GATE_TANH, GATE_IDENTITY } gate_act;
typedef enum eig_repr { EIG_TANH, EIG_LOGSIGMOID, EIG_EXPEXP } eig_repr;

typedef struct gate_opts {
  bool weight;
  int64_t sub_heads;
  gate_act act;
  double scale;
} gate_opts;

typedef struct trans_opts {
  bool weight;
  int64_t sub_heads;
  eig_repr eig;
  double factor;
  double orth_factor;   /* JT > 1: K = orth_factor (A - A^T) */
  int64_t orth_order;   /* JT > 1: terms of the truncated exponential */
} trans_opts;

typedef struct layer_opts {
  int64_t heads;
  bool mode_d;            /* plstm2d */
  bool chirality_r;       /* plstm2d, mode D */
  int64_t JQ, JK, JV, JT, JO, DK, DV;
  int64_t qkv_sub_heads;
  bool qkv_bias;
  gate_opts source, mark, direct;
  trans_opts transition;
  double orientation_scale;
  bool norm, norm_scale;
  double norm_eps;
  bool outprojection;
  int64_t conv_kernel;    /* 0: no convolution */
  bool conv_bias;
  bool passthrough;
  double qk_scale;        /* NAN: DK^-1/2 */
} layer_opts;

/* ------------------------------------------------------------------ context */

typedef struct lay {
  fe_lb b;                 /* fc, the layer's JSON, its name, weight prefix, input, output */
  bool grid;               /* plstm2d */
  layer_opts o;
  int64_t B, X, Y, D;      /* plstm1d: Y = 1 and X = L */
  int64_t P;               /* positions per batch element: X*Y */
} lay;

#define LFAIL(ly, code, path, ...) LB_FAIL(&(ly)->b, code, path, __VA_ARGS__)

/* ------------------------------------------------------------------ reading options */

static int read_gate(lay *ly, const char *key, gate_opts *g)
{
  static const char *const acts[] = {"logsigmoid", "tanh", "identity"};
  static const char *const keys[] = {"weight", "sub_heads", "activation", "scale"};
  json_t *v;
  char p[FE_PATH_MAX];
  int rc = lb_opt_member(&ly->b, ly->b.l, ly->b.lp, key, JSON_OBJECT, "an object", &v, p);
  if (rc || !v)
    return rc;
  int act = (int)g->act;
  if ((rc = fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, v, p, keys, 4)) ||
      (rc = lb_opt_bool(&ly->b, v, p, "weight", &g->weight)) ||
      (rc = lb_opt_int(&ly->b, v, p, "sub_heads", 1, &g->sub_heads)) ||
      (rc = lb_opt_enum(&ly->b, v, p, "activation", acts, 3, &act)) ||
      (rc = lb_opt_num(&ly->b, v, p, "scale", &g->scale)))
    return rc;
  g->act = (gate_act)act;
  return XY_OK;
}

static int read_transition(lay *ly, trans_opts *t)
{
  static const char *const reprs[] = {"tanh", "logsigmoid", "expexp"};
  static const char *const keys[] = {"weight", "sub_heads", "eigenvalue", "factor",
                                     "orthogonalization_factor", "orthogonalization_order"};
  json_t *v;
  char p[FE_PATH_MAX];
  int rc = lb_opt_member(&ly->b, ly->b.l, ly->b.lp, "transition", JSON_OBJECT, "an object", &v, p);
  if (rc || !v)
    return rc;
  int eig = (int)t->eig;
  if ((rc = fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, v, p, keys, 6)) ||
      (rc = lb_opt_bool(&ly->b, v, p, "weight", &t->weight)) ||
      (rc = lb_opt_int(&ly->b, v, p, "sub_heads", 1, &t->sub_heads)) ||
      (rc = lb_opt_enum(&ly->b, v, p, "eigenvalue", reprs, 3, &eig)) ||
      (rc = lb_opt_num(&ly->b, v, p, "factor", &t->factor)) ||
      (rc = lb_opt_num(&ly->b, v, p, "orthogonalization_factor", &t->orth_factor)) ||
      (rc = lb_opt_int(&ly->b, v, p, "orthogonalization_order", 1, &t->orth_order)))
    return rc;
  t->eig = (eig_repr)eig;
  return XY_OK;
}

/* "convolution": false | true | {"kernel": K, "bias": true}. */
static int read_conv(lay *ly)
{
  json_t *v = json_object_get(ly->b.l, "convolution");
  char p[FE_PATH_MAX];
  fe_path_key(p, ly->b.lp, "convolution");
  if (!v)
    return XY_OK;
  if (json_is_boolean(v)) {
    if (!json_is_true(v))
      ly->o.conv_kernel = 0;
    else if (ly->o.conv_kernel == 0)
      ly->o.conv_kernel = ly->grid ? 3 : 4;
    return XY_OK;
  }
  if (!json_is_object(v))
    return LFAIL(ly, XY_E_SPEC, p, "must be true, false or {\"kernel\": K, \"bias\": ...}");
  static const char *const keys[] = {"kernel", "bias"};
  ly->o.conv_kernel = ly->grid ? 3 : 4;
  int rc;
  if ((rc = fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, v, p, keys, 2)) ||
      (rc = lb_opt_int(&ly->b, v, p, "kernel", 1, &ly->o.conv_kernel)) ||
      (rc = lb_opt_bool(&ly->b, v, p, "bias", &ly->o.conv_bias)))
    return rc;
  return XY_OK;
}

/* The reference's library defaults (pLSTM2DLayerFusedConfig, pLSTM1DLayerConfig). */
static void default_opts(lay *ly)
{
  layer_opts *o = &ly->o;
  memset(o, 0, sizeof *o);
  o->heads = 1;
  o->JQ = o->JK = 1;
  o->JV = o->JT = o->JO = ly->grid ? 1 : 4;
  o->qkv_bias = true;
  gate_opts g = {.weight = false, .sub_heads = 1, .act = GATE_LOGSIGMOID, .scale = 1.0};
  o->source = o->mark = o->direct = g;
  o->transition = (trans_opts){.weight = true, .sub_heads = 1, .eig = EIG_TANH, .factor = 5.0,
                               .orth_factor = 1.0, .orth_order = 16};
  o->orientation_scale = 0.5;
  o->norm = true;
  o->norm_scale = true;
  o->norm_eps = 1e-5;
  o->outprojection = true;
  o->conv_kernel = ly->grid ? 0 : 4;
  o->conv_bias = true;
  o->passthrough = !ly->grid;
  o->qk_scale = NAN;
}

static int read_opts(lay *ly)
{
  static const char *const keys2d[] = {
    "op", "name", "input", "output", "weights", "heads", "mode", "chirality", "dk", "dv",
    "qkv_sub_heads", "qkv_bias", "source", "mark", "direct", "transition", "orientation_scale",
    "norm", "outprojection", "convolution", "passthrough", "qk_scale"};
  static const char *const keys1d[] = {
    "op", "name", "input", "output", "weights", "heads", "jq", "jk", "jv", "jt", "jo", "dk",
    "dv", "qkv_sub_heads", "qkv_bias", "source", "mark", "direct", "transition", "norm",
    "outprojection", "convolution", "passthrough", "qk_scale"};
  layer_opts *o = &ly->o;
  const json_t *l = ly->b.l;
  const char *lp = ly->b.lp;
  int rc = ly->grid ? fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, l, lp, keys2d,
                                    XY_ARRAY_LEN(keys2d))
                    : fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, l, lp, keys1d,
                                    XY_ARRAY_LEN(keys1d));
  if (rc)
    return rc;
  static const char *const modes[] = {"P", "D"}, *const chir[] = {"L", "R"};
  int mode = 0, ch = 0;
  if ((rc = lb_opt_int(&ly->b, l, lp, "heads", 1, &o->heads)) ||
      (ly->grid && (rc = lb_opt_enum(&ly->b, l, lp, "mode", modes, 2, &mode))) ||
      (ly->grid && (rc = lb_opt_enum(&ly->b, l, lp, "chirality", chir, 2, &ch))) ||
      (!ly->grid && ((rc = lb_opt_int(&ly->b, l, lp, "jq", 1, &o->JQ)) ||
                     (rc = lb_opt_int(&ly->b, l, lp, "jk", 1, &o->JK)) ||
                     (rc = lb_opt_int(&ly->b, l, lp, "jv", 1, &o->JV)) ||
                     (rc = lb_opt_int(&ly->b, l, lp, "jt", 1, &o->JT)) ||
                     (rc = lb_opt_int(&ly->b, l, lp, "jo", 1, &o->JO)))))
    return rc;
  o->mode_d = mode == 1;
  o->chirality_r = ch == 1;
  o->qkv_sub_heads = o->heads;
  o->DK = ly->D / (o->JK * o->heads);
  o->DV = ly->D / (o->JV * o->heads);
  if ((rc = lb_opt_int(&ly->b, l, lp, "dk", 1, &o->DK)) ||
      (rc = lb_opt_int(&ly->b, l, lp, "dv", 1, &o->DV)) ||
      (rc = lb_opt_int(&ly->b, l, lp, "qkv_sub_heads", 1, &o->qkv_sub_heads)) ||
      (rc = lb_opt_bool(&ly->b, l, lp, "qkv_bias", &o->qkv_bias)) ||
      (rc = read_gate(ly, "source", &o->source)) || (rc = read_gate(ly, "mark", &o->mark)) ||
      (rc = read_gate(ly, "direct", &o->direct)) || (rc = read_transition(ly, &o->transition)) ||
      (rc = lb_opt_num(&ly->b, l, lp, "orientation_scale", &o->orientation_scale)) ||
      (rc = lb_read_norm(&ly->b, true, &o->norm, &o->norm_eps, &o->norm_scale)) ||
      (rc = lb_opt_bool(&ly->b, l, lp, "outprojection", &o->outprojection)) ||
      (rc = read_conv(ly)) || (rc = lb_opt_bool(&ly->b, l, lp, "passthrough", &o->passthrough)) ||
      (rc = lb_opt_num(&ly->b, l, lp, "qk_scale", &o->qk_scale)))
    return rc;
  if (o->DK < 1 || o->DV < 1)
    return LFAIL(ly, XY_E_SPEC, lp, "dim %lld is too small for %lld heads (dk = dv = 0)",
                 (long long)ly->D, (long long)o->heads);
  if (!o->outprojection && o->heads * o->DV * o->JO != ly->D)
    return LFAIL(ly, XY_E_SPEC, lp,
                 "without an output projection, heads*dv*jo = %lld must equal dim %lld",
                 (long long)(o->heads * o->DV * o->JO), (long long)ly->D);
  return XY_OK;
}


/* ------------------------------------------------------------------ pieces of the layers */

/* Q, K or V: the reference's [G, Dh', J, s, D/s] weight and [H, Dh, J] bias. */
static int qkv(lay *ly, const char *ref, int x, int64_t dh, int64_t J, int *out)
{
  const layer_opts *o = &ly->o;
  int64_t H = o->heads, s = o->qkv_sub_heads, D = ly->D;
  if (D % s != 0 || (s > H ? s % H != 0 || dh % (s / H) != 0 : H % s != 0))
    return LFAIL(ly, XY_E_SPEC, ly->b.lp,
                 "qkv_sub_heads %lld does not divide dim %lld and heads %lld evenly",
                 (long long)s, (long long)D, (long long)H);
  int64_t G = H > s ? H / s : 1, dhp = s > H ? dh / (s / H) : dh;
  char wname[128], bname[128];
  snprintf(wname, sizeof wname, "%s.weight", ref);
  snprintf(bname, sizeof bname, "%s.bias", ref);
  int64_t ws[] = {G, dhp, J, s, D / s}, bs[] = {H, dh, J};
  double r = 1.0 / sqrt((double)(D / s));
  int w, b = -1, rc;
  if ((rc = lb_weight(&ly->b, wname, 5, ws, -r, r, &w)) ||
      (o->qkv_bias && (rc = lb_weight(&ly->b, bname, 3, bs, -0.1, 0.1, &b))))
    return rc;
  return lb_linear(&ly->b, ref, x, w, b, G, s, dhp * J, IR_W_GFSC, 1.0, false, out);
}

/* A source, mark or direct gate of `channels` channels, each J values:
 * act(bias [ch, J...] + W [ch/s, s, J..., D/s] x). */
static int gate(lay *ly, const char *ref, const gate_opts *g, int x, int64_t channels,
                const int64_t *J, int nJ, double lo, double hi, int *out)
{
  int64_t s = g->sub_heads, D = ly->D, Jc = 1;
  for (int i = 0; i < nJ; i++)
    Jc *= J[i];
  if (channels % s != 0 || D % s != 0)
    return LFAIL(ly, XY_E_SPEC, ly->b.lp, "%s: sub_heads %lld does not divide %lld channels and dim %lld",
                 ref, (long long)s, (long long)channels, (long long)D);
  char wname[128], bname[128], what[128];
  snprintf(wname, sizeof wname, "%s.weight", ref);
  snprintf(bname, sizeof bname, "%s.bias", ref);
  int64_t bs[8] = {channels}, ws[10] = {channels / s, s};
  for (int i = 0; i < nJ; i++)
    bs[1 + i] = ws[2 + i] = J[i];
  ws[2 + nJ] = D / s;
  int w = -1, b, rc;
  double r = 1.0 / sqrt((double)(D / s));
  if ((rc = lb_weight(&ly->b, bname, 1 + nJ, bs, lo, hi, &b)) ||
      (g->weight && (rc = lb_weight(&ly->b, wname, 3 + nJ, ws, -r, r, &w))))
    return rc;
  int z;
  snprintf(what, sizeof what, "%s_pre", ref);
  if ((rc = lb_linear(&ly->b, what, x, w, b, channels / s, s, Jc, IR_W_GSFC, 1.0, false, &z)))
    return rc;
  switch (g->act) {
  case GATE_LOGSIGMOID:
    return lb_activation(&ly->b, ref, z, IR_ACT_SIGMOID_POW, g->scale, out);
  case GATE_TANH:
    return lb_activation(&ly->b, ref, z, IR_ACT_TANH_SCALED, g->scale, out);
  case GATE_IDENTITY:
    break;
  }
  *out = z;
  return XY_OK;
}

/* Eigenvalues of a transition: repr(bias [ch, JT] + W [ch/s, s, JT, D/s] x). */
static int eigenvalues(lay *ly, const char *ref, int x, int64_t channels, int *out)
{
  const trans_opts *t = &ly->o.transition;
  int64_t s = t->sub_heads, D = ly->D, JT = ly->o.JT;
  if (channels % s != 0 || D % s != 0)
    return LFAIL(ly, XY_E_SPEC, ly->b.lp, "%s: sub_heads %lld does not divide %lld channels and dim %lld",
                 ref, (long long)s, (long long)channels, (long long)D);
  char wname[128], bname[128], what[128];
  snprintf(wname, sizeof wname, "%s.eigenvalues_weight", ref);
  snprintf(bname, sizeof bname, "%s.eigenvalues_bias", ref);
  int64_t bs[] = {channels, JT}, ws[] = {channels / s, s, JT, D / s};
  double r = 0.2 / sqrt((double)(D / s));
  int w = -1, b, z, rc;
  /* Positive biases keep random transitions inside (0, 1), where the P mode's 1 - o t
   * stays a damping factor over long paths. */
  if ((rc = lb_weight(&ly->b, bname, 2, bs, 0.0, 0.3, &b)) ||
      (t->weight && (rc = lb_weight(&ly->b, wname, 4, ws, -r, r, &w))))
    return rc;
  snprintf(what, sizeof what, "%s_pre", ref);
  if ((rc = lb_linear(&ly->b, what, x, w, b, channels / s, s, JT, IR_W_GSFC, 1.0, false, &z)))
    return rc;
  switch (t->eig) {
  case EIG_TANH:
    return lb_activation(&ly->b, ref, z, IR_ACT_TANH_GAIN, t->factor, out);
  case EIG_LOGSIGMOID:
    return lb_activation(&ly->b, ref, z, IR_ACT_SIGMOID_POW, t->factor, out);
  case EIG_EXPEXP:
    return lb_activation(&ly->b, ref, z, IR_ACT_EXPEXP, t->factor, out);
  }
  return XY_OK;
}

/* [B, P..., H*F] (head-major features) -> [B*H, P..., F...]: the scans fold heads into the
 * batch. pos_dims are the position axes, f_dims the per-head feature axes. */
static int to_heads(lay *ly, const char *what, int x, int64_t H, const int64_t *f_dims, int nf,
                    int *out)
{
  int npos = ly->grid ? 2 : 1;
  int64_t view[IR_MAX_RANK], to[IR_MAX_RANK];
  int perm[IR_MAX_RANK];
  int r = 0;
  view[r++] = ly->B;
  view[r++] = ly->X;
  if (ly->grid)
    view[r++] = ly->Y;
  view[r++] = H;
  for (int i = 0; i < nf; i++)
    view[r++] = f_dims[i];
  /* perm: batch, head, positions, features */
  int k = 0;
  perm[k++] = 0;
  perm[k++] = 1 + npos;
  for (int i = 0; i < npos; i++)
    perm[k++] = 1 + i;
  for (int i = 0; i < nf; i++)
    perm[k++] = 2 + npos + i;
  char tw[128];
  snprintf(tw, sizeof tw, "%s_t", what);
  int t, rc;
  if ((rc = lb_transpose(&ly->b, tw, x, r, view, perm, &t)))
    return rc;
  int n = 0;
  to[n++] = ly->B * H;
  to[n++] = ly->X;
  if (ly->grid)
    to[n++] = ly->Y;
  for (int i = 0; i < nf; i++)
    to[n++] = f_dims[i];
  return lb_reshape(&ly->b, what, t, n, to, out);
}

/* The orientation-major gates of the fused 2D scan: channel j = 4h + o of [B,X,Y,4H*Jc]
 * becomes [B*H, 4, X, Y, J...]. */
static int to_oriented(lay *ly, const char *what, int x, const int64_t *J, int nJ, int *out)
{
  int64_t H = ly->o.heads, Jc = 1;
  for (int i = 0; i < nJ; i++)
    Jc *= J[i];
  int64_t view[] = {ly->B, ly->X, ly->Y, H, 4, Jc};
  int perm[] = {0, 3, 4, 1, 2, 5};
  char tw[128];
  snprintf(tw, sizeof tw, "%s_t", what);
  int t, rc;
  if ((rc = lb_transpose(&ly->b, tw, x, 6, view, perm, &t)))
    return rc;
  int64_t to[IR_MAX_RANK] = {ly->B * H, 4, ly->X, ly->Y};
  for (int i = 0; i < nJ; i++)
    to[4 + i] = J[i];
  return lb_reshape(&ly->b, what, t, 4 + nJ, to, out);
}

/* The scan's out [B*H, P..., DV, JO] back to [B, P..., H*DV*JO], then norm, projection and
 * passthrough. c is what the passthrough reads. */
static int finish(lay *ly, int scan_out, int c)
{
  const layer_opts *o = &ly->o;
  int64_t H = o->heads, F = o->DV * o->JO, D = ly->D;
  int npos = ly->grid ? 2 : 1;
  int64_t view[IR_MAX_RANK];
  int perm[IR_MAX_RANK];
  int r = 0;
  view[r++] = ly->B;
  view[r++] = H;
  view[r++] = ly->X;
  if (ly->grid)
    view[r++] = ly->Y;
  view[r++] = F;
  int k = 0;
  perm[k++] = 0;
  for (int i = 0; i < npos; i++)
    perm[k++] = 2 + i;
  perm[k++] = 1;
  perm[k++] = 2 + npos;
  int t, y, rc;
  if ((rc = lb_transpose(&ly->b, "heads_t", scan_out, r, view, perm, &t)))
    return rc;
  int64_t flat[IR_MAX_RANK] = {ly->B, ly->X, ly->Y};
  flat[1 + npos] = H * F;
  if ((rc = lb_reshape(&ly->b, "heads", t, 2 + npos, flat, &y)))
    return rc;
  bool last_is_norm = !o->outprojection && !o->passthrough;
  if (o->norm) {
    int scale = -1;
    int64_t ss[] = {H, F};
    if ((o->norm_scale && (rc = lb_weight(&ly->b, "mhnorm.scale", 2, ss, 0.5, 1.5, &scale))) ||
        (rc = lb_norm(&ly->b, "norm", y, scale, (ir_norm_attrs){H, o->norm_eps, false},
                      last_is_norm, &y)))
      return rc;
  }
  bool last_is_proj = !o->passthrough;
  if (o->outprojection) {
    int w;
    int64_t ws[] = {D, H * F};
    double rw = 1.0 / sqrt((double)(H * F));
    if ((rc = lb_weight(&ly->b, "outprojection.weight", 2, ws, -rw, rw, &w)) ||
        (rc = lb_linear(&ly->b, "outprojection", y, w, -1, D, 1, 1, IR_W_GFSC, 1.0,
                        last_is_proj, &y)))
      return rc;
  }
  if (o->passthrough) {
    int w, p;
    int64_t ws[] = {D};
    if ((rc = lb_weight(&ly->b, "passthrough.scale", 1, ws, -1.0, 1.0, &w)) ||
        (rc = lb_linear(&ly->b, "passthrough", c, w, -1, 1, D, 1, IR_W_GFSC, 1.0, false, &p)) ||
        (rc = lb_binary(&ly->b, "out", y, p, IR_BIN_ADD, true, &y)))
      return rc;
  }
  if (!o->norm && !o->outprojection && !o->passthrough)
    return LFAIL(ly, XY_E_SPEC, ly->b.lp, "a layer needs at least a norm, an output projection "
                 "or a passthrough after its scan");
  return XY_OK;
}

/* The causal depthwise convolution the gates, Q, K and the passthrough read. */
static int convolution(lay *ly, int *c)
{
  const layer_opts *o = &ly->o;
  if (o->conv_kernel == 0) {
    *c = ly->b.x;
    return XY_OK;
  }
  int64_t K = o->conv_kernel, D = ly->D;
  int64_t ws2[] = {D, 1, K, K}, ws1[] = {D, 1, K}, bs[] = {D};
  int w, b = -1, rc, oi;
  if ((rc = lb_weight(&ly->b, "conv._conv.weight", ly->grid ? 4 : 3, ly->grid ? ws2 : ws1, -0.5,
                      0.5, &w)) ||
      (o->conv_bias && (rc = lb_weight(&ly->b, "conv._conv.bias", 1, bs, -0.1, 0.1, &b))))
    return rc;
  int ins[] = {ly->b.x, w, b};
  if ((rc = lb_op_begin(&ly->b, IR_OP_CONV_CAUSAL, "conv", ins, 3, &oi)))
    return rc;
  ly->b.fc->m->ops[oi].attr.conv = (ir_conv_attrs){K};
  return lb_op_end(&ly->b, oi, "conv", false, c);
}

/* ------------------------------------------------------------------ plstm2d */

static int expand_2d(lay *ly)
{
  const layer_opts *o = &ly->o;
  int64_t H = o->heads, D = ly->D, ch = 4 * H;
  int64_t one[] = {1, 1, 1, 1};
  int c, q, k, v, rc;
  if ((rc = convolution(ly, &c)) || (rc = qkv(ly, "query", c, o->DK, 1, &q)) ||
      (rc = qkv(ly, "key", c, o->DK, 1, &k)) || (rc = qkv(ly, "value_", ly->b.x, o->DV, 1, &v)))
    return rc;
  int S_r, S_d, T_rl, T_du, T_dl = -1, T_ru = -1, M_l, M_u, Dg;
  if ((rc = gate(ly, "direct", &o->direct, c, H, one, 4, -3.0, 0.0, &Dg)))
    return rc;
  if (!o->mode_d) {
    /* S_r = o s, S_d = 1 - o s (sic), T_rl = T_ru = o t, T_dl = T_du = 1 - o t, M = m
     * (plstm.md §2.4): the orientation row of channel j is (j / H, j % H). */
    int s, t, m, w, b, og, os, ot;
    int64_t ows[] = {4, H, D}, obs[] = {4, H};
    if ((rc = gate(ly, "source", &o->source, c, ch, one, 3, -3.0, 0.0, &s)) ||
        (rc = eigenvalues(ly, "transition", c, ch, &t)) ||
        (rc = gate(ly, "mark", &o->mark, c, ch, one, 3, -3.0, 0.0, &m)) ||
        (rc = lb_weight(&ly->b, "orientation_bias", 2, obs, -2.0, 2.0, &b)) ||
        (rc = lb_weight(&ly->b, "orientation_weight", 3, ows, -1.0, 1.0, &w)) ||
        (rc = lb_linear(&ly->b, "orientation_pre", c, w, b, ch, 1, 1, IR_W_GFSC,
                     o->orientation_scale / (double)D, false, &og)) ||
        (rc = lb_activation(&ly->b, "orientation", og, IR_ACT_SIGMOID, 0.0, &og)) ||
        (rc = lb_binary(&ly->b, "os", og, s, IR_BIN_MUL, false, &os)) ||
        (rc = lb_binary(&ly->b, "ot", og, t, IR_BIN_MUL, false, &ot)) ||
        (rc = lb_activation(&ly->b, "one_minus_os", os, IR_ACT_ONE_MINUS, 0.0, &S_d)) ||
        (rc = lb_activation(&ly->b, "one_minus_ot", ot, IR_ACT_ONE_MINUS, 0.0, &T_du)))
      return rc;
    S_r = os;
    T_rl = T_ru = ot;
    T_dl = T_du;
    M_l = M_u = m;
  } else {
    /* D mode, chirality L: T_dl absent; R: T_ru absent, the turn goes to T_dl. */
    int turn;
    if ((rc = gate(ly, "source_r", &o->source, c, ch, one, 3, -3.0, 0.0, &S_r)) ||
        (rc = gate(ly, "source_d", &o->source, c, ch, one, 3, -3.0, 0.0, &S_d)) ||
        (rc = eigenvalues(ly, "transition_r", c, ch, &T_rl)) ||
        (rc = eigenvalues(ly, "transition_d", c, ch, &T_du)) ||
        (rc = eigenvalues(ly, "transition_rd", c, ch, &turn)) ||
        (rc = gate(ly, "mark_l", &o->mark, c, ch, one, 3, -3.0, 0.0, &M_l)) ||
        (rc = gate(ly, "mark_u", &o->mark, c, ch, one, 3, -3.0, 0.0, &M_u)))
      return rc;
    if (o->chirality_r)
      T_dl = turn;
    else
      T_ru = turn;
  }
  /* Fold heads into the batch; gates become orientation-major. */
  int64_t fq[] = {o->DK, 1}, fv[] = {o->DV, 1}, fd[] = {1, 1, 1, 1};
  int qh, kh, vh, dh;
  int g[8] = {S_r, S_d, T_rl, T_du, T_dl, T_ru, M_l, M_u};
  static const char *const gnames[] = {"S_r", "S_d", "T_rl", "T_du", "T_dl", "T_ru", "M_l", "M_u"};
  int64_t gJ[8][3] = {{1, 1, 1}, {1, 1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1, 1}, {1, 1, 1}};
  int gnJ[8] = {3, 3, 2, 2, 2, 2, 3, 3};
  int go[8];
  if ((rc = to_heads(ly, "q_h", q, H, fq, 2, &qh)) || (rc = to_heads(ly, "k_h", k, H, fq, 2, &kh)) ||
      (rc = to_heads(ly, "v_h", v, H, fv, 2, &vh)) || (rc = to_heads(ly, "D_h", Dg, H, fd, 4, &dh)))
    return rc;
  for (int i = 0; i < 8; i++) {
    go[i] = -1;
    /* P mode shares tensors between slots: transpose each once. */
    for (int j = 0; j < i && go[i] < 0; j++)
      if (g[j] == g[i])
        go[i] = go[j];
    if (g[i] >= 0 && go[i] < 0 && (rc = to_oriented(ly, gnames[i], g[i], gJ[i], gnJ[i], &go[i])))
      return rc;
  }
  int oi;
  int ins[] = {qh, kh, vh, go[0], go[1], go[2], go[3], go[4], go[5], go[6], go[7], dh};
  if ((rc = lb_op_begin(&ly->b, IR_OP_PLSTM_SCAN2D_FUSED, "scan", ins, 12, &oi)))
    return rc;
  ly->b.fc->m->ops[oi].qk_scale = isnan(o->qk_scale) ? 1.0 / sqrt((double)o->DK) : o->qk_scale;
  int y;
  if ((rc = lb_op_end(&ly->b, oi, "scan", false, &y)))
    return rc;
  return finish(ly, y, c);
}

/* ------------------------------------------------------------------ plstm1d */

/* The transition: JT = 1 is repr(eigenvalues); JT > 1 is U_out diag(lam) U_in with U the
 * truncated exponential of in/out projections (plstm.md §1.5). Returns [B,L,H,JT,JT]. */
static int transition_1d(lay *ly, int c, int *out)
{
  const layer_opts *o = &ly->o;
  const trans_opts *t = &o->transition;
  int64_t H = o->heads, JT = o->JT, D = ly->D, s = t->sub_heads;
  int lam, rc;
  if ((rc = eigenvalues(ly, "transition", c, H, &lam)))
    return rc;
  int64_t shape5[] = {ly->B, ly->X, H, JT, JT}, shape4[] = {ly->B, ly->X, H, JT};
  if (JT == 1)
    return lb_reshape(&ly->b, "T", lam, 5, shape5, out);
  int a[2];
  static const char *const refs[] = {"inproj", "outproj"};
  for (int i = 0; i < 2; i++) {
    char wname[128], bname[128], what[64];
    snprintf(wname, sizeof wname, "transition.%s_weight", refs[i]);
    snprintf(bname, sizeof bname, "transition.%s_bias", refs[i]);
    int64_t ws[] = {H / s, s, JT, JT, D / s}, bs[] = {H, JT, JT};
    double r = 0.3 / sqrt((double)(D / s));
    int w = -1, b, z;
    if ((rc = lb_weight(&ly->b, bname, 3, bs, -0.5, 0.5, &b)) ||
        (t->weight && (rc = lb_weight(&ly->b, wname, 5, ws, -r, r, &w))))
      return rc;
    snprintf(what, sizeof what, "transition_%s", refs[i]);
    if ((rc = lb_linear(&ly->b, what, c, w, b, H / s, s, JT * JT, IR_W_GSFC, 1.0, false, &z)))
      return rc;
    snprintf(what, sizeof what, "transition_%s_m", refs[i]);
    if ((rc = lb_reshape(&ly->b, what, z, 5, shape5, &a[i])))
      return rc;
  }
  int l4, oi;
  if ((rc = lb_reshape(&ly->b, "transition_lam", lam, 4, shape4, &l4)))
    return rc;
  int ins[] = {a[0], l4, a[1]};
  if ((rc = lb_op_begin(&ly->b, IR_OP_TRANSITION_EXP, "T", ins, 3, &oi)))
    return rc;
  ly->b.fc->m->ops[oi].attr.trans_exp = (ir_trans_exp_attrs){t->orth_factor, t->orth_order};
  return lb_op_end(&ly->b, oi, "T", false, out);
}

static int expand_1d(lay *ly)
{
  const layer_opts *o = &ly->o;
  int64_t H = o->heads;
  int c, q, k, v, S, M, Dg, T, rc;
  int64_t jS[] = {o->JT, o->JK, o->JV}, jM[] = {o->JO, o->JQ, o->JT},
          jD[] = {o->JO, o->JQ, o->JK, o->JV};
  if (H % o->transition.sub_heads != 0)
    return LFAIL(ly, XY_E_SPEC, ly->b.lp, "transition sub_heads must divide heads");
  if ((rc = convolution(ly, &c)) || (rc = qkv(ly, "query", c, o->DK, o->JQ, &q)) ||
      (rc = qkv(ly, "key", c, o->DK, o->JK, &k)) ||
      (rc = qkv(ly, "value_", ly->b.x, o->DV, o->JV, &v)) ||
      (rc = gate(ly, "source", &o->source, c, H, jS, 3, -3.0, 0.0, &S)) ||
      (rc = gate(ly, "mark", &o->mark, c, H, jM, 3, -3.0, 0.0, &M)) ||
      (rc = gate(ly, "direct", &o->direct, c, H, jD, 4, -3.0, 0.0, &Dg)) ||
      (rc = transition_1d(ly, c, &T)))
    return rc;
  int64_t fq[] = {o->DK, o->JQ}, fk[] = {o->DK, o->JK}, fv[] = {o->DV, o->JV},
          fT[] = {o->JT, o->JT};
  int qh, kh, vh, Sh, Mh, Dh, Th;
  if ((rc = to_heads(ly, "q_h", q, H, fq, 2, &qh)) || (rc = to_heads(ly, "k_h", k, H, fk, 2, &kh)) ||
      (rc = to_heads(ly, "v_h", v, H, fv, 2, &vh)) || (rc = to_heads(ly, "S_h", S, H, jS, 3, &Sh)) ||
      (rc = to_heads(ly, "M_h", M, H, jM, 3, &Mh)) || (rc = to_heads(ly, "D_h", Dg, H, jD, 4, &Dh)))
    return rc;
  /* T is [B,L,H,JT,JT] already split by head. */
  int64_t tflat[] = {ly->B, ly->X, H * o->JT * o->JT};
  int Tf;
  if ((rc = lb_reshape(&ly->b, "T_flat", T, 3, tflat, &Tf)) ||
      (rc = to_heads(ly, "T_h", Tf, H, fT, 2, &Th)))
    return rc;
  int oi;
  int ins[] = {qh, kh, vh, Sh, Th, Mh, Dh, -1};
  if ((rc = lb_op_begin(&ly->b, IR_OP_PLSTM_SCAN, "scan", ins, 8, &oi)))
    return rc;
  ly->b.fc->m->ops[oi].qk_scale = isnan(o->qk_scale) ? 1.0 / sqrt((double)o->DK) : o->qk_scale;
  int y;
  if ((rc = lb_op_end(&ly->b, oi, "scan", false, &y)))
    return rc;
  return finish(ly, y, c);
}


/* ------------------------------------------------------------------ entry */

bool fe_is_layer(const char *op)
{
  return strcmp(op, "plstm2d") == 0 || strcmp(op, "plstm1d") == 0 || strcmp(op, "memory") == 0 ||
         strcmp(op, "plstm_graph") == 0 || strcmp(op, "plstm_graph_edge") == 0 ||
         strcmp(op, "linear") == 0;
}

int fe_expand_layer(fe_layer_ctx *fc, const json_t *l, const char *lp, const char *op,
                    const char *name)
{
  if (strcmp(op, "memory") == 0)
    return fe_expand_memory_layer(fc, l, lp, name);
  if (strcmp(op, "linear") == 0)
    return fe_expand_linear_layer(fc, l, lp, name);
  if (strcmp(op, "plstm_graph") == 0 || strcmp(op, "plstm_graph_edge") == 0)
    return fe_expand_graph_layer(fc, l, lp, op, name);
  lay ly = {.grid = strcmp(op, "plstm2d") == 0};
  int rc = lb_open(&ly.b, fc, l, lp, op, name, ly.grid);
  if (rc)
    return rc;
  const ir_shape *xs = &fc->m->tensors[ly.b.x].shape;
  ly.B = xs->d[0];
  ly.X = xs->d[1];
  ly.Y = ly.grid ? xs->d[2] : 1;
  ly.D = xs->d[xs->rank - 1];
  ly.P = ly.X * ly.Y;
  default_opts(&ly);
  if ((rc = read_opts(&ly)))
    return rc;
  rc = ly.grid ? expand_2d(&ly) : expand_1d(&ly);
  if (!rc && fc->m->tensors[ly.b.out_id].producer < 0)
    rc = xy_fail(fc->err, XY_E_INTERNAL, "layer '%s' left its output unset", name);
  return rc;
}
