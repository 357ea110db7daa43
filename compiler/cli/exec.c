/* exec.c: loading, compiling and running a model on the chosen target, shared by run,
 * check and bench. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_load_model(const cli_opts *o, xy_model **model)
{
  xy_load_options lo;
  xy_load_options_default(&lo);
  lo.overrides = o->overrides;
  lo.n_overrides = o->n_overrides;
  lo.stage = o->stage;
  xy_error err;
  if (xy_model_load(o->spec, &lo, model, &err))
    return cli_report(&err);
  return EXIT_OK;
}

int cli_open_device(const cli_opts *o, xrt_context **ctx, xy_device_limits *dev)
{
  xy_device_limits_default(dev);
  *ctx = NULL;
  if (o->target == XY_TARGET_C) {
    xy_device_limits_host(dev);
    return EXIT_OK;
  }
  xrt_error *rerr = malloc(sizeof *rerr);
  if (!rerr) {
    fprintf(stderr, "xylem: out of memory\n");
    return EXIT_FAIL;
  }
  if (xrt_context_create(o->device, ctx, rerr)) {
    int rc = cli_report_rt(rerr);
    free(rerr);
    return rc;
  }
  free(rerr);
  xy_device_limits_of(xrt_context_device(*ctx), dev);
  return EXIT_OK;
}

void cli_compile_options(const cli_opts *o, const char *form, const xy_device_limits *dev,
                         xy_compile_options *co)
{
  xy_compile_options_default(co);
  co->target = o->target;
  co->form = form;
  co->chunk = o->chunk;
  co->lanes = o->lanes;
  co->rows = o->rows;
  co->wg = o->wg;
  if (dev)
    co->device = *dev;
}

int cli_exec_create(const cli_opts *o, const xy_model *model, const char *form,
                    xrt_context *ctx, const xy_device_limits *dev, bool testing, cli_exec *ex)
{
  memset(ex, 0, sizeof *ex);
  xy_compile_options co;
  cli_compile_options(o, form, dev, &co);
  xy_error err;
  if (xy_compile(model, &co, &ex->prog, &err))
    return cli_report(&err);
  if (o->target == XY_TARGET_C) {
    snprintf(ex->device_name, sizeof ex->device_name, "C target (host)");
    if (xy_native_load(ex->prog, &ex->native, &err)) {
      cli_exec_free(ex);
      return cli_report(&err);
    }
    return EXIT_OK;
  }
  ex->ctx = ctx;
  const xrt_device_info *info = xrt_context_device(ctx);
  snprintf(ex->device_name, sizeof ex->device_name, "%s / %s", info->platform, info->name);
  xrt_plan_options po = {.profile = 1, .poison = testing, .guard = testing};
  xrt_error *rerr = malloc(sizeof *rerr);
  if (!rerr || xrt_plan_create(ctx, xy_program_plan(ex->prog), &po, &ex->plan, rerr)) {
    int rc = rerr ? cli_report_rt(rerr) : EXIT_FAIL;
    free(rerr);
    cli_exec_free(ex);
    return rc;
  }
  free(rerr);
  return EXIT_OK;
}

int cli_exec_run(cli_exec *ex, const void *const *inputs, void *const *outputs, double *step_ms)
{
  if (ex->native) {
    xy_error err;
    if (xy_native_run(ex->native, inputs, outputs, XY_RUN_POISON, step_ms, &err))
      return cli_report(&err);
    return EXIT_OK;
  }
  xrt_error *rerr = malloc(sizeof *rerr);
  int rc = EXIT_OK;
  if (!rerr)
    return EXIT_FAIL;
  if (xrt_plan_run(ex->plan, inputs, outputs, rerr) ||
      (step_ms && xrt_plan_step_times(ex->plan, step_ms, rerr)))
    rc = cli_report_rt(rerr);
  free(rerr);
  return rc;
}

uint32_t cli_exec_steps(const cli_exec *ex)
{
  return xy_program_plan(ex->prog)->n_steps;
}

void cli_exec_free(cli_exec *ex)
{
  xrt_plan_release(ex->plan);
  xy_native_free(ex->native);
  xy_program_free(ex->prog);
  memset(ex, 0, sizeof *ex);
}
