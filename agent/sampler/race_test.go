//go:build race

package sampler_test

// clientSlack widens what a test allows between the latency the programs
// time and the one the load's client sees: under the race detector the
// client (the test binary, instrumented) spends several times longer on
// each request of its own, which the server never sees.
const clientSlack = 3
