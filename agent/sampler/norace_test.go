//go:build !race

package sampler_test

// clientSlack: see race_test.go.
const clientSlack = 1
