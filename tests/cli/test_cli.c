/* test_cli.c: the xylem command as users run it: one test per bad-input case (the message
 * names file, position and cause; the exit code is nonzero; no output file is left
 * behind), and the good paths of compile, run and check. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli_run.h"
#include "harness.h"

static void expect_failure(result *r, int status, const char *const *needles)
{
  if (r->status != status)
    fail_msg("exit status %d, expected %d; stderr:\n%s", r->status, status, r->err);
  for (; *needles; needles++)
    if (!strstr(r->err, *needles))
      fail_msg("stderr lacks '%s':\n%s", *needles, r->err);
}

static const char *const seq_spec =
  "{\"xylem\": 1, \"name\": \"s\", \"batch\": 2,\n"
  " \"graph\": {\"kind\": \"sequence\", \"length\": 24},\n"
  " \"inputs\": [\n"
  "  {\"name\": \"q\", \"shape\": [\"batch\", \"length\", 4, 1]},\n"
  "  {\"name\": \"k\", \"shape\": [\"batch\", \"length\", 4, 1]},\n"
  "  {\"name\": \"v\", \"shape\": [\"batch\", \"length\", 4, 1]},\n"
  "  {\"name\": \"S\", \"shape\": [\"batch\", \"length\", 1, 1, 1], \"range\": [0, 1]},\n"
  "  {\"name\": \"T\", \"shape\": [\"batch\", \"length\", 1, 1]},\n"
  "  {\"name\": \"M\", \"shape\": [\"batch\", \"length\", 1, 1, 1], \"range\": [0, 1]},\n"
  "  {\"name\": \"D\", \"shape\": [\"batch\", \"length\", 1, 1, 1, 1], \"range\": [0, 1]}],\n"
  " \"layers\": [{\"op\": \"plstm_scan\", \"name\": \"scan\",\n"
  "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
  "              \"M\": \"M\", \"D\": \"D\"},\n"
  "   \"outputs\": {\"out\": \"y\", \"C_final\": \"c\"}}],\n"
  " \"outputs\": [\"y\", \"c\"]}\n";

static void version_and_help(void **state)
{
  (void)state;
  result r = xylem("--version", NULL);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "xylem "));
  done(&r);
  r = xylem("--help", NULL);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "compile SPEC"));
  done(&r);
  r = xylem("check", "--help", NULL);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "--seed"));
  done(&r);
}

static void usage_errors(void **state)
{
  (void)state;
  result r = xylem("frobnicate", NULL);
  expect_failure(&r, 2, (const char *[]){"unknown command 'frobnicate'", NULL});
  done(&r);
  r = xylem("check", NULL);
  expect_failure(&r, 2, (const char *[]){"no spec file", NULL});
  done(&r);
  char *spec = harness_write("s.json", seq_spec);
  r = xylem("check", spec, "--chunk", "0", NULL);
  expect_failure(&r, 2, (const char *[]){"--chunk must be at least 1", NULL});
  done(&r);
  r = xylem("check", spec, "--form", "sideways", NULL);
  expect_failure(&r, 2, (const char *[]){"unknown form 'sideways'", NULL});
  done(&r);
  r = xylem("compile", spec, "--dump-after", "nopass", NULL);
  expect_failure(&r, 2, (const char *[]){"unknown pass 'nopass'", NULL});
  done(&r);
  r = xylem("check", spec, "--bogus", NULL);
  expect_failure(&r, 2, (const char *[]){"unknown option '--bogus'", NULL});
  done(&r);
  free(spec);
}

static void malformed_spec(void **state)
{
  (void)state;
  char *spec = harness_write("bad.json", "{\"xylem\": 1,\n \"name\": \"x\",\n \"batch\": ,\n}\n");
  result r = xylem("check", spec, NULL);
  expect_failure(&r, 1, (const char *[]){"bad.json:3:", "^", NULL});
  done(&r);
  free(spec);
}

static void wrong_shapes(void **state)
{
  (void)state;
  char text[4096];
  snprintf(text, sizeof text, "%s", seq_spec);
  char *k = strstr(text, "\"k\", \"shape\": [\"batch\", \"length\", 4");
  k[strlen("\"k\", \"shape\": [\"batch\", \"length\", ")] = '5';
  char *spec = harness_write("shapes.json", text);
  result r = xylem("check", spec, NULL);
  expect_failure(&r, 1, (const char *[]){"shapes.json:", "layers[0]", "k has shape", NULL});
  done(&r);
  free(spec);
}

static void overflowing_size(void **state)
{
  (void)state;
  char *spec = harness_write("huge.json", seq_spec);
  result r = xylem("check", spec, "--set", "graph.length=4611686018427387904", NULL);
  expect_failure(&r, 1, (const char *[]){"huge.json", "inputs[0]", NULL});
  done(&r);
  free(spec);
}

static void cyclic_graph(void **state)
{
  (void)state;
  char *graph = harness_write("cyc.graph.json", "{\"nodes\": 3,\n \"edges\": [[0, 1], [1, 2], [2, 0]]}\n");
  char text[4096];
  snprintf(text, sizeof text, "%s", seq_spec);
  char *g = strstr(text, "{\"kind\": \"sequence\", \"length\": 24}");
  const char *dag = "{\"kind\": \"dag\", \"file\": \"cyc.graph.json\"}";
  memmove(g + strlen(dag), g + strlen("{\"kind\": \"sequence\", \"length\": 24}"),
          strlen(g + strlen("{\"kind\": \"sequence\", \"length\": 24}")) + 1);
  memcpy(g, dag, strlen(dag));
  char *spec = harness_write("cyc.json", text);
  result r = xylem("check", spec, NULL);
  expect_failure(&r, 1, (const char *[]){"cyc.graph.json", "cycle", NULL});
  done(&r);
  free(graph);
  free(spec);
}

static void device_cannot_fit(void **state)
{
  (void)state;
  char *spec = harness_write("s.json", seq_spec);
  result r = xylem("check", spec, "--chunk", "4096", "--set", "graph.length=4096", NULL);
  expect_failure(&r, 1, (const char *[]){"local memory", "--chunk", NULL});
  done(&r);
  free(spec);
}

static void run_inputs_checked(void **state)
{
  (void)state;
  char *spec = harness_write("s.json", seq_spec);
  char *outdir = harness_write("unused", "");
  unlink(outdir);
  result r = xylem("run", spec, "--input", "qq=q.npy", "-o", outdir, NULL);
  expect_failure(&r, 2, (const char *[]){"no input named 'qq'", NULL});
  done(&r);
  r = xylem("run", spec, "--input", "q=/nonexistent/q.npy", "-o", outdir, NULL);
  expect_failure(&r, 1, (const char *[]){"/nonexistent/q.npy", NULL});
  done(&r);
  free(spec);
  free(outdir);
}

/* Writes every input of the spec as .npy (values from the seed), into dir. */
/* Random inputs (a layer's weights included) as DIR/NAME.npy; values has room for cap. */
static void write_inputs(const char *spec, const char *dir, float **values, size_t cap, size_t *n)
{
  xy_model *model = NULL;
  xy_error err;
  assert_int_equal(xy_model_load(spec, NULL, &model, &err), XY_OK);
  *n = xy_model_num_inputs(model);
  assert_true(*n <= cap);
  xy_tensor_info t;
  for (size_t i = 0; i < *n; i++) {
    xy_model_input(model, i, &t);
    values[i] = malloc(sizeof(float) * t.count);
  }
  xy_model_random_inputs(model, 3, values);
  for (size_t i = 0; i < *n; i++) {
    xy_model_input(model, i, &t);
    xy_array a = {.dtype = XY_F32, .rank = t.rank, .count = t.count, .data = values[i]};
    memcpy(a.shape, t.shape, sizeof a.shape);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", dir, t.name);
    assert_int_equal(xy_npy_write(path, &a, &err), XY_OK);
  }
  xy_model_free(model);
}

static void run_end_to_end(void **state)
{
  (void)state;
  char *spec = harness_write("s.json", seq_spec);
  char *base = harness_write("e2e", "");
  unlink(base);
  assert_int_equal(mkdir(base, 0755), 0);
  float *in[16];
  size_t n_in;
  write_inputs(spec, base, in, sizeof in / sizeof in[0], &n_in);
  char outdir[1100];
  snprintf(outdir, sizeof outdir, "%s/out", base);
  for (int t = 0; t < 2; t++) {
    result r = xylem("run", spec, "--inputs", base, "-o", outdir, "--target", t ? "c" : "opencl",
                     NULL);
    if (r.status != 0)
      fail_msg("run failed: %s", r.err);
    done(&r);
    /* Compare y with the interpreter on the same inputs. */
    xy_model *model = NULL;
    xy_error err;
    assert_int_equal(xy_model_load(spec, NULL, &model, &err), XY_OK);
    double *din[16], *dout[2];
    xy_tensor_info info;
    for (size_t i = 0; i < n_in; i++) {
      xy_model_input(model, i, &info);
      din[i] = malloc(sizeof(double) * info.count);
      for (size_t j = 0; j < info.count; j++)
        din[i][j] = in[i][j];
    }
    for (size_t o = 0; o < 2; o++) {
      xy_model_output(model, o, &info);
      dout[o] = malloc(sizeof(double) * info.count);
    }
    assert_int_equal(xy_model_interpret(model, (const double *const *)din, dout, &err), XY_OK);
    for (size_t o = 0; o < 2; o++) {
      xy_model_output(model, o, &info);
      char path[1200];
      snprintf(path, sizeof path, "%s/%s.npy", outdir, info.name);
      xy_array a;
      assert_int_equal(xy_npy_read(path, 1 << 26, &a, &err), XY_OK);
      assert_int_equal(a.rank, info.rank);
      assert_int_equal(a.count, info.count);
      xy_compare_stats st;
      xy_compare(dout[o], a.data, info.count, &st);
      assert_true(st.rel <= 1e-5);
      xy_array_free(&a);
      free(dout[o]);
    }
    for (size_t i = 0; i < n_in; i++)
      free(din[i]);
    xy_model_free(model);
  }
  for (size_t i = 0; i < n_in; i++)
    free(in[i]);
  free(spec);
  free(base);
}

/* When one output cannot be written, none is left behind. */
static void run_writes_all_or_nothing(void **state)
{
  (void)state;
  char *spec = harness_write("s.json", seq_spec);
  char *base = harness_write("partial", "");
  unlink(base);
  assert_int_equal(mkdir(base, 0755), 0);
  float *in[16];
  size_t n_in;
  write_inputs(spec, base, in, sizeof in / sizeof in[0], &n_in);
  char blocker[1200], y[1200];
  snprintf(blocker, sizeof blocker, "%s/c.npy", base);
  snprintf(y, sizeof y, "%s/y.npy", base);
  assert_int_equal(mkdir(blocker, 0755), 0); /* c.npy cannot be a file now */
  result r = xylem("run", spec, "--inputs", base, "-o", base, NULL);
  expect_failure(&r, 1, (const char *[]){"c.npy", NULL});
  done(&r);
  assert_int_not_equal(access(y, F_OK), 0);
  rmdir(blocker);
  for (size_t i = 0; i < n_in; i++)
    free(in[i]);
  free(spec);
  free(base);
}

static void compile_writes_package(void **state)
{
  (void)state;
  char *spec = harness_write("s.json", seq_spec);
  char *dir = harness_write("pkg", "");
  unlink(dir);
  result r = xylem("compile", spec, "-o", dir, "--chunk", "8", NULL);
  if (r.status != 0)
    fail_msg("compile failed: %s", r.err);
  assert_non_null(strstr(r.out, "chunkwise(chunk=8)"));
  done(&r);
  const char *exts[] = {".cl", ".c", ".h", ".plan.json"};
  for (int i = 0; i < 4; i++) {
    char path[1200];
    snprintf(path, sizeof path, "%s/s%s", dir, exts[i]);
    assert_int_equal(access(path, R_OK), 0);
    unlink(path);
  }
  r = xylem("compile", spec, "-o", dir, "--target", "c", "--dump-after", "lower_kernels", NULL);
  assert_int_equal(r.status, 0);
  assert_non_null(strstr(r.out, "kernel module s"));
  assert_non_null(strstr(r.out, "parfor"));
  done(&r);
  char cl[1200];
  snprintf(cl, sizeof cl, "%s/s.cl", dir);
  assert_int_not_equal(access(cl, F_OK), 0); /* the C target has no .cl */
  free(spec);
  free(dir);
}

/* A small plstm2d layer; its weights sit behind PREFIX. */
static char *layer_spec(const char *file, const char *prefix, int heads)
{
  char text[1024];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"l\", \"batch\": 1,\n"
           " \"graph\": {\"kind\": \"grid2d\", \"rows\": 3, \"cols\": 4},\n"
           " \"inputs\": [{\"name\": \"x\", \"shape\": [\"batch\", \"rows\", \"cols\", 24]}],\n"
           " \"layers\": [{\"op\": \"plstm2d\", \"name\": \"block\", \"input\": \"x\",\n"
           "   \"output\": \"y\", \"weights\": \"%s\", \"heads\": %d}],\n"
           " \"outputs\": [\"y\"]}\n", prefix, heads);
  return harness_write(file, text);
}

/* xylem weights writes a file every layer finds its tensors in; a file missing a tensor,
 * one with a tensor of another shape, and a missing file are errors naming the file and the
 * tensor, and run writes nothing. */
static void weights_checked(void **state)
{
  (void)state;
  char *spec = layer_spec("l.json", "enc.0.", 2);
  char *other_prefix = layer_spec("l1.json", "enc.1.", 2);
  char *other_heads = layer_spec("l3.json", "enc.0.", 3);
  char *w = harness_write("w.safetensors", "");
  unlink(w);
  result r = xylem("weights", spec, "-o", w, "--seed", "3", NULL);
  if (r.status != 0)
    fail_msg("weights failed: %s", r.err);
  done(&r);
  assert_int_equal(access(w, R_OK), 0);

  char *dir = harness_write("lw", "");
  unlink(dir);
  assert_int_equal(mkdir(dir, 0755), 0);
  float *in[64];
  size_t n_in;
  write_inputs(spec, dir, in, sizeof in / sizeof in[0], &n_in);
  char y[1200];
  snprintf(y, sizeof y, "%s/y.npy", dir);

  r = xylem("run", other_prefix, "--weights", w, "--inputs", dir, "-o", dir, NULL);
  expect_failure(&r, 1, (const char *[]){w, "enc.1.", "no tensor named", NULL});
  done(&r);
  assert_int_not_equal(access(y, F_OK), 0);
  r = xylem("run", other_heads, "--weights", w, "--inputs", dir, "-o", dir, NULL);
  expect_failure(&r, 1, (const char *[]){w, "enc.0.", "has shape", NULL});
  done(&r);
  assert_int_not_equal(access(y, F_OK), 0);
  r = xylem("check", spec, "--weights", "no/such.safetensors", NULL);
  expect_failure(&r, 1, (const char *[]){"no/such.safetensors", NULL});
  done(&r);

  r = xylem("run", spec, "--weights", w, "--inputs", dir, "-o", dir, "--target", "c", NULL);
  if (r.status != 0)
    fail_msg("run failed: %s", r.err);
  done(&r);
  assert_int_equal(access(y, R_OK), 0);
  unlink(y);
  for (size_t i = 0; i < n_in; i++)
    free(in[i]);
  free(dir);
  free(w);
  free(spec);
  free(other_prefix);
  free(other_heads);
}

static void check_passes_on_samples(void **state)
{
  (void)state;
  const char *samples = getenv("XYLEM_SAMPLES");
  assert_non_null(samples);
  char s1[1024], s2[1024];
  snprintf(s1, sizeof s1, "%s/scan1d.json", samples);
  snprintf(s2, sizeof s2, "%s/scan_dag.json", samples);
  result r = xylem("check", s1, "--set", "graph.length=200", "--seed", "5", NULL);
  if (r.status != 0)
    fail_msg("check failed:\n%s%s", r.out, r.err);
  assert_non_null(strstr(r.out, "PASS"));
  assert_non_null(strstr(r.out, "seed 5"));
  done(&r);
  r = xylem("check", s2, "--target", "c", NULL);
  if (r.status != 0)
    fail_msg("check failed:\n%s%s", r.out, r.err);
  assert_non_null(strstr(r.out, "PASS"));
  done(&r);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(version_and_help),
    cmocka_unit_test(usage_errors),
    cmocka_unit_test(malformed_spec),
    cmocka_unit_test(wrong_shapes),
    cmocka_unit_test(overflowing_size),
    cmocka_unit_test(cyclic_graph),
    cmocka_unit_test(device_cannot_fit),
    cmocka_unit_test(run_inputs_checked),
    cmocka_unit_test(run_end_to_end),
    cmocka_unit_test(run_writes_all_or_nothing),
    cmocka_unit_test(compile_writes_package),
    cmocka_unit_test(weights_checked),
    cmocka_unit_test(check_passes_on_samples),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
