/* fe_test.c: helpers for the front end's tests, and the test runner. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fe_test.h"

enum { N_PATHS = 256 };

/* Paths handed out, freed at exit (so the sanitizers see no leak). */
static char *paths[N_PATHS];
static size_t n_paths;

static const char *keep_path(const char *folder, const char *name)
{
  assert_true(n_paths < N_PATHS);
  size_t len = strlen(folder) + strlen(name) + 2;
  char *p = malloc(len);
  assert_non_null(p);
  snprintf(p, len, "%s/%s", folder, name);
  /* Reuse a slot already holding this path, so repeated tests do not run out. */
  for (size_t i = 0; i < n_paths; i++)
    if (strcmp(paths[i], p) == 0) {
      free(p);
      return paths[i];
    }
  paths[n_paths++] = p;
  return p;
}

static void free_paths(void)
{
  for (size_t i = 0; i < n_paths; i++)
    free(paths[i]);
  n_paths = 0;
}

const char *fixture(const char *name)
{
  return keep_path(FE_FIXTURES, name);
}

const char *write_tmp(const char *name, const char *text)
{
  const char *p = keep_path(FE_TMPDIR, name);
  FILE *f = fopen(p, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
  assert_int_equal(fclose(f), 0);
  return p;
}

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  char *s = malloc((size_t)n + 1);
  assert_non_null(s);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = '\0';
  fclose(f);
  return s;
}

const char *variant(const char *base, const char *name, const char *from, const char *to)
{
  char *text = slurp(fixture(base));
  char *at = strstr(text, from);
  if (!at)
    fail_msg("'%s' does not occur in %s", from, base);
  size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  const char *p = write_tmp(name, out);
  free(out);
  free(text);
  return p;
}

void expect_error(int rc, const xy_error *err, int code, const char *const *needles)
{
  if (rc != code || err->code != code)
    fail_msg("got code %d (err->code %d), expected %d; message:\n%s", rc, err->code, code,
             err->message);
  if (getenv("FE_TEST_SHOW")) /* to read the messages the tests check */
    print_message("%s\n\n", err->message);
  for (; *needles; needles++)
    if (!strstr(err->message, *needles))
      fail_msg("the message lacks '%s':\n%s", *needles, err->message);
}

void expect_spec_error(const char *path, const char *const *overrides, size_t n, int code,
                       const char *const *needles)
{
  xy_load_options opt;
  xy_load_options_default(&opt);
  opt.overrides = overrides;
  opt.n_overrides = n;
  static ir_module sentinel;
  ir_module *m = &sentinel; /* a failed load must set it to NULL */
  xy_error err;
  memset(&err, 0, sizeof err);
  int rc = fe_load_spec(path, &opt, &m, &err);
  assert_null(m);
  expect_error(rc, &err, code, needles);
}

void expect_dag_error(const char *path, const xy_limits *limits, int code,
                      const char *const *needles)
{
  ir_dag d;
  xy_error err;
  memset(&err, 0, sizeof err);
  int rc = fe_load_dag(path, limits, &d, &err);
  assert_null(d.tail);
  assert_null(d.node_start);
  assert_null(d.arc_src);
  expect_error(rc, &err, code, needles);
}

int main(void)
{
  if (mkdir(FE_TMPDIR, 0777) != 0 && errno != EEXIST) {
    perror(FE_TMPDIR);
    return 1;
  }
  int failed = 0;
  failed += run_locate_tests();
  failed += run_spec_tests();
  failed += run_dag_tests();
  failed += run_layer_tests();
  failed += run_memory_tests();
  failed += run_memory_layer_tests();
  failed += run_graph_layer_tests();
  free_paths();
  return failed ? 1 : 0;
}

ir_module *load_module_ok(const char *path)
{
  xy_load_options opt;
  xy_load_options_default(&opt);
  ir_module *m = NULL;
  xy_error err;
  if (fe_load_spec(path, &opt, &m, &err))
    fail_msg("loading %s failed:\n%s", path, err.message);
  xy_error verr;
  if (ir_verify(m, &verr))
    fail_msg("%s", verr.message);
  return m;
}

void expect_tensor(const ir_module *m, const char *name, ir_tensor_role role, int rank,
                   const int64_t *d)
{
  int t = ir_find_tensor(m, name);
  if (t < 0)
    fail_msg("no tensor '%s'", name);
  assert_int_equal(m->tensors[t].role, role);
  ir_shape want = ir_shape_make(rank, d);
  if (!ir_shape_equal(&m->tensors[t].shape, &want))
    fail_msg("tensor '%s' does not have the expected shape", name);
}

const ir_op *find_op(const ir_module *m, const char *name)
{
  for (int i = 0; i < m->n_ops; i++)
    if (strcmp(m->ops[i].name, name) == 0)
      return &m->ops[i];
  fail_msg("no op '%s'", name);
  static const ir_op none; /* not reached: fail_msg ends the test */
  return &none;
}
