/*
 * kernel_ir.h: the kernel IR. Explicit loops, buffers, barriers and work-item indexing,
 * from which both targets are rendered by one C-family renderer (targets/render.h).
 *
 * A kernel body is written at the level of one work-group. Plain statements run once per
 * group (in OpenCL every work-item runs them with the same values: they must be uniform).
 * A `parfor v < n` spreads its iterations over the group's work-items and ends with a
 * barrier; its iterations must be independent. Global and local arrays are written only
 * inside a parfor. This model renders directly to OpenCL C (strided loops over the local
 * id, barriers) and to C (plain loops, no barriers), without a work-item loop transform.
 *
 * A module also holds the launch plan: the buffers and the ordered list of launches.
 */
#ifndef XY_KERNEL_IR_H
#define XY_KERNEL_IR_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

typedef enum kir_type { KT_VOID, KT_BOOL, KT_INT, KT_FLOAT } kir_type;

/* 32-bit indexing: every buffer must have fewer elements than this. */
#define KIR_MAX_ELEMENTS INT32_MAX

typedef enum kir_space { KIR_GLOBAL, KIR_LOCAL, KIR_PRIVATE } kir_space;

/* Vectors: an expression, variable or private array element of KT_FLOAT may have lanes
 * 2, 4, 8 or 16 (1 is a scalar). Global and local arrays hold scalars; vectors move in and
 * out of them with vector loads and stores of consecutive elements. Float vectors take
 * + - * / min max (a scalar operand is broadcast) and the one-operand math functions
 * (exp, log, tanh, sqrt, fabs), lane by lane. */
#define KIR_MAX_LANES 16

typedef struct kir_array {
  const char *name;
  kir_space space;
  kir_type elem;
  int lanes;        /* private arrays only; 1 elsewhere */
  int64_t count;
  bool read_only;   /* global params the kernel never writes */
} kir_array;

typedef struct kir_var {
  const char *name;
  kir_type type;
  int lanes;
  bool is_param;    /* an int kernel argument */
} kir_var;

typedef struct kir_param {
  bool is_array;
  int id;           /* array or var id */
} kir_param;

typedef enum kir_binop {
  KB_ADD, KB_SUB, KB_MUL, KB_DIV, KB_REM, KB_MIN, KB_MAX,
  KB_LT, KB_LE, KB_GT, KB_GE, KB_EQ, KB_NE, KB_AND, KB_OR,
  KB_COUNT
} kir_binop;

typedef enum kir_unop { KU_NEG, KU_NOT, KU_TO_FLOAT, KU_TO_INT /* truncates */, KU_COUNT } kir_unop;

typedef enum kir_func { KF_EXP, KF_LOG, KF_TANH, KF_SQRT, KF_FABS, KF_FMA, KF_COUNT } kir_func;

typedef enum kir_expr_kind {
  KE_INT, KE_FLOAT, KE_VAR, KE_LOAD, KE_BINARY, KE_UNARY, KE_CALL, KE_SELECT, KE_GROUP_ID,
  KE_VLOAD,   /* lanes consecutive elements of array id from index a */
  KE_SPLAT,   /* the scalar a in every lane */
  KE_HSUM,    /* the sum of a's lanes */
  KE_LANE,    /* lane ival of the vector variable a */
} kir_expr_kind;

typedef struct kir_expr kir_expr;
struct kir_expr {
  kir_expr_kind kind;
  kir_type type;
  int lanes;       /* 1 for scalars */
  int64_t ival;    /* KE_INT; KE_GROUP_ID: axis */
  double fval;     /* KE_FLOAT */
  int id;          /* KE_VAR: var; KE_LOAD: array; KE_BINARY/UNARY/CALL: operator */
  kir_expr *a, *b, *c; /* operands; KE_LOAD: a = index */
};

typedef enum kir_stmt_kind {
  KS_DECL,        /* var = a */
  KS_ASSIGN,      /* var = a */
  KS_STORE,       /* array[idx] = a; a vector a stores lanes consecutive scalars */
  KS_DECL_ARRAY,  /* private array declaration */
  KS_FOR,         /* for var in [a, b): body */
  KS_PARFOR,      /* for var in [0, a) over work-items: body; then a barrier */
  KS_IF,          /* if a: body else else_body */
  KS_COMMENT,
} kir_stmt_kind;

typedef struct kir_stmt kir_stmt;
struct kir_stmt {
  kir_stmt_kind kind;
  int id;              /* var or array */
  kir_expr *a, *b, *idx;
  kir_stmt *body, *else_body;
  kir_stmt *next;
  const char *text;    /* KS_COMMENT */
  bool no_barrier;     /* KS_PARFOR: the last one of a kernel needs none */
};

typedef struct kir_kernel {
  const char *name;
  const char *doc;     /* one-paragraph comment above the kernel */
  int wg;              /* work-items per group, axis 0 */
  int n_axes;          /* group grid axes used, 1..3 */
  kir_param *params;
  int n_params;
  size_t cap_params;
  kir_array *arrays;
  int n_arrays;
  size_t cap_arrays;
  kir_var *vars;
  int n_vars;
  size_t cap_vars;
  kir_stmt *body;
} kir_kernel;

typedef enum kir_buf_role { KIR_BUF_INPUT, KIR_BUF_OUTPUT, KIR_BUF_TEMP, KIR_BUF_CONST } kir_buf_role;

typedef struct kir_buffer {
  const char *name;
  kir_type elem;       /* KT_FLOAT or KT_INT */
  int64_t count;       /* 0 for an empty tensor, which no kernel reads */
  kir_buf_role role;
  int io_index;        /* inputs / outputs: position in the model's list */
  const void *init;    /* KIR_BUF_CONST: count elements (float or int32_t), owned */
} kir_buffer;

typedef struct kir_arg {
  bool is_buffer;
  int64_t value;       /* buffer index, or an int argument */
} kir_arg;

typedef struct kir_launch {
  int kernel;
  int64_t groups[3];
  kir_arg *args;
  int n_args;
  double flops, bytes;
} kir_launch;

typedef struct kir_module {
  const char *name;
  xy_arena arena;      /* expressions, statements, strings, launch args */
  kir_kernel **kernels;
  int n_kernels;
  size_t cap_kernels;
  kir_buffer *buffers;
  int n_buffers;
  size_t cap_buffers;
  kir_launch *launches;
  int n_launches;
  size_t cap_launches;
  char *forms;         /* what the scans were lowered to, for reports */
} kir_module;

kir_module *kir_module_new(const char *name);
void kir_module_free(kir_module *m);

/* Plan building; -1 / false when memory runs out. `init` is copied. */
int kir_add_buffer(kir_module *m, const char *name, kir_type elem, int64_t count,
                   kir_buf_role role, int io_index, const void *init);
int kir_add_launch(kir_module *m, int kernel, const int64_t groups[3], const kir_arg *args,
                   int n_args, double flops, double bytes);
int kir_find_kernel(const kir_module *m, const char *name);

/* Stable text form (what --dump-after shows after lowering). */
void kir_print(const kir_module *m, xy_buf *out);

/* Checks scoping, types, the parfor/barrier rules, constant indices against array bounds,
 * and that every launch matches its kernel's parameters and buffers. */
int kir_verify(const kir_module *m, xy_error *err);

/* ------------------------------------------------------------------ builder */

#define KIR_MAX_DEPTH 32

typedef struct kir_builder {
  kir_module *m;
  kir_kernel *k;
  kir_stmt **tail[KIR_MAX_DEPTH]; /* where the next statement of each open block goes */
  kir_stmt *open[KIR_MAX_DEPTH];  /* the statement owning each open block */
  int depth;
  bool failed;                    /* sticky: out of memory or misuse; see kb_finish */
  char why[256];
} kir_builder;

void kb_init(kir_builder *b, kir_module *m);
/* Starts a kernel; returns its index. */
int kb_kernel(kir_builder *b, const char *name, int wg, int n_axes, const char *doc);
/* Ends the current kernel: XY_OK, or an error when a block is still open or memory ran out. */
int kb_finish(kir_builder *b, xy_error *err);

int kb_global(kir_builder *b, const char *name, kir_type elem, int64_t count, bool read_only);
int kb_int_param(kir_builder *b, const char *name);
int kb_local(kir_builder *b, const char *name, kir_type elem, int64_t count);
int kb_private(kir_builder *b, const char *name, kir_type elem, int64_t count);
/* A private array of count vectors of the given lanes. */
int kb_private_vec(kir_builder *b, const char *name, int lanes, int64_t count);

int kb_let(kir_builder *b, const char *name, kir_type type, kir_expr *init);
void kb_set(kir_builder *b, int var, kir_expr *value);
void kb_store(kir_builder *b, int array, kir_expr *idx, kir_expr *value);
int kb_for(kir_builder *b, const char *name, kir_expr *lo, kir_expr *hi);
int kb_parfor(kir_builder *b, const char *name, kir_expr *count);
void kb_if(kir_builder *b, kir_expr *cond);
void kb_else(kir_builder *b);
void kb_end(kir_builder *b);
void kb_comment(kir_builder *b, const char *fmt, ...) XY_PRINTF(2, 3);

/* Expressions. Integer constants fold; x+0, x*1 and x*0 simplify. */
kir_expr *kx_int(kir_builder *b, int64_t v);
kir_expr *kx_flt(kir_builder *b, double v);
kir_expr *kx_var(kir_builder *b, int var);
kir_expr *kx_load(kir_builder *b, int array, kir_expr *idx);
kir_expr *kx_bin(kir_builder *b, kir_binop op, kir_expr *x, kir_expr *y);
kir_expr *kx_un(kir_builder *b, kir_unop op, kir_expr *x);
kir_expr *kx_call(kir_builder *b, kir_func f, kir_expr *x, kir_expr *y, kir_expr *z);
kir_expr *kx_sel(kir_builder *b, kir_expr *cond, kir_expr *x, kir_expr *y);
kir_expr *kx_group(kir_builder *b, int axis);
/* Vectors; each is the scalar operation when lanes is 1. */
kir_expr *kx_vload(kir_builder *b, int array, kir_expr *idx, int lanes);
kir_expr *kx_splat(kir_builder *b, kir_expr *x, int lanes);
kir_expr *kx_hsum(kir_builder *b, kir_expr *v);
/* One lane of a vector variable (a KE_VAR of lanes > 1), as a scalar. */
kir_expr *kx_lane(kir_builder *b, kir_expr *v, int lane);

static inline kir_expr *kx_add(kir_builder *b, kir_expr *x, kir_expr *y) { return kx_bin(b, KB_ADD, x, y); }
static inline kir_expr *kx_sub(kir_builder *b, kir_expr *x, kir_expr *y) { return kx_bin(b, KB_SUB, x, y); }
static inline kir_expr *kx_mul(kir_builder *b, kir_expr *x, kir_expr *y) { return kx_bin(b, KB_MUL, x, y); }
static inline kir_expr *kx_div(kir_builder *b, kir_expr *x, kir_expr *y) { return kx_bin(b, KB_DIV, x, y); }
static inline kir_expr *kx_rem(kir_builder *b, kir_expr *x, kir_expr *y) { return kx_bin(b, KB_REM, x, y); }
static inline kir_expr *kx_min(kir_builder *b, kir_expr *x, kir_expr *y) { return kx_bin(b, KB_MIN, x, y); }
static inline kir_expr *kx_lt(kir_builder *b, kir_expr *x, kir_expr *y) { return kx_bin(b, KB_LT, x, y); }
static inline kir_expr *kx_fma(kir_builder *b, kir_expr *x, kir_expr *y, kir_expr *z) { return kx_call(b, KF_FMA, x, y, z); }

/* Shorthand for the common index forms: x*s + y, with ints. */
kir_expr *kx_mad(kir_builder *b, kir_expr *x, int64_t s, kir_expr *y);

const char *kir_binop_name(kir_binop op); /* "+", "<", "min", ... */
const char *kir_func_name(kir_func f);    /* "exp", ... */

#endif /* XY_KERNEL_IR_H */
