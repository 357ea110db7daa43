/*
 * memory_schedule.c: one test-time memory module's schedule (spec tnt.md §5.1), a JSON
 * object, into the attributes of memory_scan (ir_memory_attrs). The schedule is part of the
 * model: chunk, reset, read mode and the rest change what is computed, so every field is
 * checked here, with the rules of tnt.md §5.2, each error at the field that breaks it.
 *
 *   {"role": "local", "model": {"kind": "mlp", "expand": 4}, "lr": "token", "chunk": 8,
 *    "reset": 64, "init": "param", "read": "inclusive", "qkproj": "shard"}
 *
 * Fields that take options are a string (the kind, with its defaults) or an object
 * {"kind": ..., options}. docs/spec-format.md ("memory_scan") is the reference.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"

/* memory_scan's own limit on DK, DV and hidden (ir/memory_scan.c). */
#define MEM_WIDTH_MAX ((int64_t)1 << 20)
/* chunk and reset: far above any sequence, and small enough that no product overflows. */
#define MEM_PERIOD_MAX ((int64_t)1 << 40)

typedef struct rd {
  const fe_layer_ctx *fc;
  const json_t *s;      /* the schedule object */
  const char *path;     /* its JSON path */
  int64_t dk;
} rd;

#define FAIL(r, path, ...) fe_fail_at((r)->fc->err, XY_E_SPEC, (r)->fc->src, path, __VA_ARGS__)

/* ------------------------------------------------------------------ pieces */

/* "a, b, c" into out (cut to fit). */
static void list_names(const char *const *names, int n, char *out, size_t cap)
{
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n && len < cap; i++) {
    int w = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", names[i]);
    if (w < 0)
      break;
    len += (size_t)w;
  }
}

/* The index of string v among names, or an error at path naming what and the choices. */
static int name_index(const rd *r, const json_t *v, const char *path, const char *what,
                      const char *const *names, int n, int *out)
{
  if (!json_is_string(v))
    return FAIL(r, path, "must be a string, not %s", fe_json_kind(v));
  for (int i = 0; i < n; i++)
    if (strcmp(json_string_value(v), names[i]) == 0) {
      *out = i;
      return XY_OK;
    }
  char list[256];
  list_names(names, n, list, sizeof list);
  return FAIL(r, path, "unknown %s '%.64s'; expected one of: %s", what, json_string_value(v),
              list);
}

/* A field that is a string from names (absent: index dflt). */
static int enum_field(const rd *r, const char *key, const char *const *names, int n, int dflt,
                      int *out)
{
  const json_t *v = json_object_get(r->s, key);
  *out = dflt;
  if (!v)
    return XY_OK;
  char p[FE_PATH_MAX];
  fe_path_key(p, r->path, key);
  return name_index(r, v, p, key, names, n, out);
}

/* A field that is a kind from names, written as the string "kind" or as an object
 * {"kind": ..., options}: *obj gets the object (NULL for the string form or when absent,
 * which gives index dflt). */
static int kind_field(const rd *r, const char *key, const char *const *names, int n, int dflt,
                      int *out, const json_t **obj)
{
  const json_t *v = json_object_get(r->s, key);
  *out = dflt;
  *obj = NULL;
  if (!v)
    return XY_OK;
  char p[FE_PATH_MAX], kp[FE_PATH_MAX];
  fe_path_key(p, r->path, key);
  if (json_is_string(v))
    return name_index(r, v, p, key, names, n, out);
  if (!json_is_object(v))
    return FAIL(r, p, "must be a string or an object {\"kind\": ...}, not %s", fe_json_kind(v));
  const json_t *k = json_object_get(v, "kind");
  if (!k)
    return FAIL(r, p, "missing required key 'kind'");
  fe_path_key(kp, p, "kind");
  *obj = v;
  return name_index(r, k, kp, key, names, n, out);
}

/* Unknown keys of a field's object form: keys[] are those its kind takes. */
static int check_option_keys(const rd *r, const json_t *obj, const char *key,
                             const char *const *keys, size_t n)
{
  char p[FE_PATH_MAX];
  fe_path_key(p, r->path, key);
  return fe_check_keys(r->fc->err, XY_E_SPEC, r->fc->src, obj, p, keys, n);
}

/* Option key of field's object obj (NULL: absent): a boolean. */
static int opt_bool(const rd *r, const json_t *obj, const char *field, const char *key,
                    bool *out)
{
  const json_t *v = obj ? json_object_get(obj, key) : NULL;
  if (!v)
    return XY_OK;
  char p[FE_PATH_MAX], kp[FE_PATH_MAX];
  fe_path_key(p, r->path, field);
  fe_path_key(kp, p, key);
  if (!json_is_boolean(v))
    return FAIL(r, kp, "must be true or false, not %s", fe_json_kind(v));
  *out = json_is_true(v);
  return XY_OK;
}

/* Option key of field's object obj (NULL: absent): a finite number, >= min when has_min. */
static int opt_num(const rd *r, const json_t *obj, const char *field, const char *key,
                   bool has_min, double min, double *out)
{
  const json_t *v = obj ? json_object_get(obj, key) : NULL;
  if (!v)
    return XY_OK;
  char p[FE_PATH_MAX], kp[FE_PATH_MAX];
  fe_path_key(p, r->path, field);
  fe_path_key(kp, p, key);
  if (!json_is_number(v) || !isfinite(json_number_value(v)))
    return FAIL(r, kp, "must be a finite number, not %s", fe_json_kind(v));
  if (has_min && json_number_value(v) < min)
    return FAIL(r, kp, "must be at least %g, not %g", min, json_number_value(v));
  *out = json_number_value(v);
  return XY_OK;
}

/* An integer at path in 1..max. */
static int int_in_range(const rd *r, const json_t *v, const char *path, int64_t max,
                        const char *why, int64_t *out)
{
  if (!json_is_integer(v))
    return FAIL(r, path, "must be an integer, not %s", fe_json_kind(v));
  json_int_t x = json_integer_value(v);
  if (x < 1)
    return FAIL(r, path, "must be at least 1, not %lld%s", (long long)x, why);
  if (x > max)
    return FAIL(r, path, "must be at most %lld, not %lld%s", (long long)max, (long long)x, why);
  *out = (int64_t)x;
  return XY_OK;
}

/* ------------------------------------------------------------------ fields */

enum { MODEL_LINEAR, MODEL_MLP };

static int read_mlp(const rd *r, const json_t *obj, ir_memory_attrs *a)
{
  static const char *const keys[] = {"kind", "hidden", "expand", "depth", "act", "bias"};
  int rc = check_option_keys(r, obj, "model", keys, XY_ARRAY_LEN(keys));
  if (rc || (rc = opt_bool(r, obj, "model", "bias", &a->bias)))
    return rc;
  char p[FE_PATH_MAX], kp[FE_PATH_MAX];
  fe_path_key(p, r->path, "model");
  const json_t *depth = json_object_get(obj, "depth");
  fe_path_key(kp, p, "depth");
  if (depth && !json_is_integer(depth))
    return FAIL(r, kp, "must be an integer, not %s", fe_json_kind(depth));
  if (depth && json_integer_value(depth) != 2)
    return FAIL(r, kp, "only depth 2 is supported (f(x) = W2 act(W1 x)), not %lld",
                (long long)json_integer_value(depth));
  const json_t *act = json_object_get(obj, "act");
  static const char *const acts[] = {"gelu", "gelu_tanh", "silu"};
  int ai = 0;
  fe_path_key(kp, p, "act");
  if (act && (rc = name_index(r, act, kp, "act", acts, 3, &ai)))
    return rc;
  a->act = ai == 2 ? MEM_ACT_SILU : MEM_ACT_GELU_TANH; /* gelu is the tanh form (TTT) */
  const json_t *hidden = json_object_get(obj, "hidden"), *expand = json_object_get(obj, "expand");
  if (hidden && expand) {
    fe_path_key(kp, p, "expand");
    return FAIL(r, kp, "give 'hidden' or 'expand', not both");
  }
  if (!hidden && !expand)
    return FAIL(r, p, "an mlp memory needs its width: 'hidden' (an integer) or 'expand' "
                "(hidden = expand x DK)");
  fe_path_key(kp, p, hidden ? "hidden" : "expand");
  int64_t x;
  if ((rc = int_in_range(r, hidden ? hidden : expand, kp, MEM_WIDTH_MAX, "", &x)))
    return rc;
  if (expand && x > MEM_WIDTH_MAX / r->dk)
    return FAIL(r, kp, "hidden = expand x DK = %lld x %lld is more than %lld", (long long)x,
                (long long)r->dk, (long long)MEM_WIDTH_MAX);
  a->hidden = expand ? x * r->dk : x;
  return XY_OK;
}

static int read_model(const rd *r, ir_memory_attrs *a)
{
  static const char *const kinds[] = {"linear", "mlp"};
  int k;
  const json_t *obj;
  int rc = kind_field(r, "model", kinds, 2, MODEL_LINEAR, &k, &obj);
  if (rc)
    return rc;
  if (k == MODEL_MLP && !obj) {
    char p[FE_PATH_MAX];
    fe_path_key(p, r->path, "model");
    return FAIL(r, p, "an mlp memory needs its width: write {\"kind\": \"mlp\", \"expand\": 4} "
                "(or \"hidden\")");
  }
  if (k == MODEL_MLP)
    return read_mlp(r, obj, a);
  a->hidden = 0;
  static const char *const keys[] = {"kind", "bias"};
  if (obj && (rc = check_option_keys(r, obj, "model", keys, XY_ARRAY_LEN(keys))))
    return rc;
  return opt_bool(r, obj, "model", "bias", &a->bias);
}

static int read_wrap(const rd *r, ir_memory_attrs *a)
{
  static const char *const kinds[] = {"none", "ln_residual"};
  int k;
  const json_t *obj;
  int rc = kind_field(r, "wrap", kinds, 2, 0, &k, &obj);
  if (rc)
    return rc;
  a->ln_residual = k == 1;
  static const char *const keys[] = {"kind", "eps"};
  if (obj && (rc = check_option_keys(r, obj, "wrap", keys, a->ln_residual ? 2 : 1)))
    return rc;
  return opt_num(r, obj, "wrap", "eps", true, 0.0, &a->ln_eps);
}

static int read_loss(const rd *r, ir_memory_attrs *a)
{
  static const char *const kinds[] = {"l2"};
  static const char *const keys[] = {"kind", "scale"};
  int k;
  const json_t *obj;
  int rc = kind_field(r, "loss", kinds, 1, 0, &k, &obj);
  if (rc || (obj && (rc = check_option_keys(r, obj, "loss", keys, 2))))
    return rc;
  return opt_num(r, obj, "loss", "scale", false, 0.0, &a->loss_scale);
}

/* Granularities the schedule format names but the op does not run yet. */
static int not_yet(const rd *r, const char *key, const char *value)
{
  char p[FE_PATH_MAX];
  fe_path_key(p, r->path, key);
  return FAIL(r, p, "%s '%s' is not supported yet (use 'token')", key, value);
}

enum { LR_TOKEN, LR_TTT, LR_CHUNK };

static int read_lr(const rd *r, ir_memory_attrs *a)
{
  static const char *const kinds[] = {"token", "ttt_matrix", "chunk"};
  int k;
  const json_t *obj;
  int rc = kind_field(r, "lr", kinds, 3, LR_TOKEN, &k, &obj);
  if (rc)
    return rc;
  if (k == LR_CHUNK)
    return not_yet(r, "lr", "chunk");
  static const char *const keys[] = {"kind", "base", "per_head_div"};
  if (obj && (rc = check_option_keys(r, obj, "lr", keys, k == LR_TTT ? 3 : 1)))
    return rc;
  a->ttt_lr = k == LR_TTT;
  if (!a->ttt_lr)
    return XY_OK;
  a->ttt_div = (double)r->dk; /* the reference divides by the head dimension */
  if ((rc = opt_num(r, obj, "lr", "base", false, 0.0, &a->ttt_base)))
    return rc;
  const json_t *div = obj ? json_object_get(obj, "per_head_div") : NULL;
  if (!div || (json_is_string(div) && strcmp(json_string_value(div), "dk") == 0))
    return XY_OK;
  char p[FE_PATH_MAX], kp[FE_PATH_MAX];
  fe_path_key(p, r->path, "lr");
  fe_path_key(kp, p, "per_head_div");
  if (!json_is_number(div) || !isfinite(json_number_value(div)))
    return FAIL(r, kp, "must be a finite number > 0 or \"dk\" (q's last axis), not %s",
                fe_json_kind(div));
  if (json_number_value(div) <= 0)
    return FAIL(r, kp, "must be greater than 0, not %g", json_number_value(div));
  a->ttt_div = json_number_value(div);
  return XY_OK;
}

/* momentum or decay: "none" or "token" (a gate input per token and head). */
static int read_gate(const rd *r, const char *key, bool *on)
{
  static const char *const kinds[] = {"none", "token", "chunk"};
  int k;
  int rc = enum_field(r, key, kinds, 3, 0, &k);
  if (rc)
    return rc;
  if (k == 2)
    return not_yet(r, key, "chunk");
  *on = k == 1;
  return XY_OK;
}

static int read_chunk(const rd *r, ir_memory_attrs *a)
{
  const json_t *v = json_object_get(r->s, "chunk");
  if (!v)
    return FAIL(r, r->path, "missing required key 'chunk' (the chunk size is part of the "
                "model: a chunk's tokens take their gradients at the chunk's start)");
  char p[FE_PATH_MAX];
  fe_path_key(p, r->path, "chunk");
  return int_in_range(r, v, p, MEM_PERIOD_MAX, " (the chunk size)", &a->chunk);
}

static int read_reset(const rd *r, ir_memory_attrs *a)
{
  const json_t *v = json_object_get(r->s, "reset");
  a->reset = 0;
  if (!v || (json_is_string(v) && strcmp(json_string_value(v), "none") == 0))
    return XY_OK;
  char p[FE_PATH_MAX];
  fe_path_key(p, r->path, "reset");
  if (json_is_string(v))
    return FAIL(r, p, "unknown reset '%.64s'; expected \"none\" or an integer >= 1 (the reset "
                "period)", json_string_value(v));
  if (!json_is_integer(v))
    return FAIL(r, p, "must be \"none\" or an integer >= 1 (the reset period), not %s",
                fe_json_kind(v));
  return int_in_range(r, v, p, MEM_PERIOD_MAX, " (the reset period)", &a->reset);
}

static int read_qkproj(const rd *r, ir_memory_attrs *a)
{
  static const char *const kinds[] = {"none", "shard", "chunk"};
  static const mem_qkproj modes[] = {MEM_QK_NONE, MEM_QK_SHARD, MEM_QK_CHUNK};
  static const char *const keys[] = {"kind", "normalize"};
  int k;
  const json_t *obj;
  int rc = kind_field(r, "qkproj", kinds, 3, 0, &k, &obj);
  if (rc || (obj && (rc = check_option_keys(r, obj, "qkproj", keys, 2))))
    return rc;
  a->qkproj = modes[k];
  bool normalize = true;
  if ((rc = opt_bool(r, obj, "qkproj", "normalize", &normalize)))
    return rc;
  if (!normalize) {
    char p[FE_PATH_MAX], kp[FE_PATH_MAX];
    fe_path_key(p, r->path, "qkproj");
    fe_path_key(kp, p, "normalize");
    return FAIL(r, kp, "only normalised keys are supported (P sums k k^T / k.k): normalize "
                "must be true");
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ rules */

static const char *const role_names[] = {"single", "global", "local"};
static const char *const read_names[] = {"inclusive", "chunk_start", "exclusive"};
static const char *const qk_names[] = {"none", "shard", "chunk"};

/* The rules of tnt.md §5.2 that tie fields together, each reported at the field whose
 * value breaks it. */
static int check_rules(const rd *r, const ir_memory_attrs *a, fe_memory_role role)
{
  char p[FE_PATH_MAX];
  if (a->reset > 0 && a->reset % a->chunk != 0) {
    fe_path_key(p, r->path, "reset");
    return FAIL(r, p, "reset %lld is not a multiple of chunk %lld: a chunk may not straddle a "
                "reset", (long long)a->reset, (long long)a->chunk);
  }
  fe_path_key(p, r->path, "qkproj");
  if (a->qkproj != MEM_QK_NONE && role != FE_MEM_LOCAL)
    return FAIL(r, p, "qkproj '%s' needs role 'local' (the Q-K projection is on the local "
                "path only), not role '%s'", qk_names[a->qkproj], role_names[role]);
  if (a->qkproj == MEM_QK_SHARD && a->reset == 0)
    return FAIL(r, p, "qkproj 'shard' needs a reset (the projection sums the keys since the "
                "shard began; without a reset there are no shards)");
  if (!a->ttt_lr)
    return XY_OK;
  /* TTT's learning-rate matrix defines every token's state within a chunk by itself. */
  const char *bad = a->momentum ? "momentum" : a->decay ? "decay" : NULL;
  if (bad) {
    fe_path_key(p, r->path, bad);
    return FAIL(r, p, "%s 'token' is not allowed with lr 'ttt_matrix': it implies momentum "
                "'none' and decay 'none' (TTT has neither)", bad);
  }
  if (a->reset > 0) {
    fe_path_key(p, r->path, "reset");
    return FAIL(r, p, "lr 'ttt_matrix' takes no reset (reset must be \"none\")");
  }
  if (a->qkproj != MEM_QK_NONE) {
    fe_path_key(p, r->path, "qkproj");
    return FAIL(r, p, "lr 'ttt_matrix' takes no Q-K projection (qkproj must be \"none\")");
  }
  if (a->read != MEM_READ_INCLUSIVE) {
    fe_path_key(p, r->path, "read");
    return FAIL(r, p, "lr 'ttt_matrix' reads inclusively (read must be \"inclusive\"), not "
                "'%s'", read_names[a->read]);
  }
  return XY_OK;
}

/* ------------------------------------------------------------------ entry */

int fe_read_memory_schedule(const fe_layer_ctx *fc, const json_t *sched, const char *path,
                            int64_t dk, ir_memory_attrs *attrs, fe_memory_info *info)
{
  rd r = {.fc = fc, .s = sched, .path = path, .dk = dk};
  if (!json_is_object(sched))
    return FAIL(&r, path, "a schedule is an object {\"chunk\": ..., ...}, not %s",
                fe_json_kind(sched));
  if (dk < 1) /* the caller passes a checked shape; "expand" divides by it */
    return FAIL(&r, path, "q's last axis DK must be at least 1, not %lld", (long long)dk);
  static const char *const keys[] = {"role", "model", "wrap", "loss", "lr", "momentum",
                                     "decay", "chunk", "reset", "init", "read", "qkproj"};
  int rc = fe_check_keys(fc->err, XY_E_SPEC, fc->src, sched, path, keys, XY_ARRAY_LEN(keys));
  if (rc)
    return rc;
  ir_memory_attrs a = {.act = MEM_ACT_GELU_TANH, .ln_eps = 1e-6, .loss_scale = 1.0,
                       .ttt_base = 1.0, .ttt_div = 1.0, .chunk = 1,
                       .read = MEM_READ_INCLUSIVE, .qkproj = MEM_QK_NONE};
  static const char *const inits[] = {"param", "zero"};
  int role = 0, init = 0, rmode = 0;
  if ((rc = enum_field(&r, "role", role_names, 3, 0, &role)) || (rc = read_model(&r, &a)) ||
      (rc = read_wrap(&r, &a)) || (rc = read_loss(&r, &a)) || (rc = read_lr(&r, &a)) ||
      (rc = read_gate(&r, "momentum", &a.momentum)) || (rc = read_gate(&r, "decay", &a.decay)) ||
      (rc = read_chunk(&r, &a)) || (rc = read_reset(&r, &a)) ||
      (rc = enum_field(&r, "init", inits, 2, 0, &init)) ||
      (rc = enum_field(&r, "read", read_names, 3, 0, &rmode)) || (rc = read_qkproj(&r, &a)))
    return rc;
  static const mem_read reads[] = {MEM_READ_INCLUSIVE, MEM_READ_CHUNK_START,
                                   MEM_READ_EXCLUSIVE};
  static const fe_memory_role roles[] = {FE_MEM_SINGLE, FE_MEM_GLOBAL, FE_MEM_LOCAL};
  a.read = reads[rmode];
  if ((rc = check_rules(&r, &a, roles[role])))
    return rc;
  *attrs = a;
  info->role = roles[role];
  info->init_zero = init == 1;
  return XY_OK;
}
