/* test_rng.c: xoshiro256** with splitmix64 seeding, against rng_reference.py. */
#include "io_test.h"

/* Numbers printed by rng_reference.py (an independent pure-Python implementation). */
static const uint64_t SEED0_STATE[4] = {0xe220a8397b1dcdafu, 0x6e789e6aa1b965f4u,
                                        0x06c45d188009454fu, 0xf88bb8a8724c81ecu};
static const uint64_t SEED0_NEXT[6] = {0x99ec5f36cb75f2b4u, 0xbf6e1f784956452au,
                                       0x1a5f849d4933e6e0u, 0x6aa594f1262d2d2cu,
                                       0xbba5ad4a1f842e59u, 0xffef8375d9ebcacau};
static const uint64_t SEED42_NEXT[6] = {0x15780b2e0c2ec716u, 0x6104d9866d113a7eu,
                                        0xae17533239e499a1u, 0xecb8ad4703b360a1u,
                                        0xfde6dc7fe2ec5e64u, 0xc50da53101795238u};

static void test_seed(void **state)
{
  (void)state;
  xy_rng r;
  xy_rng_seed(&r, 0);
  for (int i = 0; i < 4; i++)
    assert_true(r.s[i] == SEED0_STATE[i]);
}

static void test_next(void **state)
{
  (void)state;
  xy_rng r;
  xy_rng_seed(&r, 0);
  for (int i = 0; i < 6; i++)
    assert_true(xy_rng_next(&r) == SEED0_NEXT[i]);
  xy_rng_seed(&r, 42);
  for (int i = 0; i < 6; i++)
    assert_true(xy_rng_next(&r) == SEED42_NEXT[i]);
}

static void test_uniform(void **state)
{
  (void)state;
  static const double seed0[4] = {0.20252599883580968, 0.4955481850944796,
                                  -0.7939600212099274, -0.1668218443407088};
  static const double seed7[4] = {1.9011529643593792, 1.0575024589475686, 2.17925492375284,
                                  2.46219545002987};
  xy_rng r;
  xy_rng_seed(&r, 0);
  for (int i = 0; i < 4; i++)
    assert_true(xy_rng_uniform(&r, -1.0, 1.0) == seed0[i]);
  xy_rng_seed(&r, 7);
  for (int i = 0; i < 4; i++)
    assert_true(xy_rng_uniform(&r, 0.5, 2.5) == seed7[i]);
}

static void test_uniform_range(void **state)
{
  (void)state;
  xy_rng r;
  xy_rng_seed(&r, 123);
  double lo_seen = 1, hi_seen = 0;
  for (int i = 0; i < 100000; i++) {
    double u = xy_rng_uniform(&r, 0.0, 1.0);
    assert_true(u >= 0.0 && u < 1.0);
    lo_seen = u < lo_seen ? u : lo_seen;
    hi_seen = u > hi_seen ? u : hi_seen;
  }
  assert_true(lo_seen < 0.001 && hi_seen > 0.999);
  assert_true(xy_rng_uniform(&r, 3.0, 3.0) == 3.0);
  /* A tiny interval where lo + (hi - lo) * u rounds up to hi: still below hi. */
  for (int i = 0; i < 1000; i++) {
    double u = xy_rng_uniform(&r, 1.0, 1.0 + 0x1.0p-52);
    assert_true(u >= 1.0 && u < 1.0 + 0x1.0p-52);
  }
}

int io_run_rng(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seed),
      cmocka_unit_test(test_next),
      cmocka_unit_test(test_uniform),
      cmocka_unit_test(test_uniform_range),
  };
  return cmocka_run_group_tests_name("rng", tests, NULL, NULL);
}
