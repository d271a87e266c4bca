package loadgen

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// PrintTable writes results as a table, one row per run.
func PrintTable(w io.Writer, rs []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "agents\tcontainers\tseries/s\tfreshness p50\tp99\tmax\tfrom queued p99\tgenerator late p99\tprobes\tbacklog first\tlast\tdropped\tsustained\t")
	for _, r := range rs {
		verdict := "yes"
		if !r.Sustained() {
			verdict = "NO"
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d/%d\t%.0f\t%.0f\t%.0f\t%s\t\n", r.Agents, r.Containers, r.SeriesPerSecond,
			ms(r.FreshP50), ms(r.FreshP99), ms(r.FreshMax), ms(r.QueuedP99), ms(r.LateP99), r.Probes-r.LostProbes, r.Probes, r.PendingFirst, r.PendingLast,
			r.Dropped, verdict)
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond)) }
