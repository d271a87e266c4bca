package wire

import "fmt"

// Default limits. They fit a node with a few thousand cgroups and their pod
// metadata with a wide margin; see docs/wire.md for the memory they bound.
const (
	DefaultMaxFrameBytes  = 4 << 20
	DefaultMaxBodyBytes   = 32 << 20
	DefaultMaxSeries      = 16384
	DefaultMaxStringLen   = 4096
	DefaultMaxMetaEntries = 128
)

// Hard caps on the limits themselves: the header's body length is 32 bits
// and nothing Penny sends comes near these.
const (
	capFrameBytes  = 1 << 30
	capBodyBytes   = 1 << 30
	capSeries      = 1 << 24
	capStringLen   = 1 << 20
	capMetaEntries = 1 << 16
)

// Limits bound what a decoder accepts and an Encoder produces. Every limit is
// checked before memory is allocated for what it bounds. A zero field means
// its default.
type Limits struct {
	// MaxFrameBytes bounds a whole frame as sent: header, agent id and
	// compressed body.
	MaxFrameBytes int
	// MaxBodyBytes bounds the decompressed msgpack body.
	MaxBodyBytes int
	// MaxSeries bounds the series updates in a frame, the removals in a
	// frame, and the live series a State holds.
	MaxSeries int
	// MaxStringLen bounds a cgroup path and a metadata key or value, in
	// bytes.
	MaxStringLen int
	// MaxMetaEntries bounds the entries of one metadata map (the frame's or
	// a series').
	MaxMetaEntries int
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameBytes:  DefaultMaxFrameBytes,
		MaxBodyBytes:   DefaultMaxBodyBytes,
		MaxSeries:      DefaultMaxSeries,
		MaxStringLen:   DefaultMaxStringLen,
		MaxMetaEntries: DefaultMaxMetaEntries,
	}
}

// Validate reports whether every limit is zero (the default) or positive and
// below its hard cap.
func (l Limits) Validate() error {
	for _, f := range []struct {
		name   string
		v, cap int
	}{
		{"max frame bytes", l.MaxFrameBytes, capFrameBytes},
		{"max body bytes", l.MaxBodyBytes, capBodyBytes},
		{"max series", l.MaxSeries, capSeries},
		{"max string length", l.MaxStringLen, capStringLen},
		{"max metadata entries", l.MaxMetaEntries, capMetaEntries},
	} {
		if f.v < 0 || f.v > f.cap {
			return fmt.Errorf("%w: limits: %s %d not in [0, %d]", ErrInvalid, f.name, f.v, f.cap)
		}
	}
	if l.MaxFrameBytes != 0 && l.MaxFrameBytes < HeaderSize+1 {
		return fmt.Errorf("%w: limits: max frame bytes %d below the smallest frame", ErrInvalid, l.MaxFrameBytes)
	}
	return nil
}

// withDefaults validates l and fills its zero fields with the defaults.
func (l Limits) withDefaults() (Limits, error) {
	if err := l.Validate(); err != nil {
		return Limits{}, err
	}
	d := DefaultLimits()
	if l.MaxFrameBytes == 0 {
		l.MaxFrameBytes = d.MaxFrameBytes
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = d.MaxBodyBytes
	}
	if l.MaxSeries == 0 {
		l.MaxSeries = d.MaxSeries
	}
	if l.MaxStringLen == 0 {
		l.MaxStringLen = d.MaxStringLen
	}
	if l.MaxMetaEntries == 0 {
		l.MaxMetaEntries = d.MaxMetaEntries
	}
	return l, nil
}
