package histogram

import "github.com/pennyhq/penny/wire"

// Wire returns h as the wire format carries it, in buckets of its own.
func (h *LogLinear) Wire() wire.LogLinearHist {
	out := wire.LogLinearHist{Count: h.Count, Sum: h.Sum}
	if len(h.Buckets) > 0 {
		out.Buckets = make([]wire.LogLinearBucket, len(h.Buckets))
		for i, b := range h.Buckets {
			out.Buckets[i] = wire.LogLinearBucket{Index: b.Index, N: b.N}
		}
	}
	return out
}

// LogLinearFromWire returns the histogram w carries, in buckets of its
// own.
func LogLinearFromWire(w *wire.LogLinearHist) LogLinear {
	out := LogLinear{Count: w.Count, Sum: w.Sum}
	if len(w.Buckets) > 0 {
		out.Buckets = make([]SparseBucket, len(w.Buckets))
		for i, b := range w.Buckets {
			out.Buckets[i] = SparseBucket{Index: b.Index, N: b.N}
		}
	}
	return out
}
