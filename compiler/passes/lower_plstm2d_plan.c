/* lower_plstm2d_plan.c: what every form of the 2D scans shares (lower_plstm2d.h): the plan
 * (the op's shapes, sizes and schedule), kernel parameters and launches, the flipped
 * frame's index maps and tile headers. */
#include <string.h>

#include "lower_expr.h"
#include "lower_plstm2d.h"

bool p2d_all_j_one(const plstm2d_dims *d)
{
  return d->JQ == 1 && d->JK == 1 && d->JV == 1 && d->JT == 1 && d->JO == 1;
}

void p2d_sequence_dims(const plstm2d_dims *d, plstm_dims *pd)
{
  memset(pd, 0, sizeof *pd);
  pd->B = d->B;
  pd->N = pd->E = pd->A = d->X * d->Y;
  pd->DK = d->DK;
  pd->DV = d->DV;
  pd->JQ = d->JQ;
  pd->JK = d->JK;
  pd->JV = d->JV;
  pd->JT = d->JT;
  pd->JO = d->JO;
  pd->graph_kind = IR_GRAPH_SEQUENCE;
}

void p2d_plan_tiles(p2d_plan *p, int64_t tx, int64_t ty)
{
  p->TX = tx < p->X ? tx : p->X;
  p->TY = ty < p->Y ? ty : p->Y;
  p->NX = (p->X + p->TX - 1) / p->TX;
  p->NY = (p->Y + p->TY - 1) / p->TY;
  p->NT = p->NX * p->NY;
  p->NB = p->TX + p->TY;
  p->PT = p->TX * p->TY;
}

int p2d_plan_init(lower_ctx *lc, const ir_op *op, p2d_plan *p)
{
  memset(p, 0, sizeof *p);
  int rc = plstm2d_dims_of(lc->m, op, &p->d, lc->err);
  if (rc)
    return rc;
  const plstm2d_dims *d = &p->d;
  /* The per-cell and per-state sizes below multiply dimensions the shape rules bound one
   * tensor at a time; the state DK x DV x JT is no tensor's, so it is checked here. */
  const int64_t state[] = {d->DK, d->DV, d->JT}, pair[] = {d->JO, d->JQ, d->JK, d->JV};
  int64_t n;
  if (!xy_product_i64(pair, 4, &n) || !xy_product_i64(state, 3, &n) ||
      !xy_mul_i64(n, d->B * d->X * d->Y, &n))
    return xy_fail(lc->err, XY_E_LIMIT, "'%s': the states are too large to index", op->name);
  p2d_sequence_dims(d, &p->pd);
  p->X = d->X;
  p->Y = d->Y;
  p->P = d->X * d->Y;
  p->szQ = d->DK * d->JQ;
  p->szK = d->DK * d->JK;
  p->szV = d->DV * d->JV;
  p->szS = d->JT * d->JK * d->JV;
  p->szT = d->JT * d->JT;
  p->szM = d->JO * d->JQ * d->JT;
  p->szD = d->JO * d->JQ * d->JK * d->JV;
  p->szC = d->DK * d->DV * d->JT;
  p->szH = d->DV * d->JO;
  p->KW = d->JK * d->JV;
  p->MR = d->JO * d->JQ;
  p->OV = d->JO * d->JV;
  p->n_orient = d->fused ? 4 : 1;
  p->scale = op->qk_scale;
  plstm_lanes(&p->pd, &op->sched, &p->VL, &p->VD);
  p->RB = op->sched.rows > 1 ? (int)op->sched.rows : 1;
  p->wg = op->sched.wg > 0 ? op->sched.wg : 1;
  /* Buffers are indexed with 32-bit ints (lower_temp checks each); this guards the
   * products the plan forms on the way. */
  if (!xy_mul_i64(p->P, d->B * 4, &n) || !xy_mul_i64(n, p->szC > p->szD ? p->szC : p->szD, &n))
    return xy_fail(lc->err, XY_E_LIMIT, "'%s': the grid is too large to index", op->name);
  p2d_plan_tiles(p, op->sched.chunk > 0 ? op->sched.chunk : p->X,
                 op->sched.chunk > 0 ? op->sched.chunk : p->Y);
  return XY_OK;
}

/* ------------------------------------------------------------------ temporaries */

int p2d_temp(lower_ctx *lc, const ir_op *op, const char *what, int n, const int64_t *factors)
{
  int64_t count = 1;
  for (int i = 0; i < n; i++)
    if (!xy_mul_i64(count, factors[i], &count)) {
      xy_fail(lc->err, XY_E_LIMIT, "'%s': temporary %s is too large to index", op->name, what);
      return -1;
    }
  return lower_temp(lc, lower_name(lc, op, what), count);
}

/* ------------------------------------------------------------------ parameters, launches */

int p2d_global(p2d_kern *kc, p2d_args *args, const char *name, int buffer, int64_t count,
               bool read_only)
{
  if (args->n >= P2D_MAX_ARGS)
    return -1;
  args->a[args->n++] = (kir_arg){true, buffer};
  return kb_global(kc->b, name, KT_FLOAT, count > 0 ? count : 1, read_only);
}

int p2d_int_param(p2d_kern *kc, p2d_args *args, const char *name, int tag)
{
  if (args->n >= P2D_MAX_ARGS)
    return -1;
  args->a[args->n++] = (kir_arg){false, tag};
  return kb_int_param(kc->b, name);
}

void p2d_declare_gates(lower_ctx *lc, const ir_op *op, p2d_kern *kc, p2d_args *args,
                       bool with_marks)
{
  static const char *const names[P2D_G_COUNT] = {"S_r", "S_d", "T_rl", "T_du", "T_dl", "T_ru",
                                                 "M_l", "M_u"};
  static const int slots[P2D_G_COUNT] = {P2D_SR, P2D_SD, P2D_TRL, P2D_TDU, P2D_TDL, P2D_TRU,
                                         P2D_ML, P2D_MU};
  const p2d_plan *p = kc->p;
  int64_t rows = p->d.B * p->n_orient * p->P;
  const int64_t sizes[P2D_G_COUNT] = {p->szS, p->szS, p->szT, p->szT, p->szT, p->szT,
                                      p->szM, p->szM};
  for (int g = 0; g < P2D_G_COUNT; g++) {
    kc->g[g] = -1;
    int buf = lower_in(lc, op, slots[g]);
    if (buf < 0 || (!with_marks && (g == P2D_G_ML || g == P2D_G_MU)))
      continue;
    kc->g[g] = p2d_global(kc, args, names[g], buf, rows * sizes[g], true);
  }
}

void p2d_declare_orientation(p2d_kern *kc, p2d_args *args, bool runtime_o)
{
  kc->o = runtime_o ? p2d_int_param(kc, args, "o", P2D_ARG_O) : -1;
}

int p2d_launch(lower_ctx *lc, int kernel, const p2d_args *args, int64_t g0, int64_t g1,
               int64_t o, int64_t dd, double flops, double bytes)
{
  kir_arg a[P2D_MAX_ARGS];
  for (int i = 0; i < args->n; i++) {
    a[i] = args->a[i];
    if (!a[i].is_buffer)
      a[i].value = a[i].value == P2D_ARG_O ? o : dd;
  }
  int64_t groups[3] = {g0, g1, 1};
  if (kir_add_launch(lc->k, kernel, groups, a, args->n, flops, bytes) < 0)
    return xy_fail(lc->err, XY_E_NOMEM, "out of memory");
  return XY_OK;
}

/* ------------------------------------------------------------------ the flipped frame */

/* x itself, n - 1 - x, or x + f (n - 1 - 2x) with the runtime flag f of the axis. */
static kir_expr *reflect(const p2d_kern *kc, kir_expr *x, int bit, int64_t n)
{
  kir_builder *b = kc->b;
  if (kc->o < 0)
    return (kc->oc >> bit) & 1 ? SUB(I(n - 1), x) : x;
  kir_expr *f = bit == 0 ? REM(V(kc->o), I(2)) : DIV(V(kc->o), I(2));
  return ADD(x, MUL(f, SUB(I(n - 1), MUL(I(2), x))));
}

kir_expr *p2d_orig_x(const p2d_kern *kc, kir_expr *x)
{
  return reflect(kc, x, 0, kc->p->X);
}

kir_expr *p2d_orig_y(const p2d_kern *kc, kir_expr *y)
{
  return reflect(kc, y, 1, kc->p->Y);
}

kir_expr *p2d_cell_row(const p2d_kern *kc, kir_expr *x, kir_expr *y)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  return ADD(MUL(ADD(MUL(V(kc->bi), I(p->X)), p2d_orig_x(kc, x)), I(p->Y)), p2d_orig_y(kc, y));
}

kir_expr *p2d_gate_row(const p2d_kern *kc, kir_expr *x, kir_expr *y)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  kir_expr *plane = V(kc->bi);
  if (p->n_orient > 1)
    plane = ADD(MUL(plane, I(4)), kc->o >= 0 ? V(kc->o) : I(kc->oc));
  return ADD(MUL(ADD(MUL(plane, I(p->X)), p2d_orig_x(kc, x)), I(p->Y)), p2d_orig_y(kc, y));
}

kir_expr *p2d_gate(const p2d_kern *kc, int g, kir_expr *grow, kir_expr *idx)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  if (kc->g[g] < 0)
    return F(0);
  int64_t size = g <= P2D_G_SD ? p->szS : g <= P2D_G_TRU ? p->szT : p->szM;
  return LD(kc->g[g], ADD(MUL(grow, I(size)), idx));
}

kir_expr *p2d_is_first_orientation(const p2d_kern *kc)
{
  kir_builder *b = kc->b;
  return kx_bin(b, KB_EQ, kc->o >= 0 ? V(kc->o) : I(kc->oc), I(0));
}

void p2d_tile_header(p2d_kern *kc, kir_expr *tile_index, p2d_tile *t)
{
  kir_builder *b = kc->b;
  const p2d_plan *p = kc->p;
  t->tile = kb_let(b, "tile", KT_INT, tile_index);
  t->tx = kb_let(b, "tx", KT_INT, DIV(V(t->tile), I(p->NY)));
  t->ty = kb_let(b, "ty", KT_INT, REM(V(t->tile), I(p->NY)));
  t->x0 = kb_let(b, "x0", KT_INT, MUL(V(t->tx), I(p->TX)));
  t->y0 = kb_let(b, "y0", KT_INT, MUL(V(t->ty), I(p->TY)));
  t->nx = kb_let(b, "nx", KT_INT, MIN(I(p->TX), SUB(I(p->X), V(t->x0))));
  t->ny = kb_let(b, "ny", KT_INT, MIN(I(p->TY), SUB(I(p->Y), V(t->y0))));
}
