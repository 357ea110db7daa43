/* kir_verify.c: checks the kernel IR's rules (see kernel_ir.h) and the launch plan. */
#include <stdlib.h>
#include <string.h>

#include "kernel_ir.h"

typedef struct checker {
  const kir_kernel *k;
  bool *var_live;      /* in scope now */
  bool *var_seen;      /* declared somewhere already */
  int *var_depth;      /* parfor depth at declaration */
  bool *arr_live;      /* private arrays in scope */
  int parfor_depth;
  xy_error *err;
} checker;

static int bad(checker *c, const char *fmt, const char *what)
{
  return xy_fail(c->err, XY_E_INTERNAL, "kernel %s: %s%s", c->k->name, fmt, what ? what : "");
}

static int check_expr(checker *c, const kir_expr *e)
{
  if (!e)
    return bad(c, "missing expression", NULL);
  const kir_kernel *k = c->k;
  int rc;
  switch (e->kind) {
  case KE_INT:
    return e->type == KT_INT ? XY_OK : bad(c, "int constant of another type", NULL);
  case KE_FLOAT:
    return e->type == KT_FLOAT ? XY_OK : bad(c, "float constant of another type", NULL);
  case KE_GROUP_ID:
    if (e->ival < 0 || e->ival >= k->n_axes)
      return bad(c, "group id of an axis the kernel does not use", NULL);
    return XY_OK;
  case KE_VLOAD: {
    if (e->id < 0 || e->id >= k->n_arrays)
      return bad(c, "vector load from an unknown array", NULL);
    const kir_array *a = &k->arrays[e->id];
    if (a->lanes != 1 || a->elem != KT_FLOAT || e->type != KT_FLOAT)
      return bad(c, "vector load from an array that does not hold floats: ", a->name);
    if (a->space == KIR_PRIVATE && !c->arr_live[e->id])
      return bad(c, "private array used out of scope: ", a->name);
    if ((rc = check_expr(c, e->a)))
      return rc;
    if (e->a->type != KT_INT || e->a->lanes != 1)
      return bad(c, "non-integer index into ", a->name);
    if (e->a->kind == KE_INT && (e->a->ival < 0 || e->a->ival + e->lanes > a->count))
      return bad(c, "constant index out of bounds of ", a->name);
    return XY_OK;
  }
  case KE_SPLAT:
    if ((rc = check_expr(c, e->a)))
      return rc;
    if (e->a->lanes != 1 || e->a->type != KT_FLOAT)
      return bad(c, "splat of a non-scalar or non-float", NULL);
    return XY_OK;
  case KE_LANE:
    if ((rc = check_expr(c, e->a)))
      return rc;
    if (e->a->kind != KE_VAR || e->a->lanes < 2 || e->a->type != KT_FLOAT || e->lanes != 1 ||
        e->ival < 0 || e->ival >= e->a->lanes)
      return bad(c, "lane of something other than a float vector variable, or out of range", NULL);
    return XY_OK;
  case KE_HSUM:
    if ((rc = check_expr(c, e->a)))
      return rc;
    if (e->a->lanes < 2 || e->lanes != 1 || e->a->type != KT_FLOAT)
      return bad(c, "horizontal sum of a non-vector", NULL);
    return XY_OK;
  case KE_VAR:
    if (e->id < 0 || e->id >= k->n_vars)
      return bad(c, "unknown variable", NULL);
    if (!c->var_live[e->id])
      return bad(c, "variable used out of scope: ", k->vars[e->id].name);
    if (e->type != k->vars[e->id].type)
      return bad(c, "variable reference with the wrong type: ", k->vars[e->id].name);
    return XY_OK;
  case KE_LOAD: {
    if (e->id < 0 || e->id >= k->n_arrays)
      return bad(c, "load from an unknown array", NULL);
    const kir_array *a = &k->arrays[e->id];
    if (a->space == KIR_PRIVATE && !c->arr_live[e->id])
      return bad(c, "private array used out of scope: ", a->name);
    if (e->type != a->elem || e->lanes != a->lanes)
      return bad(c, "load with the wrong type from ", a->name);
    if ((rc = check_expr(c, e->a)))
      return rc;
    if (e->a->type != KT_INT)
      return bad(c, "non-integer index into ", a->name);
    if (e->a->kind == KE_INT && (e->a->ival < 0 || e->a->ival >= a->count))
      return bad(c, "constant index out of bounds of ", a->name);
    return XY_OK;
  }
  case KE_UNARY:
    if ((rc = check_expr(c, e->a)))
      return rc;
    if (e->id == KU_TO_FLOAT && e->a->type != KT_INT)
      return bad(c, "conversion to float of a non-integer", NULL);
    if (e->id == KU_TO_INT && e->a->type != KT_FLOAT)
      return bad(c, "conversion to int of a non-float", NULL);
    if (e->id == KU_NOT && e->a->type != KT_BOOL)
      return bad(c, "logical not of a non-boolean", NULL);
    if (e->id == KU_NEG && e->a->type != e->type)
      return bad(c, "negation changes type", NULL);
    if (e->a->lanes != 1)
      return bad(c, "unary operator on a vector", NULL);
    return XY_OK;
  case KE_BINARY: {
    if ((rc = check_expr(c, e->a)) || (rc = check_expr(c, e->b)))
      return rc;
    kir_binop op = (kir_binop)e->id;
    if (op == KB_AND || op == KB_OR) {
      if (e->a->type != KT_BOOL || e->b->type != KT_BOOL)
        return bad(c, "logical operator on non-booleans", NULL);
      return XY_OK;
    }
    if (e->a->type != e->b->type || e->a->type == KT_BOOL)
      return bad(c, "operands of different or boolean types for ", kir_binop_name(op));
    /* Vectors combine with vectors of the same lanes, or with scalars (broadcast). */
    if (e->a->lanes != e->b->lanes && e->a->lanes != 1 && e->b->lanes != 1)
      return bad(c, "operands with different lanes for ", kir_binop_name(op));
    if (e->lanes != (e->a->lanes > e->b->lanes ? e->a->lanes : e->b->lanes))
      return bad(c, "binary expression with the wrong lanes", NULL);
    if (e->lanes > 1 && (op >= KB_LT || op == KB_REM))
      return bad(c, "vectors support only + - * / min max: ", kir_binop_name(op));
    if (e->lanes > 1 && (op == KB_DIV || op == KB_MIN || op == KB_MAX) && e->type != KT_FLOAT)
      return bad(c, "/ min max on vectors of non-floats: ", kir_binop_name(op));
    if (op == KB_REM && e->a->type != KT_INT)
      return bad(c, "remainder of floats", NULL);
    if (e->type != (op >= KB_LT ? KT_BOOL : e->a->type))
      return bad(c, "binary expression with the wrong result type", NULL);
    return XY_OK;
  }
  case KE_CALL:
    if ((rc = check_expr(c, e->a)))
      return rc;
    if (e->a->type != KT_FLOAT)
      return bad(c, "math function of a non-float: ", kir_func_name((kir_func)e->id));
    if (e->a->lanes != 1 && e->id == KF_FMA)
      return bad(c, "fma of a vector: ", kir_func_name((kir_func)e->id));
    if (e->lanes != e->a->lanes)
      return bad(c, "math function with the wrong lanes: ", kir_func_name((kir_func)e->id));
    if (e->id == KF_FMA) {
      if ((rc = check_expr(c, e->b)) || (rc = check_expr(c, e->c)))
        return rc;
      if (e->b->type != KT_FLOAT || e->c->type != KT_FLOAT)
        return bad(c, "fma of non-floats", NULL);
    }
    return XY_OK;
  case KE_SELECT:
    if ((rc = check_expr(c, e->a)) || (rc = check_expr(c, e->b)) || (rc = check_expr(c, e->c)))
      return rc;
    if (e->a->type != KT_BOOL || e->b->type != e->c->type || e->type != e->b->type ||
        e->b->lanes != 1 || e->c->lanes != 1)
      return bad(c, "select with mismatched types or vector operands", NULL);
    return XY_OK;
  }
  return bad(c, "unknown expression kind", NULL);
}

static int declare(checker *c, int var)
{
  if (var < 0 || var >= c->k->n_vars)
    return bad(c, "declaration of an unknown variable", NULL);
  if (c->var_seen[var])
    return bad(c, "variable declared twice: ", c->k->vars[var].name);
  c->var_seen[var] = c->var_live[var] = true;
  c->var_depth[var] = c->parfor_depth;
  return XY_OK;
}

static int check_block(checker *c, const kir_stmt *s);

static int check_stmt(checker *c, const kir_stmt *s)
{
  const kir_kernel *k = c->k;
  int rc;
  switch (s->kind) {
  case KS_COMMENT:
    return s->text ? XY_OK : bad(c, "empty comment", NULL);
  case KS_DECL:
    if ((rc = check_expr(c, s->a)))
      return rc;
    if ((rc = declare(c, s->id)))
      return rc;
    if (k->vars[s->id].is_param || s->a->type != k->vars[s->id].type ||
        s->a->lanes != k->vars[s->id].lanes)
      return bad(c, "declaration with a mismatched initialiser: ", k->vars[s->id].name);
    return XY_OK;
  case KS_ASSIGN:
    if ((rc = check_expr(c, s->a)))
      return rc;
    if (s->id < 0 || s->id >= k->n_vars || !c->var_live[s->id] || k->vars[s->id].is_param)
      return bad(c, "assignment to a variable out of scope or a parameter", NULL);
    if (s->a->type != k->vars[s->id].type || s->a->lanes != k->vars[s->id].lanes)
      return bad(c, "assignment of the wrong type to ", k->vars[s->id].name);
    /* A work-item writing a group-level variable would make it non-uniform. */
    if (c->var_depth[s->id] < c->parfor_depth)
      return bad(c, "parfor body assigns a group-level variable: ", k->vars[s->id].name);
    return XY_OK;
  case KS_STORE: {
    if (s->id < 0 || s->id >= k->n_arrays)
      return bad(c, "store to an unknown array", NULL);
    const kir_array *a = &k->arrays[s->id];
    if ((rc = check_expr(c, s->idx)) || (rc = check_expr(c, s->a)))
      return rc;
    if (s->idx->type != KT_INT || s->idx->lanes != 1 || s->a->type != a->elem)
      return bad(c, "store with mismatched types into ", a->name);
    /* A vector goes into a vector array element, or into lanes consecutive scalars. */
    if (a->lanes != 1 ? s->a->lanes != a->lanes : s->a->lanes != 1 && a->elem != KT_FLOAT)
      return bad(c, "store with mismatched lanes into ", a->name);
    int64_t width = a->lanes == 1 ? s->a->lanes : 1;
    if (a->read_only)
      return bad(c, "store into a read-only array: ", a->name);
    if (a->space == KIR_PRIVATE && !c->arr_live[s->id])
      return bad(c, "store into a private array out of scope: ", a->name);
    if (a->space != KIR_PRIVATE && c->parfor_depth == 0)
      return bad(c, "group-level store into shared memory (must be in a parfor): ", a->name);
    if (s->idx->kind == KE_INT && (s->idx->ival < 0 || s->idx->ival + width > a->count))
      return bad(c, "constant index out of bounds of ", a->name);
    return XY_OK;
  }
  case KS_DECL_ARRAY:
    if (s->id < 0 || s->id >= k->n_arrays || k->arrays[s->id].space != KIR_PRIVATE)
      return bad(c, "array declaration of a non-private array", NULL);
    if (c->arr_live[s->id])
      return bad(c, "private array declared twice: ", k->arrays[s->id].name);
    if (k->arrays[s->id].count < 1)
      return bad(c, "empty private array ", k->arrays[s->id].name);
    c->arr_live[s->id] = true;
    return XY_OK;
  case KS_FOR:
    if ((rc = check_expr(c, s->a)) || (rc = check_expr(c, s->b)))
      return rc;
    if (s->a->type != KT_INT || s->b->type != KT_INT)
      return bad(c, "loop bounds must be integers", NULL);
    if ((rc = declare(c, s->id)))
      return rc;
    if (k->vars[s->id].type != KT_INT)
      return bad(c, "loop variable must be an integer", NULL);
    rc = check_block(c, s->body);
    c->var_live[s->id] = false;
    return rc;
  case KS_PARFOR:
    if (c->parfor_depth > 0)
      return bad(c, "nested parfor", NULL);
    if ((rc = check_expr(c, s->a)))
      return rc;
    if (s->a->type != KT_INT)
      return bad(c, "parfor count must be an integer", NULL);
    c->parfor_depth++;
    if ((rc = declare(c, s->id)))
      return rc;
    rc = check_block(c, s->body);
    c->var_live[s->id] = false;
    c->parfor_depth--;
    return rc;
  case KS_IF:
    if ((rc = check_expr(c, s->a)))
      return rc;
    if (s->a->type != KT_BOOL)
      return bad(c, "if condition must be boolean", NULL);
    if ((rc = check_block(c, s->body)))
      return rc;
    return check_block(c, s->else_body);
  }
  return bad(c, "unknown statement kind", NULL);
}

/* Variables and private arrays declared in a block go out of scope at its end. */
static int check_block(checker *c, const kir_stmt *s)
{
  int rc = XY_OK;
  const kir_stmt *first = s;
  for (; s && !rc; s = s->next)
    rc = check_stmt(c, s);
  for (s = first; s; s = s->next) {
    if (s->kind == KS_DECL)
      c->var_live[s->id] = false;
    if (s->kind == KS_DECL_ARRAY)
      c->arr_live[s->id] = false;
  }
  return rc;
}

static int check_kernel(const kir_kernel *k, xy_error *err)
{
  if (k->wg < 1 || k->n_axes < 1 || k->n_axes > 3)
    return xy_fail(err, XY_E_INTERNAL, "kernel %s: bad work-group size or axes", k->name);
  checker c = {.k = k, .err = err};
  size_t nv = (size_t)k->n_vars + 1, na = (size_t)k->n_arrays + 1;
  c.var_live = calloc(nv, sizeof *c.var_live);
  c.var_seen = calloc(nv, sizeof *c.var_seen);
  c.var_depth = calloc(nv, sizeof *c.var_depth);
  c.arr_live = calloc(na, sizeof *c.arr_live);
  int rc = XY_OK;
  if (!c.var_live || !c.var_seen || !c.var_depth || !c.arr_live)
    rc = xy_fail(err, XY_E_NOMEM, "out of memory");
  for (int i = 0; !rc && i < k->n_vars; i++) {
    int l = k->vars[i].lanes;
    if (l != 1 && l != 2 && l != 4 && l != 8 && l != 16)
      rc = xy_fail(err, XY_E_INTERNAL, "kernel %s: variable %s has %d lanes", k->name,
                   k->vars[i].name, l);
  }
  for (int i = 0; !rc && i < k->n_params; i++) {
    const kir_param *p = &k->params[i];
    if (p->is_array) {
      if (p->id < 0 || p->id >= k->n_arrays || k->arrays[p->id].space != KIR_GLOBAL)
        rc = xy_fail(err, XY_E_INTERNAL, "kernel %s: parameter %d is not a global array",
                     k->name, i);
    } else if (p->id < 0 || p->id >= k->n_vars || !k->vars[p->id].is_param) {
      rc = xy_fail(err, XY_E_INTERNAL, "kernel %s: parameter %d is not a scalar", k->name, i);
    } else {
      c.var_live[p->id] = c.var_seen[p->id] = true;
    }
  }
  for (int i = 0; !rc && i < k->n_arrays; i++) {
    const kir_array *a = &k->arrays[i];
    if (a->count < 1 || a->count > KIR_MAX_ELEMENTS)
      rc = xy_fail(err, XY_E_INTERNAL, "kernel %s: array %s has %lld elements", k->name,
                   a->name, (long long)a->count);
    if (a->elem != KT_FLOAT && a->elem != KT_INT)
      rc = xy_fail(err, XY_E_INTERNAL, "kernel %s: array %s of a bad type", k->name, a->name);
    if (a->lanes != 1 && (a->space != KIR_PRIVATE || a->elem != KT_FLOAT || a->lanes > KIR_MAX_LANES))
      rc = xy_fail(err, XY_E_INTERNAL, "kernel %s: array %s has lanes but is not private",
                   k->name, a->name);
  }
  if (!rc)
    rc = check_block(&c, k->body);
  free(c.var_live);
  free(c.var_seen);
  free(c.var_depth);
  free(c.arr_live);
  return rc;
}

static int check_plan(const kir_module *m, xy_error *err)
{
  for (int i = 0; i < m->n_buffers; i++) {
    const kir_buffer *b = &m->buffers[i];
    if (b->count < 0 || b->count > KIR_MAX_ELEMENTS)
      return xy_fail(err, XY_E_LIMIT,
                     "buffer %s has %lld elements; 32-bit indexing allows at most %d", b->name,
                     (long long)b->count, KIR_MAX_ELEMENTS);
    if (b->role == KIR_BUF_CONST && !b->init)
      return xy_fail(err, XY_E_INTERNAL, "constant buffer %s has no data", b->name);
    for (int j = 0; j < i; j++)
      if ((b->role == KIR_BUF_INPUT || b->role == KIR_BUF_OUTPUT) &&
          m->buffers[j].role == b->role && m->buffers[j].io_index == b->io_index)
        return xy_fail(err, XY_E_INTERNAL, "buffers %s and %s share an io index",
                       m->buffers[j].name, b->name);
  }
  for (int i = 0; i < m->n_launches; i++) {
    const kir_launch *l = &m->launches[i];
    if (l->kernel < 0 || l->kernel >= m->n_kernels)
      return xy_fail(err, XY_E_INTERNAL, "launch %d: no such kernel", i);
    const kir_kernel *k = m->kernels[l->kernel];
    for (int a = 0; a < 3; a++)
      if (l->groups[a] < 1 || (a >= k->n_axes && l->groups[a] != 1))
        return xy_fail(err, XY_E_INTERNAL, "launch %d of %s: bad group count on axis %d", i,
                       k->name, a);
    if (l->n_args != k->n_params)
      return xy_fail(err, XY_E_INTERNAL, "launch %d of %s: %d arguments for %d parameters", i,
                     k->name, l->n_args, k->n_params);
    for (int a = 0; a < l->n_args; a++) {
      const kir_param *p = &k->params[a];
      if (p->is_array != l->args[a].is_buffer)
        return xy_fail(err, XY_E_INTERNAL, "launch %d of %s: argument %d has the wrong kind",
                       i, k->name, a);
      if (!p->is_array) {
        if (l->args[a].value < INT32_MIN || l->args[a].value > INT32_MAX)
          return xy_fail(err, XY_E_INTERNAL, "launch %d of %s: int argument %d overflows", i,
                         k->name, a);
        continue;
      }
      int64_t bi = l->args[a].value;
      if (bi < 0 || bi >= m->n_buffers)
        return xy_fail(err, XY_E_INTERNAL, "launch %d of %s: argument %d is no buffer", i,
                       k->name, a);
      const kir_buffer *b = &m->buffers[bi];
      const kir_array *arr = &k->arrays[p->id];
      /* An empty buffer (a tensor of size 0) binds to any parameter: no loop reaches it. */
      if (b->elem != arr->elem || (b->count != 0 && b->count < arr->count))
        return xy_fail(err, XY_E_INTERNAL,
                       "launch %d of %s: buffer %s does not fit parameter %s", i, k->name,
                       b->name, arr->name);
      if (!arr->read_only && (b->role == KIR_BUF_INPUT || b->role == KIR_BUF_CONST))
        return xy_fail(err, XY_E_INTERNAL,
                       "launch %d of %s: writable parameter %s bound to read-only buffer %s",
                       i, k->name, arr->name, b->name);
    }
  }
  return XY_OK;
}

int kir_verify(const kir_module *m, xy_error *err)
{
  for (int i = 0; i < m->n_kernels; i++) {
    for (int j = 0; j < i; j++)
      if (strcmp(m->kernels[i]->name, m->kernels[j]->name) == 0)
        return xy_fail(err, XY_E_INTERNAL, "two kernels are named %s", m->kernels[i]->name);
    int rc = check_kernel(m->kernels[i], err);
    if (rc)
      return rc;
  }
  return check_plan(m, err);
}
