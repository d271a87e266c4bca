package ingest

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/wire"
)

// startIngest serves an ingest on a one-member store over HTTP/1.1 (full
// duplex) and runs its committer.
func startIngest(t *testing.T, tune func(*Config)) (*Ingest, string) {
	t.Helper()
	cfg := Config{Node: startStore(t), Logger: slog.New(slog.DiscardHandler)}
	tune(&cfg)
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { in.Run(ctx) })
	srv := httptest.NewServer(in)
	t.Cleanup(func() {
		in.CloseStreams()
		srv.Close()
		cancel()
		wg.Wait()
	})
	return in, srv.URL + Path
}

// openStream starts a stream whose body the returned writer feeds; done is
// closed when the server ends the stream.
func openStream(t *testing.T, url string) (w *io.PipeWriter, resp <-chan *http.Response, done <-chan struct{}) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", MediaFrames)
	respc, end := make(chan *http.Response, 1), make(chan struct{})
	go func() {
		defer close(end)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return
		}
		respc <- r
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		_ = pr.CloseWithError(io.ErrClosedPipe) // the writer stops too
	}()
	return pw, respc, end
}

// TestInflightBytesCapped opens many streams that each send most of a large
// frame and hold it: the replica never holds more frame bytes than its cap,
// streams over it wait and are closed, counted, and every byte is given
// back once they end. A real agent then streams as usual.
func TestInflightBytesCapped(t *testing.T) {
	const (
		frameLimit = 256 << 10
		capBytes   = 1 << 20
		streams    = 20 // each holds 200 KiB: 4 MiB in all, 4 times the cap
		held       = 200 << 10
	)
	in, url := startIngest(t, func(c *Config) {
		c.Limits = wire.Limits{MaxFrameBytes: frameLimit}
		c.MaxInflightBytes = capBytes
		c.InflightWait = 200 * time.Millisecond
	})
	enc, err := wire.NewEncoder(wire.EncoderConfig{AgentID: "node-x", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	frame, err := enc.Encode(&wire.Snapshot{Time: testNow, Interval: time.Second}, true)
	if err != nil {
		t.Fatal(err)
	}
	// The header of a frame that declares a body just under the limit.
	header := append([]byte(nil), frame[:wire.HeaderSize+len("node-x")]...)
	binary.BigEndian.PutUint32(header[32:], frameLimit-uint32(len(header))-1)
	var (
		wg   sync.WaitGroup
		ends []<-chan struct{}
		ws   []*io.PipeWriter
	)
	for range streams {
		w, _, end := openStream(t, url)
		ws, ends = append(ws, w), append(ends, end)
		wg.Go(func() {
			if _, err := w.Write(header); err != nil {
				return
			}
			_, _ = w.Write(make([]byte, held)) // blocks while the replica reads no more
		})
	}
	var peak int64
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(in.m.closed.WithLabelValues("overloaded")) < 1 {
		if used := in.bud.inUse(); used > capBytes {
			t.Fatalf("%d in-flight bytes held, over the cap of %d", used, capBytes)
		} else if used > peak {
			peak = used
		}
		if g := testutil.ToFloat64(in.m.inflightBytes); g > capBytes {
			t.Fatalf("penny_ingest_inflight_bytes = %v, over the cap", g)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream closed for want of room; %d bytes held", in.bud.inUse())
		}
		time.Sleep(time.Millisecond)
	}
	if peak < capBytes/2 {
		t.Errorf("peak of %d bytes held: the streams did not press on the cap", peak)
	}
	if testutil.ToFloat64(in.m.inflightWaits) < 1 {
		t.Errorf("no wait counted")
	}
	for _, w := range ws {
		w.Close()
	}
	for _, end := range ends {
		<-end
	}
	wg.Wait()
	if used := in.bud.inUse(); used != 0 {
		t.Fatalf("%d bytes still held once every stream ended", used)
	}

	// An agent streams as usual: its frames are committed and give their
	// bytes back.
	w, respc, end := openStream(t, url)
	if _, err := w.Write(frame); err != nil {
		t.Fatal(err)
	}
	if resp := <-respc; resp.StatusCode != http.StatusOK {
		t.Fatalf("agent stream: %s", resp.Status)
	}
	deadline = time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(in.m.applied) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the agent's frame was not applied")
		}
		time.Sleep(time.Millisecond)
	}
	w.Close()
	<-end
	if used := in.bud.inUse(); used != 0 {
		t.Fatalf("%d bytes still held after a committed frame", used)
	}
}

// TestFramesHeldPerStream checks that a stream stops reading once it holds
// MaxFramesHeld frames not committed.
func TestFramesHeldPerStream(t *testing.T) {
	in := testIngest(t, func(c *Config) { c.MaxFramesHeld = 3; c.MaxFramesPerTxn = 64 })
	s, c, _ := testStream(in, newAgent)
	a, end := run(t, s)
	fs := frames(t, agentA, 1, 4)
	a.send(t, fs[0]) // submitted at once
	sub := c.next(t)
	a.send(t, fs[1])
	a.send(t, fs[2]) // building holds two, one in flight: three held
	select {
	case a.frames <- fs[3]:
		t.Fatal("the stream read a fourth frame while holding three")
	case <-time.After(50 * time.Millisecond):
	}
	sub.done <- result{succeeded: true}
	a.send(t, fs[3])                          // room again once the first committed
	c.next(t).done <- result{succeeded: true} // the second and third frames
	c.next(t).done <- result{succeeded: true} // the fourth
	a.close()
	if err := wait(t, end); err != nil {
		t.Fatal(err)
	}
}

// watchedBody tells whether a handler's body is read after the handler
// returned, or still being read when it did: net/http forbids both (an
// HTTP/1.1 connection panics, an HTTP/2 one crashes on the deadline).
type watchedBody struct {
	io.ReadCloser
	mu       sync.Mutex
	inRead   int
	returned bool
	late     bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.inRead++
	b.late = b.late || b.returned
	b.mu.Unlock()
	n, err := b.ReadCloser.Read(p)
	b.mu.Lock()
	b.inRead--
	b.mu.Unlock()
	return n, err
}

// TestStreamEndsItsReadsBeforeTheHandlerReturns ends streams whose agent is
// idle, its reader blocked inside Body.Read, by every way a stream ends:
// the handler returns only once its reader stopped, and the body is not
// read afterwards.
func TestStreamEndsItsReadsBeforeTheHandlerReturns(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(in *Ingest, cancel context.CancelFunc)
	}{
		{"ingest closing", func(in *Ingest, _ context.CancelFunc) { in.CloseStreams() }},
		{"request cancelled", func(_ *Ingest, cancel context.CancelFunc) { cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testIngest(t, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			bodies := make(chan *watchedBody, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b := &watchedBody{ReadCloser: r.Body}
				r.Body = b
				bodies <- b
				in.ServeHTTP(w, r.WithContext(ctx))
				b.mu.Lock()
				b.returned = true
				b.late = b.late || b.inRead > 0
				b.mu.Unlock()
			}))
			defer srv.Close()
			_, resp, _ := openStream(t, srv.URL+Path)
			select {
			case <-resp:
			case <-time.After(10 * time.Second):
				t.Fatal("no response to the stream")
			}
			b := <-bodies
			// Wait until the reader is inside Read, waiting for the agent.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				b.mu.Lock()
				reading := b.inRead > 0
				b.mu.Unlock()
				if reading {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the stream's reader never read the body")
				}
			}
			tc.end(in, cancel)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				b.mu.Lock()
				returned := b.returned
				b.mu.Unlock()
				if returned {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the handler did not return")
				}
			}
			time.Sleep(50 * time.Millisecond) // a late read would start by now
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.late {
				t.Error("the body was read while or after the handler returned")
			}
		})
	}
}
