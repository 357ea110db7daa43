/* test_emit_valid.c: libclang reads every emitted source without a single warning: the
 * OpenCL kernels, the OpenCL package's host code (against xylem-rt.h) and the C package,
 * for every form, on sequences (J = 1 and J > 1) and DAGs. Device-free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clang_check.h"
#include "harness.h"
#include "program.h"

#ifndef RUNTIME_INCLUDE_DIR
#error RUNTIME_INCLUDE_DIR must name the folder of xylem-rt.h
#endif

static int checked;

static void validate(const harness_case *c, const char *what)
{
  xy_program *prog = NULL;
  char msg[8192];
  if (harness_compile(c, &prog, msg, sizeof msg))
    fail_msg("%s: %s", what, msg);
  char header[300];
  snprintf(header, sizeof header, "%s.h", xy_program_name(prog));
  char report[16384] = "";
  int bad = 0;
  if (c->target == XY_TARGET_OPENCL)
    bad += clang_check_source(xy_program_kernel_source(prog), true, NULL, NULL, NULL, report,
                              sizeof report);
  bad += clang_check_source(prog->package_c, false, header, prog->package_h, RUNTIME_INCLUDE_DIR,
                            report, sizeof report);
  checked++;
  if (bad != 0)
    fail_msg("%s (%s, %s): libclang found %d problems:\n%s", what,
             c->target == XY_TARGET_C ? "C" : "OpenCL", xy_program_forms(prog), bad, report);
  xy_program_free(prog);
}

static char *spec(const char *name, const char *graph, int J)
{
  char text[4096];
  snprintf(text, sizeof text,
           "{\"xylem\": 1, \"name\": \"%s\", \"batch\": 2, \"graph\": %s,\n"
           " \"inputs\": [\n"
           "  {\"name\": \"q\", \"shape\": [\"batch\", \"N\", 8, 1]},\n"
           "  {\"name\": \"k\", \"shape\": [\"batch\", \"N\", 8, 1]},\n"
           "  {\"name\": \"v\", \"shape\": [\"batch\", \"N\", 8, %d]},\n"
           "  {\"name\": \"S\", \"shape\": [\"batch\", \"E\", %d, 1, %d]},\n"
           "  {\"name\": \"T\", \"shape\": [\"batch\", \"A\", %d, %d]},\n"
           "  {\"name\": \"M\", \"shape\": [\"batch\", \"E\", %d, 1, %d]},\n"
           "  {\"name\": \"D\", \"shape\": [\"batch\", \"N\", %d, 1, 1, %d]}],\n"
           " \"layers\": [{\"op\": \"plstm_scan\",\n"
           "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S\": \"S\", \"T\": \"T\",\n"
           "              \"M\": \"M\", \"D\": \"D\"}, \"outputs\": {\"out\": \"y\"}}],\n"
           " \"outputs\": [\"y\"]}\n", name, graph, J, J, J, J, J, J, J, J, J);
  /* "N", "E", "A" stand for the graph's symbols: length, or nodes, edges and arcs. */
  bool seq = strstr(graph, "sequence") != NULL;
  char fixed[4096];
  size_t o = 0;
  for (const char *p = text; *p && o < sizeof fixed - 16; p++) {
    if (p[0] == '"' && p[2] == '"' && (p[1] == 'N' || p[1] == 'E' || p[1] == 'A')) {
      const char *sym = seq ? "\"length\"" : p[1] == 'N' ? "\"nodes\"" : p[1] == 'E' ? "\"edges\"" : "\"arcs\"";
      o += (size_t)snprintf(fixed + o, sizeof fixed - o, "%s", sym);
      p += 2;
      continue;
    }
    fixed[o++] = *p;
  }
  fixed[o] = '\0';
  char file[64];
  snprintf(file, sizeof file, "%s.json", name);
  return harness_write(file, fixed);
}

static void sequences(void **state)
{
  (void)state;
  for (int J = 1; J <= 4; J += 3) {
    char *path = spec("seq", "{\"kind\": \"sequence\", \"length\": 37}", J);
    assert_non_null(path);
    for (int t = 0; t < 2; t++) {
      harness_case c = {.spec = path, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL};
      c.form = "recurrent";
      validate(&c, "sequence, recurrent");
      c.form = "chunkwise";
      static const int64_t chunks[] = {1, 5, 16};
      for (int k = 0; k < 3; k++) {
        c.chunk = chunks[k];
        validate(&c, "sequence, chunkwise");
      }
    }
    free(path);
  }
}

static void dags(void **state)
{
  (void)state;
  char *g = harness_write("g.graph.json",
                          "{\"graphs\": [{\"nodes\": 4, \"edges\": [[0,1],[0,2],[1,3],[2,3]]},"
                          " {\"nodes\": 1, \"edges\": []}]}\n");
  char *path = spec("dag", "{\"kind\": \"dag\", \"file\": \"g.graph.json\"}", 1);
  assert_true(g && path);
  static const char *const forms[] = {"levels", "graph", "recurrent"};
  for (int t = 0; t < 2; t++)
    for (int f = 0; f < 3; f++) {
      harness_case c = {.spec = path, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                        .form = forms[f]};
      validate(&c, forms[f]);
    }
  free(g);
  free(path);
  print_message("  %d packages validated by libclang\n", checked);
}

/* The samples themselves, with the portable schedule, a CPU's (16 lanes, 4 rows) and a
 * scalar one. */
static void samples(void **state)
{
  (void)state;
  const char *dir = getenv("XYLEM_SAMPLES");
  assert_non_null(dir);
  static const int knobs[][2] = {{0, 0}, {16, 4}, {1, 1}};
  static const char *const names[] = {"scan1d.json", "scan_dag.json"};
  for (int i = 0; i < 2; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    for (int t = 0; t < 2; t++)
      for (int k = 0; k < 3; k++)
        for (int f = 0; f < 2; f++) {
          harness_case c = {.spec = path, .target = t ? XY_TARGET_C : XY_TARGET_OPENCL,
                            .lanes = knobs[k][0], .rows = knobs[k][1],
                            .form = f ? "recurrent" : NULL};
          validate(&c, names[i]);
        }
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(sequences),
    cmocka_unit_test(dags),
    cmocka_unit_test(samples),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
