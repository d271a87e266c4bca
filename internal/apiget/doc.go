// Package apiget is the GET of Penny's command-line clients (penny top,
// penny cost, penny scale): one request to an aggregator's API, its body
// read within a bound, and the message of an error answer.
package apiget
