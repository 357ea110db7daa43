/* cmd_bench.c: xylem bench. Times every kernel of the plan (device time from profiling
 * events on OpenCL, wall time per step on the C target): warm-up runs, then the median of
 * N runs per step, reported against the device's measured copy bandwidth and FMA rate.
 * --form all puts every form that applies side by side in one run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const help =
  "usage: xylem bench SPEC [options]\n"
  "\n"
  "Times each kernel: warm-up runs, then the median of N runs per kernel, with GFLOP/s and\n"
  "GB/s against the device's measured FMA rate and copy bandwidth (OpenCL).\n"
  "\n"
  "  --form NAME|all     a form, or every form that applies, side by side (default auto)\n"
  "  --warmup N          runs before timing (default 3)\n"
  "  --runs N            timed runs (default 20)\n"
  "  --json              machine-readable output\n"
  "  --weights FILE      the layers' weights (default: random)\n"
  "  --target opencl|c, --device SEL, --chunk N, --set PATH=VALUE, --stage NAME as in\n"
  "                      check\n";

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct bench_io {
  size_t n_in, n_out;
  float **in, **out;
} bench_io;

static void free_io(bench_io *io)
{
  for (size_t i = 0; io->in && i < io->n_in; i++)
    free(io->in[i]);
  for (size_t i = 0; io->out && i < io->n_out; i++)
    free(io->out[i]);
  free(io->in);
  free(io->out);
}

static bool make_io(const xy_model *model, bench_io *io)
{
  memset(io, 0, sizeof *io);
  io->n_in = xy_model_num_inputs(model);
  io->n_out = xy_model_num_outputs(model);
  io->in = calloc(io->n_in + 1, sizeof *io->in);
  io->out = calloc(io->n_out + 1, sizeof *io->out);
  if (!io->in || !io->out)
    return false;
  xy_tensor_info t;
  for (size_t i = 0; i < io->n_in; i++) {
    xy_model_input(model, i, &t);
    if (!(io->in[i] = malloc(sizeof(float) * (t.count ? t.count : 1))))
      return false;
  }
  xy_model_random_inputs(model, 1, io->in);
  for (size_t i = 0; i < io->n_out; i++) {
    xy_model_output(model, i, &t);
    if (!(io->out[i] = malloc(sizeof(float) * (t.count ? t.count : 1))))
      return false;
  }
  return true;
}

/* Times one form; prints its block. Returns EXIT_USAGE-free codes; *skipped when the form
 * does not apply to the model. */
static int bench_form(const cli_opts *o, const xy_model *model, const char *form,
                      xrt_context *ctx, const xy_device_limits *dev,
                      const xrt_calibration *cal, bench_io *io, bool *first, bool *skipped)
{
  *skipped = false;
  cli_exec ex;
  xy_compile_options co;
  cli_compile_options(o, form, dev, &co);
  xy_program *probe = NULL;
  xy_error err;
  if (xy_compile(model, &co, &probe, &err)) {
    if (err.code == XY_E_USAGE && form && strcmp(form, "auto") != 0) {
      *skipped = true;
      return EXIT_OK;
    }
    return cli_report(&err);
  }
  xy_program_free(probe);
  int rc = cli_exec_create(o, model, form, ctx, dev, false, &ex);
  if (rc)
    return rc;
  uint32_t n = cli_exec_steps(&ex);
  int runs = o->runs > 0 ? o->runs : 1;
  double *times = calloc((size_t)n * (size_t)runs + 1, sizeof *times);
  double *step = calloc((size_t)n + 1, sizeof *step);
  if (!times || !step) {
    free(times);
    free(step);
    cli_exec_free(&ex);
    return EXIT_FAIL;
  }
  for (int r = 0; r < o->warmup && !rc; r++)
    rc = cli_exec_run(&ex, (const void *const *)io->in, (void *const *)io->out, step);
  for (int r = 0; r < runs && !rc; r++) {
    rc = cli_exec_run(&ex, (const void *const *)io->in, (void *const *)io->out, step);
    for (uint32_t s = 0; s < n; s++)
      times[(size_t)s * (size_t)runs + (size_t)r] = step[s];
  }
  if (!rc) {
    const xrt_plan_desc *plan = xy_program_plan(ex.prog);
    double total = 0, flops = 0, bytes = 0;
    for (uint32_t s = 0; s < n; s++) {
      step[s] = median(times + (size_t)s * (size_t)runs, runs);
      total += step[s];
      flops += plan->steps[s].flops;
      bytes += plan->steps[s].bytes;
    }
    const char *forms = xy_program_forms(ex.prog);
    if (o->json) {
      int64_t pos = xy_model_positions(model);
      printf("%s    {\"form\": \"%s\", \"total_ms\": %.6f, \"gflops\": %.4f, \"gbs\": %.4f, "
             "\"positions_per_s\": %.6g, \"steps\": [",
             *first ? "" : ",\n", forms, total, total > 0 ? flops / total * 1e-6 : 0.0,
             total > 0 ? bytes / total * 1e-6 : 0.0, total > 0 ? (double)pos / total * 1e3 : 0.0);
      for (uint32_t s = 0; s < n; s++)
        printf("%s\n      {\"kernel\": \"%s\", \"median_ms\": %.6f, \"flops\": %.0f, \"bytes\": %.0f}",
               s ? "," : "", plan->steps[s].kernel, step[s], plan->steps[s].flops,
               plan->steps[s].bytes);
      printf("\n    ]}");
    } else {
      printf("\n%s: %.4f ms per run (kernels), %.2f GFLOP/s, %.2f GB/s", forms, total,
             total > 0 ? flops / total * 1e-6 : 0.0, total > 0 ? bytes / total * 1e-6 : 0.0);
      int64_t pos = xy_model_positions(model);
      if (pos > 0 && total > 0)
        printf(", %.4g positions/s", (double)pos / total * 1e3);
      printf("\n");
      printf("  %-4s %-28s %11s %10s %6s %10s %6s\n", "step", "kernel", "median ms", "GFLOP/s",
             "%fma", "GB/s", "%copy");
      /* Per-level launches of one kernel are summed so that long plans stay readable. */
      for (uint32_t s = 0; s < n;) {
        uint32_t e = s + 1;
        double t = step[s], f = plan->steps[s].flops, by = plan->steps[s].bytes;
        while (e < n && strcmp(plan->steps[e].kernel, plan->steps[s].kernel) == 0) {
          t += step[e];
          f += plan->steps[e].flops;
          by += plan->steps[e].bytes;
          e++;
        }
        double gf = t > 0 ? f / t * 1e-6 : 0, gb = t > 0 ? by / t * 1e-6 : 0;
        char name[64];
        if (e - s > 1)
          snprintf(name, sizeof name, "%s (x%u)", plan->steps[s].kernel, e - s);
        else
          snprintf(name, sizeof name, "%s", plan->steps[s].kernel);
        char pf[16] = "     -", pc[16] = "     -"; /* no peaks without calibration */
        if (cal && cal->fma_gflops > 0)
          snprintf(pf, sizeof pf, "%5.1f%%", 100 * gf / cal->fma_gflops);
        if (cal && cal->copy_gbs > 0)
          snprintf(pc, sizeof pc, "%5.1f%%", 100 * gb / cal->copy_gbs);
        printf("  %-4u %-28s %11.4f %10.2f %s %10.2f %s\n", s, name, t, gf, pf, gb, pc);
        s = e;
      }
    }
    *first = false;
  }
  free(times);
  free(step);
  cli_exec_free(&ex);
  return rc;
}

int cmd_bench(int argc, char **argv)
{
  if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
    fputs(help, stdout);
    return EXIT_OK;
  }
  cli_opts o;
  if (!cli_parse(argc, argv, 2, "bench", "target device form chunk lanes rows wg set stage warmup runs json weights", &o))
    return EXIT_USAGE;
  xy_model *model = NULL;
  int rc = cli_load_model(&o, &model);
  if (rc)
    return rc;
  xrt_context *ctx = NULL;
  xy_device_limits dev;
  bench_io io;
  memset(&io, 0, sizeof io);
  xrt_calibration cal = {0, 0};
  bool have_cal = false;
  if ((rc = cli_open_device(&o, &ctx, &dev)))
    goto done;
  if (!make_io(model, &io)) {
    fprintf(stderr, "xylem: out of memory for inputs\n");
    rc = EXIT_FAIL;
    goto done;
  }
  xy_error werr;
  if (o.weights && xy_model_read_weights(model, o.weights, io.in, &werr)) {
    rc = cli_report(&werr);
    goto done;
  }
  if (ctx) {
    xrt_error *rerr = malloc(sizeof *rerr);
    if (rerr && xrt_calibrate(ctx, &cal, rerr) == 0)
      have_cal = true;
    else if (rerr)
      fprintf(stderr, "xylem: calibration failed, reporting without peaks: %s\n", rerr->message);
    free(rerr);
  }
  const char *device = "C target (host)";
  char devbuf[600];
  if (ctx) {
    const xrt_device_info *info = xrt_context_device(ctx);
    snprintf(devbuf, sizeof devbuf, "%s / %s", info->platform, info->name);
    device = devbuf;
  }
  if (o.json)
    printf("{\n  \"model\": \"%s\",\n  \"target\": \"%s\",\n  \"device\": \"%s\",\n"
           "  \"warmup\": %d,\n  \"runs\": %d,\n  \"copy_gbs\": %.3f,\n  \"fma_gflops\": %.3f,\n"
           "  \"forms\": [\n", xy_model_name(model), o.target == XY_TARGET_C ? "c" : "opencl",
           device, o.warmup, o.runs, cal.copy_gbs, cal.fma_gflops);
  else {
    printf("xylem bench %s on %s: median of %d runs after %d warm-up runs\n",
           xy_model_name(model), device, o.runs, o.warmup);
    if (have_cal)
      printf("device peaks measured now: copy %.2f GB/s, FMA %.2f GFLOP/s\n", cal.copy_gbs,
             cal.fma_gflops);
  }
  bool first = true, skipped;
  if (o.form && strcmp(o.form, "all") == 0) {
    for (size_t f = 1; f < xy_form_count() && !rc; f++)
      rc = bench_form(&o, model, xy_form_name(f), ctx, &dev, have_cal ? &cal : NULL, &io,
                      &first, &skipped);
  } else {
    rc = bench_form(&o, model, o.form, ctx, &dev, have_cal ? &cal : NULL, &io, &first, &skipped);
  }
  if (o.json)
    printf("\n  ]\n}\n");
done:
  free_io(&io);
  xrt_context_release(ctx);
  xy_model_free(model);
  return rc;
}
