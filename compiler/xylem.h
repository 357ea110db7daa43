/*
 * xylem.h: the xylem compiler as a library.
 *
 * A model spec (JSON) is loaded into a model, the model is compiled into a program (kernels
 * plus a launch plan) for a target, and the program is written out as a package or run:
 * through the runtime (xylem-rt.h) for OpenCL, or in-process for the C target. The float64
 * reference interpreter runs the model directly and defines what every program computes.
 *
 * Every function that can fail returns 0 or an XY_E_* code and fills the caller's xy_error.
 * Nothing here aborts or prints, except to a dump stream the caller hands over.
 */
#ifndef XYLEM_H
#define XYLEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "xylem-rt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XY_ERROR_MAX 4096

enum {
  XY_OK = 0,
  XY_E_USAGE,    /* bad option or argument */
  XY_E_IO,       /* a file could not be read or written */
  XY_E_PARSE,    /* malformed JSON or .npy */
  XY_E_SPEC,     /* a well-formed spec that breaks a rule */
  XY_E_GRAPH,    /* bad graph: cycle, dangling or duplicate edge, empty graph */
  XY_E_SHAPE,    /* tensor shapes that do not fit together */
  XY_E_LIMIT,    /* a size that overflows or passes a configured limit */
  XY_E_NOMEM,
  XY_E_TARGET,   /* the target could not build or load generated code */
  XY_E_DEVICE,   /* the device cannot run the program */
  XY_E_INTERNAL, /* a verifier found a compiler bug */
};

typedef struct xy_error {
  int code;
  char message[XY_ERROR_MAX];
} xy_error;

const char *xy_version(void);

/* ------------------------------------------------------------------ limits */

/* Bounds on what a spec or graph file may ask for: hostile inputs are refused before any
 * allocation. Every field is a count; 0 is never a valid limit. */
typedef struct xy_limits {
  int64_t max_graphs;      /* graphs in one graph file */
  int64_t max_nodes;       /* nodes over all graphs of a file */
  int64_t max_graph_nodes; /* nodes of any one graph of a file */
  int64_t max_edges;       /* edges over all graphs of a file */
  int64_t max_arcs;        /* line-graph arcs over all graphs of a file */
  int64_t max_elements;    /* elements of any one tensor */
  int64_t max_file_bytes;  /* size of any spec, graph or tensor file read */
} xy_limits;

void xy_limits_default(xy_limits *limits);

/* ------------------------------------------------------------------ models */

typedef struct xy_model xy_model;

typedef struct xy_load_options {
  xy_limits limits;
  /* Overrides applied to the spec's JSON before it is read, each "PATH=VALUE" where PATH
   * is dotted keys and [index] (graph.length, layers[0].qk_scale) and VALUE is JSON. */
  const char *const *overrides;
  size_t n_overrides;
  /* A stage of the spec's "stages" (NULL: none): its overrides are applied before
   * `overrides`. A name the spec does not define is an XY_E_USAGE error. */
  const char *stage;
} xy_load_options;

void xy_load_options_default(xy_load_options *opt);

/* Reads and validates a spec (and the graph files it names). Errors name the file, line,
 * column and JSON path. */
int xy_model_load(const char *spec_path, const xy_load_options *opt, xy_model **out,
                  xy_error *err);
void xy_model_free(xy_model *model);
const char *xy_model_name(const xy_model *model);
/* Positions one run processes: batch x (sequence length, grid cells or DAG nodes); the
 * unit of throughput (tokens/s for sequences). */
int64_t xy_model_positions(const xy_model *model);

/* F16 and BF16 are read (weights files hold them) and converted to F32 or F64. */
typedef enum xy_dtype { XY_F32, XY_F64, XY_I32, XY_I64, XY_F16, XY_BF16 } xy_dtype;

/* Bytes per element; 0 for a value outside the enum. */
size_t xy_dtype_size(xy_dtype t);

#define XY_MAX_RANK 8

typedef struct xy_tensor_info {
  const char *name;
  xy_dtype dtype;
  int rank;
  int64_t shape[XY_MAX_RANK];
  size_t count;            /* elements */
  double range_lo, range_hi; /* inputs: the range random values are drawn from */
  int is_weight;           /* a layer's weight: read from a weights file, by name */
  const char *from_graph;  /* inputs the DAG file gives: "node_features", "edge_features";
                              NULL for the others */
} xy_tensor_info;

/* "[2,3]" ("[]" for rank 0) into buf, truncated to n bytes; returns buf. */
const char *xy_shape_string(const int64_t *shape, int rank, char *buf, size_t n);

size_t xy_model_num_inputs(const xy_model *model);
size_t xy_model_num_outputs(const xy_model *model);
void xy_model_input(const xy_model *model, size_t i, xy_tensor_info *info);
void xy_model_output(const xy_model *model, size_t i, xy_tensor_info *info);

/* Reads every weight input of the model (xy_tensor_info.is_weight) from a safetensors file
 * into inputs[i] (count floats each; other entries are left alone). The names are the
 * reference's state_dict names behind each layer's prefix, so a whole model's file can be
 * given. A missing tensor, a tensor under a layer's prefix that the layer does not take, a
 * wrong shape or a dtype that is not floating point (F32, F64, F16, BF16) is an error
 * naming the tensor. */
int xy_model_read_weights(const xy_model *model, const char *path, float *const *inputs,
                          xy_error *err);

/* Writes random weights (each drawn from its range, from seed) under their names. */
int xy_model_write_random_weights(const xy_model *model, const char *path, uint64_t seed,
                                  xy_error *err);

/* Runs the float64 reference interpreter. inputs[i] has xy_model_input(i).count values,
 * outputs[i] room for xy_model_output(i).count. */
int xy_model_interpret(const xy_model *model, const double *const *inputs,
                       double *const *outputs, xy_error *err);

/* Fills inputs[i] (xy_model_input(i).count floats each) with values drawn uniformly from
 * each input's range; the same seed gives the same values everywhere. Inputs the graph
 * file gives (xy_tensor_info.from_graph) get the file's values instead (the draws for
 * them are made all the same, so the other inputs do not depend on it). */
void xy_model_random_inputs(const xy_model *model, uint64_t seed, float *const *inputs);

/* Input i's values from the graph file when it has a from_graph (its node or edge
 * features, repeated over the batch): fills values (xy_model_input(i).count floats) and
 * returns 1; returns 0 and leaves values alone for any other input. */
int xy_model_graph_input(const xy_model *model, size_t i, float *values);

/* How far got is from ref: rel = max|got - ref| / max|ref| (the absolute error when ref is
 * all zero); a NaN in got makes err_max and rel infinite. min/max/mean describe got. */
typedef struct xy_compare_stats {
  double ref_max, err_max, rel;
  double min, max, mean;
  size_t nan_count;
} xy_compare_stats;

void xy_compare(const double *ref, const float *got, size_t n, xy_compare_stats *st);

/* ------------------------------------------------------------------ tensor files */

/* An n-dimensional array in host memory, C order. */
typedef struct xy_array {
  xy_dtype dtype;
  int rank;
  int64_t shape[XY_MAX_RANK];
  size_t count;            /* elements */
  void *data;              /* owned unless the array is a view (safetensors) */
} xy_array;

void xy_array_free(xy_array *a);

/* NumPy .npy (format 1.0-3.0, little-endian f4/f8/i4/i8, C order). A file bigger than
 * max_bytes, a Fortran-order array, a bad header or a short data section is an error
 * naming the file and the cause. */
int xy_npy_read(const char *path, int64_t max_bytes, xy_array *out, xy_error *err);
/* Writes a .npy (format 1.0) atomically: whole or not at all. */
int xy_npy_write(const char *path, const xy_array *a, xy_error *err);

/* Converts any numeric array into count doubles / floats (count must equal a->count). */
int xy_array_to_f64(const xy_array *a, double *dst, size_t count, xy_error *err);
int xy_array_to_f32(const xy_array *a, float *dst, size_t count, xy_error *err);

/* safetensors: an 8-byte little-endian header length, a JSON header, raw data. */
typedef struct xy_safetensors xy_safetensors;
int xy_safetensors_open(const char *path, int64_t max_bytes, xy_safetensors **out,
                        xy_error *err);
void xy_safetensors_close(xy_safetensors *st);
size_t xy_safetensors_count(const xy_safetensors *st);
const char *xy_safetensors_name(const xy_safetensors *st, size_t i);
/* A view of one tensor (data points into the file's memory; do not free it). */
int xy_safetensors_get(const xy_safetensors *st, const char *name, xy_array *view,
                       xy_error *err);
/* Writes arrays under names, in that order, atomically. */
int xy_safetensors_write(const char *path, const char *const *names, const xy_array *arrays,
                         size_t n, xy_error *err);

/* ------------------------------------------------------------------ random graph files */

/* What `xylem graphs` writes: count graphs of nodes_min..nodes_max nodes (drawn per graph),
 * each a random tree (node i > 0 hangs under a node drawn from 0 .. i-1) plus
 * extra_min..extra_max more edges per node to other earlier nodes (0: trees), with one-hot
 * rows of node_features / edge_features classes (0: none); undirected writes bonds
 * ("directed": false, each pair either way round), else edges from the earlier node. */
typedef struct xy_graph_gen {
  int64_t count, nodes_min, nodes_max, extra_min, extra_max;
  int64_t node_features, edge_features;
  int undirected;
  uint64_t seed;
} xy_graph_gen;

/* Writes such a DAG graph file to path, whole or not at all; the same options give the
 * same file everywhere. Options that could pass the default graph limits are refused. */
int xy_graphs_write(const xy_graph_gen *gen, const char *path, xy_error *err);

/* ------------------------------------------------------------------ random numbers */

/* xoshiro256** seeded through splitmix64: the same seed gives the same inputs everywhere. */
typedef struct xy_rng {
  uint64_t s[4];
} xy_rng;

void xy_rng_seed(xy_rng *rng, uint64_t seed);
uint64_t xy_rng_next(xy_rng *rng);
double xy_rng_uniform(xy_rng *rng, double lo, double hi); /* in [lo, hi) */

/* ------------------------------------------------------------------ compiling */

typedef enum xy_target { XY_TARGET_OPENCL, XY_TARGET_C } xy_target;

/* What the compiler may assume of the device; the cost model and the tiling pass read it.
 * xy_device_limits_default describes a generic OpenCL 1.2 CPU device. */
typedef struct xy_device_limits {
  uint64_t local_mem_bytes;
  uint64_t max_work_group_size;
  uint64_t max_alloc_bytes;
  unsigned compute_units;
  int is_gpu;
  int is_cpu;              /* both 0: unknown (a package compiled for any device) */
} xy_device_limits;

void xy_device_limits_default(xy_device_limits *dev);
/* What an opened OpenCL device offers (xrt_context_device). */
void xy_device_limits_of(const xrt_device_info *info, xy_device_limits *dev);
/* The host as the C target sees it: "local memory" is stack arrays (256 KiB allowed), one
 * compute unit per online CPU. */
void xy_device_limits_host(xy_device_limits *dev);

typedef struct xy_compile_options {
  xy_target target;
  const char *form;        /* NULL or "auto": the cost model picks; else a form name */
  int64_t chunk;           /* 0: picked by the cost model; else the chunk size of 1D scans
                              and the tile side of 2D scans */
  int lanes;               /* 0: auto; else the vector width (1, 2, 4, 8, 16) */
  int rows;                /* 0: auto; else the rows a work-item keeps in registers (1..16) */
  int wg;                  /* 0: auto; else work-items per group of the scans' main kernels */
  const char *name;        /* package name; NULL: the model's name */
  const char *dump_after;  /* pass name, or "all"; NULL: no dump */
  FILE *dump;              /* where dumps go (stderr when NULL) */
  xy_device_limits device;
} xy_compile_options;

void xy_compile_options_default(xy_compile_options *opt);

/* Names of the passes in pipeline order and of the forms, for --help and checks. */
size_t xy_pass_count(void);
const char *xy_pass_name(size_t i);
size_t xy_form_count(void);
const char *xy_form_name(size_t i);

typedef struct xy_program xy_program;

int xy_compile(const xy_model *model, const xy_compile_options *opt, xy_program **out,
               xy_error *err);
void xy_program_free(xy_program *prog);
const char *xy_program_name(const xy_program *prog);
xy_target xy_program_target(const xy_program *prog);

/* The forms the scan ops of the program were lowered to, e.g. "chunkwise(chunk=64)". */
const char *xy_program_forms(const xy_program *prog);

/* Kernel source: OpenCL C for the OpenCL target, C99 for the C target. */
const char *xy_program_kernel_source(const xy_program *prog);

/* The launch plan as the runtime executes it (OpenCL target; valid while prog lives). */
const xrt_plan_desc *xy_program_plan(const xy_program *prog);

/* Writes the package into dir: NAME.cl (OpenCL target), NAME.c, NAME.h and NAME.plan.json.
 * Files appear whole or not at all. */
int xy_program_write(const xy_program *prog, const char *dir, xy_error *err);

/* ------------------------------------------------------------------ C target in-process */

typedef struct xy_native xy_native;

/* Compiles the program's C source with clang (XYLEM_CC, else the configured compiler) into
 * a shared object in a private temporary directory and loads it. */
int xy_native_load(const xy_program *prog, xy_native **out, xy_error *err);
void xy_native_free(xy_native *native);

#define XY_RUN_POISON 1u /* fill temporaries with NaN before running (testing) */

/* Runs the plan on the host. inputs and outputs as for xrt_plan_run. When step_ms is not
 * NULL it receives the wall time of each step in milliseconds. */
int xy_native_run(xy_native *native, const void *const *inputs, void *const *outputs,
                  unsigned flags, double *step_ms, xy_error *err);

#ifdef __cplusplus
}
#endif

#endif /* XYLEM_H */
