/* main.c: the xylem command line. */
#include <string.h>

#include "cli.h"

static const char *const usage =
  "xylem %s: compiles pLSTM model specs to OpenCL C and portable C kernels\n"
  "\n"
  "usage: xylem COMMAND [options]\n"
  "\n"
  "commands:\n"
  "  compile SPEC   write the package: NAME.cl, NAME.c, NAME.h, NAME.plan.json\n"
  "  run SPEC       run on inputs from .npy files, write the outputs as .npy\n"
  "  check SPEC     random inputs: every output against the float64 interpreter\n"
  "  bench SPEC     time every kernel (median of N runs) against the device's peaks\n"
  "  weights SPEC   write random weights for the model's layers (safetensors)\n"
  "  graphs         write a file of random DAGs (trees, molecule-like graphs)\n"
  "  devices        list the OpenCL devices\n"
  "\n"
  "xylem COMMAND --help tells more. --version prints the version.\n"
  "Environment: XYLEM_DEVICE (default device), XYLEM_CACHE_DIR (program binary cache),\n"
  "XYLEM_CACHE=off, XYLEM_CC and XYLEM_CFLAGS (the C target's compiler).\n";

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, usage, xy_version());
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    printf(usage, xy_version());
    return EXIT_OK;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("xylem %s\n", xy_version());
    return EXIT_OK;
  }
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } cmds[] = {
    {"compile", cmd_compile}, {"run", cmd_run}, {"check", cmd_check},
    {"bench", cmd_bench}, {"devices", cmd_devices}, {"weights", cmd_weights},
    {"graphs", cmd_graphs},
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (strcmp(cmd, cmds[i].name) == 0)
      return cmds[i].run(argc, argv);
  fprintf(stderr, "xylem: unknown command '%s' (commands: compile, run, check, bench, weights, "
                  "graphs, devices)\n",
          cmd);
  return EXIT_USAGE;
}
