/* cmd_weights.c: xylem weights. Random weights for a model's layers, written as a
 * safetensors file under the names the layers read (the reference's state_dict names). */
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *const help =
  "usage: xylem weights SPEC -o FILE.safetensors [--seed N]\n"
  "\n"
  "Writes random weights for every layer of the model (each tensor drawn uniformly from its\n"
  "range), named and shaped as the reference implementation names them, behind each layer's\n"
  "\"weights\" prefix. Useful for trying a model before trained weights exist.\n";

int cmd_weights(int argc, char **argv)
{
  if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
    fputs(help, stdout);
    return EXIT_OK;
  }
  cli_opts o;
  if (!cli_parse(argc, argv, 2, "weights", "set output-dir seed", &o))
    return EXIT_USAGE;
  if (!o.out_dir) {
    fprintf(stderr, "xylem weights: say where to write: -o FILE.safetensors\n");
    return EXIT_USAGE;
  }
  if (!o.seed_set)
    o.seed = (uint64_t)time(NULL);
  xy_model *model = NULL;
  int rc = cli_load_model(&o, &model);
  if (rc)
    return rc;
  xy_error err;
  if (xy_model_write_random_weights(model, o.out_dir, o.seed, &err))
    rc = cli_report(&err);
  else
    printf("wrote %s (seed %llu)\n", o.out_dir, (unsigned long long)o.seed);
  xy_model_free(model);
  return rc;
}
