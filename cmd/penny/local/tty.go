package local

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/pennyhq/penny/agent/report"
	"github.com/pennyhq/penny/agent/sampler"
)

type fder interface{ Fd() uintptr }

func isTerminal(w any) bool {
	f, ok := w.(fder)
	return ok && term.IsTerminal(int(f.Fd()))
}

// termSize returns the terminal's columns and rows, or 120x0 (no row limit)
// when w is not a terminal.
func termSize(w io.Writer) (cols, rows int) {
	if f, ok := w.(fder); ok {
		if c, r, err := term.GetSize(int(f.Fd())); err == nil {
			return c, r
		}
	}
	return 120, 0
}

// live draws the table on the terminal's alternate screen, like top, and
// quits when q is pressed.
type live struct {
	out     io.Writer
	price   report.Pricer
	restore func()
}

func startLive(stdio IO, quit context.CancelFunc, price report.Pricer) (*live, error) {
	l := &live{out: stdio.Out, price: price, restore: func() {}}
	if stdio.In != nil && term.IsTerminal(int(stdio.In.Fd())) {
		fd := int(stdio.In.Fd())
		old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return nil, fmt.Errorf("read terminal settings: %w", err)
		}
		raw := *old
		raw.Lflag &^= unix.ICANON | unix.ECHO // keys arrive at once, unechoed; Ctrl-C still works
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
			return nil, fmt.Errorf("set terminal mode: %w", err)
		}
		l.restore = func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }
		go func() {
			r := bufio.NewReader(stdio.In)
			for {
				b, err := r.ReadByte()
				if err != nil || b == 'q' || b == 'Q' {
					quit()
					return
				}
			}
		}()
	}
	// Alternate screen, cursor hidden, then a first frame.
	fmt.Fprint(l.out, "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2Jpenny local: waiting for the first sample…\n")
	return l, nil
}

func (l *live) render(s *sampler.Sample) error {
	cols, rows := termSize(l.out)
	var b strings.Builder
	b.WriteString("\x1b[H\x1b[2J")
	maxRows := 0
	if rows > 0 {
		maxRows = max(rows-3, 1)
	}
	if err := report.Table(&b, s, cols, maxRows, l.price); err != nil {
		return err
	}
	_, err := io.WriteString(l.out, b.String())
	return err
}

func (l *live) stop() {
	fmt.Fprint(l.out, "\x1b[?25h\x1b[?1049l")
	l.restore()
}
