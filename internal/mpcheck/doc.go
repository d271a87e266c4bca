// Package mpcheck validates the structure of untrusted msgpack before it is
// decoded.
//
// github.com/vmihailenco/msgpack/v5 allocates up to a megabyte for every
// string or byte slice whose declared length exceeds the input, and up to a
// million elements for declared arrays and maps, before it notices the input
// is short: a few hundred hostile bytes make it allocate gigabytes. Check
// walks the encoding once without allocating and refuses any declared length
// that the remaining input cannot hold, and nesting deeper than a limit;
// input that passes decodes with allocations bounded by its own size.
package mpcheck
