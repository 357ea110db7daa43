/*
 * pipeline.c: the compiler's pass pipeline, as one list. The IR is verified after every
 * pass, and --dump-after PASS prints it (graph IR, or kernel IR once lowered).
 *
 *   prepare_graphs     DAG levels, topological order, adjacency (once, at compile time)
 *   parallelize_scans  form, chunk and work-group size of each scan (cost model)
 *   lower_kernels      graph IR -> kernel IR: buffers, kernels, launch plan
 */
#include <string.h>

#include "passes.h"
#include "pipeline.h"

typedef struct pass_entry {
  const char *name;
  int (*run)(pass_state *ps, xy_error *err);
} pass_entry;

static const pass_entry passes[] = {
  {"prepare_graphs", pass_prepare_graphs},
  {"parallelize_scans", pass_parallelize_scans},
  {"lower_kernels", pass_lower_kernels},
};

size_t xy_pass_count(void)
{
  return XY_ARRAY_LEN(passes);
}

const char *xy_pass_name(size_t i)
{
  return i < XY_ARRAY_LEN(passes) ? passes[i].name : NULL;
}

size_t xy_form_count(void)
{
  return IR_FORM_COUNT;
}

const char *xy_form_name(size_t i)
{
  return i < IR_FORM_COUNT ? ir_form_name((ir_form)i) : NULL;
}

static void dump(const pass_state *ps, const char *after, FILE *f)
{
  xy_buf b;
  xy_buf_init(&b);
  xy_buf_printf(&b, "// ---- after %s\n", after);
  ir_print(ps->m, &b);
  if (ps->k)
    kir_print(ps->k, &b);
  if (b.data)
    fputs(b.data, f);
  xy_buf_free(&b);
}

int pipeline_run(pass_state *ps, xy_error *err)
{
  const char *want = ps->opt->dump_after;
  bool all = want && strcmp(want, "all") == 0;
  if (want && !all) {
    bool known = false;
    for (size_t i = 0; i < XY_ARRAY_LEN(passes); i++)
      known |= strcmp(passes[i].name, want) == 0;
    if (!known)
      return xy_fail(err, XY_E_USAGE,
                     "--dump-after: unknown pass '%s' (passes: prepare_graphs, "
                     "parallelize_scans, lower_kernels, all)", want);
  }
  FILE *out = ps->opt->dump ? ps->opt->dump : stderr;
  for (size_t i = 0; i < XY_ARRAY_LEN(passes); i++) {
    int rc = passes[i].run(ps, err);
    if (rc)
      return rc;
    xy_error verr;
    if ((rc = ir_verify(ps->m, &verr)) || (ps->k && (rc = kir_verify(ps->k, &verr)))) {
      /* A verifier failing after a pass is a compiler bug, except for hard limits. */
      return xy_fail(err, rc == XY_E_LIMIT ? XY_E_LIMIT : XY_E_INTERNAL,
                     "after pass %s: %s", passes[i].name, verr.message);
    }
    if (all || (want && strcmp(want, passes[i].name) == 0))
      dump(ps, passes[i].name, out);
  }
  return XY_OK;
}
