// Package history keeps the history of costs in the store: per container
// and per minute, the quantities the cost model prices (observed time, CPU
// and memory used, requested and allocated, egress by class), with each
// node's facts and prices, compacted into hours after MinuteRetention and
// dropped after HourRetention.
//
// A Roller, run on every replica, acts on the one that leads: shortly
// after each minute boundary it reads every node's series (their accruals,
// package aggregator/model), the final records of series that ended and the
// node's cursor, and writes the node's minute record, adds it to the
// node's hour record, writes new identities and the next cursor, in one
// transaction conditioned on the cursor and the agent record being as read:
// a minute is rolled up once, whatever replica leads and however often
// leadership changes. Compact deletes compacted minutes and expired records.
//
// A Reader returns the spans of a window as the cost model takes them
// (cost.Series, cost.NodeUsage). The design, the units and the sizes are in
// docs/cost.md, section "History".
package history
