// Package ingest takes the frames agents stream to an aggregator replica
// and puts them into the replicated store.
//
// An agent holds one HTTP/2 request open (POST /v1/ingest): frames go up in
// its body, acknowledgements come down in the response. For each stream the
// ingest binds the agent (its node name), loads what the store holds for it,
// checks every frame's header and body against that state (package wire:
// duplicates, gaps, incarnations, limits), turns it into a conditional
// transaction on the metrics model (package model) and acknowledges it once
// the transaction has committed.
//
// Transactions of many agents are coalesced into one Raft proposal (a
// committer batches them). An agent has at most one transaction in flight:
// frames that arrive meanwhile (a resent backlog) are merged into the next
// one, as far as one transaction of the store takes. Each transaction is
// checked against the store's limits when it is submitted, so that one that
// breaks them fails its own stream only, never the proposal it would have
// joined. The committer's queue is bounded in bytes; when the log falls behind,
// stream handlers block on it, stop reading, and HTTP/2 flow control pushes
// back on the agents, which buffer. A transaction whose condition fails (a
// second replica served the agent meanwhile) ends the stream: the agent
// reconnects and resends, and the new stream starts from the store.
package ingest
