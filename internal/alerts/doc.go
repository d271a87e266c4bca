// Package alerts reads Penny's Prometheus alert rules, the file
// charts/penny/rules/penny-alerts.yaml that the chart ships both as a
// PrometheusRule and as a ConfigMap of plain rule files. Its tests run
// `promtool check rules` and `promtool test rules` on it and check that
// every alert has a unit test; the test of the real pipeline on a real
// Prometheus (cmd/penny) runs every alert's expression.
package alerts
