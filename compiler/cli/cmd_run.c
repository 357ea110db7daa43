/* cmd_run.c: xylem run. Inputs from .npy files, outputs to .npy files, all written or none. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *const help =
  "usage: xylem run SPEC --input NAME=FILE.npy ... -o DIR [options]\n"
  "\n"
  "Runs the model on inputs from .npy files and writes every output as DIR/NAME.npy\n"
  "(float32). An input file may have any numeric dtype; its shape must be the input's,\n"
  "dimensions of size 1 aside. Nothing is written unless every output is.\n"
  "\n"
  "  --input NAME=FILE   an input (repeatable); FILE alone when the model has one input\n"
  "  --inputs DIR        read each input NAME from DIR/NAME.npy\n"
  "                      (an input with \"from_graph\" takes the graph file's features\n"
  "                      unless a file is given for it)\n"
  "  -o DIR              write outputs to DIR/NAME.npy (created if missing)\n"
  "  --output NAME=FILE  write one output to FILE instead (repeatable)\n"
  "  --weights FILE      the layers' weights (safetensors; the reference's tensor names\n"
  "                      behind each layer's prefix)\n"
  "  --target opencl|c, --device SEL, --form NAME, --chunk N, --set PATH=VALUE,\n"
  "  --stage NAME        as in check\n";

/* Shapes match when they agree after dropping dimensions of size 1. */
static bool same_shape(const xy_array *a, const xy_tensor_info *t)
{
  int i = 0, j = 0;
  for (;;) {
    while (i < a->rank && a->shape[i] == 1)
      i++;
    while (j < t->rank && t->shape[j] == 1)
      j++;
    if (i == a->rank || j == t->rank)
      return i == a->rank && j == t->rank;
    if (a->shape[i++] != t->shape[j++])
      return false;
  }
}


/* DIR/NAME.npy, without doubling a slash DIR ends with. */
static void npy_path(char *buf, size_t n, const char *dir, const char *name)
{
  size_t len = strlen(dir);
  snprintf(buf, n, "%s%s%s.npy", dir, len && dir[len - 1] == '/' ? "" : "/", name);
}
static const char *input_path(const cli_opts *o, const char *name, size_t n_in, char *buf,
                              size_t n)
{
  size_t len = strlen(name);
  for (size_t i = 0; i < o->n_inputs; i++) {
    const char *s = o->inputs[i];
    if (strncmp(s, name, len) == 0 && s[len] == '=')
      return s + len + 1;
    if (!strchr(s, '=') && n_in == 1)
      return s;
  }
  if (o->input_dir) {
    npy_path(buf, n, o->input_dir, name);
    return buf;
  }
  return NULL;
}

static int check_bindings(const cli_opts *o, const xy_model *model, size_t n_weights)
{
  size_t n_in = xy_model_num_inputs(model) - n_weights; /* the data inputs */
  for (size_t i = 0; i < o->n_inputs; i++) {
    const char *s = o->inputs[i];
    const char *eq = strchr(s, '=');
    if (!eq) {
      if (n_in != 1) {
        fprintf(stderr, "xylem run: --input %s: the model has %zu inputs; write NAME=FILE\n", s, n_in);
        return EXIT_USAGE;
      }
      continue;
    }
    bool found = false;
    xy_tensor_info info;
    for (size_t j = 0; j < xy_model_num_inputs(model) && !found; j++) {
      xy_model_input(model, j, &info);
      found = !info.is_weight && strlen(info.name) == (size_t)(eq - s) && strncmp(info.name, s, (size_t)(eq - s)) == 0;
    }
    if (!found) {
      fprintf(stderr, "xylem run: --input %s: the model has no input named '%.*s'\n", s,
              (int)(eq - s), s);
      return EXIT_USAGE;
    }
  }
  return EXIT_OK;
}

int cmd_run(int argc, char **argv)
{
  if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
    fputs(help, stdout);
    return EXIT_OK;
  }
  cli_opts o;
  if (!cli_parse(argc, argv, 2, "run",
                 "target device form chunk lanes rows wg set stage input inputs output-dir output weights", &o))
    return EXIT_USAGE;
  if (!o.out_dir && o.n_outputs == 0) {
    fprintf(stderr, "xylem run: say where outputs go: -o DIR or --output NAME=FILE\n");
    return EXIT_USAGE;
  }
  xy_model *model = NULL;
  int rc = cli_load_model(&o, &model);
  if (rc)
    return rc;
  size_t n_weights = 0;
  for (size_t i = 0; i < xy_model_num_inputs(model); i++) {
    xy_tensor_info t;
    xy_model_input(model, i, &t);
    n_weights += t.is_weight != 0;
  }
  if (o.weights && n_weights == 0) {
    fprintf(stderr, "xylem run: --weights %s: no layer of '%s' takes weights\n", o.weights,
            xy_model_name(model));
    xy_model_free(model);
    return EXIT_USAGE;
  }
  if (!o.weights && n_weights > 0) {
    fprintf(stderr, "xylem run: '%s' has %zu weight tensors: give --weights FILE.safetensors "
            "(xylem weights %s -o FILE writes random ones)\n", xy_model_name(model), n_weights,
            o.spec);
    xy_model_free(model);
    return EXIT_USAGE;
  }
  if ((rc = check_bindings(&o, model, n_weights))) {
    xy_model_free(model);
    return rc;
  }
  size_t n_in = xy_model_num_inputs(model), n_out = xy_model_num_outputs(model);
  float **ins = calloc(n_in + 1, sizeof *ins), **outs = calloc(n_out + 1, sizeof *outs);
  char (*paths)[4096] = calloc(n_out + 1, sizeof *paths);
  xrt_context *ctx = NULL;
  cli_exec ex;
  memset(&ex, 0, sizeof ex);
  xy_limits lim;
  xy_limits_default(&lim);
  xy_error err;
  xy_tensor_info info;
  if (!ins || !outs || !paths) {
    rc = EXIT_FAIL;
    goto done;
  }
  for (size_t i = 0; i < n_in; i++) {
    xy_model_input(model, i, &info);
    if (info.is_weight) { /* filled from the weights file below */
      if (!(ins[i] = malloc(sizeof(float) * (info.count ? info.count : 1)))) {
        rc = EXIT_FAIL;
        goto done;
      }
      continue;
    }
    char buf[4096];
    const char *path = input_path(&o, info.name, n_in - n_weights, buf, sizeof buf);
    /* An input the graph file gives takes the file's values unless a file is named for it
     * (--input, or NAME.npy in the --inputs folder). */
    if (info.from_graph && (!path || (path == buf && access(buf, F_OK) != 0))) {
      if (!(ins[i] = malloc(sizeof(float) * (info.count ? info.count : 1)))) {
        rc = EXIT_FAIL;
        goto done;
      }
      xy_model_graph_input(model, i, ins[i]);
      continue;
    }
    if (!path) {
      fprintf(stderr, "xylem run: no file for input '%s' (use --input %s=FILE.npy or --inputs DIR)\n",
              info.name, info.name);
      rc = EXIT_USAGE;
      goto done;
    }
    xy_array a;
    if (xy_npy_read(path, lim.max_file_bytes, &a, &err)) {
      rc = cli_report(&err);
      goto done;
    }
    if (!same_shape(&a, &info) || a.count != info.count) {
      char want[160], have[160];
      fprintf(stderr, "xylem run: %s: input '%s' needs %zu values in shape %s; the file holds "
              "%zu values in shape %s\n", path, info.name, info.count,
              xy_shape_string(info.shape, info.rank, want, sizeof want), a.count,
              xy_shape_string(a.shape, a.rank, have, sizeof have));
      xy_array_free(&a);
      rc = EXIT_FAIL;
      goto done;
    }
    ins[i] = malloc(sizeof(float) * (info.count ? info.count : 1));
    if (!ins[i]) {
      xy_array_free(&a);
      fprintf(stderr, "xylem run: out of memory for input '%s'\n", info.name);
      rc = EXIT_FAIL;
      goto done;
    }
    int crc = xy_array_to_f32(&a, ins[i], info.count, &err);
    xy_array_free(&a);
    if (crc) {
      rc = cli_report(&err);
      goto done;
    }
  }
  if (o.weights && xy_model_read_weights(model, o.weights, ins, &err)) {
    rc = cli_report(&err);
    goto done;
  }
  for (size_t i = 0; i < n_out; i++) {
    xy_model_output(model, i, &info);
    outs[i] = malloc(sizeof(float) * (info.count ? info.count : 1));
    if (!outs[i]) {
      rc = EXIT_FAIL;
      goto done;
    }
    npy_path(paths[i], sizeof paths[i], o.out_dir ? o.out_dir : ".", info.name);
    for (size_t j = 0; j < o.n_outputs; j++) {
      const char *s = o.outputs[j], *eq = strchr(s, '=');
      if (eq && strlen(info.name) == (size_t)(eq - s) && strncmp(s, info.name, (size_t)(eq - s)) == 0)
        snprintf(paths[i], sizeof paths[i], "%s", eq + 1);
    }
  }
  xy_device_limits dev;
  if ((rc = cli_open_device(&o, &ctx, &dev)) ||
      (rc = cli_exec_create(&o, model, o.form, ctx, &dev, false, &ex)) ||
      (rc = cli_exec_run(&ex, (const void *const *)ins, (void *const *)outs, NULL)))
    goto done;
  if (o.out_dir && access(o.out_dir, F_OK) != 0 && mkdir(o.out_dir, 0755) != 0) {
    fprintf(stderr, "xylem run: %s: cannot create directory: %s\n", o.out_dir, strerror(errno));
    rc = EXIT_FAIL;
    goto done;
  }
  /* Write every output; on any failure remove what was written. */
  size_t written = 0;
  for (; written < n_out; written++) {
    xy_model_output(model, written, &info);
    xy_array a = {.dtype = XY_F32, .rank = info.rank, .count = info.count, .data = outs[written]};
    memcpy(a.shape, info.shape, sizeof a.shape);
    if (xy_npy_write(paths[written], &a, &err)) {
      rc = cli_report(&err);
      break;
    }
  }
  if (rc) {
    for (size_t i = 0; i < written; i++)
      unlink(paths[i]);
    goto done;
  }
  for (size_t i = 0; i < n_out; i++) {
    xy_model_output(model, i, &info);
    printf("%s: wrote %s (%zu values)\n", info.name, paths[i], info.count);
  }
done:
  for (size_t i = 0; ins && i < n_in; i++)
    free(ins[i]);
  for (size_t i = 0; outs && i < n_out; i++)
    free(outs[i]);
  free(ins);
  free(outs);
  free(paths);
  cli_exec_free(&ex);
  xrt_context_release(ctx);
  xy_model_free(model);
  return rc;
}
