package shipper

// frame is one encoded frame waiting for its acknowledgement.
type frame struct {
	seq      uint64
	keyframe bool
	data     []byte
	sends    int // times written to a connection
}

// buffer holds the frames not acknowledged yet, oldest first, within a
// byte budget.
type buffer struct {
	frames []frame
	bytes  int
	limit  int
}

// push appends f and drops the oldest frames while the buffer is over its
// limit, returning what it dropped. A frame larger than the limit is kept
// alone: the limit bounds memory, never the newest sample.
func (b *buffer) push(f frame) (dropped []frame) {
	b.frames = append(b.frames, f)
	b.bytes += len(f.data)
	for b.bytes > b.limit && len(b.frames) > 1 {
		dropped = append(dropped, b.frames[0])
		b.bytes -= len(b.frames[0].data)
		b.frames[0] = frame{}
		b.frames = b.frames[1:]
	}
	return dropped
}

// ack removes the frames up to and including seq, returning them.
func (b *buffer) ack(seq uint64) (acked []frame) {
	i := 0
	for i < len(b.frames) && b.frames[i].seq <= seq {
		b.bytes -= len(b.frames[i].data)
		i++
	}
	acked = append(acked, b.frames[:i]...)
	clear(b.frames[:i])
	b.frames = b.frames[i:]
	return acked
}

// drain drops every frame, returning them.
func (b *buffer) drain() []frame {
	all := b.frames
	b.frames, b.bytes = nil, 0
	return all
}
