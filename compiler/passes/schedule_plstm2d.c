/* schedule_plstm2d.c: the form, tile and work-group size of 2D scans. The options can
 * force a form, a tile (--chunk: asking for a tile is asking for tiles), lanes, rows and
 * the work-group size; otherwise the shapes and the device decide (the reasons are at
 * pick_form). The tile is pure schedule: it never changes results beyond float
 * reassociation. */
#include <stdio.h>

#include "lower.h"
#include "lower_plstm2d.h"
#include "passes.h"

/* Bytes of the single form's gating matrix G_total [B, P, P]. */
static uint64_t single_bytes(const plstm2d_dims *d)
{
  uint64_t P = (uint64_t)(d->X * d->Y);
  return 4u * (uint64_t)d->B * P * P * (uint64_t)(d->JO * d->JQ * d->JK * d->JV);
}

/* The largest tile side up to 8 whose output kernel fits local memory. A tile's cells read
 * the 2 x side states on its borders, so its arithmetic grows with the side while the
 * border traffic and the diagonals of the pass shrink; 8 balanced them on PoCL (64x64,
 * DK = DV = 64: side 4 183 ms, 8 198 ms, 16 281 ms, 2 313 ms). */
static int64_t pick_tile(const xy_compile_options *opt, const plstm2d_dims *d, int64_t lanes)
{
  int64_t side = 8;
  while (side > 1 && p2d_tile_local_bytes(d, side < d->X ? side : d->X, side < d->Y ? side : d->Y,
                                          (int)lanes) > local_budget(opt))
    side /= 2;
  return side;
}

/*
 * Which form, when none is forced:
 * - single for the fused op on grids of up to 1024 cells whose G_total fits one allocation:
 *   the four orientations cost one attention-like pass, 2 P^2 (DK + DV) flops, against
 *   about 16 P DK DV per orientation for the wavefront: cheaper while P < 32 DK DV /
 *   (DK + DV) (the vision layer: 16x16 cells, DK = DV = 64);
 * - recurrent on a CPU whose cores the value columns keep busy (batch x DV/lanes >= 2 per
 *   compute unit): the wavefront does the least arithmetic and streams the states;
 * - tiled otherwise (GPUs, unknown devices, few columns): tiles of a diagonal, and the
 *   state elements of each, run in parallel.
 */
static ir_form pick_form(const xy_compile_options *opt, const plstm2d_dims *d, int64_t lanes)
{
  uint64_t P = (uint64_t)(d->X * d->Y);
  uint64_t single_cut = 32u * (uint64_t)(d->DK * d->DV) / (uint64_t)(d->DK + d->DV);
  if (d->fused && P <= 1024 && P <= single_cut &&
      single_bytes(d) <= opt->device.max_alloc_bytes / 2)
    return IR_FORM_SINGLE;
  int64_t columns = d->B * (d->DV / lanes);
  if (opt->device.is_cpu && columns >= 2 * (int64_t)opt->device.compute_units)
    return IR_FORM_RECURRENT;
  return IR_FORM_TILED;
}

int schedule_plstm2d(const pass_state *ps, ir_op *op, ir_form forced, xy_error *err)
{
  const xy_compile_options *opt = ps->opt;
  plstm2d_dims d;
  int rc = plstm2d_dims_of(ps->m, op, &d, err);
  if (rc)
    return rc;
  if (forced != IR_FORM_AUTO && forced != IR_FORM_RECURRENT && forced != IR_FORM_TILED &&
      forced != IR_FORM_SINGLE)
    return xy_fail(err, XY_E_USAGE,
                   "form '%s' does not apply to '%s', a scan over a grid "
                   "(forms: recurrent, tiled, single)", ir_form_name(forced), op->name);
  plstm_dims pd;
  p2d_sequence_dims(&d, &pd);
  ir_schedule *s = &op->sched;
  s->lanes = pick_lanes(opt, &pd);
  s->rows = pick_rows(opt);
  if (forced != IR_FORM_AUTO)
    s->form = forced;
  else if (opt->chunk > 0)
    s->form = IR_FORM_TILED;
  else
    s->form = pick_form(opt, &d, s->lanes);
  int64_t cols = d.DV / s->lanes, diag = d.X < d.Y ? d.X : d.Y;
  switch (s->form) {
  case IR_FORM_RECURRENT:
    /* A diagonal's cells spread over the work-items; a CPU wants few of them. */
    s->chunk = 0;
    s->rows = 1;
    s->wg = cap_wg(opt, opt->device.is_cpu ? (diag < 8 ? diag : 8) : diag);
    return XY_OK;
  case IR_FORM_SINGLE:
    s->chunk = 0;
    s->wg = cap_wg(opt, opt->device.is_cpu ? 8 : 256);
    return XY_OK;
  default:
    break;
  }
  s->chunk = opt->chunk > 0 ? opt->chunk : pick_tile(opt, &d, s->lanes);
  int64_t tx = s->chunk < d.X ? s->chunk : d.X, ty = s->chunk < d.Y ? s->chunk : d.Y;
  uint64_t need = p2d_tile_local_bytes(&d, tx, ty, (int)s->lanes);
  if (need > local_budget(opt)) {
    char what[64];
    snprintf(what, sizeof what, "a %lld x %lld tile", (long long)tx, (long long)ty);
    return local_overflow(err, opt, op->name, what, need, "choose a smaller --chunk");
  }
  /* On a CPU a few work-items carry wide vectors; a GPU wants a tile's state elements. */
  s->wg = cap_wg(opt, opt->device.is_cpu ? 8 : d.DK * cols);
  return XY_OK;
}
