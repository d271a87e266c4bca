package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pennyhq/penny/agent/sampler"
)

// column is one numeric column of the table.
type column struct {
	title string
	width int
	value func(c *Cgroup, interval float64) string
}

var columns = []column{
	{"PROCS", 5, func(c *Cgroup, _ float64) string { return fmt.Sprint(c.Processes) }},
	{"CPU", 6, func(c *Cgroup, iv float64) string {
		cores, ok := c.CPUCores(iv)
		if !ok {
			return "-"
		}
		return Millicores(cores)
	}},
	{"RSS", 7, func(c *Cgroup, _ float64) string { return Bytes(c.RSSBytes) }},
	{"PCACHE", 7, func(c *Cgroup, _ float64) string { return Bytes(c.PageCacheBytes) }},
	{"HIT%", 5, func(c *Cgroup, _ float64) string { return percent(c.PageCacheHitRatio) }},
	{"SRTT50", 7, func(c *Cgroup, _ float64) string { return Seconds(c.TCPSRTTP50Seconds) }},
	{"SRTT99", 7, func(c *Cgroup, _ float64) string { return Seconds(c.TCPSRTTP99Seconds) }},
	{"CONN99", 7, func(c *Cgroup, _ float64) string { return Seconds(c.TCPConnectP99Seconds) }},
	{"RETX", 5, func(c *Cgroup, _ float64) string { return fmt.Sprint(c.TCPRetransmits) }},
	{"RX/s", 7, func(c *Cgroup, iv float64) string { return rate(c.NetRxBytes, iv) }},
	{"TX/s", 7, func(c *Cgroup, iv float64) string { return rate(c.NetTxBytes, iv) }},
	{"COST/h", 8, func(c *Cgroup, _ float64) string { return Cost(c.CostDollarsPerHour) }},
}

// ByRSS sorts cgroups by RSS, largest first, then by path.
func ByRSS(cs []Cgroup) {
	slices.SortStableFunc(cs, func(a, b Cgroup) int {
		if a.RSSBytes != b.RSSBytes {
			if a.RSSBytes > b.RSSBytes {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
}

// Table writes the live view of s, priced by p: a title line, a header and
// at most maxRows rows sorted by RSS, each at most width columns wide. The
// cgroup path is shortened from the left to fit.
func Table(w io.Writer, s *sampler.Sample, width, maxRows int, p Pricer) error {
	r := FromSample(s, p)
	ByRSS(r.Cgroups)
	var rss, pc int64
	var cost float64
	for _, c := range r.Cgroups {
		rss += c.RSSBytes
		pc += c.PageCacheBytes
		if c.CostDollarsPerHour != nil {
			cost += *c.CostDollarsPerHour
		}
	}
	fixed := 0
	for _, c := range columns {
		fixed += c.width + 1
	}
	pathW := max(width-fixed, 12)
	var b strings.Builder
	fmt.Fprintf(&b, "penny local  %s  every %s  %d cgroups  RSS %s  page cache %s", s.Time.Format("15:04:05"),
		s.Interval.Round(10*time.Millisecond), len(r.Cgroups), Bytes(rss), Bytes(pc))
	if r.Currency != "" {
		fmt.Fprintf(&b, "  cost %s %s/h", Cost(&cost), r.Currency)
	}
	b.WriteString("   (q quits)\n")
	b.WriteString(pad("CGROUP", pathW, false))
	for _, c := range columns {
		b.WriteString(" " + pad(c.title, c.width, true))
	}
	b.WriteString("\n")
	for i := range r.Cgroups {
		if maxRows > 0 && i >= maxRows {
			fmt.Fprintf(&b, "… %d more\n", len(r.Cgroups)-i)
			break
		}
		c := &r.Cgroups[i]
		b.WriteString(pad(shortenLeft(c.Path, pathW), pathW, false))
		for _, col := range columns {
			b.WriteString(" " + pad(col.value(c, r.IntervalSeconds), col.width, true))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// PlainHeader is the header of Plain rows.
func PlainHeader(w io.Writer) error {
	var b strings.Builder
	b.WriteString(pad("TIME", 20, false))
	for _, c := range columns {
		b.WriteString(" " + pad(c.title, c.width, true))
	}
	b.WriteString(" CGROUP\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Plain writes one row per cgroup of s, priced by p, sorted by RSS, each
// starting with the sample's time and ending with the full cgroup path: a
// format for logs and pipes that never truncates.
func Plain(w io.Writer, s *sampler.Sample, p Pricer) error {
	r := FromSample(s, p)
	ByRSS(r.Cgroups)
	ts := s.Time.UTC().Format("2006-01-02T15:04:05Z")
	var b strings.Builder
	for i := range r.Cgroups {
		c := &r.Cgroups[i]
		b.WriteString(pad(ts, 20, false))
		for _, col := range columns {
			b.WriteString(" " + pad(col.value(c, r.IntervalSeconds), col.width, true))
		}
		b.WriteString(" " + c.Path + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pad(s string, w int, right bool) string {
	n := utf8.RuneCountInString(s)
	if n >= w {
		return s
	}
	if right {
		return strings.Repeat(" ", w-n) + s
	}
	return s + strings.Repeat(" ", w-n)
}

func shortenLeft(s string, w int) string {
	n := utf8.RuneCountInString(s)
	if n <= w {
		return s
	}
	runes := []rune(s)
	return "…" + string(runes[n-w+1:])
}

// Bytes formats a byte count with binary units: 512B, 1.5K, 20M, 3.2G.
func Bytes(v int64) string {
	const units = "KMGTPE"
	if v < 1024 && v > -1024 {
		return fmt.Sprintf("%dB", v)
	}
	f := float64(v)
	i := -1
	for (f >= 1024 || f <= -1024) && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f >= 100 || f <= -100 {
		return fmt.Sprintf("%.0f%c", f, units[i])
	}
	return fmt.Sprintf("%.1f%c", f, units[i])
}

// Millicores formats CPU cores as Kubernetes does: 250m is a quarter of a
// core, 1500m one and a half.
func Millicores(cores float64) string {
	return fmt.Sprintf("%.0fm", max(cores, 0)*1000)
}

// Seconds formats a latency, "-" when unknown.
func Seconds(v *float64) string {
	if v == nil {
		return "-"
	}
	d := *v
	switch {
	case d < 1e-3:
		return fmt.Sprintf("%.0fµs", d*1e6)
	case d < 1:
		return fmt.Sprintf("%.1fms", d*1e3)
	default:
		return fmt.Sprintf("%.2fs", d)
	}
}

// Cost formats a cost per hour with the digits that matter: 0.0312,
// 0.000041, 2.15; "-" when unknown.
func Cost(v *float64) string {
	if v == nil {
		return "-"
	}
	d := max(*v, 0)
	switch {
	case d < 0.0000005:
		return "0"
	case d < 0.001:
		return fmt.Sprintf("%.6f", d)
	case d < 1:
		return fmt.Sprintf("%.4f", d)
	case d < 1000:
		return fmt.Sprintf("%.2f", d)
	default:
		return fmt.Sprintf("%.0f", d)
	}
}

func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v*100)
}

func rate(bytes uint64, interval float64) string {
	if interval <= 0 {
		return "-"
	}
	return Bytes(int64(float64(bytes) / interval))
}
