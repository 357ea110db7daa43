/* kernel_ir.c: kernel-IR module, plan and builder. */
#include "kernel_ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ module and plan */

kir_module *kir_module_new(const char *name)
{
  kir_module *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->name = xy_arena_strdup(&m->arena, name);
  if (!m->name) {
    free(m);
    return NULL;
  }
  return m;
}

void kir_module_free(kir_module *m)
{
  if (!m)
    return;
  for (int i = 0; i < m->n_kernels; i++) {
    kir_kernel *k = m->kernels[i];
    free(k->params);
    free(k->arrays);
    free(k->vars);
    free(k);
  }
  for (int i = 0; i < m->n_buffers; i++)
    free((void *)m->buffers[i].init);
  free(m->kernels);
  free(m->buffers);
  free(m->launches);
  free(m->forms);
  xy_arena_free(&m->arena);
  free(m);
}

int kir_add_buffer(kir_module *m, const char *name, kir_type elem, int64_t count,
                   kir_buf_role role, int io_index, const void *init)
{
  if (!xy_grow((void **)&m->buffers, &m->cap_buffers, (size_t)m->n_buffers + 1,
               sizeof *m->buffers))
    return -1;
  kir_buffer *b = &m->buffers[m->n_buffers];
  memset(b, 0, sizeof *b);
  b->name = xy_arena_strdup(&m->arena, name);
  if (!b->name)
    return -1;
  b->elem = elem;
  b->count = count;
  b->role = role;
  b->io_index = io_index;
  if (init) {
    size_t bytes = (size_t)count * 4; /* float and int32 */
    void *copy = malloc(bytes ? bytes : 1);
    if (!copy)
      return -1;
    memcpy(copy, init, bytes);
    b->init = copy;
  }
  return m->n_buffers++;
}

int kir_add_launch(kir_module *m, int kernel, const int64_t groups[3], const kir_arg *args,
                   int n_args, double flops, double bytes)
{
  if (!xy_grow((void **)&m->launches, &m->cap_launches, (size_t)m->n_launches + 1,
               sizeof *m->launches))
    return -1;
  kir_launch *l = &m->launches[m->n_launches];
  memset(l, 0, sizeof *l);
  l->kernel = kernel;
  for (int i = 0; i < 3; i++)
    l->groups[i] = groups[i];
  if (n_args > 0) {
    l->args = xy_arena_alloc(&m->arena, sizeof *args * (size_t)n_args);
    if (!l->args)
      return -1;
    memcpy(l->args, args, sizeof *args * (size_t)n_args);
  }
  l->n_args = n_args;
  l->flops = flops;
  l->bytes = bytes;
  return m->n_launches++;
}

int kir_find_kernel(const kir_module *m, const char *name)
{
  for (int i = 0; i < m->n_kernels; i++)
    if (strcmp(m->kernels[i]->name, name) == 0)
      return i;
  return -1;
}

/* ------------------------------------------------------------------ names */

const char *kir_binop_name(kir_binop op)
{
  static const char *const names[KB_COUNT] = {
    [KB_ADD] = "+", [KB_SUB] = "-", [KB_MUL] = "*", [KB_DIV] = "/", [KB_REM] = "%",
    [KB_MIN] = "min", [KB_MAX] = "max", [KB_LT] = "<", [KB_LE] = "<=", [KB_GT] = ">",
    [KB_GE] = ">=", [KB_EQ] = "==", [KB_NE] = "!=", [KB_AND] = "&&", [KB_OR] = "||",
  };
  return (int)op >= 0 && op < KB_COUNT ? names[op] : "?";
}

const char *kir_func_name(kir_func f)
{
  static const char *const names[KF_COUNT] = {
    [KF_EXP] = "exp", [KF_LOG] = "log", [KF_TANH] = "tanh", [KF_SQRT] = "sqrt",
    [KF_FABS] = "fabs", [KF_FMA] = "fma",
  };
  return (int)f >= 0 && f < KF_COUNT ? names[f] : "?";
}

/* ------------------------------------------------------------------ builder */

static void fail(kir_builder *b, const char *why)
{
  if (!b->failed)
    snprintf(b->why, sizeof b->why, "%s", why);
  b->failed = true;
}

void kb_init(kir_builder *b, kir_module *m)
{
  memset(b, 0, sizeof *b);
  b->m = m;
}

int kb_kernel(kir_builder *b, const char *name, int wg, int n_axes, const char *doc)
{
  kir_module *m = b->m;
  kir_kernel *k = calloc(1, sizeof *k);
  if (!k || !xy_grow((void **)&m->kernels, &m->cap_kernels, (size_t)m->n_kernels + 1,
                     sizeof *m->kernels)) {
    free(k);
    fail(b, "out of memory");
    return -1;
  }
  k->name = xy_arena_strdup(&m->arena, name);
  k->doc = doc ? xy_arena_strdup(&m->arena, doc) : NULL;
  if (!k->name || (doc && !k->doc)) {
    free(k);
    fail(b, "out of memory");
    return -1;
  }
  k->wg = wg;
  k->n_axes = n_axes;
  m->kernels[m->n_kernels] = k;
  b->k = k;
  b->depth = 0;
  b->tail[0] = &k->body;
  b->open[0] = NULL;
  return m->n_kernels++;
}

int kb_finish(kir_builder *b, xy_error *err)
{
  if (!b->failed && b->depth != 0)
    fail(b, "a block is still open at the end of the kernel");
  const char *kname = b->k ? b->k->name : "?";
  b->k = NULL;
  if (b->failed)
    return xy_fail(err, strcmp(b->why, "out of memory") == 0 ? XY_E_NOMEM : XY_E_INTERNAL,
                   "building kernel %s: %s", kname, b->why);
  return XY_OK;
}

static int add_array(kir_builder *b, const char *name, kir_space space, kir_type elem,
                     int64_t count, bool read_only)
{
  kir_kernel *k = b->k;
  if (!k) {
    fail(b, "array outside a kernel");
    return -1;
  }
  if (!xy_grow((void **)&k->arrays, &k->cap_arrays, (size_t)k->n_arrays + 1,
               sizeof *k->arrays)) {
    fail(b, "out of memory");
    return -1;
  }
  kir_array *a = &k->arrays[k->n_arrays];
  a->name = xy_arena_strdup(&b->m->arena, name);
  if (!a->name) {
    fail(b, "out of memory");
    return -1;
  }
  a->space = space;
  a->elem = elem;
  a->lanes = 1;
  a->count = count;
  a->read_only = read_only;
  return k->n_arrays++;
}

static int add_var(kir_builder *b, const char *name, kir_type type, bool is_param)
{
  kir_kernel *k = b->k;
  if (!k) {
    fail(b, "variable outside a kernel");
    return -1;
  }
  if (!xy_grow((void **)&k->vars, &k->cap_vars, (size_t)k->n_vars + 1, sizeof *k->vars)) {
    fail(b, "out of memory");
    return -1;
  }
  kir_var *v = &k->vars[k->n_vars];
  v->name = xy_arena_strdup(&b->m->arena, name);
  if (!v->name) {
    fail(b, "out of memory");
    return -1;
  }
  v->type = type;
  v->lanes = 1;
  v->is_param = is_param;
  return k->n_vars++;
}

static bool add_param(kir_builder *b, bool is_array, int id)
{
  kir_kernel *k = b->k;
  if (id < 0)
    return false;
  if (!xy_grow((void **)&k->params, &k->cap_params, (size_t)k->n_params + 1,
               sizeof *k->params)) {
    fail(b, "out of memory");
    return false;
  }
  k->params[k->n_params].is_array = is_array;
  k->params[k->n_params].id = id;
  k->n_params++;
  return true;
}

int kb_global(kir_builder *b, const char *name, kir_type elem, int64_t count, bool read_only)
{
  int id = add_array(b, name, KIR_GLOBAL, elem, count, read_only);
  return add_param(b, true, id) ? id : -1;
}

int kb_int_param(kir_builder *b, const char *name)
{
  int id = add_var(b, name, KT_INT, true);
  return add_param(b, false, id) ? id : -1;
}

int kb_local(kir_builder *b, const char *name, kir_type elem, int64_t count)
{
  return add_array(b, name, KIR_LOCAL, elem, count, false);
}

static kir_stmt *new_stmt(kir_builder *b, kir_stmt_kind kind)
{
  if (!b->k) {
    fail(b, "statement outside a kernel");
    return NULL;
  }
  kir_stmt *s = xy_arena_alloc(&b->m->arena, sizeof *s);
  if (!s) {
    fail(b, "out of memory");
    return NULL;
  }
  s->kind = kind;
  *b->tail[b->depth] = s;
  b->tail[b->depth] = &s->next;
  return s;
}

static void open_block(kir_builder *b, kir_stmt *s, kir_stmt **first)
{
  if (b->depth + 1 >= KIR_MAX_DEPTH) {
    fail(b, "blocks nested too deeply");
    return;
  }
  b->depth++;
  b->open[b->depth] = s;
  b->tail[b->depth] = first;
}

int kb_private(kir_builder *b, const char *name, kir_type elem, int64_t count)
{
  int id = add_array(b, name, KIR_PRIVATE, elem, count, false);
  kir_stmt *s = new_stmt(b, KS_DECL_ARRAY);
  if (s)
    s->id = id;
  return id;
}

int kb_private_vec(kir_builder *b, const char *name, int lanes, int64_t count)
{
  int id = add_array(b, name, KIR_PRIVATE, KT_FLOAT, count, false);
  if (id >= 0)
    b->k->arrays[id].lanes = lanes;
  kir_stmt *s = new_stmt(b, KS_DECL_ARRAY);
  if (s)
    s->id = id;
  return id;
}

int kb_let(kir_builder *b, const char *name, kir_type type, kir_expr *init)
{
  int id = add_var(b, name, type, false);
  if (id >= 0 && init)
    b->k->vars[id].lanes = init->lanes;
  kir_stmt *s = new_stmt(b, KS_DECL);
  if (s) {
    s->id = id;
    s->a = init;
  }
  return id;
}

void kb_set(kir_builder *b, int var, kir_expr *value)
{
  kir_stmt *s = new_stmt(b, KS_ASSIGN);
  if (s) {
    s->id = var;
    s->a = value;
  }
}

void kb_store(kir_builder *b, int array, kir_expr *idx, kir_expr *value)
{
  kir_stmt *s = new_stmt(b, KS_STORE);
  if (s) {
    s->id = array;
    s->idx = idx;
    s->a = value;
  }
}

int kb_for(kir_builder *b, const char *name, kir_expr *lo, kir_expr *hi)
{
  int id = add_var(b, name, KT_INT, false);
  kir_stmt *s = new_stmt(b, KS_FOR);
  if (!s)
    return -1;
  s->id = id;
  s->a = lo;
  s->b = hi;
  open_block(b, s, &s->body);
  return id;
}

int kb_parfor(kir_builder *b, const char *name, kir_expr *count)
{
  int id = add_var(b, name, KT_INT, false);
  kir_stmt *s = new_stmt(b, KS_PARFOR);
  if (!s)
    return -1;
  s->id = id;
  s->a = count;
  open_block(b, s, &s->body);
  return id;
}

void kb_if(kir_builder *b, kir_expr *cond)
{
  kir_stmt *s = new_stmt(b, KS_IF);
  if (!s)
    return;
  s->a = cond;
  open_block(b, s, &s->body);
}

void kb_else(kir_builder *b)
{
  kir_stmt *s = b->open[b->depth];
  if (b->depth == 0 || !s || s->kind != KS_IF || s->else_body) {
    fail(b, "else without an open if");
    return;
  }
  b->tail[b->depth] = &s->else_body;
}

void kb_end(kir_builder *b)
{
  if (b->depth == 0) {
    fail(b, "end without an open block");
    return;
  }
  b->depth--;
}

void kb_comment(kir_builder *b, const char *fmt, ...)
{
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  kir_stmt *s = new_stmt(b, KS_COMMENT);
  if (!s)
    return;
  s->text = xy_arena_strdup(&b->m->arena, text);
  if (!s->text)
    fail(b, "out of memory");
}

/* ------------------------------------------------------------------ expressions */

static kir_expr *new_expr(kir_builder *b, kir_expr_kind kind, kir_type type)
{
  kir_expr *e = xy_arena_alloc(&b->m->arena, sizeof *e);
  if (!e) {
    fail(b, "out of memory");
    return NULL;
  }
  e->kind = kind;
  e->type = type;
  e->lanes = 1;
  return e;
}

kir_expr *kx_int(kir_builder *b, int64_t v)
{
  kir_expr *e = new_expr(b, KE_INT, KT_INT);
  if (e)
    e->ival = v;
  return e;
}

kir_expr *kx_flt(kir_builder *b, double v)
{
  kir_expr *e = new_expr(b, KE_FLOAT, KT_FLOAT);
  if (e)
    e->fval = v;
  return e;
}

kir_expr *kx_var(kir_builder *b, int var)
{
  if (!b->k || var < 0 || var >= b->k->n_vars) {
    fail(b, "reference to an unknown variable");
    return NULL;
  }
  kir_expr *e = new_expr(b, KE_VAR, b->k->vars[var].type);
  if (e) {
    e->id = var;
    e->lanes = b->k->vars[var].lanes;
  }
  return e;
}

kir_expr *kx_load(kir_builder *b, int array, kir_expr *idx)
{
  if (!b->k || array < 0 || array >= b->k->n_arrays || !idx) {
    fail(b, "load from an unknown array");
    return NULL;
  }
  kir_expr *e = new_expr(b, KE_LOAD, b->k->arrays[array].elem);
  if (e) {
    e->id = array;
    e->a = idx;
    e->lanes = b->k->arrays[array].lanes;
  }
  return e;
}

static bool is_int(const kir_expr *e, int64_t v)
{
  return e && e->kind == KE_INT && e->ival == v;
}

/* Integer constant folding keeps generated index arithmetic readable. */
static bool fold_int(kir_binop op, int64_t x, int64_t y, int64_t *out)
{
  switch (op) {
  case KB_ADD: return !__builtin_add_overflow(x, y, out);
  case KB_SUB: return !__builtin_sub_overflow(x, y, out);
  case KB_MUL: return !__builtin_mul_overflow(x, y, out);
  case KB_DIV: if (y <= 0 || x < 0) return false; *out = x / y; return true;
  case KB_REM: if (y <= 0 || x < 0) return false; *out = x % y; return true;
  case KB_MIN: *out = x < y ? x : y; return true;
  case KB_MAX: *out = x > y ? x : y; return true;
  default: return false;
  }
}

kir_expr *kx_bin(kir_builder *b, kir_binop op, kir_expr *x, kir_expr *y)
{
  if (!x || !y) {
    fail(b, "missing operand");
    return NULL;
  }
  int64_t v;
  if (x->kind == KE_INT && y->kind == KE_INT && fold_int(op, x->ival, y->ival, &v))
    return kx_int(b, v);
  if (x->type == KT_INT && y->type == KT_INT) {
    if (op == KB_ADD && is_int(x, 0)) return y;
    if ((op == KB_ADD || op == KB_SUB) && is_int(y, 0)) return x;
    if (op == KB_MUL && (is_int(x, 1))) return y;
    if ((op == KB_MUL || op == KB_DIV) && is_int(y, 1)) return x;
    if (op == KB_MUL && (is_int(x, 0) || is_int(y, 0))) return kx_int(b, 0);
  }
  kir_type t = op >= KB_LT ? KT_BOOL : x->type;
  kir_expr *e = new_expr(b, KE_BINARY, t);
  if (e) {
    e->id = op;
    e->a = x;
    e->b = y;
    e->lanes = x->lanes > y->lanes ? x->lanes : y->lanes;
  }
  return e;
}

kir_expr *kx_un(kir_builder *b, kir_unop op, kir_expr *x)
{
  if (!x) {
    fail(b, "missing operand");
    return NULL;
  }
  if (op == KU_TO_FLOAT && x->kind == KE_INT)
    return kx_flt(b, (double)x->ival);
  kir_type t = op == KU_TO_FLOAT ? KT_FLOAT : op == KU_TO_INT ? KT_INT : op == KU_NOT ? KT_BOOL : x->type;
  kir_expr *e = new_expr(b, KE_UNARY, t);
  if (e) {
    e->id = op;
    e->a = x;
    e->lanes = x->lanes;
  }
  return e;
}

kir_expr *kx_call(kir_builder *b, kir_func f, kir_expr *x, kir_expr *y, kir_expr *z)
{
  if (!x || (f == KF_FMA && (!y || !z))) {
    fail(b, "missing operand");
    return NULL;
  }
  kir_expr *e = new_expr(b, KE_CALL, KT_FLOAT);
  if (e) {
    e->id = f;
    e->a = x;
    e->b = y;
    e->c = z;
    e->lanes = x->lanes; /* one-operand functions apply lane by lane to a vector */
  }
  return e;
}

kir_expr *kx_sel(kir_builder *b, kir_expr *cond, kir_expr *x, kir_expr *y)
{
  if (!cond || !x || !y) {
    fail(b, "missing operand");
    return NULL;
  }
  kir_expr *e = new_expr(b, KE_SELECT, x->type);
  if (e) {
    e->a = cond;
    e->b = x;
    e->c = y;
    e->lanes = x->lanes;
  }
  return e;
}

kir_expr *kx_vload(kir_builder *b, int array, kir_expr *idx, int lanes)
{
  if (lanes == 1)
    return kx_load(b, array, idx);
  if (!b->k || array < 0 || array >= b->k->n_arrays || !idx) {
    fail(b, "vector load from an unknown array");
    return NULL;
  }
  kir_expr *e = new_expr(b, KE_VLOAD, b->k->arrays[array].elem);
  if (e) {
    e->id = array;
    e->a = idx;
    e->lanes = lanes;
  }
  return e;
}

kir_expr *kx_splat(kir_builder *b, kir_expr *x, int lanes)
{
  if (!x || lanes == 1 || x->lanes == lanes)
    return x;
  kir_expr *e = new_expr(b, KE_SPLAT, x->type);
  if (e) {
    e->a = x;
    e->lanes = lanes;
  }
  return e;
}

kir_expr *kx_hsum(kir_builder *b, kir_expr *v)
{
  if (!v || v->lanes == 1)
    return v;
  kir_expr *e = new_expr(b, KE_HSUM, v->type);
  if (e)
    e->a = v;
  return e;
}

kir_expr *kx_lane(kir_builder *b, kir_expr *v, int lane)
{
  if (!v || v->lanes == 1)
    return v;
  kir_expr *e = new_expr(b, KE_LANE, v->type);
  if (e) {
    e->a = v;
    e->ival = lane;
  }
  return e;
}

kir_expr *kx_group(kir_builder *b, int axis)
{
  kir_expr *e = new_expr(b, KE_GROUP_ID, KT_INT);
  if (e)
    e->ival = axis;
  return e;
}

kir_expr *kx_mad(kir_builder *b, kir_expr *x, int64_t s, kir_expr *y)
{
  return kx_add(b, kx_mul(b, x, kx_int(b, s)), y);
}
