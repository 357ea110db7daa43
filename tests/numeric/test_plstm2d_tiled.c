/* test_plstm2d_tiled.c: the tiled and single forms of the 2D scans against the float64
 * interpreter: every grid of the issue (1x1, 1x7, 2x2, 5x3, 8x8, 14x14, 16x16, 24x24,
 * 33x17, 64x64) with the single form and tiles, tile sides 1, 2, 4, 8, 16 (and 3) each on
 * several grids and both targets, ragged tiles, both ops (the fused one's four orientations
 * by indexing), border states in and out, absent turns, J > 1 and the portable (GPU-like)
 * schedule. Grids whose cell count is no multiple of the vector width (5x3, 14x14, 33x17)
 * give the single form padded source columns. The tile is pure schedule: every run meets
 * the same 1e-5. Fresh random inputs per run; outputs poisoned with NaN and fenced with
 * canaries by the harness. The dense cross product of grids and forms is not run here:
 * compiling is what takes the time (test_plstm2d.c covers more combinations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static const double TOL = 1e-5;

typedef struct grid {
  int X, Y, B, DK, DV;
  bool fused, dl, ru, borders;
  int J[5];           /* JQ, JK, JV, JT, JO */
  const char *runs;   /* forms and targets (run_grid) */
} grid;

static char *grid_spec(const grid *g)
{
  char text[8192], lead[32];
  snprintf(lead, sizeof lead, g->fused ? "%d, 4, %d, %d" : "%d, %d, %d", g->B, g->X, g->Y);
  int JQ = g->J[0], JK = g->J[1], JV = g->J[2], JT = g->J[3], JO = g->J[4];
  /* Both turns: |T| <= 0.5 keeps the states bounded; one turn: |T| < 1 (D-mode). */
  double t = JT > 1 ? 0.5 / JT : g->dl && g->ru ? 0.5 : 0.99;
  int n = snprintf(text, sizeof text,
    "{\"xylem\": 1, \"name\": \"tiles\", \"batch\": %d,\n"
    " \"graph\": {\"kind\": \"grid2d\", \"rows\": %d, \"cols\": %d},\n"
    " \"inputs\": [\n"
    "  {\"name\": \"q\", \"shape\": [%d, %d, %d, %d, %d]},\n"
    "  {\"name\": \"k\", \"shape\": [%d, %d, %d, %d, %d]},\n"
    "  {\"name\": \"v\", \"shape\": [%d, %d, %d, %d, %d]},\n"
    "  {\"name\": \"S_r\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"S_d\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"T_rl\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n"
    "  {\"name\": \"T_du\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n"
    "  {\"name\": \"T_dl\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n"
    "  {\"name\": \"T_ru\", \"shape\": [%s, %d, %d], \"range\": [%g, %g]},\n"
    "  {\"name\": \"M_l\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"M_u\", \"shape\": [%s, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"D\", \"shape\": [%d, %d, %d, %d, %d, %d, %d], \"range\": [0, 1]},\n"
    "  {\"name\": \"CL\", \"shape\": [%d, %d, %d, %d, %d]},\n"
    "  {\"name\": \"CT\", \"shape\": [%d, %d, %d, %d, %d]}],\n"
    " \"layers\": [{\"op\": \"%s\", \"name\": \"scan\",\n"
    "   \"inputs\": {\"q\": \"q\", \"k\": \"k\", \"v\": \"v\", \"S_r\": \"S_r\", \"S_d\": \"S_d\",\n"
    "              \"T_rl\": \"T_rl\", \"T_du\": \"T_du\", %s%s\"M_l\": \"M_l\", \"M_u\": \"M_u\",\n"
    "              \"D\": \"D\"%s},\n"
    "   \"outputs\": {\"out\": \"y\"%s}}],\n"
    " \"outputs\": [\"y\"%s]}\n",
    g->B, g->X, g->Y, g->B, g->X, g->Y, g->DK, JQ, g->B, g->X, g->Y, g->DK, JK, g->B, g->X,
    g->Y, g->DV, JV, lead, JT, JK, JV, lead, JT, JK, JV, lead, JT, JT, -t, t, lead, JT, JT, -t,
    t, lead, JT, JT, -t, t, lead, JT, JT, -t, t, lead, JO, JQ, JT, lead, JO, JQ, JT, g->B, g->X,
    g->Y, JO, JQ, JK, JV, g->B, g->Y, g->DK, g->DV, JT, g->B, g->X, g->DK, g->DV, JT,
    g->fused ? "plstm_scan2d_fused" : "plstm_scan2d", g->dl ? "\"T_dl\": \"T_dl\", " : "",
    g->ru ? "\"T_ru\": \"T_ru\", " : "",
    g->borders ? ", \"C_initial_left\": \"CL\", \"C_initial_top\": \"CT\"" : "",
    g->borders ? ", \"C_final_right\": \"cr\", \"C_final_bottom\": \"cb\"" : "",
    g->borders ? ", \"cr\", \"cb\"" : "");
  assert_true(n > 0 && (size_t)n < sizeof text);
  return harness_write("tiles.json", text);
}

static void expect_close(const harness_case *c, const grid *g, const char *what)
{
  harness_result r;
  char name[48];
  snprintf(name, sizeof name, "%dx%d%s%s", g->X, g->Y, g->fused ? " fused" : "",
           g->borders ? " borders" : "");
  if (harness_run(c, &r))
    fail_msg("%s %s: %s", name, what, r.message);
  print_message("  %-7s %-20s %-28s %-16s worst rel err %.3g\n",
                c->target == XY_TARGET_C ? "C" : "OpenCL", name, r.forms, what, r.worst);
  if (!(r.worst <= TOL))
    fail_msg("%s %s (%s): relative error %.3g above %g", name, what, r.forms, r.worst, TOL);
}

/* runs: tokens "s" (single) or "tN" (tiled, tile N), each followed by the target: "c" (C),
 * "o" (OpenCL) or "p" (OpenCL with the portable, GPU-like schedule). */
static void run_grid(const grid *g, uint64_t seed)
{
  char *spec = grid_spec(g);
  assert_non_null(spec);
  for (const char *t = g->runs; *t;) {
    while (*t == ' ')
      t++;
    harness_case c = {.spec = spec, .seed = seed++, .form = "single"};
    char what[48] = "single";
    if (*t == 't') {
      char *end;
      c.form = "tiled";
      c.chunk = strtoll(t + 1, &end, 10);
      assert_true(end > t + 1 && c.chunk > 0);
      t = end;
      snprintf(what, sizeof what, "tile %lld", (long long)c.chunk);
    } else {
      assert_true(*t == 's');
      t++;
    }
    assert_true(*t == 'c' || *t == 'o' || *t == 'p');
    c.target = *t == 'c' ? XY_TARGET_C : XY_TARGET_OPENCL;
    c.portable = *t == 'p';
    if (c.portable)
      strcat(what, " portable");
    t++;
    expect_close(&c, g, what);
  }
  free(spec);
}

/* Every grid of the issue; every tile side on both targets across them, ragged tiles
 * (1x7 by 4, 14x14 by 4, 33x17 by 16, 24x24 by 16), the fused op on square, oblong and
 * ragged grids. Tiles of 16 and many tile diagonals run on OpenCL only: G of a 16 x 16
 * tile exceeds the C target's 256 KiB of local memory, and a C package inlines every
 * launch (clang takes seconds over hundreds). */
static void grids(void **state)
{
  (void)state;
  static const grid gs[] = {
    {1, 1, 2, 4, 8, false, true, true, true, {1, 1, 1, 1, 1}, "sc t1o"},
    {1, 7, 2, 4, 8, true, true, true, false, {1, 1, 1, 1, 1}, "so t2c t4o"},
    {2, 2, 2, 4, 4, true, false, true, false, {1, 1, 1, 1, 1}, "sc t1o"},
    {5, 3, 2, 4, 8, false, true, false, true, {1, 1, 1, 1, 1}, "so t2c t4p"},
    {8, 8, 2, 8, 8, true, true, true, false, {1, 1, 1, 1, 1}, "sc t4o t8c"},
    {14, 14, 2, 4, 8, true, true, true, false, {1, 1, 1, 1, 1}, "so t4c t16o"},
    {16, 16, 1, 8, 8, false, true, true, true, {1, 1, 1, 1, 1}, "sc t8o t16o"},
    {24, 24, 1, 4, 4, true, true, false, false, {1, 1, 1, 1, 1}, "sp t8c t16o"},
    {33, 17, 1, 4, 8, false, true, true, true, {1, 1, 1, 1, 1}, "sc t1o t16o"},
    {33, 17, 1, 4, 4, true, true, true, false, {1, 1, 1, 1, 1}, "sp t4p"},
    {64, 64, 1, 2, 4, false, false, true, true, {1, 1, 1, 1, 1}, "so t2o t8c"},
  };
  for (size_t i = 0; i < sizeof gs / sizeof *gs; i++)
    run_grid(&gs[i], 1000 + 10 * i);
}

/* J > 1: the scalar path sums, pair weights and entry reads of both forms. */
static void state_tracking(void **state)
{
  (void)state;
  static const grid gs[] = {
    {6, 5, 2, 3, 4, false, true, true, true, {2, 1, 2, 3, 2}, "sc t2o t4c"},
    {7, 4, 1, 4, 3, true, true, false, false, {1, 2, 2, 2, 1}, "so t3c"},
  };
  for (size_t i = 0; i < sizeof gs / sizeof *gs; i++)
    run_grid(&gs[i], 3000 + 10 * i);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(grids),
    cmocka_unit_test(state_tracking),
  };
  return cmocka_run_group_tests(tests, NULL, harness_group_teardown);
}
