package procstat

import (
	"testing"
	"time"
)

func TestParseMachine(t *testing.T) {
	tests := []struct {
		name, stat string
		want       Machine
		wantErr    bool
	}{
		{name: "linux 6", stat: "cpu  100 20 30 400 50 6 7 80 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n",
			want: Machine{Busy: 1.63, Idle: 4.5, Steal: 0.8}},
		{name: "short", stat: "cpu 1 2 3\n", wantErr: true},
		{name: "not cpu", stat: "intr 1 2 3 4 5 6 7 8 9\n", wantErr: true},
		{name: "not a number", stat: "cpu 1 2 3 x 5 6 7 8\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMachine(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			near := func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }
			if !near(got.Busy, tt.want.Busy) || !near(got.Idle, tt.want.Idle) || !near(got.Steal, tt.want.Steal) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadMachineAdvances(t *testing.T) {
	a, err := ReadMachine()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // five ticks of each CPU
	b, err := ReadMachine()
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Since(a); d.Busy+d.Idle+d.Steal <= 0 {
		t.Fatalf("no CPU time passed: %+v", d)
	}
}
