/* test_graph_ir.c: the graph IR's builder, printer, verifier and clone, the op table, and
 * the checked arithmetic and buffers every module relies on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "graph_ir.h"

static void checked_arithmetic(void **state)
{
  (void)state;
  int64_t r;
  assert_true(xy_mul_i64(1 << 20, 1 << 20, &r) && r == (int64_t)1 << 40);
  assert_false(xy_mul_i64(INT64_MAX / 2 + 1, 2, &r));
  assert_false(xy_mul_i64(-1, 2, &r));
  assert_false(xy_add_i64(INT64_MAX, 1, &r));
  int64_t dims[] = {1 << 20, 1 << 20, 1 << 20, 1 << 20};
  assert_false(xy_product_i64(dims, 4, &r));
  assert_true(xy_product_i64(dims, 2, &r) && r == (int64_t)1 << 40);
  size_t z;
  assert_false(xy_mul_size(SIZE_MAX, 2, &z));
}

static void growable_buffer(void **state)
{
  (void)state;
  xy_buf b;
  xy_buf_init(&b);
  char *empty = xy_buf_take(&b);
  assert_non_null(empty);
  assert_string_equal(empty, "");
  free(empty);
  for (int i = 0; i < 1000; i++)
    xy_buf_printf(&b, "%d,", i);
  char *text = xy_buf_take(&b);
  assert_non_null(text);
  assert_int_equal(strncmp(text, "0,1,2,", 6), 0);
  assert_non_null(strstr(text, "999,"));
  free(text);
}

static void op_table(void **state)
{
  (void)state;
  const ir_op_info *info = ir_op_info_of(IR_OP_PLSTM_SCAN);
  assert_string_equal(info->name, "plstm_scan");
  assert_int_equal(info->n_in, 8);
  assert_int_equal(info->n_out, 2);
  assert_int_equal(ir_op_in_slot(IR_OP_PLSTM_SCAN, "C_initial"), 7);
  assert_true(info->in_optional[7] && !info->in_optional[0]);
  assert_int_equal(ir_op_out_slot(IR_OP_PLSTM_SCAN, "C_final"), 1);
  assert_int_equal(ir_op_in_slot(IR_OP_PLSTM_SCAN, "nope"), -1);
  assert_int_equal(ir_form_from_name("chunkwise"), IR_FORM_CHUNKWISE);
  assert_int_equal(ir_form_from_name("sideways"), IR_FORM_COUNT);
}

/* A sequence scan with J = 1, L = 5, DK = DV = 2, batch 1. */
static ir_module *small_module(void)
{
  ir_module *m = ir_module_new("t");
  int g = ir_add_graph(m, IR_GRAPH_SEQUENCE);
  m->graphs[g].length = 5;
  const char *names[] = {"q", "k", "v", "S", "T", "M", "D"};
  int64_t shapes[7][6] = {{1, 5, 2, 1}, {1, 5, 2, 1}, {1, 5, 2, 1}, {1, 5, 1, 1, 1},
                          {1, 5, 1, 1}, {1, 5, 1, 1, 1}, {1, 5, 1, 1, 1, 1}};
  int ranks[] = {4, 4, 4, 5, 4, 5, 6};
  int oi = ir_add_op(m, IR_OP_PLSTM_SCAN, "scan");
  for (int i = 0; i < 7; i++) {
    ir_shape s = ir_shape_make(ranks[i], shapes[i]);
    int t = ir_add_tensor(m, names[i], &s, XY_F32, IR_INPUT);
    ir_mark_input(m, t);
    m->ops[oi].in[i] = t;
  }
  ir_shape none = ir_shape_make(0, NULL);
  int y = ir_add_tensor(m, "y", &none, XY_F32, IR_VALUE);
  m->tensors[y].producer = oi;
  m->ops[oi].out[0] = y;
  m->ops[oi].graph = g;
  m->ops[oi].qk_scale = 0.5;
  xy_error err;
  assert_int_equal(ir_infer_shapes(m, &m->ops[oi], &err), XY_OK);
  ir_mark_output(m, y);
  return m;
}

static void build_print_verify(void **state)
{
  (void)state;
  ir_module *m = small_module();
  xy_error err;
  assert_int_equal(ir_verify(m, &err), XY_OK);
  xy_buf b;
  xy_buf_init(&b);
  ir_print(m, &b);
  assert_non_null(strstr(b.data, "graph g0 sequence length=5"));
  assert_non_null(strstr(b.data, "%y:f32[1,5,2,1] = plstm_scan[scan] g0 (q=%q"));
  assert_non_null(strstr(b.data, "C_initial=_"));
  xy_buf_free(&b);

  /* A wrong shape, a missing required slot, a value with no producer: each rejected. */
  m->tensors[1].shape.d[2] = 3;
  assert_int_not_equal(ir_verify(m, &err), XY_OK);
  assert_non_null(strstr(err.message, "k has shape [1,5,3,1], expected [1,5,2,1]"));
  m->tensors[1].shape.d[2] = 2;
  int saved = m->ops[0].in[4];
  m->ops[0].in[4] = -1;
  assert_int_not_equal(ir_verify(m, &err), XY_OK);
  assert_non_null(strstr(err.message, "input T is missing"));
  m->ops[0].in[4] = saved;
  m->tensors[7].producer = -1;
  assert_int_not_equal(ir_verify(m, &err), XY_OK);
  m->tensors[7].producer = 0;
  assert_int_equal(ir_verify(m, &err), XY_OK);
  ir_module_free(m);
}

static void clone_is_deep(void **state)
{
  (void)state;
  ir_module *m = small_module();
  ir_module *c = ir_module_clone(m);
  assert_non_null(c);
  xy_buf a, b;
  xy_buf_init(&a);
  xy_buf_init(&b);
  ir_print(m, &a);
  ir_print(c, &b);
  assert_string_equal(a.data, b.data);
  c->ops[0].sched.form = IR_FORM_RECURRENT;
  free(c->tensors[0].name);
  c->tensors[0].name = xy_strdup("renamed");
  assert_string_equal(m->tensors[0].name, "q");
  assert_int_equal(m->ops[0].sched.form, IR_FORM_AUTO);
  xy_buf_free(&a);
  xy_buf_free(&b);
  ir_module_free(c);
  ir_module_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(checked_arithmetic),
    cmocka_unit_test(growable_buffer),
    cmocka_unit_test(op_table),
    cmocka_unit_test(build_print_verify),
    cmocka_unit_test(clone_is_deep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
