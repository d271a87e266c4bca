package procstat_test

import (
	"os"
	"testing"

	"github.com/pennyhq/penny/internal/procstat"
)

func TestSelf(t *testing.T) {
	buf := make([]byte, 32<<20)
	for i := range buf {
		buf[i] = byte(i) // touched: resident
	}
	rss, peak := procstat.Memory(os.Getpid())
	if rss < int64(len(buf)) || peak < rss {
		t.Fatalf("rss %d, peak %d: want at least the %d bytes touched, peak >= rss", rss, peak, len(buf))
	}
	_ = buf[len(buf)-1]
	if cpu := procstat.CPUSeconds(os.Getpid()); cpu < 0 {
		t.Fatalf("cpu %v", cpu)
	}
	if rss, peak := procstat.Memory(1 << 30); rss != 0 || peak != 0 {
		t.Fatalf("a process that is not: %d, %d", rss, peak)
	}
	if cpu := procstat.CPUSeconds(1 << 30); cpu != 0 {
		t.Fatalf("a process that is not: %v", cpu)
	}
}
