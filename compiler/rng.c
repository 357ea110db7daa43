/*
 * rng.c: xoshiro256** (Blackman and Vigna), seeded with four outputs of splitmix64 as its
 * authors recommend. Inputs drawn from a seed must be the same on every host and in every
 * tool (the Python scripts included), so this is the whole definition.
 */
#include <math.h>

#include "xylem.h"

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

void xy_rng_seed(xy_rng *rng, uint64_t seed)
{
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    rng->s[i] = splitmix64(&x);
}

uint64_t xy_rng_next(xy_rng *rng)
{
  uint64_t *s = rng->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double xy_rng_uniform(xy_rng *rng, double lo, double hi)
{
  /* The top 53 bits make every double in [0, 1) a multiple of 2^-53. */
  double u = (double)(xy_rng_next(rng) >> 11) * 0x1.0p-53;
  double r = lo + (hi - lo) * u;
  /* Rounding can land on hi itself; keep the interval half-open. */
  if (r >= hi && hi > lo)
    r = nextafter(hi, lo);
  return r;
}
