/* test_locate.c: fe_json_locate, the scanner that gives errors their line and column. */
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"
#include "fe_test.h"

static const char *const text =
  "{\n"
  "  \"a\": {\"b\": [10, {\"c\": \"x\"}, [1, [2, 3]]]},\n"
  "  \"k\\\"ey\": 5,\n"
  "  \"\\u0041B\": [true],\n"
  "  \"s\": \"br]ace{\\\" \\\\\",\n"
  "  \"t\": 7,\n"
  "  \"\\ud83d\\ude00\": null,\n"
  "  \"u\": {}, \"w\": []\n"
  "}\n";

static void expect_at(const char *path, int line, int col)
{
  int l = -1, c = -1;
  if (!fe_json_locate(text, path, &l, &c))
    fail_msg("'%s' not found", path);
  if (l != line || c != col)
    fail_msg("'%s' at %d:%d, expected %d:%d", path, l, c, line, col);
}

static void expect_missing(const char *path)
{
  int l, c;
  if (fe_json_locate(text, path, &l, &c))
    fail_msg("'%s' found at %d:%d, expected not found", path, l, c);
}

static void nested_paths(void **state)
{
  (void)state;
  expect_at("", 1, 1);
  expect_at("a", 2, 8);
  expect_at("a.b", 2, 14);
  expect_at("a.b[0]", 2, 15);
  expect_at("a.b[1]", 2, 19);
  expect_at("a.b[1].c", 2, 25);
  expect_at("a.b[2]", 2, 31);
  expect_at("a.b[2][1]", 2, 35);
  expect_at("a.b[2][1][1]", 2, 39);
  expect_at("t", 6, 8);
  expect_at("u", 8, 8);
  expect_at("w", 8, 17);
}

static void escapes_in_keys_and_strings(void **state)
{
  (void)state;
  expect_at("k\"ey", 3, 12);     /* an escaped quote inside the key */
  expect_at("AB", 4, 14);        /* \u0041 is 'A' */
  expect_at("AB[0]", 4, 15);
  expect_at("s", 5, 8);          /* brackets and escapes inside a string value */
  expect_at("\xF0\x9F\x98\x80", 7, 19); /* a surrogate pair: U+1F600 */
}

static void not_found(void **state)
{
  (void)state;
  expect_missing("a.z");
  expect_missing("a.b[3]");
  expect_missing("a.b[2][1][2]");
  expect_missing("t[0]");        /* not an array */
  expect_missing("t.x");         /* not an object */
  expect_missing("a.b.c");       /* an array, not an object */
  expect_missing("u.x");
  expect_missing("w[0]");
  expect_missing("a.b[x]");      /* malformed paths */
  expect_missing("a..b");
  expect_missing("a.b[1");
  expect_missing("a]");
  expect_missing("k\\\"ey");     /* keys match after unescaping only */
}

static void columns_count_characters(void **state)
{
  (void)state;
  int l, c;
  assert_true(fe_json_locate("{\"\xC3\xA9\": 1, \"x\": 2}", "x", &l, &c));
  assert_int_equal(l, 1);
  assert_int_equal(c, 15); /* 'é' is two bytes, one column */
  assert_true(fe_json_locate("\n\n  [0,\n\t1]", "[1]", &l, &c));
  assert_int_equal(l, 4);
  assert_int_equal(c, 2);
}

/* Any prefix of valid JSON, and garbage, gives "not found" or a position, never a crash. */
static void broken_text(void **state)
{
  (void)state;
  size_t n = strlen(text);
  char *cut = malloc(n + 1);
  assert_non_null(cut);
  static const char *const probes[] = {"", "a.b[2][1][1]", "t", "\xF0\x9F\x98\x80", "w", "u.x"};
  for (size_t len = 0; len <= n; len++) {
    memcpy(cut, text, len);
    cut[len] = '\0';
    for (size_t p = 0; p < XY_ARRAY_LEN(probes); p++) {
      int l, c;
      if (fe_json_locate(cut, probes[p], &l, &c))
        assert_true(l >= 1 && c >= 1);
    }
  }
  free(cut);
  int l, c;
  assert_false(fe_json_locate("\"\\u12", "x", &l, &c));
  assert_false(fe_json_locate("{\"\\u12", "x", &l, &c));
  assert_false(fe_json_locate("{\"a\\", "a", &l, &c));
  assert_false(fe_json_locate("[[[[[[", "[0][0][0][0][0][0]", &l, &c));
  assert_false(fe_json_locate("}}}", "[0]", &l, &c));
  assert_false(fe_json_locate(NULL, "x", &l, &c));
}

/* Cached lookups (the front end's fast path for inputs[0], inputs[1], ...) find exactly
 * what uncached ones do, in any order. */
static void cached_lookups_agree(void **state)
{
  (void)state;
  static const char *const paths[] = {
    "a.b[0]", "a.b[1]", "a.b[1].c", "a.b[2][1][1]", "a.b[2]", "a.b[0]", "AB[0]", "a.b[3]",
    "w[0]", "a.b[2][1]", "t", "a.b[1].c", "AB[0]", "", "a.z[0]", "a.b[1]",
  };
  fe_pos_cache cache;
  memset(&cache, 0, sizeof cache);
  for (int round = 0; round < 2; round++)
    for (size_t i = 0; i < XY_ARRAY_LEN(paths); i++) {
      size_t k = round ? XY_ARRAY_LEN(paths) - 1 - i : i;
      size_t a = 0, b = 0;
      bool fa = fe_json_find(text, paths[k], false, &a);
      bool fb = fe_json_find_cached(text, paths[k], &cache, &b);
      if (fa != fb || a != b)
        fail_msg("'%s': uncached %d at %zu, cached %d at %zu", paths[k], fa, a, fb, b);
      if (!fa)
        continue;
      int l1, c1, l2, c2;
      fe_linecol(text, a, &l1, &c1);
      fe_linecol_cached(text, b, &cache, &l2, &c2);
      assert_int_equal(l1, l2);
      assert_int_equal(c1, c2);
    }
}

int run_locate_tests(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(nested_paths),
    cmocka_unit_test(escapes_in_keys_and_strings),
    cmocka_unit_test(not_found),
    cmocka_unit_test(columns_count_characters),
    cmocka_unit_test(broken_text),
    cmocka_unit_test(cached_lookups_agree),
  };
  return cmocka_run_group_tests_name("frontend_locate", tests, NULL, NULL);
}
