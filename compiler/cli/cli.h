/*
 * cli.h: what the xylem subcommands share. The CLI uses only the public headers of
 * libxylem (xylem.h) and the runtime (xylem-rt.h).
 */
#ifndef XY_CLI_H
#define XY_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "xylem.h"

/* Exit codes: 0 success, 1 failure (bad input, failed check), 2 usage error. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

#define CLI_MAX_LIST 64

typedef struct cli_opts {
  const char *spec;
  xy_target target;
  const char *device;
  const char *form;
  int64_t chunk;
  int lanes, rows, wg;      /* schedule knobs; 0: the cost model decides */
  const char *overrides[CLI_MAX_LIST];
  size_t n_overrides;
  const char *stage;        /* a stage of the spec's "stages", applied before overrides */
  /* compile */
  const char *out_dir;
  const char *name;
  const char *dump_after;
  /* run */
  const char *inputs[CLI_MAX_LIST]; /* NAME=FILE or FILE */
  size_t n_inputs;
  const char *input_dir;
  const char *outputs[CLI_MAX_LIST]; /* NAME=FILE */
  size_t n_outputs;
  const char *weights;
  /* check */
  uint64_t seed;
  bool seed_set;
  double tol;
  /* bench */
  int warmup, runs;
  bool json;
} cli_opts;

/* Parses argv[first..] into o; prints a message and returns false on a usage error.
 * allowed: the option names the subcommand accepts, e.g. "target device form chunk set". */
bool cli_parse(int argc, char **argv, int first, const char *cmd, const char *allowed,
               cli_opts *o);

/* Reports err as "xylem: message" on stderr and returns EXIT_FAIL (EXIT_USAGE for usage
 * errors). */
int cli_report(const xy_error *err);
int cli_report_rt(const xrt_error *err);

/* A compiled program ready to run on its target: an OpenCL plan on a device, or the C
 * package loaded in-process. */
typedef struct cli_exec {
  xy_program *prog;
  xrt_context *ctx;
  xrt_plan *plan;
  xy_native *native;
  char device_name[600];
} cli_exec;

/* The compile options o asks for, with form (may differ from o->form) and device limits. */
void cli_compile_options(const cli_opts *o, const char *form, const xy_device_limits *dev,
                         xy_compile_options *co);

/* Loads the spec (with overrides). */
int cli_load_model(const cli_opts *o, xy_model **model);
/* Opens the device (OpenCL) and fills limits; for the C target the defaults. */
int cli_open_device(const cli_opts *o, xrt_context **ctx, xy_device_limits *dev);
/* Compiles model for o's target and form, on an open device (ctx may be NULL for C). */
int cli_exec_create(const cli_opts *o, const xy_model *model, const char *form,
                    xrt_context *ctx, const xy_device_limits *dev, bool testing, cli_exec *ex);
/* Runs once. step_ms (may be NULL) gets per-step times. Outputs are float32. */
int cli_exec_run(cli_exec *ex, const void *const *inputs, void *const *outputs, double *step_ms);
void cli_exec_free(cli_exec *ex);
uint32_t cli_exec_steps(const cli_exec *ex);

int cmd_compile(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_weights(int argc, char **argv);
int cmd_graphs(int argc, char **argv);

#endif /* XY_CLI_H */
