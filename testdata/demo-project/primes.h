#ifndef DEMO_PRIMES_H
#define DEMO_PRIMES_H
/* Number of primes below limit (sieve of Eratosthenes). */
int count_primes(int limit);
#endif
