// Package wire is the format in which node agents stream per-cgroup
// measurements to the aggregator, and the acks the aggregator streams back.
// Both the agent and the aggregator import it; docs/wire.md specifies the
// bytes.
//
// A frame is a fixed binary header (magic, version, keyframe flag, agent
// id, incarnation, seq, base seq, body length, CRC32C) followed by a body:
// a msgpack map compressed with snappy. Frames are self-delimiting, so a
// stream is frames one after another.
//
// The agent owns one Encoder per incarnation (process run) and hands it a
// Snapshot of absolute values per sample. The first frame is a keyframe,
// carrying every series; later frames carry only the series that changed
// since the previous frame, as integer differences, and the refs of the
// series that disappeared. A series is named by a small ref; its path and
// cgroup id travel only when it appears.
//
// The aggregator reads frames with a Reader (or Decode), decides from the
// Header alone whether a frame is a duplicate or out of order, and applies
// frames to one State per agent, which holds the absolute values again.
// State.Apply rejects, without changing anything, a frame that is not the
// next one (ErrDuplicate, ErrGap, ErrNeedKeyframe) or that does not apply
// (ErrInconsistent); State.Ack turns the outcome into the Ack to send back.
//
// Every decoder checks Limits before it allocates: frame and body sizes,
// series per frame, string lengths and metadata entries.
package wire
