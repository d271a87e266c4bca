// Package report presents samples: the JSON document of `penny local
// --json` (a contract other tools rely on), the live table shown on a
// terminal, and the plain rows written when output is not a terminal. A
// Pricer, when given, prices each cgroup (cost_dollars_per_hour, the COST/h
// column); the agent knows no prices itself.
package report
