/* parallelize_scans.c: picks each scan's parallel form, chunk size and work-group size.
 * The options can force a form or a chunk (tests and benchmarks compare them); otherwise a
 * small cost model decides from the shapes and the device limits. For pLSTM the chunk is
 * pure schedule: it never changes results beyond float reassociation. */
#include <stdio.h>
#include <string.h>

#include "lower.h"
#include "lower_memory.h"
#include "passes.h"

/* Vector width along the value dimension: wide on CPUs, where explicit vectors are what
 * makes the code fast (PoCL: 3 GFLOP/s scalar, 100 with float16); float4 on GPUs, for
 * coalesced 16-byte loads, and on devices nobody named. It must divide DV; the J = 1
 * layouts are contiguous. */
int64_t pick_lanes(const xy_compile_options *opt, const plstm_dims *d)
{
  if (d->JV != 1 || d->JT != 1 || d->JO != 1)
    return 1;
  int64_t lanes = opt->lanes > 0 ? opt->lanes : opt->device.is_cpu ? 16 : 4;
  while (lanes > 1 && d->DV % lanes != 0)
    lanes /= 2;
  return lanes;
}

int64_t pick_rows(const xy_compile_options *opt)
{
  return opt->rows > 0 ? opt->rows : opt->device.is_cpu ? 4 : 2;
}

uint64_t local_budget(const xy_compile_options *opt)
{
  uint64_t have = opt->device.local_mem_bytes, reserve = have / 32;
  return have - (reserve < 1024 ? reserve : 1024);
}

int local_overflow(xy_error *err, const xy_compile_options *opt, const char *op,
                   const char *what, uint64_t need, const char *hint)
{
  return xy_fail(err, XY_E_DEVICE,
                 "'%s': %s needs %llu bytes of local memory; the device has %llu, of which a "
                 "kernel may use %llu%s%s%s", op, what, (unsigned long long)need,
                 (unsigned long long)opt->device.local_mem_bytes,
                 (unsigned long long)local_budget(opt), hint ? " (" : "", hint ? hint : "",
                 hint ? ")" : "");
}

int64_t cap_wg(const xy_compile_options *opt, int64_t n)
{
  if (opt->wg > 0 && (uint64_t)opt->wg <= opt->device.max_work_group_size)
    return opt->wg;
  int64_t cap = opt->device.is_cpu ? 64 : 256;
  if ((int64_t)opt->device.max_work_group_size < cap)
    cap = (int64_t)opt->device.max_work_group_size;
  int64_t wg = pow2_ceil(n < 1 ? 1 : n);
  return wg < cap ? wg : cap;
}

/* The largest chunk up to 64 whose tree fits local memory, but no larger than needed to
 * keep every compute unit busy with (chunk, batch) work-groups, and never below 16 unless
 * the sequence is shorter. */
static int64_t pick_chunk(const xy_compile_options *opt, const plstm_dims *d, int64_t lanes)
{
  int64_t chunk = 64;
  while (chunk > 1 && chunk_local_bytes(d, chunk, lanes) > local_budget(opt))
    chunk /= 2;
  while (chunk > 16 && d->B * ((d->N + chunk - 1) / chunk) < (int64_t)opt->device.compute_units)
    chunk /= 2;
  if (chunk > d->N)
    chunk = pow2_ceil(d->N);
  return chunk;
}

static int schedule_sequence(const pass_state *ps, ir_op *op, const plstm_dims *d,
                             ir_form forced, xy_error *err)
{
  const xy_compile_options *opt = ps->opt;
  ir_schedule *s = &op->sched;
  if (forced != IR_FORM_AUTO && forced != IR_FORM_CHUNKWISE && forced != IR_FORM_RECURRENT)
    return xy_fail(err, XY_E_USAGE,
                   "form '%s' does not apply to '%s', a scan over a sequence "
                   "(forms: recurrent, chunkwise)", ir_form_name(forced), op->name);
  s->lanes = pick_lanes(opt, d);
  /* A CPU with enough independent value columns to keep its cores busy runs the recurrence
   * faster than the chunkwise form: the same arithmetic with less traffic (PoCL, 2 cores,
   * L=4096, B=32, DK=DV=64: 59 ms recurrent, 98 ms chunkwise). GPUs need the chunks'
   * parallelism, and so does a package compiled for a device nobody named. */
  int64_t columns = d->B * (d->DV / s->lanes);
  bool cpu_recurrent = opt->device.is_cpu && columns >= 2 * (int64_t)opt->device.compute_units;
  if (forced != IR_FORM_AUTO)
    s->form = forced;
  else if (opt->chunk > 0) /* asking for a chunk size is asking for chunks */
    s->form = IR_FORM_CHUNKWISE;
  else
    s->form = cpu_recurrent ? IR_FORM_RECURRENT : IR_FORM_CHUNKWISE;
  s->rows = pick_rows(opt);
  if (s->form == IR_FORM_RECURRENT) {
    s->chunk = 0;
    s->rows = 1;
    s->wg = cap_wg(opt, d->DV / s->lanes);
    return XY_OK;
  }
  s->chunk = opt->chunk > 0 ? opt->chunk : pick_chunk(opt, d, s->lanes);
  uint64_t need = chunk_local_bytes(d, s->chunk < d->N ? s->chunk : d->N, s->lanes);
  if (need > local_budget(opt)) {
    char what[48];
    snprintf(what, sizeof what, "chunk %lld", (long long)s->chunk);
    return local_overflow(err, opt, op->name, what, need, "choose a smaller --chunk");
  }
  /* On a CPU a few work-items suffice: each carries wide vectors and register rows, and
   * fewer items mean less state to keep across barriers. */
  int64_t P = pow2_ceil(s->chunk < d->N ? s->chunk : d->N);
  s->wg = opt->device.is_cpu ? cap_wg(opt, 4) : cap_wg(opt, P * d->DV / s->lanes / s->rows);
  return XY_OK;
}

static int schedule_dag(const pass_state *ps, ir_op *op, const plstm_dims *d, ir_form forced,
                        xy_error *err)
{
  const xy_compile_options *opt = ps->opt;
  const ir_graph *g = &ps->m->graphs[op->graph];
  ir_schedule *s = &op->sched;
  if (forced != IR_FORM_AUTO && forced != IR_FORM_RECURRENT && forced != IR_FORM_LEVELS &&
      forced != IR_FORM_GRAPH && forced != IR_FORM_DENSE)
    return xy_fail(err, XY_E_USAGE,
                   "form '%s' does not apply to '%s', a scan over a DAG "
                   "(forms: recurrent, levels, graph, dense)", ir_form_name(forced), op->name);
  if (forced != IR_FORM_AUTO) {
    s->form = forced;
  } else {
    /* Many graphs fill the device one work-group each; few big ones need every level's
     * whole width, across graphs, in one launch. */
    int64_t groups = g->dag.n_graphs * d->B;
    s->form = groups >= 2 * (int64_t)opt->device.compute_units ? IR_FORM_GRAPH : IR_FORM_LEVELS;
  }
  s->chunk = 0;
  s->lanes = pick_lanes(opt, d);
  s->rows = 1;
  if (s->form == IR_FORM_DENSE) {
    int64_t groups, slot;
    int rc = dense_scratch_plan(opt, g, d->B, &groups, &slot, err, op->name);
    if (rc)
      return rc;
    /* Work-items split the (edge, node) and (edge, edge) entries of the largest graph. */
    int64_t n, e, big;
    dag_largest(&g->dag, &n, &e, &big);
    s->wg = cap_wg(opt, e * (e > n ? e : n));
    return XY_OK;
  }
  int64_t levels = g->prepared && g->prep.max_levels > 0 ? g->prep.max_levels : 1;
  int64_t width = s->form == IR_FORM_RECURRENT ? 2 : (d->N + d->E) / (levels * g->dag.n_graphs) + 1;
  if (s->form == IR_FORM_LEVELS)
    width = (d->N + d->E) / levels + 1;
  s->wg = cap_wg(opt, width * d->DV / s->lanes);
  return XY_OK;
}

/* memory_scan: the chunked form (spec tnt.md §5.4) wherever it applies (no streaming state
 * coming in: its chunk grid would start at a phase known only at run time); the token loop
 * otherwise. It is the faster everywhere measured (docs/benchmarks.md). */
static int schedule_memory(const pass_state *ps, ir_op *op, ir_form forced, xy_error *err)
{
  const xy_compile_options *opt = ps->opt;
  memory_dims d;
  mem_desc desc;
  int rc = memory_dims_of(ps->m, op, &d, &desc, err);
  if (rc)
    return rc;
  ir_schedule *s = &op->sched;
  if (forced != IR_FORM_AUTO && forced != IR_FORM_CHUNKWISE && forced != IR_FORM_RECURRENT)
    return xy_fail(err, XY_E_USAGE, "form '%s' does not apply to '%s', a memory_scan "
                   "(forms: recurrent, chunkwise)", ir_form_name(forced), op->name);
  const char *why_not = memory_chunked_unsupported(opt, op, &d);
  if (forced == IR_FORM_CHUNKWISE && why_not)
    return xy_fail(err, XY_E_USAGE, "memory_scan '%s': the chunkwise form %s; use --form "
                   "recurrent", op->name, why_not);
  s->form = forced != IR_FORM_AUTO ? forced : why_not ? IR_FORM_RECURRENT : IR_FORM_CHUNKWISE;
  s->chunk = op->attr.memory.chunk; /* part of the model, never the schedule's choice */
  s->lanes = 1;
  s->rows = 1;
  int64_t width = s->form == IR_FORM_RECURRENT ? d.DV * (d.DK > d.DV ? d.DK : d.DV)
                                                : d.DV * d.DK;
  s->wg = cap_wg(opt, width);
  return XY_OK;
}

int pass_parallelize_scans(pass_state *ps, xy_error *err)
{
  ir_form forced = IR_FORM_AUTO;
  if (ps->opt->form && ps->opt->form[0]) {
    forced = ir_form_from_name(ps->opt->form);
    if (forced == IR_FORM_COUNT)
      return xy_fail(err, XY_E_USAGE, "unknown form '%s' (forms: auto, recurrent, chunkwise, "
                     "levels, graph, dense, tiled, single)", ps->opt->form);
  }
  if (ps->opt->chunk < 0)
    return xy_fail(err, XY_E_USAGE, "chunk must be at least 1, not %lld",
                   (long long)ps->opt->chunk);
  for (int i = 0; i < ps->m->n_ops; i++) {
    ir_op *op = &ps->m->ops[i];
    if (op->code == IR_OP_PLSTM_SCAN2D || op->code == IR_OP_PLSTM_SCAN2D_FUSED) {
      int rc = schedule_plstm2d(ps, op, forced, err);
      if (rc)
        return rc;
      continue;
    }
    if (op->code == IR_OP_MEMORY_SCAN) {
      int rc = schedule_memory(ps, op, forced, err);
      if (rc)
        return rc;
      continue;
    }
    if (op->code != IR_OP_PLSTM_SCAN)
      continue;
    plstm_dims d;
    int rc = plstm_scan_dims(ps->m, op, &d, err);
    if (rc)
      return rc;
    rc = d.graph_kind == IR_GRAPH_DAG ? schedule_dag(ps, op, &d, forced, err)
                                       : schedule_sequence(ps, op, &d, forced, err);
    if (rc)
      return rc;
  }
  return XY_OK;
}
