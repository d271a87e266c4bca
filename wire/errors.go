package wire

import "errors"

// Errors a decoder, a State or an Encoder returns, wrapped with context.
// Check them with errors.Is.
var (
	// ErrBadMagic reports bytes that do not start with a frame's or an
	// ack's magic number: the stream is not Penny's wire format.
	ErrBadMagic = errors.New("wire: bad magic")
	// ErrVersion reports a frame or ack of a format version this package
	// does not implement.
	ErrVersion = errors.New("wire: unsupported version")
	// ErrCorrupt reports a malformed or truncated frame or ack, or one whose
	// checksum does not match.
	ErrCorrupt = errors.New("wire: corrupt")
	// ErrTooLarge reports a frame, body or field over one of the Limits.
	ErrTooLarge = errors.New("wire: too large")
	// ErrInvalid reports an invalid argument: a Snapshot, Limits, encoder
	// configuration or Ack that cannot be encoded.
	ErrInvalid = errors.New("wire: invalid")

	// ErrDuplicate reports a frame whose sequence number is at or below
	// the last one applied for its incarnation.
	ErrDuplicate = errors.New("wire: duplicate frame")
	// ErrGap reports a delta frame whose base is not the last frame
	// applied: frames are missing in between.
	ErrGap = errors.New("wire: gap in sequence")
	// ErrNeedKeyframe reports a delta frame for an incarnation the State
	// holds nothing for.
	ErrNeedKeyframe = errors.New("wire: need keyframe")
	// ErrInconsistent reports a frame that is well formed but does not
	// apply to the State: an unknown or reused series ref, a counter that
	// would overflow, a gauge that would turn negative, a duplicate path or
	// cgroup id, too many live series.
	ErrInconsistent = errors.New("wire: inconsistent with state")
	// ErrAgentMismatch reports a frame from another agent than the one a
	// State follows.
	ErrAgentMismatch = errors.New("wire: agent mismatch")
)
