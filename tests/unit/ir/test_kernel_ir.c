/* test_kernel_ir.c: the kernel-IR verifier's rules and the renderer's output forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernel_ir.h"
#include "render.h"

#define I(v) kx_int(b, (v))
#define V(x) kx_var(b, (x))

/* A kernel with a global input and output of n floats, and a launch binding them. */
typedef struct fixture {
  kir_module *m;
  kir_builder b;
  int in, out, buf_in, buf_out;
} fixture;

static void begin(fixture *f, int wg)
{
  f->m = kir_module_new("t");
  assert_non_null(f->m);
  f->buf_in = kir_add_buffer(f->m, "x", KT_FLOAT, 64, KIR_BUF_INPUT, 0, NULL);
  f->buf_out = kir_add_buffer(f->m, "y", KT_FLOAT, 64, KIR_BUF_OUTPUT, 0, NULL);
  kb_init(&f->b, f->m);
  kb_kernel(&f->b, "k", wg, 1, NULL);
  f->in = kb_global(&f->b, "x", KT_FLOAT, 64, true);
  f->out = kb_global(&f->b, "y", KT_FLOAT, 64, false);
}

static int finish(fixture *f, xy_error *err)
{
  assert_int_equal(kb_finish(&f->b, err), XY_OK);
  int64_t groups[3] = {1, 1, 1};
  kir_arg args[] = {{true, f->buf_in}, {true, f->buf_out}};
  assert_true(kir_add_launch(f->m, 0, groups, args, 2, 0, 0) >= 0);
  return kir_verify(f->m, err);
}

static void expect_rejected(fixture *f, const char *why)
{
  xy_error err;
  assert_int_not_equal(finish(f, &err), XY_OK);
  if (!strstr(err.message, why))
    fail_msg("message '%s' lacks '%s'", err.message, why);
  kir_module_free(f->m);
}

static void good_kernel_passes(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 64);
  kir_builder *b = &f.b;
  int i = kb_parfor(b, "i", I(64));
  kb_store(b, f.out, V(i), kx_mul(b, kx_load(b, f.in, V(i)), kx_flt(b, 2.0)));
  kb_end(b);
  xy_error err;
  assert_int_equal(finish(&f, &err), XY_OK);
  kir_module_free(f.m);
}

static void nested_parfor_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  kb_parfor(b, "i", I(8));
  int j = kb_parfor(b, "j", I(8));
  kb_store(b, f.out, V(j), kx_flt(b, 0));
  kb_end(b);
  kb_end(b);
  expect_rejected(&f, "nested parfor");
}

static void group_level_store_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  kb_store(b, f.out, I(0), kx_flt(b, 1));
  expect_rejected(&f, "group-level store");
}

static void parfor_writing_group_variable_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  int acc = kb_let(b, "acc", KT_FLOAT, kx_flt(b, 0));
  int i = kb_parfor(b, "i", I(8));
  kb_set(b, acc, kx_load(b, f.in, V(i)));
  kb_end(b);
  expect_rejected(&f, "assigns a group-level variable");
}

static void out_of_scope_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  int i = kb_parfor(b, "i", I(8));
  kb_end(b);
  int j = kb_parfor(b, "j", I(8));
  kb_store(b, f.out, V(j), kx_load(b, f.in, V(i)));
  kb_end(b);
  expect_rejected(&f, "out of scope");
}

static void read_only_store_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  int i = kb_parfor(b, "i", I(8));
  kb_store(b, f.in, V(i), kx_flt(b, 0));
  kb_end(b);
  expect_rejected(&f, "read-only");
}

static void constant_index_out_of_bounds_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  int i = kb_parfor(b, "i", I(1));
  kb_store(b, f.out, kx_add(b, V(i), I(0)), kx_load(b, f.in, I(64)));
  kb_end(b);
  expect_rejected(&f, "out of bounds");
}

static void type_mismatch_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  int i = kb_parfor(b, "i", I(8));
  kb_store(b, f.out, V(i), V(i));
  kb_end(b);
  expect_rejected(&f, "mismatched types");
}

static void launch_mismatch_rejected(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  int i = kb_parfor(b, "i", I(8));
  kb_store(b, f.out, V(i), kx_load(b, f.in, V(i)));
  kb_end(b);
  xy_error err;
  assert_int_equal(kb_finish(&f.b, &err), XY_OK);
  int64_t groups[3] = {1, 1, 1};
  kir_arg swapped[] = {{true, f.buf_out}, {true, f.buf_in}};
  assert_true(kir_add_launch(f.m, 0, groups, swapped, 2, 0, 0) >= 0);
  assert_int_not_equal(kir_verify(f.m, &err), XY_OK);
  assert_non_null(strstr(err.message, "bound to read-only buffer"));
  f.m->launches[0].n_args = 1;
  assert_int_not_equal(kir_verify(f.m, &err), XY_OK);
  assert_non_null(strstr(err.message, "1 arguments for 2 parameters"));
  kir_module_free(f.m);
}

static void builder_misuse_reported(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 8);
  kir_builder *b = &f.b;
  kb_parfor(b, "i", I(8));
  xy_error err;
  assert_int_not_equal(kb_finish(b, &err), XY_OK);
  assert_non_null(strstr(err.message, "still open"));
  kir_module_free(f.m);
}

static char *render(const kir_module *m, const xy_dialect *d)
{
  xy_buf out;
  xy_buf_init(&out);
  xy_render_kernels(m, d, &out);
  return xy_buf_take(&out);
}

static void renderer_forms(void **state)
{
  (void)state;
  fixture f;
  begin(&f, 64);
  kir_builder *b = &f.b;
  int i = kb_parfor(b, "i", I(64));
  int a = kb_let(b, "a", KT_INT, kx_sub(b, V(i), kx_sub(b, I(3), V(i))));
  int acc = kb_let(b, "acc", KT_FLOAT, kx_flt(b, 1));
  kb_set(b, acc, kx_add(b, V(acc), kx_mul(b, kx_add(b, kx_flt(b, 0.1), kx_flt(b, -2)),
                                          kx_load(b, f.in, V(a)))));
  kb_store(b, f.out, V(i), V(acc));
  kb_end(b);
  xy_error err;
  assert_int_equal(finish(&f, &err), XY_OK);
  char *cl = render(f.m, &xy_dialect_opencl), *c = render(f.m, &xy_dialect_c99);
  assert_non_null(cl);
  assert_non_null(c);
  /* Right operands keep their parentheses; float literals read back exactly. */
  assert_non_null(strstr(cl, "int a = i - (3 - i);"));
  assert_non_null(strstr(cl, "acc += (0.100000001f + (-2.0f)) * x[a];"));
  assert_non_null(strstr(cl, "float acc = 1.0f;"));
  /* A parfor of exactly the work-group size is one item per work-item, then a barrier. */
  assert_non_null(strstr(cl, "const int i = lid;"));
  assert_non_null(strstr(cl, "barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);"));
  assert_non_null(strstr(cl, "reqd_work_group_size(64, 1, 1)"));
  /* The C dialect loops over the items and takes the group id as parameters. */
  assert_non_null(strstr(c, "for (int i = 0; i < 64; ++i) {"));
  assert_non_null(strstr(c, "const int gid0"));
  assert_null(strstr(c, "barrier"));
  free(cl);
  free(c);
  kir_module_free(f.m);
}

static void float_literals(void **state)
{
  (void)state;
  const struct {
    double v;
    const char *text;
  } cases[] = {{1.0, "1.0f"}, {0.5, "0.5f"}, {-3.0, "(-3.0f)"}, {1e-30, "1e-30f"},
               {0.35355339059327373, "0.353553385f"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    xy_buf out;
    xy_buf_init(&out);
    xy_render_float(cases[i].v, &out);
    assert_string_equal(out.data, cases[i].text);
    xy_buf_free(&out);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(good_kernel_passes),
    cmocka_unit_test(nested_parfor_rejected),
    cmocka_unit_test(group_level_store_rejected),
    cmocka_unit_test(parfor_writing_group_variable_rejected),
    cmocka_unit_test(out_of_scope_rejected),
    cmocka_unit_test(read_only_store_rejected),
    cmocka_unit_test(constant_index_out_of_bounds_rejected),
    cmocka_unit_test(type_mismatch_rejected),
    cmocka_unit_test(launch_mismatch_rejected),
    cmocka_unit_test(builder_misuse_reported),
    cmocka_unit_test(renderer_forms),
    cmocka_unit_test(float_literals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
