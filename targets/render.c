/* render.c: kernel IR to C-family text (OpenCL C, C99, IR dump) in one walker. */
#include "render.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct render {
  const kir_kernel *k;
  const xy_dialect *d;
  xy_buf *out;
  int indent;
  bool used_lid;
} render;

/* ------------------------------------------------------------------ names */

static const char *unique_name(const char *base, int index, bool clash, char *buf, size_t n)
{
  if (!clash)
    return base;
  snprintf(buf, n, "%s_%d", base, index);
  return buf;
}

const char *xy_render_var_name(const kir_kernel *k, int var, char *buf, size_t n)
{
  const char *name = k->vars[var].name;
  bool clash = false;
  for (int i = 0; i < k->n_vars && !clash; i++)
    clash = i != var && strcmp(k->vars[i].name, name) == 0;
  for (int i = 0; i < k->n_arrays && !clash; i++)
    clash = strcmp(k->arrays[i].name, name) == 0;
  return unique_name(name, var, clash, buf, n);
}

static const char *array_name(const kir_kernel *k, int arr, char *buf, size_t n)
{
  const char *name = k->arrays[arr].name;
  bool clash = false;
  for (int i = 0; i < k->n_arrays && !clash; i++)
    clash = i != arr && strcmp(k->arrays[i].name, name) == 0;
  return unique_name(name, arr, clash, buf, n);
}

static const char *type_name(kir_type t);

/* "float" or the dialect's vector type for lanes > 1. */
static const char *typed(const xy_dialect *d, kir_type t, int lanes, char *buf, size_t n)
{
  if (lanes <= 1)
    return type_name(t);
  snprintf(buf, n, d->vec_type, lanes);
  return buf;
}

static const char *type_name(kir_type t)
{
  switch (t) {
  case KT_FLOAT: return "float";
  case KT_INT:
  case KT_BOOL: return "int";
  case KT_VOID: return "void";
  }
  return "?";
}

void xy_render_float(double v, xy_buf *out)
{
  float f = (float)v;
  if (isnan(f)) {
    xy_buf_puts(out, "NAN");
    return;
  }
  if (isinf(f)) {
    xy_buf_puts(out, f > 0 ? "INFINITY" : "(-INFINITY)");
    return;
  }
  char txt[64];
  snprintf(txt, sizeof txt, "%.9g", (double)f);
  if (!strpbrk(txt, ".eEn"))
    strcat(txt, ".0");
  xy_buf_printf(out, f < 0 ? "(%sf)" : "%sf", txt);
}

/* ------------------------------------------------------------------ expressions */

enum { P_LOWEST = 0, P_COND = 3, P_OR = 4, P_AND = 5, P_EQ = 9, P_REL = 10, P_ADD = 12,
       P_MUL = 13, P_UNARY = 15, P_PRIMARY = 16 };

static int binop_prec(kir_binop op)
{
  switch (op) {
  case KB_ADD: case KB_SUB: return P_ADD;
  case KB_MUL: case KB_DIV: case KB_REM: return P_MUL;
  case KB_LT: case KB_LE: case KB_GT: case KB_GE: return P_REL;
  case KB_EQ: case KB_NE: return P_EQ;
  case KB_AND: return P_AND;
  case KB_OR: return P_OR;
  case KB_MIN: case KB_MAX: case KB_COUNT: return P_PRIMARY;
  }
  return P_PRIMARY;
}

static int expr_prec(const kir_expr *e)
{
  switch (e->kind) {
  case KE_BINARY: return binop_prec((kir_binop)e->id);
  case KE_UNARY: return P_UNARY;
  case KE_SELECT: return P_COND;
  case KE_INT: return e->ival < 0 ? P_UNARY : P_PRIMARY;
  default: return P_PRIMARY;
  }
}

static void expr(render *r, const kir_expr *e, int min_prec);
static void expr_in(render *r, const kir_expr *e, int min_prec);

/* A vector operand of a call-style vector operation: scalars are splat first. */
static void vector_operand(render *r, const kir_expr *e, int lanes)
{
  if (e->lanes == lanes) {
    expr_in(r, e, P_LOWEST);
    return;
  }
  xy_buf_printf(r->out, r->d->splat, lanes);
  expr_in(r, e, P_LOWEST);
  xy_buf_putc(r->out, ')');
}

static void expr_in(render *r, const kir_expr *e, int min_prec)
{
  bool paren = expr_prec(e) < min_prec;
  if (paren)
    xy_buf_putc(r->out, '(');
  expr(r, e, paren ? P_LOWEST : min_prec);
  if (paren)
    xy_buf_putc(r->out, ')');
}

static void expr(render *r, const kir_expr *e, int min_prec)
{
  xy_buf *out = r->out;
  char nb[96];
  (void)min_prec;
  switch (e->kind) {
  case KE_INT:
    xy_buf_printf(out, "%lld", (long long)e->ival);
    break;
  case KE_FLOAT:
    xy_render_float(e->fval, out);
    break;
  case KE_VAR:
    xy_buf_puts(out, xy_render_var_name(r->k, e->id, nb, sizeof nb));
    break;
  case KE_LOAD:
    xy_buf_printf(out, "%s[", array_name(r->k, e->id, nb, sizeof nb));
    expr_in(r, e->a, P_LOWEST);
    xy_buf_putc(out, ']');
    break;
  case KE_GROUP_ID:
    xy_buf_printf(out, r->d->group_id, (int)e->ival);
    break;
  case KE_VLOAD:
    xy_buf_printf(out, r->d->vload, e->lanes);
    xy_buf_printf(out, "%s + ", array_name(r->k, e->id, nb, sizeof nb));
    expr_in(r, e->a, P_ADD + 1);
    xy_buf_putc(out, ')');
    break;
  case KE_SPLAT:
    xy_buf_printf(out, r->d->splat, e->lanes);
    expr_in(r, e->a, P_LOWEST);
    xy_buf_putc(out, ')');
    break;
  case KE_LANE:
    if (r->d->vector_calls) { /* C99: the prelude's lane macro */
      xy_buf_printf(out, "XY_LANE%d(", e->a->lanes);
      expr_in(r, e->a, P_LOWEST);
      xy_buf_printf(out, ", %d)", (int)e->ival);
    } else {
      expr_in(r, e->a, P_PRIMARY);
      xy_buf_printf(out, ".s%x", (unsigned)e->ival);
    }
    break;
  case KE_HSUM:
    xy_buf_printf(out, "xy_hsum%d(", e->a->lanes);
    expr_in(r, e->a, P_LOWEST);
    xy_buf_putc(out, ')');
    break;
  case KE_UNARY:
    if (e->id == KU_TO_FLOAT || e->id == KU_TO_INT) {
      xy_buf_puts(out, e->id == KU_TO_FLOAT ? "(float)" : "(int)");
      expr_in(r, e->a, P_UNARY);
    } else {
      xy_buf_putc(out, e->id == KU_NEG ? '-' : '!');
      expr_in(r, e->a, P_UNARY);
    }
    break;
  case KE_CALL:
    if (e->lanes > 1 && r->d->vector_calls) /* C99: helpers of the vector prelude */
      xy_buf_printf(out, "xy_%s%d(", kir_func_name((kir_func)e->id), e->lanes);
    else
      xy_buf_printf(out, "%s(", r->d->funcs[e->id]);
    expr_in(r, e->a, P_LOWEST);
    if (e->b) {
      xy_buf_puts(out, ", ");
      expr_in(r, e->b, P_LOWEST);
    }
    if (e->c) {
      xy_buf_puts(out, ", ");
      expr_in(r, e->c, P_LOWEST);
    }
    xy_buf_putc(out, ')');
    break;
  case KE_SELECT:
    expr_in(r, e->a, P_COND + 1);
    xy_buf_puts(out, " ? ");
    expr_in(r, e->b, P_COND + 1);
    xy_buf_puts(out, " : ");
    expr_in(r, e->c, P_COND);
    break;
  case KE_BINARY: {
    kir_binop op = (kir_binop)e->id;
    if ((op == KB_MIN || op == KB_MAX) && !(e->lanes > 1 && r->d->vector_calls)) {
      bool f = e->type == KT_FLOAT;
      const char *fn = op == KB_MIN ? (f ? r->d->flt_min : r->d->int_min)
                                    : (f ? r->d->flt_max : r->d->int_max);
      xy_buf_printf(out, "%s(", fn);
      if (e->lanes > 1) { /* vector forms: both operands vectors */
        vector_operand(r, e->a, e->lanes);
        xy_buf_puts(out, ", ");
        vector_operand(r, e->b, e->lanes);
      } else {
        expr_in(r, e->a, P_LOWEST);
        xy_buf_puts(out, ", ");
        expr_in(r, e->b, P_LOWEST);
      }
      xy_buf_putc(out, ')');
      break;
    }
    if (e->lanes > 1 && r->d->vector_calls) {
      static const char *const fn[] = {[KB_ADD] = "add", [KB_SUB] = "sub", [KB_MUL] = "mul",
                                       [KB_DIV] = "div", [KB_MIN] = "min", [KB_MAX] = "max"};
      xy_buf_printf(out, "xy_%s%d(", fn[op], e->lanes);
      vector_operand(r, e->a, e->lanes);
      xy_buf_puts(out, ", ");
      vector_operand(r, e->b, e->lanes);
      xy_buf_putc(out, ')');
      break;
    }
    int p = binop_prec(op);
    /* Left-associative: the right operand needs parentheses at equal precedence. */
    expr_in(r, e->a, p);
    xy_buf_printf(out, " %s ", kir_binop_name(op));
    expr_in(r, e->b, p + 1);
    break;
  }
  }
}

static bool expr_equal(const kir_expr *a, const kir_expr *b)
{
  if (a == b)
    return true;
  if (!a || !b || a->kind != b->kind || a->type != b->type || a->id != b->id)
    return false;
  switch (a->kind) {
  case KE_INT:
  case KE_GROUP_ID:
    return a->ival == b->ival;
  case KE_LANE:
    return a->ival == b->ival && expr_equal(a->a, b->a);
  case KE_FLOAT:
    return a->fval == b->fval;
  default:
    return expr_equal(a->a, b->a) && expr_equal(a->b, b->b) && expr_equal(a->c, b->c);
  }
}

/* ------------------------------------------------------------------ statements */

static void line_start(render *r)
{
  for (int i = 0; i < r->indent; i++)
    xy_buf_puts(r->out, "  ");
}

static void stmts(render *r, const kir_stmt *s, bool in_parfor);

static void block(render *r, const kir_stmt *body, bool in_parfor)
{
  r->indent++;
  stmts(r, body, in_parfor);
  r->indent--;
  line_start(r);
  xy_buf_puts(r->out, "}");
}

/* x = x op y  ->  x op= y, for + - * on the same target. */
static const char *compound_op(const kir_expr *target, const kir_expr *value)
{
  if (value->kind != KE_BINARY || !expr_equal(value->a, target))
    return NULL;
  switch ((kir_binop)value->id) {
  case KB_ADD: return "+=";
  case KB_SUB: return "-=";
  case KB_MUL: return "*=";
  default: return NULL;
  }
}

static void assign(render *r, const char *lhs, const kir_expr *target, const kir_expr *value)
{
  const char *op = target && !(value->lanes > 1 && r->d->vector_calls)
                       ? compound_op(target, value) : NULL;
  xy_buf_printf(r->out, "%s %s ", lhs, op ? op : "=");
  expr_in(r, op ? value->b : value, op ? P_ADD + 1 : P_LOWEST);
  xy_buf_puts(r->out, ";\n");
}

static void parfor(render *r, const kir_stmt *s)
{
  char nb[96];
  const char *v = xy_render_var_name(r->k, s->id, nb, sizeof nb);
  xy_buf *out = r->out;
  const kir_expr *n = s->a;
  int wg = r->k->wg;
  if (r->d->parfor_keyword) {
    xy_buf_printf(out, "%s (%s < ", r->d->parfor_keyword, v);
    expr_in(r, n, P_LOWEST);
    xy_buf_puts(out, ") {\n");
  } else if (!r->d->local_id_decl) {
    xy_buf_printf(out, "for (int %s = 0; %s < ", v, v);
    expr_in(r, n, P_REL + 1);
    xy_buf_printf(out, "; ++%s) {\n", v);
  } else if (n->kind == KE_INT && n->ival <= wg) {
    /* Guarded even when n = wg: as a bare block, PoCL 3.1's barrier pass asserted
     * ("Incoming edges to non-entry block") on a 1x7 grid's tile_out kernel. */
    r->used_lid = true;
    xy_buf_printf(out, "if (lid < %lld) {\n", (long long)n->ival);
    r->indent++;
    line_start(r);
    xy_buf_printf(out, "const int %s = lid;\n", v);
    r->indent--;
  } else {
    r->used_lid = true;
    xy_buf_printf(out, "for (int %s = lid; %s < ", v, v);
    expr_in(r, n, P_REL + 1);
    xy_buf_printf(out, "; %s += %d) {\n", v, wg);
  }
  block(r, s->body, true);
  xy_buf_putc(out, '\n');
  if (r->d->barrier && !s->no_barrier) {
    line_start(r);
    xy_buf_printf(out, "%s\n", r->d->barrier);
  }
}

static void stmts(render *r, const kir_stmt *s, bool in_parfor)
{
  char nb[96];
  xy_buf *out = r->out;
  for (; s; s = s->next) {
    line_start(r);
    switch (s->kind) {
    case KS_COMMENT:
      xy_buf_printf(out, "/* %s */\n", s->text);
      break;
    case KS_DECL: {
      char tb[32];
      const kir_var *v = &r->k->vars[s->id];
      xy_buf_printf(out, "%s %s = ", typed(r->d, v->type, v->lanes, tb, sizeof tb),
                    xy_render_var_name(r->k, s->id, nb, sizeof nb));
      expr_in(r, s->a, P_LOWEST);
      xy_buf_puts(out, ";\n");
      break;
    }
    case KS_ASSIGN: {
      kir_expr target = {.kind = KE_VAR, .type = r->k->vars[s->id].type,
                         .lanes = r->k->vars[s->id].lanes, .id = s->id};
      assign(r, xy_render_var_name(r->k, s->id, nb, sizeof nb), &target, s->a);
      break;
    }
    case KS_STORE: {
      const kir_array *arr = &r->k->arrays[s->id];
      if (s->a->lanes > 1 && arr->lanes == 1) {
        xy_buf_printf(out, r->d->vstore, s->a->lanes);
        if (r->d->vector_calls) {
          xy_buf_printf(out, "%s + ", array_name(r->k, s->id, nb, sizeof nb));
          expr_in(r, s->idx, P_ADD + 1);
          xy_buf_puts(out, ", ");
          expr_in(r, s->a, P_LOWEST);
        } else {
          expr_in(r, s->a, P_LOWEST);
          xy_buf_printf(out, ", 0, %s + ", array_name(r->k, s->id, nb, sizeof nb));
          expr_in(r, s->idx, P_ADD + 1);
        }
        xy_buf_puts(out, ");\n");
        break;
      }
      xy_buf lhs;
      xy_buf_init(&lhs);
      xy_buf *saved = r->out;
      r->out = &lhs;
      kir_expr target = {.kind = KE_LOAD, .type = arr->elem, .lanes = arr->lanes, .id = s->id,
                         .a = s->idx};
      expr(r, &target, P_LOWEST);
      r->out = saved;
      assign(r, lhs.data ? lhs.data : "?", &target, s->a);
      xy_buf_free(&lhs);
      break;
    }
    case KS_DECL_ARRAY: {
      char tb[32];
      const kir_array *a = &r->k->arrays[s->id];
      xy_buf_printf(out, "%s %s[%lld];\n", typed(r->d, a->elem, a->lanes, tb, sizeof tb),
                    array_name(r->k, s->id, nb, sizeof nb), (long long)a->count);
      break;
    }
    case KS_FOR: {
      const char *v = xy_render_var_name(r->k, s->id, nb, sizeof nb);
      xy_buf_printf(out, "for (int %s = ", v);
      expr_in(r, s->a, P_LOWEST);
      xy_buf_printf(out, "; %s < ", v);
      expr_in(r, s->b, P_REL + 1);
      xy_buf_printf(out, "; ++%s) {\n", v);
      block(r, s->body, in_parfor);
      xy_buf_putc(out, '\n');
      break;
    }
    case KS_PARFOR:
      parfor(r, s);
      break;
    case KS_IF:
      xy_buf_puts(out, "if (");
      expr_in(r, s->a, P_LOWEST);
      xy_buf_puts(out, ") {\n");
      block(r, s->body, in_parfor);
      if (s->else_body) {
        xy_buf_puts(out, " else {\n");
        block(r, s->else_body, in_parfor);
      }
      xy_buf_putc(out, '\n');
      break;
    }
  }
}

/* ------------------------------------------------------------------ kernels */

static void signature(render *r)
{
  const kir_kernel *k = r->k;
  const xy_dialect *d = r->d;
  xy_buf *out = r->out;
  char nb[96];
  xy_buf_printf(out, "%s ", d->kernel_qualifier);
  if (d->wg_attribute) {
    xy_buf_printf(out, d->wg_attribute, k->wg);
    xy_buf_putc(out, ' ');
  }
  xy_buf_printf(out, "%s(", k->name);
  int n = 0;
  for (int i = 0; i < k->n_params; i++) {
    const kir_param *p = &k->params[i];
    xy_buf_puts(out, n++ ? ",\n    " : "\n    ");
    if (p->is_array) {
      const kir_array *a = &k->arrays[p->id];
      xy_buf_printf(out, "%s%s%s *%s%s", d->global_qualifier, a->read_only ? "const " : "",
                    type_name(a->elem), d->restrict_kw,
                    array_name(k, p->id, nb, sizeof nb));
    } else {
      xy_buf_printf(out, "const int %s", xy_render_var_name(k, p->id, nb, sizeof nb));
    }
  }
  if (d->group_ids_as_params)
    for (int a = 0; a < 3; a++)
      xy_buf_printf(out, "%sconst int gid%d", n++ ? ",\n    " : "\n    ", a);
  if (n == 0)
    xy_buf_puts(out, "void");
  xy_buf_puts(out, ")");
}

static void kernel(const kir_kernel *k, const xy_dialect *d, xy_buf *out)
{
  render r = {.k = k, .d = d, .indent = 1};
  xy_buf body;
  xy_buf_init(&body);
  r.out = &body;
  stmts(&r, k->body, false);
  r.out = out;

  if (k->doc) {
    xy_buf_puts(out, "/*\n * ");
    for (const char *p = k->doc; *p; p++) {
      if (*p == '\n')
        xy_buf_puts(out, "\n * ");
      else
        xy_buf_putc(out, *p);
    }
    xy_buf_puts(out, "\n */\n");
  }
  signature(&r);
  xy_buf_puts(out, "\n{\n");
  if (d->group_ids_as_params)
    for (int a = 0; a < 3; a++)
      xy_buf_printf(out, "  (void)gid%d;\n", a);
  if (r.used_lid && d->local_id_decl)
    xy_buf_printf(out, "  %s\n", d->local_id_decl);
  char nb[96];
  for (int i = 0; i < k->n_arrays; i++) {
    const kir_array *a = &k->arrays[i];
    if (a->space == KIR_LOCAL)
      xy_buf_printf(out, "  %s%s %s[%lld];\n", d->local_qualifier, type_name(a->elem),
                    array_name(k, i, nb, sizeof nb), (long long)a->count);
  }
  xy_buf_put(out, body.data ? body.data : "", body.len);
  xy_buf_puts(out, "}\n");
  if (body.failed)
    out->failed = true;
  xy_buf_free(&body);
}

static unsigned expr_lanes(const kir_expr *e)
{
  if (!e)
    return 0;
  unsigned used = e->lanes > 1 ? 1u << e->lanes : 0;
  if (e->kind == KE_HSUM)
    used |= 1u << e->a->lanes;
  return used | expr_lanes(e->a) | expr_lanes(e->b) | expr_lanes(e->c);
}

static unsigned stmt_lanes(const kir_kernel *k, const kir_stmt *s)
{
  unsigned used = 0;
  for (; s; s = s->next) {
    used |= expr_lanes(s->a) | expr_lanes(s->b) | expr_lanes(s->idx);
    if (s->kind == KS_DECL_ARRAY && k->arrays[s->id].lanes > 1)
      used |= 1u << k->arrays[s->id].lanes;
    used |= stmt_lanes(k, s->body) | stmt_lanes(k, s->else_body);
  }
  return used;
}

void xy_render_kernels(const kir_module *m, const xy_dialect *d, xy_buf *out)
{
  if (d->prelude)
    xy_buf_puts(out, d->prelude);
  unsigned used = 0;
  for (int i = 0; i < m->n_kernels; i++)
    used |= stmt_lanes(m->kernels[i], m->kernels[i]->body);
  if (used && d->vector_prelude)
    d->vector_prelude(used, out);
  for (int i = 0; i < m->n_kernels; i++) {
    xy_buf_putc(out, '\n');
    kernel(m->kernels[i], d, out);
  }
}

/* ------------------------------------------------------------------ dialects */

/* OpenCL has the vector types; only the horizontal sums are ours. */
static void opencl_vectors(unsigned used, xy_buf *out)
{
  /* The sums halve down to 2 lanes, so every width up to the widest is defined. */
  xy_buf_puts(out, "\nfloat xy_hsum2(float2 v) { return v.s0 + v.s1; }\n");
  for (int n = 4; n <= 16 && (used >> n); n *= 2)
    xy_buf_printf(out, "float xy_hsum%d(float%d v) { return xy_hsum%d(v.lo) + xy_hsum%d(v.hi); }\n",
                  n, n, n / 2, n / 2);
}

/* C99 vectors: the GNU vector extension where the compiler has it (gcc, clang), else a
 * struct of floats; the same small functions serve both and inline away. */
static void c99_vectors(unsigned used, xy_buf *out)
{
  xy_buf_puts(out, "\n#include <string.h>\n\n"
                   "#if defined(__GNUC__)\n#define XY_GNU_VECTORS 1\n#else\n#define XY_GNU_VECTORS 0\n#endif\n");
  for (int n = 2; n <= 16; n *= 2) {
    /* The sums halve down to 2 lanes, so smaller widths are needed too. */
    bool need = false;
    for (int m = n; m <= 16; m *= 2)
      need |= (used & (1u << m)) != 0;
    if (!need)
      continue;
    xy_buf_printf(out,
      "\n#if XY_GNU_VECTORS\ntypedef float xy_float%d __attribute__((vector_size(%d)));\n"
      "#define XY_LANE%d(v, i) ((v)[i])\n#else\ntypedef struct { float v[%d]; } xy_float%d;\n"
      "#define XY_LANE%d(v, i) ((v).v[i])\n#endif\n", n, 4 * n, n, n, n, n);
    xy_buf_printf(out,
      "XY_HELPER xy_float%d xy_load%d(const float *p) { xy_float%d v; memcpy(&v, p, sizeof v); return v; }\n"
      "XY_HELPER void xy_store%d(float *p, xy_float%d v) { memcpy(p, &v, sizeof v); }\n"
      "XY_HELPER xy_float%d xy_splat%d(float x) { xy_float%d v; for (int i = 0; i < %d; ++i) XY_LANE%d(v, i) = x; return v; }\n",
      n, n, n, n, n, n, n, n, n, n);
    static const char *const ops[][2] = {{"add", "+"}, {"sub", "-"}, {"mul", "*"}, {"div", "/"}};
    for (int o = 0; o < 4; o++)
      xy_buf_printf(out,
        "XY_HELPER xy_float%d xy_%s%d(xy_float%d a, xy_float%d b)\n{\n#if XY_GNU_VECTORS\n"
        "  return a %s b;\n#else\n  for (int i = 0; i < %d; ++i) a.v[i] = a.v[i] %s b.v[i];\n"
        "  return a;\n#endif\n}\n", n, ops[o][0], n, n, n, ops[o][1], n, ops[o][1]);
    /* min, max and the math functions lane by lane, through arrays: clang compiles a loop
     * over the lanes of a vector value about 4 times slower */
    static const char *const lanewise[][2] = {{"min", "fminf"}, {"max", "fmaxf"}};
    for (int o = 0; o < 2; o++)
      xy_buf_printf(out,
        "XY_HELPER xy_float%d xy_%s%d(xy_float%d a, xy_float%d b)\n{\n"
        "  float s[%d], t[%d];\n  memcpy(s, &a, sizeof s);\n  memcpy(t, &b, sizeof t);\n"
        "  for (int i = 0; i < %d; ++i) s[i] = %s(s[i], t[i]);\n"
        "  memcpy(&a, s, sizeof s);\n  return a;\n}\n",
        n, lanewise[o][0], n, n, n, n, n, n, lanewise[o][1]);
    static const char *const funcs[][2] = {{"exp", "expf"}, {"log", "logf"}, {"tanh", "tanhf"},
                                           {"sqrt", "sqrtf"}, {"fabs", "fabsf"}};
    for (int o = 0; o < 5; o++)
      xy_buf_printf(out,
        "XY_HELPER xy_float%d xy_%s%d(xy_float%d a)\n{\n"
        "  float s[%d];\n  memcpy(s, &a, sizeof s);\n"
        "  for (int i = 0; i < %d; ++i) s[i] = %s(s[i]);\n"
        "  memcpy(&a, s, sizeof s);\n  return a;\n}\n",
        n, funcs[o][0], n, n, n, n, funcs[o][1]);
    if (n == 2)
      xy_buf_puts(out, "XY_HELPER float xy_hsum2(xy_float2 v) { return XY_LANE2(v, 0) + XY_LANE2(v, 1); }\n");
    else
      xy_buf_printf(out,
        "XY_HELPER float xy_hsum%d(xy_float%d v)\n{\n  xy_float%d lo, hi;\n"
        "  memcpy(&lo, &v, sizeof lo);\n  memcpy(&hi, (const char *)&v + sizeof lo, sizeof hi);\n"
        "  return xy_hsum%d(lo) + xy_hsum%d(hi);\n}\n", n, n, n / 2, n / 2, n / 2);
  }
}

const xy_dialect xy_dialect_opencl = {
  .name = "opencl",
  .prelude = "/* OpenCL C 1.2, no extensions. */\n",
  .kernel_qualifier = "__kernel",
  .wg_attribute = "__attribute__((reqd_work_group_size(%d, 1, 1))) void",
  .global_qualifier = "__global ",
  .local_qualifier = "__local ",
  .restrict_kw = "restrict ",
  .group_id = "(int)get_group_id(%d)",
  .local_id_decl = "const int lid = (int)get_local_id(0);",
  .barrier = "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);",
  .funcs = {[KF_EXP] = "exp", [KF_LOG] = "log", [KF_TANH] = "tanh", [KF_SQRT] = "sqrt",
            [KF_FABS] = "fabs", [KF_FMA] = "fma"},
  .int_min = "min", .int_max = "max", .flt_min = "fmin", .flt_max = "fmax",
  .vec_type = "float%d", .vload = "vload%d(0, ", .vstore = "vstore%d(", .splat = "(float%d)(",
  .vector_prelude = opencl_vectors,
};

const xy_dialect xy_dialect_c99 = {
  .name = "c99",
  .prelude = "#include <math.h>\n\n"
             "/* Helpers a package may leave unused. */\n"
             "#if defined(__GNUC__)\n#define XY_HELPER static inline __attribute__((unused))\n"
             "#else\n#define XY_HELPER static inline\n#endif\n\n"
             "XY_HELPER int xy_imin(int a, int b) { return a < b ? a : b; }\n"
             "XY_HELPER int xy_imax(int a, int b) { return a > b ? a : b; }\n",
  .kernel_qualifier = "static void",
  .wg_attribute = NULL,
  .global_qualifier = "",
  .local_qualifier = "",
  .restrict_kw = "restrict ",
  .group_id = "gid%d",
  .group_ids_as_params = true,
  .local_id_decl = NULL,
  .barrier = NULL,
  .funcs = {[KF_EXP] = "expf", [KF_LOG] = "logf", [KF_TANH] = "tanhf", [KF_SQRT] = "sqrtf",
            [KF_FABS] = "fabsf", [KF_FMA] = "fmaf"},
  .int_min = "xy_imin", .int_max = "xy_imax", .flt_min = "fminf", .flt_max = "fmaxf",
  .vec_type = "xy_float%d", .vload = "xy_load%d(", .vstore = "xy_store%d(", .splat = "xy_splat%d(",
  .vector_calls = true, .vector_prelude = c99_vectors,
};

const xy_dialect xy_dialect_ir = {
  .name = "ir",
  .kernel_qualifier = "kernel",
  .wg_attribute = "wg(%d)",
  .global_qualifier = "global ",
  .local_qualifier = "local ",
  .restrict_kw = "",
  .group_id = "group(%d)",
  .parfor_keyword = "parfor",
  .local_id_decl = "",
  .barrier = "barrier;",
  .funcs = {[KF_EXP] = "exp", [KF_LOG] = "log", [KF_TANH] = "tanh", [KF_SQRT] = "sqrt",
            [KF_FABS] = "fabs", [KF_FMA] = "fma"},
  .int_min = "min", .int_max = "max", .flt_min = "min", .flt_max = "max",
  .vec_type = "float%d", .vload = "vload%d(", .vstore = "vstore%d(", .splat = "splat%d(",
};

/* ------------------------------------------------------------------ IR dump */

void kir_print(const kir_module *m, xy_buf *out)
{
  xy_buf_printf(out, "kernel module %s\n", m->name);
  for (int i = 0; i < m->n_buffers; i++) {
    const kir_buffer *b = &m->buffers[i];
    static const char *const roles[] = {"input", "output", "temp", "const"};
    xy_buf_printf(out, "buffer %d %s %s %s[%lld]", i, roles[b->role], b->name,
                  type_name(b->elem), (long long)b->count);
    if (b->role == KIR_BUF_INPUT || b->role == KIR_BUF_OUTPUT)
      xy_buf_printf(out, " io=%d", b->io_index);
    xy_buf_putc(out, '\n');
  }
  for (int i = 0; i < m->n_launches; i++) {
    const kir_launch *l = &m->launches[i];
    xy_buf_printf(out, "launch %d %s groups=[%lld,%lld,%lld] args=(", i,
                  m->kernels[l->kernel]->name, (long long)l->groups[0],
                  (long long)l->groups[1], (long long)l->groups[2]);
    for (int a = 0; a < l->n_args; a++)
      xy_buf_printf(out, a ? ", %s%lld" : "%s%lld", l->args[a].is_buffer ? "#" : "",
                    (long long)l->args[a].value);
    xy_buf_printf(out, ") flops=%.0f bytes=%.0f\n", l->flops, l->bytes);
  }
  xy_render_kernels(m, &xy_dialect_ir, out);
}
