/* cmd_check.c: xylem check. Random inputs in each input's range, the compiled program on
 * its target (outputs poisoned with NaN, canaries around buffers), every output compared
 * with the float64 interpreter run on the same float32 inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *const help =
  "usage: xylem check SPEC [options]\n"
  "\n"
  "Draws random inputs (each in its spec range), runs the compiled program and the float64\n"
  "reference interpreter, and prints, per output, its summary and the max error relative to\n"
  "its largest value. Exits 1 when an error is above the tolerance.\n"
  "\n"
  "  --target opencl|c   where to run (default opencl)\n"
  "  --device SEL        OpenCL device: index, P:D or name part (default: XYLEM_DEVICE, CPU)\n"
  "  --form NAME         auto, recurrent, chunkwise (sequences), levels, graph, dense (DAGs),\n"
  "                      tiled, single (grids) (default auto)\n"
  "  --chunk N           chunk size of sequence scans, tile side of grid scans\n"
  "  --lanes N, --rows N, --wg N   vector width, register rows, work-group size\n"
  "  --set PATH=VALUE    override a spec value, e.g. --set graph.length=1000\n"
  "  --stage NAME        apply the spec's stage NAME (its \"stages\" entry) before --set\n"
  "  --seed N            random seed (default: from the clock; always printed)\n"
  "  --weights FILE      the layers' weights (default: random, each in its range)\n"
  "  --tol X             tolerance on the relative error (default 1e-5)\n";

typedef struct arrays {
  size_t n;
  float **f;
  double **d;
} arrays;

static void free_arrays(arrays *a)
{
  for (size_t i = 0; i < a->n; i++) {
    if (a->f)
      free(a->f[i]);
    if (a->d)
      free(a->d[i]);
  }
  free(a->f);
  free(a->d);
  memset(a, 0, sizeof *a);
}

static bool alloc_arrays(arrays *a, size_t n, const size_t *counts)
{
  a->n = n;
  a->f = calloc(n + 1, sizeof *a->f);
  a->d = calloc(n + 1, sizeof *a->d);
  if (!a->f || !a->d)
    return false;
  for (size_t i = 0; i < n; i++) {
    a->f[i] = malloc(sizeof(float) * (counts[i] ? counts[i] : 1));
    a->d[i] = malloc(sizeof(double) * (counts[i] ? counts[i] : 1));
    if (!a->f[i] || !a->d[i])
      return false;
  }
  return true;
}

int cmd_check(int argc, char **argv)
{
  if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
    fputs(help, stdout);
    return EXIT_OK;
  }
  cli_opts o;
  if (!cli_parse(argc, argv, 2, "check", "target device form chunk lanes rows wg set stage seed tol weights", &o))
    return EXIT_USAGE;
  if (!o.seed_set)
    o.seed = (uint64_t)time(NULL);

  xy_model *model = NULL;
  xrt_context *ctx = NULL;
  cli_exec ex;
  memset(&ex, 0, sizeof ex);
  arrays in = {0}, out = {0};
  size_t *counts = NULL;
  int rc = cli_load_model(&o, &model);
  if (rc)
    return rc;
  xy_device_limits dev;
  if ((rc = cli_open_device(&o, &ctx, &dev)) ||
      (rc = cli_exec_create(&o, model, o.form, ctx, &dev, true, &ex)))
    goto done;

  size_t n_in = xy_model_num_inputs(model), n_out = xy_model_num_outputs(model);
  counts = calloc(n_in + n_out + 1, sizeof *counts);
  if (!counts) {
    rc = EXIT_FAIL;
    goto done;
  }
  xy_tensor_info info;
  for (size_t i = 0; i < n_in; i++) {
    xy_model_input(model, i, &info);
    counts[i] = info.count;
  }
  for (size_t i = 0; i < n_out; i++) {
    xy_model_output(model, i, &info);
    counts[n_in + i] = info.count;
  }
  if (!alloc_arrays(&in, n_in, counts) || !alloc_arrays(&out, n_out, counts + n_in)) {
    fprintf(stderr, "xylem: out of memory for inputs and outputs\n");
    rc = EXIT_FAIL;
    goto done;
  }
  xy_model_random_inputs(model, o.seed, in.f);
  xy_error werr;
  if (o.weights && xy_model_read_weights(model, o.weights, in.f, &werr)) {
    rc = cli_report(&werr);
    goto done;
  }
  for (size_t i = 0; i < n_in; i++)
    for (size_t j = 0; j < counts[i]; j++)
      in.d[i][j] = in.f[i][j];
  for (size_t i = 0; i < n_out; i++)
    for (size_t j = 0; j < counts[n_in + i]; j++)
      out.f[i][j] = NAN;

  xy_error err;
  if (xy_model_interpret(model, (const double *const *)in.d, out.d, &err)) {
    rc = cli_report(&err);
    goto done;
  }
  if ((rc = cli_exec_run(&ex, (const void *const *)in.f, (void *const *)out.f, NULL)))
    goto done;

  printf("xylem check %s: %s on %s, %s, seed %llu\n", xy_model_name(model),
         o.target == XY_TARGET_C ? "C" : "OpenCL", ex.device_name, xy_program_forms(ex.prog),
         (unsigned long long)o.seed);
  printf("  %-12s %-18s %12s %12s %12s %12s %10s\n", "output", "shape", "min", "max", "mean",
         "max|err|", "rel err");
  bool pass = true;
  for (size_t i = 0; i < n_out; i++) {
    xy_model_output(model, i, &info);
    xy_compare_stats st;
    xy_compare(out.d[i], out.f[i], info.count, &st);
    bool ok = st.rel <= o.tol;
    pass = pass && ok;
    char shape[160];
    xy_shape_string(info.shape, info.rank, shape, sizeof shape);
    printf("  %-12s %-18s %12.5g %12.5g %12.5g %12.3g %10.3g %s\n", info.name, shape, st.min,
           st.max, st.mean, st.err_max, st.rel, ok ? "ok" : "FAIL");
  }
  printf("%s: max relative error %s tolerance %g\n", pass ? "PASS" : "FAIL",
         pass ? "within" : "above", o.tol);
  rc = pass ? EXIT_OK : EXIT_FAIL;
done:
  free_arrays(&in);
  free_arrays(&out);
  free(counts);
  cli_exec_free(&ex);
  xrt_context_release(ctx);
  xy_model_free(model);
  return rc;
}
