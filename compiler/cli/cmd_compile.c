/* cmd_compile.c: xylem compile. Writes the package: NAME.cl, NAME.c, NAME.h, NAME.plan.json. */
#include <string.h>

#include "cli.h"

static const char *const help =
  "usage: xylem compile SPEC [options]\n"
  "\n"
  "Compiles the model and writes its package into DIR: NAME.c and NAME.h (host code; for\n"
  "the OpenCL target it calls xylem-rt and embeds the kernels), NAME.cl (OpenCL target) and\n"
  "NAME.plan.json (buffers and launches).\n"
  "\n"
  "  -o DIR              where to write (default: the current directory)\n"
  "  --target opencl|c   OpenCL C kernels + runtime calls, or portable C (default opencl)\n"
  "  --name NAME         package name (default: the spec's name)\n"
  "  --device SEL        tailor tiling to this OpenCL device (default: generic limits)\n"
  "  --form NAME         auto, recurrent, chunkwise (sequences), levels, graph, dense (DAGs),\n"
  "                      tiled, single (grids) (default auto)\n"
  "  --chunk N           chunk size of sequence scans, tile side of grid scans\n"
  "  --lanes N, --rows N, --wg N   vector width, register rows, work-group size\n"
  "  --dump-after PASS   print the IR after a pass (prepare_graphs, parallelize_scans,\n"
  "                      lower_kernels, or all) on stdout\n"
  "  --set PATH=VALUE    override a spec value\n"
  "  --stage NAME        apply the spec's stage NAME (its \"stages\" entry) before --set\n";

int cmd_compile(int argc, char **argv)
{
  if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
    fputs(help, stdout);
    return EXIT_OK;
  }
  cli_opts o;
  if (!cli_parse(argc, argv, 2, "compile",
                 "target device form chunk lanes rows wg set stage output-dir name dump-after", &o))
    return EXIT_USAGE;
  xy_model *model = NULL;
  int rc = cli_load_model(&o, &model);
  if (rc)
    return rc;
  xy_device_limits dev;
  if (o.target == XY_TARGET_C)
    xy_device_limits_host(&dev);
  else
    xy_device_limits_default(&dev);
  xrt_context *ctx = NULL;
  if (o.device && o.target == XY_TARGET_OPENCL && (rc = cli_open_device(&o, &ctx, &dev))) {
    xy_model_free(model);
    return rc;
  }
  xy_compile_options co;
  cli_compile_options(&o, o.form, &dev, &co);
  co.name = o.name;
  co.dump_after = o.dump_after;
  co.dump = stdout;
  xy_program *prog = NULL;
  xy_error err;
  const char *dir = o.out_dir ? o.out_dir : ".";
  if (xy_compile(model, &co, &prog, &err) || xy_program_write(prog, dir, &err)) {
    rc = cli_report(&err);
  } else {
    const char *n = xy_program_name(prog);
    printf("compiled %s (%s): %s\n", n, o.target == XY_TARGET_C ? "C" : "OpenCL",
           xy_program_forms(prog));
    if (o.target == XY_TARGET_OPENCL)
      printf("  %s/%s.cl\n", dir, n);
    printf("  %s/%s.c\n  %s/%s.h\n  %s/%s.plan.json\n", dir, n, dir, n, dir, n);
  }
  xy_program_free(prog);
  xrt_context_release(ctx);
  xy_model_free(model);
  return rc;
}
