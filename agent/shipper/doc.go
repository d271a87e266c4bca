// Package shipper streams an agent's samples to the aggregator cluster.
//
// Each sample becomes a frame (package wire): a keyframe at start, after a
// reconnect, after frames had to be dropped and every KeyframeEvery frames,
// deltas otherwise. Frames stay in a bounded buffer until an aggregator
// acknowledges them; the shipper streams them over one long HTTP/2 request
// per connection (POST /v1/ingest: frames up, acks down), to any reachable
// replica, failing over to the next URL with jittered exponential backoff
// and resending what was not acknowledged. When the buffer is full the
// oldest frames are dropped, counted, and the next frame is a keyframe, so
// totals stay right and memory stays bounded.
package shipper
