/*
 * layer_memory.c: the memory layer, a whole Titans / TTT / TNT test-time memory layer
 * (spec tnt.md §2.1, §3.1, §4.4), expanded into graph-IR ops around one memory_scan per
 * module:
 *
 *   x [B, L, D] -> per module: q, k = l2norm(silu(x Wq^T + bq)) [B, L, H, DK], v likewise
 *   (never normalised) [B, L, H, DV]; theta = lr_max sigmoid(x Wt^T + bt) [B, L, H], eta and
 *   alpha = sigmoid(...) when the schedule has momentum / decay; y_m = memory_scan(...)
 *   -> sum over modules -> [B, L, H*DV] -> per-head RMSNorm -> output projection to D.
 *
 * A module may read another's projections and gates ("proj": "shared:<module>"). Weights
 * are named "<prefix><module>.q.weight" and so on (docs/layers.md, "memory").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layer_build.h"

#define MOD_NAME_MAX 64
#define MODS_MAX 64

typedef struct mem_opts {
  int64_t H, DK, DV;
  bool qkv_bias, qkv_silu, qkv_l2;
  double lr_max;
  bool norm;
  double norm_eps;
  bool outprojection;
} mem_opts;

typedef struct mem_module {
  const char *name;
  char path[FE_PATH_MAX];     /* layers[i].modules[j] */
  ir_memory_attrs a;
  fe_memory_info info;
  int shared;                 /* the module whose projections it reads, or -1: its own */
  int q, k, v, theta, eta, alpha;
  int y;                      /* memory_scan's y [B, L, H, DV] */
} mem_module;

typedef struct mlay {
  fe_lb b;
  mem_opts o;
  int64_t B, L, D;
  mem_module *mods;
  int n;
} mlay;

#define MFAIL(ly, path, ...) LB_FAIL(&(ly)->b, XY_E_SPEC, path, __VA_ARGS__)

/* ------------------------------------------------------------------ reading */

static int read_qkv(mlay *ly)
{
  static const char *const keys[] = {"bias", "silu", "l2norm"};
  json_t *v;
  char p[FE_PATH_MAX];
  int rc = lb_opt_member(&ly->b, ly->b.l, ly->b.lp, "qkv", JSON_OBJECT, "an object", &v, p);
  if (rc || !v)
    return rc;
  if ((rc = fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, v, p, keys, 3)) ||
      (rc = lb_opt_bool(&ly->b, v, p, "bias", &ly->o.qkv_bias)) ||
      (rc = lb_opt_bool(&ly->b, v, p, "silu", &ly->o.qkv_silu)) ||
      (rc = lb_opt_bool(&ly->b, v, p, "l2norm", &ly->o.qkv_l2)))
    return rc;
  return XY_OK;
}

/* "proj": "own" | "shared:<module>", the module an earlier one of this layer. */
static int read_proj(mlay *ly, const json_t *mods, const json_t *mo, int i)
{
  mem_module *md = &ly->mods[i];
  const json_t *v = json_object_get(mo, "proj");
  md->shared = -1;
  if (!v)
    return XY_OK;
  char p[FE_PATH_MAX];
  fe_path_key(p, md->path, "proj");
  if (!json_is_string(v))
    return MFAIL(ly, p, "must be \"own\" or \"shared:<module>\", not %s", fe_json_kind(v));
  const char *s = json_string_value(v);
  if (strcmp(s, "own") == 0)
    return XY_OK;
  if (strncmp(s, "shared:", 7) != 0)
    return MFAIL(ly, p, "'%.64s' is not \"own\" or \"shared:<module>\"", s);
  const char *ref = s + 7;
  for (int j = 0; j < i; j++)
    if (strcmp(ly->mods[j].name, ref) == 0) {
      md->shared = j;
      return XY_OK;
    }
  for (size_t j = (size_t)i; j < json_array_size(mods); j++) {
    const json_t *name = json_object_get(json_array_get(mods, j), "name");
    if (json_is_string(name) && strcmp(json_string_value(name), ref) == 0)
      return MFAIL(ly, p, "module '%.64s' is not an earlier module: a module shares the "
                   "projections of one listed before it", ref);
  }
  char list[512] = "";
  for (int j = 0; j < i; j++)
    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
             ly->mods[j].name);
  return MFAIL(ly, p, "unknown module '%.64s'; expected one of the earlier modules: %s", ref,
               i ? list : "(none: the first module has its own projections)");
}

/* The module's gates (eta with momentum, alpha with decay) must be those of the module
 * whose projections it reads. */
static int check_shared_gates(mlay *ly, int i)
{
  const mem_module *md = &ly->mods[i], *src = &ly->mods[md->shared];
  bool mom = md->a.momentum != src->a.momentum;
  if (!mom && md->a.decay == src->a.decay)
    return XY_OK;
  bool on = mom ? md->a.momentum : md->a.decay;
  char p[FE_PATH_MAX];
  fe_path_key(p, md->path, "proj");
  return MFAIL(ly, p, "module '%s' shares the projections of '%s', but their schedules need "
               "different gates: %s is %s in '%s' and %s in '%s'", md->name, src->name,
               mom ? "momentum (eta)" : "decay (alpha)", on ? "on" : "off", md->name,
               on ? "off" : "on", src->name);
}

static int read_module(mlay *ly, const json_t *mods, int i)
{
  static const char *const keys[] = {"name", "schedule", "proj"};
  mem_module *md = &ly->mods[i];
  char mp[FE_PATH_MAX], p[FE_PATH_MAX];
  fe_path_key(mp, ly->b.lp, "modules");
  fe_path_index(md->path, mp, i);
  const json_t *mo = json_array_get(mods, (size_t)i);
  if (!json_is_object(mo))
    return MFAIL(ly, md->path, "a module is an object {\"name\": ..., \"schedule\": {...}}, "
                 "not %s", fe_json_kind(mo));
  int rc = fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, mo, md->path, keys, 3);
  if (rc)
    return rc;
  const json_t *name = json_object_get(mo, "name");
  fe_path_key(p, md->path, "name");
  if (!name)
    return MFAIL(ly, md->path, "missing required key 'name' (the module's weights are named "
                 "after it)");
  if (!json_is_string(name))
    return MFAIL(ly, p, "must be a string, not %s", fe_json_kind(name));
  md->name = json_string_value(name);
  if (!fe_is_ident(md->name) || strlen(md->name) > MOD_NAME_MAX)
    return MFAIL(ly, p, "'%.64s' is not a valid module name: use letters, digits and '_', not "
                 "starting with a digit, at most %d characters", md->name, MOD_NAME_MAX);
  for (int j = 0; j < i; j++)
    if (strcmp(ly->mods[j].name, md->name) == 0)
      return MFAIL(ly, p, "duplicate module name '%s' (also %s)", md->name, ly->mods[j].path);
  if (strcmp(md->name, "norm") == 0 || strcmp(md->name, "out") == 0)
    return MFAIL(ly, p, "module name '%s' is taken by the layer's own weights (%s.weight)",
                 md->name, md->name);
  const json_t *sched = json_object_get(mo, "schedule");
  if (!sched)
    return MFAIL(ly, md->path, "missing required key 'schedule' (the memory's schedule: at "
                 "least {\"chunk\": N})");
  fe_path_key(p, md->path, "schedule");
  if ((rc = fe_read_memory_schedule(ly->b.fc, sched, p, ly->o.DK, &md->a, &md->info)) ||
      (rc = read_proj(ly, mods, mo, i)))
    return rc;
  return md->shared >= 0 ? check_shared_gates(ly, i) : XY_OK;
}

static int read_modules(mlay *ly)
{
  const json_t *mods = json_object_get(ly->b.l, "modules");
  char p[FE_PATH_MAX];
  fe_path_key(p, ly->b.lp, "modules");
  if (!mods)
    return MFAIL(ly, ly->b.lp, "missing required key 'modules': the layer's memory modules, "
                 "[{\"name\": ..., \"schedule\": {\"chunk\": N, ...}}, ...]");
  if (!json_is_array(mods))
    return MFAIL(ly, p, "must be an array of modules, not %s", fe_json_kind(mods));
  size_t n = json_array_size(mods);
  if (n == 0)
    return MFAIL(ly, p, "the layer has no modules; give at least one");
  if (n > MODS_MAX)
    return LB_FAIL(&ly->b, XY_E_LIMIT, p, "%zu modules are more than the limit of %d", n,
                   MODS_MAX);
  ly->mods = calloc(n, sizeof *ly->mods);
  if (!ly->mods)
    return lb_nomem(&ly->b);
  for (size_t i = 0; i < n; i++) {
    ly->n = (int)i + 1;
    int rc = read_module(ly, mods, (int)i);
    if (rc)
      return rc;
  }
  return XY_OK;
}

static int read_opts(mlay *ly)
{
  static const char *const keys[] = {"op", "name", "input", "output", "weights", "heads", "dk",
                                     "dv", "qkv", "lr_max", "norm", "outprojection", "modules",
                                     "combine"};
  static const char *const combines[] = {"sum"};
  mem_opts *o = &ly->o;
  const json_t *l = ly->b.l;
  const char *lp = ly->b.lp;
  *o = (mem_opts){.H = 1, .qkv_silu = true, .qkv_l2 = true, .lr_max = 1.0, .norm = true,
                  .norm_eps = 1e-5, .outprojection = true};
  int combine = 0, rc;
  char p[FE_PATH_MAX];
  if ((rc = fe_check_keys(ly->b.fc->err, XY_E_SPEC, ly->b.fc->src, l, lp, keys,
                          XY_ARRAY_LEN(keys))) ||
      (rc = lb_opt_int(&ly->b, l, lp, "heads", 1, &o->H)))
    return rc;
  o->DK = o->DV = ly->D / o->H;
  if ((rc = lb_opt_int(&ly->b, l, lp, "dk", 1, &o->DK)) ||
      (rc = lb_opt_int(&ly->b, l, lp, "dv", 1, &o->DV)) || (rc = read_qkv(ly)) ||
      (rc = lb_opt_num(&ly->b, l, lp, "lr_max", &o->lr_max)) ||
      (rc = lb_read_norm(&ly->b, false, &o->norm, &o->norm_eps, NULL)) ||
      (rc = lb_opt_bool(&ly->b, l, lp, "outprojection", &o->outprojection)) ||
      (rc = lb_opt_enum(&ly->b, l, lp, "combine", combines, 1, &combine)))
    return rc;
  fe_path_key(p, lp, "lr_max");
  if (!(o->lr_max > 0))
    return MFAIL(ly, p, "must be positive (theta = lr_max sigmoid(...)), not %g", o->lr_max);
  if (o->DK < 1 || o->DV < 1)
    return MFAIL(ly, lp, "dim %lld is too small for %lld heads (dk = dv = 0)",
                 (long long)ly->D, (long long)o->H);
  if (!o->outprojection && o->H * o->DV != ly->D)
    return MFAIL(ly, lp, "without an output projection, heads*dv = %lld*%lld = %lld must "
                 "equal dim %lld", (long long)o->H, (long long)o->DV,
                 (long long)(o->H * o->DV), (long long)ly->D);
  return read_modules(ly);
}

/* ------------------------------------------------------------------ building */

/* "<module>.<part>" into out. */
static const char *part(char *out, size_t n, const mem_module *md, const char *what)
{
  snprintf(out, n, "%s.%s", md->name, what);
  return out;
}

/* q, k ([B, L, H, DK]) or v ([B, L, H, DV]): linear, SiLU, l2 per head (q and k). */
static int projection(mlay *ly, const mem_module *md, const char *ref, int64_t F, bool l2,
                      int *out)
{
  const mem_opts *o = &ly->o;
  int64_t N = o->H * F, ws[] = {N, ly->D}, bs[] = {N}, to[] = {ly->B, ly->L, o->H, F};
  double r = 1.0 / sqrt((double)ly->D);
  char wname[160], bname[160], what[160];
  snprintf(wname, sizeof wname, "%s.%s.weight", md->name, ref);
  snprintf(bname, sizeof bname, "%s.%s.bias", md->name, ref);
  int w, b = -1, y, rc;
  snprintf(what, sizeof what, "%s.%s_proj", md->name, ref);
  if ((rc = lb_weight(&ly->b, wname, 2, ws, -r, r, &w)) ||
      (o->qkv_bias && (rc = lb_weight(&ly->b, bname, 1, bs, -0.1, 0.1, &b))) ||
      (rc = lb_linear(&ly->b, what, ly->b.x, w, b, 1, 1, N, IR_W_GFSC, 1.0, false, &y)))
    return rc;
  snprintf(what, sizeof what, "%s.%s_silu", md->name, ref);
  if (o->qkv_silu && (rc = lb_activation(&ly->b, what, y, IR_ACT_SILU, 0.0, &y)))
    return rc;
  snprintf(what, sizeof what, "%s.%s_l2", md->name, ref);
  if (l2 && (rc = lb_norm(&ly->b, what, y, -1, (ir_norm_attrs){o->H, 1e-12, true}, false, &y)))
    return rc;
  snprintf(what, sizeof what, "%s.%s", md->name, ref);
  return lb_reshape(&ly->b, what, y, 4, to, out);
}

/* A gate [B, L, H]: p sigmoid(x W^T + b); the bias range sets how open it is at random. */
static int gate(mlay *ly, const mem_module *md, const char *ref, double p, double blo,
                double bhi, int *out)
{
  int64_t H = ly->o.H, ws[] = {H, ly->D}, bs[] = {H};
  double r = 1.0 / sqrt((double)ly->D);
  char wname[160], bname[160], what[160];
  snprintf(wname, sizeof wname, "%s.%s.weight", md->name, ref);
  snprintf(bname, sizeof bname, "%s.%s.bias", md->name, ref);
  snprintf(what, sizeof what, "%s.%s_pre", md->name, ref);
  int w, b, z, rc;
  if ((rc = lb_weight(&ly->b, wname, 2, ws, -r, r, &w)) ||
      (rc = lb_weight(&ly->b, bname, 1, bs, blo, bhi, &b)) ||
      (rc = lb_linear(&ly->b, what, ly->b.x, w, b, 1, 1, H, IR_W_GFSC, 1.0, false, &z)))
    return rc;
  snprintf(what, sizeof what, "%s.%s", md->name, ref);
  return lb_activation(&ly->b, what, z, p == 1.0 ? IR_ACT_SIGMOID : IR_ACT_SIGMOID_SCALED, p,
                       out);
}

static int own_projections(mlay *ly, mem_module *md)
{
  const mem_opts *o = &ly->o;
  int rc;
  md->eta = md->alpha = -1;
  /* theta in (0, lr_max), about lr_max/4 at random; eta about 1/2; alpha about 1/8 */
  if ((rc = projection(ly, md, "q", o->DK, o->qkv_l2, &md->q)) ||
      (rc = projection(ly, md, "k", o->DK, o->qkv_l2, &md->k)) ||
      (rc = projection(ly, md, "v", o->DV, false, &md->v)) ||
      (rc = gate(ly, md, "theta", o->lr_max, -2.0, 0.0, &md->theta)) ||
      (md->a.momentum && (rc = gate(ly, md, "eta", 1.0, -1.0, 1.0, &md->eta))) ||
      (md->a.decay && (rc = gate(ly, md, "alpha", 1.0, -3.0, -1.0, &md->alpha))))
    return rc;
  return XY_OK;
}

/* The module's own slow weights and its memory_scan. */
static int memory(mlay *ly, mem_module *md)
{
  const mem_opts *o = &ly->o;
  const ir_memory_attrs *a = &md->a;
  mem_desc desc = {.dk = o->DK, .dv = o->DV, .dh = a->hidden, .bias = a->bias};
  int64_t ws[] = {o->H, mem_weights_count(&desc)}, ls[] = {o->H, o->DV}, cs[] = {a->chunk};
  int w = -1, g = -1, be = -1, off = -1, rc;
  char n1[160];
  if ((!md->info.init_zero &&
       (rc = lb_weight(&ly->b, part(n1, sizeof n1, md, "W_init"), 2, ws, -0.1, 0.1, &w))) ||
      (a->ln_residual &&
       ((rc = lb_weight(&ly->b, part(n1, sizeof n1, md, "ln_gamma"), 2, ls, 0.5, 1.5, &g)) ||
        (rc = lb_weight(&ly->b, part(n1, sizeof n1, md, "ln_beta"), 2, ls, -0.1, 0.1, &be)))) ||
      (a->ttt_lr && (rc = lb_weight(&ly->b, part(n1, sizeof n1, md, "ttt_offset"), 1, cs,
                                    -0.05, 0.05, &off))))
    return rc;
  int ins[] = {md->q, md->k, md->v, md->theta, md->eta, md->alpha, w, g, be, off, -1};
  int oi;
  part(n1, sizeof n1, md, "memory");
  if ((rc = lb_op_begin(&ly->b, IR_OP_MEMORY_SCAN, n1, ins, XY_ARRAY_LEN(ins), &oi)))
    return rc;
  ly->b.fc->m->ops[oi].attr.memory = *a;
  return lb_op_end(&ly->b, oi, n1, false, &md->y);
}

/* The modules' sum [B, L, H*DV], then norm and output projection; the last op writes the
 * layer's output. */
static int finish(mlay *ly)
{
  const mem_opts *o = &ly->o;
  int64_t F = o->H * o->DV, flat[] = {ly->B, ly->L, F};
  int y = ly->mods[0].y, rc, oi;
  char what[160];
  for (int i = 1; i < ly->n; i++)
    if ((rc = lb_binary(&ly->b, part(what, sizeof what, &ly->mods[i], "add"), y, ly->mods[i].y,
                        IR_BIN_ADD, false, &y)))
      return rc;
  bool last = !o->norm && !o->outprojection;
  if ((rc = lb_op_begin(&ly->b, IR_OP_RESHAPE, "heads", &y, 1, &oi)))
    return rc;
  ly->b.fc->m->ops[oi].attr.reshape = ir_shape_make(3, flat);
  if ((rc = lb_op_end(&ly->b, oi, "heads", last, &y)))
    return rc;
  if (o->norm) {
    int64_t ss[] = {o->H, o->DV};
    int s;
    if ((rc = lb_weight(&ly->b, "norm.weight", 2, ss, 0.5, 1.5, &s)) ||
        (rc = lb_norm(&ly->b, "norm", y, s, (ir_norm_attrs){o->H, o->norm_eps, false},
                      !o->outprojection, &y)))
      return rc;
  }
  if (o->outprojection) {
    int64_t ws[] = {ly->D, F};
    double r = 1.0 / sqrt((double)F);
    int w;
    if ((rc = lb_weight(&ly->b, "out.weight", 2, ws, -r, r, &w)) ||
        (rc = lb_linear(&ly->b, "out", y, w, -1, 1, 1, ly->D, IR_W_GFSC, 1.0, true, &y)))
      return rc;
  }
  return XY_OK;
}

static int expand(mlay *ly)
{
  const char *lp = ly->b.lp;
  for (int i = 0; i < ly->n; i++) {
    mem_module *md = &ly->mods[i];
    ly->b.lp = md->path; /* the module's ops and errors point at it */
    int rc;
    if (md->shared >= 0) {
      const mem_module *src = &ly->mods[md->shared];
      md->q = src->q, md->k = src->k, md->v = src->v;
      md->theta = src->theta, md->eta = src->eta, md->alpha = src->alpha;
    } else if ((rc = own_projections(ly, md))) {
      return rc;
    }
    if ((rc = memory(ly, md)))
      return rc;
  }
  ly->b.lp = lp;
  return finish(ly);
}

/* ------------------------------------------------------------------ entry */

int fe_expand_memory_layer(fe_layer_ctx *fc, const json_t *l, const char *lp,
                           const char *name)
{
  mlay ly = {.n = 0};
  int rc = lb_open(&ly.b, fc, l, lp, "memory", name, false);
  if (!rc) {
    const ir_shape *xs = &fc->m->tensors[ly.b.x].shape;
    ly.B = xs->d[0];
    ly.L = xs->d[1];
    ly.D = xs->d[2];
    rc = read_opts(&ly);
  }
  if (!rc)
    rc = expand(&ly);
  if (!rc && fc->m->tensors[ly.b.out_id].producer < 0)
    rc = xy_fail(fc->err, XY_E_INTERNAL, "layer '%s' left its output unset", name);
  free(ly.mods);
  return rc;
}
