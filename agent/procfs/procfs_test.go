package procfs

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   RSS
		ok     bool
		hasErr bool
	}{
		{
			name: "process",
			in: "Name:\tbash\nTgid:\t12\nVmRSS:\t    5000 kB\nRssAnon:\t    1000 kB\n" +
				"RssFile:\t    3000 kB\nRssShmem:\t    1000 kB\nVmSwap:\t       8 kB\n",
			want: RSS{File: 3000 << 10, Anon: 1000 << 10, Shmem: 1000 << 10, Swap: 8 << 10}, ok: true,
		},
		{name: "kernel thread", in: "Name:\tkthreadd\nTgid:\t2\nThreads:\t1\n"},
		{name: "garbage value", in: "VmRSS:\tlots kB\n", hasErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := ParseStatus([]byte(tt.in))
			if (err != nil) != tt.hasErr || ok != tt.ok || got != tt.want {
				t.Fatalf("ParseStatus = %+v, %v, %v", got, ok, err)
			}
		})
	}
}

func TestScanFindsSelf(t *testing.T) {
	procs, err := Scan("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := uint32(os.Getpid())
	for _, p := range procs {
		if p.PID == self {
			if p.RSS.Resident() <= 0 || p.Cgroup == "" {
				t.Fatalf("self read as %+v", p)
			}
			if !Alive("/proc", self) {
				t.Fatal("Alive(self) = false")
			}
			return
		}
	}
	t.Fatalf("own pid %d not among %d processes", self, len(procs))
}

func TestReadProcessKernelThread(t *testing.T) {
	// pid 2 is kthreadd on Linux.
	if _, err := ReadProcess("/proc", 2); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("kernel thread: err = %v, want ErrNotExist", err)
	}
	if Alive("/proc", 1<<31) {
		t.Fatal("impossible pid alive")
	}
}
