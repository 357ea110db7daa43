#!/usr/bin/env python3
"""Independent reference for compiler/rng.c (xoshiro256** seeded by splitmix64).

Prints the first outputs for a few seeds; test_rng.c pastes them. Pure Python, no numpy.
"""
M = (1 << 64) - 1


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return x, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro:
    def __init__(self, seed):
        self.s = []
        x = seed
        for _ in range(4):
            x, z = splitmix64(x)
            self.s.append(z)

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self, lo, hi):
        u = (self.next() >> 11) * 2.0**-53
        return lo + (hi - lo) * u


for seed in (0, 42):
    r = Xoshiro(seed)
    print(f"seed {seed} state", ", ".join(f"0x{v:016x}u" for v in r.s))
    print(f"seed {seed} next", ", ".join(f"0x{r.next():016x}u" for _ in range(6)))
r = Xoshiro(0)
print("seed 0 uniform(-1, 1)", ", ".join(repr(r.uniform(-1.0, 1.0)) for _ in range(4)))
r = Xoshiro(7)
print("seed 7 uniform(0.5, 2.5)", ", ".join(repr(r.uniform(0.5, 2.5)) for _ in range(4)))
