package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// CPUSeconds sums the user and system CPU time of the processes; one that
// is gone counts nothing.
func CPUSeconds(pids ...int) float64 {
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name, which may hold spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 > len(b) {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return float64(ticks) / 100 // USER_HZ
}

// Memory returns a process's resident memory (VmRSS) and its peak (VmHWM)
// in bytes; zeros when it is gone.
func Memory(pid int) (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return rss, peak
}

// Machine is the whole machine's CPU time from /proc/stat, in seconds summed
// over its CPUs.
type Machine struct {
	// Busy is user, nice, system, irq and softirq time; Idle is idle and
	// iowait; Steal is time the hypervisor gave to someone else.
	Busy, Idle, Steal float64
}

// ReadMachine reads the machine's CPU time.
func ReadMachine() (Machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Machine{}, fmt.Errorf("read cpu times: %w", err)
	}
	return parseMachine(string(b))
}

func parseMachine(stat string) (Machine, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return Machine{}, fmt.Errorf("parse cpu times: first line %q", line)
	}
	var t [8]float64 // user nice system idle iowait irq softirq steal
	for i := range t {
		v, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return Machine{}, fmt.Errorf("parse cpu times: %w", err)
		}
		t[i] = float64(v) / 100 // USER_HZ
	}
	return Machine{Busy: t[0] + t[1] + t[2] + t[5] + t[6], Idle: t[3] + t[4], Steal: t[7]}, nil
}

// Since returns the time spent between earlier and m.
func (m Machine) Since(earlier Machine) Machine {
	return Machine{Busy: m.Busy - earlier.Busy, Idle: m.Idle - earlier.Idle, Steal: m.Steal - earlier.Steal}
}
