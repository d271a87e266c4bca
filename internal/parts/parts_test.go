package parts_test

import (
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/pennyhq/penny/internal/parts"
)

func TestCuts(t *testing.T) {
	// nodes: the node of each item, in runs.
	nodes := []int{0, 0, 0, 1, 1, 2, 2, 2, 2, 3}
	cont := func(j int) bool { return nodes[j] == nodes[j-1] }
	tests := []struct {
		name  string
		n     int
		parts int
		cont  func(int) bool
		want  []int
	}{
		{"one part", 10, 1, cont, []int{0, 10}},
		{"two parts at a node's end", 10, 2, cont, []int{0, 5, 10}},
		{"three parts", 10, 3, cont, []int{0, 3, 9, 10}},
		{"more parts than runs", 10, 10, cont, []int{0, 3, 5, 9, 10}},
		{"one long run", 10, 4, func(int) bool { return true }, []int{0, 10}},
		{"even", 10, 4, func(int) bool { return false }, []int{0, 2, 5, 7, 10}},
		{"none", 0, 4, func(int) bool { return false }, []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parts.Cuts(tt.n, tt.parts, tt.cont); !slices.Equal(got, tt.want) {
				t.Errorf("Cuts = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, tt := range []struct{ n, least, want int }{{0, 10, 1}, {19, 10, 1}, {20, 10, 2}, {1000, 10, 4}} {
		if got := parts.Count(tt.n, tt.least); got != tt.want {
			t.Errorf("Count(%d, %d) = %d, want %d", tt.n, tt.least, got, tt.want)
		}
	}
}

func TestRun(t *testing.T) {
	var sum atomic.Int64
	errA, errB := errors.New("a"), errors.New("b")
	err := parts.Run([]int{0, 3, 7, 10}, func(i, lo, hi int) error {
		for j := lo; j < hi; j++ {
			sum.Add(int64(j))
		}
		switch i {
		case 1:
			return errA
		case 2:
			return errB
		}
		return nil
	})
	if sum.Load() != 45 {
		t.Errorf("sum of the items %d, want 45: each once", sum.Load())
	}
	if !errors.Is(err, errA) {
		t.Errorf("error %v, want the first part's that failed (a)", err)
	}
	if err := parts.Run([]int{0, 5}, func(i, lo, hi int) error {
		if i != 0 || lo != 0 || hi != 5 {
			t.Errorf("run %d [%d, %d)", i, lo, hi)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
